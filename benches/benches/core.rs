//! Criterion benchmarks of `rafthttp-core`, the sans-IO protocol machines: how long it takes to
//! decode a request head (as Go's client sends it), to route it, to encode the answer, to decode
//! the `101` on the dialing side, and to run one join round (a redirect, then `200`).
//!
//! `decode_linear` feeds one head whole and one byte at a time, at several sizes: the
//! incremental decoder remembers how far it scanned, so a byte-at-a-time feed costs a constant
//! number of nanoseconds per byte at every size (throughput stays flat), not a number that grows
//! with the head.
//!
//! Run with `cargo bench -p rafthttp-benches --bench core`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_main};
use rafthttp_core::membership::{ChangeKind, MembershipClient, Output};
use rafthttp_core::{
    Change, ChangeError, ClientHandshake, Decoded, Limits, RaftPath, RequestDecoder, Response,
    ResponseDecoder, ResponseHead, Router, Scheme,
};

/// The upgrade request Go's `Layer.Dial` sends (captured from the Go package).
const GO_DIAL: &[u8] =
    b"GET /raft HTTP/1.1\r\nHost: 127.0.0.1:17100\r\nUser-Agent: Go-http-client/1.1\r\nUpgrade: raft\r\n\r\n";

/// The join request Go's `ChangeMembership` sends (captured from the Go package).
const GO_JOIN: &[u8] = b"POST /raft?id=3&address=127.0.0.1:17103 HTTP/1.1\r\nHost: 127.0.0.1:17201\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: 0\r\nAccept-Encoding: gzip\r\n\r\n";

/// A GET on the Raft path without `Upgrade`: answered 400.
const NO_UPGRADE: &[u8] = b"GET /raft HTTP/1.1\r\nHost: 127.0.0.1:17100\r\n\r\n";

/// The 101 our server sends.
const OUR_101: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\nConnection: Upgrade\r\n\r\n";

/// The 101 Go's server sends.
const GO_101: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\n\r\n";

/// The redirect a Go follower sends to a joining node.
const GO_308: &[u8] = b"HTTP/1.1 308 Permanent Redirect\r\nLocation: http://127.0.0.1:17202/raft?id=3&address=127.0.0.1:17103\r\nDate: Wed, 25 Nov 2026 19:38:41 GMT\r\nContent-Length: 0\r\n\r\n";

/// The answer of a Go leader that applied the change.
const GO_200: &[u8] =
    b"HTTP/1.1 200 OK\r\nDate: Wed, 25 Nov 2026 19:38:41 GMT\r\nContent-Length: 0\r\n\r\n";

fn path() -> RaftPath {
    RaftPath::new("/raft").expect("valid path")
}

fn decode_request(buf: &[u8]) -> usize {
    match RequestDecoder::new(Limits::default()).decode(buf) {
        Ok(Decoded::Complete { consumed, .. }) => consumed,
        other => panic!("head did not decode: {other:?}"),
    }
}

fn request_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_decode");
    let mut ours = Vec::new();
    ClientHandshake::new(&path(), "127.0.0.1:17201", Limits::default())
        .expect("valid authority")
        .encode_request(&mut ours);
    for (name, head) in [
        ("go_dial", GO_DIAL),
        ("rust_dial", &ours[..]),
        ("go_join", GO_JOIN),
    ] {
        assert_eq!(decode_request(head), head.len());
        group.throughput(Throughput::Bytes(head.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), head, |b, head| {
            b.iter(|| {
                let mut decoder = RequestDecoder::new(Limits::default());
                match decoder.decode(black_box(head)) {
                    Ok(Decoded::Complete { value, consumed }) => {
                        black_box(&value);
                        consumed
                    }
                    _ => unreachable!(),
                }
            });
        });
    }
    group.finish();
}

/// An upgrade request of exactly `size` bytes, padded with one long header field.
fn padded_head(size: usize) -> Vec<u8> {
    let start = b"GET /raft HTTP/1.1\r\nHost: 127.0.0.1:17100\r\nUpgrade: raft\r\nX-Pad: ";
    let end = b"\r\n\r\n";
    let pad = size - start.len() - end.len();
    let mut head = start.to_vec();
    head.resize(start.len() + pad, b'a');
    head.extend_from_slice(end);
    head
}

fn decode_linear(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_linear");
    let limits = Limits::default().with_max_head_bytes(128 * 1024);
    for size in [128usize, 1024, 8 * 1024, 64 * 1024] {
        let head = padded_head(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("whole", size), &head, |b, head| {
            b.iter(|| {
                let mut decoder = RequestDecoder::new(limits);
                match decoder.decode(black_box(head)) {
                    Ok(Decoded::Complete { consumed, .. }) => consumed,
                    _ => unreachable!(),
                }
            });
        });
        // The way a reader that gets one byte per read would call it: the whole buffer so far,
        // one byte longer each time.
        group.bench_with_input(BenchmarkId::new("byte_by_byte", size), &head, |b, head| {
            b.iter(|| {
                let mut decoder = RequestDecoder::new(limits);
                for end in 1..=head.len() {
                    match decoder.decode(black_box(&head[..end])) {
                        Ok(Decoded::Incomplete) => {}
                        Ok(Decoded::Complete { consumed, .. }) => return consumed,
                        Err(e) => panic!("{e}"),
                    }
                }
                unreachable!("the head is complete")
            });
        });
    }
    group.finish();
}

fn route(c: &mut Criterion) {
    let mut group = c.benchmark_group("route");
    let router = Router::new(path());
    for (name, head) in [
        ("go_dial", GO_DIAL),
        ("go_join", GO_JOIN),
        ("no_upgrade", NO_UPGRADE),
    ] {
        let Ok(Decoded::Complete { value: head, .. }) =
            RequestDecoder::new(Limits::default()).decode(head)
        else {
            unreachable!()
        };
        group.bench_with_input(BenchmarkId::from_parameter(name), &head, |b, head| {
            b.iter(|| {
                router.route(
                    black_box(head),
                    black_box(rafthttp_core::Availability::Open),
                )
            });
        });
    }
    group.finish();
}

fn response_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("response_encode");
    let router = Router::new(path());
    let change = Change {
        kind: ChangeKind::Join,
        id: "3".into(),
        address: "127.0.0.1:17103".into(),
        raw_query: "id=3&address=127.0.0.1:17103".into(),
    };
    let redirect = router.answer(
        &change,
        &Err(ChangeError::NotLeader {
            leader: Some("127.0.0.1:17202".into()),
        }),
        Scheme::Http,
    );
    let failed = router.answer(&change, &Err(ChangeError::failed("boom")), Scheme::Http);
    for (name, response) in [
        ("101", Response::switching_protocols()),
        ("200", Response::ok()),
        ("308", redirect),
        ("403", failed),
    ] {
        let mut out = Vec::with_capacity(512);
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                black_box(&response).encode(&mut out);
                black_box(out.len())
            });
        });
    }
    // Building the redirect from the application's answer, then encoding it.
    let mut out = Vec::with_capacity(512);
    let not_leader = Err(ChangeError::NotLeader {
        leader: Some("127.0.0.1:17202".into()),
    });
    group.bench_function("answer_308", |b| {
        b.iter(|| {
            out.clear();
            router
                .answer(black_box(&change), black_box(&not_leader), Scheme::Http)
                .encode(&mut out);
            black_box(out.len())
        });
    });
    group.finish();
}

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_handshake");
    let proto =
        ClientHandshake::new(&path(), "127.0.0.1:17201", Limits::default()).expect("authority");
    let mut out = Vec::with_capacity(256);
    group.bench_function("encode_request", |b| {
        b.iter(|| {
            out.clear();
            black_box(&proto).encode_request(&mut out);
            black_box(out.len())
        });
    });
    let mut with_tail = OUR_101.to_vec();
    with_tail.resize(OUR_101.len() + 4096, 0x42);
    // The 4 KiB of Raft bytes behind the head are not scanned: same time as without them.
    for (name, response) in [
        ("decode_response/ours", OUR_101),
        ("decode_response/go", GO_101),
        ("decode_response/ours_4k_tail", &with_tail[..]),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || proto.clone(),
                |handshake| match handshake.decode_response(black_box(response)) {
                    Ok(Decoded::Complete { value, consumed }) => {
                        black_box(value.tail);
                        consumed
                    }
                    _ => unreachable!(),
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn decode_response(buf: &[u8]) -> ResponseHead<'_> {
    match ResponseDecoder::new(Limits::default()).decode(buf) {
        Ok(Decoded::Complete { value, .. }) => value,
        other => panic!("response did not decode: {other:?}"),
    }
}

/// One join as the driver runs it: the first request goes to a follower, which redirects to the
/// leader (308), which applies the change (200).
fn join_round(path: &RaftPath, deadline: Instant, now: Instant) -> bool {
    let mut client = MembershipClient::new(
        ChangeKind::Join,
        path,
        "3",
        "127.0.0.1:17103",
        "127.0.0.1:17201",
        deadline,
    )
    .expect("valid input");
    for response in [GO_308, GO_200] {
        let Output::Transmit(transmit) = client.poll_output() else {
            unreachable!()
        };
        black_box(&transmit);
        let mut decoder = ResponseDecoder::new(Limits::default());
        let Ok(Decoded::Complete { value, .. }) = decoder.decode(black_box(response)) else {
            unreachable!()
        };
        client.handle_response(now, &value, b"");
    }
    matches!(client.poll_output(), Output::Done(Ok(())))
}

fn membership(c: &mut Criterion) {
    let mut group = c.benchmark_group("membership_join_round");
    let path = path();
    let now = Instant::now();
    let deadline = now + Duration::from_secs(3600);
    assert!(join_round(&path, deadline, now));
    group.bench_function("308_then_200", |b| {
        b.iter(|| join_round(&path, deadline, now));
    });
    // The same round with the two responses decoded once, outside the measurement: the
    // machine alone (request encoding, redirect resolution, state changes).
    let redirect = decode_response(GO_308);
    let ok = decode_response(GO_200);
    group.bench_function("308_then_200_predecoded", |b| {
        b.iter(|| {
            let mut client = MembershipClient::new(
                ChangeKind::Join,
                &path,
                "3",
                "127.0.0.1:17103",
                "127.0.0.1:17201",
                deadline,
            )
            .expect("valid input");
            for head in [&redirect, &ok] {
                let Output::Transmit(transmit) = client.poll_output() else {
                    unreachable!()
                };
                black_box(&transmit);
                client.handle_response(now, black_box(head), b"");
            }
            matches!(client.poll_output(), Output::Done(Ok(())))
        });
    });
    group.finish();
}

mod group {
    // `criterion_group!` defines an undocumented public function.
    #![allow(missing_docs)]
    use super::{
        Criterion, Duration, decode_linear, handshake, membership, request_decode, response_encode,
        route,
    };

    criterion::criterion_group! {
        name = benches;
        // Shorter than criterion's 3 s + 5 s per benchmark: the whole file runs in about two
        // minutes, and these functions take nanoseconds to microseconds.
        config = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        targets = request_decode, decode_linear, route, response_encode, handshake, membership
    }
}

criterion_main!(group::benches);
