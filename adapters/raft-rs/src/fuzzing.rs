//! Entry points for the fuzz targets and the seed replay test. Not a stable API.
#![allow(missing_docs)]

use crate::framing::{Decoded, FrameDecoder};

/// Cuts `data`, fed in pieces of `split` bytes, into protobuf frames until an error; checks
/// that every step consumes what it reports and asks for more only when it needs it.
pub fn raft_frames(data: &[u8], split: usize) {
    let decoder = FrameDecoder::new(64 * 1024);
    let mut buf = Vec::new();
    for piece in data.chunks(split.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&buf) {
                Ok(Decoded::Frame { consumed, .. }) => {
                    assert!(consumed <= buf.len());
                    buf.drain(..consumed);
                }
                Ok(Decoded::NeedMore { needed }) => {
                    assert!(needed > 0);
                    break;
                }
                Err(_) => return,
            }
        }
    }
}
