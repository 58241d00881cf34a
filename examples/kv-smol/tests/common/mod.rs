//! Shared by the process tests: `kv-smol` processes that are always killed and reaped, and a
//! tiny blocking HTTP/1.1 client. Every wait is bounded; nothing sleeps to wait for an event
//! (the only pauses pace retries). A failing test prints the tail of each node's log; set
//! `KV_SMOL_TEST_LOGS=1` to print them on success too.
#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bound on every wait of the tests (a process start, a long poll, a write).
pub(crate) const BOUND: Duration = Duration::from_secs(20);

/// The raft tick the test nodes run with: elections within a second or two.
pub(crate) const TICK_MS: &str = "50";

/// The `kv-smol` binary.
pub(crate) fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kv-smol"));
    command.env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
    );
    command
}

/// A running `kv-smol` process. Dropping it kills it (SIGKILL) and reaps it, so no node
/// outlives a test, failed or not.
#[derive(Debug)]
pub(crate) struct NodeProcess {
    pub(crate) id: u64,
    pub(crate) addr: String,
    child: Child,
    /// Lines of stdout after the first; `None` once stdout closed (the process exited).
    lines: mpsc::Receiver<Option<String>>,
}

impl NodeProcess {
    /// Starts node `id` on `data_dir` with `args` (after `--id`, `--data-dir` and `--tick-ms`),
    /// stderr appended to `log`, and waits for its first line, `listening on <addr>`.
    pub(crate) fn start(
        id: u64,
        data_dir: &Path,
        log: &Path,
        args: &[&str],
    ) -> Result<Self, String> {
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("log file {}: {e}", log.display()))?;
        let mut command = binary();
        command
            .arg("--id")
            .arg(id.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--tick-ms", TICK_MS])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start node {id}: {e}"))?;
        let stdout = child.stdout.take();
        let (tx, lines) = mpsc::channel();
        // The guard exists before anything can fail.
        let mut node = Self {
            id,
            addr: String::new(),
            child,
            lines,
        };
        let stdout = stdout.ok_or("stdout not piped")?;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(Some(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(None);
        });
        match node.lines.recv_timeout(BOUND) {
            Ok(Some(line)) => match line.strip_prefix("listening on ") {
                Some(addr) if !addr.is_empty() => {
                    node.addr = addr.to_owned();
                    Ok(node)
                }
                _ => Err(format!("node {id} printed {line:?} first")),
            },
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => Err(format!(
                "node {id} exited before listening: see {}",
                log.display()
            )),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(format!("node {id} printed nothing within {BOUND:?}"))
            }
        }
    }

    /// Starts a node again on its data dir, expecting it on `addr`. Binding a port that was
    /// free a moment ago can fail while an outgoing connection happens to use it as its local
    /// port: a start that exits is tried again, a bounded number of times.
    pub(crate) fn restart(
        id: u64,
        data_dir: &Path,
        log: &Path,
        args: &[&str],
        addr: &str,
    ) -> Result<Self, String> {
        let mut last = String::new();
        for attempt in 1..=10 {
            match Self::start(id, data_dir, log, args) {
                Ok(node) if node.addr == addr => return Ok(node),
                Ok(node) => {
                    return Err(format!("node {id} came back on {}, not {addr}", node.addr));
                }
                Err(error) => {
                    last = format!("attempt {attempt}: {error}");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        Err(last)
    }

    /// Waits, within `bound`, for the process to exit on its own, and returns its status.
    pub(crate) fn exit_status(&mut self, bound: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return self.child.wait().map_err(|e| e.to_string());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("node {} still runs after {bound:?}", self.id));
                }
            }
        }
    }

    /// Kills the process with SIGKILL and reaps it.
    pub(crate) fn kill(&mut self) {
        // An error means it already exited; `wait` reaps it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `n` lines of a log file, for a failing test's report.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let mut text = String::new();
    if File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .is_err()
    {
        return format!("(no log at {})", path.display());
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Prints the tail of each log when the test is failing (from a guard's `Drop`).
pub(crate) fn report_logs(logs: &[PathBuf]) {
    if std::thread::panicking() || std::env::var_os("KV_SMOL_TEST_LOGS").is_some() {
        for log in logs {
            eprintln!("---- {} ----\n{}", log.display(), tail(log, 60));
        }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    /// Every header field, in order.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    /// The value of the first field called `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request (`Connection: close`) to `addr`, every step within `timeout`.
pub(crate) fn http(
    addr: &str,
    method: &str,
    target: &str,
    body: &[u8],
    timeout: Duration,
) -> io::Result<Reply> {
    let socket: SocketAddr = addr
        .parse()
        .map_err(|_| io::Error::other(format!("bad address {addr:?}")))?;
    let mut stream = TcpStream::connect_timeout(&socket, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(&[head.as_bytes(), body].concat())?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the response head",
            ));
        }
        raw.extend_from_slice(&chunk[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            break (end + 4, parse_head(&head)?);
        }
    };
    let Head {
        status,
        location,
        length: content_length,
        headers,
    } = length;
    match content_length {
        Some(len) => {
            while raw.len() < head_end + len {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "body cut short",
                    ));
                }
                raw.extend_from_slice(&chunk[..n]);
            }
            raw.truncate(head_end + len);
        }
        None => {
            stream.read_to_end(&mut raw)?;
        }
    }
    let body = String::from_utf8(raw.split_off(head_end))
        .map_err(|_| io::Error::other("the body is not UTF-8"))?;
    Ok(Reply {
        status,
        location,
        headers,
        body,
    })
}

/// A response head.
struct Head {
    status: u16,
    location: Option<String>,
    length: Option<usize>,
    headers: Vec<(String, String)>,
}

/// Status, `Location`, `Content-Length` and every field of a response head.
fn parse_head(head: &str) -> io::Result<Head> {
    let bad = || io::Error::other(format!("bad response head {head:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(bad)?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(bad());
    }
    let status = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let mut location = None;
    let mut length = None;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(bad)?;
        let value = value.trim();
        headers.push((name.to_owned(), value.to_owned()));
        if name.eq_ignore_ascii_case("location") {
            location = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().map_err(|_| bad())?);
        }
    }
    Ok(Head {
        status,
        location,
        length,
        headers,
    })
}

/// A node's view, as `GET /cluster` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct View {
    pub(crate) id: u64,
    pub(crate) address: String,
    pub(crate) is_leader: bool,
    pub(crate) leader_id: Option<u64>,
    pub(crate) leader_address: Option<String>,
    pub(crate) term: u64,
    pub(crate) voters: Vec<u64>,
    pub(crate) applied: u64,
    pub(crate) first_index: u64,
}

impl View {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut view = Self::default();
        let bad = |line: &str| format!("bad /cluster line {line:?} in {text:?}");
        for line in text.lines() {
            let (key, value) = line.split_once('=').ok_or_else(|| bad(line))?;
            let number = |v: &str| v.parse::<u64>().map_err(|_| bad(line));
            match key {
                "id" => view.id = number(value)?,
                "address" => view.address = value.to_owned(),
                "is_leader" => view.is_leader = value.parse().map_err(|_| bad(line))?,
                "leader_id" if value.is_empty() => view.leader_id = None,
                "leader_id" => view.leader_id = Some(number(value)?),
                "leader_address" if value.is_empty() => view.leader_address = None,
                "leader_address" => view.leader_address = Some(value.to_owned()),
                "term" => view.term = number(value)?,
                "voters" if value.is_empty() => view.voters.clear(),
                "voters" => {
                    view.voters = value.split(',').map(number).collect::<Result<_, _>>()?;
                }
                "applied" => view.applied = number(value)?,
                "first_index" => view.first_index = number(value)?,
                _ => return Err(bad(line)),
            }
        }
        Ok(view)
    }
}

/// `GET /cluster` on `addr`.
pub(crate) fn view(addr: &str) -> View {
    let reply = http(addr, "GET", "/cluster", b"", BOUND)
        .unwrap_or_else(|e| panic!("GET /cluster on {addr}: {e}"));
    assert_eq!(reply.status, 200, "GET /cluster on {addr}: {reply:?}");
    View::parse(&reply.body).unwrap()
}

/// Long-polls `GET /cluster?wait=<conditions>` on `addr` until they hold (within [`BOUND`]).
pub(crate) fn wait_for(addr: &str, conditions: &str) -> View {
    let target = format!(
        "/cluster?wait={conditions}&timeout_ms={}",
        BOUND.as_millis()
    );
    let reply = http(addr, "GET", &target, b"", BOUND + Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("GET {target} on {addr}: {e}"));
    assert_eq!(
        reply.status, 200,
        "{conditions} did not hold on {addr}: {reply:?}"
    );
    View::parse(&reply.body).unwrap()
}

/// `method target` with `body` on `addr`, following a redirect (to the leader) once.
pub(crate) fn send_to_leader(
    addr: &str,
    method: &str,
    target: &str,
    body: &[u8],
) -> Result<Reply, String> {
    let reply = http(addr, method, target, body, BOUND).map_err(|e| format!("{addr}: {e}"))?;
    let (308, Some(location)) = (reply.status, &reply.location) else {
        return Ok(reply);
    };
    let rest = location
        .strip_prefix("http://")
        .ok_or_else(|| format!("odd Location {location:?}"))?;
    let (leader, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("odd Location {location:?}"))?;
    if path != &target[1..] {
        return Err(format!("Location {location:?} is not for {target}"));
    }
    http(leader, method, target, body, BOUND).map_err(|e| format!("{leader}: {e}"))
}

/// Writes `key` = `value` through `addr`, following a redirect to the leader once; `Ok` only
/// with a 200 (an acknowledged write).
pub(crate) fn put(addr: &str, key: &str, value: &str) -> Result<(), String> {
    let target = format!("/kv/{key}");
    let reply = send_to_leader(addr, "PUT", &target, value.as_bytes())?;
    if reply.status == 200 {
        Ok(())
    } else {
        Err(format!("PUT {target} via {addr}: {reply:?}"))
    }
}

/// Writes until one attempt is acknowledged, trying `addrs` in turn, within [`BOUND`]. A write
/// that was not acknowledged may still apply later: retrying the same value keeps that
/// harmless.
pub(crate) fn put_acknowledged(addrs: &[&str], key: &str, value: &str) {
    let deadline = Instant::now() + BOUND;
    let mut errors = Vec::new();
    for addr in addrs.iter().cycle() {
        match put(addr, key, value) {
            Ok(()) => return,
            Err(error) => errors.push(error),
        }
        assert!(
            Instant::now() < deadline,
            "no write of {key} was acknowledged within {BOUND:?}: {errors:#?}"
        );
        settle_after_failure(addr);
    }
}

/// After a write through `addr` failed, waits (a long poll, at most a second) for what can
/// change the outcome: a leader when `addr` knows none, else a leader elected after the term
/// `addr` is in (the one it knows may be dead). A node that is down answers nothing and the
/// next one is tried at once.
pub(crate) fn settle_after_failure(addr: &str) {
    let Ok(reply) = http(addr, "GET", "/cluster", b"", BOUND) else {
        return;
    };
    let Ok(view) = View::parse(&reply.body) else {
        return;
    };
    let condition = match view.leader_id {
        None => "leader".to_owned(),
        Some(_) => format!("leader_after:{}", view.term),
    };
    let target = format!("/cluster?wait={condition}&timeout_ms=1000");
    let _ = http(addr, "GET", &target, b"", BOUND);
}

/// A linearizable read of `key` on `addr`: `None` for 404.
pub(crate) fn get(addr: &str, key: &str) -> Option<String> {
    let reply = http(addr, "GET", &format!("/kv/{key}"), b"", BOUND)
        .unwrap_or_else(|e| panic!("GET /kv/{key} on {addr}: {e}"));
    match reply.status {
        // The body is the value, as it was written.
        200 => Some(reply.body),
        404 => None,
        _ => panic!("GET /kv/{key} on {addr}: {reply:?}"),
    }
}

/// Three nodes, their data dirs and logs; reports the logs when the test fails.
pub(crate) struct Cluster {
    nodes: Vec<Option<NodeProcess>>,
    addrs: Vec<String>,
    dirs: Vec<PathBuf>,
    logs: Vec<PathBuf>,
    /// The data dirs and logs; removed after the processes are gone (fields drop in order).
    _tmp: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        report_logs(&self.logs);
        for node in self.nodes.iter_mut().filter_map(Option::as_mut) {
            node.kill();
        }
    }
}

impl Cluster {
    pub(crate) fn new() -> Self {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let dirs = (1..=3)
            .map(|id| tmp.path().join(format!("n{id}")))
            .collect();
        let logs = (1..=3)
            .map(|id| tmp.path().join(format!("n{id}.log")))
            .collect();
        Self {
            nodes: vec![None, None, None],
            addrs: vec![String::new(); 3],
            dirs,
            logs,
            _tmp: tmp,
        }
    }

    /// Node 1 bootstraps the cluster, nodes 2 and 3 join through it, all with `args`;
    /// returns node 1's address.
    pub(crate) fn start_three(&mut self, args: &[&str]) -> String {
        self.start(1, &[args, &["--bootstrap"]].concat());
        let one = self.addr(1).to_owned();
        for id in [2, 3] {
            self.start(id, &[args, &["--join", &one]].concat());
        }
        one
    }

    pub(crate) fn start(&mut self, id: u64, args: &[&str]) {
        let i = index(id);
        let node = NodeProcess::start(id, &self.dirs[i], &self.logs[i], args)
            .unwrap_or_else(|e| panic!("{e}"));
        self.addrs[i] = node.addr.clone();
        self.nodes[i] = Some(node);
    }

    pub(crate) fn restart(&mut self, id: u64, args: &[&str]) {
        let i = index(id);
        let node = NodeProcess::restart(id, &self.dirs[i], &self.logs[i], args, &self.addrs[i])
            .unwrap_or_else(|e| panic!("{e}"));
        self.nodes[i] = Some(node);
    }

    /// Starts a node again on its data dir, on whatever address `args` give it.
    pub(crate) fn move_to(&mut self, id: u64, args: &[&str]) {
        self.start(id, args);
    }

    pub(crate) fn kill(&mut self, id: u64) {
        let mut node = self.nodes[index(id)].take().expect("the node runs");
        node.kill();
    }

    pub(crate) fn addr(&self, id: u64) -> &str {
        &self.addrs[index(id)]
    }

    pub(crate) fn running(&self) -> Vec<&str> {
        (1..=3)
            .filter(|&id| self.nodes[index(id)].is_some())
            .map(|id| self.addr(id))
            .collect()
    }
}

pub(crate) fn index(id: u64) -> usize {
    usize::try_from(id - 1).expect("a small id")
}

/// Every acknowledged write, read linearizably on `addr`.
pub(crate) fn check(addr: &str, acked: &BTreeMap<String, String>) {
    for (key, value) in acked {
        assert_eq!(
            get(addr, key).as_deref(),
            Some(value.as_str()),
            "{key} on {addr}"
        );
    }
}
