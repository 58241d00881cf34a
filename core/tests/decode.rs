//! The decoder triad (STYLE.md section 6) for every decoder: `RequestDecoder`, `ResponseDecoder`
//! and `ClientHandshake::decode_response`, each fed the whole input at once, one byte at a time,
//! and followed by trailing bytes that must survive as the tail.

mod util;

use rafthttp_core::{
    BodyFraming, ClientHandshake, Decoded, HandshakeError, Limits, RaftPath, RequestDecoder,
    RequestError, RequestHead, ResponseDecoder, ResponseError, ResponseHead, Upgraded,
};

/// Bytes appended behind a complete head: they must come back untouched as the tail.
const TAIL: &[u8] = b"\x00tail\r\n\r\nGET / HTTP/1.1\r\n\r\n";

// ---------------------------------------------------------------------------------------------
// Triad drivers
// ---------------------------------------------------------------------------------------------

/// The two head decoders, so that one triad covers both.
trait HeadDecoder {
    type Head<'b>: Clone + PartialEq + std::fmt::Debug;
    type Error: Clone + PartialEq + std::fmt::Debug;
    /// A valid head of this kind, fed after an error to check the error is terminal.
    const OTHER_INPUT: &'static [u8];
    fn with_limits(limits: Limits) -> Self;
    fn decode_head<'b>(&mut self, buf: &'b [u8]) -> Result<Decoded<Self::Head<'b>>, Self::Error>;
    /// Whether two errors are the same for the split and tail checks. A malformed response
    /// reports the first line seen so far, so its message may be shorter when the error is
    /// found early: responses compare by variant, requests exactly.
    fn same(a: &Self::Error, b: &Self::Error) -> bool;
}

impl HeadDecoder for RequestDecoder {
    type Head<'b> = RequestHead<'b>;
    type Error = RequestError;
    const OTHER_INPUT: &'static [u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    fn with_limits(limits: Limits) -> Self {
        Self::new(limits)
    }
    fn decode_head<'b>(&mut self, buf: &'b [u8]) -> Result<Decoded<RequestHead<'b>>, RequestError> {
        self.decode(buf)
    }
    fn same(a: &RequestError, b: &RequestError) -> bool {
        a == b
    }
}

impl HeadDecoder for ResponseDecoder {
    type Head<'b> = ResponseHead<'b>;
    type Error = ResponseError;
    const OTHER_INPUT: &'static [u8] = b"HTTP/1.1 200 OK\r\n\r\n";
    fn with_limits(limits: Limits) -> Self {
        Self::new(limits)
    }
    fn decode_head<'b>(
        &mut self,
        buf: &'b [u8],
    ) -> Result<Decoded<ResponseHead<'b>>, ResponseError> {
        self.decode(buf)
    }
    fn same(a: &ResponseError, b: &ResponseError) -> bool {
        std::mem::discriminant(a) == std::mem::discriminant(b)
    }
}

/// Whole, byte by byte, with a tail: a valid head.
fn triad<D: HeadDecoder>(buf: &[u8], limits: Limits, check: impl Fn(&D::Head<'_>)) {
    let whole = D::with_limits(limits).decode_head(buf);
    let Ok(Decoded::Complete { value, consumed }) = whole.clone() else {
        panic!("whole input: expected a complete head, got {whole:?}");
    };
    assert_eq!(consumed, buf.len(), "the head is the whole input");
    check(&value);

    let mut decoder = D::with_limits(limits);
    for end in 0..buf.len() {
        assert_eq!(
            decoder.decode_head(&buf[..end]),
            Ok(Decoded::Incomplete),
            "byte by byte: {end} of {} bytes",
            buf.len()
        );
    }
    assert_eq!(decoder.decode_head(buf), whole, "byte by byte: last byte");

    let with_tail = [buf, TAIL].concat();
    match D::with_limits(limits).decode_head(&with_tail) {
        Ok(Decoded::Complete {
            value: tailed,
            consumed,
        }) => {
            assert_eq!(consumed, buf.len(), "with tail: consumed");
            assert_eq!(&with_tail[consumed..], TAIL, "with tail: the tail survives");
            // Heads borrow different buffers here, so they compare by their (derived) Debug form.
            assert_eq!(
                format!("{tailed:?}"),
                format!("{value:?}"),
                "with tail: same head"
            );
        }
        other => panic!("with tail: expected a complete head, got {other:?}"),
    }
}

/// Whole, byte by byte, with a tail: a head refused with an error matching `expected`.
/// Errors are terminal: every later call returns the same error, whatever the buffer.
/// Returns the error and how many bytes were fed when it was first reported.
fn error_triad<D: HeadDecoder>(
    buf: &[u8],
    limits: Limits,
    expected: impl Fn(&D::Error) -> bool,
) -> (D::Error, usize) {
    let mut decoder = D::with_limits(limits);
    let error = match decoder.decode_head(buf) {
        Err(error) => error,
        other => panic!("whole input: expected an error, got {other:?}"),
    };
    assert!(expected(&error), "whole input: unexpected error {error:?}");
    assert_eq!(
        decoder.decode_head(buf),
        Err(error.clone()),
        "terminal: same input"
    );
    assert_eq!(
        decoder.decode_head(D::OTHER_INPUT),
        Err(error.clone()),
        "terminal: another input"
    );

    let mut decoder = D::with_limits(limits);
    let mut failed_at = None;
    for end in 0..=buf.len() {
        match decoder.decode_head(&buf[..end]) {
            Ok(Decoded::Incomplete) => assert!(failed_at.is_none(), "an error is terminal"),
            Err(e) => {
                assert!(
                    D::same(&e, &error),
                    "byte by byte: {end} of {} bytes: {e:?} vs {error:?}",
                    buf.len()
                );
                failed_at.get_or_insert(end);
            }
            Ok(complete) => panic!("byte by byte: {end} bytes: unexpected {complete:?}"),
        }
    }
    let failed_at = failed_at.expect("byte by byte: no error");

    let with_tail = [buf, TAIL].concat();
    let tailed = D::with_limits(limits).decode_head(&with_tail);
    assert!(
        matches!(&tailed, Err(e) if D::same(e, &error)),
        "with tail: {tailed:?}"
    );
    (error, failed_at)
}

fn request_triad(buf: &[u8], limits: Limits, check: impl Fn(&RequestHead<'_>)) {
    triad::<RequestDecoder>(buf, limits, check);
}

fn request_error_triad(
    buf: &[u8],
    limits: Limits,
    expected: impl Fn(&RequestError) -> bool,
) -> RequestError {
    error_triad::<RequestDecoder>(buf, limits, expected).0
}

fn response_triad(buf: &[u8], limits: Limits, check: impl Fn(&ResponseHead<'_>)) {
    triad::<ResponseDecoder>(buf, limits, check);
}

fn response_error_triad(
    buf: &[u8],
    limits: Limits,
    expected: impl Fn(&ResponseError) -> bool,
) -> (ResponseError, usize) {
    error_triad::<ResponseDecoder>(buf, limits, expected)
}

fn handshake() -> ClientHandshake {
    ClientHandshake::new(
        &RaftPath::new("/raft").unwrap(),
        "127.0.0.1:17201",
        Limits::default(),
    )
    .unwrap()
}

/// Whole, byte by byte, with a tail: a response that completes the upgrade.
fn handshake_triad(buf: &[u8]) {
    let whole = handshake().decode_response(buf);
    assert_eq!(
        whole,
        Ok(Decoded::Complete {
            value: Upgraded { tail: b"" },
            consumed: buf.len()
        }),
        "whole input"
    );

    let mut hs = handshake();
    for end in 0..buf.len() {
        assert_eq!(
            hs.decode_response(&buf[..end]),
            Ok(Decoded::Incomplete),
            "byte by byte: {end} of {} bytes",
            buf.len()
        );
    }
    assert_eq!(hs.decode_response(buf), whole, "byte by byte: last byte");

    let with_tail = [buf, TAIL].concat();
    assert_eq!(
        handshake().decode_response(&with_tail),
        Ok(Decoded::Complete {
            value: Upgraded { tail: TAIL },
            consumed: buf.len()
        }),
        "with tail"
    );
}

/// Whole, byte by byte, with a tail: a response that refuses the upgrade.
fn handshake_error_triad(buf: &[u8], expected: &HandshakeError) {
    let mut hs = handshake();
    assert_eq!(
        hs.decode_response(buf),
        Err(expected.clone()),
        "whole input"
    );
    assert_eq!(hs.decode_response(buf), Err(expected.clone()), "terminal");

    let mut hs = handshake();
    let mut failed = false;
    for end in 0..=buf.len() {
        match hs.decode_response(&buf[..end]) {
            Ok(Decoded::Incomplete) => assert!(!failed, "an error is terminal"),
            Err(e) => {
                assert_eq!(
                    std::mem::discriminant(&e),
                    std::mem::discriminant(expected),
                    "byte by byte: {end} bytes"
                );
                failed = true;
            }
            Ok(complete) => panic!("byte by byte: {end} bytes: unexpected {complete:?}"),
        }
    }
    assert!(failed, "byte by byte: no error");
    let again = hs.decode_response(buf);
    assert!(
        matches!(&again, Err(e) if std::mem::discriminant(e) == std::mem::discriminant(expected)),
        "terminal: {again:?}"
    );

    let with_tail = [buf, TAIL].concat();
    assert_eq!(
        handshake().decode_response(&with_tail),
        Err(expected.clone()),
        "with tail"
    );
}

// ---------------------------------------------------------------------------------------------
// Table macros, in the manner of httparse's `req!` / `res!`: name, bytes, expected outcome.
// ---------------------------------------------------------------------------------------------

macro_rules! req {
    ($name:ident, $buf:expr, Err($pat:pat)) => {
        #[test]
        fn $name() {
            request_error_triad($buf, Limits::default(), |e| matches!(e, $pat));
        }
    };
    ($name:ident, $buf:expr, |$head:ident| $body:block) => {
        #[test]
        fn $name() {
            request_triad($buf, Limits::default(), |$head: &RequestHead<'_>| $body);
        }
    };
}

macro_rules! res {
    ($name:ident, $buf:expr, Err($pat:pat)) => {
        #[test]
        fn $name() {
            response_error_triad($buf, Limits::default(), |e| matches!(e, $pat));
        }
    };
    ($name:ident, $buf:expr, |$head:ident| $body:block) => {
        #[test]
        fn $name() {
            response_triad($buf, Limits::default(), |$head: &ResponseHead<'_>| $body);
        }
    };
}

macro_rules! upgrade {
    ($name:ident, $buf:expr, Ok) => {
        #[test]
        fn $name() {
            handshake_triad($buf);
        }
    };
    ($name:ident, $buf:expr, Err($err:expr)) => {
        #[test]
        fn $name() {
            handshake_error_triad($buf, &$err);
        }
    };
}

fn header<'b>(head: &RequestHead<'b>, name: &str) -> Option<&'b [u8]> {
    head.headers().get(name)
}

// ---------------------------------------------------------------------------------------------
// RequestDecoder
// ---------------------------------------------------------------------------------------------

req! {
    request_go_dial,
    b"GET /raft HTTP/1.1\r\nHost: 127.0.0.1:17100\r\nUser-Agent: Go-http-client/1.1\r\nUpgrade: raft\r\n\r\n",
    |head| {
        assert_eq!(head.method(), "GET");
        assert_eq!(head.target(), "/raft");
        assert_eq!(head.path(), "/raft");
        assert_eq!(head.query(), "");
        assert_eq!(head.minor_version(), 1);
        assert_eq!(head.headers().len(), 3);
        assert_eq!(header(head, "upgrade"), Some(&b"raft"[..]));
        assert_eq!(header(head, "UPGRADE"), Some(&b"raft"[..]));
        assert_eq!(header(head, "host"), Some(&b"127.0.0.1:17100"[..]));
        assert_eq!(header(head, "connection"), None);
        assert!(head.keep_alive());
        assert_eq!(head.body_len(), Ok(0));
        let names: Vec<_> = head.headers().iter().map(|h| h.name).collect();
        assert_eq!(names, ["Host", "User-Agent", "Upgrade"]);
    }
}

req! {
    request_membership_query,
    b"POST /raft?id=3&address=127.0.0.1:17103 HTTP/1.1\r\nHost: 127.0.0.1:17201\r\nContent-Length: 0\r\n\r\n",
    |head| {
        assert_eq!(head.method(), "POST");
        assert_eq!(head.target(), "/raft?id=3&address=127.0.0.1:17103");
        assert_eq!(head.path(), "/raft");
        assert_eq!(head.query(), "id=3&address=127.0.0.1:17103");
        assert_eq!(head.body_len(), Ok(0));
    }
}

req! {
    request_empty_query,
    b"DELETE /raft? HTTP/1.1\r\nHost: a\r\n\r\n",
    |head| {
        assert_eq!(head.path(), "/raft");
        assert_eq!(head.query(), "");
    }
}

req! {
    request_bare_lf,
    b"GET /raft HTTP/1.1\nHost: 127.0.0.1:17100\nUpgrade: raft\n\n",
    |head| {
        assert_eq!(head.path(), "/raft");
        assert_eq!(header(head, "upgrade"), Some(&b"raft"[..]));
        assert_eq!(head.headers().len(), 2);
    }
}

req! {
    request_bare_lf_ends_crlf_head,
    b"GET /raft HTTP/1.1\r\nHost: a\r\n\n",
    |head| { assert_eq!(header(head, "host"), Some(&b"a"[..])); }
}

req! {
    request_crlf_ends_bare_lf_head,
    b"GET /raft HTTP/1.1\nHost: a\n\r\n",
    |head| { assert_eq!(header(head, "host"), Some(&b"a"[..])); }
}

req! {
    request_no_headers,
    b"GET / HTTP/1.0\r\n\r\n",
    |head| {
        assert!(head.headers().is_empty());
        assert_eq!(head.minor_version(), 0);
    }
}

req! {
    request_leading_empty_lines,
    b"\r\n\r\nGET /raft HTTP/1.1\r\nHost: a\r\n\r\n",
    |head| {
        assert_eq!(head.method(), "GET");
        assert_eq!(head.path(), "/raft");
    }
}

req! {
    request_leading_bare_lf_lines,
    b"\n\n\r\nGET /raft HTTP/1.1\nHost: a\n\n",
    |head| { assert_eq!(head.path(), "/raft"); }
}

req! {
    request_http10_closes_by_default,
    b"GET /raft HTTP/1.0\r\nUpgrade: raft\r\n\r\n",
    |head| {
        assert_eq!(head.minor_version(), 0);
        assert!(!head.keep_alive());
    }
}

req! {
    request_http10_keep_alive,
    b"POST /raft?id=1 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
    |head| { assert!(head.keep_alive()); }
}

req! {
    request_http11_close,
    b"POST /raft?id=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    |head| { assert!(!head.keep_alive()); }
}

req! {
    request_close_in_token_list,
    b"GET /raft HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nconnection: keep-alive,  CLOSE \r\n\r\n",
    |head| {
        assert!(!head.keep_alive());
        assert!(head.headers().has_token("Connection", "upgrade"));
        assert!(!head.headers().has_token("Connection", "keep"));
    }
}

req! {
    request_close_wins_over_keep_alive_http10,
    b"GET /raft HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
    |head| { assert!(!head.keep_alive()); }
}

req! {
    request_connection_upgrade_keeps_alive,
    b"GET /raft HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: raft\r\n\r\n",
    |head| { assert!(head.keep_alive()); }
}

req! {
    request_content_length,
    b"POST /raft?id=3 HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n",
    |head| { assert_eq!(head.body_len(), Ok(11)); }
}

req! {
    request_content_length_repeated_agreeing,
    b"POST /raft?id=3 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length:5, 5\r\n\r\n",
    |head| { assert_eq!(head.body_len(), Ok(5)); }
}

req! {
    request_content_length_disagreeing,
    b"POST /raft?id=3 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    |head| {
        assert_eq!(head.body_len(), Err(RequestError::InvalidContentLength));
        assert_eq!(RequestError::InvalidContentLength.status(), 400);
    }
}

req! {
    request_content_length_not_a_number,
    b"POST /raft?id=3 HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    |head| { assert_eq!(head.body_len(), Err(RequestError::InvalidContentLength)); }
}

req! {
    request_content_length_empty,
    b"POST /raft?id=3 HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
    |head| { assert_eq!(head.body_len(), Err(RequestError::InvalidContentLength)); }
}

req! {
    request_transfer_encoding_refused,
    b"POST /raft?id=3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    |head| {
        let error = head.body_len().unwrap_err();
        assert_eq!(error, RequestError::TransferEncoding);
        assert_eq!(error.status(), 411);
    }
}

req! {
    request_transfer_encoding_wins_over_content_length,
    b"POST /raft?id=3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    |head| { assert_eq!(head.body_len(), Err(RequestError::TransferEncoding)); }
}

req! {
    request_absolute_form,
    b"GET http://127.0.0.1:17100/raft?x=1 HTTP/1.1\r\nHost: 127.0.0.1:17100\r\nUpgrade: raft\r\n\r\n",
    |head| {
        assert_eq!(head.target(), "http://127.0.0.1:17100/raft?x=1");
        assert_eq!(head.path(), "/raft");
        assert_eq!(head.query(), "x=1");
    }
}

req! {
    request_absolute_form_https_without_path,
    b"POST https://node-1:8443?id=3 HTTP/1.1\r\nHost: node-1:8443\r\n\r\n",
    |head| {
        assert_eq!(head.path(), "");
        assert_eq!(head.query(), "id=3");
    }
}

req! {
    request_absolute_form_authority_only,
    b"GET https://node-1:8443 HTTP/1.1\r\nHost: node-1:8443\r\n\r\n",
    |head| {
        assert_eq!(head.path(), "/");
        assert_eq!(head.query(), "");
    }
}

req! {
    request_header_value_ows_trimmed,
    b"GET /raft HTTP/1.1\r\nHost: a\r\nUpgrade: \t  raft \t \r\nX-Inner: a  b\tc\r\nX-Empty:\r\n\r\n",
    |head| {
        assert_eq!(header(head, "upgrade"), Some(&b"raft"[..]));
        assert_eq!(header(head, "x-inner"), Some(&b"a  b\tc"[..]));
        assert_eq!(header(head, "x-empty"), Some(&b""[..]));
    }
}

req! {
    request_header_value_obs_text,
    b"GET /raft HTTP/1.1\r\nHost: a\r\nX-Latin: caf\xe9\r\n\r\n",
    |head| { assert_eq!(header(head, "x-latin"), Some(&b"caf\xe9"[..])); }
}

req! {
    request_duplicate_headers_in_order,
    b"GET /raft HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nupgrade: raft\r\n\r\n",
    |head| {
        assert_eq!(header(head, "Upgrade"), Some(&b"websocket"[..]));
        let all: Vec<_> = head.headers().get_all("UPGRADE").collect();
        assert_eq!(all, [&b"websocket"[..], b"raft"]);
    }
}

req! {
    request_method_case_preserved,
    b"post /raft?id=3 HTTP/1.1\r\nHost: a\r\n\r\n",
    |head| { assert_eq!(head.method(), "post"); }
}

req! {
    request_percent_and_plus_kept_raw,
    b"POST /raft?id=a%20b+c&address=127.0.0.1%3A1 HTTP/1.1\r\nHost: a\r\n\r\n",
    |head| { assert_eq!(head.query(), "id=a%20b+c&address=127.0.0.1%3A1"); }
}

req! {
    request_unescaped_space_in_target,
    b"POST /raft?id=a&b c&address=127.0.0.1:17103/x?y HTTP/1.1\r\nHost: 127.0.0.1:17201\r\nContent-Length: 0\r\n\r\n",
    Err(RequestError::Malformed { .. })
}

req! {
    request_header_without_colon,
    b"GET /raft HTTP/1.1\r\nHost a\r\n\r\n",
    Err(RequestError::Malformed { .. })
}

req! {
    request_space_before_colon,
    b"GET /raft HTTP/1.1\r\nHost : a\r\n\r\n",
    Err(RequestError::Malformed { .. })
}

req! {
    request_obs_fold,
    b"GET /raft HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
    Err(RequestError::Malformed { .. })
}

req! {
    request_nul_in_header_value,
    b"GET /raft HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
    Err(RequestError::Malformed { .. })
}

req! {
    request_http2_version,
    b"GET /raft HTTP/2.0\r\nHost: a\r\n\r\n",
    Err(RequestError::Malformed { .. })
}

req! {
    request_http09_line,
    b"GET /raft\r\n\r\n",
    Err(RequestError::Malformed { .. })
}

req! {
    request_lone_cr_in_leading_lines,
    b"\r\rGET /raft HTTP/1.1\r\n\r\n",
    Err(RequestError::Malformed { .. })
}

req! {
    request_binary_garbage,
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",
    Err(RequestError::Malformed { .. })
}

#[test]
fn request_malformed_answers_400() {
    let error = request_error_triad(
        b"GET /raft HTTP/1.1\r\nHost a\r\n\r\n",
        Limits::default(),
        |e| matches!(e, RequestError::Malformed { .. }),
    );
    assert_eq!(error.status(), 400);
}

/// `n` header fields `X-N: v`, after `Host`.
fn with_headers(n: usize) -> Vec<u8> {
    let mut head = b"GET /raft HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 1..n {
        head.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// A head of exactly `len` bytes: a start line, `Host`, and one padding field.
fn head_of_len(len: usize) -> Vec<u8> {
    let start = b"GET /raft HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    let end = b"\r\n\r\n";
    let pad = len - start.len() - end.len();
    [&start[..], &vec![b'a'; pad], end].concat()
}

#[test]
fn request_limits_default() {
    let limits = Limits::default();
    assert_eq!(limits.max_head_bytes, 8 * 1024);
    assert_eq!(limits.max_headers, 32);
}

#[test]
fn request_head_at_the_byte_limit_is_accepted() {
    let limits = Limits::default();
    let head = head_of_len(limits.max_head_bytes);
    request_triad(&head, limits, |head| {
        assert_eq!(header(head, "x-pad").map(<[u8]>::len), Some(8192 - 40));
    });
}

#[test]
fn request_head_over_the_byte_limit_is_431() {
    let limits = Limits::default();
    let head = head_of_len(limits.max_head_bytes + 1);
    let error = request_error_triad(&head, limits, |e| {
        *e == RequestError::HeadTooLarge { limit: 8192 }
    });
    assert_eq!(error.status(), 431);
}

#[test]
fn request_head_over_the_limit_fails_as_soon_as_the_limit_is_passed() {
    // No end-of-head marker at all: byte by byte, the error comes with byte limit + 1, so the
    // caller never buffers more than the limit plus one read.
    let limits = Limits::default().with_max_head_bytes(100);
    let endless = [&b"GET /raft HTTP/1.1\r\nX-Long: "[..], &[b'a'; 400]].concat();
    let mut decoder = RequestDecoder::new(limits);
    for end in 0..=100 {
        assert_eq!(decoder.decode(&endless[..end]), Ok(Decoded::Incomplete));
    }
    let error = decoder.decode(&endless[..101]).unwrap_err();
    assert_eq!(error, RequestError::HeadTooLarge { limit: 100 });
    assert_eq!(error.status(), 431);
    // And the same when it is fed in one piece, or followed by an end-of-head marker.
    request_error_triad(&endless, limits, |e| {
        *e == RequestError::HeadTooLarge { limit: 100 }
    });
    let ended = [&endless[..], b"\r\n\r\n"].concat();
    request_error_triad(&ended, limits, |e| {
        *e == RequestError::HeadTooLarge { limit: 100 }
    });
}

#[test]
fn request_leading_empty_lines_count_toward_the_limit() {
    let limits = Limits::default().with_max_head_bytes(64);
    let lines = b"\r\n".repeat(40);
    request_error_triad(&lines, limits, |e| {
        *e == RequestError::HeadTooLarge { limit: 64 }
    });
}

#[test]
fn request_header_count_at_the_limit_is_accepted() {
    request_triad(&with_headers(32), Limits::default(), |head| {
        assert_eq!(head.headers().len(), 32);
    });
}

#[test]
fn request_too_many_headers_is_431() {
    let error = request_error_triad(&with_headers(33), Limits::default(), |e| {
        *e == RequestError::TooManyHeaders { limit: 32 }
    });
    assert_eq!(error.status(), 431);
    request_error_triad(
        &with_headers(3),
        Limits::default().with_max_headers(2),
        |e| *e == RequestError::TooManyHeaders { limit: 2 },
    );
}

#[test]
fn request_error_statuses() {
    let cases = [
        (RequestError::HeadTooLarge { limit: 1 }, 431),
        (RequestError::TooManyHeaders { limit: 1 }, 431),
        (RequestError::Malformed { reason: "x" }, 400),
        (RequestError::InvalidContentLength, 400),
        (RequestError::MissingHost, 400),
        (RequestError::TransferEncoding, 411),
        (RequestError::BodyTooLarge { limit: 1 }, 413),
    ];
    for (error, status) in cases {
        assert_eq!(error.status(), status, "{error:?}");
    }
}

#[test]
fn request_decoded_again_after_complete_is_the_same() {
    let buf = b"GET /raft HTTP/1.1\r\nHost: a\r\n\r\nrest";
    let mut decoder = RequestDecoder::new(Limits::default());
    let first = decoder.decode(buf);
    assert_eq!(decoder.decode(buf), first);
    assert!(matches!(first, Ok(Decoded::Complete { consumed: 31, .. })));
}

#[test]
fn request_pipelined_requests_decode_one_after_the_other() {
    let buf = b"POST /raft?id=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiDELETE /raft?id=1 HTTP/1.1\r\nHost: a\r\n\r\n";
    let Ok(Decoded::Complete { value, consumed }) =
        RequestDecoder::new(Limits::default()).decode(buf)
    else {
        panic!("first request");
    };
    assert_eq!(value.method(), "POST");
    let body = usize::try_from(value.body_len().unwrap()).unwrap();
    assert_eq!(&buf[consumed..consumed + body], b"hi");
    let rest = &buf[consumed + body..];
    let Ok(Decoded::Complete { value, consumed }) =
        RequestDecoder::new(Limits::default()).decode(rest)
    else {
        panic!("second request");
    };
    assert_eq!(value.method(), "DELETE");
    assert_eq!(consumed, rest.len());
}

#[test]
fn decoded_map_keeps_consumed() {
    let d = Decoded::Complete {
        value: 2,
        consumed: 7,
    };
    assert_eq!(
        d.map(|v| v * 10),
        Decoded::Complete {
            value: 20,
            consumed: 7
        }
    );
    assert_eq!(Decoded::<u8>::Incomplete.map(|v| v), Decoded::Incomplete);
}

// ---------------------------------------------------------------------------------------------
// ResponseDecoder
// ---------------------------------------------------------------------------------------------

res! {
    response_101,
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\n\r\n",
    |head| {
        assert_eq!(head.status(), 101);
        assert_eq!(head.reason(), "Switching Protocols");
        assert_eq!(head.minor_version(), 1);
        assert_eq!(head.headers().get("upgrade"), Some(&b"raft"[..]));
        assert_eq!(head.body_framing(), BodyFraming::Empty);
    }
}

res! {
    response_http10,
    b"HTTP/1.0 101 Switching Protocols\r\nupgrade: raft\r\n\r\n",
    |head| {
        assert_eq!(head.minor_version(), 0);
        assert_eq!(head.headers().get("Upgrade"), Some(&b"raft"[..]));
    }
}

res! {
    response_bare_lf,
    b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    |head| {
        assert_eq!(head.status(), 200);
        assert_eq!(head.body_framing(), BodyFraming::Empty);
    }
}

res! {
    response_redirect,
    b"HTTP/1.1 308 Permanent Redirect\r\nLocation: http://127.0.0.1:17202/raft?id=3&address=127.0.0.1:17103\r\nDate: Wed, 25 Nov 2026 19:38:41 GMT\r\nContent-Length: 0\r\n\r\n",
    |head| {
        assert_eq!(head.status(), 308);
        assert_eq!(
            head.headers().get("location"),
            Some(&b"http://127.0.0.1:17202/raft?id=3&address=127.0.0.1:17103"[..])
        );
    }
}

res! {
    response_long_reason,
    b"HTTP/1.1 400 Bad Request: missing required Host header\r\nConnection: close\r\n\r\n",
    |head| {
        assert_eq!(head.reason(), "Bad Request: missing required Host header");
        assert_eq!(head.body_framing(), BodyFraming::UntilClose);
    }
}

res! {
    response_without_reason,
    b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
    |head| {
        assert_eq!(head.status(), 200);
        assert_eq!(head.reason(), "");
    }
}

res! {
    response_without_reason_or_space,
    b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
    |head| {
        assert_eq!(head.status(), 200);
        assert_eq!(head.reason(), "");
    }
}

res! {
    response_content_length,
    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 30\r\n\r\n",
    |head| { assert_eq!(head.body_framing(), BodyFraming::Length(30)); }
}

res! {
    response_chunked,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    |head| { assert_eq!(head.body_framing(), BodyFraming::Chunked); }
}

res! {
    response_no_length,
    b"HTTP/1.1 400 Bad Request\r\n\r\n",
    |head| { assert_eq!(head.body_framing(), BodyFraming::UntilClose); }
}

res! {
    response_204_has_no_body,
    b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
    |head| { assert_eq!(head.body_framing(), BodyFraming::Empty); }
}

res! {
    response_304_has_no_body,
    b"HTTP/1.1 304 Not Modified\r\n\r\n",
    |head| { assert_eq!(head.body_framing(), BodyFraming::Empty); }
}

res! {
    response_garbage,
    b"garbage\r\n\r\n",
    Err(ResponseError::Malformed { .. })
}

res! {
    response_leading_empty_line,
    b"\r\nHTTP/1.1 200 OK\r\n\r\n",
    Err(ResponseError::Malformed { .. })
}

res! {
    response_bad_status,
    b"HTTP/1.1 abc OK\r\n\r\n",
    Err(ResponseError::Malformed { .. })
}

res! {
    response_two_digit_status,
    b"HTTP/1.1 42 Odd\r\n\r\n",
    Err(ResponseError::Malformed { .. })
}

res! {
    response_bad_version,
    b"HTTP/2 200 OK\r\n\r\n",
    Err(ResponseError::Malformed { .. })
}

res! {
    response_bad_header,
    b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
    Err(ResponseError::Malformed { .. })
}

#[test]
fn response_garbage_is_refused_at_once_and_reads_like_go() {
    let (error, at) = response_error_triad(b"garbage\r\n\r\n", Limits::default(), |e| {
        matches!(e, ResponseError::Malformed { .. })
    });
    assert_eq!(at, 1, "the first byte cannot start a response");
    assert_eq!(error.to_string(), r#"malformed HTTP response "garbage""#);
    // A prefix of "HTTP/" is not refused early; the first wrong byte is.
    let (_, at) = response_error_triad(b"HTTX/1.1 200 OK\r\n\r\n", Limits::default(), |e| {
        matches!(e, ResponseError::Malformed { .. })
    });
    assert_eq!(at, 4);
}

#[test]
fn response_malformed_line_is_cut_at_64_bytes() {
    let line = [b'x'; 100];
    let buf = [&line[..], b"\r\n\r\n"].concat();
    let Err(ResponseError::Malformed { line }) =
        ResponseDecoder::new(Limits::default()).decode(&buf)
    else {
        panic!("expected malformed");
    };
    assert_eq!(&*line, "x".repeat(64));
}

#[test]
fn response_limits() {
    let limits = Limits::default().with_max_head_bytes(64);
    let long = [&b"HTTP/1.1 200 OK\r\nX: "[..], &[b'a'; 100], b"\r\n\r\n"].concat();
    let (error, at) = response_error_triad(&long, limits, |e| {
        *e == ResponseError::HeadTooLarge { limit: 64 }
    });
    assert_eq!(at, 65);
    assert_eq!(error.to_string(), "response head exceeds 64 bytes");

    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..33 {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    response_error_triad(&many, Limits::default(), |e| {
        *e == ResponseError::TooManyHeaders { limit: 32 }
    });
}

#[test]
fn response_go_captures_decode() {
    // Every response the Go server sent decodes, Date line and all.
    for name in [
        "srv_get_upgrade.response.bin",
        "srv_get_no_upgrade.response.bin",
        "srv_post_leader.response.bin",
        "srv_post_ok.response.bin",
        "srv_get_long_header.response.bin",
        "srv_get_upgrade_http11_no_host.response.bin",
        "srv_head.response.bin",
    ] {
        let bytes = util::vector(name);
        let (head, consumed) = util::response(&bytes);
        let body = util::body(&head, &bytes[consumed..], name == "srv_head.response.bin");
        assert_eq!(consumed + body.len(), bytes.len(), "{name}");
        response_triad(&bytes[..consumed], Limits::default(), |_| {});
    }
}

// ---------------------------------------------------------------------------------------------
// ClientHandshake::decode_response
// ---------------------------------------------------------------------------------------------

upgrade! {
    handshake_go_101,
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\n\r\n",
    Ok
}

upgrade! {
    handshake_our_101,
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\nConnection: Upgrade\r\n\r\n",
    Ok
}

upgrade! {
    handshake_lowercase_name,
    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: raft\r\n\r\n",
    Ok
}

upgrade! {
    handshake_http10,
    b"HTTP/1.0 101 Switching Protocols\r\nUpgrade: raft\r\n\r\n",
    Ok
}

upgrade! {
    handshake_bare_lf,
    b"HTTP/1.1 101 Switching Protocols\nUpgrade:  raft \n\n",
    Ok
}

upgrade! {
    handshake_first_upgrade_counts,
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\nUpgrade: websocket\r\n\r\n",
    Ok
}

upgrade! {
    handshake_200,
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    Err(HandshakeError::UnexpectedStatus { status: 200 })
}

upgrade! {
    handshake_404_with_body,
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 19\r\n\r\n",
    Err(HandshakeError::UnexpectedStatus { status: 404 })
}

upgrade! {
    handshake_no_upgrade,
    b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    Err(HandshakeError::MissingUpgrade)
}

upgrade! {
    handshake_upgrade_case_sensitive_value,
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: RAFT\r\n\r\n",
    Err(HandshakeError::MissingUpgrade)
}

upgrade! {
    handshake_upgrade_list,
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft, websocket\r\n\r\n",
    Err(HandshakeError::MissingUpgrade)
}

upgrade! {
    handshake_garbage,
    b"garbage\r\n\r\n",
    Err(HandshakeError::Response(ResponseError::Malformed { line: "garbage".into() }))
}

#[test]
fn handshake_errors_read_like_go() {
    let cases: [(&[u8], &str); 3] = [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            "dialing fail: expected status code 101 got 200",
        ),
        (
            b"garbage\r\n\r\n",
            r#"failed to read response: malformed HTTP response "garbage""#,
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "missing or unexpected Upgrade header in response",
        ),
    ];
    for (bytes, message) in cases {
        let error = handshake().decode_response(bytes).unwrap_err();
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn handshake_tail_is_every_byte_after_the_head() {
    let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\n\r\n";
    // Raft bytes that look like HTTP, or like an end-of-head marker, are still raw stream.
    for tail in [
        &b"hello"[..],
        b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"\x00\x87\xa7Entries",
    ] {
        let buf = [&head[..], tail].concat();
        let Ok(Decoded::Complete { value, consumed }) = handshake().decode_response(&buf) else {
            panic!("upgrade with tail {tail:?}");
        };
        assert_eq!(consumed, head.len());
        assert_eq!(value.tail, tail);
    }
}

#[test]
fn handshake_response_limits() {
    let mut hs = ClientHandshake::new(
        &RaftPath::default(),
        "127.0.0.1:1",
        Limits::default().with_max_head_bytes(64),
    )
    .unwrap();
    let long = [
        &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\nX: "[..],
        &[b'a'; 64],
        b"\r\n\r\n",
    ]
    .concat();
    assert_eq!(
        hs.decode_response(&long),
        Err(HandshakeError::Response(ResponseError::HeadTooLarge {
            limit: 64
        }))
    );
}

#[test]
fn request_not_starting_with_a_method_is_refused_at_its_first_byte() {
    // The start of a TLS ClientHello: no end of head would ever come.
    let hello = [
        0x16, 0x03, 0x01, 0x00, 0xf4, 0x01, 0x00, 0x00, 0xf0, 0x03, 0x03,
    ];
    let e = request_error_triad(&hello, Limits::default(), |e| {
        matches!(e, RequestError::Malformed { .. })
    });
    assert_eq!(
        e.to_string(),
        "malformed request: a TLS handshake on a plain HTTP connection"
    );
    assert_eq!(
        RequestDecoder::new(Limits::default()).decode(&hello[..1]),
        Err(e)
    );

    let e = request_error_triad(b"\r\n\x00GET / HTTP/1.1\r\n\r\n", Limits::default(), |e| {
        matches!(e, RequestError::Malformed { .. })
    });
    assert_eq!(
        e.to_string(),
        "malformed request: the request line does not start with a method"
    );
}
