//! Membership: the change kinds, the application's answer, and the client machine that sends a
//! join or leave request and follows redirects and retries.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::{InputError, MembershipError, ResponseError};
use crate::head::{Limits, ResponseHead};
use crate::query;
use crate::response::{Final, ResponseReader};
use crate::target::{ExtraHeaders, RaftPath, Scheme, check_authority};

/// Whether a server joins or leaves the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Add a server (HTTP `POST`).
    Join,
    /// Remove a server (HTTP `DELETE`).
    Leave,
}

impl ChangeKind {
    /// The HTTP method carrying this kind.
    pub fn method(self) -> &'static str {
        match self {
            Self::Join => "POST",
            Self::Leave => "DELETE",
        }
    }

    /// `join` or `leave`, as in the Go package's messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Leave => "leave",
        }
    }
}

impl fmt::Display for ChangeKind {
    /// `join` or `leave`, as in the Go package's messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the application did not apply a membership change.
///
/// The handler turns it into the HTTP answer: `NotLeader` with a leader becomes a redirect,
/// `NotLeader` without one becomes 503 (the client retries), anything else 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// This node is not the leader; `leader` is the leader's address (`host:port` of its HTTP
    /// endpoint) when known.
    #[error("node is not leader, current leader {}", LeaderText(.leader.as_deref()))]
    NotLeader {
        /// The leader's address, if known.
        leader: Option<String>,
    },
    /// The change failed for another reason.
    #[error("{message}")]
    Failed {
        /// Why, as the client will read it.
        message: String,
    },
    /// Nobody answered within the handler's timeout.
    #[error("timeout waiting for membership change")]
    Timeout,
    /// The request was dropped without an answer.
    #[error("membership request dropped without an answer")]
    Dropped,
    /// The handler was closed while the request waited.
    #[error("raft transport closed")]
    Closed,
}

impl ChangeError {
    /// A failure with the given message.
    pub fn failed(message: impl fmt::Display) -> Self {
        Self::Failed {
            message: message.to_string(),
        }
    }
}

struct LeaderText<'a>(Option<&'a str>);

impl fmt::Display for LeaderText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(leader) => write!(f, "at: {leader}"),
            None => f.write_str("unknown"),
        }
    }
}

/// Redirects followed at most, as Go's `http.Client`.
pub const MAX_REDIRECTS: u8 = 10;

/// Bytes of a failure body kept for the error message.
pub const MAX_ERROR_BODY: usize = 4096;

/// The first wait before sending again, by default.
pub const DEFAULT_FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The longest wait before sending again, by default.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What the [`MembershipClient`] wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Output {
    /// Open a connection to `authority` over `scheme` and write `request`. A failure to
    /// connect or write goes to [`MembershipClient::handle_transport_error`]; then the client
    /// asks to [`Receive`](Self::Receive) the response.
    Transmit(Transmit),
    /// Read from the connection of the last [`Transmit`](Self::Transmit) and pass what arrives
    /// to [`MembershipClient::handle_receive`] (the end of the stream to
    /// [`MembershipClient::handle_eof`], a read error to
    /// [`MembershipClient::handle_transport_error`]), until the client asks for something
    /// else; then close the connection. Reading is bounded by
    /// [`MembershipClient::deadline`].
    Receive,
    /// Nothing to do before this instant; then call [`MembershipClient::handle_timeout`].
    Timeout(Instant),
    /// Finished.
    Done(Result<(), MembershipError>),
}

/// One HTTP request to send on a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Plain HTTP or TLS: always the client's own transport ([`MembershipClient::with_scheme`]),
    /// whatever scheme a redirect named.
    pub scheme: Scheme,
    /// The `host:port` to connect to.
    pub authority: String,
    /// The request bytes.
    pub request: Vec<u8>,
}

/// Where an exchange failed below HTTP, for [`MembershipClient::handle_transport_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportStage {
    /// Connecting (refused, unreachable, a failed TLS handshake).
    Connect,
    /// Writing the request.
    Send,
    /// Reading the response: the connection was reset or closed before a complete head.
    Receive,
}

impl fmt::Display for TransportStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connecting failed",
            Self::Send => "sending the request failed",
            Self::Receive => "reading the response failed",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Ready,
    InFlight,
    /// Waiting to send again (after a 503, or after a transport failure behind a redirect);
    /// the error is the result if the deadline passes first.
    Backoff(Instant, MembershipError),
    Done(Result<(), MembershipError>),
}

/// The client side of one join or leave call, as a sans-IO machine (`poll_output` /
/// `handle_*`).
///
/// It asks the node at a target to add (or remove) a server, follows `307`/`308` redirects to
/// the leader (at most [`MAX_REDIRECTS`]), retries `503` (leader unknown) with exponential
/// backoff, and gives up at the deadline. Only `200` counts as success, as in Go.
///
/// ```
/// use std::time::{Duration, Instant};
/// use rafthttp_core::membership::{ChangeKind, MembershipClient, Output};
/// use rafthttp_core::{Decoded, Limits, RaftPath, ResponseDecoder};
///
/// let now = Instant::now();
/// let path = RaftPath::new("/raft").unwrap();
/// let mut join = MembershipClient::new(
///     ChangeKind::Join, &path, "3", "127.0.0.1:9003", "127.0.0.1:9001", now + Duration::from_secs(5),
/// ).unwrap();
///
/// let Output::Transmit(transmit) = join.poll_output() else { unreachable!() };
/// assert_eq!(transmit.authority, "127.0.0.1:9001");
/// assert!(transmit.request.starts_with(b"POST /raft?id=3&address=127.0.0.1:9003 HTTP/1.1\r\n"));
///
/// // A follower redirects to the leader.
/// let reply = b"HTTP/1.1 308 Permanent Redirect\r\nLocation: http://127.0.0.1:9002/raft?id=3&address=127.0.0.1:9003\r\nContent-Length: 0\r\n\r\n";
/// let Decoded::Complete { value: head, .. } = ResponseDecoder::new(Limits::default()).decode(reply).unwrap() else { unreachable!() };
/// join.handle_response(now, &head, b"");
///
/// let Output::Transmit(transmit) = join.poll_output() else { unreachable!() };
/// assert_eq!(transmit.authority, "127.0.0.1:9002");
///
/// let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
/// let Decoded::Complete { value: head, .. } = ResponseDecoder::new(Limits::default()).decode(reply).unwrap() else { unreachable!() };
/// join.handle_response(now, &head, b"");
/// assert_eq!(join.poll_output(), Output::Done(Ok(())));
/// ```
#[derive(Debug, Clone)]
pub struct MembershipClient {
    kind: ChangeKind,
    /// The transport: what the caller dials with. Redirects never change it.
    scheme: Scheme,
    authority: String,
    /// Path and query of the next request.
    target: String,
    /// The first request's authority and target, where a broken redirect chain starts again.
    origin: (String, String),
    deadline: Instant,
    /// Redirects followed since the request was last sent to the origin.
    redirects: u8,
    backoff: Duration,
    max_backoff: Duration,
    /// State of the jitter generator; `None` for exact delays.
    jitter: Option<u64>,
    headers: ExtraHeaders,
    limits: Limits,
    /// The response to the request in flight, as it arrives.
    reader: ResponseReader,
    /// Requests sent, and redirects followed, over the whole call.
    sent: u32,
    followed: u32,
    state: State,
}

impl MembershipClient {
    /// A call asking the node at `target` (`host:port`) to apply `kind` for server `id` at
    /// `address` (ignored for a leave), finishing by `deadline`.
    ///
    /// Values are percent-encoded (Go writes them raw, which breaks on `&` or a space).
    ///
    /// # Errors
    /// [`InputError`] for an empty id or an invalid target.
    pub fn new(
        kind: ChangeKind,
        path: &RaftPath,
        id: &str,
        address: &str,
        target: &str,
        deadline: Instant,
    ) -> Result<Self, InputError> {
        if id.is_empty() {
            return Err(InputError::EmptyId);
        }
        check_authority(target)?;
        let mut request_target =
            String::with_capacity(path.as_str().len() + id.len() + address.len() + 16);
        request_target.push_str(path.as_str());
        request_target.push(if path.query().is_some() { '&' } else { '?' });
        request_target.push_str("id=");
        query::encode_into(id, &mut request_target);
        if kind == ChangeKind::Join {
            request_target.push_str("&address=");
            query::encode_into(address, &mut request_target);
        }
        Ok(Self {
            kind,
            scheme: Scheme::Http,
            authority: target.to_owned(),
            origin: (target.to_owned(), request_target.clone()),
            target: request_target,
            deadline,
            redirects: 0,
            backoff: DEFAULT_FIRST_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            jitter: None,
            headers: ExtraHeaders::default(),
            limits: Limits::default(),
            reader: ResponseReader::new(Limits::default(), MAX_ERROR_BODY),
            sent: 0,
            followed: 0,
            state: State::Ready,
        })
    }

    /// Sets the limits on response heads (interim `1xx` heads count against them together).
    /// Default: [`Limits::default`].
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the first wait before sending again (doubled on every retry up to `max`). Defaults:
    /// [`DEFAULT_FIRST_BACKOFF`], [`DEFAULT_MAX_BACKOFF`].
    #[must_use]
    pub fn with_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// Jitters every wait: each one is drawn from `[delay / 2, delay]` by a small generator
    /// seeded with `seed`, so that clients retrying together spread out. The core has no source
    /// of randomness; the caller supplies the seed (and the same seed gives the same waits).
    /// Without it, waits are exact.
    #[must_use]
    pub fn with_jitter(mut self, seed: u64) -> Self {
        // splitmix64's increment keeps a zero seed from sticking at zero.
        self.jitter = Some(seed ^ 0x9E37_79B9_7F4A_7C15);
        self
    }

    /// Sets the transport the caller dials with (default `http`; `https` for a client that
    /// dials TLS). Redirects never change it: a TLS client follows `http` and `https`
    /// Locations alike, over TLS (the Go package writes `http` Locations on TLS listeners, and
    /// dials them with its TLS dial function), checking the certificate against the Location's
    /// host; a plain client refuses an `https` Location with [`MembershipError::Scheme`].
    #[must_use]
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// Adds header fields to every request of the call, redirects included (credentials for
    /// the cluster's authorization hook, say: the leader needs them as much as the follower).
    #[must_use]
    pub fn with_headers(mut self, headers: ExtraHeaders) -> Self {
        self.headers = headers;
        self
    }

    /// Join or leave.
    pub fn kind(&self) -> ChangeKind {
        self.kind
    }

    /// The URL of the current (or next) request, for messages.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.target)
    }

    /// Requests sent so far (retries and redirects included).
    pub fn requests_sent(&self) -> u32 {
        self.sent
    }

    /// Redirects followed so far, over every round.
    pub fn redirects_followed(&self) -> u32 {
        self.followed
    }

    /// The deadline given at construction.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// What to do next. Call it after construction and after every `handle_*` call, until it
    /// returns [`Output::Done`] (which it then keeps returning).
    pub fn poll_output(&mut self) -> Output {
        match &self.state {
            State::Ready => {
                self.state = State::InFlight;
                self.sent = self.sent.saturating_add(1);
                self.reader = ResponseReader::new(self.limits, MAX_ERROR_BODY);
                Output::Transmit(Transmit {
                    scheme: self.scheme,
                    authority: self.authority.clone(),
                    request: self.encode_request(),
                })
            }
            State::InFlight => Output::Receive,
            State::Backoff(at, _) => Output::Timeout((*at).min(self.deadline)),
            State::Done(result) => Output::Done(result.clone()),
        }
    }

    fn encode_request(&self) -> Vec<u8> {
        let mut out = String::with_capacity(128 + self.target.len());
        out.push_str(self.kind.method());
        out.push(' ');
        out.push_str(&self.target);
        out.push_str(" HTTP/1.1\r\nHost: ");
        out.push_str(&self.authority);
        out.push_str("\r\nUser-Agent: rafthttp-rust/");
        out.push_str(env!("CARGO_PKG_VERSION"));
        if self.kind == ChangeKind::Join {
            out.push_str("\r\nContent-Length: 0");
        }
        out.push_str("\r\nConnection: close\r\n");
        self.headers.encode_into(&mut out);
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// Time passed. Harmless when called early or twice: it acts only once `now` reaches the
    /// backoff instant (send again) or the deadline (fail with a timeout, or with what ended the
    /// last attempt: a 503, or a transport failure behind a redirect).
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.state {
            State::Done(_) => {}
            State::Backoff(_, unavailable) if now >= self.deadline => {
                self.state = State::Done(Err(unavailable.clone()));
            }
            _ if now >= self.deadline => self.fail_timeout(),
            State::Backoff(at, _) if now >= *at => self.state = State::Ready,
            _ => {}
        }
    }

    fn fail_timeout(&mut self) {
        self.state = State::Done(Err(MembershipError::Timeout {
            kind: self.kind,
            method: self.kind.method(),
            url: self.url().into(),
        }));
    }

    /// Bytes of the response to the request in flight arrived (any amount, from any split of
    /// the stream). The client decodes the head once, skips interim `1xx` responses, reads the
    /// start of a failure's body (by length, de-chunked, or until the stream ends) and acts
    /// once the response is known. Ignored unless a request is in flight.
    pub fn handle_receive(&mut self, now: Instant, data: &[u8]) {
        if self.state != State::InFlight {
            return;
        }
        match self.reader.receive(data) {
            Ok(Some(response)) => self.finish(now, response),
            Ok(None) => {}
            Err(error) => self.handle_malformed(error),
        }
    }

    /// The response's stream ended. With a complete head, the response is what arrived; before
    /// one, it is a transport failure ([`handle_transport_error`](Self::handle_transport_error),
    /// at the receive stage). Ignored unless a request is in flight.
    pub fn handle_eof(&mut self, now: Instant) {
        if self.state != State::InFlight {
            return;
        }
        match self.reader.eof() {
            Some(response) => self.finish(now, response),
            None => self.handle_transport_error(
                now,
                TransportStage::Receive,
                "the connection closed before a complete response",
            ),
        }
    }

    /// The response to the request in flight arrived, decoded by the caller: its head, and
    /// its body (or as much of it as was read, [`MAX_ERROR_BODY`] is plenty). An alternative
    /// to [`handle_receive`](Self::handle_receive) for callers that read responses
    /// themselves. Ignored unless a request is in flight.
    pub fn handle_response(&mut self, now: Instant, head: &ResponseHead<'_>, body: &[u8]) {
        if self.state != State::InFlight {
            return;
        }
        let response = Final {
            status: head.status(),
            location: head.headers().get("location").map(<[u8]>::to_vec),
            body: body.get(..MAX_ERROR_BODY).unwrap_or(body).to_vec(),
        };
        self.finish(now, response);
    }

    fn finish(&mut self, now: Instant, response: Final) {
        if now >= self.deadline {
            return self.fail_timeout();
        }
        let Final {
            status,
            location,
            body,
        } = response;
        let url: Box<str> = self.url().into();
        let failure = |kind| {
            let body = String::from_utf8_lossy(&body);
            MembershipError::Status {
                kind,
                status,
                body: body.trim().into(),
                url: url.clone(),
            }
        };
        let fail = |kind| State::Done(Err(failure(kind)));
        self.state = match status {
            200 => State::Done(Ok(())),
            307 | 308 => match &location {
                // Go does not follow a redirect without Location either.
                None => fail(self.kind),
                Some(location) => self.follow(location),
            },
            503 => self.retry_at(now, failure(self.kind)),
            _ => fail(self.kind),
        };
    }

    /// Waits, then sends again; or ends with `error` when the wait would reach the deadline.
    fn retry_at(&mut self, now: Instant, error: MembershipError) -> State {
        let at = now + self.next_wait();
        if at >= self.deadline {
            State::Done(Err(error))
        } else {
            State::Backoff(at, error)
        }
    }

    /// The next wait, jittered when asked for; doubles the one after it.
    fn next_wait(&mut self) -> Duration {
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(self.max_backoff);
        let Some(state) = &mut self.jitter else {
            return wait;
        };
        // splitmix64: tiny, and plenty for spreading retries.
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let half = wait / 2;
        let span = u64::try_from((wait - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(z.checked_rem(span.saturating_add(1)).unwrap_or(0))
    }

    /// Connecting, writing the request or reading the response failed (refused, reset, a
    /// failed TLS handshake, the connection closed before a complete head). `reason` says why,
    /// for the error. Ignored unless a request is in flight.
    ///
    /// At the first target this ends the call, as in Go. Behind a redirect it does not: a
    /// follower may still point at a leader that just died, until it notices; so the call
    /// starts again from the first target after a (jittered, exponential) wait, within the
    /// deadline, and ends with this failure if the deadline comes first.
    pub fn handle_transport_error(&mut self, now: Instant, stage: TransportStage, reason: &str) {
        if self.state != State::InFlight {
            return;
        }
        if now >= self.deadline {
            return self.fail_timeout();
        }
        let error = MembershipError::Transport {
            kind: self.kind,
            method: self.kind.method(),
            url: self.url().into(),
            stage,
            reason: reason.into(),
        };
        if self.redirects == 0 {
            self.state = State::Done(Err(error));
            return;
        }
        (self.authority, self.target) = self.origin.clone();
        self.redirects = 0;
        self.state = self.retry_at(now, error);
    }

    /// The response to the request in flight could not be decoded.
    pub fn handle_malformed(&mut self, error: ResponseError) {
        if self.state == State::InFlight {
            self.state = State::Done(Err(MembershipError::Response {
                kind: self.kind,
                method: self.kind.method(),
                url: self.url().into(),
                source: error,
            }));
        }
    }

    fn follow(&mut self, location: &[u8]) -> State {
        let invalid = |this: &Self| {
            State::Done(Err(MembershipError::InvalidRedirect {
                kind: this.kind,
                method: this.kind.method(),
                url: this.url().into(),
                location: String::from_utf8_lossy(location).into(),
            }))
        };
        if self.redirects >= MAX_REDIRECTS {
            return State::Done(Err(MembershipError::TooManyRedirects {
                kind: self.kind,
                method: self.kind.method(),
                url: self.url().into(),
                max: MAX_REDIRECTS,
            }));
        }
        let Some((scheme, authority, target)) = std::str::from_utf8(location)
            .ok()
            .and_then(|l| resolve(self.scheme, &self.authority, l))
        else {
            return invalid(self);
        };
        if scheme == Scheme::Https && self.scheme == Scheme::Http {
            return State::Done(Err(MembershipError::Scheme {
                kind: self.kind,
                location: format!("{scheme}://{authority}{target}").into(),
                transport: self.scheme,
            }));
        }
        self.redirects += 1;
        self.followed = self.followed.saturating_add(1);
        self.authority = authority;
        self.target = target;
        State::Ready
    }
}

/// Resolves a `Location` against the current scheme and authority: an absolute `http(s)` URL,
/// a network-path reference (`//host/path`) or an absolute path. Anything else is refused.
fn resolve(scheme: Scheme, authority: &str, location: &str) -> Option<(Scheme, String, String)> {
    if !location.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let location = location
        .split_once('#')
        .map_or(location, |(before, _)| before);
    let (scheme, rest) = if let Some(rest) = location.strip_prefix("http://") {
        (Scheme::Http, Some(rest))
    } else if let Some(rest) = location.strip_prefix("https://") {
        (Scheme::Https, Some(rest))
    } else if let Some(rest) = location.strip_prefix("//") {
        (scheme, Some(rest))
    } else if location.starts_with('/') {
        (scheme, None)
    } else {
        return None;
    };
    let Some(rest) = rest else {
        return Some((scheme, authority.to_owned(), location.to_owned()));
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(split);
    check_authority(authority).ok()?;
    let target = match target {
        "" => "/".to_owned(),
        t if t.starts_with('?') => format!("/{t}"),
        t => t.to_owned(),
    };
    Some((scheme, authority.to_owned(), target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_locations() {
        let r = |l| resolve(Scheme::Http, "a:1", l);
        assert_eq!(
            r("http://b:2/raft?id=1"),
            Some((Scheme::Http, "b:2".into(), "/raft?id=1".into()))
        );
        assert_eq!(
            r("https://b:2"),
            Some((Scheme::Https, "b:2".into(), "/".into()))
        );
        assert_eq!(
            r("//b:2?x"),
            Some((Scheme::Http, "b:2".into(), "/?x".into()))
        );
        assert_eq!(
            r("/raft#f"),
            Some((Scheme::Http, "a:1".into(), "/raft".into()))
        );
        for bad in [
            "",
            "raft",
            "ftp://b/",
            "http://",
            "http://u@b/",
            "http://b c/",
            "/a b",
            "http://b:x/",
        ] {
            assert_eq!(r(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn first_request_uses_the_given_scheme() {
        let path = RaftPath::default();
        let client =
            MembershipClient::new(ChangeKind::Leave, &path, "1", "", "a:1", Instant::now());
        let mut client = client.expect("client").with_scheme(Scheme::Https);
        assert_eq!(client.url(), "https://a:1/raft?id=1");
        let Output::Transmit(transmit) = client.poll_output() else {
            panic!("expected a transmit");
        };
        assert_eq!(transmit.scheme, Scheme::Https);
    }

    #[test]
    fn change_error_messages_read_like_go() {
        assert_eq!(
            ChangeError::NotLeader { leader: None }.to_string(),
            "node is not leader, current leader unknown"
        );
        assert_eq!(
            ChangeError::NotLeader {
                leader: Some("127.0.0.1:1".into())
            }
            .to_string(),
            "node is not leader, current leader at: 127.0.0.1:1"
        );
        assert_eq!(
            ChangeError::Timeout.to_string(),
            "timeout waiting for membership change"
        );
        assert_eq!(ChangeKind::Join.to_string(), "join");
        assert_eq!(ChangeKind::Leave.to_string(), "leave");
    }
}
