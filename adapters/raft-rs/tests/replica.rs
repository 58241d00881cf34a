//! Application data through real raft-rs replicas, sans IO: messages are handed from replica
//! to replica in memory, so every step is deterministic. Proposals and their outputs, reads
//! through raft's read index, leadership lost before a commit, and a joiner that catches up by
//! a snapshot of the application state.

use std::cell::RefCell;
use std::rc::Rc;

use raft::eraftpb::Message;
use rafthttp_driver::core::ChangeKind;
use rafthttp_driver::{ChangeError, Outcome as Answer};
use rafthttp_raft::{
    MembershipRequest, Outcome, ProposeError, RaftTiming, ReadError, Replica, RestoreError,
    StateMachine,
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

type Node = Replica<Join, Log>;

fn addr(id: u64) -> String {
    format!("127.0.0.1:{}", 9000 + id)
}

/// Delivers messages between replicas until none is left (bounded), dropping those to or
/// from the ids in `cut`.
fn settle_cut(replicas: &mut [&mut Node], cut: &[u64]) {
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

fn settle(replicas: &mut [&mut Node]) {
    settle_cut(replicas, &[]);
}

/// Adds the last of `nodes` through the leader, `nodes[0]`, and checks that the change
/// was applied.
fn join_last(nodes: &mut [Node]) {
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

fn state(node: &Node) -> Log {
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

fn open(id: u64, dir: &std::path::Path, start: rafthttp_raft::Start) -> Node {
    let log = rafthttp_raft::FileLog::open(dir).unwrap();
    Node::open(
        id,
        &addr(id),
        RaftTiming::default(),
        Log::default(),
        Box::new(log),
        start,
    )
    .unwrap()
    .with_compact_after(5)
}

#[test]
fn nodes_on_file_logs_restart_with_their_state_and_catch_up() {
    use rafthttp_raft::Start;

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
