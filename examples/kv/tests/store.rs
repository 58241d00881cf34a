//! Runs openraft's storage conformance suite against the in-memory store, plus a few
//! key-value specific checks.

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite, log_id};
use openraft::{Entry, EntryPayload, RaftLogReader, RaftSnapshotBuilder, StorageError};
use rafthttp_kv::{LogStore, Request, Response, StateMachine, TypeConfig};

/// Boxed so that clippy's `result_large_err` does not fire (`StorageError` is ~224 bytes).
type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Builds a fresh, empty `(LogStore, StateMachine)` pair for every suite case.
struct MemStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine> for MemStoreBuilder {
    async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError<u64>> {
        Ok(((), LogStore::new(), StateMachine::new()))
    }
}

/// `Suite::test_all` creates its own tokio runtime per case, so this must be a plain `#[test]`
/// (calling it from inside `#[tokio::test]` would panic with a nested runtime).
#[test]
fn openraft_storage_suite() -> TestResult {
    Suite::test_all(MemStoreBuilder)?;
    Ok(())
}

fn normal(term: u64, index: u64, req: Request) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, 0, index),
        payload: EntryPayload::Normal(req),
    }
}

fn set(key: &str, value: &str) -> Request {
    Request::Set {
        key: key.to_string(),
        value: value.to_string(),
    }
}

fn del(key: &str) -> Request {
    Request::Delete {
        key: key.to_string(),
    }
}

#[tokio::test]
async fn apply_set_delete_returns_previous_value() -> TestResult {
    let mut sm = StateMachine::new();
    let reader = sm.clone();

    let resp = sm
        .apply([
            normal(1, 1, set("a", "1")),
            normal(1, 2, set("a", "2")),
            normal(1, 3, del("a")),
            normal(1, 4, del("missing")),
            normal(1, 5, set("b", "x")),
        ])
        .await?;

    let values: Vec<Option<String>> = resp.into_iter().map(|r: Response| r.value).collect();
    assert_eq!(
        values,
        vec![None, Some("1".into()), Some("2".into()), None, None]
    );

    // The application's clone sees openraft's writes.
    assert_eq!(reader.get("a"), None);
    assert_eq!(reader.get("b"), Some("x".to_string()));
    assert_eq!(reader.len(), 1);
    assert!(!reader.is_empty());
    assert_eq!(reader.last_applied(), Some(log_id(1, 0, 5)));
    Ok(())
}

#[tokio::test]
async fn snapshot_round_trip_carries_data() -> TestResult {
    let mut leader = StateMachine::new();
    leader
        .apply([normal(1, 1, set("k1", "v1")), normal(1, 2, set("k2", "v2"))])
        .await?;
    let snap = leader.get_snapshot_builder().await.build_snapshot().await?;

    let mut follower = StateMachine::new();
    follower.apply([normal(1, 1, set("stale", "gone"))]).await?;
    let mut buf = follower.begin_receiving_snapshot().await?;
    *buf = *snap.snapshot;
    follower.install_snapshot(&snap.meta, buf).await?;

    assert_eq!(follower.snapshot_of_data(), leader.snapshot_of_data());
    assert_eq!(follower.get("stale"), None);
    assert_eq!(follower.last_applied(), Some(log_id(1, 0, 2)));
    let cur = follower.get_current_snapshot().await?;
    assert_eq!(cur.map(|s| s.meta), Some(snap.meta));
    Ok(())
}

#[tokio::test]
async fn install_garbage_snapshot_is_an_error() -> TestResult {
    let mut sm = StateMachine::new();
    let mut buf = sm.begin_receiving_snapshot().await?;
    buf.get_mut().extend_from_slice(b"not json");
    let meta = openraft::SnapshotMeta::default();
    assert!(sm.install_snapshot(&meta, buf).await.is_err());
    assert!(sm.get_current_snapshot().await?.is_none());
    Ok(())
}

#[tokio::test]
async fn log_store_clones_share_state() -> TestResult {
    let mut store = LogStore::new();
    let mut reader = store.get_log_reader().await;

    store
        .blocking_append([normal(1, 1, set("a", "1")), normal(1, 2, set("b", "2"))])
        .await?;
    assert_eq!(reader.try_get_log_entries(1..3).await?.len(), 2);

    store.purge(log_id(1, 0, 1)).await?;
    store.truncate(log_id(1, 0, 2)).await?;
    let state = store.get_log_state().await?;
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 0, 1)));
    assert_eq!(state.last_log_id, Some(log_id(1, 0, 1)));
    assert!(reader.try_get_log_entries(..).await?.is_empty());

    store.save_committed(Some(log_id(1, 0, 1))).await?;
    assert_eq!(store.read_committed().await?, Some(log_id(1, 0, 1)));
    Ok(())
}
