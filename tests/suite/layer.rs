//! Client side and the Layer: the Go package's Layer and Dialer tests, and echo both ways.

use std::io::ErrorKind;

use rafthttp_driver::DialError;
use rafthttp_driver::core::HandshakeError;

use super::*;

async_test! {
    /// Go 16, 31: dial a layer, accept on the other side, echo both directions.
    async fn dial_accept_echo() {
        let (handler, addr) = node(HandlerConfig::default()).await;
        let server = layer(&addr, &handler);
        let (client_handler, client_addr) = node(HandlerConfig::default()).await;
        let client = layer(&client_addr, &client_handler);

        let mut dialed = client.dial(&addr, WAIT).await.expect("dial");
        let mut accepted = bounded("accept", server.accept()).await.expect("accept");
        rt::write_all(&mut dialed, b"hello").await;
        assert_eq!(read_exact(&mut accepted, 5).await, b"hello");
        rt::write_all(&mut accepted, b"world!").await;
        assert_eq!(read_exact(&mut dialed, 6).await, b"world!");
        // Larger than any internal buffer, both ways at once.
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let expected = big.clone();
        let echoed = spawn_joined(async move {
            rt::write_all(&mut dialed, &big).await;
            let back = read_exact(&mut dialed, big.len()).await;
            assert_eq!(back, big);
        });
        let got = read_exact(&mut accepted, expected.len()).await;
        assert_eq!(got, expected);
        rt::write_all(&mut accepted, &got).await;
        bounded("the echo to come back", echoed).await;
    }
}

async_test! {
    /// Bytes a server sends in the same write as its 101 are the first bytes of the dialed
    /// stream (the Go client loses them: `dial_resp_101_trailing_data`).
    async fn bytes_behind_the_101_are_kept() {
        let (listener, addr) = rt::raw_listener().await;
        let server = spawn_joined(async move {
            let mut raw = rt::raw_accept(&listener).await;
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                request.extend(read_exact(&mut raw, 1).await);
            }
            let text = String::from_utf8(request).unwrap();
            assert!(text.starts_with("GET /raft HTTP/1.1\r\n"), "{text}");
            assert!(text.contains("\r\nUpgrade: raft\r\n"), "{text}");
            rt::write_all(&mut raw, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\n\r\nhello").await;
            assert_eq!(read_exact(&mut raw, 4).await, b"ping");
        });
        let (handler, own) = node(HandlerConfig::default()).await;
        let mut dialed = layer(&own, &handler).dial(&addr, WAIT).await.expect("dial");
        assert_eq!(read_exact(&mut dialed, 5).await, b"hello");
        rt::write_all(&mut dialed, b"ping").await;
        bounded("the scripted server", server).await;
    }
}

async fn dial_error(response: &'static [u8]) -> DialError {
    let addr = canned(response).await;
    let (handler, own) = node(HandlerConfig::default()).await;
    layer(&own, &handler)
        .dial(&addr, WAIT)
        .await
        .expect_err("dial must fail")
}

async_test! {
    /// Go 23-25: wrong status, garbage, 101 without `Upgrade: raft` -> typed errors with Go's
    /// messages.
    async fn dial_rejections_are_typed() {
        let e = dial_error(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        assert!(matches!(e, DialError::Handshake(HandshakeError::UnexpectedStatus { status: 200 })), "{e:?}");
        assert_eq!(e.to_string(), "dialing fail: expected status code 101 got 200");

        let e = dial_error(b"garbage\r\n\r\n").await;
        assert_eq!(e.to_string(), "failed to read response: malformed HTTP response \"garbage\"");

        let e = dial_error(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").await;
        assert_eq!(e.to_string(), "missing or unexpected Upgrade header in response");
        let e = dial_error(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: RAFT\r\n\r\n").await;
        assert!(matches!(e, DialError::Handshake(HandshakeError::MissingUpgrade)), "{e:?}");
    }
}

async_test! {
    /// Go 21 and 32: nothing listening -> `dialing failed: ...`; a server that accepts but
    /// never answers -> a timeout (Go blocks forever there), distinguishable as such.
    async fn dial_failures_and_timeouts() {
        let (handler, own) = node(HandlerConfig::default()).await;
        let client = layer(&own, &handler);
        // A port that was just free: bind, take the address, close.
        let (listener, closed_addr) = rt::raw_listener().await;
        drop(listener);
        let e = client.dial(&closed_addr, WAIT).await.expect_err("refused");
        assert!(matches!(e, DialError::Connect(_)), "{e:?}");
        assert!(e.to_string().starts_with("dialing failed: "), "{e}");

        let (silent, silent_addr) = rt::raw_listener().await;
        let e = client.dial(&silent_addr, Duration::from_millis(100)).await.expect_err("silent");
        assert!(e.is_timeout(), "{e:?}");
        drop(silent);
    }
}

async_test! {
    /// Go 17-20: accept after close ends with an end-of-stream error, close twice is fine,
    /// addr is what was given, an invalid address or path is refused up front.
    async fn layer_close_addr_and_validation() {
        let (handler, addr) = node(HandlerConfig::default()).await;
        let server = layer(&addr, &handler);
        assert_eq!(server.addr(), addr);
        let waiting = {
            let server = server.clone();
            async move { server.accept().await }
        };
        server.close();
        server.close();
        let e = bounded("accept after close", waiting).await.expect_err("closed");
        assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
        assert!(rt::Layer::new("not an address", handler.clone(), rt::TcpDialer).is_err());
        assert!(HandlerConfig::default().with_path("raft").is_err());
        // The Raft path comes from the handler.
        let custom = rt::Handler::with_config(HandlerConfig::default().with_path("/cluster/raft").unwrap());
        let custom_addr = rt::serve(&custom).await;
        let mut dialed = layer(&custom_addr, &custom).dial(&custom_addr, WAIT).await.expect("dial custom path");
        let mut accepted = bounded("accept", custom.accept()).await.expect("accept");
        rt::write_all(&mut dialed, b"!").await;
        assert_eq!(read_exact(&mut accepted, 1).await, b"!");
    }
}

async_test! {
    /// An accept that is already waiting when the layer closes wakes up with the end-of-stream
    /// error: `join` polls the accept first (it parks), then the close.
    async fn close_wakes_a_waiting_accept() {
        let (handler, addr) = node(HandlerConfig::default()).await;
        let server = layer(&addr, &handler);
        let close = async { server.close() };
        let (accepted, ()) = bounded("accept", futures_util::future::join(server.accept(), close)).await;
        assert_eq!(accepted.expect_err("closed").kind(), ErrorKind::UnexpectedEof);
    }
}

async_test! {
    /// A layer's extra header fields reach the other node's authorization hook on dial, join
    /// and leave (through redirects too); without them the same calls are refused with 401.
    async fn layer_headers_pass_the_authorization_hook() {
        let guarded = || {
            HandlerConfig::default().with_authorization(|head| {
                match head.headers().get("authorization") {
                    Some(b"Bearer s3cret") => Ok(()),
                    _ => Err(rafthttp_driver::Refusal::Unauthorized {
                        challenge: "Bearer".into(),
                        message: "token required".into(),
                    }),
                }
            })
        };
        let (leader, leader_addr) = node(guarded()).await;
        let _leader_seen = consume(&leader, |_| Some(Ok(())));
        let (follower, follower_addr) = node(guarded()).await;
        let to = leader_addr.clone();
        let _follower_seen = consume(&follower, move |_| Some(not_leader(Some(&to))));

        let (own_handler, own) = node(HandlerConfig::default()).await;
        let bare = layer(&own, &own_handler);
        let e = bare.dial(&leader_addr, WAIT).await.expect_err("no token");
        assert_eq!(e.to_string(), "dialing fail: expected status code 101 got 401");
        let e = bare.join("5", &follower_addr, WAIT).await.expect_err("no token");
        assert_eq!(e.to_string(), "server join failed: http code 401 'token required'");

        let client = layer(&own, &own_handler)
            .with_header("Authorization", "Bearer s3cret")
            .expect("valid header");
        let mut dialed = client.dial(&leader_addr, WAIT).await.expect("dial with token");
        let mut accepted = bounded("accept", leader.accept()).await.expect("accept");
        rt::write_all(&mut dialed, b"t").await;
        assert_eq!(read_exact(&mut accepted, 1).await, b"t");
        client.join("5", &follower_addr, WAIT).await.expect("join via the follower with token");
        client.leave("5", &follower_addr, WAIT).await.expect("leave with token");
        assert!(layer(&own, &own_handler).with_header("Host", "x").is_err());
    }
}
