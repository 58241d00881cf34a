//! openraft over rafthttp: Raft traffic and cluster membership on the application's own HTTP
//! port, for [openraft](https://docs.rs/openraft) 0.9 on tokio.
//!
//! - [`Network`] is openraft's `RaftNetworkFactory`: RPCs travel as length-prefixed frames
//!   ([`codec`]) over upgraded HTTP connections dialed through a [`rafthttp_tokio::Layer`],
//!   three streams per peer (control, replication, snapshots), dialed lazily and again after an
//!   error.
//! - [`serve`] answers the RPCs on the streams the layer accepts, calling the local `Raft`.
//! - [`apply_membership`] applies the join and leave requests that reach the handler
//!   (`POST`/`DELETE` on the Raft path, as the Go package sends them) to openraft, redirecting
//!   them to the leader from followers.
//!
//! The node's HTTP address is its openraft [`BasicNode`](openraft::BasicNode): the address
//! other nodes dial, and where followers redirect membership requests. Node ids are `u64`.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use openraft::{BasicNode, Config, Raft};
//! use rafthttp_openraft::{Network, NetworkConfig, apply_membership, serve};
//! use rafthttp_tokio::{Handler, Layer, TcpDialer};
//! # use rafthttp_kv::{LogStore, StateMachine, TypeConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?.to_string();
//! let handler = Handler::new(); // or mount it in axum: Router::route_service("/raft", handler)
//! tokio::spawn({
//!     let handler = handler.clone();
//!     async move { handler.serve(listener).await }
//! });
//! let layer = Layer::new(&addr, handler.clone(), TcpDialer)?;
//!
//! let config = Arc::new(Config::default().validate()?);
//! let network = Network::new(layer.clone(), 1, &config, NetworkConfig::default())?;
//! let raft = Raft::<TypeConfig>::new(1, config, network, LogStore::new(), StateMachine::new()).await?;
//! tokio::spawn(serve(raft.clone(), layer.clone(), NetworkConfig::default()));
//! tokio::spawn(apply_membership(raft.clone(), handler.requests()));
//!
//! // The first node starts the cluster; the others ask any member to let them in:
//! raft.initialize(BTreeMap::from([(1, BasicNode::new(&addr))])).await?;
//! // layer.join("2", "127.0.0.1:8001", Duration::from_secs(30)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! No runtime crate, core or driver depends on openraft: this crate sits on
//! `rafthttp-tokio`'s public API.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
pub mod codec;
mod membership;
mod server;

use std::time::Duration;

pub use client::{Client, Connector, Network};
pub use membership::apply_membership;
pub use server::{ServeError, serve, serve_stream};

/// Bytes a snapshot chunk's frame needs beyond the chunk (the request's other fields, the
/// membership in its metadata): [`NetworkConfig::check`] wants the frame limit to leave this
/// much room.
pub const SNAPSHOT_OVERHEAD: usize = 64 * 1024;

/// How the [`Network`] and [`serve`] behave. Build it with [`Default`] and the setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NetworkConfig {
    /// Largest frame body sent or accepted (default 16 MiB). It must exceed openraft's
    /// `snapshot_max_chunk_size` (3 MiB by default) plus [`SNAPSHOT_OVERHEAD`]; an
    /// append-entries batch over it is answered `PayloadTooLarge` with a hint, so openraft
    /// sends fewer entries.
    pub max_frame: usize,
    /// The wait after a failed dial (default 50 ms); it doubles with every failure in a row.
    pub redial_first: Duration,
    /// The longest wait between dials (default 1 s).
    pub redial_max: Duration,
    /// Frames waiting for a stream's writer at most (default 64): an RPC waits for room,
    /// within its TTL.
    pub queue: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            max_frame: 16 * 1024 * 1024,
            redial_first: Duration::from_millis(50),
            redial_max: Duration::from_secs(1),
            queue: 64,
        }
    }
}

impl NetworkConfig {
    /// Sets the frame limit.
    #[must_use]
    pub fn with_max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Sets the first and longest wait between dials.
    #[must_use]
    pub fn with_redial(mut self, first: Duration, max: Duration) -> Self {
        self.redial_first = first;
        self.redial_max = max.max(first);
        self
    }

    /// Checks the frame limit against openraft's configuration.
    ///
    /// # Errors
    /// [`ConfigError::ChunkTooLarge`] when a snapshot chunk would not fit in a frame.
    pub fn check(&self, raft: &openraft::Config) -> Result<(), ConfigError> {
        let chunk = usize::try_from(raft.snapshot_max_chunk_size).unwrap_or(usize::MAX);
        if chunk.saturating_add(SNAPSHOT_OVERHEAD) > self.max_frame {
            return Err(ConfigError::ChunkTooLarge {
                chunk,
                max_frame: self.max_frame,
            });
        }
        Ok(())
    }
}

/// The network's configuration does not fit openraft's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// openraft's snapshot chunks would not fit in a frame.
    #[error(
        "snapshot chunks of {chunk} bytes do not fit in frames of {max_frame} bytes: raise NetworkConfig::max_frame or lower snapshot_max_chunk_size"
    )]
    ChunkTooLarge {
        /// openraft's `snapshot_max_chunk_size`.
        chunk: usize,
        /// The frame limit.
        max_frame: usize,
    },
}
