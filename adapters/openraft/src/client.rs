//! The client side: openraft's network factory over pooled, lazily dialed streams.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftTypeConfig};
use rafthttp_tokio::core::Decoded;
use rafthttp_tokio::core::frame::{FrameDecoder, FrameError};
use rafthttp_tokio::{Dialer, Layer, Stream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout_at};

use crate::codec::{self, CodecError, Kind};
use crate::{ConfigError, NetworkConfig};

/// Opens the streams RPCs travel on: a [`Layer`] dials an upgraded HTTP connection; anything
/// else that yields a byte stream works too (the benchmarks connect raw TCP with it).
pub trait Connector: Send + Sync + 'static {
    /// The stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Opens a stream to the node whose address is `addr`, within `timeout`.
    fn connect(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl<D: Dialer<Stream> + 'static> Connector for Layer<D> {
    type Stream = rafthttp_tokio::Stream;

    async fn connect(&self, addr: &str, timeout: Duration) -> io::Result<Self::Stream> {
        self.dial(addr, timeout).await.map_err(io::Error::other)
    }
}

/// The streams to one peer: votes and leader checks (empty append-entries), replication, and
/// snapshots each have their own, so that a snapshot chunk never sits in front of a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Control = 0,
    Replication = 1,
    Snapshot = 2,
}

/// openraft's network: a [`RaftNetworkFactory`] whose clients send RPCs as frames
/// ([`codec`](crate::codec)) over streams from a [`Connector`], by default upgraded HTTP
/// connections dialed through a [`Layer`].
///
/// openraft 0.9 asks for a client per replication stream, per target of an election and per
/// voter of a linearizable read. All clients of a factory (and its clones) share one pool of
/// streams per peer, three of them: control (votes and empty append-entries, which are leader
/// checks), replication (append-entries with entries) and snapshots. Streams are dialed when
/// first needed and again after an error, with a jittered exponential wait between failed dials
/// during which RPCs to that peer fail as [`Unreachable`] at once; [`RaftNetwork::backoff`]
/// follows the same schedule.
///
/// Every RPC finishes within [`RPCOption::hard_ttl`]. openraft drops the future then, so
/// sending is cancellation-safe: each stream has one writer task, a dropped RPC only forgets
/// its request id, and an answer that arrives for a forgotten id is discarded.
///
/// | failure | [`RPCError`] |
/// |---|---|
/// | dial failure, or the peer is in redial backoff | `Unreachable` |
/// | no answer by the TTL | `Timeout` |
/// | the stream broke, or an answer could not be decoded | `Network` |
/// | the remote `Raft` returned an error | `RemoteError` |
/// | an append-entries frame over the limit | `PayloadTooLarge`, hinting how many entries fit |
pub struct Network<K = Layer> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Network<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for Network<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("id", &self.shared.id)
            .field("peers", &lock(&self.shared.peers).len())
            .finish_non_exhaustive()
    }
}

struct Shared<K> {
    connector: K,
    /// This node's id, for openraft's timeout errors.
    id: u64,
    config: NetworkConfig,
    peers: Mutex<HashMap<u64, Arc<Peer>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K: Connector> Network<K> {
    /// The network of node `id`, opening streams with `connector` (its [`Layer`], usually).
    ///
    /// # Errors
    /// [`ConfigError`] when `raft`'s snapshot chunks would not fit in a frame (see
    /// [`NetworkConfig::max_frame`]).
    pub fn new(
        connector: K,
        id: u64,
        raft: &openraft::Config,
        config: NetworkConfig,
    ) -> Result<Self, ConfigError> {
        config.check(raft)?;
        Ok(Self {
            shared: Arc::new(Shared {
                connector,
                id,
                config,
                peers: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The connector.
    pub fn connector(&self) -> &K {
        &self.shared.connector
    }
}

impl<C, K> RaftNetworkFactory<C> for Network<K>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
    K: Connector,
{
    type Network = Client<C, K>;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        let peer = {
            let mut peers = lock(&self.shared.peers);
            let peer = peers
                .entry(target)
                .or_insert_with(|| Arc::new(Peer::new(&node.addr)));
            peer.set_addr(&node.addr);
            Arc::clone(peer)
        };
        Client {
            shared: Arc::clone(&self.shared),
            peer,
            target,
            node: node.clone(),
            _config: PhantomData,
        }
    }
}

/// The streams to one peer.
struct Peer {
    addr: Mutex<String>,
    lanes: [tokio::sync::Mutex<LaneState>; 3],
}

#[derive(Default)]
struct LaneState {
    conn: Option<Arc<Conn>>,
    /// Failed dials in a row.
    failures: u32,
    /// No dial before this instant.
    retry_at: Option<Instant>,
    last_error: String,
}

impl Peer {
    fn new(addr: &str) -> Self {
        Self {
            addr: Mutex::new(addr.to_owned()),
            lanes: Default::default(),
        }
    }

    fn addr(&self) -> String {
        lock(&self.addr).clone()
    }

    /// A node id keeps its address in openraft (`AddNodes` never replaces one), but follow it
    /// if it changes: later dials go to the new one.
    fn set_addr(&self, addr: &str) {
        let mut current = lock(&self.addr);
        if *current != addr {
            addr.clone_into(&mut current);
        }
    }
}

/// One open stream: frames go to its task, answers come back by request id.
struct Conn {
    frames: mpsc::Sender<Vec<u8>>,
    shared: Arc<ConnShared>,
    next_id: AtomicU64,
}

struct ConnShared {
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    closed: AtomicBool,
}

struct Answer {
    kind: Kind,
    payload: Vec<u8>,
}

/// Removes its request id from the pending table when the RPC ends, however it ends.
struct Registration<'c> {
    shared: &'c ConnShared,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).remove(&self.id);
    }
}

impl ConnShared {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the stream broken and fails every waiting RPC (their receivers see the sender go).
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        lock(&self.pending).clear();
    }

    fn register(&self, id: u64, tx: oneshot::Sender<Answer>) -> Option<Registration<'_>> {
        let mut pending = lock(&self.pending);
        // Checked under the lock `close` takes: no registration outlives a close.
        if self.is_closed() {
            return None;
        }
        pending.insert(id, tx);
        Some(Registration { shared: self, id })
    }

    /// Hands an answer to the RPC waiting for it; an answer nobody waits for is dropped.
    fn deliver(&self, frame: codec::Frame<'_>) -> Result<(), CodecError> {
        if !frame.answer {
            return Err(CodecError::UnknownKind(frame.kind.request()));
        }
        if let Some(tx) = lock(&self.pending).remove(&frame.id) {
            let _ = tx.send(Answer {
                kind: frame.kind,
                payload: frame.payload.to_vec(),
            });
        }
        Ok(())
    }
}

/// Frames written in one go at most, when several wait.
const BATCH: usize = 256 * 1024;

impl Conn {
    fn spawn<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
        stream: S,
        config: &NetworkConfig,
        addr: String,
    ) -> Arc<Self> {
        let (frames, rx) = mpsc::channel(config.queue.max(1));
        let shared = Arc::new(ConnShared {
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(run(stream, rx, Arc::clone(&shared), config.max_frame, addr));
        Arc::new(Self {
            frames,
            shared,
            next_id: AtomicU64::new(1),
        })
    }
}

/// Runs one stream: writes the frames RPCs hand over, delivers the answers read, until either
/// side fails or every handle to the stream is gone. Then every waiting RPC fails.
async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    mut frames: mpsc::Receiver<Vec<u8>>,
    shared: Arc<ConnShared>,
    max_frame: usize,
    addr: String,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let write = async {
        let mut batch = Vec::new();
        while let Some(frame) = frames.recv().await {
            batch.clear();
            batch.extend_from_slice(&frame);
            while batch.len() < BATCH {
                match frames.try_recv() {
                    Ok(frame) => batch.extend_from_slice(&frame),
                    Err(_) => break,
                }
            }
            writer.write_all(&batch).await?;
            writer.flush().await?;
        }
        Ok::<_, ReadError>(())
    };
    let read = async {
        let decoder = FrameDecoder::new(max_frame);
        let mut buf = Vec::new();
        loop {
            let mut start = 0;
            while let Decoded::Complete { value, consumed } =
                codec::decode_frame(&decoder, &buf[start..])?
            {
                shared.deliver(value)?;
                start += consumed;
            }
            buf.drain(..start);
            buf.reserve(decoder.missing(&buf).clamp(16 * 1024, 4 * 1024 * 1024));
            if reader.read_buf(&mut buf).await? == 0 {
                return Err::<(), _>(ReadError::Eof);
            }
        }
    };
    let result = tokio::select! {
        result = write => result,
        result = read => result,
    };
    shared.close();
    match result {
        Ok(()) => tracing::debug!(%addr, "raft stream closed"),
        Err(error) => tracing::debug!(%addr, %error, "raft stream broken"),
    }
}

/// Why a stream ended.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("bad frame: {0}")]
    Codec(#[from] CodecError),
    #[error("the peer closed the stream")]
    Eof,
}

/// How an RPC failed on this side, before openraft's error types.
#[derive(Debug)]
enum CallError {
    Unreachable(String),
    Timeout,
    Network(String),
    TooLarge { len: usize, max: usize },
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable(why) | Self::Network(why) => f.write_str(why),
            Self::Timeout => f.write_str("timed out"),
            Self::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max} bytes")
            }
        }
    }
}

impl std::error::Error for CallError {}

impl<K: Connector> Shared<K> {
    /// Sends `value` as a `kind` request on `lane` and waits for the answer's payload, all
    /// before `ttl` passes.
    async fn call<T: Serialize>(
        &self,
        peer: &Peer,
        lane: Lane,
        kind: Kind,
        value: &T,
        ttl: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let deadline = Instant::now() + ttl;
        let conn = timeout_at(deadline, self.connection(peer, lane, deadline))
            .await
            .map_err(|_| CallError::Timeout)??;
        let id = conn.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = Vec::new();
        match codec::encode(id, kind.request(), value, self.config.max_frame, &mut frame) {
            Ok(()) => {}
            Err(CodecError::Frame(FrameError::TooLarge { len, max })) => {
                return Err(CallError::TooLarge { len, max });
            }
            Err(error) => return Err(CallError::Network(error.to_string())),
        }
        let (tx, rx) = oneshot::channel();
        let Some(_registration) = conn.shared.register(id, tx) else {
            return Err(CallError::Network("the stream broke".into()));
        };
        match timeout_at(deadline, conn.frames.send(frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(CallError::Network("the stream broke".into())),
            Err(_) => return Err(CallError::Timeout),
        }
        match timeout_at(deadline, rx).await {
            Ok(Ok(answer)) if answer.kind == kind => Ok(answer.payload),
            Ok(Ok(answer)) => Err(CallError::Network(format!(
                "answered a {kind:?} request with a {:?} answer",
                answer.kind
            ))),
            Ok(Err(_)) => Err(CallError::Network(
                "the stream broke before the answer".into(),
            )),
            Err(_) => Err(CallError::Timeout),
        }
    }

    /// The lane's stream, dialed now if there is none (or it broke), unless the peer is in
    /// redial backoff.
    async fn connection(
        &self,
        peer: &Peer,
        lane: Lane,
        deadline: Instant,
    ) -> Result<Arc<Conn>, CallError> {
        let mut state = peer.lanes[lane as usize].lock().await;
        if let Some(conn) = &state.conn {
            if !conn.shared.is_closed() {
                return Ok(Arc::clone(conn));
            }
            state.conn = None;
        }
        let addr = peer.addr();
        let now = Instant::now();
        if state.retry_at.is_some_and(|at| now < at) {
            return Err(CallError::Unreachable(format!(
                "{addr} is in redial backoff after: {}",
                state.last_error
            )));
        }
        let timeout = deadline.saturating_duration_since(now);
        match self.connector.connect(&addr, timeout).await {
            Ok(stream) => {
                state.failures = 0;
                state.retry_at = None;
                tracing::debug!(%addr, ?lane, "raft stream dialed");
                let conn = Conn::spawn(stream, &self.config, addr);
                state.conn = Some(Arc::clone(&conn));
                Ok(conn)
            }
            Err(error) => {
                state.failures = state.failures.saturating_add(1);
                state.retry_at = Some(now + self.config.redial_delay(state.failures));
                state.last_error = error.to_string();
                tracing::debug!(%addr, ?lane, %error, "dialing a raft stream failed");
                Err(CallError::Unreachable(format!("dialing {addr}: {error}")))
            }
        }
    }
}

impl NetworkConfig {
    /// The wait after `failures` failed dials in a row: exponential from
    /// [`redial_first`](Self::redial_first) to [`redial_max`](Self::redial_max), jittered to
    /// between half and all of it.
    pub(crate) fn redial_delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        let full = self
            .redial_first
            .saturating_mul(1 << doublings)
            .min(self.redial_max);
        let half = full / 2;
        let span = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(failures);
        half + Duration::from_nanos(hasher.finish() % span.saturating_add(1))
    }
}

/// One openraft client: RPCs to one target, over the factory's shared streams to it.
pub struct Client<C, K = Layer> {
    shared: Arc<Shared<K>>,
    peer: Arc<Peer>,
    target: u64,
    node: BasicNode,
    _config: PhantomData<fn() -> C>,
}

impl<C, K> fmt::Debug for Client<C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target)
            .field("addr", &self.node.addr)
            .finish_non_exhaustive()
    }
}

impl<C, K> Client<C, K>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
    K: Connector,
{
    /// Sends one RPC and decodes the remote `Raft`'s answer, mapping failures to openraft's.
    async fn rpc<Req, Resp, E>(
        &self,
        lane: Lane,
        kind: Kind,
        request: &Req,
        option: &RPCOption,
        entries: Option<usize>,
    ) -> Result<Resp, RPCError<u64, BasicNode, RaftError<u64, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let ttl = option.hard_ttl();
        let payload = self
            .shared
            .call(&self.peer, lane, kind, request, ttl)
            .await
            .map_err(|error| self.error(error, kind, ttl, entries))?;
        match codec::decode::<Result<Resp, RaftError<u64, E>>>(&payload) {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                remote,
            ))),
            Err(error) => Err(RPCError::Network(NetworkError::new(&error))),
        }
    }

    fn error<E: std::error::Error>(
        &self,
        error: CallError,
        kind: Kind,
        ttl: Duration,
        entries: Option<usize>,
    ) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
        let action = match kind {
            Kind::Vote => RPCTypes::Vote,
            Kind::AppendEntries => RPCTypes::AppendEntries,
            Kind::InstallSnapshot => RPCTypes::InstallSnapshot,
        };
        match error {
            CallError::Unreachable(_) => RPCError::Unreachable(Unreachable::new(&error)),
            CallError::Timeout => RPCError::Timeout(Timeout {
                action,
                id: self.shared.id,
                target: self.target,
                timeout: ttl,
            }),
            CallError::TooLarge { len, max } => match entries {
                Some(n) if n > 1 => {
                    let fit = (n as u128 * max as u128 / len.max(1) as u128).max(1);
                    let hint = u64::try_from(fit).unwrap_or(1).min(n as u64 - 1);
                    tracing::info!(
                        entries = n,
                        hint,
                        len,
                        max,
                        "append-entries over the frame limit"
                    );
                    RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(hint))
                }
                _ => {
                    tracing::error!(
                        len,
                        max,
                        ?action,
                        "one RPC is larger than the frame limit; raise NetworkConfig::max_frame"
                    );
                    RPCError::Network(NetworkError::new(&error))
                }
            },
            CallError::Network(_) => RPCError::Network(NetworkError::new(&error)),
        }
    }
}

impl<C, K> RaftNetwork<C> for Client<C, K>
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode>,
    K: Connector,
{
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let entries = rpc.entries.len();
        let lane = if entries == 0 {
            Lane::Control
        } else {
            Lane::Replication
        };
        self.rpc(lane, Kind::AppendEntries, &rpc, &option, Some(entries))
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.rpc(Lane::Snapshot, Kind::InstallSnapshot, &rpc, &option, None)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.rpc(Lane::Control, Kind::Vote, &rpc, &option, None)
            .await
    }

    fn backoff(&self) -> Backoff {
        let config = self.shared.config.clone();
        Backoff::new((1..).map(move |failures| config.redial_delay(failures)))
    }
}
