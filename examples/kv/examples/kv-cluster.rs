//! A three-process cluster of the key-value service on loopback, and a leader's death.
//!
//! ```sh
//! cargo run -p rafthttp-kv --example kv-cluster
//! ```
//!
//! The launcher re-executes itself (`kv-cluster node <flags>` runs one node, as the
//! `rafthttp-kv` binary does) to start three processes on `127.0.0.1:0`: node 1 bootstraps,
//! nodes 2 and 3 join through it. It writes a few keys through a follower (which redirects to
//! the leader), kills the leader with SIGKILL, waits for the survivors to elect a new one, and
//! reads the keys back: linearizably on the new leader, locally on the other survivor. Every
//! child is killed on the way out, also on failure. The nodes' logs go to files in a temporary
//! directory, removed after a successful run.

use std::error::Error;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use rafthttp_kv::client::{Client, ClusterQuery, Read};
use rafthttp_kv::process::NodeProcess;
use rafthttp_kv::{ClusterView, NodeId};

type Result<T = (), E = Box<dyn Error>> = std::result::Result<T, E>;

/// Bound on each wait.
const BOUND: Duration = Duration::from_secs(20);

/// Short timings for the demo.
const TIMINGS: [&str; 6] = [
    "--heartbeat-ms",
    "100",
    "--election-min-ms",
    "500",
    "--election-max-ms",
    "1000",
];

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("node") {
        return rafthttp_kv::cli::main_with_args(args.skip(1));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(demo()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kv-cluster failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The nodes; dropping it kills and reaps every child.
struct Cluster {
    exe: PathBuf,
    logs: PathBuf,
    nodes: Vec<NodeProcess>,
}

impl Cluster {
    async fn spawn(&mut self, id: NodeId, start: &[&str]) -> Result<usize> {
        let log = File::create(self.logs.join(format!("node-{id}.log")))?;
        let mut command = Command::new(&self.exe);
        command
            .arg("node")
            .args(["--id", &id.to_string()])
            .args(start)
            .args(TIMINGS)
            .stderr(Stdio::from(log));
        let node = NodeProcess::spawn(command, id, BOUND).await?;
        println!(
            "node {id}: pid {}, listening on {}",
            node.pid(),
            node.addr()
        );
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    fn node(&self, id: NodeId) -> Result<&NodeProcess> {
        self.nodes
            .iter()
            .find(|node| node.id() == id)
            .ok_or_else(|| format!("node {id} is not running").into())
    }
}

async fn demo() -> Result {
    let started = Instant::now();
    let client = Client::new(Duration::from_secs(5));
    let logs = std::env::temp_dir().join(format!("rafthttp-kv-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    let mut cluster = Cluster {
        exe: std::env::current_exe()?,
        logs,
        nodes: Vec::new(),
    };
    println!(
        "node logs in {} (removed after a successful run)",
        cluster.logs.display()
    );

    let first = cluster.spawn(1, &["--bootstrap"]).await?;
    cluster.nodes[first].ready(BOUND).await?;
    let seed = cluster.nodes[first].addr().to_owned();
    // Both join at once; the leader applies one membership change at a time.
    let two = cluster.spawn(2, &["--join", &seed]).await?;
    let three = cluster.spawn(3, &["--join", &seed]).await?;
    cluster.nodes[two].ready(BOUND).await?;
    cluster.nodes[three].ready(BOUND).await?;
    let view = wait_for_voters(&client, &seed, &[1, 2, 3]).await?;
    println!(
        "cluster: voters {:?}, leader node {} in term {}",
        ids(&view),
        view.leader.unwrap_or_default(),
        view.term
    );

    // Writes through node 3, which redirects them to the leader unless it leads itself.
    let entry = cluster.node(3)?.addr().to_owned();
    let pairs = [
        ("apple", "red"),
        ("banana", "yellow"),
        ("cherry", "dark red"),
    ];
    let mut last = 0;
    for (key, value) in pairs {
        let written = client.put(&entry, key, value).await?;
        println!(
            "PUT {key} = {value:?} via node 3: index {}, answered by {}",
            written.result.index, written.addr
        );
        last = written.result.index;
    }

    let view = client.cluster(&seed, &ClusterQuery::new()).await?;
    let (old_leader, old_term) = match view.leader {
        Some(leader) => (leader, view.term),
        None => return Err(format!("no leader known: {view:?}").into()),
    };
    let position = cluster
        .nodes
        .iter()
        .position(|node| node.id() == old_leader)
        .ok_or_else(|| format!("the leader, node {old_leader}, is not one of ours"))?;
    let mut victim = cluster.nodes.remove(position);
    victim.kill()?;
    let killed = Instant::now();
    println!("killed the leader, node {old_leader} (term {old_term}), with SIGKILL");

    let survivor = cluster.nodes[0].addr().to_owned();
    let view = client
        .cluster(
            &survivor,
            &ClusterQuery::new().after_term(old_term).wait(BOUND),
        )
        .await?;
    let new_leader = match (view.waited_out, view.leader, &view.leader_addr) {
        (false, Some(leader), Some(addr)) => (leader, addr.clone()),
        _ => return Err(format!("no new leader within {BOUND:?}: {view:?}").into()),
    };
    println!(
        "new leader: node {} at {} (term {}), elected {} ms after the kill",
        new_leader.0,
        new_leader.1,
        view.term,
        killed.elapsed().as_millis()
    );

    for node in &cluster.nodes {
        let (read, how) = if node.id() == new_leader.0 {
            (Read::Linearizable, "linearizable")
        } else {
            (
                Read::Local {
                    min_applied: Some(last),
                    wait: Some(BOUND),
                },
                "local",
            )
        };
        let mut values = Vec::new();
        for (key, expected) in pairs {
            let value = client.get(node.addr(), key, read).await?;
            if value.as_deref() != Some(expected) {
                return Err(format!(
                    "node {}: {key} = {value:?}, expected {expected:?}",
                    node.id()
                )
                .into());
            }
            values.push(format!("{key}={expected}"));
        }
        println!("node {} ({how} reads): {}", node.id(), values.join(", "));
    }

    let logs = cluster.logs.clone();
    drop(cluster);
    let _ = std::fs::remove_dir_all(logs);
    println!(
        "all nodes stopped; done in {} ms",
        started.elapsed().as_millis()
    );
    Ok(())
}

fn ids(view: &ClusterView) -> Vec<NodeId> {
    view.voters.iter().map(|member| member.id).collect()
}

/// Waits until the node at `addr` has exactly `expected` as voters and no learners.
async fn wait_for_voters(client: &Client, addr: &str, expected: &[NodeId]) -> Result<ClusterView> {
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    match client
        .wait_for_voters(addr, BOUND, |voters| voters == expected)
        .await?
    {
        Ok(view) => Ok(view),
        Err(view) => Err(format!("voters are not {expected:?} within {BOUND:?}: {view:?}").into()),
    }
}
