//! Glue between rafthttp and tikv's `raft` crate (raft-rs 0.7).
//!
//! rafthttp gives each node Raft connections and membership requests over its HTTP port;
//! raft-rs is a pure state machine. This crate joins them:
//! - [`framing`]: length-prefixed protobuf `eraftpb::Message` frames with a size limit,
//!   sans-IO (an encoder into a `Vec` and an incremental decoder over a byte buffer);
//! - [`Applier`]: the membership applier (Go's raft-membership): `ChangeRequest`s become
//!   `ConfChangeV2` proposals on the leader, answered when applied, redirected to the leader
//!   elsewhere;
//! - [`StateMachine`]: the application state committed entries are applied to, snapshotted
//!   with the address book;
//! - [`LogStore`]: the raft log, any [`raft::Storage`] that can also be written (append, hard
//!   state, configuration, install and compact with a snapshot, sync); raft's `MemStorage`
//!   is the default, and [`FileLog`] keeps the log in a checksummed, fsynced file so a node
//!   restarts with its state;
//! - [`AddressBook`] and [`ClusterStorage`]: node id -> HTTP address, and the log, carried
//!   with the state in snapshots taken at the last applied entry;
//! - [`Replica`]: a raft node with the `Ready` handling, proposals and read-index reads,
//!   sans-IO;
//! - [`Node`]: the async shell, written once over the driver's [`Runtime`] and a small
//!   [`Network`] trait implemented for every runtime's `Layer`: [`Node::propose`] resolves
//!   with the state machine's output once the entry is applied, [`Node::read`] runs a
//!   closure on the state once raft's read index confirms it is current.
//!
//! ```no_run
//! use std::time::Duration;
//! use rafthttp_raft::{Node, NodeConfig, RestoreError, StateMachine};
//! use rafthttp_smol::{Layer, Smol};
//!
//! #[derive(Default)]
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     type Output = u64;
//!     fn apply(&mut self, _index: u64, data: &[u8]) -> u64 {
//!         self.0 += data.len() as u64;
//!         self.0
//!     }
//!     fn snapshot(&self) -> Vec<u8> {
//!         self.0.to_le_bytes().to_vec()
//!     }
//!     fn restore(&mut self, data: &[u8]) -> Result<(), RestoreError> {
//!         let bytes = data.try_into().map_err(|_| RestoreError("not 8 bytes".into()))?;
//!         self.0 = u64::from_le_bytes(bytes);
//!         Ok(())
//!     }
//! }
//!
//! # async fn run(layer: Layer) -> Result<(), Box<dyn std::error::Error>> {
//! let requests = layer.handler().requests();
//! let node = Node::bootstrap_with(Smol::new(), layer, requests, 1, Counter::default(), NodeConfig::default())?;
//! let total = node.propose(b"abc".to_vec(), Duration::from_secs(5)).await?;
//! let now = node.read(Duration::from_secs(5), |counter| counter.0).await?;
//! assert!(now >= total);
//! node.close().await;
//! # Ok(()) }
//! ```
//!
//! On disk, a node restarts with its state: open it on a [`FileLog`] with [`Node::open`]
//! (`Start` only matters for an empty log), and after a restart on another address call
//! [`Node::update_address`] so that the cluster dials it there.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use rafthttp_raft::{FileLog, Node, NodeConfig, Start};
//! # use rafthttp_smol::{Layer, Smol};
//! # async fn run(layer: Layer) -> Result<(), Box<dyn std::error::Error>> {
//! let requests = layer.handler().requests();
//! let log = FileLog::open("data/raft")?;
//! let node = Node::open(Smol::new(), layer, requests, 1, (), log, Start::Bootstrap, NodeConfig::default())?;
//! node.update_address(Duration::from_secs(30)).await?;
//! # Ok(()) }
//! ```
//!
//! The three-node example of the Go docs, runtime-generic, is the examples crate's `scenario`
//! (the `cluster-*` examples).
//!
//! The `raft` crate (and its protobuf 2.x codec, which carries advisories) is a dependency of
//! this crate only.
//!
//! [`Runtime`]: rafthttp_driver::Runtime
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod applier;
mod book;
pub mod framing;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod log_store;
mod net;
mod node;
mod replica;
mod state;

pub use applier::{Applier, ApplierStats, MembershipRequest, leader_address, parse_node_id};
pub use book::{AddressBook, ClusterState, ClusterStorage};
pub use log_store::{FileLog, LogStore};
pub use net::Network;
pub use node::{MoveError, Node, NodeConfig};
pub use replica::{
    DEFAULT_COMPACT_AFTER, MAX_WAITING, Outcome, ProposeError, RaftTiming, ReadError, Replica,
    Start,
};
pub use state::{RestoreError, StateMachine};

pub use raft;
