//! Reading one response on the client side: interim `1xx` responses skipped, the head decoded
//! once, the start of a body kept (de-chunked) for error messages.

use crate::error::ResponseError;
use crate::head::{BodyFraming, Decoded, Limits, ResponseDecoder};

/// What a client keeps of a response: enough to act on it and to report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Final {
    pub(crate) status: u16,
    pub(crate) location: Option<Vec<u8>>,
    /// The start of the body, at most the reader's `max_body` bytes (none for a 200).
    pub(crate) body: Vec<u8>,
}

/// Where the reader is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Reading `left` more bytes of a body (or until the connection closes, `None`).
    Raw { left: Option<u64> },
    /// Before a chunk-size line.
    ChunkSize,
    /// Inside a chunk's data, `left` bytes to go, then its CRLF.
    ChunkData { left: u64 },
    /// The CRLF after a chunk's data.
    ChunkEnd,
}

/// A sans-IO reader of one HTTP/1.1 response, fed the bytes of a connection as they arrive.
///
/// - Interim responses (`100`, `103`, ...) are skipped, however many, as long as their heads
///   together stay within the head limit; `101` counts as final (a membership request must not
///   be upgraded; a dial reads its `101` with [`ClientHandshake`](crate::ClientHandshake)).
/// - A `200` is complete at its head: a success is never held up by a body.
/// - Any other status keeps the start of its body, at most `max_body` bytes, by
///   `Content-Length`, chunked transfer coding (de-chunked; extensions and trailers skipped) or
///   until the connection closes.
///
/// Buffered bytes stay bounded by the head limit plus one read.
#[derive(Debug, Clone)]
pub(crate) struct ResponseReader {
    limits: Limits,
    max_body: usize,
    decoder: ResponseDecoder,
    /// Received and not yet used.
    buf: Vec<u8>,
    /// Bytes of interim heads skipped so far.
    interim: usize,
    head: Option<(u16, Option<Vec<u8>>)>,
    body_state: Body,
    body: Vec<u8>,
}

impl ResponseReader {
    pub(crate) fn new(limits: Limits, max_body: usize) -> Self {
        Self {
            limits,
            max_body,
            decoder: ResponseDecoder::new(limits),
            buf: Vec::new(),
            interim: 0,
            head: None,
            body_state: Body::Raw { left: Some(0) },
            body: Vec::new(),
        }
    }

    /// Feeds bytes read from the connection. `Some` once the response is known.
    ///
    /// # Errors
    /// [`ResponseError`] for a malformed or over-limit head (interim heads included).
    pub(crate) fn receive(&mut self, data: &[u8]) -> Result<Option<Final>, ResponseError> {
        self.buf.extend_from_slice(data);
        while self.head.is_none() {
            let (status, location, framing, consumed) = match self.decoder.decode(&self.buf)? {
                Decoded::Incomplete => return Ok(None),
                Decoded::Complete { value, consumed } => (
                    value.status(),
                    value.headers().get("location").map(<[u8]>::to_vec),
                    value.body_framing(),
                    consumed,
                ),
            };
            self.buf.drain(..consumed);
            if (100..200).contains(&status) && status != 101 {
                self.interim += consumed;
                if self.interim > self.limits.max_head_bytes {
                    return Err(ResponseError::HeadTooLarge {
                        limit: self.limits.max_head_bytes,
                    });
                }
                self.decoder = ResponseDecoder::new(self.limits);
                continue;
            }
            self.head = Some((status, location));
            self.body_state = match framing {
                _ if status == 200 => Body::Raw { left: Some(0) },
                BodyFraming::Empty => Body::Raw { left: Some(0) },
                BodyFraming::Length(n) => Body::Raw { left: Some(n) },
                BodyFraming::Chunked => Body::ChunkSize,
                BodyFraming::UntilClose => Body::Raw { left: None },
            };
        }
        Ok(self.read_body())
    }

    /// The connection ended. The response so far, if its head arrived (a body cut short is
    /// reported as far as it came); `None` when the head never completed.
    pub(crate) fn eof(&mut self) -> Option<Final> {
        let (status, location) = self.head.take()?;
        Some(Final {
            status,
            location,
            body: std::mem::take(&mut self.body),
        })
    }

    /// Moves body bytes from the buffer; `Some` once the body ended or enough of it is kept.
    fn read_body(&mut self) -> Option<Final> {
        loop {
            if self.body.len() >= self.max_body {
                self.body.truncate(self.max_body);
                return self.eof();
            }
            match self.body_state {
                Body::Raw { left: Some(0) } => return self.eof(),
                Body::Raw { left } => {
                    let want =
                        left.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
                    let take = want.min(self.buf.len());
                    if take == 0 {
                        return None;
                    }
                    self.keep(take);
                    self.body_state = Body::Raw {
                        left: left.map(|n| n - take as u64),
                    };
                }
                Body::ChunkSize => match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((consumed, 0))) => {
                        // The last chunk: trailers, if any, are not needed.
                        self.buf.drain(..consumed);
                        return self.eof();
                    }
                    Ok(httparse::Status::Complete((consumed, size))) => {
                        self.buf.drain(..consumed);
                        self.body_state = Body::ChunkData { left: size };
                    }
                    Ok(httparse::Status::Partial) => {
                        // A size line longer than a head is not a size line.
                        if self.buf.len() > self.limits.max_head_bytes {
                            return self.eof();
                        }
                        return None;
                    }
                    // Broken framing: report what arrived.
                    Err(_) => return self.eof(),
                },
                Body::ChunkData { left } => {
                    let want = usize::try_from(left).unwrap_or(usize::MAX);
                    let take = want.min(self.buf.len());
                    if take == 0 && left > 0 {
                        return None;
                    }
                    self.keep(take);
                    let left = left - take as u64;
                    self.body_state = if left == 0 {
                        Body::ChunkEnd
                    } else {
                        Body::ChunkData { left }
                    };
                }
                Body::ChunkEnd => match self.buf.get(..2) {
                    None => return None,
                    Some(b"\r\n") => {
                        self.buf.drain(..2);
                        self.body_state = Body::ChunkSize;
                    }
                    Some(_) => return self.eof(),
                },
            }
        }
    }

    /// Moves `n` bytes from the buffer to the kept body (past `max_body` they are dropped).
    fn keep(&mut self, n: usize) {
        let room = self.max_body.saturating_sub(self.body.len()).min(n);
        self.body.extend_from_slice(&self.buf[..room]);
        self.buf.drain(..n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(
        bytes: &[u8],
        max_body: usize,
    ) -> (Result<Option<Final>, ResponseError>, Option<Final>) {
        let mut reader = ResponseReader::new(Limits::default(), max_body);
        let result = reader.receive(bytes);
        let at_eof = reader.eof();
        (result, at_eof)
    }

    fn fin(status: u16, body: &[u8]) -> Option<Final> {
        Some(Final {
            status,
            location: None,
            body: body.to_vec(),
        })
    }

    #[test]
    fn interim_responses_are_skipped() {
        let bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(read(bytes, 100).0, Ok(fin(200, b"")));
    }

    #[test]
    fn interim_heads_count_against_the_head_limit() {
        let mut bytes = Vec::new();
        for _ in 0..400 {
            bytes.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        assert_eq!(
            read(&bytes, 100).0,
            Err(ResponseError::HeadTooLarge { limit: 8192 })
        );
    }

    #[test]
    fn bodies_by_length_chunks_and_close() {
        let length = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnopeEXTRA";
        assert_eq!(read(length, 100).0, Ok(fin(403, b"nope")));
        let chunked = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(read(chunked, 100).0, Ok(fin(403, b"abcde")));
        let close = b"HTTP/1.1 500 Oops\r\n\r\nuntil close";
        let (result, at_eof) = read(close, 100);
        assert_eq!(
            result,
            Ok(None),
            "the body runs until the connection closes"
        );
        assert_eq!(at_eof, fin(500, b"until close"));
    }

    #[test]
    fn bodies_stop_at_the_cap_and_cut_chunks_report_what_came() {
        let long = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\n0123456789";
        assert_eq!(read(long, 4).0, Ok(fin(403, b"0123")));
        let cut = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
        let (result, at_eof) = read(cut, 100);
        assert_eq!(result, Ok(None));
        assert_eq!(at_eof, fin(403, b"hel"));
        let broken = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(read(broken, 100).0, Ok(fin(403, b"")));
    }

    #[test]
    fn byte_by_byte_gives_the_same_answer() {
        let bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 308 Permanent Redirect\r\nLocation: http://b/raft\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
        let mut reader = ResponseReader::new(Limits::default(), 100);
        let mut got = None;
        let mut fed = 0;
        for &b in bytes.iter() {
            got = reader.receive(&[b]).unwrap();
            fed += 1;
            if got.is_some() {
                break;
            }
        }
        // Complete at the last chunk's size line: the empty trailer section is not needed.
        assert_eq!(&bytes[fed..], b"\r\n");
        assert_eq!(
            got,
            Some(Final {
                status: 308,
                location: Some(b"http://b/raft".to_vec()),
                body: b"ab".to_vec()
            })
        );
    }

    #[test]
    fn eof_before_a_head_is_nothing() {
        let mut reader = ResponseReader::new(Limits::default(), 100);
        assert_eq!(reader.receive(b"HTTP/1.1 200 O"), Ok(None));
        assert_eq!(reader.eof(), None);
    }
}
