//! What a [`Node`](crate::Node) needs from rafthttp: a Layer, as seen through futures-io.

use std::future::Future;
use std::io;
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use rafthttp_driver::MembershipError;
use rafthttp_driver::front::{self, Front};

/// One node's rafthttp endpoint: the runtime crates' `Layer`, with streams seen through
/// futures-io. Implemented for every runtime's `Layer` (the driver's
/// [`front::Layer`](rafthttp_driver::front::Layer)): smol's and async-std's streams as they
/// are, tokio's through tokio-util's compat wrapper.
pub trait Network: Clone + Send + Sync + 'static {
    /// A Raft connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// This node's HTTP address (`host:port`), the one it gives when joining.
    fn addr(&self) -> &str;

    /// The next inbound Raft connection; an error once closed.
    fn accept(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Opens a Raft connection to the node at `addr` within `timeout`.
    fn dial(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Asks the node at `target` to add server `id` at [`addr`](Self::addr).
    fn join(
        &self,
        id: &str,
        target: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), MembershipError>> + Send;

    /// Asks the node at `target` to remove server `id`.
    fn leave(
        &self,
        id: &str,
        target: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), MembershipError>> + Send;

    /// Closes the endpoint (its handler).
    fn close(&self);
}

impl<F, D> Network for front::Layer<F, D>
where
    F: Front,
    D: front::Dialer<F::Stream> + Clone + 'static,
{
    type Stream = F::Conn;

    fn addr(&self) -> &str {
        Self::addr(self)
    }

    async fn accept(&self) -> io::Result<Self::Stream> {
        Self::accept(self).await.map(F::conn)
    }

    async fn dial(&self, addr: &str, timeout: Duration) -> io::Result<Self::Stream> {
        Self::dial(self, addr, timeout)
            .await
            .map(F::conn)
            .map_err(io::Error::other)
    }

    async fn join(&self, id: &str, target: &str, timeout: Duration) -> Result<(), MembershipError> {
        Self::join(self, id, target, timeout).await
    }

    async fn leave(
        &self,
        id: &str,
        target: &str,
        timeout: Duration,
    ) -> Result<(), MembershipError> {
        Self::leave(self, id, target, timeout).await
    }

    fn close(&self) {
        Self::close(self);
    }
}
