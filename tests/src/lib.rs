//! Integration tests of rafthttp. The suite in `suite/` is written once and compiled into one
//! test binary per runtime (`tests/tokio.rs`, ...), each providing the same small `rt` facade:
//! runtime entry, spawn, listeners, raw sockets and IO helpers.
#![forbid(unsafe_code)]
