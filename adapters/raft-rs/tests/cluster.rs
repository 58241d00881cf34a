//! raft-rs nodes over rafthttp on smol, on loopback.

use std::time::Duration;

use rafthttp_raft::{Network, Node, NodeConfig};
use rafthttp_smol::{HandlerConfig, Layer, Requests, Smol};
use rafthttp_tests::smol::endpoint as endpoint_with;

async fn endpoint() -> (Layer, Requests) {
    endpoint_with(HandlerConfig::default()).await
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
        // check_quorum: a leader that hears no quorum (node 2 never answers) steps down
        // after an election timeout instead of leading a cluster that cannot commit.
        assert!(
            node1
                .wait_until(Duration::from_secs(10), |r| !r.is_leader())
                .await,
            "node 1 still leads without a quorum"
        );
        assert!(node1.close().await, "every task ends at close");
    });
}

#[test]
fn close_ends_every_task_even_with_a_peer_connection_held_open() {
    smol::block_on(async {
        let (net1, req1) = endpoint().await;
        let (net2, _req2) = endpoint().await;
        let node1 =
            Node::bootstrap(Smol::new(), net1.clone(), req1, 1, NodeConfig::default()).unwrap();
        // A peer opens a Raft connection and keeps it open, sending nothing: node 1's reader
        // waits on it.
        let mut held = net2
            .dial(net1.addr(), Duration::from_secs(2))
            .await
            .unwrap();
        let counter = node1.clone();
        assert!(
            node1
                .wait_until(Duration::from_secs(5), |_| counter.accepted_connections()
                    == 1)
                .await
        );
        assert!(node1.close().await, "every task ends at close");
        // The reader is gone, and with it the connection.
        let mut buf = [0u8; 1];
        let read = smol::future::or(
            async { Some(smol::io::AsyncReadExt::read(&mut held, &mut buf).await) },
            async {
                smol::Timer::after(Duration::from_secs(10)).await;
                None
            },
        )
        .await;
        assert!(
            matches!(read, Some(Ok(0)) | Some(Err(_))),
            "the held connection is closed: {read:?}"
        );
        assert!(node1.close().await, "closing twice is harmless");
    });
}
