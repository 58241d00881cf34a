//! The membership client machine driven against scripted servers in memory, with a simulated
//! clock that jumps to the next `Output::Timeout` (in the manner of quinn-proto's test `Pair`).

mod util;

use rafthttp_core::Availability;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rafthttp_core::membership::{
    ChangeKind, MAX_ERROR_BODY, MAX_REDIRECTS, MembershipClient, Output, Transmit, TransportStage,
};
use rafthttp_core::{
    Change, ChangeError, Decoded, InputError, Limits, MembershipError, RaftPath, RequestDecoder,
    ResponseDecoder, ResponseError, Route, Router, Scheme,
};

const FOLLOWER: &str = "127.0.0.1:17201";
const LEADER: &str = "127.0.0.1:17202";
const SELF_ADDR: &str = "127.0.0.1:17103";

/// A scripted server: request bytes in, response bytes out (`None`: it never answers).
type Script = Box<dyn FnMut(&[u8]) -> Option<Vec<u8>>>;

/// One request the client sent.
#[derive(Debug, Clone)]
struct Sent {
    /// Simulated time since the start.
    at: Duration,
    transmit: Transmit,
}

/// Client machine + scripted servers + simulated clock.
struct Pair {
    start: Instant,
    now: Instant,
    client: MembershipClient,
    servers: HashMap<&'static str, Script>,
    /// Authorities where connecting fails (a dead node).
    dead: Vec<&'static str>,
    sent: Vec<Sent>,
}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pair")
            .field("now", &(self.now - self.start))
            .field("sent", &self.sent.len())
            .finish_non_exhaustive()
    }
}

impl Pair {
    /// A join for id `3` at `SELF_ADDR`, sent to `FOLLOWER`, with a 1 s deadline.
    fn join() -> Self {
        Self::new(ChangeKind::Join, "3", SELF_ADDR, Duration::from_secs(1))
    }

    fn new(kind: ChangeKind, id: &str, address: &str, timeout: Duration) -> Self {
        let start = Instant::now();
        let client = MembershipClient::new(
            kind,
            &RaftPath::default(),
            id,
            address,
            FOLLOWER,
            start + timeout,
        )
        .unwrap();
        Self {
            start,
            now: start,
            client,
            servers: HashMap::new(),
            dead: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Nothing listens at `authority` any more: connecting there fails.
    fn dead(mut self, authority: &'static str) -> Self {
        self.dead.push(authority);
        self
    }

    fn server(mut self, authority: &'static str, script: Script) -> Self {
        self.servers.insert(authority, script);
        self
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// One step: acts on the client's next output. Returns the result once it is done.
    fn step(&mut self) -> Option<Result<(), MembershipError>> {
        match self.client.poll_output() {
            Output::Done(result) => return Some(result),
            Output::Receive => {
                // The server sent nothing (or not all of it): nothing more comes before the
                // deadline.
                self.now = self.client.deadline();
                self.client.handle_timeout(self.now);
            }
            Output::Timeout(at) => {
                assert!(at >= self.now, "the clock never goes back");
                assert!(at <= self.client.deadline(), "no wait past the deadline");
                self.now = at;
                self.client.handle_timeout(at);
            }
            Output::Transmit(transmit) if self.dead.contains(&transmit.authority.as_str()) => {
                self.sent.push(Sent {
                    at: self.now - self.start,
                    transmit,
                });
                self.client.handle_transport_error(
                    self.now,
                    TransportStage::Connect,
                    "connection refused",
                );
            }
            Output::Transmit(transmit) => {
                let server = self
                    .servers
                    .get_mut(transmit.authority.as_str())
                    .unwrap_or_else(|| panic!("nothing listens at {}", transmit.authority));
                let response = server(&transmit.request);
                self.sent.push(Sent {
                    at: self.now - self.start,
                    transmit,
                });
                if let Some(bytes) = response {
                    deliver(&mut self.client, self.now, &bytes);
                }
            }
        }
        None
    }

    /// Steps until the client is done (bounded, so a loop in the machine fails the test).
    fn drive(&mut self) -> Result<(), MembershipError> {
        for _ in 0..1000 {
            if let Some(result) = self.step() {
                return result;
            }
        }
        panic!("the membership call did not finish: {self:?}");
    }

    fn times(&self) -> Vec<Duration> {
        self.sent.iter().map(|s| s.at).collect()
    }
}

/// Hands a whole response to the client as bytes, then the end of the stream, as a driver
/// would (the server closes after answering).
fn deliver(client: &mut MembershipClient, now: Instant, bytes: &[u8]) {
    client.handle_receive(now, bytes);
    client.handle_eof(now);
}

/// A server answering every request with the same bytes.
fn fixed(response: impl AsRef<[u8]>) -> Script {
    let response = response.as_ref().to_vec();
    Box::new(move |_| Some(response.clone()))
}

/// A server that never answers.
fn silent() -> Script {
    Box::new(|_| None)
}

/// A server answering with `responses` in turn, then repeating the last one.
fn sequence(responses: &'static [&'static [u8]]) -> Script {
    let mut next = 0;
    Box::new(move |_| {
        let response = responses[next.min(responses.len() - 1)];
        next += 1;
        Some(response.to_vec())
    })
}

/// The changes a node received.
type Seen = Rc<RefCell<Vec<Change>>>;

/// A real server: our decoder and router, with the membership side answered by `answer`.
/// Every change it receives is pushed to `seen`.
fn node(answer: impl Fn(&Change) -> Result<(), ChangeError> + 'static, seen: Seen) -> Script {
    let router = Router::new(RaftPath::default());
    Box::new(move |request| {
        let Ok(Decoded::Complete { value: head, .. }) =
            RequestDecoder::new(Limits::default()).decode(request)
        else {
            panic!("the client sent an invalid request");
        };
        let response = match router.route(&head, Availability::Open) {
            Route::Change(change) => {
                let response = router.answer(&change, &answer(&change), Scheme::Http);
                seen.borrow_mut().push(change);
                response
            }
            other => panic!("unexpected route {other:?}"),
        };
        let mut out = Vec::new();
        response.encode(&mut out);
        Some(out)
    })
}

fn seen() -> Seen {
    Seen::default()
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 68\r\n\r\nfailed to join server 3: node is not leader, current leader unknown\n";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn ok() {
    let changes = seen();
    let mut pair = Pair::join().server(FOLLOWER, node(|_| Ok(()), changes.clone()));
    assert_eq!(pair.drive(), Ok(()));
    assert_eq!(pair.times(), [ms(0)]);
    let changes = changes.borrow();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (
            changes[0].kind,
            changes[0].id.as_str(),
            changes[0].address.as_str()
        ),
        (ChangeKind::Join, "3", SELF_ADDR)
    );
}

#[test]
fn leave_ok() {
    let changes = seen();
    let mut pair = Pair::new(ChangeKind::Leave, "3", "ignored", Duration::from_secs(1))
        .server(FOLLOWER, node(|_| Ok(()), changes.clone()));
    assert_eq!(pair.drive(), Ok(()));
    let request = &pair.sent[0].transmit.request;
    assert!(request.starts_with(b"DELETE /raft?id=3 HTTP/1.1\r\n"));
    let changes = changes.borrow();
    assert_eq!(
        (
            changes[0].kind,
            changes[0].id.as_str(),
            changes[0].address.as_str()
        ),
        (ChangeKind::Leave, "3", "")
    );
}

#[test]
fn done_is_sticky() {
    let mut pair = Pair::join().server(FOLLOWER, fixed(OK));
    assert_eq!(pair.drive(), Ok(()));
    // Later events are ignored and the result stays.
    let late = pair.now + Duration::from_secs(10);
    pair.client.handle_timeout(late);
    deliver(&mut pair.client, late, UNAVAILABLE);
    pair.client.handle_malformed(ResponseError::Malformed {
        line: "garbage".into(),
    });
    assert_eq!(pair.client.poll_output(), Output::Done(Ok(())));
    assert_eq!(pair.client.poll_output(), Output::Done(Ok(())));
}

#[test]
fn redirect_via_a_follower_then_ok() {
    let at_follower = seen();
    let at_leader = seen();
    let mut pair = Pair::join()
        .server(
            FOLLOWER,
            node(
                |_| {
                    Err(ChangeError::NotLeader {
                        leader: Some(LEADER.into()),
                    })
                },
                at_follower.clone(),
            ),
        )
        .server(LEADER, node(|_| Ok(()), at_leader.clone()));
    assert_eq!(pair.drive(), Ok(()));
    let authorities: Vec<_> = pair
        .sent
        .iter()
        .map(|s| s.transmit.authority.as_str())
        .collect();
    assert_eq!(authorities, [FOLLOWER, LEADER]);
    // Redirects are followed at once, with the same request at the leader.
    assert_eq!(pair.times(), [ms(0), ms(0)]);
    assert_eq!(at_follower.borrow()[0].id, at_leader.borrow()[0].id);
    assert_eq!(
        at_follower.borrow()[0].address,
        at_leader.borrow()[0].address
    );
    assert_eq!(at_leader.borrow()[0].kind, ChangeKind::Join);
    assert_eq!(
        pair.client.url(),
        format!("http://{LEADER}/raft?id=3&address={SELF_ADDR}")
    );
}

#[test]
fn redirect_307_is_followed() {
    let mut pair = Pair::join()
        .server(
            FOLLOWER,
            fixed(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:17202/raft?id=3\r\nContent-Length: 0\r\n\r\n"),
        )
        .server(LEADER, fixed(OK));
    assert_eq!(pair.drive(), Ok(()));
    assert_eq!(pair.sent.len(), 2);
    assert!(
        pair.sent[1]
            .transmit
            .request
            .starts_with(b"POST /raft?id=3 HTTP/1.1\r\nHost: 127.0.0.1:17202\r\n")
    );
}

#[test]
fn relative_redirect_keeps_the_authority() {
    let mut pair = Pair::join().server(
        FOLLOWER,
        sequence(&[
            b"HTTP/1.1 308 Permanent Redirect\r\nLocation: /other?id=3\r\nContent-Length: 0\r\n\r\n",
            OK,
        ]),
    );
    assert_eq!(pair.drive(), Ok(()));
    assert_eq!(pair.sent[1].transmit.authority, FOLLOWER);
    assert!(
        pair.sent[1]
            .transmit
            .request
            .starts_with(b"POST /other?id=3 HTTP/1.1\r\n")
    );
}

#[test]
fn https_redirect_is_refused_by_a_plain_client() {
    let mut pair = Pair::join()
        .server(
            FOLLOWER,
            fixed(b"HTTP/1.1 308 Permanent Redirect\r\nLocation: https://127.0.0.1:17202/raft?id=3\r\nContent-Length: 0\r\n\r\n"),
        )
        .server(LEADER, fixed(OK));
    assert_eq!(
        pair.drive(),
        Err(MembershipError::Scheme {
            kind: ChangeKind::Join,
            location: "https://127.0.0.1:17202/raft?id=3".into(),
            transport: Scheme::Http,
        })
    );
    assert_eq!(
        pair.sent.len(),
        1,
        "nothing sent in plain text to an https URL"
    );
}

#[test]
fn tls_client_follows_http_and_https_locations_over_tls() {
    // Go's TLS handler writes `http` Locations (`srv_post_leader.response.bin`); a TLS client
    // follows them over TLS, as Go's does. `https` Locations too.
    let go_308 = util::vector("srv_post_leader.response.bin");
    let mut pair = Pair::join()
        .server(FOLLOWER, fixed(go_308))
        .server(
            LEADER,
            sequence(&[b"HTTP/1.1 307 Temporary Redirect\r\nLocation: https://127.0.0.1:17203/raft?id=3&address=127.0.0.1:17103\r\nContent-Length: 0\r\n\r\n"]),
        )
        .server("127.0.0.1:17203", fixed(OK));
    pair.client = pair.client.clone().with_scheme(Scheme::Https);
    assert_eq!(pair.drive(), Ok(()));
    let hops: Vec<_> = pair
        .sent
        .iter()
        .map(|s| (s.transmit.scheme, s.transmit.authority.as_str()))
        .collect();
    assert_eq!(
        hops,
        [
            (Scheme::Https, FOLLOWER),
            (Scheme::Https, LEADER),
            (Scheme::Https, "127.0.0.1:17203")
        ]
    );
    assert!(pair.sent[1].transmit.request.starts_with(
        b"POST /raft?id=3&address=127.0.0.1:17103 HTTP/1.1\r\nHost: 127.0.0.1:17202\r\n"
    ));
}

const NEW_LEADER: &str = "127.0.0.1:17204";

fn redirect_to(leader: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 308 Permanent Redirect\r\nLocation: http://{leader}/raft?id=3&address={SELF_ADDR}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn refused_first_target_fails_at_once() {
    // As in Go: nothing listens where the caller pointed (Go 28).
    let mut pair = Pair::join().dead(FOLLOWER);
    assert_eq!(
        pair.drive(),
        Err(MembershipError::Transport {
            kind: ChangeKind::Join,
            method: "POST",
            url: format!("http://{FOLLOWER}/raft?id=3&address={SELF_ADDR}").into(),
            stage: TransportStage::Connect,
            reason: "connection refused".into(),
        })
    );
    assert_eq!(pair.times(), [ms(0)]);
}

#[test]
fn dead_leader_behind_a_redirect_is_retried_from_the_first_target() {
    // A follower keeps redirecting to a leader that just died until it learns the new one.
    let mut answers = vec![
        redirect_to(LEADER),
        redirect_to(LEADER),
        redirect_to(NEW_LEADER),
    ]
    .into_iter();
    let mut pair = Pair::join()
        .server(FOLLOWER, Box::new(move |_| answers.next()))
        .dead(LEADER)
        .server(NEW_LEADER, fixed(OK));
    assert_eq!(pair.drive(), Ok(()));
    let hops: Vec<_> = pair
        .sent
        .iter()
        .map(|s| (s.at, s.transmit.authority.as_str()))
        .collect();
    assert_eq!(
        hops,
        [
            (ms(0), FOLLOWER),
            (ms(0), LEADER),
            (ms(50), FOLLOWER),
            (ms(50), LEADER),
            (ms(150), FOLLOWER),
            (ms(150), NEW_LEADER),
        ]
    );
    // Each round starts with the very first request again.
    assert_eq!(pair.sent[0].transmit, pair.sent[2].transmit);
    // The client counts what it did, for the caller's logs.
    assert_eq!(pair.client.requests_sent(), 6);
    assert_eq!(pair.client.redirects_followed(), 3);
}

#[test]
fn a_leader_that_stays_dead_fails_with_its_error_by_the_deadline() {
    let mut pair = Pair::join()
        .server(FOLLOWER, fixed(redirect_to(LEADER)))
        .dead(LEADER);
    let result = pair.drive();
    assert!(
        matches!(
            &result,
            Err(MembershipError::Transport { url, stage: TransportStage::Connect, .. })
                if url.starts_with(&format!("http://{LEADER}/raft"))
        ),
        "{result:?}"
    );
    assert!(
        pair.elapsed() < Duration::from_secs(1),
        "{:?}",
        pair.elapsed()
    );
    // 50, 100, 200, 400 ms: the next wait would pass the deadline.
    assert_eq!(pair.sent.len(), 10);
}

#[test]
fn redirect_count_starts_again_with_each_round() {
    // Ten rounds of one redirect each are not a redirect loop.
    let mut rounds = 0;
    let mut pair = Pair::new(ChangeKind::Join, "3", SELF_ADDR, Duration::from_secs(60))
        .server(
            FOLLOWER,
            Box::new(move |_| {
                rounds += 1;
                Some(redirect_to(if rounds <= 12 { LEADER } else { NEW_LEADER }))
            }),
        )
        .dead(LEADER)
        .server(NEW_LEADER, fixed(OK));
    assert_eq!(pair.drive(), Ok(()));
}

#[test]
fn jittered_waits_stay_within_half_and_all_of_the_backoff() {
    let run = |seed| {
        let mut pair = Pair::new(ChangeKind::Join, "3", SELF_ADDR, Duration::from_secs(60)).server(
            FOLLOWER,
            sequence(&[
                UNAVAILABLE,
                UNAVAILABLE,
                UNAVAILABLE,
                UNAVAILABLE,
                UNAVAILABLE,
                UNAVAILABLE,
                OK,
            ]),
        );
        pair.client = pair.client.clone().with_jitter(seed);
        assert_eq!(pair.drive(), Ok(()));
        pair.times()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect::<Vec<_>>()
    };
    let exact = [50, 100, 200, 400, 800, 1000].map(ms);
    for seed in [0, 1, 42, u64::MAX] {
        let waits = run(seed);
        assert_eq!(waits.len(), exact.len());
        for (wait, full) in waits.iter().zip(exact) {
            assert!(
                *wait >= full / 2 && *wait <= full,
                "seed {seed}: {wait:?} for {full:?}"
            );
        }
        assert_eq!(waits, run(seed), "the same seed gives the same waits");
    }
    assert_ne!(run(1), run(2), "different seeds spread out");
}

#[test]
fn redirect_loop_stops_after_10_redirects() {
    // A node that keeps redirecting to itself (README: Go reports `stopped after 10
    // redirects`).
    let mut pair = Pair::join().server(
        FOLLOWER,
        node(
            |_| {
                Err(ChangeError::NotLeader {
                    leader: Some(FOLLOWER.into()),
                })
            },
            seen(),
        ),
    );
    let error = pair.drive().unwrap_err();
    assert!(
        matches!(
            &error,
            MembershipError::TooManyRedirects {
                kind: ChangeKind::Join,
                max: 10,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            r#"server join failed: POST "http://{FOLLOWER}/raft?id=3&address={SELF_ADDR}": stopped after 10 redirects"#
        )
    );
    // The first request plus MAX_REDIRECTS followed redirects. (Go's http.Client sends one
    // request fewer: it refuses the 10th redirect.)
    assert_eq!(pair.sent.len(), 1 + usize::from(MAX_REDIRECTS));
    assert_eq!(pair.elapsed(), Duration::ZERO);
}

#[test]
fn redirect_chain_of_10_succeeds() {
    // Ten redirects are allowed: 10 hops then the leader.
    let mut count = 0;
    let mut pair = Pair::join().server(
        FOLLOWER,
        Box::new(move |_| {
            count += 1;
            Some(if count <= 10 {
                format!("HTTP/1.1 308 Permanent Redirect\r\nLocation: /raft?id=3&hop={count}\r\nContent-Length: 0\r\n\r\n").into_bytes()
            } else {
                OK.to_vec()
            })
        }),
    );
    assert_eq!(pair.drive(), Ok(()));
    assert_eq!(pair.sent.len(), 11);
}

#[test]
fn unparsable_location_fails_without_a_loop() {
    for location in [
        "::not a url::",
        "ftp://127.0.0.1:17202/raft",
        "http://",
        "http://user@127.0.0.1:17202/raft",
        "http://127.0.0.1:17202:99/raft",
        "raft?id=3",
        "http://[::1/raft",
    ] {
        let response = format!(
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
        );
        let mut pair = Pair::join().server(FOLLOWER, fixed(response));
        let error = pair.drive().unwrap_err();
        let MembershipError::InvalidRedirect {
            kind,
            location: got,
            ..
        } = &error
        else {
            panic!("{location:?}: {error:?}");
        };
        assert_eq!((*kind, &**got), (ChangeKind::Join, location));
        assert_eq!(pair.sent.len(), 1, "{location:?}: no request follows");
        assert!(
            error
                .to_string()
                .starts_with("server join failed: POST \"http://")
        );
    }
}

#[test]
fn non_utf8_location_fails() {
    let mut pair = Pair::join().server(
        FOLLOWER,
        fixed(b"HTTP/1.1 308 Permanent Redirect\r\nLocation: http://h\xff/\r\nContent-Length: 0\r\n\r\n"),
    );
    assert!(matches!(
        pair.drive(),
        Err(MembershipError::InvalidRedirect { .. })
    ));
}

#[test]
fn unavailable_then_ok_retries_after_the_backoff() {
    let mut pair = Pair::join().server(FOLLOWER, sequence(&[UNAVAILABLE, OK]));
    assert_eq!(pair.drive(), Ok(()));
    // Default backoff: 50 ms.
    assert_eq!(pair.times(), [ms(0), ms(50)]);
    assert_eq!(pair.sent[0].transmit, pair.sent[1].transmit, "same request");
}

#[test]
fn backoff_doubles_up_to_its_maximum() {
    let mut pair = Pair::join().server(
        FOLLOWER,
        sequence(&[UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, OK]),
    );
    assert_eq!(pair.drive(), Ok(()));
    assert_eq!(pair.times(), [ms(0), ms(50), ms(150), ms(350), ms(750)]);

    let mut pair = Pair::join().server(
        FOLLOWER,
        sequence(&[UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, OK]),
    );
    pair.client = pair.client.clone().with_backoff(ms(10), ms(30));
    assert_eq!(pair.drive(), Ok(()));
    // 10, 20, then capped at 30.
    assert_eq!(pair.times(), [ms(0), ms(10), ms(30), ms(60), ms(90)]);
}

#[test]
fn unavailable_forever_fails_with_the_503_before_the_deadline() {
    let mut pair = Pair::join().server(FOLLOWER, fixed(UNAVAILABLE));
    let error = pair.drive().unwrap_err();
    assert_eq!(
        error,
        MembershipError::Status {
            kind: ChangeKind::Join,
            status: 503,
            body: "failed to join server 3: node is not leader, current leader unknown".into(),
            url: format!("http://{FOLLOWER}/raft?id=3&address={SELF_ADDR}").into(),
        }
    );
    // README: Go prints the same after its retries.
    assert_eq!(
        error.to_string(),
        "server join failed: http code 503 'failed to join server 3: node is not leader, current leader unknown'"
    );
    // 0, 50, 150, 350, 750; the next retry (1550 ms) would be past the 1 s deadline, so the
    // 503 is reported at once instead of waiting.
    assert_eq!(pair.times(), [ms(0), ms(50), ms(150), ms(350), ms(750)]);
    assert_eq!(pair.elapsed(), ms(750));
    assert!(pair.now <= pair.client.deadline());
}

#[test]
fn unavailable_with_a_late_timer_reports_the_503() {
    // The driver's timer fires after the deadline while waiting to retry: the call fails,
    // and what the server said is more useful than "deadline exceeded" (handle_timeout docs).
    let mut pair = Pair::join().server(FOLLOWER, fixed(UNAVAILABLE));
    assert_eq!(pair.step(), None); // sends, gets 503
    let Output::Timeout(retry_at) = pair.client.poll_output() else {
        panic!("expected a backoff");
    };
    assert_eq!(retry_at - pair.start, ms(50));
    pair.client.handle_timeout(pair.client.deadline() + ms(1));
    let Output::Done(Err(error)) = pair.client.poll_output() else {
        panic!("expected the end");
    };
    assert!(
        matches!(error, MembershipError::Status { status: 503, .. }),
        "{error:?}"
    );
}

#[test]
fn no_response_before_the_deadline_is_a_timeout() {
    let mut pair = Pair::join().server(FOLLOWER, silent());
    let error = pair.drive().unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(
        error,
        MembershipError::Timeout {
            kind: ChangeKind::Join,
            method: "POST",
            url: format!("http://{FOLLOWER}/raft?id=3&address={SELF_ADDR}").into(),
        }
    );
    assert!(error.to_string().ends_with(": deadline exceeded"));
    // It fails exactly at the deadline, not before.
    assert_eq!(pair.elapsed(), Duration::from_secs(1));
    assert_eq!(pair.sent.len(), 1);
}

#[test]
fn timeout_after_a_redirect_names_the_leader() {
    let mut pair = Pair::join()
        .server(
            FOLLOWER,
            fixed(b"HTTP/1.1 308 Permanent Redirect\r\nLocation: http://127.0.0.1:17202/raft?id=3\r\nContent-Length: 0\r\n\r\n"),
        )
        .server(LEADER, silent());
    let error = pair.drive().unwrap_err();
    assert!(error.is_timeout());
    assert!(
        error
            .to_string()
            .contains("http://127.0.0.1:17202/raft?id=3"),
        "{error}"
    );
}

#[test]
fn response_after_the_deadline_is_a_timeout() {
    let mut pair = Pair::join();
    let Output::Transmit(_) = pair.client.poll_output() else {
        panic!("expected a request");
    };
    let late = pair.client.deadline();
    deliver(&mut pair.client, late, OK);
    let Output::Done(Err(error)) = pair.client.poll_output() else {
        panic!("expected the end");
    };
    assert!(error.is_timeout(), "{error:?}");
}

#[test]
fn handle_timeout_early_or_twice_is_a_no_op() {
    let mut pair = Pair::join();
    let start = pair.start;
    let Output::Transmit(first) = pair.client.poll_output() else {
        panic!("expected a request");
    };
    let deadline = pair.client.deadline();
    // In flight: the client waits for the response until the deadline; early calls change
    // nothing.
    for early in [start, start + ms(999)] {
        pair.client.handle_timeout(early);
        pair.client.handle_timeout(early);
        assert_eq!(pair.client.poll_output(), Output::Receive);
    }
    // A 503: wait for the backoff; early calls change nothing.
    deliver(&mut pair.client, start, UNAVAILABLE);
    assert_eq!(pair.client.poll_output(), Output::Timeout(start + ms(50)));
    pair.client.handle_timeout(start + ms(49));
    pair.client.handle_timeout(start + ms(49));
    assert_eq!(pair.client.poll_output(), Output::Timeout(start + ms(50)));
    // On time, twice: the request goes out once.
    pair.client.handle_timeout(start + ms(50));
    pair.client.handle_timeout(start + ms(50));
    assert_eq!(pair.client.poll_output(), Output::Transmit(first));
    pair.client.handle_timeout(start + ms(60));
    assert_eq!(pair.client.poll_output(), Output::Receive);
    pair.client.handle_timeout(deadline);
    assert!(matches!(
        pair.client.poll_output(),
        Output::Done(Err(MembershipError::Timeout { .. }))
    ));
}

#[test]
fn responses_out_of_turn_are_ignored() {
    let mut pair = Pair::join();
    let start = pair.start;
    // Before the request was sent.
    deliver(&mut pair.client, start, OK);
    let Output::Transmit(_) = pair.client.poll_output() else {
        panic!("expected a request");
    };
    deliver(&mut pair.client, start, UNAVAILABLE);
    // During the backoff: no request is in flight.
    deliver(&mut pair.client, start, OK);
    pair.client
        .handle_malformed(ResponseError::Malformed { line: "x".into() });
    assert_eq!(pair.client.poll_output(), Output::Timeout(start + ms(50)));
}

#[test]
fn other_statuses_fail_with_the_trimmed_body() {
    let mut pair = Pair::join().server(
        FOLLOWER,
        fixed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 19\r\n\r\n404 page not found\n"),
    );
    assert_eq!(
        pair.drive().unwrap_err().to_string(),
        "server join failed: http code 404 '404 page not found'"
    );

    let mut pair = Pair::new(ChangeKind::Leave, "3", "", Duration::from_secs(1))
        .server(FOLLOWER, node(|_| Err(ChangeError::failed("boom")), seen()));
    assert_eq!(
        pair.drive().unwrap_err().to_string(),
        "server leave failed: http code 403 'failed to leave server 3: boom'"
    );
}

#[test]
fn error_body_is_cut_at_the_limit() {
    let mut pair = Pair::join();
    let Output::Transmit(_) = pair.client.poll_output() else {
        panic!("expected a request");
    };
    let body = vec![b'x'; MAX_ERROR_BODY + 100];
    let Ok(Decoded::Complete { value, .. }) = ResponseDecoder::new(Limits::default())
        .decode(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    else {
        panic!("head");
    };
    pair.client.handle_response(pair.start, &value, &body);
    let Output::Done(Err(MembershipError::Status { status, body, .. })) = pair.client.poll_output()
    else {
        panic!("expected a status error");
    };
    assert_eq!((status, body.len()), (500, MAX_ERROR_BODY));
}

#[test]
fn malformed_response_fails() {
    let mut pair = Pair::join().server(FOLLOWER, fixed(b"garbage\r\n\r\n"));
    let error = pair.drive().unwrap_err();
    assert_eq!(
        error,
        MembershipError::Response {
            kind: ChangeKind::Join,
            method: "POST",
            url: format!("http://{FOLLOWER}/raft?id=3&address={SELF_ADDR}").into(),
            source: ResponseError::Malformed {
                line: "garbage".into()
            },
        }
    );
}

#[test]
fn awkward_ids_round_trip_through_the_router() {
    for (id, address) in [
        ("a&b c", "127.0.0.1:17103/x?y"),
        ("id?x=1&address=evil", "[::1]:80"),
        ("50% + more", "host name with spaces"),
        ("#frag;semi", "é ü 漢字"),
        ("=", "&"),
    ] {
        // Through a follower's redirect (whose Location copies the raw query) to the leader.
        let at_follower = seen();
        let at_leader = seen();
        let mut pair = Pair::new(ChangeKind::Join, id, address, Duration::from_secs(1))
            .server(
                FOLLOWER,
                node(
                    |_| {
                        Err(ChangeError::NotLeader {
                            leader: Some(LEADER.into()),
                        })
                    },
                    at_follower.clone(),
                ),
            )
            .server(LEADER, node(|_| Ok(()), at_leader.clone()));
        assert_eq!(pair.drive(), Ok(()), "{id:?}");
        for changes in [&at_follower, &at_leader] {
            let change = &changes.borrow()[0];
            assert_eq!(
                (change.id.as_str(), change.address.as_str()),
                (id, address),
                "{id:?}"
            );
        }
        // The request line stays one token: no raw space, `&`, `?` or `#` from the values.
        let request = &pair.sent[0].transmit.request;
        let line_end = request.iter().position(|&b| b == b'\r').unwrap();
        let line = std::str::from_utf8(&request[..line_end]).unwrap();
        assert_eq!(line.matches(' ').count(), 2, "{line}");
        assert_eq!(line.matches('&').count(), 1, "{line}");
        assert_eq!(line.matches('?').count(), 1, "{line}");
        assert!(!line.contains('#'), "{line}");
    }
}

#[test]
fn path_with_a_query_keeps_it() {
    let start = Instant::now();
    let path = RaftPath::new("/raft?cluster=a").unwrap();
    let mut client = MembershipClient::new(
        ChangeKind::Join,
        &path,
        "3",
        SELF_ADDR,
        FOLLOWER,
        start + ms(10),
    )
    .unwrap();
    let Output::Transmit(transmit) = client.poll_output() else {
        panic!("expected a request");
    };
    assert!(
        transmit
            .request
            .starts_with(b"POST /raft?cluster=a&id=3&address=127.0.0.1:17103 HTTP/1.1\r\n")
    );
    let (head, _) = util::request(&transmit.request);
    let Route::Change(change) = Router::new(path).route(&head, Availability::Open) else {
        panic!("expected a change");
    };
    assert_eq!(
        (change.id.as_str(), change.address.as_str()),
        ("3", SELF_ADDR)
    );
}

#[test]
fn invalid_input_is_refused_at_construction() {
    let start = Instant::now();
    let path = RaftPath::default();
    assert_eq!(
        MembershipClient::new(ChangeKind::Join, &path, "", SELF_ADDR, FOLLOWER, start).unwrap_err(),
        InputError::EmptyId
    );
    for target in ["", "h st:1", "h:1\r\nX: y", "http://h:1", "h/x"] {
        assert!(
            matches!(
                MembershipClient::new(ChangeKind::Join, &path, "3", SELF_ADDR, target, start),
                Err(InputError::Authority { .. })
            ),
            "{target:?}"
        );
    }
}

#[test]
fn expired_deadline_times_out_without_sending_twice() {
    // A deadline already in the past: the request may go out, but the first timer ends it.
    let start = Instant::now();
    let mut client = MembershipClient::new(
        ChangeKind::Join,
        &RaftPath::default(),
        "3",
        SELF_ADDR,
        FOLLOWER,
        start,
    )
    .unwrap();
    let Output::Transmit(_) = client.poll_output() else {
        panic!("expected a request");
    };
    assert_eq!(client.poll_output(), Output::Receive);
    client.handle_timeout(start);
    assert!(matches!(
        client.poll_output(),
        Output::Done(Err(MembershipError::Timeout { .. }))
    ));
}

#[test]
fn accessors() {
    let pair = Pair::join();
    assert_eq!(pair.client.kind(), ChangeKind::Join);
    assert_eq!(pair.client.deadline(), pair.start + Duration::from_secs(1));
    assert_eq!(
        pair.client.url(),
        format!("http://{FOLLOWER}/raft?id=3&address={SELF_ADDR}")
    );
    assert_eq!(ChangeKind::Join.method(), "POST");
    assert_eq!(ChangeKind::Leave.method(), "DELETE");
}
