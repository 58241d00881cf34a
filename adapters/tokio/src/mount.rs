//! The Handler as a `tower::Service`, to mount in axum or hyper (feature `hyper`).
//!
//! Every request the HTTP server hands to the service is treated as a request for the Raft path:
//! the application's router already chose it (axum's `nest` strips prefixes, so the request path
//! may not match). Routing, status mapping and accept-slot reservation are the driver's
//! [`Dispatch`](rafthttp_driver::Dispatch), exactly as for [`Handler::serve`].
//!
//! With the `axum` feature, the 308 `Location` uses the path the request arrived on (axum's
//! `OriginalUri`), and upgraded streams know their peer from `ConnectInfo<SocketAddr>`. A
//! [`PeerInfo`] request extension the application inserts (with the TLS certificates its
//! acceptor saw) takes precedence.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http_body_util::Full;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use rafthttp_driver::core::server::Takeover;
use rafthttp_driver::core::{Header, RequestHead, Response};
use rafthttp_driver::{Dispatch, Prefix, RequestLog, Upgraded};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

use crate::{Handler, PeerInfo, Stream, Tokio};

type BoxFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Full<Bytes>>, Infallible>> + Send>>;

/// Mounts in axum (`Router::route_service("/raft", handler)`) and in hyper (through
/// `hyper_util::service::TowerToHyperService`, on a connection served `with_upgrades()`).
///
/// Raft upgrades need HTTP/1.1 and a server that hands over the connection; otherwise the
/// answer is 500 with a clear message (Go answers 500 too when it cannot hijack).
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use rafthttp_tokio::{Handler, Layer, TcpDialer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let handler = Handler::new();
/// let app = Router::new()
///     .route("/health", get(|| async { "ok" }))
///     .route_service("/raft", handler.clone());
/// let listener = rafthttp_tokio::bind("127.0.0.1:8080".parse()?)?;
/// // Upgrades on and a request-head timeout: axum::serve sets no timer.
/// tokio::spawn(rafthttp_tokio::serve_http(listener, app, std::time::Duration::from_secs(5)));
/// let layer = Layer::new("127.0.0.1:8080", handler, TcpDialer)?;
/// let inbound = layer.accept().await?;
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
impl<B: Send + 'static> tower_service::Service<http::Request<B>> for Handler {
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let handler = self.clone();
        let takeover = if request.version() == http::Version::HTTP_11
            && request.extensions().get::<OnUpgrade>().is_some()
        {
            Takeover::Possible
        } else {
            Takeover::Impossible
        };
        // hyper parsed and bounded the head already: the core gets a view of it, with the Raft
        // path as target (the application's router chose this service; axum's `nest` strips
        // prefixes) and the request's query.
        let (dispatch, log) = {
            let path = handler.config().path.path();
            let target = match request.uri().query() {
                Some(query) => format!("{path}?{query}"),
                None => path.to_owned(),
            };
            let minor = u8::from(request.version() != http::Version::HTTP_10);
            let mut fields: Vec<Header<'_>> = request
                .headers()
                .iter()
                .map(|(name, value)| Header {
                    name: name.as_str(),
                    value: value.as_bytes(),
                })
                .collect();
            let authority = request.uri().authority().map(|a| a.as_str());
            if let (false, Some(authority)) = (request.headers().contains_key(HOST), authority) {
                // HTTP/2 carries the authority in the URI.
                fields.push(Header {
                    name: "host",
                    value: authority.as_bytes(),
                });
            }
            let head = RequestHead::from_parts(request.method().as_str(), &target, minor, fields);
            let log = handler.driver().request_log(&Tokio, &head);
            (handler.driver().dispatch_mounted(&head, takeover), log)
        };
        let mounted = Mounted {
            peer: peer_of(&request),
            path: arrival_path(&request, handler.config().path.path()),
        };
        let on_upgrade =
            matches!(dispatch, Dispatch::Upgrade(_)).then(|| hyper::upgrade::on(&mut request));
        Box::pin(async move { Ok(handler.answer(dispatch, on_upgrade, log, mounted).await) })
    }
}

impl Handler {
    async fn answer(
        &self,
        dispatch: Dispatch<Compat<Stream>>,
        on_upgrade: Option<OnUpgrade>,
        log: RequestLog,
        mounted: Mounted,
    ) -> http::Response<Full<Bytes>> {
        let response = match dispatch {
            Dispatch::Upgrade(slot) => {
                let Some(on_upgrade) = on_upgrade else {
                    let response = Response::cannot_upgrade();
                    log.answered(&Tokio, &response);
                    return convert(&response);
                };
                tokio::spawn(async move {
                    match on_upgrade.await {
                        Ok(upgraded) => {
                            tracing::info!("raft connection established");
                            let (mut stream, prefix) = into_stream(upgraded);
                            if let (None, Some(peer)) = (stream.peer_addr(), mounted.peer) {
                                stream = stream.with_peer(peer);
                            }
                            let upgraded = Upgraded {
                                io: stream.compat(),
                                prefix,
                            };
                            slot.fill(&Tokio, upgraded).await;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "taking over the upgraded connection failed")
                        }
                    }
                });
                Response::switching_protocols()
            }
            Dispatch::Change(change) => {
                let path = mounted.path.as_deref();
                self.driver().change_at(&Tokio, change, path).await
            }
            Dispatch::Respond(response) => response,
            Dispatch::NotFound => Response::not_found(),
        };
        log.answered(&Tokio, &response);
        convert(&response)
    }
}

/// What the server in front knows about a request that the core does not see.
struct Mounted {
    peer: Option<PeerInfo>,
    /// The path the request arrived on, when it is not the Raft path.
    path: Option<String>,
}

/// The peer: the application's [`PeerInfo`] extension, else (feature `axum`) axum's
/// `ConnectInfo<SocketAddr>`.
fn peer_of<B>(request: &http::Request<B>) -> Option<PeerInfo> {
    if let Some(peer) = request.extensions().get::<PeerInfo>() {
        return Some(peer.clone());
    }
    #[cfg(feature = "axum")]
    if let Some(info) = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(PeerInfo::new(info.0));
    }
    None
}

/// The path the request arrived on (feature `axum`: its `OriginalUri`, before `nest` stripped
/// a prefix), when it differs from the configured Raft path. Peers dial the configured path, so
/// the first time they differ this warns that they must match.
fn arrival_path<B>(request: &http::Request<B>, raft_path: &str) -> Option<String> {
    #[cfg(feature = "axum")]
    if let Some(original) = request.extensions().get::<axum::extract::OriginalUri>() {
        let path = original.0.path();
        if path != raft_path {
            static WARNED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    mounted = path,
                    configured = raft_path,
                    "the raft handler is mounted at another path than its configured one; \
                     peers dial the configured path, so set HandlerConfig::with_path to match"
                );
            }
            return Some(path.to_owned());
        }
    }
    let _ = (request, raft_path);
    None
}

/// The native TCP stream when the server used hyper-util's `TokioIo<TcpStream>` directly (plain
/// hyper), with the bytes hyper read past the head to replay first; any other IO (axum's
/// auto-detecting server wraps it privately) stays inside hyper's `Upgraded`, which replays
/// those bytes itself.
fn into_stream(upgraded: hyper::upgrade::Upgraded) -> (Stream, Prefix) {
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => (
            Stream::from(parts.io.into_inner()),
            Prefix::new(parts.read_buf.to_vec()),
        ),
        Err(upgraded) => (Stream::from_io(TokioIo::new(upgraded)), Prefix::default()),
    }
}

/// The core's response as hyper's: the status and fields the core chose (hyper adds
/// `Content-Length` from the body).
fn convert(response: &Response) -> http::Response<Full<Bytes>> {
    let body = if response.is_upgrade() {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(response.body())
    };
    let mut out = http::Response::new(Full::new(body));
    *out.status_mut() = http::StatusCode::from_u16(response.status())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    for (name, value) in response.fields() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    out
}
