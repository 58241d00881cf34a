//! A real three-node Raft cluster (tikv's `raft` crate) over rafthttp on tokio, on loopback.
//!
//! Node 1 bootstraps and leads; node 2 joins through node 1; node 3 joins through node 2, a
//! follower that redirects it to the leader (308); node 3 leaves. Raft messages travel as
//! length-prefixed protobuf frames over upgraded HTTP connections. The node logic and the
//! scenario live in `rafthttp-raft` (written once for every runtime); this file only starts
//! three HTTP servers on tokio. Prints `has logged connections: true` and `peers: 1`; exits
//! non-zero if the cluster does not converge within 20 s.

use std::process::ExitCode;
use std::time::Duration;

use rafthttp_examples::scenario::three_nodes;
use rafthttp_raft::NodeConfig;
use rafthttp_tokio::{Handler, Layer, Requests, TcpDialer, Tokio};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// A node's HTTP server on a free loopback port, its layer and its membership requests.
async fn endpoint() -> Result<(Layer, Requests), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let handler = Handler::new();
    let server = handler.clone();
    tokio::spawn(async move { server.serve(listener).await });
    let requests = handler.requests();
    Ok((Layer::new(&addr, handler, TcpDialer)?, requests))
}

#[tokio::main]
async fn main() -> ExitCode {
    // `RUST_LOG=debug` shows every request answered and every dial; `info` by default.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let endpoints = match (endpoint().await, endpoint().await, endpoint().await) {
        (Ok(a), Ok(b), Ok(c)) => [a, b, c],
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("cannot start the HTTP servers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scenario = three_nodes(
        Tokio,
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
}
