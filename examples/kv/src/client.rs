//! A small HTTP client for the key-value service (the launcher's, the drill's, the tests'):
//! pooled keep-alive connections (hyper-util's legacy client), every request bounded by a
//! timeout, `307`/`308` redirects to the leader followed a few times.
//!
//! ```no_run
//! use std::time::Duration;
//! use rafthttp_kv::client::{Client, ClusterQuery, Read};
//!
//! # async fn run() -> Result<(), rafthttp_kv::client::ClientError> {
//! let client = Client::new(Duration::from_secs(5));
//! let written = client.put("127.0.0.1:8080", "greeting", "hello").await?;
//! let value = client
//!     .get(&written.addr, "greeting", Read::local_at(written.result.index))
//!     .await?;
//! assert_eq!(value.as_deref(), Some("hello"));
//! let view = client
//!     .cluster("127.0.0.1:8080", &ClusterQuery::new().after_term(3).wait(Duration::from_secs(10)))
//!     .await?;
//! println!("leader: {:?}", view.leader_addr);
//! # Ok(())
//! # }
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use crate::NodeId;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::app::{ClusterView, WriteResult};

/// The redirects a request follows at most.
pub const MAX_REDIRECTS: usize = 5;

/// The key-value service's client. Cheap to clone; clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: HttpClient<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

/// One answer, as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The `Location` field, if any.
    pub location: Option<String>,
    /// The body, decoded as UTF-8 (lossily).
    pub body: String,
}

/// A write's answer and the node that gave it (the leader, after redirects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The address of the node that answered.
    pub addr: String,
    /// The answer.
    pub result: WriteResult,
}

/// How a [`Client::get`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Through the leader, after it confirmed its leadership (follows redirects).
    Linearizable,
    /// From the node asked, as it is, or once it applied `min_applied` (waiting at most
    /// `wait`, or the server's default).
    Local {
        /// The log index the node must have applied first.
        min_applied: Option<u64>,
        /// The bound on that wait.
        wait: Option<Duration>,
    },
}

impl Read {
    /// A local read of the node's current state.
    pub fn local() -> Self {
        Self::Local {
            min_applied: None,
            wait: None,
        }
    }

    /// A local read once `index` is applied (the server's default wait).
    pub fn local_at(index: u64) -> Self {
        Self::Local {
            min_applied: Some(index),
            wait: None,
        }
    }
}

/// The query of [`Client::cluster`]: a long poll when a condition is named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterQuery {
    /// Answer once a leader is known in a term above this.
    pub after_term: Option<u64>,
    /// Answer once this index is applied.
    pub min_applied: Option<u64>,
    /// The longest wait for the conditions (the server's default when `None`).
    pub wait: Option<Duration>,
}

impl ClusterQuery {
    /// No condition: the node's view at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for a leader in a term above `term`.
    #[must_use]
    pub fn after_term(mut self, term: u64) -> Self {
        self.after_term = Some(term);
        self
    }

    /// Waits for `index` to be applied.
    #[must_use]
    pub fn min_applied(mut self, index: u64) -> Self {
        self.min_applied = Some(index);
        self
    }

    /// Waits at most `wait`.
    #[must_use]
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    fn to_query(self) -> String {
        let mut query = String::new();
        let mut add = |name: &str, value: u64| {
            query.push(if query.is_empty() { '?' } else { '&' });
            let _ = write!(query, "{name}={value}");
        };
        if let Some(term) = self.after_term {
            add("after_term", term);
        }
        if let Some(index) = self.min_applied {
            add("min_applied", index);
        }
        if let Some(wait) = self.wait {
            add("wait", millis(wait));
        }
        query
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting, sending or receiving failed.
    #[error("{method} {url}: {message}")]
    Transport {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// No answer within the client's timeout.
    #[error("{method} {url}: no answer within {} ms", .timeout.as_millis())]
    Timeout {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// The bound.
        timeout: Duration,
    },
    /// An answer other than the one expected.
    #[error("{method} {url}: {status}: {body}")]
    Status {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The body.
        body: String,
    },
    /// A URL (an address, or a redirect's `Location`) that cannot be used.
    #[error("unusable URL {url:?}")]
    Url {
        /// The URL.
        url: String,
    },
    /// A body that did not decode.
    #[error("{url}: undecodable answer: {source}")]
    Decode {
        /// The URL.
        url: String,
        /// The error.
        source: serde_json::Error,
    },
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("{method} {url}: more than {MAX_REDIRECTS} redirects")]
    Redirects {
        /// The method.
        method: Method,
        /// The last URL.
        url: String,
    },
}

impl ClientError {
    /// Whether the node gave no usable answer (transport error or timeout): for a write, the
    /// outcome is unknown.
    pub fn is_unanswered(&self) -> bool {
        matches!(self, Self::Transport { .. } | Self::Timeout { .. })
    }
}

impl Client {
    /// A client whose requests each get an answer within `timeout` (plus the wait of a long
    /// poll), or fail.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(32)
            .build(connector);
        Self { http, timeout }
    }

    /// The timeout of a request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request to `addr` (`host:port`) for `target` (path and query), without
    /// following redirects, bounded by the timeout plus `extra`.
    ///
    /// # Errors
    /// [`ClientError::Url`], [`ClientError::Transport`], [`ClientError::Timeout`].
    pub async fn send(
        &self,
        method: Method,
        addr: &str,
        target: &str,
        body: &str,
        extra: Duration,
    ) -> Result<Reply, ClientError> {
        let url = format!("http://{addr}{target}");
        let uri: Uri = url
            .parse()
            .map_err(|_| ClientError::Url { url: url.clone() })?;
        let mut request = Request::builder().method(method.clone()).uri(uri);
        if !body.is_empty() {
            request = request.header(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .map_err(|_| ClientError::Url { url: url.clone() })?;
        let bound = self.timeout.saturating_add(extra);
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| {
                // The source chain holds the cause (refused, reset...).
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    let _ = write!(message, ": {cause}");
                    source = cause.source();
                }
                message
            })?;
            let status = response.status();
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>(Reply {
                status,
                location,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        match tokio::time::timeout(bound, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(message)) => Err(ClientError::Transport {
                method,
                url,
                message,
            }),
            Err(_) => Err(ClientError::Timeout {
                method,
                url,
                timeout: bound,
            }),
        }
    }

    /// Sends one request as [`send`](Self::send) does, following `307` and `308` redirects
    /// (at most [`MAX_REDIRECTS`]). Returns the address that answered last, and its answer.
    ///
    /// # Errors
    /// As [`send`](Self::send), and [`ClientError::Redirects`], or [`ClientError::Url`] for a
    /// `Location` that is not an `http://host:port/...` URL.
    pub async fn follow(
        &self,
        method: Method,
        addr: &str,
        target: &str,
        body: &str,
        extra: Duration,
    ) -> Result<(String, Reply), ClientError> {
        let mut addr = addr.to_owned();
        let mut target = target.to_owned();
        for _ in 0..=MAX_REDIRECTS {
            let reply = self
                .send(method.clone(), &addr, &target, body, extra)
                .await?;
            let redirect = matches!(
                reply.status,
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
            );
            match (redirect, &reply.location) {
                (true, Some(location)) => {
                    (addr, target) = split_location(location)?;
                }
                _ => return Ok((addr, reply)),
            }
        }
        Err(ClientError::Redirects {
            method,
            url: format!("http://{addr}{target}"),
        })
    }

    /// `PUT /kv/{key}` with `value`, through the leader.
    ///
    /// # Errors
    /// As [`follow`](Self::follow); [`ClientError::Status`] for an answer other than 200 (503
    /// when no leader is known or the write timed out on the server: it may still be applied).
    pub async fn put(&self, addr: &str, key: &str, value: &str) -> Result<Written, ClientError> {
        self.write(Method::PUT, addr, key, value).await
    }

    /// `DELETE /kv/{key}`, through the leader.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub async fn delete(&self, addr: &str, key: &str) -> Result<Written, ClientError> {
        self.write(Method::DELETE, addr, key, "").await
    }

    async fn write(
        &self,
        method: Method,
        addr: &str,
        key: &str,
        value: &str,
    ) -> Result<Written, ClientError> {
        let target = format!("/kv/{}", encode(key));
        let (addr, reply) = self
            .follow(method.clone(), addr, &target, value, Duration::ZERO)
            .await?;
        let result = expect_json(method, &addr, &target, reply)?;
        Ok(Written { addr, result })
    }

    /// `GET /kv/{key}`: the value, or `None` when the key has none.
    ///
    /// # Errors
    /// As [`follow`](Self::follow); [`ClientError::Status`] for an answer other than 200 or
    /// 404 (503 when a local read's `min_applied` was not reached in time).
    pub async fn get(
        &self,
        addr: &str,
        key: &str,
        read: Read,
    ) -> Result<Option<String>, ClientError> {
        let mut target = format!("/kv/{}", encode(key));
        let mut extra = Duration::ZERO;
        if let Read::Local { min_applied, wait } = read {
            target.push_str("?consistency=local");
            if let Some(index) = min_applied {
                let _ = write!(target, "&min_applied={index}");
            }
            if let Some(wait) = wait {
                let _ = write!(target, "&wait={}", millis(wait));
                extra = wait;
            } else if min_applied.is_some() {
                // The server's default wait: the client's own bound covers the same again.
                extra = self.timeout;
            }
        }
        let (addr, reply) = self.follow(Method::GET, addr, &target, "", extra).await?;
        match reply.status {
            StatusCode::OK => Ok(Some(reply.body)),
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(ClientError::Status {
                method: Method::GET,
                url: format!("http://{addr}{target}"),
                status,
                body: reply.body,
            }),
        }
    }

    /// `GET /cluster`: the view of the node at `addr` (no redirect), after the wait of `query`.
    ///
    /// # Errors
    /// As [`send`](Self::send); [`ClientError::Status`] for an answer other than 200.
    pub async fn cluster(
        &self,
        addr: &str,
        query: &ClusterQuery,
    ) -> Result<ClusterView, ClientError> {
        let target = format!("/cluster{}", query.to_query());
        let conditional = query.after_term.is_some() || query.min_applied.is_some();
        // Without a `wait`, a conditional poll waits the server's default (30 s unless
        // configured otherwise).
        let extra = match query.wait {
            Some(wait) if conditional => wait,
            None if conditional => Duration::from_secs(60),
            _ => Duration::ZERO,
        };
        let reply = self.send(Method::GET, addr, &target, "", extra).await?;
        expect_json(Method::GET, addr, &target, reply)
    }

    /// Long polls the node at `addr` until its voters (ids, sorted) satisfy `holds` and it has
    /// no learners left, within `bound`: each membership change applies an entry, so waiting for
    /// the next applied index never misses one. `None` when the bound passed first (with the
    /// last view).
    ///
    /// # Errors
    /// As [`cluster`](Self::cluster).
    pub async fn wait_for_voters(
        &self,
        addr: &str,
        bound: Duration,
        holds: impl Fn(&[NodeId]) -> bool,
    ) -> Result<Result<ClusterView, ClusterView>, ClientError> {
        let deadline = std::time::Instant::now() + bound;
        let mut view = self.cluster(addr, &ClusterQuery::new()).await?;
        loop {
            let voters: Vec<NodeId> = view.voters.iter().map(|m| m.id).collect();
            if holds(&voters) && view.learners.is_empty() {
                return Ok(Ok(view));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(Err(view));
            }
            let next = view.last_applied.map_or(0, |index| index + 1);
            let query = ClusterQuery::new().min_applied(next).wait(left);
            view = self.cluster(addr, &query).await?;
        }
    }
}

fn expect_json<T: serde::de::DeserializeOwned>(
    method: Method,
    addr: &str,
    target: &str,
    reply: Reply,
) -> Result<T, ClientError> {
    let url = format!("http://{addr}{target}");
    if reply.status != StatusCode::OK {
        return Err(ClientError::Status {
            method,
            url,
            status: reply.status,
            body: reply.body,
        });
    }
    serde_json::from_str(&reply.body).map_err(|source| ClientError::Decode { url, source })
}

/// `http://host:port/path?query` into the address and the target.
fn split_location(location: &str) -> Result<(String, String), ClientError> {
    let bad = || ClientError::Url {
        url: location.to_owned(),
    };
    let uri: Uri = location.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("http") {
        return Err(bad());
    }
    let authority = uri.authority().ok_or_else(bad)?.as_str().to_owned();
    let target = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |target| target.as_str().to_owned());
    Ok((authority, target))
}

/// Percent-encodes a key as one path segment (everything but unreserved characters).
fn encode(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_path_segment() {
        assert_eq!(encode("k1"), "k1");
        assert_eq!(encode("a b/c?é"), "a%20b%2Fc%3F%C3%A9");
    }

    #[test]
    fn locations_split_into_address_and_target() {
        let (addr, target) = split_location("http://127.0.0.1:9/kv/a?x=1").unwrap();
        assert_eq!(
            (addr.as_str(), target.as_str()),
            ("127.0.0.1:9", "/kv/a?x=1")
        );
        assert!(split_location("https://127.0.0.1:9/kv/a").is_err());
        assert!(split_location("/kv/a").is_err());
    }

    #[test]
    fn cluster_queries() {
        assert_eq!(ClusterQuery::new().to_query(), "");
        let query = ClusterQuery::new()
            .after_term(3)
            .min_applied(7)
            .wait(Duration::from_millis(1500));
        assert_eq!(query.to_query(), "?after_term=3&min_applied=7&wait=1500");
    }
}
