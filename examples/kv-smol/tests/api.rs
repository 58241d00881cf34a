//! The `kv-smol` binary alone: its command line, and the HTTP API of a one-node cluster.
//! Every process is killed and reaped when its guard drops; every wait is bounded.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Instant;

use common::{BOUND, NodeProcess, binary, get, http, report_logs, view, wait_for};

/// Kills (SIGKILL) and reaps its child when dropped.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the binary with `args` to its end (within [`BOUND`]): exit code, stdout, stderr.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Reaped(
        binary()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts"),
    );
    // Both pipes are read to their end (the process exited, or closed them) in threads.
    let (tx, rx) = mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.0.stdout.take().expect("piped")),
        Box::new(child.0.stderr.take().expect("piped")),
    ];
    for (i, mut pipe) in pipes.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            let _ = tx.send((i, String::from_utf8_lossy(&text).into_owned()));
        });
    }
    let deadline = Instant::now() + BOUND;
    let mut out = [String::new(), String::new()];
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, text) = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("kv-smol {args:?} still runs after {BOUND:?}"));
        out[i] = text;
    }
    let status = child.0.wait().expect("its status");
    let [stdout, stderr] = out;
    (status.code(), stdout, stderr)
}

#[test]
fn bad_command_lines_exit_2_with_the_usage_and_help_exits_0() {
    for (args, message) in [
        (&[][..], "--id is required"),
        (&["--id", "1", "--bootstrap"], "--data-dir is required"),
        (
            &["--id", "1", "--data-dir", "d"],
            "one of --bootstrap and --join",
        ),
        (
            &[
                "--id",
                "1",
                "--data-dir",
                "d",
                "--bootstrap",
                "--join",
                "a:1",
            ],
            "exactly one",
        ),
        (
            &["--id", "zero", "--data-dir", "d", "--bootstrap"],
            "\"zero\"",
        ),
        (&["--frobnicate"], "unknown argument"),
        (
            &[
                "--id",
                "1",
                "--data-dir",
                "d",
                "--bootstrap",
                "--listen",
                "nowhere",
            ],
            "not an IP:port",
        ),
    ] {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(
            stderr.starts_with("kv-smol: ") && stderr.contains(message),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("usage: kv-smol --id <u64>"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("usage: kv-smol --id <u64>"), "{stdout}");
}

#[test]
fn a_join_that_never_succeeds_exits_1() {
    // A port nobody listens on: bind one, learn it, close it.
    let nobody = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .to_string();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("n9.log");
    let mut node = NodeProcess::start(
        9,
        &tmp.path().join("n9"),
        &log,
        &["--join", &nobody, "--join-timeout-ms", "600"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let status = node
        .exit_status(BOUND)
        .unwrap_or_else(|e| panic!("{e}\n{}", common::tail(&log, 40)));
    assert_eq!(status.code(), Some(1), "{}", common::tail(&log, 40));
    let text = common::tail(&log, 40);
    assert!(
        text.contains(&format!("could not join through {nobody}")),
        "{text}"
    );
}

/// One bootstrapped node and its log; reports the log when the test fails.
struct One {
    node: NodeProcess,
    log: std::path::PathBuf,
    dir: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for One {
    fn drop(&mut self) {
        report_logs(std::slice::from_ref(&self.log));
        self.node.kill();
    }
}

fn one_node() -> One {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("n1.log");
    let dir = tmp.path().join("n1");
    let node =
        NodeProcess::start(1, &dir, &log, &["--bootstrap"]).unwrap_or_else(|e| panic!("{e}"));
    One {
        node,
        log,
        dir,
        _tmp: tmp,
    }
}

#[test]
fn a_single_node_serves_the_api_next_to_raft() {
    let one = one_node();
    let addr = one.node.addr.as_str();
    // The address is recorded in the data dir, for the next start.
    let recorded = std::fs::read_to_string(one.dir.join("listen")).unwrap();
    assert_eq!(recorded.trim(), addr);

    let view1 = wait_for(addr, "leader,voters:1");
    assert!(view1.is_leader, "{view1:?}");
    assert_eq!(view1.leader_address.as_deref(), Some(addr));
    assert_eq!(view1.address, addr);

    let call = |method: &str, target: &str, body: &[u8]| {
        http(addr, method, target, body, BOUND).unwrap_or_else(|e| panic!("{method} {target}: {e}"))
    };
    assert_eq!(get(addr, "apple"), None);
    assert_eq!(call("PUT", "/kv/apple", b"red").status, 200);
    assert_eq!(get(addr, "apple").as_deref(), Some("red"));
    assert_eq!(call("PUT", "/kv/apple", b"").status, 200);
    assert_eq!(get(addr, "apple").as_deref(), Some(""));
    let applied = view(addr).applied;
    assert!(applied >= view1.applied + 2, "{applied}");
    wait_for(addr, &format!("applied:{applied}"));

    for (method, target, body, status) in [
        ("PUT", "/kv/", &b"x"[..], 400),
        ("PUT", "/kv/a/b", b"x", 400),
        ("PUT", "/kv/bin", b"\xff\xfe", 400),
        ("DELETE", "/kv/apple", b"", 405),
        ("POST", "/cluster", b"", 405),
        ("GET", "/", b"", 404),
        ("GET", "/kv", b"", 404),
        ("GET", "/cluster?wait=leaders", b"", 400),
        ("GET", "/cluster?wait=leader&timeout_ms=60001", b"", 400),
        ("GET", "/cluster?verbose=1", b"", 400),
        // The Raft path stays the rafthttp handler's.
        ("GET", "/raft", b"", 400),
    ] {
        let reply = call(method, target, body);
        assert_eq!(reply.status, status, "{method} {target}: {reply:?}");
    }
    // A condition that does not hold in time: 408, with the view as it is.
    // The application's own fields, through the handler's fallback.
    let refused = call("DELETE", "/kv/apple", b"");
    assert_eq!(refused.header("Allow"), Some("GET, PUT"), "{refused:?}");
    assert_eq!(call("POST", "/cluster", b"").header("Allow"), Some("GET"));
    // A value comes back exactly as written, with no newline added.
    let value = "two\nlines, no newline at the end";
    assert_eq!(call("PUT", "/kv/lines", value.as_bytes()).status, 200);
    let read = call("GET", "/kv/lines", b"");
    assert_eq!(read.body, value);
    assert_eq!(
        read.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    let reply = call("GET", "/cluster?wait=voters:2&timeout_ms=200", b"");
    assert_eq!(reply.status, 408, "{reply:?}");
    assert!(reply.body.contains("\nvoters=1\n"), "{reply:?}");
}
