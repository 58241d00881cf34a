//! The client side: dialing Raft connections and sending membership requests.

use std::io;
use std::time::Duration;

use futures_util::{AsyncReadExt, AsyncWriteExt};
use rafthttp_core::MembershipError as CoreError;
use rafthttp_core::membership::{
    MAX_ERROR_BODY, MembershipClient, Output, Transmit, TransportStage,
};
use rafthttp_core::{
    BodyFraming, ChangeKind, ClientHandshake, Decoded, Limits, RaftPath, ResponseDecoder,
};

use crate::config::ClientConfig;
use crate::error::{DialError, MembershipError};
use crate::handler::Upgraded;
use crate::prefix::Prefix;
use crate::time;
use crate::{Dialer, Runtime};

/// Opens a Raft connection to `authority`: connects with `dialer`, sends the upgrade request
/// for `path` and waits for `101 Switching Protocols`. One deadline, `timeout` from now, covers
/// connect and handshake (the Go client bounds only the connect and can block forever on a
/// silent server). Bytes that arrived behind the 101 are returned in the prefix; none are lost.
///
/// # Errors
/// [`DialError`]; [`DialError::Timeout`] when the deadline passed.
pub async fn dial<R: Runtime, D: Dialer>(
    rt: &R,
    dialer: &D,
    path: &RaftPath,
    authority: &str,
    timeout: Duration,
    config: &ClientConfig,
) -> Result<Upgraded<D::Conn>, DialError> {
    let mut handshake =
        ClientHandshake::new(path, authority, config.limits)?.with_headers(config.headers.clone());
    let deadline = time::after(rt, timeout);
    let attempt = async {
        let mut conn = dialer
            .connect(authority)
            .await
            .map_err(DialError::Connect)?;
        let mut request = Vec::new();
        handshake.encode_request(&mut request);
        conn.write_all(&request).await.map_err(DialError::Send)?;
        conn.flush().await.map_err(DialError::Send)?;
        let mut buf = Vec::new();
        loop {
            if let Decoded::Complete { consumed, .. } = handshake.decode_response(&buf)? {
                buf.drain(..consumed);
                return Ok::<_, DialError>(Upgraded {
                    io: conn,
                    prefix: Prefix::new(buf),
                });
            }
            read_some(&mut conn, &mut buf)
                .await
                .map_err(DialError::Receive)?;
        }
    };
    let upgraded = time::until(rt, deadline, attempt)
        .await
        .map_err(|time::Elapsed| DialError::Timeout(timeout))??;
    tracing::debug!(%authority, "raft connection dialed");
    Ok(upgraded)
}

/// Reads once, appending to `buf`; the end of the stream is an error here.
async fn read_some<C: futures_io::AsyncRead + Unpin>(
    conn: &mut C,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    let mut chunk = [0u8; 2048];
    match conn.read(&mut chunk).await? {
        0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before the response",
        )),
        n => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
    }
}

/// Asks the node at `target` to apply a membership change for server `id` at `address`, like
/// the Go package's `ChangeMembership`: follows redirects to the leader, retries while the
/// leader is unknown (503) and, behind a redirect, after a connection failure (a follower may
/// still point at a leader that just died), all within `timeout`. Waits between attempts are
/// jittered.
///
/// A TLS dialer (`scheme() == https`) follows `http` and `https` Locations alike, over TLS, as
/// the Go client does; a plain one refuses an `https` Location.
///
/// # Errors
/// [`MembershipError`]: the status and body the cluster answered with, a transport error, or
/// a timeout.
#[allow(clippy::too_many_arguments)]
pub async fn change_membership<R: Runtime, D: Dialer>(
    rt: &R,
    dialer: &D,
    kind: ChangeKind,
    path: &RaftPath,
    id: &str,
    address: &str,
    target: &str,
    timeout: Duration,
    config: &ClientConfig,
) -> Result<(), MembershipError> {
    let deadline = time::after(rt, timeout);
    let limits = config.limits;
    let mut client = MembershipClient::new(kind, path, id, address, target, deadline)?
        .with_scheme(dialer.scheme())
        .with_backoff(config.first_backoff, config.max_backoff)
        .with_jitter(jitter_seed())
        .with_headers(config.headers.clone());
    // The last transport failure, handed back with its `io::Error` if it ends the call.
    let mut last_io = None;
    loop {
        match client.poll_output() {
            Output::Done(result) => {
                match &result {
                    Ok(()) => tracing::info!(%kind, %id, %target, "membership change accepted"),
                    Err(error @ CoreError::Scheme { .. }) => {
                        tracing::warn!(%kind, %id, %target, %error, "membership redirect refused");
                    }
                    Err(error) => {
                        tracing::info!(%kind, %id, %target, %error, "membership change failed");
                    }
                }
                return result.map_err(|error| match (error, last_io) {
                    (
                        CoreError::Transport {
                            kind, method, url, ..
                        },
                        Some(source),
                    ) => MembershipError::Io {
                        kind,
                        method,
                        url: url.into(),
                        source,
                    },
                    (error, _) => MembershipError::from(error),
                });
            }
            Output::Timeout(at) => {
                rt.sleep_until(at).await;
                client.handle_timeout(rt.now().max(at));
            }
            Output::Transmit(transmit) => {
                let exchange = exchange(rt, dialer, &mut client, &transmit, limits);
                match time::until(rt, deadline, exchange).await {
                    Ok(Ok(())) => {}
                    Ok(Err((stage, source))) => {
                        tracing::debug!(%kind, %id, url = %client.url(), %stage, %source, "membership request failed");
                        client.handle_transport_error(rt.now(), stage, &source.to_string());
                        last_io = Some(source);
                    }
                    Err(time::Elapsed) => client.handle_timeout(rt.now().max(deadline)),
                }
            }
        }
    }
}

/// A seed for the retry jitter: the core has no randomness, and std's hasher keys are random
/// per process and per `RandomState`.
fn jitter_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Sends one request on a new connection and feeds the response to the machine. A failure
/// below HTTP comes back with the stage it happened in.
async fn exchange<R: Runtime, D: Dialer>(
    rt: &R,
    dialer: &D,
    client: &mut MembershipClient,
    transmit: &Transmit,
    limits: Limits,
) -> Result<(), (TransportStage, io::Error)> {
    let stage = |stage| move |error| (stage, error);
    let mut conn = dialer
        .connect(&transmit.authority)
        .await
        .map_err(stage(TransportStage::Connect))?;
    conn.write_all(&transmit.request)
        .await
        .map_err(stage(TransportStage::Send))?;
    conn.flush().await.map_err(stage(TransportStage::Send))?;
    let mut buf = Vec::new();
    let mut decoder = ResponseDecoder::new(limits);
    let (consumed, status, framing) = loop {
        match decoder.decode(&buf) {
            Ok(Decoded::Complete { value, consumed }) => {
                break (consumed, value.status(), value.body_framing());
            }
            Ok(Decoded::Incomplete) => read_some(&mut conn, &mut buf)
                .await
                .map_err(stage(TransportStage::Receive))?,
            Err(error) => {
                client.handle_malformed(error);
                return Ok(());
            }
        }
    };
    // Only failures have a body worth reading, and only its start goes into the message. A
    // success is not held up by a body the server does not finish or close.
    let want = match framing {
        _ if status == 200 => 0,
        BodyFraming::Empty => 0,
        BodyFraming::Length(n) => usize::try_from(n).unwrap_or(usize::MAX).min(MAX_ERROR_BODY),
        _ => MAX_ERROR_BODY,
    };
    // A chunked body ends at its last chunk, even on a connection the server keeps open.
    let chunked_done = |buf: &[u8]| framing == BodyFraming::Chunked && dechunk(&buf[consumed..]).1;
    while buf.len() - consumed < want && !chunked_done(&buf) {
        if read_some(&mut conn, &mut buf).await.is_err() {
            break;
        }
    }
    let body_end = buf.len().min(consumed + want);
    let body = match framing {
        BodyFraming::Chunked => dechunk(&buf[consumed..body_end]).0,
        _ => buf[consumed..body_end].to_vec(),
    };
    // The head is decoded again from the same bytes: it borrows `buf`, which grew above.
    if let Ok(Decoded::Complete { value, .. }) = ResponseDecoder::new(limits).decode(&buf) {
        client.handle_response(rt.now(), &value, &body);
    }
    Ok(())
}

/// Best-effort decoding of a (possibly cut) chunked body, for error messages.
///
/// Returns the data and whether nothing more is worth reading: the last chunk arrived or the
/// framing is broken.
fn dechunk(mut data: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap_or("");
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return (out, true);
        };
        if size == 0 {
            return (out, true);
        }
        data = &data[line_end + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        data = data.get(take + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunk_reads_chunks_and_stops_at_the_end_or_a_cut() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            (b"hello world".to_vec(), true)
        );
        assert_eq!(dechunk(b"5;x=y\r\nhel"), (b"hel".to_vec(), false));
        assert_eq!(dechunk(b"5\r\nhello\r\n"), (b"hello".to_vec(), false));
        assert_eq!(dechunk(b"zz\r\n"), (Vec::new(), true));
    }
}
