//! A real three-node Raft cluster (tikv's `raft` crate) over rafthttp on async-std, on
//! loopback. See `cluster-tokio.rs` for the story; the node logic and the scenario live in
//! `rafthttp-raft`, this file only starts three HTTP servers on async-std.

use std::process::ExitCode;
use std::time::Duration;

use async_std::net::TcpListener;
use rafthttp_async_std::{AsyncStd, Handler, Layer, Requests, TcpDialer};
use rafthttp_examples::scenario::three_nodes;
use rafthttp_raft::NodeConfig;
use tracing_subscriber::EnvFilter;

/// A node's HTTP server on a free loopback port, its layer and its membership requests.
async fn endpoint() -> Result<(Layer, Requests), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let handler = Handler::new();
    let server = handler.clone();
    async_std::task::spawn(async move {
        if let Err(e) = rafthttp_async_std::serve(&server, listener).await {
            eprintln!("serve: {e}");
        }
    });
    let requests = handler.requests();
    Ok((Layer::new(&addr, handler, TcpDialer)?, requests))
}

fn main() -> ExitCode {
    // `RUST_LOG=debug` shows every request answered and every dial; `info` by default.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    async_std::task::block_on(async {
        let endpoints = match (endpoint().await, endpoint().await, endpoint().await) {
            (Ok(a), Ok(b), Ok(c)) => [a, b, c],
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                eprintln!("cannot start the HTTP servers: {e}");
                return ExitCode::FAILURE;
            }
        };
        let scenario = three_nodes(
            AsyncStd::default(),
            endpoints,
            NodeConfig::default(),
            Duration::from_secs(20),
        );
        match scenario.await {
            Ok(report) => {
                println!(
                    "has logged connections: {}",
                    report.accepted_connections > 0
                );
                println!("peers: {}", report.peers);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("the cluster did not converge: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
