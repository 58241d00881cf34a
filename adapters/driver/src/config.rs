//! Handler configuration.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rafthttp_core::membership::{DEFAULT_FIRST_BACKOFF, DEFAULT_MAX_BACKOFF};
use rafthttp_core::server::CLUSTER_ID_HEADER;
use rafthttp_core::{
    ClusterId, ExtraHeaders, InputError, Limits, RaftPath, RequestHead, Response, Scheme,
};

/// Why the authorization hook refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// `401 Unauthorized`: credentials are missing or wrong. `challenge` is the
    /// `WWW-Authenticate` value (for example `Bearer realm="raft"`).
    Unauthorized {
        /// The `WWW-Authenticate` challenge.
        challenge: String,
        /// The body text.
        message: String,
    },
    /// `403 Forbidden`: this client may not do this.
    Forbidden {
        /// The body text.
        message: String,
    },
}

impl Refusal {
    /// The response that carries the refusal.
    pub fn response(&self) -> Response {
        match self {
            Self::Unauthorized { challenge, message } => {
                Response::unauthorized(challenge, message.clone())
            }
            Self::Forbidden { message } => Response::forbidden(message.clone()),
        }
    }
}

/// The authorization hook of a handler: it sees the head of every Raft upgrade and membership
/// request before anything happens (no accept slot is reserved, the application is not asked)
/// and may refuse it.
#[derive(Clone)]
pub struct Authorizer(Arc<AuthorizeFn>);

type AuthorizeFn = dyn Fn(&RequestHead<'_>) -> Result<(), Refusal> + Send + Sync;

/// Answers the requests for other paths than the Raft path in the standalone server (a health
/// check, a small API), instead of 404.
#[derive(Clone)]
pub struct Fallback(Arc<FallbackFn>);

type FallbackFn =
    dyn Fn(FallbackRequest) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync;

impl Fallback {
    /// Runs the fallback.
    pub async fn respond(&self, request: FallbackRequest) -> Response {
        (self.0)(request).await
    }
}

/// A request for another path than the Raft path, as the standalone server hands it to the
/// [`Fallback`]: owned, so the answer can take its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl FallbackRequest {
    /// The request's head and body, copied.
    pub fn new(head: &RequestHead<'_>, body: &[u8]) -> Self {
        Self {
            method: head.method().to_owned(),
            path: head.path().to_owned(),
            query: head.query().to_owned(),
            headers: head
                .headers()
                .iter()
                .map(|h| (h.name.to_owned(), h.value.to_vec()))
                .collect(),
            body: body.to_vec(),
        }
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query, without `?` (empty when there is none).
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The first header field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The body, read whole (at most [`Limits::max_body`] bytes).
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl fmt::Debug for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fallback")
    }
}

impl Authorizer {
    /// Runs the hook.
    ///
    /// # Errors
    /// The hook's refusal.
    pub fn check(&self, head: &RequestHead<'_>) -> Result<(), Refusal> {
        (self.0)(head)
    }
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authorizer")
    }
}

/// How a [`Handler`](crate::Handler) behaves. Build it with [`Default`] and the setters.
///
/// ```
/// use std::time::Duration;
/// use rafthttp_driver::HandlerConfig;
///
/// let config = HandlerConfig::default()
///     .with_path("/cluster/raft")
///     .unwrap()
///     .with_timeout(Duration::from_secs(5));
/// assert_eq!(config.path.as_str(), "/cluster/raft");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HandlerConfig {
    /// The path the Raft handler answers on (default `/raft`).
    pub path: RaftPath,
    /// How long an upgraded connection waits to be accepted, and how long a membership request
    /// waits to be handed over and answered (default 10 s, as in Go).
    pub timeout: Duration,
    /// Upgraded connections waiting for `accept()` at most; more are refused with 503
    /// (default 64).
    pub accept_queue: usize,
    /// Membership requests waiting to be taken from `requests()` at most; a request that finds
    /// the queue full waits for room within its timeout (default 64).
    pub requests_queue: usize,
    /// Limits on request heads (default 8 KiB, 32 fields) and on the bodies the standalone
    /// server reads (default 64 KiB; larger bodies get 413 and the connection is closed).
    pub limits: Limits,
    /// How long the standalone server waits for the next request on a kept-alive connection,
    /// for a body, and for a write to complete (default 30 s).
    pub idle_timeout: Duration,
    /// Connections the standalone server serves at once (default 1024). At the cap, the
    /// connection that has waited longest for its first complete head is shed to make room;
    /// when none is waiting, the newcomer is closed at once.
    pub max_connections: usize,
    /// How long a request head may take to arrive in full (default 5 s), like Go's
    /// `ReadHeaderTimeout`: from the accept for a connection's first request (a TLS handshake
    /// counts), from its first byte for the next ones. Separate from the
    /// [`idle_timeout`](Self::idle_timeout) a kept-alive connection may wait between requests,
    /// so a client sending a byte now and then cannot hold a connection for long.
    pub head_timeout: Duration,
    /// Connections from one source address that may wait for their first complete head at
    /// once (default 256); more from that address are closed at once. Behind a reverse proxy
    /// every peer shares the proxy's address: the default leaves room for a cluster's worth of
    /// simultaneous dials and joins through one proxy, while a single source still cannot take
    /// all [`max_connections`](Self::max_connections).
    pub max_waiting_per_source: usize,
    /// Scheme of the `Location` of redirects to the leader, wherever the handler serves:
    /// [`Handler::serve`](crate::Handler::serve), [`Handler::serve_with`](crate::Handler::serve_with)
    /// (the runtime crates' `serve_tls`), [`Handler::serve_connection`](crate::Handler::serve_connection)
    /// and [`Handler::change`](crate::Handler::change) (the hyper mount).
    ///
    /// The default is `http`, even over TLS, because that is what the Go package writes and what
    /// Go clients can follow: they dial every URL with their TLS dial function, and an `https`
    /// URL makes them start TLS again inside it. rafthttp's own TLS clients follow both.
    /// Choose `https` when the callers are generic HTTP clients (curl `-L`, a browser, a proxy
    /// health check) that pick the transport from the URL.
    pub scheme: Scheme,
    /// The authorization hook, if any (default none: every request is allowed, as in Go).
    pub authorizer: Option<Authorizer>,
    /// The cluster this handler belongs to, if set (default none). Raft upgrades and
    /// membership requests naming another cluster in `Raft-Cluster-Id` are refused with 412,
    /// after the authorization hook and before an accept slot is reserved; requests with no
    /// id are allowed unless the [`ClusterId`] says otherwise (Go peers send none). A
    /// [`Layer`](crate::front::Layer) over this handler sends the id on dial, join and leave.
    pub cluster_id: Option<ClusterId>,
    /// What the standalone server answers on other paths (default none: 404).
    pub fallback: Option<Fallback>,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        Self {
            path: RaftPath::default(),
            timeout: Duration::from_secs(10),
            accept_queue: 64,
            requests_queue: 64,
            limits: Limits::default(),
            idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
            head_timeout: Duration::from_secs(5),
            max_waiting_per_source: 256,
            scheme: Scheme::Http,
            authorizer: None,
            cluster_id: None,
            fallback: None,
        }
    }
}

impl HandlerConfig {
    /// Sets the Raft path.
    ///
    /// # Errors
    /// When `path` is not an absolute path of visible ASCII.
    pub fn with_path(mut self, path: &str) -> Result<Self, rafthttp_core::InputError> {
        self.path = RaftPath::new(path)?;
        Ok(self)
    }

    /// Sets the accept and membership timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the accept queue bound (at least 1).
    #[must_use]
    pub fn with_accept_queue(mut self, bound: usize) -> Self {
        self.accept_queue = bound.max(1);
        self
    }

    /// Sets the membership request queue bound (at least 1).
    #[must_use]
    pub fn with_requests_queue(mut self, bound: usize) -> Self {
        self.requests_queue = bound.max(1);
        self
    }

    /// Sets the request head limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the largest request body the standalone server reads ([`Limits::max_body`]).
    #[must_use]
    pub fn with_max_body(mut self, bytes: u64) -> Self {
        self.limits = self.limits.with_max_body(bytes);
        self
    }

    /// Sets the idle timeout of the standalone server.
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets how long a request head may take to arrive (see [`head_timeout`](Self::head_timeout)).
    #[must_use]
    pub fn with_head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = timeout;
        self
    }

    /// Sets how many connections from one source may wait for their first head at once (at
    /// least 1; see [`max_waiting_per_source`](Self::max_waiting_per_source)).
    #[must_use]
    pub fn with_max_waiting_per_source(mut self, max: usize) -> Self {
        self.max_waiting_per_source = max.max(1);
        self
    }

    /// Sets how many connections the standalone server serves at once (at least 1).
    #[must_use]
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Sets the authorization hook: it sees the head of every Raft upgrade and membership
    /// request (headers such as `Authorization`, the method, the target) and may refuse it with
    /// 401 or 403, before an accept slot is reserved or the application is asked.
    ///
    /// ```
    /// use rafthttp_driver::{HandlerConfig, Refusal};
    ///
    /// let config = HandlerConfig::default().with_authorization(|head| {
    ///     match head.headers().get("authorization") {
    ///         Some(b"Bearer s3cret") => Ok(()),
    ///         Some(_) => Err(Refusal::Forbidden { message: "wrong token".into() }),
    ///         None => Err(Refusal::Unauthorized {
    ///             challenge: "Bearer realm=\"raft\"".into(),
    ///             message: "token required".into(),
    ///         }),
    ///     }
    /// });
    /// # drop(config);
    /// ```
    #[must_use]
    pub fn with_authorization(
        mut self,
        hook: impl Fn(&RequestHead<'_>) -> Result<(), Refusal> + Send + Sync + 'static,
    ) -> Self {
        self.authorizer = Some(Authorizer(Arc::new(hook)));
        self
    }

    /// Sets what the standalone server answers on paths other than the Raft path (404 by
    /// default): an async handler given the request, body included (read whole, within
    /// [`Limits::max_body`]), for a health check or a small API in a binary with no other HTTP
    /// server. Behind axum or hyper, route other paths there instead.
    ///
    /// [`Response::text`] answers in Go's `http.Error` format (plain text and a newline);
    /// [`Response::new`] with [`with_body`](Response::with_body) sends a body as it is, with
    /// its content type, and [`with_header`](Response::with_header) adds fields.
    ///
    /// ```
    /// use rafthttp_driver::HandlerConfig;
    /// use rafthttp_driver::core::Response;
    ///
    /// let config = HandlerConfig::default().with_fallback(|request| async move {
    ///     match (request.method(), request.path()) {
    ///         ("GET", "/health") => Response::text(200, "ok"),
    ///         ("PUT", "/echo") => Response::new(200)
    ///             .with_body("application/octet-stream", request.body().to_vec()),
    ///         ("DELETE", "/cache") => Response::new(204),
    ///         (_, "/echo") => Response::text(405, "PUT only").with_header("Allow", "PUT"),
    ///         _ => Response::not_found(),
    ///     }
    /// });
    /// # drop(config);
    /// ```
    #[must_use]
    pub fn with_fallback<F, Fut>(mut self, fallback: F) -> Self
    where
        F: Fn(FallbackRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        self.fallback = Some(Fallback(Arc::new(move |request| {
            Box::pin(fallback(request))
        })));
        self
    }

    /// Sets the cluster id (see [`cluster_id`](Self::cluster_id)).
    ///
    /// ```
    /// use rafthttp_driver::HandlerConfig;
    /// use rafthttp_driver::core::{ClusterId, MissingClusterId};
    ///
    /// let id = ClusterId::new("prod-eu-1").unwrap().with_missing(MissingClusterId::Refuse);
    /// let config = HandlerConfig::default().with_cluster_id(id);
    /// # drop(config);
    /// ```
    #[must_use]
    pub fn with_cluster_id(mut self, id: ClusterId) -> Self {
        self.cluster_id = Some(id);
        self
    }

    /// Sets the scheme of redirect locations (see [`scheme`](Self::scheme)).
    #[must_use]
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }
}

/// How the client side (dial, join, leave) behaves. Build it with [`Default`] and the setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Limits on response heads.
    pub limits: Limits,
    /// Header fields added to every upgrade and membership request (redirects included).
    pub headers: ExtraHeaders,
    /// The first wait before a join or leave is sent again (after a 503, or after a connection
    /// failure behind a redirect); it doubles up to [`max_backoff`](Self::max_backoff), and
    /// each wait is jittered to between half and all of it (default 50 ms).
    pub first_backoff: Duration,
    /// The longest such wait (default 1 s).
    pub max_backoff: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            headers: ExtraHeaders::default(),
            first_backoff: DEFAULT_FIRST_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

impl ClientConfig {
    /// Sets the first and the longest wait between membership attempts.
    #[must_use]
    pub fn with_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first_backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// Sets the limits on response heads.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sends `id` as `Raft-Cluster-Id` on every request, for handlers that check it.
    #[must_use]
    pub fn with_cluster_id(mut self, id: &ClusterId) -> Self {
        // A ClusterId is visible ASCII and the field name a token: this cannot fail.
        if let Ok(headers) = self.headers.clone().with(CLUSTER_ID_HEADER, id.as_str()) {
            self.headers = headers;
        }
        self
    }

    /// Adds a header field to every request, for example credentials for the server's
    /// authorization hook (`Authorization: Bearer ...`).
    ///
    /// # Errors
    /// See [`ExtraHeaders::with`].
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, InputError> {
        self.headers = self.headers.with(name, value)?;
        Ok(self)
    }
}
