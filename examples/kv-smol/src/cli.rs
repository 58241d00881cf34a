//! The command line.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The usage text.
pub(crate) const USAGE: &str = "\
usage: kv-smol --id <u64> [--listen <addr>] --data-dir <dir> (--bootstrap | --join <addr>)

  --id <u64>        this node's raft id (positive, unique in the cluster, never reused)
  --listen <addr>   IP:port to listen on and advertise (default: the address recorded in
                    <dir>/listen by the last run, else 127.0.0.1:0, a free port)
  --data-dir <dir>  the node's raft log (and recorded address); created if missing
  --bootstrap       start a new cluster with this node as its only voter
  --join <addr>     join the cluster through the member at <addr> (any member: followers
                    redirect to the leader); retried until --join-timeout-ms
  -h, --help        print this help

A data dir that already holds raft state restarts the node as it was: --bootstrap and --join
are then ignored (the node never joins twice).

Advanced:
  --tick-ms <n>             raft's tick (default 100); elections start after 10 to 20 ticks
                            without a leader, the leader sends heartbeats every 3 ticks
  --compact-after <n>       applied entries kept in the log before it is compacted into a
                            snapshot (default 10000)
  --join-timeout-ms <n>     give up joining (exit 1) after this long (default 30000)
  --request-timeout-ms <n>  bound on a write or a read of the HTTP API (default 5000)

Prints `listening on <addr>` as its first line once bound. Logs go to stderr (RUST_LOG,
default info). No signal handling: SIGTERM, ctrl-c and SIGKILL end the process at once, which
is safe (writes are acknowledged only once fsynced on a quorum).

HTTP API (on the same port as Raft, whose path is /raft):
  PUT /kv/<key>      body: the value (UTF-8)     200 applied; 308 to the leader
  GET /kv/<key>      linearizable read           200 value + \"\\n\"; 404 absent
  GET /cluster[?wait=<cond>[,<cond>...][&timeout_ms=<n>]]   status as key=value lines
                     cond: leader | leader_after:<term> | voters:<n> | applied:<n>";

/// How a node with an empty data dir starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A new cluster, this node its only voter.
    Bootstrap,
    /// Join through the member at this address.
    Join(String),
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) id: u64,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) data_dir: PathBuf,
    pub(crate) mode: Mode,
    pub(crate) tick: Duration,
    pub(crate) compact_after: u64,
    pub(crate) join_timeout: Duration,
    pub(crate) request_timeout: Duration,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Run a node.
    Run(Options),
    /// Print the usage.
    Help,
}

/// A command line that cannot be used; the message says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageError(pub(crate) String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// Parses the arguments (without the program name). `--flag value` and `--flag=value` both
/// work.
pub(crate) fn parse<I, S>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args = args.into_iter().map(Into::into);
    let mut id = None;
    let mut listen = None;
    let mut data_dir = None;
    let mut mode = None;
    let mut tick = Duration::from_millis(100);
    let mut compact_after = 10_000;
    let mut join_timeout = Duration::from_secs(30);
    let mut request_timeout = Duration::from_secs(5);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value)),
            _ => (arg.clone(), None),
        };
        let inline = inline.map(str::to_owned);
        let had_inline = inline.is_some();
        let mut value = || -> Result<String, UsageError> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--id" => {
                let n: u64 = number(&flag, &value()?)?;
                if n == 0 {
                    return Err(usage("--id must be a positive integer"));
                }
                set_once(&mut id, n, &flag)?;
            }
            "--listen" => {
                let text = value()?;
                let addr: SocketAddr = text.parse().map_err(|_| {
                    usage(format!(
                        "--listen: {text:?} is not an IP:port address (for example 127.0.0.1:7001)"
                    ))
                })?;
                if addr.ip().is_unspecified() {
                    return Err(usage(format!(
                        "--listen: {addr} cannot be dialed by peers: give the address they reach this node at"
                    )));
                }
                set_once(&mut listen, addr, &flag)?;
            }
            "--data-dir" => {
                let dir = value()?;
                if dir.is_empty() {
                    return Err(usage("--data-dir needs a directory"));
                }
                set_once(&mut data_dir, PathBuf::from(dir), &flag)?;
            }
            "--bootstrap" => {
                if had_inline {
                    return Err(usage("--bootstrap takes no value"));
                }
                one_mode(&mut mode, Mode::Bootstrap)?;
            }
            "--join" => {
                let target = value()?;
                if target.is_empty() {
                    return Err(usage("--join needs an address"));
                }
                one_mode(&mut mode, Mode::Join(target))?;
            }
            "--tick-ms" => tick = positive_ms(&flag, &value()?)?,
            "--compact-after" => {
                compact_after = number(&flag, &value()?)?;
                if compact_after == 0 {
                    return Err(usage("--compact-after must be at least 1"));
                }
            }
            "--join-timeout-ms" => join_timeout = positive_ms(&flag, &value()?)?,
            "--request-timeout-ms" => request_timeout = positive_ms(&flag, &value()?)?,
            _ => return Err(usage(format!("unknown argument {arg:?}"))),
        }
    }
    Ok(Command::Run(Options {
        id: id.ok_or_else(|| usage("--id is required"))?,
        listen,
        data_dir: data_dir.ok_or_else(|| usage("--data-dir is required"))?,
        mode: mode.ok_or_else(|| usage("give one of --bootstrap and --join"))?,
        tick,
        compact_after,
        join_timeout,
        request_timeout,
    }))
}

fn set_once<T>(slot: &mut Option<T>, value: T, flag: &str) -> Result<(), UsageError> {
    if slot.is_some() {
        return Err(usage(format!("{flag} given twice")));
    }
    *slot = Some(value);
    Ok(())
}

fn one_mode(slot: &mut Option<Mode>, mode: Mode) -> Result<(), UsageError> {
    if slot.is_some() {
        return Err(usage("give exactly one of --bootstrap and --join"));
    }
    *slot = Some(mode);
    Ok(())
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, UsageError> {
    value
        .parse()
        .map_err(|_| usage(format!("{flag}: {value:?} is not a non-negative integer")))
}

fn positive_ms(flag: &str, value: &str) -> Result<Duration, UsageError> {
    match number::<u64>(flag, value)? {
        0 => Err(usage(format!("{flag} must be at least 1"))),
        ms if ms > 24 * 3600 * 1000 => Err(usage(format!("{flag} must be at most a day"))),
        ms => Ok(Duration::from_millis(ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args.iter().copied()) {
            Ok(Command::Run(options)) => options,
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
    fn parses_a_bootstrapping_node_with_defaults() {
        let options = run(&["--id", "1", "--data-dir", "/tmp/n1", "--bootstrap"]);
        assert_eq!(
            options,
            Options {
                id: 1,
                listen: None,
                data_dir: PathBuf::from("/tmp/n1"),
                mode: Mode::Bootstrap,
                tick: Duration::from_millis(100),
                compact_after: 10_000,
                join_timeout: Duration::from_secs(30),
                request_timeout: Duration::from_secs(5),
            }
        );
    }

    #[test]
    fn parses_a_joining_node_with_every_flag() {
        let options = run(&[
            "--join=127.0.0.1:7001",
            "--id=3",
            "--listen",
            "127.0.0.1:7003",
            "--data-dir=d3",
            "--tick-ms",
            "50",
            "--compact-after=8",
            "--join-timeout-ms",
            "500",
            "--request-timeout-ms=2000",
        ]);
        assert_eq!(options.id, 3);
        assert_eq!(options.listen, Some("127.0.0.1:7003".parse().unwrap()));
        assert_eq!(options.data_dir, PathBuf::from("d3"));
        assert_eq!(options.mode, Mode::Join("127.0.0.1:7001".to_owned()));
        assert_eq!(options.tick, Duration::from_millis(50));
        assert_eq!(options.compact_after, 8);
        assert_eq!(options.join_timeout, Duration::from_millis(500));
        assert_eq!(options.request_timeout, Duration::from_secs(2));
        // IPv6 works too.
        let v6 = run(&[
            "--id",
            "1",
            "--data-dir",
            "d",
            "--bootstrap",
            "--listen",
            "[::1]:0",
        ]);
        assert_eq!(v6.listen, Some("[::1]:0".parse().unwrap()));
    }

    #[test]
    fn help_wins() {
        assert_eq!(parse(["--help"]), Ok(Command::Help));
        assert_eq!(parse(["--id", "1", "-h"]), Ok(Command::Help));
        assert!(USAGE.starts_with("usage: kv-smol --id <u64>"));
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        let base = ["--id", "1", "--data-dir", "d"];
        let with = |more: &[&str]| error(&[&base[..], more].concat());
        assert!(error(&[]).contains("--id is required"));
        assert!(error(&["--id", "1", "--bootstrap"]).contains("--data-dir is required"));
        assert!(error(&["--data-dir", "d", "--bootstrap"]).contains("--id is required"));
        assert!(with(&[]).contains("one of --bootstrap and --join"));
        assert!(with(&["--bootstrap", "--join", "a:1"]).contains("exactly one"));
        assert!(with(&["--join", "a:1", "--join", "b:1"]).contains("exactly one"));
        assert!(with(&["--bootstrap=yes"]).contains("takes no value"));
        assert!(with(&["--join"]).contains("--join needs a value"));
        assert!(with(&["--join="]).contains("--join needs an address"));
        assert!(
            with(&["--bootstrap", "--frobnicate"]).contains("unknown argument \"--frobnicate\"")
        );
        assert!(with(&["--bootstrap", "extra"]).contains("unknown argument \"extra\""));
        assert!(error(&["--id"]).contains("--id needs a value"));
        assert!(error(&["--id", "x", "--data-dir", "d", "--bootstrap"]).contains("\"x\""));
        assert!(error(&["--id", "-1", "--data-dir", "d", "--bootstrap"]).contains("\"-1\""));
        assert!(error(&["--id", "0", "--data-dir", "d", "--bootstrap"]).contains("positive"));
        assert!(with(&["--id", "2", "--bootstrap"]).contains("--id given twice"));
        assert!(with(&["--bootstrap", "--data-dir", "e"]).contains("--data-dir given twice"));
        assert!(error(&["--id", "1", "--data-dir=", "--bootstrap"]).contains("needs a directory"));
        assert!(with(&["--bootstrap", "--listen", "localhost:1"]).contains("not an IP:port"));
        assert!(with(&["--bootstrap", "--listen", "127.0.0.1"]).contains("not an IP:port"));
        assert!(with(&["--bootstrap", "--listen", "0.0.0.0:7001"]).contains("cannot be dialed"));
        assert!(with(&["--bootstrap", "--listen", "[::]:7001"]).contains("cannot be dialed"));
        assert!(
            with(&[
                "--bootstrap",
                "--listen",
                "127.0.0.1:1",
                "--listen",
                "127.0.0.1:2"
            ])
            .contains("--listen given twice")
        );
        assert!(with(&["--bootstrap", "--tick-ms", "0"]).contains("at least 1"));
        assert!(with(&["--bootstrap", "--tick-ms", "99999999999"]).contains("at most a day"));
        assert!(with(&["--bootstrap", "--compact-after", "0"]).contains("at least 1"));
        assert!(with(&["--bootstrap", "--join-timeout-ms", "1.5"]).contains("\"1.5\""));
        assert!(with(&["--bootstrap", "--request-timeout-ms", ""]).contains("\"\""));
    }
}
