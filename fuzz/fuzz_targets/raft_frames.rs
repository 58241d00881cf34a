//! rafthttp-raft's frames: a length prefix and a protobuf `eraftpb::Message` (protobuf 2.28,
//! RUSTSEC-2024-0437: see the README's known advisories), over a stream fed in pieces.
//! Input: a split byte, then the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Some((&split, data)) = input.split_first() {
        rafthttp_raft::fuzzing::raft_frames(data, usize::from(split));
    }
});
