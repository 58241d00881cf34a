//! Length-prefixed frames for the bytes Raft engines send over an upgraded connection, sans-IO.
//!
//! After the `101`, the connection carries whatever the Raft engine's glue writes. Both engine
//! crates (`rafthttp-raft` for tikv's raft, `rafthttp-openraft` for openraft) cut that stream
//! into frames the same way:
//!
//! ```text
//! frame    = length body            length: u32, big-endian, bytes of body (at most the limit)
//! body     = engine payload         (rafthttp-raft: one protobuf eraftpb::Message)
//!          | id kind payload        (an RPC envelope, rafthttp-openraft: see `Envelope`)
//! id       = u64, big-endian        the request id an answer carries back
//! kind     = u8                     what the payload is
//! ```
//!
//! Writers encode straight into their output buffer ([`FrameWriter`]), so a serializer can
//! write the body in place; readers decode from their read buffer ([`FrameDecoder`]), which
//! refuses an over-limit length as soon as the four length bytes arrive, before buffering any
//! of the body.
//!
//! ```
//! use rafthttp_core::frame::{Envelope, FrameDecoder, FrameWriter};
//! use rafthttp_core::Decoded;
//!
//! let mut out = Vec::new();
//! let frame = FrameWriter::begin_envelope(&mut out, Envelope { id: 7, kind: 1 });
//! out.extend_from_slice(b"payload"); // a serializer writes here
//! frame.finish(&mut out, 1024).unwrap();
//!
//! let decoder = FrameDecoder::new(1024);
//! let Decoded::Complete { value: body, consumed } = decoder.decode(&out).unwrap() else {
//!     unreachable!("the frame is complete");
//! };
//! assert_eq!(consumed, out.len());
//! let (envelope, payload) = Envelope::split(body).unwrap();
//! assert_eq!((envelope.id, envelope.kind, payload), (7, 1, &b"payload"[..]));
//! ```

use crate::head::Decoded;

/// Bytes of the length prefix.
pub const LENGTH_LEN: usize = 4;

/// Bytes of an [`Envelope`] (id and kind) at the start of a body.
pub const ENVELOPE_LEN: usize = 9;

/// The default largest frame body: 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// A frame could not be encoded or decoded. The stream cannot be resynchronised after a decode
/// error: drop the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The body is larger than the limit (or than a `u32` can announce).
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The body length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is too short for an envelope.
    #[error("frame of {len} bytes is too short for a request id and kind")]
    Truncated {
        /// The body length.
        len: usize,
    },
}

/// A frame being written into a caller's buffer: [`begin`](Self::begin) reserves the length,
/// the caller appends the body, [`finish`](Self::finish) writes the length (or takes the frame
/// back out when it is over the limit).
#[derive(Debug)]
#[must_use = "a frame needs `finish` to get its length"]
pub struct FrameWriter {
    start: usize,
}

impl FrameWriter {
    /// Starts a frame at the end of `out`.
    pub fn begin(out: &mut Vec<u8>) -> Self {
        let start = out.len();
        out.extend_from_slice(&[0; LENGTH_LEN]);
        Self { start }
    }

    /// Starts a frame at the end of `out` and writes `envelope` as the start of its body; the
    /// caller appends the payload.
    pub fn begin_envelope(out: &mut Vec<u8>, envelope: Envelope) -> Self {
        let frame = Self::begin(out);
        out.extend_from_slice(&envelope.id.to_be_bytes());
        out.push(envelope.kind);
        frame
    }

    /// Ends the frame: everything appended to `out` since [`begin`](Self::begin) is its body.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] when the body exceeds `max` bytes; the frame is then removed
    /// from `out`, which is left as it was before `begin`.
    pub fn finish(self, out: &mut Vec<u8>, max: usize) -> Result<(), FrameError> {
        let len = out.len() - self.start - LENGTH_LEN;
        match u32::try_from(len) {
            Ok(prefix) if len <= max => {
                out[self.start..self.start + LENGTH_LEN].copy_from_slice(&prefix.to_be_bytes());
                Ok(())
            }
            _ => {
                out.truncate(self.start);
                Err(FrameError::TooLarge { len, max })
            }
        }
    }

    /// Ends the frame without writing it: `out` is left as it was before `begin` (the body
    /// could not be encoded, say).
    pub fn abandon(self, out: &mut Vec<u8>) {
        out.truncate(self.start);
    }
}

/// Appends `body` to `out` as one frame.
///
/// # Errors
/// [`FrameError::TooLarge`] when `body` exceeds `max` bytes; nothing is appended.
pub fn encode(body: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let frame = FrameWriter::begin(out);
    out.extend_from_slice(body);
    frame.finish(out, max)
}

/// Decodes frames from the start of a read buffer, one at a time, with a size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder refusing bodies larger than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max }
    }

    /// The limit.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Decodes the frame at the start of `buf`. On [`Decoded::Complete`] the value is the body
    /// (borrowed from `buf`) and `consumed` counts the length prefix and the body: drop that
    /// many bytes before the next call. [`Decoded::Incomplete`] until the whole frame is there.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] as soon as the length prefix announces more than the limit.
    pub fn decode<'b>(&self, buf: &'b [u8]) -> Result<Decoded<&'b [u8]>, FrameError> {
        let Some(prefix) = buf.first_chunk::<LENGTH_LEN>() else {
            return Ok(Decoded::Incomplete);
        };
        let len = usize::try_from(u32::from_be_bytes(*prefix)).unwrap_or(usize::MAX);
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        let end = LENGTH_LEN + len;
        match buf.get(LENGTH_LEN..end) {
            Some(body) => Ok(Decoded::Complete {
                value: body,
                consumed: end,
            }),
            None => Ok(Decoded::Incomplete),
        }
    }

    /// How many more bytes `buf` needs before [`decode`](Self::decode) can complete: at least
    /// the rest of the length prefix, then the rest of the body (0 when a frame is complete or
    /// the prefix is over the limit). A reader can size its next read with it.
    pub fn missing(&self, buf: &[u8]) -> usize {
        let Some(prefix) = buf.first_chunk::<LENGTH_LEN>() else {
            return LENGTH_LEN - buf.len();
        };
        let len = usize::try_from(u32::from_be_bytes(*prefix)).unwrap_or(usize::MAX);
        if len > self.max {
            return 0;
        }
        (LENGTH_LEN + len).saturating_sub(buf.len())
    }
}

/// The start of an RPC frame's body: the request id (an answer carries its request's) and the
/// kind of payload that follows. What ids and kinds mean is the engine glue's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// The request id.
    pub id: u64,
    /// The payload kind.
    pub kind: u8,
}

impl Envelope {
    /// Splits a frame body into its envelope and payload.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] when the body is shorter than an envelope.
    pub fn split(body: &[u8]) -> Result<(Self, &[u8]), FrameError> {
        let truncated = || FrameError::Truncated { len: body.len() };
        let (id, rest) = body.split_first_chunk::<8>().ok_or_else(truncated)?;
        let (&kind, payload) = rest.split_first().ok_or_else(truncated)?;
        Ok((
            Self {
                id: u64::from_be_bytes(*id),
                kind,
            },
            payload,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_over_the_limit_takes_the_frame_back() {
        let mut out = b"earlier".to_vec();
        let frame = FrameWriter::begin(&mut out);
        out.extend_from_slice(&[1; 11]);
        assert_eq!(
            frame.finish(&mut out, 10),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        );
        assert_eq!(out, b"earlier");
        encode(&[2; 10], 10, &mut out).unwrap();
        assert_eq!(&out[7..11], &[0, 0, 0, 10]);
    }

    #[test]
    fn missing_counts_prefix_then_body() {
        let decoder = FrameDecoder::new(100);
        assert_eq!(decoder.missing(b""), 4);
        assert_eq!(decoder.missing(&[0, 0]), 2);
        assert_eq!(decoder.missing(&[0, 0, 0, 5, 1]), 4);
        assert_eq!(decoder.missing(&[0, 0, 0, 1, 1, 9]), 0);
        assert_eq!(decoder.missing(&[0, 0, 1, 0]), 0, "over the limit");
    }

    #[test]
    fn envelopes_need_nine_bytes() {
        assert_eq!(
            Envelope::split(&[0; 8]),
            Err(FrameError::Truncated { len: 8 })
        );
        let (envelope, payload) = Envelope::split(&[0, 0, 0, 0, 0, 0, 1, 2, 3, 4]).unwrap();
        assert_eq!(envelope, Envelope { id: 258, kind: 3 });
        assert_eq!(payload, &[4]);
    }
}
