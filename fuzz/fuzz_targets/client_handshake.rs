//! Client side: response to an upgrade request.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rafthttp_core::fuzzing::client_handshake(data);
});
