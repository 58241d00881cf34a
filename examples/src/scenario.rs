//! The three-node example of the Go package's docs, over any runtime: node 1 bootstraps and
//! leads, node 2 joins through node 1, node 3 joins through node 2 (a follower, which
//! redirects it to the leader), node 3 leaves. The `cluster-*` examples run it on each
//! runtime, and the tests check its outcome.

use std::time::{Duration, Instant};

use rafthttp_driver::{Requests, Runtime};
use rafthttp_raft::{Network, Node, NodeConfig};

/// What the scenario observed at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The voters of node 1's final configuration.
    pub voters: Vec<u64>,
    /// Voters other than node 1 in node 1's final configuration.
    pub peers: usize,
    /// Peers node 1 still has an outbound connection for at the end.
    pub writers: Vec<u64>,
    /// Raft connections the three layers accepted, in total.
    pub accepted_connections: u64,
    /// Membership requests node 2 answered with a redirect to the leader.
    pub redirected_by_node2: u64,
    /// Node 1's final address book.
    pub address_book: Vec<(u64, String)>,
}

/// The scenario did not complete; the message says which step failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ScenarioError(String);

fn fail(message: impl Into<String>) -> ScenarioError {
    ScenarioError(message.into())
}

/// Runs the scenario on three endpoints (each with its handler's membership requests),
/// within `timeout` overall. The nodes are closed at the end, whatever the outcome.
///
/// # Errors
/// When a step fails or the cluster does not converge in time.
pub async fn three_nodes<R: Runtime, N: Network>(
    rt: R,
    endpoints: [(N, Requests); 3],
    config: NodeConfig,
    timeout: Duration,
) -> Result<Report, ScenarioError> {
    let deadline = rt.now() + timeout;
    let [(net1, req1), (net2, req2), (net3, req3)] = endpoints;
    let start = |result: rafthttp_raft::raft::Result<Node<R, N>>| {
        result.map_err(|e| fail(format!("cannot start a raft node: {e}")))
    };
    let node1 = start(Node::bootstrap(rt.clone(), net1.clone(), req1, 1, config))?;
    let node2 = start(Node::joining(rt.clone(), net2.clone(), req2, 2, config));
    let node3 = start(Node::joining(rt.clone(), net3.clone(), req3, 3, config));
    let nodes: Vec<Node<R, N>> = [Ok(node1.clone()), node2.clone(), node3.clone()]
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    let result = async {
        let (node2, node3) = (node2?, node3?);
        run(&rt, deadline, [&node1, &node2, &node3]).await
    }
    .await;
    let mut all_ended = true;
    for node in &nodes {
        all_ended &= node.close().await;
    }
    match result {
        Ok(_) if !all_ended => Err(fail("a node's tasks did not end within its close timeout")),
        result => result,
    }
}

async fn run<R: Runtime, N: Network>(
    rt: &R,
    deadline: Instant,
    [node1, node2, node3]: [&Node<R, N>; 3],
) -> Result<Report, ScenarioError> {
    let (addr1, addr2) = (node1.net().addr().to_owned(), node2.net().addr().to_owned());
    if !node1
        .wait_until(remaining(rt, deadline), |r| r.is_leader())
        .await
    {
        return Err(fail("node 1 did not become leader in time"));
    }
    node2
        .net()
        .join("2", &addr1, remaining(rt, deadline))
        .await
        .map_err(|e| fail(format!("node 2 could not join through node 1: {e}")))?;
    // Node 2 must know where the leader is before it can redirect node 3 there.
    let caught_up = node2
        .wait_until(remaining(rt, deadline), |r| {
            r.voters() == [1, 2] && r.leader_address().as_deref() == Some(addr1.as_str())
        })
        .await;
    if !caught_up {
        return Err(fail("node 2 did not catch up with node 1 in time"));
    }
    node3
        .net()
        .join("3", &addr2, remaining(rt, deadline))
        .await
        .map_err(|e| fail(format!("node 3 could not join through node 2: {e}")))?;
    if !node1
        .wait_until(remaining(rt, deadline), |r| r.voters() == [1, 2, 3])
        .await
    {
        return Err(fail(format!(
            "node 1's configuration did not reach 3 voters in time: {:?}",
            node1.voters()
        )));
    }
    node3
        .net()
        .leave("3", &addr2, remaining(rt, deadline))
        .await
        .map_err(|e| fail(format!("node 3 could not leave through node 2: {e}")))?;
    if !node1
        .wait_until(remaining(rt, deadline), |r| r.voters() == [1, 2])
        .await
    {
        return Err(fail(format!(
            "node 3 is still in node 1's configuration: {:?}",
            node1.voters()
        )));
    }
    // Node 1 drops its connection to the removed node within a few ticks.
    let writers = node1.clone();
    if !node1
        .wait_until(remaining(rt, deadline), |_| {
            !writers.peer_writers().contains(&3)
        })
        .await
    {
        return Err(fail(format!(
            "node 1 kept a connection to the removed node 3: {:?}",
            node1.peer_writers()
        )));
    }
    let voters = node1.voters();
    Ok(Report {
        writers: node1.peer_writers(),
        peers: voters.iter().filter(|&&id| id != 1).count(),
        voters,
        accepted_connections: [node1, node2, node3]
            .iter()
            .map(|n| n.accepted_connections())
            .sum(),
        redirected_by_node2: node2.applier_stats().redirected,
        address_book: node1.address_book().into_iter().collect(),
    })
}

/// The time left until `deadline` on `rt`'s clock (zero once it has passed).
fn remaining<R: Runtime>(rt: &R, deadline: Instant) -> Duration {
    deadline.saturating_duration_since(rt.now())
}
