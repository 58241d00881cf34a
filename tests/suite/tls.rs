//! TLS: Raft connections and membership over HTTPS, mutual TLS, and what happens when one side
//! speaks TLS and the other does not. Certificates come from the shared rcgen fixture
//! ([`rafthttp_tests::pki::Pki`]): a CA, a server leaf for `127.0.0.1` / `localhost`, a client
//! leaf for mutual TLS.

use std::sync::Arc;

use rafthttp_driver::{DialError, MembershipError};
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

async_test! {
    /// A join sent over TLS to a follower is redirected (`https` Location) to the TLS leader
    /// and applied there; so is a leave.
    async fn tls_join_is_redirected_to_the_tls_leader() {
        let pki = Pki::new();
        let (leader, leader_addr) = tls_node(quick(), pki.server(false)).await;
        let leader_seen = consume(&leader, |_| Some(Ok(())));
        let (follower, follower_addr) = tls_node(quick(), pki.server(false)).await;
        let redirect_to = leader_addr.clone();
        let follower_seen = consume(&follower, move |_| Some(not_leader(Some(&redirect_to))));

        // The redirect itself, read from a TLS connection.
        let dialer = rt::TlsDialer::new(pki.client(false));
        let mut conn = bounded("connect", dialer.connect(&follower_addr)).await.expect("connect");
        let request = format!("POST /raft?id=9&address=x:1 HTTP/1.1\r\nHost: {follower_addr}\r\nContent-Length: 0\r\n\r\n");
        rt::write_all(&mut conn, request.as_bytes()).await;
        let reply = read_reply(&mut conn, false).await;
        assert_eq!(reply.status(), 308, "{reply:?}");
        assert_eq!(reply.header("location"), Some(&*format!("https://{leader_addr}/raft?id=9&address=x:1")));

        let (joiner_handler, joiner_addr) = tls_node(quick(), pki.server(false)).await;
        let joiner = tls_layer(&joiner_addr, &joiner_handler, pki.client(false));
        joiner.join("3", &follower_addr, WAIT).await.expect("join via follower");
        assert_eq!(*leader_seen.lock().unwrap(), [(ChangeKind::Join, "3".to_owned(), joiner_addr.clone())]);
        assert_eq!(follower_seen.lock().unwrap().len(), 2);
        joiner.leave("3", &follower_addr, WAIT).await.expect("leave via follower");
        assert_eq!(leader_seen.lock().unwrap()[1], (ChangeKind::Leave, "3".to_owned(), String::new()));
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
