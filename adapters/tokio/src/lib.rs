//! Raft connections and cluster membership over an application's existing HTTP port, on tokio.
//! Wire-compatible with Canonical's Go package `rafthttp`.
//!
//! A Raft connection is an HTTP/1.1 request upgraded with `Upgrade: raft`; join and leave are
//! `POST` and `DELETE` requests to the same path, redirected to the leader. This crate gives
//! tokio users:
//! - [`Handler`]: the server side. [`Handler::serve`](front::Handler::serve) runs a minimal HTTP/1.1 server on a
//!   listener; upgraded connections come out of [`Layer::accept`], membership requests out of
//!   [`Handler::requests`](front::Handler::requests) for the application to answer.
//! - [`Layer`]: one node's endpoint: accept, dial, join, leave, addr, close.
//! - [`Stream`]: the one stream type both `accept()` and `dial()` return, implementing tokio's
//!   `AsyncRead`/`AsyncWrite`. Bytes that arrived behind the HTTP head are read first.
//! - TLS with rustls (tokio-rustls, ring provider), with the `tls` feature (on by default):
//!   [`TlsDialer`] dials, [`Handler::serve_tls`](front::Handler::serve_tls)
//!   serves; the handshake runs in each connection's task. Redirects follow
//!   [`HandlerConfig::scheme`] (`http` by default, as Go writes them over TLS too). Mutual
//!   TLS: a client verifier in the server config, a client certificate in the dialer's, and
//!   [`Stream::peer_certificates`] on accepted streams. [`rustls`] and [`tokio_rustls`] are
//!   re-exported.
//!
//! With the `hyper` feature, [`Handler`] is also a `tower::Service`: mount it in axum
//! (`Router::route_service("/raft", handler)`) or plain hyper (`with_upgrades()`), and the same
//! routing, status codes and accept queue apply.
//!
//! The protocol lives in `rafthttp-core` and the async logic in `rafthttp-driver`, whose
//! [`front`] module writes `Handler` and `Layer` once for every
//! runtime; this crate only wires tokio's sockets, timer, stream and TLS types to them
//! ([`Tokio`]). HTTP heads go through tokio-util's compat layer, Raft traffic does not.
//!
//! ```no_run
//! use std::time::Duration;
//! use rafthttp_tokio::{Handler, Layer, TcpDialer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?.to_string();
//! let handler = Handler::new();
//! tokio::spawn({
//!     let handler = handler.clone();
//!     async move { handler.serve(listener).await }
//! });
//! let layer = Layer::new(&addr, handler.clone(), TcpDialer)?;
//!
//! // The application answers membership requests (here: accept everything).
//! let requests = handler.requests();
//! tokio::spawn(async move {
//!     while let Some(request) = requests.recv().await {
//!         request.respond(Ok(()));
//!     }
//! });
//!
//! layer.join("2", "127.0.0.1:9001", Duration::from_secs(5)).await?;
//! let stream = layer.dial("127.0.0.1:9001", Duration::from_secs(1)).await?;
//! # drop(stream);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "hyper")]
mod http;
#[cfg(feature = "hyper")]
mod mount;
#[cfg(feature = "tls")]
mod tls;

#[cfg(feature = "hyper")]
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
pub use http::serve_http;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use rafthttp_driver as driver;
pub use rafthttp_driver::front;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

pub use driver::core;
pub use driver::front::Dialer;
pub use driver::{
    ChangeError, ChangeKind, ChangeMembership, ChangeRequest, ClientConfig, ClusterId, DialError,
    FallbackRequest, HandlerConfig, InputError, Limits, MembershipError, MissingClusterId, Outcome,
    RaftPath, Refusal, Requests, Scheme,
};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::{TlsDialer, rustls, tokio_rustls};

/// tokio, as the driver sees it: its timer and spawn, its sockets, [`Stream`] and TLS types.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

/// The old name of [`Tokio`].
pub type TokioRuntime = Tokio;

impl driver::Runtime for Tokio {
    type Sleep = tokio::time::Sleep;

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        tokio::time::sleep_until(deadline.into())
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        tokio::spawn(task);
    }
}

impl front::Front for Tokio {
    type Stream = Stream;
    type Conn = Compat<Stream>;
    type Listener = TcpListener;
    type Tcp = TcpStream;

    fn accept(
        listener: &mut TcpListener,
    ) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        listener.accept()
    }

    fn plain(tcp: TcpStream) -> Stream {
        Stream::from(tcp)
    }

    fn conn(stream: Stream) -> Compat<Stream> {
        stream.compat()
    }

    fn stream(upgraded: driver::Upgraded<Compat<Stream>>) -> Stream {
        Stream(upgraded.io.into_inner().0.replaying(upgraded.prefix))
    }

    fn connect(authority: &str) -> impl Future<Output = io::Result<TcpStream>> + Send {
        TcpStream::connect(authority.to_owned())
    }
}

#[cfg(feature = "tls")]
driver::stream_type! {
    tcp: TcpStream,
    tls: tokio_rustls::TlsStream<TcpStream>,
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
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let prefix = self.prefix();
        if !prefix.is_empty() && buf.remaining() > 0 {
            let n = prefix.read_into(buf.initialize_unfilled());
            buf.advance(n);
            return Poll::Ready(Ok(()));
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

    fn is_write_vectored(&self) -> bool {
        // Both sockets and rustls write vectors; another stream says so itself, but the flag
        // is only a hint and `poll_write_vectored` forwards in every case.
        self.0.tcp().is_some() || self.0.tls().is_some()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_shutdown(cx)
    }
}

/// Plain TCP (with `TCP_NODELAY`).
///
/// ```no_run
/// use rafthttp_tokio::{Handler, Layer, TcpDialer};
///
/// # fn run() -> Result<(), rafthttp_tokio::InputError> {
/// let layer = Layer::new("127.0.0.1:8080", Handler::new(), TcpDialer)?;
/// # drop(layer);
/// # Ok(()) }
/// ```
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
    TcpListener::from_std(driver::bind(addr, driver::DEFAULT_BACKLOG)?)
}

/// The Raft side of an HTTP server: [`front::Handler`] on tokio (everything it does is
/// there, through `Deref`), plus, with the `hyper` feature, a `tower::Service` to mount in
/// axum or hyper. Cheap to clone; clones share everything.
///
/// Serving plain HTTP, answering membership requests, and taking Raft connections:
///
/// ```no_run
/// use std::time::Duration;
/// use rafthttp_tokio::{ChangeError, Handler, HandlerConfig};
///
/// # async fn run(i_lead: bool) -> Result<(), Box<dyn std::error::Error>> {
/// let config = HandlerConfig::default()
///     .with_path("/cluster/raft")?
///     .with_timeout(Duration::from_secs(5));
/// let handler = Handler::with_config(config);
/// let listener = rafthttp_tokio::bind("127.0.0.1:8080".parse()?)?;
/// tokio::spawn({
///     let handler = handler.clone();
///     async move { handler.serve(listener).await }
/// });
/// let requests = handler.requests();
/// tokio::spawn(async move {
///     while let Some(request) = requests.recv().await {
///         // A follower sends the client to the leader (308), or makes it retry (503).
///         let leader = Some("127.0.0.1:8081".to_owned());
///         request.respond(if i_lead { Ok(()) } else { Err(ChangeError::NotLeader { leader }) });
///     }
/// });
/// let inbound = handler.accept().await?;
/// # drop(inbound);
/// # Ok(()) }
/// ```
///
/// Over TLS (feature `tls`), with [`serve_tls`](front::Handler::serve_tls):
///
/// ```no_run
/// # #[cfg(feature = "tls")]
/// # async fn run(
/// #     chain: Vec<rafthttp_tokio::rustls::pki_types::CertificateDer<'static>>,
/// #     key: rafthttp_tokio::rustls::pki_types::PrivateKeyDer<'static>,
/// # ) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use rafthttp_tokio::Handler;
/// use rafthttp_tokio::rustls::{self, ServerConfig};
/// use rafthttp_tokio::tokio_rustls::TlsAcceptor;
///
/// let provider = Arc::new(rustls::crypto::ring::default_provider());
/// let config = ServerConfig::builder_with_provider(provider)
///     .with_safe_default_protocol_versions()?
///     .with_no_client_auth()
///     .with_single_cert(chain, key)?;
/// let handler = Handler::new();
/// let listener = rafthttp_tokio::bind("127.0.0.1:8443".parse()?)?;
/// handler.serve_tls(listener, TlsAcceptor::from(Arc::new(config))).await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Handler(front::Handler<Tokio>);

impl Handler {
    /// A handler with the default configuration (path `/raft`, 10 s timeout).
    pub fn new() -> Self {
        Self::default()
    }

    /// A handler with `config`.
    pub fn with_config(config: HandlerConfig) -> Self {
        Self(front::Handler::with_config(config))
    }
}

impl Deref for Handler {
    type Target = front::Handler<Tokio>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl From<Handler> for front::Handler<Tokio> {
    fn from(handler: Handler) -> Self {
        handler.0
    }
}

/// One node's Raft network endpoint: accept, dial, join, leave ([`front::Layer`] on tokio).
///
/// ```no_run
/// use std::time::Duration;
/// use rafthttp_tokio::{Handler, Layer, TcpDialer};
///
/// # async fn run(handler: Handler) -> Result<(), Box<dyn std::error::Error>> {
/// // This node serves `handler` at 127.0.0.1:8082; 127.0.0.1:8080 is in the cluster.
/// let layer = Layer::new("127.0.0.1:8082", handler, TcpDialer)?
///     .with_header("Authorization", "Bearer s3cret")?;
/// layer.join("3", "127.0.0.1:8080", Duration::from_secs(10)).await?;
/// let to_leader = layer.dial("127.0.0.1:8080", Duration::from_secs(1)).await?;
/// let from_peer = layer.accept().await?;
/// # drop((to_leader, from_peer));
/// layer.leave("3", "127.0.0.1:8080", Duration::from_secs(10)).await?;
/// layer.close();
/// # Ok(()) }
/// ```
pub type Layer<D = TcpDialer> = front::Layer<Tokio, D>;

/// Sends one membership request like the Go package's `ChangeMembership` (see
/// [`ChangeMembership`]): follows redirects and retries 503 within its timeout.
///
/// # Errors
/// See [`MembershipError`].
pub async fn change_membership<D: Dialer<Stream>>(
    dialer: &D,
    request: &ChangeMembership,
) -> Result<(), MembershipError> {
    front::change_membership::<Tokio, D>(dialer, request).await
}
