//! Helpers shared by the core's integration tests: the Go wire vectors, whole-buffer decoding,
//! and the response fields compared with Go's.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rafthttp_core::{
    BodyFraming, Decoded, Limits, RequestDecoder, RequestHead, ResponseDecoder, ResponseHead,
};

/// The Go captures, vendored in this crate (`tests/vectors/go-raft-http/`, with its README), so
/// a plain clone of the repository runs every test.
pub(crate) const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/go-raft-http");

/// The directory of the Go captures.
pub(crate) fn vectors_dir() -> &'static Path {
    Path::new(VECTORS)
}

/// The bytes of one capture.
pub(crate) fn vector(name: &str) -> Vec<u8> {
    let path: PathBuf = vectors_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Decodes the request head at the start of `buf`, which must be complete and valid.
pub(crate) fn request(buf: &[u8]) -> (RequestHead<'_>, usize) {
    match RequestDecoder::new(Limits::default()).decode(buf) {
        Ok(Decoded::Complete { value, consumed }) => (value, consumed),
        other => panic!("expected a complete request head, got {other:?}"),
    }
}

/// Decodes the response head at the start of `buf`, which must be complete and valid.
pub(crate) fn response(buf: &[u8]) -> (ResponseHead<'_>, usize) {
    match ResponseDecoder::new(Limits::default()).decode(buf) {
        Ok(Decoded::Complete { value, consumed }) => (value, consumed),
        other => panic!("expected a complete response head, got {other:?}"),
    }
}

/// The body that follows a response head in `tail`, as its framing delimits it. A response
/// that runs until the connection closes takes all of `tail`.
pub(crate) fn body<'b>(head: &ResponseHead<'_>, tail: &'b [u8], head_only: bool) -> &'b [u8] {
    if head_only {
        return &[];
    }
    match head.body_framing() {
        BodyFraming::Empty => &[],
        BodyFraming::Length(n) => {
            let n = usize::try_from(n).expect("small body");
            assert!(tail.len() >= n, "body shorter than its Content-Length");
            &tail[..n]
        }
        BodyFraming::UntilClose => tail,
        other => panic!("unexpected framing {other:?}"),
    }
}

/// The parts of a response that must match Go's (DESIGN.md 2.1 "Conformance means"): the status
/// line, `Upgrade`, `Location`, `Content-Length`, `Connection: close` and the body. `Date` and
/// other fields may differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wire {
    pub(crate) status_line: String,
    pub(crate) upgrade: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) content_length: Option<String>,
    pub(crate) close: bool,
    pub(crate) body: Vec<u8>,
}

/// Reads the first response in `bytes` (a 101 ends at its head: what follows is the Raft
/// stream). Returns it and the bytes it occupied.
pub(crate) fn wire(bytes: &[u8], head_only: bool) -> (Wire, usize) {
    let (head, consumed) = response(bytes);
    let text = |name: &str| {
        head.headers()
            .get(name)
            .map(|v| String::from_utf8(v.to_vec()).expect("ASCII header"))
    };
    let line_end = bytes.iter().position(|&b| b == b'\n').expect("status line");
    let status_line = String::from_utf8(bytes[..line_end].to_vec())
        .expect("ASCII status line")
        .trim_end_matches('\r')
        .to_owned();
    let body = body(&head, &bytes[consumed..], head_only);
    let wire = Wire {
        status_line,
        upgrade: text("upgrade"),
        location: text("location"),
        content_length: text("content-length"),
        close: head.headers().has_token("connection", "close"),
        body: body.to_vec(),
    };
    (wire, consumed + body.len())
}
