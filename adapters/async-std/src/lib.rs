//! Raft connections and cluster membership over an application's existing HTTP port, on
//! async-std.
//!
//! **async-std is discontinued upstream** (RUSTSEC-2025-0052 advises moving to smol). This crate
//! is frozen as a thin shim: async-std runs on the same `async-io` reactor as smol, so every
//! type here is `rafthttp-smol`'s, with tasks spawned on async-std's executor
//! ([`AsyncStd`], smol's [`Smol`] with [`AsyncStdSpawn`]). New code should use
//! `rafthttp-smol` directly.
//!
//! TLS is smol's too (the `tls` feature, on by default, forwards to smol's): [`TlsDialer`] dials, [`serve_tls`] serves an async-std listener with a
//! futures-rustls acceptor (see [`rafthttp_smol::Handler::serve_tls`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use rafthttp_async_std::{Handler, Layer, TcpDialer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! async_std::task::block_on(async {
//!     let listener = async_std::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?.to_string();
//!     let handler = Handler::new();
//!     let server = handler.clone();
//!     async_std::task::spawn(async move { rafthttp_async_std::serve(&server, listener).await });
//!     let layer: Layer = Layer::new(&addr, handler, TcpDialer)?;
//!     let stream = layer.dial("127.0.0.1:9001", Duration::from_secs(1)).await?;
//!     # drop(stream);
//!     Ok(())
//! })
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::future::Future;
use std::io;

pub use rafthttp_smol::{
    ChangeError, ChangeKind, ChangeMembership, ChangeRequest, ClientConfig, ClusterId, DialError,
    Dialer, HandlerConfig, InputError, Limits, MembershipError, MissingClusterId, Outcome,
    RaftPath, Refusal, Requests, Scheme, Stream, TcpDialer, change_membership, core,
};
use rafthttp_smol::{Smol, Spawn, front};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use rafthttp_smol::{TlsDialer, futures_rustls, rustls};

/// async-std's executor, for [`Smol`]'s tasks.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdSpawn;

impl Spawn for AsyncStdSpawn {
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        // Dropping the handle detaches the task.
        drop(async_std::task::spawn(task));
    }
}

/// smol's reactor and types with async-std's executor.
pub type AsyncStd = Smol<AsyncStdSpawn>;

/// The old name of [`AsyncStd`].
pub type AsyncStdRuntime = AsyncStd;

/// An async-std listener on `addr` with the driver's larger listen backlog (see
/// [`rafthttp_smol::bind`]).
///
/// # Errors
/// Binding or listening failed.
pub fn bind(addr: std::net::SocketAddr) -> io::Result<async_std::net::TcpListener> {
    Ok(rafthttp_smol::front_bind(addr)?.into())
}

/// The Raft side of an HTTP server; see [`rafthttp_smol::Handler`].
pub type Handler = front::Handler<AsyncStd>;

/// One node's Raft network endpoint; see [`rafthttp_smol::Layer`].
pub type Layer<D = TcpDialer> = front::Layer<AsyncStd, D>;

/// Serves HTTP for `handler` on an async-std listener (see [`rafthttp_smol::Handler::serve`]).
///
/// # Errors
/// When the listener cannot be moved to the shared reactor registration smol uses.
pub async fn serve(handler: &Handler, listener: async_std::net::TcpListener) -> io::Result<()> {
    handler.serve(into_smol(listener)?).await;
    Ok(())
}

/// Serves HTTPS for `handler` on an async-std listener (see
/// [`rafthttp_smol::Handler::serve_tls`]): TLS handshakes run in each connection's task,
/// bounded by the idle timeout, and redirects to the leader follow
/// [`HandlerConfig::scheme`](rafthttp_smol::HandlerConfig::scheme) (`http` by default, as Go
/// writes them).
///
/// ```no_run
/// use std::sync::Arc;
/// use rafthttp_async_std::futures_rustls::TlsAcceptor;
/// use rafthttp_async_std::rustls::ServerConfig;
/// use rafthttp_async_std::rustls::pki_types::{CertificateDer, PrivateKeyDer};
/// use rafthttp_async_std::{Handler, serve_tls};
///
/// # async fn run(
/// #     chain: Vec<CertificateDer<'static>>,
/// #     key: PrivateKeyDer<'static>,
/// # ) -> Result<(), Box<dyn std::error::Error>> {
/// let provider = Arc::new(rafthttp_async_std::rustls::crypto::ring::default_provider());
/// let config = ServerConfig::builder_with_provider(provider)
///     .with_safe_default_protocol_versions()?
///     .with_no_client_auth()
///     .with_single_cert(chain, key)?;
/// let listener = async_std::net::TcpListener::bind("0.0.0.0:8443").await?;
/// let handler = Handler::new();
/// let server = handler.clone();
/// let acceptor = TlsAcceptor::from(Arc::new(config));
/// async_std::task::spawn(async move { serve_tls(&server, listener, acceptor).await });
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// When the listener cannot be moved to the shared reactor registration smol uses.
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub async fn serve_tls(
    handler: &Handler,
    listener: async_std::net::TcpListener,
    acceptor: futures_rustls::TlsAcceptor,
) -> io::Result<()> {
    handler.serve_tls(into_smol(listener)?, acceptor).await;
    Ok(())
}

/// Moves the socket from async-std's reactor registration to smol's (the same reactor).
#[cfg(unix)]
fn into_smol(listener: async_std::net::TcpListener) -> io::Result<rafthttp_smol::net::TcpListener> {
    rafthttp_smol::net::TcpListener::try_from(std::os::fd::OwnedFd::from(listener))
}

/// Moves the socket from async-std's reactor registration to smol's (the same reactor).
#[cfg(windows)]
fn into_smol(listener: async_std::net::TcpListener) -> io::Result<rafthttp_smol::net::TcpListener> {
    rafthttp_smol::net::TcpListener::try_from(std::os::windows::io::OwnedSocket::from(listener))
}
