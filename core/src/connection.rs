//! One server connection as a sans-IO machine, in the shape of h11's `Connection`: bytes go
//! in, events come out, and the bytes to send are written into a buffer the caller owns.

use crate::error::RequestError;
use crate::head::{Decoded, Limits, RequestDecoder, RequestHead};
use crate::server::{CONTINUE, Response};

/// What the connection needs next, from [`ServerConnection::poll_event`].
#[derive(Debug)]
#[must_use]
pub enum Event<'b> {
    /// Read more from the connection, then call [`ServerConnection::handle_data`] (or
    /// [`ServerConnection::handle_eof`]).
    NeedData,
    /// A complete request, body included. Answer it with [`ServerConnection::respond`], or
    /// [`ServerConnection::upgrade`] to hand the connection to Raft.
    Request(Request<'b>),
    /// Close the connection (after writing what `poll_event` wrote to the output buffer).
    Close,
}

/// A request with its body, borrowed from the connection's buffer.
#[derive(Debug)]
pub struct Request<'b> {
    /// The head.
    pub head: RequestHead<'b>,
    /// The body, read whole (at most [`Limits::max_body`] bytes; usually empty: joins and
    /// leaves carry none).
    pub body: &'b [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the next request head.
    Head,
    /// The head (of `head_len` bytes at the start of the buffer) asks for a body of `body_len`
    /// bytes, not all here yet.
    Body { head_len: usize, body_len: usize },
    /// A request was handed out and waits for its answer.
    Answer {
        head_len: usize,
        body_len: usize,
        head_only: bool,
        keep_alive: bool,
    },
    /// No more requests on this connection: it closes once the output is written.
    Closing,
    /// Handed to Raft.
    Upgraded,
}

/// The HTTP/1.1 side of one server connection, sans-IO.
///
/// It owns what a minimal server must get right: keep-alive and `HEAD`, the interim
/// `100 Continue` for a client that waits for it, request bodies read within
/// [`Limits::max_body`] (413 above, before reading any), chunked bodies refused (411),
/// malformed and oversized heads refused (400, 431), closing after a response that says so or
/// a client that asks for it, and the bytes behind an upgrade handed back. What to answer a
/// request is the caller's: its [`Router`](crate::Router), authorization and application.
///
/// The caller's loop is read, feed, write:
///
/// ```
/// use rafthttp_core::{Limits, Response};
/// use rafthttp_core::connection::{Event, ServerConnection};
///
/// let mut conn = ServerConnection::new(Limits::default());
/// let mut out = Vec::new();
/// let mut input: &[&[u8]] = &[b"POST /raft?id=2&addr", b"ess=a:1 HTTP/1.1\r\nHost: a\r\n\r\n"];
/// loop {
///     out.clear();
///     match conn.poll_event(&mut out) {
///         Event::NeedData => match input.split_first() {
///             Some((bytes, rest)) => {
///                 conn.handle_data(bytes); // bytes read from the socket
///                 input = rest;
///             }
///             None => conn.handle_eof(),
///         },
///         Event::Request(request) => {
///             assert_eq!(request.head.method(), "POST");
///             conn.respond(&Response::ok(), &mut out);
///             assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n")); // write it
///         }
///         Event::Close => break,
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ServerConnection {
    limits: Limits,
    decoder: RequestDecoder,
    /// Received and not consumed: the current request, then whatever followed it.
    buf: Vec<u8>,
    state: State,
    eof: bool,
    continue_sent: bool,
    served: u64,
}

impl ServerConnection {
    /// A new connection with `limits` on heads and bodies.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            decoder: RequestDecoder::new(limits),
            buf: Vec::new(),
            state: State::Head,
            eof: false,
            continue_sent: false,
            served: 0,
        }
    }

    /// Bytes read from the connection.
    pub fn handle_data(&mut self, data: &[u8]) {
        if !matches!(self.state, State::Closing | State::Upgraded) {
            self.buf.extend_from_slice(data);
        }
    }

    /// The client closed its side: no more bytes come.
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    /// Whether the connection waits between requests with nothing of the next one received:
    /// a server may close it when shutting down, and waits for it with its idle timeout.
    pub fn is_idle(&self) -> bool {
        self.state == State::Head && self.buf.is_empty()
    }

    /// Requests answered so far.
    pub fn requests_served(&self) -> u64 {
        self.served
    }

    /// Bytes received and held: the current request and what followed it. Bounded by the head
    /// limit plus the body limit plus what the caller fed beyond them in one piece.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// What to do next. Bytes to send (an interim `100 Continue`, the refusal of a request the
    /// connection cannot read) are appended to `out`: write them before acting on the event.
    /// Call it after construction and after every other call; a [`Event::Request`] not yet
    /// answered is handed out again.
    pub fn poll_event(&mut self, out: &mut Vec<u8>) -> Event<'_> {
        match self.state {
            State::Closing | State::Upgraded => Event::Close,
            State::Head => self.poll_head(out),
            State::Body { head_len, body_len } => {
                if self.buf.len() >= head_len + body_len {
                    self.request(head_len, body_len)
                } else if self.eof {
                    self.state = State::Closing;
                    Event::Close
                } else {
                    Event::NeedData
                }
            }
            State::Answer {
                head_len, body_len, ..
            } => self.request(head_len, body_len),
        }
    }

    fn poll_head(&mut self, out: &mut Vec<u8>) -> Event<'_> {
        let (head_len, body) = match self.decoder.decode(&self.buf) {
            Ok(Decoded::Incomplete) if self.eof => {
                // The client went away between requests or inside one: nothing to answer.
                self.state = State::Closing;
                return Event::Close;
            }
            Ok(Decoded::Incomplete) => return Event::NeedData,
            Err(error) => return self.refuse(&error, out),
            Ok(Decoded::Complete { value, consumed }) => (
                consumed,
                value.body_len().map(|len| (len, value.expects_continue())),
            ),
        };
        let (body_len, expects_continue) = match body {
            Err(error) => return self.refuse(&error, out),
            Ok((len, _)) if len > self.limits.max_body => {
                let limit = self.limits.max_body;
                return self.refuse(&RequestError::BodyTooLarge { limit }, out);
            }
            // Within `max_body`, which a `usize` holds wherever it was configured.
            Ok((len, expects)) => (usize::try_from(len).unwrap_or(usize::MAX), expects),
        };
        if self.buf.len() >= head_len + body_len {
            return self.request(head_len, body_len);
        }
        // A client that sent `Expect: 100-continue` waits (curl: 1 s) for this before sending
        // the body.
        if expects_continue && !self.continue_sent {
            out.extend_from_slice(CONTINUE);
            self.continue_sent = true;
        }
        self.state = State::Body { head_len, body_len };
        if self.eof {
            self.state = State::Closing;
            return Event::Close;
        }
        Event::NeedData
    }

    /// Hands out the request at the start of the buffer (its head decoded again when a body
    /// had to be waited for: the first decode's view could not be kept).
    fn request(&mut self, head_len: usize, body_len: usize) -> Event<'_> {
        let Ok(Decoded::Complete { value: head, .. }) =
            RequestDecoder::new(self.limits).decode(&self.buf[..head_len])
        else {
            // The same bytes decoded before; this cannot fail.
            self.state = State::Closing;
            return Event::Close;
        };
        self.state = State::Answer {
            head_len,
            body_len,
            head_only: head.method() == "HEAD",
            keep_alive: head.keep_alive(),
        };
        Event::Request(Request {
            head,
            body: &self.buf[head_len..head_len + body_len],
        })
    }

    /// Answers a request the connection cannot read, then closes.
    fn refuse(&mut self, error: &RequestError, out: &mut Vec<u8>) -> Event<'_> {
        Response::error(error).encode(out);
        self.state = State::Closing;
        Event::Close
    }

    /// Answers the request handed out by [`poll_event`](Self::poll_event): appends the
    /// response to `out` (without a body for `HEAD`). The connection then reads the next request,
    /// unless the response closes it or the client asked to close. Ignored when no request
    /// waits for an answer.
    pub fn respond(&mut self, response: &Response, out: &mut Vec<u8>) {
        let State::Answer {
            head_len,
            body_len,
            head_only,
            keep_alive,
        } = self.state
        else {
            return;
        };
        if head_only {
            response.encode_head(out);
        } else {
            response.encode(out);
        }
        self.buf.drain(..head_len + body_len);
        self.served += 1;
        self.continue_sent = false;
        self.decoder = RequestDecoder::new(self.limits);
        self.state = if response.closes_connection() || !keep_alive || response.is_upgrade() {
            State::Closing
        } else {
            State::Head
        };
    }

    /// Upgrades the connection for the request handed out: appends `101 Switching Protocols`
    /// to `out` and returns the bytes received behind the request, the first bytes of the Raft
    /// stream. `None` (and nothing written) when no request waits for an answer.
    pub fn upgrade(&mut self, out: &mut Vec<u8>) -> Option<Vec<u8>> {
        let State::Answer {
            head_len, body_len, ..
        } = self.state
        else {
            return None;
        };
        Response::switching_protocols().encode(out);
        self.served += 1;
        self.state = State::Upgraded;
        let mut tail = std::mem::take(&mut self.buf);
        tail.drain(..head_len + body_len);
        Some(tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` whole, answers every request with `answer`, and returns what was written
    /// and the requests seen (method, target, body).
    fn run(
        input: &[u8],
        limits: Limits,
        answer: impl Fn(&Request<'_>) -> Option<Response>,
    ) -> (String, Vec<(String, String, Vec<u8>)>) {
        let mut conn = ServerConnection::new(limits);
        conn.handle_data(input);
        conn.handle_eof();
        let mut written = Vec::new();
        let mut seen = Vec::new();
        for _ in 0..100 {
            let mut out = Vec::new();
            match conn.poll_event(&mut out) {
                Event::NeedData => panic!("all input was given"),
                Event::Close => {
                    written.extend_from_slice(&out);
                    return (String::from_utf8(written).unwrap(), seen);
                }
                Event::Request(request) => {
                    seen.push((
                        request.head.method().to_owned(),
                        request.head.target().to_owned(),
                        request.body.to_vec(),
                    ));
                    match answer(&request) {
                        Some(response) => conn.respond(&response, &mut out),
                        None => {
                            let tail = conn.upgrade(&mut out).unwrap();
                            written.extend_from_slice(&out);
                            written.extend_from_slice(b"|tail:");
                            written.extend_from_slice(&tail);
                            continue;
                        }
                    }
                }
            }
            written.extend_from_slice(&out);
        }
        panic!("no end");
    }

    #[test]
    fn keep_alive_pipelining_head_and_close() {
        let input = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n";
        let (written, seen) = run(input, Limits::default(), |_| Some(Response::not_found()));
        let targets: Vec<_> = seen.iter().map(|s| s.1.as_str()).collect();
        assert_eq!(
            targets,
            ["/a", "/b", "/c"],
            "nothing after Connection: close"
        );
        assert_eq!(written.matches("HTTP/1.1 404").count(), 3);
        assert_eq!(
            written.matches("404 page not found").count(),
            2,
            "no body for HEAD"
        );
    }

    #[test]
    fn bodies_are_read_and_handed_out_within_the_limit() {
        let input = b"PUT /kv HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\nHost: x\r\n\r\n";
        let (_, seen) = run(input, Limits::default(), |_| Some(Response::ok()));
        assert_eq!(seen[0].2, b"hello");
        assert_eq!(seen[1].1, "/next");
        let too_big = b"PUT /kv HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n";
        let (written, seen) = run(too_big, Limits::default().with_max_body(10), |_| None);
        assert!(seen.is_empty());
        assert!(written.starts_with("HTTP/1.1 413 "), "{written}");
        assert!(written.contains("Connection: close"), "{written}");
    }

    #[test]
    fn refusals_close_the_connection() {
        for (input, status) in [
            (
                &b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
                "411",
            ),
            (b"\x16\x03\x01", "400"),
            (b"BAD\r\n\r\n", "400"),
        ] {
            let (written, seen) = run(input, Limits::default(), |_| Some(Response::ok()));
            assert!(seen.is_empty());
            assert!(
                written.starts_with(&format!("HTTP/1.1 {status} ")),
                "{written}"
            );
        }
        let long = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(9000)
        );
        let (written, _) = run(long.as_bytes(), Limits::default(), |_| Some(Response::ok()));
        assert!(written.starts_with("HTTP/1.1 431 "), "{written}");
    }

    #[test]
    fn continue_is_sent_once_before_a_missing_body() {
        let mut conn = ServerConnection::new(Limits::default());
        conn.handle_data(b"POST /raft?id=1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
        let mut out = Vec::new();
        assert!(matches!(conn.poll_event(&mut out), Event::NeedData));
        assert_eq!(out, CONTINUE);
        out.clear();
        conn.handle_data(b"ab");
        assert!(matches!(conn.poll_event(&mut out), Event::NeedData));
        assert!(out.is_empty(), "only once");
        conn.handle_data(b"c");
        let Event::Request(request) = conn.poll_event(&mut out) else {
            panic!("request");
        };
        assert_eq!(request.body, b"abc");
    }

    #[test]
    fn upgrade_hands_back_the_bytes_behind_the_head() {
        let input = b"GET /raft HTTP/1.1\r\nHost: x\r\nUpgrade: raft\r\n\r\nraft bytes";
        let (written, _) = run(input, Limits::default(), |_| None);
        assert!(written.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(written.ends_with("\r\n\r\n|tail:raft bytes"), "{written}");
    }

    #[test]
    fn eof_inside_a_head_or_body_closes_without_an_answer() {
        let (written, seen) = run(b"GET / HT", Limits::default(), |_| Some(Response::ok()));
        assert!(written.is_empty() && seen.is_empty());
        let cut = b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc";
        let (written, seen) = run(cut, Limits::default(), |_| Some(Response::ok()));
        assert!(written.is_empty() && seen.is_empty());
    }

    #[test]
    fn idle_only_between_requests_with_nothing_received() {
        let mut conn = ServerConnection::new(Limits::default());
        assert!(conn.is_idle());
        conn.handle_data(b"G");
        assert!(!conn.is_idle());
    }
}
