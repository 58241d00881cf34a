//! A replicated key-value service on openraft over rafthttp: one binary, one port. The Raft
//! traffic and the membership requests share the application's HTTP listener with its own
//! routes.
//!
//! - [`store`]: the in-memory log store and state machine (openraft 0.9 `storage-v2`).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod store;

pub use store::{LogStore, NodeId, Request, Response, StateMachine, TypeConfig};
