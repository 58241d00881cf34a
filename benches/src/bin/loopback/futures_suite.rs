//! The suite on the futures-io runtimes, smol and async-std: raw `TcpStream`s of the runtime
//! against `rafthttp_smol::Stream` (which `rafthttp-async-std` re-exports). Both runtimes share
//! the async-io reactor; they differ in their executors.
//!
//! smol: the measuring code runs in `smol::block_on`, spawned tasks on smol's global executor
//! (one thread unless `SMOL_THREADS` says otherwise). async-std: `async_std::task::block_on`,
//! spawned tasks on its thread pool (one thread per CPU).
//!
//! Over TLS: futures-rustls streams over the runtime's `TcpStream`s against the `Stream`s of
//! `TlsDialer` and `serve_tls` (whose sockets are smol's on both runtimes).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::{TlsAcceptor, TlsConnector, client, server};
use rafthttp_smol::front::{Handler, Layer, TlsFront};
use rafthttp_smol::{Dialer, Scheme, Stream, TcpDialer, TlsDialer};
use smol::io::{AsyncReadExt, AsyncWriteExt};

use crate::tls::{self, Pki};
use crate::{
    Config, Error, Row, Samples, TIMEOUT, head_complete, join_request, latency_rows, ok_response,
    rate_rows,
};

/// What differs between smol and async-std.
pub(crate) trait Exec {
    /// The name in the table.
    const NAME: &'static str;
    /// The runtime rafthttp spawns its tasks on.
    type Rt: TlsFront<
            Stream = Stream,
            Listener = rafthttp_smol::net::TcpListener,
            Acceptor = TlsAcceptor,
        >;
    /// The runtime's TCP stream.
    type Tcp: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The runtime's TCP listener.
    type Listener: Send + Sync + 'static;

    fn block_on<T>(future: impl Future<Output = T>) -> T;
    /// Spawns a task that runs to its end (dropping the returned future does not cancel it).
    fn spawn<T: Send + 'static>(
        future: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static;
    fn bind() -> impl Future<Output = io::Result<Self::Listener>> + Send;
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;
    fn accept(listener: &Self::Listener) -> impl Future<Output = io::Result<Self::Tcp>> + Send;
    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Tcp>> + Send;
    fn set_nodelay(stream: &Self::Tcp) -> io::Result<()>;
    /// See [`crate::fix_buffers`].
    fn fix_buffers(stream: &Self::Tcp, size: usize) -> io::Result<()>;
    /// Fixes the socket buffers of a listener: the sockets it accepts inherit them.
    fn fix_listener_buffers(listener: &Self::Listener, size: usize) -> io::Result<()>;
    /// Runs `handler.serve` on `listener` in a task.
    fn serve(handler: Handler<Self::Rt>, listener: Self::Listener);
    /// Runs `handler.serve_tls` on `listener` in a task.
    fn serve_tls(handler: Handler<Self::Rt>, listener: Self::Listener, acceptor: TlsAcceptor);
}

/// smol.
#[derive(Debug)]
pub(crate) struct Smol;

impl Exec for Smol {
    const NAME: &'static str = "smol";
    type Rt = rafthttp_smol::Smol;
    type Tcp = smol::net::TcpStream;
    type Listener = smol::net::TcpListener;

    fn block_on<T>(future: impl Future<Output = T>) -> T {
        smol::block_on(future)
    }

    fn spawn<T: Send + 'static>(
        future: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static {
        let (tx, rx) = smol::channel::bounded(1);
        smol::spawn(async move {
            let _ = tx.send(future.await).await;
        })
        .detach();
        async move { rx.recv().await.expect("the task ran to its end") }
    }

    async fn bind() -> io::Result<Self::Listener> {
        smol::net::TcpListener::bind("127.0.0.1:0").await
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Tcp> {
        listener.accept().await.map(|(stream, _)| stream)
    }

    async fn connect(addr: SocketAddr) -> io::Result<Self::Tcp> {
        smol::net::TcpStream::connect(addr).await
    }

    fn set_nodelay(stream: &Self::Tcp) -> io::Result<()> {
        stream.set_nodelay(true)
    }

    fn fix_buffers(stream: &Self::Tcp, size: usize) -> io::Result<()> {
        crate::fix_buffers(stream, size)
    }

    fn fix_listener_buffers(listener: &Self::Listener, size: usize) -> io::Result<()> {
        crate::fix_buffers(listener, size)
    }

    fn serve(handler: Handler<Self::Rt>, listener: Self::Listener) {
        smol::spawn(async move { handler.serve(listener).await }).detach();
    }

    fn serve_tls(handler: Handler<Self::Rt>, listener: Self::Listener, acceptor: TlsAcceptor) {
        smol::spawn(async move { handler.serve_tls(listener, acceptor).await }).detach();
    }
}

/// async-std.
#[derive(Debug)]
pub(crate) struct AsyncStd;

impl Exec for AsyncStd {
    const NAME: &'static str = "async-std";
    type Rt = rafthttp_async_std::AsyncStd;
    type Tcp = async_std::net::TcpStream;
    type Listener = async_std::net::TcpListener;

    fn block_on<T>(future: impl Future<Output = T>) -> T {
        async_std::task::block_on(future)
    }

    fn spawn<T: Send + 'static>(
        future: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static {
        // Dropping an async-std JoinHandle detaches the task.
        async_std::task::spawn(future)
    }

    async fn bind() -> io::Result<Self::Listener> {
        async_std::net::TcpListener::bind("127.0.0.1:0").await
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Tcp> {
        listener.accept().await.map(|(stream, _)| stream)
    }

    async fn connect(addr: SocketAddr) -> io::Result<Self::Tcp> {
        async_std::net::TcpStream::connect(addr).await
    }

    fn set_nodelay(stream: &Self::Tcp) -> io::Result<()> {
        stream.set_nodelay(true)
    }

    fn fix_buffers(stream: &Self::Tcp, size: usize) -> io::Result<()> {
        crate::fix_buffers(stream, size)
    }

    fn fix_listener_buffers(listener: &Self::Listener, size: usize) -> io::Result<()> {
        crate::fix_buffers(listener, size)
    }

    fn serve(handler: Handler<Self::Rt>, listener: Self::Listener) {
        drop(async_std::task::spawn(async move {
            if let Err(error) = rafthttp_async_std::serve(&handler, listener).await {
                eprintln!("async-std serve failed: {error}");
            }
        }));
    }

    fn serve_tls(handler: Handler<Self::Rt>, listener: Self::Listener, acceptor: TlsAcceptor) {
        drop(async_std::task::spawn(async move {
            if let Err(error) = rafthttp_async_std::serve_tls(&handler, listener, acceptor).await {
                eprintln!("async-std serve_tls failed: {error}");
            }
        }));
    }
}

pub(crate) fn run<E: Exec>(config: &Config) -> Result<Vec<Row>, Error> {
    E::block_on(suite::<E>(*config))
}

async fn suite<E: Exec>(config: Config) -> Result<Vec<Row>, Error> {
    let raw = E::bind().await?;
    let raw_addr = E::local_addr(&raw)?;
    let listener = E::bind().await?;
    let addr = E::local_addr(&listener)?.to_string();
    let handler = Handler::<E::Rt>::new();
    E::serve(handler.clone(), listener);
    // One node that dials itself: its handler serves the upgrades it dials.
    let layer = Layer::new(&addr, handler, TcpDialer)?;

    let mut rows = Vec::new();
    rows.extend(setup::<E>(&config, &raw, raw_addr, &layer, &addr).await?);
    rows.extend(throughput::<E>(&config, &raw, raw_addr, &layer, &addr).await?);
    rows.extend(round_trips::<E>(&config, &raw, raw_addr, &layer, &addr).await?);
    drop(raw);
    rows.extend(join::<E>(&config, &layer, &addr).await?);
    layer.close();
    rows.extend(tls_suite::<E>(&config).await?);
    Ok(rows)
}

async fn raw_pair<E: Exec>(
    listener: &E::Listener,
    addr: SocketAddr,
) -> io::Result<(E::Tcp, E::Tcp)> {
    let client = E::connect(addr).await?;
    E::set_nodelay(&client)?;
    let server = E::accept(listener).await?;
    E::set_nodelay(&server)?;
    Ok((client, server))
}

async fn raft_pair<E: Exec>(
    layer: &Layer<E::Rt, TcpDialer>,
    addr: &str,
) -> Result<(Stream, Stream), Error> {
    let client = layer.dial(addr, TIMEOUT).await?;
    let server = layer.accept().await?;
    Ok((client, server))
}

async fn setup<E: Exec>(
    config: &Config,
    raw_listener: &E::Listener,
    raw_addr: SocketAddr,
    layer: &Layer<E::Rt, TcpDialer>,
    addr: &str,
) -> Result<[Row; 2], Error> {
    let mut raw = Samples::with_capacity(config.setup_iters);
    let mut raft = Samples::with_capacity(config.setup_iters);
    for i in 0..config.warmup + config.setup_iters {
        let start = Instant::now();
        let pair = raw_pair::<E>(raw_listener, raw_addr).await?;
        let raw_time = start.elapsed();
        drop(pair);
        let start = Instant::now();
        let pair = raft_pair::<E>(layer, addr).await?;
        let raft_time = start.elapsed();
        drop(pair);
        if i >= config.warmup {
            raw.push(raw_time);
            raft.push(raft_time);
        }
    }
    Ok(latency_rows(
        E::NAME,
        "connection setup (connect + accept)",
        raw,
        raft,
    ))
}

/// Sends `bytes` from `writer` to `reader` and returns the time until the last byte was read.
/// One task drives both ends (the writer until the socket buffer is full, then the reader), so
/// the figure is the streams' cost rather than where the scheduler put two tasks (with a writer
/// task and a reader task, tokio pairs ran at either about 2.5 or about 6 GiB/s depending on
/// placement, raw and rafthttp alike).
async fn bulk<W, R>(
    writer: &mut W,
    reader: &mut R,
    bytes: u64,
    chunk: usize,
) -> Result<Duration, Error>
where
    W: AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    let data = vec![0x5a_u8; chunk];
    let mut buf = vec![0u8; chunk];
    let start = Instant::now();
    let receive = async {
        let mut left = bytes;
        while left > 0 {
            match reader.read(&mut buf).await? {
                0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                n => left = left.saturating_sub(n as u64),
            }
        }
        Ok(())
    };
    let send = async {
        let mut left = bytes;
        while left > 0 {
            let n = usize::try_from(left).map_or(chunk, |left| left.min(chunk));
            writer.write_all(&data[..n]).await?;
            left -= n as u64;
        }
        writer.flush().await
    };
    let (sent, received) = smol::future::zip(send, receive).await;
    sent?;
    received?;
    Ok(start.elapsed())
}

async fn throughput<E: Exec>(
    config: &Config,
    raw_listener: &E::Listener,
    raw_addr: SocketAddr,
    layer: &Layer<E::Rt, TcpDialer>,
    addr: &str,
) -> Result<[Row; 2], Error> {
    let (mut raw_tx, mut raw_rx) = raw_pair::<E>(raw_listener, raw_addr).await?;
    let (mut raft_tx, mut raft_rx) = raft_pair::<E>(layer, addr).await?;
    if let Some(size) = config.socket_buffer {
        for tcp in [&raw_tx, &raw_rx] {
            E::fix_buffers(tcp, size)?;
        }
        for stream in [&raft_tx, &raft_rx] {
            crate::fix_buffers(stream.tcp().ok_or("not a TCP stream")?, size)?;
        }
    }
    bulk_series::<E, _, _, _, _>(
        config,
        "",
        (&mut raw_tx, &mut raw_rx),
        (&mut raft_tx, &mut raft_rx),
    )
    .await
}

/// The throughput runs of a raw pair and a rafthttp pair, `label` naming them in `--verbose`.
async fn bulk_series<E, A, B, C, D>(
    config: &Config,
    label: &str,
    (raw_tx, raw_rx): (&mut A, &mut B),
    (raft_tx, raft_rx): (&mut C, &mut D),
) -> Result<[Row; 2], Error>
where
    E: Exec,
    A: AsyncWrite + Unpin,
    B: AsyncRead + Unpin,
    C: AsyncWrite + Unpin,
    D: AsyncRead + Unpin,
{
    let mut raw = Samples::with_capacity(config.bulk_runs);
    let mut raft = Samples::with_capacity(config.bulk_runs);
    // Run 0 warms both up; then they take turns going first.
    for run in 0..=config.bulk_runs {
        let (raw_time, raft_time);
        if run % 2 == 0 {
            raw_time = bulk(raw_tx, raw_rx, config.bulk_bytes, config.chunk).await?;
            raft_time = bulk(raft_tx, raft_rx, config.bulk_bytes, config.chunk).await?;
        } else {
            raft_time = bulk(raft_tx, raft_rx, config.bulk_bytes, config.chunk).await?;
            raw_time = bulk(raw_tx, raw_rx, config.bulk_bytes, config.chunk).await?;
        }
        if config.verbose {
            eprintln!(
                "{}{label} throughput run {run}: raw {raw_time:?}, rafthttp {raft_time:?}",
                E::NAME
            );
        }
        if run > 0 {
            raw.push(raw_time);
            raft.push(raft_time);
        }
    }
    Ok(rate_rows(
        E::NAME,
        &format!("throughput, {} MiB one way", config.bulk_bytes >> 20),
        config.bulk_bytes,
        raw,
        raft,
    ))
}

/// Echoes `message`-byte messages until the peer closes.
fn echo<E: Exec, S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    mut stream: S,
    message: usize,
) {
    drop(E::spawn(async move {
        let mut buf = vec![0u8; message];
        while stream.read_exact(&mut buf).await.is_ok() {
            if stream.write_all(&buf).await.is_err() {
                break;
            }
        }
    }));
}

async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
) -> io::Result<Duration> {
    let start = Instant::now();
    stream.write_all(buf).await?;
    stream.read_exact(buf).await?;
    Ok(start.elapsed())
}

async fn round_trips<E: Exec>(
    config: &Config,
    raw_listener: &E::Listener,
    raw_addr: SocketAddr,
    layer: &Layer<E::Rt, TcpDialer>,
    addr: &str,
) -> Result<[Row; 2], Error> {
    let (mut raw_conn, raw_echo) = raw_pair::<E>(raw_listener, raw_addr).await?;
    let (mut raft_conn, raft_echo) = raft_pair::<E>(layer, addr).await?;
    echo::<E, _>(raw_echo, config.message);
    echo::<E, _>(raft_echo, config.message);
    round_trip_series::<E, _, _>(config, &mut raw_conn, &mut raft_conn).await
}

/// Round trips on a raw connection and a rafthttp one, each answered by an echo task.
async fn round_trip_series<E, A, B>(
    config: &Config,
    raw_conn: &mut A,
    raft_conn: &mut B,
) -> Result<[Row; 2], Error>
where
    E: Exec,
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = vec![0x5a_u8; config.message];
    let mut raw = Samples::with_capacity(config.pingpong_iters);
    let mut raft = Samples::with_capacity(config.pingpong_iters);
    for i in 0..config.warmup + config.pingpong_iters {
        let raw_time = round_trip(raw_conn, &mut buf).await?;
        let raft_time = round_trip(raft_conn, &mut buf).await?;
        if i >= config.warmup {
            raw.push(raw_time);
            raft.push(raft_time);
        }
    }
    Ok(latency_rows(
        E::NAME,
        &format!("round trip, {} B echoed", config.message),
        raw,
        raft,
    ))
}

async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<()> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !head_complete(&buf) {
        match stream.read(&mut chunk).await? {
            0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(())
}

/// The raw baseline for a join: one connection per request, as rafthttp's client does; the
/// server reads the head, answers the same `200` and closes.
fn raw_http_server<E: Exec>(listener: E::Listener, response: Vec<u8>) {
    drop(E::spawn(async move {
        while let Ok(mut conn) = E::accept(&listener).await {
            let _ = E::set_nodelay(&conn);
            let response = response.clone();
            drop(E::spawn(async move {
                if read_head(&mut conn).await.is_ok() {
                    let _ = conn.write_all(&response).await;
                }
            }));
        }
    }));
}

async fn raw_request<E: Exec>(addr: SocketAddr, request: &[u8]) -> Result<(), Error> {
    let mut conn = E::connect(addr).await?;
    E::set_nodelay(&conn)?;
    conn.write_all(request).await?;
    read_head(&mut conn).await?;
    Ok(())
}

async fn join<E: Exec>(
    config: &Config,
    layer: &Layer<E::Rt, TcpDialer>,
    addr: &str,
) -> Result<[Row; 2], Error> {
    let listener = E::bind().await?;
    let raw_addr = E::local_addr(&listener)?;
    raw_http_server::<E>(listener, ok_response());
    let request = join_request(&raw_addr.to_string(), layer.addr())?;
    // The application: accepts every change.
    let requests = layer.handler().requests();
    drop(E::spawn(async move {
        while let Some(request) = requests.recv().await {
            request.respond(Ok(()));
        }
    }));
    let mut raw = Samples::with_capacity(config.join_iters);
    let mut raft = Samples::with_capacity(config.join_iters);
    for i in 0..config.warmup + config.join_iters {
        let start = Instant::now();
        raw_request::<E>(raw_addr, &request).await?;
        let raw_time = start.elapsed();
        let start = Instant::now();
        layer.join("2", addr, TIMEOUT).await?;
        let raft_time = start.elapsed();
        if i >= config.warmup {
            raw.push(raw_time);
            raft.push(raft_time);
        }
    }
    Ok(latency_rows(E::NAME, "join round trip", raw, raft))
}

/// A `TlsDialer` that also fixes the socket buffers before the handshake, for the throughput
/// runs (a `Stream` over TLS does not expose its socket). Same steps otherwise: connect (smol's
/// `TcpStream`, as `TlsDialer` on both runtimes), handshake, `Stream::from` the TLS stream.
#[derive(Clone)]
struct BulkTlsDialer {
    connector: TlsConnector,
    buffer: Option<usize>,
}

impl Dialer<Stream> for BulkTlsDialer {
    async fn connect(&self, authority: &str) -> io::Result<Stream> {
        let tcp = smol::net::TcpStream::connect(authority).await?;
        if let Some(size) = self.buffer {
            crate::fix_buffers(&tcp, size)?;
        }
        let tls = self.connector.connect(tls::server_name(), tcp).await?;
        Ok(Stream::from(futures_rustls::TlsStream::from(tls)))
    }

    fn scheme(&self) -> Scheme {
        Scheme::Https
    }
}

/// A raw TLS pair: TCP connect + accept, and the handshake of both ends driven by this task.
/// The server end inherits the listener's socket buffers.
async fn raw_tls_pair<E: Exec>(
    listener: &E::Listener,
    addr: SocketAddr,
    connector: &TlsConnector,
    acceptor: &TlsAcceptor,
    buffer: Option<usize>,
) -> io::Result<(client::TlsStream<E::Tcp>, server::TlsStream<E::Tcp>)> {
    let client = async {
        let tcp = E::connect(addr).await?;
        E::set_nodelay(&tcp)?;
        if let Some(size) = buffer {
            E::fix_buffers(&tcp, size)?;
        }
        connector.connect(tls::server_name(), tcp).await
    };
    let server = async {
        let tcp = E::accept(listener).await?;
        E::set_nodelay(&tcp)?;
        acceptor.accept(tcp).await
    };
    smol::future::try_zip(client, server).await
}

async fn raft_tls_pair<E: Exec, D: Dialer<Stream>>(
    layer: &Layer<E::Rt, D>,
    addr: &str,
) -> Result<(Stream, Stream), Error> {
    let client = layer.dial(addr, TIMEOUT).await?;
    let server = layer.accept().await?;
    Ok((client, server))
}

/// The TLS rows: a raw TLS listener beside a handler serving TLS, each with its own rustls
/// configs. With fixed socket buffers both listeners get them, so that accepted sockets inherit
/// them (a handler's accepted `Stream` over TLS does not expose its socket).
async fn tls_suite<E: Exec>(config: &Config) -> Result<Vec<Row>, Error> {
    let pki = Pki::new()?;
    let raw = E::bind().await?;
    let raw_addr = E::local_addr(&raw)?;
    let connector = TlsConnector::from(pki.client()?);
    let acceptor = TlsAcceptor::from(pki.server()?);

    let listener = E::bind().await?;
    let addr = E::local_addr(&listener)?.to_string();
    if let Some(size) = config.socket_buffer {
        E::fix_listener_buffers(&raw, size)?;
        E::fix_listener_buffers(&listener, size)?;
    }
    let handler = Handler::<E::Rt>::new();
    E::serve_tls(handler.clone(), listener, TlsAcceptor::from(pki.server()?));
    let client = pki.client()?;
    let layer = Layer::new(&addr, handler.clone(), TlsDialer::new(client.clone()))?;
    let bulk_layer = Layer::new(
        &addr,
        handler,
        BulkTlsDialer {
            connector: TlsConnector::from(client),
            buffer: config.socket_buffer,
        },
    )?;

    let mut rows = Vec::new();
    // Setup.
    let mut raw_times = Samples::with_capacity(config.tls_setup_iters);
    let mut raft_times = Samples::with_capacity(config.tls_setup_iters);
    for i in 0..config.warmup + config.tls_setup_iters {
        let start = Instant::now();
        let pair = raw_tls_pair::<E>(&raw, raw_addr, &connector, &acceptor, None).await?;
        let raw_time = start.elapsed();
        drop(pair);
        let start = Instant::now();
        let pair = raft_tls_pair::<E, _>(&layer, &addr).await?;
        let raft_time = start.elapsed();
        drop(pair);
        if i >= config.warmup {
            raw_times.push(raw_time);
            raft_times.push(raft_time);
        }
    }
    rows.extend(latency_rows(
        E::NAME,
        "TLS connection setup (connect + handshake + accept)",
        raw_times,
        raft_times,
    ));

    // Throughput.
    let (mut raw_tx, mut raw_rx) =
        raw_tls_pair::<E>(&raw, raw_addr, &connector, &acceptor, config.socket_buffer).await?;
    let (mut raft_tx, mut raft_rx) = raft_tls_pair::<E, _>(&bulk_layer, &addr).await?;
    rows.extend(
        bulk_series::<E, _, _, _, _>(
            config,
            " TLS",
            (&mut raw_tx, &mut raw_rx),
            (&mut raft_tx, &mut raft_rx),
        )
        .await?
        .map(|row| Row {
            what: format!("TLS {}", row.what),
            ..row
        }),
    );
    drop((raw_tx, raw_rx, raft_tx, raft_rx));

    // Round trips.
    let (mut raw_conn, raw_echo) =
        raw_tls_pair::<E>(&raw, raw_addr, &connector, &acceptor, None).await?;
    let (mut raft_conn, raft_echo) = raft_tls_pair::<E, _>(&layer, &addr).await?;
    echo::<E, _>(raw_echo, config.message);
    echo::<E, _>(raft_echo, config.message);
    rows.extend(
        round_trip_series::<E, _, _>(config, &mut raw_conn, &mut raft_conn)
            .await?
            .map(|row| Row {
                what: format!("TLS {}", row.what),
                ..row
            }),
    );
    layer.close();
    Ok(rows.into_iter().map(Row::over_tls).collect())
}
