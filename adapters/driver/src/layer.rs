//! The Layer: one node's Raft network endpoint.

use std::io;
use std::time::Duration;

use rafthttp_core::{ChangeKind, InputError, check_authority};

use crate::client::{change_membership, dial};
use crate::config::ClientConfig;
use crate::error::{DialError, MembershipError};
use crate::handler::{Handler, Upgraded};
use crate::{Dialer, Runtime};

/// One node's Raft network endpoint: inbound Raft connections come from its [`Handler`],
/// outbound ones are dialed over HTTP upgrade, and it asks other nodes to add or remove it.
///
/// `C` is the inbound connection type, `D` the dialer, `R` the runtime. The runtime crates wrap
/// this in a type with that runtime's stream types.
#[derive(Debug)]
pub struct Layer<R, C, D> {
    rt: R,
    addr: String,
    handler: Handler<C>,
    dialer: D,
    client: ClientConfig,
}

impl<R: Clone, C, D: Clone> Clone for Layer<R, C, D> {
    fn clone(&self) -> Self {
        Self {
            rt: self.rt.clone(),
            addr: self.addr.clone(),
            handler: self.handler.clone(),
            dialer: self.dialer.clone(),
            client: self.client.clone(),
        }
    }
}

impl<R: Runtime, C, D: Dialer> Layer<R, C, D> {
    /// A layer for the node reachable at `addr` (`host:port` of its HTTP endpoint, the address
    /// it gives when joining), taking inbound connections from `handler` and dialing with
    /// `dialer`. The Raft path is the handler's.
    ///
    /// # Errors
    /// [`InputError::Authority`] when `addr` is not a `host:port` authority.
    pub fn new(rt: R, addr: &str, handler: Handler<C>, dialer: D) -> Result<Self, InputError> {
        check_authority(addr)?;
        let client = ClientConfig::default().with_limits(handler.config().limits);
        Ok(Self {
            rt,
            addr: addr.to_owned(),
            handler,
            dialer,
            client,
        })
    }

    /// Adds a header field to every request this layer sends (dial, join, leave), for example
    /// credentials for the other nodes' authorization hook.
    ///
    /// # Errors
    /// See [`ExtraHeaders::with`](rafthttp_core::ExtraHeaders::with).
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, InputError> {
        self.client = self.client.with_header(name, value)?;
        Ok(self)
    }

    /// The next inbound Raft connection.
    ///
    /// # Errors
    /// An [`io::ErrorKind::UnexpectedEof`] error once the layer is closed.
    pub async fn accept(&self) -> io::Result<Upgraded<C>> {
        self.handler.accept().await
    }

    /// Opens a Raft connection to the node at `addr`, within `timeout` (connect and handshake).
    ///
    /// # Errors
    /// See [`DialError`].
    pub async fn dial(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<Upgraded<D::Conn>, DialError> {
        let path = &self.handler.config().path;
        dial(&self.rt, &self.dialer, path, addr, timeout, &self.client).await
    }

    /// Asks the node at `target` to add server `id` at this layer's [`addr`](Self::addr).
    ///
    /// # Errors
    /// See [`MembershipError`].
    pub async fn join(
        &self,
        id: &str,
        target: &str,
        timeout: Duration,
    ) -> Result<(), MembershipError> {
        self.change(ChangeKind::Join, id, target, timeout).await
    }

    /// Asks the node at `target` to remove server `id`.
    ///
    /// # Errors
    /// See [`MembershipError`].
    pub async fn leave(
        &self,
        id: &str,
        target: &str,
        timeout: Duration,
    ) -> Result<(), MembershipError> {
        self.change(ChangeKind::Leave, id, target, timeout).await
    }

    async fn change(
        &self,
        kind: ChangeKind,
        id: &str,
        target: &str,
        timeout: Duration,
    ) -> Result<(), MembershipError> {
        change_membership(
            &self.rt,
            &self.dialer,
            kind,
            &self.handler.config().path,
            id,
            &self.addr,
            target,
            timeout,
            &self.client,
        )
        .await
    }

    /// This node's address, as given.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The handler behind the layer.
    pub fn handler(&self) -> &Handler<C> {
        &self.handler
    }

    /// The dialer.
    pub fn dialer(&self) -> &D {
        &self.dialer
    }

    /// The runtime.
    pub fn runtime(&self) -> &R {
        &self.rt
    }

    /// Closes the layer's handler (see [`Handler::close`]). Closing twice is harmless.
    pub fn close(&self) {
        self.handler.close();
    }
}
