//! One raft node as a synchronous state machine: a [`RawNode`] over [`ClusterStorage`], the
//! [`Applier`], the [`AddressBook`] and the application's [`StateMachine`], with the `Ready`
//! handling done once. No IO: messages to send come out of [`Replica::process`], and the
//! outcomes of proposals and reads out of [`Replica::take_outcomes`].

use std::collections::BTreeMap;

use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeSingle, ConfChangeType, ConfChangeV2, Entry, EntryType, Message, Snapshot,
};
use raft::storage::MemStorage;
use raft::{Config, RawNode, SnapshotStatus, StateRole, Storage};
use rafthttp_driver::ChangeRequest;

use crate::applier::{Applier, ApplierStats, MembershipRequest, leader_address};
use crate::book::{AddressBook, ClusterState, ClusterStorage};
use crate::log_store::LogStore;
use crate::state::{StateMachine, decode_snapshot, encode_snapshot};

/// How a replica whose [`LogStore`] is empty starts (one that holds state restarts from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// As the first node of a new cluster: the only voter, leader at once.
    Bootstrap,
    /// In no configuration, waiting to be added by the leader.
    Join,
}

/// Bytes of entries an append message carries at most (raft sends at least one entry).
const MAX_APPEND_BYTES: u64 = 1024 * 1024;

/// Proposals, and reads, waiting at most in one replica; more are refused as busy.
pub const MAX_WAITING: usize = 4096;

/// Applied entries kept in the log before it is compacted (a peer further behind gets a
/// snapshot).
pub const DEFAULT_COMPACT_AFTER: u64 = 10_000;

/// Why a proposal failed. After [`Timeout`](Self::Timeout) or [`Closed`](Self::Closed) the
/// entry may still commit; after the others it did not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// This node does not lead; `leader` is the leader's HTTP address when known.
    #[error("not the leader (leader: {})", leader.as_deref().unwrap_or("unknown"))]
    NotLeader {
        /// The leader's HTTP address.
        leader: Option<String>,
    },
    /// Leadership changed and the entry was replaced before it committed.
    #[error("leadership was lost before the entry committed")]
    LeadershipLost,
    /// The deadline passed first.
    #[error("the proposal did not commit before its deadline")]
    Timeout,
    /// The node was closed.
    #[error("the raft node is closed")]
    Closed,
    /// [`MAX_WAITING`] proposals are waiting already.
    #[error("too many proposals waiting")]
    Busy,
    /// The entry would not fit in a frame.
    #[error("a proposal of {0} bytes exceeds the frame limit")]
    TooLarge(usize),
}

/// Why a linearizable read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No leader is known to confirm the read.
    #[error("no leader to confirm the read")]
    NoLeader,
    /// The deadline passed first.
    #[error("the read was not confirmed before its deadline")]
    Timeout,
    /// The node was closed.
    #[error("the raft node is closed")]
    Closed,
    /// [`MAX_WAITING`] reads are waiting already.
    #[error("too many reads waiting")]
    Busy,
}

/// What became of proposals and reads, taken with [`Replica::take_outcomes`].
#[derive(Debug)]
pub enum Outcome<O> {
    /// Proposal `id` committed and was applied, with this result.
    Applied(u64, O),
    /// Proposal `id` will not commit.
    Lost(u64),
    /// Read `id` is confirmed: the state now reflects every entry committed before it began.
    Readable(u64),
}

/// Raft timing of a replica, in ticks.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RaftTiming {
    /// Ticks without a leader before a voter campaigns (default 10).
    pub election_tick: usize,
    /// Ticks between the leader's heartbeats (default 3).
    pub heartbeat_tick: usize,
}

impl Default for RaftTiming {
    fn default() -> Self {
        Self {
            election_tick: 10,
            heartbeat_tick: 3,
        }
    }
}

/// A raft node with its membership applier, address book and application state, on a raft
/// log `L` ([`MemStorage`] by default, or any [`LogStore`]).
pub struct Replica<T = ChangeRequest, S: StateMachine = (), L: LogStore = MemStorage> {
    raw: RawNode<ClusterStorage<S, L>>,
    applier: Applier<T>,
    next_id: u64,
    /// Proposals in the log, by index: the term and id they were proposed with.
    proposals: BTreeMap<u64, (u64, u64)>,
    /// Reads by id, with their read index once raft gave it.
    reads: BTreeMap<u64, Option<u64>>,
    outcomes: Vec<Outcome<<S as StateMachine>::Output>>,
    compact_after: u64,
    /// Set when the log store failed: the replica stops (it can no longer promise what it
    /// persisted).
    failed: Option<String>,
}

impl<T, S: StateMachine, L: LogStore> std::fmt::Debug for Replica<T, S, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.raw.raft.id)
            .field("state", &self.raw.raft.state)
            .field("term", &self.raw.raft.term)
            .field("leader_id", &self.raw.raft.leader_id)
            .field("applied", &self.raw.store().applied())
            .finish_non_exhaustive()
    }
}

fn config(id: u64, timing: RaftTiming) -> Config {
    Config {
        id,
        election_tick: timing.election_tick,
        heartbeat_tick: timing.heartbeat_tick,
        // A restarted or partitioned node asks before it campaigns, and a leader that cannot
        // hear a quorum steps down: neither disrupts a stable leader.
        pre_vote: true,
        check_quorum: true,
        // raft-rs's default, 0, sends one entry per append message: every entry would cost
        // each follower a message and a sync of its own. Batches are bounded by the frame
        // limit too (an entry over it is refused when proposed).
        max_size_per_msg: MAX_APPEND_BYTES,
        ..Config::default()
    }
}

/// A v1 conf change as the equivalent v2 one (raft's `ConfChangeI` is not re-exported).
fn v1_to_v2(cc: &ConfChange) -> ConfChangeV2 {
    let mut single = ConfChangeSingle::default();
    single.set_change_type(cc.get_change_type());
    single.node_id = cc.node_id;
    let mut v2 = ConfChangeV2::default();
    v2.set_changes(vec![single].into());
    v2.context = cc.context.clone();
    v2
}

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

impl<T: MembershipRequest> Replica<T> {
    /// The first node of a new cluster, with no application state: see
    /// [`bootstrap_with`](Self::bootstrap_with).
    ///
    /// # Errors
    /// When raft refuses the configuration (`id` 0, ...).
    pub fn bootstrap(id: u64, address: &str, timing: RaftTiming) -> raft::Result<Self> {
        Self::bootstrap_with(id, address, timing, ())
    }

    /// A node in no configuration yet, with no application state: see
    /// [`joining_with`](Self::joining_with).
    ///
    /// # Errors
    /// When raft refuses the configuration (`id` 0, ...).
    pub fn joining(id: u64, timing: RaftTiming) -> raft::Result<Self> {
        Self::joining_with(id, timing, ())
    }
}

impl<T: MembershipRequest, S: StateMachine> Replica<T, S> {
    /// The first node of a new cluster: the only voter, reachable at `address`, and leader
    /// at once (it campaigns and wins alone), applying entries to `state`, on raft's
    /// [`MemStorage`].
    ///
    /// # Errors
    /// When raft refuses the configuration (`id` 0, ...).
    pub fn bootstrap_with(
        id: u64,
        address: &str,
        timing: RaftTiming,
        state: S,
    ) -> raft::Result<Self> {
        Self::open(
            id,
            address,
            timing,
            state,
            MemStorage::new(),
            Start::Bootstrap,
        )
    }

    /// A node that is not in any configuration yet, on raft's [`MemStorage`]: it waits to
    /// be added by the leader, then catches up (by snapshot, which brings the address book
    /// and the state).
    ///
    /// # Errors
    /// When raft refuses the configuration (`id` 0, ...).
    pub fn joining_with(id: u64, timing: RaftTiming, state: S) -> raft::Result<Self> {
        Self::open(id, "", timing, state, MemStorage::new(), Start::Join)
    }
}

impl<T: MembershipRequest, S: StateMachine, L: LogStore> Replica<T, S, L> {
    fn with_raw(raw: RawNode<ClusterStorage<S, L>>) -> Self {
        Self {
            raw,
            applier: Applier::default(),
            next_id: 1,
            proposals: BTreeMap::new(),
            reads: BTreeMap::new(),
            outcomes: Vec::new(),
            compact_after: DEFAULT_COMPACT_AFTER,
            failed: None,
        }
    }

    /// A replica on the raft log `log`. When `log` holds state, the replica restarts from it:
    /// the application state and address book from its
    /// [`last_snapshot`](LogStore::last_snapshot) (`state` is replaced), the configuration
    /// and hard state as raft reads them, and the committed entries after the snapshot
    /// applied again. When it is empty, the replica starts as `start` says, reachable at
    /// `address`.
    ///
    /// # Errors
    /// When the log cannot be read or written, or what it holds cannot be restarted from (a
    /// log that starts after index 1 with no snapshot kept, a commit index past its end,
    /// ...), or raft refuses the configuration (`id` 0, ...).
    pub fn open(
        id: u64,
        address: &str,
        timing: RaftTiming,
        state: S,
        mut log: L,
        start: Start,
    ) -> raft::Result<Self> {
        let fresh = log.is_empty()?;
        if start == Start::Bootstrap && fresh {
            let book = AddressBook::new();
            book.insert(id, address);
            let mut snapshot = Snapshot::default();
            snapshot.mut_metadata().index = 1;
            snapshot.mut_metadata().term = 1;
            snapshot.mut_metadata().mut_conf_state().voters = vec![id];
            snapshot.data = encode_snapshot(&book.encode(), &state.snapshot()).into();
            log.install_snapshot(&snapshot)?;
            log.sync()?;
            let storage = ClusterStorage::with_state(log, book, state);
            let raw = RawNode::new(&config(id, timing), storage, &logger())?;
            let mut replica = Self::with_raw(raw);
            replica.raw.campaign()?;
            return Ok(replica);
        }
        // A node joining, or one restarting from what its log holds.
        let (shared, applied) = Self::recover(state, &log)?;
        let mut config = config(id, timing);
        // The state is the snapshot's: committed entries after it are applied again.
        config.applied = applied;
        let raw = RawNode::new(&config, ClusterStorage::from_parts(log, shared), &logger())?;
        if !fresh {
            tracing::info!(id, applied, "raft replica restarted from its log");
        }
        Ok(Self::with_raw(raw))
    }

    /// The state and address book as of `log`'s last snapshot, and that snapshot's index;
    /// checks that raft can start on `log` without panicking.
    fn recover(mut state: S, log: &L) -> raft::Result<(ClusterState<S>, u64)> {
        let store_error = |why: String| raft::Error::Store(raft::StorageError::Other(why.into()));
        let book = AddressBook::new();
        let first = log.first_index()?;
        let applied = match log.last_snapshot()? {
            Some(snapshot) => {
                let index = snapshot.get_metadata().index;
                if index + 1 < first {
                    return Err(store_error(format!(
                        "the log starts at index {first}, after its last snapshot ({index})"
                    )));
                }
                let (entries, app) = decode_snapshot(&snapshot.data)
                    .map_err(|e| raft::Error::Store(raft::StorageError::Other(Box::new(e))))?;
                book.replace(AddressBook::decode(entries));
                state
                    .restore(app)
                    .map_err(|e| raft::Error::Store(raft::StorageError::Other(Box::new(e))))?;
                index
            }
            None if first > 1 => {
                return Err(store_error(format!(
                    "the log starts at index {first} but keeps no snapshot to restore the \
                     state from"
                )));
            }
            None => 0,
        };
        let commit = log.initial_state()?.hard_state.commit;
        let last = log.last_index()?;
        // raft panics on either.
        if commit > last {
            return Err(store_error(format!(
                "the stored commit index {commit} is past the log's end ({last})"
            )));
        }
        if applied > commit {
            return Err(store_error(format!(
                "the last snapshot ({applied}) is past the stored commit index ({commit})"
            )));
        }
        Ok((ClusterState::new(book, state, applied), applied))
    }

    /// Why the replica stopped, if its log store failed.
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Compacts the log once this many applied entries are in it (default
    /// [`DEFAULT_COMPACT_AFTER`]; at least 1).
    #[must_use]
    pub fn with_compact_after(mut self, entries: u64) -> Self {
        self.compact_after = entries.max(1);
        self
    }

    /// Proposes `data` as a log entry. Its fate comes out of
    /// [`take_outcomes`](Self::take_outcomes) with the returned id, once it is applied
    /// ([`Outcome::Applied`], with the state machine's output) or cannot commit any more
    /// ([`Outcome::Lost`]).
    ///
    /// # Errors
    /// [`ProposeError::NotLeader`] on a follower (or while leadership is being transferred),
    /// [`ProposeError::Busy`] with [`MAX_WAITING`] proposals waiting.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<u64, ProposeError> {
        if !self.is_leader() {
            return Err(ProposeError::NotLeader {
                leader: self.leader_address(),
            });
        }
        if self.proposals.len() >= MAX_WAITING {
            return Err(ProposeError::Busy);
        }
        let id = self.next_id;
        let before = self.raw.raft.raft_log.last_index();
        if self.raw.propose(id.to_le_bytes().to_vec(), data).is_err() {
            return Err(ProposeError::NotLeader {
                leader: self.leader_address(),
            });
        }
        let index = self.raw.raft.raft_log.last_index();
        if index == before {
            return Err(ProposeError::NotLeader {
                leader: self.leader_address(),
            });
        }
        self.next_id += 1;
        self.proposals.insert(index, (self.raw.raft.term, id));
        Ok(id)
    }

    /// Starts a linearizable read: once raft confirms that this node's state reflects every
    /// entry committed before now (raft's read index, through the leader), the id comes out of
    /// [`take_outcomes`](Self::take_outcomes) as [`Outcome::Readable`]. A read that is never
    /// confirmed (the leader changed) stays until [`forget_read`](Self::forget_read).
    ///
    /// # Errors
    /// [`ReadError::NoLeader`] when no leader is known, [`ReadError::Busy`] with
    /// [`MAX_WAITING`] reads waiting.
    pub fn read_index(&mut self) -> Result<u64, ReadError> {
        if self.leader_id().is_none() {
            return Err(ReadError::NoLeader);
        }
        if self.reads.len() >= MAX_WAITING {
            return Err(ReadError::Busy);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.reads.insert(id, None);
        self.raw.read_index(id.to_le_bytes().to_vec());
        Ok(id)
    }

    /// Drops a read whose caller gave up.
    pub fn forget_read(&mut self, id: u64) {
        self.reads.remove(&id);
    }

    /// What became of proposals and reads since the last call.
    pub fn take_outcomes(&mut self) -> Vec<Outcome<S::Output>> {
        std::mem::take(&mut self.outcomes)
    }

    /// The storage: the log, the address book and the application state.
    pub fn store(&self) -> &ClusterStorage<S, L> {
        self.raw.store()
    }

    /// The index of the last entry applied to the state.
    pub fn applied(&self) -> u64 {
        self.raw.store().applied()
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.raw.raft.id
    }

    /// The raft node, to inspect.
    pub fn raw(&self) -> &RawNode<ClusterStorage<S, L>> {
        &self.raw
    }

    /// The address book.
    pub fn book(&self) -> &AddressBook {
        self.raw.store().book()
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// Whether this node leads.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The leader's id, when known.
    pub fn leader_id(&self) -> Option<u64> {
        Some(self.raw.raft.leader_id).filter(|&id| id != raft::INVALID_ID)
    }

    /// The leader's HTTP address, when known.
    pub fn leader_address(&self) -> Option<String> {
        leader_address(&self.raw, self.book())
    }

    /// The voters of this node's current configuration, sorted.
    pub fn voters(&self) -> Vec<u64> {
        let mut voters = self.raw.raft.prs().conf().to_conf_state().voters;
        voters.sort_unstable();
        voters
    }

    /// Every node of the current configuration: voters and learners, incoming and outgoing.
    pub fn members(&self) -> Vec<u64> {
        let conf = self.raw.raft.prs().conf().to_conf_state();
        let mut members: Vec<u64> = [
            conf.voters,
            conf.learners,
            conf.voters_outgoing,
            conf.learners_next,
        ]
        .concat();
        members.sort_unstable();
        members.dedup();
        members
    }

    /// What the applier answered so far.
    pub fn applier_stats(&self) -> ApplierStats {
        self.applier.stats()
    }

    /// Advances the logical clock by one tick.
    pub fn tick(&mut self) {
        self.raw.tick();
    }

    /// Feeds a message received from a peer. Messages for another node are ignored.
    ///
    /// # Errors
    /// raft's, for messages it refuses (a local message type, ...).
    pub fn step(&mut self, message: Message) -> raft::Result<()> {
        if message.to != self.id() {
            return Ok(());
        }
        self.raw.step(message)
    }

    /// Takes a membership request (see [`Applier`]).
    pub fn submit(&mut self, request: T) {
        let book = self.raw.store().book().clone();
        self.applier.submit(request, &mut self.raw, &book);
    }

    /// Tells raft that a peer could not be reached.
    pub fn report_unreachable(&mut self, id: u64) {
        self.raw.report_unreachable(id);
    }

    /// Tells raft whether a snapshot reached a peer.
    pub fn report_snapshot(&mut self, id: u64, status: SnapshotStatus) {
        self.raw.report_snapshot(id, status);
    }

    /// Handles every pending `Ready`: persists entries and hard state, applies snapshots and
    /// committed entries (conf changes update the configuration and the address book, and
    /// answer the applier's requests), moves the applier on. Returns the messages to send.
    pub fn process(&mut self) -> Vec<Message> {
        if self.failed.is_some() {
            return Vec::new();
        }
        match self.process_persisting() {
            Ok(out) => out,
            Err(e) => {
                tracing::error!(%e, id = self.id(), "the raft log store failed; the replica stops");
                self.failed = Some(e.to_string());
                Vec::new()
            }
        }
    }

    fn process_persisting(&mut self) -> std::io::Result<Vec<Message>> {
        let mut out = Vec::new();
        loop {
            let book = self.raw.store().book().clone();
            self.applier.drive(&mut self.raw, &book);
            if !self.raw.has_ready() {
                return Ok(out);
            }
            let mut ready = self.raw.ready();
            out.extend(ready.take_messages());
            if !ready.snapshot().is_empty() {
                let snapshot = ready.snapshot().clone();
                let log = self.raw.mut_store().log_mut();
                log.install_snapshot(&snapshot)?;
                log.sync()?;
                self.restore(&snapshot);
            }
            for read in ready.take_read_states() {
                let Some(id) = read
                    .request_ctx
                    .first_chunk::<8>()
                    .map(|b| u64::from_le_bytes(*b))
                else {
                    continue;
                };
                if let Some(waiting) = self.reads.get_mut(&id) {
                    *waiting = Some(read.index);
                }
            }
            let committed = ready.take_committed_entries();
            self.apply(committed)?;
            let log = self.raw.mut_store().log_mut();
            log.append(ready.entries())?;
            if let Some(hs) = ready.hs() {
                log.set_hard_state(hs)?;
            }
            // Votes and log entries are durable before any message that relies on them.
            log.sync()?;
            out.extend(ready.take_persisted_messages());
            let mut light = self.raw.advance(ready);
            if let Some(commit) = light.commit_index() {
                self.raw.mut_store().log_mut().set_commit(commit)?;
            }
            out.extend(light.take_messages());
            let committed = light.take_committed_entries();
            self.apply(committed)?;
            self.raw.advance_apply();
            self.settle_reads();
            self.compact()?;
        }
    }

    /// Takes in a snapshot from the leader, already installed in the log: the address book
    /// and the state.
    fn restore(&mut self, snapshot: &Snapshot) {
        let store = self.raw.store();
        let index = snapshot.get_metadata().index;
        match decode_snapshot(&snapshot.data) {
            Ok((book, state)) => {
                store.book().replace(AddressBook::decode(book));
                if let Err(e) = store.state().restore(state) {
                    tracing::error!(%e, index, "the state machine refused a snapshot");
                }
            }
            Err(e) => tracing::error!(%e, index, "undecodable snapshot data"),
        }
        store.shared().set_applied(index);
        tracing::info!(
            id = self.id(),
            index,
            term = snapshot.get_metadata().term,
            bytes = snapshot.data.len(),
            "installed a snapshot from the leader"
        );
        // Entries up to the snapshot were never applied here one by one: proposals among them
        // are settled as lost (only a former leader can have any).
        let later = self.proposals.split_off(&(index + 1));
        for (_, (_, id)) in std::mem::replace(&mut self.proposals, later) {
            self.outcomes.push(Outcome::Lost(id));
        }
    }

    /// Settles the proposals up to the entry just applied: the one at its index is applied if
    /// the entry is its own (same term and id), and lost if another leader's entry replaced
    /// it; any before it can no longer commit.
    fn settle_proposals(&mut self, entry: &Entry, output: Option<S::Output>) {
        let mut output = output;
        while let Some(waiting) = self.proposals.first_entry() {
            let index = *waiting.key();
            if index > entry.index {
                break;
            }
            let (term, id) = waiting.remove();
            let ours = index == entry.index
                && term == entry.term
                && entry.context.as_ref() == id.to_le_bytes().as_slice();
            match output.take().filter(|_| ours) {
                Some(output) => self.outcomes.push(Outcome::Applied(id, output)),
                None => self.outcomes.push(Outcome::Lost(id)),
            }
        }
    }

    /// Answers the reads whose read index is applied.
    fn settle_reads(&mut self) {
        let applied = self.applied();
        let outcomes = &mut self.outcomes;
        self.reads.retain(|&id, index| match index {
            Some(index) if *index <= applied => {
                outcomes.push(Outcome::Readable(id));
                false
            }
            _ => true,
        });
    }

    /// Drops applied entries from the log once there are more than `compact_after` of them;
    /// a peer that needs them gets a snapshot instead.
    /// A snapshot at the applied index is saved to the log store first, so that a restart
    /// finds the compacted entries' effects in it.
    fn compact(&mut self) -> std::io::Result<()> {
        let store = self.raw.store();
        let applied = store.applied();
        let Ok(first) = store.first_index() else {
            return Ok(());
        };
        if applied.saturating_sub(first) < self.compact_after {
            return Ok(());
        }
        let snapshot = if store.log().keeps_snapshots() {
            store.snapshot(applied, 0).map_err(std::io::Error::other)?
        } else {
            let mut snapshot = Snapshot::default();
            snapshot.mut_metadata().index = applied;
            snapshot.mut_metadata().term = store.term(applied).map_err(std::io::Error::other)?;
            snapshot
        };
        tracing::debug!(
            id = self.id(),
            index = applied,
            bytes = snapshot.data.len(),
            "compacting the raft log"
        );
        let log = self.raw.mut_store().log_mut();
        log.compact(&snapshot)?;
        log.sync()
    }

    fn apply(&mut self, entries: Vec<Entry>) -> std::io::Result<()> {
        for entry in entries {
            let output = self.apply_one(&entry)?;
            self.raw.store().shared().set_applied(entry.index);
            self.settle_proposals(&entry, output);
        }
        Ok(())
    }

    /// Applies one committed entry; a normal one's output is the state machine's.
    fn apply_one(&mut self, entry: &Entry) -> std::io::Result<Option<S::Output>> {
        {
            let cc = match entry.get_entry_type() {
                EntryType::EntryNormal => {
                    // A new leader's empty entry carries no proposal.
                    return Ok((!entry.context.is_empty())
                        .then(|| self.raw.store().state().apply(entry.index, &entry.data)));
                }
                EntryType::EntryConfChange => match ConfChange::parse_from_bytes(&entry.data) {
                    Ok(cc) => v1_to_v2(&cc),
                    Err(e) => {
                        tracing::error!(%e, index = entry.index, "undecodable conf change");
                        return Ok(None);
                    }
                },
                EntryType::EntryConfChangeV2 => match ConfChangeV2::parse_from_bytes(&entry.data) {
                    Ok(cc) => cc,
                    Err(e) => {
                        tracing::error!(%e, index = entry.index, "undecodable conf change");
                        return Ok(None);
                    }
                },
            };
            match self.raw.apply_conf_change(&cc) {
                Ok(cs) => {
                    self.raw.mut_store().log_mut().set_conf_state(&cs)?;
                    let book = self.raw.store().book();
                    for change in cc.get_changes() {
                        match change.get_change_type() {
                            ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                                if !cc.context.is_empty() {
                                    book.insert(
                                        change.node_id,
                                        String::from_utf8_lossy(&cc.context).into_owned(),
                                    );
                                }
                            }
                            ConfChangeType::RemoveNode => book.remove(change.node_id),
                        }
                    }
                    self.applier.applied(entry.index, Ok(&cc));
                }
                Err(e) => {
                    tracing::warn!(%e, index = entry.index, "conf change refused by raft");
                    self.applier.applied(entry.index, Err(&e));
                }
            }
        }
        Ok(None)
    }
}
