//! Test doubles for the driver: a scripted connection, a dialer handing out scripted
//! connections, and a runtime with a simulated clock (STYLE.md section 6, in the spirit of
//! tokio-rustls `test_stream.rs`).
//!
//! - [`MockConn`] plays a script of read steps (data, a single `Pending` that wakes at once, EOF,
//!   an error, or hanging forever), writes in the configured way (everything, short writes, zero
//!   writes, an error after some bytes) and records what was written in a [`Probe`].
//! - [`Sim`] runs a test on a tiny single-threaded executor. Its clock only moves when every task
//!   waits: then it jumps to the earliest timer. Timeouts of hours take no real time, and a
//!   result never depends on scheduling or machine load. When everything waits and no timer is
//!   set, it panics (a deadlock) instead of hanging the test.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io::{self, ErrorKind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};
use std::net::{IpAddr, SocketAddr};

use rafthttp_driver::{Dialer, Listener, Runtime, Scheme};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Scripted connection
// ---------------------------------------------------------------------------------------------

/// One step of a connection's read script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Read {
    /// These bytes (over several reads when the reader's buffer is smaller).
    Data(Vec<u8>),
    /// `Poll::Pending` once, with the waker woken at once: the next poll goes on.
    Pending,
    /// End of stream (also what follows the last step).
    Eof,
    /// A read error of this kind.
    Error(ErrorKind),
    /// `Poll::Pending` forever: a peer that sends nothing more and keeps the connection open.
    Hang,
}

/// `bytes` as `Data` steps of at most `size` bytes with a `Pending` between any two.
pub(crate) fn pieces(bytes: &[u8], size: usize) -> Vec<Read> {
    let mut steps = Vec::new();
    for (i, chunk) in bytes.chunks(size.max(1)).enumerate() {
        if i > 0 {
            steps.push(Read::Pending);
        }
        steps.push(Read::Data(chunk.to_vec()));
    }
    steps
}

/// How a connection takes writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writes {
    /// Every byte offered.
    All,
    /// At most this many bytes per call.
    Short(usize),
    /// `Ok(0)` on every call: the peer cannot take anything.
    Zero,
    /// Takes this many bytes in total, then fails with this kind.
    FailAfter(usize, ErrorKind),
}

/// What a connection saw, shared with the test after the connection moved into the driver.
#[derive(Debug, Clone, Default)]
pub(crate) struct Probe(Arc<Mutex<Seen>>);

#[derive(Debug, Default)]
struct Seen {
    written: Vec<u8>,
    write_calls: usize,
    closed: bool,
    dropped: bool,
}

impl Probe {
    /// Every byte the connection accepted, in order.
    pub(crate) fn written(&self) -> Vec<u8> {
        lock(&self.0).written.clone()
    }

    /// [`written`](Self::written) as text, for readable assertions.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.written()).into_owned()
    }

    /// How many `poll_write` calls accepted at least one byte.
    pub(crate) fn write_calls(&self) -> usize {
        lock(&self.0).write_calls
    }

    /// Whether `poll_close` completed (a graceful close).
    pub(crate) fn closed(&self) -> bool {
        lock(&self.0).closed
    }

    /// Whether the connection was dropped.
    pub(crate) fn dropped(&self) -> bool {
        lock(&self.0).dropped
    }
}

/// A connection playing a read script and recording writes.
#[derive(Debug)]
pub(crate) struct MockConn {
    label: &'static str,
    reads: VecDeque<Read>,
    writes: Writes,
    /// When set, every write and flush first returns `Pending` once (waking at once).
    pending_writes: bool,
    write_pending_served: bool,
    /// Reads answered with end-of-stream, to catch a driver that reads on after EOF.
    eof_reads: usize,
    probe: Probe,
}

/// Reads after EOF tolerated before the connection fails the test: a driver that keeps
/// reading a finished stream would spin forever.
const MAX_EOF_READS: usize = 100;

impl MockConn {
    /// A connection that plays `reads` and takes every write.
    pub(crate) fn new(label: &'static str, reads: impl IntoIterator<Item = Read>) -> Self {
        Self {
            label,
            reads: reads.into_iter().collect(),
            writes: Writes::All,
            pending_writes: false,
            write_pending_served: false,
            eof_reads: 0,
            probe: Probe::default(),
        }
    }

    /// Sets how writes are taken.
    pub(crate) fn writes(mut self, writes: Writes) -> Self {
        self.writes = writes;
        self
    }

    /// Makes every write and flush return `Pending` once before going on.
    pub(crate) fn pending_writes(mut self) -> Self {
        self.pending_writes = true;
        self
    }

    /// The probe of this connection.
    pub(crate) fn probe(&self) -> Probe {
        self.probe.clone()
    }

    /// The name the test gave this connection.
    pub(crate) fn label(&self) -> &'static str {
        self.label
    }

    /// `Pending` once per operation when `pending_writes` is set.
    fn write_gate(&mut self, cx: &Context<'_>) -> bool {
        if !self.pending_writes {
            return false;
        }
        self.write_pending_served = !self.write_pending_served;
        if self.write_pending_served {
            cx.waker().wake_by_ref();
        }
        self.write_pending_served
    }
}

impl Drop for MockConn {
    fn drop(&mut self) {
        lock(&self.probe.0).dropped = true;
    }
}

impl AsyncRead for MockConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let step = this.reads.pop_front().unwrap_or(Read::Eof);
        match step {
            Read::Data(mut data) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                if n < data.len() {
                    this.reads.push_front(Read::Data(data.split_off(n)));
                }
                Poll::Ready(Ok(n))
            }
            Read::Pending => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Read::Eof => {
                this.eof_reads += 1;
                assert!(
                    this.eof_reads <= MAX_EOF_READS,
                    "{}: read {MAX_EOF_READS} times after EOF: the driver spins",
                    this.label
                );
                Poll::Ready(Ok(0))
            }
            Read::Error(kind) => Poll::Ready(Err(io::Error::new(kind, "scripted read error"))),
            Read::Hang => {
                this.reads.push_front(Read::Hang);
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for MockConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.write_gate(cx) {
            return Poll::Pending;
        }
        let mut seen = lock(&this.probe.0);
        let n = match this.writes {
            Writes::All => buf.len(),
            Writes::Short(max) => buf.len().min(max),
            Writes::Zero => 0,
            Writes::FailAfter(limit, kind) => {
                let room = limit.saturating_sub(seen.written.len());
                if room == 0 {
                    return Poll::Ready(Err(io::Error::new(kind, "scripted write error")));
                }
                buf.len().min(room)
            }
        };
        seen.written.extend_from_slice(&buf[..n]);
        if n > 0 {
            seen.write_calls += 1;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.get_mut().write_gate(cx) {
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.write_gate(cx) {
            return Poll::Pending;
        }
        lock(&this.probe.0).closed = true;
        Poll::Ready(Ok(()))
    }
}

// ---------------------------------------------------------------------------------------------
// Scripted dialer
// ---------------------------------------------------------------------------------------------

/// What one `connect` call does.
#[derive(Debug)]
pub(crate) enum Connect {
    /// Hands out this connection.
    Conn(MockConn),
    /// Never completes.
    Hang,
    /// Fails with `ConnectionRefused`.
    Refused,
}

/// A dialer that hands out scripted connections in order and records the authorities asked
/// for. Connecting beyond the plan fails with `ConnectionRefused`.
#[derive(Debug)]
pub(crate) struct MockDialer {
    plan: Mutex<VecDeque<Connect>>,
    authorities: Mutex<Vec<String>>,
    scheme: Scheme,
}

impl MockDialer {
    /// A plain-HTTP dialer following `plan`.
    pub(crate) fn new(plan: impl IntoIterator<Item = Connect>) -> Self {
        Self {
            plan: Mutex::new(plan.into_iter().collect()),
            authorities: Mutex::new(Vec::new()),
            scheme: Scheme::Http,
        }
    }

    /// A dialer handing out these connections.
    pub(crate) fn conns(conns: impl IntoIterator<Item = MockConn>) -> Self {
        Self::new(conns.into_iter().map(Connect::Conn))
    }

    /// The same dialer, claiming to speak `scheme` (`https`: a TLS dialer).
    pub(crate) fn speaking(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// The authorities `connect` was called with, in order.
    pub(crate) fn authorities(&self) -> Vec<String> {
        lock(&self.authorities).clone()
    }
}

impl Dialer for MockDialer {
    type Conn = MockConn;

    fn connect(&self, authority: &str) -> impl Future<Output = io::Result<MockConn>> + Send {
        lock(&self.authorities).push(authority.to_owned());
        let next = lock(&self.plan).pop_front();
        async move {
            match next {
                Some(Connect::Conn(conn)) => Ok(conn),
                Some(Connect::Hang) => std::future::pending().await,
                Some(Connect::Refused) | None => Err(ErrorKind::ConnectionRefused.into()),
            }
        }
    }

    fn scheme(&self) -> Scheme {
        self.scheme
    }
}

// ---------------------------------------------------------------------------------------------
// Scripted listener
// ---------------------------------------------------------------------------------------------

/// A listener handing out connections at set (simulated) times, then nothing more.
#[derive(Debug)]
pub(crate) struct MockListener {
    rt: Sim,
    plan: VecDeque<(Duration, MockConn, IpAddr)>,
}

impl MockListener {
    /// Hands out each connection once the clock reaches its offset from the start of `rt`,
    /// all from one source address.
    pub(crate) fn new(rt: &Sim, plan: impl IntoIterator<Item = (Duration, MockConn)>) -> Self {
        let source = IpAddr::from([192, 0, 2, 9]);
        Self::from(rt, plan.into_iter().map(|(at, conn)| (at, conn, source)))
    }

    /// The same, each connection from its own source address.
    pub(crate) fn from(
        rt: &Sim,
        plan: impl IntoIterator<Item = (Duration, MockConn, IpAddr)>,
    ) -> Self {
        Self {
            rt: rt.clone(),
            plan: plan.into_iter().collect(),
        }
    }
}

impl Listener for MockListener {
    type Conn = MockConn;

    fn accept(&mut self) -> impl Future<Output = io::Result<(MockConn, SocketAddr)>> + Send {
        let next = self.plan.pop_front();
        let rt = self.rt.clone();
        async move {
            let Some((at, conn, source)) = next else {
                return std::future::pending().await;
            };
            rt.sleep_until(rt.shared.start + at).await;
            Ok((conn, SocketAddr::new(source, 4000)))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Simulated runtime
// ---------------------------------------------------------------------------------------------

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A runtime whose clock jumps to the next timer whenever every task waits. Clones share the
/// clock and the task list.
#[derive(Clone)]
pub(crate) struct Sim {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("elapsed", &self.elapsed())
            .finish_non_exhaustive()
    }
}

struct Shared {
    start: Instant,
    clock: Mutex<Clock>,
    spawned: Mutex<Vec<Task>>,
}

struct Clock {
    now: Instant,
    next_id: u64,
    timers: BTreeMap<u64, (Instant, Waker)>,
}

/// A wake flag: the executor polls a task only when its flag is set.
struct Flag(AtomicBool);

impl Flag {
    fn new() -> Arc<Self> {
        Arc::new(Self(AtomicBool::new(true)))
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// Polls of one `run` at most: a driver that spins (wakes itself forever) fails the test.
const MAX_POLL_ROUNDS: usize = 1_000_000;

impl Sim {
    /// A runtime whose clock starts now.
    pub(crate) fn new() -> Self {
        let start = Instant::now();
        Self {
            shared: Arc::new(Shared {
                start,
                clock: Mutex::new(Clock {
                    now: start,
                    next_id: 0,
                    timers: BTreeMap::new(),
                }),
                spawned: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Simulated time since [`new`](Self::new).
    pub(crate) fn elapsed(&self) -> Duration {
        self.now() - self.shared.start
    }

    /// A future completing `after` from now (simulated).
    pub(crate) fn sleep(&self, after: Duration) -> Sleep {
        self.sleep_until(self.now() + after)
    }

    /// Runs `main` and every spawned task until `main` completes; tasks still running then are
    /// dropped.
    ///
    /// # Panics
    /// When every task waits and no timer is set (a deadlock), or after [`MAX_POLL_ROUNDS`].
    pub(crate) fn run<F: Future>(&self, main: F) -> F::Output {
        let mut main = std::pin::pin!(main);
        let main_flag = Flag::new();
        let main_waker = Waker::from(Arc::clone(&main_flag));
        let mut tasks: Vec<(Task, Arc<Flag>)> = Vec::new();
        for _ in 0..MAX_POLL_ROUNDS {
            let mut progressed = false;
            if main_flag.take() {
                progressed = true;
                if let Poll::Ready(out) = main.as_mut().poll(&mut Context::from_waker(&main_waker))
                {
                    return out;
                }
            }
            tasks.extend(
                lock(&self.shared.spawned)
                    .drain(..)
                    .map(|task| (task, Flag::new())),
            );
            tasks.retain_mut(|(task, flag)| {
                if !flag.take() {
                    return true;
                }
                progressed = true;
                let waker = Waker::from(Arc::clone(flag));
                task.as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            });
            if progressed || !lock(&self.shared.spawned).is_empty() {
                continue;
            }
            assert!(
                self.advance(),
                "deadlock: every task waits and no timer is set (at {:?})",
                self.elapsed()
            );
        }
        panic!("no result after {MAX_POLL_ROUNDS} polling rounds: something spins");
    }

    /// Moves the clock to the earliest timer and wakes the timers due; `false` without timers.
    fn advance(&self) -> bool {
        let due: Vec<Waker> = {
            let mut clock = lock(&self.shared.clock);
            let Some(next) = clock.timers.values().map(|(at, _)| *at).min() else {
                return false;
            };
            clock.now = clock.now.max(next);
            let now = clock.now;
            let ids: Vec<u64> = clock
                .timers
                .iter()
                .filter(|(_, (at, _))| *at <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.iter()
                .filter_map(|id| clock.timers.remove(id))
                .map(|(_, waker)| waker)
                .collect()
        };
        due.into_iter().for_each(Waker::wake);
        true
    }
}

/// The [`Sim`] timer.
pub(crate) struct Sleep {
    shared: Arc<Shared>,
    deadline: Instant,
    id: Option<u64>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut clock = lock(&this.shared.clock);
        if clock.now >= this.deadline {
            if let Some(id) = this.id.take() {
                clock.timers.remove(&id);
            }
            return Poll::Ready(());
        }
        let id = *this.id.get_or_insert_with(|| {
            clock.next_id += 1;
            clock.next_id
        });
        clock.timers.insert(id, (this.deadline, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            lock(&self.shared.clock).timers.remove(&id);
        }
    }
}

impl Runtime for Sim {
    type Sleep = Sleep;

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep {
            shared: Arc::clone(&self.shared),
            deadline,
            id: None,
        }
    }

    fn now(&self) -> Instant {
        lock(&self.shared.clock).now
    }

    fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        lock(&self.shared.spawned).push(Box::pin(task));
    }
}
