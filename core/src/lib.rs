//! The rafthttp protocol as a pure state machine: Raft connections and cluster membership over
//! an application's existing HTTP/1.1 port, wire-compatible with Canonical's Go package
//! `rafthttp` (github.com/CanonicalLtd/raft-http).
//!
//! This crate does no IO, never blocks or awaits, and never reads a clock: it is fully
//! deterministic. Callers feed it the bytes they read (borrowed slices; decoders report how many
//! bytes they consumed and give back the tail that followed a head), write out the bytes it
//! appends to their buffers, and pass time in as [`std::time::Instant`] values. The async
//! runtimes are driven by `rafthttp-driver`; this crate knows nothing of sockets or tasks.
//!
//! # The protocol
//! - A Raft connection is `GET <path>` with `Upgrade: raft`, answered
//!   `101 Switching Protocols`; afterwards the stream carries raw Raft bytes
//!   ([`ClientHandshake`] on the dialing side, [`RequestDecoder`] + [`Router`] on the server).
//! - After the upgrade, Raft engine glue cuts the stream into length-prefixed [`frame`]s.
//! - Join is `POST <path>?id=<id>&address=<address>`, leave is `DELETE <path>?id=<id>`. A node
//!   that is not the leader redirects to the leader (308) or answers 503 when it does not know
//!   it ([`Router::answer`]). The client side is [`membership::MembershipClient`].
//!
//! # Run loop (server side)
//! ```
//! use rafthttp_core::{Availability, Decoded, Limits, RaftPath, RequestDecoder, Response, Route, Router};
//!
//! let router = Router::new(RaftPath::new("/raft").unwrap());
//! let mut buf = Vec::new();
//! let mut decoder = RequestDecoder::new(Limits::default());
//! let mut out = Vec::new();
//! for chunk in [&b"GET /raft HTTP/1.1\r\nHost: a\r\nUpg"[..], b"rade: raft\r\n\r\nfirst raft bytes"] {
//!     buf.extend_from_slice(chunk); // bytes read from the socket
//!     let Decoded::Complete { value: head, consumed } = decoder.decode(&buf).unwrap() else {
//!         continue; // read more
//!     };
//!     match router.route(&head, Availability::Open) {
//!         Route::Upgrade => {
//!             Response::switching_protocols().encode(&mut out);
//!             // Hand the connection to Raft, replaying the tail first.
//!             assert_eq!(&buf[consumed..], b"first raft bytes");
//!         }
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! assert_eq!(out, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\nConnection: Upgrade\r\n\r\n");
//! ```
//!
//! # What it does not do
//! No IO, no timers, no TLS, no connection management, no Raft: those belong to the driver, the
//! runtime adapters and the application.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
pub mod connection;
pub mod error;
pub mod frame;
mod head;
pub mod membership;
mod query;
mod response;
pub mod server;
mod target;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use client::{ClientHandshake, Upgraded};
pub use error::{HandshakeError, InputError, MembershipError, RequestError, ResponseError};
pub use head::{
    BodyFraming, Decoded, Header, Headers, Limits, RequestDecoder, RequestHead, ResponseDecoder,
    ResponseHead,
};
pub use membership::{ChangeError, ChangeKind};
pub use server::{
    Availability, Change, ClusterId, Endpoint, MissingClusterId, Response, Route, Router, Severity,
    Takeover,
};
pub use target::{ExtraHeaders, RaftPath, Scheme, authority_host, check_authority, tls};

/// A `Result` defaulting to this crate's [`RequestError`].
pub type Result<T, E = RequestError> = std::result::Result<T, E>;
