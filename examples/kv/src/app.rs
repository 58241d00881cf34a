//! The HTTP side of the key-value service: one axum [`Router`] for the application's routes and
//! the Raft traffic, served by [`serve`] on one listener.
//!
//! Routes ([`router`]):
//!
//! | Route | Answer |
//! |---|---|
//! | `PUT /kv/{key}` (body: the value, UTF-8, at most [`MAX_VALUE_BYTES`]) | 200 [`WriteResult`] |
//! | `DELETE /kv/{key}` | 200 [`WriteResult`] |
//! | `GET /kv/{key}` | 200 the value (`text/plain`), 404 when absent |
//! | `GET /kv/{key}?consistency=local[&min_applied=N][&wait=MS]` | same, from this node's state |
//! | `GET /cluster[?wait=MS][&after_term=T][&min_applied=N]` | 200 [`ClusterView`] |
//! | the rafthttp path (`/raft` by default) | the [`rafthttp_tokio::Handler`] |
//!
//! Writes and linearizable reads go through the leader. A follower answers
//! `307 Temporary Redirect` with `Location: http://{leader addr}{path and query}` when it knows
//! the leader's address (307 keeps the method and the body), and 503 when it does not (no leader
//! elected yet, or the node is not part of a cluster). Errors have `text/plain` bodies:
//!
//! - 400: malformed query (e.g. `consistency=bogus`), key or value not UTF-8;
//! - 413: value larger than [`MAX_VALUE_BYTES`];
//! - 503: leader unknown, no quorum, Raft stopped, or a [`Timeouts`] bound passed. A write that
//!   timed out may still be committed later: the client cannot tell, as with any lost answer;
//! - 500: a fatal Raft error (storage failure, panicked core).

use std::fmt;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header::{HeaderValue, LOCATION};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use openraft::error::{CheckIsLeaderError, ClientWriteError, Fatal, ForwardToLeader, RaftError};
use openraft::{BasicNode, Raft, RaftMetrics, ServerState};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::time::timeout;

use crate::store::{NodeId, Request, StateMachine, TypeConfig};

/// The largest value `PUT /kv/{key}` accepts (64 KiB); larger bodies get 413.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// How long the handlers wait. Every Raft call a handler makes is bounded by one of these: in
/// openraft 0.9 `client_write` and `ensure_linearizable` can otherwise wait without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Bound on `client_write` (PUT, DELETE): until the entry is committed and applied.
    pub write: Duration,
    /// Bound on `ensure_linearizable` (linearizable GET), and the default `wait` of a local read
    /// with `min_applied`.
    pub read: Duration,
    /// The wait of a `/cluster` long poll that names a condition but no `wait`.
    pub default_wait: Duration,
    /// Cap on every client-supplied `wait`.
    pub max_wait: Duration,
}

impl Default for Timeouts {
    /// 5 s for Raft calls, long polls 30 s by default and at most 60 s.
    fn default() -> Self {
        Self {
            write: Duration::from_secs(5),
            read: Duration::from_secs(5),
            default_wait: Duration::from_secs(30),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// The client's `wait` (milliseconds), or `default`, capped at [`max_wait`](Self::max_wait).
    fn wait(&self, requested_ms: Option<u64>, default: Duration) -> Duration {
        requested_ms
            .map_or(default, Duration::from_millis)
            .min(self.max_wait)
    }
}

/// The application state the handlers share: the Raft node, its state machine (for local
/// reads) and the bounds on waiting. Cheap to clone.
#[derive(Clone)]
pub struct Kv {
    raft: Raft<TypeConfig>,
    state: StateMachine,
    id: NodeId,
    timeouts: Timeouts,
}

impl fmt::Debug for Kv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kv")
            .field("id", &self.id)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl Kv {
    /// Node `id`, its `raft` handle and a clone of the `state` machine given to `Raft::new`, with
    /// the default [`Timeouts`].
    pub fn new(id: NodeId, raft: Raft<TypeConfig>, state: StateMachine) -> Self {
        Self {
            raft,
            state,
            id,
            timeouts: Timeouts::default(),
        }
    }

    /// The same, with `timeouts`.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The Raft node.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// The node's state machine.
    pub fn state_machine(&self) -> &StateMachine {
        &self.state
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The bounds on waiting.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }
}

/// The JSON answer to `PUT` and `DELETE /kv/{key}`:
/// `{"index": 7, "previous": "old"}` (`previous` is `null` when the key had no value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteResult {
    /// The log index of the write's entry; a local read with `min_applied` set to it sees the
    /// write.
    pub index: u64,
    /// The value the key held before the write.
    pub previous: Option<String>,
}

/// One member of the cluster in a [`ClusterView`]: `{"id": 1, "addr": "10.0.0.1:8080"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node id.
    pub id: NodeId,
    /// The node's address (`host:port` of its HTTP listener), empty if the membership has none.
    pub addr: String,
}

/// The JSON answer to `GET /cluster`: this node's view, from its Raft metrics.
///
/// ```json
/// {"id": 1, "leader": 1, "leader_addr": "127.0.0.1:8080", "term": 1, "state": "Leader",
///  "voters": [{"id": 1, "addr": "127.0.0.1:8080"}], "learners": [],
///  "last_applied": 3, "last_log": 3, "waited_out": false}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    /// This node's id.
    pub id: NodeId,
    /// The leader this node knows of, if any.
    pub leader: Option<NodeId>,
    /// The leader's address, if the leader is known and in the membership.
    pub leader_addr: Option<String>,
    /// This node's current term.
    pub term: u64,
    /// This node's role: `"Leader"`, `"Follower"`, `"Candidate"`, `"Learner"` or `"Shutdown"`.
    pub state: ServerState,
    /// The voters of the current membership (both configurations' during a joint change).
    pub voters: Vec<Member>,
    /// The learners of the current membership.
    pub learners: Vec<Member>,
    /// The index of the last entry applied to the state machine.
    pub last_applied: Option<u64>,
    /// The index of the last entry in the log.
    pub last_log: Option<u64>,
    /// `true` when the request named a condition (`after_term`, `min_applied`) that does not
    /// hold in this view: the wait ran out (or Raft stopped). `false` when the conditions hold,
    /// or none was named.
    pub waited_out: bool,
}

impl ClusterView {
    fn new(metrics: &RaftMetrics<NodeId, BasicNode>, waited_out: bool) -> Self {
        let membership = metrics.membership_config.membership();
        let member = |id: NodeId| Member {
            id,
            addr: membership
                .get_node(&id)
                .map(|node| node.addr.clone())
                .unwrap_or_default(),
        };
        Self {
            id: metrics.id,
            leader: metrics.current_leader,
            leader_addr: metrics
                .current_leader
                .and_then(|id| membership.get_node(&id))
                .map(|node| node.addr.clone()),
            term: metrics.current_term,
            state: metrics.state,
            voters: membership.voter_ids().map(member).collect(),
            learners: membership.learner_ids().map(member).collect(),
            last_applied: applied_index(metrics),
            last_log: metrics.last_log_index,
            waited_out,
        }
    }
}

/// Query of `GET /kv/{key}`.
#[derive(Debug, Deserialize)]
struct ReadParams {
    #[serde(default)]
    consistency: Consistency,
    /// Local reads only: wait until this index is applied.
    min_applied: Option<u64>,
    /// Bound on the `min_applied` wait, in milliseconds.
    wait: Option<u64>,
}

/// `consistency=` of a read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Consistency {
    /// Confirm leadership with a quorum, then read (the default).
    #[default]
    Linearizable,
    /// Read this node's state as it is.
    Local,
}

/// Query of `GET /cluster`.
#[derive(Debug, Deserialize)]
struct ClusterParams {
    wait: Option<u64>,
    after_term: Option<u64>,
    min_applied: Option<u64>,
}

/// The application's routes and the rafthttp `raft` handler on one router, with `kv` as state.
/// See the [module documentation](self) for the routes and their answers.
///
/// The application still answers the membership requests of `raft.requests()` (join, leave).
///
/// # Panics
///
/// When the handler's path collides with `/kv/{key}` or `/cluster`, or is not a valid axum
/// route (e.g. contains `{`): a configuration error, found when the router is built.
pub fn router(kv: Kv, raft: rafthttp_tokio::Handler) -> Router {
    let raft_path = raft.config().path.path().to_owned();
    Router::new()
        .route(
            "/kv/{key}",
            get(read)
                .put(put)
                .delete(delete)
                .layer(DefaultBodyLimit::max(MAX_VALUE_BYTES)),
        )
        .route("/cluster", get(cluster))
        .route_service(&raft_path, raft)
        .with_state(kv)
}

async fn put(State(kv): State<Kv>, Path(key): Path<String>, uri: Uri, value: String) -> Response {
    kv.write(Request::Set { key, value }, &uri).await
}

async fn delete(State(kv): State<Kv>, Path(key): Path<String>, uri: Uri) -> Response {
    kv.write(Request::Delete { key }, &uri).await
}

async fn read(
    State(kv): State<Kv>,
    Path(key): Path<String>,
    Query(params): Query<ReadParams>,
    uri: Uri,
) -> Response {
    match params.consistency {
        Consistency::Linearizable => {
            let bound = kv.timeouts.read;
            match timeout(bound, kv.raft.ensure_linearizable()).await {
                Ok(Ok(_)) => {}
                Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(to)))) => {
                    return forward(kv.id, &to, &uri);
                }
                Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e)))) => {
                    return text(StatusCode::SERVICE_UNAVAILABLE, format!("no quorum: {e}"));
                }
                Ok(Err(RaftError::Fatal(fatal))) => return fatal_response(&fatal),
                Err(_) => {
                    return text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("leadership not confirmed within {} ms", bound.as_millis()),
                    );
                }
            }
        }
        Consistency::Local => {
            if let Some(index) = params.min_applied {
                let bound = kv.timeouts.wait(params.wait, kv.timeouts.read);
                let mut metrics = kv.raft.metrics();
                let reached = timeout(bound, async {
                    metrics
                        .wait_for(|m| applied_index(m) >= Some(index))
                        .await
                        .is_ok()
                })
                .await;
                if !matches!(reached, Ok(true)) {
                    let applied = applied_index(&metrics.borrow());
                    return text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "applied index {} has not reached {index} within {} ms",
                            applied.map_or_else(|| "none".to_owned(), |i| i.to_string()),
                            bound.as_millis()
                        ),
                    );
                }
            }
        }
    }
    match kv.state.get(&key) {
        Some(value) => value.into_response(),
        None => text(StatusCode::NOT_FOUND, format!("no value for key {key:?}")),
    }
}

async fn cluster(State(kv): State<Kv>, Query(params): Query<ClusterParams>) -> Response {
    let holds = |m: &RaftMetrics<NodeId, BasicNode>| {
        params
            .after_term
            .is_none_or(|term| m.current_leader.is_some() && m.current_term > term)
            && params
                .min_applied
                .is_none_or(|index| applied_index(m) >= Some(index))
    };
    let mut metrics = kv.raft.metrics();
    let conditional = params.after_term.is_some() || params.min_applied.is_some();
    if conditional {
        let bound = kv.timeouts.wait(params.wait, kv.timeouts.default_wait);
        // Ran out or Raft stopped: either way the view below tells whether the condition holds.
        let _ = timeout(bound, metrics.wait_for(|m| holds(m))).await;
    }
    let view = {
        let current = metrics.borrow();
        ClusterView::new(&current, conditional && !holds(&current))
    };
    Json(view).into_response()
}

impl Kv {
    /// `client_write`, bounded by the write timeout.
    async fn write(&self, request: Request, uri: &Uri) -> Response {
        let bound = self.timeouts.write;
        match timeout(bound, self.raft.client_write(request)).await {
            Ok(Ok(written)) => Json(WriteResult {
                index: written.log_id.index,
                previous: written.data.value,
            })
            .into_response(),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to)))) => {
                forward(self.id, &to, uri)
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                // Only membership entries can fail this way, and this service writes none.
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("unexpected: {e}"),
                )
            }
            Ok(Err(RaftError::Fatal(fatal))) => fatal_response(&fatal),
            Err(_) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "write not committed within {} ms; it may still be applied later",
                    bound.as_millis()
                ),
            ),
        }
    }
}

/// The answer of a node that is not the leader: 307 to the leader, or 503 if there is none to
/// send the client to.
fn forward(own: NodeId, to: &ForwardToLeader<NodeId, BasicNode>, uri: &Uri) -> Response {
    let unavailable = |message: String| text(StatusCode::SERVICE_UNAVAILABLE, message);
    match (to.leader_id, &to.leader_node) {
        // Stale metrics while stepping down: redirecting to ourselves would loop.
        (Some(leader), _) if leader == own => {
            unavailable("leadership is changing; retry".to_owned())
        }
        (leader, Some(node)) => {
            let target = uri.path_and_query().map_or("/", |target| target.as_str());
            let location = format!("http://{}{target}", node.addr);
            match HeaderValue::try_from(location) {
                Ok(location) => (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(LOCATION, location)],
                    match leader {
                        Some(leader) => format!("not the leader: node {leader} at {}", node.addr),
                        None => format!("not the leader: the leader is at {}", node.addr),
                    },
                )
                    .into_response(),
                Err(_) => unavailable(format!(
                    "not the leader, and the leader's address {:?} is not a valid URL authority",
                    node.addr
                )),
            }
        }
        (Some(leader), None) => unavailable(format!(
            "not the leader; the leader is node {leader}, whose address is unknown"
        )),
        (None, None) => unavailable(
            "no leader known: an election is in progress, or this node is not in a cluster"
                .to_owned(),
        ),
    }
}

fn fatal_response(fatal: &Fatal<NodeId>) -> Response {
    match fatal {
        Fatal::Stopped => text(StatusCode::SERVICE_UNAVAILABLE, "raft stopped".to_owned()),
        _ => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("raft failed: {fatal}"),
        ),
    }
}

fn text(status: StatusCode, message: String) -> Response {
    (status, message).into_response()
}

fn applied_index(metrics: &RaftMetrics<NodeId, BasicNode>) -> Option<u64> {
    metrics.last_applied.map(|log_id| log_id.index)
}

/// Serves `router` on `listener` over HTTP/1.1 until the returned future is dropped, with
/// upgrades on (the rafthttp mount takes Raft connections over) and every request head due
/// within `header_timeout` ([`rafthttp_tokio::serve_http`]; `axum::serve` sets no timer).
pub async fn serve(listener: TcpListener, router: Router, header_timeout: Duration) {
    rafthttp_tokio::serve_http(listener, router, header_timeout).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(leader_id: Option<NodeId>, addr: Option<&str>) -> ForwardToLeader<NodeId, BasicNode> {
        ForwardToLeader {
            leader_id,
            leader_node: addr.map(BasicNode::new),
        }
    }

    #[test]
    fn redirects_to_the_leader_with_path_and_query() {
        let uri: Uri = "/kv/a%20b?consistency=linearizable".parse().unwrap();
        let response = forward(1, &to(Some(2), Some("10.0.0.2:8080")), &uri);
        assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            response.headers()[LOCATION],
            "http://10.0.0.2:8080/kv/a%20b?consistency=linearizable"
        );
    }

    #[test]
    fn unknown_or_unusable_leader_is_unavailable() {
        let uri: Uri = "/kv/a".parse().unwrap();
        for target in [
            to(None, None),
            to(Some(2), None),
            to(Some(1), Some("10.0.0.1:8080")),
            to(Some(2), Some("bad\naddr")),
        ] {
            let response = forward(1, &target, &uri);
            assert_eq!(
                response.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{target:?}"
            );
            assert!(response.headers().get(LOCATION).is_none());
        }
    }
}
