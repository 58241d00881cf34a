//! The async shell around a [`Replica`], written once for every runtime.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use std::future::Future;
use std::pin::{Pin, pin};

use futures_io::{AsyncRead, AsyncWrite};
use futures_util::future::{Either, select};
use futures_util::io::{AsyncReadExt as _, AsyncWriteExt as _};
use raft::SnapshotStatus;
use raft::eraftpb::{Message, MessageType};
use rafthttp_driver::{ChangeRequest, MembershipError, Requests, Runtime};

use crate::book::ClusterState;
use crate::framing::{DEFAULT_MAX_FRAME, Decoded, FrameDecoder, encode_frame};
use crate::log_store::LogStore;
use crate::net::Network;
use crate::replica::{Outcome, ProposeError, RaftTiming, ReadError, Replica};
use crate::state::StateMachine;
use raft::storage::MemStorage;

/// How a [`Node`] runs. Build it with [`Default`] and the setters.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct NodeConfig {
    /// Interval of raft's logical clock (default 100 ms).
    pub tick: Duration,
    /// Election and heartbeat timing, in ticks.
    pub timing: RaftTiming,
    /// Largest frame sent or accepted (default 64 MiB; a snapshot travels in one frame).
    pub max_frame: usize,
    /// Time allowed to dial a peer (default 1 s).
    pub dial_timeout: Duration,
    /// Frames waiting to be written to one peer at most; more are dropped and raft resends
    /// (default 1024).
    pub peer_queue: usize,
    /// How long [`Node::close`] waits for the node's tasks to end (default 5 s).
    pub close_timeout: Duration,
    /// Applied entries kept in the log before it is compacted (default
    /// [`DEFAULT_COMPACT_AFTER`](crate::DEFAULT_COMPACT_AFTER)).
    pub compact_after: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(100),
            timing: RaftTiming::default(),
            max_frame: DEFAULT_MAX_FRAME,
            dial_timeout: Duration::from_secs(1),
            peer_queue: 1024,
            close_timeout: Duration::from_secs(5),
            compact_after: crate::DEFAULT_COMPACT_AFTER,
        }
    }
}

impl NodeConfig {
    /// Sets the tick interval.
    #[must_use]
    pub fn with_tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Sets the frame-size limit.
    #[must_use]
    pub fn with_max_frame(mut self, max: usize) -> Self {
        self.max_frame = max;
        self
    }

    /// Sets the dial timeout.
    #[must_use]
    pub fn with_dial_timeout(mut self, timeout: Duration) -> Self {
        self.dial_timeout = timeout;
        self
    }

    /// Sets how many applied entries the log keeps before it is compacted.
    #[must_use]
    pub fn with_compact_after(mut self, entries: u64) -> Self {
        self.compact_after = entries;
        self
    }

    /// Sets how long [`Node::close`] waits for the node's tasks.
    #[must_use]
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }
}

/// Messages stepped into raft at most before it is processed.
const MAX_STEP_BATCH: usize = 256;

/// Peers whose hello address is remembered at most (any upgraded connection can send a
/// hello: the table must not grow without bound).
const MAX_ROUTES: usize = 1024;

/// A frame queued for a peer.
struct Outgoing {
    frame: Vec<u8>,
    snapshot: bool,
}

/// Why [`Node::update_address`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MoveError {
    /// The address book names no other member to join through.
    #[error("no other member to join through")]
    NoMember,
    /// The node was closed.
    #[error("the raft node is closed")]
    Closed,
    /// No join succeeded within the timeout: the last one's error.
    #[error("joining again at the new address failed: {0}")]
    Join(#[source] MembershipError),
}

/// Where a proposal's outcome goes.
type ProposalAnswer<O> = async_channel::Sender<Result<O, ProposeError>>;

/// A proposal's data and where its outcome goes, before it is handed to raft.
type Queued<O> = (Vec<u8>, ProposalAnswer<O>);

struct Shared<R, N, S: StateMachine, L: LogStore> {
    rt: R,
    net: N,
    config: NodeConfig,
    replica: Mutex<Replica<ChangeRequest, S, L>>,
    /// The replica's storage, to read the state without the replica's lock.
    store: ClusterState<S>,
    /// Callers waiting for their proposal or read, by id.
    proposals: Mutex<HashMap<u64, ProposalAnswer<S::Output>>>,
    /// Proposals not handed to raft yet: the ready loop takes them all at once, so that
    /// proposals made while the log store syncs are written and synced together (group
    /// commit). At most [`MAX_WAITING`](crate::MAX_WAITING).
    queued: Mutex<Vec<Queued<S::Output>>>,
    reads: Mutex<HashMap<u64, async_channel::Sender<()>>>,
    /// One writer task per peer, fed through a bounded queue.
    peers: Mutex<HashMap<u64, async_channel::Sender<Outgoing>>>,
    /// Addresses learned from the hello frame of inbound connections, for peers the address
    /// book does not know yet (a joiner must answer the leader before its snapshot arrives).
    routes: Mutex<HashMap<u64, String>>,
    accepted: AtomicU64,
    closed: AtomicBool,
    /// Closed by [`Node::close`]: every task stops at its next wait.
    shutdown_tx: async_channel::Sender<()>,
    shutdown_rx: async_channel::Receiver<()>,
    /// Wakes the ready loop: proposals and reads are handed to raft under the lock and
    /// processed by that loop, together with whatever else arrived meanwhile.
    kick: async_channel::Sender<()>,
    kicked: async_channel::Receiver<()>,
    /// Each task holds a clone of the sender; `close` drops the original, so `tasks_done`
    /// ends once every task has.
    tasks: Mutex<Option<async_channel::Sender<()>>>,
    tasks_done: async_channel::Receiver<()>,
}

/// A raft node served over rafthttp: the async shell around a [`Replica`].
///
/// It runs five kinds of tasks on the runtime `R`: a tick loop, an accept loop with one
/// reader per inbound connection (frames that arrive together are stepped into raft
/// together), a loop answering the handler's membership requests with the
/// [`Applier`](crate::Applier), a ready loop that processes proposals queued while another
/// task held the replica, and one writer per peer, which dials lazily (one outbound
/// connection per peer, dialed again after an error, at the address the book has then) and
/// reports unreachable peers to raft.
///
/// Proposals are written in batches (group commit): the log store syncs once for all the
/// proposals made while it synced the previous batch.
///
/// Each outbound connection starts with a hello frame: an `eraftpb::Message` of type
/// `MsgUnreachable` (a local type raft never sends over the network) whose `from` is the
/// dialer's id and whose `context` is its HTTP address. A node that was just added learns
/// from it where to answer the leader before the snapshot bringing the address book arrives.
///
/// Cheap to clone; [`close`](Self::close) stops everything.
pub struct Node<R, N, S: StateMachine = (), L: LogStore = MemStorage> {
    shared: Arc<Shared<R, N, S, L>>,
}

impl<R, N, S: StateMachine, L: LogStore> Clone for Node<R, N, S, L> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<R, N: Network, S: StateMachine, L: LogStore> std::fmt::Debug for Node<R, N, S, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `try_lock`: printing a node from inside `with_replica` must not deadlock.
        let mut d = f.debug_struct("Node");
        d.field("addr", &self.shared.net.addr());
        if let Ok(replica) = self.shared.replica.try_lock() {
            d.field("replica", &*replica);
        }
        d.finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<R, N, S: StateMachine, L: LogStore> Shared<R, N, S, L> {
    fn replica(&self) -> MutexGuard<'_, Replica<ChangeRequest, S, L>> {
        self.replica.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The replica if nobody holds it.
    fn try_replica(&self) -> Option<MutexGuard<'_, Replica<ChangeRequest, S, L>>> {
        match self.replica.try_lock() {
            Ok(replica) => Some(replica),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    fn peers(&self) -> MutexGuard<'_, HashMap<u64, async_channel::Sender<Outgoing>>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn routes(&self) -> MutexGuard<'_, HashMap<u64, String>> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

impl<R: Runtime, N: Network> Node<R, N> {
    /// Starts the first node of a new cluster that only changes membership; see
    /// [`bootstrap_with`](Self::bootstrap_with).
    ///
    /// # Errors
    /// When raft refuses the configuration (`id` 0).
    pub fn bootstrap(
        rt: R,
        net: N,
        requests: Requests,
        id: u64,
        config: NodeConfig,
    ) -> raft::Result<Self> {
        Self::bootstrap_with(rt, net, requests, id, (), config)
    }

    /// Starts a node, in no configuration yet, that only changes membership; see
    /// [`joining_with`](Self::joining_with).
    ///
    /// # Errors
    /// When raft refuses the configuration (`id` 0).
    pub fn joining(
        rt: R,
        net: N,
        requests: Requests,
        id: u64,
        config: NodeConfig,
    ) -> raft::Result<Self> {
        Self::joining_with(rt, net, requests, id, (), config)
    }
}

impl<R: Runtime, N: Network, S: StateMachine> Node<R, N, S> {
    /// Starts the first node of a new cluster (the only voter, leader at once), applying
    /// committed entries to `state`, serving `requests` (the handler's membership requests)
    /// and Raft connections through `net`.
    ///
    /// # Errors
    /// When raft refuses the configuration (`id` 0).
    pub fn bootstrap_with(
        rt: R,
        net: N,
        requests: Requests,
        id: u64,
        state: S,
        config: NodeConfig,
    ) -> raft::Result<Self> {
        let replica = Replica::bootstrap_with(id, net.addr(), config.timing, state)?;
        Ok(Self::start(rt, net, requests, replica, config))
    }

    /// Starts a node that is in no configuration yet, with `state` as it is before the
    /// leader's snapshot replaces it; ask the cluster to add it with [`Network::join`].
    ///
    /// # Errors
    /// When raft refuses the configuration (`id` 0).
    pub fn joining_with(
        rt: R,
        net: N,
        requests: Requests,
        id: u64,
        state: S,
        config: NodeConfig,
    ) -> raft::Result<Self> {
        let replica = Replica::joining_with(id, config.timing, state)?;
        Ok(Self::start(rt, net, requests, replica, config))
    }
}

impl<R: Runtime, N: Network, S: StateMachine, L: LogStore> Node<R, N, S, L> {
    /// Starts a node persisting through `log`: restarted from what `log` holds (the state
    /// from its snapshot, committed entries after it applied again, and the configuration,
    /// so the node rejoins its cluster as it left it), or, when `log` is empty, started as
    /// `start` says. With [`FileLog`](crate::FileLog), a node process can be killed and
    /// started again on the same directory and address.
    ///
    /// # Errors
    /// When the log cannot be read or written, or raft refuses what it holds.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        rt: R,
        net: N,
        requests: Requests,
        id: u64,
        state: S,
        log: L,
        start: crate::Start,
        config: NodeConfig,
    ) -> raft::Result<Self> {
        let replica = Replica::open(id, net.addr(), config.timing, state, log, start)?;
        Ok(Self::start(rt, net, requests, replica, config))
    }

    fn start(
        rt: R,
        net: N,
        requests: Requests,
        replica: Replica<ChangeRequest, S, L>,
        config: NodeConfig,
    ) -> Self {
        let replica = replica.with_compact_after(config.compact_after);
        let store = replica.store().shared().clone();
        let (shutdown_tx, shutdown_rx) = async_channel::bounded(1);
        let (kick, kicked) = async_channel::bounded(1);
        let (tasks, tasks_done) = async_channel::bounded(1);
        let node = Self {
            shared: Arc::new(Shared {
                rt: rt.clone(),
                net,
                config,
                replica: Mutex::new(replica),
                store,
                proposals: Mutex::new(HashMap::new()),
                queued: Mutex::new(Vec::new()),
                reads: Mutex::new(HashMap::new()),
                peers: Mutex::new(HashMap::new()),
                routes: Mutex::new(HashMap::new()),
                accepted: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                shutdown_tx,
                shutdown_rx,
                kick,
                kicked,
                tasks: Mutex::new(Some(tasks)),
                tasks_done,
            }),
        };
        node.spawn(node.clone().tick_loop());
        node.spawn(node.clone().accept_loop());
        node.spawn(node.clone().request_loop(requests));
        node.spawn(node.clone().ready_loop());
        node.with_replica(|_| ());
        node
    }

    /// This node's raft id.
    pub fn id(&self) -> u64 {
        self.shared.replica().id()
    }

    /// The network endpoint.
    pub fn net(&self) -> &N {
        &self.shared.net
    }

    /// Runs `f` on the replica (under its lock: keep it short), then sends what it produced
    /// and answers the proposals and reads it settled.
    pub fn with_replica<T>(&self, f: impl FnOnce(&mut Replica<ChangeRequest, S, L>) -> T) -> T {
        self.run_locked(self.shared.replica(), f)
    }

    /// [`with_replica`](Self::with_replica) on a replica already locked. Queued proposals
    /// are handed to raft first, so that they are processed with the rest.
    fn run_locked<T>(
        &self,
        mut replica: MutexGuard<'_, Replica<ChangeRequest, S, L>>,
        f: impl FnOnce(&mut Replica<ChangeRequest, S, L>) -> T,
    ) -> T {
        let value = f(&mut replica);
        let queued = std::mem::take(&mut *lock(&self.shared.queued));
        for (data, answer) in queued {
            if answer.is_closed() {
                // The caller gave up before the entry was proposed.
                continue;
            }
            match replica.propose(data) {
                Ok(id) => {
                    lock(&self.shared.proposals).insert(id, answer);
                }
                Err(error) => {
                    let _ = answer.try_send(Err(error));
                }
            }
        }
        let messages = replica.process();
        let outcomes = replica.take_outcomes();
        drop(replica);
        self.send(messages);
        self.answer(outcomes);
        value
    }

    /// Processes the replica (and so the queued proposals) each time it is kicked.
    async fn ready_loop(self) {
        while self.shared.kicked.recv().await.is_ok() {
            if self.shared.is_closed() {
                return;
            }
            self.with_replica(|_| ());
        }
    }

    fn answer(&self, outcomes: Vec<Outcome<S::Output>>) {
        for outcome in outcomes {
            match outcome {
                Outcome::Applied(id, output) => {
                    if let Some(answer) = lock(&self.shared.proposals).remove(&id) {
                        let _ = answer.try_send(Ok(output));
                    }
                }
                Outcome::Lost(id) => {
                    if let Some(answer) = lock(&self.shared.proposals).remove(&id) {
                        let _ = answer.try_send(Err(ProposeError::LeadershipLost));
                    }
                }
                Outcome::Readable(id) => {
                    if let Some(answer) = lock(&self.shared.reads).remove(&id) {
                        let _ = answer.try_send(());
                    }
                }
            }
        }
    }

    /// Proposes `data` as a log entry and waits, within `timeout`, until it is committed
    /// and applied on this node; returns what the [`StateMachine`] returned for it.
    ///
    /// # Errors
    /// [`ProposeError::NotLeader`] (with the leader's address, when known: send the client
    /// there), [`ProposeError::LeadershipLost`] when a new leader replaced the entry,
    /// [`ProposeError::Timeout`], [`ProposeError::Closed`], [`ProposeError::Busy`],
    /// [`ProposeError::TooLarge`]. After a timeout or close the entry may still commit.
    pub async fn propose(
        &self,
        data: Vec<u8>,
        timeout: Duration,
    ) -> Result<S::Output, ProposeError> {
        // Room for the entry's framing next to its data.
        if data.len().saturating_add(1024) > self.shared.config.max_frame {
            return Err(ProposeError::TooLarge(data.len()));
        }
        if self.shared.is_closed() {
            return Err(ProposeError::Closed);
        }
        let deadline = self.shared.rt.now() + timeout;
        let (tx, rx) = async_channel::bounded(1);
        let first = {
            let mut queued = lock(&self.shared.queued);
            if queued.len() >= crate::MAX_WAITING {
                return Err(ProposeError::Busy);
            }
            queued.push((data, tx));
            queued.len() == 1
        };
        // Group commit: the first proposal of a batch lets the callers ready to run propose
        // too, then hands the whole queue to raft, and the log store syncs once for all.
        if first {
            // A caller that drops this future while it yields leaves the batch to the ready
            // loop.
            let handover = KickOnDrop(&self.shared.kick);
            YieldNow(false).await;
            std::mem::forget(handover);
            // Processed here when the replica is free; otherwise whoever holds it is
            // processing (syncing the log, say), and the ready loop takes the queue right
            // after.
            match self.shared.try_replica() {
                Some(replica) => self.run_locked(replica, |_| ()),
                // Full: a wake-up is pending already, and will see this too.
                None => drop(self.shared.kick.try_send(())),
            }
        }
        // Dropping `rx` (at the deadline) tells the ready loop not to propose the entry if it
        // has not yet; an entry already proposed may still commit.
        let outcome = self.wait(deadline, rx.recv()).await;
        match outcome {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(ProposeError::Closed),
            None if self.shared.is_closed() => Err(ProposeError::Closed),
            None => Err(ProposeError::Timeout),
        }
    }

    /// A linearizable read: waits, within `timeout`, until raft's read index confirms that
    /// this node's state holds every entry committed before the call, then runs `f` on it.
    /// Works on followers too (the leader confirms).
    ///
    /// # Errors
    /// [`ReadError::NoLeader`], [`ReadError::Timeout`], [`ReadError::Closed`],
    /// [`ReadError::Busy`].
    pub async fn read<T>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&S) -> T,
    ) -> Result<T, ReadError> {
        if self.shared.is_closed() {
            return Err(ReadError::Closed);
        }
        let deadline = self.shared.rt.now() + timeout;
        let (tx, rx) = async_channel::bounded(1);
        let id = self.with_replica(|replica| {
            let id = replica.read_index()?;
            lock(&self.shared.reads).insert(id, tx);
            Ok(id)
        })?;
        let confirmed = self.wait(deadline, rx.recv()).await;
        if lock(&self.shared.reads).remove(&id).is_some() {
            self.with_replica(|replica| replica.forget_read(id));
        }
        match confirmed {
            Some(Ok(())) => Ok(f(&self.shared.store.state())),
            Some(Err(_)) => Err(ReadError::Closed),
            None if self.shared.is_closed() => Err(ReadError::Closed),
            None => Err(ReadError::Timeout),
        }
    }

    /// Runs `f` on this node's state as it is now: fast, but possibly behind the leader (a
    /// follower's, or a deposed leader's). Use [`read`](Self::read) for a linearizable read.
    pub fn local_state<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        f(&self.shared.store.state())
    }

    /// The index of the last entry applied to the state on this node.
    pub fn applied(&self) -> u64 {
        self.shared.store.applied()
    }

    /// Waits for `event` until `deadline` or the node's close; `None` when it did not come.
    async fn wait<T>(&self, deadline: Instant, event: impl Future<Output = T>) -> Option<T> {
        let shared = &self.shared;
        let sleep = pin!(shared.rt.sleep_until(deadline));
        let shutdown = pin!(shared.shutdown_rx.recv());
        let event = pin!(event);
        match select(event, select(sleep, shutdown)).await {
            Either::Left((value, _)) => Some(value),
            Either::Right(_) => None,
        }
    }

    /// The voters of this node's configuration, sorted.
    pub fn voters(&self) -> Vec<u64> {
        self.shared.replica().voters()
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.shared.replica().term()
    }

    /// The leader's HTTP address, if this node knows it.
    pub fn leader_address(&self) -> Option<String> {
        self.shared.replica().leader_address()
    }

    /// A copy of the address book.
    pub fn address_book(&self) -> BTreeMap<u64, String> {
        self.shared.replica().book().entries()
    }

    /// After a restart on another address than the cluster knows this node at: joins again
    /// through the other members (in turn, retried with a growing backoff, within `timeout`),
    /// which moves this node's entry in every address book (a voter joining at a new address
    /// is a change; see [`Applier`](crate::Applier)). Returns whether it had moved; does
    /// nothing when the book has this node at [`Network::addr`] or not at all.
    ///
    /// # Errors
    /// [`MoveError::Join`] with the last join's error when none succeeded in time,
    /// [`MoveError::NoMember`] when the book names no other member, [`MoveError::Closed`].
    pub async fn update_address(&self, timeout: Duration) -> Result<bool, MoveError> {
        let book = self.address_book();
        let here = self.shared.net.addr();
        let id = self.id();
        let Some(known) = book.get(&id).filter(|known| known.as_str() != here) else {
            return Ok(false);
        };
        tracing::info!(id, %known, now = here, "this node moved: joining again to update its address");
        let members: Vec<&String> = book
            .iter()
            .filter(|(m, _)| **m != id)
            .map(|(_, a)| a)
            .collect();
        let deadline = self.shared.rt.now() + timeout;
        if members.is_empty() {
            return Err(MoveError::NoMember);
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            for member in &members {
                if self.shared.is_closed() {
                    return Err(MoveError::Closed);
                }
                // A member that hangs must not use up the time of the others.
                let left = deadline.saturating_duration_since(self.shared.rt.now());
                let attempt = left.min(Duration::from_secs(5));
                match self.shared.net.join(&id.to_string(), member, attempt).await {
                    Ok(()) => return Ok(true),
                    Err(error) if self.shared.rt.now() >= deadline => {
                        return Err(MoveError::Join(error));
                    }
                    Err(error) => tracing::debug!(%error, %member, "joining again failed"),
                }
            }
            let wake = (self.shared.rt.now() + backoff).min(deadline);
            self.shared.rt.sleep_until(wake).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Inbound Raft connections accepted so far.
    pub fn accepted_connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// What the membership applier answered so far.
    pub fn applier_stats(&self) -> crate::ApplierStats {
        self.shared.replica().applier_stats()
    }

    /// Waits until `condition` holds on the replica, checking once per tick, for at most
    /// `timeout`. Returns whether it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Replica<ChangeRequest, S, L>) -> bool,
    ) -> bool {
        let rt = &self.shared.rt;
        let deadline = rt.now() + timeout;
        loop {
            if condition(&self.shared.replica()) {
                return true;
            }
            let now = rt.now();
            if now >= deadline || self.shared.is_closed() {
                return false;
            }
            rt.sleep_until((now + self.shared.config.tick).min(deadline))
                .await;
        }
    }

    /// Stops the node and waits, for at most [`NodeConfig::close_timeout`], until every task
    /// it started has ended: the tick, accept and request loops, the readers of inbound
    /// connections and the writers to peers, each at its next wait. The endpoint is closed
    /// (its handler answers membership requests still waiting 403 `raft transport closed`;
    /// changes the applier was still proposing are answered as dropped). Returns whether
    /// every task ended in time. Idempotent.
    pub async fn close(&self) -> bool {
        let shared = &self.shared;
        shared.closed.store(true, Ordering::Release);
        shared.shutdown_tx.close();
        shared.peers().clear();
        shared.net.close();
        // Callers still waiting learn at once (their `wait` also sees the shutdown).
        for (_, answer) in lock(&shared.queued).drain(..) {
            let _ = answer.try_send(Err(ProposeError::Closed));
        }
        for (_, answer) in lock(&shared.proposals).drain() {
            let _ = answer.try_send(Err(ProposeError::Closed));
        }
        lock(&shared.reads).clear();
        drop(lock(&shared.tasks).take());
        let deadline = shared.rt.now() + shared.config.close_timeout;
        let done = shared.tasks_done.recv();
        let ended = match select(pin!(done), pin!(shared.rt.sleep_until(deadline))).await {
            Either::Left(_) => true,
            Either::Right(_) => shared.tasks_done.sender_count() == 0,
        };
        if !ended {
            tracing::warn!(
                tasks = shared.tasks_done.sender_count(),
                "raft node tasks still running at the close timeout"
            );
        }
        ended
    }

    /// Runs `task` on the runtime until it ends or the node closes, counted for
    /// [`close`](Self::close). Nothing starts once the node is closed.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let Some(guard) = lock(&self.shared.tasks).clone() else {
            return;
        };
        let shutdown = self.shared.shutdown_rx.clone();
        self.shared.rt.spawn(async move {
            let _guard = guard;
            let _ = select(pin!(task), pin!(shutdown.recv())).await;
        });
    }

    async fn tick_loop(self) {
        let rt = self.shared.rt.clone();
        let tick = self.shared.config.tick;
        let mut next = rt.now() + tick;
        while !self.shared.is_closed() {
            rt.sleep_until(next).await;
            next = (next + tick).max(rt.now());
            if let Some(why) = self.with_replica(|r| {
                r.tick();
                r.failed().map(str::to_owned)
            }) {
                tracing::error!(%why, "raft node stops: its log store failed");
                self.shared.closed.store(true, Ordering::Release);
                self.shared.shutdown_tx.close();
                self.shared.net.close();
                return;
            }
            self.prune_writers();
        }
    }

    /// Drops the writer (and so the connection) of every peer that left the configuration.
    /// A node that has no configuration yet (just added, waiting for its snapshot) keeps its
    /// writers: it must answer the leader it does not know as a member.
    fn prune_writers(&self) {
        let (members, leader) = {
            let replica = self.shared.replica();
            (replica.members(), replica.leader_id())
        };
        if members.is_empty() {
            return;
        }
        self.shared.peers().retain(|id, _| {
            let keep = members.contains(id) || Some(*id) == leader;
            if !keep {
                tracing::debug!(peer = id, "dropping the connection to a removed peer");
            }
            keep
        });
    }

    /// Peers this node has an outbound connection (or a writer waiting to dial) for.
    pub fn peer_writers(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .shared
            .peers()
            .iter()
            .filter(|(_, queue)| !queue.is_closed())
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    async fn accept_loop(self) {
        loop {
            let stream = match self.shared.net.accept().await {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::debug!(%e, "accept loop ends");
                    return;
                }
            };
            self.shared.accepted.fetch_add(1, Ordering::Relaxed);
            self.spawn(self.clone().read_loop(stream));
        }
    }

    async fn request_loop(self, requests: Requests) {
        while let Some(request) = requests.recv().await {
            if self.shared.is_closed() {
                return;
            }
            self.with_replica(|replica| replica.submit(request));
        }
    }

    /// Steps the messages of one inbound connection into raft. The messages that arrived
    /// together are stepped together and processed once: one sync of the log store for a
    /// burst of appends.
    async fn read_loop(self, stream: N::Stream) {
        let mut reader = FrameReader::new(stream, self.shared.config.max_frame);
        let mut batch = Vec::new();
        loop {
            let first = match reader.next().await {
                Ok(Some(message)) => message,
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(%e, "raft connection dropped");
                    return;
                }
            };
            batch.push(first);
            let mut broken = None;
            while batch.len() < MAX_STEP_BATCH {
                match reader.buffered() {
                    Ok(Ok(message)) => batch.push(message),
                    Ok(Err(_)) => break,
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                }
            }
            if self.shared.is_closed() {
                return;
            }
            batch.retain(|message| {
                if message.get_msg_type() != MessageType::MsgUnreachable {
                    return true;
                }
                // The hello frame.
                let address = String::from_utf8_lossy(&message.context).into_owned();
                let mut routes = self.shared.routes();
                let room = routes.len() < MAX_ROUTES || routes.contains_key(&message.from);
                if message.from != 0 && !address.is_empty() && room {
                    routes.insert(message.from, address);
                }
                false
            });
            if !batch.is_empty() {
                self.with_replica(|replica| {
                    for message in batch.drain(..) {
                        if let Err(e) = replica.step(message) {
                            tracing::debug!(%e, "raft refused a message");
                        }
                    }
                });
            }
            if let Some(e) = broken {
                tracing::debug!(%e, "raft connection dropped");
                return;
            }
        }
    }

    fn address_of(&self, id: u64) -> Option<String> {
        let book = self.shared.replica().book().get(id);
        book.or_else(|| self.shared.routes().get(&id).cloned())
    }

    fn send(&self, messages: Vec<Message>) {
        if messages.is_empty() || self.shared.is_closed() {
            return;
        }
        let mut failed_snapshots = Vec::new();
        for message in messages {
            let to = message.to;
            let snapshot = message.get_msg_type() == MessageType::MsgSnapshot;
            let mut frame = Vec::new();
            if let Err(e) = encode_frame(&message, self.shared.config.max_frame, &mut frame) {
                tracing::warn!(%e, to, "raft message not sent");
                if snapshot {
                    failed_snapshots.push(to);
                }
                continue;
            }
            if snapshot {
                let meta = message.get_snapshot().get_metadata();
                tracing::info!(
                    to,
                    index = meta.index,
                    term = meta.term,
                    bytes = frame.len(),
                    "sending a snapshot to a peer behind the log"
                );
            }
            let outgoing = Outgoing { frame, snapshot };
            let Some(queue) = self.queue(to) else {
                tracing::debug!(to, "no address for peer yet: message dropped");
                if snapshot {
                    failed_snapshots.push(to);
                }
                continue;
            };
            if queue.try_send(outgoing).is_err() {
                tracing::debug!(to, "peer queue full: message dropped");
                if snapshot {
                    failed_snapshots.push(to);
                }
            }
        }
        if !failed_snapshots.is_empty() {
            // Raft waits for a snapshot's fate before it probes the peer again.
            self.with_replica(|replica| {
                for to in failed_snapshots {
                    replica.report_snapshot(to, SnapshotStatus::Failure);
                }
            });
        }
    }

    fn queue(&self, to: u64) -> Option<async_channel::Sender<Outgoing>> {
        if let Some(queue) = self.shared.peers().get(&to).filter(|q| !q.is_closed()) {
            return Some(queue.clone());
        }
        let address = self.address_of(to)?;
        let (tx, rx) = async_channel::bounded(self.shared.config.peer_queue.max(1));
        let mut peers = self.shared.peers();
        if self.shared.is_closed() {
            return None;
        }
        if let Some(queue) = peers.get(&to).filter(|q| !q.is_closed()) {
            return Some(queue.clone());
        }
        peers.insert(to, tx.clone());
        drop(peers);
        self.spawn(self.clone().write_loop(to, address, rx));
        Some(tx)
    }

    async fn write_loop(self, to: u64, mut address: String, rx: async_channel::Receiver<Outgoing>) {
        let mut stream: Option<N::Stream> = None;
        let mut batch = Vec::new();
        while let Ok(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < 64 {
                match rx.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            if self.shared.is_closed() {
                return;
            }
            if stream.is_none() {
                // The peer may have moved (it joined again from another address).
                if let Some(current) = self.address_of(to) {
                    address = current;
                }
            }
            let result = match stream.as_mut() {
                Some(s) => write_batch(s, &batch).await,
                None => match self.connect(to, &address).await {
                    Ok(mut s) => {
                        let result = write_batch(&mut s, &batch).await;
                        stream = Some(s);
                        result
                    }
                    Err(e) => Err(e),
                },
            };
            let delivered = result.is_ok();
            if let Err(e) = result {
                tracing::debug!(%e, to, %address, "raft peer unreachable");
                stream = None;
            }
            let snapshots = batch.iter().any(|o| o.snapshot);
            batch.clear();
            self.with_replica(|replica| {
                if !delivered {
                    replica.report_unreachable(to);
                }
                if snapshots {
                    let status = if delivered {
                        SnapshotStatus::Finish
                    } else {
                        tracing::warn!(to, "a snapshot did not reach its peer: raft retries");
                        SnapshotStatus::Failure
                    };
                    replica.report_snapshot(to, status);
                }
            });
        }
    }

    async fn connect(&self, to: u64, address: &str) -> io::Result<N::Stream> {
        let mut stream = self
            .shared
            .net
            .dial(address, self.shared.config.dial_timeout)
            .await?;
        let mut hello = Message::default();
        hello.set_msg_type(MessageType::MsgUnreachable);
        hello.from = self.id();
        hello.to = to;
        hello.context = self.shared.net.addr().as_bytes().to_vec().into();
        let mut frame = Vec::new();
        encode_frame(&hello, self.shared.config.max_frame, &mut frame).map_err(io::Error::other)?;
        stream.write_all(&frame).await?;
        Ok(stream)
    }
}

async fn write_batch<S: AsyncWrite + Unpin>(stream: &mut S, batch: &[Outgoing]) -> io::Result<()> {
    for outgoing in batch {
        stream.write_all(&outgoing.frame).await?;
    }
    stream.flush().await
}

/// Wakes the ready loop when dropped (unless forgotten).
struct KickOnDrop<'a>(&'a async_channel::Sender<()>);

impl Drop for KickOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.try_send(());
    }
}

/// Gives way to the other tasks ready to run, once.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// Reads frames from a futures-io stream with a [`FrameDecoder`].
#[derive(Debug)]
struct FrameReader<S> {
    io: S,
    buf: Vec<u8>,
    decoder: FrameDecoder,
}

impl<S: AsyncRead + Unpin> FrameReader<S> {
    fn new(io: S, max: usize) -> Self {
        Self {
            io,
            buf: Vec::new(),
            decoder: FrameDecoder::new(max),
        }
    }

    /// The next message if a whole frame is buffered already, without reading.
    fn buffered(&mut self) -> io::Result<Result<Message, usize>> {
        match self.decoder.decode(&self.buf) {
            Ok(Decoded::Frame { message, consumed }) => {
                self.buf.drain(..consumed);
                Ok(Ok(*message))
            }
            Ok(Decoded::NeedMore { needed }) => Ok(Err(needed)),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    /// The next message; `None` at a clean end of stream.
    async fn next(&mut self) -> io::Result<Option<Message>> {
        loop {
            let needed = match self.buffered()? {
                Ok(message) => return Ok(Some(message)),
                Err(needed) => needed,
            };
            let start = self.buf.len();
            let chunk = needed.clamp(16 * 1024, 1024 * 1024);
            self.buf.resize(start + chunk, 0);
            let n = self.io.read(&mut self.buf[start..]).await;
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(e);
                }
            };
            self.buf.truncate(start + n);
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::io::Cursor;

    use super::*;

    fn message(index: u64) -> Message {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgHeartbeat);
        m.index = index;
        m
    }

    /// A reader that returns at most `chunk` bytes per read.
    struct Trickle {
        inner: Cursor<Vec<u8>>,
        chunk: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let n = buf.len().min(self.chunk);
            std::pin::Pin::new(&mut self.inner).poll_read(cx, &mut buf[..n])
        }
    }

    #[test]
    fn frame_reader_reassembles_frames_and_sees_the_end() {
        let mut bytes = Vec::new();
        for i in 0..3 {
            encode_frame(&message(i), DEFAULT_MAX_FRAME, &mut bytes).unwrap();
        }
        smol::block_on(async {
            for chunk in [1, 3, 1024] {
                let io = Trickle {
                    inner: Cursor::new(bytes.clone()),
                    chunk,
                };
                let mut reader = FrameReader::new(io, DEFAULT_MAX_FRAME);
                for i in 0..3 {
                    assert_eq!(reader.next().await.unwrap(), Some(message(i)));
                }
                assert_eq!(reader.next().await.unwrap(), None);
            }
            // A stream cut inside a frame is an error, and so is an over-limit frame.
            let mut reader = FrameReader::new(Cursor::new(bytes[..bytes.len() - 1].to_vec()), 64);
            reader.next().await.unwrap();
            reader.next().await.unwrap();
            let err = reader.next().await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
            let mut reader = FrameReader::new(Cursor::new(bytes.clone()), 1);
            let err = reader.next().await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        });
    }
}
