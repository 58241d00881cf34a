//! `node::start` in-process: three nodes in one runtime, on ephemeral ports, joined through a
//! follower, with writes on the leader and local reads on the others; a late joiner installs a
//! snapshot. Every wait is bounded; no fixed ports, no sleeps.

use std::future::Future;
use std::time::Duration;

use rafthttp_kv::client::{Client, ClusterQuery, Read};
use rafthttp_kv::node::{self, Error, NodeOptions, RunningNode, Start};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Bound on every wait.
const BOUND: Duration = Duration::from_secs(30);

async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> TestResult<T> {
    tokio::time::timeout(BOUND, future)
        .await
        .map_err(|_| format!("{what}: not done within {BOUND:?}").into())
}

fn options(id: u64, start: Start) -> NodeOptions {
    let mut options = NodeOptions::new(id, start);
    options.heartbeat = Duration::from_millis(50);
    options.election_min = Duration::from_millis(300);
    options.election_max = Duration::from_millis(600);
    options.snapshot_logs = 20;
    options.keep_logs = 2;
    options
}

async fn start(id: u64, start: Start) -> TestResult<RunningNode> {
    Ok(bounded(&format!("start node {id}"), node::start(options(id, start))).await??)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_join_through_a_follower_and_replicate() -> TestResult {
    let client = Client::new(Duration::from_secs(10));
    let one = start(1, Start::Bootstrap).await?;
    let leader = one.addr().to_string();
    let view = client
        .cluster(&leader, &ClusterQuery::new().after_term(0).wait(BOUND))
        .await?;
    assert_eq!(view.leader, Some(1), "{view:?}");
    assert_eq!(view.leader_addr.as_deref(), Some(leader.as_str()));

    // Enough writes that node 1 snapshots and purges its log: node 2 must install a snapshot.
    let mut last = 0;
    for i in 0..50 {
        last = client
            .put(&leader, &format!("k{i}"), &format!("v{i}"))
            .await?
            .result
            .index;
    }
    let two = start(2, Start::Join(leader.clone())).await?;
    // Node 3 asks node 2, a follower, which redirects it to the leader.
    let three = start(3, Start::Join(two.addr().to_string())).await?;

    let view = client.cluster(&leader, &ClusterQuery::new()).await?;
    let voters: Vec<u64> = view.voters.iter().map(|m| m.id).collect();
    assert_eq!(voters, [1, 2, 3], "{view:?}");
    assert!(view.learners.is_empty(), "{view:?}");
    for member in &view.voters {
        let node = [&one, &two, &three][usize::try_from(member.id - 1)?];
        assert_eq!(member.addr, node.addr().to_string());
    }
    let snapshot = two.raft().metrics().borrow().snapshot;
    assert!(
        snapshot.is_some_and(|log_id| log_id.index >= 20),
        "node 2 joined without a snapshot: {snapshot:?}"
    );

    // A write through a follower is redirected to the leader.
    let written = client.put(&two.addr().to_string(), "late", "yes").await?;
    assert_eq!(written.addr, leader);
    assert!(written.result.index > last);
    for node in [&two, &three] {
        let addr = node.addr().to_string();
        let read = Read::Local {
            min_applied: Some(written.result.index),
            wait: Some(BOUND),
        };
        assert_eq!(
            client.get(&addr, "late", read).await?.as_deref(),
            Some("yes")
        );
        assert_eq!(
            client.get(&addr, "k0", Read::local()).await?.as_deref(),
            Some("v0")
        );
        assert_eq!(
            client.get(&addr, "k49", Read::local()).await?.as_deref(),
            Some("v49")
        );
        assert_eq!(client.get(&addr, "absent", Read::local()).await?, None);
        // A linearizable read from a follower follows the redirect.
        assert_eq!(
            client
                .get(&addr, "k7", Read::Linearizable)
                .await?
                .as_deref(),
            Some("v7")
        );
        assert_eq!(
            node.kv().state_machine().get("late").as_deref(),
            Some("yes")
        );
    }

    // A leave through a follower: node 3 goes, nodes 1 and 2 stay.
    three
        .layer()
        .leave("3", &two.addr().to_string(), BOUND)
        .await?;
    let view = client.cluster(&leader, &ClusterQuery::new()).await?;
    let voters: Vec<u64> = view.voters.iter().map(|m| m.id).collect();
    assert_eq!(voters, [1, 2], "{view:?}");

    for node in [three, two, one] {
        bounded("shutdown", node.shutdown()).await?;
    }
    Ok(())
}

#[tokio::test]
async fn an_unspecified_address_is_refused() -> TestResult {
    let mut options = NodeOptions::new(1, Start::Bootstrap);
    options.listen = "0.0.0.0:0".to_owned();
    match node::bind(options).await {
        Err(Error::Unspecified(addr)) => assert!(addr.ip().is_unspecified()),
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_join_that_finds_nobody_fails_within_its_timeout() -> TestResult {
    // A port nobody listens on: bind one, learn it, close it.
    let free = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut options = options(9, Start::Join(free.to_string()));
    options.join_timeout = Duration::from_millis(300);
    match bounded("join", node::start(options)).await? {
        Err(Error::Join { target, .. }) => assert_eq!(target, free.to_string()),
        other => panic!("{other:?}"),
    }
    Ok(())
}
