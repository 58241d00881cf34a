//! Membership client: a join call where every response is the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rafthttp_core::fuzzing::membership_response(data);
});
