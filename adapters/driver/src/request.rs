//! Membership change requests handed to the application.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::Stream;
use rafthttp_core::{ChangeError, ChangeKind};

/// The application's answer to a [`ChangeRequest`].
pub type Outcome = Result<(), ChangeError>;

/// A join or leave request received over HTTP, waiting for the application's answer.
///
/// Answer it with [`respond`](Self::respond): `Ok(())` once the change is applied (the client
/// gets 200), [`ChangeError::NotLeader`] to redirect the client to the leader (308) or make it
/// retry (503, leader unknown), any other error to refuse it (403). Dropping it unanswered
/// answers [`ChangeError::Dropped`] (403). The handler waits at most its timeout, counted from
/// the moment the request arrived, for hand-off and answer together; a later answer is lost.
///
/// ```no_run
/// use rafthttp_driver::core::{ChangeError, ChangeKind};
/// use rafthttp_driver::Requests;
///
/// /// What the application's Raft engine says about a change (a stand-in here).
/// fn apply(kind: ChangeKind, id: &str, address: &str) -> Result<(), ChangeError> {
///     Err(ChangeError::NotLeader { leader: Some("10.0.0.1:8080".into()) })
/// }
///
/// async fn answer(requests: Requests) {
///     while let Some(request) = requests.recv().await {
///         let outcome = apply(request.kind(), request.id(), request.address());
///         if !request.respond(outcome) {
///             // The client gave up (the handler's timeout passed).
///         }
///     }
/// }
/// ```
pub struct ChangeRequest {
    kind: ChangeKind,
    id: String,
    address: String,
    deadline: Instant,
    answer: Option<async_channel::Sender<Outcome>>,
}

impl ChangeRequest {
    pub(crate) fn new(
        kind: ChangeKind,
        id: String,
        address: String,
        deadline: Instant,
    ) -> (Self, async_channel::Receiver<Outcome>) {
        let (tx, rx) = async_channel::bounded(1);
        (
            Self {
                kind,
                id,
                address,
                deadline,
                answer: Some(tx),
            },
            rx,
        )
    }

    /// Join or leave.
    pub fn kind(&self) -> ChangeKind {
        self.kind
    }

    /// The server id (never empty).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The server address (empty for a leave, and for a join that did not give one).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// When the handler stops waiting for the answer (by the handler runtime's clock): work done
    /// for the request should be bounded by it, since a later answer is lost.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the handler stopped waiting for the answer (its timeout passed or it closed).
    pub fn is_abandoned(&self) -> bool {
        self.answer
            .as_ref()
            .is_none_or(async_channel::Sender::is_closed)
    }

    /// Answers the request. Returns `false` when nobody waits for the answer any more (the
    /// handler's timeout passed, the client went away, or the handler was closed).
    pub fn respond(mut self, outcome: Outcome) -> bool {
        self.answer
            .take()
            .is_some_and(|tx| tx.try_send(outcome).is_ok())
    }
}

impl Drop for ChangeRequest {
    fn drop(&mut self) {
        if let Some(tx) = self.answer.take() {
            let _ = tx.try_send(Err(ChangeError::Dropped));
        }
    }
}

impl fmt::Debug for ChangeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeRequest")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("address", &self.address)
            .field("answered", &self.answer.is_none())
            .finish()
    }
}

/// The stream of membership requests of a handler: bounded, multi-consumer (each request goes
/// to one consumer). It ends when the handler is closed and the queue is drained.
#[derive(Debug)]
pub struct Requests {
    // Boxed: the receiver is not `Unpin`, and a `Stream` that is `Unpin` is easier to use.
    rx: Pin<Box<async_channel::Receiver<ChangeRequest>>>,
}

impl Clone for Requests {
    fn clone(&self) -> Self {
        Self::new(self.rx.as_ref().get_ref().clone())
    }
}

impl Requests {
    pub(crate) fn new(rx: async_channel::Receiver<ChangeRequest>) -> Self {
        Self { rx: Box::pin(rx) }
    }

    /// The next request, or `None` once the handler is closed.
    pub async fn recv(&self) -> Option<ChangeRequest> {
        loop {
            let request = self.rx.recv().await.ok()?;
            if !skip(&request) {
                return Some(request);
            }
        }
    }

    /// The next request if one is waiting.
    pub fn try_recv(&self) -> Option<ChangeRequest> {
        loop {
            let request = self.rx.try_recv().ok()?;
            if !skip(&request) {
                return Some(request);
            }
        }
    }
}

impl Stream for Requests {
    type Item = ChangeRequest;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let rx = &mut self.get_mut().rx;
        loop {
            match rx.as_mut().poll_next(cx) {
                Poll::Ready(Some(request)) if skip(&request) => {}
                other => return other,
            }
        }
    }
}

/// Requests whose client is no longer waiting are not handed to the application: applying a
/// change that was already answered "timeout" would surprise the caller.
fn skip(request: &ChangeRequest) -> bool {
    let abandoned = request.is_abandoned();
    if abandoned {
        tracing::debug!(kind = %request.kind, id = %request.id, "skipping abandoned membership request");
    }
    abandoned
}
