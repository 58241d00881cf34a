//! A replicated key-value service on openraft over rafthttp: one binary, one port. The Raft
//! traffic and the membership requests share the application's HTTP listener with its own
//! routes.
//!
//! - [`store`]: the in-memory log store and state machine (openraft 0.9 `storage-v2`).
//! - [`app`]: the HTTP side: the key-value and cluster routes next to the rafthttp mount on one
//!   axum router, and [`serve`] to run it with upgrades and a request-head timeout.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod app;
pub mod store;

pub use app::{ClusterView, Kv, Member, Timeouts, WriteResult, router, serve};
pub use store::{LogStore, NodeId, Request, Response, StateMachine, TypeConfig};
