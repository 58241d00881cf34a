//! The server half of rafthttp over blocking `std::net`, with the sans-IO core alone: no async
//! anywhere. Each connection runs in a thread: read, feed the core's `ServerConnection`, write.
//! A leader applies every join and leave; a follower redirects them to the leader (308); Raft
//! streams are echoed. `blocking-client` starts these in threads and talks to them; run alone,
//! this starts a leader and a follower on 127.0.0.1 for curl, until interrupted.

use rafthttp_core::Availability;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use rafthttp_core::connection::{Event, ServerConnection};
use rafthttp_core::{ChangeError, Limits, RaftPath, Response, Route, Router, Scheme};

/// Errors end a connection (or the program) with a message.
pub(crate) type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Serves one connection; `leader` is where a follower redirects (`None`: this is the leader).
fn serve(mut tcp: TcpStream, leader: Option<String>) -> Result<()> {
    let router = Router::new(RaftPath::default());
    let mut conn = ServerConnection::new(Limits::default());
    let (mut chunk, mut out) = ([0u8; 4096], Vec::new());
    loop {
        out.clear();
        let route = match conn.poll_event(&mut out) {
            Event::NeedData => None,
            Event::Close => return Ok(tcp.write_all(&out)?),
            Event::Request(request) => Some(router.route(&request.head, Availability::Open)),
        };
        tcp.write_all(&out)?; // an interim 100 Continue, if the client waits for one
        out.clear();
        match route {
            None => match tcp.read(&mut chunk)? {
                0 => conn.handle_eof(),
                n => conn.handle_data(&chunk[..n]),
            },
            Some(Route::Upgrade) => {
                let tail = conn.upgrade(&mut out).unwrap_or_default();
                tcp.write_all(&out)?;
                tcp.write_all(&tail)?; // echo the Raft stream, starting with what came early
                std::io::copy(&mut tcp.try_clone()?, &mut tcp)?;
                return Ok(());
            }
            Some(Route::Change(change)) => {
                let outcome = match &leader {
                    Some(leader) => Err(ChangeError::NotLeader {
                        leader: Some(leader.clone()),
                    }),
                    None => Ok(()),
                };
                let response = router.answer(&change, &outcome, Scheme::Http);
                println!(
                    "{:>8}: {} {} -> {}",
                    role(&leader),
                    change.kind,
                    change.id,
                    response.status()
                );
                conn.respond(&response, &mut out);
            }
            Some(Route::Respond(response)) => conn.respond(&response, &mut out),
            Some(Route::NotFound) => conn.respond(&Response::not_found(), &mut out),
        }
        tcp.write_all(&out)?;
    }
}

fn role(leader: &Option<String>) -> &'static str {
    if leader.is_some() {
        "follower"
    } else {
        "leader"
    }
}

/// Starts a node in a thread, one thread per connection; returns its address.
pub(crate) fn node(leader: Option<String>) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            // The idle timeout: a silent client ends its thread.
            let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)));
            let leader = leader.clone();
            std::thread::spawn(move || serve(tcp, leader).map_err(|e| eprintln!("serve: {e}")));
        }
    });
    Ok(addr)
}

#[allow(dead_code)] // the client includes this file as a module and has its own main
fn main() -> Result<()> {
    let leader = node(None)?;
    let follower = node(Some(leader.clone()))?;
    println!("leader on {leader}, follower on {follower}; try:");
    println!("  curl -i -X POST 'http://{follower}/raft?id=2&address=127.0.0.1:9'");
    loop {
        std::thread::park();
    }
}
