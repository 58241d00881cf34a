//! Glue between rafthttp and tikv's `raft` crate (raft-rs 0.7).
//!
//! rafthttp gives each node Raft connections and membership requests over its HTTP port;
//! raft-rs is a pure state machine. This crate joins them:
//! - [`framing`]: length-prefixed protobuf `eraftpb::Message` frames with a size limit,
//!   sans-IO (an encoder into a `Vec` and an incremental decoder over a byte buffer);
//! - [`Applier`]: the membership applier (Go's raft-membership): `ChangeRequest`s become
//!   `ConfChangeV2` proposals on the leader, answered when applied, redirected to the leader
//!   elsewhere;
//! - [`AddressBook`] and [`ClusterStorage`]: node id -> HTTP address, carried in snapshots;
//! - [`Replica`]: a raft node with the `Ready` handling, sans-IO;
//! - [`Node`]: the async shell, written once over the driver's [`Runtime`] and a small
//!   [`Network`] trait implemented for the Layers of `rafthttp-smol`/`rafthttp-async-std`
//!   (feature `smol`) and `rafthttp-tokio` (feature `tokio`).
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
mod net;
mod node;
mod replica;

pub use applier::{Applier, ApplierStats, MembershipRequest, leader_address, parse_node_id};
pub use book::{AddressBook, ClusterStorage};
pub use net::Network;
pub use node::{Node, NodeConfig};
pub use replica::{RaftTiming, Replica};

pub use raft;
