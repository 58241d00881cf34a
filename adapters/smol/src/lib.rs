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
//! - TLS with rustls (futures-rustls, ring provider): [`TlsDialer`] dials,
//!   [`Handler::serve_tls`] serves; the handshake runs in each connection's task. Redirects
//!   follow [`HandlerConfig::scheme`] (`http` by default, as Go writes them over TLS too).
//!   Mutual TLS: a client verifier in the server config, a client
//!   certificate in the dialer's, and [`Stream::peer_certificates`] on accepted streams.
//!   [`rustls`] and [`futures_rustls`] are re-exported.
//!
//! The protocol lives in `rafthttp-core` and the async logic in `rafthttp-driver`; this crate
//! only wires smol's sockets, timer and executor to them. The types are generic over the
//! [`Runtime`] that spawns tasks, defaulting to [`SmolRuntime`]:
//! `rafthttp-async-std` reuses them with async-std's executor.
//!
//! ```no_run
//! use std::time::Duration;
//! use rafthttp_smol::{Handler, Layer, TcpDialer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?.to_string();
//!     let handler: Handler = Handler::new();
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

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::pki_types::{CertificateDer, ServerName};
use futures_rustls::rustls::ClientConfig;
use futures_rustls::{TlsAcceptor, TlsConnector, TlsStream};
use rafthttp_driver as driver;
use smol::net::{TcpListener, TcpStream};

pub use driver::core;
pub use driver::{
    ChangeError, ChangeKind, ChangeRequest, DialError, HandlerConfig, InputError, Limits,
    MembershipError, Outcome, RaftPath, Refusal, Requests, Runtime, Scheme,
};
/// futures-rustls, for the [`TlsAcceptor`] of [`Handler::serve_tls`].
pub use futures_rustls;
/// rustls, to build the [`TlsDialer`]'s and [`Handler::serve_tls`]'s configurations.
pub use futures_rustls::rustls;
/// smol's networking types (the listener [`Handler::serve`] takes).
pub use smol::net;

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

/// smol's global executor and the async-io timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    type Sleep = Sleep;

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep::until(deadline)
    }

    fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        smol::spawn(task).detach();
    }
}

trait Io: AsyncRead + AsyncWrite + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + 'static> Io for T {}

enum Inner {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Other(Pin<Box<dyn Io>>),
}

/// A Raft connection (or, inside a dialer, a connection about to become one): TCP, TLS over
/// TCP, or any stream a custom [`Dialer`] returns. Bytes that arrived behind the HTTP head are
/// read first.
pub struct Stream {
    inner: Inner,
    prefix: driver::Prefix,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner {
            Inner::Tcp(tcp) => format!("Tcp({:?})", tcp.peer_addr().ok()),
            Inner::Tls(tls) => format!("Tls({:?})", tls.get_ref().0.peer_addr().ok()),
            Inner::Other(_) => "Other".to_owned(),
        };
        f.debug_struct("Stream")
            .field("inner", &kind)
            .field("prefix", &self.prefix.remaining().len())
            .finish()
    }
}

impl Stream {
    /// Wraps any futures-io stream (a TLS stream, another runtime's socket, ...).
    pub fn from_io<T: AsyncRead + AsyncWrite + Send + 'static>(io: T) -> Self {
        Self {
            inner: Inner::Other(Box::pin(io)),
            prefix: driver::Prefix::default(),
        }
    }

    /// The TCP socket underneath, when the stream is plain TCP.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match &self.inner {
            Inner::Tcp(tcp) => Some(tcp),
            Inner::Tls(_) | Inner::Other(_) => None,
        }
    }

    /// The certificate chain the peer presented, when the stream is TLS and the peer sent one
    /// (a server always does; a client under mutual TLS). The first is the peer's own.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        match &self.inner {
            Inner::Tls(tls) => tls.get_ref().1.peer_certificates(),
            Inner::Tcp(_) | Inner::Other(_) => None,
        }
    }

    /// Bytes received behind the HTTP head and not read yet.
    pub fn buffered(&self) -> &[u8] {
        self.prefix.remaining()
    }

    fn from_upgraded(upgraded: driver::Upgraded<Self>) -> Self {
        let mut stream = upgraded.io;
        stream.prefix = upgraded.prefix;
        stream
    }

    fn io(self: Pin<&mut Self>) -> Pin<&mut dyn Io> {
        match &mut self.get_mut().inner {
            Inner::Tcp(tcp) => {
                let tcp: Pin<&mut TcpStream> = Pin::new(tcp);
                tcp
            }
            Inner::Tls(tls) => {
                let tls: Pin<&mut TlsStream<TcpStream>> = Pin::new(tls);
                tls
            }
            Inner::Other(io) => io.as_mut(),
        }
    }
}

impl From<TcpStream> for Stream {
    fn from(tcp: TcpStream) -> Self {
        // Raft sends small messages and waits for replies: do not batch them.
        let _ = tcp.set_nodelay(true);
        Self {
            inner: Inner::Tcp(tcp),
            prefix: driver::Prefix::default(),
        }
    }
}

impl From<TlsStream<TcpStream>> for Stream {
    fn from(tls: TlsStream<TcpStream>) -> Self {
        let _ = tls.get_ref().0.set_nodelay(true);
        Self {
            inner: Inner::Tls(Box::new(tls)),
            prefix: driver::Prefix::default(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if !self.prefix.is_empty() && !buf.is_empty() {
            return Poll::Ready(Ok(self.prefix.read_into(buf)));
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

/// Opens connections for [`Layer::dial`], [`Layer::join`] and [`Layer::leave`].
pub trait Dialer: Send + Sync {
    /// Connects to `authority` (`host:port`). The caller bounds the time it may take.
    fn connect(&self, authority: &str) -> impl Future<Output = io::Result<Stream>> + Send;

    /// `https` for a TLS dialer, which follows `http` and `https` membership redirects alike
    /// (over TLS); a plain dialer refuses `https` ones.
    fn scheme(&self) -> Scheme {
        Scheme::Http
    }
}

impl<D: Dialer + ?Sized> Dialer for &D {
    fn connect(&self, authority: &str) -> impl Future<Output = io::Result<Stream>> + Send {
        (**self).connect(authority)
    }

    fn scheme(&self) -> Scheme {
        (**self).scheme()
    }
}

/// Plain TCP.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpDialer;

impl Dialer for TcpDialer {
    async fn connect(&self, authority: &str) -> io::Result<Stream> {
        TcpStream::connect(authority).await.map(Stream::from)
    }
}

/// TLS over TCP with rustls (futures-rustls): the server's certificate is checked against the
/// host of the authority dialed (a DNS name or an IP address). Membership redirects are
/// followed over TLS whether their Location says `http` (what Go and, by default, our
/// `serve_tls` write) or `https`; the certificate is checked against the Location's host.
///
/// For mutual TLS, build the config with a client certificate
/// (`with_client_auth_cert`). Build it with
/// `ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))`
/// (or `ClientConfig::builder()` when the process has exactly one provider).
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use rafthttp_smol::rustls::{self, ClientConfig, RootCertStore};
/// use rafthttp_smol::{Handler, Layer, TlsDialer};
///
/// # async fn run(roots: RootCertStore) -> Result<(), Box<dyn std::error::Error>> {
/// let provider = Arc::new(rustls::crypto::ring::default_provider());
/// let config = ClientConfig::builder_with_provider(provider)
///     .with_safe_default_protocol_versions()?
///     .with_root_certificates(roots)
///     .with_no_client_auth();
/// let handler: Handler = Handler::new();
/// let layer = Layer::new("10.0.0.1:8443", handler, TlsDialer::new(Arc::new(config)))?;
/// let stream = layer.dial("10.0.0.2:8443", Duration::from_secs(1)).await?;
/// # drop(stream);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TlsDialer {
    connector: TlsConnector,
}

impl TlsDialer {
    /// A dialer with `config`.
    pub fn new(config: Arc<ClientConfig>) -> Self {
        Self {
            connector: TlsConnector::from(config),
        }
    }
}

impl std::fmt::Debug for TlsDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDialer").finish_non_exhaustive()
    }
}

impl Dialer for TlsDialer {
    async fn connect(&self, authority: &str) -> io::Result<Stream> {
        let name = server_name(authority)?;
        let tcp = TcpStream::connect(authority).await?;
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .map_err(|e| tls_error(authority, e))?;
        Ok(Stream::from(TlsStream::from(tls)))
    }

    fn scheme(&self) -> Scheme {
        Scheme::Https
    }
}

/// The name the server's certificate must carry: the host of `authority`.
fn server_name(authority: &str) -> io::Result<ServerName<'static>> {
    let host = core::authority_host(authority)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    ServerName::try_from(host.to_owned()).map_err(|e| {
        let message = format!("{host:?} is not a valid TLS server name: {e}");
        io::Error::new(io::ErrorKind::InvalidInput, message)
    })
}

fn tls_error(authority: &str, error: io::Error) -> io::Error {
    let message = format!("TLS handshake with {authority} failed: {error}");
    io::Error::new(error.kind(), message)
}

/// A [`Dialer`] as the driver sees it.
#[derive(Debug, Clone)]
struct DriverDialer<D>(D);

impl<D: Dialer> driver::Dialer for DriverDialer<D> {
    type Conn = Stream;

    fn connect(&self, authority: &str) -> impl Future<Output = io::Result<Stream>> + Send {
        self.0.connect(authority)
    }

    fn scheme(&self) -> Scheme {
        self.0.scheme()
    }
}

struct DriverListener(TcpListener);

impl driver::Listener for DriverListener {
    type Conn = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        self.0.accept().await
    }
}

/// The Raft side of an HTTP server. Cheap to clone; clones share everything. `R` spawns the
/// connection tasks of [`serve`](Self::serve).
#[derive(Debug, Clone, Default)]
pub struct Handler<R = SmolRuntime> {
    inner: driver::Handler<Stream>,
    rt: R,
}

impl<R: Runtime + Default> Handler<R> {
    /// A handler with the default configuration (path `/raft`, 10 s timeout).
    pub fn new() -> Self {
        Self::with_config(HandlerConfig::default())
    }

    /// A handler with `config`.
    pub fn with_config(config: HandlerConfig) -> Self {
        Self {
            inner: driver::Handler::new(config),
            rt: R::default(),
        }
    }
}

impl<R: Runtime> Handler<R> {
    /// The configuration.
    pub fn config(&self) -> &HandlerConfig {
        self.inner.config()
    }

    /// The membership requests for the application to answer (bounded, multi-consumer). Ends
    /// after [`close`](Self::close).
    pub fn requests(&self) -> Requests {
        self.inner.requests()
    }

    /// Serves HTTP on `listener`: the Raft path is handled, other paths get 404. Runs until the
    /// future is dropped (after [`close`](Self::close) it answers 403 `raft transport closed`).
    /// Redirects to the leader use [`HandlerConfig::scheme`] (default `http`).
    pub async fn serve(&self, listener: TcpListener) {
        self.inner
            .serve_with(self.rt.clone(), DriverListener(listener), |tcp| {
                std::future::ready(Ok(Stream::from(tcp)))
            })
            .await;
    }

    /// Serves HTTPS on `listener`, as [`serve`](Self::serve) does HTTP: each connection's TLS
    /// handshake runs in that connection's task, bounded by
    /// [`idle_timeout`](HandlerConfig::idle_timeout), so a slow client never stalls the
    /// others. Redirects to the leader use [`HandlerConfig::scheme`]: `http` by default, as the
    /// Go package writes them even over TLS (Go clients can only follow those; ours follow
    /// both). A client that sends plain HTTP gets Go's `400 Bad Request` ("Client sent an HTTP
    /// request to an HTTPS server") instead of a TLS alert.
    /// For mutual TLS, build the acceptor's config with a client verifier
    /// (`WebPkiClientVerifier`); inbound streams then carry the client's
    /// [`peer_certificates`](Stream::peer_certificates).
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use rafthttp_smol::Handler;
    /// use rafthttp_smol::futures_rustls::TlsAcceptor;
    /// use rafthttp_smol::rustls::ServerConfig;
    /// use rafthttp_smol::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    ///
    /// # async fn run(
    /// #     chain: Vec<CertificateDer<'static>>,
    /// #     key: PrivateKeyDer<'static>,
    /// # ) -> Result<(), Box<dyn std::error::Error>> {
    /// let provider = Arc::new(rafthttp_smol::rustls::crypto::ring::default_provider());
    /// let config = ServerConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_no_client_auth()
    ///     .with_single_cert(chain, key)?;
    /// let listener = smol::net::TcpListener::bind("0.0.0.0:8443").await?;
    /// let handler: Handler = Handler::new();
    /// let acceptor = TlsAcceptor::from(Arc::new(config));
    /// smol::spawn({
    ///     let handler = handler.clone();
    ///     async move { handler.serve_tls(listener, acceptor).await }
    /// })
    /// .detach();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn serve_tls(&self, listener: TcpListener, acceptor: TlsAcceptor) {
        let listener = DriverListener(listener);
        self.inner
            .serve_with(self.rt.clone(), listener, |mut tcp: TcpStream| {
                let acceptor = acceptor.clone();
                async move {
                    let mut first = [0u8; 1];
                    let n = tcp.peek(&mut first).await?;
                    driver::refuse_plain_http(&first[..n], &mut tcp).await?;
                    Ok(Stream::from(TlsStream::from(acceptor.accept(tcp).await?)))
                }
            })
            .await;
    }

    /// Serves one connection accepted elsewhere (for an application with its own accept loop).
    pub async fn serve_connection(&self, stream: Stream, peer: SocketAddr) {
        self.inner.serve_connection(&self.rt, stream, peer).await;
    }

    /// The next upgraded connection.
    ///
    /// # Errors
    /// An [`io::ErrorKind::UnexpectedEof`] error once the handler is closed.
    pub async fn accept(&self) -> io::Result<Stream> {
        self.inner.accept().await.map(Stream::from_upgraded)
    }

    /// Closes the handler: `accept()` ends, queued connections are closed, waiting membership
    /// requests are answered 403 `raft transport closed`, `requests()` ends. Idempotent.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether the handler is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// One node's Raft network endpoint: accept, dial, join, leave.
#[derive(Debug, Clone)]
pub struct Layer<D = TcpDialer, R = SmolRuntime> {
    inner: driver::Layer<R, Stream, DriverDialer<D>>,
    handler: Handler<R>,
}

impl<D: Dialer, R: Runtime> Layer<D, R> {
    /// A layer for the node whose HTTP endpoint is `addr` (`host:port`, the address it gives
    /// when joining), accepting from `handler` and dialing with `dialer`. The Raft path is the
    /// handler's.
    ///
    /// # Errors
    /// When `addr` is not a `host:port` authority.
    pub fn new(addr: &str, handler: Handler<R>, dialer: D) -> Result<Self, InputError> {
        Ok(Self {
            inner: driver::Layer::new(
                handler.rt.clone(),
                addr,
                handler.inner.clone(),
                DriverDialer(dialer),
            )?,
            handler,
        })
    }

    /// Adds a header field to every request this layer sends (dial, join, leave), for example
    /// credentials for the other nodes' authorization hook
    /// ([`HandlerConfig::with_authorization`]).
    ///
    /// # Errors
    /// When the name is not a token, the value holds control characters, or the field is one
    /// the client writes itself (`Host`, `Upgrade`, ...).
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, InputError> {
        self.inner = self.inner.with_header(name, value)?;
        Ok(self)
    }

    /// The next inbound Raft connection.
    ///
    /// # Errors
    /// An [`io::ErrorKind::UnexpectedEof`] error once the layer is closed.
    pub async fn accept(&self) -> io::Result<Stream> {
        self.handler.accept().await
    }

    /// Opens a Raft connection to `addr` within `timeout` (connect and handshake together).
    ///
    /// # Errors
    /// See [`DialError`].
    pub async fn dial(&self, addr: &str, timeout: Duration) -> Result<Stream, DialError> {
        self.inner
            .dial(addr, timeout)
            .await
            .map(Stream::from_upgraded)
    }

    /// Asks the node at `target` to add server `id` at [`addr`](Self::addr), following
    /// redirects to the leader and retrying while it is unknown, within `timeout`.
    ///
    /// # Errors
    /// See [`MembershipError`].
    pub async fn join(
        &self,
        id: &str,
        target: &str,
        timeout: Duration,
    ) -> Result<(), MembershipError> {
        self.inner.join(id, target, timeout).await
    }

    /// Asks the node at `target` to remove server `id`, within `timeout`.
    ///
    /// # Errors
    /// See [`MembershipError`].
    pub async fn leave(
        &self,
        id: &str,
        target: &str,
        timeout: Duration,
    ) -> Result<(), MembershipError> {
        self.inner.leave(id, target, timeout).await
    }

    /// This node's address.
    pub fn addr(&self) -> &str {
        self.inner.addr()
    }

    /// The handler.
    pub fn handler(&self) -> &Handler<R> {
        &self.handler
    }

    /// Closes the layer (its handler). Idempotent.
    pub fn close(&self) {
        self.inner.close();
    }
}

/// Sends one membership request like the Go package's `ChangeMembership`: asks the node at
/// `target` to apply `kind` for server `id` at `address`, following redirects and retrying 503
/// within `timeout`.
///
/// # Errors
/// See [`MembershipError`].
pub async fn change_membership<D: Dialer>(
    kind: ChangeKind,
    path: &RaftPath,
    dialer: &D,
    id: &str,
    address: &str,
    target: &str,
    timeout: Duration,
) -> Result<(), MembershipError> {
    driver::change_membership(
        &SmolRuntime,
        &DriverDialer(dialer),
        kind,
        path,
        id,
        address,
        target,
        timeout,
        &driver::ClientConfig::default(),
    )
    .await
}
