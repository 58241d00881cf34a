//! Measurements for a metrics recorder, with the `metrics` feature: the
//! [`metrics`](https://docs.rs/metrics) facade, which the application installs a recorder
//! (Prometheus, StatsD, ...) for. Without the feature every function here compiles to nothing.
//!
//! Names and labels are listed in the workspace README, "Metrics". Upgrades accepted are
//! `rafthttp_requests_total{endpoint="upgrade",status="101"}`; those refused carry the status
//! that says why.

use std::time::Duration;

use rafthttp_core::{ChangeKind, Endpoint};

/// Whether an operation succeeded, as a label.
#[cfg(feature = "metrics")]
fn outcome(ok: bool) -> &'static str {
    if ok { "ok" } else { "error" }
}

#[cfg(feature = "metrics")]
pub(crate) fn request(endpoint: Endpoint, status: u16, took: Duration) {
    let endpoint = endpoint.as_str();
    metrics::counter!("rafthttp_requests_total", "endpoint" => endpoint, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("rafthttp_request_duration_seconds", "endpoint" => endpoint)
        .record(took.as_secs_f64());
}

/// The accept queue (over every handler in the process) grew or shrank by one.
#[cfg(feature = "metrics")]
pub(crate) fn accept_queue(change: i8) {
    metrics::gauge!("rafthttp_accept_queue_depth").increment(f64::from(change));
}

#[cfg(feature = "metrics")]
pub(crate) fn dial(ok: bool, took: Duration) {
    metrics::counter!("rafthttp_dials_total", "outcome" => outcome(ok)).increment(1);
    metrics::histogram!("rafthttp_dial_duration_seconds").record(took.as_secs_f64());
}

#[cfg(feature = "metrics")]
pub(crate) fn membership(kind: ChangeKind, ok: bool, took: Duration) {
    let kind = kind.as_str();
    metrics::counter!("rafthttp_membership_changes_total", "kind" => kind, "outcome" => outcome(ok))
        .increment(1);
    metrics::histogram!("rafthttp_membership_change_duration_seconds", "kind" => kind)
        .record(took.as_secs_f64());
}

#[cfg(not(feature = "metrics"))]
pub(crate) fn request(_: Endpoint, _: u16, _: Duration) {}

#[cfg(not(feature = "metrics"))]
pub(crate) fn accept_queue(_: i8) {}

#[cfg(not(feature = "metrics"))]
pub(crate) fn dial(_: bool, _: Duration) {}

#[cfg(not(feature = "metrics"))]
pub(crate) fn membership(_: ChangeKind, _: bool, _: Duration) {}
