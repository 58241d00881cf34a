//! End-to-end loopback benchmarks: how close a rafthttp connection is to raw TCP, per runtime.
//!
//! For tokio, smol and async-std, over `127.0.0.1` only, it measures side by side:
//! - connection setup: raw `connect` + `accept` against `Layer::dial` (connect and upgrade
//!   handshake) + `Layer::accept`;
//! - stream throughput: a large one-way transfer in 64 KiB writes, raw `TcpStream` pair against
//!   the upgraded `Stream` pair, both ends driven by one task, socket buffers fixed at 1 MiB;
//! - round trips: a small message echoed back, raw against upgraded;
//! - a membership join (answered Ok by a consumer task) against a raw TCP connection carrying
//!   one request and one response of the same size;
//! - over TLS (rustls, ring, a certificate made at startup): connection setup, raw TCP connect +
//!   TLS handshake + accept against `Layer::dial` with `TlsDialer` + `Layer::accept` from
//!   `Handler::serve_tls`; throughput and round trips, raw TLS streams against upgraded TLS
//!   `Stream`s.
//!
//! Raw and rafthttp iterations alternate so that noise from other processes hits both alike.
//! Raw sockets get `TCP_NODELAY`, as rafthttp's streams do.
//!
//! Usage: `cargo run --release -p rafthttp-benches --bin loopback -- [--quick] [--verbose]
//! [--autotune] [tokio] [smol] [async-std]` (no runtime named: all three). `--quick` (or
//! `RAFTHTTP_BENCH_QUICK=1`) runs a smoke test of a second or two with small counts;
//! `--verbose` prints the time of every throughput run; `--autotune` leaves the socket buffers
//! of the throughput runs to the kernel instead of fixing them at 1 MiB (see [`fix_buffers`]).

mod futures_suite;
mod tls;
mod tokio_suite;

use std::fmt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How much to measure.
#[derive(Debug, Clone, Copy)]
struct Config {
    /// Connections opened per side for the setup latency.
    setup_iters: usize,
    /// TLS connections opened per side for the TLS setup latency.
    tls_setup_iters: usize,
    /// Bytes sent per throughput run.
    bulk_bytes: u64,
    /// Size of each write in the throughput runs.
    chunk: usize,
    /// Throughput runs per side (after one warm-up run each); the median and the best run are
    /// reported.
    bulk_runs: usize,
    /// Round trips per side.
    pingpong_iters: usize,
    /// Size of a round-trip message.
    message: usize,
    /// Joins per side.
    join_iters: usize,
    /// Untimed iterations before each latency series.
    warmup: usize,
    /// Print every throughput run to stderr.
    verbose: bool,
    /// Send and receive buffer size of the throughput sockets (`None`: the kernel's autotuning).
    socket_buffer: Option<usize>,
}

/// The socket buffers of the throughput runs. 1 MiB: steady, and as fast as the best runs with
/// autotuned buffers here; 4 MiB (the most `net.core.rmem_max` allows here) was slower, the
/// buffered data no longer fitting the caches.
const SOCKET_BUFFER: Option<usize> = Some(1 << 20);

impl Config {
    const FULL: Self = Self {
        setup_iters: 2000,
        tls_setup_iters: 1000,
        bulk_bytes: 256 * 1024 * 1024,
        chunk: 64 * 1024,
        bulk_runs: 15,
        pingpong_iters: 20_000,
        message: 64,
        join_iters: 1000,
        warmup: 100,
        verbose: false,
        socket_buffer: SOCKET_BUFFER,
    };

    const QUICK: Self = Self {
        setup_iters: 200,
        tls_setup_iters: 100,
        bulk_bytes: 32 * 1024 * 1024,
        chunk: 64 * 1024,
        bulk_runs: 3,
        pingpong_iters: 2000,
        message: 64,
        join_iters: 100,
        warmup: 10,
        verbose: false,
        socket_buffer: SOCKET_BUFFER,
    };
}

/// A measured figure.
#[derive(Debug, Clone, Copy)]
enum Figure {
    Latency(Duration),
    /// Bytes per second.
    Rate(f64),
}

impl Figure {
    fn value(self) -> f64 {
        match self {
            Self::Latency(d) => d.as_secs_f64(),
            Self::Rate(r) => r,
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Latency(d) if d < Duration::from_millis(1) => {
                write!(f, "{:.1} µs", d.as_secs_f64() * 1e6)
            }
            Self::Latency(d) => write!(f, "{:.2} ms", d.as_secs_f64() * 1e3),
            Self::Rate(r) => write!(f, "{:.2} GiB/s", r / f64::from(1u32 << 30)),
        }
    }
}

/// One line of the table: the same measurement over raw TCP (or raw TLS) and over rafthttp.
#[derive(Debug, Clone)]
struct Row {
    runtime: &'static str,
    what: String,
    raw: Figure,
    raft: Figure,
    /// A TLS row (second table): raw TLS against rafthttp over TLS.
    tls: bool,
}

impl Row {
    /// The row as a TLS row.
    fn over_tls(self) -> Self {
        Self { tls: true, ..self }
    }
}

/// Latencies of one series.
#[derive(Debug, Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// The `p`-th percentile (0 <= p <= 100), nearest rank; 0 is the smallest sample.
    fn percentile(&mut self, p: f64) -> Duration {
        assert!(!self.0.is_empty(), "no samples");
        self.0.sort_unstable();
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    fn median(&mut self) -> Duration {
        self.percentile(50.0)
    }

    fn p99(&mut self) -> Duration {
        self.percentile(99.0)
    }
}

/// Raw and rafthttp latencies of one measurement, turned into a median and a p99 row.
fn latency_rows(
    runtime: &'static str,
    what: &str,
    mut raw: Samples,
    mut raft: Samples,
) -> [Row; 2] {
    [
        Row {
            runtime,
            what: format!("{what}, median"),
            raw: Figure::Latency(raw.median()),
            raft: Figure::Latency(raft.median()),
            tls: false,
        },
        Row {
            runtime,
            what: format!("{what}, p99"),
            raw: Figure::Latency(raw.p99()),
            raft: Figure::Latency(raft.p99()),
            tls: false,
        },
    ]
}

/// Bytes per second: the median run, and the best run (the stream's cost with the least
/// interference from scheduling and from other processes).
fn rate_rows(
    runtime: &'static str,
    what: &str,
    bytes: u64,
    mut raw: Samples,
    mut raft: Samples,
) -> [Row; 2] {
    #[allow(clippy::cast_precision_loss)]
    let rate = |d: Duration| Figure::Rate(bytes as f64 / d.as_secs_f64());
    [
        Row {
            runtime,
            what: format!("{what}, median run"),
            raw: rate(raw.median()),
            raft: rate(raft.median()),
            tls: false,
        },
        Row {
            runtime,
            what: format!("{what}, best run"),
            raw: rate(raw.percentile(0.0)),
            raft: rate(raft.percentile(0.0)),
            tls: false,
        },
    ]
}

/// The error of a suite.
type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long a rafthttp call may take before the suite gives up (never reached on loopback).
const TIMEOUT: Duration = Duration::from_secs(10);

/// The bytes rafthttp's client sends to join server `2` at `address` through `target`, taken
/// from the core's own membership machine: the raw baseline sends exactly these.
fn join_request(target: &str, address: &str) -> Result<Vec<u8>, Error> {
    use rafthttp_core::membership::{ChangeKind, MembershipClient, Output};
    let path = rafthttp_core::RaftPath::default();
    let deadline = Instant::now() + TIMEOUT;
    let mut client =
        MembershipClient::new(ChangeKind::Join, &path, "2", address, target, deadline)?;
    match client.poll_output() {
        Output::Transmit(transmit) => Ok(transmit.request),
        other => Err(format!("unexpected membership output {other:?}").into()),
    }
}

/// The `200` the handler answers a join with, as the core encodes it; the raw baseline's answer.
fn ok_response() -> Vec<u8> {
    let mut out = Vec::new();
    rafthttp_core::Response::ok().closing().encode(&mut out);
    out
}

/// Fixes the kernel's send and receive buffers of a socket. Left to autotuning, the receive
/// buffers of loopback connections grew to sizes from about 300 KiB to 32 MiB, different from
/// one connection to the next and changing during a run, and the throughput of a connection
/// swung between about 3 and 6 GiB/s with them, raw TCP and rafthttp alike.
#[cfg(unix)]
fn fix_buffers<S: std::os::fd::AsFd>(socket: &S, size: usize) -> std::io::Result<()> {
    let socket = socket2::SockRef::from(socket);
    socket.set_send_buffer_size(size)?;
    socket.set_recv_buffer_size(size)
}

/// See the Unix version.
#[cfg(windows)]
fn fix_buffers<S: std::os::windows::io::AsSocket>(socket: &S, size: usize) -> std::io::Result<()> {
    let socket = socket2::SockRef::from(socket);
    socket.set_send_buffer_size(size)?;
    socket.set_recv_buffer_size(size)
}

/// Whether `buf` holds a whole HTTP head.
fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n")
}

const LEGEND: &str = "
- connection setup: raw = TCP connect + accept; rafthttp = Layer::dial (connect + upgrade
  request + 101) + Layer::accept.
- throughput: one task writes on one end and reads the other; best run = fastest of the runs.
- round trip: write a message, read it back from an echo task.
- join: raw = a new TCP connection carrying the same request bytes, answered the same 200 by a
  bare server task; rafthttp = Layer::join, answered Ok by a task reading Handler::requests.
- TLS (second table): TLS 1.3, full handshakes (no resumption), ECDSA P-256 certificate.
  connection setup: raw = TCP connect + accept + rustls handshake on both ends (one task drives
  both); rafthttp = Layer::dial with TlsDialer (connect + handshake + upgrade request + 101) +
  Layer::accept, against Handler::serve_tls. Throughput and round trip as above, raw TLS streams
  against upgraded TLS Streams.
- rafthttp / raw: for latencies above 1 is slower, for throughput below 1 is slower.
";

fn print_table(rows: &[Row], tls: bool) {
    let rows: Vec<&Row> = rows.iter().filter(|row| row.tls == tls).collect();
    if rows.is_empty() {
        return;
    }
    let (raw, raft) = if tls {
        ("raw TLS", "rafthttp over TLS")
    } else {
        ("raw TCP", "rafthttp")
    };
    println!("| runtime | measurement | {raw} | {raft} | rafthttp / raw |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {:.2} |",
            row.runtime,
            row.what,
            row.raw,
            row.raft,
            row.raft.value() / row.raw.value()
        );
    }
}

fn main() -> ExitCode {
    let mut quick = std::env::var_os("RAFTHTTP_BENCH_QUICK").is_some_and(|v| v != "0");
    let mut verbose = false;
    let mut autotune = false;
    let mut runtimes = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            "--verbose" => verbose = true,
            "--autotune" => autotune = true,
            "tokio" | "smol" | "async-std" => runtimes.push(arg),
            other => {
                eprintln!(
                    "unknown argument {other:?}; usage: loopback [--quick] [--verbose] [--autotune] [tokio] [smol] [async-std]"
                );
                return ExitCode::FAILURE;
            }
        }
    }
    if runtimes.is_empty() {
        runtimes = ["tokio", "smol", "async-std"].map(String::from).to_vec();
    }
    let config = Config {
        verbose,
        socket_buffer: if autotune { None } else { SOCKET_BUFFER },
        ..if quick { Config::QUICK } else { Config::FULL }
    };
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; run with --release for meaningful figures");
    }
    println!(
        "rafthttp loopback benchmarks ({}): {} CPUs available",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "setup: {} connections per side ({} over TLS); throughput: {} MiB in {} KiB writes, \
         median of {} runs; round trip: {} x {} B; join: {} per side\n",
        config.setup_iters,
        config.tls_setup_iters,
        config.bulk_bytes >> 20,
        config.chunk >> 10,
        config.bulk_runs,
        config.pingpong_iters,
        config.message,
        config.join_iters
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    for runtime in &runtimes {
        let begun = Instant::now();
        let result = match runtime.as_str() {
            "tokio" => tokio_suite::run(&config),
            "smol" => futures_suite::run::<futures_suite::Smol>(&config),
            _ => futures_suite::run::<futures_suite::AsyncStd>(&config),
        };
        match result {
            Ok(mut more) => {
                eprintln!("{runtime}: done in {:.1} s", begun.elapsed().as_secs_f64());
                rows.append(&mut more);
            }
            Err(error) => {
                eprintln!("{runtime}: failed: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    print_table(&rows, false);
    println!();
    print_table(&rows, true);
    println!("{LEGEND}");
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples = Samples::default();
        for micros in (1..=100).rev() {
            samples.push(Duration::from_micros(micros));
        }
        assert_eq!(samples.percentile(0.0), Duration::from_micros(1));
        assert_eq!(samples.median(), Duration::from_micros(50));
        assert_eq!(samples.p99(), Duration::from_micros(99));
        assert_eq!(samples.percentile(100.0), Duration::from_micros(100));
    }

    #[test]
    fn the_certificates_make_configs_without_tickets() {
        let pki = tls::Pki::new().unwrap();
        assert_eq!(pki.server().unwrap().send_tls13_tickets, 0);
        assert!(pki.client().is_ok());
    }

    #[test]
    fn the_raw_baseline_sends_what_rafthttp_sends() {
        let request = join_request("127.0.0.1:2", "127.0.0.1:1").unwrap();
        assert!(request.starts_with(b"POST /raft?id=2&address=127.0.0.1:1 HTTP/1.1\r\n"));
        assert!(head_complete(&request));
        assert_eq!(
            ok_response(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
}
