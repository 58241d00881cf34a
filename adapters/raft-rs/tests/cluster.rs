//! Three raft nodes over rafthttp on smol, on loopback: the Go docs' example as a test.

use std::time::Duration;

use rafthttp_raft::scenario::three_nodes;
use rafthttp_raft::{Network, Node, NodeConfig};
use rafthttp_smol::{HandlerConfig, Layer, Requests, Smol};
use rafthttp_tests::smol::endpoint as endpoint_with;

async fn endpoint() -> (Layer, Requests) {
    endpoint_with(HandlerConfig::default()).await
}

#[test]
fn three_nodes_join_through_a_follower_and_leave() {
    smol::block_on(async {
        let endpoints = [endpoint().await, endpoint().await, endpoint().await];
        let addr1 = endpoints[0].0.addr().to_owned();
        let addr2 = endpoints[1].0.addr().to_owned();
        let config = NodeConfig::default().with_tick(Duration::from_millis(50));
        let report = three_nodes(Smol::new(), endpoints, config, Duration::from_secs(8))
            .await
            .unwrap();
        assert_eq!(report.voters, [1, 2]);
        assert_eq!(report.peers, 1);
        assert!(!report.writers.contains(&3), "{:?}", report.writers);
        assert!(report.accepted_connections > 0, "{report:?}");
        // Node 3's join and leave both went through node 2, which redirected them.
        assert_eq!(report.redirected_by_node2, 2, "{report:?}");
        assert_eq!(report.address_book, [(1, addr1), (2, addr2)]);
    });
}

#[test]
fn a_change_that_cannot_commit_times_out_with_go_text() {
    // Case 37 end to end: node 1 leads {1, 2}, node 2 never answers (nobody runs raft behind
    // its handler), so adding node 3 cannot commit and the handler answers the timeout.
    smol::block_on(async {
        let config = HandlerConfig::default().with_timeout(Duration::from_millis(300));
        let (net1, req1) = endpoint_with(config).await;
        let (net2, _req2) = endpoint().await;
        let (net3, _req3) = endpoint().await;
        let node1 =
            Node::bootstrap(Smol::new(), net1.clone(), req1, 1, NodeConfig::default()).unwrap();
        assert!(
            node1
                .wait_until(Duration::from_secs(2), |r| r.is_leader())
                .await
        );
        Network::join(&net2, "2", net1.addr(), Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(node1.voters(), [1, 2]);
        let err = Network::join(&net3, "3", net1.addr(), Duration::from_secs(2))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("403")
                && text.contains("failed to join server 3: timeout waiting for membership change"),
            "{text}"
        );
        node1.close();
    });
}
