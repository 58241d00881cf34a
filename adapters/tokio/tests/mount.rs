//! The Handler mounted in axum and called as a tower Service.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use rafthttp_tokio::{ChangeError, Handler, HandlerConfig, Layer, TcpDialer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_service::Service;

const WAIT: Duration = Duration::from_secs(10);

/// Bounds a wait: a hang is a failure.
async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f).await.expect("timed out")
}

/// Serves `router` with axum on loopback; returns the address.
async fn serve_axum(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn app(handler: &Handler) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route_service("/raft", handler.clone())
}

/// Sends raw bytes and reads until the peer has sent `until` (or closes).
async fn raw(addr: &str, request: &[u8], until: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 512];
    while !String::from_utf8_lossy(&got).contains(until) {
        let n = within(s.read(&mut chunk)).await.unwrap();
        assert_ne!(
            n,
            0,
            "EOF before {until:?}: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&chunk[..n]);
    }
    (s, String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn dial_and_accept_through_axum() {
    let handler = Handler::new();
    let addr = serve_axum(app(&handler)).await;
    let layer = Layer::new(&addr, handler.clone(), TcpDialer).unwrap();

    let mut dialed = layer.dial(&addr, WAIT).await.unwrap();
    let mut accepted = within(layer.accept()).await.unwrap();
    dialed.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    within(accepted.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"hello");
    accepted.write_all(b"world").await.unwrap();
    within(dialed.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"world");

    // The rest of the application still works on the same port.
    let (_s, reply) = raw(&addr, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", "ok").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[tokio::test]
async fn plain_hyper_mount_hands_back_the_tcp_stream() {
    let handler = Handler::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let service = hyper_util::service::TowerToHyperService::new(handler.clone());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let io = hyper_util::rt::TokioIo::new(tcp);
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .with_upgrades()
            .await;
    });
    let request =
        b"GET /raft HTTP/1.1\r\nHost: x\r\nUpgrade: raft\r\nConnection: Upgrade\r\n\r\nfirst";
    let (mut client, reply) = raw(&addr, request, "\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 101"), "{reply}");
    let mut accepted = within(handler.accept()).await.unwrap();
    // hyper's TokioIo<TcpStream> is unwrapped: Raft traffic runs on the plain socket, and the
    // bytes hyper had read past the head come first.
    assert!(accepted.tcp().is_some());
    let mut buf = [0u8; 5];
    within(accepted.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"first");
    accepted.write_all(b"reply").await.unwrap();
    within(client.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"reply");
}

#[tokio::test]
async fn go_request_and_pipelined_bytes_through_axum() {
    let handler = Handler::new();
    let addr = serve_axum(app(&handler)).await;
    // Go's exact request (no Connection header), with Raft bytes in the same write.
    let request = b"GET /raft HTTP/1.1\r\nHost: 127.0.0.1:17100\r\nUser-Agent: Go-http-client/1.1\r\nUpgrade: raft\r\n\r\nping\n";
    let (mut client, reply) = raw(&addr, request, "\r\n\r\n").await;
    assert!(
        reply.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{reply}"
    );
    assert!(
        reply.to_ascii_lowercase().contains("upgrade: raft\r\n"),
        "{reply}"
    );
    let mut accepted = within(handler.accept()).await.unwrap();
    let mut buf = [0u8; 5];
    within(accepted.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"ping\n");
    accepted.write_all(b"pong\n").await.unwrap();
    within(client.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"pong\n");
}

#[tokio::test]
async fn membership_through_axum_with_a_redirect() {
    // Leader served by axum, follower by the standalone server, redirecting to the leader.
    let leader =
        Handler::with_config(HandlerConfig::default().with_timeout(Duration::from_millis(500)));
    let leader_addr = serve_axum(app(&leader)).await;
    let follower = Handler::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let follower_addr = listener.local_addr().unwrap().to_string();
    tokio::spawn({
        let follower = follower.clone();
        async move { follower.serve(listener).await }
    });
    let requests = follower.requests();
    let to = leader_addr.clone();
    tokio::spawn(async move {
        while let Some(r) = requests.recv().await {
            r.respond(Err(ChangeError::NotLeader {
                leader: Some(to.clone()),
            }));
        }
    });
    let requests = leader.requests();
    let seen = tokio::spawn(async move {
        let r = requests.recv().await.unwrap();
        let seen = (
            r.kind().to_string(),
            r.id().to_owned(),
            r.address().to_owned(),
        );
        r.respond(Ok(()));
        seen
    });
    let joiner = Layer::new("127.0.0.1:1", Handler::new(), TcpDialer).unwrap();
    joiner.join("7", &follower_addr, WAIT).await.unwrap();
    assert_eq!(
        seen.await.unwrap(),
        ("join".to_owned(), "7".to_owned(), "127.0.0.1:1".to_owned())
    );

    // No consumer any more: the leader answers 403 with the timeout text, through axum.
    let e = joiner.join("8", &leader_addr, WAIT).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "server join failed: http code 403 'failed to join server 8: timeout waiting for membership change'"
    );
    // Status mapping is the same as the standalone server's.
    let (_s, reply) = raw(
        &leader_addr,
        b"GET /raft HTTP/1.1\r\nHost: x\r\n\r\n",
        "header\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(
        reply.ends_with("\r\n\r\nmissing or invalid upgrade header\n"),
        "{reply}"
    );
}

/// Serves `handler` nested under `/cluster` (at `/cluster/raft`), has it answer every
/// membership request "not the leader, which is 127.0.0.1:9", and posts a join to
/// `/cluster/raft`; returns the address and the reply's head.
async fn nested_join(handler: &Handler) -> (String, String) {
    let router = Router::new().nest(
        "/cluster",
        Router::new().route_service("/raft", handler.clone()),
    );
    let addr = serve_axum(router).await;
    let requests = handler.requests();
    let answering = tokio::spawn(async move {
        let request = requests.recv().await.expect("a request");
        request.respond(Err(ChangeError::NotLeader {
            leader: Some("127.0.0.1:9".into()),
        }));
    });
    let (_s, reply) = raw(
        &addr,
        b"POST /cluster/raft?id=1&address=a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        "\r\n\r\n",
    )
    .await;
    within(answering).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 308"), "{reply}");
    (addr, reply)
}

#[tokio::test]
async fn nested_mount_redirects_with_the_configured_path() {
    let config = HandlerConfig::default().with_path("/cluster/raft").unwrap();
    let handler = Handler::with_config(config);
    let (addr, reply) = nested_join(&handler).await;
    assert!(
        reply.contains("location: http://127.0.0.1:9/cluster/raft?id=1&address=a\r\n"),
        "{reply}"
    );
    // And a Raft connection to the nested path works.
    let layer = Layer::new(&addr, handler.clone(), TcpDialer).unwrap();
    let _dialed = layer.dial(&addr, WAIT).await.unwrap();
    within(layer.accept()).await.unwrap();
}

#[tokio::test]
async fn a_connection_that_cannot_upgrade_gets_500_and_frees_the_slot() {
    // Go test 3: the server cannot hand over the connection (here: a request with no upgrade
    // support attached, as over HTTP/2 or with upgrades disabled).
    let mut handler = Handler::with_config(HandlerConfig::default().with_accept_queue(1));
    let request = http::Request::get("/raft")
        .header("host", "x")
        .header("upgrade", "raft")
        .body(())
        .unwrap();
    let response = handler.call(request).await.unwrap();
    assert_eq!(response.status(), 500);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains("upgraded"),
        "{body:?}"
    );
    // The accept slot was not kept: a real upgrade still fits in the queue of one.
    let addr = serve_axum(app(&handler)).await;
    let layer = Layer::new(&addr, handler.clone(), TcpDialer).unwrap();
    let _dialed = layer.dial(&addr, WAIT).await.unwrap();
    within(layer.accept()).await.unwrap();
}

#[tokio::test]
async fn the_authorization_hook_applies_to_the_mount() {
    let config = HandlerConfig::default().with_authorization(|head| {
        match head.headers().get("authorization") {
            Some(b"Bearer s3cret") => Ok(()),
            _ => Err(rafthttp_tokio::Refusal::Unauthorized {
                challenge: "Bearer".into(),
                message: "token required".into(),
            }),
        }
    });
    let handler = Handler::with_config(config);
    let addr = serve_axum(app(&handler)).await;
    let (_s, reply) = raw(
        &addr,
        b"GET /raft HTTP/1.1\r\nHost: x\r\nUpgrade: raft\r\n\r\n",
        "required\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    assert!(reply.contains("www-authenticate: Bearer\r\n"), "{reply}");
    let request =
        b"GET /raft HTTP/1.1\r\nHost: x\r\nUpgrade: raft\r\nAuthorization: Bearer s3cret\r\n\r\n";
    let (_s, reply) = raw(&addr, request, "\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 101"), "{reply}");
    within(handler.accept()).await.unwrap();
}

#[tokio::test]
async fn an_http_1_0_upgrade_through_axum_gets_500() {
    // HTTP/1.0 has no upgrade: the core's routing answers 500 with the reason, as Go does when
    // it cannot hijack, and no accept slot is taken.
    let handler = Handler::with_config(HandlerConfig::default().with_accept_queue(1));
    let addr = serve_axum(app(&handler)).await;
    let (_s, reply) = raw(
        &addr,
        b"GET /raft HTTP/1.0\r\nHost: x\r\nUpgrade: raft\r\n\r\n",
        "enabled)\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.0 500"), "{reply}");
    let layer = Layer::new(&addr, handler.clone(), TcpDialer).unwrap();
    let _dialed = layer.dial(&addr, WAIT).await.unwrap();
    within(layer.accept()).await.unwrap();
}

#[tokio::test]
async fn the_cluster_id_applies_to_the_mount() {
    use rafthttp_tokio::ClusterId;
    let config = HandlerConfig::default().with_cluster_id(ClusterId::new("blue").unwrap());
    let handler = Handler::with_config(config);
    let addr = serve_axum(app(&handler)).await;
    let (_s, reply) = raw(
        &addr,
        b"GET /raft HTTP/1.1\r\nHost: x\r\nUpgrade: raft\r\nRaft-Cluster-Id: green\r\n\r\n",
        "cluster\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 412"), "{reply}");
    assert!(
        !reply.contains("blue") && !reply.contains("green\r\n"),
        "{reply}"
    );
    let request = b"POST /raft?id=2&address=a:2 HTTP/1.1\r\nHost: x\r\nRaft-Cluster-Id: green\r\nContent-Length: 0\r\n\r\n";
    let (_s, reply) = raw(&addr, request, "cluster\n").await;
    assert!(reply.starts_with("HTTP/1.1 412"), "{reply}");
    let (_s, reply) = raw(
        &addr,
        b"GET /raft HTTP/1.1\r\nHost: x\r\nUpgrade: raft\r\nRaft-Cluster-Id: blue\r\n\r\n",
        "\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 101"), "{reply}");
    within(handler.accept()).await.unwrap();
}

#[cfg(feature = "axum")]
mod axum_feature {
    use std::net::SocketAddr;

    use rafthttp_tokio::PeerInfo;
    use rafthttp_tokio::rustls::pki_types::CertificateDer;

    use super::*;

    /// Serves `router` with `ConnectInfo<SocketAddr>`; returns the address.
    async fn serve_with_connect_info(router: Router) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
        addr
    }

    #[tokio::test]
    async fn connect_info_gives_mounted_streams_their_peer() {
        let handler = Handler::new();
        let addr = serve_with_connect_info(app(&handler)).await;
        let layer = Layer::new(&addr, handler.clone(), TcpDialer).unwrap();
        let dialed = layer.dial(&addr, WAIT).await.unwrap();
        let accepted = within(layer.accept()).await.unwrap();
        assert!(
            accepted.tcp().is_none(),
            "axum keeps the socket: {accepted:?}"
        );
        assert_eq!(accepted.peer_addr(), dialed.local_addr());
        assert!(accepted.peer_addr().is_some());
        assert_eq!(accepted.local_addr(), None);
        assert_eq!(accepted.peer_certificates(), None);
    }

    #[tokio::test]
    async fn without_connect_info_a_mounted_stream_has_no_peer() {
        let handler = Handler::new();
        let addr = serve_axum(app(&handler)).await;
        let layer = Layer::new(&addr, handler.clone(), TcpDialer).unwrap();
        let _dialed = layer.dial(&addr, WAIT).await.unwrap();
        let accepted = within(layer.accept()).await.unwrap();
        assert_eq!(accepted.peer_addr(), None);
    }

    #[tokio::test]
    async fn a_peer_info_extension_wins_over_connect_info() {
        // What an application's TLS acceptor knows, handed over as a request extension.
        let given = PeerInfo {
            addr: "127.0.0.1:4242".parse().unwrap(),
            certificates: vec![CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x07])],
        };
        let handler = Handler::new();
        let router = app(&handler).layer(axum::Extension(given.clone()));
        let addr = serve_with_connect_info(router).await;
        let layer = Layer::new(&addr, handler.clone(), TcpDialer).unwrap();
        let _dialed = layer.dial(&addr, WAIT).await.unwrap();
        let accepted = within(layer.accept()).await.unwrap();
        assert_eq!(accepted.peer_addr(), Some(given.addr));
        assert_eq!(
            accepted.peer_certificates(),
            Some(given.certificates.as_slice())
        );
        assert_eq!(accepted.peer_info(), Some(&given));
    }

    #[tokio::test]
    async fn a_nested_mount_redirects_to_the_path_the_request_came_on() {
        // Configured for `/raft`, mounted at `/cluster/raft`: the Location keeps the path the
        // request arrived on (axum's OriginalUri), and the handler warns once that peers dial
        // the configured one.
        let handler = Handler::new();
        let (_addr, reply) = nested_join(&handler).await;
        assert!(
            reply.contains("location: http://127.0.0.1:9/cluster/raft?id=1&address=a\r\n"),
            "{reply}"
        );
    }
}
