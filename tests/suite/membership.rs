//! Join and leave between real layers, with scripted membership consumers.

use rafthttp_driver::MembershipError;

use super::*;

async_test! {
    /// A join reaches the target's application with this layer's address; Ok -> success.
    async fn join_ok() {
        let (handler, addr) = node(quick()).await;
        let seen = consume(&handler, |_| Some(Ok(())));
        let (joiner_handler, joiner_addr) = node(quick()).await;
        let joiner = layer(&joiner_addr, &joiner_handler);
        joiner.join("3", &addr, WAIT).await.expect("join");
        assert_eq!(*seen.lock().unwrap(), [(ChangeKind::Join, "3".to_owned(), joiner_addr.clone())]);
    }
}

async_test! {
    /// Ids and addresses with reserved characters arrive intact (Go writes them unescaped and
    /// breaks: `client_join_unescaped`).
    async fn join_values_are_escaped() {
        let (handler, addr) = node(quick()).await;
        let seen = consume(&handler, |_| Some(Ok(())));
        let client = layer(&addr, &handler);
        client.join("a&b c?d=é", &addr, WAIT).await.expect("join");
        assert_eq!(seen.lock().unwrap()[0].1, "a&b c?d=é");
    }
}

async_test! {
    /// Go 39 in small: a join sent to a follower is redirected to the leader and succeeds
    /// there; the follower never applies it.
    async fn join_via_a_follower_is_redirected_to_the_leader() {
        let (leader, leader_addr) = node(quick()).await;
        let leader_seen = consume(&leader, |_| Some(Ok(())));
        let (follower, follower_addr) = node(quick()).await;
        let redirect_to = leader_addr.clone();
        let follower_seen = consume(&follower, move |_| Some(not_leader(Some(&redirect_to))));
        let (joiner_handler, joiner_addr) = node(quick()).await;
        let joiner = layer(&joiner_addr, &joiner_handler);
        joiner.join("3", &follower_addr, WAIT).await.expect("join via follower");
        assert_eq!(leader_seen.lock().unwrap().len(), 1);
        assert_eq!(follower_seen.lock().unwrap().len(), 1);
        joiner.leave("3", &follower_addr, WAIT).await.expect("leave via follower");
        assert_eq!(leader_seen.lock().unwrap()[1], (ChangeKind::Leave, "3".to_owned(), String::new()));
    }
}

async_test! {
    /// Go 30: 503 (leader unknown) once, then 200 -> success after a retry.
    async fn unknown_leader_is_retried() {
        let (handler, addr) = node(quick()).await;
        let seen = consume(&handler, |n| Some(if n == 0 { not_leader(None) } else { Ok(()) }));
        let client = layer(&addr, &handler);
        client.join("3", &addr, WAIT).await.expect("join after retry");
        assert_eq!(seen.lock().unwrap().len(), 2);
    }
}

async_test! {
    /// 403 from the application: Go's message shape, for join and for leave.
    async fn refusals_read_like_go() {
        let (handler, addr) = node(quick()).await;
        let _seen = consume(&handler, |_| Some(Err(ChangeError::failed("boom"))));
        let client = layer(&addr, &handler);
        let e = client.join("3", &addr, WAIT).await.expect_err("refused");
        assert_eq!(e.to_string(), "server join failed: http code 403 'failed to join server 3: boom'");
        let e = client.leave("3", &addr, WAIT).await.expect_err("refused");
        assert_eq!(e.to_string(), "server leave failed: http code 403 'failed to leave server 3: boom'");
    }
}

async_test! {
    /// Go 26: a path that is not routed -> `http code 404 '404 page not found'`.
    async fn join_to_another_path_is_404() {
        let (_handler, addr) = node(quick()).await;
        let other = rt::Handler::with_config(quick().with_path("/elsewhere").unwrap());
        let client = layer(&addr, &other);
        let e = client.join("3", &addr, WAIT).await.expect_err("404");
        assert_eq!(e.to_string(), "server join failed: http code 404 '404 page not found'");
    }
}

async_test! {
    /// The application never answers: the handler answers 403 with the timeout text at its
    /// timeout, well before the client's own deadline.
    async fn unanswered_join_reports_the_handler_timeout() {
        let (handler, addr) = node(quick()).await;
        let _seen = consume(&handler, |_| None);
        let client = layer(&addr, &handler);
        let e = client.join("3", &addr, WAIT).await.expect_err("timeout");
        assert_eq!(
            e.to_string(),
            "server join failed: http code 403 'failed to join server 3: timeout waiting for membership change'"
        );
    }
}

async_test! {
    /// The client's own deadline: a server that never answers -> a timeout error, in time.
    async fn join_deadline_is_enforced() {
        let (silent, silent_addr) = rt::raw_listener().await;
        let (handler, addr) = node(quick()).await;
        let client = layer(&addr, &handler);
        let e = client.join("3", &silent_addr, Duration::from_millis(100)).await.expect_err("timeout");
        assert!(e.is_timeout(), "{e:?}");
        assert!(e.to_string().contains("deadline exceeded"), "{e}");
        drop(silent);
    }
}

async_test! {
    /// Go 27-29: nothing listening -> an IO error naming the URL; an unparsable Location -> an
    /// error, no loop; a redirect loop stops after 10 redirects.
    async fn join_transport_and_redirect_failures() {
        let (handler, addr) = node(quick()).await;
        let client = layer(&addr, &handler);
        let (listener, closed_addr) = rt::raw_listener().await;
        drop(listener);
        let e = client.leave("3", &closed_addr, WAIT).await.expect_err("refused");
        assert!(matches!(e, MembershipError::Io { .. }), "{e:?}");
        assert!(e.to_string().starts_with(&format!("server leave failed: DELETE \"http://{closed_addr}/raft?id=3\": ")), "{e}");
        let e = client.join("3", &closed_addr, WAIT).await.expect_err("refused");
        assert!(matches!(e, MembershipError::Io { .. }), "{e:?}");
        assert!(e.to_string().starts_with(&format!("server join failed: POST \"http://{closed_addr}/raft?id=3&address={addr}\": ")), "{e}");

        let (bad, bad_addr) = node(quick()).await;
        let _bad = consume(&bad, |_| Some(not_leader(Some("::not a host"))));
        let e = client.join("3", &bad_addr, WAIT).await.expect_err("bad leader");
        // An unusable leader address is not put in a Location: the refusal says why instead.
        assert_eq!(e.to_string(), "server join failed: http code 403 'failed to join server 3: node is not leader, current leader at: ::not a host'");

        let unparsable = canned(b"HTTP/1.1 308 Permanent Redirect\r\nLocation: ht!tp://x y\r\nContent-Length: 0\r\n\r\n").await;
        let e = client.join("3", &unparsable, WAIT).await.expect_err("bad location");
        assert!(matches!(e, MembershipError::Protocol(rafthttp_driver::core::MembershipError::InvalidRedirect { .. })), "{e:?}");

        let (looping, looping_addr) = node(quick()).await;
        let target = looping_addr.clone();
        let _loop = consume(&looping, move |_| Some(not_leader(Some(&target))));
        let e = client.join("3", &looping_addr, WAIT).await.expect_err("loop");
        assert!(e.to_string().ends_with("stopped after 10 redirects"), "{e}");
    }
}

async_test! {
    /// A follower that still redirects to a leader that died: the join starts again from the
    /// follower (after a short wait) until the follower names the new leader, within the
    /// call's deadline. Go's client gives up at the first refused connection.
    async fn join_survives_a_dead_leader_behind_a_follower() {
        let (leader, leader_addr) = node(quick()).await;
        let leader_seen = consume(&leader, |_| Some(Ok(())));
        let (listener, dead_addr) = rt::raw_listener().await;
        drop(listener);
        let (follower, follower_addr) = node(quick()).await;
        let (dead, live) = (dead_addr.clone(), leader_addr.clone());
        let follower_seen = consume(&follower, move |n| {
            Some(not_leader(Some(if n < 2 { &dead } else { &live })))
        });
        let (own_handler, own) = node(quick()).await;
        layer(&own, &own_handler)
            .join("4", &follower_addr, WAIT)
            .await
            .expect("join once the follower knows the new leader");
        assert_eq!(follower_seen.lock().unwrap().len(), 3);
        assert_eq!(*leader_seen.lock().unwrap(), [(ChangeKind::Join, "4".to_owned(), own)]);
    }
}

async_test! {
    /// The free `change_membership` takes a request built by name, and sends its header
    /// fields on every request of the call, redirects included.
    async fn change_membership_sends_its_headers_through_redirects() {
        let guarded = || {
            quick().with_authorization(|head| match head.headers().get("authorization") {
                Some(b"Bearer s3cret") => Ok(()),
                _ => Err(Refusal::Forbidden { message: "no".into() }),
            })
        };
        let (leader, leader_addr) = node(guarded()).await;
        let leader_seen = consume(&leader, |_| Some(Ok(())));
        let (follower, follower_addr) = node(guarded()).await;
        let to = leader_addr.clone();
        let _follower_seen = consume(&follower, move |_| Some(not_leader(Some(&to))));
        let request = rafthttp_driver::ChangeMembership::join("7", "127.0.0.1:7007")
            .target(&follower_addr)
            .timeout(WAIT);
        let e = rt::change_membership(&rt::TcpDialer, &request).await.expect_err("no token");
        assert_eq!(e.to_string(), "server join failed: http code 403 'no'");
        let request = request.header("Authorization", "Bearer s3cret").expect("valid");
        rt::change_membership(&rt::TcpDialer, &request).await.expect("join with the token");
        assert_eq!(*leader_seen.lock().unwrap(), [(ChangeKind::Join, "7".to_owned(), "127.0.0.1:7007".to_owned())]);
    }
}
