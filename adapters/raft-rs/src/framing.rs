//! Length-prefixed protobuf frames of `eraftpb::Message`, sans-IO.
//!
//! A frame is the core's length-prefixed frame ([`rafthttp_driver::core::frame`]): a `u32`
//! big-endian length followed by that many bytes, here one protobuf-encoded [`Message`].
//! Snapshots travel inside one message, so the frame-size limit must be larger than the biggest
//! snapshot the application sends; it is checked on both sides (the decoder refuses an
//! over-limit length before buffering the body).

use protobuf::Message as _;
use raft::eraftpb::Message;
use rafthttp_driver::core::Decoded as Frame;
use rafthttp_driver::core::frame::{self, FrameWriter};

/// The default largest frame body: 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = frame::DEFAULT_MAX_FRAME;

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = frame::LENGTH_LEN;

/// A frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame body is larger than the limit.
    #[error("raft frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The body length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Another framing error.
    #[error(transparent)]
    Frame(frame::FrameError),
    /// The body is not a valid `eraftpb::Message`, or the message could not be encoded.
    #[error("invalid raft message: {0}")]
    Protobuf(#[from] protobuf::ProtobufError),
}

impl From<frame::FrameError> for FrameError {
    fn from(error: frame::FrameError) -> Self {
        match error {
            frame::FrameError::TooLarge { len, max } => Self::TooLarge { len, max },
            other => Self::Frame(other),
        }
    }
}

/// Appends `message` to `out` as one frame.
///
/// # Errors
/// [`FrameError::TooLarge`] when the encoded message exceeds `max` bytes (nothing is appended),
/// [`FrameError::Protobuf`] when protobuf refuses the message.
pub fn encode_frame(message: &Message, max: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let len = message.compute_size() as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    out.reserve(HEADER_LEN + len);
    let frame = FrameWriter::begin(out);
    if let Err(e) = message.write_to_vec(out) {
        frame.abandon(out);
        return Err(e.into());
    }
    Ok(frame.finish(out, max)?)
}

/// What [`FrameDecoder::decode`] found at the start of the buffer.
#[derive(Debug)]
pub enum Decoded {
    /// The buffer holds no complete frame; at least `needed` more bytes must arrive.
    NeedMore {
        /// Bytes missing for the frame (or for its header).
        needed: usize,
    },
    /// A complete frame: the message, and the bytes it took from the buffer (to drop).
    Frame {
        /// The decoded message.
        message: Box<Message>,
        /// Bytes of the buffer the frame occupied (header included).
        consumed: usize,
    },
}

/// Decodes frames from a byte buffer, one at a time, with a frame-size limit.
///
/// ```
/// use rafthttp_raft::framing::{Decoded, FrameDecoder, encode_frame, DEFAULT_MAX_FRAME};
/// use rafthttp_raft::raft::eraftpb::Message;
///
/// let mut message = Message::default();
/// message.to = 2;
/// let mut buf = Vec::new();
/// encode_frame(&message, DEFAULT_MAX_FRAME, &mut buf).unwrap();
/// match FrameDecoder::default().decode(&buf).unwrap() {
///     Decoded::Frame { message: decoded, consumed } => {
///         assert_eq!(*decoded, message);
///         assert_eq!(consumed, buf.len());
///     }
///     Decoded::NeedMore { .. } => unreachable!(),
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameDecoder {
    inner: frame::FrameDecoder,
}

impl FrameDecoder {
    /// A decoder refusing frame bodies larger than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            inner: frame::FrameDecoder::new(max),
        }
    }

    /// The frame-size limit.
    pub fn max(&self) -> usize {
        self.inner.max()
    }

    /// Decodes the frame at the start of `buf`, if it is complete.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] as soon as the header announces more than the limit (the
    /// stream cannot be resynchronised: drop the connection); [`FrameError::Protobuf`] when
    /// the body is not a message.
    pub fn decode(&self, buf: &[u8]) -> Result<Decoded, FrameError> {
        match self.inner.decode(buf)? {
            Frame::Incomplete => Ok(Decoded::NeedMore {
                needed: self.inner.missing(buf),
            }),
            Frame::Complete { value, consumed } => Ok(Decoded::Frame {
                message: Box::new(Message::parse_from_bytes(value)?),
                consumed,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use raft::eraftpb::{Entry, MessageType};

    use super::*;

    fn sample() -> Message {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.to = 2;
        m.from = 1;
        m.term = 7;
        m.index = 41;
        let e = Entry {
            index: 42,
            term: 7,
            data: b"hello raft".to_vec().into(),
            ..Entry::default()
        };
        m.entries = vec![e].into();
        m
    }

    fn frame(d: Decoded) -> (Message, usize) {
        match d {
            Decoded::Frame { message, consumed } => (*message, consumed),
            Decoded::NeedMore { needed } => panic!("need {needed} more"),
        }
    }

    #[test]
    fn round_trip_two_frames_in_one_buffer() {
        let mut buf = Vec::new();
        encode_frame(&sample(), DEFAULT_MAX_FRAME, &mut buf).unwrap();
        let first = buf.len();
        encode_frame(&Message::default(), DEFAULT_MAX_FRAME, &mut buf).unwrap();
        let dec = FrameDecoder::default();
        let (m, used) = frame(dec.decode(&buf).unwrap());
        assert_eq!(m, sample());
        assert_eq!(used, first);
        let (m, used) = frame(dec.decode(&buf[first..]).unwrap());
        assert_eq!(m, Message::default());
        assert_eq!(used, HEADER_LEN, "an empty message is a zero-length body");
    }

    #[test]
    fn split_input_needs_more_at_every_cut() {
        let mut buf = Vec::new();
        encode_frame(&sample(), DEFAULT_MAX_FRAME, &mut buf).unwrap();
        let dec = FrameDecoder::default();
        for cut in 0..buf.len() {
            match dec.decode(&buf[..cut]).unwrap() {
                Decoded::NeedMore { needed } => {
                    if cut < HEADER_LEN {
                        assert_eq!(needed, HEADER_LEN - cut);
                    } else {
                        assert_eq!(needed, buf.len() - cut);
                    }
                }
                Decoded::Frame { .. } => panic!("frame from {cut} of {} bytes", buf.len()),
            }
        }
        assert_eq!(frame(dec.decode(&buf).unwrap()).0, sample());
    }

    #[test]
    fn over_limit_is_refused_on_both_sides() {
        let dec = FrameDecoder::new(16);
        let header = 17u32.to_be_bytes();
        match dec.decode(&header) {
            Err(FrameError::TooLarge { len: 17, max: 16 }) => {}
            other => panic!("{other:?}"),
        }
        let mut out = Vec::new();
        let err = encode_frame(&sample(), 4, &mut out).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max: 4, .. }), "{err}");
        assert!(out.is_empty());
        assert!(err.to_string().contains("exceeds the limit of 4 bytes"));
    }

    #[test]
    fn garbage_body_is_an_error() {
        let mut buf = 3u32.to_be_bytes().to_vec();
        buf.extend_from_slice(&[0xff, 0xff, 0xff]);
        let err = FrameDecoder::default().decode(&buf).unwrap_err();
        assert!(matches!(err, FrameError::Protobuf(_)), "{err}");
    }
}
