//! Runnable examples of rafthttp: see `examples/`. Each runtime has its own, with a distinct
//! name (`quickstart-tokio`, `quickstart-smol`, `quickstart-async-std`).
#![forbid(unsafe_code)]

pub mod scenario;

/// The README's code blocks, compiled as doctests so the quick start stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
