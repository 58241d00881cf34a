//! The application's replicated state: the [`StateMachine`] a node applies committed entries
//! to, and the snapshot data that carries it together with the address book.

/// The application state a [`Node`](crate::Node) replicates.
///
/// It is synchronous, and runs under the replica's lock in log order: raft-rs itself is a
/// synchronous state machine, committed entries come out of its `Ready` in order, and applying
/// them there keeps every node's state a function of the log without a queue in between.
/// Keep `apply` short (no IO that can block); an application that must do slow work hands it
/// to its own task and applies the result as a later entry.
///
/// `()` is the state of a node that only changes membership.
pub trait StateMachine: Send + 'static {
    /// What applying an entry returns to the node that proposed it.
    type Output: Send + 'static;

    /// Applies the committed entry at `index`, proposed with `data`. Every node calls it for
    /// every entry, in log order, exactly once per log (a node restored from a snapshot starts
    /// after the snapshot's index).
    fn apply(&mut self, index: u64, data: &[u8]) -> Self::Output;

    /// The whole state, as bytes [`restore`](Self::restore) reads back. Called when raft sends
    /// a snapshot to a peer that is too far behind, with the state as of the last applied
    /// entry.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the whole state with a [`snapshot`](Self::snapshot)'s.
    ///
    /// # Errors
    /// When the bytes are not a snapshot of this state machine; the node keeps its state and
    /// logs the error.
    fn restore(&mut self, data: &[u8]) -> Result<(), RestoreError>;
}

/// A snapshot that [`StateMachine::restore`] cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot restore the state from a snapshot: {0}")]
pub struct RestoreError(pub String);

impl StateMachine for () {
    type Output = ();

    fn apply(&mut self, _index: u64, _data: &[u8]) {}

    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    fn restore(&mut self, _data: &[u8]) -> Result<(), RestoreError> {
        Ok(())
    }
}

/// The first bytes of a snapshot's data.
const MAGIC: &[u8; 4] = b"RHS1";

/// A snapshot's data: the address book and the application state, each length-prefixed
/// behind a magic number (`RHS1`, then the book's length as a little-endian `u32`, the book,
/// and the state to the end).
pub(crate) fn encode_snapshot(book: &[u8], state: &[u8]) -> Vec<u8> {
    let book_len = u32::try_from(book.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(8 + book.len() + state.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&book_len.to_le_bytes());
    out.extend_from_slice(&book[..book_len as usize]);
    out.extend_from_slice(state);
    out
}

/// The book and the state of snapshot data written by [`encode_snapshot`].
pub(crate) fn decode_snapshot(data: &[u8]) -> Result<(&[u8], &[u8]), RestoreError> {
    let bad = |why: &str| RestoreError(why.to_owned());
    let rest = data
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("no snapshot header"))?;
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| bad("snapshot header cut short"))?;
    let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| bad("book too long"))?;
    if rest.len() < len {
        return Err(bad("address book cut short"));
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_data_round_trips_and_refuses_garbage() {
        let data = encode_snapshot(b"1 a:1\n", b"state bytes");
        assert_eq!(
            decode_snapshot(&data),
            Ok((&b"1 a:1\n"[..], &b"state bytes"[..]))
        );
        assert_eq!(
            decode_snapshot(&encode_snapshot(b"", b"")),
            Ok((&[][..], &[][..]))
        );
        for bad in [
            &b""[..],
            b"RHS",
            b"RHS1\x01",
            b"XXXX\0\0\0\0",
            b"RHS1\x09\0\0\0short",
        ] {
            assert!(decode_snapshot(bad).is_err(), "{bad:?}");
        }
    }
}
