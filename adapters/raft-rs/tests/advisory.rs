//! RUSTSEC-2024-0437 (uncontrolled recursion in protobuf < 3.7.2) against the protobuf 2.28
//! decoder raft 0.7 requires: peer bytes reach it through the frame decoder. Inputs that would
//! make a recursive decoder overflow its stack (100,000 nested start-group tags, deeply nested
//! length-delimited fields) must be refused with an error, on every message type a peer can
//! send. This test is the mitigation the README's "Known advisories" names: protobuf 2.28 does
//! not recurse on them (unknown groups are refused, unknown length-delimited fields skipped).

use protobuf::Message as _;
use rafthttp_raft::framing::{Decoded, FrameDecoder, encode_frame};
use rafthttp_raft::raft::eraftpb::{ConfChange, ConfChangeV2, Message};

/// `n` start-group tags of field `field`, never closed.
fn nested_groups(field: u32, n: usize) -> Vec<u8> {
    let mut tag = Vec::new();
    let mut key = (field << 3) | 3; // wire type 3: start group
    loop {
        let byte = (key & 0x7f) as u8;
        key >>= 7;
        if key == 0 {
            tag.push(byte);
            break;
        }
        tag.push(byte | 0x80);
    }
    tag.repeat(n)
}

/// Length-delimited fields of `field` nested `depth` deep, each holding the next.
fn nested_messages(field: u32, depth: usize) -> Vec<u8> {
    let mut inner: Vec<u8> = Vec::new();
    for _ in 0..depth {
        let mut outer = Vec::new();
        let mut key = (field << 3) | 2;
        while key >= 0x80 {
            outer.push((key & 0x7f) as u8 | 0x80);
            key >>= 7;
        }
        outer.push(key as u8);
        let mut len = inner.len();
        while len >= 0x80 {
            outer.push((len & 0x7f) as u8 | 0x80);
            len >>= 7;
        }
        outer.push(len as u8);
        outer.extend_from_slice(&inner);
        inner = outer;
    }
    inner
}

fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("groups in field 1", nested_groups(1, 100_000)),
        ("groups in an unknown field", nested_groups(100, 100_000)),
        ("groups after a valid field", {
            let mut bytes = vec![0x08, 0x03]; // msg_type = 3
            bytes.extend(nested_groups(15, 100_000));
            bytes
        }),
        (
            "nested length-delimited, unknown field",
            nested_messages(100, 5_000),
        ),
        (
            "nested length-delimited, snapshot field",
            nested_messages(9, 5_000),
        ),
    ]
}

#[test]
fn hostile_inputs_are_errors_for_every_peer_facing_message() {
    for (name, bytes) in hostile() {
        // Any outcome but a crash is acceptable for skipped unknown data; groups must fail.
        let message = Message::parse_from_bytes(&bytes);
        let change = ConfChange::parse_from_bytes(&bytes);
        let change_v2 = ConfChangeV2::parse_from_bytes(&bytes);
        if name.starts_with("groups") {
            assert!(message.is_err(), "{name}: Message accepted it");
            assert!(change.is_err(), "{name}: ConfChange accepted it");
            assert!(change_v2.is_err(), "{name}: ConfChangeV2 accepted it");
        }
    }
}

#[test]
fn hostile_frames_are_refused_by_the_frame_decoder() {
    let decoder = FrameDecoder::new(4 * 1024 * 1024);
    for (name, body) in hostile() {
        let mut frame = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        let decoded = decoder.decode(&frame);
        if name.starts_with("groups") {
            assert!(decoded.is_err(), "{name}: a frame of it decoded");
        } else {
            // Unknown length-delimited data is skipped, not parsed: no recursion, and the
            // message that comes out is an ordinary one.
            assert!(!matches!(decoded, Ok(Decoded::NeedMore { .. })), "{name}");
        }
    }
    // A valid message still decodes after all that.
    let mut ok = Vec::new();
    encode_frame(&Message::default(), 1024, &mut ok).unwrap();
    assert!(matches!(decoder.decode(&ok), Ok(Decoded::Frame { .. })));
}

/// Writes the seeds of the `raft_frames` fuzz target (run with `--ignored` after changing
/// them): real frames of every message kind the node sends, split in several ways.
#[test]
#[ignore = "writes fuzz/seeds/raft_frames"]
fn write_fuzz_seeds() {
    use rafthttp_raft::raft::eraftpb::{Entry, MessageType, Snapshot};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/raft_frames");
    std::fs::create_dir_all(&dir).unwrap();
    let mut append = Message::default();
    append.set_msg_type(MessageType::MsgAppend);
    append.set_entries(
        vec![Entry {
            data: b"x".to_vec().into(),
            ..Entry::default()
        }]
        .into(),
    );
    let mut snapshot = Message::default();
    snapshot.set_msg_type(MessageType::MsgSnapshot);
    snapshot.set_snapshot(Snapshot {
        data: vec![7; 300].into(),
        ..Snapshot::default()
    });
    let mut vote = Message::default();
    vote.set_msg_type(MessageType::MsgRequestVote);
    for (name, messages, split) in [
        ("append_whole", vec![append.clone()], 255u8),
        ("append_then_vote_bytewise", vec![append, vote.clone()], 1),
        ("snapshot_in_pieces", vec![snapshot], 17),
        ("vote", vec![vote], 3),
    ] {
        let mut bytes = vec![split];
        for message in &messages {
            encode_frame(message, 1 << 20, &mut bytes).unwrap();
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let mut groups = vec![5u8];
    let body = nested_groups(1, 2000);
    groups.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    groups.extend(body);
    std::fs::write(dir.join("nested_groups"), groups).unwrap();
}
