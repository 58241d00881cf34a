//! Replaying the bytes that arrived behind an HTTP head.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

/// Bytes read past an HTTP head that belong to the Raft stream: they are handed out before
/// anything read from the connection. Runtime adapters call [`Prefix::read_into`] first in their
/// `poll_read`; [`Prefixed`] does that for futures-io streams.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Prefix {
    bytes: Vec<u8>,
    pos: usize,
}

impl Prefix {
    /// A prefix holding `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Bytes not handed out yet.
    pub fn remaining(&self) -> &[u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    /// Whether every byte was handed out.
    pub fn is_empty(&self) -> bool {
        self.remaining().is_empty()
    }

    /// Copies as many remaining bytes as fit into `dst`; returns how many. Frees the buffer once
    /// it is drained.
    pub fn read_into(&mut self, dst: &mut [u8]) -> usize {
        let src = self.remaining();
        let n = src.len().min(dst.len());
        dst[..n].copy_from_slice(&src[..n]);
        self.pos += n;
        if self.pos == self.bytes.len() && self.pos != 0 {
            *self = Self::default();
        }
        n
    }
}

/// A futures-io stream that first yields a [`Prefix`].
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Prefix,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `inner`, read after `prefix`.
    pub fn new(prefix: Prefix, inner: S) -> Self {
        Self { prefix, inner }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, mutably. Reading from it directly skips the prefix.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The prefix not read yet and the stream.
    pub fn into_parts(self) -> (Prefix, S) {
        (self.prefix, self.inner)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() && !buf.is_empty() {
            return Poll::Ready(Ok(this.prefix.read_into(buf)));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::AsyncReadExt;

    #[test]
    fn prefix_is_read_first_then_the_stream() {
        let mut s = Prefixed::new(Prefix::new(b"abc".to_vec()), &b"def"[..]);
        let mut out = Vec::new();
        futures_executor::block_on(s.read_to_end(&mut out)).unwrap();
        assert_eq!(out, b"abcdef");
    }

    #[test]
    fn prefix_hands_out_in_pieces() {
        let mut p = Prefix::new(b"hello".to_vec());
        let mut two = [0; 2];
        assert_eq!(p.read_into(&mut two), 2);
        assert_eq!(&two, b"he");
        assert_eq!(p.remaining(), b"llo");
        assert_eq!(p.read_into(&mut []), 0);
        let mut rest = [0; 8];
        assert_eq!(p.read_into(&mut rest), 3);
        assert!(p.is_empty());
        assert_eq!(p.read_into(&mut rest), 0);
    }
}
