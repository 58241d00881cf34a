//! The frames openraft's RPCs travel in, sans-IO.
//!
//! Each frame is the core's length-prefixed frame with an RPC envelope
//! ([`rafthttp_tokio::core::frame`]): a `u32` big-endian length, a `u64` big-endian request id,
//! a kind byte, and the payload, serialized with postcard (compact, maintained; not
//! self-describing, so the round-trip tests check every type sent).
//!
//! | kind | payload |
//! |---|---|
//! | `1` vote | `VoteRequest` |
//! | `2` append entries | `AppendEntriesRequest` |
//! | `3` install snapshot | `InstallSnapshotRequest` (one chunk) |
//! | request kind + `0x80` | the answer: `Result<response, RaftError>` from the remote `Raft` |
//!
//! An answer carries its request's id. Ids are per connection; a client discards answers to
//! ids it stopped waiting for.

use rafthttp_tokio::core::Decoded;
use rafthttp_tokio::core::frame::{Envelope, FrameDecoder, FrameError, FrameWriter};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The kind of a frame's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A `VoteRequest`.
    Vote = 1,
    /// An `AppendEntriesRequest`.
    AppendEntries = 2,
    /// An `InstallSnapshotRequest`.
    InstallSnapshot = 3,
}

/// Set in the kind byte of an answer.
pub const ANSWER: u8 = 0x80;

impl Kind {
    /// The kind byte of a request of this kind.
    pub fn request(self) -> u8 {
        self as u8
    }

    /// The kind byte of the answer to a request of this kind.
    pub fn answer(self) -> u8 {
        self as u8 | ANSWER
    }

    /// The request kind a kind byte names, and whether the frame is an answer.
    pub fn parse(byte: u8) -> Option<(Self, bool)> {
        let kind = match byte & !ANSWER {
            1 => Self::Vote,
            2 => Self::AppendEntries,
            3 => Self::InstallSnapshot,
            _ => return None,
        };
        Some((kind, byte & ANSWER != 0))
    }
}

/// A frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The frame is larger than the limit.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// postcard could not encode or decode the payload.
    #[error("payload: {0}")]
    Payload(#[from] postcard::Error),
    /// The kind byte names no known payload.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
}

/// Appends one frame to `out`: `value` with `id` and `kind`. On error `out` is left as it was.
///
/// # Errors
/// [`CodecError::Frame`] when the frame exceeds `max` bytes, [`CodecError::Payload`] when
/// postcard cannot encode `value`.
pub fn encode<T: Serialize>(
    id: u64,
    kind: u8,
    value: &T,
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let frame = FrameWriter::begin_envelope(out, Envelope { id, kind });
    if let Err(error) = postcard::to_io(value, &mut *out) {
        frame.abandon(out);
        return Err(error.into());
    }
    frame.finish(out, max)?;
    Ok(())
}

/// A frame read from a stream: its envelope and payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'b> {
    /// The request id.
    pub id: u64,
    /// The payload kind.
    pub kind: Kind,
    /// Whether it answers a request.
    pub answer: bool,
    /// The postcard payload.
    pub payload: &'b [u8],
}

/// Decodes the frame at the start of `buf`: [`Decoded::Complete`] with the frame and the bytes
/// it took, or [`Decoded::Incomplete`].
///
/// # Errors
/// [`CodecError::Frame`] for an over-limit length or a body too short for an envelope,
/// [`CodecError::UnknownKind`] for a kind byte no payload has. After an error the stream
/// cannot be trusted: close it.
pub fn decode_frame<'b>(
    decoder: &FrameDecoder,
    buf: &'b [u8],
) -> Result<Decoded<Frame<'b>>, CodecError> {
    let (body, consumed) = match decoder.decode(buf)? {
        Decoded::Incomplete => return Ok(Decoded::Incomplete),
        Decoded::Complete { value, consumed } => (value, consumed),
    };
    let (envelope, payload) = Envelope::split(body)?;
    let (kind, answer) =
        Kind::parse(envelope.kind).ok_or(CodecError::UnknownKind(envelope.kind))?;
    Ok(Decoded::Complete {
        value: Frame {
            id: envelope.id,
            kind,
            answer,
            payload,
        },
        consumed,
    })
}

/// Decodes a payload.
///
/// # Errors
/// [`CodecError::Payload`] when the bytes are not a `T`.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, CodecError> {
    Ok(postcard::from_bytes(payload)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_unknown_ones_are_refused() {
        for kind in [Kind::Vote, Kind::AppendEntries, Kind::InstallSnapshot] {
            assert_eq!(Kind::parse(kind.request()), Some((kind, false)));
            assert_eq!(Kind::parse(kind.answer()), Some((kind, true)));
        }
        for byte in [0, 4, 0x7f, 0x80, 0xff] {
            assert_eq!(Kind::parse(byte), None, "{byte:#x}");
        }
    }

    #[test]
    fn a_frame_round_trips_and_keeps_what_follows() {
        let mut out = b"before".to_vec();
        encode(9, Kind::Vote.request(), &(1u64, "x"), 1024, &mut out).unwrap();
        out.extend_from_slice(b"after");
        let decoder = FrameDecoder::new(1024);
        let Decoded::Complete { value, consumed } = decode_frame(&decoder, &out[6..]).unwrap()
        else {
            panic!("complete");
        };
        assert_eq!((value.id, value.kind, value.answer), (9, Kind::Vote, false));
        assert_eq!(
            decode::<(u64, String)>(value.payload).unwrap(),
            (1, "x".into())
        );
        assert_eq!(&out[6 + consumed..], b"after");
    }

    #[test]
    fn over_the_limit_leaves_the_buffer_alone() {
        let mut out = b"before".to_vec();
        let error = encode(
            1,
            Kind::AppendEntries.request(),
            &vec![7u8; 100],
            50,
            &mut out,
        )
        .expect_err("too large");
        assert!(matches!(
            error,
            CodecError::Frame(FrameError::TooLarge { .. })
        ));
        assert_eq!(out, b"before");
    }

    #[test]
    fn unknown_kind_and_garbage_payload_are_errors() {
        let mut out = Vec::new();
        encode(1, 0x42, &1u8, 1024, &mut out).unwrap();
        let decoder = FrameDecoder::new(1024);
        assert!(matches!(
            decode_frame(&decoder, &out),
            Err(CodecError::UnknownKind(0x42))
        ));
        assert!(decode::<(u64, String)>(&[0xff, 0xff]).is_err());
    }
}
