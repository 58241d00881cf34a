//! A replicated key-value service on openraft over rafthttp: one binary, one port. The Raft
//! traffic and the membership requests share the application's HTTP listener with its own
//! routes.
//!
//! - [`store`]: the in-memory log store and state machine (openraft 0.9 `storage-v2`).
//! - [`app`]: the HTTP side: the key-value and cluster routes next to the rafthttp mount on one
//!   axum router, and [`serve`] to run it with upgrades and a request-head timeout.
//! - [`node`]: one node in-process: listener, openraft, the rafthttp network and membership,
//!   the HTTP server.
//! - [`cli`]: the `rafthttp-kv` command line (one node per process).
//! - [`client`]: a small HTTP client for the service (bounded, follows redirects).
//! - [`process`]: nodes as child processes, for launchers and drills.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod client;
pub mod node;
pub mod process;
pub mod store;

pub use app::{ClusterView, Kv, Member, Timeouts, WriteResult, router, serve};
pub use store::{LogStore, NodeId, Request, Response, StateMachine, TypeConfig};
