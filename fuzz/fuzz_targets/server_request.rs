//! Server side: request-head decoder fed in pieces, checked against a whole-buffer decode,
//! then routed.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

/// Decoded with `arbitrary_take_rest`: the first byte is the split size, the rest is the request
/// as is. The seeds in `fuzz/seeds/server_request/` and the replay test in
/// `core/tests/fuzz_corpus.rs` rely on that layout. (A `Vec<u8>` would not do: its
/// `arbitrary_take_rest` reads a continuation flag before each byte.)
#[derive(Debug, Arbitrary)]
struct Input<'a> {
    split: u8,
    data: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    rafthttp_core::fuzzing::server_request(input.data, usize::from(input.split));
});
