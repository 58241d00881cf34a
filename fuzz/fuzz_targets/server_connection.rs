//! Server side: one connection's bytes, fed in pieces to the connection machine, every request
//! answered. Input: a split byte, then the connection's bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Some((&split, data)) = input.split_first() {
        rafthttp_core::fuzzing::server_connection(data, usize::from(split));
    }
});
