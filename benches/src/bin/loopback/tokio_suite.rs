//! The suite on tokio (multi-threaded runtime, one worker per CPU): raw `tokio::net::TcpStream`
//! against `rafthttp_tokio::Stream`, which wraps the `TcpStream` natively (the compat layer is
//! used for the HTTP head only). Over TLS: tokio-rustls streams against the `Stream`s of
//! `TlsDialer` and `Handler::serve_tls`.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rafthttp_tokio::{Dialer, Handler, Layer, Scheme, Stream, TcpDialer, TlsDialer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use crate::tls::{self, Pki};
use crate::{
    Config, Error, Row, Samples, TIMEOUT, fix_buffers, head_complete, join_request, latency_rows,
    ok_response, rate_rows,
};

const NAME: &str = "tokio";

pub(crate) fn run(config: &Config) -> Result<Vec<Row>, Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // On a worker, as a server's tasks run: `block_on`'s own thread is not a worker, and every
    // wake-up from the workers would cross threads.
    let config = *config;
    rt.block_on(async move { tokio::spawn(suite(config)).await? })
}

async fn suite(config: Config) -> Result<Vec<Row>, Error> {
    let raw = TcpListener::bind("127.0.0.1:0").await?;
    let raw_addr = raw.local_addr()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let handler = Handler::new();
    let server = tokio::spawn({
        let handler = handler.clone();
        async move { handler.serve(listener).await }
    });
    // One node that dials itself: its handler serves the upgrades it dials.
    let layer = Layer::new(&addr, handler.clone(), TcpDialer)?;

    let mut rows = Vec::new();
    rows.extend(setup(&config, &raw, raw_addr, &layer, &addr).await?);
    rows.extend(throughput(&config, &raw, raw_addr, &layer, &addr).await?);
    rows.extend(round_trips(&config, &raw, raw_addr, &layer, &addr).await?);
    drop(raw);
    rows.extend(join(&config, &layer, &addr).await?);
    layer.close();
    server.abort();
    rows.extend(tls_suite(&config).await?);
    Ok(rows)
}

async fn raw_pair(listener: &TcpListener, addr: SocketAddr) -> io::Result<(TcpStream, TcpStream)> {
    let client = TcpStream::connect(addr).await?;
    client.set_nodelay(true)?;
    let (server, _) = listener.accept().await?;
    server.set_nodelay(true)?;
    Ok((client, server))
}

async fn raft_pair(layer: &Layer, addr: &str) -> Result<(Stream, Stream), Error> {
    let client = layer.dial(addr, TIMEOUT).await?;
    let server = layer.accept().await?;
    Ok((client, server))
}

async fn setup(
    config: &Config,
    raw_listener: &TcpListener,
    raw_addr: SocketAddr,
    layer: &Layer,
    addr: &str,
) -> Result<[Row; 2], Error> {
    let mut raw = Samples::with_capacity(config.setup_iters);
    let mut raft = Samples::with_capacity(config.setup_iters);
    for i in 0..config.warmup + config.setup_iters {
        let start = Instant::now();
        let pair = raw_pair(raw_listener, raw_addr).await?;
        let raw_time = start.elapsed();
        drop(pair);
        let start = Instant::now();
        let pair = raft_pair(layer, addr).await?;
        let raft_time = start.elapsed();
        drop(pair);
        if i >= config.warmup {
            raw.push(raw_time);
            raft.push(raft_time);
        }
    }
    Ok(latency_rows(
        NAME,
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
    let (sent, received) = tokio::join!(send, receive);
    sent?;
    received?;
    Ok(start.elapsed())
}

async fn throughput(
    config: &Config,
    raw_listener: &TcpListener,
    raw_addr: SocketAddr,
    layer: &Layer,
    addr: &str,
) -> Result<[Row; 2], Error> {
    let (mut raw_tx, mut raw_rx) = raw_pair(raw_listener, raw_addr).await?;
    let (mut raft_tx, mut raft_rx) = raft_pair(layer, addr).await?;
    if let Some(size) = config.socket_buffer {
        for tcp in [&raw_tx, &raw_rx] {
            fix_buffers(tcp, size)?;
        }
        for stream in [&raft_tx, &raft_rx] {
            fix_buffers(stream.tcp().ok_or("not a TCP stream")?, size)?;
        }
    }
    bulk_series(
        config,
        "",
        (&mut raw_tx, &mut raw_rx),
        (&mut raft_tx, &mut raft_rx),
    )
    .await
}

/// The throughput runs of a raw pair and a rafthttp pair, `label` naming them in `--verbose`.
async fn bulk_series<A, B, C, D>(
    config: &Config,
    label: &str,
    (raw_tx, raw_rx): (&mut A, &mut B),
    (raft_tx, raft_rx): (&mut C, &mut D),
) -> Result<[Row; 2], Error>
where
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
                "{NAME}{label} throughput run {run}: raw {raw_time:?}, rafthttp {raft_time:?}"
            );
        }
        if run > 0 {
            raw.push(raw_time);
            raft.push(raft_time);
        }
    }
    Ok(rate_rows(
        NAME,
        &format!("throughput, {} MiB one way", config.bulk_bytes >> 20),
        config.bulk_bytes,
        raw,
        raft,
    ))
}

/// Echoes `message`-byte messages until the peer closes.
fn echo<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(mut stream: S, message: usize) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; message];
        while stream.read_exact(&mut buf).await.is_ok() {
            if stream.write_all(&buf).await.is_err() {
                break;
            }
        }
    });
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

async fn round_trips(
    config: &Config,
    raw_listener: &TcpListener,
    raw_addr: SocketAddr,
    layer: &Layer,
    addr: &str,
) -> Result<[Row; 2], Error> {
    let (mut raw_conn, raw_echo) = raw_pair(raw_listener, raw_addr).await?;
    let (mut raft_conn, raft_echo) = raft_pair(layer, addr).await?;
    echo(raw_echo, config.message);
    echo(raft_echo, config.message);
    round_trip_series(config, &mut raw_conn, &mut raft_conn).await
}

/// Round trips on a raw connection and a rafthttp one, each answered by an echo task.
async fn round_trip_series<A, B>(
    config: &Config,
    raw_conn: &mut A,
    raft_conn: &mut B,
) -> Result<[Row; 2], Error>
where
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
        NAME,
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
fn raw_http_server(listener: TcpListener, response: Vec<u8>) {
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let _ = conn.set_nodelay(true);
            let response = response.clone();
            tokio::spawn(async move {
                if read_head(&mut conn).await.is_ok() {
                    let _ = conn.write_all(&response).await;
                }
            });
        }
    });
}

async fn raw_request(addr: SocketAddr, request: &[u8]) -> Result<(), Error> {
    let mut conn = TcpStream::connect(addr).await?;
    conn.set_nodelay(true)?;
    conn.write_all(request).await?;
    read_head(&mut conn).await?;
    Ok(())
}

async fn join(config: &Config, layer: &Layer, addr: &str) -> Result<[Row; 2], Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let raw_addr = listener.local_addr()?;
    raw_http_server(listener, ok_response());
    let request = join_request(&raw_addr.to_string(), layer.addr())?;
    // The application: accepts every change.
    let requests = layer.handler().requests();
    tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            request.respond(Ok(()));
        }
    });
    let mut raw = Samples::with_capacity(config.join_iters);
    let mut raft = Samples::with_capacity(config.join_iters);
    for i in 0..config.warmup + config.join_iters {
        let start = Instant::now();
        raw_request(raw_addr, &request).await?;
        let raw_time = start.elapsed();
        let start = Instant::now();
        layer.join("2", addr, TIMEOUT).await?;
        let raft_time = start.elapsed();
        if i >= config.warmup {
            raw.push(raw_time);
            raft.push(raft_time);
        }
    }
    Ok(latency_rows(NAME, "join round trip", raw, raft))
}

/// A `TlsDialer` that also fixes the socket buffers before the handshake, for the throughput
/// runs (a `Stream` over TLS does not expose its socket). Same steps otherwise: connect,
/// handshake, `Stream::from` the TLS stream.
#[derive(Clone)]
struct BulkTlsDialer {
    connector: TlsConnector,
    buffer: Option<usize>,
}

impl Dialer<Stream> for BulkTlsDialer {
    async fn connect(&self, authority: &str) -> io::Result<Stream> {
        let tcp = TcpStream::connect(authority).await?;
        if let Some(size) = self.buffer {
            fix_buffers(&tcp, size)?;
        }
        let tls = self.connector.connect(tls::server_name(), tcp).await?;
        Ok(Stream::from(tokio_rustls::TlsStream::from(tls)))
    }

    fn scheme(&self) -> Scheme {
        Scheme::Https
    }
}

/// A raw TLS pair: TCP connect + accept, and the handshake of both ends driven by this task.
/// The server end inherits the listener's socket buffers.
async fn raw_tls_pair(
    listener: &TcpListener,
    addr: SocketAddr,
    connector: &TlsConnector,
    acceptor: &TlsAcceptor,
    buffer: Option<usize>,
) -> io::Result<(client::TlsStream<TcpStream>, server::TlsStream<TcpStream>)> {
    let client = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        if let Some(size) = buffer {
            fix_buffers(&tcp, size)?;
        }
        connector.connect(tls::server_name(), tcp).await
    };
    let server = async {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        acceptor.accept(tcp).await
    };
    tokio::try_join!(client, server)
}

async fn raft_tls_pair<D: Dialer<Stream>>(
    layer: &Layer<D>,
    addr: &str,
) -> Result<(Stream, Stream), Error> {
    let client = layer.dial(addr, TIMEOUT).await?;
    let server = layer.accept().await?;
    Ok((client, server))
}

/// The TLS rows: a raw TLS listener beside a handler serving TLS, each with its own rustls
/// configs. With fixed socket buffers both listeners get them, so that accepted sockets inherit
/// them (a handler's accepted `Stream` over TLS does not expose its socket).
async fn tls_suite(config: &Config) -> Result<Vec<Row>, Error> {
    let pki = Pki::new()?;
    let raw = TcpListener::bind("127.0.0.1:0").await?;
    let raw_addr = raw.local_addr()?;
    let connector = TlsConnector::from(pki.client()?);
    let acceptor = TlsAcceptor::from(pki.server()?);

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    if let Some(size) = config.socket_buffer {
        fix_buffers(&raw, size)?;
        fix_buffers(&listener, size)?;
    }
    let handler = Handler::new();
    let server = tokio::spawn({
        let handler = handler.clone();
        let acceptor = TlsAcceptor::from(pki.server()?);
        async move { handler.serve_tls(listener, acceptor).await }
    });
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
        let pair = raw_tls_pair(&raw, raw_addr, &connector, &acceptor, None).await?;
        let raw_time = start.elapsed();
        if i == 0 && config.verbose {
            let session = pair.0.get_ref().1;
            eprintln!(
                "{NAME} TLS: {:?}, {:?}",
                session.protocol_version(),
                session.negotiated_cipher_suite().map(|s| s.suite())
            );
        }
        drop(pair);
        let start = Instant::now();
        let pair = raft_tls_pair(&layer, &addr).await?;
        let raft_time = start.elapsed();
        drop(pair);
        if i >= config.warmup {
            raw_times.push(raw_time);
            raft_times.push(raft_time);
        }
    }
    rows.extend(latency_rows(
        NAME,
        "TLS connection setup (connect + handshake + accept)",
        raw_times,
        raft_times,
    ));

    // Throughput.
    let (mut raw_tx, mut raw_rx) =
        raw_tls_pair(&raw, raw_addr, &connector, &acceptor, config.socket_buffer).await?;
    let (mut raft_tx, mut raft_rx) = raft_tls_pair(&bulk_layer, &addr).await?;
    if config.verbose {
        if let Some(size) = config.socket_buffer {
            let server = socket2::SockRef::from(raw_rx.get_ref().0);
            eprintln!(
                "{NAME} TLS: socket buffers {size} B asked, accepted socket has {} B receive",
                server.recv_buffer_size()?
            );
        }
    }
    rows.extend(
        bulk_series(
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
        raw_tls_pair(&raw, raw_addr, &connector, &acceptor, None).await?;
    let (mut raft_conn, raft_echo) = raft_tls_pair(&layer, &addr).await?;
    echo(raw_echo, config.message);
    echo(raft_echo, config.message);
    rows.extend(
        round_trip_series(config, &mut raw_conn, &mut raft_conn)
            .await?
            .map(|row| Row {
                what: format!("TLS {}", row.what),
                ..row
            }),
    );
    layer.close();
    server.abort();
    Ok(rows.into_iter().map(Row::over_tls).collect())
}
