//! The user-facing types every runtime crate exposes, written once: a runtime crate implements
//! [`Front`] (its sockets and stream type) and, when it offers TLS, [`TlsFront`] (its TLS
//! acceptor and connector), and names these types with aliases, in the manner of quinn's
//! `generic` module.

use std::fmt;
use std::future::{Future, ready};
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use rafthttp_core::{InputError, Scheme, check_authority, tls};

use crate::client::{ChangeMembership, change_membership as change, dial};
use crate::config::ClientConfig;
use crate::error::{DialError, MembershipError};
use crate::handler::{Handler as Core, Upgraded};
use crate::prefix::Prefix;
use crate::request::Requests;
use crate::{Connection, HandlerConfig, Listener, Runtime};

/// What a runtime crate provides: its timer and spawn ([`Runtime`]), and the few conversions
/// between its socket and stream types and the driver's. Every method is a one-line
/// delegation to the runtime's own types.
pub trait Front: Runtime + Default {
    /// The stream users get from `accept()` and `dial()`, with the runtime's IO traits, the
    /// bytes read past the HTTP head replayed first.
    type Stream: Send + 'static;
    /// The stream as the driver speaks HTTP over it (futures-io): the `Stream` itself, or a
    /// compat wrapper around it.
    type Conn: Connection;
    /// The runtime's TCP listener.
    type Listener: Send + 'static;
    /// A socket the listener accepted.
    type Tcp: Send + 'static;

    /// The next connection on `listener`.
    fn accept(
        listener: &mut Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Tcp, SocketAddr)>> + Send;

    /// A plain TCP stream from an accepted socket.
    fn plain(tcp: Self::Tcp) -> Self::Stream;

    /// The stream, for the driver.
    fn conn(stream: Self::Stream) -> Self::Conn;

    /// The stream back from the driver, with the bytes read past the head.
    fn stream(upgraded: Upgraded<Self::Conn>) -> Self::Stream;

    /// Connects a TCP socket to `authority` (with `TCP_NODELAY`).
    fn connect(authority: &str) -> impl Future<Output = io::Result<Self::Tcp>> + Send;
}

/// A runtime crate's TLS binding (rustls through tokio-rustls or futures-rustls), behind its
/// `tls` feature: [`Handler::serve_tls`] and [`TlsDialer`] exist for fronts that implement it.
pub trait TlsFront: Front {
    /// The TLS acceptor `serve_tls` takes.
    type Acceptor: Clone + Send + Sync + 'static;

    /// A TLS stream from an accepted socket: answers plain HTTP as Go does
    /// ([`refuse_plain_http`](crate::refuse_plain_http)), then runs the server handshake.
    fn tls(
        acceptor: Self::Acceptor,
        tcp: Self::Tcp,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send + 'static;

    /// What a [`TlsDialer`] is built from: the TLS library's client configuration.
    type ClientTls: Send + Sync + 'static;
    /// The TLS library's connector, made once from a [`ClientTls`](Self::ClientTls).
    type Connector: From<Self::ClientTls> + Clone + Send + Sync + 'static;
    /// The name the server's certificate is checked against, from a host.
    type ServerName: TryFrom<String, Error: std::error::Error + Send + Sync + 'static> + Send;

    /// Runs the client handshake on `tcp`, checking the server's certificate against `name`.
    fn handshake(
        connector: &Self::Connector,
        name: Self::ServerName,
        tcp: Self::Tcp,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// TLS over TCP on runtime `F`: the server's certificate is checked against the host of the
/// authority dialed (a DNS name or an IP address). Membership redirects are followed over TLS
/// whether their Location says `http` (what Go and, by default, our `serve_tls` write) or
/// `https`; the certificate is checked against the Location's host.
pub struct TlsDialer<F: TlsFront> {
    connector: F::Connector,
}

impl<F: TlsFront> TlsDialer<F> {
    /// A dialer with the TLS library's client configuration (for rustls, an
    /// `Arc<rustls::ClientConfig>`; for mutual TLS, one with a client certificate).
    pub fn new(config: F::ClientTls) -> Self {
        Self {
            connector: config.into(),
        }
    }
}

impl<F: TlsFront> Clone for TlsDialer<F> {
    fn clone(&self) -> Self {
        Self {
            connector: self.connector.clone(),
        }
    }
}

impl<F: TlsFront> fmt::Debug for TlsDialer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsDialer").finish_non_exhaustive()
    }
}

impl<F: TlsFront> Dialer<F::Stream> for TlsDialer<F> {
    async fn connect(&self, authority: &str) -> io::Result<F::Stream> {
        let invalid = |e| io::Error::new(io::ErrorKind::InvalidInput, e);
        let host = tls::server_name(authority).map_err(|e| invalid(e.to_string()))?;
        let name = F::ServerName::try_from(host.to_owned())
            .map_err(|e| invalid(tls::invalid_name(host, &e)))?;
        let tcp = F::connect(authority).await?;
        F::handshake(&self.connector, name, tcp)
            .await
            .map_err(|e| io::Error::new(e.kind(), tls::handshake_failed(authority, &e)))
    }

    fn scheme(&self) -> Scheme {
        Scheme::Https
    }
}

/// Opens connections for a [`Layer`]'s dial, join and leave: plain TCP, TLS, or anything that
/// yields the runtime's stream type `S`.
pub trait Dialer<S>: Send + Sync {
    /// Connects to `authority` (`host:port`). The caller bounds the time it may take.
    fn connect(&self, authority: &str) -> impl Future<Output = io::Result<S>> + Send;

    /// `https` for a TLS dialer, which follows `http` and `https` membership redirects alike
    /// (over TLS, as the Go client does); a plain dialer refuses `https` ones.
    fn scheme(&self) -> Scheme {
        Scheme::Http
    }
}

impl<S, D: Dialer<S> + ?Sized> Dialer<S> for &D {
    fn connect(&self, authority: &str) -> impl Future<Output = io::Result<S>> + Send {
        (**self).connect(authority)
    }

    fn scheme(&self) -> Scheme {
        (**self).scheme()
    }
}

/// A front's dialer as the driver sees it.
struct Adapted<F, D>(D, PhantomData<fn() -> F>);

impl<F: Front, D: Dialer<F::Stream>> crate::Dialer for Adapted<F, D> {
    type Conn = F::Conn;

    async fn connect(&self, authority: &str) -> io::Result<F::Conn> {
        self.0.connect(authority).await.map(F::conn)
    }

    fn scheme(&self) -> Scheme {
        self.0.scheme()
    }
}

struct Accepting<F: Front>(F::Listener);

impl<F: Front> Listener for Accepting<F> {
    type Conn = F::Tcp;

    fn accept(&mut self) -> impl Future<Output = io::Result<(F::Tcp, SocketAddr)>> + Send {
        F::accept(&mut self.0)
    }
}

/// The Raft side of an HTTP server, on runtime `F`: it upgrades Raft connections into an
/// accept queue and hands membership requests to the application. Cheap to clone; clones
/// share everything.
pub struct Handler<F: Front> {
    inner: Core<F::Conn>,
    rt: F,
}

impl<F: Front> Clone for Handler<F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            rt: self.rt.clone(),
        }
    }
}

impl<F: Front> fmt::Debug for Handler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<F: Front> Default for Handler<F> {
    fn default() -> Self {
        Self::with_config(HandlerConfig::default())
    }
}

impl<F: Front> Handler<F> {
    /// A handler with the default configuration (path `/raft`, 10 s timeout).
    pub fn new() -> Self {
        Self::default()
    }

    /// A handler with `config`.
    pub fn with_config(config: HandlerConfig) -> Self {
        Self {
            inner: Core::new(config),
            rt: F::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HandlerConfig {
        self.inner.config()
    }

    /// The membership requests for the application to answer (bounded, multi-consumer). Ends
    /// after [`close`](Self::close).
    pub fn requests(&self) -> Requests {
        self.inner.requests()
    }

    /// Serves HTTP on `listener`: the Raft path is handled, other paths get 404 (or the
    /// configured fallback). Runs until the future is dropped (after [`close`](Self::close) it
    /// answers 403 `raft transport closed`). Redirects to the leader use
    /// [`HandlerConfig::scheme`] (default `http`).
    pub async fn serve(&self, listener: F::Listener) {
        let plain = |tcp| ready(Ok(F::conn(F::plain(tcp))));
        self.inner
            .serve_with(self.rt.clone(), Accepting::<F>(listener), plain)
            .await;
    }

    /// Serves one connection accepted elsewhere (for an application with its own accept loop).
    pub async fn serve_connection(&self, stream: F::Stream, peer: SocketAddr) {
        self.inner
            .serve_connection(&self.rt, F::conn(stream), peer)
            .await;
    }

    /// The next upgraded connection.
    ///
    /// # Errors
    /// An [`io::ErrorKind::UnexpectedEof`] error once the handler is closed (Go returns
    /// `io.EOF`).
    pub async fn accept(&self) -> io::Result<F::Stream> {
        self.inner.accept().await.map(F::stream)
    }

    /// Closes the handler, in the Go package's order: `accept()` ends, queued connections are
    /// closed, waiting membership requests are answered 403 `raft transport closed`,
    /// `requests()` ends. Idempotent.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether the handler is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The driver's handler, for an HTTP server in front (the hyper mount).
    pub fn driver(&self) -> &Core<F::Conn> {
        &self.inner
    }

    /// The runtime.
    pub fn runtime(&self) -> &F {
        &self.rt
    }
}

impl<F: TlsFront> Handler<F> {
    /// Serves HTTPS on `listener`, as [`serve`](Self::serve) does HTTP: each connection's TLS
    /// handshake runs in that connection's task, bounded by
    /// [`idle_timeout`](HandlerConfig::idle_timeout), so a slow client never stalls the others.
    /// Redirects to the leader use [`HandlerConfig::scheme`]: `http` by default, as the Go
    /// package writes them even over TLS (Go clients can only follow those; ours follow both).
    /// A client that sends plain HTTP gets Go's `400 Bad Request` ("Client sent an HTTP request
    /// to an HTTPS server") instead of a TLS alert. For mutual TLS, build the acceptor's config
    /// with a client verifier (`WebPkiClientVerifier`); inbound streams then carry the
    /// client's certificates.
    pub async fn serve_tls(&self, listener: F::Listener, acceptor: F::Acceptor) {
        let tls = move |tcp| {
            let accept = F::tls(acceptor.clone(), tcp);
            async move { accept.await.map(F::conn) }
        };
        self.inner
            .serve_with(self.rt.clone(), Accepting::<F>(listener), tls)
            .await;
    }
}

/// One node's Raft network endpoint on runtime `F`: inbound Raft connections come from its
/// [`Handler`], outbound ones are dialed over HTTP upgrade with `D`, and it asks other nodes to
/// add or remove it.
pub struct Layer<F: Front, D> {
    addr: String,
    handler: Handler<F>,
    dialer: Adapted<F, D>,
    client: ClientConfig,
}

impl<F: Front, D: Clone> Clone for Layer<F, D> {
    fn clone(&self) -> Self {
        Self {
            addr: self.addr.clone(),
            handler: self.handler.clone(),
            dialer: Adapted(self.dialer.0.clone(), PhantomData),
            client: self.client.clone(),
        }
    }
}

impl<F: Front, D> fmt::Debug for Layer<F, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layer")
            .field("addr", &self.addr)
            .field("handler", &self.handler)
            .finish_non_exhaustive()
    }
}

impl<F: Front, D: Dialer<F::Stream>> Layer<F, D> {
    /// A layer for the node reachable at `addr` (`host:port` of its HTTP endpoint, the address
    /// it gives when joining), taking inbound connections from `handler` and dialing with
    /// `dialer`. The Raft path is the handler's, and so is the cluster id it sends.
    ///
    /// # Errors
    /// [`InputError::Authority`] when `addr` is not a `host:port` authority.
    pub fn new(addr: &str, handler: impl Into<Handler<F>>, dialer: D) -> Result<Self, InputError> {
        check_authority(addr)?;
        let handler = handler.into();
        let mut client = ClientConfig::default().with_limits(handler.config().limits);
        if let Some(id) = &handler.config().cluster_id {
            client = client.with_cluster_id(id);
        }
        Ok(Self {
            addr: addr.to_owned(),
            handler,
            dialer: Adapted(dialer, PhantomData),
            client,
        })
    }

    /// Adds a header field to every request this layer sends (dial, join, leave), for example
    /// credentials for the other nodes' authorization hook.
    ///
    /// # Errors
    /// See [`ExtraHeaders::with`](rafthttp_core::ExtraHeaders::with).
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, InputError> {
        self.client = self.client.with_header(name, value)?;
        Ok(self)
    }

    /// Sets the first and the longest wait between join or leave attempts (default 50 ms and
    /// 1 s; see [`ClientConfig::first_backoff`]).
    pub fn with_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.client = self.client.with_backoff(first, max);
        self
    }

    /// The next inbound Raft connection.
    ///
    /// # Errors
    /// An [`io::ErrorKind::UnexpectedEof`] error once the layer is closed.
    pub async fn accept(&self) -> io::Result<F::Stream> {
        self.handler.accept().await
    }

    /// Opens a Raft connection to the node at `addr`, within `timeout` (connect and handshake).
    ///
    /// # Errors
    /// See [`DialError`].
    pub async fn dial(&self, addr: &str, timeout: Duration) -> Result<F::Stream, DialError> {
        let path = &self.handler.config().path;
        let rt = &self.handler.rt;
        let upgraded = dial(rt, &self.dialer, path, addr, timeout, &self.client).await?;
        Ok(F::stream(upgraded))
    }

    /// Asks the node at `target` to add server `id` at this layer's [`addr`](Self::addr),
    /// following redirects to the leader and retrying while it is unknown, within `timeout`.
    ///
    /// # Errors
    /// See [`MembershipError`].
    pub async fn join(
        &self,
        id: &str,
        target: &str,
        timeout: Duration,
    ) -> Result<(), MembershipError> {
        let request = ChangeMembership::join(id, &self.addr);
        self.change(request, target, timeout).await
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
        self.change(ChangeMembership::leave(id), target, timeout)
            .await
    }

    async fn change(
        &self,
        request: ChangeMembership,
        target: &str,
        timeout: Duration,
    ) -> Result<(), MembershipError> {
        let request = request
            .target(target)
            .timeout(timeout)
            .path(self.handler.config().path.clone())
            .config(self.client.clone());
        change(&self.handler.rt, &self.dialer, &request).await
    }

    /// This node's address, as given.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The handler behind the layer.
    pub fn handler(&self) -> &Handler<F> {
        &self.handler
    }

    /// The dialer.
    pub fn dialer(&self) -> &D {
        &self.dialer.0
    }

    /// Closes the layer's handler (see [`Handler::close`]). Idempotent.
    pub fn close(&self) {
        self.handler.close();
    }
}

/// Sends one membership request, like the Go package's `ChangeMembership`, with `dialer` on
/// runtime `F` (see [`ChangeMembership`] and [`crate::change_membership`]).
///
/// # Errors
/// See [`MembershipError`].
pub async fn change_membership<F: Front, D: Dialer<F::Stream>>(
    dialer: &D,
    request: &ChangeMembership,
) -> Result<(), MembershipError> {
    change(
        &F::default(),
        &Adapted::<F, &D>(dialer, PhantomData),
        request,
    )
    .await
}

/// Who is at the other end of a stream that cannot say itself: one that arrived through an
/// HTTP server in front (a mounted handler). The application inserts it as a request extension
/// (its TLS acceptor knows the certificates), or the mount takes the address from axum's
/// `ConnectInfo`. `C` is the TLS library's certificate type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo<C> {
    /// The peer's address.
    pub addr: SocketAddr,
    /// The certificate chain the peer presented, the peer's own first; empty without TLS.
    pub certificates: Vec<C>,
}

impl<C> PeerInfo<C> {
    /// A peer at `addr` that presented no certificate.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            certificates: Vec::new(),
        }
    }
}

/// The inside of a runtime's stream type: plain TCP (`T`), TLS over TCP (`L`) or any other
/// stream (`O`, a trait object of the runtime's IO traits), and the bytes read past the HTTP
/// head, replayed first; for another stream, who the peer is when known ([`PeerInfo`] of
/// certificates `C`). The runtime crates wrap it and forward their IO traits to
/// [`io`](Self::io).
pub struct Streamed<T, L, O: ?Sized, C = std::convert::Infallible> {
    inner: Kind<T, L, O>,
    prefix: Prefix,
    peer: Option<PeerInfo<C>>,
}

enum Kind<T, L, O: ?Sized> {
    Tcp(T),
    Tls(Box<L>),
    Other(Pin<Box<O>>),
}

/// The stream inside a [`Streamed`], pinned, to forward IO to.
#[derive(Debug)]
pub enum Io<'a, T, L, O: ?Sized> {
    /// Plain TCP.
    Tcp(Pin<&'a mut T>),
    /// TLS over TCP.
    Tls(Pin<&'a mut L>),
    /// Another stream.
    Other(Pin<&'a mut O>),
}

impl<T, L, O: ?Sized, C> Streamed<T, L, O, C> {
    /// Plain TCP.
    pub fn from_tcp(tcp: T) -> Self {
        Self::with(Kind::Tcp(tcp))
    }

    /// TLS over TCP.
    pub fn from_tls(tls: L) -> Self {
        Self::with(Kind::Tls(Box::new(tls)))
    }

    /// Another stream.
    pub fn from_other(io: Pin<Box<O>>) -> Self {
        Self::with(Kind::Other(io))
    }

    fn with(inner: Kind<T, L, O>) -> Self {
        Self {
            inner,
            prefix: Prefix::default(),
            peer: None,
        }
    }

    /// The same stream, with who the peer is (for another stream, which cannot say).
    #[must_use]
    pub fn with_peer(mut self, peer: PeerInfo<C>) -> Self {
        self.peer = Some(peer);
        self
    }

    /// Who the peer is, as given by [`with_peer`](Self::with_peer).
    pub fn peer_info(&self) -> Option<&PeerInfo<C>> {
        self.peer.as_ref()
    }

    /// The TCP socket underneath, when the stream is plain TCP.
    pub fn tcp(&self) -> Option<&T> {
        match &self.inner {
            Kind::Tcp(tcp) => Some(tcp),
            Kind::Tls(_) | Kind::Other(_) => None,
        }
    }

    /// The TLS stream, when the stream is TLS.
    pub fn tls(&self) -> Option<&L> {
        match &self.inner {
            Kind::Tls(tls) => Some(tls),
            Kind::Tcp(_) | Kind::Other(_) => None,
        }
    }

    /// The bytes read past the head, not handed out yet.
    pub fn prefix(&mut self) -> &mut Prefix {
        &mut self.prefix
    }

    /// Bytes received behind the HTTP head and not read yet.
    pub fn buffered(&self) -> &[u8] {
        self.prefix.remaining()
    }

    /// The same stream, with `prefix` to replay first.
    #[must_use]
    pub fn replaying(mut self, prefix: Prefix) -> Self {
        self.prefix = prefix;
        self
    }
}

impl<T: Unpin, L: Unpin, O: ?Sized, C> Streamed<T, L, O, C> {
    /// The stream to forward IO to.
    pub fn io(&mut self) -> Io<'_, T, L, O> {
        match &mut self.inner {
            Kind::Tcp(tcp) => Io::Tcp(Pin::new(tcp)),
            Kind::Tls(tls) => Io::Tls(Pin::new(tls.as_mut())),
            Kind::Other(io) => Io::Other(io.as_mut()),
        }
    }
}

impl<T, L, O: ?Sized, C> fmt::Debug for Streamed<T, L, O, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            Kind::Tcp(_) => "tcp",
            Kind::Tls(_) => "tls",
            Kind::Other(_) => "other",
        };
        f.debug_struct("Stream")
            .field("kind", &kind)
            .field("buffered", &self.prefix.remaining().len())
            .field("peer", &self.peer.as_ref().map(|peer| peer.addr))
            .finish()
    }
}

/// Declares a runtime crate's `Stream` over [`Streamed`]: the trait object `Io` for other
/// streams, the `Stream` type with `from_io`, `Deref` to its [`Streamed`] (`tcp()`, `tls()`,
/// `buffered()`), and `From` its TCP stream (with `TCP_NODELAY`: Raft sends small messages and
/// waits for replies). Given a `tls` stream type from a rustls binding (tokio-rustls,
/// futures-rustls), also `From` it and `peer_certificates`; without one, the TLS kind is
/// uninhabited. The crate then forwards its runtime's IO traits to `Stream::io`, reading
/// `Stream::prefix` first: only those impls differ between runtimes, and the orphan rule keeps
/// them (and so the type) in the runtime crate.
#[macro_export]
macro_rules! stream_type {
    (
        tcp: $tcp:ty,
        tls: $tls:ty,
        certificate: $cert:ty,
        io: $read:path, $write:path $(,)?
    ) => {
        $crate::stream_type!(@common $tcp, $tls, $cert, $read, $write);

        impl Stream {
            /// The certificate chain the peer presented, when the stream is TLS and the peer
            /// sent one (a server always does; a client under mutual TLS), or, for a stream
            /// that arrived through a mount, the certificates its [`PeerInfo`] gives. The
            /// first is the peer's own.
            pub fn peer_certificates(&self) -> Option<&[$cert]> {
                match self.0.tls() {
                    Some(tls) => tls.get_ref().1.peer_certificates(),
                    None => self
                        .0
                        .peer_info()
                        .map(|peer| peer.certificates.as_slice())
                        .filter(|certificates| !certificates.is_empty()),
                }
            }

            /// The peer's address: the socket's, or for a stream that arrived through a mount,
            /// its [`PeerInfo`]'s; `None` when unknown.
            pub fn peer_addr(&self) -> Option<::std::net::SocketAddr> {
                match (self.0.tcp(), self.0.tls()) {
                    (Some(tcp), _) => tcp.peer_addr().ok(),
                    (_, Some(tls)) => tls.get_ref().0.peer_addr().ok(),
                    _ => self.0.peer_info().map(|peer| peer.addr),
                }
            }

            /// This side's address, when the stream is a socket of this process (`None` for
            /// a stream that arrived through a mount or a custom dialer).
            pub fn local_addr(&self) -> Option<::std::net::SocketAddr> {
                match (self.0.tcp(), self.0.tls()) {
                    (Some(tcp), _) => tcp.local_addr().ok(),
                    (_, Some(tls)) => tls.get_ref().0.local_addr().ok(),
                    _ => None,
                }
            }

            fn io(self: ::std::pin::Pin<&mut Self>) -> ::std::pin::Pin<&mut dyn Io> {
                match self.get_mut().0.io() {
                    $crate::front::Io::Tcp(tcp) => tcp,
                    $crate::front::Io::Tls(tls) => tls,
                    $crate::front::Io::Other(io) => io,
                }
            }
        }

        impl From<$tls> for Stream {
            fn from(tls: $tls) -> Self {
                let _ = tls.get_ref().0.set_nodelay(true);
                Self($crate::front::Streamed::from_tls(tls))
            }
        }
    };
    (
        tcp: $tcp:ty,
        io: $read:path, $write:path $(,)?
    ) => {
        $crate::stream_type!(@common $tcp, ::std::convert::Infallible, ::std::convert::Infallible, $read, $write);

        impl Stream {
            /// The peer's address: the socket's, or for a stream that arrived through a mount,
            /// its [`PeerInfo`]'s; `None` when unknown.
            pub fn peer_addr(&self) -> Option<::std::net::SocketAddr> {
                match self.0.tcp() {
                    Some(tcp) => tcp.peer_addr().ok(),
                    None => self.0.peer_info().map(|peer| peer.addr),
                }
            }

            /// This side's address, when the stream is a socket of this process (`None` for
            /// a stream that arrived through a mount or a custom dialer).
            pub fn local_addr(&self) -> Option<::std::net::SocketAddr> {
                self.0.tcp()?.local_addr().ok()
            }

            fn io(self: ::std::pin::Pin<&mut Self>) -> ::std::pin::Pin<&mut dyn Io> {
                match self.get_mut().0.io() {
                    $crate::front::Io::Tcp(tcp) => tcp,
                    $crate::front::Io::Tls(tls) => match *tls {},
                    $crate::front::Io::Other(io) => io,
                }
            }
        }
    };
    (@common $tcp:ty, $tls:ty, $cert:ty, $read:path, $write:path) => {
        /// Who is at the other end of a stream that arrived through an HTTP server in front
        /// (see the driver's [`PeerInfo`]($crate::front::PeerInfo)).
        pub type PeerInfo = $crate::front::PeerInfo<$cert>;

        /// The IO traits of a stream a custom dialer returns, as a trait object.
        pub trait Io: $read + $write + Send + 'static {}
        impl<T: $read + $write + Send + 'static> Io for T {}

        /// A Raft connection (or, inside a dialer, a connection about to become one): TCP, TLS
        /// over TCP, or any stream a custom dialer returns. Bytes that arrived behind the HTTP
        /// head are read first. `tcp()`, `tls()` and `buffered()` come from the driver's
        /// [`Streamed`]($crate::front::Streamed).
        #[derive(Debug)]
        pub struct Stream($crate::front::Streamed<$tcp, $tls, dyn Io, $cert>);

        impl Stream {
            /// Wraps any stream (an in-memory pipe, another transport, ...).
            pub fn from_io<T: $read + $write + Send + 'static>(io: T) -> Self {
                Self($crate::front::Streamed::from_other(Box::pin(io)))
            }

            fn prefix(&mut self) -> &mut $crate::Prefix {
                self.0.prefix()
            }

            /// The same stream, with who the peer is (for a stream that cannot say: one a
            /// custom dialer or an HTTP server in front hands over).
            #[must_use]
            pub fn with_peer(self, peer: PeerInfo) -> Self {
                Self(self.0.with_peer(peer))
            }
        }

        impl ::std::ops::Deref for Stream {
            type Target = $crate::front::Streamed<$tcp, $tls, dyn Io, $cert>;

            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl From<$tcp> for Stream {
            fn from(tcp: $tcp) -> Self {
                let _ = tcp.set_nodelay(true);
                Self($crate::front::Streamed::from_tcp(tcp))
            }
        }
    };
}
