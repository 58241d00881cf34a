//! In-memory Raft storage (openraft 0.9, `storage-v2` API) for a replicated key-value service.
//!
//! - [`LogStore`] implements [`RaftLogStorage`] and [`RaftLogReader`].
//! - [`StateMachine`] implements [`RaftStateMachine`] and [`RaftSnapshotBuilder`].
//!
//! Both types are cheap to clone: clones share the same underlying state through an
//! `Arc<Mutex<..>>`, so the application can keep a handle (e.g. for reads) while openraft owns
//! another.
//!
//! Nothing is persisted to disk: all state is lost when the last clone is dropped.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, LogState, OptionalSend, RaftLogReader,
    RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
    Vote,
};
use serde::{Deserialize, Serialize};

openraft::declare_raft_types!(
    /// Raft type configuration of the key-value service.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Node id type used by [`TypeConfig`].
pub type NodeId = u64;

/// Result type of the storage methods.
type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// A client write request, replicated through the Raft log and applied to the [`StateMachine`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Set `key` to `value`, overwriting any previous value.
    Set {
        /// The key to write.
        key: String,
        /// The new value.
        value: String,
    },
    /// Remove `key`; a no-op if the key does not exist.
    Delete {
        /// The key to remove.
        key: String,
    },
}

/// The result of applying one log entry to the [`StateMachine`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The value the key held **before** the request was applied.
    ///
    /// - [`Request::Set`]: the overwritten value, `None` if the key was new.
    /// - [`Request::Delete`]: the removed value, `None` if the key did not exist.
    /// - Blank and membership entries: always `None`.
    pub value: Option<String>,
}

/// Lock a mutex, recovering the data if a previous holder panicked.
///
/// The protected state is only mutated through short, non-panicking critical sections, so a
/// poisoned lock does not indicate inconsistent data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Log store
// ---------------------------------------------------------------------------------------------

/// The state shared by all clones of a [`LogStore`].
#[derive(Debug, Default)]
struct LogStoreInner {
    /// Log entries keyed by log index.
    log: BTreeMap<u64, Entry<TypeConfig>>,
    /// The last purged log id; entries up to and including it have been removed.
    last_purged_log_id: Option<LogId<NodeId>>,
    /// The last saved vote.
    vote: Option<Vote<NodeId>>,
    /// The last saved committed log id.
    committed: Option<LogId<NodeId>>,
}

/// In-memory Raft log storage; also holds the vote and the committed log id.
///
/// Cloning is cheap and clones share state; a clone is used as the
/// [`RaftLogStorage::LogReader`].
#[derive(Debug, Clone, Default)]
pub struct LogStore {
    inner: Arc<Mutex<LogStoreInner>>,
}

impl LogStore {
    /// Create an empty log store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let inner = lock(&self.inner);
        Ok(inner.log.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let inner = lock(&self.inner);
        let last_purged_log_id = inner.last_purged_log_id;
        let last_log_id = inner
            .log
            .last_key_value()
            .map(|(_, e)| e.log_id)
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        lock(&self.inner).vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        Ok(lock(&self.inner).vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        lock(&self.inner).committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        Ok(lock(&self.inner).committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        {
            let mut inner = lock(&self.inner);
            for entry in entries {
                inner.log.insert(entry.log_id.index, entry);
            }
        }
        // Memory is the "durable" medium here: entries are persisted as soon as they are stored.
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        tracing::debug!("truncate log since: {}", log_id);
        let mut inner = lock(&self.inner);
        // Drop every entry with index >= log_id.index.
        let _removed = inner.log.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        tracing::debug!("purge log upto: {}", log_id);
        let mut inner = lock(&self.inner);
        if inner.last_purged_log_id >= Some(log_id) {
            // Already purged at least this far; purging never moves backwards.
            return Ok(());
        }
        inner.last_purged_log_id = Some(log_id);
        // Keep only entries with index > log_id.index.
        match log_id.index.checked_add(1) {
            Some(keep_from) => {
                let kept = inner.log.split_off(&keep_from);
                inner.log = kept;
            }
            None => inner.log.clear(),
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// State machine
// ---------------------------------------------------------------------------------------------

/// The replicated state; this is exactly what a snapshot serializes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StateMachineData {
    /// The id of the last applied log entry.
    last_applied: Option<LogId<NodeId>>,
    /// The last applied membership config.
    last_membership: StoredMembership<NodeId, BasicNode>,
    /// The key-value data.
    data: BTreeMap<String, String>,
}

/// A built or installed snapshot, kept in memory.
#[derive(Debug, Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    /// `serde_json` encoding of a [`StateMachineData`].
    data: Vec<u8>,
}

/// The state shared by all clones of a [`StateMachine`].
#[derive(Debug, Default)]
struct StateMachineInner {
    sm: StateMachineData,
    /// The most recent snapshot, built locally or installed from a leader.
    current_snapshot: Option<StoredSnapshot>,
    /// Counter used to build unique snapshot ids.
    snapshot_idx: u64,
}

/// In-memory key-value state machine with in-memory snapshots.
///
/// Cloning is cheap and clones share state: openraft owns one handle, the application keeps
/// another for local reads ([`StateMachine::get`] etc.). A clone also serves as the
/// [`RaftStateMachine::SnapshotBuilder`].
///
/// Snapshots are the `serde_json` encoding of the last applied log id, the last membership and
/// the key-value map.
#[derive(Debug, Clone, Default)]
pub struct StateMachine {
    inner: Arc<Mutex<StateMachineInner>>,
}

impl StateMachine {
    /// Create an empty state machine.
    pub fn new() -> Self {
        Self::default()
    }

    /// Read the value of `key` as of the last applied log entry.
    pub fn get(&self, key: &str) -> Option<String> {
        lock(&self.inner).sm.data.get(key).cloned()
    }

    /// The id of the last log entry applied to this state machine.
    pub fn last_applied(&self) -> Option<LogId<NodeId>> {
        lock(&self.inner).sm.last_applied
    }

    /// The last applied membership config.
    pub fn last_membership(&self) -> StoredMembership<NodeId, BasicNode> {
        lock(&self.inner).sm.last_membership.clone()
    }

    /// Number of keys currently stored.
    pub fn len(&self) -> usize {
        lock(&self.inner).sm.data.len()
    }

    /// Whether no key is currently stored.
    pub fn is_empty(&self) -> bool {
        lock(&self.inner).sm.data.is_empty()
    }

    /// A copy of the whole key-value map (intended for tests and debugging).
    pub fn snapshot_of_data(&self) -> BTreeMap<String, String> {
        lock(&self.inner).sm.data.clone()
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let mut inner = lock(&self.inner);

        let data = serde_json::to_vec(&inner.sm)
            .map_err(|e| StorageIOError::read_state_machine(AnyError::new(&e)))?;

        let last_applied = inner.sm.last_applied;
        inner.snapshot_idx += 1;
        let snapshot_id = match last_applied {
            Some(last) => format!("{}-{}-{}", last.leader_id, last.index, inner.snapshot_idx),
            None => format!("--{}", inner.snapshot_idx),
        };

        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: inner.sm.last_membership.clone(),
            snapshot_id,
        };

        inner.current_snapshot = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });

        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        let inner = lock(&self.inner);
        Ok((inner.sm.last_applied, inner.sm.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Response>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = lock(&self.inner);
        let sm = &mut inner.sm;
        let mut responses = Vec::new();

        for entry in entries {
            tracing::debug!(log_id = %entry.log_id, "apply to state machine");
            sm.last_applied = Some(entry.log_id);

            let value = match entry.payload {
                EntryPayload::Blank => None,
                EntryPayload::Normal(Request::Set { key, value }) => sm.data.insert(key, value),
                EntryPayload::Normal(Request::Delete { key }) => sm.data.remove(&key),
                EntryPayload::Membership(membership) => {
                    sm.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    None
                }
            };
            responses.push(Response { value });
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        tracing::info!(snapshot_meta = %meta, "install snapshot");

        let bytes = snapshot.into_inner();
        let mut new_sm: StateMachineData = serde_json::from_slice(&bytes).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;

        // The meta is authoritative for the log pointers; they are expected to match the payload.
        if new_sm.last_applied != meta.last_log_id || new_sm.last_membership != meta.last_membership
        {
            tracing::warn!(
                snapshot_meta = %meta,
                "snapshot payload log pointers differ from snapshot meta; using meta"
            );
        }
        new_sm.last_applied = meta.last_log_id;
        new_sm.last_membership = meta.last_membership.clone();

        let mut inner = lock(&self.inner);
        inner.sm = new_sm;
        inner.current_snapshot = Some(StoredSnapshot {
            meta: meta.clone(),
            data: bytes,
        });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let inner = lock(&self.inner);
        Ok(inner.current_snapshot.as_ref().map(|s| Snapshot {
            meta: s.meta.clone(),
            snapshot: Box::new(Cursor::new(s.data.clone())),
        }))
    }
}
