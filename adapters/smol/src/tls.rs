//! TLS with rustls and futures-rustls (the `tls` feature).

use std::io;
use std::sync::Arc;

use futures_rustls::pki_types::ServerName;
use futures_rustls::{TlsAcceptor, TlsConnector, TlsStream};
use rafthttp_driver as driver;
use rafthttp_driver::front;
use smol::net::TcpStream;

use crate::{Smol, Spawn, Stream};

/// futures-rustls, for the [`TlsAcceptor`] of [`Handler::serve_tls`](crate::Handler::serve_tls).
pub use futures_rustls;
/// rustls, to build the [`TlsDialer`]'s and [`Handler::serve_tls`](crate::Handler::serve_tls)'s
/// configurations.
pub use futures_rustls::rustls;

impl<S: Spawn> front::TlsFront for Smol<S> {
    type Acceptor = TlsAcceptor;

    async fn tls(acceptor: TlsAcceptor, mut tcp: TcpStream) -> io::Result<Stream> {
        let mut first = [0u8; 1];
        let n = tcp.peek(&mut first).await?;
        driver::refuse_plain_http(&first[..n], &mut tcp).await?;
        Ok(Stream::from(TlsStream::from(acceptor.accept(tcp).await?)))
    }

    type ClientTls = Arc<rustls::ClientConfig>;
    type Connector = TlsConnector;
    type ServerName = ServerName<'static>;

    async fn handshake(
        connector: &TlsConnector,
        name: ServerName<'static>,
        tcp: TcpStream,
    ) -> io::Result<Stream> {
        Ok(Stream::from(TlsStream::from(
            connector.connect(name, tcp).await?,
        )))
    }
}

/// TLS over TCP with rustls and futures-rustls ([`front::TlsDialer`]): the server's certificate
/// is checked against the host of the authority dialed (a DNS name or an IP address).
/// Membership redirects are followed over TLS whether their Location says `http` (what Go and,
/// by default, our `serve_tls` write) or `https`; the certificate is checked against the
/// Location's host.
///
/// For mutual TLS, build the config with a client certificate (`with_client_auth_cert`).
/// Build it with
/// `ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))`
/// (or `ClientConfig::builder()` when the process has exactly one provider).
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use rafthttp_smol::rustls::{self, ClientConfig, RootCertStore};
/// use rafthttp_smol::{Handler, Layer, TlsDialer};
///
/// # async fn run(roots: RootCertStore) -> Result<(), Box<dyn std::error::Error>> {
/// let provider = Arc::new(rustls::crypto::ring::default_provider());
/// let config = ClientConfig::builder_with_provider(provider)
///     .with_safe_default_protocol_versions()?
///     .with_root_certificates(roots)
///     .with_no_client_auth();
/// let layer = Layer::new("10.0.0.1:8443", Handler::new(), TlsDialer::new(Arc::new(config)))?;
/// let stream = layer.dial("10.0.0.2:8443", Duration::from_secs(1)).await?;
/// # drop(stream);
/// # Ok(())
/// # }
/// ```
pub type TlsDialer = front::TlsDialer<Smol>;
