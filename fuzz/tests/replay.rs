//! Runs every seed (`seeds/<target>/`) and every saved crash
//! (`artifacts/<target>/`) through its target's body, without libFuzzer.
//!
//! Seeds must pass: they are the starting corpus and document the inputs
//! each target expects. Saved crashes are bugs until fixed; the second test
//! fails while any of them still crashes, naming each, so a fixed bug stays
//! fixed. Both run on the stable toolchain (`cargo test` in `fuzz/`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use mailnode_fuzz::targets;

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs each input; returns the ones that panicked.
fn replay(kind: &str) -> (usize, Vec<String>) {
    let mut ran = 0;
    let mut failed = Vec::new();
    for (name, body) in targets() {
        for path in inputs(kind, name) {
            let data = std::fs::read(&path).expect("reading a fuzz input");
            ran += 1;
            if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
                failed.push(format!("{name}: {}", path.display()));
            }
        }
    }
    (ran, failed)
}

#[test]
fn every_target_has_seeds_and_they_pass() {
    for (name, _) in targets() {
        assert!(!inputs("seeds", name).is_empty(), "no seeds for {name}");
    }
    let (ran, failed) = replay("seeds");
    assert!(ran > 0);
    assert!(failed.is_empty(), "seeds that fail: {failed:#?}");
}

#[test]
fn saved_crashes_no_longer_crash() {
    let (_, failed) = replay("artifacts");
    assert!(
        failed.is_empty(),
        "saved crash inputs that still fail: {failed:#?}"
    );
}
