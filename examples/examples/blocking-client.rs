//! rafthttp over blocking `std::net`, with the sans-IO core alone: no async anywhere.
//!
//! A leader and a follower (which redirects membership requests to the leader) serve HTTP in
//! threads on 127.0.0.1 (`blocking-server.rs`). This program is their client: it upgrades a
//! connection and echoes through it, sends two joins over one keep-alive connection, one with
//! `Expect: 100-continue`, and a join through the follower that follows its 308 to the leader.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rafthttp_core::membership::{ChangeKind, MembershipClient, Output};
use rafthttp_core::{BodyFraming, ClientHandshake, Decoded, Limits, RaftPath, ResponseDecoder};

#[path = "blocking-server.rs"]
mod server;
use server::{Result, node};

/// Reads one response head (and its announced body) from `tcp`; returns the status.
fn read_response(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Result<u16> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Decoded::Complete { value, consumed } =
            ResponseDecoder::new(Limits::default()).decode(buf)?
        {
            let (status, framing) = (value.status(), value.body_framing());
            let body = match framing {
                BodyFraming::Length(n) => n as usize,
                _ => 0,
            };
            if buf.len() >= consumed + body {
                buf.drain(..consumed + body);
                return Ok(status);
            }
        }
        let n = tcp.read(&mut chunk)?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn main() -> Result<()> {
    let leader = node(None)?;
    let follower = node(Some(leader.clone()))?;
    let timeout = Some(Duration::from_secs(5));

    // An upgrade: the Raft stream echoes.
    let mut tcp = TcpStream::connect(&leader)?;
    tcp.set_read_timeout(timeout)?;
    let mut handshake = ClientHandshake::new(&RaftPath::default(), &leader, Limits::default())?;
    let mut request = Vec::new();
    handshake.encode_request(&mut request);
    tcp.write_all(&request)?;
    let (mut buf, mut chunk) = (Vec::new(), [0u8; 1024]);
    let tail = loop {
        let n = tcp.read(&mut chunk)?;
        buf.extend_from_slice(&chunk[..n]);
        if let Decoded::Complete { value, .. } = handshake.decode_response(&buf)? {
            break value.tail.to_vec();
        }
    };
    tcp.write_all(b"ping")?;
    let mut echo = tail;
    while echo.len() < 4 {
        let n = tcp.read(&mut chunk)?;
        echo.extend_from_slice(&chunk[..n])
    }
    println!(
        "  client: upgraded, echoed {:?}",
        String::from_utf8_lossy(&echo)
    );

    // Two joins over one keep-alive connection; the second waits for 100 Continue.
    let mut tcp = TcpStream::connect(&leader)?;
    tcp.set_read_timeout(timeout)?;
    let mut buf = Vec::new();
    tcp.write_all(
        format!("POST /raft?id=2&address=a:2 HTTP/1.1\r\nHost: {leader}\r\n\r\n").as_bytes(),
    )?;
    println!(
        "  client: keep-alive join -> {}",
        read_response(&mut tcp, &mut buf)?
    );
    tcp.write_all(format!("POST /raft?id=3&address=a:3 HTTP/1.1\r\nHost: {leader}\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n").as_bytes())?;
    println!("  client: interim {}", read_response(&mut tcp, &mut buf)?);
    tcp.write_all(b"body")?;
    println!(
        "  client: join after 100-continue -> {}",
        read_response(&mut tcp, &mut buf)?
    );

    // A join through the follower, which redirects to the leader.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut join = MembershipClient::new(
        ChangeKind::Join,
        &RaftPath::default(),
        "4",
        "a:4",
        &follower,
        deadline,
    )?;
    let mut conn: Option<TcpStream> = None;
    loop {
        match join.poll_output() {
            Output::Transmit(transmit) => {
                let mut tcp = TcpStream::connect(&transmit.authority)?;
                tcp.set_read_timeout(timeout)?;
                tcp.write_all(&transmit.request)?;
                conn = Some(tcp);
            }
            Output::Receive => match conn.as_mut().map(|tcp| tcp.read(&mut chunk)) {
                Some(Ok(n)) if n > 0 => join.handle_receive(Instant::now(), &chunk[..n]),
                _ => join.handle_eof(Instant::now()),
            },
            Output::Timeout(at) => {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                join.handle_timeout(at);
            }
            Output::Done(result) => {
                break println!("  client: join through the follower -> {result:?}");
            }
        }
    }
    Ok(())
}
