//! Application data through real raft-rs replicas, sans IO: messages are handed from replica
//! to replica in memory, so every step is deterministic. Proposals and their outputs, reads
//! through raft's read index, leadership lost before a commit, and a joiner that catches up by
//! a snapshot of the application state.

use std::cell::RefCell;
use std::rc::Rc;

use raft::eraftpb::{ConfState, Entry, HardState, Message, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage};
use rafthttp_driver::core::ChangeKind;
use rafthttp_driver::{ChangeError, Outcome as Answer};
use rafthttp_raft::{
    FileLog, LogStore, MembershipRequest, Outcome, ProposeError, RaftTiming, ReadError, Replica,
    RestoreError, Start, StateMachine,
};

/// A log of applied entries: apply returns how many there are.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Log(Vec<(u64, Vec<u8>)>);

impl StateMachine for Log {
    type Output = usize;

    fn apply(&mut self, index: u64, data: &[u8]) -> usize {
        self.0.push((index, data.to_vec()));
        self.0.len()
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (index, data) in &self.0 {
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    fn restore(&mut self, mut data: &[u8]) -> Result<(), RestoreError> {
        let mut entries = Vec::new();
        while !data.is_empty() {
            let bad = || RestoreError("cut short".into());
            let (index, rest) = data.split_first_chunk::<8>().ok_or_else(bad)?;
            let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
            let len = u32::from_le_bytes(*len) as usize;
            if rest.len() < len {
                return Err(bad());
            }
            entries.push((u64::from_le_bytes(*index), rest[..len].to_vec()));
            data = &rest[len..];
        }
        self.0 = entries;
        Ok(())
    }
}

/// A join request answered into a cell.
struct Join {
    id: String,
    address: String,
    answer: Rc<RefCell<Option<Answer>>>,
}

impl MembershipRequest for Join {
    fn kind(&self) -> ChangeKind {
        ChangeKind::Join
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn address(&self) -> &str {
        &self.address
    }
    fn respond(self, outcome: Answer) {
        *self.answer.borrow_mut() = Some(outcome);
    }
}

type Node<L = MemStorage> = Replica<Join, Log, L>;

fn addr(id: u64) -> String {
    format!("127.0.0.1:{}", 9000 + id)
}

/// Delivers messages between replicas until none is left (bounded), dropping those to or
/// from the ids in `cut`.
fn settle_cut<L: LogStore>(replicas: &mut [&mut Node<L>], cut: &[u64]) {
    for _ in 0..200 {
        let mut messages: Vec<Message> = Vec::new();
        for r in replicas.iter_mut() {
            messages.extend(r.process());
        }
        messages.retain(|m| !cut.contains(&m.to) && !cut.contains(&m.from));
        if messages.is_empty() {
            return;
        }
        for m in messages {
            if let Some(r) = replicas.iter_mut().find(|r| r.id() == m.to) {
                let _ = r.step(m);
            }
        }
    }
    panic!("replicas did not settle");
}

fn settle<L: LogStore>(replicas: &mut [&mut Node<L>]) {
    settle_cut(replicas, &[]);
}

/// Adds the last of `nodes` through the leader, `nodes[0]`, and checks that the change
/// was applied.
fn join_last<L: LogStore>(nodes: &mut [Node<L>]) {
    let id = nodes.last().expect("a joiner").id();
    let answer = Rc::new(RefCell::new(None));
    nodes[0].submit(Join {
        id: id.to_string(),
        address: addr(id),
        answer: Rc::clone(&answer),
    });
    settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    assert_eq!(
        answer.borrow_mut().take(),
        Some(Ok::<(), ChangeError>(())),
        "node {id} joined"
    );
}

/// Node 1 leads; nodes `2..=n` joined through it.
fn cluster(n: u64) -> Vec<Node> {
    let mut nodes =
        vec![Node::bootstrap_with(1, &addr(1), RaftTiming::default(), Log::default()).unwrap()];
    for id in 2..=n {
        nodes.push(Node::joining_with(id, RaftTiming::default(), Log::default()).unwrap());
        join_last(&mut nodes);
    }
    assert!(nodes[0].is_leader());
    nodes
}

fn state<L: LogStore>(node: &Node<L>) -> Log {
    node.store().state().clone()
}

#[test]
fn proposals_are_applied_on_every_node_and_answered_with_their_output() {
    let mut nodes = cluster(3);
    let a = nodes[0].propose(b"a".to_vec()).unwrap();
    let b = nodes[0].propose(b"b".to_vec()).unwrap();
    settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    let outcomes = nodes[0].take_outcomes();
    assert!(
        matches!(
            outcomes.as_slice(),
            [Outcome::Applied(x, 1), Outcome::Applied(y, 2)] if (*x, *y) == (a, b)
        ),
        "{outcomes:?}"
    );
    let leader = state(&nodes[0]);
    assert_eq!(
        leader
            .0
            .iter()
            .map(|(_, d)| d.as_slice())
            .collect::<Vec<_>>(),
        [b"a".as_slice(), b"b"]
    );
    for node in &nodes[1..] {
        assert_eq!(state(node), leader, "node {}", node.id());
        assert_eq!(node.applied(), nodes[0].applied());
    }
}

#[test]
fn a_follower_refuses_proposals_and_names_the_leader() {
    let mut nodes = cluster(2);
    assert_eq!(
        nodes[1].propose(b"x".to_vec()),
        Err(ProposeError::NotLeader {
            leader: Some(addr(1))
        })
    );
    let mut alone = Node::joining_with(9, RaftTiming::default(), Log::default()).unwrap();
    assert_eq!(
        alone.propose(b"x".to_vec()),
        Err(ProposeError::NotLeader { leader: None })
    );
}

#[test]
fn reads_are_confirmed_through_the_read_index_on_leader_and_followers() {
    let mut nodes = cluster(3);
    nodes[0].propose(b"before".to_vec()).unwrap();
    let on_leader = nodes[0].read_index().unwrap();
    let on_follower = nodes[2].read_index().unwrap();
    // Nothing is confirmed before raft has exchanged its messages.
    assert!(
        !nodes[2]
            .take_outcomes()
            .iter()
            .any(|o| matches!(o, Outcome::Readable(_)))
    );
    settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    let readable = |node: &mut Node| {
        node.take_outcomes()
            .into_iter()
            .filter_map(|o| match o {
                Outcome::Readable(id) => Some(id),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(readable(&mut nodes[0]), [on_leader]);
    assert_eq!(readable(&mut nodes[2]), [on_follower]);
    // Confirmed means applied: the follower's state holds the entry committed before.
    assert!(state(&nodes[2]).0.iter().any(|(_, d)| d == b"before"));

    let mut alone = Node::joining_with(9, RaftTiming::default(), Log::default()).unwrap();
    assert_eq!(alone.read_index(), Err(ReadError::NoLeader));
}

#[test]
fn a_proposal_replaced_by_a_new_leader_is_lost() {
    let mut nodes = cluster(3);
    let (first, rest) = nodes.split_at_mut(1);
    let old = &mut first[0];
    // Node 1 proposes while cut off from the others: the entries never reach a quorum. The
    // new leader's empty entry replaces the first, its first proposal the second.
    let orphans = [
        old.propose(b"orphan 1".to_vec()).unwrap(),
        old.propose(b"orphan 2".to_vec()).unwrap(),
    ];
    let _ = old.process();
    // Nodes 2 and 3 elect a leader among themselves.
    let mut leader = None;
    for _ in 0..100 {
        for node in rest.iter_mut() {
            node.tick();
        }
        settle_cut(&mut rest.iter_mut().collect::<Vec<_>>(), &[1]);
        if let Some(l) = rest.iter().position(Replica::is_leader) {
            leader = Some(l);
            break;
        }
    }
    let leader = leader.expect("nodes 2 and 3 elect a leader");
    rest[leader].propose(b"new".to_vec()).unwrap();
    settle_cut(&mut rest.iter_mut().collect::<Vec<_>>(), &[1]);
    // The partition heals: node 1 learns the new log, and its entry is gone.
    let mut all: Vec<&mut Node> = vec![old];
    all.extend(rest.iter_mut());
    for _ in 0..100 {
        settle(&mut all);
        for node in all.iter_mut() {
            node.tick();
        }
        if state(all[0]).0.iter().any(|(_, d)| d == b"new") {
            break;
        }
    }
    let outcomes = all[0].take_outcomes();
    assert!(
        matches!(outcomes.as_slice(), [Outcome::Lost(a), Outcome::Lost(b)] if [*a, *b] == orphans),
        "{outcomes:?}"
    );
    assert!(
        !state(all[0])
            .0
            .iter()
            .any(|(_, d)| d.starts_with(b"orphan"))
    );
    let logs: Vec<Log> = all.iter().map(|n| state(n)).collect();
    assert!(logs.windows(2).all(|w| w[0] == w[1]), "{logs:?}");
}

#[test]
fn a_joiner_behind_a_compacted_log_catches_up_by_a_snapshot_of_the_state() {
    let mut nodes = cluster(2);
    let leader = nodes.remove(0).with_compact_after(5);
    nodes.insert(0, leader);
    for i in 0..20u8 {
        nodes[0].propose(vec![i]).unwrap();
        settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    }
    // The log no longer holds the early entries: a newcomer can only get them as a snapshot.
    let first = raft::Storage::first_index(nodes[0].store()).unwrap();
    assert!(first > 5, "compacted: first index {first}");
    nodes.push(Node::joining_with(3, RaftTiming::default(), Log::default()).unwrap());
    join_last(&mut nodes);
    nodes[0].propose(b"after".to_vec()).unwrap();
    settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    assert_eq!(state(&nodes[2]), state(&nodes[0]));
    assert_eq!(state(&nodes[2]).0.len(), 21);
    assert_eq!(nodes[2].applied(), nodes[0].applied());
    assert_eq!(
        nodes[2].book().get(1),
        Some(addr(1)),
        "the book came with it"
    );
}

fn open(id: u64, dir: &std::path::Path, start: Start) -> Node<FileLog> {
    let log = FileLog::open(dir).unwrap();
    Node::open(
        id,
        &addr(id),
        RaftTiming::default(),
        Log::default(),
        log,
        start,
    )
    .unwrap()
    .with_compact_after(5)
}

#[test]
fn nodes_on_file_logs_restart_with_their_state_and_catch_up() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = vec![open(1, dirs[0].path(), Start::Bootstrap)];
    for id in 2..=3 {
        nodes.push(open(id, dirs[id as usize - 1].path(), Start::Join));
        join_last(&mut nodes);
    }
    for i in 0..12u8 {
        nodes[0].propose(vec![i]).unwrap();
        settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    }

    // Node 3 crashes (dropped without any goodbye) in the middle of writing a record: its
    // file ends with half of one.
    drop(nodes.pop());
    let path = dirs[2].path().join("raft.log");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, &[40, 0, 0, 0, 1, 2, 3, 4, 1, 8]).unwrap();
    drop(file);
    // The cluster goes on without it.
    for i in 12..20u8 {
        nodes[0].propose(vec![i]).unwrap();
        settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    }
    // Restarted from its directory (`Start::Join` is ignored: the log holds state), node 3
    // has its state back at once, then catches up.
    nodes.push(open(3, dirs[2].path(), Start::Join));
    // Still cut off: its first round applies the committed entries after its snapshot.
    settle_cut(&mut nodes.iter_mut().collect::<Vec<_>>(), &[3]);
    let before = state(&nodes[2]);
    assert_eq!(before.0.len(), 12, "restored");
    assert_eq!(before.0[..], state(&nodes[0]).0[..12]);
    assert_eq!(nodes[2].book().get(1), Some(addr(1)));
    for _ in 0..10 {
        for node in &mut nodes {
            node.tick();
        }
        settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    }
    assert_eq!(state(&nodes[2]), state(&nodes[0]));
    assert_eq!(state(&nodes[0]).0.len(), 20);

    // The leader restarts too: it comes back as a follower of whoever leads then, with
    // every entry, and a proposal through the new leader reaches it.
    drop(nodes.remove(0));
    for _ in 0..100 {
        for node in &mut nodes {
            node.tick();
        }
        settle(&mut nodes.iter_mut().collect::<Vec<_>>());
        if nodes.iter().any(Replica::is_leader) {
            break;
        }
    }
    let leader = nodes
        .iter()
        .position(Replica::is_leader)
        .expect("a new leader");
    nodes.push(open(1, dirs[0].path(), Start::Bootstrap));
    settle_cut(&mut nodes.iter_mut().collect::<Vec<_>>(), &[1]);
    assert_eq!(
        state(&nodes[2]).0.len(),
        20,
        "node 1's state after its restart"
    );
    assert!(!nodes[2].is_leader(), "node 1 did not bootstrap again");
    nodes[leader].propose(b"after".to_vec()).unwrap();
    for _ in 0..10 {
        for node in &mut nodes {
            node.tick();
        }
        settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    }
    let leaders = nodes.iter().filter(|n| n.is_leader()).count();
    assert_eq!(leaders, 1);
    let logs: Vec<Log> = nodes.iter().map(state).collect();
    assert!(logs.windows(2).all(|w| w[0] == w[1]), "{logs:?}");
    assert_eq!(logs[0].0.len(), 21);
}

/// What a [`Journaled`] store made durable: it outlives the store, as a disk outlives a
/// process.
#[derive(Debug, Default)]
struct Disk {
    snapshot: Option<Snapshot>,
    hard_state: HardState,
    entries: Vec<Entry>,
    syncs: usize,
}

enum Write {
    Entries(Vec<Entry>),
    HardState(HardState),
    Snapshot(Snapshot),
}

/// A store of the application's own, to show that any `raft::Storage` with [`LogStore`]'s
/// writes runs a replica: raft reads a `MemStorage`, while writes are queued and reach the
/// shared [`Disk`] only at `sync`. A crash loses what was not synced.
struct Journaled {
    mem: MemStorage,
    snapshot: Option<Snapshot>,
    pending: Vec<Write>,
    disk: std::sync::Arc<std::sync::Mutex<Disk>>,
}

impl Journaled {
    /// The store as a restarted process finds it: what `disk` holds.
    fn recover(disk: &std::sync::Arc<std::sync::Mutex<Disk>>) -> Self {
        let d = disk.lock().unwrap();
        let mem = MemStorage::new();
        if let Some(snapshot) = &d.snapshot {
            mem.wl().apply_snapshot(snapshot.clone()).unwrap();
        }
        let first = mem.first_index().unwrap();
        let entries: Vec<Entry> = d
            .entries
            .iter()
            .filter(|e| e.index >= first)
            .cloned()
            .collect();
        mem.wl().append(&entries).unwrap();
        mem.wl().set_hardstate(d.hard_state.clone());
        Self {
            mem,
            snapshot: d.snapshot.clone(),
            pending: Vec::new(),
            disk: std::sync::Arc::clone(disk),
        }
    }
}

impl Storage for Journaled {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }
    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }
    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }
    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }
    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        Err(raft::Error::Store(
            raft::StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

impl LogStore for Journaled {
    fn append(&mut self, entries: &[Entry]) -> std::io::Result<()> {
        LogStore::append(&mut self.mem, entries)?;
        self.pending.push(Write::Entries(entries.to_vec()));
        Ok(())
    }
    fn set_hard_state(&mut self, hard_state: &HardState) -> std::io::Result<()> {
        self.mem.set_hard_state(hard_state)?;
        self.pending.push(Write::HardState(hard_state.clone()));
        Ok(())
    }
    fn set_commit(&mut self, commit: u64) -> std::io::Result<()> {
        let mut hard_state = self.mem.rl().hard_state().clone();
        hard_state.commit = commit;
        self.set_hard_state(&hard_state)
    }
    fn set_conf_state(&mut self, conf_state: &ConfState) -> std::io::Result<()> {
        self.mem.set_conf_state(conf_state)
    }
    fn install_snapshot(&mut self, snapshot: &Snapshot) -> std::io::Result<()> {
        self.mem.install_snapshot(snapshot)?;
        self.snapshot = Some(snapshot.clone());
        self.pending.push(Write::Snapshot(snapshot.clone()));
        self.pending
            .push(Write::HardState(self.mem.rl().hard_state().clone()));
        Ok(())
    }
    fn compact(&mut self, snapshot: &Snapshot) -> std::io::Result<()> {
        LogStore::compact(&mut self.mem, snapshot)?;
        self.snapshot = Some(snapshot.clone());
        self.pending.push(Write::Snapshot(snapshot.clone()));
        Ok(())
    }
    fn last_snapshot(&self) -> std::io::Result<Option<Snapshot>> {
        Ok(self.snapshot.clone())
    }
    fn sync(&mut self) -> std::io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        for write in self.pending.drain(..) {
            match write {
                Write::Entries(entries) => {
                    let Some(first) = entries.first() else {
                        continue;
                    };
                    disk.entries.retain(|e| e.index < first.index);
                    disk.entries.extend(entries);
                }
                Write::HardState(hard_state) => disk.hard_state = hard_state,
                Write::Snapshot(snapshot) => {
                    let index = snapshot.get_metadata().index;
                    disk.entries.retain(|e| e.index > index);
                    disk.snapshot = Some(snapshot);
                }
            }
        }
        disk.syncs += 1;
        Ok(())
    }
}

#[test]
fn a_store_of_the_applications_own_runs_replicas_that_restart_from_what_it_synced() {
    let disks: Vec<_> = (0..3)
        .map(|_| std::sync::Arc::new(std::sync::Mutex::new(Disk::default())))
        .collect();
    let open = |id: u64, start: Start| -> Node<Journaled> {
        let store = Journaled::recover(&disks[id as usize - 1]);
        Node::open(
            id,
            &addr(id),
            RaftTiming::default(),
            Log::default(),
            store,
            start,
        )
        .unwrap()
        .with_compact_after(4)
    };
    let mut nodes = vec![open(1, Start::Bootstrap)];
    for id in 2..=3 {
        nodes.push(open(id, Start::Join));
        join_last(&mut nodes);
    }
    for i in 0..10u8 {
        nodes[0].propose(vec![i]).unwrap();
        settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    }
    {
        let disk = disks[1].lock().unwrap();
        assert!(disk.syncs > 10, "synced on the write path: {}", disk.syncs);
        let snapshot = disk.snapshot.as_ref().expect("compacted with a snapshot");
        assert!(snapshot.get_metadata().index > 4);
        assert!(!snapshot.data.is_empty(), "the snapshot carries the state");
    }
    // Node 2 crashes: its unsynced writes are lost with it.
    drop(nodes.remove(1));
    for i in 10..15u8 {
        nodes[0].propose(vec![i]).unwrap();
        settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    }
    nodes.insert(1, open(2, Start::Join));
    settle_cut(&mut nodes.iter_mut().collect::<Vec<_>>(), &[2]);
    assert_eq!(state(&nodes[1]).0[..], state(&nodes[0]).0[..10], "restored");
    for _ in 0..10 {
        for node in &mut nodes {
            node.tick();
        }
        settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    }
    assert_eq!(state(&nodes[1]), state(&nodes[0]));
    assert_eq!(state(&nodes[0]).0.len(), 15);
    assert!(nodes[0].is_leader());
}

#[test]
fn a_log_raft_cannot_start_on_is_an_error_not_a_panic() {
    let open = |log: MemStorage| {
        Node::open(
            1,
            &addr(1),
            RaftTiming::default(),
            Log::default(),
            log,
            Start::Join,
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    let entries = |range: std::ops::RangeInclusive<u64>| -> Vec<Entry> {
        range
            .map(|index| Entry {
                index,
                term: 1,
                ..Entry::default()
            })
            .collect()
    };

    // Compacted, with no snapshot to restore the state from.
    let compacted = MemStorage::new();
    let mut snapshot = Snapshot::default();
    snapshot.mut_metadata().index = 4;
    snapshot.mut_metadata().term = 1;
    compacted.wl().apply_snapshot(snapshot).unwrap();
    compacted.wl().append(&entries(5..=6)).unwrap();
    let why = open(compacted);
    assert!(why.contains("keeps no snapshot"), "{why}");

    // A commit index past the last entry.
    let short = MemStorage::new();
    short.wl().append(&entries(1..=3)).unwrap();
    short.wl().set_hardstate(HardState {
        term: 1,
        commit: 10,
        ..HardState::default()
    });
    let why = open(short);
    assert!(why.contains("past the log's end"), "{why}");
}
