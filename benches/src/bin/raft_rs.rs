//! tikv's raft-rs over rafthttp on smol (`rafthttp-raft`'s `Node`): how many proposals a
//! three-node cluster commits and applies, and how long each takes, on each kind of storage:
//!
//! - **MemStorage**: raft-rs's in-memory log (nothing survives a restart);
//! - **FileLog**: the checksummed append-only file, fsynced before raft's persisted messages
//!   go out (so on the leader before it counts its own vote for an entry, on followers before
//!   they acknowledge it), in a temporary directory.
//!
//! Everything runs in one process on `127.0.0.1`: three nodes (each its own rafthttp handler
//! and port, a 50 ms tick), and the callers, which `propose` a 100-byte entry to the leader
//! sequentially, 1 or 16 at a time, for a fixed time per repetition. A proposal is counted
//! when `propose` returned the state machine's output, so once the entry is committed and
//! applied on the leader. Storages are interleaved between repetitions (a fresh cluster and
//! directory each time); the table gives medians over the repetitions.
//!
//! Usage: `cargo run --release -p rafthttp-benches --bin raft_rs -- [--secs S] [--warmup S]
//! [--reps N] [--clients 1,16]`. Defaults: 2 s measured after 0.5 s of warm-up, 3 repetitions,
//! 1 and 16 callers (about 30 s). Every wait is bounded; a failed proposal is counted as an
//! error.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rafthttp_raft::raft::storage::MemStorage;
use rafthttp_raft::{
    FileLog, LogStore, Network, Node, NodeConfig, RestoreError, Start, StateMachine,
};
use rafthttp_smol::{HandlerConfig, Layer, Smol};

/// Bytes in each proposed entry.
const ENTRY: usize = 100;

/// Bound on any single wait (a leader, a join, a proposal).
const WAIT: Duration = Duration::from_secs(10);

/// The state: entries applied and their bytes.
#[derive(Debug, Default, Clone)]
struct Count {
    entries: u64,
    bytes: u64,
}

impl StateMachine for Count {
    type Output = u64;

    fn apply(&mut self, _index: u64, data: &[u8]) -> u64 {
        self.entries += 1;
        self.bytes += data.len() as u64;
        self.entries
    }

    fn snapshot(&self) -> Vec<u8> {
        [self.entries.to_le_bytes(), self.bytes.to_le_bytes()].concat()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), RestoreError> {
        let bad = || RestoreError("not 16 bytes".into());
        let (entries, bytes) = data.split_first_chunk::<8>().ok_or_else(bad)?;
        let bytes: [u8; 8] = bytes.try_into().map_err(|_| bad())?;
        self.entries = u64::from_le_bytes(*entries);
        self.bytes = u64::from_le_bytes(bytes);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    Mem,
    File,
}

impl Storage {
    fn name(self) -> &'static str {
        match self {
            Self::Mem => "MemStorage",
            Self::File => "FileLog (fsync)",
        }
    }
}

#[derive(Debug, Clone)]
struct Options {
    secs: f64,
    warmup: f64,
    reps: usize,
    clients: Vec<usize>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        secs: 2.0,
        warmup: 0.5,
        reps: 3,
        clients: vec![1, 16],
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--secs" => options.secs = value()?.parse().map_err(|_| "bad --secs")?,
            "--warmup" => options.warmup = value()?.parse().map_err(|_| "bad --warmup")?,
            "--reps" => options.reps = value()?.parse().map_err(|_| "bad --reps")?,
            "--clients" => {
                options.clients = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|_| "bad --clients")?;
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if options.reps == 0 || options.clients.is_empty() || options.clients.contains(&0) {
        return Err("--reps and --clients must be positive".into());
    }
    let seconds = options.secs.is_finite() && options.secs > 0.0;
    let warmup = options.warmup.is_finite() && options.warmup >= 0.0;
    if !(seconds && warmup) {
        return Err("--secs and --warmup must be non-negative seconds".into());
    }
    Ok(options)
}

/// One measured repetition.
#[derive(Debug, Clone)]
struct Run {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

/// Three nodes on `make_log`'s storage: node 1 bootstraps, 2 and 3 join through it.
async fn cluster<L: LogStore>(
    make_log: impl Fn(u64) -> Result<L, String>,
) -> Result<Vec<Node<Smol, Layer, Count, L>>, String> {
    let config = NodeConfig::default().with_tick(Duration::from_millis(50));
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let (net, requests) = rafthttp_tests::smol::endpoint(HandlerConfig::default()).await;
        let start = if id == 1 {
            Start::Bootstrap
        } else {
            Start::Join
        };
        let node = Node::open(
            Smol::new(),
            net.clone(),
            requests,
            id,
            Count::default(),
            make_log(id)?,
            start,
            config,
        )
        .map_err(|e| format!("node {id}: {e}"))?;
        if id == 1 {
            if !node.wait_until(WAIT, |r| r.is_leader()).await {
                return Err("node 1 did not lead".into());
            }
        } else {
            let leader: &Node<Smol, Layer, Count, L> = &nodes[0];
            Network::join(&net, &id.to_string(), leader.net().addr(), WAIT)
                .await
                .map_err(|e| format!("node {id} join: {e}"))?;
        }
        nodes.push(node);
    }
    let voters = nodes[0].wait_until(WAIT, |r| r.voters() == [1, 2, 3]).await;
    if !voters {
        return Err("the cluster did not reach three voters".into());
    }
    Ok(nodes)
}

/// `clients` callers proposing to `leader` until `end`; latencies of those that started after
/// `measure_from`, and the errors.
async fn load<L: LogStore>(
    leader: &Node<Smol, Layer, Count, L>,
    clients: usize,
    measure_from: Instant,
    end: Instant,
) -> (Vec<Duration>, u64) {
    let callers = (0..clients).map(|_| async move {
        let mut latencies = Vec::new();
        let mut errors = 0u64;
        let entry = vec![7u8; ENTRY];
        loop {
            let started = Instant::now();
            if started >= end {
                break;
            }
            let result = leader.propose(entry.clone(), WAIT).await;
            if started >= measure_from {
                match result {
                    Ok(_) => latencies.push(started.elapsed()),
                    Err(_) => errors += 1,
                }
            }
        }
        (latencies, errors)
    });
    let mut all = Vec::new();
    let mut errors = 0;
    for (latencies, e) in join_all(callers).await {
        all.extend(latencies);
        errors += e;
    }
    (all, errors)
}

/// Builds the cluster, then measures: warm-up and measured time start once it is up.
async fn measure<L: LogStore>(
    make_log: impl Fn(u64) -> Result<L, String>,
    clients: usize,
    options: &Options,
) -> Result<Run, String> {
    let nodes = cluster(make_log).await?;
    let measure_from = Instant::now() + Duration::from_secs_f64(options.warmup);
    let end = measure_from + Duration::from_secs_f64(options.secs);
    let (mut latencies, errors) = load(&nodes[0], clients, measure_from, end).await;
    close(&nodes).await;
    latencies.sort_unstable();
    Ok(Run {
        per_sec: latencies.len() as f64 / options.secs,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        errors,
    })
}

async fn run_once(storage: Storage, clients: usize, options: &Options) -> Result<Run, String> {
    match storage {
        Storage::Mem => measure(|_| Ok(MemStorage::new()), clients, options).await,
        Storage::File => {
            let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
            let open = |id: u64| {
                FileLog::open(dir.path().join(format!("n{id}")))
                    .map_err(|e| format!("node {id}'s file log: {e}"))
            };
            measure(open, clients, options).await
        }
    }
}

async fn close<L: LogStore>(nodes: &[Node<Smol, Layer, Count, L>]) {
    for node in nodes {
        node.close().await;
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn micros(d: Duration) -> String {
    format!("{} µs", d.as_micros())
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let storages = [Storage::Mem, Storage::File];
    let mut rows = Vec::new();
    for &clients in &options.clients {
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); storages.len()];
        for rep in 0..options.reps {
            for (i, &storage) in storages.iter().enumerate() {
                match smol::block_on(run_once(storage, clients, &options)) {
                    Ok(run) => runs[i].push(run),
                    Err(e) => eprintln!("{} x{clients} rep {rep}: {e}", storage.name()),
                }
            }
        }
        for (i, &storage) in storages.iter().enumerate() {
            let done = &runs[i];
            if done.is_empty() {
                continue;
            }
            let per_sec = median(done.iter().map(|r| r.per_sec).collect());
            let p50 = median(done.iter().map(|r| r.p50.as_secs_f64()).collect());
            let p99 = median(done.iter().map(|r| r.p99.as_secs_f64()).collect());
            let errors: u64 = done.iter().map(|r| r.errors).sum();
            rows.push((storage, clients, per_sec, p50, p99, errors, done.len()));
        }
    }
    println!(
        "raft-rs over rafthttp (smol), 3 nodes on 127.0.0.1, {ENTRY}-byte entries, {} s x {} reps (medians)",
        options.secs, options.reps
    );
    println!();
    println!("| storage | callers | proposals/s | p50 | p99 | errors |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (storage, clients, per_sec, p50, p99, errors, reps) in &rows {
        println!(
            "| {} | {clients} | {per_sec:.0} | {} | {} | {errors} ({reps} reps) |",
            storage.name(),
            micros(Duration::from_secs_f64(*p50)),
            micros(Duration::from_secs_f64(*p99)),
        );
    }
    if rows.is_empty() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
