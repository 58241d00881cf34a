//! The raft log a [`Replica`](crate::Replica) runs on: any [`raft::Storage`] that can also be
//! written, through the small [`LogStore`] trait. raft-rs's [`MemStorage`] implements it (the
//! default: nothing survives a restart), and [`FileLog`] keeps the log in an append-only file
//! of checksummed records, fsynced on the write path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage};

/// A raft log that can be written: raft reads it through [`raft::Storage`], and the replica
/// writes what each `Ready` asks through these methods.
///
/// Writes may be buffered until [`sync`](Self::sync), which the replica calls before it sends
/// any message that relies on them (raft's persisted messages) and before it applies a
/// snapshot's effects. Reads through [`raft::Storage`] see every write at once, synced or not.
///
/// On restart the replica reads the store as raft does, plus [`last_snapshot`](Self::last_snapshot):
/// the application state and address book come from that snapshot's data, and the committed
/// entries after it are applied again, configuration changes included. So a store need not
/// persist [`set_conf_state`](Self::set_conf_state), only keep it for
/// [`initial_state`](raft::Storage::initial_state) while it runs.
pub trait LogStore: Storage + Send + 'static {
    /// Appends `entries`, in order and without a gap after the last stored entry; one at an
    /// index already stored replaces it and every later one.
    ///
    /// # Errors
    /// When writing fails, or the entries would leave a gap or overwrite compacted ones.
    fn append(&mut self, entries: &[Entry]) -> io::Result<()>;

    /// Records the hard state (term, vote, commit).
    ///
    /// # Errors
    /// When writing fails.
    fn set_hard_state(&mut self, hard_state: &HardState) -> io::Result<()>;

    /// Records a new commit index, the rest of the hard state unchanged.
    ///
    /// # Errors
    /// When writing fails.
    fn set_commit(&mut self, commit: u64) -> io::Result<()>;

    /// Records the configuration, after a configuration change was applied.
    ///
    /// # Errors
    /// When writing fails.
    fn set_conf_state(&mut self, conf_state: &ConfState) -> io::Result<()>;

    /// Installs a snapshot received from the leader: it replaces the whole log (its index and
    /// term, its configuration, and a commit index at least its index). Kept for restarts as
    /// [`last_snapshot`](Self::last_snapshot).
    ///
    /// # Errors
    /// When writing fails, or the snapshot is older than the log's start.
    fn install_snapshot(&mut self, snapshot: &Snapshot) -> io::Result<()>;

    /// Compacts the log with `snapshot`, taken here at an applied index: entries before its
    /// index are no longer needed. Kept for restarts as [`last_snapshot`](Self::last_snapshot)
    /// (a store that does not [keep snapshots](Self::keeps_snapshots) gets one without data).
    ///
    /// # Errors
    /// When writing fails, or the index is past the log's end.
    fn compact(&mut self, snapshot: &Snapshot) -> io::Result<()>;

    /// The last snapshot installed or compacted to, with its data: what a restart restores
    /// the application state and address book from. `None` when there is none, or the store
    /// does not [keep snapshots](Self::keeps_snapshots).
    ///
    /// # Errors
    /// When the store cannot be read.
    fn last_snapshot(&self) -> io::Result<Option<Snapshot>>;

    /// Makes everything written so far durable.
    ///
    /// # Errors
    /// When the data cannot be made durable.
    fn sync(&mut self) -> io::Result<()>;

    /// Whether the store keeps snapshots for a restart. When it does not (an in-memory
    /// store), the replica does not serialize its state to compact the log.
    fn keeps_snapshots(&self) -> bool {
        true
    }

    /// Whether nothing was ever stored: no entry, no hard state, no configuration (a node
    /// starting for the first time).
    ///
    /// # Errors
    /// When the store cannot be read.
    fn is_empty(&self) -> raft::Result<bool> {
        let RaftState {
            hard_state,
            conf_state,
        } = self.initial_state()?;
        Ok(self.last_index()? == 0
            && hard_state == HardState::default()
            && conf_state == ConfState::default())
    }
}

/// raft-rs's in-memory storage, the default: a node on it starts empty after a restart.
impl LogStore for MemStorage {
    fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        check_append(self, entries)?;
        self.wl().append(entries).map_err(io::Error::other)
    }

    fn set_hard_state(&mut self, hard_state: &HardState) -> io::Result<()> {
        self.wl().set_hardstate(hard_state.clone());
        Ok(())
    }

    fn set_commit(&mut self, commit: u64) -> io::Result<()> {
        self.wl().mut_hard_state().commit = commit;
        Ok(())
    }

    fn set_conf_state(&mut self, conf_state: &ConfState) -> io::Result<()> {
        self.wl().set_conf_state(conf_state.clone());
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        self.wl()
            .apply_snapshot(snapshot.clone())
            .map_err(io::Error::other)
    }

    fn compact(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        let index = snapshot.get_metadata().index;
        check_compact(self, index)?;
        self.wl().compact(index).map_err(io::Error::other)
    }

    fn last_snapshot(&self) -> io::Result<Option<Snapshot>> {
        Ok(None)
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn keeps_snapshots(&self) -> bool {
        false
    }
}

/// raft's `MemStorage` panics on entries that leave a gap or overwrite compacted ones: an
/// error instead.
fn check_append(log: &impl Storage, entries: &[Entry]) -> io::Result<()> {
    let Some(first) = entries.first() else {
        return Ok(());
    };
    let (start, last) = (
        storage_io(log.first_index())?,
        storage_io(log.last_index())?,
    );
    if first.index < start || first.index > last + 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "entries from index {} do not follow the log ({start}..={last})",
                first.index
            ),
        ));
    }
    if entries.windows(2).any(|w| w[1].index != w[0].index + 1) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "entries to append are not consecutive",
        ));
    }
    Ok(())
}

/// raft's `MemStorage` panics when compacting past the log's end: an error instead.
fn check_compact(log: &impl Storage, index: u64) -> io::Result<()> {
    let last = storage_io(log.last_index())?;
    if index > last + 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot compact to index {index}, past the log's end ({last})"),
        ));
    }
    Ok(())
}

fn storage_io<T>(result: raft::Result<T>) -> io::Result<T> {
    result.map_err(io::Error::other)
}

/// Record kinds.
const ENTRY: u8 = 1;
const HARD_STATE: u8 = 2;
const SNAPSHOT: u8 = 3;

/// Bytes before a record's payload: its length (kind and payload) and CRC-32 (of the same),
/// both little-endian `u32`.
const HEADER: usize = 8;

/// The name of the log file in the store's directory.
const LOG_FILE: &str = "raft.log";

/// A raft log in an append-only file of records (`raft.log` in a directory): each is a
/// length, a CRC-32, a kind (entry, hard state, snapshot) and the protobuf bytes.
/// [`sync`](LogStore::sync) fsyncs it. The uncompacted log is also kept in memory (a
/// [`MemStorage`]), which raft reads.
///
/// At [`open`](Self::open) every record is checked. A record cut short or failing its
/// checksum ends the log: it and anything after it are truncated away, never applied (a
/// crash during a write leaves a torn last record; the writes before it were synced).
/// Installing or compacting to a snapshot rewrites the file as the snapshot, the hard state
/// and the entries after it (into a temporary file, fsynced, then renamed over the log), so
/// the file stays as long as the uncompacted log.
pub struct FileLog {
    dir: PathBuf,
    file: File,
    /// The log as raft reads it.
    mem: MemStorage,
    /// The last snapshot, with its data, written first when the file is rewritten.
    snapshot: Option<Snapshot>,
    /// The hard state the file records last.
    recorded: HardState,
    /// Whether records that must be durable were written since the last sync.
    dirty: bool,
    /// Bytes truncated away by the last open (a torn or corrupt tail).
    truncated: u64,
}

impl std::fmt::Debug for FileLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLog")
            .field("dir", &self.dir)
            .field("first_index", &self.mem.first_index().ok())
            .field("last_index", &self.mem.last_index().ok())
            .field("truncated", &self.truncated)
            .finish_non_exhaustive()
    }
}

impl FileLog {
    /// Opens (or creates) the log in `dir`, creating the directory if needed. The records
    /// are read and checked at once.
    ///
    /// # Errors
    /// When the directory or file cannot be created, opened or read, or the records that
    /// pass their checksums do not make a log (an entry missing in the middle).
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let (records, good) = read_records(&mut file)?;
        let len = file.metadata()?.len();
        let truncated = len - good;
        if truncated > 0 {
            tracing::warn!(
                path = %path.display(),
                bytes = truncated,
                "truncating a torn or corrupt tail of the raft log"
            );
            file.set_len(good)?;
            file.sync_all()?;
        }
        let mem = records.to_storage()?;
        let recorded = mem.rl().hard_state().clone();
        Ok(Self {
            dir,
            file,
            mem,
            snapshot: records.snapshot,
            recorded,
            dirty: false,
            truncated,
        })
    }

    /// Bytes the last [`open`](Self::open) truncated from the end of the file (a torn or
    /// corrupt record and anything after it); 0 when the log was whole.
    pub fn truncated(&self) -> u64 {
        self.truncated
    }

    fn write_record(&mut self, kind: u8, payload: &[u8]) -> io::Result<()> {
        let record = record(kind, payload)?;
        self.dirty = true;
        self.file.write_all(&record)
    }

    /// Writes the hard state in memory, if the file does not have it yet. `durable`: whether
    /// the next [`sync`](LogStore::sync) must flush it.
    fn record_hard_state(&mut self, durable: bool) -> io::Result<()> {
        let hard_state = self.mem.rl().hard_state().clone();
        if hard_state != self.recorded {
            let dirty = self.dirty;
            self.write_record(HARD_STATE, &encode(&hard_state)?)?;
            self.dirty = dirty || durable;
            self.recorded = hard_state;
        }
        Ok(())
    }

    /// Rewrites the file as the last snapshot, the hard state and the entries after it.
    fn rewrite(&mut self) -> io::Result<()> {
        let tmp = self.dir.join(format!("{LOG_FILE}.tmp"));
        let mut out = Vec::new();
        let mut after = 0;
        if let Some(snapshot) = &self.snapshot {
            out.extend(record(SNAPSHOT, &encode(snapshot)?)?);
            after = snapshot.get_metadata().index;
        }
        let hard_state = self.mem.rl().hard_state().clone();
        out.extend(record(HARD_STATE, &encode(&hard_state)?)?);
        let (first, last) = (
            storage_io(self.mem.first_index())?,
            storage_io(self.mem.last_index())?,
        );
        let from = first.max(after + 1);
        if from <= last {
            let entries = storage_io(self.mem.entries(
                from,
                last + 1,
                None,
                GetEntriesContext::empty(false),
            ))?;
            for entry in &entries {
                out.extend(record(ENTRY, &encode(entry)?)?);
            }
        }
        {
            let mut file = File::create(&tmp)?;
            file.write_all(&out)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join(LOG_FILE))?;
        // The rename itself must be durable.
        File::open(&self.dir)?.sync_all()?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(self.dir.join(LOG_FILE))?;
        self.recorded = hard_state;
        self.dirty = false;
        Ok(())
    }
}

impl Storage for FileLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }

    /// The last snapshot kept, when it is at least at `request_index`.
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        match &self.snapshot {
            Some(snapshot) if snapshot.get_metadata().index >= request_index => {
                Ok(snapshot.clone())
            }
            _ => Err(raft::Error::Store(
                raft::StorageError::SnapshotTemporarilyUnavailable,
            )),
        }
    }
}

impl LogStore for FileLog {
    fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        check_append(&self.mem, entries)?;
        for entry in entries {
            self.write_record(ENTRY, &encode(entry)?)?;
        }
        LogStore::append(&mut self.mem, entries)
    }

    /// A new term or vote is synced by the next [`sync`](LogStore::sync); a new commit index
    /// alone is written but not synced for, as [`set_commit`](LogStore::set_commit) does.
    fn set_hard_state(&mut self, hard_state: &HardState) -> io::Result<()> {
        let durable =
            (hard_state.term, hard_state.vote) != (self.recorded.term, self.recorded.vote);
        self.mem.set_hard_state(hard_state)?;
        self.record_hard_state(durable)
    }

    /// Written, but not synced for: the record survives the process (a kill leaves it in
    /// the page cache), and a machine crash that loses it only makes the node learn the commit
    /// index again from the leader. A sync per commit would halve what a node commits.
    fn set_commit(&mut self, commit: u64) -> io::Result<()> {
        self.mem.set_commit(commit)?;
        self.record_hard_state(false)
    }

    /// Kept in memory only: a restart finds it in the snapshot and the entries after it.
    fn set_conf_state(&mut self, conf_state: &ConfState) -> io::Result<()> {
        self.mem.set_conf_state(conf_state)
    }

    fn install_snapshot(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        self.mem.install_snapshot(snapshot)?;
        self.snapshot = Some(snapshot.clone());
        self.rewrite()
    }

    fn compact(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        LogStore::compact(&mut self.mem, snapshot)?;
        self.snapshot = Some(snapshot.clone());
        self.rewrite()
    }

    fn last_snapshot(&self) -> io::Result<Option<Snapshot>> {
        Ok(self.snapshot.clone())
    }

    /// Does nothing when no record that must be durable was written since the last sync.
    fn sync(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.file.sync_data()?;
        self.dirty = false;
        Ok(())
    }
}

fn encode(message: &impl protobuf::Message) -> io::Result<Vec<u8>> {
    message.write_to_bytes().map_err(io::Error::other)
}

fn record(kind: u8, payload: &[u8]) -> io::Result<Vec<u8>> {
    let len = u32::try_from(payload.len() + 1)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record over 4 GiB"))?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(payload);
    let mut out = Vec::with_capacity(HEADER + 1 + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    Ok(out)
}

/// What the records of a file hold, replayed in order.
#[derive(Default)]
struct Records {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl Records {
    /// An entry appended: it replaces any entry at its index or after, and is dropped if the
    /// snapshot already covers it.
    fn push_entry(&mut self, entry: Entry) {
        if let Some(snapshot) = &self.snapshot {
            if entry.index <= snapshot.get_metadata().index {
                return;
            }
        }
        while self
            .entries
            .last()
            .is_some_and(|last| last.index >= entry.index)
        {
            self.entries.pop();
        }
        self.entries.push(entry);
    }

    fn set_snapshot(&mut self, snapshot: Snapshot) {
        let index = snapshot.get_metadata().index;
        self.entries.retain(|entry| entry.index > index);
        if self.hard_state.commit < index {
            self.hard_state.commit = index;
        }
        self.snapshot = Some(snapshot);
    }

    /// The log as raft reads it. A gap in the entries is refused; a commit index past the
    /// last entry (a crash between the two writes is the only way) is lowered to it.
    fn to_storage(&self) -> io::Result<MemStorage> {
        let mem = MemStorage::new();
        if let Some(snapshot) = &self.snapshot {
            mem.wl().apply_snapshot(snapshot.clone()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the stored snapshot: {e}"),
                )
            })?;
        }
        let mut next = storage_io(mem.last_index())? + 1;
        for entry in &self.entries {
            if entry.index != next {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the stored log skips from index {} to {}",
                        next - 1,
                        entry.index
                    ),
                ));
            }
            next += 1;
        }
        mem.wl().append(&self.entries).map_err(io::Error::other)?;
        let mut hard_state = self.hard_state.clone();
        hard_state.commit = hard_state.commit.min(next - 1);
        mem.wl().set_hardstate(hard_state);
        Ok(mem)
    }
}

/// Reads every whole, valid record from the start of `file`; returns what they hold and the
/// length of the valid prefix.
fn read_records(file: &mut File) -> io::Result<(Records, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    BufReader::new(&mut *file).read_to_end(&mut bytes)?;
    let mut records = Records::default();
    let mut at = 0usize;
    while let Some((kind, payload, next)) = next_record(&bytes, at) {
        let applied = match kind {
            ENTRY => Entry::parse_from_bytes(payload)
                .map(|entry| records.push_entry(entry))
                .is_ok(),
            HARD_STATE => HardState::parse_from_bytes(payload)
                .map(|hs| records.hard_state = hs)
                .is_ok(),
            SNAPSHOT => Snapshot::parse_from_bytes(payload)
                .map(|snapshot| records.set_snapshot(snapshot))
                .is_ok(),
            _ => false,
        };
        if !applied {
            break;
        }
        at = next;
    }
    Ok((records, at as u64))
}

/// The record at `at`: its kind, payload and the offset after it; `None` when it is cut
/// short or fails its checksum.
fn next_record(bytes: &[u8], at: usize) -> Option<(u8, &[u8], usize)> {
    let header = bytes.get(at..at.checked_add(HEADER)?)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    let start = at + HEADER;
    let body = bytes.get(start..start.checked_add(len)?)?;
    let (&kind, payload) = body.split_first()?;
    (crc32fast::hash(body) == crc).then_some((kind, payload, start + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry {
            index,
            term,
            data: data.to_vec().into(),
            ..Entry::default()
        }
    }

    fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
        HardState {
            term,
            vote,
            commit,
            ..HardState::default()
        }
    }

    fn snapshot(index: u64, term: u64, data: &[u8]) -> Snapshot {
        let mut s = Snapshot::default();
        s.mut_metadata().index = index;
        s.mut_metadata().term = term;
        s.mut_metadata().mut_conf_state().voters = vec![1, 2];
        s.data = data.to_vec().into();
        s
    }

    /// The entries raft reads, as (index, term).
    fn indexes(log: &impl Storage) -> Vec<(u64, u64)> {
        let (first, last) = (log.first_index().unwrap(), log.last_index().unwrap());
        if first > last {
            return Vec::new();
        }
        log.entries(first, last + 1, None, GetEntriesContext::empty(false))
            .unwrap()
            .iter()
            .map(|e| (e.index, e.term))
            .collect()
    }

    #[test]
    fn what_was_synced_is_read_back_and_a_later_entry_replaces_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = FileLog::open(dir.path()).unwrap();
            assert!(log.is_empty().unwrap());
            log.append(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")])
                .unwrap();
            log.set_hard_state(&hard_state(1, 1, 1)).unwrap();
            log.set_commit(2).unwrap();
            // A new leader's entry at index 2 replaces 2 and 3.
            log.append(&[entry(2, 2, b"x")]).unwrap();
            assert_eq!(
                indexes(&log),
                [(1, 1), (2, 2)],
                "raft reads the write at once"
            );
            log.sync().unwrap();
        }
        let log = FileLog::open(dir.path()).unwrap();
        assert_eq!(log.truncated(), 0);
        assert!(!log.is_empty().unwrap());
        assert_eq!(indexes(&log), [(1, 1), (2, 2)]);
        let entries = log
            .entries(2, 3, None, GetEntriesContext::empty(false))
            .unwrap();
        assert_eq!(entries[0].data.as_ref(), b"x");
        assert_eq!(log.initial_state().unwrap().hard_state, hard_state(1, 1, 2));
        assert!(log.last_snapshot().unwrap().is_none());
    }

    #[test]
    fn a_commit_index_is_written_at_once_and_survives_the_process() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = FileLog::open(dir.path()).unwrap();
            log.append(&[entry(1, 1, b"a"), entry(2, 1, b"b")]).unwrap();
            log.set_hard_state(&hard_state(1, 1, 0)).unwrap();
            log.sync().unwrap();
            log.set_commit(1).unwrap();
            // Raft's Ready carries a commit index in the hard state too.
            log.set_hard_state(&hard_state(1, 1, 2)).unwrap();
            // The process ends without another sync.
        }
        let log = FileLog::open(dir.path()).unwrap();
        assert_eq!(log.initial_state().unwrap().hard_state, hard_state(1, 1, 2));
    }

    #[test]
    fn a_torn_last_record_is_truncated_and_not_applied() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = FileLog::open(dir.path()).unwrap();
            log.append(&[entry(1, 1, b"a"), entry(2, 1, b"b")]).unwrap();
            log.sync().unwrap();
        }
        let path = dir.path().join(LOG_FILE);
        let whole = fs::metadata(&path).unwrap().len();
        // A crash in the middle of writing entry 3: only part of its record reached the disk.
        let torn = record(ENTRY, &encode(&entry(3, 1, b"c")).unwrap()).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&torn[..torn.len() - 3]).unwrap();
        drop(file);

        let mut log = FileLog::open(dir.path()).unwrap();
        assert_eq!(log.truncated(), torn.len() as u64 - 3);
        assert_eq!(indexes(&log), [(1, 1), (2, 1)]);
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            whole,
            "the tail is cut off"
        );
        // Appending after the cut works, and survives another restart.
        log.append(&[entry(3, 1, b"c")]).unwrap();
        log.sync().unwrap();
        drop(log);
        let log = FileLog::open(dir.path()).unwrap();
        assert_eq!(log.truncated(), 0);
        assert_eq!(indexes(&log), [(1, 1), (2, 1), (3, 1)]);
    }

    /// A crash can cut the file anywhere: at every length, it opens with the entries whose
    /// records are whole, the rest truncated away.
    #[test]
    fn a_log_cut_at_any_byte_opens_with_the_whole_records_before_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<Entry> = (1..=6).map(|i| entry(i, 1, &[i as u8; 9])).collect();
        let whole = {
            let mut log = FileLog::open(dir.path()).unwrap();
            log.set_hard_state(&hard_state(1, 1, 0)).unwrap();
            log.append(&entries).unwrap();
            log.sync().unwrap();
            fs::read(dir.path().join(LOG_FILE)).unwrap()
        };
        // Where each record ends: the hard state's, then each entry's.
        let mut ends = Vec::new();
        let mut at = 0;
        while let Some((_, _, next)) = next_record(&whole, at) {
            ends.push(next);
            at = next;
        }
        assert_eq!(ends.len(), 7);
        assert_eq!(*ends.last().unwrap(), whole.len());
        for cut in 0..=whole.len() {
            let case = tempfile::tempdir().unwrap();
            fs::write(case.path().join(LOG_FILE), &whole[..cut]).unwrap();
            let log = FileLog::open(case.path()).unwrap();
            let kept = ends.iter().filter(|&&end| end <= cut).count();
            let good = if kept == 0 { 0 } else { ends[kept - 1] };
            assert_eq!(log.truncated(), (cut - good) as u64, "cut at {cut}");
            let expected: Vec<(u64, u64)> = (1..kept as u64).map(|index| (index, 1)).collect();
            assert_eq!(indexes(&log), expected, "cut at {cut}");
        }
    }

    #[test]
    fn a_record_failing_its_checksum_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = FileLog::open(dir.path()).unwrap();
            log.append(&[entry(1, 1, b"a"), entry(2, 1, b"bbbb")])
                .unwrap();
            log.sync().unwrap();
        }
        let path = dir.path().join(LOG_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let log = FileLog::open(dir.path()).unwrap();
        assert!(log.truncated() > 0);
        assert_eq!(indexes(&log), [(1, 1)]);
    }

    #[test]
    fn a_gap_in_the_records_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = record(ENTRY, &encode(&entry(1, 1, b"a")).unwrap()).unwrap();
        bytes.extend(record(ENTRY, &encode(&entry(3, 1, b"c")).unwrap()).unwrap());
        fs::write(dir.path().join(LOG_FILE), bytes).unwrap();
        let err = FileLog::open(dir.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("skips from index 1 to 3"), "{err}");
    }

    #[test]
    fn a_compacting_snapshot_shortens_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        {
            let mut log = FileLog::open(dir.path()).unwrap();
            let entries: Vec<Entry> = (1..=100).map(|i| entry(i, 1, &[0u8; 100])).collect();
            log.append(&entries).unwrap();
            log.set_hard_state(&hard_state(1, 1, 100)).unwrap();
            log.sync().unwrap();
            let before = fs::metadata(&path).unwrap().len();
            log.compact(&snapshot(98, 1, b"state")).unwrap();
            assert!(fs::metadata(&path).unwrap().len() < before / 10);
            assert_eq!(log.term(98).unwrap(), 1);
            log.append(&[entry(101, 1, b"after")]).unwrap();
            log.sync().unwrap();
        }
        let log = FileLog::open(dir.path()).unwrap();
        assert_eq!(
            log.last_snapshot().unwrap(),
            Some(snapshot(98, 1, b"state"))
        );
        assert_eq!(indexes(&log), [(99, 1), (100, 1), (101, 1)]);
        let state = log.initial_state().unwrap();
        assert_eq!(state.hard_state, hard_state(1, 1, 100));
        assert_eq!(
            state.conf_state.voters,
            [1, 2],
            "the snapshot's configuration"
        );
        assert!(!dir.path().join(format!("{LOG_FILE}.tmp")).exists());
    }

    #[test]
    fn an_installed_snapshot_replaces_the_log() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = FileLog::open(dir.path()).unwrap();
            log.append(&[entry(1, 1, b"a"), entry(2, 1, b"b")]).unwrap();
            log.set_hard_state(&hard_state(1, 0, 1)).unwrap();
            log.install_snapshot(&snapshot(50, 3, b"leader's")).unwrap();
            assert_eq!(indexes(&log), []);
            assert_eq!(log.first_index().unwrap(), 51);
            log.append(&[entry(51, 3, b"next")]).unwrap();
            log.sync().unwrap();
        }
        let log = FileLog::open(dir.path()).unwrap();
        assert_eq!(indexes(&log), [(51, 3)]);
        assert_eq!(log.term(50).unwrap(), 3);
        let hard_state = log.initial_state().unwrap().hard_state;
        assert_eq!((hard_state.term, hard_state.commit), (3, 50));
        assert_eq!(
            log.snapshot(50, 0).unwrap().data.as_ref(),
            b"leader's",
            "raft can read it back"
        );
    }

    /// Gaps are refused by `log`, which holds entry 1.
    fn refuses_gaps(log: &mut impl LogStore) {
        let gap = log.append(&[entry(3, 1, b"c")]).unwrap_err();
        assert_eq!(gap.kind(), io::ErrorKind::InvalidInput);
        let holes = log
            .append(&[entry(2, 1, b"b"), entry(4, 1, b"d")])
            .unwrap_err();
        assert_eq!(holes.kind(), io::ErrorKind::InvalidInput);
        let past = log.compact(&snapshot(5, 1, b"")).unwrap_err();
        assert_eq!(past.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(indexes(log), [(1, 1)]);
    }

    #[test]
    fn bad_writes_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let mut file_log = FileLog::open(dir.path()).unwrap();
        file_log.append(&[entry(1, 1, b"a")]).unwrap();
        refuses_gaps(&mut file_log);
        let mut mem = MemStorage::new();
        LogStore::append(&mut mem, &[entry(1, 1, b"a")]).unwrap();
        refuses_gaps(&mut mem);
    }

    /// A record a crafted or damaged file could hold, with a valid checksum.
    fn any_record() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            (0u64..24, 0u64..4).prop_map(|(index, term)| {
                record(ENTRY, &encode(&entry(index, term, b"x")).unwrap()).unwrap()
            }),
            (0u64..4, 0u64..4, 0u64..40).prop_map(|(term, vote, commit)| {
                record(
                    HARD_STATE,
                    &encode(&hard_state(term, vote, commit)).unwrap(),
                )
                .unwrap()
            }),
            (0u64..24, 0u64..4).prop_map(|(index, term)| {
                record(SNAPSHOT, &encode(&snapshot(index, term, b"s")).unwrap()).unwrap()
            }),
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..16))
                .prop_map(|(kind, payload)| record(kind, &payload).unwrap()),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the file holds, opening it gives a log raft can start on, or an error:
        /// never a panic (raft's `MemStorage` panics on gaps and overwrites, so the loader
        /// must check first).
        #[test]
        fn any_file_opens_as_a_consistent_log_or_is_refused(
            records in proptest::collection::vec(any_record(), 0..24),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut bytes = records.concat();
            bytes.extend(tail);
            fs::write(dir.path().join(LOG_FILE), &bytes).unwrap();
            match FileLog::open(dir.path()) {
                Ok(log) => {
                    let (first, last) = (log.first_index().unwrap(), log.last_index().unwrap());
                    proptest::prop_assert!(first <= last + 1);
                    let state = log.initial_state().unwrap();
                    proptest::prop_assert!(state.hard_state.commit <= last);
                    let indexes = indexes(&log);
                    let expected: Vec<u64> = (first..=last).collect();
                    proptest::prop_assert_eq!(
                        indexes.iter().map(|(index, _)| *index).collect::<Vec<_>>(),
                        expected
                    );
                    if let Some(snapshot) = log.last_snapshot().unwrap() {
                        proptest::prop_assert_eq!(snapshot.get_metadata().index + 1, first);
                    }
                }
                Err(e) => proptest::prop_assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{}", e),
            }
        }
    }
}
