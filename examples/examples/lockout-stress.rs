//! Lockout by slow sockets, measured: a node with the default limits, 2,000 sockets from
//! 127.0.0.2 that each send one byte of a request head and then nothing, and 100 Raft dials from
//! 127.0.0.1 while they are held open. Prints how many dials got through and how long each took.
//!
//! `cargo run --release -p rafthttp-examples --example lockout-stress [-- SLOW DIALS]`
//!
//! The defaults that keep the dials working: at most 256 connections per source address may
//! wait for their first head (`HandlerConfig::max_waiting_per_source`), the 1,024-connection
//! cap sheds the connection waiting longest for a head rather than refusing a newcomer, and a
//! head is due 5 s after the accept (`head_timeout`). Needs a file-descriptor limit above
//! SLOW + DIALS + a few hundred (`ulimit -n`).

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rafthttp_tokio::{Handler, Layer, TcpDialer};

fn slow_socket(target: SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())?;
    socket.connect(&target.into())?;
    let mut stream = std::net::TcpStream::from(socket);
    stream.write_all(b"G")?;
    Ok(stream)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let slow_count = args.next().transpose()?.unwrap_or(2000);
    let dials = args.next().transpose()?.unwrap_or(100);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let target = listener.local_addr()?;
    let handler = Handler::new();
    tokio::spawn({
        let handler = handler.clone();
        async move { handler.serve(listener).await }
    });
    tokio::spawn({
        let handler = handler.clone();
        async move { while handler.accept().await.is_ok() {} }
    });

    let started = Instant::now();
    let slow = tokio::task::spawn_blocking(move || {
        (0..slow_count)
            .map(|_| slow_socket(target))
            .collect::<std::io::Result<Vec<_>>>()
    })
    .await??;
    println!(
        "{} slow sockets from 127.0.0.2 open in {:?}",
        slow.len(),
        started.elapsed()
    );

    let client_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let own = client_listener.local_addr()?.to_string();
    let layer = Layer::new(&own, Handler::new(), TcpDialer)?;
    let mut times = Vec::with_capacity(dials);
    let mut failed = 0;
    for _ in 0..dials {
        let t = Instant::now();
        match layer
            .dial(&target.to_string(), Duration::from_secs(1))
            .await
        {
            Ok(_stream) => times.push(t.elapsed()),
            Err(error) => {
                failed += 1;
                eprintln!("dial failed: {error}");
            }
        }
    }
    times.sort();
    let at =
        |q: f64| times.get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)));
    println!(
        "dials from 127.0.0.1: {} of {dials} succeeded within 1 s, {failed} failed",
        times.len()
    );
    if let (Some(p50), Some(p99), Some(max)) = (at(0.5), at(0.99), times.last()) {
        println!("dial time: p50 {p50:?}, p99 {p99:?}, max {max:?}");
    }
    println!("{handler:?}");
    drop(slow);
    if failed > 0 {
        return Err(format!("{failed} dials failed").into());
    }
    Ok(())
}
