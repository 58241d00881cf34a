//! The address book (raft node id -> HTTP address), the state shared with readers, and the
//! storage that carries both in snapshots.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use raft::eraftpb::{Entry, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage};

use crate::log_store::LogStore;
use crate::state::{StateMachine, encode_snapshot};

/// Where each node of the cluster serves HTTP (`host:port`), by raft node id.
///
/// It is application state: updated when a conf change is applied (the joiner's address
/// travels in the `ConfChangeV2` context) and carried in snapshots by [`ClusterStorage`],
/// because a node that catches up by snapshot never sees the conf change entries. Cheap to
/// clone; clones share the same book.
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    inner: Arc<RwLock<BTreeMap<u64, String>>>,
}

impl AddressBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// The address of node `id`.
    pub fn get(&self, id: u64) -> Option<String> {
        self.read().get(&id).cloned()
    }

    /// Records the address of node `id`.
    pub fn insert(&self, id: u64, address: impl Into<String>) {
        self.write().insert(id, address.into());
    }

    /// Forgets node `id`.
    pub fn remove(&self, id: u64) {
        self.write().remove(&id);
    }

    /// A copy of every entry.
    pub fn entries(&self) -> BTreeMap<u64, String> {
        self.read().clone()
    }

    /// Replaces every entry (when a snapshot is applied).
    pub fn replace(&self, entries: BTreeMap<u64, String>) {
        *self.write() = entries;
    }

    /// The book as snapshot data: one `id address` line per node.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        for (id, address) in self.read().iter() {
            out.push_str(&format!("{id} {address}\n"));
        }
        out.into_bytes()
    }

    /// Parses snapshot data written by [`encode`](Self::encode). Lines that do not parse
    /// are skipped.
    pub fn decode(data: &[u8]) -> BTreeMap<u64, String> {
        String::from_utf8_lossy(data)
            .lines()
            .filter_map(|line| {
                let (id, address) = line.split_once(' ')?;
                Some((id.parse().ok()?, address.to_owned()))
            })
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, String>> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u64, String>> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a replica's readers share with it: the address book, the application state and the
/// index of the last entry applied to it. Cheap to clone; clones share the same state.
pub struct ClusterState<S = ()> {
    book: AddressBook,
    state: Arc<Mutex<S>>,
    applied: Arc<AtomicU64>,
}

impl<S> Clone for ClusterState<S> {
    fn clone(&self) -> Self {
        Self {
            book: self.book.clone(),
            state: Arc::clone(&self.state),
            applied: Arc::clone(&self.applied),
        }
    }
}

impl<S> std::fmt::Debug for ClusterState<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterState")
            .field("book", &self.book)
            .field("applied", &self.applied())
            .finish_non_exhaustive()
    }
}

impl<S> ClusterState<S> {
    /// `book` and `state`, with every entry up to `applied` applied to them.
    pub fn new(book: AddressBook, state: S, applied: u64) -> Self {
        Self {
            book,
            state: Arc::new(Mutex::new(state)),
            applied: Arc::new(AtomicU64::new(applied)),
        }
    }

    /// The address book.
    pub fn book(&self) -> &AddressBook {
        &self.book
    }

    /// The application state (the replica applies entries to it under this lock).
    pub fn state(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The index of the last entry applied to the state.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    pub(crate) fn set_applied(&self, index: u64) {
        self.applied.store(index, Ordering::Release);
    }
}

/// A raft log ([`MemStorage`] by default, or any [`LogStore`]) whose snapshots carry the
/// [`AddressBook`] and the application's [`StateMachine`] as their data, taken at the last
/// applied entry. Every other read goes to the log.
pub struct ClusterStorage<S = (), L = MemStorage> {
    log: L,
    shared: ClusterState<S>,
}

impl<S: Default> Default for ClusterStorage<S> {
    fn default() -> Self {
        Self::with_state(MemStorage::default(), AddressBook::default(), S::default())
    }
}

impl<S, L> std::fmt::Debug for ClusterStorage<S, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterStorage")
            .field("book", &self.shared.book)
            .field("applied", &self.applied())
            .finish_non_exhaustive()
    }
}

impl<L: LogStore> ClusterStorage<(), L> {
    /// Storage over `log`, snapshotting `book` (and no application state).
    pub fn new(log: L, book: AddressBook) -> Self {
        Self::with_state(log, book, ())
    }
}

impl<S, L: LogStore> ClusterStorage<S, L> {
    /// Storage over `log`, snapshotting `book` and `state`. The applied index starts at the
    /// index of `log`'s snapshot (the entry before its first one).
    pub fn with_state(log: L, book: AddressBook, state: S) -> Self {
        let applied = log.first_index().map_or(0, |first| first.saturating_sub(1));
        Self {
            log,
            shared: ClusterState::new(book, state, applied),
        }
    }

    /// The log.
    pub fn log(&self) -> &L {
        &self.log
    }

    pub(crate) fn log_mut(&mut self) -> &mut L {
        &mut self.log
    }

    pub(crate) fn from_parts(log: L, shared: ClusterState<S>) -> Self {
        Self { log, shared }
    }
}

impl<S, L> ClusterStorage<S, L> {
    /// The address book, the state and the applied index, to share with readers.
    pub fn shared(&self) -> &ClusterState<S> {
        &self.shared
    }

    /// The address book.
    pub fn book(&self) -> &AddressBook {
        self.shared.book()
    }

    /// The application state (the replica applies entries to it under this lock).
    pub fn state(&self) -> MutexGuard<'_, S> {
        self.shared.state()
    }

    /// The index of the last entry applied to the state.
    pub fn applied(&self) -> u64 {
        self.shared.applied()
    }
}

impl<S: StateMachine, L: LogStore> Storage for ClusterStorage<S, L> {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.log.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.log.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.log.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.log.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.log.last_index()
    }

    /// A snapshot at the last applied entry: its index, term and configuration, with the
    /// address book and the application state as data. Every entry up to that index has
    /// been applied to both, and none after it.
    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // The replica applies under the state's lock: holding it, the applied index, the
        // configuration and the state agree.
        let state = self.state();
        let index = self.applied();
        let mut snapshot = Snapshot::default();
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = self.log.term(index)?;
        meta.set_conf_state(self.log.initial_state()?.conf_state);
        snapshot.data = encode_snapshot(&self.shared.book.encode(), &state.snapshot()).into();
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_round_trips_through_snapshot_data() {
        let book = AddressBook::new();
        book.insert(1, "127.0.0.1:8001");
        book.insert(20, "[::1]:8020");
        let decoded = AddressBook::decode(&book.encode());
        assert_eq!(decoded, book.entries());
        assert!(AddressBook::decode(b"garbage\nx y\n").is_empty());
    }

    #[test]
    fn snapshot_carries_the_book() {
        let book = AddressBook::new();
        book.insert(1, "127.0.0.1:8001");
        let storage = ClusterStorage::new(MemStorage::new_with_conf_state((vec![1], vec![])), book);
        let snapshot = storage.snapshot(0, 2).unwrap();
        let (book, state) = crate::state::decode_snapshot(&snapshot.data).unwrap();
        assert_eq!(AddressBook::decode(book)[&1], "127.0.0.1:8001");
        assert!(state.is_empty());
        assert_eq!(snapshot.get_metadata().get_conf_state().voters, vec![1]);
    }
}
