//! The runtime interface the driver needs: a timer, a clock and a way to spawn tasks.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};
use rafthttp_core::Scheme;

/// What the driver needs from an async runtime. Connecting is the [`Dialer`]'s job and
/// accepting the [`Listener`]'s, so the trait stays small.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A future that completes at an instant.
    type Sleep: Future<Output = ()> + Send;

    /// Completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;

    /// The current time. Tests may substitute a clock.
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Runs `task` in the background.
    fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static;
}

/// A connection the driver can speak HTTP over.
pub trait Connection: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Connection for T {}

/// Opens connections to `host:port` authorities: plain TCP, TLS, or anything else.
pub trait Dialer: Send + Sync {
    /// The connection type.
    type Conn: Connection;

    /// Connects to `authority` (`host:port`). The caller bounds the time it may take.
    fn connect(&self, authority: &str) -> impl Future<Output = io::Result<Self::Conn>> + Send;

    /// The URL scheme this dialer speaks (`https` for TLS). A TLS dialer follows `http` and
    /// `https` membership redirects alike (over TLS, as the Go client does); a plain one
    /// refuses `https` ones.
    fn scheme(&self) -> Scheme {
        Scheme::Http
    }
}

/// A source of inbound connections, for [`Handler::serve`](crate::Handler::serve) and
/// [`Handler::serve_with`](crate::Handler::serve_with).
pub trait Listener: Send + 'static {
    /// The connection type: a [`Connection`] for `serve`; for `serve_with`, whatever its
    /// handshake step takes (a TCP socket before TLS, say).
    type Conn: Send + 'static;

    /// The next connection and its peer address.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Conn, SocketAddr)>> + Send;
}
