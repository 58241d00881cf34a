//! Driver unit tests over scripted IO (STYLE.md section 6): reads that come in tiny pieces with
//! `Pending` between them, short, zero and failing writes, EOF in awkward places, and timeouts
//! on a simulated clock. Real sockets cannot produce these cases deterministically; the
//! integration suite in `tests/` covers the same API over real sockets.
//!
//! Every test runs on [`support::Sim`]: its clock jumps to the next timer when all tasks wait, so
//! a timeout of seconds costs no real time and elapsed times can be asserted exactly.

mod support;

use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use futures_util::future::{Either, join, select};
use futures_util::{AsyncReadExt, StreamExt};
use rafthttp_driver::core::Change;
use rafthttp_driver::core::MembershipError as CoreMembershipError;
use rafthttp_driver::{
    ChangeError, ChangeKind, ChangeMembership, DialError, Handler, HandlerConfig, MembershipError,
    Prefixed, RaftPath, Scheme, change_membership, dial,
};

use support::{Connect, MockConn, MockDialer, MockListener, Read, Sim, Writes, pieces};

use rafthttp_tests::SWITCHING;

/// An upgrade request as the Go client sends it (no `Connection` header).
const UPGRADE: &[u8] = b"GET /raft HTTP/1.1\r\nHost: a:1\r\nUpgrade: raft\r\n\r\n";

/// A request for another path, answered 404.
const ELSEWHERE: &[u8] = b"GET /elsewhere HTTP/1.1\r\nHost: a:1\r\n\r\n";

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
    X-Content-Type-Options: nosniff\r\nContent-Length: 19\r\n\r\n404 page not found\n";

/// Bound of the waits that must not time out; reaching it fails the test (simulated time).
const WAIT: Duration = Duration::from_secs(3600);

fn peer() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 5000))
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A plain-text response as the handler encodes it.
fn text_response(status_line: &str, body: &str, close: bool) -> String {
    format!(
        "HTTP/1.1 {status_line}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         X-Content-Type-Options: nosniff\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        if close { "Connection: close\r\n" } else { "" },
    )
}

/// `f`, unless `limit` (simulated) passes first.
async fn within<F: Future>(rt: &Sim, limit: Duration, f: F) -> Option<F::Output> {
    match select(pin!(f), rt.sleep(limit)).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(((), _)) => None,
    }
}

fn handler(config: HandlerConfig) -> Handler<MockConn> {
    Handler::new(config)
}

// ---------------------------------------------------------------------------------------------
// serve_connection
// ---------------------------------------------------------------------------------------------

#[test]
fn head_in_tiny_pieces_with_pending_gets_the_response() {
    let rt = Sim::new();
    let handler = handler(HandlerConfig::default());
    let request = b"POST /raft?id=7&address=b:2 HTTP/1.1\r\nHost: a:1\r\nContent-Length: 0\r\n\r\n";
    let conn = MockConn::new("c", pieces(request, 1));
    let probe = conn.probe();
    let requests = handler.requests();
    let ((), seen) = rt.run(join(handler.serve_connection(&rt, conn, peer()), async {
        let request = requests.recv().await.expect("a request");
        let seen = (
            request.kind(),
            request.id().to_owned(),
            request.address().to_owned(),
        );
        assert!(request.respond(Ok(())));
        seen
    }));
    assert_eq!(seen, (ChangeKind::Join, "7".to_owned(), "b:2".to_owned()));
    assert_eq!(probe.text(), OK);
    assert!(probe.dropped(), "EOF after the request ends the connection");
    assert_eq!(rt.elapsed(), Duration::ZERO, "no timeout was involved");
}

#[test]
fn short_and_pending_writes_still_deliver_every_byte() {
    let rt = Sim::new();
    let handler = handler(HandlerConfig::default());
    let conn = MockConn::new("c", [Read::Data(cat(&[ELSEWHERE, UPGRADE]))])
        .writes(Writes::Short(3))
        .pending_writes();
    let probe = conn.probe();
    let (accepted, ()) = rt.run(join(
        within(&rt, WAIT, handler.accept()),
        handler.serve_connection(&rt, conn, peer()),
    ));
    let accepted = accepted.expect("accept in time").expect("accepted");
    assert_eq!(accepted.io.label(), "c");
    assert_eq!(probe.written(), cat(&[NOT_FOUND.as_bytes(), SWITCHING]));
    let expected_calls = NOT_FOUND.len().div_ceil(3) + SWITCHING.len().div_ceil(3);
    assert_eq!(probe.write_calls(), expected_calls, "three bytes per write");
}

#[test]
fn zero_write_drops_the_connection_without_waiting() {
    let rt = Sim::new();
    let handler = handler(HandlerConfig::default());
    let conn =
        MockConn::new("c", [Read::Data(ELSEWHERE.to_vec()), Read::Hang]).writes(Writes::Zero);
    let probe = conn.probe();
    rt.run(handler.serve_connection(&rt, conn, peer()));
    assert!(probe.written().is_empty());
    assert!(probe.dropped());
    assert_eq!(
        rt.elapsed(),
        Duration::ZERO,
        "a zero write is an error, not a wait"
    );
}

#[test]
fn failed_101_never_reaches_accept_and_frees_its_slot() {
    // Go 5: writing the 101 fails -> the connection is closed and never reaches accept(). With
    // one accept slot, a leaked reservation would refuse the next upgrade with 503.
    let rt = Sim::new();
    let handler = handler(HandlerConfig::default().with_accept_queue(1));
    let broken = MockConn::new("broken", [Read::Data(cat(&[UPGRADE, b"raft"]))])
        .writes(Writes::FailAfter(10, ErrorKind::BrokenPipe));
    let broken_probe = broken.probe();
    // accept() waits while the connection is served, and until long after.
    let (accepted, ()) = rt.run(join(within(&rt, WAIT, handler.accept()), async {
        handler.serve_connection(&rt, broken, peer()).await;
        assert_eq!(rt.elapsed(), Duration::ZERO, "dropped at once");
        assert!(broken_probe.dropped(), "the connection is closed");
    }));
    assert!(accepted.is_none(), "accept() returned {accepted:?}");
    assert_eq!(broken_probe.written(), &SWITCHING[..10]);
    assert!(
        !broken_probe.closed(),
        "dropped, not closed gracefully after a write error"
    );

    let good = MockConn::new("good", [Read::Data(UPGRADE.to_vec())]);
    let good_probe = good.probe();
    let (accepted, ()) = rt.run(join(
        within(&rt, WAIT, handler.accept()),
        handler.serve_connection(&rt, good, peer()),
    ));
    let accepted = accepted.expect("accept in time").expect("accepted");
    assert_eq!(accepted.io.label(), "good");
    assert_eq!(good_probe.written(), SWITCHING);
}

#[test]
fn eof_inside_a_head_closes_without_a_response() {
    for reads in [
        vec![Read::Data(b"GET /raft HTTP/1.1\r\nHo".to_vec()), Read::Eof],
        vec![
            Read::Data(b"POST /raft?id=1 HTTP/1.1\r\n".to_vec()),
            Read::Pending,
            Read::Data(b"Host: a:1\r\n".to_vec()),
        ],
        vec![
            Read::Data(b"GET /raft HTTP/1.1\r\n".to_vec()),
            Read::Error(ErrorKind::ConnectionReset),
        ],
    ] {
        let rt = Sim::new();
        let handler = handler(HandlerConfig::default());
        let conn = MockConn::new("c", reads.clone());
        let probe = conn.probe();
        rt.run(handler.serve_connection(&rt, conn, peer()));
        assert_eq!(probe.text(), "", "{reads:?}");
        assert!(probe.dropped(), "{reads:?}");
        assert_eq!(
            rt.elapsed(),
            Duration::ZERO,
            "{reads:?}: ended by EOF, not a timeout"
        );
        assert!(handler.requests().try_recv().is_none());
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let rt = Sim::new();
    let handler = handler(HandlerConfig::default());
    let join_request: &[u8] =
        b"POST /raft?id=1&address=c:3 HTTP/1.1\r\nHost: a:1\r\nContent-Length: 0\r\n\r\n";
    let conn = MockConn::new("c", [Read::Data(cat(&[join_request, ELSEWHERE]))]);
    let probe = conn.probe();
    let requests = handler.requests();
    rt.run(join(handler.serve_connection(&rt, conn, peer()), async {
        let request = requests.recv().await.expect("a request");
        // The application is slow; the 404 behind must still come second.
        rt.sleep(Duration::from_secs(1)).await;
        assert!(request.respond(Ok(())));
    }));
    assert_eq!(probe.text(), format!("{OK}{NOT_FOUND}"));
}

/// Captures the handler's log lines (tracing's fmt output, no colors or timestamps).
#[derive(Clone, Default)]
struct LogLines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

thread_local! {
    /// Where this thread's log lines go while a test captures them.
    static CAPTURING: std::cell::RefCell<Option<LogLines>> = const { std::cell::RefCell::new(None) };
}

/// Ends a capture when dropped.
struct Capturing;

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURING.with(|c| c.borrow_mut().take());
    }
}

impl LogLines {
    /// Captures this thread's events at debug level and above until the guard drops.
    ///
    /// The subscriber is the process's global default, installed once and always interested:
    /// a scoped one (`set_default`) can miss a span whose callsite another test's thread
    /// registers at the same moment (tracing then caches it as never enabled), which made the
    /// span prefix vanish from a line now and then.
    fn capture() -> (Self, Capturing) {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .without_time()
                .with_writer(|| ThreadLines)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("the only global subscriber");
        });
        let lines = Self::default();
        CAPTURING.with(|c| *c.borrow_mut() = Some(lines.clone()));
        (lines, Capturing)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Appends to the capturing test's lines when this thread has one; drops the line otherwise.
struct ThreadLines;

impl std::io::Write for ThreadLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURING.with(|c| {
            if let Some(lines) = c.borrow().as_ref() {
                lines.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_answered_request_is_logged_once_at_its_severity_with_its_duration() {
    let (lines, _default) = LogLines::capture();

    let rt = Sim::new();
    let handler = handler(HandlerConfig::default());
    let join_request: &[u8] =
        b"POST /raft?id=1&address=c:3 HTTP/1.1\r\nHost: a:1\r\nContent-Length: 0\r\n\r\n";
    let conn = MockConn::new("c", [Read::Data(cat(&[join_request, ELSEWHERE]))]);
    let requests = handler.requests();
    rt.run(join(handler.serve_connection(&rt, conn, peer()), async {
        let request = requests.recv().await.expect("a request");
        rt.sleep(Duration::from_millis(1500)).await;
        assert!(request.respond(Ok(())));
    }));
    let text = lines.text();
    let answered: Vec<_> = text.lines().filter(|l| l.contains("request ")).collect();
    assert_eq!(answered.len(), 2, "{text}");
    for (line, expected) in answered.iter().zip([
        [
            "DEBUG",
            "request answered",
            "method=POST",
            "path=/raft",
            "status=200",
            "micros=1500000",
        ],
        [
            "INFO",
            "request refused",
            "method=GET",
            "path=/elsewhere",
            "status=404",
            "micros=0",
        ],
    ]) {
        for part in expected {
            assert!(line.contains(part), "{part:?} missing from {line:?}");
        }
    }
}

#[test]
fn bytes_behind_the_upgrade_head_come_first() {
    let rt = Sim::new();
    let handler = handler(HandlerConfig::default());
    let (head, end) = UPGRADE.split_at(UPGRADE.len() - 2);
    let conn = MockConn::new(
        "c",
        [
            Read::Data(head.to_vec()),
            Read::Pending,
            Read::Data(cat(&[end, b"first "])),
            Read::Data(b"second".to_vec()),
        ],
    );
    let probe = conn.probe();
    let (accepted, ()) = rt.run(join(
        within(&rt, WAIT, handler.accept()),
        handler.serve_connection(&rt, conn, peer()),
    ));
    let accepted = accepted.expect("accept in time").expect("accepted");
    assert_eq!(probe.written(), SWITCHING);
    assert_eq!(accepted.prefix.remaining(), b"first ");
    let mut stream = Prefixed::new(accepted.prefix, accepted.io);
    let mut raft = Vec::new();
    rt.run(stream.read_to_end(&mut raft)).expect("read");
    assert_eq!(raft, b"first second");
}

#[test]
fn split_body_is_skipped_before_the_next_request() {
    let rt = Sim::new();
    let handler = handler(HandlerConfig::default());
    // A body that would read as a (malformed) request of its own if it were not skipped.
    let mut reads = vec![Read::Data(
        b"POST /elsewhere HTTP/1.1\r\nHost: a:1\r\nContent-Length: 10\r\n\r\nx y".to_vec(),
    )];
    reads.extend(pieces(b"\r\n\r\n", 2));
    reads.push(Read::Pending);
    reads.push(Read::Data(cat(&[b"zzz", ELSEWHERE])));
    let conn = MockConn::new("c", reads);
    let probe = conn.probe();
    rt.run(handler.serve_connection(&rt, conn, peer()));
    assert_eq!(probe.text(), format!("{NOT_FOUND}{NOT_FOUND}"));
}

#[test]
fn body_over_max_body_gets_413_and_close() {
    let rt = Sim::new();
    let handler = handler(HandlerConfig::default().with_max_body(8));
    let conn = MockConn::new(
        "c",
        [
            Read::Data(cat(&[
                b"POST /raft?id=1 HTTP/1.1\r\nHost: a:1\r\nContent-Length: 9\r\n\r\n123456789",
                ELSEWHERE,
            ])),
            Read::Hang,
        ],
    );
    let probe = conn.probe();
    rt.run(handler.serve_connection(&rt, conn, peer()));
    assert_eq!(
        probe.text(),
        text_response(
            "413 Request Entity Too Large",
            "request body exceeds 8 bytes\n",
            true
        )
    );
    assert!(probe.closed(), "the connection is closed after the 413");
    assert_eq!(
        rt.elapsed(),
        Duration::ZERO,
        "closed at once, not at the idle timeout"
    );
    assert!(
        handler.requests().try_recv().is_none(),
        "the join never reached the application"
    );
}

#[test]
fn heads_are_due_at_the_head_timeout_and_kept_alive_connections_wait_the_idle_timeout() {
    let (head, idle) = (Duration::from_secs(5), Duration::from_secs(30));
    let partial = b"GET /raft HTTP/1.1\r\n".to_vec();
    for (reads, expected, closed_at) in [
        // Nothing ever arrives: the first head is due `head` after the accept.
        (vec![Read::Hang], String::new(), head),
        // A head that never completes (slowloris).
        (
            vec![Read::Data(partial.clone()), Read::Hang],
            String::new(),
            head,
        ),
        // A request answered, then nothing: kept alive for `idle`.
        (
            vec![Read::Data(ELSEWHERE.to_vec()), Read::Hang],
            NOT_FOUND.to_owned(),
            idle,
        ),
        // A request answered, then the start of another that never completes: `head` from
        // its first byte.
        (
            vec![Read::Data(cat(&[ELSEWHERE, &partial])), Read::Hang],
            NOT_FOUND.to_owned(),
            head,
        ),
    ] {
        let rt = Sim::new();
        let config = HandlerConfig::default()
            .with_head_timeout(head)
            .with_idle_timeout(idle);
        let handler = handler(config);
        let conn = MockConn::new("c", reads.clone());
        let probe = conn.probe();
        rt.run(handler.serve_connection(&rt, conn, peer()));
        assert_eq!(probe.text(), expected, "{reads:?}");
        assert!(probe.dropped(), "{reads:?}");
        assert_eq!(rt.elapsed(), closed_at, "{reads:?}");
    }
}

#[test]
fn at_the_cap_the_connection_waiting_longest_for_a_head_is_shed() {
    let rt = Sim::new();
    let idle = Duration::from_secs(30);
    let config = HandlerConfig::default()
        .with_max_connections(2)
        .with_head_timeout(Duration::from_secs(20))
        .with_idle_timeout(idle);
    let handler = handler(config);
    // Two slow clients, then a real one at the cap: the oldest slow one makes room.
    let slow_a = MockConn::new("slow a", [Read::Hang]);
    let slow_b = MockConn::new("slow b", [Read::Data(b"GE".to_vec()), Read::Hang]);
    let real = MockConn::new("real", [Read::Data(ELSEWHERE.to_vec()), Read::Hang]);
    // At the cap again (slow b and real): real already sent its head, so slow b goes.
    let second = MockConn::new("second", [Read::Data(ELSEWHERE.to_vec()), Read::Hang]);
    // At the cap with nobody waiting for a head (real and second idle): closed at once.
    let third = MockConn::new("third", [Read::Data(ELSEWHERE.to_vec())]);
    let probes = [&slow_a, &slow_b, &real, &second, &third].map(MockConn::probe);
    let listener = MockListener::new(
        &rt,
        [
            (Duration::ZERO, slow_a),
            (Duration::from_secs(1), slow_b),
            (Duration::from_secs(2), real),
            (Duration::from_secs(3), second),
            (Duration::from_secs(4), third),
        ],
    );
    let (served, ()) = rt.run(join(
        within(
            &rt,
            Duration::from_secs(10),
            handler.serve(rt.clone(), listener),
        ),
        async {
            rt.sleep(Duration::from_millis(2500)).await;
            assert!(probes[0].dropped(), "the oldest slow client was shed");
            assert!(!probes[1].dropped());
            assert_eq!(probes[2].text(), NOT_FOUND, "the newcomer was served");
            rt.sleep(Duration::from_secs(1)).await;
            assert!(probes[1].dropped(), "then the other slow client");
            assert_eq!(probes[3].text(), NOT_FOUND);
        },
    ));
    assert!(served.is_none(), "serve runs until dropped");
    assert!(
        probes[4].dropped(),
        "nobody to shed: the newcomer is closed"
    );
    assert_eq!(probes[4].text(), "", "without a response");
    assert_eq!([probes[0].text(), probes[1].text()], ["", ""]);
}

#[test]
fn one_source_cannot_hold_more_than_its_share_of_waiting_connections() {
    let rt = Sim::new();
    let config = HandlerConfig::default()
        .with_max_waiting_per_source(2)
        .with_head_timeout(Duration::from_secs(20));
    let handler = handler(config);
    let attacker = std::net::IpAddr::from([192, 0, 2, 66]);
    let slow: Vec<MockConn> = (0..4)
        .map(|_| MockConn::new("slow", [Read::Hang]))
        .collect();
    let probes: Vec<_> = slow.iter().map(MockConn::probe).collect();
    let friend = MockConn::new("friend", [Read::Data(ELSEWHERE.to_vec())]);
    let friend_probe = friend.probe();
    let mut plan: Vec<_> = slow
        .into_iter()
        .enumerate()
        .map(|(i, conn)| (Duration::from_secs(i as u64), conn, attacker))
        .collect();
    plan.push((Duration::from_secs(5), friend, peer().ip()));
    let listener = MockListener::from(&rt, plan);
    let (served, ()) = rt.run(join(
        within(
            &rt,
            Duration::from_secs(10),
            handler.serve(rt.clone(), listener),
        ),
        async {
            rt.sleep(Duration::from_secs(6)).await;
            let dropped: Vec<bool> = probes.iter().map(|p| p.dropped()).collect();
            assert_eq!(
                dropped,
                [false, false, true, true],
                "two wait, the rest are closed"
            );
            assert_eq!(friend_probe.text(), NOT_FOUND, "another source is served");
        },
    ));
    assert!(served.is_none());
}

#[test]
fn serve_with_runs_each_handshake_in_its_connection_task() {
    let rt = Sim::new();
    let idle = Duration::from_secs(30);
    // The Location scheme comes from the configuration (Go's `http` by default, even behind
    // a TLS handshake); this one asks for `https`.
    let config = HandlerConfig::default()
        .with_idle_timeout(idle)
        .with_head_timeout(idle)
        .with_scheme(Scheme::Https);
    let handler = handler(config);
    let stalled = MockConn::new("stalled", [Read::Hang]);
    let refused = MockConn::new("refused", [Read::Data(ELSEWHERE.to_vec())]);
    let served = MockConn::new("served", [Read::Data(ELSEWHERE.to_vec())]);
    let join_request = b"POST /raft?id=1&address=me:1 HTTP/1.1\r\nHost: a:1\r\n\r\n";
    let redirected = MockConn::new("redirected", [Read::Data(join_request.to_vec())]);
    let probes = [&stalled, &refused, &served, &redirected].map(MockConn::probe);
    let listener = MockListener::new(
        &rt,
        [
            (Duration::ZERO, stalled),
            (Duration::from_secs(1), refused),
            (Duration::from_secs(2), served),
            (Duration::from_secs(3), redirected),
        ],
    );
    // A handshake that never ends for `stalled` and fails for `refused`.
    let sim = rt.clone();
    let handshake = move |conn: MockConn| {
        let sim = sim.clone();
        async move {
            match conn.label() {
                "stalled" => {
                    sim.sleep(Duration::from_secs(3600)).await;
                    Ok(conn)
                }
                "refused" => Err(std::io::Error::other("bad certificate")),
                _ => Ok(conn),
            }
        }
    };
    let requests = handler.requests();
    let (out, ()) = rt.run(join(
        within(
            &rt,
            Duration::from_secs(100),
            handler.serve_with(rt.clone(), listener, handshake),
        ),
        async {
            let request = requests.recv().await.expect("join request");
            request.respond(Err(ChangeError::NotLeader {
                leader: Some("leader:2".to_owned()),
            }));
            rt.sleep(Duration::from_secs(5)).await;
            assert!(
                !probes[0].dropped(),
                "the stalled handshake holds only its own task"
            );
            assert!(
                probes[1].dropped(),
                "a failed handshake closes the connection"
            );
            assert_eq!(
                probes[2].text(),
                NOT_FOUND,
                "served while the first one stalls"
            );
        },
    ));
    assert!(out.is_none(), "serve runs until dropped");
    assert!(probes[0].dropped(), "dropped at the head timeout");
    assert_eq!(probes[0].text(), "");
    assert_eq!(probes[1].text(), "");
    let redirect = probes[3].text();
    assert!(
        redirect.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"),
        "{redirect}"
    );
    assert!(
        redirect.contains("\r\nLocation: https://leader:2/raft?id=1&address=me:1\r\n"),
        "{redirect}"
    );
}

// ---------------------------------------------------------------------------------------------
// dial
// ---------------------------------------------------------------------------------------------

fn raft_path() -> RaftPath {
    RaftPath::new("/raft").expect("path")
}

fn dial_with(
    rt: &Sim,
    dialer: &MockDialer,
    timeout: Duration,
) -> Result<rafthttp_driver::Upgraded<MockConn>, DialError> {
    rt.run(dial(
        rt,
        dialer,
        &raft_path(),
        "node-2:7000",
        timeout,
        &rafthttp_driver::ClientConfig::default(),
    ))
}

#[test]
fn dial_sends_exactly_the_upgrade_request() {
    let rt = Sim::new();
    let conn = MockConn::new("c", [Read::Data(SWITCHING.to_vec())]);
    let probe = conn.probe();
    let dialer = MockDialer::conns([conn]);
    let path = RaftPath::new("/cluster/raft").expect("path");
    let upgraded = rt
        .run(dial(
            &rt,
            &dialer,
            &path,
            "[::1]:7000",
            WAIT,
            &rafthttp_driver::ClientConfig::default(),
        ))
        .expect("dial");
    assert_eq!(
        probe.text(),
        "GET /cluster/raft HTTP/1.1\r\nHost: [::1]:7000\r\nUpgrade: raft\r\nConnection: Upgrade\r\n\r\n"
    );
    assert_eq!(dialer.authorities(), ["[::1]:7000"]);
    assert!(upgraded.prefix.is_empty());
}

#[test]
fn dial_reads_a_response_head_in_tiny_pieces() {
    let rt = Sim::new();
    let conn = MockConn::new("c", pieces(SWITCHING, 1))
        .writes(Writes::Short(5))
        .pending_writes();
    let probe = conn.probe();
    let dialer = MockDialer::conns([conn]);
    let upgraded = dial_with(&rt, &dialer, WAIT).expect("dial");
    assert_eq!(upgraded.io.label(), "c");
    assert!(upgraded.prefix.is_empty());
    assert_eq!(
        probe.text(),
        "GET /raft HTTP/1.1\r\nHost: node-2:7000\r\nUpgrade: raft\r\nConnection: Upgrade\r\n\r\n"
    );
    assert_eq!(rt.elapsed(), Duration::ZERO);
}

#[test]
fn dial_keeps_the_bytes_behind_the_101_exactly() {
    let rt = Sim::new();
    let conn = MockConn::new(
        "c",
        [
            Read::Data(cat(&[SWITCHING, b"\x00raft\r\n"])),
            Read::Data(b"later".to_vec()),
        ],
    );
    let dialer = MockDialer::conns([conn]);
    let upgraded = dial_with(&rt, &dialer, WAIT).expect("dial");
    assert_eq!(upgraded.prefix.remaining(), b"\x00raft\r\n");
    let mut stream = Prefixed::new(upgraded.prefix, upgraded.io);
    let mut raft = Vec::new();
    rt.run(stream.read_to_end(&mut raft)).expect("read");
    assert_eq!(
        raft, b"\x00raft\r\nlater",
        "dial read nothing past the first read"
    );
}

#[test]
fn dial_eof_or_read_error_before_the_head_is_a_receive_error() {
    for reads in [
        vec![Read::Eof],
        vec![
            Read::Data(SWITCHING[..20].to_vec()),
            Read::Pending,
            Read::Eof,
        ],
        vec![
            Read::Data(SWITCHING[..20].to_vec()),
            Read::Error(ErrorKind::ConnectionReset),
        ],
    ] {
        let rt = Sim::new();
        let dialer = MockDialer::conns([MockConn::new("c", reads.clone())]);
        let error = dial_with(&rt, &dialer, WAIT).expect_err("no 101");
        assert!(
            matches!(error, DialError::Receive(_)),
            "{reads:?}: {error:?}"
        );
        assert!(
            error.to_string().starts_with("failed to read response: "),
            "{reads:?}: {error}"
        );
    }
}

#[test]
fn dial_write_error_is_a_send_error() {
    for after in [0, 7] {
        let rt = Sim::new();
        let conn = MockConn::new("c", [Read::Data(SWITCHING.to_vec())])
            .writes(Writes::FailAfter(after, ErrorKind::BrokenPipe));
        let probe = conn.probe();
        let dialer = MockDialer::conns([conn]);
        let error = dial_with(&rt, &dialer, WAIT).expect_err("write fails");
        let DialError::Send(source) = &error else {
            panic!("after {after}: {error:?}");
        };
        assert_eq!(source.kind(), ErrorKind::BrokenPipe);
        assert!(
            error
                .to_string()
                .starts_with("sending HTTP request failed: "),
            "{error}"
        );
        assert_eq!(probe.written().len(), after);
    }
}

#[test]
fn dial_zero_write_fails_instead_of_hanging() {
    let rt = Sim::new();
    let conn = MockConn::new("c", [Read::Hang]).writes(Writes::Zero);
    let dialer = MockDialer::conns([conn]);
    let error = dial_with(&rt, &dialer, WAIT).expect_err("zero write");
    let DialError::Send(source) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(source.kind(), ErrorKind::WriteZero);
    assert_eq!(
        rt.elapsed(),
        Duration::ZERO,
        "failed at once, not at the deadline"
    );
}

#[test]
fn dial_timeout_covers_connect_and_handshake() {
    let timeout = Duration::from_secs(3);
    // A dialer that never completes; a server that accepts and never answers (Go hangs there).
    for plan in [
        Connect::Hang,
        Connect::Conn(MockConn::new("silent", [Read::Hang])),
        Connect::Conn(MockConn::new(
            "slow",
            [Read::Data(SWITCHING[..30].to_vec()), Read::Hang],
        )),
    ] {
        let what = format!("{plan:?}");
        let rt = Sim::new();
        let dialer = MockDialer::new([plan]);
        let error = dial_with(&rt, &dialer, timeout).expect_err("timeout");
        assert!(
            matches!(error, DialError::Timeout(t) if t == timeout),
            "{what}: {error:?}"
        );
        assert!(error.is_timeout());
        assert_eq!(
            rt.elapsed(),
            timeout,
            "{what}: ends exactly at the deadline"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// change_membership
// ---------------------------------------------------------------------------------------------

/// A connection that answers `response` (in pieces of 7 bytes) and then closes.
fn answering(label: &'static str, response: &str) -> MockConn {
    MockConn::new(label, pieces(response.as_bytes(), 7))
}

fn change(
    rt: &Sim,
    dialer: &MockDialer,
    kind: ChangeKind,
    id: &str,
    address: &str,
    target: &str,
) -> Result<(), MembershipError> {
    let request = match kind {
        ChangeKind::Join => ChangeMembership::join(id, address),
        _ => ChangeMembership::leave(id),
    };
    let request = request.target(target).timeout(WAIT).path(raft_path());
    rt.run(change_membership(rt, dialer, &request))
}

#[test]
fn membership_requests_are_exact_and_percent_encoded() {
    // The version is the workspace's, shared by core (which writes the User-Agent) and driver.
    let agent = concat!("rafthttp-rust/", env!("CARGO_PKG_VERSION"));
    let rt = Sim::new();
    let join_conn = answering("join", OK);
    let leave_conn = answering("leave", OK);
    let (join_probe, leave_probe) = (join_conn.probe(), leave_conn.probe());
    let dialer = MockDialer::conns([join_conn, leave_conn]);
    change(
        &rt,
        &dialer,
        ChangeKind::Join,
        "a b&c",
        "[fe80::1%eth0]:7000",
        "t:1",
    )
    .expect("join");
    change(&rt, &dialer, ChangeKind::Leave, "a b&c", "ignored", "t:1").expect("leave");
    assert_eq!(
        join_probe.text(),
        format!(
            "POST /raft?id=a%20b%26c&address=%5Bfe80::1%25eth0%5D:7000 HTTP/1.1\r\nHost: t:1\r\n\
             User-Agent: {agent}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    );
    assert_eq!(
        leave_probe.text(),
        format!(
            "DELETE /raft?id=a%20b%26c HTTP/1.1\r\nHost: t:1\r\nUser-Agent: {agent}\r\nConnection: close\r\n\r\n"
        )
    );
    assert_eq!(dialer.authorities(), ["t:1", "t:1"]);
}

#[test]
fn redirect_sends_the_next_connect_to_the_location() {
    let rt = Sim::new();
    let follower = answering(
        "follower",
        "HTTP/1.1 308 Permanent Redirect\r\nLocation: http://leader:2/raft?id=1&address=me:1\r\n\
         Content-Length: 0\r\n\r\n",
    );
    let leader = answering("leader", OK);
    let leader_probe = leader.probe();
    let dialer = MockDialer::conns([follower, leader]);
    change(&rt, &dialer, ChangeKind::Join, "1", "me:1", "follower:1").expect("join");
    assert_eq!(dialer.authorities(), ["follower:1", "leader:2"]);
    assert!(
        leader_probe
            .text()
            .starts_with("POST /raft?id=1&address=me:1 HTTP/1.1\r\nHost: leader:2\r\n"),
        "{}",
        leader_probe.text()
    );
}

#[test]
fn a_refusal_behind_a_redirect_names_the_leader_and_logs_the_hops() {
    let (lines, _default) = LogLines::capture();
    let rt = Sim::new();
    let follower = answering(
        "follower",
        "HTTP/1.1 308 Permanent Redirect\r\nLocation: http://leader:2/raft?id=1&address=me:1\r\n\
         Content-Length: 0\r\n\r\n",
    );
    let body = "failed to join server 1: boom\n";
    let leader = answering("leader", &text_response("403 Forbidden", body, false));
    let dialer = MockDialer::conns([follower, leader]);
    let error = change(&rt, &dialer, ChangeKind::Join, "1", "me:1", "follower:1").unwrap_err();
    // The message stays Go's; the URL that refused is there for the caller.
    assert_eq!(
        error.to_string(),
        "server join failed: http code 403 'failed to join server 1: boom'"
    );
    assert_eq!(error.url(), Some("http://leader:2/raft?id=1&address=me:1"));
    let text = lines.text();
    let done: Vec<_> = text
        .lines()
        .filter(|l| l.contains("membership change failed"))
        .collect();
    assert_eq!(done.len(), 1, "{text}");
    for part in [
        "INFO",
        "raft_membership{kind=join id=1 target=follower:1}",
        "requests=2",
        "redirects=1",
    ] {
        assert!(
            done[0].contains(part),
            "{part:?} missing from {:?}",
            done[0]
        );
    }
}

#[test]
fn unavailable_then_ok_is_retried_after_a_backoff() {
    let rt = Sim::new();
    let body = "failed to join server 1: node is not leader, current leader unknown\n";
    let dialer = MockDialer::conns([
        answering(
            "first",
            &text_response("503 Service Unavailable", body, false),
        ),
        answering("second", OK),
    ]);
    change(&rt, &dialer, ChangeKind::Join, "1", "me:1", "t:1").expect("join after a retry");
    assert_eq!(dialer.authorities(), ["t:1", "t:1"]);
    assert!(rt.elapsed() > Duration::ZERO, "the retry waited");
    assert!(rt.elapsed() < Duration::from_secs(2), "{:?}", rt.elapsed());
}

#[test]
fn chunked_failure_body_is_decoded_into_the_message() {
    let rt = Sim::new();
    let dialer = MockDialer::conns([answering(
        "c",
        "HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n\
         11;ext=1\r\nfailed to join se\r\nd\r\nrver 1: boom\n\r\n0\r\n\r\n",
    )]);
    let error = change(&rt, &dialer, ChangeKind::Join, "1", "me:1", "t:1").expect_err("403");
    assert_eq!(
        error.to_string(),
        "server join failed: http code 403 'failed to join server 1: boom'"
    );
}

#[test]
fn ok_is_not_held_up_by_a_body_on_a_connection_left_open() {
    // Servers should close (the request says `Connection: close`); one that does not must not
    // turn an applied change into a timeout.
    for response in [
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    ] {
        let rt = Sim::new();
        let mut reads = pieces(response.as_bytes(), 7);
        reads.push(Read::Hang);
        let dialer = MockDialer::conns([MockConn::new("c", reads)]);
        let result = change(&rt, &dialer, ChangeKind::Join, "1", "me:1", "t:1");
        assert!(result.is_ok(), "{response:?}: {result:?}");
        assert_eq!(rt.elapsed(), Duration::ZERO, "{response:?}");
    }
}

#[test]
fn chunked_failure_on_a_connection_left_open_is_reported_at_its_last_chunk() {
    let rt = Sim::new();
    let response =
        "HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nboom\r\n0\r\n\r\n";
    let mut reads = pieces(response.as_bytes(), 5);
    reads.push(Read::Hang);
    let dialer = MockDialer::conns([MockConn::new("c", reads)]);
    let error = change(&rt, &dialer, ChangeKind::Join, "1", "me:1", "t:1").expect_err("403");
    assert_eq!(
        error.to_string(),
        "server join failed: http code 403 'boom'"
    );
    assert_eq!(rt.elapsed(), Duration::ZERO);
}

#[test]
fn interim_responses_before_a_join_answer_are_skipped() {
    // A server (or a proxy) may send 100 or 103 before the final answer: neither is it.
    let rt = Sim::new();
    let answer = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n\
                  HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope\n";
    let dialer = MockDialer::conns([answering("c", answer)]);
    let error = change(&rt, &dialer, ChangeKind::Join, "1", "me:1", "t:1").expect_err("403");
    assert_eq!(
        error.to_string(),
        "server join failed: http code 403 'nope'"
    );
    let ok = format!("HTTP/1.1 100 Continue\r\n\r\n{OK}");
    let dialer = MockDialer::conns([answering("c", &ok)]);
    change(&rt, &dialer, ChangeKind::Join, "1", "me:1", "t:1").expect("200 after a 100");
}

#[test]
fn interim_responses_before_the_101_are_skipped() {
    let rt = Sim::new();
    let answer = cat(&[b"HTTP/1.1 100 Continue\r\n\r\n", SWITCHING, b"raft"]);
    let dialer = MockDialer::conns([MockConn::new("c", [Read::Data(answer)])]);
    let upgraded = dial_with(&rt, &dialer, WAIT).expect("upgraded after a 100");
    assert_eq!(upgraded.prefix.remaining(), b"raft");
}

#[test]
fn https_redirect_needs_a_tls_dialer() {
    let rt = Sim::new();
    let dialer = MockDialer::conns([answering(
        "c",
        "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://leader:2/raft?id=1\r\n\r\n",
    )]);
    let error = change(&rt, &dialer, ChangeKind::Leave, "1", "", "follower:1").expect_err("https");
    let MembershipError::Protocol(CoreMembershipError::Scheme {
        kind,
        location,
        transport,
    }) = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(
        (*kind, &**location, *transport),
        (
            ChangeKind::Leave,
            "https://leader:2/raft?id=1",
            Scheme::Http
        )
    );
    assert_eq!(
        error.to_string(),
        "server leave failed: redirected to https://leader:2/raft?id=1, which this dialer cannot reach (it speaks http)"
    );
    assert_eq!(
        dialer.authorities(),
        ["follower:1"],
        "nothing dialed over the wrong scheme"
    );
}

#[test]
fn tls_dialer_follows_http_and_https_locations() {
    // Go writes `http` Locations on TLS listeners and dials them over TLS: so do we. The
    // dialer connects (over TLS, checking the certificate against the host) to each Location.
    let rt = Sim::new();
    let follower = answering(
        "follower",
        "HTTP/1.1 308 Permanent Redirect\r\nLocation: http://other:3/raft?id=1&address=me:1\r\n\
         Content-Length: 0\r\n\r\n",
    );
    let other = answering(
        "other",
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: https://leader:2/raft?id=1&address=me:1\r\n\
         Content-Length: 0\r\n\r\n",
    );
    let leader = answering("leader", OK);
    let dialer = MockDialer::conns([follower, other, leader]).speaking(Scheme::Https);
    change(&rt, &dialer, ChangeKind::Join, "1", "me:1", "follower:1").expect("join over TLS");
    assert_eq!(dialer.authorities(), ["follower:1", "other:3", "leader:2"]);
}

#[test]
fn refused_leader_behind_a_redirect_is_retried_from_the_first_target() {
    // A follower still redirects to a leader that died; the call starts again from the
    // follower after a wait, and succeeds once the follower names the new leader.
    let rt = Sim::new();
    let to = |leader: &str| {
        format!(
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: http://{leader}/raft?id=1&address=me:1\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    let dialer = MockDialer::new([
        Connect::Conn(answering("follower", &to("dead:2"))),
        Connect::Refused,
        Connect::Conn(answering("follower", &to("dead:2"))),
        Connect::Conn(MockConn::new("dead", [Read::Eof])),
        Connect::Conn(answering("follower", &to("new:3"))),
        Connect::Conn(answering("new", OK)),
    ]);
    change(&rt, &dialer, ChangeKind::Join, "1", "me:1", "follower:1").expect("join");
    assert_eq!(
        dialer.authorities(),
        [
            "follower:1",
            "dead:2",
            "follower:1",
            "dead:2",
            "follower:1",
            "new:3"
        ]
    );
    assert!(rt.elapsed() > Duration::ZERO, "the retries waited");
}

#[test]
fn refused_first_target_fails_at_once() {
    let rt = Sim::new();
    let dialer = MockDialer::new([Connect::Refused]);
    let error = change(&rt, &dialer, ChangeKind::Join, "1", "me:1", "t:1").expect_err("refused");
    let MembershipError::Io { source, url, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(url, "http://t:1/raft?id=1&address=me:1");
    assert_eq!(rt.elapsed(), Duration::ZERO, "no retry");
    assert_eq!(dialer.authorities(), ["t:1"]);
}

#[test]
fn a_leader_that_stays_dead_ends_the_call_with_its_error_at_the_deadline() {
    let rt = Sim::new();
    let redirect = "HTTP/1.1 308 Permanent Redirect\r\nLocation: http://dead:2/raft?id=1\r\n\r\n";
    let mut plan = Vec::new();
    for _ in 0..100 {
        plan.push(Connect::Conn(answering("follower", redirect)));
        plan.push(Connect::Refused);
    }
    let dialer = MockDialer::new(plan);
    let timeout = Duration::from_secs(10);
    let error = rt
        .run(change_membership(
            &rt,
            &dialer,
            &ChangeMembership::leave("1")
                .target("follower:1")
                .timeout(timeout),
        ))
        .expect_err("dead");
    let MembershipError::Io { source, url, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(url, "http://dead:2/raft?id=1");
    assert!(rt.elapsed() <= timeout, "{:?}", rt.elapsed());
    // Waits of 25-50 ms doubling up to 0.5-1 s: about a dozen rounds in 10 s, two connects each.
    let attempts = dialer.authorities().len();
    assert!((10..=60).contains(&attempts), "{attempts}");
}

// ---------------------------------------------------------------------------------------------
// ChangeRequest and Requests
// ---------------------------------------------------------------------------------------------

fn join_change(id: &str) -> Change {
    Change {
        kind: ChangeKind::Join,
        id: id.to_owned(),
        address: format!("{id}:1"),
        raw_query: format!("id={id}&address={id}:1"),
    }
}

#[test]
fn dropping_a_request_unanswered_answers_403_dropped() {
    let rt = Sim::new();
    let handler = handler(HandlerConfig::default());
    let requests = handler.requests();
    let (response, ()) = rt.run(join(handler.change(&rt, join_change("5")), async {
        drop(requests.recv().await.expect("a request"));
    }));
    assert_eq!(
        (response.status(), response.body()),
        (
            403,
            &b"failed to join server 5: membership request dropped without an answer\n"[..]
        )
    );
    assert_eq!(
        rt.elapsed(),
        Duration::ZERO,
        "answered at the drop, not at the timeout"
    );
}

#[test]
fn requests_skip_abandoned_requests() {
    let timeout = Duration::from_secs(1);
    let rt = Sim::new();
    let handler = handler(HandlerConfig::default().with_timeout(timeout));
    let mut requests = handler.requests();
    let timed_out =
        |id: &str| format!("failed to join server {id}: timeout waiting for membership change\n");

    // Nobody reads: the request times out while queued, and is never handed out afterwards.
    let response = rt.run(handler.change(&rt, join_change("1")));
    assert_eq!(
        (response.status(), response.body()),
        (403, timed_out("1").as_bytes())
    );
    assert_eq!(rt.elapsed(), timeout);
    let (response, taken) = rt.run(join(handler.change(&rt, join_change("2")), async {
        let request = requests.recv().await.expect("a request");
        let id = request.id().to_owned();
        assert!(request.respond(Ok(())));
        id
    }));
    assert_eq!(taken, "2", "recv() skipped the abandoned request");
    assert_eq!(response.status(), 200);

    let response = rt.run(handler.change(&rt, join_change("3")));
    assert_eq!(response.body(), timed_out("3").as_bytes());
    assert!(
        requests.try_recv().is_none(),
        "try_recv() skipped the abandoned request"
    );

    let response = rt.run(handler.change(&rt, join_change("4")));
    assert_eq!(response.body(), timed_out("4").as_bytes());
    let (response, taken) = rt.run(join(handler.change(&rt, join_change("5")), async {
        let request = requests.next().await.expect("a request");
        let id = request.id().to_owned();
        assert!(request.respond(Err(ChangeError::failed("no"))));
        id
    }));
    assert_eq!(taken, "5", "the Stream skipped the abandoned request");
    assert_eq!(response.body(), b"failed to join server 5: no\n");
}

// ---------------------------------------------------------------------------------------------
// metrics
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "metrics")]
mod metrics_feature {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    /// The value recorded under `name` with exactly `labels`.
    fn value<'a>(
        snapshot: &'a [(
            metrics_util::CompositeKey,
            Option<metrics::Unit>,
            Option<metrics::SharedString>,
            DebugValue,
        )],
        name: &str,
        labels: &[(&str, &str)],
    ) -> Option<&'a DebugValue> {
        snapshot.iter().find_map(|(key, _, _, value)| {
            let key = key.key();
            let found: Vec<_> = key.labels().map(|l| (l.key(), l.value())).collect();
            (key.name() == name && found == labels).then_some(value)
        })
    }

    fn samples(value: Option<&DebugValue>) -> usize {
        match value {
            Some(DebugValue::Histogram(samples)) => samples.len(),
            other => panic!("not a histogram: {other:?}"),
        }
    }

    #[test]
    fn requests_queue_dials_and_membership_changes_are_measured() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let rt = Sim::new();
        let handler = handler(HandlerConfig::default().with_accept_queue(1));
        let upgrade = || MockConn::new("upgrade", [Read::Data(UPGRADE.to_vec())]);
        let join_request: &[u8] =
            b"POST /raft?id=1&address=c:3 HTTP/1.1\r\nHost: a:1\r\nContent-Length: 0\r\n\r\n";
        let requests = handler.requests();
        let dialer = MockDialer::new([
            Connect::Conn(MockConn::new("dial", [Read::Data(SWITCHING.to_vec())])),
            Connect::Refused,
            Connect::Conn(answering("join", OK)),
            Connect::Refused,
        ]);
        metrics::with_local_recorder(&recorder, || {
            rt.run(async {
                // Queued, then refused with 503 while the queue (of one) is full, then
                // accepted; a third is queued and never accepted.
                let first = handler.serve_connection(&rt, upgrade(), peer());
                let second = handler.serve_connection(&rt, upgrade(), peer());
                let ((), ((), accepted)) =
                    join(first, join(second, within(&rt, WAIT, handler.accept()))).await;
                assert!(matches!(accepted, Some(Ok(_))), "{accepted:?}");
                handler.serve_connection(&rt, upgrade(), peer()).await;
                let conn = MockConn::new("c", [Read::Data(cat(&[join_request, ELSEWHERE]))]);
                join(handler.serve_connection(&rt, conn, peer()), async {
                    let request = requests.recv().await.expect("a request");
                    assert!(request.respond(Ok(())));
                })
                .await;
            });
            assert!(dial_with(&rt, &dialer, WAIT).is_ok());
            assert!(dial_with(&rt, &dialer, WAIT).is_err());
            change(&rt, &dialer, ChangeKind::Join, "1", "me:1", "t:1").expect("join");
            change(&rt, &dialer, ChangeKind::Leave, "1", "", "t:1").expect_err("refused");
        });
        let snapshot = snapshotter.snapshot().into_vec();
        let requests = |endpoint, status| {
            value(
                &snapshot,
                "rafthttp_requests_total",
                &[("endpoint", endpoint), ("status", status)],
            )
        };
        assert_eq!(requests("upgrade", "101"), Some(&DebugValue::Counter(2)));
        assert_eq!(requests("upgrade", "503"), Some(&DebugValue::Counter(1)));
        assert_eq!(requests("join", "200"), Some(&DebugValue::Counter(1)));
        assert_eq!(requests("other", "404"), Some(&DebugValue::Counter(1)));
        assert_eq!(
            samples(value(
                &snapshot,
                "rafthttp_request_duration_seconds",
                &[("endpoint", "upgrade")]
            )),
            3
        );
        assert_eq!(
            value(&snapshot, "rafthttp_accept_queue_depth", &[]),
            Some(&DebugValue::Gauge(1.0.into())),
            "two queued, one accepted"
        );
        let dials = |outcome| value(&snapshot, "rafthttp_dials_total", &[("outcome", outcome)]);
        assert_eq!(dials("ok"), Some(&DebugValue::Counter(1)));
        assert_eq!(dials("error"), Some(&DebugValue::Counter(1)));
        assert_eq!(
            samples(value(&snapshot, "rafthttp_dial_duration_seconds", &[])),
            2
        );
        let changes = |kind, outcome| {
            value(
                &snapshot,
                "rafthttp_membership_changes_total",
                &[("kind", kind), ("outcome", outcome)],
            )
        };
        assert_eq!(changes("join", "ok"), Some(&DebugValue::Counter(1)));
        assert_eq!(changes("leave", "error"), Some(&DebugValue::Counter(1)));
        assert_eq!(changes("join", "error"), None);
    }
}
