//! The three-node scenario on tokio (its streams go through tokio-util's compat wrapper).

use std::time::Duration;

use rafthttp_raft::NodeConfig;
use rafthttp_raft::scenario::three_nodes;
use rafthttp_tests::tokio::endpoint;
use rafthttp_tokio::{HandlerConfig, Tokio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_tokio() {
    let endpoints = [
        endpoint(HandlerConfig::default()).await,
        endpoint(HandlerConfig::default()).await,
        endpoint(HandlerConfig::default()).await,
    ];
    let config = NodeConfig::default().with_tick(Duration::from_millis(50));
    let report = three_nodes(Tokio, endpoints, config, Duration::from_secs(8))
        .await
        .unwrap();
    assert_eq!(report.voters, [1, 2]);
    assert_eq!(report.peers, 1);
    assert!(!report.writers.contains(&3), "{:?}", report.writers);
    assert!(report.accepted_connections > 0, "{report:?}");
    assert_eq!(report.redirected_by_node2, 2, "{report:?}");
}
