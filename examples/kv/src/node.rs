//! One node of the key-value service, in-process: storage, openraft, the rafthttp network, the
//! membership glue and the HTTP server, wired together. The binary, the launcher and the drill
//! all run nodes through this module.
//!
//! ```no_run
//! use rafthttp_kv::node::{self, NodeOptions, Start};
//!
//! # async fn run() -> Result<(), rafthttp_kv::node::Error> {
//! let first = node::start(NodeOptions::new(1, Start::Bootstrap)).await?;
//! let target = first.addr().to_string();
//! let second = node::start(NodeOptions::new(2, Start::Join(target))).await?;
//! // ... PUT /kv/{key} on either address ...
//! second.shutdown().await;
//! first.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! [`start`] is [`bind`] then [`BoundNode::run`]: bind first to learn the address (the binary
//! prints it before joining, so a launcher can read it while the join proceeds).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{Fatal, InitializeError, RaftError};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use rafthttp_openraft::{Network, NetworkConfig, apply_membership};
use rafthttp_tokio::{Handler, HandlerConfig, InputError, Layer, MembershipError, TcpDialer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::app::{self, Kv, Timeouts};
use crate::store::{LogStore, NodeId, StateMachine, TypeConfig};

/// How a node enters its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Start a new cluster whose only voter is this node (`Raft::initialize`).
    Bootstrap,
    /// Ask the member at this address (`host:port`; a follower redirects to the leader) to add
    /// this node, first as a learner (it catches up, by snapshot if the leader purged its log),
    /// then as a voter.
    Join(String),
}

/// Everything [`start`] needs to run one node. Build it with [`NodeOptions::new`] and change
/// the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeOptions {
    /// The openraft node id, unique in the cluster for good (a replacement gets a fresh id).
    pub id: NodeId,
    /// The address to listen on (default `127.0.0.1:0`: an ephemeral port). The address bound
    /// is the one the node advertises to the others, so it must be a specific address, not
    /// `0.0.0.0`.
    pub listen: String,
    /// Bootstrap or join.
    pub start: Start,
    /// The leader's heartbeat interval (default 100 ms).
    pub heartbeat: Duration,
    /// The shortest election timeout (default 500 ms); above the heartbeat.
    pub election_min: Duration,
    /// The longest election timeout (default 1000 ms); above the shortest.
    pub election_max: Duration,
    /// openraft's `install_snapshot_timeout`: the bound on sending and installing one snapshot
    /// chunk (default 1000 ms).
    pub install_snapshot_timeout: Duration,
    /// Build a snapshot every this many applied log entries (default 1000).
    pub snapshot_logs: u64,
    /// Log entries kept once a snapshot covers them (openraft's `max_in_snapshot_log_to_keep`,
    /// default 10): small, so that a node joining later installs a snapshot rather than
    /// replaying the whole log.
    pub keep_logs: u64,
    /// How long a membership request may take on this node (the handler's timeout). It covers
    /// a learner's catch-up on the leader, so it is long (default 30 s).
    pub membership_timeout: Duration,
    /// How long [`Start::Join`] tries, through redirects, retries and a leader's death (default
    /// 60 s: longer than the leader's membership timeout).
    pub join_timeout: Duration,
    /// A client must send each HTTP request head within this (default 10 s).
    pub header_timeout: Duration,
    /// The HTTP handlers' bounds on waiting.
    pub timeouts: Timeouts,
}

impl NodeOptions {
    /// Node `id`, started as `start`, with the defaults of the other fields.
    pub fn new(id: NodeId, start: Start) -> Self {
        Self {
            id,
            listen: "127.0.0.1:0".to_owned(),
            start,
            heartbeat: Duration::from_millis(100),
            election_min: Duration::from_millis(500),
            election_max: Duration::from_millis(1000),
            install_snapshot_timeout: Duration::from_millis(1000),
            snapshot_logs: 1000,
            keep_logs: 10,
            membership_timeout: Duration::from_secs(30),
            join_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            timeouts: Timeouts::default(),
        }
    }

    /// The openraft configuration these options describe, validated.
    ///
    /// # Errors
    /// [`Error::Config`] when openraft refuses it (e.g. the shortest election timeout is not
    /// above the heartbeat), [`Error::Snapshot`] when `snapshot_logs` is 0.
    pub fn raft_config(&self) -> Result<Config, Error> {
        if self.snapshot_logs == 0 {
            return Err(Error::Snapshot);
        }
        let config = Config {
            cluster_name: "rafthttp-kv".to_owned(),
            heartbeat_interval: millis(self.heartbeat),
            election_timeout_min: millis(self.election_min),
            election_timeout_max: millis(self.election_max),
            install_snapshot_timeout: millis(self.install_snapshot_timeout),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_logs),
            max_in_snapshot_log_to_keep: self.keep_logs,
            ..Config::default()
        };
        config
            .validate()
            .map_err(|error| Error::Config(Box::new(error)))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Binding the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The error.
        source: io::Error,
    },
    /// The listener is bound to an unspecified address (`0.0.0.0`, `::`), which other nodes
    /// cannot dial.
    #[error(
        "listening on {0}: the address a node listens on is the one it advertises; give a specific address"
    )]
    Unspecified(SocketAddr),
    /// openraft refused the configuration.
    #[error("invalid raft configuration: {0}")]
    Config(#[source] Box<openraft::ConfigError>),
    /// A snapshot every 0 log entries.
    #[error("the snapshot interval must be at least 1 log entry")]
    Snapshot,
    /// The network refused the configuration.
    #[error("invalid network configuration: {0}")]
    Network(#[source] rafthttp_openraft::ConfigError),
    /// The layer refused the advertised address.
    #[error("invalid advertised address: {0}")]
    Address(#[source] InputError),
    /// openraft could not start.
    #[error("raft failed to start: {0}")]
    Raft(#[source] Box<Fatal<NodeId>>),
    /// `Raft::initialize` failed.
    #[error("bootstrapping failed: {0}")]
    Initialize(#[source] Box<RaftError<NodeId, InitializeError<NodeId, BasicNode>>>),
    /// The join did not succeed within [`NodeOptions::join_timeout`].
    #[error("joining through {target} failed: {source}")]
    Join {
        /// The member asked.
        target: String,
        /// The error.
        source: MembershipError,
    },
}

/// Binds the listener of a node: the first step of [`start`], which tells the address before
/// the node runs.
///
/// # Errors
/// [`Error::Bind`], [`Error::Unspecified`], and the configuration errors of
/// [`NodeOptions::raft_config`] (checked before anything runs).
pub async fn bind(options: NodeOptions) -> Result<BoundNode, Error> {
    let config = options.raft_config()?;
    let listener = TcpListener::bind(&options.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: options.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: options.listen.clone(),
        source,
    })?;
    if addr.ip().is_unspecified() {
        return Err(Error::Unspecified(addr));
    }
    Ok(BoundNode {
        options,
        config,
        listener,
        addr,
    })
}

/// Binds and runs a node: [`bind`] then [`BoundNode::run`].
///
/// # Errors
/// See [`Error`].
pub async fn start(options: NodeOptions) -> Result<RunningNode, Error> {
    bind(options).await?.run().await
}

/// A node whose listener is bound, not running yet.
#[derive(Debug)]
pub struct BoundNode {
    options: NodeOptions,
    config: Config,
    listener: TcpListener,
    addr: SocketAddr,
}

impl BoundNode {
    /// The address bound, which the node advertises.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The options.
    pub fn options(&self) -> &NodeOptions {
        &self.options
    }

    /// Starts Raft, the network and the HTTP server, then bootstraps or joins. Returns once the
    /// node is a voter (join) or the cluster is initialized (bootstrap); on an error everything
    /// started is stopped again.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn run(self) -> Result<RunningNode, Error> {
        let Self {
            options,
            config,
            listener,
            addr,
        } = self;
        let id = options.id;
        let advertised = addr.to_string();
        let config = Arc::new(config);
        let handler =
            Handler::with_config(HandlerConfig::default().with_timeout(options.membership_timeout));
        let layer = Layer::new(&advertised, handler.clone(), TcpDialer).map_err(Error::Address)?;
        let network = Network::new(layer.clone(), id, &config, NetworkConfig::default())
            .map_err(Error::Network)?;
        let state = StateMachine::new();
        let raft = Raft::new(id, config, network, LogStore::new(), state.clone())
            .await
            .map_err(|error| Error::Raft(Box::new(error)))?;

        let kv = Kv::new(id, raft.clone(), state).with_timeouts(options.timeouts);
        let router = app::router(kv.clone(), handler.clone());
        let tasks = vec![
            tokio::spawn(rafthttp_openraft::serve(
                raft.clone(),
                layer.clone(),
                NetworkConfig::default(),
            )),
            tokio::spawn(apply_membership(raft.clone(), handler.requests())),
            tokio::spawn(app::serve(listener, router, options.header_timeout)),
        ];
        let node = RunningNode {
            id,
            addr,
            raft,
            kv,
            handler,
            layer,
            tasks,
        };

        let started = match &options.start {
            Start::Bootstrap => node
                .raft
                .initialize(BTreeMap::from([(id, BasicNode::new(&advertised))]))
                .await
                .map_err(|error| Error::Initialize(Box::new(error))),
            Start::Join(target) => {
                tracing::info!(id, %target, "joining");
                node.layer
                    .join(&id.to_string(), target, options.join_timeout)
                    .await
                    .map_err(|source| Error::Join {
                        target: target.clone(),
                        source,
                    })
            }
        };
        match started {
            Ok(()) => {
                tracing::info!(id, %addr, "node running");
                Ok(node)
            }
            Err(error) => {
                node.shutdown().await;
                Err(error)
            }
        }
    }
}

/// A running node. [`shutdown`](Self::shutdown) stops it; dropping it without stopping closes
/// its handler and its HTTP server, and leaves openraft to stop with the runtime.
pub struct RunningNode {
    id: NodeId,
    addr: SocketAddr,
    raft: Raft<TypeConfig>,
    kv: Kv,
    handler: Handler,
    layer: Layer,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningNode")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningNode {
    /// The node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The address the node listens on and advertises.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Raft node.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// The application state (its state machine answers local reads).
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    /// The rafthttp handler mounted on the node's router.
    pub fn handler(&self) -> &Handler {
        &self.handler
    }

    /// The rafthttp layer (dial, join, leave) of this node.
    pub fn layer(&self) -> &Layer {
        &self.layer
    }

    /// Stops the node: closes the handler (no more Raft streams or membership requests), shuts
    /// openraft down, and stops the HTTP server.
    pub async fn shutdown(mut self) {
        self.handler.close();
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(id = self.id, %error, "raft did not shut down cleanly");
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        self.handler.close();
        for task in &self.tasks {
            task.abort();
        }
    }
}
