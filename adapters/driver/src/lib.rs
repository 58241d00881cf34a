//! The async side of rafthttp, written once: serving the Raft path of an HTTP server, dialing
//! Raft connections and sending membership requests, generic over futures-io connections and a
//! small [`Runtime`] trait (a timer, a clock and spawn).
//!
//! Users do not depend on this crate directly but on a runtime crate (`rafthttp-tokio`,
//! `rafthttp-smol`, `rafthttp-async-std`), which re-exports what is needed and adds that
//! runtime's TCP and TLS types. The protocol itself (parsing, routing, status mapping) lives in
//! `rafthttp-core`; this crate only moves bytes and enforces deadlines:
//!
//! - [`Handler::dispatch`] decides each request: respond, hand a membership change to the
//!   application, or upgrade into an accept slot reserved before the 101 is written.
//! - [`Handler::serve`] / [`Handler::serve_connection`]: a minimal HTTP/1.1 server, a loop of
//!   read, feed the core's connection machine, write, under an idle timeout.
//!   [`Handler::serve_with`] adds a per-connection handshake step (TLS) that runs in the
//!   connection's task under the idle timeout; the runtime crates' `serve_tls` use it.
//! - [`dial`] and [`change_membership`]: the client operations, each under one deadline.
//! - [`front`]: the types the runtime crates expose ([`front::Handler`], [`front::Layer`],
//!   [`front::Dialer`]), written once over a [`front::Front`] each runtime implements with
//!   one-line delegations.
//!
//! Every wait has a deadline and every queue a bound: the accept queue refuses upgrades with
//! 503 when full, membership requests wait for room and an answer within the handler's timeout.
//!
//! With the `metrics` feature, requests answered, the accept queue's depth, dials and membership
//! changes are measured through the [`metrics`](https://docs.rs/metrics) facade (names and
//! labels in the workspace README, "Metrics"); the application installs the recorder.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admission;
mod bind;
mod client;
mod config;
mod error;
pub mod front;
mod handler;
mod measure;
mod prefix;
mod request;
mod runtime;
mod time;
mod tls;

pub use bind::{DEFAULT_BACKLOG, bind};
pub use client::{ChangeMembership, change_membership, dial};
pub use config::{Authorizer, ClientConfig, Fallback, FallbackRequest, HandlerConfig, Refusal};
pub use error::{DialError, MembershipError};
pub use handler::{AcceptSlot, Dispatch, Handler, RequestLog, Upgraded};
pub use prefix::{Prefix, Prefixed};
pub use request::{ChangeRequest, Outcome, Requests};
pub use runtime::{Connection, Dialer, Listener, Runtime};
pub use tls::refuse_plain_http;

pub use rafthttp_core as core;
pub use rafthttp_core::{
    ChangeError, ChangeKind, ClusterId, ExtraHeaders, InputError, Limits, MissingClusterId,
    RaftPath, Scheme,
};
