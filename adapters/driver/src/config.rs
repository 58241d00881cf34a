//! Handler configuration.

use std::time::Duration;

use rafthttp_core::{Limits, RaftPath, Scheme};

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
    /// Limits on request heads (default 8 KiB, 32 fields).
    pub limits: Limits,
    /// Largest request body the standalone server reads and discards (default 64 KiB; larger
    /// bodies get 413 and the connection is closed).
    pub max_body: u64,
    /// How long the standalone server waits for the next request on an idle connection, and
    /// for a request head to arrive in full (default 30 s).
    pub idle_timeout: Duration,
    /// Connections the standalone server serves at once; more are closed at once (default 1024).
    pub max_connections: usize,
    /// Scheme of the `Location` of redirects to the leader written by
    /// [`Handler::serve`](crate::Handler::serve), [`Handler::serve_connection`](crate::Handler::serve_connection),
    /// [`Handler::change`](crate::Handler::change) and so the hyper mount (default `http`).
    /// Set `https` when TLS is terminated in front of them. [`Handler::serve_with`](crate::Handler::serve_with),
    /// and so the runtime crates' `serve_tls`, take the scheme as an argument instead (`https`).
    pub scheme: Scheme,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        Self {
            path: RaftPath::default(),
            timeout: Duration::from_secs(10),
            accept_queue: 64,
            requests_queue: 64,
            limits: Limits::default(),
            max_body: 64 * 1024,
            idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
            scheme: Scheme::Http,
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

    /// Sets the largest request body skipped.
    #[must_use]
    pub fn with_max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sets the idle timeout of the standalone server.
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets how many connections the standalone server serves at once (at least 1).
    #[must_use]
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Sets the scheme of redirect locations.
    #[must_use]
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }
}
