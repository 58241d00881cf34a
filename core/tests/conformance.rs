//! Conformance with the Go `rafthttp` package, against the byte-exact captures in
//! `tests/vectors/go-raft-http/` (see its README for what each file is).
//!
//! - `srv_*` / `real_*`: what a Go server answered to crafted requests. Our decoder + router +
//!   encoder must answer the same status line, `Upgrade`, `Location`, `Content-Length`,
//!   `Connection: close` and body (`Date` and other fields may differ), except where we
//!   deliberately differ; those cases assert our behaviour and name the difference.
//! - `dial_*` / `client_*` requests: what the Go client sent. Our server accepts and routes them.
//! - `dial_resp_*` / `client_join_resp_*`: crafted responses. Our client reaches the outcome the
//!   Go client reached, with an error message that reads like Go's.

mod util;

use rafthttp_core::Availability;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rafthttp_core::membership::{ChangeKind, MembershipClient, Output, Transmit};
use rafthttp_core::server::{
    CLOSED_TEXT, MISSING_UPGRADE_TEXT, NOT_FOUND_TEXT, UNKNOWN_ACTION_TEXT, UPGRADE_BODY_TEXT,
};
use rafthttp_core::{
    ChangeError, ClientHandshake, Decoded, HandshakeError, Limits, MembershipError, RaftPath,
    RequestDecoder, RequestError, Response, ResponseDecoder, Route, Router, Scheme, Upgraded,
};
use util::{Wire, vector, wire};

/// Every file in the vector directory. Each one is used by at least one test below; a file
/// added to the directory must be added here (and used), or `every_vector_file_is_known` fails.
const KNOWN: &[&str] = &[
    "README.md",
    "client_join.request.bin",
    "client_join_503.first.request.bin",
    "client_join_503.retry.request.bin",
    "client_join_path_root.request.bin",
    "client_join_redirect.first.request.bin",
    "client_join_redirect.followup.request.bin",
    "client_join_resp_204.response.bin",
    "client_join_resp_308_no_location.response.bin",
    "client_join_resp_400_body.response.bin",
    "client_join_unescaped.request.bin",
    "client_leave.request.bin",
    "client_leave_redirect.first.request.bin",
    "client_leave_redirect.followup.request.bin",
    "dial_after_upgrade.client_data.bin",
    "dial_path_query.request.bin",
    "dial_path_raft.request.bin",
    "dial_path_root.request.bin",
    "dial_resp_101_lowercase_header.response.bin",
    "dial_resp_101_no_upgrade.response.bin",
    "dial_resp_101_trailing_data.response.bin",
    "dial_resp_101_upgrade_RAFT.response.bin",
    "dial_resp_101_with_connection.response.bin",
    "dial_resp_200.response.bin",
    "dial_resp_garbage.response.bin",
    "dial_resp_http10_101.response.bin",
    "real_delete_follower.request.bin",
    "real_delete_follower.response.bin",
    "real_get_upgrade_leader.request.bin",
    "real_get_upgrade_leader.response.bin",
    "real_leader_dial.after_upgrade.bin",
    "real_leader_dial.request.bin",
    "real_post_follower.request.bin",
    "real_post_follower.response.bin",
    "real_post_no_leader.request.bin",
    "real_post_no_leader.response.bin",
    "srv_delete_closed.request.bin",
    "srv_delete_closed.response.bin",
    "srv_delete_error.request.bin",
    "srv_delete_error.response.bin",
    "srv_delete_leader.request.bin",
    "srv_delete_leader.response.bin",
    "srv_delete_no_id.request.bin",
    "srv_delete_no_id.response.bin",
    "srv_delete_ok.request.bin",
    "srv_delete_ok.response.bin",
    "srv_delete_timeout.request.bin",
    "srv_delete_timeout.response.bin",
    "srv_delete_unknown.request.bin",
    "srv_delete_unknown.response.bin",
    "srv_get_header_1mib.response.bin",
    "srv_get_long_header.response.bin",
    "srv_get_no_upgrade.request.bin",
    "srv_get_no_upgrade.response.bin",
    "srv_get_other_path.request.bin",
    "srv_get_other_path.response.bin",
    "srv_get_path_trailing_slash.request.bin",
    "srv_get_path_trailing_slash.response.bin",
    "srv_get_upgrade.request.bin",
    "srv_get_upgrade.response.bin",
    "srv_get_upgrade_RAFT.request.bin",
    "srv_get_upgrade_RAFT.response.bin",
    "srv_get_upgrade_bare_lf.request.bin",
    "srv_get_upgrade_bare_lf.response.bin",
    "srv_get_upgrade_closed.request.bin",
    "srv_get_upgrade_closed.response.bin",
    "srv_get_upgrade_dup_raft_first.request.bin",
    "srv_get_upgrade_dup_raft_first.response.bin",
    "srv_get_upgrade_dup_ws_first.request.bin",
    "srv_get_upgrade_dup_ws_first.response.bin",
    "srv_get_upgrade_http10.request.bin",
    "srv_get_upgrade_http10.response.bin",
    "srv_get_upgrade_http11_no_host.request.bin",
    "srv_get_upgrade_http11_no_host.response.bin",
    "srv_get_upgrade_list.request.bin",
    "srv_get_upgrade_list.response.bin",
    "srv_get_upgrade_lowercase_name.request.bin",
    "srv_get_upgrade_lowercase_name.response.bin",
    "srv_get_upgrade_not_accepted.request.bin",
    "srv_get_upgrade_not_accepted.response.bin",
    "srv_get_upgrade_ows.request.bin",
    "srv_get_upgrade_ows.response.bin",
    "srv_get_upgrade_pipelined_data.request.bin",
    "srv_get_upgrade_pipelined_data.response.bin",
    "srv_get_upgrade_query.request.bin",
    "srv_get_upgrade_query.response.bin",
    "srv_get_upgrade_then_data.request.bin",
    "srv_get_upgrade_then_data.request2.bin",
    "srv_get_upgrade_then_data.response.bin",
    "srv_get_upgrade_websocket.request.bin",
    "srv_get_upgrade_websocket.response.bin",
    "srv_get_upgrade_with_body.request.bin",
    "srv_get_upgrade_with_body.request2.bin",
    "srv_get_upgrade_with_body.response.bin",
    "srv_get_upgrade_with_connection.request.bin",
    "srv_get_upgrade_with_connection.response.bin",
    "srv_head.request.bin",
    "srv_head.response.bin",
    "srv_keepalive_400_then_upgrade.request.bin",
    "srv_keepalive_400_then_upgrade.request2.bin",
    "srv_keepalive_400_then_upgrade.response.bin",
    "srv_patch.request.bin",
    "srv_patch.response.bin",
    "srv_post_amp_injection.request.bin",
    "srv_post_amp_injection.response.bin",
    "srv_post_closed.request.bin",
    "srv_post_closed.response.bin",
    "srv_post_closed_no_id.request.bin",
    "srv_post_closed_no_id.response.bin",
    "srv_post_empty_id.request.bin",
    "srv_post_empty_id.response.bin",
    "srv_post_error.request.bin",
    "srv_post_error.response.bin",
    "srv_post_error_escaped_id.request.bin",
    "srv_post_error_escaped_id.response.bin",
    "srv_post_id_only.request.bin",
    "srv_post_id_only.response.bin",
    "srv_post_leader.request.bin",
    "srv_post_leader.response.bin",
    "srv_post_leader_escaped_query.request.bin",
    "srv_post_leader_escaped_query.response.bin",
    "srv_post_lowercase_method.request.bin",
    "srv_post_lowercase_method.response.bin",
    "srv_post_no_id.request.bin",
    "srv_post_no_id.response.bin",
    "srv_post_noconsumer.request.bin",
    "srv_post_noconsumer.response.bin",
    "srv_post_ok.request.bin",
    "srv_post_ok.response.bin",
    "srv_post_timeout.request.bin",
    "srv_post_timeout.response.bin",
    "srv_post_unescaped_space.request.bin",
    "srv_post_unescaped_space.response.bin",
    "srv_post_unknown.request.bin",
    "srv_post_unknown.response.bin",
    "srv_post_with_body.request.bin",
    "srv_post_with_body.response.bin",
    "srv_put.request.bin",
    "srv_put.response.bin",
];

/// The vectors are read from inside the repository: a plain clone, with nothing beside it,
/// runs the conformance tests.
#[test]
fn vectors_live_inside_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the core crate sits in the workspace root");
    let root = root.canonicalize().expect("workspace root");
    let dir = util::vectors_dir()
        .canonicalize()
        .expect("vector directory");
    assert!(
        dir.starts_with(&root),
        "{} is outside the repository {}",
        dir.display(),
        root.display()
    );
    assert!(root.join("Cargo.toml").is_file() && root.join("core").is_dir());
    assert!(
        dir.join("README.md").is_file(),
        "the vectors' README travels with them"
    );
}

#[test]
fn every_vector_file_is_known() {
    let dir = util::vectors_dir();
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    let known: BTreeSet<String> = KNOWN.iter().map(|&n| n.to_owned()).collect();
    let unknown: Vec<_> = on_disk.difference(&known).collect();
    let missing: Vec<_> = known.difference(&on_disk).collect();
    assert!(
        unknown.is_empty(),
        "vector files no test uses (add them to KNOWN and test them): {unknown:?}"
    );
    assert!(missing.is_empty(), "vector files gone: {missing:?}");
}

// ---------------------------------------------------------------------------------------------
// Our server: decode, route, answer, encode
// ---------------------------------------------------------------------------------------------

/// What the scripted (or real) Go handler's membership side answered (README "Setup").
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// `nil`.
    Ok,
    /// `*ErrDifferentLeader` with this leader.
    Leader(&'static str),
    /// `*ErrUnknownLeader`.
    Unknown,
    /// `errors.New("boom")`.
    Boom,
    /// Never calls `Done` ("nodone"), with `Timeout(50ms)`.
    Timeout,
}

impl Answer {
    fn outcome(self) -> Result<(), ChangeError> {
        match self {
            Self::Ok => Ok(()),
            Self::Leader(leader) => Err(ChangeError::NotLeader {
                leader: Some(leader.to_owned()),
            }),
            Self::Unknown => Err(ChangeError::NotLeader { leader: None }),
            Self::Boom => Err(ChangeError::failed("boom")),
            Self::Timeout => Err(ChangeError::Timeout),
        }
    }
}

/// How the Go handler behind a vector was set up.
#[derive(Clone, Copy, Debug)]
enum Script {
    /// Open; the request never reaches the membership side.
    Open,
    /// `Handler.Close()` was called.
    Closed,
    /// Open, and the membership side answers this.
    Answer(Answer),
}

fn router() -> Router {
    Router::new(RaftPath::new("/raft").unwrap())
}

/// What our server does with one request: the route (or the decode error) and the bytes it
/// answers, and how many request bytes the head occupied.
struct Served {
    route: Result<Route, RequestError>,
    response: Vec<u8>,
    consumed: usize,
}

fn serve_with(router: &Router, request: &[u8], script: Script, limits: Limits) -> Served {
    let (route, consumed, head_only) = match RequestDecoder::new(limits).decode(request) {
        Ok(Decoded::Complete { value, consumed }) => (
            Ok(router.route(
                &value,
                if matches!(script, Script::Closed) {
                    Availability::Closed
                } else {
                    Availability::Open
                },
            )),
            consumed,
            value.method() == "HEAD",
        ),
        Ok(Decoded::Incomplete) => panic!("incomplete request head"),
        Err(error) => (Err(error), 0, false),
    };
    let answer = match &route {
        Err(error) => Response::error(error),
        Ok(Route::Upgrade) => Response::switching_protocols(),
        Ok(Route::Respond(response)) => response.clone(),
        Ok(Route::NotFound) => Response::not_found(),
        Ok(Route::Change(change)) => {
            let Script::Answer(answer) = script else {
                panic!("{change:?} reached the membership side under {script:?}");
            };
            router.answer(change, &answer.outcome(), Scheme::Http)
        }
    };
    let mut response = Vec::new();
    if head_only {
        answer.encode_head(&mut response);
    } else {
        answer.encode(&mut response);
    }
    Served {
        route,
        response,
        consumed,
    }
}

fn serve(request: &[u8], script: Script) -> Served {
    serve_with(&router(), request, script, Limits::default())
}

/// The first response in `bytes` and its wire fields.
fn wire_of(bytes: &[u8], head_only: bool) -> Wire {
    wire(bytes, head_only).0
}

/// Vectors where our answer equals Go's on every compared field.
const MATCHING: &[(&str, Script)] = &[
    // 101: the upgrade.
    ("srv_get_upgrade", Script::Open),
    ("srv_get_upgrade_dup_raft_first", Script::Open),
    ("srv_get_upgrade_lowercase_name", Script::Open),
    ("srv_get_upgrade_ows", Script::Open),
    ("srv_get_upgrade_with_connection", Script::Open),
    ("srv_get_upgrade_http10", Script::Open),
    ("srv_get_upgrade_bare_lf", Script::Open),
    ("srv_get_upgrade_query", Script::Open),
    ("real_get_upgrade_leader", Script::Open),
    // Go closes this one 50 ms after the 101 because nobody accepts it; closing an unaccepted
    // connection is the driver's job (the route is the same).
    ("srv_get_upgrade_not_accepted", Script::Open),
    // 400 missing or invalid upgrade header.
    ("srv_get_no_upgrade", Script::Open),
    ("srv_get_upgrade_websocket", Script::Open),
    ("srv_get_upgrade_RAFT", Script::Open),
    ("srv_get_upgrade_list", Script::Open),
    ("srv_get_upgrade_dup_ws_first", Script::Open),
    // 404 from Go's ServeMux; ours is Route::NotFound answered with Response::not_found.
    ("srv_get_other_path", Script::Open),
    ("srv_get_path_trailing_slash", Script::Open),
    // 405 unknown action (HEAD without the body).
    ("srv_head", Script::Open),
    ("srv_patch", Script::Open),
    ("srv_put", Script::Open),
    ("srv_post_lowercase_method", Script::Open),
    // 400 no server ID provided.
    ("srv_post_no_id", Script::Open),
    ("srv_post_empty_id", Script::Open),
    ("srv_delete_no_id", Script::Open),
    // 403 raft transport closed.
    ("srv_post_closed", Script::Closed),
    ("srv_delete_closed", Script::Closed),
    ("srv_post_closed_no_id", Script::Closed),
    // Answered by the membership side.
    ("srv_post_ok", Script::Answer(Answer::Ok)),
    ("srv_post_id_only", Script::Answer(Answer::Ok)),
    ("srv_post_with_body", Script::Answer(Answer::Ok)),
    ("srv_delete_ok", Script::Answer(Answer::Ok)),
    (
        "srv_post_leader",
        Script::Answer(Answer::Leader("127.0.0.1:17202")),
    ),
    (
        "srv_delete_leader",
        Script::Answer(Answer::Leader("127.0.0.1:17202")),
    ),
    (
        "srv_post_leader_escaped_query",
        Script::Answer(Answer::Leader("127.0.0.1:17202")),
    ),
    ("srv_post_unknown", Script::Answer(Answer::Unknown)),
    ("srv_delete_unknown", Script::Answer(Answer::Unknown)),
    ("srv_post_error", Script::Answer(Answer::Boom)),
    ("srv_delete_error", Script::Answer(Answer::Boom)),
    ("srv_post_error_escaped_id", Script::Answer(Answer::Boom)),
    ("srv_post_amp_injection", Script::Answer(Answer::Boom)),
    ("srv_post_timeout", Script::Answer(Answer::Timeout)),
    ("srv_delete_timeout", Script::Answer(Answer::Timeout)),
    // Real hashicorp/raft nodes running raftmembership.HandleChangeRequests.
    ("real_post_no_leader", Script::Answer(Answer::Unknown)),
    (
        "real_post_follower",
        Script::Answer(Answer::Leader("127.0.0.1:17001")),
    ),
    (
        "real_delete_follower",
        Script::Answer(Answer::Leader("127.0.0.1:17001")),
    ),
];

/// The handler port each scripted setup listened on (README "Setup"), to check the table.
fn port_of(script: Script) -> Option<&'static str> {
    match script {
        Script::Answer(Answer::Ok) => Some("17301"),
        Script::Answer(Answer::Leader("127.0.0.1:17202")) => Some("17302"),
        Script::Answer(Answer::Unknown) => Some("17303"),
        Script::Answer(Answer::Boom) => Some("17304"),
        Script::Answer(Answer::Timeout) => Some("17305"),
        Script::Closed => Some("17308"),
        _ => None,
    }
}

#[test]
fn server_answers_like_go() {
    for &(stem, script) in MATCHING {
        let request = vector(&format!("{stem}.request.bin"));
        let go = vector(&format!("{stem}.response.bin"));
        if let (Some(port), false) = (port_of(script), stem.starts_with("real_")) {
            let (head, _) = util::request(&request);
            let host = head.headers().get("host").unwrap();
            assert!(
                host.ends_with(port.as_bytes()),
                "{stem}: the table's script does not match the handler at {}",
                String::from_utf8_lossy(host)
            );
        }
        let served = serve(&request, script);
        let head_only = stem == "srv_head";
        let (go_wire, go_len) = wire(&go, head_only);
        assert_eq!(
            go_len,
            go.len(),
            "{stem}: one Go response explains every byte"
        );
        let (ours, our_len) = wire(&served.response, head_only);
        assert_eq!(our_len, served.response.len(), "{stem}: one response");
        assert_eq!(ours, go_wire, "{stem}");
    }
}

#[test]
fn server_routes_go_requests() {
    // The route behind each matching answer, and what the application sees.
    let upgrade = |stem: &str| {
        let served = serve(&vector(&format!("{stem}.request.bin")), Script::Open);
        assert_eq!(served.route, Ok(Route::Upgrade), "{stem}");
    };
    for stem in [
        "srv_get_upgrade",
        "srv_get_upgrade_dup_raft_first",
        "srv_get_upgrade_lowercase_name",
        "srv_get_upgrade_ows",
        "srv_get_upgrade_with_connection",
        "srv_get_upgrade_http10",
        "srv_get_upgrade_bare_lf",
        "srv_get_upgrade_query",
        "srv_get_upgrade_not_accepted",
        "real_get_upgrade_leader",
    ] {
        upgrade(stem);
    }
    for stem in ["srv_get_other_path", "srv_get_path_trailing_slash"] {
        let served = serve(&vector(&format!("{stem}.request.bin")), Script::Open);
        assert_eq!(served.route, Ok(Route::NotFound), "{stem}");
    }
}

/// The change the application is handed for a membership request.
fn change_of(request: &[u8]) -> (ChangeKind, String, String, String) {
    let (head, _) = util::request(request);
    match router().route(&head, Availability::Open) {
        Route::Change(change) => (change.kind, change.id, change.address, change.raw_query),
        other => panic!("expected a change, got {other:?}"),
    }
}

#[test]
fn server_hands_the_application_what_go_does() {
    use ChangeKind::{Join, Leave};
    let cases = [
        ("srv_post_ok", Join, "3", "127.0.0.1:17103"),
        // Go passes a missing address on empty.
        ("srv_post_id_only", Join, "3", ""),
        ("srv_delete_ok", Leave, "3", ""),
        // The handler percent-decodes the query...
        ("srv_post_error_escaped_id", Join, "a b", "x"),
        (
            "srv_post_leader_escaped_query",
            Join,
            "a b",
            "127.0.0.1:17103",
        ),
        // ...and an unescaped `&` in Go's raw query cuts the id short, as Go's url.Values does.
        ("srv_post_amp_injection", Join, "a", "127.0.0.1:17103"),
        ("real_post_follower", Join, "9", "127.0.0.1:17009"),
        ("real_delete_follower", Leave, "9", ""),
    ];
    for (stem, kind, id, address) in cases {
        let (k, i, a, _) = change_of(&vector(&format!("{stem}.request.bin")));
        assert_eq!((k, i.as_str(), a.as_str()), (kind, id, address), "{stem}");
    }
    // Go's url.Values reads `+` as a space and skips pairs it cannot decode.
    let (_, id, address, _) =
        change_of(b"POST /raft?id=%zz&id=a+b&address=h%3A1 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((id.as_str(), address.as_str()), ("a b", "h:1"));
    // The raw query is kept verbatim for the redirect's Location.
    let (.., raw) = change_of(&vector("srv_post_leader_escaped_query.request.bin"));
    assert_eq!(raw, "id=a%20b&address=127.0.0.1%3A17103&x=%2F");
}

#[test]
fn server_skips_the_body_of_a_join() {
    // srv_post_with_body: Go ignores the 11-byte body and answers 200; the head says how long
    // the body is so the connection can be reused.
    let request = vector("srv_post_with_body.request.bin");
    let (head, consumed) = util::request(&request);
    assert_eq!(head.body_len(), Ok(11));
    assert_eq!(&request[consumed..], b"hello world");
}

#[test]
fn server_keep_alive_400_then_upgrade() {
    // Go answers the GET without Upgrade with 400 and keeps the connection; the upgrade GET
    // that follows on the same connection gets its 101.
    let go = vector("srv_keepalive_400_then_upgrade.response.bin");
    let (go_first, first_len) = wire(&go, false);
    let (go_second, second_len) = wire(&go[first_len..], false);
    assert_eq!(first_len + second_len, go.len());

    let first = serve(
        &vector("srv_keepalive_400_then_upgrade.request.bin"),
        Script::Open,
    );
    assert!(!Response::text(400, MISSING_UPGRADE_TEXT).closes_connection());
    assert_eq!(wire_of(&first.response, false), go_first);
    assert!(!go_first.close);
    let second = serve(
        &vector("srv_keepalive_400_then_upgrade.request2.bin"),
        Script::Open,
    );
    assert_eq!(second.route, Ok(Route::Upgrade));
    assert_eq!(wire_of(&second.response, false), go_second);
}

#[test]
fn server_upgraded_stream_is_transparent() {
    // srv_get_upgrade_then_data: after the 101, bytes sent later are the Raft stream (the Go
    // test peer echoed them).
    let request = vector("srv_get_upgrade_then_data.request.bin");
    let later = vector("srv_get_upgrade_then_data.request2.bin");
    let go = vector("srv_get_upgrade_then_data.response.bin");
    let served = serve(&request, Script::Open);
    assert_eq!(served.route, Ok(Route::Upgrade));
    assert_eq!(served.consumed, request.len());
    let (go_wire, go_head) = wire(&go, false);
    assert_eq!(wire_of(&served.response, false), go_wire);
    assert_eq!(&go[go_head..], later, "the echo of request2");
}

#[test]
fn server_keeps_bytes_pipelined_behind_the_upgrade() {
    // Deliberate difference: Go LOSES `ping\n` sent in the same write as the head (its Handler
    // ignores the hijacked bufio.Reader; the Go response is the bare 101). We keep it as the
    // tail, to be delivered first on the Raft stream.
    let request = vector("srv_get_upgrade_pipelined_data.request.bin");
    let go = vector("srv_get_upgrade_pipelined_data.response.bin");
    let served = serve(&request, Script::Open);
    assert_eq!(served.route, Ok(Route::Upgrade));
    assert_eq!(&request[served.consumed..], b"ping\n");
    let (go_wire, go_len) = wire(&go, false);
    assert_eq!(go_len, go.len(), "Go echoed nothing: the bytes were lost");
    assert_eq!(wire_of(&served.response, false), go_wire);
}

#[test]
fn differs_closed_upgrade_is_refused() {
    // Deliberate difference (Router::route docs): Go writes 101 on a closed handler and hangs
    // up at once; we refuse with 403 `raft transport closed` and never upgrade.
    let go = vector("srv_get_upgrade_closed.response.bin");
    assert_eq!(
        wire_of(&go, false).status_line,
        "HTTP/1.1 101 Switching Protocols"
    );
    let served = serve(
        &vector("srv_get_upgrade_closed.request.bin"),
        Script::Closed,
    );
    assert_eq!(served.route, Ok(Route::Respond(Response::closed())));
    let ours = wire_of(&served.response, false);
    assert_eq!(ours.status_line, "HTTP/1.1 403 Forbidden");
    assert_eq!(ours.body, format!("{CLOSED_TEXT}\n").as_bytes());
    // The same text and status Go uses for a closed handler's membership requests.
    let go_closed = wire_of(&vector("srv_post_closed.response.bin"), false);
    assert_eq!(ours, go_closed);
}

#[test]
fn differs_upgrade_with_body_is_refused() {
    // Deliberate difference: Go upgrades a GET with `Content-Length: 5` and silently drops the
    // 5 body bytes (then echoes request2); we answer 400 and do not upgrade.
    let go = vector("srv_get_upgrade_with_body.response.bin");
    let (go_wire, go_head) = wire(&go, false);
    assert_eq!(go_wire.status_line, "HTTP/1.1 101 Switching Protocols");
    assert_eq!(
        &go[go_head..],
        vector("srv_get_upgrade_with_body.request2.bin")
    );
    let request = vector("srv_get_upgrade_with_body.request.bin");
    let served = serve(&request, Script::Open);
    assert_eq!(&request[served.consumed..], b"hello");
    assert_eq!(
        served.route,
        Ok(Route::Respond(Response::text(400, UPGRADE_BODY_TEXT)))
    );
    let ours = wire_of(&served.response, false);
    assert_eq!(ours.status_line, "HTTP/1.1 400 Bad Request");
    assert_eq!(ours.body, format!("{UPGRADE_BODY_TEXT}\n").as_bytes());
}

#[test]
fn differs_no_consumer_answers_403_timeout() {
    // Deliberate difference: when nobody takes the request, Go blocks forever and sends
    // nothing (empty capture); our one deadline covers the hand-off too, and the answer is the
    // same 403 Go sends when the answer itself times out (srv_post_timeout).
    assert!(vector("srv_post_noconsumer.response.bin").is_empty());
    let served = serve(
        &vector("srv_post_noconsumer.request.bin"),
        Script::Answer(Answer::Timeout),
    );
    let go_timeout = wire_of(&vector("srv_post_timeout.response.bin"), false);
    assert_eq!(wire_of(&served.response, false), go_timeout);
    assert_eq!(
        go_timeout.body,
        b"failed to join server 3: timeout waiting for membership change\n"
    );
}

/// The request Go answered with srv_get_header_1mib (1 MiB of `a` in one header) or
/// srv_get_long_header (1 MiB + 8 KiB); not stored, built from the README.
fn long_header_request(len: usize) -> Vec<u8> {
    [
        &b"GET /raft HTTP/1.1\r\nHost: 127.0.0.1:17100\r\nX-Long: "[..],
        &vec![b'a'; len],
        b"\r\nUpgrade: raft\r\n\r\n",
    ]
    .concat()
}

#[test]
fn differs_heads_over_8_kib_are_431() {
    // Deliberate difference: Go's net/http accepts heads up to 1 MiB + 4 KiB; our default limit
    // is 8 KiB, so the 1 MiB head Go upgraded gets 431 from us.
    let go = vector("srv_get_header_1mib.response.bin");
    assert_eq!(
        wire_of(&go, false).status_line,
        "HTTP/1.1 101 Switching Protocols"
    );
    let request = long_header_request(1 << 20);
    let served = serve(&request, Script::Open);
    assert_eq!(
        served.route,
        Err(RequestError::HeadTooLarge { limit: 8 * 1024 })
    );
    let ours = wire_of(&served.response, false);
    assert_eq!(
        ours.status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    assert!(ours.close);

    // With Go's limit configured, we answer as Go does.
    let go_limits = Limits::default().with_max_head_bytes((1 << 20) + 4096);
    let served = serve_with(&router(), &request, Script::Open, go_limits);
    assert_eq!(served.route, Ok(Route::Upgrade));
    assert_eq!(wire_of(&served.response, false), wire_of(&go, false));
}

#[test]
fn head_over_go_limit_is_431_like_go() {
    // srv_get_long_header: over Go's own limit, Go answers 431 and closes. So do we, under
    // either limit. Go's body is `431 Request Header Fields Too Large` with no Content-Length;
    // ours says which limit was passed (bodies of net/http-level errors are not Handler
    // bodies, so only the status and the close must match).
    let go = wire_of(&vector("srv_get_long_header.response.bin"), false);
    assert_eq!(go.body, b"431 Request Header Fields Too Large");
    let request = long_header_request((1 << 20) + 8192);
    for limits in [
        Limits::default(),
        Limits::default().with_max_head_bytes((1 << 20) + 4096),
    ] {
        let served = serve_with(&router(), &request, Script::Open, limits);
        let ours = wire_of(&served.response, false);
        assert_eq!(ours.status_line, go.status_line);
        assert_eq!((ours.close, go.close), (true, true));
        assert_eq!(
            ours.body,
            format!("request head exceeds {} bytes\n", limits.max_head_bytes).as_bytes()
        );
    }
}

#[test]
fn differs_http11_without_host_body_text() {
    // HTTP/1.1 without Host: Go's net/http answers 400 with the reason in the status line
    // (`400 Bad Request: missing required Host header`) and the body, and closes. We answer
    // 400 and close, with a standard status line and our own body text.
    let go = wire_of(
        &vector("srv_get_upgrade_http11_no_host.response.bin"),
        false,
    );
    assert_eq!(
        go.status_line,
        "HTTP/1.1 400 Bad Request: missing required Host header"
    );
    let served = serve(
        &vector("srv_get_upgrade_http11_no_host.request.bin"),
        Script::Open,
    );
    assert_eq!(
        served.route,
        Ok(Route::Respond(Response::error(&RequestError::MissingHost)))
    );
    let ours = wire_of(&served.response, false);
    assert_eq!(ours.status_line, "HTTP/1.1 400 Bad Request");
    assert_eq!(ours.body, b"missing required Host header\n");
    assert_eq!((ours.close, go.close), (true, true));
}

#[test]
fn differs_unescaped_space_is_400() {
    // The Go client's own unescaped join (raw space in the target): Go's net/http answers
    // `400 Bad Request` and closes. So do we; only the body text differs.
    let go = wire_of(&vector("srv_post_unescaped_space.response.bin"), false);
    assert_eq!(go.body, b"400 Bad Request");
    let request = vector("srv_post_unescaped_space.request.bin");
    let served = serve(&request, Script::Answer(Answer::Boom));
    assert!(
        matches!(served.route, Err(RequestError::Malformed { .. })),
        "{:?}",
        served.route
    );
    let ours = wire_of(&served.response, false);
    assert_eq!(ours.status_line, go.status_line);
    assert_eq!((ours.close, go.close), (true, true));
    // It is byte for byte the request the Go client sends for that id and address.
    assert_eq!(request, vector("client_join_unescaped.request.bin"));
}

// ---------------------------------------------------------------------------------------------
// Requests the Go client sent: our server accepts them
// ---------------------------------------------------------------------------------------------

#[test]
fn server_accepts_go_dial_requests() {
    let cases = [
        ("dial_path_raft.request.bin", "/raft"),
        ("dial_path_root.request.bin", "/"),
        ("dial_path_query.request.bin", "/raft?x=1"),
        ("real_leader_dial.request.bin", "/raft"),
    ];
    for (name, path) in cases {
        let request = vector(name);
        let path = RaftPath::new(path).unwrap();
        let served = serve_with(
            &Router::new(path.clone()),
            &request,
            Script::Open,
            Limits::default(),
        );
        assert_eq!(served.route, Ok(Route::Upgrade), "{name}");
        assert_eq!(served.consumed, request.len(), "{name}");
        assert_eq!(
            wire_of(&served.response, false),
            wire_of(&vector("srv_get_upgrade.response.bin"), false)
        );
        // Go sends no Connection header, and its own address as Host: both are fine.
        let (head, _) = util::request(&request);
        assert_eq!(head.headers().get("connection"), None);

        // Our request line for the same path is Go's, byte for byte.
        let ours = upgrade_request(&path);
        let line = |b: &[u8]| b[..b.iter().position(|&c| c == b'\r').unwrap()].to_vec();
        assert_eq!(line(&ours), line(&request), "{name}");
    }
}

#[test]
fn server_keeps_raft_bytes_sent_with_a_go_dial() {
    // The first Raft bytes a Go client writes after the 101, arriving in the same read as
    // the head, come back as the tail.
    for (head, data) in [
        (
            "dial_path_raft.request.bin",
            "dial_after_upgrade.client_data.bin",
        ),
        (
            "real_leader_dial.request.bin",
            "real_leader_dial.after_upgrade.bin",
        ),
    ] {
        let data = vector(data);
        let buf = [vector(head), data.clone()].concat();
        let served = serve(&buf, Script::Open);
        assert_eq!(served.route, Ok(Route::Upgrade));
        assert_eq!(&buf[served.consumed..], data);
    }
    assert_eq!(vector("dial_after_upgrade.client_data.bin"), b"ping\n");
}

#[test]
fn server_accepts_go_membership_requests() {
    use ChangeKind::{Join, Leave};
    let cases = [
        ("client_join.request.bin", "/raft", Join),
        ("client_join_path_root.request.bin", "/", Join),
        ("client_join_redirect.first.request.bin", "/raft", Join),
        ("client_join_redirect.followup.request.bin", "/raft", Join),
        ("client_join_503.first.request.bin", "/raft", Join),
        ("client_join_503.retry.request.bin", "/raft", Join),
        ("client_leave.request.bin", "/raft", Leave),
        ("client_leave_redirect.first.request.bin", "/raft", Leave),
        ("client_leave_redirect.followup.request.bin", "/raft", Leave),
    ];
    for (name, path, kind) in cases {
        let request = vector(name);
        let router = Router::new(RaftPath::new(path).unwrap());
        let (head, consumed) = util::request(&request);
        assert_eq!(consumed, request.len(), "{name}");
        let Route::Change(change) = router.route(&head, Availability::Open) else {
            panic!("{name}: expected a change");
        };
        let address = if kind == Join { "127.0.0.1:17103" } else { "" };
        assert_eq!(
            (change.kind, change.id.as_str(), change.address.as_str()),
            (kind, "3", address),
            "{name}"
        );
    }
    // Go retries a 503 with identical bytes.
    assert_eq!(
        vector("client_join_503.first.request.bin"),
        vector("client_join_503.retry.request.bin")
    );
}

#[test]
fn server_refuses_go_unescaped_join_as_go_does() {
    // The Go client does not escape `a&b c`: the raw space breaks the request line, and Go's
    // own server answers 400 (srv_post_unescaped_space). So do we.
    let request = vector("client_join_unescaped.request.bin");
    let served = serve(&request, Script::Answer(Answer::Boom));
    assert!(matches!(served.route, Err(RequestError::Malformed { .. })));
    assert_eq!(
        wire_of(&served.response, false).status_line,
        "HTTP/1.1 400 Bad Request"
    );
    // Ours escapes the same values, and they arrive intact.
    let mut client = join_client(&RaftPath::default(), "a&b c", "127.0.0.1:17103/x?y");
    let transmit = transmit(&mut client);
    let (kind, id, address, _) = change_of(&transmit.request);
    assert_eq!(
        (kind, id.as_str(), address.as_str()),
        (ChangeKind::Join, "a&b c", "127.0.0.1:17103/x?y")
    );
}

// ---------------------------------------------------------------------------------------------
// Our client against Go's responses
// ---------------------------------------------------------------------------------------------

fn upgrade_request(path: &RaftPath) -> Vec<u8> {
    let mut out = Vec::new();
    ClientHandshake::new(path, "127.0.0.1:17201", Limits::default())
        .unwrap()
        .encode_request(&mut out);
    out
}

fn dial(response: &[u8]) -> Result<Vec<u8>, HandshakeError> {
    let mut handshake =
        ClientHandshake::new(&RaftPath::default(), "127.0.0.1:17201", Limits::default()).unwrap();
    match handshake.decode_response(response)? {
        Decoded::Complete {
            value: Upgraded { tail },
            consumed,
        } => {
            assert_eq!(tail, &response[consumed..]);
            Ok(tail.to_vec())
        }
        Decoded::Incomplete => panic!("incomplete response"),
    }
}

#[test]
fn client_dial_outcomes_match_go() {
    // README A2: the Go client's result for each crafted response.
    let accepted: [(&str, &[u8]); 4] = [
        ("dial_resp_101_lowercase_header.response.bin", b""),
        ("dial_resp_101_with_connection.response.bin", b""),
        ("dial_resp_http10_101.response.bin", b""),
        // Go LOSES `hello` (it stays in Dial's private bufio.Reader); we keep it as the tail.
        ("dial_resp_101_trailing_data.response.bin", b"hello"),
    ];
    for (name, tail) in accepted {
        assert_eq!(dial(&vector(name)).as_deref(), Ok(tail), "{name}");
    }
    let refused = [
        (
            "dial_resp_200.response.bin",
            "dialing fail: expected status code 101 got 200",
        ),
        (
            "dial_resp_101_no_upgrade.response.bin",
            "missing or unexpected Upgrade header in response",
        ),
        (
            "dial_resp_101_upgrade_RAFT.response.bin",
            "missing or unexpected Upgrade header in response",
        ),
        (
            "dial_resp_garbage.response.bin",
            r#"failed to read response: malformed HTTP response "garbage""#,
        ),
    ];
    for (name, message) in refused {
        let error = dial(&vector(name)).unwrap_err();
        assert_eq!(error.to_string(), message, "{name}");
    }
    assert_eq!(
        dial(&vector("dial_resp_200.response.bin")),
        Err(HandshakeError::UnexpectedStatus { status: 200 })
    );
    assert_eq!(
        dial(&vector("dial_resp_101_no_upgrade.response.bin")),
        Err(HandshakeError::MissingUpgrade)
    );
}

#[test]
fn client_dials_a_go_server() {
    // Our handshake against what a Go server sends.
    assert_eq!(
        dial(&vector("srv_get_upgrade.response.bin")).as_deref(),
        Ok(&b""[..])
    );
    // The echo that came after the 101 is Raft stream: kept as the tail.
    assert_eq!(
        dial(&vector("srv_get_upgrade_then_data.response.bin")).as_deref(),
        Ok(&b"ping\n"[..])
    );
    // README: Go Dial against a path that is not routed reads
    // `dialing fail: expected status code 101 got 404`.
    assert_eq!(
        dial(&vector("srv_get_other_path.response.bin"))
            .unwrap_err()
            .to_string(),
        "dialing fail: expected status code 101 got 404"
    );
    assert_eq!(
        dial(&vector("srv_get_no_upgrade.response.bin")),
        Err(HandshakeError::UnexpectedStatus { status: 400 })
    );
}

#[test]
fn client_upgrade_request_is_accepted_by_our_router() {
    for path in ["/raft", "/", "/raft?x=1", "/a/b"] {
        let path = RaftPath::new(path).unwrap();
        let request = upgrade_request(&path);
        let (head, consumed) = util::request(&request);
        assert_eq!(consumed, request.len());
        assert_eq!(
            Router::new(path.clone()).route(&head, Availability::Open),
            Route::Upgrade
        );
        // What a Go server checks: GET, the path, a Host (net/http) and `Upgrade: raft` as the
        // first Upgrade field.
        assert_eq!(head.method(), "GET");
        assert_eq!(head.target(), path.as_str());
        assert_eq!(head.headers().get("host"), Some(&b"127.0.0.1:17201"[..]));
        assert_eq!(head.headers().get("upgrade"), Some(&b"raft"[..]));
        assert_eq!(head.body_len(), Ok(0));
    }
}

fn start() -> Instant {
    // Any fixed origin: the machines never read the clock.
    Instant::now()
}

fn join_client(path: &RaftPath, id: &str, address: &str) -> MembershipClient {
    MembershipClient::new(
        ChangeKind::Join,
        path,
        id,
        address,
        "127.0.0.1:17201",
        start() + Duration::from_secs(5),
    )
    .unwrap()
}

fn leave_client() -> MembershipClient {
    MembershipClient::new(
        ChangeKind::Leave,
        &RaftPath::default(),
        "3",
        "",
        "127.0.0.1:17201",
        start() + Duration::from_secs(5),
    )
    .unwrap()
}

fn transmit(client: &mut MembershipClient) -> Transmit {
    match client.poll_output() {
        Output::Transmit(transmit) => transmit,
        other => panic!("expected a request, got {other:?}"),
    }
}

/// Feeds a whole captured response (head and body) to `client`.
fn reply(client: &mut MembershipClient, now: Instant, bytes: &[u8]) {
    match ResponseDecoder::new(Limits::default()).decode(bytes) {
        Ok(Decoded::Complete { value, consumed }) => {
            let body = util::body(&value, &bytes[consumed..], false);
            client.handle_response(now, &value, body);
        }
        Ok(Decoded::Incomplete) => panic!("incomplete response"),
        Err(error) => client.handle_malformed(error),
    }
}

fn done(client: &mut MembershipClient) -> Result<(), MembershipError> {
    match client.poll_output() {
        Output::Done(result) => result,
        other => panic!("expected the end, got {other:?}"),
    }
}

/// The request line and Host of a request.
fn line_and_host(request: &[u8]) -> (String, String) {
    let (head, _) = util::request(request);
    let line = format!("{} {} HTTP/1.1", head.method(), head.target());
    let host = String::from_utf8(head.headers().get("host").unwrap().to_vec()).unwrap();
    (line, host)
}

#[test]
fn client_membership_requests_read_like_go() {
    // Same request line and Host as the Go client for plain values (`:` is not escaped).
    let mut join = join_client(&RaftPath::default(), "3", "127.0.0.1:17103");
    let sent = transmit(&mut join);
    assert_eq!(sent.authority, "127.0.0.1:17201");
    assert_eq!(sent.scheme, Scheme::Http);
    assert_eq!(
        line_and_host(&sent.request),
        line_and_host(&vector("client_join.request.bin"))
    );
    let (head, _) = util::request(&sent.request);
    assert_eq!(head.body_len(), Ok(0));
    assert_eq!(head.headers().get("content-length"), Some(&b"0"[..]));

    let mut leave = leave_client();
    let sent = transmit(&mut leave);
    assert_eq!(
        line_and_host(&sent.request),
        line_and_host(&vector("client_leave.request.bin"))
    );
    let (head, _) = util::request(&sent.request);
    // Like Go, a leave carries no Content-Length (and no address).
    assert_eq!(head.headers().get("content-length"), None);

    let mut root = join_client(&RaftPath::new("/").unwrap(), "3", "127.0.0.1:17103");
    assert_eq!(
        line_and_host(&transmit(&mut root).request),
        line_and_host(&vector("client_join_path_root.request.bin"))
    );
}

#[test]
fn client_follows_a_go_redirect_like_go() {
    // Join to 17201, answered with the Go Handler's own 308: the follow-up goes to 17202 with
    // the same method, request line and query as the Go client's follow-up.
    let now = start();
    let mut join = join_client(&RaftPath::default(), "3", "127.0.0.1:17103");
    let first = transmit(&mut join);
    assert_eq!(
        line_and_host(&first.request),
        line_and_host(&vector("client_join_redirect.first.request.bin"))
    );
    reply(&mut join, now, &vector("srv_post_leader.response.bin"));
    let followup = transmit(&mut join);
    assert_eq!(followup.authority, "127.0.0.1:17202");
    assert_eq!(
        line_and_host(&followup.request),
        line_and_host(&vector("client_join_redirect.followup.request.bin"))
    );
    reply(&mut join, now, &vector("srv_post_ok.response.bin"));
    assert_eq!(done(&mut join), Ok(()));

    let mut leave = leave_client();
    let first = transmit(&mut leave);
    assert_eq!(
        line_and_host(&first.request),
        line_and_host(&vector("client_leave_redirect.first.request.bin"))
    );
    reply(&mut leave, now, &vector("srv_delete_leader.response.bin"));
    let followup = transmit(&mut leave);
    assert_eq!(
        line_and_host(&followup.request),
        line_and_host(&vector("client_leave_redirect.followup.request.bin"))
    );
    reply(&mut leave, now, &vector("srv_delete_ok.response.bin"));
    assert_eq!(done(&mut leave), Ok(()));
}

#[test]
fn client_retries_a_go_503_like_go() {
    // Join answered with the Go Handler's 503 (leader unknown): the retry is the same request.
    let now = start();
    let mut join = join_client(&RaftPath::default(), "3", "127.0.0.1:17103");
    let first = transmit(&mut join);
    assert_eq!(
        line_and_host(&first.request),
        line_and_host(&vector("client_join_503.first.request.bin"))
    );
    reply(&mut join, now, &vector("srv_post_unknown.response.bin"));
    let Output::Timeout(at) = join.poll_output() else {
        panic!("expected a backoff");
    };
    assert!(at > now);
    join.handle_timeout(at);
    let retry = transmit(&mut join);
    assert_eq!(retry, first);
    assert_eq!(
        line_and_host(&retry.request),
        line_and_host(&vector("client_join_503.retry.request.bin"))
    );
    reply(&mut join, at, &vector("srv_post_ok.response.bin"));
    assert_eq!(done(&mut join), Ok(()));
}

#[test]
fn client_membership_errors_read_like_go() {
    let cases = [
        // README D: crafted responses.
        (
            "client_join_resp_204.response.bin",
            "server join failed: http code 204 ''",
        ),
        (
            "client_join_resp_308_no_location.response.bin",
            "server join failed: http code 308 ''",
        ),
        (
            "client_join_resp_400_body.response.bin",
            "server join failed: http code 400 'spaced  message'",
        ),
        // README "Client results without a vector file", against Go Handler responses.
        (
            "srv_post_error.response.bin",
            "server join failed: http code 403 'failed to join server 3: boom'",
        ),
        // go-test-cases.md 26: a 404 from ServeMux.
        (
            "srv_get_other_path.response.bin",
            "server join failed: http code 404 '404 page not found'",
        ),
    ];
    for (name, message) in cases {
        let mut join = join_client(&RaftPath::default(), "3", "127.0.0.1:17103");
        let _ = transmit(&mut join);
        reply(&mut join, start(), &vector(name));
        let error = done(&mut join).unwrap_err();
        assert_eq!(error.to_string(), message, "{name}");
    }
    let mut leave = leave_client();
    let _ = transmit(&mut leave);
    reply(
        &mut leave,
        start(),
        &vector("srv_delete_error.response.bin"),
    );
    assert_eq!(
        done(&mut leave).unwrap_err().to_string(),
        "server leave failed: http code 403 'failed to leave server 3: boom'"
    );
    let mut join = join_client(&RaftPath::default(), "3", "127.0.0.1:17103");
    let _ = transmit(&mut join);
    reply(
        &mut join,
        start(),
        &vector("client_join_resp_204.response.bin"),
    );
    assert_eq!(
        done(&mut join),
        Err(MembershipError::Status {
            kind: ChangeKind::Join,
            status: 204,
            body: "".into(),
            url: "http://127.0.0.1:17201/raft?id=3&address=127.0.0.1:17103".into(),
        })
    );
}

#[test]
fn client_membership_malformed_response() {
    let mut join = join_client(&RaftPath::default(), "3", "127.0.0.1:17103");
    let _ = transmit(&mut join);
    reply(
        &mut join,
        start(),
        &vector("dial_resp_garbage.response.bin"),
    );
    let error = done(&mut join).unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"server join failed: POST "http://127.0.0.1:17201/raft?id=3&address=127.0.0.1:17103": malformed HTTP response "garbage""#
    );
}

#[test]
fn client_membership_requests_are_accepted_by_our_router() {
    let router = router();
    let mut join = join_client(&RaftPath::default(), "3", "127.0.0.1:17103");
    let request = transmit(&mut join).request;
    let (head, consumed) = util::request(&request);
    assert_eq!(consumed, request.len());
    let Route::Change(change) = router.route(&head, Availability::Open) else {
        panic!("expected a change");
    };
    assert_eq!(
        (change.kind, change.id.as_str(), change.address.as_str()),
        (ChangeKind::Join, "3", "127.0.0.1:17103")
    );
    // Our own redirect is followed to the same request at the leader.
    let mut redirect = Vec::new();
    router
        .answer(
            &change,
            &Answer::Leader("127.0.0.1:17202").outcome(),
            Scheme::Http,
        )
        .encode(&mut redirect);
    assert_eq!(
        wire_of(&redirect, false),
        wire_of(&vector("srv_post_leader.response.bin"), false)
    );
    reply(&mut join, start(), &redirect);
    let followup = transmit(&mut join);
    assert_eq!(followup.authority, "127.0.0.1:17202");
    assert_eq!(change_of(&followup.request).1, "3");

    let mut leave = leave_client();
    let request = transmit(&mut leave).request;
    let (head, _) = util::request(&request);
    let Route::Change(change) = router.route(&head, Availability::Open) else {
        panic!("expected a change");
    };
    assert_eq!(
        (change.kind, change.id.as_str(), change.address.as_str()),
        (ChangeKind::Leave, "3", "")
    );
}

#[test]
fn server_texts_are_gos() {
    // The body constants are Go's texts (without the newline http.Error adds).
    let body = |name: &str| wire_of(&vector(name), name == "srv_head.response.bin").body;
    assert_eq!(
        body("srv_get_no_upgrade.response.bin"),
        format!("{MISSING_UPGRADE_TEXT}\n").as_bytes()
    );
    assert_eq!(
        body("srv_patch.response.bin"),
        format!("{UNKNOWN_ACTION_TEXT}\n").as_bytes()
    );
    assert_eq!(
        body("srv_get_other_path.response.bin"),
        format!("{NOT_FOUND_TEXT}\n").as_bytes()
    );
    assert_eq!(
        body("srv_post_closed.response.bin"),
        format!("{CLOSED_TEXT}\n").as_bytes()
    );
}

// ---------------------------------------------------------------------------------------------
// Beyond the captures: routing rules Go does not exercise
// ---------------------------------------------------------------------------------------------

#[test]
fn router_routes_absolute_form_targets() {
    let served = serve(
        b"GET http://127.0.0.1:17100/raft HTTP/1.1\r\nHost: 127.0.0.1:17100\r\nUpgrade: raft\r\n\r\n",
        Script::Open,
    );
    assert_eq!(served.route, Ok(Route::Upgrade));
    let (kind, id, address, raw) =
        change_of(b"POST http://h:1/raft?id=3&address=a:1 HTTP/1.1\r\nHost: h:1\r\n\r\n");
    assert_eq!(
        (kind, id.as_str(), address.as_str(), raw.as_str()),
        (ChangeKind::Join, "3", "a:1", "id=3&address=a:1")
    );
    let served = serve(
        b"GET http://h:1/other HTTP/1.1\r\nHost: h:1\r\nUpgrade: raft\r\n\r\n",
        Script::Open,
    );
    assert_eq!(served.route, Ok(Route::NotFound));
}

#[test]
fn router_refuses_bodies_it_cannot_skip() {
    let cases: [(&[u8], RequestError); 3] = [
        (
            b"POST /raft?id=3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            RequestError::TransferEncoding,
        ),
        (
            b"POST /raft?id=3 HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n",
            RequestError::InvalidContentLength,
        ),
        (
            b"GET /raft HTTP/1.1\r\nHost: a\r\nUpgrade: raft\r\nTransfer-Encoding: chunked\r\n\r\n",
            RequestError::TransferEncoding,
        ),
    ];
    for (request, error) in cases {
        let served = serve(request, Script::Answer(Answer::Ok));
        let response = Response::error(&error);
        assert!(response.closes_connection());
        assert_eq!(served.route, Ok(Route::Respond(response)), "{error:?}");
    }
    assert_eq!(RequestError::TransferEncoding.status(), 411);
    // An explicit empty body is no body.
    let served = serve(
        b"GET /raft HTTP/1.1\r\nHost: a\r\nUpgrade: raft\r\nContent-Length: 0\r\n\r\n",
        Script::Open,
    );
    assert_eq!(served.route, Ok(Route::Upgrade));
}

#[test]
fn router_answers() {
    let router = router();
    let bytes = vector("srv_post_leader.request.bin");
    let (head, _) = util::request(&bytes);
    let Route::Change(change) = router.route(&head, Availability::Open) else {
        panic!("expected a change");
    };
    // A TLS listener redirects to https.
    let response = router.answer(
        &change,
        &Answer::Leader("127.0.0.1:17202").outcome(),
        Scheme::Https,
    );
    assert_eq!(
        response.location(),
        Some("https://127.0.0.1:17202/raft?id=3&address=127.0.0.1:17103")
    );
    // A leader address that cannot go in a Location is reported, not redirected to.
    let response = router.answer(
        &change,
        &Err(ChangeError::NotLeader {
            leader: Some("bad leader\r\nX: y".into()),
        }),
        Scheme::Http,
    );
    assert_eq!(response.status(), 403);
    assert_eq!(response.location(), None);
    // A change without a query redirects to the bare path.
    let bare = rafthttp_core::Change {
        raw_query: String::new(),
        ..change.clone()
    };
    let response = router.answer(
        &bare,
        &Answer::Leader("127.0.0.1:17202").outcome(),
        Scheme::Http,
    );
    assert_eq!(response.location(), Some("http://127.0.0.1:17202/raft"));
    // Other failures are 403 with Go's framing.
    for (error, text) in [
        (ChangeError::Closed, "raft transport closed"),
        (
            ChangeError::Dropped,
            "membership request dropped without an answer",
        ),
    ] {
        let response = router.answer(&change, &Err(error), Scheme::Http);
        assert_eq!(response.status(), 403);
        assert_eq!(
            response.body(),
            format!("failed to join server 3: {text}\n").as_bytes()
        );
    }
}

#[test]
fn go_handler_test_cases() {
    // go-test-cases.md "Handler": the Go package's own handler tests, on our router.
    let request = |line: &str| format!("{line} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes();
    let body = |served: &Served| String::from_utf8(wire_of(&served.response, false).body).unwrap();
    let status = |served: &Served| util::response(&served.response).0.status();

    // 1. GET without Upgrade.
    let served = serve(&request("GET /raft"), Script::Open);
    assert_eq!(
        (status(&served), body(&served).as_str()),
        (400, "missing or invalid upgrade header\n")
    );
    // 2. Upgrade after close: refused, not upgraded.
    let upgrade = b"GET /raft HTTP/1.1\r\nHost: a\r\nUpgrade: raft\r\n\r\n";
    let served = serve(upgrade, Script::Closed);
    assert_eq!(served.route, Ok(Route::Respond(Response::closed())));
    assert_eq!(
        (status(&served), body(&served).as_str()),
        (403, "raft transport closed\n")
    );
    // 7. A valid upgrade: the client reads exactly Go's two lines first.
    let served = serve(upgrade, Script::Open);
    assert_eq!(served.route, Ok(Route::Upgrade));
    assert!(
        served
            .response
            .starts_with(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raft\r\n")
    );
    // 8. POST without id.
    let served = serve(&request("POST /raft"), Script::Open);
    assert_eq!(
        (status(&served), body(&served).as_str()),
        (400, "no server ID provided\n")
    );
    // 9. DELETE ?id=999 answered `boom`; the application saw id 999, leave.
    let served = serve(
        &request("DELETE /raft?id=999"),
        Script::Answer(Answer::Boom),
    );
    let Ok(Route::Change(change)) = &served.route else {
        panic!("expected a change");
    };
    assert_eq!(
        (change.kind, change.id.as_str()),
        (ChangeKind::Leave, "999")
    );
    assert_eq!(
        (status(&served), body(&served).as_str()),
        (403, "failed to leave server 999: boom\n")
    );
    // 10. DELETE after close.
    let served = serve(&request("DELETE /raft?id=999"), Script::Closed);
    assert_eq!(
        (status(&served), body(&served).as_str()),
        (403, "raft transport closed\n")
    );
    // 11. DELETE ?id=666 with no answer in time.
    let served = serve(
        &request("DELETE /raft?id=666"),
        Script::Answer(Answer::Timeout),
    );
    assert_eq!(
        (status(&served), body(&served).as_str()),
        (
            403,
            "failed to leave server 666: timeout waiting for membership change\n"
        )
    );
    // 12. POST ?id=666&address=abc answered Ok; the application saw 666, abc, join.
    let served = serve(
        &request("POST /raft?id=666&address=abc"),
        Script::Answer(Answer::Ok),
    );
    let Ok(Route::Change(change)) = &served.route else {
        panic!("expected a change");
    };
    assert_eq!(
        (change.kind, change.id.as_str(), change.address.as_str()),
        (ChangeKind::Join, "666", "abc")
    );
    assert_eq!((status(&served), body(&served).as_str()), (200, ""));
    // 13. Not leader, leader known: 308 to it.
    let served = serve(
        &request("POST /raft?id=666&address=abc"),
        Script::Answer(Answer::Leader("127.0.0.1:17202")),
    );
    assert_eq!(status(&served), 308);
    assert_eq!(
        wire_of(&served.response, false).location.as_deref(),
        Some("http://127.0.0.1:17202/raft?id=666&address=abc")
    );
    // 14. Not leader, leader unknown: 503.
    let served = serve(
        &request("POST /raft?id=666&address=abc"),
        Script::Answer(Answer::Unknown),
    );
    assert_eq!(
        (status(&served), body(&served).as_str()),
        (
            503,
            "failed to join server 666: node is not leader, current leader unknown\n"
        )
    );
    // 15. PATCH.
    let served = serve(&request("PATCH /raft"), Script::Open);
    assert_eq!(
        (status(&served), body(&served).as_str()),
        (405, "unknown action\n")
    );
}
