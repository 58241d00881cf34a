//! The server side: dispatch, the accept queue, membership hand-off and the standalone server.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::{Either, select};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use rafthttp_core::connection::{Event, Request, ServerConnection};
use rafthttp_core::server::{Availability, Takeover};
use rafthttp_core::{
    Change, ChangeError, Endpoint, RequestHead, Response, Route, Router, Severity,
};
use tracing::Instrument;

use crate::admission::{Admission, Refused, Waiting};
use crate::config::{Fallback, FallbackRequest};
use crate::prefix::Prefix;
use crate::request::{ChangeRequest, Outcome, Requests};
use crate::time;
use crate::{Connection, HandlerConfig, Listener, Runtime};

/// An upgraded Raft connection: the connection and the bytes already read past the HTTP head,
/// which come first in the Raft stream.
#[derive(Debug)]
pub struct Upgraded<C> {
    /// The connection, positioned after the bytes in `prefix`.
    pub io: C,
    /// Raft bytes that arrived together with the HTTP head.
    pub prefix: Prefix,
}

/// What to do with a request, from [`Handler::dispatch`]. Every HTTP front end (the standalone
/// server, a hyper mount) acts on it the same way.
#[derive(Debug)]
#[must_use]
pub enum Dispatch<C> {
    /// Write `101 Switching Protocols`, then hand the connection to the slot with
    /// [`AcceptSlot::fill`]. The slot was reserved before the 101, so the connection is never
    /// upgraded and then dropped for lack of room.
    Upgrade(AcceptSlot<C>),
    /// A membership change: answer with [`Handler::change`].
    Change(Change),
    /// Answer with this response.
    Respond(Response),
    /// Another path: answer 404 or hand the request to another service.
    NotFound,
}

/// The Raft side of an HTTP server: it upgrades Raft connections into an accept queue and
/// hands membership requests to the application. Cheap to clone; clones share everything.
///
/// Generic over the connection type `C` it queues for `accept()`.
pub struct Handler<C> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    config: HandlerConfig,
    router: Router,
    accept_tx: async_channel::Sender<Pending<C>>,
    accept_rx: async_channel::Receiver<Pending<C>>,
    /// Accept slots handed out and not yet released (by `accept()` or an unused slot's drop).
    reserved: AtomicUsize,
    requests_tx: async_channel::Sender<ChangeRequest>,
    requests_rx: async_channel::Receiver<ChangeRequest>,
    closed: AtomicBool,
    /// Never carries a message: closing it wakes everything that waits on shutdown.
    shutdown_tx: async_channel::Sender<()>,
    shutdown_rx: async_channel::Receiver<()>,
    connections: AtomicUsize,
    /// Connections still waiting for their first head.
    admission: Arc<Admission>,
}

/// An upgraded connection in the accept queue. The serving task keeps the other reference and
/// takes the connection back (closing it) if nobody accepts it in time.
struct Pending<C> {
    slot: Arc<Mutex<Option<Upgraded<C>>>>,
    /// Dropped when `accept()` takes the entry, which wakes the serving task.
    _taken: async_channel::Sender<()>,
}

impl<C> Clone for Handler<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C> fmt::Debug for Handler<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("path", &self.inner.config.path.as_str())
            .field("closed", &self.is_closed())
            .field(
                "pending_accepts",
                &self.inner.reserved.load(Ordering::Relaxed),
            )
            .field("pending_requests", &self.inner.requests_rx.len())
            .field("waiting_for_head", &self.inner.admission.waiting())
            .finish_non_exhaustive()
    }
}

impl<C> Default for Handler<C> {
    fn default() -> Self {
        Self::new(HandlerConfig::default())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<C> Handler<C> {
    /// A handler with `config`.
    pub fn new(config: HandlerConfig) -> Self {
        let (accept_tx, accept_rx) = async_channel::bounded(config.accept_queue.max(1));
        let (requests_tx, requests_rx) = async_channel::bounded(config.requests_queue.max(1));
        let (shutdown_tx, shutdown_rx) = async_channel::bounded(1);
        Self {
            inner: Arc::new(Inner {
                router: Router::new(config.path.clone()),
                config,
                accept_tx,
                accept_rx,
                reserved: AtomicUsize::new(0),
                requests_tx,
                requests_rx,
                closed: AtomicBool::new(false),
                shutdown_tx,
                shutdown_rx,
                connections: AtomicUsize::new(0),
                admission: Arc::default(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HandlerConfig {
        &self.inner.config
    }

    fn availability(&self) -> Availability {
        if self.is_closed() {
            Availability::Closed
        } else {
            Availability::Open
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// The membership requests, for the application to answer. Bounded and multi-consumer;
    /// requests whose client stopped waiting are skipped. Ends after [`close`](Self::close).
    pub fn requests(&self) -> Requests {
        Requests::new(self.inner.requests_rx.clone())
    }

    /// Decides what to do with a request head: the one place where routing, status mapping and
    /// accept-slot reservation happen, for every HTTP front end.
    pub fn dispatch(&self, head: &RequestHead<'_>) -> Dispatch<C> {
        self.dispatch_routed(head, self.inner.router.route(head, self.availability()))
    }

    /// [`dispatch`](Self::dispatch) for a handler mounted behind another HTTP server, which
    /// says whether it can hand the connection over: a valid upgrade it cannot hand over is
    /// answered 500 without reserving an accept slot.
    pub fn dispatch_mounted(&self, head: &RequestHead<'_>, takeover: Takeover) -> Dispatch<C> {
        let route = self
            .inner
            .router
            .route_mounted(head, self.availability(), takeover);
        self.dispatch_routed(head, route)
    }

    /// Starts the record of a request whose head just arrived; see [`RequestLog`].
    pub fn request_log<R: Runtime>(&self, rt: &R, head: &RequestHead<'_>) -> RequestLog {
        RequestLog {
            method: head.method().to_owned(),
            path: head.path().to_owned(),
            endpoint: self.inner.router.endpoint(head),
            since: rt.now(),
        }
    }

    fn dispatch_routed(&self, head: &RequestHead<'_>, route: Route) -> Dispatch<C> {
        let acts = matches!(route, Route::Upgrade | Route::Change(_));
        if let (true, Some(authorizer)) = (acts, &self.inner.config.authorizer) {
            if let Err(refusal) = authorizer.check(head) {
                tracing::info!(?refusal, "request refused by the authorization hook");
                return Dispatch::Respond(refusal.response());
            }
        }
        if let (true, Some(cluster)) = (acts, &self.inner.config.cluster_id) {
            if let Some(refusal) = cluster.check(head) {
                tracing::warn!("request for another raft cluster refused");
                return Dispatch::Respond(refusal);
            }
        }
        match route {
            Route::Upgrade => match self.reserve() {
                Some(slot) => Dispatch::Upgrade(slot),
                None => {
                    tracing::warn!("accept queue full, refusing raft connection");
                    Dispatch::Respond(Response::busy())
                }
            },
            Route::Change(change) => Dispatch::Change(change),
            Route::Respond(response) => Dispatch::Respond(response),
            Route::NotFound => Dispatch::NotFound,
        }
    }

    fn reserve(&self) -> Option<AcceptSlot<C>> {
        let cap = self.inner.config.accept_queue.max(1);
        self.inner
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        crate::measure::accept_queue(1);
        Some(AcceptSlot {
            handler: self.clone(),
            filled: false,
        })
    }

    /// The next upgraded connection.
    ///
    /// # Errors
    /// An [`io::ErrorKind::UnexpectedEof`] error once the handler is closed (Go returns
    /// `io.EOF`).
    pub async fn accept(&self) -> io::Result<Upgraded<C>> {
        loop {
            if self.is_closed() {
                return Err(closed_error());
            }
            let Ok(pending) = self.inner.accept_rx.recv().await else {
                return Err(closed_error());
            };
            self.inner.reserved.fetch_sub(1, Ordering::AcqRel);
            crate::measure::accept_queue(-1);
            if self.is_closed() {
                return Err(closed_error());
            }
            // Empty when the serving task gave up waiting: skip it.
            if let Some(upgraded) = lock(&pending.slot).take() {
                return Ok(upgraded);
            }
        }
    }

    /// Hands a membership change to the application and turns its answer into the response.
    ///
    /// One deadline (the handler's timeout) covers waiting for room in the queue and for the
    /// answer: a request nobody takes is answered 403 `timeout waiting for membership change`
    /// (the Go handler hangs there). Closing the handler answers waiting requests 403
    /// `raft transport closed`.
    ///
    /// Redirect `Location`s use [`HandlerConfig::scheme`] and the Raft path.
    pub async fn change<R: Runtime>(&self, rt: &R, change: Change) -> Response {
        self.change_at(rt, change, None).await
    }

    /// [`change`](Self::change), redirecting to `path` when given: the path the request arrived
    /// on, for a mount behind a router that rewrote it.
    pub async fn change_at<R: Runtime>(
        &self,
        rt: &R,
        change: Change,
        path: Option<&str>,
    ) -> Response {
        let deadline = time::after(rt, self.inner.config.timeout);
        let (request, answer) = ChangeRequest::new(
            change.kind,
            change.id.clone(),
            change.address.clone(),
            deadline,
        );
        let wait = async {
            if self.inner.requests_tx.send(request).await.is_err() {
                return Err(ChangeError::Closed);
            }
            match select(pin!(answer.recv()), pin!(self.inner.shutdown_rx.recv())).await {
                Either::Left((outcome, _)) => outcome.unwrap_or(Err(ChangeError::Dropped)),
                Either::Right(_) => Err(ChangeError::Closed),
            }
        };
        let outcome: Outcome = time::until(rt, deadline, wait)
            .await
            .unwrap_or(Err(ChangeError::Timeout));
        let (kind, id) = (change.kind, &change.id);
        match &outcome {
            Ok(()) => {
                tracing::info!(%kind, %id, address = %change.address, "membership change applied");
            }
            Err(ChangeError::NotLeader {
                leader: Some(leader),
            }) => {
                tracing::info!(%kind, %id, %leader, "membership change redirected to the leader");
            }
            Err(error) => tracing::info!(%kind, %id, %error, "membership change refused"),
        }
        if outcome == Err(ChangeError::Closed) {
            return Response::closed();
        }
        let scheme = self.inner.config.scheme;
        let router = &self.inner.router;
        match path {
            Some(path) => router.answer_at(&change, &outcome, scheme, path),
            None => router.answer(&change, &outcome, scheme),
        }
    }

    /// Closes the handler, in the Go package's order: `accept()` ends with an end-of-stream
    /// error, connections waiting in the accept queue are closed, waiting membership requests
    /// are answered 403 `raft transport closed`, and the request stream ends. Later requests are
    /// refused with 403. Closing twice is harmless.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::debug!("raft handler closing");
        self.inner.shutdown_tx.close();
        self.inner.accept_tx.close();
        while let Ok(pending) = self.inner.accept_rx.try_recv() {
            self.inner.reserved.fetch_sub(1, Ordering::AcqRel);
            crate::measure::accept_queue(-1);
            if lock(&pending.slot).take().is_some() {
                tracing::debug!("closing raft connection not accepted before shutdown");
            }
        }
        self.inner.requests_tx.close();
        while let Ok(request) = self.inner.requests_rx.try_recv() {
            request.respond(Err(ChangeError::Closed));
        }
    }

    /// Completes when the handler is closed.
    pub async fn closed(&self) {
        let _ = self.inner.shutdown_rx.recv().await;
    }
}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "raft transport closed")
}

/// A place in the accept queue, reserved before the 101 is written. Dropping it unused gives
/// the place back.
pub struct AcceptSlot<C> {
    handler: Handler<C>,
    filled: bool,
}

impl<C> fmt::Debug for AcceptSlot<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptSlot")
            .field("filled", &self.filled)
            .finish_non_exhaustive()
    }
}

impl<C> AcceptSlot<C> {
    /// Queues the upgraded connection for `accept()` and waits until it is accepted, the
    /// handler's timeout passes, or the handler closes; in the last two cases the connection is
    /// closed (dropped).
    pub async fn fill<R: Runtime>(mut self, rt: &R, upgraded: Upgraded<C>) {
        self.filled = true;
        let inner = &self.handler.inner;
        let deadline = time::after(rt, inner.config.timeout);
        let slot = Arc::new(Mutex::new(Some(upgraded)));
        let (taken_tx, taken_rx) = async_channel::bounded::<()>(1);
        let pending = Pending {
            slot: Arc::clone(&slot),
            _taken: taken_tx,
        };
        if inner.accept_tx.try_send(pending).is_err() {
            // Closed since the slot was reserved.
            inner.reserved.fetch_sub(1, Ordering::AcqRel);
            crate::measure::accept_queue(-1);
            tracing::debug!("raft handler closed before the connection was queued");
            return;
        }
        let (taken, shutdown) = (taken_rx.recv(), inner.shutdown_rx.recv());
        let _ = time::until(rt, deadline, select(pin!(taken), pin!(shutdown))).await;
        if lock(&slot).take().is_some() {
            tracing::info!("raft connection not accepted in time or handler closed; dropping it");
        }
    }
}

impl<C> Drop for AcceptSlot<C> {
    fn drop(&mut self) {
        if !self.filled {
            self.handler.inner.reserved.fetch_sub(1, Ordering::AcqRel);
            crate::measure::accept_queue(-1);
        }
    }
}

/// Counts a served connection for as long as it lives.
struct ConnectionGuard<C>(Handler<C>);

impl<C> Drop for ConnectionGuard<C> {
    fn drop(&mut self) {
        self.0.inner.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

enum ReadOutcome {
    Data(usize),
    Eof,
    TimedOut,
    Shutdown,
    Failed(io::Error),
}

/// Reads once into `chunk`, until `deadline`; with `shutdown`, the handler's shutdown also ends
/// the wait.
async fn read_some<R: Runtime, C: Connection>(
    rt: &R,
    conn: &mut C,
    chunk: &mut [u8],
    deadline: Instant,
    shutdown: Option<&async_channel::Receiver<()>>,
) -> ReadOutcome {
    let read = conn.read(chunk);
    let result = match shutdown {
        Some(shutdown) => {
            match select(pin!(time::until(rt, deadline, read)), pin!(shutdown.recv())).await {
                Either::Left((r, _)) => r,
                Either::Right(_) => return ReadOutcome::Shutdown,
            }
        }
        None => time::until(rt, deadline, read).await,
    };
    match result {
        Err(time::Elapsed) => ReadOutcome::TimedOut,
        Ok(Ok(0)) => ReadOutcome::Eof,
        Ok(Ok(n)) => ReadOutcome::Data(n),
        Ok(Err(e)) => ReadOutcome::Failed(e),
    }
}

async fn write_all<R: Runtime, C: Connection>(
    rt: &R,
    conn: &mut C,
    bytes: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    let write = async {
        conn.write_all(bytes).await?;
        conn.flush().await
    };
    time::until(rt, time::after(rt, timeout), write)
        .await
        .unwrap_or_else(|time::Elapsed| Err(io::ErrorKind::TimedOut.into()))
}

/// A request as the log sees it: one event per request answered, with its method, path,
/// status and duration in microseconds (the connection's span carries the peer), at the level
/// the response's [`Severity`] calls for: debug when served or redirected, info when refused,
/// warn on a failure; with the `metrics` feature, also counted and timed by endpoint and
/// status. Every HTTP front end (standalone `serve`, the hyper mount) records through it:
/// [`Handler::request_log`] starts one.
#[derive(Debug)]
pub struct RequestLog {
    method: String,
    path: String,
    endpoint: Endpoint,
    since: Instant,
}

impl RequestLog {
    /// It was answered with `response`: records the event.
    pub fn answered<R: Runtime>(&self, rt: &R, response: &Response) {
        let (method, path) = (&self.method, &self.path);
        let status = response.status();
        let took = rt.now().saturating_duration_since(self.since);
        crate::measure::request(self.endpoint, status, took);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        match response.severity() {
            Severity::Routine => {
                tracing::debug!(%method, %path, status, micros, "request answered")
            }
            Severity::Refusal => tracing::info!(%method, %path, status, micros, "request refused"),
            _ => tracing::warn!(%method, %path, status, micros, "request failed"),
        }
    }
}

/// What to do with a complete request, decided without waiting.
enum Decision<C> {
    Upgrade(AcceptSlot<C>),
    Change(Change),
    Respond(Response),
    Fallback(Fallback, FallbackRequest),
}

impl<C: Connection> Handler<C> {
    /// Serves inbound connections from `listener`: a minimal HTTP/1.1 server where the Raft
    /// path is handled and other paths get 404. Redirect `Location`s use
    /// [`HandlerConfig::scheme`].
    ///
    /// It runs until the future is dropped. After [`close`](Self::close) it keeps answering,
    /// with 403 `raft transport closed` on the Raft path, so peers learn why instead of finding
    /// the port shut; idle connections are closed at once. Each connection runs in its own task
    /// (at most [`max_connections`](HandlerConfig::max_connections) at once).
    pub async fn serve<R: Runtime, L: Listener<Conn = C>>(&self, rt: R, listener: L) {
        self.serve_with(rt, listener, |conn| std::future::ready(Ok(conn)))
            .await;
    }

    /// Like [`serve`](Self::serve), with a handshake step between accepting a connection and
    /// speaking HTTP on it: a TLS server handshake, typically. `handshake` is called in the
    /// accept loop and must only build the future; that future runs in the connection's own
    /// task, bounded by [`idle_timeout`](HandlerConfig::idle_timeout), so a slow or silent
    /// client never stalls accepting others (it holds one of the
    /// [`max_connections`](HandlerConfig::max_connections) places until the timeout). A failed
    /// or late handshake closes the connection.
    ///
    /// Redirect `Location`s use [`HandlerConfig::scheme`], `http` by default even behind a TLS
    /// handshake, as the Go package writes them (see there).
    pub async fn serve_with<R, L, H, F>(&self, rt: R, mut listener: L, mut handshake: H)
    where
        R: Runtime,
        L: Listener,
        H: FnMut(L::Conn) -> F,
        F: Future<Output = io::Result<C>> + Send + 'static,
    {
        let config = &self.inner.config;
        let max = config.max_connections.max(1);
        loop {
            let accepted = listener.accept().await;
            match accepted {
                Ok((conn, peer)) => {
                    let count = self.inner.connections.fetch_add(1, Ordering::AcqRel);
                    let guard = ConnectionGuard(self.clone());
                    let (per_source, at_cap) = (config.max_waiting_per_source, count >= max);
                    let waiting = match self.inner.admission.admit(peer.ip(), per_source, at_cap) {
                        Ok(waiting) => waiting,
                        Err(Refused::Source) => {
                            tracing::warn!(%peer, per_source, "too many connections waiting for a head from this address, closing new connection");
                            continue;
                        }
                        Err(Refused::Full) => {
                            tracing::warn!(%peer, max, "too many connections, closing new connection");
                            continue;
                        }
                    };
                    if at_cap {
                        tracing::warn!(%peer, max, "at the connection cap: shed the connection waiting longest for a head");
                    }
                    let accepted_at = rt.now();
                    let handshake = handshake(conn);
                    let handler = self.clone();
                    let task_rt = rt.clone();
                    // The handshake too runs in the connection's span and task, and counts as
                    // waiting for the first head.
                    let span = tracing::info_span!("raft_http", %peer);
                    let task = async move {
                        let _guard = guard;
                        let timeout = handler.inner.config.head_timeout;
                        let deadline = accepted_at.checked_add(timeout).unwrap_or(accepted_at);
                        let handshake = pin!(time::until(&task_rt, deadline, handshake));
                        let shed = pin!(waiting.shed.recv());
                        let conn = match select(handshake, shed).await {
                            Either::Left((Ok(Ok(conn)), _)) => conn,
                            Either::Left((Ok(Err(error)), _)) => {
                                tracing::debug!(%peer, %error, "connection handshake failed");
                                return;
                            }
                            Either::Left((Err(time::Elapsed), _)) => {
                                tracing::debug!(%peer, ?timeout, "connection handshake timed out");
                                return;
                            }
                            Either::Right(_) => {
                                tracing::debug!(%peer, "shed during its handshake");
                                return;
                            }
                        };
                        handler
                            .serve_connection_inner(&task_rt, conn, accepted_at, Some(waiting))
                            .await;
                    };
                    rt.spawn(task.instrument(span));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off a little.
                    tracing::warn!(%error, "accepting a connection failed");
                    rt.sleep_until(time::after(&rt, Duration::from_millis(50)))
                        .await;
                }
            }
        }
    }

    /// Serves one connection: requests are answered in turn (keep-alive), until the client
    /// closes, an error, the idle timeout, the handler's shutdown, or an upgrade, which hands
    /// the connection to the accept queue.
    ///
    /// Its events are recorded in a `raft_http` tracing span carrying the peer address.
    pub async fn serve_connection<R: Runtime>(&self, rt: &R, conn: C, peer: SocketAddr) {
        let span = tracing::info_span!("raft_http", %peer);
        self.serve_connection_inner(rt, conn, rt.now(), None)
            .instrument(span)
            .await;
    }

    /// `accepted_at` starts the first head's deadline; `waiting`, the connection's place among
    /// those waiting for a first head (given back when it arrives), may be shed.
    async fn serve_connection_inner<R: Runtime>(
        &self,
        rt: &R,
        mut conn: C,
        accepted_at: Instant,
        mut waiting: Option<Waiting>,
    ) {
        let config = &self.inner.config;
        let (timeout, head_timeout) = (config.idle_timeout, config.head_timeout);
        let mut http = ServerConnection::new(config.limits);
        let mut chunk = vec![0u8; 4096];
        let mut out = Vec::new();
        // The first head is due `head_timeout` after the accept. Later, a kept-alive
        // connection may wait `idle_timeout` for the next request, whose head is due
        // `head_timeout` after its first byte.
        let after = |from: Instant, timeout: Duration| from.checked_add(timeout).unwrap_or(from);
        let mut idle_deadline = after(accepted_at, timeout);
        let mut head_started = Some(accepted_at);
        loop {
            out.clear();
            let decision = match http.poll_event(&mut out) {
                Event::NeedData => None,
                Event::Close => {
                    if !out.is_empty() {
                        tracing::debug!("refusing a request the connection cannot read");
                        let _ = write_all(rt, &mut conn, &out, timeout).await;
                    }
                    let _ = time::until(rt, time::after(rt, timeout), conn.close()).await;
                    return;
                }
                Event::Request(request) => {
                    // A head arrived: the connection no longer waits for one.
                    waiting = None;
                    head_started = None;
                    let seen = self.request_log(rt, &request.head);
                    Some((self.decide(&request), seen))
                }
            };
            // An interim `100 Continue` goes out before the body is read.
            if !out.is_empty() {
                if let Err(error) = write_all(rt, &mut conn, &out, timeout).await {
                    tracing::debug!(%error, "writing the interim Continue response failed");
                    return;
                }
                out.clear();
            }
            let Some((decision, seen)) = decision else {
                // Between requests, shutdown closes the connection; a new connection still
                // gets its first request answered (403 once closed), unless it is shed.
                let idle = http.is_idle() && http.requests_served() > 0;
                if !http.is_idle() && head_started.is_none() {
                    head_started = Some(rt.now());
                }
                let deadline = match head_started {
                    Some(start) => after(start, head_timeout).min(idle_deadline),
                    None => idle_deadline,
                };
                let stop = match &waiting {
                    Some(waiting) => Some(&waiting.shed),
                    None => idle.then_some(&self.inner.shutdown_rx),
                };
                match read_some(rt, &mut conn, &mut chunk, deadline, stop).await {
                    ReadOutcome::Data(n) => http.handle_data(&chunk[..n]),
                    ReadOutcome::Eof => http.handle_eof(),
                    ReadOutcome::Shutdown => {
                        if waiting.is_some() {
                            tracing::debug!("shed while waiting for its first head");
                        }
                        return;
                    }
                    ReadOutcome::TimedOut => {
                        tracing::debug!(idle, "connection timed out waiting for a request");
                        return;
                    }
                    ReadOutcome::Failed(error) => {
                        tracing::debug!(%error, "reading a request failed");
                        return;
                    }
                }
                continue;
            };
            let response = match decision {
                Decision::Upgrade(slot) => {
                    let Some(tail) = http.upgrade(&mut out) else {
                        return;
                    };
                    if let Err(error) = write_all(rt, &mut conn, &out, timeout).await {
                        tracing::debug!(%error, "writing Switching Protocols failed; dropping connection");
                        return;
                    }
                    seen.answered(rt, &Response::switching_protocols());
                    let prefix = Prefix::new(tail);
                    slot.fill(rt, Upgraded { io: conn, prefix }).await;
                    return;
                }
                Decision::Change(change) => self.change(rt, change).await,
                Decision::Respond(response) => response,
                Decision::Fallback(fallback, request) => fallback.respond(request).await,
            };
            http.respond(&response, &mut out);
            if let Err(error) = write_all(rt, &mut conn, &out, timeout).await {
                tracing::debug!(%error, "writing a response failed");
                return;
            }
            seen.answered(rt, &response);
            idle_deadline = time::after(rt, timeout);
        }
    }

    /// Decides a complete request: dispatch on the Raft path, the fallback (or 404) elsewhere.
    fn decide(&self, request: &Request<'_>) -> Decision<C> {
        match self.dispatch(&request.head) {
            Dispatch::Upgrade(slot) => Decision::Upgrade(slot),
            Dispatch::Change(change) => Decision::Change(change),
            Dispatch::Respond(response) => Decision::Respond(response),
            Dispatch::NotFound => match &self.inner.config.fallback {
                Some(fallback) => Decision::Fallback(
                    fallback.clone(),
                    FallbackRequest::new(&request.head, request.body),
                ),
                None => Decision::Respond(Response::not_found()),
            },
        }
    }
}
