//! Membership over HTTP: join and leave requests applied to openraft.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::responder::OneshotResponder;
use openraft::{BasicNode, ChangeMembers, Raft, RaftTypeConfig};
use rafthttp_tokio::{ChangeError, ChangeKind, ChangeRequest, Outcome, Requests};
use tokio::time::{Instant, timeout_at};

/// Applies the join and leave requests a handler receives to `raft`, one at a time, until the
/// handler closes (its request stream ends). Run it in a task next to the node's
/// [`serve`](crate::serve).
///
/// - The HTTP id must be openraft's `u64` node id; anything else is refused (403).
/// - On a node that is not the leader, the request is redirected (308) to the leader's address
///   (its [`BasicNode`]), or answered 503 (the client retries) when no leader is known.
/// - A join adds the node as a learner (`add_learner(id, BasicNode { addr }, true)`, which waits
///   for it to catch up), then promotes it to voter (`AddVoterIds`). A learner already at that
///   address is promoted; a voter already at that address is answered 200 and nothing changes.
///   A member joining at another address moves there (`SetNodes`; then promoted if a learner),
///   as hashicorp/raft updates the address of a server added again: a node restarted on a new
///   address joins again to tell the cluster.
/// - A leave removes a voter (`RemoveVoters`, not kept as a learner) or a learner
///   (`RemoveNodes`); leaving a cluster one is not a member of is answered 200, so a retried
///   leave is harmless.
/// - Every step is bounded by the request's [deadline](ChangeRequest::deadline): openraft 0.9
///   waits without limit otherwise, and a join that timed out must not hold up later changes.
///   Other openraft errors are refused (403) with openraft's message.
pub async fn apply_membership<C>(raft: Raft<C>, requests: Requests)
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode, Responder = OneshotResponder<C>>,
{
    while let Some(request) = requests.recv().await {
        let deadline = Instant::from_std(request.deadline());
        let outcome = match timeout_at(deadline, apply(&raft, &request)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ChangeError::Timeout),
        };
        match &outcome {
            Ok(()) => {
                tracing::info!(kind = %request.kind(), id = request.id(), "membership change applied")
            }
            Err(error) => {
                tracing::info!(kind = %request.kind(), id = request.id(), %error, "membership change not applied")
            }
        }
        request.respond(outcome);
    }
}

async fn apply<C>(raft: &Raft<C>, request: &ChangeRequest) -> Outcome
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode, Responder = OneshotResponder<C>>,
{
    let id: u64 = request.id().parse().map_err(|_| {
        ChangeError::failed(format!(
            "invalid server id {:?}: openraft node ids are unsigned integers",
            request.id()
        ))
    })?;
    let metrics = raft.metrics().borrow().clone();
    if metrics.current_leader != Some(metrics.id) {
        let leader = metrics.current_leader.and_then(|leader| {
            metrics
                .membership_config
                .membership()
                .get_node(&leader)
                .map(|node| node.addr.clone())
        });
        return Err(ChangeError::NotLeader { leader });
    }
    let membership = metrics.membership_config.membership();
    let voter = membership.voter_ids().any(|v| v == id);
    let node = membership.get_node(&id).cloned();
    match request.kind() {
        ChangeKind::Join => {
            let address = request.address();
            if address.is_empty() {
                return Err(ChangeError::failed("no server address provided"));
            }
            match node {
                Some(node) if node.addr != address => {
                    tracing::info!(id, from = %node.addr, to = address, "a member moves");
                    let moved = BTreeMap::from([(id, BasicNode::new(address))]);
                    write(raft.change_membership(ChangeMembers::SetNodes(moved), true)).await?;
                    if voter {
                        Ok(())
                    } else {
                        promote(raft, id).await
                    }
                }
                Some(_) if voter => Ok(()),
                Some(_) => promote(raft, id).await,
                None => {
                    write(raft.add_learner(id, BasicNode::new(address), true)).await?;
                    promote(raft, id).await
                }
            }
        }
        ChangeKind::Leave => match node {
            None => Ok(()),
            Some(_) if voter => {
                write(raft.change_membership(ChangeMembers::RemoveVoters(set(id)), false)).await
            }
            Some(_) => {
                write(raft.change_membership(ChangeMembers::RemoveNodes(set(id)), false)).await
            }
        },
    }
}

async fn promote<C>(raft: &Raft<C>, id: u64) -> Outcome
where
    C: RaftTypeConfig<NodeId = u64, Node = BasicNode, Responder = OneshotResponder<C>>,
{
    write(raft.change_membership(ChangeMembers::AddVoterIds(set(id)), false)).await
}

fn set(id: u64) -> BTreeSet<u64> {
    BTreeSet::from([id])
}

/// Awaits a membership write and maps openraft's errors to the HTTP answer.
async fn write<T>(
    change: impl Future<Output = Result<T, RaftError<u64, ClientWriteError<u64, BasicNode>>>>,
) -> Outcome {
    match change.await {
        Ok(_) => Ok(()),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
            Err(ChangeError::NotLeader {
                leader: forward.leader_node.map(|node| node.addr),
            })
        }
        Err(error) => Err(ChangeError::failed(error)),
    }
}
