//! Incremental decoding of HTTP/1.x message heads with limits.
//!
//! httparse re-parses from the start on every call and bounds only the header count, so the
//! decoders here first look for the end-of-head marker (an empty line, CRLF or bare LF) and hand the
//! head to httparse once, after it has arrived. Scanning resumes where the previous call stopped,
//! so feeding a head in many small pieces costs linear time. The byte limit is enforced while
//! scanning.

use crate::error::{RequestError, ResponseError};

/// Bounds on a message. Over-limit input is an error (431 for a head, 413 for a body on the
/// server side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest head accepted, in bytes, including the start line and the final empty line
    /// (default 8 KiB).
    pub max_head_bytes: usize,
    /// Largest number of header fields accepted (default 32).
    pub max_headers: usize,
    /// Largest request body a server connection reads (default 64 KiB): membership requests
    /// carry none, a fallback route may want a small one.
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head_bytes: 8 * 1024,
            max_headers: 32,
            max_body: 64 * 1024,
        }
    }
}

impl Limits {
    /// Sets the largest head accepted, in bytes.
    #[must_use]
    pub fn with_max_head_bytes(mut self, bytes: usize) -> Self {
        self.max_head_bytes = bytes;
        self
    }

    /// Sets the largest number of header fields accepted.
    #[must_use]
    pub fn with_max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// Sets the largest request body a server connection reads.
    #[must_use]
    pub fn with_max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }
}

/// Result of one decode step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decoded<T> {
    /// The head is not complete yet: append more bytes to the buffer and call again with all of
    /// it (the bytes already seen are not rescanned).
    Incomplete,
    /// The head is complete.
    Complete {
        /// What was decoded; it may borrow from the buffer.
        value: T,
        /// Bytes of the buffer that the head occupied. `buf[consumed..]` is the tail: bytes that
        /// follow the head (a body, the next request, or the upgraded stream).
        consumed: usize,
    },
}

impl<T> Decoded<T> {
    /// Maps the decoded value, keeping `consumed`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Decoded<U> {
        match self {
            Self::Incomplete => Decoded::Incomplete,
            Self::Complete { value, consumed } => Decoded::Complete {
                value: f(value),
                consumed,
            },
        }
    }
}

/// One header field, borrowed from the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'b> {
    /// Field name as sent (compare case-insensitively).
    pub name: &'b str,
    /// Field value as sent, without surrounding whitespace.
    pub value: &'b [u8],
}

/// The header fields of a head, in order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Headers<'b> {
    fields: Vec<Header<'b>>,
}

impl<'b> Headers<'b> {
    /// The value of the first field named `name` (case-insensitive), like Go's `Header.Get`.
    pub fn get(&self, name: &str) -> Option<&'b [u8]> {
        self.get_all(name).next()
    }

    /// Every value of the fields named `name` (case-insensitive), in order.
    pub fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's {
        self.fields
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Whether any field named `name` carries the comma-separated token `token`
    /// (both case-insensitive), as in `Connection: keep-alive, Upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name).any(|value| {
            value
                .split(|&b| b == b',')
                .any(|t| trim(t).eq_ignore_ascii_case(token.as_bytes()))
        })
    }

    /// All fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header<'b>> {
        self.fields.iter()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn from_httparse(raw: &[httparse::Header<'b>]) -> Self {
        Self {
            fields: raw
                .iter()
                .map(|h| Header {
                    name: h.name,
                    value: trim(h.value),
                })
                .collect(),
        }
    }

    /// The body length announced by `Content-Length`, if any. Several fields must agree.
    fn content_length(&self) -> Result<Option<u64>, ()> {
        let mut found = None;
        for value in self.get_all("content-length") {
            // A list such as "5, 5" is what some proxies produce when merging fields.
            for item in value.split(|&b| b == b',') {
                let n = parse_decimal(trim(item)).ok_or(())?;
                if found.is_some_and(|f| f != n) {
                    return Err(());
                }
                found = Some(n);
            }
        }
        Ok(found)
    }
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
    })
}

/// Trims HTTP optional whitespace (spaces and tabs).
pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Finds the end of a head incrementally.
#[derive(Clone, Debug)]
struct HeadScanner {
    limits: Limits,
    /// Bytes at the start of the buffer known to hold no end-of-head marker start.
    scanned: usize,
    /// Whether the empty lines a request may start with have been skipped.
    past_leading: bool,
    /// The first byte after them and its offset, once it has arrived.
    first: Option<(usize, u8)>,
}

enum Scan {
    /// The buffer holds a candidate head of this many bytes.
    End(usize),
    Incomplete,
    TooLarge,
}

impl HeadScanner {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            scanned: 0,
            past_leading: false,
            first: None,
        }
    }

    /// Looks for the next empty line (`\n\n` or `\n\r\n`) in `buf`.
    fn scan(&mut self, buf: &[u8]) -> Scan {
        let mut i = self.scanned;
        if !self.past_leading {
            // Empty lines before the start line are skipped (RFC 9112 section 2.2), as httparse does.
            while let Some(b'\r' | b'\n') = buf.get(i) {
                i += 1;
            }
            self.past_leading = i < buf.len();
            self.first = buf.get(i).map(|&b| (i, b));
        }
        while let Some(&b) = buf.get(i) {
            if b == b'\n' {
                match (buf.get(i + 1), buf.get(i + 2)) {
                    (Some(b'\n'), _) => return self.found(i + 2),
                    (Some(b'\r'), Some(b'\n')) => return self.found(i + 3),
                    (Some(b'\r'), None) | (None, _) => break,
                    _ => {}
                }
            }
            i += 1;
        }
        self.scanned = i;
        if buf.len() > self.limits.max_head_bytes {
            Scan::TooLarge
        } else {
            Scan::Incomplete
        }
    }

    fn found(&mut self, end: usize) -> Scan {
        if end > self.limits.max_head_bytes {
            Scan::TooLarge
        } else {
            Scan::End(end)
        }
    }
}

/// A decoded request head, borrowing from the caller's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead<'b> {
    method: &'b str,
    target: &'b str,
    minor_version: u8,
    headers: Headers<'b>,
}

impl<'b> RequestHead<'b> {
    /// A head view of a request that an HTTP server in front already parsed (and bounded): a
    /// hyper or axum mount hands the core its method, origin-form target (`/raft?id=1`),
    /// `HTTP/1.x` minor version and fields, without a second pass of the decoder's limits.
    pub fn from_parts(
        method: &'b str,
        target: &'b str,
        minor_version: u8,
        fields: Vec<Header<'b>>,
    ) -> Self {
        Self {
            method,
            target,
            minor_version,
            headers: Headers { fields },
        }
    }

    /// The method, case preserved (methods are case-sensitive).
    pub fn method(&self) -> &'b str {
        self.method
    }

    /// The request target as sent (origin-form `/raft?id=1`, or absolute-form).
    pub fn target(&self) -> &'b str {
        self.target
    }

    /// The path of the target, without the query. For an absolute-form target
    /// (`http://host/raft`) the scheme and authority are dropped.
    pub fn path(&self) -> &'b str {
        let origin = origin_form(self.target);
        origin.split_once('?').map_or(origin, |(path, _)| path)
    }

    /// The raw (still percent-encoded) query of the target, without the `?`; empty when absent.
    pub fn query(&self) -> &'b str {
        origin_form(self.target)
            .split_once('?')
            .map_or("", |(_, query)| query)
    }

    /// The HTTP minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers<'b> {
        &self.headers
    }

    /// Whether the client waits for `100 Continue` before sending its body
    /// (`Expect: 100-continue`, as curl sends for larger bodies).
    pub fn expects_continue(&self) -> bool {
        self.minor_version >= 1 && self.headers.has_token("expect", "100-continue")
    }

    /// Whether the client allows the connection to stay open after the response
    /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub fn keep_alive(&self) -> bool {
        if self.headers.has_token("connection", "close") {
            false
        } else {
            self.minor_version >= 1 || self.headers.has_token("connection", "keep-alive")
        }
    }

    /// The length of the request body, from `Content-Length` (0 when absent).
    ///
    /// # Errors
    /// [`RequestError::TransferEncoding`] when the request uses `Transfer-Encoding` (chunked
    /// bodies are refused: the server cannot skip them within a bound), and
    /// [`RequestError::InvalidContentLength`] when `Content-Length` is not a number or several
    /// disagree.
    pub fn body_len(&self) -> Result<u64, RequestError> {
        if self.headers.get("transfer-encoding").is_some() {
            return Err(RequestError::TransferEncoding);
        }
        self.headers
            .content_length()
            .map(|len| len.unwrap_or(0))
            .map_err(|()| RequestError::InvalidContentLength)
    }
}

/// Whether `b` may appear in a token such as a method (RFC 9110 section 5.6.2).
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Strips `scheme://authority` from an absolute-form target.
fn origin_form(target: &str) -> &str {
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"));
    match rest {
        Some(rest) => rest.find(['/', '?']).map_or("/", |i| &rest[i..]),
        None => target,
    }
}

/// Decodes one request head incrementally (server side).
///
/// Keep appending to one buffer and pass all of it on every call; after
/// [`Decoded::Complete`] the caller removes `consumed` bytes and uses a new decoder for the next
/// request. Errors are terminal: once `decode` failed, it keeps returning the same error.
#[derive(Clone, Debug)]
pub struct RequestDecoder {
    scanner: HeadScanner,
    error: Option<RequestError>,
}

impl RequestDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            scanner: HeadScanner::new(limits),
            error: None,
        }
    }

    /// Decodes the head at the start of `buf`.
    ///
    /// # Errors
    /// A [`RequestError`] whose [`status`](RequestError::status) is the answer to send:
    /// 431 over the limits, 400 for a malformed head.
    pub fn decode<'b>(&mut self, buf: &'b [u8]) -> Result<Decoded<RequestHead<'b>>, RequestError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let result = self.decode_inner(buf);
        if let Err(error) = &result {
            self.error = Some(error.clone());
        }
        result
    }

    fn decode_inner<'b>(
        &mut self,
        buf: &'b [u8],
    ) -> Result<Decoded<RequestHead<'b>>, RequestError> {
        let limits = self.scanner.limits;
        let scan = self.scanner.scan(buf);
        // A request line starts with a method token. Anything else (a TLS handshake sent to a
        // plain HTTP port, say) is refused as soon as its first byte arrives, not at the
        // limit or the timeout: the peer is then not left waiting for an answer. (Within the
        // limit only, so that the outcome does not depend on how the input was split.)
        match self.scanner.first {
            Some((at, b)) if at < limits.max_head_bytes && !is_token_byte(b) => {
                let reason = if b == 0x16 {
                    "a TLS handshake on a plain HTTP connection"
                } else {
                    "the request line does not start with a method"
                };
                return Err(RequestError::Malformed { reason });
            }
            _ => {}
        }
        let end = match scan {
            Scan::End(end) => end,
            Scan::Incomplete => return Ok(Decoded::Incomplete),
            Scan::TooLarge => {
                return Err(RequestError::HeadTooLarge {
                    limit: limits.max_head_bytes,
                });
            }
        };
        let mut raw = vec![httparse::EMPTY_HEADER; limits.max_headers];
        let mut req = httparse::Request::new(&mut raw);
        match req.parse(&buf[..end]) {
            Ok(httparse::Status::Complete(consumed)) => {
                let (Some(method), Some(target), Some(minor_version)) =
                    (req.method, req.path, req.version)
                else {
                    return Err(RequestError::Malformed {
                        reason: "incomplete request line",
                    });
                };
                Ok(Decoded::Complete {
                    value: RequestHead {
                        method,
                        target,
                        minor_version,
                        headers: Headers::from_httparse(req.headers),
                    },
                    consumed,
                })
            }
            // The scanner skipped leading empty lines, so a candidate head that httparse
            // finds incomplete is malformed (for instance a lone CR in the start line).
            Ok(httparse::Status::Partial) => Err(RequestError::Malformed {
                reason: "incomplete request head",
            }),
            Err(httparse::Error::TooManyHeaders) => Err(RequestError::TooManyHeaders {
                limit: limits.max_headers,
            }),
            Err(e) => Err(RequestError::Malformed {
                reason: parse_error_reason(e),
            }),
        }
    }
}

fn parse_error_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// A decoded response head, borrowing from the caller's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead<'b> {
    minor_version: u8,
    status: u16,
    reason: &'b str,
    headers: Headers<'b>,
}

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyFraming {
    /// No body (1xx, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

impl<'b> ResponseHead<'b> {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase.
    pub fn reason(&self) -> &'b str {
        self.reason
    }

    /// The HTTP minor version.
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers<'b> {
        &self.headers
    }

    /// How the body that follows is delimited (for a response to a request other than HEAD).
    pub fn body_framing(&self) -> BodyFraming {
        if self.status < 200 || self.status == 204 || self.status == 304 {
            BodyFraming::Empty
        } else if self.headers.get("transfer-encoding").is_some() {
            BodyFraming::Chunked
        } else {
            match self.headers.content_length() {
                Ok(Some(0)) => BodyFraming::Empty,
                Ok(Some(n)) => BodyFraming::Length(n),
                Ok(None) | Err(()) => BodyFraming::UntilClose,
            }
        }
    }
}

/// Decodes one response head incrementally (client side). Same contract as [`RequestDecoder`].
#[derive(Clone, Debug)]
pub struct ResponseDecoder {
    scanner: HeadScanner,
    error: Option<ResponseError>,
}

impl ResponseDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            scanner: HeadScanner::new(limits),
            error: None,
        }
    }

    /// Decodes the head at the start of `buf`.
    ///
    /// # Errors
    /// [`ResponseError`] when the head is malformed or over the limits.
    pub fn decode<'b>(
        &mut self,
        buf: &'b [u8],
    ) -> Result<Decoded<ResponseHead<'b>>, ResponseError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let result = self.decode_inner(buf);
        if let Err(error) = &result {
            self.error = Some(error.clone());
        }
        result
    }

    fn decode_inner<'b>(
        &mut self,
        buf: &'b [u8],
    ) -> Result<Decoded<ResponseHead<'b>>, ResponseError> {
        let limits = self.scanner.limits;
        // A response never starts with an empty line; anything that cannot start
        // "HTTP/" is rejected at once rather than after the limit.
        if !buf.is_empty() && !b"HTTP/".starts_with(&buf[..buf.len().min(5)]) {
            return Err(ResponseError::malformed(buf));
        }
        let end = match self.scanner.scan(buf) {
            Scan::End(end) => end,
            Scan::Incomplete => return Ok(Decoded::Incomplete),
            Scan::TooLarge => {
                return Err(ResponseError::HeadTooLarge {
                    limit: limits.max_head_bytes,
                });
            }
        };
        let mut raw = vec![httparse::EMPTY_HEADER; limits.max_headers];
        let mut res = httparse::Response::new(&mut raw);
        match res.parse(&buf[..end]) {
            Ok(httparse::Status::Complete(consumed)) => {
                let (Some(minor_version), Some(status)) = (res.version, res.code) else {
                    return Err(ResponseError::malformed(buf));
                };
                Ok(Decoded::Complete {
                    value: ResponseHead {
                        minor_version,
                        status,
                        reason: res.reason.unwrap_or(""),
                        headers: Headers::from_httparse(res.headers),
                    },
                    consumed,
                })
            }
            Err(httparse::Error::TooManyHeaders) => Err(ResponseError::TooManyHeaders {
                limit: limits.max_headers,
            }),
            Ok(httparse::Status::Partial) | Err(_) => Err(ResponseError::malformed(buf)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_strips_spaces_and_tabs_only() {
        assert_eq!(trim(b" \t raft \t"), b"raft");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(trim(b"\rraft"), b"\rraft");
    }

    #[test]
    fn content_length_must_agree() {
        let fields = |v: &'static [&'static str]| Headers {
            fields: v
                .iter()
                .map(|value| Header {
                    name: "Content-Length",
                    value: value.as_bytes(),
                })
                .collect(),
        };
        assert_eq!(fields(&["5"]).content_length(), Ok(Some(5)));
        assert_eq!(fields(&["5", "5"]).content_length(), Ok(Some(5)));
        assert_eq!(fields(&["5, 5"]).content_length(), Ok(Some(5)));
        assert_eq!(fields(&["5", "6"]).content_length(), Err(()));
        assert_eq!(fields(&["-1"]).content_length(), Err(()));
        assert_eq!(fields(&["+1"]).content_length(), Err(()));
        assert_eq!(fields(&[""]).content_length(), Err(()));
        assert_eq!(fields(&["99999999999999999999"]).content_length(), Err(()));
        assert_eq!(fields(&[]).content_length(), Ok(None));
    }

    #[test]
    fn absolute_form_targets_route_on_their_path() {
        assert_eq!(origin_form("http://h:1/raft?id=1"), "/raft?id=1");
        assert_eq!(origin_form("https://h"), "/");
        assert_eq!(origin_form("http://h?x"), "?x");
        assert_eq!(origin_form("/raft"), "/raft");
    }

    #[test]
    fn scanner_finds_crlf_and_bare_lf_ends_across_calls() {
        let mut s = HeadScanner::new(Limits::default());
        assert!(matches!(s.scan(b"GET / HTTP/1.1\r\n\r"), Scan::Incomplete));
        assert!(matches!(s.scan(b"GET / HTTP/1.1\r\n\r\nx"), Scan::End(18)));
        let mut s = HeadScanner::new(Limits::default());
        assert!(matches!(s.scan(b"GET / HTTP/1.1\n\nx"), Scan::End(16)));
    }
}
