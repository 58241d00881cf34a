//! Replays the committed fuzz seed corpus (`fuzz/seeds/<target>/`) through the same
//! `rafthttp_core::fuzzing` entry points as the cargo-fuzz targets, on the stable toolchain.
//! A crash found by `cargo fuzz` is fixed and its input added to the seeds, so this test keeps it
//! fixed.

use std::fs;
use std::path::PathBuf;

use rafthttp_core::fuzzing;

/// Every file of `fuzz/seeds/<target>/`, sorted by name, with its name for assertion messages.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, data)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

#[test]
fn server_request_seeds() {
    for (name, input) in seeds("server_request") {
        // Same layout as the target's `arbitrary` input: one byte of split size, then the
        // request bytes. The target skips an empty input.
        let Some((&split, data)) = input.split_first() else {
            continue;
        };
        eprintln!("server_request/{name}");
        fuzzing::server_request(data, usize::from(split));
        // Every other split size too; the seeds are small.
        for split in 1..=data.len() {
            fuzzing::server_request(data, split);
        }
    }
}

#[test]
fn client_handshake_seeds() {
    for (name, data) in seeds("client_handshake") {
        eprintln!("client_handshake/{name}");
        fuzzing::client_handshake(&data);
    }
}

#[test]
fn membership_response_seeds() {
    for (name, data) in seeds("membership_response") {
        eprintln!("membership_response/{name}");
        fuzzing::membership_response(&data);
    }
}

#[test]
fn frames_seeds() {
    for (name, input) in seeds("frames") {
        // Same layout as the target's input: a split byte, a limit byte, then the stream.
        let [split, limit, data @ ..] = &input[..] else {
            continue;
        };
        eprintln!("frames/{name}");
        let max = 1usize << (limit % 24);
        fuzzing::frames(data, max, usize::from(*split));
        for split in 1..=data.len().min(64) {
            fuzzing::frames(data, max, split);
        }
    }
}

#[test]
fn server_connection_seeds() {
    // The same seeds as server_request: one split byte, then the bytes of a connection.
    for (name, input) in seeds("server_request") {
        let Some((&split, data)) = input.split_first() else {
            continue;
        };
        eprintln!("server_connection/{name}");
        fuzzing::server_connection(data, usize::from(split));
        for split in 1..=data.len().min(64) {
            fuzzing::server_connection(data, split);
        }
    }
    for (name, input) in seeds("server_connection") {
        let Some((&split, data)) = input.split_first() else {
            continue;
        };
        eprintln!("server_connection/{name}");
        fuzzing::server_connection(data, usize::from(split));
    }
}
