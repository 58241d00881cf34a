//! Integration tests of rafthttp, and the fixtures every test crate of the workspace shares.
//!
//! The suite in `suite/` is written once and compiled into one test binary per runtime
//! (`tests/tokio.rs`, ...), each providing the same small `rt` facade: runtime entry, spawn,
//! listeners, raw sockets and IO helpers.
//!
//! This library holds what other crates' tests would otherwise copy: the wire bytes they compare
//! against ([`SWITCHING`], [`GO_DIAL`], [`GO_101`]), test certificates made with rcgen
//! ([`pki::Pki`]), and the per-runtime `endpoint` helpers that serve a handler on a free
//! loopback port ([`tokio::endpoint`], [`smol::endpoint`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Our `101 Switching Protocols`, byte for byte.
pub const SWITCHING: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\nConnection: Upgrade\r\n\r\n";

/// The Go server's `101 Switching Protocols` (no `Connection` field).
pub const GO_101: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\n\r\n";

/// The Go client's exact upgrade request (`dial_path_raft.request.bin`).
pub const GO_DIAL: &[u8] = b"GET /raft HTTP/1.1\r\nHost: 127.0.0.1:17100\r\nUser-Agent: Go-http-client/1.1\r\nUpgrade: raft\r\n\r\n";

/// The Go handler's redirect to the leader (`srv_post_leader.response.bin` with its `Date`
/// left out): an `http://` Location whatever the listener speaks, TLS included.
pub const GO_308: &[u8] = b"HTTP/1.1 308 Permanent Redirect\r\nLocation: http://127.0.0.1:17202/raft?id=3&address=127.0.0.1:17103\r\nContent-Length: 0\r\n\r\n";

pub mod pki {
    //! Test certificates, made at run time with rcgen (nothing committed expires): a CA, a
    //! server leaf for `127.0.0.1`, `::1` and `localhost`, and a client leaf for mutual TLS.
    //! rustls runs with the ring provider, named explicitly.

    use std::sync::Arc;

    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{ClientConfig, RootCertStore, ServerConfig};

    /// A leaf certificate and its key.
    #[derive(Debug)]
    pub struct Leaf {
        /// The certificate.
        pub cert: CertificateDer<'static>,
        key: PrivatePkcs8KeyDer<'static>,
    }

    impl Leaf {
        /// The private key.
        pub fn key(&self) -> PrivateKeyDer<'static> {
            PrivateKeyDer::Pkcs8(self.key.clone_key())
        }
    }

    /// A test CA with a server and a client leaf.
    #[derive(Debug)]
    pub struct Pki {
        /// The CA certificate.
        pub ca: CertificateDer<'static>,
        /// For `127.0.0.1`, `::1` and `localhost`, server authentication.
        pub server: Leaf,
        /// For `node.client`, client authentication.
        pub client: Leaf,
    }

    impl Default for Pki {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Pki {
        /// A new CA and its two leaves.
        ///
        /// # Panics
        /// When rcgen fails, which it does not for these fixed parameters.
        pub fn new() -> Self {
            let ca_key = KeyPair::generate().expect("CA key");
            let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca_params
                .distinguished_name
                .push(DnType::CommonName, "rafthttp test CA");
            ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let ca = ca_params.self_signed(&ca_key).expect("CA cert");
            let leaf = |names: &[&str], purpose: ExtendedKeyUsagePurpose| {
                let key = KeyPair::generate().expect("leaf key");
                let names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
                let mut params = CertificateParams::new(names).expect("leaf params");
                params
                    .distinguished_name
                    .push(DnType::CommonName, "rafthttp test leaf");
                params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                params.extended_key_usages = vec![purpose];
                let cert = params.signed_by(&key, &ca, &ca_key).expect("leaf cert");
                Leaf {
                    cert: cert.der().clone(),
                    key: PrivatePkcs8KeyDer::from(key.serialize_der()),
                }
            };
            Self {
                server: leaf(
                    &["127.0.0.1", "::1", "localhost"],
                    ExtendedKeyUsagePurpose::ServerAuth,
                ),
                client: leaf(&["node.client"], ExtendedKeyUsagePurpose::ClientAuth),
                ca: ca.der().clone(),
            }
        }

        /// A root store holding the CA.
        pub fn roots(&self) -> Arc<RootCertStore> {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca.clone()).expect("CA root");
            Arc::new(roots)
        }

        /// The server's config; with `mutual`, clients must present a certificate from the CA.
        pub fn server_config(&self, mutual: bool) -> ServerConfig {
            let builder = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("protocol versions");
            let builder = if mutual {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(self.roots(), provider())
                        .build()
                        .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            } else {
                builder.with_no_client_auth()
            };
            builder
                .with_single_cert(vec![self.server.cert.clone()], self.server.key())
                .expect("server config")
        }

        /// A client trusting the CA; with `certificate`, presenting the client leaf.
        pub fn client_config(&self, certificate: bool) -> ClientConfig {
            let builder = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_root_certificates(self.roots());
            if certificate {
                builder
                    .with_client_auth_cert(vec![self.client.cert.clone()], self.client.key())
                    .expect("client config")
            } else {
                builder.with_no_client_auth()
            }
        }

        /// [`server_config`](Self::server_config), shared.
        pub fn server(&self, mutual: bool) -> Arc<ServerConfig> {
            Arc::new(self.server_config(mutual))
        }

        /// [`client_config`](Self::client_config), shared.
        pub fn client(&self, certificate: bool) -> Arc<ClientConfig> {
            Arc::new(self.client_config(certificate))
        }
    }

    /// The ring provider, named explicitly: rustls panics when it has to choose.
    pub fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }
}

pub mod tokio {
    //! Endpoints on tokio.

    use rafthttp_tokio::{Handler, HandlerConfig, Layer, Requests, TcpDialer};
    use tokio::net::TcpListener;

    /// A handler with `config` served on a free loopback port, a layer over it dialing TCP, and
    /// its membership requests.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn endpoint(config: HandlerConfig) -> (Layer, Requests) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let handler = Handler::with_config(config);
        let server = handler.clone();
        tokio::spawn(async move { server.serve(listener).await });
        let requests = handler.requests();
        (
            Layer::new(&addr, handler, TcpDialer).expect("layer"),
            requests,
        )
    }
}

pub mod smol {
    //! Endpoints on smol (and so async-std, whose crate is a shim over smol's).

    use rafthttp_smol::{Handler, HandlerConfig, Layer, Requests, TcpDialer};
    use smol::net::TcpListener;

    /// A handler with `config` served on a free loopback port, a layer over it dialing TCP, and
    /// its membership requests.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn endpoint(config: HandlerConfig) -> (Layer, Requests) {
        let (layer, requests, server) = endpoint_at("127.0.0.1:0", config).await;
        server.detach();
        (layer, requests)
    }

    /// [`endpoint`] on `addr`, whose server stops (freeing the address, say for a node
    /// restarted on it) when the returned task is dropped.
    ///
    /// # Panics
    /// When `addr` cannot be bound.
    pub async fn endpoint_at(
        addr: &str,
        config: HandlerConfig,
    ) -> (Layer, Requests, smol::Task<()>) {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let handler: Handler = Handler::with_config(config);
        let server = handler.clone();
        let task = smol::spawn(async move { server.serve(listener).await });
        let requests = handler.requests();
        (
            Layer::new(&addr, handler, TcpDialer).expect("layer"),
            requests,
            task,
        )
    }
}
