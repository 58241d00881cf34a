//! The replicated key-value service (`rafthttp-kv`, openraft 0.9) over three Raft networks, in
//! one run: how many writes a three-node cluster commits, and how long each takes, when its Raft
//! RPCs travel
//!
//! - **rafthttp**: `rafthttp_openraft::Network` over upgraded HTTP connections on each node's
//!   own HTTP port (the KV router with the rafthttp handler mounted);
//! - **raw TCP**: the same network and the same frames over plain TCP connections to a second,
//!   raw listener per node (`serve_stream` per connection): what a transport with no HTTP at
//!   all reaches;
//! - **HTTP-POST**: one JSON `POST /raft-rpc/{append,vote,snapshot}` per RPC over a pooled
//!   keep-alive hyper client, answered by axum routes on the node's HTTP port (openraft's own
//!   examples' way, with a pooled client instead of a new one per call).
//!
//! The storage, the state machine and the HTTP handlers of the service are the example's; only
//! the network factory and the RPC server differ. Everything runs in one process on
//! `127.0.0.1`: three nodes per network, and the clients, which `PUT /kv/{unique key}` to the
//! leader sequentially, 1 or 16 at a time, for a fixed time per repetition. Networks are
//! interleaved between repetitions (a fresh cluster each time) so that noise hits all three
//! alike; the table gives medians over the repetitions, the process's CPU time per write, and
//! how many entries an append-entries RPC carried on average.
//!
//! `--breakdown` adds where a write's time goes: a fourth "network", one node without
//! replication; the same load calling `raft.client_write` in-process on the leader (no KV HTTP
//! request); and, per network, the parts of one write's latency measured one at a time by a
//! single caller (see [`breakdown`]).
//!
//! Usage: `cargo run --release -p rafthttp-benches --bin kv -- [--secs S] [--warmup S] [--reps N]
//! [--clients 1,16] [--verbose] [--breakdown]`. Defaults: 2 s measured after 0.5 s of warm-up,
//! 5 repetitions, 1 and 16 clients (about 80 s; `--breakdown` about 4 min). Every wait is
//! bounded; a failed write is counted as an error, and a cluster that fails to start is
//! reported and skipped.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Json, State};
use axum::routing::post;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Config, Raft, RaftLogReader, ServerState, SnapshotPolicy};
use rafthttp_kv::{Kv, LogStore, NodeId, Request, StateMachine, TypeConfig, app};
use rafthttp_openraft::{Connector, Network, NetworkConfig};
use rafthttp_tokio::{Handler, Layer, TcpDialer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, timeout, timeout_at};

/// Bound on one client write (the service's own bound on `client_write` is 5 s).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on starting a cluster: initialize, elect, commit the first entries.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on stopping one node.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes in each written value.
const VALUE_BYTES: usize = 80;
/// A client's request head must arrive within this (the service's `header_timeout`).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Options {
    /// Measured time per (network, clients) and repetition.
    secs: Duration,
    /// Unmeasured writes before each measured period.
    warmup: Duration,
    /// Repetitions (a fresh cluster per network in each).
    reps: usize,
    /// Concurrent client counts.
    clients: Vec<usize>,
    /// Print every run to stderr.
    verbose: bool,
    /// Measure the parts of one write's latency too.
    breakdown: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            secs: Duration::from_secs(2),
            warmup: Duration::from_millis(500),
            reps: 5,
            clients: vec![1, 16],
            verbose: false,
            breakdown: false,
        }
    }
}

const USAGE: &str =
    "usage: kv [--secs S] [--warmup S] [--reps N] [--clients 1,16] [--verbose] [--breakdown]";

impl Options {
    fn parse() -> Result<Self, String> {
        let mut options = Self::default();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                "--secs" => options.secs = seconds(&value("--secs")?)?,
                "--warmup" => options.warmup = seconds(&value("--warmup")?)?,
                "--reps" => {
                    options.reps = value("--reps")?
                        .parse()
                        .map_err(|e| format!("--reps: {e}"))?;
                }
                "--clients" => {
                    options.clients = value("--clients")?
                        .split(',')
                        .map(|n| n.trim().parse::<usize>())
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("--clients: {e}"))?;
                }
                "--verbose" => options.verbose = true,
                "--breakdown" => options.breakdown = true,
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        if options.reps == 0 || options.clients.is_empty() || options.clients.contains(&0) {
            return Err(format!(
                "--reps and every --clients count must be at least 1\n{USAGE}"
            ));
        }
        if options.secs.is_zero() {
            return Err(format!("--secs must be above 0\n{USAGE}"));
        }
        Ok(options)
    }
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{text:?} is not a number of seconds"))
}

// ---------------------------------------------------------------------------------------------
// The three networks
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Net {
    Rafthttp,
    RawTcp,
    HttpPost,
    /// The breakdown's baseline: one node (rafthttp's network, never used), no replication.
    Single,
}

impl Net {
    const ALL: [Self; 3] = [Self::Rafthttp, Self::RawTcp, Self::HttpPost];
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Rafthttp => "rafthttp",
            Self::RawTcp => "raw TCP, same frames",
            Self::HttpPost => "HTTP POST per RPC, JSON",
            Self::Single => "1 node, no replication",
        })
    }
}

/// Raw TCP: a node's HTTP address (its `BasicNode` address) mapped to its raw listener.
#[derive(Debug, Clone)]
struct RawConnector {
    table: Arc<HashMap<String, SocketAddr>>,
}

impl Connector for RawConnector {
    type Stream = TcpStream;

    async fn connect(&self, addr: &str, bound: Duration) -> io::Result<TcpStream> {
        let raw = self.table.get(addr).copied().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no raw address for {addr}"),
            )
        })?;
        let tcp = timeout(bound, TcpStream::connect(raw))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }
}

/// The raw listener of a node: one `serve_stream` task per connection. Aborting this task
/// aborts them all (the set is dropped).
async fn serve_raw(listener: TcpListener, raft: Raft<TypeConfig>, max_frame: usize) {
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    let raft = raft.clone();
                    streams.spawn(async move {
                        let _ = rafthttp_openraft::serve_stream(raft, tcp, max_frame).await;
                    });
                }
                Err(_) => sleep(Duration::from_millis(10)).await,
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
        }
    }
}

type Http = HyperClient<HttpConnector, Full<Bytes>>;

/// A pooled keep-alive HTTP/1.1 client with `TCP_NODELAY`.
fn http_client() -> Http {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    HyperClient::builder(TokioExecutor::new()).build(connector)
}

/// HTTP-POST: every RPC is one JSON `POST` over a pooled client shared by all clients of the
/// factory.
#[derive(Debug, Clone)]
struct PostNetwork {
    id: NodeId,
    http: Http,
}

impl RaftNetworkFactory<TypeConfig> for PostNetwork {
    type Network = PostClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PostClient {
        PostClient {
            id: self.id,
            http: self.http.clone(),
            target,
            node: node.clone(),
        }
    }
}

#[derive(Debug)]
struct PostClient {
    id: NodeId,
    http: Http,
    target: NodeId,
    node: BasicNode,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

/// How one POST failed, before openraft's errors.
enum PostError {
    Connect(String),
    Other(String),
}

impl PostClient {
    async fn post<Req, Resp, E>(
        &self,
        path: &str,
        action: RPCTypes,
        request: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let ttl = option.hard_ttl();
        let body =
            serde_json::to_vec(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let uri = format!("http://{}/raft-rpc/{path}", self.node.addr);
        let exchange = async {
            let request = hyper::Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| PostError::Other(e.to_string()))?;
            let response = self.http.request(request).await.map_err(|e| {
                if e.is_connect() {
                    PostError::Connect(e.to_string())
                } else {
                    PostError::Other(e.to_string())
                }
            })?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| PostError::Other(e.to_string()))?
                .to_bytes();
            if status != StatusCode::OK {
                return Err(PostError::Other(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&bytes)
                )));
            }
            Ok(bytes)
        };
        let bytes = match timeout(ttl, exchange).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(PostError::Connect(why))) => {
                return Err(RPCError::Unreachable(Unreachable::new(&io::Error::other(
                    why,
                ))));
            }
            Ok(Err(PostError::Other(why))) => {
                return Err(RPCError::Network(NetworkError::new(&io::Error::other(why))));
            }
            Err(_) => {
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: self.id,
                    target: self.target,
                    timeout: ttl,
                }));
            }
        };
        match serde_json::from_slice::<Result<Resp, RaftError<NodeId, E>>>(&bytes) {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                remote,
            ))),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for PostClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.post("append", RPCTypes::AppendEntries, &rpc, &option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.post("snapshot", RPCTypes::InstallSnapshot, &rpc, &option)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.post("vote", RPCTypes::Vote, &rpc, &option).await
    }
}

/// The HTTP-POST network's server side: routes merged into the node's KV router.
fn rpc_router(raft: Raft<TypeConfig>) -> Router {
    Router::new()
        .route("/raft-rpc/append", post(rpc_append))
        .route("/raft-rpc/vote", post(rpc_vote))
        .route("/raft-rpc/snapshot", post(rpc_snapshot))
        // Snapshot chunks (3 MiB by default) are JSON arrays of numbers: allow them.
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(raft)
}

async fn rpc_append(
    State(raft): State<Raft<TypeConfig>>,
    Json(rpc): Json<AppendEntriesRequest<TypeConfig>>,
) -> Json<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>> {
    Json(raft.append_entries(rpc).await)
}

async fn rpc_vote(
    State(raft): State<Raft<TypeConfig>>,
    Json(rpc): Json<VoteRequest<NodeId>>,
) -> Json<Result<VoteResponse<NodeId>, RaftError<NodeId>>> {
    Json(raft.vote(rpc).await)
}

async fn rpc_snapshot(
    State(raft): State<Raft<TypeConfig>>,
    Json(rpc): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Json<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>> {
    Json(raft.install_snapshot(rpc).await)
}

// ---------------------------------------------------------------------------------------------
// A cluster
// ---------------------------------------------------------------------------------------------

/// The same openraft configuration for every network.
fn raft_config() -> Result<Arc<Config>, String> {
    let config = Config {
        cluster_name: "kv-bench".to_owned(),
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        // No snapshots: a run's log (tens of thousands of small entries) fits in memory, and
        // building snapshots (the whole map as JSON, under the state machine's lock) would
        // measure the example's storage rather than the network.
        snapshot_policy: SnapshotPolicy::Never,
        ..Config::default()
    };
    config
        .validate()
        .map(Arc::new)
        .map_err(|e| format!("raft config: {e}"))
}

struct Node {
    id: NodeId,
    addr: String,
    raft: Raft<TypeConfig>,
    log: LogStore,
    handler: Handler,
    tasks: Vec<JoinHandle<()>>,
}

struct Cluster {
    net: Net,
    nodes: Vec<Node>,
    /// Raw TCP: the HTTP-address-to-raw-address table.
    table: Arc<HashMap<String, SocketAddr>>,
    config: Arc<Config>,
    counters: Arc<Counters>,
}

impl Cluster {
    /// Three nodes on `net`, node 1 initializing all three as voters; returns once a leader has
    /// committed the initial entries.
    async fn start(net: Net, config: &Arc<Config>) -> Result<Self, String> {
        let mut cluster = Self {
            net,
            nodes: Vec::new(),
            table: Arc::default(),
            config: Arc::clone(config),
            counters: Arc::default(),
        };
        match timeout(START_TIMEOUT, cluster.populate()).await {
            Ok(Ok(())) => Ok(cluster),
            Ok(Err(e)) => {
                cluster.shutdown().await;
                Err(e)
            }
            Err(_) => {
                cluster.shutdown().await;
                Err(format!(
                    "the cluster did not start within {START_TIMEOUT:?}"
                ))
            }
        }
    }

    async fn populate(&mut self) -> Result<(), String> {
        let net = self.net;
        let bind = || async {
            TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("bind: {e}"))
        };
        let mut http = Vec::new();
        let mut raw = Vec::new();
        let mut table = HashMap::new();
        let size = if net == Net::Single { 1 } else { 3 };
        for _ in 0..size {
            let listener = bind().await?;
            let addr = listener
                .local_addr()
                .map_err(|e| format!("local_addr: {e}"))?
                .to_string();
            if net == Net::RawTcp {
                let raw_listener = bind().await?;
                let raw_addr = raw_listener
                    .local_addr()
                    .map_err(|e| format!("local_addr: {e}"))?;
                table.insert(addr.clone(), raw_addr);
                raw.push(raw_listener);
            }
            http.push((listener, addr));
        }
        self.table = Arc::new(table);
        let mut raw = raw.into_iter();
        let members: BTreeMap<NodeId, BasicNode> = (1..)
            .zip(&http)
            .map(|(id, (_, addr))| (id, BasicNode::new(addr)))
            .collect();

        for (id, (listener, addr)) in (1..).zip(http) {
            let handler = Handler::new();
            let state = StateMachine::new();
            let log = LogStore::new();
            let mut tasks = Vec::new();
            let raft = match net {
                Net::Rafthttp | Net::Single => {
                    let layer = Layer::new(&addr, handler.clone(), TcpDialer)
                        .map_err(|e| format!("layer: {e}"))?;
                    let network =
                        Network::new(layer.clone(), id, &self.config, NetworkConfig::default())
                            .map_err(|e| format!("network: {e}"))?;
                    let raft =
                        new_raft(id, &self.config, network, &self.counters, &log, &state).await?;
                    tasks.push(tokio::spawn(rafthttp_openraft::serve(
                        raft.clone(),
                        layer,
                        NetworkConfig::default(),
                    )));
                    raft
                }
                Net::RawTcp => {
                    let connector = RawConnector {
                        table: Arc::clone(&self.table),
                    };
                    let network =
                        Network::new(connector, id, &self.config, NetworkConfig::default())
                            .map_err(|e| format!("network: {e}"))?;
                    let raft =
                        new_raft(id, &self.config, network, &self.counters, &log, &state).await?;
                    let listener = raw.next().ok_or("no raw listener")?;
                    tasks.push(tokio::spawn(serve_raw(
                        listener,
                        raft.clone(),
                        NetworkConfig::default().max_frame,
                    )));
                    raft
                }
                Net::HttpPost => {
                    let network = PostNetwork {
                        id,
                        http: http_client(),
                    };
                    new_raft(id, &self.config, network, &self.counters, &log, &state).await?
                }
            };
            let mut router = app::router(Kv::new(id, raft.clone(), state), handler.clone());
            if net == Net::HttpPost {
                router = router.merge(rpc_router(raft.clone()));
            }
            tasks.push(tokio::spawn(app::serve(listener, router, HEADER_TIMEOUT)));
            self.nodes.push(Node {
                id,
                addr,
                raft,
                log,
                handler,
                tasks,
            });
        }

        self.nodes[0]
            .raft
            .initialize(members)
            .await
            .map_err(|e| format!("initialize: {e}"))?;
        let leader = self.leader().await?;
        // The leader has committed and applied its first entries (membership, blank).
        let mut metrics = self.nodes[leader].raft.metrics();
        metrics
            .wait_for(|m| {
                m.last_log_index.is_some() && m.last_applied.map(|l| l.index) == m.last_log_index
            })
            .await
            .map_err(|_| "raft stopped".to_owned())?;
        Ok(())
    }

    /// The index in `nodes` of the leader, once node 1 knows one and that node says it leads.
    async fn leader(&self) -> Result<usize, String> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let mut metrics = self.nodes[0].raft.metrics();
            let id = timeout_at(deadline, metrics.wait_for(|m| m.current_leader.is_some()))
                .await
                .map_err(|_| "no leader elected in time".to_owned())?
                .map_err(|_| "raft stopped".to_owned())?
                .current_leader;
            let Some(index) = self.nodes.iter().position(|n| Some(n.id) == id) else {
                return Err(format!("unknown leader {id:?}"));
            };
            let mut leader = self.nodes[index].raft.metrics();
            let leads = timeout_at(
                deadline,
                leader.wait_for(|m| m.state == ServerState::Leader || m.current_leader != id),
            )
            .await
            .map_err(|_| "no leader elected in time".to_owned())?
            .map_err(|_| "raft stopped".to_owned())?
            .state
                == ServerState::Leader;
            if leads {
                return Ok(index);
            }
        }
    }

    fn term(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.raft.metrics().borrow().current_term)
            .max()
            .unwrap_or(0)
    }

    /// Whether every node applied the leader's whole log within a few seconds.
    async fn replicated(&self, leader: usize) -> bool {
        let last = self.nodes[leader].raft.metrics().borrow().last_log_index;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        for node in &self.nodes {
            let mut metrics = node.raft.metrics();
            let caught_up = timeout_at(
                deadline,
                metrics.wait_for(|m| m.last_applied.map(|l| l.index) >= last),
            )
            .await;
            if !matches!(caught_up, Ok(Ok(_))) {
                return false;
            }
        }
        true
    }

    async fn shutdown(&mut self) {
        for node in self.nodes.drain(..) {
            node.handler.close();
            let _ = timeout(SHUTDOWN_TIMEOUT, node.raft.shutdown()).await;
            for task in node.tasks {
                task.abort();
            }
        }
    }
}

async fn new_raft<N: RaftNetworkFactory<TypeConfig>>(
    id: NodeId,
    config: &Arc<Config>,
    network: N,
    counters: &Arc<Counters>,
    log: &LogStore,
    state: &StateMachine,
) -> Result<Raft<TypeConfig>, String> {
    let network = Counted {
        inner: network,
        counters: Arc::clone(counters),
    };
    Raft::new(id, Arc::clone(config), network, log.clone(), state.clone())
        .await
        .map_err(|e| format!("raft: {e}"))
}

/// Append-entries RPCs that carried entries, and the entries they carried, over a cluster.
#[derive(Debug, Default)]
struct Counters {
    appends: AtomicU64,
    entries: AtomicU64,
}

impl Counters {
    fn read(&self) -> (u64, u64) {
        (
            self.appends.load(Ordering::Relaxed),
            self.entries.load(Ordering::Relaxed),
        )
    }
}

/// Any of the three networks, counting the append-entries RPCs with entries (two relaxed
/// atomic adds per RPC, on all three alike).
struct Counted<N> {
    inner: N,
    counters: Arc<Counters>,
}

impl<N: RaftNetworkFactory<TypeConfig>> RaftNetworkFactory<TypeConfig> for Counted<N> {
    type Network = Counted<N::Network>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        Counted {
            inner: self.inner.new_client(target, node).await,
            counters: Arc::clone(&self.counters),
        }
    }
}

impl<N: RaftNetwork<TypeConfig>> RaftNetwork<TypeConfig> for Counted<N> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        if !rpc.entries.is_empty() {
            self.counters.appends.fetch_add(1, Ordering::Relaxed);
            self.counters
                .entries
                .fetch_add(rpc.entries.len() as u64, Ordering::Relaxed);
        }
        self.inner.append_entries(rpc, option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.inner.install_snapshot(rpc, option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.inner.vote(rpc, option).await
    }

    fn backoff(&self) -> Backoff {
        self.inner.backoff()
    }
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat` (Linux; in
/// clock ticks, taken as 100 per second).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses: state is field 3, utime 14,
    // stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

/// One measured period.
#[derive(Debug, Clone)]
struct Run {
    writes: u64,
    errors: u64,
    elapsed: Duration,
    /// Latencies of the successful writes, sorted.
    latencies: Vec<Duration>,
    /// The cluster's term went up during the period (an election).
    election: bool,
    first_error: Option<String>,
    /// The process's CPU time during the period (nodes and clients together).
    cpu: Option<Duration>,
    /// Append-entries RPCs with entries, and their entries, during the period.
    appends: u64,
    entries: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Option<Duration> {
        percentile(&self.latencies, p)
    }

    /// CPU time per successful write.
    fn cpu_per_write(&self) -> Option<Duration> {
        let writes = u32::try_from(self.writes).ok().filter(|&w| w > 0)?;
        self.cpu.map(|cpu| cpu / writes)
    }

    /// Entries per append-entries RPC.
    fn batch(&self) -> Option<f64> {
        (self.appends > 0).then(|| self.entries as f64 / self.appends as f64)
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// What one client task did.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

/// How the writes reach the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Path {
    /// `PUT /kv/{key}` over HTTP (the benchmark).
    Http,
    /// `raft.client_write` called in-process on the leader (the breakdown: no KV HTTP).
    Direct,
}

/// Where a client sends its writes.
#[derive(Clone)]
enum Target {
    Http { http: Http, leader: String },
    Direct(Raft<TypeConfig>),
}

impl Target {
    async fn write(&self, key: &str, value: &Bytes) -> Result<(), String> {
        match self {
            Self::Http { http, leader } => {
                put(http, format!("http://{leader}/kv/{key}"), value.clone()).await
            }
            Self::Direct(raft) => raft
                .client_write(Request::Set {
                    key: key.to_owned(),
                    value: String::from_utf8_lossy(value).into_owned(),
                })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }
}

/// `clients` tasks each writing sequentially to `target` until `period` has passed.
async fn load(target: &Target, clients: usize, period: Duration, tag: &str) -> Run {
    let value = Bytes::from(vec![b'v'; VALUE_BYTES]);
    let started = Instant::now();
    let end = started + period;
    let mut tasks = JoinSet::new();
    for client in 0..clients {
        let target = target.clone();
        let prefix = format!("{tag}-{client}-");
        let value = value.clone();
        tasks.spawn(async move {
            let mut tally = Tally::default();
            let mut seq = 0u64;
            while Instant::now() < end {
                seq += 1;
                let t0 = Instant::now();
                match timeout(
                    WRITE_TIMEOUT,
                    target.write(&format!("{prefix}{seq}"), &value),
                )
                .await
                {
                    Ok(Ok(())) => tally.latencies.push(t0.elapsed()),
                    failed => {
                        tally.errors += 1;
                        if tally.first_error.is_none() {
                            tally.first_error = Some(match failed {
                                Ok(Err(e)) => e,
                                _ => format!("no answer within {WRITE_TIMEOUT:?}"),
                            });
                        }
                        // Do not spin on a refused connection.
                        sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            tally
        });
    }
    let mut run = Run {
        writes: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        election: false,
        first_error: None,
        cpu: None,
        appends: 0,
        entries: 0,
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(tally) => {
                run.errors += tally.errors;
                run.latencies.extend(tally.latencies);
                if run.first_error.is_none() {
                    run.first_error = tally.first_error;
                }
            }
            Err(e) => {
                run.errors += 1;
                run.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    run.elapsed = started.elapsed();
    run.writes = run.latencies.len() as u64;
    run.latencies.sort_unstable();
    run
}

/// One `PUT /kv/{key}`; `Ok` on a 200 with its body read.
async fn put(http: &Http, uri: String, value: Bytes) -> Result<(), String> {
    let request = hyper::Request::builder()
        .method(Method::PUT)
        .uri(uri)
        .body(Full::new(value))
        .map_err(|e| e.to_string())?;
    let response = http.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status == StatusCode::OK {
        Ok(())
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}

// ---------------------------------------------------------------------------------------------
// Breakdown
// ---------------------------------------------------------------------------------------------

/// The parts of one write's latency on `cluster`, each measured alone by one caller, as
/// medians over `iters` calls (after warm-up calls):
///
/// - `put`: the whole write, `PUT /kv/{key}` to the leader (HTTP and Raft);
/// - `http`: an HTTP round trip to the leader's KV router that does not touch Raft (`GET
///   /kv/{missing}?consistency=local`, a 404): the client, hyper and axum;
/// - `commit`: `raft.client_write` called in-process on the leader: openraft's commit,
///   including replication to the followers over the network;
/// - `rpc`: one append-entries round trip to a follower through a fresh client of the
///   network's factory, carrying one entry of the log that the follower already has (a no-op
///   for it), with the leader's vote and commit;
/// - `codec`: encoding and decoding that request and its answer in the network's format
///   (rafthttp's frames with postcard, or JSON), CPU only.
#[derive(Debug, Clone, Copy)]
struct Parts {
    put: Duration,
    http: Duration,
    commit: Duration,
    /// `None` on a single node.
    rpc: Option<Duration>,
    /// `None` on a single node.
    codec: Option<Duration>,
}

async fn breakdown(cluster: &Cluster, leader: usize, iters: usize) -> Result<Parts, String> {
    let warm = iters / 10 + 10;
    let node = &cluster.nodes[leader];

    // The whole write, as the load's clients make it.
    let client = http_client();
    let value = Bytes::from(vec![b'v'; VALUE_BYTES]);
    let mut samples = Vec::with_capacity(iters);
    for i in 0..warm + iters {
        let t0 = Instant::now();
        let uri = format!("http://{}/kv/breakdown-put-{i}", node.addr);
        timeout(WRITE_TIMEOUT, put(&client, uri, value.clone()))
            .await
            .map_err(|_| "PUT timed out".to_owned())??;
        if i >= warm {
            samples.push(t0.elapsed());
        }
    }
    let put = median(&mut samples);

    // HTTP round trip without Raft.
    samples.clear();
    let uri = format!("http://{}/kv/absent?consistency=local", node.addr);
    for i in 0..warm + iters {
        let t0 = Instant::now();
        let request = hyper::Request::builder()
            .uri(&uri)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = timeout(WRITE_TIMEOUT, client.request(request))
            .await
            .map_err(|_| "GET timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        let _ = response.into_body().collect().await;
        if i >= warm {
            samples.push(t0.elapsed());
        }
    }
    let http = median(&mut samples);

    // openraft commit, in-process.
    samples.clear();
    for i in 0..warm + iters {
        let t0 = Instant::now();
        timeout(
            WRITE_TIMEOUT,
            node.raft.client_write(Request::Set {
                key: format!("breakdown-{i}"),
                value: "v".repeat(VALUE_BYTES),
            }),
        )
        .await
        .map_err(|_| "client_write timed out".to_owned())?
        .map_err(|e| format!("client_write: {e}"))?;
        if i >= warm {
            samples.push(t0.elapsed());
        }
    }
    let commit = median(&mut samples);

    if cluster.nodes.len() < 2 {
        return Ok(Parts {
            put,
            http,
            commit,
            rpc: None,
            codec: None,
        });
    }

    // One append-entries RPC carrying an entry the follower has.
    let follower = &cluster.nodes[(leader + 1) % cluster.nodes.len()];
    let request = {
        let metrics = node.raft.metrics().borrow().clone();
        let last = metrics.last_log_index.ok_or("empty log")?;
        let mut reader = node.log.clone();
        let entries = reader
            .try_get_log_entries(last - 1..=last)
            .await
            .map_err(|e| format!("reading the log: {e}"))?;
        let [prev, entry] = <[_; 2]>::try_from(entries).map_err(|_| "log entries missing")?;
        AppendEntriesRequest::<TypeConfig> {
            vote: metrics.vote,
            prev_log_id: Some(prev.log_id),
            entries: vec![entry],
            leader_commit: metrics.last_applied,
        }
    };
    let target = BasicNode::new(&follower.addr);
    let option = RPCOption::new(Duration::from_secs(1));
    let mut client: Box<dyn RpcProbe> = match cluster.net {
        Net::Rafthttp | Net::Single => {
            let layer = Layer::new(&node.addr, node.handler.clone(), TcpDialer)
                .map_err(|e| e.to_string())?;
            let mut factory =
                Network::new(layer, node.id, &cluster.config, NetworkConfig::default())
                    .map_err(|e| e.to_string())?;
            Box::new(factory.new_client(follower.id, &target).await)
        }
        Net::RawTcp => {
            let connector = RawConnector {
                table: Arc::clone(&cluster.table),
            };
            let mut factory = Network::new(
                connector,
                node.id,
                &cluster.config,
                NetworkConfig::default(),
            )
            .map_err(|e| e.to_string())?;
            Box::new(factory.new_client(follower.id, &target).await)
        }
        Net::HttpPost => {
            let mut factory = PostNetwork {
                id: node.id,
                http: http_client(),
            };
            Box::new(factory.new_client(follower.id, &target).await)
        }
    };
    samples.clear();
    for i in 0..warm + iters {
        let t0 = Instant::now();
        client.append(request.clone(), option.clone()).await?;
        if i >= warm {
            samples.push(t0.elapsed());
        }
    }
    let rpc = median(&mut samples);

    // The codec of that request and its answer.
    let answer: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> =
        Ok(AppendEntriesResponse::Success);
    samples.clear();
    for i in 0..warm + iters * 10 {
        let t0 = Instant::now();
        match cluster.net {
            Net::Rafthttp | Net::RawTcp | Net::Single => frame_round(&request, &answer)?,
            Net::HttpPost => json_round(&request, &answer)?,
        }
        if i >= warm {
            samples.push(t0.elapsed());
        }
    }
    let codec = median(&mut samples);
    Ok(Parts {
        put,
        http,
        commit,
        rpc: Some(rpc),
        codec: Some(codec),
    })
}

/// rafthttp's frames: encode the request, decode it, encode the answer, decode it.
fn frame_round(
    request: &AppendEntriesRequest<TypeConfig>,
    answer: &Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>,
) -> Result<(), String> {
    use rafthttp_openraft::codec::{self, Kind};
    use rafthttp_tokio::core::Decoded;
    use rafthttp_tokio::core::frame::FrameDecoder;
    let max = NetworkConfig::default().max_frame;
    let decoder = FrameDecoder::new(max);
    let mut out = Vec::new();
    codec::encode(1, Kind::AppendEntries.request(), request, max, &mut out)
        .map_err(|e| e.to_string())?;
    let Decoded::Complete { value, .. } =
        codec::decode_frame(&decoder, &out).map_err(|e| e.to_string())?
    else {
        return Err("incomplete frame".to_owned());
    };
    let decoded: AppendEntriesRequest<TypeConfig> =
        codec::decode(value.payload).map_err(|e| e.to_string())?;
    let _ = std::hint::black_box(decoded);
    let mut out = Vec::new();
    codec::encode(1, Kind::AppendEntries.answer(), answer, max, &mut out)
        .map_err(|e| e.to_string())?;
    let Decoded::Complete { value, .. } =
        codec::decode_frame(&decoder, &out).map_err(|e| e.to_string())?
    else {
        return Err("incomplete frame".to_owned());
    };
    let decoded: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> =
        codec::decode(value.payload).map_err(|e| e.to_string())?;
    let _ = std::hint::black_box(decoded);
    Ok(())
}

/// The HTTP-POST network's JSON: the same four steps.
fn json_round(
    request: &AppendEntriesRequest<TypeConfig>,
    answer: &Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>,
) -> Result<(), String> {
    let bytes = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let decoded: AppendEntriesRequest<TypeConfig> =
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let _ = std::hint::black_box(decoded);
    let bytes = serde_json::to_vec(answer).map_err(|e| e.to_string())?;
    let decoded: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> =
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let _ = std::hint::black_box(decoded);
    Ok(())
}

/// An append-entries call on any of the networks' clients.
trait RpcProbe: Send {
    fn append<'a>(
        &'a mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

impl<T: RaftNetwork<TypeConfig> + Send> RpcProbe for T {
    fn append<'a>(
        &'a mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            match self.append_entries(rpc, option).await {
                Ok(AppendEntriesResponse::Success) => Ok(()),
                Ok(other) => Err(format!("append-entries answered {other:?}")),
                Err(e) => Err(format!("append-entries: {e}")),
            }
        })
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    percentile(samples, 50.0).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // On a worker thread: `block_on`'s own thread is not one, and every wake-up of a task
    // running there would cross threads (tens of microseconds on this VM).
    runtime.block_on(async {
        tokio::spawn(run(options)).await.unwrap_or_else(|e| {
            eprintln!("the benchmark task failed: {e}");
            ExitCode::FAILURE
        })
    })
}

async fn run(options: Options) -> ExitCode {
    let config = match raft_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    eprintln!(
        "kv bench: 3 nodes per network on 127.0.0.1, {} rep(s) x {:?} measured (+{:?} warm-up) per network and client count, clients {:?}, {workers} tokio workers{}",
        options.reps,
        options.secs,
        options.warmup,
        options.clients,
        if options.breakdown {
            ", with the breakdown"
        } else {
            ""
        }
    );

    let mut nets = Net::ALL.to_vec();
    if options.breakdown {
        nets.push(Net::Single);
    }
    let mut runs: BTreeMap<(Net, Path, usize), Vec<Run>> = BTreeMap::new();
    let mut failures: BTreeMap<Net, Vec<String>> = BTreeMap::new();
    let mut parts: BTreeMap<Net, Vec<Parts>> = BTreeMap::new();
    for rep in 0..options.reps {
        // Rotate the order, so that no network always runs first after a pause.
        let mut order = nets.clone();
        order.rotate_left(rep % nets.len());
        for net in order {
            let mut cluster = match Cluster::start(net, &config).await {
                Ok(cluster) => cluster,
                Err(e) => {
                    eprintln!("rep {rep} {net}: {e}");
                    failures.entry(net).or_default().push(e);
                    continue;
                }
            };
            let leader = match cluster.leader().await {
                Ok(leader) => leader,
                Err(e) => {
                    eprintln!("rep {rep} {net}: {e}");
                    failures.entry(net).or_default().push(e);
                    cluster.shutdown().await;
                    continue;
                }
            };
            let mut paths = vec![(
                Path::Http,
                Target::Http {
                    http: http_client(),
                    leader: cluster.nodes[leader].addr.clone(),
                },
            )];
            if options.breakdown {
                paths.push((
                    Path::Direct,
                    Target::Direct(cluster.nodes[leader].raft.clone()),
                ));
            }
            for (path, target) in &paths {
                for &clients in &options.clients {
                    let run = measure(&cluster, target, clients, &options, *path).await;
                    if options.verbose || run.errors > 0 || run.election {
                        eprintln!(
                            "rep {rep} {net:>23} {path:?} {clients:>2} clients: {:>6.0} writes/s, p50 {}, p99 {}, CPU/write {}, entries/append {:.1}, {} errors{}{}",
                            run.rate(),
                            show(run.percentile(50.0)),
                            show(run.percentile(99.0)),
                            show(run.cpu_per_write()),
                            run.batch().unwrap_or(0.0),
                            run.errors,
                            if run.election { ", ELECTION" } else { "" },
                            run.first_error
                                .as_deref()
                                .map(|e| format!(" (first: {e})"))
                                .unwrap_or_default(),
                        );
                    }
                    runs.entry((net, *path, clients)).or_default().push(run);
                }
            }
            drop(paths);
            if !cluster.replicated(leader).await {
                let e = "a follower did not apply the leader's log within 5 s".to_owned();
                eprintln!("rep {rep} {net}: {e}");
                failures.entry(net).or_default().push(e);
            }
            if options.breakdown {
                match breakdown(&cluster, leader, 2000).await {
                    Ok(p) => {
                        if options.verbose {
                            eprintln!("rep {rep} {net:>23} breakdown: {p:?}");
                        }
                        parts.entry(net).or_default().push(p);
                    }
                    Err(e) => eprintln!("rep {rep} {net}: breakdown failed: {e}"),
                }
            }
            cluster.shutdown().await;
        }
    }

    print_tables(&options, &nets, &runs, &failures, &parts);
    eprintln!("run {:.1} s", started.elapsed().as_secs_f64());
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A warm-up period, then a measured one, with the CPU time, the append-entries batching and
/// whether an election happened meanwhile.
async fn measure(
    cluster: &Cluster,
    target: &Target,
    clients: usize,
    options: &Options,
    path: Path,
) -> Run {
    let tag = format!("{path:?}{clients}");
    if !options.warmup.is_zero() {
        let _ = load(target, clients, options.warmup, &format!("w{tag}")).await;
    }
    let term = cluster.term();
    let cpu = process_cpu();
    let (appends, entries) = cluster.counters.read();
    let mut run = load(target, clients, options.secs, &format!("m{tag}")).await;
    run.election = cluster.term() != term;
    run.cpu = process_cpu()
        .zip(cpu)
        .map(|(after, before)| after.saturating_sub(before));
    let (appends_after, entries_after) = cluster.counters.read();
    run.appends = appends_after - appends;
    run.entries = entries_after - entries;
    run
}

fn show(d: Option<Duration>) -> String {
    match d {
        None => "-".to_owned(),
        Some(d) if d < Duration::from_micros(10) => format!("{:.2} µs", d.as_secs_f64() * 1e6),
        Some(d) if d < Duration::from_millis(1) => format!("{:.0} µs", d.as_secs_f64() * 1e6),
        Some(d) => format!("{:.2} ms", d.as_secs_f64() * 1e3),
    }
}

fn median_f64(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn median_duration(values: &mut [Duration]) -> Option<Duration> {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2),
    }
}

fn print_tables(
    options: &Options,
    nets: &[Net],
    runs: &BTreeMap<(Net, Path, usize), Vec<Run>>,
    failures: &BTreeMap<Net, Vec<String>>,
    parts: &BTreeMap<Net, Vec<Parts>>,
) {
    let mut rates: BTreeMap<(Net, usize), f64> = BTreeMap::new();
    for path in [Path::Http, Path::Direct] {
        if !runs.keys().any(|&(_, p, _)| p == path) {
            continue;
        }
        let first = match path {
            Path::Http => "network",
            Path::Direct => "network (in-process `client_write` on the leader, no KV HTTP)",
        };
        println!(
            "\n| {first} | clients | writes/s (median) | writes/s (min - max) | p50 | p99 | CPU per write | entries per append-entries | errors | elections | reps |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for &clients in &options.clients {
            for &net in nets {
                let Some(list) = runs.get(&(net, path, clients)) else {
                    println!("| {net} | {clients} | - | - | - | - | - | - | - | - | 0 |");
                    continue;
                };
                let mut r: Vec<f64> = list.iter().map(Run::rate).collect();
                let min = r.iter().copied().fold(f64::INFINITY, f64::min);
                let max = r.iter().copied().fold(0.0, f64::max);
                let rate = median_f64(&mut r).unwrap_or(0.0);
                if path == Path::Http {
                    rates.insert((net, clients), rate);
                }
                let mut p50: Vec<Duration> =
                    list.iter().filter_map(|r| r.percentile(50.0)).collect();
                let mut p99: Vec<Duration> =
                    list.iter().filter_map(|r| r.percentile(99.0)).collect();
                let mut cpu: Vec<Duration> = list.iter().filter_map(Run::cpu_per_write).collect();
                let mut batch: Vec<f64> = list.iter().filter_map(Run::batch).collect();
                let errors: u64 = list.iter().map(|r| r.errors).sum();
                let elections = list.iter().filter(|r| r.election).count();
                println!(
                    "| {net} | {clients} | {rate:.0} | {min:.0} - {max:.0} | {} | {} | {} | {} | {errors} | {elections} | {} |",
                    show(median_duration(&mut p50)),
                    show(median_duration(&mut p99)),
                    show(median_duration(&mut cpu)),
                    median_f64(&mut batch).map_or_else(|| "-".to_owned(), |b| format!("{b:.1}")),
                    list.len()
                );
            }
        }
        if path == Path::Http {
            println!(
                "\n| clients | rafthttp / raw TCP (writes/s) | rafthttp / HTTP-POST (writes/s) |"
            );
            println!("| ---: | ---: | ---: |");
            for &clients in &options.clients {
                let ratio = |other: Net| match (
                    rates.get(&(Net::Rafthttp, clients)),
                    rates.get(&(other, clients)),
                ) {
                    (Some(a), Some(b)) if *b > 0.0 => format!("{:.2}", a / b),
                    _ => "-".to_owned(),
                };
                println!(
                    "| {clients} | {} | {} |",
                    ratio(Net::RawTcp),
                    ratio(Net::HttpPost)
                );
            }
        }
    }
    if !parts.is_empty() {
        println!(
            "\n| network (1 caller, medians) | PUT (whole write) | HTTP round trip, no Raft | `client_write` in-process | append-entries round trip (1 entry) | codec of that RPC (encode + decode, both ways) |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        for &net in nets {
            let Some(list) = parts.get(&net) else {
                continue;
            };
            let pick = |f: fn(&Parts) -> Option<Duration>| {
                let mut v: Vec<Duration> = list.iter().filter_map(f).collect();
                show(median_duration(&mut v))
            };
            println!(
                "| {net} | {} | {} | {} | {} | {} |",
                pick(|p| Some(p.put)),
                pick(|p| Some(p.http)),
                pick(|p| Some(p.commit)),
                pick(|p| p.rpc),
                pick(|p| p.codec)
            );
        }
    }
    for (net, list) in failures {
        println!("\n{net}: {} failure(s): {}", list.len(), list.join("; "));
    }
}
