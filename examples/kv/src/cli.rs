//! The `rafthttp-kv` command line: one node per process.
//!
//! ```text
//! rafthttp-kv --id 1 --listen 127.0.0.1:8001 --bootstrap
//! rafthttp-kv --id 2 --listen 127.0.0.1:8002 --join 127.0.0.1:8001
//! ```
//!
//! The first line on standard output is `listening on <addr>`, printed as soon as the listener
//! is bound (before joining); the second is `ready`, once the node bootstrapped its cluster or
//! is a voter of the one it joined. Logs go to standard error (`RUST_LOG`, default `info`). The
//! node runs until SIGTERM or ctrl-c, then shuts down.
//!
//! The launcher example re-executes itself through [`main_with_args`], so it needs no other
//! binary.

use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use crate::node::{self, NodeOptions, Start};
use crate::store::NodeId;

/// The usage text.
pub const USAGE: &str = "\
usage: rafthttp-kv --id <u64> [--listen <addr>] (--bootstrap | --join <addr>) [options]

  --id <u64>                         this node's id (unique in the cluster, never reused)
  --listen <addr>                    address to listen on and advertise (default 127.0.0.1:0)
  --bootstrap                        start a new cluster with this node as its only voter
  --join <addr>                      join the cluster through the member at <addr>
  --heartbeat-ms <n>                 leader heartbeat interval (default 100)
  --election-min-ms <n>              shortest election timeout (default 500)
  --election-max-ms <n>              longest election timeout (default 1000)
  --install-snapshot-timeout-ms <n>  bound on sending and installing a snapshot chunk (default 1000)
  --snapshot-logs <n>                build a snapshot every <n> log entries (default 1000)
  --keep-logs <n>                    log entries kept behind a snapshot (default 10)
  --membership-timeout-ms <n>        bound on a join or leave this node handles (default 30000)
  --join-timeout-ms <n>              bound on this node's own join (default: twice the above)
  -h, --help                         print this help

Prints `listening on <addr>` once bound, then `ready` once bootstrapped or joined.
Logs go to stderr (RUST_LOG, default info). Stops on SIGTERM or ctrl-c.";

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Command {
    /// Run a node.
    Run(Box<NodeOptions>),
    /// Print the usage.
    Help,
}

/// A command line that cannot be used; the message says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments (without the program name). Both `--flag value` and `--flag=value`
/// work.
///
/// # Errors
/// [`UsageError`] for an unknown flag, a missing or malformed value, a missing `--id`, none or
/// both of `--bootstrap` and `--join`, or timings openraft refuses.
pub fn parse<I, S>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args = args.into_iter().map(Into::into);
    let mut id: Option<NodeId> = None;
    let mut start: Option<Start> = None;
    let mut options = NodeOptions::new(0, Start::Bootstrap);
    let mut join_timeout: Option<Duration> = None;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.into())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, UsageError> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--id" => id = Some(number(&flag, &value(&flag)?)?),
            "--listen" => options.listen = value(&flag)?,
            "--bootstrap" | "--join" => {
                let this = if flag == "--bootstrap" {
                    if inline.is_some() {
                        return Err(UsageError("--bootstrap takes no value".to_owned()));
                    }
                    Start::Bootstrap
                } else {
                    let target = value(&flag)?;
                    if target.is_empty() {
                        return Err(UsageError("--join needs an address".to_owned()));
                    }
                    Start::Join(target)
                };
                if start.is_some() {
                    return Err(UsageError(
                        "give exactly one of --bootstrap and --join".to_owned(),
                    ));
                }
                start = Some(this);
            }
            "--heartbeat-ms" => options.heartbeat = ms(&flag, &value(&flag)?)?,
            "--election-min-ms" => options.election_min = ms(&flag, &value(&flag)?)?,
            "--election-max-ms" => options.election_max = ms(&flag, &value(&flag)?)?,
            "--install-snapshot-timeout-ms" => {
                options.install_snapshot_timeout = ms(&flag, &value(&flag)?)?;
            }
            "--snapshot-logs" => options.snapshot_logs = number(&flag, &value(&flag)?)?,
            "--keep-logs" => options.keep_logs = number(&flag, &value(&flag)?)?,
            "--membership-timeout-ms" => {
                options.membership_timeout = ms(&flag, &value(&flag)?)?;
            }
            "--join-timeout-ms" => join_timeout = Some(ms(&flag, &value(&flag)?)?),
            _ => return Err(UsageError(format!("unknown argument {arg:?}"))),
        }
    }
    options.id = id.ok_or_else(|| UsageError("--id is required".to_owned()))?;
    options.start =
        start.ok_or_else(|| UsageError("give one of --bootstrap and --join".to_owned()))?;
    options.join_timeout =
        join_timeout.unwrap_or_else(|| options.membership_timeout.saturating_mul(2));
    for (name, duration) in [
        ("--heartbeat-ms", options.heartbeat),
        (
            "--install-snapshot-timeout-ms",
            options.install_snapshot_timeout,
        ),
        ("--membership-timeout-ms", options.membership_timeout),
        ("--join-timeout-ms", options.join_timeout),
    ] {
        if duration.is_zero() {
            return Err(UsageError(format!("{name} must be at least 1")));
        }
    }
    options
        .raft_config()
        .map_err(|error| UsageError(error.to_string()))?;
    Ok(Command::Run(Box::new(options)))
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, UsageError> {
    value
        .parse()
        .map_err(|_| UsageError(format!("{flag}: {value:?} is not a non-negative integer")))
}

fn ms(flag: &str, value: &str) -> Result<Duration, UsageError> {
    number(flag, value).map(Duration::from_millis)
}

/// Runs the command line `args` (without the program name): parses it, then runs a node until
/// SIGTERM or ctrl-c. Exit codes: 0 after a clean stop or `--help`, 1 when the node failed, 2
/// for a bad command line (with the message and the usage on stderr).
pub fn main_with_args<I, S>(args: I) -> ExitCode
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let options = match parse(args) {
        Ok(Command::Run(options)) => *options,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("rafthttp-kv: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rafthttp-kv: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rafthttp-kv: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one node: binds, prints `listening on <addr>`, bootstraps or joins, prints `ready`, and
/// serves until SIGTERM or ctrl-c (or either signal during the start), then shuts down.
///
/// # Errors
/// The node's [`node::Error`]; an error writing to stdout is logged, not fatal.
pub async fn run(options: NodeOptions) -> Result<(), node::Error> {
    let bound = node::bind(options).await?;
    say(&format!("listening on {}", bound.addr()));
    let id = bound.options().id;
    let running = tokio::select! {
        running = bound.run() => running?,
        () = stop_signal() => {
            tracing::info!(id, "stopped while starting");
            return Ok(());
        }
    };
    say("ready");
    stop_signal().await;
    tracing::info!(id, "stopping");
    running.shutdown().await;
    Ok(())
}

fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        tracing::warn!(%error, "cannot write to stdout");
    }
}

/// Resolves on SIGTERM or ctrl-c (SIGINT); never if neither can be listened for.
async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (an `EnvFilter`: `info` by default, or when it does
/// not parse).
fn init_logging() {
    use tracing_subscriber::EnvFilter;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> NodeOptions {
        match parse(args.iter().copied()) {
            Ok(Command::Run(options)) => *options,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse(args.iter().copied()) {
            Err(UsageError(message)) => message,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn parses_a_joining_node() {
        let parsed = options(&[
            "--id",
            "4",
            "--join=127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
            "--heartbeat-ms",
            "50",
            "--election-min-ms=200",
            "--election-max-ms",
            "400",
            "--snapshot-logs",
            "50",
            "--membership-timeout-ms",
            "5000",
        ]);
        assert_eq!(parsed.id, 4);
        assert_eq!(parsed.start, Start::Join("127.0.0.1:9".to_owned()));
        assert_eq!(parsed.heartbeat, Duration::from_millis(50));
        assert_eq!(parsed.election_min, Duration::from_millis(200));
        assert_eq!(parsed.snapshot_logs, 50);
        assert_eq!(parsed.join_timeout, Duration::from_secs(10));
    }

    #[test]
    fn bad_command_lines_are_messages() {
        assert!(error(&["--bootstrap"]).contains("--id"));
        assert!(error(&["--id", "1"]).contains("--bootstrap"));
        assert!(error(&["--id", "x", "--bootstrap"]).contains("\"x\""));
        assert!(error(&["--id", "1", "--bootstrap", "--join", "a:1"]).contains("exactly one"));
        assert!(error(&["--id", "1", "--bootstrap", "--frobnicate"]).contains("unknown"));
        assert!(error(&["--id"]).contains("needs a value"));
        assert!(error(&["--id", "1", "--bootstrap", "--snapshot-logs", "0"]).contains("snapshot"));
        assert!(
            error(&["--id", "1", "--bootstrap", "--election-min-ms", "2000"]).contains("election")
        );
        assert!(matches!(parse(["--help"]), Ok(Command::Help)));
    }
}
