//! The HTTP API, answered by the rafthttp handler's fallback (every path but `/raft`).
//!
//! | request | answers |
//! | --- | --- |
//! | `PUT /kv/{key}`, the value as body | 200 once applied; 308 to `http://<leader>/kv/{key}` on a follower; 503 leader unknown or write not applied; 504 not committed in time (it may still be) |
//! | `GET /kv/{key}` | linearizable read (on any node): 200 with the value as the body; 404 absent; 503 no leader known; 504 not confirmed in time |
//! | `GET /cluster` | this node's view as `key=value` lines |
//! | `GET /cluster?wait=<conds>&timeout_ms=<n>` | the same once every condition holds; 408 with the view when they do not within the timeout |
//!
//! A key is the raw path segment after `/kv/` (not percent-decoded): non-empty, no `/`.
//! Values are UTF-8 (the handler reads bodies up to 64 KiB). Other paths get 404, other
//! methods 405; 503 until the raft node runs.

use std::fmt::Write as _;
use std::time::Duration;

use rafthttp_raft::raft::Storage as _;
use rafthttp_raft::{FileLog, Node, ProposeError, ReadError, Replica};
use rafthttp_smol::core::Response;
use rafthttp_smol::{ChangeRequest, FallbackRequest, Layer, Smol};

use crate::state::{KvState, encode_set};

/// A node of this service.
pub(crate) type KvNode = Node<Smol, Layer, KvState, FileLog>;

/// The longest `timeout_ms` of a `/cluster` long poll.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);

/// `timeout_ms` of a `/cluster` long poll that gives `wait` and no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// `PUT /kv/{key}`.
    Put(&'a str),
    /// `GET /kv/{key}`.
    Get(&'a str),
    /// `GET /cluster`, maybe waiting for conditions.
    Cluster(Wait),
}

/// A `/cluster` long poll: conditions that must all hold, and how long to wait for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wait {
    pub(crate) conditions: Vec<Condition>,
    pub(crate) timeout: Duration,
}

/// A condition on a node's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Condition {
    /// A leader is known.
    Leader,
    /// A leader is known in a term after this one (a new leader since).
    LeaderAfter(u64),
    /// The configuration has exactly this many voters.
    Voters(usize),
    /// This node applied the log at least up to this index.
    Applied(u64),
}

impl Condition {
    fn parse(text: &str) -> Result<Self, String> {
        let number = |value: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("wait: {text:?}: {value:?} is not a non-negative integer"))
        };
        match text.split_once(':') {
            None if text == "leader" => Ok(Self::Leader),
            Some(("leader_after", term)) => Ok(Self::LeaderAfter(number(term)?)),
            Some(("voters", n)) => Ok(Self::Voters(
                usize::try_from(number(n)?).map_err(|_| format!("wait: {text:?}: too large"))?,
            )),
            Some(("applied", index)) => Ok(Self::Applied(number(index)?)),
            _ => Err(format!(
                "wait: unknown condition {text:?} (leader, leader_after:<term>, voters:<n>, applied:<index>)"
            )),
        }
    }

    fn holds(self, status: &Status) -> bool {
        match self {
            Self::Leader => status.leader_id.is_some(),
            Self::LeaderAfter(term) => status.leader_id.is_some() && status.term > term,
            Self::Voters(n) => status.voters.len() == n,
            Self::Applied(index) => status.applied >= index,
        }
    }
}

/// Routes a request, or answers it at once (404, 405, 400).
pub(crate) fn route<'a>(method: &str, path: &'a str, query: &str) -> Result<Route<'a>, Response> {
    if path == "/cluster" {
        if method != "GET" {
            return Err(method_not_allowed(method, "GET"));
        }
        return cluster_query(query).map(Route::Cluster);
    }
    let Some(key) = path.strip_prefix("/kv/") else {
        return Err(Response::not_found());
    };
    if key.is_empty() || key.contains('/') {
        return Err(Response::text(
            400,
            "a key is one non-empty path segment: /kv/<key>",
        ));
    }
    match method {
        "PUT" => Ok(Route::Put(key)),
        "GET" => Ok(Route::Get(key)),
        _ => Err(method_not_allowed(method, "GET, PUT")),
    }
}

/// 405, with the methods the path serves in `Allow`.
fn method_not_allowed(method: &str, allowed: &'static str) -> Response {
    Response::text(
        405,
        format!("method {method} not allowed here: {allowed} only"),
    )
    .with_header("Allow", allowed)
}

/// 503 for a request that was not carried out and may be retried at once (a leader is being
/// elected, the node is starting): `Retry-After: 1`.
fn retry(text: impl Into<std::borrow::Cow<'static, str>>) -> Response {
    Response::text(503, text).with_header("Retry-After", "1")
}

/// The `wait` and `timeout_ms` of a `/cluster` query.
fn cluster_query(query: &str) -> Result<Wait, Response> {
    let bad = |message: String| Response::text(400, message);
    let mut conditions = Vec::new();
    let mut timeout = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "wait" => {
                for condition in value.split(',') {
                    conditions.push(Condition::parse(condition).map_err(bad)?);
                }
            }
            "timeout_ms" => {
                let ms: u64 = value.parse().map_err(|_| {
                    bad(format!(
                        "timeout_ms: {value:?} is not a non-negative integer"
                    ))
                })?;
                let wait = Duration::from_millis(ms);
                if wait > MAX_WAIT {
                    return Err(bad(format!("timeout_ms: at most {}", MAX_WAIT.as_millis())));
                }
                timeout = Some(wait);
            }
            _ => {
                return Err(bad(format!(
                    "unknown query parameter {name:?} (wait, timeout_ms)"
                )));
            }
        }
    }
    if conditions.is_empty() && timeout.is_some() {
        return Err(bad("timeout_ms needs wait".to_owned()));
    }
    Ok(Wait {
        conditions,
        timeout: timeout.unwrap_or(DEFAULT_WAIT),
    })
}

/// A node's view, as `GET /cluster` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) id: u64,
    pub(crate) is_leader: bool,
    pub(crate) leader_id: Option<u64>,
    pub(crate) leader_address: Option<String>,
    pub(crate) term: u64,
    pub(crate) voters: Vec<u64>,
    pub(crate) applied: u64,
    /// The first entry still in the log (the ones before are compacted into the snapshot).
    pub(crate) first_index: u64,
}

impl Status {
    fn of(replica: &Replica<ChangeRequest, KvState, FileLog>) -> Self {
        Self {
            id: replica.id(),
            is_leader: replica.is_leader(),
            leader_id: replica.leader_id(),
            leader_address: replica.leader_address(),
            term: replica.term(),
            voters: replica.voters(),
            applied: replica.applied(),
            // The file log answers from memory: it cannot fail.
            first_index: replica.store().first_index().unwrap_or_default(),
        }
    }

    /// `key=value` lines (an unknown leader is an empty value), without the last newline
    /// ([`Response::text`] adds it).
    fn text(&self, address: &str) -> String {
        let voters: Vec<String> = self.voters.iter().map(u64::to_string).collect();
        let mut out = String::new();
        let _ = write!(
            out,
            "id={}\naddress={address}\nis_leader={}\nleader_id={}\nleader_address={}\nterm={}\nvoters={}\napplied={}\nfirst_index={}",
            self.id,
            self.is_leader,
            self.leader_id.map(|id| id.to_string()).unwrap_or_default(),
            self.leader_address.as_deref().unwrap_or_default(),
            self.term,
            voters.join(","),
            self.applied,
            self.first_index,
        );
        out
    }
}

/// Answers a request for a path other than the Raft path; `node` is `None` until the raft
/// node runs.
pub(crate) async fn respond(
    node: Option<KvNode>,
    request: FallbackRequest,
    timeout: Duration,
) -> Response {
    let route = match route(request.method(), request.path(), request.query()) {
        Ok(route) => route,
        Err(response) => return response,
    };
    let Some(node) = node else {
        return retry("the raft node is starting");
    };
    match route {
        Route::Put(key) => put(&node, key, request.body(), timeout).await,
        Route::Get(key) => get(&node, key, timeout).await,
        Route::Cluster(wait) => cluster(&node, &wait).await,
    }
}

async fn put(node: &KvNode, key: &str, body: &[u8], timeout: Duration) -> Response {
    let Ok(value) = std::str::from_utf8(body) else {
        return Response::text(400, "the value must be UTF-8");
    };
    match node.propose(encode_set(key, value), timeout).await {
        Ok(Ok(_previous)) => Response::ok(),
        Ok(Err(error)) => Response::text(500, format!("the entry was not applied: {error}")),
        Err(ProposeError::NotLeader {
            leader: Some(leader),
        }) => Response::redirect(format!("http://{leader}/kv/{key}")),
        Err(ProposeError::NotLeader { leader: None }) => {
            retry("no leader known: not applied, retry")
        }
        Err(ProposeError::LeadershipLost) => {
            retry("leadership changed before the write committed: not applied, retry")
        }
        Err(ProposeError::Timeout) => Response::text(
            504,
            "the write did not commit in time: it may still be applied",
        ),
        Err(ProposeError::TooLarge(n)) => {
            Response::text(413, format!("a value of {n} bytes is too large"))
        }
        Err(error @ ProposeError::Busy) => retry(format!("{error}: not applied, retry")),
        // Closed, and variants added later: the entry may or may not commit.
        Err(error) => Response::text(503, error.to_string()),
    }
}

async fn get(node: &KvNode, key: &str, timeout: Duration) -> Response {
    match node.read(timeout, |kv| kv.get(key).cloned()).await {
        Ok(Some(value)) => {
            Response::new(200).with_body("text/plain; charset=utf-8", value.into_bytes())
        }
        Ok(None) => Response::text(404, "no such key"),
        Err(ReadError::NoLeader) => retry("no leader known to confirm the read"),
        Err(ReadError::Timeout) => Response::text(504, "the read was not confirmed in time"),
        Err(error) => Response::text(503, error.to_string()),
    }
}

async fn cluster(node: &KvNode, wait: &Wait) -> Response {
    let address = node.net().addr().to_owned();
    if wait.conditions.is_empty() {
        let status = node.with_replica(|replica| Status::of(replica));
        return Response::text(200, status.text(&address));
    }
    let mut seen = None;
    let held = node
        .wait_until(wait.timeout, |replica| {
            let status = Status::of(replica);
            let holds = wait.conditions.iter().all(|c| c.holds(&status));
            if holds {
                seen = Some(status);
            }
            holds
        })
        .await;
    match seen {
        Some(status) if held => Response::text(200, status.text(&address)),
        _ => {
            let status = node.with_replica(|replica| Status::of(replica));
            Response::text(408, status.text(&address))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(route: Result<Route<'_>, Response>) -> u16 {
        route.map_or_else(|response| response.status(), |_| 0)
    }

    #[test]
    fn routes_keys_and_methods() {
        assert_eq!(route("PUT", "/kv/apple", ""), Ok(Route::Put("apple")));
        assert_eq!(route("GET", "/kv/a%20b", ""), Ok(Route::Get("a%20b")));
        assert_eq!(route("GET", "/kv/a=b", "x=1"), Ok(Route::Get("a=b")));
        assert_eq!(status(route("GET", "/kv/", "")), 400);
        assert_eq!(status(route("PUT", "/kv/a/b", "")), 400);
        assert_eq!(status(route("DELETE", "/kv/a", "")), 405);
        assert_eq!(status(route("POST", "/kv/a", "")), 405);
        assert_eq!(status(route("GET", "/kv", "")), 404);
        assert_eq!(status(route("GET", "/", "")), 404);
        assert_eq!(status(route("GET", "/kvx/a", "")), 404);
        assert_eq!(status(route("PUT", "/cluster", "")), 405);
        assert_eq!(status(route("GET", "/cluster/", "")), 404);
    }

    #[test]
    fn parses_cluster_waits() {
        let wait = |query: &str| match route("GET", "/cluster", query) {
            Ok(Route::Cluster(wait)) => wait,
            other => panic!("{query}: {other:?}"),
        };
        assert_eq!(wait("").conditions, []);
        assert_eq!(
            wait("wait=leader"),
            Wait {
                conditions: vec![Condition::Leader],
                timeout: DEFAULT_WAIT
            }
        );
        assert_eq!(
            wait("wait=voters:3,applied:12&timeout_ms=250"),
            Wait {
                conditions: vec![Condition::Voters(3), Condition::Applied(12)],
                timeout: Duration::from_millis(250)
            }
        );
        assert_eq!(
            wait("timeout_ms=60000&wait=leader_after:4").conditions,
            [Condition::LeaderAfter(4)]
        );
        for bad in [
            "wait=",
            "wait=leaders",
            "wait=leader:1",
            "wait=voters",
            "wait=voters:x",
            "wait=applied:-1",
            "wait=leader,",
            "wait=leader&timeout_ms=60001",
            "wait=leader&timeout_ms=soon",
            "timeout_ms=5",
            "wiat=leader",
        ] {
            assert_eq!(status(route("GET", "/cluster", bad)), 400, "{bad}");
        }
    }

    #[test]
    fn conditions_hold_on_the_view() {
        let mut view = Status {
            id: 2,
            is_leader: false,
            leader_id: None,
            leader_address: None,
            term: 3,
            voters: vec![1, 2, 3],
            applied: 10,
            first_index: 4,
        };
        assert!(!Condition::Leader.holds(&view));
        assert!(!Condition::LeaderAfter(2).holds(&view));
        assert!(Condition::Voters(3).holds(&view));
        assert!(!Condition::Voters(2).holds(&view));
        assert!(Condition::Applied(10).holds(&view));
        assert!(!Condition::Applied(11).holds(&view));
        view.leader_id = Some(1);
        view.leader_address = Some("127.0.0.1:7001".to_owned());
        assert!(Condition::Leader.holds(&view));
        assert!(Condition::LeaderAfter(2).holds(&view));
        assert!(!Condition::LeaderAfter(3).holds(&view));
        assert_eq!(
            view.text("127.0.0.1:7002"),
            "id=2\naddress=127.0.0.1:7002\nis_leader=false\nleader_id=1\n\
             leader_address=127.0.0.1:7001\nterm=3\nvoters=1,2,3\napplied=10\nfirst_index=4"
        );
        view.leader_id = None;
        view.leader_address = None;
        view.voters.clear();
        assert!(
            view.text("a:1")
                .contains("\nleader_id=\nleader_address=\nterm=3\nvoters=\n")
        );
    }
}
