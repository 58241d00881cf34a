//! TLS: Raft connections and membership over HTTPS, mutual TLS, and what happens when one side
//! speaks TLS and the other does not. Certificates come from the shared rcgen fixture
//! ([`rafthttp_tests::pki::Pki`]): a CA, a server leaf for `127.0.0.1` / `localhost`, a client
//! leaf for mutual TLS.

use std::sync::Arc;

use rafthttp_driver::{DialError, MembershipError, Scheme};
use rafthttp_tests::pki::Pki;
use rt::Dialer as _;
use rustls::{ClientConfig, ServerConfig};

use super::*;

/// A handler served over TLS on loopback, with its address.
async fn tls_node(config: HandlerConfig, tls: Arc<ServerConfig>) -> (rt::Handler, String) {
    let handler = rt::Handler::with_config(config);
    let addr = rt::serve_tls(&handler, tls).await;
    (handler, addr)
}

/// A layer over `handler` dialing TLS with `tls`.
fn tls_layer(addr: &str, handler: &rt::Handler, tls: Arc<ClientConfig>) -> rt::TlsLayer {
    rt::TlsLayer::new(addr, handler.clone(), rt::TlsDialer::new(tls)).expect("layer")
}

async_test! {
    /// Dial over TLS, accept on the other side, echo both ways; the dialed stream carries the
    /// server's certificate.
    async fn tls_dial_accept_echo() {
        let pki = Pki::new();
        let (handler, addr) = tls_node(HandlerConfig::default(), pki.server(false)).await;
        let server = layer(&addr, &handler);
        let client = tls_layer(&addr, &handler, pki.client(false));

        let mut dialed = client.dial(&addr, WAIT).await.expect("dial");
        let mut accepted = bounded("accept", server.accept()).await.expect("accept");
        assert_eq!(dialed.peer_certificates(), Some(&[pki.server.cert.clone()][..]));
        assert_eq!(accepted.peer_certificates(), None, "no client certificate was asked for");
        rt::write_all(&mut dialed, b"hello").await;
        assert_eq!(read_exact(&mut accepted, 5).await, b"hello");
        rt::write_all(&mut accepted, b"world!").await;
        assert_eq!(read_exact(&mut dialed, 6).await, b"world!");
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        rt::write_all(&mut dialed, &big).await;
        assert_eq!(read_exact(&mut accepted, big.len()).await, big);
    }
}

/// A join's redirect, read raw from a TLS connection to `follower_addr`.
async fn redirect_over_tls(pki: &Pki, follower_addr: &str) -> Reply {
    let dialer = rt::TlsDialer::new(pki.client(false));
    let mut conn = bounded("connect", dialer.connect(follower_addr))
        .await
        .expect("connect");
    let request = format!(
        "POST /raft?id=9&address=x:1 HTTP/1.1\r\nHost: {follower_addr}\r\nContent-Length: 0\r\n\r\n"
    );
    rt::write_all(&mut conn, request.as_bytes()).await;
    read_reply(&mut conn, false).await
}

async_test! {
    /// Issue 9. A TLS follower's redirect to the TLS leader says `http://` by default, as the
    /// Go handler writes it (Go clients dial every URL with their TLS dial function and cannot
    /// follow `https` ones); `https` when configured, for generic HTTP clients. Our TLS client
    /// follows either, over TLS, for a join and a leave.
    async fn tls_follower_redirects_with_the_configured_scheme_and_tls_clients_follow() {
        let pki = Pki::new();
        for (scheme, expected) in [(None, "http"), (Some(Scheme::Https), "https")] {
            let config = || match scheme {
                None => quick(),
                Some(scheme) => quick().with_scheme(scheme),
            };
            let (leader, leader_addr) = tls_node(config(), pki.server(false)).await;
            let leader_seen = consume(&leader, |_| Some(Ok(())));
            let (follower, follower_addr) = tls_node(config(), pki.server(false)).await;
            let redirect_to = leader_addr.clone();
            let follower_seen = consume(&follower, move |_| Some(not_leader(Some(&redirect_to))));

            let reply = redirect_over_tls(&pki, &follower_addr).await;
            assert_eq!(reply.status(), 308, "{reply:?}");
            let location = format!("{expected}://{leader_addr}/raft?id=9&address=x:1");
            assert_eq!(reply.header("location"), Some(&*location));

            let (joiner_handler, joiner_addr) = tls_node(config(), pki.server(false)).await;
            let joiner = tls_layer(&joiner_addr, &joiner_handler, pki.client(false));
            joiner.join("3", &follower_addr, WAIT).await.expect("join via follower");
            assert_eq!(*leader_seen.lock().unwrap(), [(ChangeKind::Join, "3".to_owned(), joiner_addr.clone())]);
            joiner.leave("3", &follower_addr, WAIT).await.expect("leave via follower");
            assert_eq!(leader_seen.lock().unwrap()[1], (ChangeKind::Leave, "3".to_owned(), String::new()));
            assert_eq!(follower_seen.lock().unwrap().len(), 3, "redirect probe, join, leave");
        }
    }
}

async_test! {
    /// Issue 9. A Go TLS follower answers with Go's 308 bytes (`srv_post_leader.response.bin`:
    /// an `http://` Location, no TLS in it). Our TLS client follows it over TLS to the leader.
    async fn tls_client_follows_the_go_308_over_tls() {
        let pki = Pki::new();
        let (leader, leader_addr) = tls_node(quick(), pki.server(false)).await;
        let leader_seen = consume(&leader, |_| Some(Ok(())));
        let (joiner_handler, joiner_addr) = tls_node(quick(), pki.server(false)).await;
        // Go's bytes, with the leader and the joiner (whose query Go copies) at our addresses.
        let go_308 = String::from_utf8(rafthttp_tests::GO_308.to_vec())
            .expect("ASCII")
            .replace("127.0.0.1:17202", &leader_addr)
            .replace("127.0.0.1:17103", &joiner_addr);
        let (listener, go_follower) = rt::raw_listener().await;
        let server_config = pki.server(false);
        let script = spawn_joined(async move {
            let raw = rt::raw_accept(&listener).await;
            let mut tls = rt::tls_accept(raw, server_config).await;
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                request.extend(read_exact(&mut tls, 1).await);
            }
            let text = String::from_utf8(request).expect("ASCII request");
            assert!(text.starts_with("POST /raft?id=3&address="), "{text}");
            rt::write_all(&mut tls, go_308.as_bytes()).await;
        });
        let joiner = tls_layer(&joiner_addr, &joiner_handler, pki.client(false));
        joiner.join("3", &go_follower, WAIT).await.expect("join through the Go follower");
        bounded("the scripted Go follower", script).await;
        assert_eq!(*leader_seen.lock().unwrap(), [(ChangeKind::Join, "3".to_owned(), joiner_addr)]);
    }
}

async_test! {
    /// Issue 9. A plain dialer still refuses an `https://` Location (it would send the request
    /// in clear text to a TLS port), naming the URL.
    async fn plain_dialer_refuses_an_https_location() {
        let (follower, follower_addr) = node(quick().with_scheme(Scheme::Https)).await;
        let _seen = consume(&follower, |_| Some(not_leader(Some("127.0.0.1:9"))));
        let (own_handler, own) = node(quick()).await;
        let e = layer(&own, &own_handler).join("3", &follower_addr, WAIT).await.expect_err("https");
        assert!(
            matches!(e, MembershipError::Protocol(rafthttp_driver::core::MembershipError::Scheme { .. })),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("server join failed: redirected to https://127.0.0.1:9/raft?id=3&address={own}, which this dialer cannot reach (it speaks http)")
        );
    }
}

async_test! {
    /// Issue 9. Plain HTTP sent to a TLS port gets the answer Go's TLS server gives, which
    /// curl and Go clients print, instead of a TLS alert; the connection is then closed.
    async fn plain_http_to_a_tls_port_gets_a_readable_400() {
        let pki = Pki::new();
        let (_handler, addr) = tls_node(quick(), pki.server(false)).await;
        let mut raw = rt::connect(&addr).await;
        rt::write_all(&mut raw, format!("POST /raft?id=3&address=a:1 HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
        let answer = read_to_eof(&mut raw).await;
        assert_eq!(
            String::from_utf8_lossy(&answer),
            "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
        );
        // A TLS client on the same port is not affected.
        let client = tls_layer(&addr, &_handler, pki.client(false));
        let _ = bounded("dial", client.dial(&addr, WAIT)).await.expect("TLS still works");
    }
}

async_test! {
    /// Mutual TLS: a client without a certificate is refused (its dial fails and nothing
    /// reaches accept); one with a certificate from the CA gets through, and the accepted
    /// stream carries that certificate.
    async fn mutual_tls_requires_a_client_certificate() {
        let pki = Pki::new();
        let (handler, addr) = tls_node(HandlerConfig::default(), pki.server(true)).await;
        let server = layer(&addr, &handler);

        let anonymous = tls_layer(&addr, &handler, pki.client(false));
        let e = anonymous.dial(&addr, WAIT).await.expect_err("no client certificate");
        assert!(!e.is_timeout(), "{e:?}");
        let e = anonymous.join("3", &addr, WAIT).await.expect_err("no client certificate");
        assert!(matches!(e, MembershipError::Io { .. }), "{e:?}");

        let known = tls_layer(&addr, &handler, pki.client(true));
        let mut dialed = known.dial(&addr, WAIT).await.expect("dial with a certificate");
        rt::write_all(&mut dialed, b"known").await;
        // The first connection accepted is the one with a certificate.
        let mut accepted = bounded("accept", server.accept()).await.expect("accept");
        assert_eq!(read_exact(&mut accepted, 5).await, b"known");
        assert_eq!(accepted.peer_certificates(), Some(&[pki.client.cert.clone()][..]));
    }
}

async_test! {
    /// A TLS dialer against a plain HTTP server fails with a TLS error, for a dial and for a
    /// join; neither waits for its deadline (a timeout would be another error variant).
    async fn tls_dialer_against_a_plain_server_fails_fast() {
        let pki = Pki::new();
        let (handler, addr) = node(quick()).await;
        let client = tls_layer(&addr, &handler, pki.client(false));
        let e = client.dial(&addr, WAIT).await.expect_err("plain server");
        assert!(matches!(e, DialError::Connect(_)), "{e:?}");
        assert!(e.to_string().contains("TLS handshake with"), "{e}");
        let e = client.join("3", &addr, WAIT).await.expect_err("plain server");
        assert!(matches!(e, MembershipError::Io { .. }), "{e:?}");
        assert!(e.to_string().starts_with(&format!("server join failed: POST \"https://{addr}/raft?id=3")), "{e}");
    }
}

async_test! {
    /// A plain dialer against a TLS server fails without waiting for its deadline.
    async fn plain_dialer_against_a_tls_server_fails_fast() {
        let pki = Pki::new();
        let (handler, addr) = tls_node(quick(), pki.server(false)).await;
        let client = layer(&addr, &handler);
        let e = client.dial(&addr, WAIT).await.expect_err("TLS server");
        assert!(!e.is_timeout(), "{e:?}");
        let e = client.join("3", &addr, WAIT).await.expect_err("TLS server");
        assert!(!e.is_timeout(), "{e:?}");
    }
}

async_test! {
    /// A client that starts a TLS handshake and never finishes it does not hold up other
    /// connections: the handshake runs in the connection's task. The idle timeout is far past
    /// the suite's bound on every wait, so a handshake run in the accept loop would fail the
    /// dial below. (That the stalled connection is dropped at the idle timeout is checked on the
    /// driver's simulated clock, `serve_with_runs_each_handshake_in_its_connection_task`.)
    async fn stalled_tls_handshake_does_not_block_serving() {
        let idle = WAIT * 60;
        let pki = Pki::new();
        let (handler, addr) = tls_node(HandlerConfig::default().with_idle_timeout(idle), pki.server(false)).await;
        let server = layer(&addr, &handler);
        let mut stalled = rt::connect(&addr).await;
        // The start of a TLS record (a handshake message), and nothing more.
        rt::write_all(&mut stalled, &[0x16, 0x03, 0x01, 0x01, 0x00]).await;

        let client = tls_layer(&addr, &handler, pki.client(false));
        let mut dialed = client.dial(&addr, WAIT).await.expect("dial past a stalled handshake");
        let mut accepted = bounded("accept", server.accept()).await.expect("accept");
        rt::write_all(&mut dialed, b"ok").await;
        assert_eq!(read_exact(&mut accepted, 2).await, b"ok");
        drop(stalled);
    }
}
