//! The client side: dialing Raft connections and sending membership requests.

use std::io;
use std::time::Duration;

use futures_util::{AsyncReadExt, AsyncWriteExt};
use rafthttp_core::MembershipError as CoreError;
use rafthttp_core::membership::{MembershipClient, Output, Transmit, TransportStage};
use rafthttp_core::{ChangeKind, ClientHandshake, Decoded, InputError, RaftPath};

use tracing::Instrument as _;

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
    let span = tracing::debug_span!("raft_dial", target = %authority);
    let started = rt.now();
    let result = time::until(rt, deadline, attempt)
        .instrument(span.clone())
        .await
        .map_err(|time::Elapsed| DialError::Timeout(timeout))
        .and_then(|result| result);
    let took = rt.now().saturating_duration_since(started);
    crate::measure::dial(result.is_ok(), took);
    let micros = micros(took);
    span.in_scope(|| match &result {
        Ok(_) => tracing::debug!(micros, "raft connection dialed"),
        Err(error) => tracing::debug!(micros, %error, "raft dial failed"),
    });
    result
}

fn micros(took: std::time::Duration) -> u64 {
    u64::try_from(took.as_micros()).unwrap_or(u64::MAX)
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

/// One join or leave, described by name, for [`change_membership`] (and the runtime crates'
/// free `change_membership`).
///
/// ```
/// use std::time::Duration;
/// use rafthttp_driver::ChangeMembership;
///
/// let join = ChangeMembership::join("3", "10.0.0.3:8080")
///     .target("10.0.0.1:8080") // any member: followers redirect to the leader
///     .timeout(Duration::from_secs(30))
///     .header("Authorization", "Bearer s3cret")
///     .unwrap();
/// let leave = ChangeMembership::leave("3").target("10.0.0.1:8080");
/// # drop((join, leave));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ChangeMembership {
    kind: ChangeKind,
    id: String,
    address: String,
    target: String,
    timeout: Duration,
    path: RaftPath,
    config: ClientConfig,
}

impl ChangeMembership {
    /// Server `id`, reachable at `address` (`host:port` of its HTTP endpoint), joins.
    pub fn join(id: &str, address: &str) -> Self {
        Self::new(ChangeKind::Join, id, address)
    }

    /// Server `id` leaves.
    pub fn leave(id: &str) -> Self {
        Self::new(ChangeKind::Leave, id, "")
    }

    fn new(kind: ChangeKind, id: &str, address: &str) -> Self {
        Self {
            kind,
            id: id.to_owned(),
            address: address.to_owned(),
            target: String::new(),
            timeout: Duration::from_secs(10),
            path: RaftPath::default(),
            config: ClientConfig::default(),
        }
    }

    /// The node to ask (`host:port`): any member; a follower redirects to the leader.
    pub fn target(mut self, target: &str) -> Self {
        target.clone_into(&mut self.target);
        self
    }

    /// The deadline of the whole call, redirects and retries included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The Raft path (default `/raft`).
    pub fn path(mut self, path: RaftPath) -> Self {
        self.path = path;
        self
    }

    /// The client configuration: head limits, backoff, header fields.
    pub fn config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self
    }

    /// Adds a header field to every request of the call, redirects included.
    ///
    /// # Errors
    /// See [`ExtraHeaders::with`](rafthttp_core::ExtraHeaders::with).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, InputError> {
        self.config = self.config.with_header(name, value)?;
        Ok(self)
    }

    /// Join or leave.
    pub fn kind(&self) -> ChangeKind {
        self.kind
    }
}

/// Asks a node to apply a membership change, like the Go package's `ChangeMembership`:
/// follows redirects to the leader, retries while the leader is unknown (503) and, behind a
/// redirect, after a connection failure (a follower may still point at a leader that just
/// died), all within the request's timeout. Waits between attempts are jittered.
///
/// A TLS dialer (`scheme() == https`) follows `http` and `https` Locations alike, over TLS, as
/// the Go client does; a plain one refuses an `https` Location.
///
/// # Errors
/// [`MembershipError`]: the status and body the cluster answered with, a transport error, a
/// timeout, or an invalid request (an empty id or target).
pub async fn change_membership<R: Runtime, D: Dialer>(
    rt: &R,
    dialer: &D,
    request: &ChangeMembership,
) -> Result<(), MembershipError> {
    let ChangeMembership {
        kind,
        id,
        address,
        target,
        timeout,
        path,
        config,
    } = request;
    let (kind, id, target) = (*kind, id.as_str(), target.as_str());
    let span = tracing::info_span!("raft_membership", %kind, %id, %target);
    let started = rt.now();
    let deadline = time::after(rt, *timeout);
    let mut client = MembershipClient::new(kind, path, id, address, target, deadline)?
        .with_scheme(dialer.scheme())
        .with_limits(config.limits)
        .with_backoff(config.first_backoff, config.max_backoff)
        .with_jitter(jitter_seed())
        .with_headers(config.headers.clone());
    // The last transport failure, handed back with its `io::Error` if it ends the call.
    let mut last_io = None;
    // The connection of the request in flight.
    let mut conn = None;
    let mut chunk = vec![0u8; 4096];
    loop {
        let output = client.poll_output();
        if !matches!(output, Output::Receive) {
            conn = None;
        }
        match output {
            Output::Done(result) => {
                let (requests, redirects) = (client.requests_sent(), client.redirects_followed());
                let took = rt.now().saturating_duration_since(started);
                crate::measure::membership(kind, result.is_ok(), took);
                let micros = micros(took);
                span.in_scope(|| match &result {
                    Ok(()) => tracing::info!(requests, redirects, micros, "membership change accepted"),
                    Err(error @ CoreError::Scheme { .. }) => {
                        tracing::warn!(requests, redirects, micros, %error, "membership redirect refused");
                    }
                    Err(error) => {
                        tracing::info!(requests, redirects, micros, %error, "membership change failed");
                    }
                });
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
                match time::until(rt, deadline, send(dialer, &transmit)).await {
                    Ok(Ok(opened)) => conn = Some(opened),
                    Ok(Err((stage, source))) => {
                        let url = client.url();
                        span.in_scope(
                            || tracing::debug!(%url, %stage, %source, "membership request failed"),
                        );
                        client.handle_transport_error(rt.now(), stage, &source.to_string());
                        last_io = Some(source);
                    }
                    Err(time::Elapsed) => client.handle_timeout(rt.now().max(deadline)),
                }
            }
            Output::Receive => {
                let Some(open) = conn.as_mut() else {
                    // Cannot happen: `Receive` follows a `Transmit` that opened a connection.
                    client.handle_eof(rt.now());
                    continue;
                };
                match time::until(rt, deadline, open.read(&mut chunk)).await {
                    Ok(Ok(0)) => client.handle_eof(rt.now()),
                    Ok(Ok(n)) => client.handle_receive(rt.now(), &chunk[..n]),
                    Ok(Err(source)) => {
                        let stage = TransportStage::Receive;
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

/// Opens a connection and writes one request on it. A failure comes back with its stage.
async fn send<D: Dialer>(
    dialer: &D,
    transmit: &Transmit,
) -> Result<D::Conn, (TransportStage, io::Error)> {
    let stage = |stage| move |error| (stage, error);
    let mut conn = dialer
        .connect(&transmit.authority)
        .await
        .map_err(stage(TransportStage::Connect))?;
    conn.write_all(&transmit.request)
        .await
        .map_err(stage(TransportStage::Send))?;
    conn.flush().await.map_err(stage(TransportStage::Send))?;
    Ok(conn)
}
