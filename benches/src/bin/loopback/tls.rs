//! rustls configs for the TLS rows, from the workspace's shared rcgen fixture
//! (`rafthttp_tests::pki`: a CA and a server leaf for `127.0.0.1`, ring provider).
//!
//! Every handshake is a full one: clients keep no sessions and servers send no tickets. With
//! resumption on, a client that reads after the handshake (rafthttp's reads the `101`) would
//! resume its next connection while one that never reads (a raw pair dropped right after the
//! handshake) would not, and the two columns would measure different handshakes.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};

use crate::Error;

/// The name the server's certificate carries and clients check: the loopback address.
pub(crate) const SERVER_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The server name raw clients pass to the handshake (rafthttp's dialers take it from the
/// address they dial, `127.0.0.1:port`).
pub(crate) fn server_name() -> ServerName<'static> {
    ServerName::IpAddress(IpAddr::V4(SERVER_IP).into())
}

/// A CA and a server leaf signed by it.
#[derive(Debug)]
pub(crate) struct Pki(rafthttp_tests::pki::Pki);

impl Pki {
    pub(crate) fn new() -> Result<Self, Error> {
        Ok(Self(rafthttp_tests::pki::Pki::new()))
    }

    /// A server config presenting the leaf, sending no session tickets. Each call makes a new
    /// config, so that raw TLS and rafthttp share no session state.
    pub(crate) fn server(&self) -> Result<Arc<ServerConfig>, Error> {
        let mut config = self.0.server_config(false);
        config.send_tls13_tickets = 0;
        Ok(Arc::new(config))
    }

    /// A client config trusting the CA, without session resumption. A new config per call.
    pub(crate) fn client(&self) -> Result<Arc<ClientConfig>, Error> {
        let mut config = self.0.client_config(false);
        config.resumption = Resumption::disabled();
        Ok(Arc::new(config))
    }
}
