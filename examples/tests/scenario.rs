//! The three-node scenario (`rafthttp_examples::scenario`) on smol and on tokio (whose streams
//! go through tokio-util's compat wrapper).

use std::time::Duration;

use rafthttp_examples::scenario::{Report, three_nodes};
use rafthttp_raft::NodeConfig;
use rafthttp_smol::{HandlerConfig, Layer, Requests, Smol};
use rafthttp_tokio::Tokio;

async fn endpoint() -> (Layer, Requests) {
    rafthttp_tests::smol::endpoint(HandlerConfig::default()).await
}

/// What every run of the scenario must end with: nodes 1 and 2 at `addrs`, node 3 gone (and
/// its connection dropped), node 3's join and leave both redirected by node 2.
fn check(report: &Report, addrs: [String; 2]) {
    assert_eq!(report.voters, [1, 2]);
    assert_eq!(report.peers, 1);
    assert!(!report.writers.contains(&3), "{:?}", report.writers);
    assert!(report.accepted_connections > 0, "{report:?}");
    assert_eq!(report.redirected_by_node2, 2, "{report:?}");
    let [addr1, addr2] = addrs;
    assert_eq!(report.address_book, [(1, addr1), (2, addr2)]);
}

#[test]
fn three_nodes_join_through_a_follower_and_leave() {
    smol::block_on(async {
        let endpoints = [endpoint().await, endpoint().await, endpoint().await];
        let addrs = [0, 1].map(|i| endpoints[i].0.addr().to_owned());
        let config = NodeConfig::default().with_tick(Duration::from_millis(50));
        let report = three_nodes(Smol::new(), endpoints, config, Duration::from_secs(8))
            .await
            .unwrap();
        check(&report, addrs);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_tokio() {
    let endpoints = [
        rafthttp_tests::tokio::endpoint(rafthttp_tokio::HandlerConfig::default()).await,
        rafthttp_tests::tokio::endpoint(rafthttp_tokio::HandlerConfig::default()).await,
        rafthttp_tests::tokio::endpoint(rafthttp_tokio::HandlerConfig::default()).await,
    ];
    let addrs = [0, 1].map(|i| endpoints[i].0.addr().to_owned());
    let config = NodeConfig::default().with_tick(Duration::from_millis(50));
    let report = three_nodes(Tokio, endpoints, config, Duration::from_secs(8))
        .await
        .unwrap();
    check(&report, addrs);
}
