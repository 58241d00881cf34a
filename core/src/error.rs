//! Error types, one enum per phase.

use crate::membership::{ChangeKind, TransportStage};
use crate::target::Scheme;

/// A request head the server refuses. Each variant knows the status to answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The head is longer than the configured limit (431).
    #[error("request head exceeds {limit} bytes")]
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The head has more header fields than the configured limit (431).
    #[error("request head has more than {limit} header fields")]
    TooManyHeaders {
        /// The limit in fields.
        limit: usize,
    },
    /// The head is not valid HTTP/1.x (400).
    #[error("malformed request: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// `Content-Length` is not a number, or several disagree (400).
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// The request body uses `Transfer-Encoding`; only `Content-Length` bodies are accepted (411).
    #[error("request bodies must have a Content-Length; Transfer-Encoding is not supported")]
    TransferEncoding,
    /// The request body is longer than the server skips (413).
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// An HTTP/1.1 request without `Host` (400, as Go's net/http answers).
    #[error("missing required Host header")]
    MissingHost,
}

/// A response head the client cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The bytes are not an HTTP/1.x response; `line` is the start of the first line.
    #[error("malformed HTTP response {line:?}")]
    Malformed {
        /// The first line received, cut at 64 bytes, lossily decoded.
        line: Box<str>,
    },
    /// The head is longer than the configured limit.
    #[error("response head exceeds {limit} bytes")]
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The head has more header fields than the configured limit.
    #[error("response head has more than {limit} header fields")]
    TooManyHeaders {
        /// The limit in fields.
        limit: usize,
    },
}

impl ResponseError {
    pub(crate) fn malformed(buf: &[u8]) -> Self {
        let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line.get(..64).unwrap_or(line);
        Self::Malformed {
            line: String::from_utf8_lossy(line).into(),
        }
    }
}

/// The upgrade handshake failed on the client side. Messages read like the Go package's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The response could not be read.
    #[error("failed to read response: {0}")]
    Response(#[from] ResponseError),
    /// The server answered something other than `101 Switching Protocols`.
    #[error("dialing fail: expected status code 101 got {status}")]
    UnexpectedStatus {
        /// The status received.
        status: u16,
    },
    /// The 101 response did not carry `Upgrade: raft`.
    #[error("missing or unexpected Upgrade header in response")]
    MissingUpgrade,
}

/// An argument the caller passed cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The Raft path must be an absolute path (`/raft`), optionally with a query, made of
    /// visible ASCII characters.
    #[error("invalid raft path {path:?}: {reason}")]
    Path {
        /// The path given.
        path: Box<str>,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The target must be a `host:port` authority (an IPv6 host in brackets).
    #[error("invalid target address {authority:?}: {reason}")]
    Authority {
        /// The authority given.
        authority: Box<str>,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Membership requests need a non-empty server id.
    #[error("no server ID provided")]
    EmptyId,
    /// An extra header field cannot be sent.
    #[error("invalid header field {name:?}: {reason}")]
    Header {
        /// The field name given.
        name: Box<str>,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A join or leave request failed on the client side. Messages read like the Go package's
/// (`server join failed: http code 404 '404 page not found'`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// The server answered with a status other than 200 (or kept answering 503 until the
    /// deadline). `body` is the response body, trimmed of surrounding whitespace.
    #[error("server {kind} failed: http code {status} '{body}'")]
    Status {
        /// Join or leave.
        kind: ChangeKind,
        /// The last status received.
        status: u16,
        /// The trimmed body, cut at the read limit.
        body: Box<str>,
        /// The URL that answered (not part of the message, which is Go's).
        url: Box<str>,
    },
    /// More than the allowed number of redirects.
    #[error("server {kind} failed: {method} \"{url}\": stopped after {max} redirects")]
    TooManyRedirects {
        /// Join or leave.
        kind: ChangeKind,
        /// The request method.
        method: &'static str,
        /// The URL that answered the last redirect.
        url: Box<str>,
        /// The redirect limit.
        max: u8,
    },
    /// A redirect whose `Location` cannot be followed.
    #[error("server {kind} failed: {method} \"{url}\": invalid redirect location {location:?}")]
    InvalidRedirect {
        /// Join or leave.
        kind: ChangeKind,
        /// The request method.
        method: &'static str,
        /// The URL that answered with the redirect.
        url: Box<str>,
        /// The `Location` value received.
        location: Box<str>,
    },
    /// A redirect to an `https` URL reached a client that dials plain TCP. (A client that dials
    /// TLS follows `http` and `https` Locations alike, over TLS: the Go package writes `http`
    /// Locations on TLS listeners too.)
    #[error(
        "server {kind} failed: redirected to {location}, which this dialer cannot reach (it speaks {transport})"
    )]
    Scheme {
        /// Join or leave.
        kind: ChangeKind,
        /// The URL redirected to.
        location: Box<str>,
        /// What the client's dialer speaks.
        transport: Scheme,
    },
    /// The deadline passed before an answer arrived.
    #[error("server {kind} failed: {method} \"{url}\": deadline exceeded")]
    Timeout {
        /// Join or leave.
        kind: ChangeKind,
        /// The request method.
        method: &'static str,
        /// The URL of the request in flight.
        url: Box<str>,
    },
    /// Connecting, writing or reading failed (at the first target; or, behind a redirect,
    /// until the deadline).
    #[error("server {kind} failed: {method} \"{url}\": {stage}: {reason}")]
    Transport {
        /// Join or leave.
        kind: ChangeKind,
        /// The request method.
        method: &'static str,
        /// The URL of the request.
        url: Box<str>,
        /// Where it failed.
        stage: TransportStage,
        /// Why, as the transport reported it.
        reason: Box<str>,
    },
    /// The server's response could not be read.
    #[error("server {kind} failed: {method} \"{url}\": {source}")]
    Response {
        /// Join or leave.
        kind: ChangeKind,
        /// The request method.
        method: &'static str,
        /// The URL of the request.
        url: Box<str>,
        /// What was wrong with the response.
        source: ResponseError,
    },
}

impl MembershipError {
    /// Whether the error is the deadline passing.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// The URL of the request that failed; for [`Self::Scheme`], the one redirected to.
    pub fn url(&self) -> &str {
        match self {
            Self::Status { url, .. }
            | Self::TooManyRedirects { url, .. }
            | Self::InvalidRedirect { url, .. }
            | Self::Timeout { url, .. }
            | Self::Transport { url, .. }
            | Self::Response { url, .. } => url,
            Self::Scheme { location, .. } => location,
        }
    }
}
