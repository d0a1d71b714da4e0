//! What reaches the disk, the key check, and concurrent group commit.

use std::collections::HashSet;

use imap_bridge::backend::{Content, MailStore, StoreError};

use rusqlite::OptionalExtension;

use super::{KEY, append, db_path, message, open};
use crate::store::{Incoming, OutboxItem, Store};

/// Every file in the store's directory (database, WAL, shared memory).
fn files(dir: &tempfile::TempDir) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|entry| {
            let entry = entry.expect("entry");
            let bytes = std::fs::read(entry.path()).expect("read file");
            (entry.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test]
async fn no_plaintext_reaches_the_disk() {
    let (dir, store) = open();
    let marker = "ZQXJ-secret-marker-7781";
    let bytes = format!(
        "Subject: {marker} subject\r\nMessage-ID: <{marker}@example.org>\r\n\r\n\
         body {marker} body\r\n"
    )
    .into_bytes();
    store
        .append("INBOX", &[], None, bytes.clone())
        .await
        .expect("append");
    store
        .file_incoming("peer", [3; 16], "Requests", bytes.clone())
        .await
        .expect("file");
    store
        .submit_outgoing(
            bytes.clone(),
            vec![OutboxItem {
                delivery_id: [4; 16],
                recipient: format!("{marker}@example.org"),
                recipient_fpr: marker.to_string(),
                peer_id: marker.to_string(),
                payload: b"-----BEGIN PGP MESSAGE-----".to_vec(),
            }],
        )
        .await
        .expect("submit");
    let due = store.due_outbox(i64::MAX, 1, &[]).await.expect("due");
    store
        .outbox_retry(due[0].id, 0, &format!("error mentioning {marker}"))
        .await
        .expect("retry");
    // Checked while open (WAL and -shm present) and after close.
    let open_files = files(&dir);
    assert!(open_files.iter().any(|(name, _)| name.ends_with("-wal")));
    for (name, content) in open_files {
        assert!(
            !contains(&content, marker.as_bytes()),
            "marker in {name} (open)"
        );
    }
    store.close().await;
    let closed_files = files(&dir);
    assert!(!closed_files.is_empty());
    for (name, content) in closed_files {
        assert!(!contains(&content, marker.as_bytes()), "marker in {name}");
        assert!(
            !contains(&content, b"secret-marker"),
            "marker part in {name}"
        );
    }
    // And it all comes back with the key.
    let store = Store::open(&db_path(&dir), &KEY).expect("reopen");
    let fetched = store
        .fetch("INBOX", &[1], Content::Full)
        .await
        .expect("fetch");
    assert_eq!(&fetched[0].1[..], &bytes[..]);
    let due = store.due_outbox(i64::MAX, 1, &[]).await.expect("due");
    assert_eq!(due[0].recipient, format!("{marker}@example.org"));
    assert_eq!(
        due[0].last_error.as_deref(),
        Some(format!("error mentioning {marker}").as_str())
    );
}

#[tokio::test]
async fn another_key_is_refused() {
    let (dir, store) = open();
    store.close().await;
    drop(store);
    let refused = Store::open(&db_path(&dir), &[0x43; 32]);
    assert!(matches!(refused, Err(StoreError::Cannot(_))));
    Store::open(&db_path(&dir), &KEY).expect("right key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_are_group_committed_once_each() {
    let (_dir, store) = open();
    let mut tasks = Vec::new();
    for n in 0..500u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&n.to_be_bytes());
            let bytes = message(&format!("c{n}"), &"x".repeat(10 * 1024));
            // Every delivery arrives twice, as after a lost acknowledgement.
            let first = store
                .file_incoming("peer", id, "INBOX", bytes.clone())
                .await
                .expect("file");
            let second = store
                .file_incoming("peer", id, "INBOX", bytes)
                .await
                .expect("file again");
            (first, second)
        }));
    }
    // Failing commands in the same batches fail alone.
    let mut failing = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        failing.push(tokio::spawn(async move {
            store.append("Missing", &[], None, message("f", "x")).await
        }));
    }
    let mut filed = HashSet::new();
    for task in tasks {
        let (first, second) = task.await.expect("task");
        match first {
            Incoming::Filed { uid } => assert!(filed.insert(uid), "uid {uid} given twice"),
            Incoming::Duplicate => panic!("first delivery reported as duplicate"),
        }
        assert_eq!(second, Incoming::Duplicate);
    }
    for task in failing {
        assert!(matches!(
            task.await.expect("task"),
            Err(StoreError::NoSuchMailbox(_))
        ));
    }
    let inbox = store.snapshot("INBOX").await.expect("inbox");
    assert_eq!(inbox.messages().len(), 500);
    assert_eq!(inbox.info.messages, 500);
    assert_eq!(inbox.info.uid_next, 501);
    assert_eq!(filed, (1..=500).collect::<HashSet<u32>>());
    let modseqs: HashSet<u64> = inbox.messages().iter().map(|m| m.modseq).collect();
    assert_eq!(modseqs.len(), 500, "every arrival has its own MODSEQ");
}

/// Cached statements keep their plan when new values are bound: with the
/// bundled SQLite's STAT4, a point lookup was re-prepared on every FETCH of
/// a message (issue 10).
#[tokio::test]
async fn readers_do_not_reprepare_statements_on_new_bindings() {
    let (dir, store) = open();
    for i in 0..3 {
        append(&store, "INBOX", &[], message(&format!("m{i}"), "body")).await;
    }
    let conn = crate::store::schema::open_reader(&db_path(&dir)).expect("reader");
    let query = "SELECT b.id FROM messages m JOIN blobs b ON b.id = m.blob_id \
                 WHERE m.mailbox_id = ?1 AND m.uid = ?2";
    let inbox: i64 = conn
        .query_row("SELECT id FROM mailboxes WHERE name = 'INBOX'", [], |row| {
            row.get(0)
        })
        .expect("INBOX");
    let mut stmt = conn.prepare_cached(query).expect("prepare");
    for uid in 1..=3 {
        let found: Option<i64> = stmt
            .query_row(rusqlite::params![inbox, uid], |row| row.get(0))
            .optional()
            .expect("query");
        assert!(found.is_some(), "message {uid} is in INBOX");
    }
    assert_eq!(
        stmt.get_status(rusqlite::StatementStatus::RePrepare),
        0,
        "a new binding re-prepared the statement"
    );
}

/// Issue 7: two messages of one `/mailnode/deliver/2` batch with the same
/// delivery id reach the store at the same moment (the same group commit):
/// one is filed, the other is a duplicate; a later batch repeating it is a
/// duplicate too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_delivery_twice_in_one_group_commit_is_filed_once() {
    let (_dir, store) = open();
    let id = [9u8; 16];
    let bytes = message("twice", "same delivery id");
    let (first, second) = tokio::join!(
        store.file_incoming("peer", id, "INBOX", bytes.clone()),
        store.file_incoming("peer", id, "INBOX", bytes.clone()),
    );
    let mut outcomes = [first.expect("file"), second.expect("file")];
    outcomes.sort_by_key(|o| matches!(o, Incoming::Duplicate));
    assert!(
        matches!(outcomes[0], Incoming::Filed { .. }),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], Incoming::Duplicate);
    let again = store
        .file_incoming("peer", id, "INBOX", bytes)
        .await
        .expect("file again");
    assert_eq!(again, Incoming::Duplicate);
    let inbox = store.snapshot("INBOX").await.expect("inbox");
    assert_eq!(inbox.messages().len(), 1);
}
