//! Property tests (STYLE.md section 6): heads round-trip through encode and decode with
//! `consumed == len`; anything that decodes re-encodes to something that decodes equal; the
//! result never depends on how the input is split; every response we build decodes back; and
//! membership requests for any id and address reach the application intact.

mod util;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;
use rafthttp_core::connection::{Event, ServerConnection};
use rafthttp_core::membership::{ChangeKind, MembershipClient, Output};
use rafthttp_core::{
    Availability, ChangeError, Decoded, Limits, RaftPath, RequestDecoder, RequestError,
    RequestHead, Response, ResponseDecoder, ResponseError, ResponseHead, Route, Router, Scheme,
};

/// Cases per property: enough to find the usual suspects, few enough to keep the suite fast.
/// The seed is fixed so every run checks the same cases; `PROPTEST_CASES` and
/// `PROPTEST_RNG_SEED` still override both for a deeper or different search.
fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    let set = |var| std::env::var_os(var).is_some();
    ProptestConfig {
        cases: if set("PROPTEST_CASES") {
            default.cases
        } else {
            256
        },
        rng_seed: if set("PROPTEST_RNG_SEED") {
            default.rng_seed
        } else {
            RngSeed::Fixed(0x7261_6674)
        },
        // A failure is reproducible from the fixed seed; no regression files in the tree.
        failure_persistence: None,
        ..default
    }
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// A request head as the test builds it.
#[derive(Debug, Clone)]
struct Head {
    method: String,
    target: String,
    minor: u8,
    headers: Vec<(String, Vec<u8>)>,
    /// Bare LF line endings instead of CRLF.
    bare_lf: bool,
    /// Whitespace put around each value (the decoder trims it).
    ows: &'static str,
}

impl Head {
    fn encode(&self) -> Vec<u8> {
        let eol: &[u8] = if self.bare_lf { b"\n" } else { b"\r\n" };
        let mut out = format!("{} {} HTTP/1.{}", self.method, self.target, self.minor).into_bytes();
        out.extend_from_slice(eol);
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.push(b':');
            out.extend_from_slice(self.ows.as_bytes());
            out.extend_from_slice(value);
            out.extend_from_slice(self.ows.as_bytes());
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(eol);
        out
    }
}

/// Percent-encodes everything but unreserved characters (the test's own encoder).
fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["GET", "POST", "DELETE", "PUT", "HEAD", "PATCH", "post"])
            .prop_map(str::to_owned),
        1 => "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}",
    ]
}

fn target() -> impl Strategy<Value = String> {
    let path = "/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,24}";
    let pairs = prop::collection::vec((".{0,8}", ".{0,16}"), 0..4);
    let origin = (path, prop::option::of(pairs)).prop_map(|(path, pairs)| match pairs {
        None => path,
        Some(pairs) => {
            let query: Vec<_> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
                .collect();
            format!("{path}?{}", query.join("&"))
        }
    });
    prop_oneof![
        4 => origin.clone(),
        1 => ("(http|https)://[a-z0-9.-]{1,12}(:[0-9]{1,5})?", origin)
            .prop_map(|(authority, origin)| format!("{authority}{origin}")),
        1 => Just("*".to_owned()),
    ]
}

fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
    let name = "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}";
    // Visible ASCII or obs-text at both ends, spaces and tabs only inside.
    let edge = prop_oneof![0x21u8..=0x7e, 0x80u8..=0xff];
    let inner = prop_oneof![0x20u8..=0x7e, 0x80u8..=0xff, Just(b'\t')];
    let value = prop_oneof![
        1 => Just(Vec::new()),
        8 => (edge.clone(), prop::collection::vec(inner, 0..24), edge).prop_map(|(a, mid, z)| {
            let mut v = vec![a];
            v.extend(mid);
            v.push(z);
            v
        }),
    ];
    (name, value)
}

fn head() -> impl Strategy<Value = Head> {
    (
        method(),
        target(),
        0u8..=1,
        prop::collection::vec(header(), 0..=32),
        any::<bool>(),
        prop::sample::select(vec!["", " ", "\t", "  \t "]),
    )
        .prop_map(|(method, target, minor, headers, bare_lf, ows)| Head {
            method,
            target,
            minor,
            headers,
            bare_lf,
            ows,
        })
}

/// Bytes that look like HTTP often enough to get past the start line.
fn http_ish() -> impl Strategy<Value = Vec<u8>> {
    const PIECES: &[&[u8]] = &[
        b"GET ",
        b"POST /raft?id=3 ",
        b"/raft",
        b" HTTP/1.1",
        b"HTTP/1.1 ",
        b"HTTP/1.0 101 Switching Protocols",
        b"200 OK",
        b"\r\n",
        b"\n",
        b"\r",
        b"Host: a",
        b"Upgrade: raft",
        b"Content-Length: 5",
        b"Transfer-Encoding: chunked",
        b": ",
        b" ",
        b"\t",
        b"\x00",
        b"\xff",
    ];
    let piece = prop::sample::select(PIECES).prop_map(<[u8]>::to_vec);
    let any_piece = prop_oneof![8 => piece, 1 => prop::collection::vec(any::<u8>(), 1..4)];
    prop::collection::vec(any_piece, 0..32).prop_map(|pieces| pieces.concat())
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => http_ish(),
        1 => prop::collection::vec(any::<u8>(), 0..128),
        2 => head().prop_map(|h| h.encode()),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        3 => Just(Limits::default()),
        1 => (8usize..256, 0usize..6).prop_map(|(bytes, headers)| {
            Limits::default().with_max_head_bytes(bytes).with_max_headers(headers)
        }),
    ]
}

/// Sorted split points inside `len`.
fn splits(len: usize, at: &[Index]) -> Vec<usize> {
    let mut points: Vec<usize> = at.iter().map(|i| i.index(len + 1)).collect();
    points.sort_unstable();
    points.dedup();
    points
}

fn feed_request<'b>(
    data: &'b [u8],
    points: &[usize],
    limits: Limits,
) -> Result<Decoded<RequestHead<'b>>, RequestError> {
    let mut decoder = RequestDecoder::new(limits);
    for &p in points {
        match decoder.decode(&data[..p]) {
            Ok(Decoded::Incomplete) => {}
            done => return done,
        }
    }
    decoder.decode(data)
}

fn feed_response<'b>(
    data: &'b [u8],
    points: &[usize],
    limits: Limits,
) -> Result<Decoded<ResponseHead<'b>>, ResponseError> {
    let mut decoder = ResponseDecoder::new(limits);
    for &p in points {
        match decoder.decode(&data[..p]) {
            Ok(Decoded::Incomplete) => {}
            done => return done,
        }
    }
    decoder.decode(data)
}

/// Re-encodes a decoded request head.
fn reencode(head: &RequestHead<'_>) -> Vec<u8> {
    let mut out = format!(
        "{} {} HTTP/1.{}\r\n",
        head.method(),
        head.target(),
        head.minor_version()
    )
    .into_bytes();
    for h in head.headers().iter() {
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn request_error() -> impl Strategy<Value = RequestError> {
    prop_oneof![
        any::<usize>().prop_map(|limit| RequestError::HeadTooLarge { limit }),
        any::<usize>().prop_map(|limit| RequestError::TooManyHeaders { limit }),
        prop::sample::select(vec!["invalid token", "invalid header name", ""])
            .prop_map(|reason| RequestError::Malformed { reason }),
        Just(RequestError::InvalidContentLength),
        Just(RequestError::TransferEncoding),
        any::<u64>().prop_map(|limit| RequestError::BodyTooLarge { limit }),
        Just(RequestError::MissingHost),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    let base = prop_oneof![
        Just(Response::switching_protocols()),
        Just(Response::ok()),
        Just(Response::closed()),
        Just(Response::not_found()),
        Just(Response::busy()),
        "[!-~]{0,80}".prop_map(Response::redirect),
        // 1xx, 204 and 304 carry no body in HTTP; `text` is not meant for them.
        (200u16..600)
            .prop_filter("statuses with a body", |s| *s != 204 && *s != 304)
            .prop_flat_map(|s| (Just(s), ".{0,64}"))
            .prop_map(|(status, text)| Response::text(status, text)),
        request_error().prop_map(|e| Response::error(&e)),
    ];
    (base, any::<bool>()).prop_map(|(r, close)| if close { r.closing() } else { r })
}

fn raft_path() -> impl Strategy<Value = RaftPath> {
    // Not `/raft?id=7`: a path whose own query names `id` shadows the id we append (the first
    // `id` wins, as in Go's url.Values).
    prop::sample::select(vec!["/raft", "/", "/raft?x=1", "/a/b"])
        .prop_map(|p| RaftPath::new(p).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// (a) Any valid head we build decodes back to what we built, with `consumed == len`.
    #[test]
    fn request_heads_round_trip(head in head()) {
        let bytes = head.encode();
        let decoded = RequestDecoder::new(Limits::default()).decode(&bytes);
        let Ok(Decoded::Complete { value, consumed }) = decoded else {
            return Err(TestCaseError::fail(format!("{decoded:?} for {:?}", String::from_utf8_lossy(&bytes))));
        };
        prop_assert_eq!(consumed, bytes.len());
        prop_assert_eq!(value.method(), head.method.as_str());
        prop_assert_eq!(value.target(), head.target.as_str());
        prop_assert_eq!(value.minor_version(), head.minor);
        let got: Vec<(&str, &[u8])> = value.headers().iter().map(|h| (h.name, h.value)).collect();
        let want: Vec<(&str, &[u8])> =
            head.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        prop_assert_eq!(got, want);
        // The path and query split the (origin-form part of the) target at the first `?`.
        if head.target.starts_with('/') {
            match head.target.split_once('?') {
                Some((path, query)) => {
                    prop_assert_eq!(value.path(), path);
                    prop_assert_eq!(value.query(), query);
                }
                None => {
                    prop_assert_eq!(value.path(), head.target.as_str());
                    prop_assert_eq!(value.query(), "");
                }
            }
        }
        // With trailing bytes, the tail survives.
        let tailed = [&bytes[..], b"tail\r\n\r\n"].concat();
        let Ok(Decoded::Complete { value: again, consumed }) =
            RequestDecoder::new(Limits::default()).decode(&tailed)
        else {
            return Err(TestCaseError::fail("with a tail"));
        };
        prop_assert_eq!(consumed, bytes.len());
        prop_assert_eq!(again, value);
    }

    /// (b) Any bytes, split anywhere, give the request decoder's whole-input result; and a head
    /// that decodes re-encodes to one that decodes equal.
    #[test]
    fn request_decoding_ignores_splits(
        data in input(),
        at in prop::collection::vec(any::<Index>(), 0..8),
        limits in limits(),
    ) {
        let whole = RequestDecoder::new(limits).decode(&data);
        let points = splits(data.len(), &at);
        prop_assert_eq!(&feed_request(&data, &points, limits), &whole);
        let bytes: Vec<usize> = (0..data.len()).collect();
        prop_assert_eq!(&feed_request(&data, &bytes, limits), &whole, "byte by byte");
        match whole {
            Ok(Decoded::Complete { value, consumed }) => {
                prop_assert!(consumed <= data.len());
                let again = reencode(&value);
                let decoded = RequestDecoder::new(Limits::default().with_max_head_bytes(1 << 16))
                    .decode(&again);
                let Ok(Decoded::Complete { value: reparsed, consumed }) = decoded else {
                    return Err(TestCaseError::fail(format!("re-encoded head: {decoded:?}")));
                };
                prop_assert_eq!(consumed, again.len());
                prop_assert_eq!(reparsed, value);
            }
            Ok(Decoded::Incomplete) => {}
            Err(error) => prop_assert!(matches!(error.status(), 400 | 431), "{error:?}"),
        }
    }

    /// (b) The same for the response decoder. A malformed response reports the first line
    /// seen so far, which is shorter when the input stops early, so errors compare by kind.
    #[test]
    fn response_decoding_ignores_splits(
        data in input(),
        at in prop::collection::vec(any::<Index>(), 0..8),
        limits in limits(),
    ) {
        let whole = ResponseDecoder::new(limits).decode(&data);
        for points in [splits(data.len(), &at), (0..data.len()).collect()] {
            let split = feed_response(&data, &points, limits);
            match (&split, &whole) {
                (Err(a), Err(b)) => prop_assert_eq!(
                    std::mem::discriminant(a),
                    std::mem::discriminant(b),
                    "{:?} vs {:?}", a, b
                ),
                _ => prop_assert_eq!(&split, &whole),
            }
        }
        if let Ok(Decoded::Complete { consumed, .. }) = whole {
            prop_assert!(consumed <= data.len());
        }
    }

    /// (b) The client handshake, too, never panics and ignores splits (up to the malformed
    /// line, as above); an upgrade's tail is exactly the bytes after the head.
    #[test]
    fn handshake_ignores_splits(
        data in input(),
        at in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let new = || rafthttp_core::ClientHandshake::new(&RaftPath::default(), "h:1", Limits::default()).unwrap();
        let whole = new().decode_response(&data);
        let mut handshake = new();
        let mut split = None;
        for p in splits(data.len(), &at) {
            match handshake.decode_response(&data[..p]) {
                Ok(Decoded::Incomplete) => {}
                done => { split = Some(done); break; }
            }
        }
        let split = split.unwrap_or_else(|| handshake.decode_response(&data));
        match (&split, &whole) {
            (Err(a), Err(b)) => prop_assert_eq!(std::mem::discriminant(a), std::mem::discriminant(b)),
            _ => prop_assert_eq!(&split, &whole),
        }
        if let Ok(Decoded::Complete { value, consumed }) = whole {
            prop_assert_eq!(value.tail, &data[consumed..]);
        }
    }

    /// (c) Every response we can build encodes to bytes our decoder reads back: same status,
    /// Location, `Content-Length` equal to the body, the body itself, `Connection: close`.
    #[test]
    fn responses_decode_back(response in response(), head_only in any::<bool>()) {
        let mut bytes = Vec::new();
        if head_only {
            response.encode_head(&mut bytes);
        } else {
            response.encode(&mut bytes);
        }
        let decoded = ResponseDecoder::new(Limits::default()).decode(&bytes);
        let Ok(Decoded::Complete { value, consumed }) = decoded else {
            return Err(TestCaseError::fail(format!("{decoded:?} for {:?}", String::from_utf8_lossy(&bytes))));
        };
        prop_assert_eq!(value.status(), response.status());
        prop_assert_eq!(value.minor_version(), 1);
        let headers = value.headers();
        if response.status() == 101 {
            prop_assert_eq!(headers.get("upgrade"), Some(&b"raft"[..]));
            prop_assert_eq!(headers.get("content-length"), None);
            prop_assert_eq!(consumed, bytes.len());
            return Ok(());
        }
        prop_assert_eq!(headers.get("location"), response.location().map(str::as_bytes));
        let length = response.body().len().to_string();
        prop_assert_eq!(headers.get("content-length"), Some(length.as_bytes()));
        prop_assert_eq!(headers.has_token("connection", "close"), response.closes_connection());
        let body = &bytes[consumed..];
        if head_only {
            prop_assert_eq!(body, b"");
        } else {
            prop_assert_eq!(body, response.body());
            prop_assert_eq!(util::body(&value, body, false), body);
        }
    }

    /// (d) A membership request for any id (non-empty) and address routes back to a change
    /// with exactly that id and address, and so does the request that follows our redirect.
    #[test]
    fn membership_requests_route_back(
        join in any::<bool>(),
        id in ".{1,24}",
        address in ".{0,24}",
        path in raft_path(),
    ) {
        let kind = if join { ChangeKind::Join } else { ChangeKind::Leave };
        let now = Instant::now();
        let mut client = MembershipClient::new(kind, &path, &id, &address, "127.0.0.1:1", now + Duration::from_secs(1))
            .unwrap();
        let router = Router::new(path.clone());
        let want_address = if join { address.as_str() } else { "" };
        for hop in 0..2 {
            let Output::Transmit(transmit) = client.poll_output() else {
                return Err(TestCaseError::fail("expected a request"));
            };
            let Ok(Decoded::Complete { value: head, consumed }) =
                RequestDecoder::new(Limits::default()).decode(&transmit.request)
            else {
                return Err(TestCaseError::fail("our request does not decode"));
            };
            prop_assert_eq!(consumed, transmit.request.len());
            let Route::Change(change) = router.route(&head, Availability::Open) else {
                return Err(TestCaseError::fail(format!("hop {hop}: not a change")));
            };
            prop_assert_eq!(change.kind, kind);
            prop_assert_eq!(&change.id, &id);
            prop_assert_eq!(&change.address, want_address);
            // The follower redirects to the leader; the client follows.
            let leader = Err(ChangeError::NotLeader { leader: Some("127.0.0.1:2".into()) });
            let mut redirect = Vec::new();
            router.answer(&change, &leader, Scheme::Http).encode(&mut redirect);
            let (head, consumed) = util::response(&redirect);
            prop_assert_eq!(head.status(), 308);
            client.handle_response(now, &head, &redirect[consumed..]);
        }
    }

    /// (d) The failure text the application gives reaches the client trimmed, whatever it is.
    #[test]
    fn failures_reach_the_client(id in "[!-~]{1,12}", message in ".{0,40}") {
        let router = Router::new(RaftPath::default());
        let now = Instant::now();
        let mut client = MembershipClient::new(
            ChangeKind::Join, &RaftPath::default(), &id, "a:1", "127.0.0.1:1", now + Duration::from_secs(1),
        ).unwrap();
        let Output::Transmit(transmit) = client.poll_output() else {
            return Err(TestCaseError::fail("expected a request"));
        };
        let (head, _) = util::request(&transmit.request);
        let Route::Change(change) = router.route(&head, Availability::Open) else {
            return Err(TestCaseError::fail("not a change"));
        };
        let mut bytes = Vec::new();
        router.answer(&change, &Err(ChangeError::failed(&message)), Scheme::Http).encode(&mut bytes);
        let (head, consumed) = util::response(&bytes);
        client.handle_response(now, &head, util::body(&head, &bytes[consumed..], false));
        let Output::Done(Err(error)) = client.poll_output() else {
            return Err(TestCaseError::fail("expected a failure"));
        };
        let body = format!("failed to join server {id}: {message}");
        prop_assert_eq!(
            error.to_string(),
            format!("server join failed: http code 403 '{}'", body.trim())
        );
    }
}

/// One request of a generated connection.
#[derive(Debug, Clone)]
enum Step {
    /// A join, with a body (and `Expect: 100-continue`) or none.
    Join {
        id: u16,
        body: Vec<u8>,
        expect: bool,
    },
    /// A leave, a `HEAD` or a `GET` elsewhere.
    Leave(u16),
    Head,
    Elsewhere,
    /// Asks to close after the answer.
    Close,
    /// An upgrade, followed by Raft bytes: the last step.
    Upgrade(Vec<u8>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..40),
            any::<bool>()
        )
            .prop_map(|(id, body, expect)| Step::Join { id, body, expect }),
        any::<u16>().prop_map(Step::Leave),
        Just(Step::Head),
        Just(Step::Elsewhere),
        Just(Step::Close),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Step::Upgrade),
    ]
}

fn connection_bytes(steps: &[Step]) -> Vec<u8> {
    let mut out = Vec::new();
    for step in steps {
        let text = match step {
            Step::Join { id, body, expect } => {
                let expect = if *expect {
                    "Expect: 100-continue\r\n"
                } else {
                    ""
                };
                let head = format!(
                    "POST /raft?id={id}&address=a:1 HTTP/1.1\r\nHost: x\r\n{expect}Content-Length: {}\r\n\r\n",
                    body.len()
                );
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(body);
                continue;
            }
            Step::Leave(id) => format!("DELETE /raft?id={id} HTTP/1.1\r\nHost: x\r\n\r\n"),
            Step::Head => "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
            Step::Elsewhere => "GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
            Step::Close => "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
            Step::Upgrade(raft) => {
                out.extend_from_slice(b"GET /raft HTTP/1.1\r\nHost: x\r\nUpgrade: raft\r\n\r\n");
                out.extend_from_slice(raft);
                break;
            }
        };
        out.extend_from_slice(text.as_bytes());
    }
    out
}

/// Runs a server connection over `input` fed in the given pieces, answering as a node would
/// (the core's router; joins and leaves applied). Returns what was written, the requests seen
/// (target and body) and the tail handed to Raft.
/// What a served connection wrote, the requests it handed out (target, body), and its Raft tail.
type Served = (Vec<u8>, Vec<(String, Vec<u8>)>, Option<Vec<u8>>);

fn serve(input: &[u8], cuts: &[usize]) -> Served {
    let router = Router::new(RaftPath::default());
    let mut conn = ServerConnection::new(Limits::default());
    let mut pieces = Vec::new();
    let mut at = 0;
    for &cut in cuts {
        let cut = cut.min(input.len()).max(at);
        pieces.push(&input[at..cut]);
        at = cut;
    }
    pieces.push(&input[at..]);
    let mut pieces = pieces.into_iter();
    let (mut written, mut seen, mut out) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..10_000 {
        out.clear();
        match conn.poll_event(&mut out) {
            Event::NeedData => match pieces.next() {
                Some(piece) => conn.handle_data(piece),
                None => conn.handle_eof(),
            },
            Event::Close => {
                written.extend_from_slice(&out);
                return (written, seen, None);
            }
            Event::Request(request) => {
                seen.push((request.head.target().to_owned(), request.body.to_vec()));
                let route = router.route(&request.head, Availability::Open);
                written.extend_from_slice(&out);
                out.clear();
                let response = match route {
                    Route::Upgrade => {
                        let mut tail = conn.upgrade(&mut out).expect("a request waits");
                        written.extend_from_slice(&out);
                        for piece in pieces.by_ref() {
                            tail.extend_from_slice(piece);
                        }
                        return (written, seen, Some(tail));
                    }
                    Route::Change(change) => router.answer(&change, &Ok(()), Scheme::Http),
                    Route::Respond(response) => response,
                    Route::NotFound => Response::not_found(),
                };
                conn.respond(&response, &mut out);
            }
        }
        written.extend_from_slice(&out);
    }
    panic!("the connection did not end");
}

proptest! {
    #![proptest_config(config())]

    /// The server connection machine answers the same whatever pieces its input arrives in:
    /// same bytes written (interim 100s included), same requests and bodies, same Raft tail.
    #[test]
    fn server_connection_is_split_invariant(
        steps in proptest::collection::vec(step(), 1..6),
        cuts in proptest::collection::vec(any::<Index>(), 0..12),
    ) {
        let input = connection_bytes(&steps);
        let whole = serve(&input, &[]);
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        let pieces = serve(&input, &cuts);
        // A 100 Continue goes out when the head arrives before its body; fed whole, the body
        // is already there. Everything else is identical.
        let strip = |written: &[u8]| String::from_utf8_lossy(written).replace("HTTP/1.1 100 Continue\r\n\r\n", "");
        prop_assert_eq!(strip(&whole.0), strip(&pieces.0));
        prop_assert_eq!(&whole.1, &pieces.1);
        prop_assert_eq!(&whole.2, &pieces.2);
        let requests = steps.iter().take_while(|s| !matches!(s, Step::Close)).count()
            + usize::from(steps.iter().any(|s| matches!(s, Step::Close)));
        prop_assert!(whole.1.len() <= requests);
    }
}
