//! Restart safety with real processes: three `kv-smol` nodes, each on its own data dir; a
//! follower and then the leader are killed with SIGKILL while writes go on, and come back from
//! their data dirs on their old addresses. Every acknowledged write must be readable on every
//! node at the end, and the restarted old leader must not disrupt the new one.
//!
//! Loopback only, ephemeral ports, every wait bounded (long polls on `/cluster?wait=...`), and
//! every process killed and reaped when the test ends, however it ends.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use common::{Cluster, View, check, put_acknowledged, send_to_leader, view, wait_for};

/// Applied entries kept before the log is compacted: small, so that a node that was down
/// catches up through a snapshot.
const COMPACT_AFTER: &str = "8";

/// Writes `keys` through the nodes in turn (followers redirect to the leader), recording the
/// acknowledged ones.
fn write(cluster: &Cluster, acked: &mut BTreeMap<String, String>, keys: std::ops::Range<u32>) {
    let running = cluster.running();
    for i in keys {
        // Keys and values with characters a naive encoding would split on.
        let key = match i % 4 {
            0 => format!("k{i}"),
            1 => format!("a=b;{i}"),
            2 => format!("sp%20ace:{i}"),
            _ => format!("x,y|{i}"),
        };
        let value = format!("value {i}\nwith = signs, spaces\tand\0 a NUL");
        let first = i as usize % running.len();
        let order: Vec<&str> = running[first..]
            .iter()
            .chain(&running[..first])
            .copied()
            .collect();
        put_acknowledged(&order, &key, &value);
        acked.insert(key, value);
    }
}

#[test]
fn killed_nodes_restart_from_their_data_dirs_and_keep_every_acknowledged_write() {
    let started = Instant::now();
    let mut cluster = Cluster::new();
    let mut acked = BTreeMap::new();
    let common = ["--compact-after", COMPACT_AFTER];

    // Node 1 starts the cluster; nodes 2 and 3 join through it.
    let one = cluster.start_three(&common);
    let first = wait_for(&one, "voters:3");
    assert_eq!(first.voters, [1, 2, 3], "{first:?}");
    assert!(first.is_leader, "the bootstrapped node leads: {first:?}");
    for id in [2, 3] {
        let joined = wait_for(cluster.addr(id), "voters:3,leader");
        assert_eq!(joined.leader_id, Some(1), "{joined:?}");
    }
    write(&cluster, &mut acked, 0..10);

    // A follower is killed; writes go on (enough for the leader to compact its log); it comes
    // back on the address its data dir recorded, and catches up by a snapshot.
    let behind = view(cluster.addr(3)).applied;
    cluster.kill(3);
    write(&cluster, &mut acked, 10..30);
    let leader = view(&one);
    assert!(leader.is_leader, "{leader:?}");
    assert!(
        leader.first_index > behind + 1,
        "the leader compacted its log past node 3's (applied {behind}): {leader:?}"
    );
    cluster.restart(3, &[&common[..], &["--join", &one]].concat());
    let three = wait_for(
        cluster.addr(3),
        &format!("leader,applied:{}", leader.applied),
    );
    assert_eq!(three.leader_id, Some(1), "{three:?}");
    assert_eq!(three.voters, [1, 2, 3], "{three:?}");
    check(cluster.addr(3), &acked);

    // The leader is killed; the other two elect a new one in a later term.
    let old = view(&one);
    assert!(old.is_leader, "{old:?}");
    cluster.kill(1);
    let two = wait_for(cluster.addr(2), &format!("leader_after:{}", old.term));
    let three = wait_for(cluster.addr(3), &format!("leader_after:{}", old.term));
    let new_leader = two.leader_id.expect("a leader");
    assert!(new_leader == 2 || new_leader == 3, "{two:?}");
    let new_addr = cluster.addr(new_leader).to_owned();
    let elected = wait_for(&new_addr, &format!("leader_after:{}", old.term));
    assert!(elected.is_leader, "{elected:?}");
    assert!(
        three.leader_id == Some(new_leader) || three.term < elected.term,
        "{two:?} {three:?}"
    );
    write(&cluster, &mut acked, 30..40);

    // The old leader comes back, on its address given explicitly: it follows the new leader,
    // which keeps leading in the same term (pre-vote and check-quorum: the returning node
    // cannot force an election).
    cluster.restart(
        1,
        &[&common[..], &["--bootstrap", "--listen", &one]].concat(),
    );
    let before = view(&new_addr);
    assert!(before.is_leader, "{before:?}");
    let back = wait_for(&one, &format!("leader,applied:{}", before.applied));
    assert_eq!(back.leader_id, Some(new_leader), "{back:?}");
    assert!(!back.is_leader, "{back:?}");
    let views: Vec<View> = [1, 2, 3].map(|id| view(cluster.addr(id))).into();
    let leading: Vec<u64> = views.iter().filter(|v| v.is_leader).map(|v| v.id).collect();
    assert_eq!(leading, [new_leader], "one leader, the same: {views:#?}");
    for v in &views {
        assert_eq!(v.term, elected.term, "the term did not change: {views:#?}");
        assert_eq!(v.leader_id, Some(new_leader), "{views:#?}");
        assert_eq!(v.voters, [1, 2, 3], "{views:#?}");
    }

    // Every acknowledged write, on every node.
    write(&cluster, &mut acked, 40..44);
    for id in 1..=3 {
        check(cluster.addr(id), &acked);
    }
    assert_eq!(acked.len(), 44);

    // A follower restarts on a new port: it joins again to tell the cluster, and the leader
    // reaches it there (nothing listens on the old port any more).
    let mover = if new_leader == 2 { 3 } else { 2 };
    let old_addr = cluster.addr(mover).to_owned();
    cluster.kill(mover);
    cluster.move_to(
        mover,
        &[
            &common[..],
            &["--listen", "127.0.0.1:0", "--join", &new_addr],
        ]
        .concat(),
    );
    let moved_to = cluster.addr(mover).to_owned();
    assert_ne!(moved_to, old_addr);
    write(&cluster, &mut acked, 44..46);
    let leader_now = view(&new_addr);
    let caught_up = wait_for(&moved_to, &format!("applied:{}", leader_now.applied));
    assert_eq!(caught_up.leader_id, Some(new_leader), "{caught_up:?}");
    check(&moved_to, &acked);

    // Node 1 leaves, asked through itself (a follower: it redirects to the leader), with the
    // Go package's request. The two others go on as a cluster of two.
    let left = send_to_leader(&one, "DELETE", "/raft?id=1", b"").unwrap();
    assert_eq!(left.status, 200, "{left:?}");
    let after = wait_for(&new_addr, "voters:2");
    assert_eq!(after.voters.len(), 2, "{after:?}");
    assert!(!after.voters.contains(&1), "{after:?}");
    assert!(after.is_leader, "{after:?}");
    let again = send_to_leader(cluster.addr(2), "DELETE", "/raft?id=1", b"").unwrap();
    assert_eq!(again.status, 200, "leaving twice is fine: {again:?}");
    cluster.kill(1);
    write(&cluster, &mut acked, 46..50);
    for id in 2..=3 {
        check(cluster.addr(id), &acked);
    }
    eprintln!(
        "restart test: {} acknowledged writes, readable on every member; {} ms",
        acked.len(),
        started.elapsed().as_millis()
    );
}
