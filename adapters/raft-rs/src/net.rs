//! What a [`Node`](crate::Node) needs from rafthttp: a Layer, as seen through futures-io.

use std::future::Future;
use std::io;
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use rafthttp_driver::MembershipError;

/// One node's rafthttp endpoint: the runtime crates' `Layer`, with streams seen through
/// futures-io. Implemented for `rafthttp_smol::Layer` (so also `rafthttp_async_std::Layer`)
/// with the `smol` feature, and for `rafthttp_tokio::Layer` with the `tokio` feature (its
/// streams through tokio-util's compat wrapper).
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

#[cfg(feature = "smol")]
impl<D, R> Network for rafthttp_smol::Layer<D, R>
where
    D: rafthttp_smol::Dialer + Clone + 'static,
    R: rafthttp_smol::Runtime,
{
    type Stream = rafthttp_smol::Stream;

    fn addr(&self) -> &str {
        Self::addr(self)
    }

    async fn accept(&self) -> io::Result<Self::Stream> {
        Self::accept(self).await
    }

    async fn dial(&self, addr: &str, timeout: Duration) -> io::Result<Self::Stream> {
        Self::dial(self, addr, timeout)
            .await
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

#[cfg(feature = "tokio")]
impl<D> Network for rafthttp_tokio::Layer<D>
where
    D: rafthttp_tokio::Dialer + Clone + 'static,
{
    type Stream = tokio_util::compat::Compat<rafthttp_tokio::Stream>;

    fn addr(&self) -> &str {
        Self::addr(self)
    }

    async fn accept(&self) -> io::Result<Self::Stream> {
        use tokio_util::compat::TokioAsyncReadCompatExt as _;
        Self::accept(self).await.map(|s| s.compat())
    }

    async fn dial(&self, addr: &str, timeout: Duration) -> io::Result<Self::Stream> {
        use tokio_util::compat::TokioAsyncReadCompatExt as _;
        Self::dial(self, addr, timeout)
            .await
            .map(|s| s.compat())
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
