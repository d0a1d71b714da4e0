//! Store tests, each on its own temporary directory.

use std::path::PathBuf;

use imap_bridge::backend::{Flag, MailStore};
use tempfile::TempDir;

use super::Store;

mod disk;
mod index;
mod mailbox;
mod message;
mod node;
mod outbox;
mod sort;
mod sync;

/// The store key every test uses.
const KEY: [u8; 32] = [0x42; 32];

/// A store in a fresh temporary directory (kept alive by the `TempDir`).
fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&db_path(&dir), &KEY).expect("open store");
    (dir, store)
}

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("mail.db")
}

/// A small RFC 5322 message.
fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\n\
         Subject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn flags(list: &[&str]) -> Vec<Flag> {
    list.iter().map(|flag| flag.to_string()).collect()
}

/// Appends and returns the new UID.
async fn append(store: &Store, mailbox: &str, flag_list: &[&str], bytes: Vec<u8>) -> u32 {
    let result = store
        .append(mailbox, &flags(flag_list), None, bytes)
        .await
        .expect("append");
    assert_eq!(result.mapping.len(), 1);
    result.mapping[0].1
}

fn uids(store_snapshot: &imap_bridge::backend::MailboxSnapshot) -> Vec<u32> {
    store_snapshot.messages().iter().map(|m| m.uid).collect()
}
