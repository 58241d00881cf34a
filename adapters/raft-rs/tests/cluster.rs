//! raft-rs nodes over rafthttp on smol, on loopback.

use std::time::Duration;

use rafthttp_raft::{Network, Node, NodeConfig, raft};
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

/// A key-value map: `key=value` sets, and apply returns the previous value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Kv(std::collections::BTreeMap<String, String>);

impl rafthttp_raft::StateMachine for Kv {
    type Output = Option<String>;

    fn apply(&mut self, _index: u64, data: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(data);
        let (key, value) = text.split_once('=')?;
        self.0.insert(key.to_owned(), value.to_owned())
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect::<String>()
            .into_bytes()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), rafthttp_raft::RestoreError> {
        self.0 = String::from_utf8_lossy(data)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(())
    }
}

type KvNode = Node<Smol, Layer, Kv>;

#[test]
fn application_data_is_replicated_read_linearizably_and_snapshotted_to_a_late_joiner() {
    use rafthttp_raft::{ProposeError, ReadError};

    smol::block_on(async {
        let wait = Duration::from_secs(10);
        let config = NodeConfig::default()
            .with_tick(Duration::from_millis(20))
            .with_compact_after(4);
        let (net1, req1) = endpoint().await;
        let (net2, req2) = endpoint().await;
        let (net3, req3) = endpoint().await;
        let node1 =
            KvNode::bootstrap_with(Smol::new(), net1.clone(), req1, 1, Kv::default(), config)
                .unwrap();
        assert!(node1.wait_until(wait, |r| r.is_leader()).await);
        let node2 = KvNode::joining_with(Smol::new(), net2.clone(), req2, 2, Kv::default(), config)
            .unwrap();
        Network::join(&net2, "2", net1.addr(), wait).await.unwrap();

        // Proposals return the state machine's output once applied.
        assert_eq!(node1.propose(b"a=1".to_vec(), wait).await, Ok(None));
        assert_eq!(
            node1.propose(b"a=2".to_vec(), wait).await,
            Ok(Some("1".to_owned()))
        );
        // A follower refuses proposals and names the leader.
        assert_eq!(
            node2.propose(b"a=3".to_vec(), wait).await,
            Err(ProposeError::NotLeader {
                leader: Some(net1.addr().to_owned())
            })
        );
        // A caller that gives up at once gets `Timeout` (its entry may still commit), and
        // the proposals after it go on.
        assert_eq!(
            node1.propose(b"z=0".to_vec(), Duration::ZERO).await,
            Err(ProposeError::Timeout)
        );
        // A read on the follower, confirmed through the leader, sees every committed write.
        let read = node2.read(wait, |kv| kv.0.get("a").cloned()).await;
        assert_eq!(read, Ok(Some("2".to_owned())));

        // Enough writes for the log to be compacted; then node 3 joins and can only catch up
        // by a snapshot of the state, sent over rafthttp.
        for i in 0..10 {
            node1
                .propose(format!("k{i}={i}").into_bytes(), wait)
                .await
                .unwrap();
        }
        let first = node1.with_replica(|r| raft::Storage::first_index(r.store()).unwrap());
        assert!(first > 2, "the log was compacted: first index {first}");
        let node3 = KvNode::joining_with(Smol::new(), net3.clone(), req3, 3, Kv::default(), config)
            .unwrap();
        Network::join(&net3, "3", net2.addr(), wait).await.unwrap();
        // Reads need a known leader: node 3 learns it from the leader's first message.
        assert!(node3.wait_until(wait, |r| r.leader_id().is_some()).await);
        let expected = node1.local_state(Clone::clone);
        let read = node3.read(wait, Clone::clone).await.unwrap();
        assert_eq!(read, expected);
        // 11 keys, and `z`: the entry whose caller gave up was proposed, and committed.
        assert_eq!(read.0.len(), 12);

        // Closed nodes refuse at once.
        for node in [&node1, &node2, &node3] {
            assert!(node.close().await);
        }
        assert_eq!(
            node1.propose(b"late=1".to_vec(), wait).await,
            Err(ProposeError::Closed)
        );
        assert_eq!(node3.read(wait, |_| ()).await, Err(ReadError::Closed));
    });
}

/// Node `id` on a `FileLog` in `dirs[id - 1]`, over `endpoint`.
fn open_on_file(
    dirs: &[tempfile::TempDir],
    (net, requests): (Layer, Requests),
    id: u64,
    start: rafthttp_raft::Start,
    config: NodeConfig,
) -> Node<Smol, Layer, Kv, rafthttp_raft::FileLog> {
    let log = rafthttp_raft::FileLog::open(dirs[id as usize - 1].path()).unwrap();
    Node::open(
        Smol::new(),
        net,
        requests,
        id,
        Kv::default(),
        log,
        start,
        config,
    )
    .unwrap()
}

async fn endpoint_at(addr: &str) -> (Layer, Requests, smol::Task<()>) {
    rafthttp_tests::smol::endpoint_at(addr, HandlerConfig::default()).await
}

#[test]
fn a_node_on_a_file_log_restarts_with_its_state_and_catches_up() {
    use rafthttp_raft::Start;

    smol::block_on(async {
        let wait = Duration::from_secs(10);
        let config = NodeConfig::default()
            .with_tick(Duration::from_millis(20))
            .with_compact_after(4);
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let open = |endpoint, id: u64, start| open_on_file(&dirs, endpoint, id, start, config);
        let (net1, req1, _task1) = endpoint_at("127.0.0.1:0").await;
        let node1 = open((net1.clone(), req1), 1, Start::Bootstrap);
        assert!(node1.wait_until(wait, |r| r.is_leader()).await);
        let mut nodes = vec![node1.clone()];
        let mut tasks = Vec::new();
        for id in 2..=3 {
            let (net, req, task) = endpoint_at("127.0.0.1:0").await;
            nodes.push(open((net.clone(), req), id, Start::Join));
            tasks.push(task);
            Network::join(&net, &id.to_string(), net1.addr(), wait)
                .await
                .unwrap();
        }
        for i in 0..6 {
            node1
                .propose(format!("k{i}={i}").into_bytes(), wait)
                .await
                .unwrap();
        }
        // Node 3 catches up, then stops; its server goes with it, freeing its address.
        let node3 = nodes.pop().unwrap();
        let target = node1.applied();
        assert!(node3.wait_until(wait, |r| r.applied() >= target).await);
        let addr3 = node3.net().addr().to_owned();
        assert!(node3.close().await);
        drop(tasks.pop());
        for i in 6..12 {
            node1
                .propose(format!("k{i}={i}").into_bytes(), wait)
                .await
                .unwrap();
        }
        // Started again on its directory and address: the log is not empty, so `Start::Join`
        // is ignored and the node rejoins the cluster it was in.
        let (net3, req3, _task3) = endpoint_at(&addr3).await;
        let node3 = open((net3, req3), 3, Start::Join);
        assert!(
            node3.local_state(|kv| kv.0.len()) >= 6,
            "restored from its log"
        );
        let target = node1.applied();
        assert!(node3.wait_until(wait, |r| r.applied() >= target).await);
        assert_eq!(
            node3.read(wait, Clone::clone).await.unwrap(),
            node1.local_state(Clone::clone)
        );
        assert_eq!(node3.local_state(|kv| kv.0.len()), 12);
        for node in nodes.iter().chain([&node3]) {
            assert!(node.close().await);
        }
    });
}

#[test]
fn a_node_restarted_on_another_address_moves_there() {
    use rafthttp_raft::Start;

    smol::block_on(async {
        let wait = Duration::from_secs(10);
        let config = NodeConfig::default().with_tick(Duration::from_millis(20));
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let open = |endpoint, id: u64, start| open_on_file(&dirs, endpoint, id, start, config);
        let (net1, req1, _task1) = endpoint_at("127.0.0.1:0").await;
        let node1 = open((net1.clone(), req1), 1, Start::Bootstrap);
        assert!(node1.wait_until(wait, |r| r.is_leader()).await);
        let (net2, req2, _task2) = endpoint_at("127.0.0.1:0").await;
        let node2 = open((net2.clone(), req2), 2, Start::Join);
        Network::join(&net2, "2", net1.addr(), wait).await.unwrap();
        let (net3, req3, task3) = endpoint_at("127.0.0.1:0").await;
        let node3 = open((net3.clone(), req3), 3, Start::Join);
        Network::join(&net3, "3", net1.addr(), wait).await.unwrap();
        node1.propose(b"a=1".to_vec(), wait).await.unwrap();
        let target = node1.applied();
        assert!(node3.wait_until(wait, |r| r.applied() >= target).await);
        assert!(!node3.update_address(wait).await.unwrap(), "not moved");

        // Node 3 stops, and starts again from its directory on another port: nothing listens
        // on the old one any more.
        let old = net3.addr().to_owned();
        assert!(node3.close().await);
        drop(task3);
        let (net3, req3, _task3) = endpoint_at("127.0.0.1:0").await;
        assert_ne!(net3.addr(), old);
        let node3 = open((net3.clone(), req3), 3, Start::Join);
        assert_eq!(node3.address_book().get(&3), Some(&old));
        assert!(node3.update_address(wait).await.unwrap(), "moved");
        for node in [&node1, &node2] {
            let moved = node
                .wait_until(wait, |r| r.book().get(3).as_deref() == Some(net3.addr()))
                .await;
            assert!(moved, "{:?}", node.address_book());
        }
        // The leader reaches it at the new address.
        node1.propose(b"b=2".to_vec(), wait).await.unwrap();
        let target = node1.applied();
        assert!(node3.wait_until(wait, |r| r.applied() >= target).await);
        assert_eq!(
            node3.local_state(|kv| kv.0.get("b").cloned()),
            Some("2".into())
        );
        assert_eq!(node1.with_replica(|r| r.voters()), [1, 2, 3]);
        for node in [&node1, &node2, &node3] {
            assert!(node.close().await);
        }
    });
}

#[test]
fn a_proposal_dropped_while_it_leads_its_batch_is_still_handed_to_raft() {
    smol::block_on(async {
        let wait = Duration::from_secs(10);
        // No ticks: nothing but the proposals themselves makes the node process.
        let config = NodeConfig::default().with_tick(Duration::from_secs(3600));
        let (net, requests) = endpoint().await;
        let node =
            KvNode::bootstrap_with(Smol::new(), net, requests, 1, Kv::default(), config).unwrap();
        assert!(
            node.with_replica(|r| r.is_leader()),
            "a lone voter leads at once"
        );
        // The first proposal of a batch is dropped while it gives way to the others: the
        // ready loop takes the batch instead (without it, the proposal below would wait for a
        // tick that never comes).
        let dropped = smol::future::poll_once(node.propose(b"a=1".to_vec(), wait)).await;
        assert!(dropped.is_none(), "still pending when dropped");
        // Queued behind it: answered all the same.
        assert_eq!(node.propose(b"b=2".to_vec(), wait).await, Ok(None));
        // Whether the dropped one was proposed depends on whether its caller was gone by then,
        // as for any proposal whose caller gives up.
        assert_eq!(
            node.local_state(|kv| kv.0.get("b").cloned()),
            Some("2".into())
        );
        assert!(node.close().await);
    });
}
