//! Admission of new connections to the standalone server, against lockout by slow sockets: a
//! bound per source address on the connections still waiting for their first complete head,
//! and, at the connection cap, shedding the oldest of those instead of refusing the newcomer.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The connections waiting for their first head, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    /// By arrival: the source and the sender whose drop sheds the connection.
    waiting: BTreeMap<u64, (IpAddr, async_channel::Sender<()>)>,
    per_source: HashMap<IpAddr, usize>,
}

impl State {
    fn remove(&mut self, seq: u64) -> bool {
        let Some((ip, _shed)) = self.waiting.remove(&seq) else {
            return false;
        };
        if let Some(count) = self.per_source.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_source.remove(&ip);
            }
        }
        true
    }
}

/// Why a new connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its source address already has its share of connections waiting for a head.
    Source,
    /// The server is full and no connection waits for a head.
    Full,
}

/// A place among the connections waiting for a head. `shed` ends when the connection is shed;
/// dropping the place (the head arrived, or the connection ended) gives it back.
#[derive(Debug)]
pub(crate) struct Waiting {
    admission: Arc<Admission>,
    seq: u64,
    pub(crate) shed: async_channel::Receiver<()>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.admission.lock().remove(self.seq);
    }
}

impl Admission {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a new connection from `ip`, unless `ip` already has `per_source` waiting.
    /// `at_cap`: the server is full, so the connection waiting longest is shed to make room;
    /// when none waits, the newcomer is refused too.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        per_source: usize,
        at_cap: bool,
    ) -> Result<Waiting, Refused> {
        let mut state = self.lock();
        if state.per_source.get(&ip).copied().unwrap_or(0) >= per_source.max(1) {
            return Err(Refused::Source);
        }
        if at_cap {
            let Some(&oldest) = state.waiting.keys().next() else {
                return Err(Refused::Full);
            };
            state.remove(oldest);
        }
        *state.per_source.entry(ip).or_default() += 1;
        let seq = state.next;
        state.next += 1;
        let (tx, shed) = async_channel::bounded(1);
        state.waiting.insert(seq, (ip, tx));
        Ok(Waiting {
            admission: Arc::clone(self),
            seq,
            shed,
        })
    }

    /// Connections waiting for a head.
    pub(crate) fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_source_bound_and_oldest_first() {
        let admission = Arc::new(Admission::default());
        let (a, b) = (IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 1]));
        let first = admission.admit(a, 2, false).expect("first");
        let second = admission.admit(a, 2, false).expect("second");
        assert_eq!(admission.admit(a, 2, false).err(), Some(Refused::Source));
        let other = admission.admit(b, 2, true).expect("sheds the oldest");
        assert!(first.shed.is_closed(), "the oldest is shed");
        assert!(!second.shed.is_closed());
        let again = admission
            .admit(a, 2, false)
            .expect("its place is free again");
        drop(first);
        assert_eq!(admission.waiting(), 3);
        drop((second, other, again));
        assert_eq!(admission.waiting(), 0);
        assert_eq!(admission.admit(a, 2, true).err(), Some(Refused::Full));
    }
}
