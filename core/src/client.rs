//! Client side of the upgrade handshake.

use crate::error::{HandshakeError, InputError, ResponseError};
use crate::head::{Decoded, Limits, ResponseDecoder};
use crate::target::{ExtraHeaders, RaftPath, check_authority};

/// The client side of the upgrade handshake: writes the upgrade request, then decodes the
/// server's response into "upgraded" (with the bytes that followed the head) or a typed error.
///
/// ```
/// use rafthttp_core::{ClientHandshake, Decoded, Limits, RaftPath};
///
/// let path = RaftPath::new("/raft").unwrap();
/// let mut request = Vec::new();
/// let mut handshake = ClientHandshake::new(&path, "127.0.0.1:9000", Limits::default()).unwrap();
/// handshake.encode_request(&mut request);
/// assert!(request.starts_with(b"GET /raft HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n"));
///
/// // What the server sent back, read in one piece with the first Raft bytes behind it.
/// let received = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\n\r\nraft bytes";
/// match handshake.decode_response(received).unwrap() {
///     Decoded::Complete { value: upgraded, consumed } => {
///         assert_eq!(upgraded.tail, b"raft bytes");
///         assert_eq!(&received[consumed..], b"raft bytes");
///     }
///     Decoded::Incomplete => unreachable!("the head is complete"),
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    path: RaftPath,
    authority: Box<str>,
    headers: ExtraHeaders,
    limits: Limits,
    decoder: ResponseDecoder,
    /// Bytes at the start of the buffer taken by interim `1xx` responses, skipped.
    skip: usize,
}

/// A successful handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgraded<'b> {
    /// Bytes that arrived behind the 101 head: the first bytes of the Raft stream. They must be
    /// delivered before anything read from the connection afterwards.
    pub tail: &'b [u8],
}

impl ClientHandshake {
    /// A handshake for a Raft connection to `authority` (`host:port`, sent as `Host`).
    ///
    /// # Errors
    /// [`InputError::Authority`] when `authority` is not a valid `host[:port]`.
    pub fn new(path: &RaftPath, authority: &str, limits: Limits) -> Result<Self, InputError> {
        check_authority(authority)?;
        Ok(Self {
            path: path.clone(),
            authority: authority.into(),
            headers: ExtraHeaders::default(),
            limits,
            decoder: ResponseDecoder::new(limits),
            skip: 0,
        })
    }

    /// Appends the upgrade request to `out`.
    ///
    /// The Go client sends its own address as `Host` and no `Connection` header; we send the
    /// target's authority (proxies route on it) and `Connection: Upgrade` (RFC 9110 section 7.8).
    /// Go servers accept both.
    pub fn encode_request(&self, out: &mut Vec<u8>) {
        let mut head = String::with_capacity(96);
        for part in [
            "GET ",
            self.path.as_str(),
            " HTTP/1.1\r\nHost: ",
            &self.authority,
            "\r\nUpgrade: raft\r\nConnection: Upgrade\r\n",
        ] {
            head.push_str(part);
        }
        self.headers.encode_into(&mut head);
        head.push_str("\r\n");
        out.extend_from_slice(head.as_bytes());
    }

    /// Adds header fields to the upgrade request (credentials for the server's authorization
    /// hook, say).
    #[must_use]
    pub fn with_headers(mut self, headers: ExtraHeaders) -> Self {
        self.headers = headers;
        self
    }

    /// Decodes the server's response from the start of `buf` (all bytes received so far).
    ///
    /// On [`Decoded::Complete`] the connection is upgraded and `upgraded.tail` holds the bytes
    /// that followed the head. Like the Go client, a `101` must carry `Upgrade: raft` (the first
    /// `Upgrade` field, value compared exactly); `HTTP/1.0` responses are accepted. Interim
    /// responses (`100`, `103`, ...) before it are skipped, as long as their heads together stay
    /// within the head limit.
    ///
    /// # Errors
    /// [`HandshakeError`] for any other status, a missing `Upgrade`, or a malformed response.
    /// Errors are terminal.
    pub fn decode_response<'b>(
        &mut self,
        buf: &'b [u8],
    ) -> Result<Decoded<Upgraded<'b>>, HandshakeError> {
        let (status, upgrade, consumed) = loop {
            if self.skip > self.limits.max_head_bytes {
                let limit = self.limits.max_head_bytes;
                return Err(ResponseError::HeadTooLarge { limit }.into());
            }
            let rest = buf.get(self.skip..).unwrap_or_default();
            match self.decoder.decode(rest)? {
                Decoded::Incomplete => return Ok(Decoded::Incomplete),
                Decoded::Complete { value, consumed } => {
                    let status = value.status();
                    if (100..200).contains(&status) && status != 101 {
                        self.skip += consumed;
                        self.decoder = ResponseDecoder::new(self.limits);
                        continue;
                    }
                    break (status, value.headers().get("upgrade"), self.skip + consumed);
                }
            }
        };
        if status != 101 {
            return Err(HandshakeError::UnexpectedStatus { status });
        }
        if upgrade != Some(b"raft") {
            return Err(HandshakeError::MissingUpgrade);
        }
        let tail = buf.get(consumed..).unwrap_or_default();
        Ok(Decoded::Complete {
            value: Upgraded { tail },
            consumed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake() -> ClientHandshake {
        ClientHandshake::new(&RaftPath::default(), "a:1", Limits::default()).unwrap()
    }

    #[test]
    fn interim_responses_before_the_101_are_skipped() {
        let bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\n\r\nraft";
        // Fed as a growing buffer, byte by byte, as a reader would.
        let head_end = bytes.len() - 4;
        let mut hs = handshake();
        for end in 0..head_end {
            assert_eq!(
                hs.decode_response(&bytes[..end]),
                Ok(Decoded::Incomplete),
                "{end}"
            );
        }
        let Ok(Decoded::Complete { value, consumed }) = hs.decode_response(bytes) else {
            panic!("upgraded");
        };
        assert_eq!(value.tail, b"raft");
        assert_eq!(consumed, head_end);
    }

    #[test]
    fn endless_interim_responses_hit_the_head_limit() {
        let bytes = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(400);
        let mut hs = handshake();
        let error = hs.decode_response(&bytes).expect_err("too much");
        assert_eq!(
            error,
            HandshakeError::Response(ResponseError::HeadTooLarge { limit: 8192 })
        );
        assert_eq!(
            hs.decode_response(&bytes),
            Err(error),
            "errors are terminal"
        );
    }
}
