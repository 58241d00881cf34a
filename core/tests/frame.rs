//! The frame layer: the decoder triad (whole, byte by byte, with trailing bytes), limits, and
//! round trips of any body and envelope.

use proptest::prelude::*;
use rafthttp_core::Decoded;
use rafthttp_core::frame::{
    self, ENVELOPE_LEN, Envelope, FrameDecoder, FrameError, FrameWriter, LENGTH_LEN,
};

fn rpc(id: u64, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let frame = FrameWriter::begin_envelope(&mut out, Envelope { id, kind });
    out.extend_from_slice(payload);
    frame.finish(&mut out, 1 << 20).expect("within the limit");
    out
}

#[test]
fn triad_whole() {
    let bytes = rpc(42, 3, b"payload");
    let Ok(Decoded::Complete { value, consumed }) = FrameDecoder::default().decode(&bytes) else {
        panic!("complete");
    };
    assert_eq!(consumed, bytes.len());
    assert_eq!(value.len(), ENVELOPE_LEN + 7);
    assert_eq!(
        Envelope::split(value),
        Ok((Envelope { id: 42, kind: 3 }, &b"payload"[..]))
    );
}

#[test]
fn triad_byte_by_byte() {
    let bytes = rpc(1, 2, b"abc");
    let decoder = FrameDecoder::default();
    for end in 0..bytes.len() {
        assert_eq!(
            decoder.decode(&bytes[..end]),
            Ok(Decoded::Incomplete),
            "{end}"
        );
        // Before the length is known, only the rest of the prefix is.
        let missing = if end < LENGTH_LEN {
            LENGTH_LEN - end
        } else {
            bytes.len() - end
        };
        assert_eq!(decoder.missing(&bytes[..end]), missing);
    }
    assert!(matches!(
        decoder.decode(&bytes),
        Ok(Decoded::Complete { consumed, .. }) if consumed == bytes.len()
    ));
}

#[test]
fn triad_trailing_bytes_survive() {
    let mut bytes = rpc(7, 1, b"first");
    let first = bytes.len();
    bytes.extend_from_slice(&rpc(8, 1, b"second"));
    bytes.extend_from_slice(&[0, 0]);
    let decoder = FrameDecoder::default();
    let Ok(Decoded::Complete { consumed, .. }) = decoder.decode(&bytes) else {
        panic!("first frame");
    };
    assert_eq!(consumed, first);
    let rest = &bytes[consumed..];
    let Ok(Decoded::Complete { value, consumed }) = decoder.decode(rest) else {
        panic!("second frame");
    };
    assert_eq!(Envelope::split(value).unwrap().1, b"second");
    assert_eq!(
        &rest[consumed..],
        &[0, 0],
        "the start of the next frame is kept"
    );
}

#[test]
fn over_limit_is_refused_at_the_length_prefix() {
    let decoder = FrameDecoder::new(16);
    assert_eq!(
        decoder.decode(&17u32.to_be_bytes()),
        Err(FrameError::TooLarge { len: 17, max: 16 })
    );
    let mut out = Vec::new();
    assert_eq!(
        frame::encode(&[0; 17], 16, &mut out),
        Err(FrameError::TooLarge { len: 17, max: 16 })
    );
    assert!(out.is_empty());
}

proptest! {
    #[test]
    fn any_body_round_trips(body in proptest::collection::vec(any::<u8>(), 0..2048), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
        let mut bytes = Vec::new();
        frame::encode(&body, body.len(), &mut bytes).unwrap();
        prop_assert_eq!(bytes.len(), LENGTH_LEN + body.len());
        bytes.extend_from_slice(&tail);
        let decoded = FrameDecoder::new(body.len()).decode(&bytes).unwrap();
        prop_assert_eq!(decoded, Decoded::Complete { value: &body[..], consumed: LENGTH_LEN + body.len() });
    }

    #[test]
    fn any_envelope_round_trips(id in any::<u64>(), kind in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..256)) {
        let bytes = rpc(id, kind, &payload);
        let Ok(Decoded::Complete { value, .. }) = FrameDecoder::default().decode(&bytes) else {
            panic!("complete");
        };
        prop_assert_eq!(Envelope::split(value).unwrap(), (Envelope { id, kind }, &payload[..]));
    }
}
