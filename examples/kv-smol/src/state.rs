//! The replicated state: a sorted map of strings, its log entries and its snapshots.
//!
//! Both encodings are length-prefixed binary, so keys and values may hold any character:
//!
//! - an entry (`set key value`): the tag byte `1`, then the key and the value, each as a
//!   little-endian `u64` length and that many UTF-8 bytes; nothing after;
//! - a snapshot: the magic `KVS1`, the number of pairs as a little-endian `u64`, then each pair
//!   (key, value) as above, keys strictly ascending; nothing after.
//!
//! Decoding refuses anything else (a cut, trailing bytes, invalid UTF-8, a wrong tag or
//! magic, keys out of order), so a state is never built from bytes it did not write.

use std::collections::BTreeMap;
use std::fmt;

use rafthttp_raft::{RestoreError, StateMachine};

/// The tag of a `set` entry.
const SET: u8 = 1;

/// The first bytes of a snapshot.
const MAGIC: &[u8; 4] = b"KVS1";

/// Bytes that are not an entry or a snapshot this module wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(&'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for DecodeError {}

/// A command carried by a log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Sets `key` to `value`.
    Set { key: String, value: String },
}

/// The entry for `set key value`.
pub(crate) fn encode_set(key: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 16 + key.len() + value.len());
    out.push(SET);
    put(&mut out, key);
    put(&mut out, value);
    out
}

/// The command of an entry written by [`encode_set`].
pub(crate) fn decode_entry(data: &[u8]) -> Result<Command, DecodeError> {
    let mut reader = Reader(data);
    match reader.byte()? {
        SET => {
            let key = reader.string()?;
            let value = reader.string()?;
            reader.end()?;
            Ok(Command::Set { key, value })
        }
        _ => Err(DecodeError("unknown entry tag")),
    }
}

fn put(out: &mut Vec<u8>, text: &str) {
    // usize is at most 64 bits on every platform Rust supports: no truncation.
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// A cursor over bytes being decoded.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError("cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = usize::try_from(self.u64()?).map_err(|_| DecodeError("length too large"))?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError("not UTF-8"))
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
}

/// The key-value map every node applies the log to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct KvState {
    map: BTreeMap<String, String>,
}

impl KvState {
    /// The value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&String> {
        self.map.get(key)
    }

    /// Sets `key`, returning the previous value.
    fn set(&mut self, key: String, value: String) -> Option<String> {
        self.map.insert(key, value)
    }

    /// The snapshot bytes of the whole map.
    fn encode(&self) -> Vec<u8> {
        let size: usize = self.map.iter().map(|(k, v)| 16 + k.len() + v.len()).sum();
        let mut out = Vec::with_capacity(12 + size);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.map.len() as u64).to_le_bytes());
        for (key, value) in &self.map {
            put(&mut out, key);
            put(&mut out, value);
        }
        out
    }

    /// The map of snapshot bytes written by [`encode`](Self::encode).
    fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        let rest = data
            .strip_prefix(MAGIC)
            .ok_or(DecodeError("no snapshot magic"))?;
        let mut reader = Reader(rest);
        let count = reader.u64()?;
        let mut map = BTreeMap::new();
        for _ in 0..count {
            let key = reader.string()?;
            let value = reader.string()?;
            if map.last_key_value().is_some_and(|(last, _)| *last >= key) {
                return Err(DecodeError("keys out of order"));
            }
            map.insert(key, value);
        }
        reader.end()?;
        Ok(Self { map })
    }
}

impl StateMachine for KvState {
    /// The previous value of the key, or why the entry could not be read (never for entries
    /// this service proposes).
    type Output = Result<Option<String>, DecodeError>;

    fn apply(&mut self, index: u64, data: &[u8]) -> Self::Output {
        match decode_entry(data) {
            Ok(Command::Set { key, value }) => Ok(self.set(key, value)),
            Err(error) => {
                // Every node skips it alike: the state stays a function of the log.
                tracing::warn!(index, %error, "skipping an entry that is not a kv command");
                Err(error)
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.encode()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), RestoreError> {
        *self = Self::decode(data).map_err(|e| RestoreError(format!("kv snapshot: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_any_characters() {
        for (key, value) in [
            ("a", "1"),
            ("", ""),
            ("key with spaces=and equals", "line 1\nline 2\r\n\0"),
            ("ключ", "値 🦀"),
            ("set a b", "\u{1}\u{0}\u{0}"),
        ] {
            let entry = encode_set(key, value);
            assert_eq!(
                decode_entry(&entry),
                Ok(Command::Set {
                    key: key.to_owned(),
                    value: value.to_owned()
                }),
                "{key:?} = {value:?}"
            );
        }
        assert_eq!(
            encode_set("k", "vv"),
            [
                &[1u8, 1, 0, 0, 0, 0, 0, 0, 0, b'k', 2, 0, 0, 0, 0, 0, 0, 0][..],
                b"vv"
            ]
            .concat()
        );
    }

    #[test]
    fn malformed_entries_are_refused() {
        let good = encode_set("key", "value");
        // Every cut of a good entry is refused, and so is anything after it.
        for cut in 0..good.len() {
            assert!(decode_entry(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            decode_entry(&[&good[..], b"x"].concat()),
            Err(DecodeError("trailing bytes"))
        );
        let mut tag = good.clone();
        tag[0] = 2;
        assert_eq!(decode_entry(&tag), Err(DecodeError("unknown entry tag")));
        let mut huge = good.clone();
        huge[1..9].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_entry(&huge).is_err());
        let mut utf8 = encode_set("k", "v");
        *utf8.last_mut().unwrap() = 0xff;
        assert_eq!(decode_entry(&utf8), Err(DecodeError("not UTF-8")));
        assert!(decode_entry(b"a=1").is_err());
    }

    #[test]
    fn apply_returns_the_previous_value_and_skips_garbage() {
        let mut kv = KvState::default();
        assert_eq!(kv.apply(1, &encode_set("a", "1")), Ok(None));
        assert_eq!(kv.apply(2, &encode_set("a", "2")), Ok(Some("1".to_owned())));
        assert!(kv.apply(3, b"garbage").is_err());
        assert_eq!(kv.get("a").map(String::as_str), Some("2"));
        assert_eq!(kv.map.len(), 1);
    }

    #[test]
    fn snapshots_round_trip() {
        let mut kv = KvState::default();
        assert_eq!(kv.snapshot(), b"KVS1\0\0\0\0\0\0\0\0");
        for (i, (key, value)) in [("b", "2"), ("a", "x\ny"), ("", "empty key"), ("ü", "")]
            .into_iter()
            .enumerate()
        {
            kv.apply(i as u64 + 1, &encode_set(key, value)).unwrap();
        }
        let mut restored = KvState::default();
        restored.set("stale".into(), "gone".into());
        restored.restore(&kv.snapshot()).unwrap();
        assert_eq!(restored, kv);
        let mut empty = kv.clone();
        empty.restore(&KvState::default().snapshot()).unwrap();
        assert_eq!(empty, KvState::default());
    }

    #[test]
    fn malformed_snapshots_are_refused_and_leave_the_state_alone() {
        let mut kv = KvState::default();
        kv.set("a".into(), "1".into());
        kv.set("b".into(), "2".into());
        let good = kv.snapshot();
        let mut target = KvState::default();
        target.set("keep".into(), "me".into());
        let before = target.clone();
        for cut in 0..good.len() {
            assert!(target.restore(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = vec![[&good[..], b"x"].concat()];
        // A count larger than the pairs present.
        let mut count = good.clone();
        count[4] = 3;
        bad.push(count);
        // Keys out of order (b before a), and a duplicate key.
        let mut swapped = b"KVS1\x02\0\0\0\0\0\0\0".to_vec();
        for key in ["b", "a"] {
            put(&mut swapped, key);
            put(&mut swapped, "v");
        }
        bad.push(swapped);
        let mut duplicate = b"KVS1\x02\0\0\0\0\0\0\0".to_vec();
        for _ in 0..2 {
            put(&mut duplicate, "a");
            put(&mut duplicate, "v");
        }
        bad.push(duplicate);
        bad.push(b"KVS2\0\0\0\0\0\0\0\0".to_vec());
        bad.push(b"a=1\n".to_vec());
        for data in bad {
            let error = target.restore(&data).unwrap_err();
            assert!(error.0.starts_with("kv snapshot: "), "{error}");
        }
        assert_eq!(target, before);
    }
}
