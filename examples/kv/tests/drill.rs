//! The leader-kill drill: real `rafthttp-kv` processes on loopback, a client writing all along,
//! and the leader killed with SIGKILL, again and again.
//!
//! ```sh
//! cargo test -p rafthttp-kv --test drill                 # 3 kills
//! cargo test -p rafthttp-kv --test drill -- --kills 100  # a long drill
//! ```
//!
//! Three nodes (1 bootstraps, 2 and 3 join). A client writes unique keys (`k1`, `k2`, ...)
//! continuously to the node it believes leads, following redirects and asking the others when
//! one fails, and records every write whose `200` arrived (acknowledged; a write whose answer
//! never came is indeterminate, not lost). Each round finds the leader, kills it, measures the
//! time to a new leader (a long poll on a survivor) and to the first acknowledged write sent
//! after the kill, starts a replacement with a fresh id joining through a surviving follower
//! (timed from process start until it is a voter on the leader; with `--snapshot-logs 50` it
//! installs a snapshot), and removes the dead node with a leave.
//!
//! At the end the load stops and every live node must hold every acknowledged key, read
//! locally once it applied the highest acknowledged index. The last two lines are
//! `acknowledged: <n>` and `lost: <n>`; the exit code is non-zero when a write was lost or a
//! wait passed its deadline. No timing is asserted besides those deadlines.
//!
//! The nodes' logs go to a directory under `CARGO_TARGET_TMPDIR`, kept when the drill fails.
//! libtest's flags (`--nocapture`, `-q`, filters...) are accepted and ignored.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rafthttp_kv::client::{Client, ClientError, ClusterQuery, Read};
use rafthttp_kv::process::NodeProcess;
use rafthttp_kv::{ClusterView, NodeId};
use rafthttp_tokio::{ChangeMembership, TcpDialer};
use tokio::sync::watch;

type Result<T = (), E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const BIN: &str = env!("CARGO_BIN_EXE_rafthttp-kv");

/// The generous bound on every wait; passing it fails the drill.
const DEADLINE: Duration = Duration::from_secs(30);

/// Writes acknowledged between rounds before the next kill (so that there is a log to
/// snapshot, and the replacement installs a snapshot).
const WRITES_PER_ROUND: u64 = 200;

/// What the load has acknowledged so far.
#[derive(Debug, Clone, Copy)]
struct Acks {
    /// The number of acknowledged writes.
    count: u64,
    /// When the last acknowledged write was sent.
    last_sent: Instant,
}

/// The nodes' flags besides id and start.
const FLAGS: [&str; 10] = [
    "--heartbeat-ms",
    "100",
    "--election-min-ms",
    "500",
    "--election-max-ms",
    "1000",
    "--install-snapshot-timeout-ms",
    "1000",
    "--snapshot-logs",
    "50",
];

fn main() -> ExitCode {
    let mut kills = 3;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--kills" => args.next(),
            "--list" => {
                // libtest's listing: one test, run by running the binary.
                println!("drill: test");
                return ExitCode::SUCCESS;
            }
            _ => match arg.strip_prefix("--kills=") {
                Some(value) => Some(value.to_owned()),
                None => continue, // libtest's flags and filters
            },
        };
        match value.as_deref().map(str::parse::<usize>) {
            Some(Ok(n)) => kills = n,
            _ => {
                eprintln!("drill: --kills needs a number\nusage: drill [--kills N]");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("drill: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(drill(kills)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("drill failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The processes; dropping it kills and reaps them all.
struct Nodes {
    logs: PathBuf,
    procs: Vec<NodeProcess>,
}

impl Nodes {
    async fn spawn(&mut self, id: NodeId, start: &[&str]) -> Result<usize> {
        let log = File::create(self.log(id))?;
        let mut command = Command::new(BIN);
        command
            .args(["--id", &id.to_string()])
            .args(start)
            .args(FLAGS)
            .stderr(Stdio::from(log));
        self.procs
            .push(NodeProcess::spawn(command, id, DEADLINE).await?);
        Ok(self.procs.len() - 1)
    }

    fn log(&self, id: NodeId) -> PathBuf {
        self.logs.join(format!("node-{id}.log"))
    }

    fn addrs(&self) -> Vec<String> {
        self.procs.iter().map(|p| p.addr().to_owned()).collect()
    }
}

/// The addresses of the live nodes, shared with the load.
type Live = Arc<Mutex<Vec<String>>>;

fn live(live: &Live) -> Vec<String> {
    live.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

fn set_live(shared: &Live, addrs: Vec<String>) {
    *shared.lock().unwrap_or_else(PoisonError::into_inner) = addrs;
}

/// One round's figures, in milliseconds.
struct Round {
    to_leader: u128,
    to_write: u128,
    join: u128,
}

/// Runs the drill; the number of lost writes.
async fn drill(kills: usize) -> Result<usize> {
    let logs =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kv-drill-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    println!(
        "drill: {kills} leader kills; node logs in {}",
        logs.display()
    );
    let mut nodes = Nodes {
        logs: logs.clone(),
        procs: Vec::new(),
    };
    let client = Client::new(Duration::from_secs(10));

    let first = nodes.spawn(1, &["--bootstrap"]).await?;
    nodes.procs[first].ready(DEADLINE).await?;
    let seed = nodes.procs[first].addr().to_owned();
    for id in [2, 3] {
        let index = nodes.spawn(id, &["--join", &seed]).await?;
        nodes.procs[index].ready(DEADLINE).await?;
    }
    wait_for_voters(&client, &seed, |voters| voters == [1, 2, 3]).await?;
    println!("cluster up: nodes 1, 2, 3 at {}", nodes.addrs().join(", "));

    let shared: Live = Arc::new(Mutex::new(nodes.addrs()));
    let stop = Arc::new(AtomicBool::new(false));
    let (acks, _) = watch::channel(Acks {
        count: 0,
        last_sent: Instant::now(),
    });
    let load = tokio::spawn(load(
        client.clone(),
        Arc::clone(&shared),
        Arc::clone(&stop),
        acks.clone(),
    ));

    let mut rounds = Vec::new();
    for kill in 1..=kills {
        // Replacements get fresh ids: 4, 5, ...
        let id = NodeId::try_from(kill + 3)?;
        let round = round(
            &mut nodes,
            &client,
            &shared,
            &acks,
            id,
            &format!("kill {kill}/{kills}"),
        )
        .await;
        match round {
            Ok(round) => rounds.push(round),
            Err(error) => {
                stop.store(true, Ordering::Relaxed);
                return Err(error);
            }
        }
    }

    stop.store(true, Ordering::Relaxed);
    let load = tokio::time::timeout(DEADLINE, load)
        .await
        .map_err(|_| "the load did not stop")??;
    println!(
        "load: {} writes sent, {} acknowledged, {} unanswered or refused (indeterminate)",
        load.sent,
        load.acked.len(),
        load.failed
    );
    if !rounds.is_empty() {
        println!(
            "new leader ms {}; first acked write ms {}; join ms {}",
            spread(rounds.iter().map(|r| r.to_leader)),
            spread(rounds.iter().map(|r| r.to_write)),
            spread(rounds.iter().map(|r| r.join)),
        );
    }

    let lost = check(&client, &nodes, &load.acked).await?;
    println!("acknowledged: {}", load.acked.len());
    println!("lost: {lost}");
    drop(nodes);
    if lost == 0 {
        let _ = std::fs::remove_dir_all(&logs);
    }
    Ok(lost)
}

/// One kill: the leader dies, a new one is elected, writes go on, a replacement joins, the dead
/// node leaves.
async fn round(
    nodes: &mut Nodes,
    client: &Client,
    shared: &Live,
    acks: &watch::Sender<Acks>,
    id: NodeId,
    name: &str,
) -> Result<Round> {
    // Let the load run a while first: a condition on acknowledged writes, not a sleep.
    let mut acked = acks.subscribe();
    let target = acked.borrow().count + WRITES_PER_ROUND;
    tokio::time::timeout(DEADLINE, acked.wait_for(|acks| acks.count >= target))
        .await
        .map_err(|_| {
            format!("{name}: fewer than {WRITES_PER_ROUND} writes acknowledged within {DEADLINE:?}")
        })??;

    let view = leader(client, &nodes.addrs()).await?;
    let (dead, old_term) = (view.id, view.term);
    let position = nodes
        .procs
        .iter()
        .position(|p| p.id() == dead)
        .ok_or_else(|| format!("the leader, node {dead}, is not one of ours"))?;
    let mut victim = nodes.procs.remove(position);
    set_live(shared, nodes.addrs());
    victim.kill()?;
    let killed = Instant::now();
    drop(victim);

    // A survivor's long poll returns once it knows a leader of a later term.
    let survivor = nodes.procs[0].addr().to_owned();
    let view = client
        .cluster(
            &survivor,
            &ClusterQuery::new().after_term(old_term).wait(DEADLINE),
        )
        .await?;
    let to_leader = killed.elapsed();
    let (new_leader, leader_addr) = match (view.waited_out, view.leader, view.leader_addr) {
        (false, Some(id), Some(addr)) => (id, addr),
        (_, leader, _) => {
            return Err(format!(
                "{name}: no new leader after term {old_term} within {DEADLINE:?} (node {}: leader {leader:?})",
                view.id
            )
            .into());
        }
    };

    tokio::time::timeout(DEADLINE, acked.wait_for(|acks| acks.last_sent > killed))
        .await
        .map_err(|_| format!("{name}: no write acknowledged within {DEADLINE:?} of the kill"))??;
    let to_write = killed.elapsed();

    // The replacement joins through a surviving follower (which may still point at the dead
    // leader: the join client follows redirects and retries).
    let through = nodes
        .procs
        .iter()
        .map(|p| p.addr().to_owned())
        .find(|addr| *addr != leader_addr)
        .unwrap_or_else(|| survivor.clone());
    let index = nodes.spawn(id, &["--join", &through]).await?;
    let replacement = &mut nodes.procs[index];
    replacement.ready(DEADLINE).await?;
    let started = replacement.started();
    wait_for_voters(client, &leader_addr, |voters| voters.contains(&id)).await?;
    let join = started.elapsed();
    set_live(shared, nodes.addrs());
    let snapshot = std::fs::read_to_string(nodes.log(id))
        .map(|log| log.contains("install snapshot"))
        .unwrap_or(false);

    let leaving = Instant::now();
    let request = ChangeMembership::leave(&dead.to_string())
        .target(&survivor)
        .timeout(DEADLINE);
    rafthttp_tokio::change_membership(&TcpDialer, &request)
        .await
        .map_err(|error| format!("{name}: node {dead} could not be removed: {error}"))?;
    let view = wait_for_voters(client, &leader_addr, |voters| !voters.contains(&dead)).await?;
    let leave = leaving.elapsed();

    println!(
        "{name}: node {dead} (leader in term {old_term}) killed; node {new_leader} leads in term {}: \
         new leader {} ms, first acked write {} ms, node {id} joined in {} ms{}, node {dead} left in {} ms; voters {:?}",
        view.term,
        to_leader.as_millis(),
        to_write.as_millis(),
        join.as_millis(),
        if snapshot { " (snapshot)" } else { "" },
        leave.as_millis(),
        view.voters.iter().map(|m| m.id).collect::<Vec<_>>(),
    );
    Ok(Round {
        to_leader: to_leader.as_millis(),
        to_write: to_write.as_millis(),
        join: join.as_millis(),
    })
}

/// The leader's own view: asks each node to wait for a leader, then asks the leader.
async fn leader(client: &Client, addrs: &[String]) -> Result<ClusterView> {
    let deadline = Instant::now() + DEADLINE;
    for addr in addrs.iter().cycle() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Ok(view) = client
            .cluster(addr, &ClusterQuery::new().after_term(0).wait(left))
            .await
        else {
            continue;
        };
        let Some(leader_addr) = view.leader_addr else {
            continue;
        };
        if let Ok(view) = client.cluster(&leader_addr, &ClusterQuery::new()).await
            && view.leader == Some(view.id)
            && addrs.contains(&leader_addr)
        {
            return Ok(view);
        }
    }
    Err(format!("no leader found within {DEADLINE:?}").into())
}

/// Long polls the node at `addr` until its voters (sorted) satisfy `holds`.
async fn wait_for_voters(
    client: &Client,
    addr: &str,
    holds: impl Fn(&[NodeId]) -> bool,
) -> Result<ClusterView> {
    match client.wait_for_voters(addr, DEADLINE, holds).await? {
        Ok(view) => Ok(view),
        Err(view) => {
            Err(format!("membership not as expected within {DEADLINE:?}: {view:?}").into())
        }
    }
}

/// What the load did.
struct Load {
    sent: u64,
    failed: u64,
    /// `(sequence number, log index)` of every acknowledged write of `k<seq>` = `v<seq>`.
    acked: Vec<(u64, u64)>,
}

/// Writes `k<n>` = `v<n>` for n = 1, 2, ... until `stop`, each to the node believed to lead.
async fn load(
    client: Client,
    shared: Live,
    stop: Arc<AtomicBool>,
    acks: watch::Sender<Acks>,
) -> Load {
    let mut result = Load {
        sent: 0,
        failed: 0,
        acked: Vec::new(),
    };
    let mut target: Option<String> = None;
    let mut turn = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let addr = match target.take() {
            Some(addr) => addr,
            None => next(&shared, &mut turn),
        };
        result.sent += 1;
        let seq = result.sent;
        let sent = Instant::now();
        match client
            .put(&addr, &format!("k{seq}"), &format!("v{seq}"))
            .await
        {
            Ok(written) => {
                result.acked.push((seq, written.result.index));
                acks.send_modify(|acks| {
                    acks.count += 1;
                    acks.last_sent = sent;
                });
                target = Some(written.addr);
            }
            Err(error) => {
                result.failed += 1;
                target = find_leader(&client, &shared, &mut turn, &error).await;
            }
        }
    }
    result
}

fn next(shared: &Live, turn: &mut usize) -> String {
    let addrs = live(shared);
    *turn = turn.wrapping_add(1);
    addrs
        .get(*turn % addrs.len().max(1))
        .cloned()
        .unwrap_or_default()
}

/// After a failed write: asks another node for the leader, waiting for a new election when
/// that node knows none, or only the one that just failed.
async fn find_leader(
    client: &Client,
    shared: &Live,
    turn: &mut usize,
    error: &ClientError,
) -> Option<String> {
    let failed = match error {
        ClientError::Transport { url, .. } | ClientError::Timeout { url, .. } => url
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .map(str::to_owned),
        _ => None,
    };
    let addr = next(shared, turn);
    let view = client.cluster(&addr, &ClusterQuery::new()).await.ok()?;
    match view.leader_addr {
        Some(leader) if Some(&leader) != failed.as_ref() => Some(leader),
        _ => {
            // A leader that is not the failed one: in a later term than the failed one's, or
            // in this node's term if it knows none (it may be a candidate in that term).
            let after = if view.leader.is_some() {
                view.term
            } else {
                view.term.saturating_sub(1)
            };
            let query = ClusterQuery::new()
                .after_term(after)
                .wait(Duration::from_secs(2));
            let view = client.cluster(&addr, &query).await.ok()?;
            view.leader_addr.filter(|_| !view.waited_out)
        }
    }
}

/// Reads every acknowledged key on every live node, once it applied the highest acknowledged
/// index; the number of keys missing (or different) on some node.
async fn check(client: &Client, nodes: &Nodes, acked: &[(u64, u64)]) -> Result<usize> {
    let highest = acked.iter().map(|&(_, index)| index).max().unwrap_or(0);
    let acked: Arc<[u64]> = acked.iter().map(|&(seq, _)| seq).collect();
    let mut lost = BTreeSet::new();
    for node in &nodes.procs {
        let view = client
            .cluster(
                node.addr(),
                &ClusterQuery::new().min_applied(highest).wait(DEADLINE),
            )
            .await?;
        if view.waited_out {
            return Err(format!(
                "node {} has not applied index {highest} within {DEADLINE:?}: {view:?}",
                node.id()
            )
            .into());
        }
        const WORKERS: usize = 8;
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..WORKERS {
            let (client, acked, addr) =
                (client.clone(), Arc::clone(&acked), node.addr().to_owned());
            workers.spawn(async move {
                let mut missing = Vec::new();
                for &seq in acked.iter().skip(worker).step_by(WORKERS) {
                    let value = client.get(&addr, &format!("k{seq}"), Read::local()).await?;
                    if value.as_deref() != Some(format!("v{seq}").as_str()) {
                        missing.push(seq);
                    }
                }
                Ok::<_, ClientError>(missing)
            });
        }
        let mut missing = Vec::new();
        while let Some(worker) = workers.join_next().await {
            missing.extend(worker??);
        }
        missing.sort_unstable();
        let mut line = format!(
            "node {}: applied {:?}, {} of {} acknowledged keys present",
            node.id(),
            view.last_applied,
            acked.len() - missing.len(),
            acked.len()
        );
        if !missing.is_empty() {
            let _ = write!(
                line,
                "; missing e.g. {:?}",
                &missing[..missing.len().min(10)]
            );
        }
        println!("{line}");
        lost.extend(missing);
    }
    Ok(lost.len())
}

/// `min / median / max` of some figures.
fn spread(values: impl Iterator<Item = u128>) -> String {
    let mut values: Vec<u128> = values.collect();
    values.sort_unstable();
    match (values.first(), values.last()) {
        (Some(min), Some(max)) => format!(
            "min {min} / median {} / max {max}",
            values[values.len() / 2]
        ),
        _ => "-".to_owned(),
    }
}
