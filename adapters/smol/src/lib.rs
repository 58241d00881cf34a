//! Raft connections and cluster membership over an application's existing HTTP port, on smol
//! (and on any executor driven by the `async-io` reactor). Wire-compatible with Canonical's Go
//! package `rafthttp`.
//!
//! A Raft connection is an HTTP/1.1 request upgraded with `Upgrade: raft`; join and leave are
//! `POST` and `DELETE` requests to the same path, redirected to the leader. This crate gives:
//! - [`Handler`]: the server side. [`Handler::serve`] runs a minimal HTTP/1.1 server on a
//!   listener; upgraded connections come out of [`Layer::accept`], membership requests out of
//!   [`Handler::requests`] for the application to answer.
//! - [`Layer`]: one node's endpoint: accept, dial, join, leave, addr, close.
//! - [`Stream`]: the one stream type both `accept()` and `dial()` return, implementing
//!   futures-io's `AsyncRead`/`AsyncWrite`. Bytes that arrived behind the HTTP head are read
//!   first.
//! - TLS with rustls (futures-rustls, ring provider), with the `tls` feature (on by default):
//!   [`TlsDialer`] dials,
//!   [`Handler::serve_tls`] serves; the handshake runs in each connection's task. Redirects
//!   follow [`HandlerConfig::scheme`] (`http` by default, as Go writes them over TLS too).
//!   Mutual TLS: a client verifier in the server config, a client certificate in the dialer's,
//!   and [`Stream::peer_certificates`] on accepted streams. [`rustls`] and [`futures_rustls`]
//!   are re-exported.
//!
//! The protocol lives in `rafthttp-core` and the async logic in `rafthttp-driver`, whose
//! [`front`] module writes `Handler` and `Layer` once for every
//! runtime; this crate only wires smol's sockets, timer, executor and TLS types to them
//! ([`Smol`]). The executor is a parameter ([`Spawn`], smol's global one by default):
//! `rafthttp-async-std` reuses everything here with async-std's.
//!
//! ```no_run
//! use std::time::Duration;
//! use rafthttp_smol::{Handler, Layer, TcpDialer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?.to_string();
//!     let handler = Handler::new();
//!     smol::spawn({
//!         let handler = handler.clone();
//!         async move { handler.serve(listener).await }
//!     })
//!     .detach();
//!     let layer = Layer::new(&addr, handler.clone(), TcpDialer)?;
//!     let requests = handler.requests();
//!     smol::spawn(async move {
//!         while let Some(request) = requests.recv().await {
//!             request.respond(Ok(()));
//!         }
//!     })
//!     .detach();
//!     layer.join("2", "127.0.0.1:9001", Duration::from_secs(5)).await?;
//!     Ok(())
//! })
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "tls")]
mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};
use rafthttp_driver as driver;
pub use rafthttp_driver::front;
use smol::net::{TcpListener, TcpStream};

pub use driver::core;
pub use driver::front::Dialer;
pub use driver::{
    ChangeError, ChangeKind, ChangeMembership, ChangeRequest, ClientConfig, ClusterId, DialError,
    FallbackRequest, HandlerConfig, InputError, Limits, MembershipError, MissingClusterId, Outcome,
    RaftPath, Refusal, Requests, Runtime, Scheme,
};
/// smol's networking types (the listener [`Handler::serve`] takes).
pub use smol::net;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::{TlsDialer, futures_rustls, rustls};

/// A timer on the async-io reactor, completing at an instant.
#[derive(Debug)]
pub struct Sleep(smol::Timer);

impl Sleep {
    /// Completes at `deadline`.
    pub fn until(deadline: Instant) -> Self {
        Self(smol::Timer::at(deadline))
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx).map(|_| ())
    }
}

/// How [`Smol`] spawns tasks: smol's global executor ([`SmolSpawn`]) by default.
pub trait Spawn: Clone + Default + Send + Sync + 'static {
    /// Runs `task` in the background.
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F);
}

/// smol's global executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolSpawn;

impl Spawn for SmolSpawn {
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        smol::spawn(task).detach();
    }
}

/// smol (the async-io reactor and timer, an executor), as the driver sees it: its sockets,
/// [`Stream`] and TLS types.
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol<S = SmolSpawn>(S);

/// The old name of [`Smol`].
pub type SmolRuntime = Smol;

impl Smol<SmolSpawn> {
    /// smol with its global executor.
    pub fn new() -> Self {
        Self(SmolSpawn)
    }
}

impl<S: Spawn> Runtime for Smol<S> {
    type Sleep = Sleep;

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep::until(deadline)
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        self.0.spawn(task);
    }
}

impl<S: Spawn> front::Front for Smol<S> {
    type Stream = Stream;
    type Conn = Stream;
    type Listener = TcpListener;
    type Tcp = TcpStream;

    async fn accept(listener: &mut TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        listener.accept().await
    }

    fn plain(tcp: TcpStream) -> Stream {
        Stream::from(tcp)
    }

    fn conn(stream: Stream) -> Stream {
        stream
    }

    fn stream(upgraded: driver::Upgraded<Stream>) -> Stream {
        Stream(upgraded.io.0.replaying(upgraded.prefix))
    }

    async fn connect(authority: &str) -> io::Result<TcpStream> {
        TcpStream::connect(authority).await
    }
}

#[cfg(feature = "tls")]
driver::stream_type! {
    tcp: TcpStream,
    tls: futures_rustls::TlsStream<TcpStream>,
    certificate: rustls::pki_types::CertificateDer<'static>,
    io: AsyncRead, AsyncWrite,
}

#[cfg(not(feature = "tls"))]
driver::stream_type! {
    tcp: TcpStream,
    io: AsyncRead, AsyncWrite,
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let prefix = self.prefix();
        if !prefix.is_empty() && !buf.is_empty() {
            return Poll::Ready(Ok(prefix.read_into(buf)));
        }
        self.io().poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io().poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_close(cx)
    }
}

/// Plain TCP (with `TCP_NODELAY`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpDialer;

impl Dialer<Stream> for TcpDialer {
    async fn connect(&self, authority: &str) -> io::Result<Stream> {
        TcpStream::connect(authority).await.map(Stream::from)
    }
}

/// A listener on `addr` with a listen backlog of [`DEFAULT_BACKLOG`](driver::DEFAULT_BACKLOG)
/// (4096, as far as the system allows), for bursts of simultaneous dials and joins; the
/// runtime's own `bind` uses 1024.
///
/// # Errors
/// Binding or listening failed.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::try_from(front_bind(addr)?)
}

/// [`bind`]'s std listener, for executors on the same reactor (async-std).
///
/// # Errors
/// Binding or listening failed.
pub fn front_bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    driver::bind(addr, driver::DEFAULT_BACKLOG)
}

/// The Raft side of an HTTP server ([`front::Handler`] on smol). Cheap to clone; clones
/// share everything.
///
/// ```no_run
/// use rafthttp_smol::{Handler, HandlerConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// smol::block_on(async {
///     let handler: Handler = Handler::with_config(HandlerConfig::default().with_path("/raft")?);
///     let listener = rafthttp_smol::bind("127.0.0.1:8080".parse()?)?;
///     smol::spawn({
///         let handler = handler.clone();
///         async move { handler.serve(listener).await }
///     })
///     .detach();
///     let requests = handler.requests();
///     while let Some(request) = requests.recv().await {
///         request.respond(Ok(()));
///     }
///     Ok(())
/// })
/// # }
/// ```
pub type Handler = front::Handler<Smol>;

/// One node's Raft network endpoint: accept, dial, join, leave ([`front::Layer`] on smol).
///
/// ```no_run
/// use std::time::Duration;
/// use rafthttp_smol::{Handler, Layer, TcpDialer};
///
/// # async fn run(handler: Handler) -> Result<(), Box<dyn std::error::Error>> {
/// let layer: Layer = Layer::new("127.0.0.1:8082", handler, TcpDialer)?;
/// layer.join("3", "127.0.0.1:8080", Duration::from_secs(10)).await?;
/// let stream = layer.dial("127.0.0.1:8080", Duration::from_secs(1)).await?;
/// # drop(stream);
/// # Ok(()) }
/// ```
pub type Layer<D = TcpDialer> = front::Layer<Smol, D>;

/// Sends one membership request like the Go package's `ChangeMembership` (see
/// [`ChangeMembership`]): follows redirects and retries 503 within its timeout.
///
/// # Errors
/// See [`MembershipError`].
pub async fn change_membership<D: Dialer<Stream>>(
    dialer: &D,
    request: &ChangeMembership,
) -> Result<(), MembershipError> {
    front::change_membership::<Smol, D>(dialer, request).await
}
