//! The kill drill: three `kv-smol` processes on file logs, a writer thread writing unique keys
//! all along, and a node killed with SIGKILL and restarted from its data dir, again and again:
//! the leader in even rounds, a follower in odd ones. Every write whose `200` arrived
//! (acknowledged) must be readable on every node at the end; a write whose answer never came
//! is indeterminate, not lost.
//!
//! ```sh
//! cargo test -p rafthttp-kv-smol --test drill                            # 3 kills
//! KV_SMOL_DRILL_KILLS=100 cargo test --release -p rafthttp-kv-smol --test drill -- --nocapture
//! ```
//!
//! Each round waits for [`WRITES_PER_ROUND`] more acknowledged writes, kills the node, waits
//! for a leader among the survivors (a leader elected after the killed one's term when it
//! led), restarts the node on its recorded address, and waits until it applied what the
//! leader had. Every wait is a long poll or a condition variable with a deadline, and every
//! process is killed and reaped however the test ends.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use common::{BOUND, Cluster, check, put, settle_after_failure, view, wait_for};

/// Applied entries kept before the log is compacted: a restarted node often catches up by
/// snapshot.
const COMPACT_AFTER: &str = "50";

/// Acknowledged writes between two kills.
const WRITES_PER_ROUND: usize = 30;

/// Writes the writer attempts at most (a bound on its loop; a drill of 100 kills needs a few
/// thousand).
const MAX_ATTEMPTS: u64 = 1_000_000;

fn kills() -> usize {
    std::env::var("KV_SMOL_DRILL_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// What the writer shares with the test.
#[derive(Default)]
struct Shared {
    /// The addresses of the running nodes, written through in turn.
    live: Mutex<Vec<String>>,
    /// Acknowledged writes, in order.
    acked: Mutex<Vec<(String, String)>>,
    /// Signalled at each acknowledged write.
    more: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn live(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn acked(&self) -> std::sync::MutexGuard<'_, Vec<(String, String)>> {
        self.acked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `count` writes were acknowledged; panics at [`BOUND`].
    fn wait_for_acks(&self, count: usize) {
        let deadline = Instant::now() + BOUND;
        let mut acked = self.acked();
        while acked.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{count} acknowledged writes not reached within {BOUND:?} ({} so far)",
                acked.len()
            );
            acked = self
                .more
                .wait_timeout(acked, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Writes `k<n>` = `v<n>` through the live nodes in turn until told to stop; returns how many
/// it attempted.
fn writer(shared: &Shared) -> u64 {
    let mut attempts = 0;
    while !shared.stop.load(Ordering::Acquire) && attempts < MAX_ATTEMPTS {
        let addr = {
            let live = shared.live();
            live[attempts as usize % live.len()].clone()
        };
        let (key, value) = (format!("k{attempts}"), format!("v{attempts}"));
        attempts += 1;
        match put(&addr, &key, &value) {
            Ok(()) => {
                shared.acked().push((key, value));
                shared.more.notify_all();
            }
            Err(_) => settle_after_failure(&addr),
        }
    }
    attempts
}

#[test]
fn acknowledged_writes_survive_repeated_kills_of_leaders_and_followers() {
    let kills = kills();
    let started = Instant::now();
    let mut cluster = Cluster::new();
    let compact = ["--compact-after", COMPACT_AFTER];
    let one = cluster.start_three(&compact);
    wait_for(&one, "voters:3");
    for id in [2, 3] {
        wait_for(cluster.addr(id), "leader,voters:3");
    }

    let shared = Arc::new(Shared::default());
    *shared.live() = (1..=3).map(|id| cluster.addr(id).to_owned()).collect();
    let load = std::thread::spawn({
        let shared = Arc::clone(&shared);
        move || writer(&shared)
    });
    // Stops the writer however the test ends.
    struct Stop(Arc<Shared>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.stop.store(true, Ordering::Release);
        }
    }
    let stop = Stop(Arc::clone(&shared));

    for round in 0..kills {
        shared.wait_for_acks((round + 1) * WRITES_PER_ROUND);
        let views: Vec<_> = (1..=3)
            .map(|id| wait_for(cluster.addr(id), "leader"))
            .collect();
        let leader = views[0].leader_id.expect("a leader");
        let term = views.iter().map(|v| v.term).max().unwrap_or(0);
        let victim = if round % 2 == 0 {
            leader
        } else {
            leader % 3 + 1
        };
        let survivor = (1..=3).find(|&id| id != victim).expect("a survivor");
        let address = cluster.addr(victim).to_owned();
        shared.live().retain(|a| *a != address);
        cluster.kill(victim);
        let condition = if victim == leader {
            format!("leader_after:{term}")
        } else {
            "leader".to_owned()
        };
        let elected = wait_for(cluster.addr(survivor), &condition);
        let through = cluster.addr(survivor).to_owned();
        cluster.restart(victim, &[&compact[..], &["--join", &through]].concat());
        let leader_addr = elected
            .leader_address
            .clone()
            .expect("the leader's address");
        let target = view(&leader_addr).applied;
        wait_for(&address, &format!("leader,applied:{target}"));
        shared.live().push(address);
        eprintln!(
            "round {round}: killed node {victim} ({}), {} acknowledged so far",
            if victim == leader {
                "leader"
            } else {
                "follower"
            },
            shared.acked().len()
        );
    }

    drop(stop);
    let attempts = load.join().expect("the writer thread");
    let acked: BTreeMap<String, String> = shared.acked().iter().cloned().collect();
    // Every node holds every acknowledged write (linearizable reads, through each node).
    let views: Vec<_> = (1..=3).map(|id| view(cluster.addr(id))).collect();
    let applied = views.iter().map(|v| v.applied).max().unwrap_or(0);
    for id in 1..=3 {
        wait_for(cluster.addr(id), &format!("applied:{applied}"));
        check(cluster.addr(id), &acked);
    }
    eprintln!(
        "drill: {kills} kills, {attempts} writes sent, acknowledged: {}, lost: 0, {} ms",
        acked.len(),
        started.elapsed().as_millis()
    );
}
