//! The HTTP side of the key-value service, end to end on one in-process node: a single-node
//! cluster served by `serve` on `127.0.0.1:0`, driven with hand-written HTTP/1.1 requests.
//!
//! Every wait is bounded by [`BOUND`]; no fixed ports, no sleeps.

use std::collections::BTreeMap;
use std::error::Error;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Config, Raft, ServerState};
use rafthttp_kv::app::MAX_VALUE_BYTES;
use rafthttp_kv::{
    ClusterView, Kv, LogStore, StateMachine, Timeouts, TypeConfig, WriteResult, router, serve,
};
use rafthttp_tokio::Handler;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

type TestResult<T = ()> = Result<T, Box<dyn Error + Send + Sync>>;

/// Bound on every wait of the tests.
const BOUND: Duration = Duration::from_secs(10);

/// Fails the test when `future` does not finish within [`BOUND`].
async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> TestResult<T> {
    tokio::time::timeout(BOUND, future)
        .await
        .map_err(|_| format!("{what}: not done within {BOUND:?}").into())
}

// ---------------------------------------------------------------------------------------------
// A network with no peers: a one-node cluster sends no RPC.
// ---------------------------------------------------------------------------------------------

struct NoPeers;

fn unreachable<E: Error>() -> RPCError<u64, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&io::Error::other(
        "single-node test cluster: no peers",
    )))
}

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = Self;

    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> Self {
        Self
    }
}

impl RaftNetwork<TypeConfig> for NoPeers {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(unreachable())
    }
}

// ---------------------------------------------------------------------------------------------
// One node, served on an ephemeral port.
// ---------------------------------------------------------------------------------------------

struct Node {
    addr: SocketAddr,
    raft: Raft<TypeConfig>,
    handler: Handler,
    server: JoinHandle<()>,
}

impl Node {
    /// Node 1 with `timeouts`; `initialize` makes it a one-voter cluster at its own address.
    async fn start(initialize: bool, timeouts: Timeouts) -> TestResult<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let config = Config {
            cluster_name: "kv-app-test".to_owned(),
            ..Config::default()
        }
        .validate()?;
        let state = StateMachine::new();
        let raft = Raft::new(1, Arc::new(config), NoPeers, LogStore::new(), state.clone()).await?;
        if initialize {
            raft.initialize(BTreeMap::from([(1, BasicNode::new(addr))]))
                .await?;
        }
        let kv = Kv::new(1, raft.clone(), state).with_timeouts(timeouts);
        let handler = Handler::new();
        let app = router(kv, handler.clone());
        let server = tokio::spawn(serve(listener, app, Duration::from_secs(5)));
        Ok(Self {
            addr,
            raft,
            handler,
            server,
        })
    }

    /// An initialized node whose leadership is established.
    async fn leader() -> TestResult<Self> {
        let node = Self::start(true, Timeouts::default()).await?;
        let view = node.cluster("?wait=5000&after_term=0").await?;
        assert!(!view.waited_out, "no leader elected: {view:?}");
        assert_eq!(view.leader, Some(1));
        Ok(node)
    }

    async fn send(&self, method: &str, target: &str, body: &str) -> TestResult<Reply> {
        bounded(
            &format!("{method} {target}"),
            request(self.addr, method, target, body),
        )
        .await?
    }

    async fn cluster(&self, query: &str) -> TestResult<ClusterView> {
        let reply = self.send("GET", &format!("/cluster{query}"), "").await?;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        Ok(serde_json::from_str(&reply.body)?)
    }

    async fn write(&self, method: &str, key: &str, value: &str) -> TestResult<WriteResult> {
        let reply = self.send(method, &format!("/kv/{key}"), value).await?;
        assert_eq!(reply.status, 200, "{reply:?}");
        Ok(serde_json::from_str(&reply.body)?)
    }

    async fn stop(self) -> TestResult {
        self.server.abort();
        bounded("raft shutdown", self.raft.shutdown()).await??;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client: one request per connection.
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn request(addr: SocketAddr, method: &str, target: &str, body: &str) -> TestResult<Reply> {
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> TestResult<Reply> {
    let text = std::str::from_utf8(raw)?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no end of head")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty reply")?;
    let status = status_line
        .split(' ')
        .nth(1)
        .ok_or("no status code")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &str) -> TestResult<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(size.trim(), 16)?;
        if size == 0 {
            return Ok(body);
        }
        body.push_str(after.get(..size).ok_or("short chunk")?);
        rest = after.get(size + 2..).ok_or("short chunk")?;
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn put_get_delete() -> TestResult {
    let node = Node::leader().await?;

    let first = node.write("PUT", "greeting", "hello").await?;
    assert_eq!(first.previous, None);
    let second = node.write("PUT", "greeting", "hello, world").await?;
    assert_eq!(second.previous.as_deref(), Some("hello"));
    assert!(second.index > first.index);

    let reply = node.send("GET", "/kv/greeting", "").await?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, "hello, world");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/plain")),
        "{reply:?}"
    );

    let missing = node.send("GET", "/kv/missing", "").await?;
    assert_eq!(missing.status, 404, "{missing:?}");

    let deleted = node.write("DELETE", "greeting", "").await?;
    assert_eq!(deleted.previous.as_deref(), Some("hello, world"));
    assert!(deleted.index > second.index);
    let gone = node.send("GET", "/kv/greeting", "").await?;
    assert_eq!(gone.status, 404, "{gone:?}");
    let again = node.write("DELETE", "greeting", "").await?;
    assert_eq!(again.previous, None);

    // Keys are percent-decoded path segments.
    node.write("PUT", "a%20b", "spaced").await?;
    let spaced = node.send("GET", "/kv/a%20b?consistency=local", "").await?;
    assert_eq!((spaced.status, spaced.body.as_str()), (200, "spaced"));
    node.stop().await
}

#[tokio::test]
async fn local_read_waits_for_min_applied() -> TestResult {
    let node = Node::leader().await?;
    let written = node.write("PUT", "k", "v").await?;

    let target = format!("/kv/k?consistency=local&min_applied={}", written.index);
    let reply = node.send("GET", &target, "").await?;
    assert_eq!((reply.status, reply.body.as_str()), (200, "v"));

    // An index nobody wrote: the wait runs out, 503.
    let target = format!(
        "/kv/k?consistency=local&min_applied={}&wait=50",
        written.index + 1000
    );
    let reply = node.send("GET", &target, "").await?;
    assert_eq!(reply.status, 503, "{reply:?}");

    // /cluster's long poll on the applied index.
    let view = node
        .cluster(&format!("?wait=5000&min_applied={}", written.index))
        .await?;
    assert!(!view.waited_out, "{view:?}");
    assert!(view.last_applied >= Some(written.index), "{view:?}");
    node.stop().await
}

#[tokio::test]
async fn cluster_shows_the_single_leader() -> TestResult {
    let node = Node::leader().await?;
    let addr = node.addr.to_string();

    let view = node.cluster("").await?;
    assert_eq!(view.id, 1);
    assert_eq!(view.leader, Some(1));
    assert_eq!(view.leader_addr.as_deref(), Some(addr.as_str()));
    assert_eq!(view.state, ServerState::Leader);
    assert!(view.term >= 1, "{view:?}");
    assert_eq!(view.voters.len(), 1);
    assert_eq!(view.voters[0].id, 1);
    assert_eq!(view.voters[0].addr, addr);
    assert!(view.learners.is_empty());
    assert!(view.last_applied.is_some() && view.last_log >= view.last_applied);
    assert!(!view.waited_out);

    // The raw JSON has exactly the documented fields.
    let raw = node.send("GET", "/cluster", "").await?;
    let json: serde_json::Value = serde_json::from_str(&raw.body)?;
    let mut keys: Vec<&str> = json
        .as_object()
        .ok_or("not an object")?
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "id",
            "last_applied",
            "last_log",
            "leader",
            "leader_addr",
            "learners",
            "state",
            "term",
            "voters",
            "waited_out"
        ]
    );
    assert_eq!(json["state"], "Leader");

    // No new leader after the current term: the poll runs out and says so.
    let view = node
        .cluster(&format!("?wait=200&after_term={}", view.term))
        .await?;
    assert!(view.waited_out, "{view:?}");
    assert_eq!(view.leader, Some(1));
    node.stop().await
}

#[tokio::test]
async fn uninitialized_node_answers_503() -> TestResult {
    let short = Timeouts {
        write: Duration::from_millis(300),
        read: Duration::from_millis(300),
        ..Timeouts::default()
    };
    let node = Node::start(false, short).await?;

    let put = node.send("PUT", "/kv/k", "v").await?;
    assert_eq!(put.status, 503, "{put:?}");
    assert!(put.header("location").is_none());
    // Refused at once as leaderless, not by the write timeout.
    assert!(put.body.contains("no leader known"), "{put:?}");
    let get = node.send("GET", "/kv/k", "").await?;
    assert_eq!(get.status, 503, "{get:?}");
    assert!(get.body.contains("no leader known"), "{get:?}");
    let delete = node.send("DELETE", "/kv/k", "").await?;
    assert_eq!(delete.status, 503, "{delete:?}");

    // Its own state is still readable, and empty.
    let local = node.send("GET", "/kv/k?consistency=local", "").await?;
    assert_eq!(local.status, 404, "{local:?}");

    let view = node.cluster("").await?;
    assert_eq!(
        (view.id, view.leader, view.leader_addr.as_deref()),
        (1, None, None)
    );
    assert!(view.voters.is_empty(), "{view:?}");
    let view = node.cluster("?wait=100&after_term=0").await?;
    assert!(view.waited_out, "{view:?}");
    node.stop().await
}

#[tokio::test]
async fn bad_requests() -> TestResult {
    let node = Node::leader().await?;

    let too_big = "x".repeat(MAX_VALUE_BYTES + 1);
    let reply = node.send("PUT", "/kv/big", &too_big).await?;
    assert_eq!(reply.status, 413, "{}", reply.status);
    let fits = "x".repeat(MAX_VALUE_BYTES);
    let reply = node.send("PUT", "/kv/big", &fits).await?;
    assert_eq!(reply.status, 200, "{reply:?}");

    let reply = node.send("GET", "/kv/k?consistency=bogus", "").await?;
    assert_eq!(reply.status, 400, "{reply:?}");
    let reply = node.send("GET", "/cluster?wait=soon", "").await?;
    assert_eq!(reply.status, 400, "{reply:?}");
    let reply = node.send("GET", "/nowhere", "").await?;
    assert_eq!(reply.status, 404, "{reply:?}");
    let reply = node.send("POST", "/kv/k", "v").await?;
    assert_eq!(reply.status, 405, "{reply:?}");
    node.stop().await
}

#[tokio::test]
async fn raft_path_upgrades_on_the_same_port() -> TestResult {
    let node = Node::leader().await?;

    // A plain GET on the Raft path reaches the rafthttp handler, which wants an upgrade.
    let reply = node.send("GET", "/raft", "").await?;
    assert_eq!(reply.status, 400, "{reply:?}");

    let accepted = tokio::spawn({
        let handler = node.handler.clone();
        async move { handler.accept().await }
    });
    let mut client = bounded("connect", TcpStream::connect(node.addr)).await??;
    let head = format!(
        "GET /raft HTTP/1.1\r\nHost: {}\r\nUpgrade: raft\r\nConnection: Upgrade\r\n\r\n",
        node.addr
    );
    client.write_all(head.as_bytes()).await?;
    // Read the 101 head byte by byte, so that nothing behind it is consumed.
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = bounded("101 head", client.read(&mut byte)).await??;
        if n == 0 {
            return Err(format!("closed before the head ended: {response:?}").into());
        }
        response.push(byte[0]);
    }
    let response = String::from_utf8(response)?;
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");

    let mut server = bounded("accept", accepted).await???;
    client.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    bounded("server read", server.read_exact(&mut buf)).await??;
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").await?;
    bounded("client read", client.read_exact(&mut buf)).await??;
    assert_eq!(&buf, b"pong");
    node.stop().await
}
