//! The integration suite, written once and compiled per runtime: everything runtime-specific
//! comes from `super::rt`. Every socket is bound to `127.0.0.1:0`; every wait is bounded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::RemoteHandle;
use rafthttp_driver::{ChangeError, ChangeKind, ChangeRequest, HandlerConfig, Outcome, Refusal};

use super::rt;

mod handler;
mod layer;
mod membership;
mod tls;

/// Upper bound of any single wait in the suite; reaching it is a failure, not a pass.
const WAIT: Duration = Duration::from_secs(10);

/// Short handler timeout for the cases that test a timeout.
const SHORT: Duration = Duration::from_millis(150);

/// Runs an async test body on the runtime under test.
macro_rules! async_test {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        #[test]
        $(#[$meta])*
        fn $name() {
            super::rt::block_on(async move $body)
        }
    };
}
pub(crate) use async_test;

use rafthttp_tests::{GO_DIAL, SWITCHING};

/// Runs `task` in the background and gives back a handle: awaiting it yields the task's output,
/// and a panic in the task (a failed assertion) fails the test that awaits it. Dropping the
/// handle cancels the task.
fn spawn_joined<F>(task: F) -> RemoteHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send,
{
    let (remote, handle) = task.remote_handle();
    rt::spawn(remote);
    handle
}

async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    match rt::timeout(WAIT, f).await {
        Some(out) => out,
        None => panic!("[{}] timed out waiting for {what}", rt::NAME),
    }
}

/// Reads exactly `n` bytes.
async fn read_exact<S: rt::Io>(s: &mut S, n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    let mut filled = 0;
    while filled < n {
        let got = bounded("bytes", rt::read_some(s, &mut out[filled..]))
            .await
            .expect("read");
        assert_ne!(
            got,
            0,
            "EOF after {filled} of {n} bytes: {:?}",
            String::from_utf8_lossy(&out[..filled])
        );
        filled += got;
    }
    out
}

/// Reads until the peer closes; returns everything read (errors count as the end).
async fn read_to_eof<S: rt::Io>(s: &mut S) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match bounded("EOF", rt::read_some(s, &mut chunk)).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A response as read from a raw socket.
#[derive(Debug)]
struct Reply {
    head: String,
    body: String,
}

impl Reply {
    fn status(&self) -> u16 {
        self.head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }
}

/// Reads one response (head and `Content-Length` body). `head_only` for a HEAD request.
async fn read_reply<S: rt::Io>(s: &mut S, head_only: bool) -> Reply {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 1];
        let n = bounded("response head", rt::read_some(s, &mut chunk))
            .await
            .expect("read");
        assert_ne!(
            n,
            0,
            "EOF inside response head {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(chunk[0]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).expect("utf-8 head");
    let mut reply = Reply {
        head,
        body: String::new(),
    };
    let len: usize = reply
        .header("content-length")
        .map_or(0, |v| v.parse().expect("length"));
    if !head_only {
        reply.body = String::from_utf8(read_exact(s, len).await).expect("utf-8 body");
    }
    reply
}

/// Sends `request` on a new raw connection and reads one response.
async fn exchange(addr: &str, request: &[u8]) -> Reply {
    let mut raw = rt::connect(addr).await;
    rt::write_all(&mut raw, request).await;
    read_reply(&mut raw, request.starts_with(b"HEAD")).await
}

/// A handler served on loopback, with its address.
async fn node(config: HandlerConfig) -> (rt::Handler, String) {
    let handler = rt::Handler::with_config(config);
    let addr = rt::serve(&handler).await;
    (handler, addr)
}

fn quick() -> HandlerConfig {
    HandlerConfig::default().with_timeout(SHORT)
}

/// What a scripted membership consumer saw.
type Seen = Arc<Mutex<Vec<(ChangeKind, String, String)>>>;

/// Answers every membership request of `handler` with `answer(n)` (n counts from 0); `None`
/// keeps the request unanswered (held until the consumer ends).
fn consume<F>(handler: &rt::Handler, answer: F) -> Seen
where
    F: Fn(usize) -> Option<Outcome> + Send + 'static,
{
    let seen = Seen::default();
    let requests = handler.requests();
    let record = Arc::clone(&seen);
    rt::spawn(async move {
        let mut held: Vec<ChangeRequest> = Vec::new();
        let mut n = 0;
        while let Some(request) = requests.recv().await {
            record.lock().unwrap().push((
                request.kind(),
                request.id().to_owned(),
                request.address().to_owned(),
            ));
            match answer(n) {
                Some(outcome) => {
                    request.respond(outcome);
                }
                None => held.push(request),
            }
            n += 1;
        }
    });
    seen
}

fn not_leader(leader: Option<&str>) -> Outcome {
    Err(ChangeError::NotLeader {
        leader: leader.map(str::to_owned),
    })
}

/// Layer whose own address is `addr`, over `handler`, dialing TCP.
fn layer(addr: &str, handler: &rt::Handler) -> rt::Layer {
    rt::Layer::new(addr, handler.clone(), rt::TcpDialer).expect("layer")
}

/// A raw server answering each connection's first request with `response`.
pub(crate) async fn canned(response: &'static [u8]) -> String {
    let (listener, addr) = rt::raw_listener().await;
    rt::spawn(async move {
        loop {
            let mut raw = rt::raw_accept(&listener).await;
            rt::spawn(async move {
                let mut request = Vec::new();
                while !request.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8; 1];
                    match rt::read_some(&mut raw, &mut byte).await {
                        Ok(1) => request.push(byte[0]),
                        _ => return,
                    }
                }
                rt::write_all(&mut raw, response).await;
                // Keep the connection open until the client is done with it.
                let _ = read_to_eof(&mut raw).await;
            });
        }
    });
    addr
}
