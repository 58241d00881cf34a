//! Server side: the Go package's Handler tests, over real sockets.

use super::*;

async_test! {
    /// Go 1: GET without `Upgrade: raft` -> 400 with Go's body.
    async fn get_without_upgrade_is_400() {
        let (_handler, addr) = node(quick()).await;
        let reply = exchange(&addr, b"GET /raft HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(reply.status(), 400);
        assert_eq!(reply.body, "missing or invalid upgrade header\n");
    }
}

async_test! {
    /// Go 2: an upgrade after close is refused without upgrading (Go sends 101, then hangs up).
    async fn upgrade_after_close_is_403() {
        let (handler, addr) = node(quick()).await;
        handler.close();
        let reply = exchange(&addr, GO_DIAL).await;
        assert_eq!(reply.status(), 403);
        assert_eq!(reply.body, "raft transport closed\n");
    }
}

async_test! {
    /// Go 6: nobody accepts within the timeout -> the upgraded connection is closed.
    async fn unaccepted_connection_is_closed_after_the_timeout() {
        let (_handler, addr) = node(quick()).await;
        let mut raw = rt::connect(&addr).await;
        rt::write_all(&mut raw, GO_DIAL).await;
        assert_eq!(read_exact(&mut raw, SWITCHING.len()).await, SWITCHING);
        assert_eq!(read_to_eof(&mut raw).await, b"");
    }
}

async_test! {
    /// Go 7 and 16: the Go client's exact request gets exactly our 101 (which starts with Go's
    /// two lines), and the same connection comes out of `accept()`, with the bytes pipelined
    /// behind the request delivered first (Go loses them).
    async fn go_request_upgrades_and_accept_returns_that_connection() {
        let (handler, addr) = node(HandlerConfig::default()).await;
        let mut raw = rt::connect(&addr).await;
        let mut request = GO_DIAL.to_vec();
        request.extend_from_slice(b"ping\n");
        rt::write_all(&mut raw, &request).await;
        let reply = read_exact(&mut raw, SWITCHING.len()).await;
        assert!(reply.starts_with(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\n"));
        assert_eq!(reply, SWITCHING);

        let mut accepted = bounded("accept", handler.accept()).await.expect("accept");
        assert_eq!(read_exact(&mut accepted, 5).await, b"ping\n");
        rt::write_all(&mut accepted, b"pong\n").await;
        assert_eq!(read_exact(&mut raw, 5).await, b"pong\n");
        rt::write_all(&mut raw, b"more").await;
        assert_eq!(read_exact(&mut accepted, 4).await, b"more");
    }
}

async_test! {
    /// Go 8: POST without id -> 400.
    async fn post_without_id_is_400() {
        let (_handler, addr) = node(quick()).await;
        let reply = exchange(&addr, b"POST /raft HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(reply.status(), 400);
        assert_eq!(reply.body, "no server ID provided\n");
    }
}

async_test! {
    /// Go 9: a leave answered with an error -> 403 with Go's text; the application saw the
    /// request as a leave of id 999.
    async fn leave_answered_with_an_error_is_403() {
        let (handler, addr) = node(quick()).await;
        let seen = consume(&handler, |_| Some(Err(ChangeError::failed("boom"))));
        let reply = exchange(&addr, b"DELETE /raft?id=999 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(reply.status(), 403);
        assert_eq!(reply.body, "failed to leave server 999: boom\n");
        assert_eq!(*seen.lock().unwrap(), [(ChangeKind::Leave, "999".to_owned(), String::new())]);
    }
}

async_test! {
    /// Go 10: DELETE after close -> 403 `raft transport closed`.
    async fn delete_after_close_is_403() {
        let (handler, addr) = node(quick()).await;
        handler.close();
        let reply = exchange(&addr, b"DELETE /raft?id=1 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(reply.status(), 403);
        assert_eq!(reply.body, "raft transport closed\n");
    }
}

async_test! {
    /// Go 11: no answer within the timeout -> 403 with the timeout text.
    async fn unanswered_leave_times_out() {
        let (handler, addr) = node(quick()).await;
        let _seen = consume(&handler, |_| None);
        let reply = exchange(&addr, b"DELETE /raft?id=666 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(reply.status(), 403);
        assert_eq!(reply.body, "failed to leave server 666: timeout waiting for membership change\n");
    }
}

async_test! {
    /// Go hangs forever when nobody reads the requests; we answer 403 within the timeout.
    async fn no_consumer_at_all_times_out() {
        let (_handler, addr) = node(quick().with_requests_queue(1)).await;
        // The first request fills the queue, the second waits for room: both time out.
        for _ in 0..2 {
            let reply = exchange(&addr, b"POST /raft?id=3&address=a:1 HTTP/1.1\r\nHost: x\r\n\r\n").await;
            assert_eq!(reply.status(), 403);
            assert_eq!(reply.body, "failed to join server 3: timeout waiting for membership change\n");
        }
    }
}

async_test! {
    /// Go 12: join answered Ok -> 200, empty body; the application saw id, address and kind.
    async fn join_answered_ok_is_200() {
        let (handler, addr) = node(quick()).await;
        let seen = consume(&handler, |_| Some(Ok(())));
        let reply = exchange(&addr, b"POST /raft?id=666&address=abc HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(reply.status(), 200);
        assert_eq!(reply.body, "");
        assert_eq!(*seen.lock().unwrap(), [(ChangeKind::Join, "666".to_owned(), "abc".to_owned())]);
    }
}

async_test! {
    /// Go 13 and 14: not leader -> 308 to the leader (same query), or 503 when unknown.
    async fn not_leader_redirects_or_asks_to_retry() {
        let (handler, addr) = node(quick()).await;
        let _seen = consume(&handler, |n| Some(not_leader((n == 0).then_some("127.0.0.1:17202"))));
        let reply = exchange(&addr, b"POST /raft?id=3&address=127.0.0.1:17103 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(reply.status(), 308);
        assert_eq!(reply.header("location"), Some("http://127.0.0.1:17202/raft?id=3&address=127.0.0.1:17103"));
        let reply = exchange(&addr, b"POST /raft?id=666 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(reply.status(), 503);
        assert_eq!(reply.body, "failed to join server 666: node is not leader, current leader unknown\n");
    }
}

async_test! {
    /// Go 15: other methods -> 405; HEAD gets the length but no body.
    async fn other_methods_are_405() {
        let (_handler, addr) = node(quick()).await;
        let reply = exchange(&addr, b"PATCH /raft HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!((reply.status(), reply.body.as_str()), (405, "unknown action\n"));
        let mut raw = rt::connect(&addr).await;
        rt::write_all(&mut raw, b"HEAD /raft HTTP/1.1\r\nHost: x\r\n\r\nPUT /raft HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let head = read_reply(&mut raw, true).await;
        assert_eq!((head.status(), head.header("content-length")), (405, Some("15")));
        // The next response follows at once: HEAD had no body on the wire.
        let put = read_reply(&mut raw, false).await;
        assert_eq!((put.status(), put.body.as_str()), (405, "unknown action\n"));
    }
}

async_test! {
    /// Keep-alive: several requests on one connection, a body skipped by Content-Length, then
    /// an upgrade on the same connection (Go's `srv_keepalive_400_then_upgrade`).
    async fn keep_alive_then_upgrade() {
        let (handler, addr) = node(quick()).await;
        let _seen = consume(&handler, |_| Some(Ok(())));
        let mut raw = rt::connect(&addr).await;
        rt::write_all(&mut raw, b"GET /raft HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(read_reply(&mut raw, false).await.status(), 400);
        rt::write_all(&mut raw, b"POST /raft?id=1&address=a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world").await;
        assert_eq!(read_reply(&mut raw, false).await.status(), 200);
        rt::write_all(&mut raw, b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let other = read_reply(&mut raw, false).await;
        assert_eq!((other.status(), other.body.as_str()), (404, "404 page not found\n"));
        rt::write_all(&mut raw, GO_DIAL).await;
        assert_eq!(read_exact(&mut raw, SWITCHING.len()).await, SWITCHING);
        let mut accepted = bounded("accept", handler.accept()).await.expect("accept");
        rt::write_all(&mut raw, b"x").await;
        assert_eq!(read_exact(&mut accepted, 1).await, b"x");
    }
}

async_test! {
    /// Bad input gets a status and a closed connection, never a hang: a head over the limit
    /// (431), a chunked body (411), garbage (400), an upgrade declaring a body (400).
    async fn bad_requests_get_a_status() {
        let (_handler, addr) = node(quick()).await;
        let mut long = b"GET /raft HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 16 * 1024));
        long.extend_from_slice(b"\r\nUpgrade: raft\r\n\r\n");
        let reply = exchange(&addr, &long).await;
        assert_eq!((reply.status(), reply.header("connection")), (431, Some("close")));

        let reply = exchange(&addr, b"POST /raft?id=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").await;
        assert_eq!(reply.status(), 411);

        let mut raw = rt::connect(&addr).await;
        rt::write_all(&mut raw, b"garbage\r\n\r\n").await;
        assert_eq!(read_reply(&mut raw, false).await.status(), 400);
        assert_eq!(read_to_eof(&mut raw).await, b"");

        let reply = exchange(&addr, b"GET /raft HTTP/1.1\r\nHost: x\r\nUpgrade: raft\r\nContent-Length: 5\r\n\r\nhello").await;
        assert_eq!((reply.status(), reply.body.as_str()), (400, "upgrade request must not have a body\n"));
    }
}

async_test! {
    /// The accept queue is bounded: once full, upgrades are refused with 503 before any 101.
    async fn full_accept_queue_refuses_with_503() {
        let (_handler, addr) = node(HandlerConfig::default().with_accept_queue(1)).await;
        let mut first = rt::connect(&addr).await;
        rt::write_all(&mut first, GO_DIAL).await;
        assert_eq!(read_exact(&mut first, SWITCHING.len()).await, SWITCHING);
        let reply = exchange(&addr, GO_DIAL).await;
        assert_eq!(reply.status(), 503);
    }
}

async_test! {
    /// Closing answers membership requests that wait for the application and ends the request
    /// stream.
    async fn close_answers_waiting_requests() {
        let (handler, addr) = node(HandlerConfig::default()).await;
        let requests = handler.requests();
        let mut raw = rt::connect(&addr).await;
        rt::write_all(&mut raw, b"POST /raft?id=1&address=a HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let request = bounded("request", requests.recv()).await.expect("request");
        handler.close();
        let reply = read_reply(&mut raw, false).await;
        assert_eq!((reply.status(), reply.body.as_str()), (403, "raft transport closed\n"));
        assert!(!request.respond(Ok(())), "nobody waits for this answer any more");
        assert!(bounded("end of requests", requests.recv()).await.is_none());
    }
}

async_test! {
    /// `Expect: 100-continue` (curl sends it for larger bodies) gets `100 Continue` before the
    /// body is read, so the client does not wait for its own timeout; then the final answer.
    async fn expect_continue_is_answered() {
        let (handler, addr) = node(quick()).await;
        let _seen = consume(&handler, |_| Some(Ok(())));
        let mut raw = rt::connect(&addr).await;
        rt::write_all(&mut raw, b"POST /raft?id=1&address=a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n").await;
        assert_eq!(read_exact(&mut raw, 25).await, b"HTTP/1.1 100 Continue\r\n\r\n");
        rt::write_all(&mut raw, b"hello").await;
        assert_eq!(read_reply(&mut raw, false).await.status(), 200);
    }
}

async_test! {
    /// The authorization hook sees every upgrade and membership request first: no credentials
    /// -> 401 with the challenge, wrong ones -> 403, and neither reserves an accept slot nor
    /// reaches the application; the right ones go through.
    async fn authorization_hook_refuses_before_acting() {
        let config = HandlerConfig::default()
            .with_accept_queue(1)
            .with_authorization(|head| match head.headers().get("authorization") {
                Some(b"Bearer s3cret") => Ok(()),
                Some(_) => Err(Refusal::Forbidden { message: "wrong token".into() }),
                None => Err(Refusal::Unauthorized {
                    challenge: "Bearer realm=\"raft\"".into(),
                    message: "token required".into(),
                }),
            });
        let (handler, addr) = node(config).await;
        let seen = consume(&handler, |_| Some(Ok(())));

        let reply = exchange(&addr, GO_DIAL).await;
        assert_eq!((reply.status(), reply.body.as_str()), (401, "token required\n"));
        assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"raft\""));
        let reply = exchange(&addr, b"POST /raft?id=1&address=a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n\r\n").await;
        assert_eq!((reply.status(), reply.body.as_str()), (403, "wrong token\n"));
        // Requests that do nothing are answered as before.
        let reply = exchange(&addr, b"GET /raft HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(reply.status(), 400);
        assert!(seen.lock().unwrap().is_empty(), "a refused request reached the application");

        let reply = exchange(&addr, b"POST /raft?id=1&address=a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n").await;
        assert_eq!(reply.status(), 200);
        // The refused upgrade did not take the only accept slot.
        let mut raw = rt::connect(&addr).await;
        rt::write_all(&mut raw, b"GET /raft HTTP/1.1\r\nHost: x\r\nUpgrade: raft\r\nAuthorization: Bearer s3cret\r\n\r\n").await;
        assert_eq!(read_exact(&mut raw, SWITCHING.len()).await, SWITCHING);
        let mut accepted = bounded("accept", handler.accept()).await.expect("accept");
        rt::write_all(&mut raw, b"ok").await;
        assert_eq!(read_exact(&mut accepted, 2).await, b"ok");
    }
}

async_test! {
    /// The standalone server's fallback answers other paths (a health check, a small API with
    /// a body), on the same keep-alive connection as Raft requests; without one they get 404.
    async fn fallback_answers_other_paths_with_their_bodies() {
        use rafthttp_driver::core::Response;
        let config = quick().with_fallback(|request| async move {
            match (request.method(), request.path()) {
                ("GET", "/health") => Response::text(200, "ok"),
                ("PUT", "/kv/a") => {
                    let value = String::from_utf8_lossy(request.body()).into_owned();
                    let kind = request.header("content-type").unwrap_or_default().to_vec();
                    Response::text(200, format!("{value} as {}", String::from_utf8_lossy(&kind)))
                }
                _ => Response::not_found(),
            }
        });
        let (_handler, addr) = node(config).await;
        let mut raw = rt::connect(&addr).await;
        rt::write_all(&mut raw, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let reply = read_reply(&mut raw, false).await;
        assert_eq!((reply.status(), reply.body.as_str()), (200, "ok\n"));
        rt::write_all(&mut raw, b"PUT /kv/a HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello").await;
        let reply = read_reply(&mut raw, false).await;
        assert_eq!((reply.status(), reply.body.as_str()), (200, "hello as text/plain\n"));
        rt::write_all(&mut raw, b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(read_reply(&mut raw, false).await.status(), 404);
        rt::write_all(&mut raw, b"GET /raft HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(read_reply(&mut raw, false).await.status(), 400);
    }
}

async_test! {
    /// Issue 6: a handler with a cluster id refuses upgrades and membership requests naming
    /// another cluster with 412 (the body names neither id), allows its own, and allows or
    /// refuses requests without one (Go peers send none) as configured. The authorization
    /// hook runs first. Layers send their handler's id.
    async fn cluster_id_is_checked_on_upgrades_and_membership() {
        use rafthttp_driver::{ClusterId, MissingClusterId};
        let ours = ClusterId::new("blue").unwrap();
        let upgrade = |id: Option<&str>| {
            let field = id.map(|id| format!("Raft-Cluster-Id: {id}\r\n")).unwrap_or_default();
            format!("GET /raft HTTP/1.1\r\nHost: x\r\nUpgrade: raft\r\n{field}\r\n")
        };
        let join = |id: &str| format!("POST /raft?id=5&address=a:5 HTTP/1.1\r\nHost: x\r\nRaft-Cluster-Id: {id}\r\n\r\n");

        let (handler, addr) = node(quick().with_cluster_id(ours.clone())).await;
        let _seen = consume(&handler, |_| Some(Ok(())));
        let refused = exchange(&addr, upgrade(Some("green")).as_bytes()).await;
        assert_eq!((refused.status(), refused.body.as_str()), (412, "request for another raft cluster\n"));
        let refused = exchange(&addr, join("green").as_bytes()).await;
        assert_eq!(refused.status(), 412);
        assert_eq!(exchange(&addr, join("blue").as_bytes()).await.status(), 200);
        for id in [Some("blue"), None] {
            // Our own id, and none (allowed by default): upgraded and queued for accept().
            let mut raw = rt::connect(&addr).await;
            rt::write_all(&mut raw, upgrade(id).as_bytes()).await;
            assert_eq!(read_exact(&mut raw, SWITCHING.len()).await, SWITCHING, "{id:?}");
            bounded("accept", handler.accept()).await.expect("accept");
        }

        let strict = quick().with_cluster_id(ours.clone().with_missing(MissingClusterId::Refuse));
        let (_strict, strict_addr) = node(strict).await;
        assert_eq!(exchange(&strict_addr, upgrade(None).as_bytes()).await.status(), 412);

        // The authorization hook first: a refused request never learns about clusters.
        let guarded = quick()
            .with_cluster_id(ours.clone())
            .with_authorization(|_| Err(Refusal::Forbidden { message: "no".into() }));
        let (_guarded, guarded_addr) = node(guarded).await;
        assert_eq!(exchange(&guarded_addr, upgrade(Some("green")).as_bytes()).await.status(), 403);

        // Layers send their handler's id: same cluster dials, another is refused.
        let (blue, blue_addr) = node(HandlerConfig::default().with_cluster_id(ours)).await;
        let mut dialed = layer(&blue_addr, &blue).dial(&addr, WAIT).await.expect("same cluster");
        let mut accepted = bounded("accept", handler.accept()).await.expect("accept");
        rt::write_all(&mut dialed, b"b").await;
        assert_eq!(read_exact(&mut accepted, 1).await, b"b");
        let green = HandlerConfig::default().with_cluster_id(ClusterId::new("green").unwrap());
        let (green, green_addr) = node(green).await;
        let e = layer(&green_addr, &green).dial(&addr, WAIT).await.expect_err("another cluster");
        assert_eq!(e.to_string(), "dialing fail: expected status code 101 got 412");
        let e = layer(&green_addr, &green).join("9", &addr, WAIT).await.expect_err("another cluster");
        assert_eq!(e.to_string(), "server join failed: http code 412 'request for another raft cluster'");
    }
}

/// A socket from 127.0.0.2 that sends the first byte of a head and nothing more (a blocking
/// std socket: it only has to exist).
fn slow_socket(addr: &str) -> std::net::TcpStream {
    use std::io::Write as _;
    let target: std::net::SocketAddr = addr.parse().expect("address");
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let source = std::net::SocketAddr::from(([127, 0, 0, 2], 0));
    socket.bind(&source.into()).expect("bind 127.0.0.2");
    socket.connect(&target.into()).expect("connect");
    let mut stream = std::net::TcpStream::from(socket);
    stream.write_all(b"G").expect("one byte");
    stream
}

async_test! {
    /// Issue 6: sockets that trickle a head from one address (127.0.0.2) cannot lock peers at
    /// another (127.0.0.1) out. With a small per-source bound, most of them are closed at once;
    /// with none to speak of, the connection cap sheds the one waiting longest for a head, so
    /// every dial still gets through. The head timeout is far past the suite's bound on every
    /// wait: it is not what saves the dials.
    async fn slow_sockets_from_one_address_do_not_lock_others_out() {
        for per_source in [4, 100] {
            let config = HandlerConfig::default()
                .with_max_connections(8)
                .with_max_waiting_per_source(per_source)
                .with_head_timeout(WAIT * 60);
            let (handler, addr) = node(config).await;
            let slow: Vec<_> = (0..20).map(|_| slow_socket(&addr)).collect();
            let (own_handler, own) = node(HandlerConfig::default()).await;
            let client = layer(&own, &own_handler);
            for i in 0..10u8 {
                let mut dialed = client.dial(&addr, WAIT).await.unwrap_or_else(|e| panic!("dial {i} (per source {per_source}): {e}"));
                let mut accepted = bounded("accept", handler.accept()).await.expect("accept");
                rt::write_all(&mut dialed, &[i]).await;
                assert_eq!(read_exact(&mut accepted, 1).await, [i]);
            }
            drop(slow);
        }
    }
}
