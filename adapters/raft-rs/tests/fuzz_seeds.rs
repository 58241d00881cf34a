//! Replays the committed seeds of the `raft_frames` fuzz target (`fuzz/seeds/raft_frames/`)
//! through the same entry point, on the stable toolchain, at their own split and at others.

use std::path::Path;

#[test]
fn raft_frames_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/raft_frames");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        let input = std::fs::read(&path).expect("seed");
        let Some((&split, data)) = input.split_first() else {
            continue;
        };
        eprintln!("raft_frames/{}", path.display());
        rafthttp_raft::fuzzing::raft_frames(data, usize::from(split));
        for split in [1, 2, 7, 64, 4096] {
            rafthttp_raft::fuzzing::raft_frames(data, split);
        }
        seen += 1;
    }
    assert!(seen >= 4, "seeds in {}", dir.display());
}
