//! Support for the tests that involve Thunderbird: the transcripts that
//! `tb-sync.sh` records ([`transcript`]), a raw IMAP client able to replay
//! them ([`wire`], with the DEFLATE decoder it needs in [`inflate`]), and
//! the messages the recorded sessions were seeded with ([`seed_messages`]).
//!
//! Used by `tests/thunderbird.rs` (runs the real Thunderbird) and
//! `tests/replay.rs` (replays the transcripts kept here).

#![allow(dead_code)]

pub mod inflate;
pub mod transcript;
pub mod wire;

use std::path::PathBuf;

/// This directory.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/transcripts")
}

/// The seed messages (`seed/*.eml`, in name order): what the recorded
/// sessions found in INBOX, APPENDed in this order (UIDs 1 to 6).
pub fn seed_messages() -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir().join("seed"))
        .expect("tests/transcripts/seed exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| std::fs::read(path).expect("read a seed message"))
        .collect()
}

/// The user name the transcripts were recorded with (the placeholders
/// stand for its password and its AUTHENTICATE PLAIN response).
pub const RECORDED_USER: &str = "tester@example.org";
/// Placeholder for the bridge password in the kept transcripts.
pub const PASSWORD_PLACEHOLDER: &str = "<BRIDGE-PASSWORD>";
/// Placeholder for the base64 AUTHENTICATE PLAIN response.
pub const AUTH_PLAIN_PLACEHOLDER: &str = "<AUTH-PLAIN-RESPONSE>";
