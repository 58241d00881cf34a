//! The shared suite on async-std.

mod rt {
    use std::future::Future;
    use std::time::Duration;

    use async_std::io::{ReadExt, WriteExt};
    use async_std::net::{TcpListener, TcpStream};
    pub(crate) use rafthttp_async_std::{
        Dialer, Handler, Layer, TcpDialer, TlsDialer, change_membership,
    };

    pub(crate) const NAME: &str = "async-std";

    /// A plain socket for crafted bytes.
    pub(crate) type Raw = TcpStream;
    pub(crate) type RawListener = TcpListener;

    pub(crate) trait Io: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin {}
    impl<T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin> Io for T {}

    pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
        async_std::task::block_on(f)
    }

    pub(crate) fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) {
        drop(async_std::task::spawn(f));
    }

    pub(crate) async fn timeout<F: Future>(d: Duration, f: F) -> Option<F::Output> {
        async_std::future::timeout(d, f).await.ok()
    }

    /// Serves `handler` on a new loopback listener; returns its address.
    /// Through the crate's `bind`, with the driver's larger listen backlog.
    pub(crate) async fn serve(handler: &Handler) -> String {
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = rafthttp_async_std::bind(loopback).expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let handler = handler.clone();
        spawn(async move {
            rafthttp_async_std::serve(&handler, listener)
                .await
                .expect("serve");
        });
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
        let acceptor = rafthttp_async_std::futures_rustls::TlsAcceptor::from(config);
        let handler = handler.clone();
        spawn(async move {
            rafthttp_async_std::serve_tls(&handler, listener, acceptor)
                .await
                .expect("serve");
        });
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
        rafthttp_async_std::futures_rustls::TlsAcceptor::from(config)
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
