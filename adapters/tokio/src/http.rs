//! Serving an application's HTTP service (an axum `Router`, any tower service) with the
//! rafthttp handler mounted in it, the way it should be served: upgrades on, a request-head
//! timeout on a timer.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Serves `service` on `listener` over HTTP/1.1 until the future is dropped (which closes the
/// connections it serves; Raft connections already handed over live on).
///
/// Unlike `axum::serve`, every request head must arrive within `header_timeout` (hyper's
/// `header_read_timeout`, on a tokio timer), so slow clients cannot hold connections, and
/// connections are served with upgrades, which the mounted [`Handler`](crate::Handler) needs to
/// take Raft connections over. Sockets get `TCP_NODELAY` (Raft traffic shares them); one task
/// per connection. Accept errors are logged; after those that are not one connection's own
/// (out of file descriptors, say) it backs off 50 ms rather than spin.
///
/// ```no_run
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use rafthttp_tokio::Handler;
///
/// # async fn run() -> std::io::Result<()> {
/// let handler = Handler::new();
/// let app = Router::new()
///     .route("/health", get(|| async { "ok" }))
///     .route_service("/raft", handler.clone());
/// let listener = rafthttp_tokio::bind("127.0.0.1:8080".parse().unwrap())?;
/// tokio::spawn(rafthttp_tokio::serve_http(listener, app, Duration::from_secs(5)));
/// # Ok(()) }
/// ```
pub async fn serve_http<S, B>(listener: TcpListener, service: S, header_timeout: Duration)
where
    S: tower_service::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let connection = http
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service.clone()))
                        .with_upgrades();
                    connections.spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%peer, %error, "connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    let own = matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    );
                    if !own {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
