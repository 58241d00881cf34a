//! Entry points for the fuzz targets and the corpus replay test. Not a stable API.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use crate::connection::{Event, ServerConnection};
use crate::frame::{self, Envelope, FrameDecoder};
use crate::head::{Decoded, Limits, RequestDecoder};
use crate::membership::{ChangeKind, MembershipClient, Output};
use crate::server::{Availability, Response};
use crate::{ClientHandshake, RaftPath, Router};

/// Feeds `data` to the server decoder in pieces of `split` bytes, routes the head, and checks
/// that the decoder agrees with a whole-buffer decode.
pub fn server_request(data: &[u8], split: usize) {
    let whole = RequestDecoder::new(Limits::default()).decode(data);
    let mut decoder = RequestDecoder::new(Limits::default());
    let step = split.max(1);
    let mut end = 0;
    let pieces = loop {
        end = (end + step).min(data.len());
        match decoder.decode(&data[..end]) {
            Ok(Decoded::Incomplete) if end < data.len() => continue,
            other => break other,
        }
    };
    assert_eq!(whole, pieces, "split at {step}");
    if let Ok(Decoded::Complete { value, consumed }) = whole {
        assert!(consumed <= data.len());
        let router = Router::new(RaftPath::default());
        let _ = router.route(&value, Availability::Open);
        let _ = router.route(&value, Availability::Closed);
    }
}

/// Decodes `data` as the response to an upgrade request.
pub fn client_handshake(data: &[u8]) {
    let mut handshake =
        ClientHandshake::new(&RaftPath::default(), "127.0.0.1:1", Limits::default())
            .expect("valid authority");
    if let Ok(Decoded::Complete { value, consumed }) = handshake.decode_response(data) {
        assert_eq!(value.tail, &data[consumed..]);
    }
}

/// Runs a membership call where every response is `data`, fed in two pieces and followed by
/// the end of the stream.
pub fn membership_response(data: &[u8]) {
    let start = Instant::now();
    let mut client = MembershipClient::new(
        ChangeKind::Join,
        &RaftPath::default(),
        "1",
        "127.0.0.1:2",
        "127.0.0.1:1",
        start + Duration::from_secs(60),
    )
    .expect("valid input");
    let mut now = start;
    let (first, second) = data.split_at(data.len() / 2);
    // Bounded: redirects stop at MAX_REDIRECTS per round, and retries (503, or a cut response
    // behind a redirect; waits doubling from 50 ms to 1 s) reach the 60 s deadline after
    // about 65 rounds of a few steps each.
    for _ in 0..2048 {
        match client.poll_output() {
            Output::Done(_) => return,
            Output::Timeout(at) => {
                assert!(at >= now, "time never goes back");
                now = at;
                client.handle_timeout(now);
            }
            Output::Transmit(_) => {}
            Output::Receive => {
                client.handle_receive(now, first);
                client.handle_receive(now, second);
                client.handle_eof(now);
            }
        }
    }
    panic!("membership call did not finish");
}

/// Cuts `data` into frames with a limit of `max` bytes, fed whole and in pieces of `split`
/// bytes (both must agree); splits each body into an envelope; re-encodes each frame, which
/// must give its bytes back.
pub fn frames(data: &[u8], max: usize, split: usize) {
    let decoder = FrameDecoder::new(max);
    let whole = cut(decoder, data, data.len().max(1));
    let pieces = cut(decoder, data, split.max(1));
    assert_eq!(whole, pieces, "split at {split}");
    let mut offset = 0;
    for body in whole.0 {
        let _ = Envelope::split(&body);
        let mut again = Vec::new();
        frame::encode(&body, max, &mut again).expect("a decoded body is within the limit");
        assert_eq!(again, data[offset..offset + again.len()]);
        offset += again.len();
    }
}

/// The frames of `data` when it arrives `step` bytes at a time into a read buffer, and the
/// error that stopped the cutting, if any.
fn cut(
    decoder: FrameDecoder,
    data: &[u8],
    step: usize,
) -> (Vec<Vec<u8>>, Option<frame::FrameError>) {
    let mut bodies = Vec::new();
    let mut buf = Vec::new();
    for piece in data.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&buf) {
                Ok(Decoded::Complete { value, consumed }) => {
                    bodies.push(value.to_vec());
                    buf.drain(..consumed);
                }
                Ok(Decoded::Incomplete) => break,
                Err(e) => return (bodies, Some(e)),
            }
        }
    }
    (bodies, None)
}

/// Runs a server connection over `data`, fed in pieces of `split` bytes then an end of stream,
/// answering every request (an upgrade for a GET with `Upgrade`, 404 for HEAD, 200 or a closing
/// 400 in turn otherwise). Checks that the buffer stays bounded and that the connection ends.
pub fn server_connection(data: &[u8], split: usize) {
    let limits = Limits::default().with_max_body(1024);
    let bound = limits.max_head_bytes + 1024 + split.max(1);
    let mut conn = ServerConnection::new(limits);
    let mut pieces = data.chunks(split.max(1));
    let mut out = Vec::new();
    let mut answered = 0u32;
    // Every step consumes input, answers a request or ends: bounded by the input's length.
    for _ in 0..(4 * data.len() + 16) {
        out.clear();
        match conn.poll_event(&mut out) {
            Event::NeedData => match pieces.next() {
                Some(piece) => conn.handle_data(piece),
                None => conn.handle_eof(),
            },
            Event::Close => return,
            Event::Request(request) => {
                let upgrade = request.head.method() == "GET"
                    && request.head.headers().get("upgrade").is_some();
                let head_only = request.head.method() == "HEAD";
                assert!(request.body.len() <= 1024);
                if upgrade {
                    let tail = conn.upgrade(&mut out).expect("a request waits");
                    assert!(out.starts_with(b"HTTP/1.1 101 "));
                    assert!(tail.len() <= data.len());
                    continue;
                }
                let response = match (head_only, answered % 3) {
                    (true, _) => Response::not_found(),
                    (false, 0) => Response::ok(),
                    (false, 1) => Response::text(403, "no"),
                    _ => Response::text(400, "bye").closing(),
                };
                conn.respond(&response, &mut out);
                answered += 1;
            }
        }
        assert!(conn.buffered() <= bound, "{} > {bound}", conn.buffered());
    }
    panic!("the connection neither closed nor asked for data it had");
}
