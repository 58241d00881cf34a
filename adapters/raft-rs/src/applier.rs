//! The membership applier: turns rafthttp membership requests into raft conf changes and
//! answers them when the change is applied (the counterpart of Go's raft-membership).
//!
//! It is sans-IO: it borrows the [`RawNode`] to propose and is told, by whoever applies
//! committed entries, which conf change was applied at which index.

use std::collections::VecDeque;

use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2};
use raft::{RawNode, StateRole, Storage};
use rafthttp_driver::{ChangeError, ChangeKind, ChangeRequest, Outcome};

use crate::book::AddressBook;

/// A membership request as the applier sees it: [`ChangeRequest`] in production, anything
/// else in tests.
pub trait MembershipRequest {
    /// Join or leave.
    fn kind(&self) -> ChangeKind;
    /// The server id, as sent over HTTP.
    fn id(&self) -> &str;
    /// The server's HTTP address (joins).
    fn address(&self) -> &str;
    /// Answers the request.
    fn respond(self, outcome: Outcome);
}

impl MembershipRequest for ChangeRequest {
    fn kind(&self) -> ChangeKind {
        Self::kind(self)
    }

    fn id(&self) -> &str {
        Self::id(self)
    }

    fn address(&self) -> &str {
        Self::address(self)
    }

    fn respond(self, outcome: Outcome) {
        if !Self::respond(self, outcome) {
            tracing::debug!("membership answer not delivered: the client stopped waiting");
        }
    }
}

/// Parses an HTTP server id into a raft node id (a positive `u64`).
///
/// # Errors
/// A [`ChangeError::Failed`] whose message the handler sends as
/// `failed to <join|leave> server <id>: <message>` (403).
pub fn parse_node_id(id: &str) -> Result<u64, ChangeError> {
    match id.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ChangeError::failed(format!(
            "invalid server id {id:?}: raft node ids are positive 64-bit integers"
        ))),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    kind: ChangeKind,
    node: u64,
    address: String,
}

impl Change {
    fn conf_change(&self) -> ConfChangeV2 {
        let mut single = ConfChangeSingle::default();
        single.set_change_type(match self.kind {
            ChangeKind::Join => ConfChangeType::AddNode,
            ChangeKind::Leave => ConfChangeType::RemoveNode,
        });
        single.node_id = self.node;
        let mut cc = ConfChangeV2::default();
        cc.set_changes(vec![single].into());
        cc.context = self.address.clone().into_bytes().into();
        cc
    }

    fn matches(&self, cc: &ConfChangeV2) -> bool {
        let expected = self.conf_change();
        cc.get_changes() == expected.get_changes()
    }
}

#[derive(Debug)]
struct InFlight<T> {
    index: u64,
    term: u64,
    change: Change,
    request: T,
}

/// Counters of what the applier answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplierStats {
    /// Requests answered `NotLeader` with the leader's address (the client is redirected).
    pub redirected: u64,
    /// Requests answered `NotLeader` without an address (the client retries).
    pub leader_unknown: u64,
    /// Changes proposed to raft.
    pub proposed: u64,
    /// Requests answered `Ok`, as no-ops or once applied.
    pub succeeded: u64,
    /// Requests refused for another reason.
    pub failed: u64,
}

/// Applies membership requests on the leader, one conf change at a time.
///
/// - Ids are parsed as `u64` ([`parse_node_id`]); a join needs an address.
/// - On a follower (or a candidate) every request is answered
///   [`ChangeError::NotLeader`] with the leader's address from the [`AddressBook`], if known.
/// - On the leader, a join of a voter and a leave of a non-member succeed at once (no-ops);
///   otherwise a `ConfChangeV2` (one `AddNode` or `RemoveNode`, the joiner's address in its
///   `context`) is proposed when no other conf change is pending (raft-rs would drop it), and
///   the request is answered when the entry at its index is applied ([`applied`](Self::applied)).
/// - When leadership is lost, every waiting request is answered `NotLeader`.
///
/// Requests wait in a bounded queue (default 64); more are refused.
#[derive(Debug)]
pub struct Applier<T> {
    waiting: VecDeque<(Change, T)>,
    in_flight: Option<InFlight<T>>,
    max_waiting: usize,
    stats: ApplierStats,
}

impl<T> Default for Applier<T> {
    fn default() -> Self {
        Self {
            waiting: VecDeque::new(),
            in_flight: None,
            max_waiting: 64,
            stats: ApplierStats::default(),
        }
    }
}

impl<T: MembershipRequest> Applier<T> {
    /// An applier keeping at most `max_waiting` requests waiting for their turn.
    pub fn new(max_waiting: usize) -> Self {
        Self {
            waiting: VecDeque::new(),
            in_flight: None,
            max_waiting: max_waiting.max(1),
            stats: ApplierStats::default(),
        }
    }

    /// Requests waiting or in flight.
    pub fn pending(&self) -> usize {
        self.waiting.len() + usize::from(self.in_flight.is_some())
    }

    /// What the applier answered so far.
    pub fn stats(&self) -> ApplierStats {
        self.stats
    }

    /// Takes a request: answers it at once (bad id, not leader, no-op, queue full) or queues
    /// it and proposes it when its turn comes.
    pub fn submit<S: Storage>(&mut self, request: T, raw: &mut RawNode<S>, book: &AddressBook) {
        let node = match parse_node_id(request.id()) {
            Ok(node) => node,
            Err(e) => return self.answer(request, Err(e)),
        };
        let kind = request.kind();
        if kind == ChangeKind::Join && request.address().is_empty() {
            return self.answer(
                request,
                Err(ChangeError::failed("no server address provided")),
            );
        }
        if raw.raft.state != StateRole::Leader {
            let leader = leader_address(raw, book);
            return self.answer(request, Err(ChangeError::NotLeader { leader }));
        }
        if self.waiting.len() >= self.max_waiting {
            return self.answer(
                request,
                Err(ChangeError::failed("too many membership changes waiting")),
            );
        }
        let change = Change {
            kind,
            node,
            address: request.address().to_owned(),
        };
        self.waiting.push_back((change, request));
        self.drive(raw, book);
    }

    /// Moves the queue on: answers everything `NotLeader` if this node lost leadership,
    /// otherwise proposes the next change when none is pending. Call it after each `Ready`
    /// round.
    pub fn drive<S: Storage>(&mut self, raw: &mut RawNode<S>, book: &AddressBook) {
        if raw.raft.state != StateRole::Leader {
            if self.pending() > 0 {
                let leader = leader_address(raw, book);
                if let Some(f) = self.in_flight.take() {
                    self.answer(
                        f.request,
                        Err(ChangeError::NotLeader {
                            leader: leader.clone(),
                        }),
                    );
                }
                while let Some((_, request)) = self.waiting.pop_front() {
                    self.answer(
                        request,
                        Err(ChangeError::NotLeader {
                            leader: leader.clone(),
                        }),
                    );
                }
            }
            return;
        }
        if let Some(f) = self.in_flight.take_if(|f| f.term != raw.raft.term) {
            // Leadership was lost and won again: the entry may have been overwritten.
            self.answer(
                f.request,
                Err(ChangeError::failed(
                    "leadership changed while the change was pending",
                )),
            );
        }
        while self.in_flight.is_none() {
            let Some((change, request)) = self.waiting.pop_front() else {
                return;
            };
            let conf = raw.raft.prs().conf().to_conf_state();
            let member = conf.voters.contains(&change.node) || conf.learners.contains(&change.node);
            let noop = match change.kind {
                // A voter joining again at the address the book has: nothing to do. At
                // another address (it restarted elsewhere), the change is proposed: applying
                // it updates the book (hashicorp/raft updates the address of a voter added
                // again, too).
                ChangeKind::Join => {
                    conf.voters.contains(&change.node)
                        && book.get(change.node).as_deref() == Some(change.address.as_str())
                }
                ChangeKind::Leave => !member,
            };
            if noop {
                self.answer(request, Ok(()));
                continue;
            }
            if raw.raft.pending_conf_index > raw.raft.raft_log.applied {
                // raft-rs would replace the proposal with an empty entry: wait.
                self.waiting.push_front((change, request));
                return;
            }
            let before = raw.raft.raft_log.last_index();
            if let Err(e) = raw.propose_conf_change(Vec::new(), change.conf_change()) {
                self.answer(
                    request,
                    Err(ChangeError::failed(format!("proposal failed: {e}"))),
                );
                continue;
            }
            let index = raw.raft.raft_log.last_index();
            if index == before {
                self.answer(
                    request,
                    Err(ChangeError::failed("proposal dropped by raft")),
                );
                continue;
            }
            self.stats.proposed += 1;
            self.in_flight = Some(InFlight {
                index,
                term: raw.raft.term,
                change,
                request,
            });
        }
    }

    /// Tells the applier that the conf change entry at `index` was applied (`Ok`) or refused
    /// by raft (`Err`). The request proposed at that index is answered.
    pub fn applied(&mut self, index: u64, result: Result<&ConfChangeV2, &raft::Error>) {
        let Some(f) = self.in_flight.take_if(|f| f.index <= index) else {
            return;
        };
        let outcome = match result {
            Ok(cc) if f.index == index && f.change.matches(cc) => Ok(()),
            Ok(_) => Err(ChangeError::failed(format!(
                "another change was applied at index {index}"
            ))),
            Err(e) => Err(ChangeError::failed(format!("raft refused the change: {e}"))),
        };
        self.answer(f.request, outcome);
    }

    fn answer(&mut self, request: T, outcome: Outcome) {
        match &outcome {
            Ok(()) => self.stats.succeeded += 1,
            Err(ChangeError::NotLeader { leader: Some(_) }) => self.stats.redirected += 1,
            Err(ChangeError::NotLeader { leader: None }) => self.stats.leader_unknown += 1,
            Err(_) => self.stats.failed += 1,
        }
        tracing::debug!(kind = %request.kind(), id = request.id(), ?outcome, "membership answer");
        request.respond(outcome);
    }
}

/// The leader's HTTP address, when this node knows both who leads and where it is.
pub fn leader_address<S: Storage>(raw: &RawNode<S>, book: &AddressBook) -> Option<String> {
    match raw.raft.leader_id {
        raft::INVALID_ID => None,
        id => book.get(id),
    }
}

#[cfg(test)]
mod tests {
    //! The Go package's membership applier cases (go-test-cases 33-38), on replicas wired
    //! together in memory.

    use std::cell::RefCell;
    use std::rc::Rc;

    use raft::eraftpb::{Message, MessageType};

    use super::*;
    use crate::replica::{RaftTiming, Replica};

    type Answer = Rc<RefCell<Option<Outcome>>>;

    #[derive(Debug)]
    struct Probe {
        kind: ChangeKind,
        id: String,
        address: String,
        answer: Answer,
    }

    impl MembershipRequest for Probe {
        fn kind(&self) -> ChangeKind {
            self.kind
        }
        fn id(&self) -> &str {
            &self.id
        }
        fn address(&self) -> &str {
            &self.address
        }
        fn respond(self, outcome: Outcome) {
            assert!(
                self.answer.replace(Some(outcome)).is_none(),
                "answered twice"
            );
        }
    }

    fn request(kind: ChangeKind, id: &str, address: &str) -> (Probe, Answer) {
        let answer = Answer::default();
        let probe = Probe {
            kind,
            id: id.to_owned(),
            address: address.to_owned(),
            answer: Rc::clone(&answer),
        };
        (probe, answer)
    }

    fn join(id: u64) -> (Probe, Answer) {
        request(ChangeKind::Join, &id.to_string(), &addr(id))
    }

    fn addr(id: u64) -> String {
        format!("127.0.0.1:{}", 9000 + id)
    }

    fn leader() -> Replica<Probe> {
        let mut r = Replica::bootstrap(1, &addr(1), RaftTiming::default()).unwrap();
        assert!(r.process().is_empty());
        assert!(r.is_leader());
        r
    }

    /// Delivers messages between replicas until none is left (bounded).
    fn settle(replicas: &mut [&mut Replica<Probe>]) {
        for _ in 0..100 {
            let mut messages: Vec<Message> = Vec::new();
            for r in replicas.iter_mut() {
                messages.extend(r.process());
            }
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

    fn taken(answer: &Answer) -> Outcome {
        answer.borrow_mut().take().expect("not answered")
    }

    #[test]
    fn not_leader_and_leader_unknown() {
        // Case 33.
        let mut r: Replica<Probe> = Replica::joining(2, RaftTiming::default()).unwrap();
        let (probe, answer) = join(3);
        r.submit(probe);
        let err = taken(&answer).unwrap_err();
        assert!(matches!(err, ChangeError::NotLeader { leader: None }));
        assert_eq!(
            err.to_string(),
            "node is not leader, current leader unknown"
        );
        assert_eq!(r.applier_stats().leader_unknown, 1);
    }

    #[test]
    fn not_leader_redirects_to_the_known_leader() {
        // Case 34.
        let mut r: Replica<Probe> = Replica::joining(2, RaftTiming::default()).unwrap();
        let mut heartbeat = Message::default();
        heartbeat.set_msg_type(MessageType::MsgHeartbeat);
        heartbeat.from = 1;
        heartbeat.to = 2;
        heartbeat.term = 2;
        r.step(heartbeat).unwrap();
        r.process();
        assert_eq!(r.leader_id(), Some(1));
        let (probe, answer) = join(3);
        r.submit(probe);
        assert!(matches!(
            taken(&answer),
            Err(ChangeError::NotLeader { leader: None })
        ));
        r.book().insert(1, addr(1));
        let (probe, answer) = request(ChangeKind::Leave, "3", "");
        r.submit(probe);
        let err = taken(&answer).unwrap_err();
        assert_eq!(
            err.to_string(),
            "node is not leader, current leader at: 127.0.0.1:9001"
        );
        assert_eq!(r.applier_stats().redirected, 1);
    }

    #[test]
    fn join_of_a_voter_is_a_no_op() {
        // Case 35.
        let mut r = leader();
        let (probe, answer) = join(1);
        r.submit(probe);
        assert!(taken(&answer).is_ok());
        assert_eq!(r.applier_stats().proposed, 0);
        assert_eq!(r.voters(), [1]);
    }

    #[test]
    fn join_of_a_voter_at_another_address_updates_the_book() {
        let mut r = leader();
        let (probe, answer) = request(ChangeKind::Join, "1", "127.0.0.1:9999");
        r.submit(probe);
        let _ = r.process();
        assert!(taken(&answer).is_ok());
        assert_eq!(r.applier_stats().proposed, 1);
        assert_eq!(r.voters(), [1]);
        assert_eq!(r.book().get(1).as_deref(), Some("127.0.0.1:9999"));
        assert_eq!(r.leader_address().as_deref(), Some("127.0.0.1:9999"));
    }

    #[test]
    fn join_then_leave_apply_through_raft() {
        // Case 36, with two replicas wired in memory; node 2 catches up by snapshot, which
        // brings the address book.
        let mut r1 = leader();
        let mut r2: Replica<Probe> = Replica::joining(2, RaftTiming::default()).unwrap();
        let (probe, answer) = join(2);
        r1.submit(probe);
        settle(&mut [&mut r1, &mut r2]);
        assert!(taken(&answer).is_ok());
        assert_eq!(r1.voters(), [1, 2]);
        assert_eq!(r2.voters(), [1, 2]);
        assert_eq!(r2.book().get(1), Some(addr(1)));
        assert_eq!(r2.book().get(2), Some(addr(2)));
        assert_eq!(r2.leader_address(), Some(addr(1)));

        let (probe, answer) = request(ChangeKind::Leave, "2", "");
        r1.submit(probe);
        assert!(answer.borrow().is_none(), "needs node 2's vote");
        settle(&mut [&mut r1, &mut r2]);
        assert!(taken(&answer).is_ok());
        assert_eq!(r1.voters(), [1]);
        assert_eq!(r1.book().get(2), None);
        // Leaving again is a no-op.
        let (probe, answer) = request(ChangeKind::Leave, "2", "");
        r1.submit(probe);
        assert!(taken(&answer).is_ok());
    }

    #[test]
    fn changes_are_serialised() {
        let mut r1 = leader();
        let mut r2: Replica<Probe> = Replica::joining(2, RaftTiming::default()).unwrap();
        let mut r3: Replica<Probe> = Replica::joining(3, RaftTiming::default()).unwrap();
        let (p2, a2) = join(2);
        let (p3, a3) = join(3);
        r1.submit(p2);
        r1.submit(p3);
        settle(&mut [&mut r1, &mut r2, &mut r3]);
        assert!(taken(&a2).is_ok());
        assert!(taken(&a3).is_ok());
        assert_eq!(r1.voters(), [1, 2, 3]);
        assert_eq!(r3.voters(), [1, 2, 3]);
        assert_eq!(r1.applier_stats().proposed, 2);
    }

    #[test]
    fn lost_leadership_answers_pending_requests() {
        let mut r1 = leader();
        let mut r2: Replica<Probe> = Replica::joining(2, RaftTiming::default()).unwrap();
        let (probe, answer) = join(2);
        r1.submit(probe);
        settle(&mut [&mut r1, &mut r2]);
        assert!(taken(&answer).is_ok());
        // Node 3's join needs node 2's vote, which never comes: node 2 takes over instead.
        let (probe, answer) = join(3);
        r1.submit(probe);
        assert!(answer.borrow().is_none());
        let mut heartbeat = Message::default();
        heartbeat.set_msg_type(MessageType::MsgHeartbeat);
        heartbeat.from = 2;
        heartbeat.to = 1;
        heartbeat.term = r1.raw().raft.term + 1;
        r1.step(heartbeat).unwrap();
        r1.process();
        let err = taken(&answer).unwrap_err();
        assert_eq!(
            err.to_string(),
            "node is not leader, current leader at: 127.0.0.1:9002"
        );
    }

    #[test]
    fn bad_ids_and_missing_addresses_are_refused() {
        let mut r = leader();
        let (probe, answer) = request(ChangeKind::Join, "node-2", &addr(2));
        r.submit(probe);
        let err = taken(&answer).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid server id \"node-2\": raft node ids are positive 64-bit integers"
        );
        let (probe, answer) = request(ChangeKind::Leave, "0", "");
        r.submit(probe);
        assert!(matches!(taken(&answer), Err(ChangeError::Failed { .. })));
        let (probe, answer) = request(ChangeKind::Join, "2", "");
        r.submit(probe);
        assert_eq!(
            taken(&answer).unwrap_err().to_string(),
            "no server address provided"
        );
        assert_eq!(r.applier_stats().failed, 3);
    }

    #[test]
    fn timeout_text_and_kind_names() {
        // Cases 37 and 38: the handler answers the timeout; kinds print as Go's.
        assert_eq!(
            ChangeError::Timeout.to_string(),
            "timeout waiting for membership change"
        );
        assert_eq!(ChangeKind::Join.to_string(), "join");
        assert_eq!(ChangeKind::Leave.to_string(), "leave");
    }
}
