//! Nodes as child processes, for launchers and drills: [`NodeProcess`] starts a node's command
//! (the `rafthttp-kv` binary, or a program that re-executes itself through
//! [`cli::main_with_args`](crate::cli::main_with_args)), reads the lines it prints (see
//! [`cli`](crate::cli)), and kills it (SIGKILL) and reaps it when dropped, so that no node
//! outlives a failed run.

use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::store::NodeId;

/// A node running as a child process. Dropping it kills the process and waits for it.
#[derive(Debug)]
pub struct NodeProcess {
    id: NodeId,
    addr: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    started: Instant,
}

impl NodeProcess {
    /// Starts `command` (the program and its arguments for node `id`; standard output is
    /// piped, standard input is closed, standard error is left as the command sets it) and
    /// waits, at most `bound`, for its first line, `listening on <addr>`.
    ///
    /// # Errors
    /// When the process cannot be started, exits or prints something else first, or stays
    /// silent past `bound`; the process is killed then.
    pub async fn spawn(mut command: Command, id: NodeId, bound: Duration) -> io::Result<Self> {
        let started = Instant::now();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("the child's stdout is not piped"))?;
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name(format!("node-{id}-stdout"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })?;
        let mut node = Self {
            id,
            addr: String::new(),
            child,
            lines,
            started,
        };
        let first = node.line(bound).await?;
        match first.strip_prefix("listening on ") {
            Some(addr) if !addr.is_empty() => {
                node.addr = addr.to_owned();
                Ok(node)
            }
            _ => Err(io::Error::other(format!(
                "node {id} printed {first:?} instead of `listening on <addr>`"
            ))),
        }
    }

    /// The next line the node prints, within `bound`.
    ///
    /// # Errors
    /// When the node closes its standard output (it exited) or prints nothing within `bound`.
    pub async fn line(&mut self, bound: Duration) -> io::Result<String> {
        match tokio::time::timeout(bound, self.lines.recv()).await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => {
                let status = self.child.try_wait().ok().flatten().map_or_else(
                    || "closed its stdout".to_owned(),
                    |s| format!("exited: {s}"),
                );
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("node {} {status}", self.id),
                ))
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("node {} printed nothing within {bound:?}", self.id),
            )),
        }
    }

    /// Waits, at most `bound`, for the node's `ready` line: it bootstrapped its cluster, or
    /// joined it as a voter.
    ///
    /// # Errors
    /// As [`line`](Self::line), or when the node prints something else.
    pub async fn ready(&mut self, bound: Duration) -> io::Result<()> {
        let line = self.line(bound).await?;
        if line == "ready" {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "node {} printed {line:?} instead of `ready`",
                self.id
            )))
        }
    }

    /// The node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The address the node listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// When the process was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Kills the process (SIGKILL on Unix) and waits for it to exit.
    ///
    /// # Errors
    /// When waiting fails.
    pub fn kill(&mut self) -> io::Result<()> {
        // An error here means it already exited; `wait` reaps it either way.
        let _ = self.child.kill();
        self.child.wait().map(drop)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
