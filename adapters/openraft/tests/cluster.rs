//! openraft clusters over rafthttp, in one process, on loopback: over TLS (`serve_tls` and
//! `TlsDialer`), behind the axum mount, and over plain `serve`. Membership goes through HTTP
//! (joins through followers, leaves, repeated joins), a new node catches up by snapshot, a
//! leader dies during a join, and a bad frame costs its own connection only.
//!
//! Every wait is bounded by [`WAIT`]; reaching it fails the test.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use openraft::{BasicNode, Config, Raft, RaftMetrics, ServerState, SnapshotPolicy};
use rafthttp_kv::{LogStore, Request, StateMachine, TypeConfig};
use rafthttp_openraft::{Network, NetworkConfig, apply_membership, serve};
use rafthttp_tests::pki::Pki;
use rafthttp_tokio::tokio_rustls::TlsAcceptor;
use rafthttp_tokio::{
    Dialer, Handler, HandlerConfig, Layer, MembershipError, TcpDialer, TlsDialer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(30);

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(WAIT, f).await {
        Ok(out) => out,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// How a node serves HTTP.
#[derive(Clone)]
enum Transport {
    Plain,
    Tls(Arc<Pki>),
    Axum,
}

fn raft_config(snapshots: bool) -> Arc<Config> {
    let mut config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        install_snapshot_timeout: 1000,
        ..Config::default()
    };
    if snapshots {
        config.snapshot_policy = SnapshotPolicy::LogsSinceLast(10);
        config.max_in_snapshot_log_to_keep = 0;
        config.purge_batch_size = 1;
    }
    Arc::new(config.validate().expect("valid raft config"))
}

/// One node: its raft, state machine, HTTP handler and layer, and the tasks serving them.
struct Node<D: Dialer<rafthttp_tokio::Stream> + Clone + 'static> {
    id: u64,
    addr: String,
    raft: Raft<TypeConfig>,
    state: StateMachine,
    handler: Handler,
    layer: Layer<D>,
    tasks: Vec<JoinHandle<()>>,
}

impl<D: Dialer<rafthttp_tokio::Stream> + Clone + 'static> Node<D> {
    /// Stops the node as a crash would look from outside: the listener is gone (connections
    /// refused), accepted streams end, raft stops.
    async fn kill(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.handler.close();
        let _ = self.raft.shutdown().await;
    }

    fn metrics(&self) -> RaftMetrics<u64, BasicNode> {
        self.raft.metrics().borrow().clone()
    }

    async fn wait_for(
        &self,
        what: &str,
        mut check: impl FnMut(&RaftMetrics<u64, BasicNode>) -> bool,
    ) {
        let mut rx = self.raft.metrics();
        within(what, rx.wait_for(|m| check(m)))
            .await
            .unwrap_or_else(|_| panic!("raft stopped while waiting for {what}"));
    }

    async fn write(&self, key: &str, value: &str) -> u64 {
        let request = Request::Set {
            key: key.into(),
            value: value.into(),
        };
        within("a write", self.raft.client_write(request))
            .await
            .expect("write on the leader")
            .log_id
            .index
    }

    fn voters(&self) -> Vec<u64> {
        self.metrics()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }
}

async fn start<D: Dialer<rafthttp_tokio::Stream> + Clone + 'static>(
    id: u64,
    transport: &Transport,
    dialer: D,
    snapshots: bool,
) -> Node<D> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let handler = Handler::with_config(HandlerConfig::default().with_timeout(WAIT));
    let mut tasks = Vec::new();
    let server = handler.clone();
    tasks.push(match transport {
        Transport::Plain => tokio::spawn(async move { server.serve(listener).await }),
        Transport::Tls(pki) => {
            let acceptor = TlsAcceptor::from(pki.server(false));
            tokio::spawn(async move { server.serve_tls(listener, acceptor).await })
        }
        Transport::Axum => {
            let router = Router::new().route_service("/raft", server);
            tokio::spawn(rafthttp_kv::app::serve(
                listener,
                router,
                Duration::from_secs(5),
            ))
        }
    });
    let layer = Layer::new(&addr, handler.clone(), dialer).expect("layer");
    let config = raft_config(snapshots);
    let network =
        Network::new(layer.clone(), id, &config, NetworkConfig::default()).expect("network");
    let state = StateMachine::new();
    let raft = Raft::new(id, config, network, LogStore::new(), state.clone())
        .await
        .expect("raft");
    tasks.push(tokio::spawn(serve(
        raft.clone(),
        layer.clone(),
        NetworkConfig::default(),
    )));
    tasks.push(tokio::spawn(apply_membership(
        raft.clone(),
        handler.requests(),
    )));
    Node {
        id,
        addr,
        raft,
        state,
        handler,
        layer,
        tasks,
    }
}

async fn bootstrap<D: Dialer<rafthttp_tokio::Stream> + Clone + 'static>(node: &Node<D>) {
    node.raft
        .initialize(BTreeMap::from([(node.id, BasicNode::new(&node.addr))]))
        .await
        .expect("initialize");
    node.wait_for("node 1 to lead", |m| m.state == ServerState::Leader)
        .await;
}

async fn join<D: Dialer<rafthttp_tokio::Stream> + Clone + 'static>(node: &Node<D>, through: &str) {
    within(
        "a join",
        node.layer.join(&node.id.to_string(), through, WAIT),
    )
    .await
    .unwrap_or_else(|e| panic!("node {} joins through {through}: {e}", node.id));
}

/// Three nodes: 1 bootstraps, 2 joins through 1, 3 joins through 2 (a follower: redirected).
async fn three<D: Dialer<rafthttp_tokio::Stream> + Clone + 'static>(
    transport: &Transport,
    dialer: impl Fn() -> D,
) -> [Node<D>; 3] {
    let n1 = start(1, transport, dialer(), false).await;
    bootstrap(&n1).await;
    let n2 = start(2, transport, dialer(), false).await;
    join(&n2, &n1.addr).await;
    let n3 = start(3, transport, dialer(), false).await;
    join(&n3, &n2.addr).await;
    assert_eq!(n1.voters(), [1, 2, 3]);
    [n1, n2, n3]
}

/// Writes on the leader and waits until every node applied the write.
async fn write_everywhere<D: Dialer<rafthttp_tokio::Stream> + Clone + 'static>(
    leader: &Node<D>,
    nodes: &[&Node<D>],
    key: &str,
) {
    let index = leader.write(key, "v").await;
    for node in nodes {
        node.wait_for("the write to replicate", |m| {
            m.last_applied.is_some_and(|l| l.index >= index)
        })
        .await;
        assert_eq!(
            node.state.get(key).as_deref(),
            Some("v"),
            "node {}",
            node.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_over_tls_joins_through_a_follower_and_replicates() {
    let pki = Arc::new(Pki::new());
    let client = pki.client(false);
    let transport = Transport::Tls(Arc::clone(&pki));
    let [n1, n2, n3] = three(&transport, || TlsDialer::new(Arc::clone(&client))).await;
    write_everywhere(&n1, &[&n1, &n2, &n3], "tls").await;
    // The Raft streams are TLS: node 2 holds node 1's streams, dialed with the TLS dialer.
    let leave = within("a leave", n3.layer.leave("3", &n2.addr, WAIT)).await;
    leave.expect("leave through a follower");
    n1.wait_for("node 3 to be gone", |m| {
        m.membership_config.membership().get_node(&3).is_none()
    })
    .await;
    assert_eq!(n1.voters(), [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_behind_the_axum_mount() {
    let [n1, n2, n3] = three(&Transport::Axum, || TcpDialer).await;
    write_everywhere(&n1, &[&n1, &n2, &n3], "axum").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_requests_are_idempotent_and_checked() {
    let [n1, n2, n3] = three(&Transport::Plain, || TcpDialer).await;
    let log = n1.metrics().last_log_index;

    // A current voter joining again at the same address: 200, and nothing is written.
    join(&n2, &n3.addr).await;
    assert_eq!(
        n1.metrics().last_log_index,
        log,
        "no membership change was written"
    );

    // The same id at another address: the member moves there (hashicorp/raft's rule), and
    // back again.
    let at = |addr: String| {
        move |m: &RaftMetrics<u64, BasicNode>| {
            m.membership_config
                .membership()
                .get_node(&2)
                .is_some_and(|node| node.addr == addr)
        }
    };
    let other = Layer::new("127.0.0.1:9", n2.handler.clone(), TcpDialer).expect("layer");
    within("a join", other.join("2", &n3.addr, WAIT))
        .await
        .expect("a move, through a follower");
    n1.wait_for("node 2 at its new address", at("127.0.0.1:9".into()))
        .await;
    join(&n2, &n1.addr).await;
    n1.wait_for("node 2 back at its address", at(n2.addr.clone()))
        .await;
    assert_eq!(n1.voters(), [1, 2, 3]);
    // A node id must be a number.
    let e = within("a join", other.join("two", &n1.addr, WAIT))
        .await
        .expect_err("not a number");
    assert!(e.to_string().contains("http code 403"), "{e}");

    // Leave, then leave again: both 200.
    within("a leave", n3.layer.leave("3", &n1.addr, WAIT))
        .await
        .expect("leave");
    within("a leave", n3.layer.leave("3", &n2.addr, WAIT))
        .await
        .expect("leave of a non-member");
    assert_eq!(n1.voters(), [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaderless_nodes_answer_503_until_the_deadline() {
    // An uninitialized node knows no leader: 503, retried by the client until its deadline,
    // which then reports the 503.
    let lonely = start(1, &Transport::Plain, TcpDialer, false).await;
    let joiner = start(2, &Transport::Plain, TcpDialer, false).await;
    let e = joiner
        .layer
        .join("2", &lonely.addr, Duration::from_millis(400))
        .await
        .expect_err("no leader");
    assert!(
        matches!(
            &e,
            MembershipError::Protocol(rafthttp_tokio::core::MembershipError::Status {
                status: 503,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("node is not leader, current leader unknown"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_without_elections_keep_redirecting_to_the_dead_leader() {
    // openraft 0.9 followers keep naming the leader they last heard from until they elect
    // another. With elections off they never do: a join through them is redirected to the
    // dead leader again and again (each time the client starts over from the follower), and
    // ends at its deadline with the dead leader's refusal.
    let [n1, n2, n3] = three(&Transport::Plain, || TcpDialer).await;
    n2.raft.runtime_config().elect(false);
    n3.raft.runtime_config().elect(false);
    let dead = n1.addr.clone();
    n1.kill().await;
    let joiner = start(4, &Transport::Plain, TcpDialer, false).await;
    let e = joiner
        .layer
        .join("4", &n2.addr, Duration::from_secs(1))
        .await
        .expect_err("no leader");
    let MembershipError::Io { url, source, .. } = &e else {
        panic!("{e:?}");
    };
    assert!(url.starts_with(&format!("http://{dead}/raft?id=4")), "{e}");
    assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    assert!(n2.voters().contains(&1) && !n2.voters().contains(&4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_through_a_follower_survives_the_leaders_death() {
    let [n1, n2, n3] = three(&Transport::Plain, || TcpDialer).await;
    let term = n2.metrics().current_term;
    n1.kill().await;
    // Node 2 may still redirect to the dead leader: the join retries from node 2 until the
    // survivors elect a new leader, which takes it.
    let n4 = start(4, &Transport::Plain, TcpDialer, false).await;
    join(&n4, &n2.addr).await;
    n2.wait_for("a new leader", |m| {
        m.current_term > term && m.current_leader.is_some()
    })
    .await;
    let leader = n2.metrics().current_leader.expect("leader");
    let leader = if leader == 2 { &n2 } else { &n3 };
    assert!(leader.voters().contains(&4), "{:?}", leader.voters());
    // Remove the dead node, then the three live ones make progress.
    within("a leave", n4.layer.leave("1", &n4.addr, WAIT))
        .await
        .expect("leave of the dead node");
    write_everywhere(leader, &[&n2, &n3, &n4], "after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_catches_up_by_snapshot() {
    let n1 = start(1, &Transport::Plain, TcpDialer, true).await;
    bootstrap(&n1).await;
    let mut last = 0;
    for i in 0..40 {
        last = n1.write(&format!("k{i}"), "v").await;
    }
    n1.raft.trigger().snapshot().await.expect("snapshot");
    n1.wait_for("a snapshot", |m| {
        m.snapshot.is_some_and(|s| s.index >= last)
    })
    .await;
    n1.raft.trigger().purge_log(last).await.expect("purge");
    n1.wait_for("the log purged", |m| {
        m.purged.is_some_and(|p| p.index >= last)
    })
    .await;

    // The entries are gone from the leader's log: only a snapshot can bring them.
    let n2 = start(2, &Transport::Plain, TcpDialer, true).await;
    join(&n2, &n1.addr).await;
    n2.wait_for("the snapshot applied", |m| {
        m.last_applied.is_some_and(|l| l.index >= last)
    })
    .await;
    assert_eq!(n2.state.len(), 40);
    assert_eq!(n2.state.get("k39").as_deref(), Some("v"));
    assert!(n2.metrics().snapshot.is_some_and(|s| s.index >= last));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_frame_costs_only_its_connection() {
    let [n1, n2, n3] = three(&Transport::Plain, || TcpDialer).await;
    let mut stream = within("a dial", n3.layer.dial(&n1.addr, WAIT))
        .await
        .expect("dial");
    // A frame announcing a request of kind 0x42, which nobody speaks.
    let mut frame = 9u32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0x42]);
    stream.write_all(&frame).await.expect("write");
    let mut rest = Vec::new();
    let read = within("the server to close", stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok_and(|n| n == 0), "closed without an answer");
    // An over-limit length too.
    let mut stream = within("a dial", n3.layer.dial(&n1.addr, WAIT))
        .await
        .expect("dial");
    stream
        .write_all(&u32::MAX.to_be_bytes())
        .await
        .expect("write");
    let read = within("the server to close", stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok_and(|n| n == 0), "closed without an answer");
    // The cluster goes on.
    write_everywhere(&n1, &[&n1, &n2, &n3], "still").await;
}
