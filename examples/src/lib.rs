//! Runnable examples of rafthttp: see `examples/`. Each runtime has its own, with a distinct
//! name (`quickstart-tokio`, `quickstart-smol`, `quickstart-async-std`).
#![forbid(unsafe_code)]
