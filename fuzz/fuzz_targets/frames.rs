//! Raft engine frames: the length-prefixed frame decoder and the RPC envelope, over a stream
//! fed in pieces. Input: a split byte, a limit byte (the limit is `1 << (byte % 24)`), then
//! the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let [split, limit, data @ ..] = input {
        let max = 1usize << (limit % 24);
        rafthttp_core::fuzzing::frames(data, max, usize::from(*split));
    }
});
