//! `kv-smol`: one node of a lightweight replicated key-value service, on smol with tikv's
//! raft-rs (`rafthttp-raft`) over rafthttp. One port per node carries the HTTP API, the Raft
//! connections (`/raft`, upgraded) and membership (`POST`/`DELETE /raft`); the raft log is a
//! `FileLog` in the node's data dir, so a node killed at any moment (SIGKILL included) restarts
//! from it on the same address and rejoins its cluster (on another address, it joins again to
//! update the cluster's address book).
//!
//! ```text
//! kv-smol --id 1 --data-dir n1 --listen 127.0.0.1:7001 --bootstrap
//! kv-smol --id 2 --data-dir n2 --listen 127.0.0.1:7002 --join 127.0.0.1:7001
//! ```
//!
//! See [`cli::USAGE`] for the command line and [`api`] for the HTTP API. Exit codes: 0 for
//! `--help`, 2 for a bad command line, 1 when the node cannot start, cannot join, or its log
//! store fails. There is no signal handling (smol has none without more crates): SIGTERM and
//! ctrl-c end the process at once, which the `FileLog` makes as safe as SIGKILL.
#![forbid(unsafe_code)]

mod api;
mod cli;
mod state;

use std::error::Error;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rafthttp_raft::{FileLog, LogStore as _, NodeConfig, Start};
use rafthttp_smol::{Handler, HandlerConfig, Layer, Smol, TcpDialer};

use crate::api::KvNode;
use crate::cli::{Command, Mode, Options, USAGE};
use crate::state::KvState;

type BoxError = Box<dyn Error + Send + Sync>;

/// The file in the data dir that records the address the node last listened on.
const LISTEN_FILE: &str = "listen";

/// The longest wait between two join attempts.
const MAX_JOIN_BACKOFF: Duration = Duration::from_secs(2);

/// The longest single join attempt (redirects and 503 retries included).
const JOIN_ATTEMPT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let mut args = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(arg) => args.push(arg),
            Err(arg) => {
                eprintln!("kv-smol: argument {arg:?} is not UTF-8\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let options = match cli::parse(args) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("kv-smol: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    match smol::block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the node stops");
            eprintln!("kv-smol: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one node until its log store fails (or forever).
async fn run(options: Options) -> Result<(), BoxError> {
    let dir = options.data_dir.as_path();
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the data dir {}: {e}", dir.display()))?;
    let recorded = recorded_address(dir)?;
    let listen = options
        .listen
        .or(recorded)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener =
        rafthttp_smol::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr()?;
    let addr = bound.to_string();
    // Recorded before it is announced: whoever reads the line finds it in the data dir.
    if recorded != Some(bound) {
        record_address(dir, bound)
            .map_err(|e| format!("cannot record the address in {}: {e}", dir.display()))?;
    }
    say(&format!("listening on {addr}"));

    // The API needs the node, which needs the handler: the fallback finds it here once set.
    let slot: Arc<OnceLock<KvNode>> = Arc::new(OnceLock::new());
    let timeout = options.request_timeout;
    let config = HandlerConfig::default().with_fallback({
        let slot = Arc::clone(&slot);
        move |request| {
            let node = slot.get().cloned();
            api::respond(node, request, timeout)
        }
    });
    let handler: Handler = Handler::with_config(config);
    let layer: Layer = Layer::new(&addr, handler.clone(), TcpDialer)?;

    let log = FileLog::open(dir)
        .map_err(|e| format!("cannot open the raft log in {}: {e}", dir.display()))?;
    let fresh = log.is_empty()?;
    if fresh {
        tracing::info!(id = options.id, mode = ?options.mode, "starting with an empty data dir");
    } else {
        tracing::info!(
            id = options.id,
            "restarting from the data dir (--bootstrap and --join are ignored)"
        );
    }
    let start = match options.mode {
        Mode::Bootstrap => Start::Bootstrap,
        Mode::Join(_) => Start::Join,
    };
    let node_config = NodeConfig::default()
        .with_tick(options.tick)
        .with_compact_after(options.compact_after);
    let node = KvNode::open(
        Smol::new(),
        layer.clone(),
        handler.requests(),
        options.id,
        KvState::default(),
        log,
        start,
        node_config,
    )
    .map_err(|e| format!("cannot start the raft node: {e}"))?;
    if slot.set(node.clone()).is_err() {
        return Err("the node was set twice".into());
    }
    // Served once the node is there: connections that came meanwhile waited in the listen
    // backlog, so the API never answers "starting" (the fallback still would, with a 503).
    smol::spawn({
        let handler = handler.clone();
        async move { handler.serve(listener).await }
    })
    .detach();
    if let (true, Mode::Join(target)) = (fresh, &options.mode) {
        join(&layer, options.id, target, options.join_timeout).await?;
    }
    // Restarted on another address than the cluster knows: join again through the other
    // members, so that every address book moves this node.
    if let Err(e) = node.update_address(options.join_timeout).await {
        // Still a member: it runs, and peers dial the old address until a later change.
        tracing::warn!(%e, "the cluster still knows this node at its old address");
    }
    tracing::info!(id = options.id, %addr, "node running");

    // Runs until the log store fails: the node then stops (it can no longer promise what it
    // persisted), and so does the process.
    loop {
        let failed = node
            .wait_until(Duration::from_secs(3600), |replica| {
                replica.failed().is_some()
            })
            .await;
        if failed {
            let why = node.with_replica(|replica| replica.failed().map(str::to_owned));
            return Err(format!("the raft log store failed: {}", why.unwrap_or_default()).into());
        }
    }
}

/// Asks the member at `target` to add this node, again with a growing backoff until it
/// succeeds or `timeout` passes (a join may race an election, or find the target starting).
/// Joining again once added is harmless: the leader answers a voter's join as a no-op.
async fn join(layer: &Layer, id: u64, target: &str, timeout: Duration) -> Result<(), BoxError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut backoff = Duration::from_millis(100);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let error = match layer
            .join(&id.to_string(), target, left.min(JOIN_ATTEMPT))
            .await
        {
            Ok(()) => {
                tracing::info!(
                    target,
                    attempts,
                    millis = started.elapsed().as_millis(),
                    "joined"
                );
                return Ok(());
            }
            Err(error) => error,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left <= backoff {
            return Err(format!(
                "could not join through {target} within {timeout:?} ({attempts} attempts): {error}"
            )
            .into());
        }
        tracing::warn!(target, attempts, %error, ?backoff, "join failed; trying again");
        smol::Timer::after(backoff).await;
        backoff = (backoff * 2).min(MAX_JOIN_BACKOFF);
    }
}

/// The address recorded by the last run, if any.
fn recorded_address(dir: &Path) -> Result<Option<SocketAddr>, BoxError> {
    let path = dir.join(LISTEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            format!(
                "{} holds {:?}, not an IP:port address: fix or remove it, or give --listen",
                path.display(),
                text.trim()
            )
            .into()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display()).into()),
    }
}

/// Records `addr` in the data dir (a temporary file, fsynced, renamed over the old one).
fn record_address(dir: &Path, addr: SocketAddr) -> std::io::Result<()> {
    let tmp = dir.join(format!("{LISTEN_FILE}.tmp"));
    {
        let mut file = std::fs::File::create(&tmp)?;
        writeln!(file, "{addr}")?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(LISTEN_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Prints a line on stdout, flushed at once.
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        tracing::warn!(%error, "cannot write to stdout");
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (`info` when unset or unparsable).
fn init_logging() {
    use tracing_subscriber::EnvFilter;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
