//! Entry points for the fuzz targets and the corpus replay test. Not a stable API.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use crate::frame::{self, Envelope, FrameDecoder};
use crate::head::{Decoded, Limits, RequestDecoder};
use crate::membership::{ChangeKind, MembershipClient, Output};
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
        let _ = router.route(&value, false);
        let _ = router.route(&value, true);
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
