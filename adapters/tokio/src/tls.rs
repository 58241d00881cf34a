//! TLS with rustls and tokio-rustls (the `tls` feature).

use std::io;
use std::sync::Arc;

use rafthttp_driver as driver;
use rafthttp_driver::front;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};
use tokio_util::compat::TokioAsyncReadCompatExt;

use crate::{Stream, Tokio};

/// tokio-rustls, for the [`TlsAcceptor`] of [`Handler::serve_tls`](front::Handler::serve_tls).
pub use tokio_rustls;
/// rustls, to build the [`TlsDialer`]'s and `serve_tls`'s configurations.
pub use tokio_rustls::rustls;

impl front::TlsFront for Tokio {
    type Acceptor = TlsAcceptor;

    async fn tls(acceptor: TlsAcceptor, mut tcp: TcpStream) -> io::Result<Stream> {
        let mut first = [0u8; 1];
        let n = tcp.peek(&mut first).await?;
        driver::refuse_plain_http(&first[..n], &mut (&mut tcp).compat()).await?;
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

/// TLS over TCP with rustls and tokio-rustls ([`front::TlsDialer`]): the server's certificate
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
/// use rafthttp_tokio::rustls::{self, ClientConfig, RootCertStore};
/// use rafthttp_tokio::{Handler, Layer, TlsDialer};
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
pub type TlsDialer = front::TlsDialer<Tokio>;
