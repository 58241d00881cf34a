//! What TLS listeners share, whatever their TLS library.

use std::io;

use futures_io::{AsyncRead, AsyncWrite};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use rafthttp_core::server::plain_http_on_tls;

/// Bytes of a plain HTTP request read and dropped after answering it, at most.
const DRAIN_LIMIT: usize = 64 * 1024;

/// The first step of a TLS listener's handshake. `first` holds the first bytes the client sent,
/// peeked (still unread on `conn`). When they start a plain HTTP request rather than a TLS
/// record, this answers `400 Bad Request` with "Client sent an HTTP request to an HTTPS
/// server", as Go's TLS server does, closes the connection and fails; otherwise it does
/// nothing and the TLS handshake goes on.
///
/// Before closing it reads (and drops) what the client sent, up to 64 KiB, so that closing a
/// socket with unread bytes does not reset the connection before the client reads the answer.
/// The caller bounds the time (the handshake runs under the handler's idle timeout).
///
/// # Errors
/// [`io::ErrorKind::InvalidData`] after answering a plain HTTP request; a write error.
pub async fn refuse_plain_http<C>(first: &[u8], conn: &mut C) -> io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let Some(answer) = plain_http_on_tls(first) else {
        return Ok(());
    };
    tracing::debug!("plain HTTP request on a TLS port, answering Bad Request");
    conn.write_all(answer).await?;
    conn.close().await?;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < DRAIN_LIMIT {
        match conn.read(&mut sink).await {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "client sent an HTTP request to an HTTPS server",
    ))
}
