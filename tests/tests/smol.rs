//! The shared suite on smol.

mod rt {
    use std::future::Future;
    use std::time::Duration;

    pub(crate) use rafthttp_smol::{
        Dialer, Handler, Layer, TcpDialer, TlsDialer, change_membership,
    };
    use smol::io::{AsyncReadExt, AsyncWriteExt};
    use smol::net::{TcpListener, TcpStream};

    pub(crate) const NAME: &str = "smol";

    /// A plain socket for crafted bytes.
    pub(crate) type Raw = TcpStream;
    pub(crate) type RawListener = TcpListener;

    pub(crate) trait Io: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin {}
    impl<T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin> Io for T {}

    pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
        smol::block_on(f)
    }

    pub(crate) fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) {
        smol::spawn(f).detach();
    }

    pub(crate) async fn timeout<F: Future>(d: Duration, f: F) -> Option<F::Output> {
        smol::future::or(async { Some(f.await) }, async {
            smol::Timer::after(d).await;
            None
        })
        .await
    }

    /// Serves `handler` on a new loopback listener; returns its address.
    /// Through the crate's `bind`, with the driver's larger listen backlog.
    pub(crate) async fn serve(handler: &Handler) -> String {
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = rafthttp_smol::bind(loopback).expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let handler = handler.clone();
        spawn(async move { handler.serve(listener).await });
        addr
    }

    /// A layer dialing TLS.
    pub(crate) type TlsLayer = Layer<TlsDialer>;

    /// Serves `handler` over TLS with `config` on a new loopback listener; returns its address.
    pub(crate) async fn serve_tls(
        handler: &Handler,
        config: std::sync::Arc<rustls::ServerConfig>,
    ) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let acceptor = rafthttp_smol::futures_rustls::TlsAcceptor::from(config);
        let handler = handler.clone();
        spawn(async move { handler.serve_tls(listener, acceptor).await });
        addr
    }

    pub(crate) async fn raw_listener() -> (RawListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        (listener, addr)
    }

    pub(crate) async fn raw_accept(listener: &RawListener) -> Raw {
        listener.accept().await.expect("accept").0
    }

    /// The server side of a TLS handshake on a raw socket, for scripted TLS servers.
    pub(crate) async fn tls_accept(
        raw: Raw,
        config: std::sync::Arc<rustls::ServerConfig>,
    ) -> impl Io + Send {
        rafthttp_smol::futures_rustls::TlsAcceptor::from(config)
            .accept(raw)
            .await
            .expect("TLS handshake")
    }

    pub(crate) async fn connect(addr: &str) -> Raw {
        TcpStream::connect(addr).await.expect("connect")
    }

    pub(crate) async fn write_all<S: Io>(s: &mut S, bytes: &[u8]) {
        s.write_all(bytes).await.expect("write");
        s.flush().await.expect("flush");
    }

    pub(crate) async fn read_some<S: Io>(s: &mut S, buf: &mut [u8]) -> std::io::Result<usize> {
        s.read(buf).await
    }
}

#[path = "../suite/mod.rs"]
mod suite;
