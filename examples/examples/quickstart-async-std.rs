//! Three nodes on loopback, each serving HTTP with a Raft handler (async-std, which is
//! discontinued upstream; prefer smol). See `quickstart-tokio.rs` for the story.

use std::time::Duration;

use async_std::io::{ReadExt, WriteExt};
use async_std::net::TcpListener;
use rafthttp_async_std::{ChangeError, Handler, Layer, TcpDialer};
use tracing_subscriber::EnvFilter;

const TIMEOUT: Duration = Duration::from_secs(5);

async fn start() -> Result<Layer, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let handler = Handler::new();
    let server = handler.clone();
    async_std::task::spawn(async move { rafthttp_async_std::serve(&server, listener).await });
    Ok(Layer::new(&addr, handler, TcpDialer)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `RUST_LOG=debug` shows every request answered and every dial; `info` by default.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    async_std::task::block_on(async {
        let (node1, node2, node3) = (start().await?, start().await?, start().await?);

        let requests = node1.handler().requests();
        async_std::task::spawn(async move {
            while let Some(request) = requests.recv().await {
                println!(
                    "node 1 applies: {} {} at {:?}",
                    request.kind(),
                    request.id(),
                    request.address()
                );
                request.respond(Ok(()));
            }
        });
        let requests = node2.handler().requests();
        let leader = node1.addr().to_owned();
        async_std::task::spawn(async move {
            while let Some(request) = requests.recv().await {
                request.respond(Err(ChangeError::NotLeader {
                    leader: Some(leader.clone()),
                }));
            }
        });

        node3.join("3", node2.addr(), TIMEOUT).await?;
        println!("node 3 joined through node 2 (redirected to node 1)");

        let mut outbound = node3.dial(node1.addr(), TIMEOUT).await?;
        let mut inbound = node1.accept().await?;
        outbound.write_all(b"append entries").await?;
        let mut buf = [0u8; 14];
        inbound.read_exact(&mut buf).await?;
        println!(
            "node 1 received over the upgraded connection: {:?}",
            String::from_utf8_lossy(&buf)
        );

        node3.leave("3", node2.addr(), TIMEOUT).await?;
        println!("node 3 left");
        for node in [&node1, &node2, &node3] {
            node.close();
        }
        Ok(())
    })
}
