//! Durable raft state: the [`LogStore`] trait a [`Replica`](crate::Replica) writes its entries,
//! hard state and snapshots through, [`MemLog`] (nothing kept) and [`FileLog`] (an append-only
//! file of checksummed records, fsynced on the write path).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use protobuf::Message as _;
use raft::eraftpb::{Entry, HardState, Snapshot};

/// What a [`LogStore`] holds, read back when a node starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    /// The last hard state (term, vote, commit).
    pub hard_state: HardState,
    /// The last snapshot: the configuration, address book and application state up to its
    /// index.
    pub snapshot: Option<Snapshot>,
    /// The entries after the snapshot, in order.
    pub entries: Vec<Entry>,
}

impl Stored {
    /// Whether nothing was ever stored (a node starting for the first time).
    pub fn is_empty(&self) -> bool {
        self.hard_state == HardState::default()
            && self.snapshot.is_none()
            && self.entries.is_empty()
    }
}

/// Where a replica persists what raft needs after a restart. Writes may be buffered until
/// [`sync`](Self::sync), which the replica calls before sending any message that depends on
/// them (raft's persisted messages) and before applying a snapshot's effects.
pub trait LogStore: Send + 'static {
    /// Everything stored so far.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn load(&mut self) -> io::Result<Stored>;

    /// Appends `entries`; one at an index already stored replaces it and every later one.
    ///
    /// # Errors
    /// When writing fails.
    fn append(&mut self, entries: &[Entry]) -> io::Result<()>;

    /// Records the hard state.
    ///
    /// # Errors
    /// When writing fails.
    fn set_hard_state(&mut self, hard_state: &HardState) -> io::Result<()>;

    /// Records a snapshot (received from the leader, or taken here to compact the log):
    /// entries up to its index are no longer needed.
    ///
    /// # Errors
    /// When writing fails.
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> io::Result<()>;

    /// Makes everything written so far durable.
    ///
    /// # Errors
    /// When the data cannot be made durable.
    fn sync(&mut self) -> io::Result<()>;

    /// Whether the replica should take a snapshot to save when it compacts its log (a store
    /// that keeps nothing does not need one).
    fn keeps_snapshots(&self) -> bool {
        true
    }
}

/// Keeps nothing: a node on it starts empty after a restart (the default, with raft's
/// in-memory `MemStorage`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MemLog;

impl LogStore for MemLog {
    fn load(&mut self) -> io::Result<Stored> {
        Ok(Stored::default())
    }

    fn append(&mut self, _entries: &[Entry]) -> io::Result<()> {
        Ok(())
    }

    fn set_hard_state(&mut self, _hard_state: &HardState) -> io::Result<()> {
        Ok(())
    }

    fn save_snapshot(&mut self, _snapshot: &Snapshot) -> io::Result<()> {
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn keeps_snapshots(&self) -> bool {
        false
    }
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

/// An append-only file of records (`raft.log` in a directory): each is a length, a CRC-32,
/// a kind (entry, hard state, snapshot) and the protobuf bytes. [`sync`](LogStore::sync)
/// fsyncs it.
///
/// At [`load`](LogStore::load) every record is checked. A record cut short or failing its
/// checksum ends the log: it and anything after it are truncated away, never applied (a
/// crash during a write leaves a torn last record; the writes before it were synced). Saving
/// a snapshot rewrites the file as the snapshot, the hard state and the entries after it
/// (into a temporary file, fsynced, then renamed over the log), so the file stays as long as
/// the uncompacted log.
#[derive(Debug)]
pub struct FileLog {
    dir: PathBuf,
    file: File,
    /// What the file holds, to rewrite it when a snapshot compacts it.
    stored: Stored,
    /// Bytes truncated away by the last load (a torn or corrupt tail).
    truncated: u64,
}

impl FileLog {
    /// Opens (or creates) the log in `dir`, creating the directory if needed. The records
    /// are read and checked at once; [`load`](LogStore::load) returns them.
    ///
    /// # Errors
    /// When the directory or file cannot be created, opened or read.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let (stored, good) = read_records(&mut file)?;
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
        Ok(Self {
            dir,
            file,
            stored,
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
        self.file.write_all(&record)
    }

    /// Rewrites the file as the stored snapshot, hard state and entries.
    fn rewrite(&mut self) -> io::Result<()> {
        let tmp = self.dir.join(format!("{LOG_FILE}.tmp"));
        let mut out = Vec::new();
        if let Some(snapshot) = &self.stored.snapshot {
            out.extend(record(SNAPSHOT, &encode(snapshot)?)?);
        }
        out.extend(record(HARD_STATE, &encode(&self.stored.hard_state)?)?);
        for entry in &self.stored.entries {
            out.extend(record(ENTRY, &encode(entry)?)?);
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
        Ok(())
    }
}

impl LogStore for FileLog {
    fn load(&mut self) -> io::Result<Stored> {
        Ok(self.stored.clone())
    }

    fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        for entry in entries {
            self.write_record(ENTRY, &encode(entry)?)?;
            push_entry(&mut self.stored, entry.clone());
        }
        Ok(())
    }

    fn set_hard_state(&mut self, hard_state: &HardState) -> io::Result<()> {
        if *hard_state == self.stored.hard_state {
            return Ok(());
        }
        self.write_record(HARD_STATE, &encode(hard_state)?)?;
        self.stored.hard_state = hard_state.clone();
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        set_snapshot(&mut self.stored, snapshot.clone());
        self.rewrite()
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
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

/// An entry appended: it replaces any entry at its index or after, and is dropped if a
/// snapshot already covers it.
fn push_entry(stored: &mut Stored, entry: Entry) {
    if let Some(snapshot) = &stored.snapshot {
        if entry.index <= snapshot.get_metadata().index {
            return;
        }
    }
    while stored
        .entries
        .last()
        .is_some_and(|last| last.index >= entry.index)
    {
        stored.entries.pop();
    }
    stored.entries.push(entry);
}

fn set_snapshot(stored: &mut Stored, snapshot: Snapshot) {
    let index = snapshot.get_metadata().index;
    stored.entries.retain(|entry| entry.index > index);
    if stored.hard_state.commit < index {
        stored.hard_state.commit = index;
    }
    stored.snapshot = Some(snapshot);
}

/// Reads every whole, valid record from the start of `file`; returns what they hold and the
/// length of the valid prefix.
fn read_records(file: &mut File) -> io::Result<(Stored, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    BufReader::new(&mut *file).read_to_end(&mut bytes)?;
    let mut stored = Stored::default();
    let mut at = 0usize;
    while let Some((kind, payload, next)) = next_record(&bytes, at) {
        let applied = match kind {
            ENTRY => Entry::parse_from_bytes(payload)
                .map(|entry| push_entry(&mut stored, entry))
                .is_ok(),
            HARD_STATE => HardState::parse_from_bytes(payload)
                .map(|hs| stored.hard_state = hs)
                .is_ok(),
            SNAPSHOT => Snapshot::parse_from_bytes(payload)
                .map(|snapshot| set_snapshot(&mut stored, snapshot))
                .is_ok(),
            _ => false,
        };
        if !applied {
            break;
        }
        at = next;
    }
    Ok((stored, at as u64))
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

    fn indexes(stored: &Stored) -> Vec<(u64, u64)> {
        stored.entries.iter().map(|e| (e.index, e.term)).collect()
    }

    #[test]
    fn what_was_synced_is_read_back_and_a_later_entry_replaces_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = FileLog::open(dir.path()).unwrap();
            assert!(log.load().unwrap().is_empty());
            log.append(&[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")])
                .unwrap();
            log.set_hard_state(&hard_state(1, 1, 2)).unwrap();
            // A new leader's entry at index 2 replaces 2 and 3.
            log.append(&[entry(2, 2, b"x")]).unwrap();
            log.sync().unwrap();
        }
        let mut log = FileLog::open(dir.path()).unwrap();
        assert_eq!(log.truncated(), 0);
        let stored = log.load().unwrap();
        assert_eq!(indexes(&stored), [(1, 1), (2, 2)]);
        assert_eq!(stored.entries[1].data.as_ref(), b"x");
        assert_eq!(stored.hard_state, hard_state(1, 1, 2));
        assert!(stored.snapshot.is_none());
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
        assert_eq!(indexes(&log.load().unwrap()), [(1, 1), (2, 1)]);
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            whole,
            "the tail is cut off"
        );
        // Appending after the cut works, and survives another restart.
        log.append(&[entry(3, 1, b"c")]).unwrap();
        log.sync().unwrap();
        drop(log);
        let mut log = FileLog::open(dir.path()).unwrap();
        assert_eq!(log.truncated(), 0);
        assert_eq!(indexes(&log.load().unwrap()), [(1, 1), (2, 1), (3, 1)]);
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
        let mut log = FileLog::open(dir.path()).unwrap();
        assert!(log.truncated() > 0);
        assert_eq!(indexes(&log.load().unwrap()), [(1, 1)]);
    }

    #[test]
    fn a_snapshot_compacts_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        {
            let mut log = FileLog::open(dir.path()).unwrap();
            let entries: Vec<Entry> = (1..=100).map(|i| entry(i, 1, &[0u8; 100])).collect();
            log.append(&entries).unwrap();
            log.set_hard_state(&hard_state(1, 1, 100)).unwrap();
            log.sync().unwrap();
            let before = fs::metadata(&path).unwrap().len();
            log.save_snapshot(&snapshot(98, 1, b"state")).unwrap();
            assert!(fs::metadata(&path).unwrap().len() < before / 10);
            log.append(&[entry(101, 1, b"after")]).unwrap();
            log.sync().unwrap();
        }
        let mut log = FileLog::open(dir.path()).unwrap();
        let stored = log.load().unwrap();
        assert_eq!(stored.snapshot, Some(snapshot(98, 1, b"state")));
        assert_eq!(indexes(&stored), [(99, 1), (100, 1), (101, 1)]);
        assert_eq!(stored.hard_state, hard_state(1, 1, 100));
        assert!(!dir.path().join(format!("{LOG_FILE}.tmp")).exists());
    }
}
