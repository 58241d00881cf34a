//! Certificates and rustls configs for the TLS rows, made at startup with rcgen: a CA and a
//! server leaf for `127.0.0.1` (ECDSA P-256, rcgen's default), rustls with the ring provider.
//!
//! Every handshake is a full one: clients keep no sessions and servers send no tickets. With
//! resumption on, a client that reads after the handshake (rafthttp's reads the `101`) would
//! resume its next connection while one that never reads (a raw pair dropped right after the
//! handshake) would not, and the two columns would measure different handshakes.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

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
pub(crate) struct Pki {
    ca: CertificateDer<'static>,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Pki {
    pub(crate) fn new() -> Result<Self, Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "rafthttp bench CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key)?;

        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![SERVER_IP.to_string()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "rafthttp bench server");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        Ok(Self {
            ca: ca.der().clone(),
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// A server config presenting the leaf, sending no session tickets. Each call makes a new
    /// config, so that raw TLS and rafthttp share no session state.
    pub(crate) fn server(&self) -> Result<Arc<ServerConfig>, Error> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert.clone()],
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )?;
        config.send_tls13_tickets = 0;
        Ok(Arc::new(config))
    }

    /// A client config trusting the CA, without session resumption. A new config per call.
    pub(crate) fn client(&self) -> Result<Arc<ClientConfig>, Error> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone())?;
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = Resumption::disabled();
        Ok(Arc::new(config))
    }
}

/// The ring provider, named explicitly (rustls panics when it has to choose).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
