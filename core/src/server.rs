//! Server side: routing a request head and encoding every response the handler sends. Every
//! status the transport crates send is chosen in this file: the refusals of unreadable requests
//! ([`RequestError::status`]), the routes, the answers to membership changes, and the responses
//! the driver and the mount send (closed handler, full accept queue, authorization refusals,
//! a connection that cannot be handed over).

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use crate::error::{InputError, RequestError};
use crate::head::RequestHead;
use crate::membership::{ChangeError, ChangeKind};
use crate::query;
use crate::target::{RaftPath, Scheme, check_authority};

/// Body of the 403 sent when the handler is closed.
pub const CLOSED_TEXT: &str = "raft transport closed";
/// Body of the 400 sent for a GET without `Upgrade: raft`.
pub const MISSING_UPGRADE_TEXT: &str = "missing or invalid upgrade header";
/// Body of the 400 sent for a membership request without `id`.
pub const NO_ID_TEXT: &str = "no server ID provided";
/// Body of the 405 sent for any other method.
pub const UNKNOWN_ACTION_TEXT: &str = "unknown action";
/// Body of the 404 sent for another path (the text Go's `http.ServeMux` uses).
pub const NOT_FOUND_TEXT: &str = "404 page not found";
/// Body of the 400 sent for an upgrade request that declares a body.
pub const UPGRADE_BODY_TEXT: &str = "upgrade request must not have a body";
/// Body of the 503 sent when the accept queue is full.
pub const BUSY_TEXT: &str = "too many raft connections waiting to be accepted";
/// Body of the 500 sent when the HTTP server in front (a hyper or axum mount) cannot hand the
/// connection over: HTTP/1.0, HTTP/2, or a server without upgrades enabled.
pub const NO_UPGRADE_TEXT: &str = "raft connections need an HTTP/1.1 connection that can be upgraded (serve with upgrades enabled)";

/// Body of the 412 sent for a request from another cluster. It names neither cluster id.
pub const CLUSTER_MISMATCH_TEXT: &str = "request for another raft cluster";

/// The header field that carries a cluster id (see [`ClusterId`]).
pub const CLUSTER_ID_HEADER: &str = "Raft-Cluster-Id";

/// What a handler with a [`ClusterId`] does with a request that carries none: the Go package
/// sends none, so allowing it keeps Go peers working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MissingClusterId {
    /// Let it through (the default).
    #[default]
    Allow,
    /// Refuse it with 412.
    Refuse,
}

/// A cluster's identity: a handler that has one refuses Raft upgrades and membership requests
/// whose `Raft-Cluster-Id` names another cluster (412), so that a node of another cluster,
/// misconfigured with a member's address, can neither open Raft streams nor join. Layers send
/// their handler's id on dial, join and leave.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterId {
    id: Box<str>,
    missing: MissingClusterId,
}

impl ClusterId {
    /// The id `id`: visible ASCII, so that it fits in a header field as is.
    ///
    /// # Errors
    /// [`InputError::Header`] for an empty id or one with spaces, controls or non-ASCII.
    pub fn new(id: &str) -> Result<Self, InputError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InputError::Header {
                name: CLUSTER_ID_HEADER.into(),
                reason: "a cluster id must be non-empty visible ASCII",
            });
        }
        Ok(Self {
            id: id.into(),
            missing: MissingClusterId::Allow,
        })
    }

    /// Sets what to do with requests that carry no cluster id (default: allow them).
    #[must_use]
    pub fn with_missing(mut self, missing: MissingClusterId) -> Self {
        self.missing = missing;
        self
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// Checks `head`'s `Raft-Cluster-Id`: the answer to refuse it with (412), or `None`.
    pub fn check(&self, head: &RequestHead<'_>) -> Option<Response> {
        match head.headers().get(CLUSTER_ID_HEADER) {
            Some(id) if id == self.id.as_bytes() => None,
            None if self.missing == MissingClusterId::Allow => None,
            _ => Some(Response::text(412, CLUSTER_MISMATCH_TEXT)),
        }
    }
}

/// The interim response to `Expect: 100-continue`, sent before reading a body.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What a TLS server answers a client that speaks plain HTTP to it: the bytes Go's TLS server
/// writes (`crypto/tls` hands net/http the record header; net/http writes this and closes), so
/// that curl and Go clients print a reason instead of a malformed response.
pub const PLAIN_HTTP_ON_TLS: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The answer a TLS listener writes (then closes) when the first byte a client sent starts an
/// HTTP request instead of a TLS record, or `None` to go on with the TLS handshake.
///
/// TLS records start with a content type between 20 and 24 (an SSLv2-style hello with a byte
/// at or above 128); an HTTP request starts with a method, a token. One byte decides, so a
/// server can peek it without reading anything the TLS handshake needs.
///
/// ```
/// use rafthttp_core::server::{PLAIN_HTTP_ON_TLS, plain_http_on_tls};
///
/// assert_eq!(plain_http_on_tls(b"POST /raft?id=1 HTTP/1.1\r\n"), Some(PLAIN_HTTP_ON_TLS));
/// assert_eq!(plain_http_on_tls(&[0x16, 0x03, 0x01]), None); // a ClientHello
/// ```
pub fn plain_http_on_tls(first: &[u8]) -> Option<&'static [u8]> {
    match first.first() {
        Some(&b) if crate::head::is_token_byte(b) => Some(PLAIN_HTTP_ON_TLS),
        _ => None,
    }
}

/// Whether the handler still takes requests: after `close`, the Raft path answers 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Availability {
    /// Taking requests.
    Open,
    /// Closed.
    Closed,
}

/// Whether the HTTP server in front of a mounted handler can hand a request's connection over
/// to Raft (HTTP/1.1 with upgrades enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Takeover {
    /// It can: a valid upgrade is answered 101.
    Possible,
    /// It cannot (HTTP/1.0, HTTP/2, upgrades disabled): a valid upgrade is answered 500.
    Impossible,
}

impl RequestError {
    /// The HTTP status to answer this error with: 431 for an oversized head, 411 for a chunked
    /// body, 413 for a body over the limit, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Self::HeadTooLarge { .. } | Self::TooManyHeaders { .. } => 431,
            Self::Malformed { .. } | Self::InvalidContentLength | Self::MissingHost => 400,
            Self::TransferEncoding => 411,
            Self::BodyTooLarge { .. } => 413,
        }
    }
}

/// How noteworthy a [`Response`] is ([`Response::severity`]): servers log routine answers at
/// debug level, refusals at info and failures at warn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The request was served, or sent on to the leader as the protocol expects: `1xx`, `2xx`,
    /// `3xx`.
    Routine,
    /// The client was refused: `4xx`.
    Refusal,
    /// This side could not serve it: `5xx`.
    Failure,
}

/// What a request asks for, by its method and path ([`Router::endpoint`]): a label for logs
/// and metrics, decided before (and whatever) the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET` on the Raft path: a Raft connection.
    Upgrade,
    /// `POST` on the Raft path.
    Join,
    /// `DELETE` on the Raft path.
    Leave,
    /// Another method on the Raft path.
    Raft,
    /// Another path.
    Other,
}

impl Endpoint {
    /// `upgrade`, `join`, `leave`, `raft` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upgrade => "upgrade",
            Self::Join => "join",
            Self::Leave => "leave",
            Self::Raft => "raft",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a request, decided from its head alone.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Route {
    /// A valid Raft upgrade: reserve an accept slot, then send [`Response::switching_protocols`]
    /// (or [`Response::busy`] when no slot is free). The connection carries Raft bytes after it.
    Upgrade,
    /// A join or leave request for the application.
    Change(Change),
    /// Answer with this response.
    Respond(Response),
    /// The path is not the Raft path: answer 404 ([`Response::not_found`]) or hand the request
    /// to another service.
    NotFound,
}

/// A membership change request as received, owned so it outlives the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Join (POST) or leave (DELETE).
    pub kind: ChangeKind,
    /// The server id (`id` query parameter, decoded, never empty).
    pub id: String,
    /// The server address (`address` query parameter, decoded; empty when absent, as in Go).
    pub address: String,
    /// The raw query, copied verbatim into the `Location` of a redirect.
    pub raw_query: String,
}

/// Routes requests for the Raft path, as the Go `Handler` does.
#[derive(Debug, Clone, Default)]
pub struct Router {
    path: RaftPath,
}

impl Router {
    /// A router for `path`. Only the path part is matched, exactly (`/raft/` is another path);
    /// the query is ignored.
    pub fn new(path: RaftPath) -> Self {
        Self { path }
    }

    /// The Raft path.
    pub fn path(&self) -> &RaftPath {
        &self.path
    }

    /// What `head` asks for, by its method and path alone.
    pub fn endpoint(&self, head: &RequestHead<'_>) -> Endpoint {
        if head.path() != self.path.path() {
            return Endpoint::Other;
        }
        match head.method() {
            "GET" => Endpoint::Upgrade,
            "POST" => Endpoint::Join,
            "DELETE" => Endpoint::Leave,
            _ => Endpoint::Raft,
        }
    }

    /// Decides what to do with `head`, given whether the handler is open.
    ///
    /// Order, as in Go: path; then method; GET needs `Upgrade: raft` (first field, exact value)
    /// before anything else; POST and DELETE answer "closed" before checking the id. Unlike Go,
    /// a closed handler refuses an upgrade with 403 instead of sending 101 and hanging up, and an
    /// upgrade request that declares a body is refused (Go silently drops the body bytes).
    pub fn route(&self, head: &RequestHead<'_>, availability: Availability) -> Route {
        let closed = availability == Availability::Closed;
        if head.minor_version() >= 1 && head.headers().get("host").is_none() {
            return Route::Respond(Response::error(&RequestError::MissingHost));
        }
        if let Err(error) = head.body_len() {
            return Route::Respond(Response::error(&error));
        }
        if head.path() != self.path.path() {
            return Route::NotFound;
        }
        let kind = match head.method() {
            "GET" => return self.route_upgrade(head, closed),
            "POST" => ChangeKind::Join,
            "DELETE" => ChangeKind::Leave,
            _ => return Route::Respond(Response::text(405, UNKNOWN_ACTION_TEXT)),
        };
        if closed {
            return Route::Respond(Response::closed());
        }
        let raw_query = head.query();
        match query::get(raw_query, "id") {
            Some(id) if !id.is_empty() => Route::Change(Change {
                kind,
                id,
                address: query::get(raw_query, "address").unwrap_or_default(),
                raw_query: raw_query.to_owned(),
            }),
            _ => Route::Respond(Response::text(400, NO_ID_TEXT)),
        }
    }

    /// [`route`](Self::route) for a handler mounted behind another HTTP server, which says
    /// whether it can hand this request's connection over (HTTP/1.1 with upgrades enabled). A
    /// valid upgrade it cannot hand over is answered [`Response::cannot_upgrade`] (500).
    pub fn route_mounted(
        &self,
        head: &RequestHead<'_>,
        availability: Availability,
        takeover: Takeover,
    ) -> Route {
        match self.route(head, availability) {
            Route::Upgrade if takeover == Takeover::Impossible => {
                Route::Respond(Response::cannot_upgrade())
            }
            route => route,
        }
    }

    fn route_upgrade(&self, head: &RequestHead<'_>, closed: bool) -> Route {
        let refuse = if head.headers().get("upgrade") != Some(b"raft") {
            Response::text(400, MISSING_UPGRADE_TEXT)
        } else if head.body_len() != Ok(0) {
            Response::text(400, UPGRADE_BODY_TEXT)
        } else if closed {
            Response::closed()
        } else {
            return Route::Upgrade;
        };
        Route::Respond(refuse)
    }

    /// The response to a membership change once the application answered (or did not).
    ///
    /// - Ok: 200, empty body.
    /// - Not leader, leader known: 308 to `scheme://leader<raft path>?<raw query>`.
    /// - Not leader, leader unknown: 503 (the client retries).
    /// - Anything else: 403, `failed to <kind> server <id>: <reason>`.
    pub fn answer(
        &self,
        change: &Change,
        outcome: &Result<(), ChangeError>,
        scheme: Scheme,
    ) -> Response {
        self.answer_at(change, outcome, scheme, self.path.path())
    }

    /// [`answer`](Self::answer), with a redirect to `path` instead of the Raft path: the path
    /// the request arrived on, when a server in front rewrote it (a nested mount).
    pub fn answer_at(
        &self,
        change: &Change,
        outcome: &Result<(), ChangeError>,
        scheme: Scheme,
        path: &str,
    ) -> Response {
        let error = match outcome {
            Ok(()) => return Response::ok(),
            Err(error) => error,
        };
        let status = match error {
            ChangeError::NotLeader {
                leader: Some(leader),
            } if check_authority(leader).is_ok() => {
                let mut location = format!("{scheme}://{leader}{path}");
                if !change.raw_query.is_empty() {
                    location.push('?');
                    location.push_str(&change.raw_query);
                }
                return Response::redirect(location);
            }
            ChangeError::NotLeader { leader: None } => 503,
            _ => 403,
        };
        let mut body = String::new();
        let _ = write!(
            body,
            "failed to {} server {}: {error}",
            change.kind, change.id
        );
        Response::text(status, body)
    }
}

/// A response the server sends, encoded by [`Response::encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    /// `Location` of a redirect or `WWW-Authenticate` of a 401 (never both): the field's
    /// name and value.
    target: Option<(&'static str, String)>,
    /// `Content-Type` of the body, when there is one.
    content_type: Option<Cow<'static, str>>,
    /// Fields the application added ([`Response::with_header`]).
    headers: Vec<(&'static str, String)>,
    body: Cow<'static, [u8]>,
    close: bool,
}

/// The content type of [`Response::text`], as Go's `http.Error` sends it.
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// Header fields the core writes itself; [`Response::with_header`] ignores them.
const RESERVED_FIELDS: [&str; 9] = [
    "connection",
    "content-length",
    "content-type",
    "location",
    "transfer-encoding",
    "upgrade",
    "www-authenticate",
    "x-content-type-options",
    "keep-alive",
];

/// Whether `name` is an HTTP token (RFC 9110 section 5.6.2).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `value` without the characters a header value cannot carry (controls, non-ASCII).
fn field_value(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .collect()
}

/// Whether `status` can be sent with a body by [`Response::text`] and [`Response::new`].
fn carries_body(status: u16) -> bool {
    (200..=999).contains(&status) && status != 204 && status != 304
}

impl Response {
    /// `101 Switching Protocols` with `Upgrade: raft`.
    pub fn switching_protocols() -> Self {
        Self::bare(101)
    }

    /// `200 OK` with an empty body.
    pub fn ok() -> Self {
        Self::bare(200)
    }

    /// `308 Permanent Redirect` to `location`, empty body (as Go sends it for POST and DELETE).
    /// Bytes that cannot appear in a header value unescaped (controls, spaces, non-ASCII) are
    /// percent-encoded, so a location can never inject header lines.
    pub fn redirect(location: String) -> Self {
        let location = if location.bytes().all(|b| b.is_ascii_graphic()) {
            location
        } else {
            let mut escaped = String::with_capacity(location.len() + 16);
            for b in location.bytes() {
                if b.is_ascii_graphic() {
                    escaped.push(char::from(b));
                } else {
                    let _ = write!(escaped, "%{b:02X}");
                }
            }
            escaped
        };
        Self {
            target: Some(("Location", location)),
            ..Self::bare(308)
        }
    }

    /// A plain-text response, formatted as Go's `http.Error`: the body is `text` plus a newline.
    /// A status that cannot carry a body (outside 200..=999, or 204 and 304) becomes 500.
    pub fn text(status: u16, text: impl Into<Cow<'static, str>>) -> Self {
        let status = if carries_body(status) { status } else { 500 };
        let mut body = text.into().into_owned().into_bytes();
        body.push(b'\n');
        Self {
            body: Cow::Owned(body),
            content_type: Some(Cow::Borrowed(TEXT_PLAIN)),
            ..Self::bare(status)
        }
    }

    /// A response with `status` and no body, for an application's own routes (the standalone
    /// server's fallback): add one with [`with_body`](Self::with_body), fields with
    /// [`with_header`](Self::with_header). A status outside `200..=999` becomes 500; `204`
    /// and `304` are sent without a body.
    pub fn new(status: u16) -> Self {
        Self::bare(if (200..=999).contains(&status) {
            status
        } else {
            500
        })
    }

    /// The same response with `body`, sent as it is, and `content_type` (control characters
    /// dropped). On a `204` or `304`, which cannot carry a body, the status becomes 500.
    #[must_use]
    pub fn with_body(
        mut self,
        content_type: impl Into<Cow<'static, str>>,
        body: impl Into<Cow<'static, [u8]>>,
    ) -> Self {
        if !carries_body(self.status) {
            self.status = 500;
        }
        let content_type = content_type.into();
        self.content_type = Some(
            if content_type
                .bytes()
                .all(|b| b.is_ascii_graphic() || b == b' ')
            {
                content_type
            } else {
                Cow::Owned(field_value(&content_type))
            },
        );
        self.body = body.into();
        self
    }

    /// The same response with one more header field (`Allow` on a 405, `Retry-After` on a
    /// 503, `Cache-Control`, ...). The value loses the characters a field cannot carry
    /// (controls, non-ASCII), so it cannot add header lines. A name that is not an HTTP
    /// token, or one the core writes itself (`Content-Length`, `Content-Type`, `Connection`,
    /// `Location`, `Transfer-Encoding`, `Upgrade`, `WWW-Authenticate`,
    /// `X-Content-Type-Options`, `Keep-Alive`), is ignored: use the constructors for those.
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl AsRef<str>) -> Self {
        let reserved = RESERVED_FIELDS
            .iter()
            .any(|field| field.eq_ignore_ascii_case(name));
        if is_token(name) && !reserved {
            self.headers.push((name, field_value(value.as_ref())));
        }
        self
    }

    /// `401 Unauthorized` with `WWW-Authenticate: <challenge>` (for example
    /// `Bearer realm="raft"`) and a plain-text body. Control characters are dropped from the
    /// challenge, so it cannot add header lines.
    pub fn unauthorized(challenge: &str, text: impl Into<Cow<'static, str>>) -> Self {
        let challenge = challenge
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .collect();
        Self {
            target: Some(("WWW-Authenticate", challenge)),
            ..Self::text(401, text)
        }
    }

    /// `403 Forbidden` with `text`: the authorization hook refused the request.
    pub fn forbidden(text: impl Into<Cow<'static, str>>) -> Self {
        Self::text(403, text)
    }

    /// `500`, with [`NO_UPGRADE_TEXT`]: a valid Raft upgrade reached an HTTP server that cannot
    /// hand the connection over (Go answers 500 when it cannot hijack, too).
    pub fn cannot_upgrade() -> Self {
        Self::text(500, NO_UPGRADE_TEXT)
    }

    /// `403 raft transport closed`.
    pub fn closed() -> Self {
        Self::text(403, CLOSED_TEXT)
    }

    /// `404 page not found`, for paths other than the Raft path.
    pub fn not_found() -> Self {
        Self::text(404, NOT_FOUND_TEXT)
    }

    /// `503`, for an upgrade when the accept queue is full.
    pub fn busy() -> Self {
        Self::text(503, BUSY_TEXT)
    }

    /// The answer to a request head the server refused. It closes the connection, as Go's
    /// net/http does for these errors: the stream may not be at a request boundary.
    pub fn error(error: &RequestError) -> Self {
        Self::text(error.status(), error.to_string()).closing()
    }

    /// The same response, announcing `Connection: close`.
    #[must_use]
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    fn bare(status: u16) -> Self {
        Self {
            status,
            target: None,
            content_type: None,
            headers: Vec::new(),
            body: Cow::Borrowed(b""),
            close: false,
        }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The `Content-Type` of the body, when there is one.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The `Location` value of a redirect.
    pub fn location(&self) -> Option<&str> {
        self.target_field("Location")
    }

    /// The `WWW-Authenticate` value of a 401.
    pub fn challenge(&self) -> Option<&str> {
        self.target_field("WWW-Authenticate")
    }

    fn target_field(&self, name: &str) -> Option<&str> {
        self.target
            .as_ref()
            .filter(|(field, _)| *field == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the server must close the connection after sending this response.
    pub fn closes_connection(&self) -> bool {
        self.close
    }

    /// How noteworthy the answer is, for logs: routine (`1xx`, `2xx`, and the `3xx` that sends
    /// a membership request to the leader), a refusal (`4xx`: the client asked for something
    /// this server does not serve) or a failure on this side (`5xx`).
    pub fn severity(&self) -> Severity {
        match self.status {
            0..=399 => Severity::Routine,
            400..=499 => Severity::Refusal,
            _ => Severity::Failure,
        }
    }

    /// Whether this is the `101` that upgrades the connection.
    pub fn is_upgrade(&self) -> bool {
        self.status == 101
    }

    /// The header fields, in the order [`encode`](Self::encode) writes them, without
    /// `Content-Length` (which follows the body) so that an HTTP server in front (the hyper
    /// mount) can build its response from them: `Upgrade` and `Connection` on the `101`;
    /// otherwise `Location`, `WWW-Authenticate`, `Content-Type` and `X-Content-Type-Options`
    /// with a body (as Go's `http.Error`), the application's fields
    /// ([`with_header`](Self::with_header)), and `Connection: close` when the server closes.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let upgrade = self.is_upgrade();
        let content_type = self.content_type.as_deref().filter(|_| !upgrade);
        let fields: [Option<(&'static str, &str)>; 5] = [
            upgrade.then_some(("Upgrade", "raft")),
            upgrade.then_some(("Connection", "Upgrade")),
            self.target
                .as_ref()
                .map(|(name, value)| (*name, value.as_str())),
            content_type.map(|t| ("Content-Type", t)),
            content_type.map(|_| ("X-Content-Type-Options", "nosniff")),
        ];
        let added = self
            .headers
            .iter()
            .filter(move |_| !upgrade)
            .map(|(name, value)| (*name, value.as_str()));
        let close = (!upgrade && self.close).then_some(("Connection", "close"));
        fields.into_iter().flatten().chain(added).chain(close)
    }

    /// Appends the response, head and body, to `out`.
    ///
    /// Header fields follow Go's `http.Error` and `http.Redirect` ([`fields`](Self::fields) and
    /// `Content-Length`), without `Date`: the core has no clock, and RFC 9110 section 6.6.1
    /// allows a server without one to omit it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_with(false, out);
    }

    /// Appends the response to a `HEAD` request to `out`: the head alone, its
    /// `Content-Length` still announcing the body.
    pub fn encode_head(&self, out: &mut Vec<u8>) {
        self.encode_with(true, out);
    }

    fn encode_with(&self, head_only: bool, out: &mut Vec<u8>) {
        let mut head = String::with_capacity(160);
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        let closing = ("Connection", "close");
        for (name, value) in self.fields().filter(|field| *field != closing) {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if !self.is_upgrade() {
            // A 204 carries no Content-Length (RFC 9110 section 8.6).
            if self.status != 204 {
                let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
            }
            if self.close {
                head.push_str("Connection: close\r\n");
            }
        }
        head.push_str("\r\n");
        out.extend_from_slice(head.as_bytes());
        if !head_only && !self.is_upgrade() {
            out.extend_from_slice(&self.body);
        }
    }
}

/// The reason phrase Go's net/http uses for `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_is_the_method_on_the_raft_path() {
        let router = Router::new(RaftPath::default());
        let cases = [
            ("GET", "/raft", Endpoint::Upgrade),
            ("POST", "/raft?id=1", Endpoint::Join),
            ("DELETE", "/raft?id=1", Endpoint::Leave),
            ("PUT", "/raft", Endpoint::Raft),
            ("GET", "/raft/", Endpoint::Other),
            ("POST", "/health", Endpoint::Other),
        ];
        for (method, target, endpoint) in cases {
            let head = RequestHead::from_parts(method, target, 1, Vec::new());
            assert_eq!(router.endpoint(&head), endpoint, "{method} {target}");
        }
    }

    #[test]
    fn severity_follows_the_status_class() {
        let cases = [
            (Response::switching_protocols(), Severity::Routine),
            (Response::ok(), Severity::Routine),
            (
                Response::redirect("http://a/raft".into()),
                Severity::Routine,
            ),
            (Response::forbidden("no"), Severity::Refusal),
            (Response::not_found(), Severity::Refusal),
            (Response::busy(), Severity::Failure),
            (Response::text(500, "broken"), Severity::Failure),
        ];
        for (response, severity) in cases {
            assert_eq!(response.severity(), severity, "{}", response.status());
        }
    }

    #[test]
    fn redirect_locations_cannot_inject_headers() {
        let mut out = Vec::new();
        Response::redirect("http://a/raft?x=1\r\nSet-Cookie: y é".into()).encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 308 Permanent Redirect\r\nLocation: http://a/raft?x=1%0D%0ASet-Cookie:%20y%20%C3%A9\r\n"),
            "{text}"
        );
    }

    #[test]
    fn unauthorized_carries_a_clean_challenge() {
        let mut out = Vec::new();
        Response::unauthorized("Bearer realm=\"raft\"\r\nX: y", "token required").encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"raft\"X: y\r\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\ntoken required\n"), "{text}");
    }

    #[test]
    fn a_mount_that_cannot_upgrade_gets_500_for_valid_upgrades_only() {
        use crate::head::{Header, RequestHead};
        let router = Router::default();
        let host = Header {
            name: "Host",
            value: b"x",
        };
        let upgrade = Header {
            name: "Upgrade",
            value: b"raft",
        };
        let head = RequestHead::from_parts("GET", "/raft", 1, vec![host, upgrade]);
        assert_eq!(
            router.route_mounted(&head, Availability::Open, Takeover::Possible),
            Route::Upgrade
        );
        assert_eq!(
            router.route_mounted(&head, Availability::Open, Takeover::Impossible),
            Route::Respond(Response::cannot_upgrade())
        );
        let plain = RequestHead::from_parts("GET", "/raft", 1, vec![host]);
        assert_eq!(
            router.route_mounted(&plain, Availability::Open, Takeover::Impossible),
            Route::Respond(Response::text(400, MISSING_UPGRADE_TEXT)),
            "a bad request stays a bad request"
        );
    }

    #[test]
    fn bodies_only_on_statuses_that_allow_them() {
        assert_eq!(Response::text(404, "x").status(), 404);
        for bad in [0, 99, 101, 204, 304, 1000] {
            assert_eq!(Response::text(bad, "x").status(), 500, "{bad}");
        }
    }

    fn encoded(response: &Response) -> String {
        let mut out = Vec::new();
        response.encode(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_application_response_carries_its_body_as_is_and_its_own_fields() {
        let response = Response::new(200)
            .with_body("application/json", &b"{\"a\":1}"[..])
            .with_header("Cache-Control", "no-store");
        assert_eq!(
            encoded(&response),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
             X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n\
             Content-Length: 7\r\n\r\n{\"a\":1}"
        );
        assert_eq!(response.content_type(), Some("application/json"));

        let refused = Response::text(405, "method not allowed")
            .with_header("Allow", "GET, PUT")
            .closing();
        assert_eq!(
            encoded(&refused),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\
             X-Content-Type-Options: nosniff\r\nAllow: GET, PUT\r\nContent-Length: 19\r\n\
             Connection: close\r\n\r\nmethod not allowed\n"
        );
    }

    #[test]
    fn fields_cannot_inject_lines_or_replace_the_cores() {
        let response = Response::new(503)
            .with_header("Retry-After", "1\r\nSet-Cookie: x=1")
            .with_header("Content-Length", "0")
            .with_header("connection", "keep-alive")
            .with_header("Bad Name", "x")
            .with_header("", "x")
            .with_body("text/plain\r\nX-Evil: 1", &b"later"[..]);
        assert_eq!(
            encoded(&response),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plainX-Evil: 1\r\n\
             X-Content-Type-Options: nosniff\r\nRetry-After: 1Set-Cookie: x=1\r\n\
             Content-Length: 5\r\n\r\nlater"
        );
    }

    #[test]
    fn a_204_has_no_body_and_no_length() {
        assert_eq!(
            encoded(&Response::new(204)),
            "HTTP/1.1 204 No Content\r\n\r\n"
        );
        assert_eq!(
            Response::new(204)
                .with_body("text/plain", &b"x"[..])
                .status(),
            500,
            "a 204 cannot carry a body"
        );
        for bad in [0, 101, 1000] {
            assert_eq!(Response::new(bad).status(), 500, "{bad}");
        }
        assert_eq!(Response::new(304).status(), 304);
    }
}
