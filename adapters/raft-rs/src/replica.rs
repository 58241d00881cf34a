//! One raft node as a synchronous state machine: a [`RawNode`] over [`ClusterStorage`], the
//! [`Applier`] and the [`AddressBook`], with the `Ready` handling done once. No IO: messages
//! to send come out of [`Replica::process`].

use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeSingle, ConfChangeType, ConfChangeV2, Entry, EntryType, Message, Snapshot,
};
use raft::storage::MemStorage;
use raft::{Config, RawNode, SnapshotStatus, StateRole};
use rafthttp_driver::ChangeRequest;

use crate::applier::{Applier, ApplierStats, MembershipRequest, leader_address};
use crate::book::{AddressBook, ClusterStorage};

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

/// A raft node with its membership applier and address book.
pub struct Replica<T = ChangeRequest> {
    raw: RawNode<ClusterStorage>,
    applier: Applier<T>,
}

impl<T> std::fmt::Debug for Replica<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.raw.raft.id)
            .field("state", &self.raw.raft.state)
            .field("term", &self.raw.raft.term)
            .field("leader_id", &self.raw.raft.leader_id)
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
    /// The first node of a new cluster: the only voter, reachable at `address`, and leader
    /// at once (it campaigns and wins alone).
    ///
    /// # Errors
    /// When raft refuses the configuration (`id` 0, ...).
    pub fn bootstrap(id: u64, address: &str, timing: RaftTiming) -> raft::Result<Self> {
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = 1;
        snapshot.mut_metadata().term = 1;
        snapshot.mut_metadata().mut_conf_state().voters = vec![id];
        let mem = MemStorage::new();
        mem.wl().apply_snapshot(snapshot)?;
        let book = AddressBook::new();
        book.insert(id, address);
        let raw = RawNode::new(
            &config(id, timing),
            ClusterStorage::new(mem, book),
            &logger(),
        )?;
        let mut replica = Self {
            raw,
            applier: Applier::default(),
        };
        replica.raw.campaign()?;
        Ok(replica)
    }

    /// A node that is not in any configuration yet: it waits to be added by the leader,
    /// then catches up (by snapshot, which brings the address book).
    ///
    /// # Errors
    /// When raft refuses the configuration (`id` 0, ...).
    pub fn joining(id: u64, timing: RaftTiming) -> raft::Result<Self> {
        let raw = RawNode::new(&config(id, timing), ClusterStorage::default(), &logger())?;
        Ok(Self {
            raw,
            applier: Applier::default(),
        })
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.raw.raft.id
    }

    /// The raft node, to inspect.
    pub fn raw(&self) -> &RawNode<ClusterStorage> {
        &self.raw
    }

    /// The address book.
    pub fn book(&self) -> &AddressBook {
        self.raw.store().book()
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
        let mut out = Vec::new();
        loop {
            let book = self.raw.store().book().clone();
            self.applier.drive(&mut self.raw, &book);
            if !self.raw.has_ready() {
                return out;
            }
            let mut ready = self.raw.ready();
            out.extend(ready.take_messages());
            if !ready.snapshot().is_empty() {
                let snapshot = ready.snapshot().clone();
                let store = self.raw.store().clone();
                if let Err(e) = store.mem().wl().apply_snapshot(snapshot.clone()) {
                    tracing::error!(%e, "applying a snapshot failed");
                }
                store.book().replace(AddressBook::decode(&snapshot.data));
            }
            let committed = ready.take_committed_entries();
            self.apply(committed);
            let store = self.raw.store().clone();
            if let Err(e) = store.mem().wl().append(ready.entries()) {
                tracing::error!(%e, "persisting raft entries failed");
            }
            if let Some(hs) = ready.hs() {
                store.mem().wl().set_hardstate(hs.clone());
            }
            out.extend(ready.take_persisted_messages());
            let mut light = self.raw.advance(ready);
            if let Some(commit) = light.commit_index() {
                store.mem().wl().mut_hard_state().set_commit(commit);
            }
            out.extend(light.take_messages());
            let committed = light.take_committed_entries();
            self.apply(committed);
            self.raw.advance_apply();
        }
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            let cc = match entry.get_entry_type() {
                EntryType::EntryNormal => continue,
                EntryType::EntryConfChange => match ConfChange::parse_from_bytes(&entry.data) {
                    Ok(cc) => v1_to_v2(&cc),
                    Err(e) => {
                        tracing::error!(%e, index = entry.index, "undecodable conf change");
                        continue;
                    }
                },
                EntryType::EntryConfChangeV2 => match ConfChangeV2::parse_from_bytes(&entry.data) {
                    Ok(cc) => cc,
                    Err(e) => {
                        tracing::error!(%e, index = entry.index, "undecodable conf change");
                        continue;
                    }
                },
            };
            match self.raw.apply_conf_change(&cc) {
                Ok(cs) => {
                    self.raw.store().mem().wl().set_conf_state(cs);
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
    }
}
