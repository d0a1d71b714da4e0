//! Issue 7: the mailbox index is built once, shared, and kept current by
//! the writer, so SELECT reads no message rows after the first.

use std::sync::Arc;

use imap_bridge::backend::{FlagOp, MailStore};

use super::{append, flags, message, open};

#[tokio::test]
async fn the_writer_keeps_the_shared_index_current() {
    let (_dir, store) = open();
    for i in 0..300 {
        append(&store, "INBOX", &[], message(&format!("m{i}"), "x")).await;
    }
    let first = store.snapshot("INBOX").await.expect("snapshot");
    assert_eq!(first.index.len(), 300);
    let again = store.snapshot("INBOX").await.expect("snapshot");
    assert!(
        Arc::ptr_eq(&first.index, &again.index),
        "an unchanged mailbox hands every session the same version"
    );
    // Changes after the index is loaded are applied by the writer before
    // the call returns: the next snapshot finds that version installed.
    store
        .store_flags(
            "INBOX",
            &[5],
            FlagOp::Add,
            &flags(&["\\Seen", "$Work"]),
            None,
        )
        .await
        .expect("store");
    store
        .store_flags("INBOX", &[9], FlagOp::Add, &flags(&["\\Deleted"]), None)
        .await
        .expect("store");
    store.expunge("INBOX", None).await.expect("expunge");
    append(&store, "INBOX", &["\\Seen"], message("late", "y")).await;
    let (loaded, _) = store.inner.indexes.footprint();
    assert_eq!(loaded, 300, "the writer refreshed the loaded index");
    let now = store.snapshot("INBOX").await.expect("snapshot");
    let info = &now.info;
    assert_eq!(
        (now.index.len(), now.index.unseen(), now.index.deleted()),
        (info.messages, info.unseen, 0)
    );
    assert_eq!(now.index.modseq(), info.highest_modseq);
    assert_eq!(now.index.uid_next(), info.uid_next);
    assert!(!now.index.contains(9));
    assert_eq!(
        now.index.meta(5).map(|m| m.flags),
        Some(flags(&["$Work", "\\Seen"]))
    );
    assert!(now.index.keywords().contains("$Work"));
    assert_eq!(first.index.len(), 300, "old versions do not change");
    let changes = store
        .changes_since("INBOX", first.index.modseq())
        .await
        .expect("changes");
    assert!(Arc::ptr_eq(&changes.index, &now.index));
    assert_eq!(changes.vanished, vec![9]);
    assert_eq!(
        changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![5, 301]
    );
    // Deleting a mailbox drops its index.
    store.create_mailbox("Gone").await.expect("create");
    append(&store, "Gone", &[], message("g", "z")).await;
    store.snapshot("Gone").await.expect("snapshot");
    store.delete_mailbox("Gone").await.expect("delete");
    assert_eq!(store.inner.indexes.footprint().0, 300);
}

/// The expunge record is pruned to `vanished_keep`; changes from before the
/// forgotten expunges list every missing UID, changes from after them the
/// exact ones, and the shared index stays right across the floor.
#[tokio::test]
async fn pruned_vanished_record_and_index_across_the_floor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = crate::store::StoreOptions { vanished_keep: 3 };
    let store =
        crate::store::Store::open_with(&super::db_path(&dir), &super::KEY, &options).expect("open");
    for i in 0..20 {
        append(&store, "INBOX", &[], message(&format!("m{i}"), "x")).await;
    }
    let before = store.snapshot("INBOX").await.expect("snapshot");
    let expunge = |uids: Vec<u32>| {
        let store = store.clone();
        async move {
            store
                .store_flags("INBOX", &uids, FlagOp::Add, &flags(&["\\Deleted"]), None)
                .await
                .expect("flag");
            store.expunge("INBOX", Some(&uids)).await.expect("expunge")
        }
    };
    for uid in 1..=8 {
        assert_eq!(expunge(vec![uid]).await, vec![uid]);
    }
    let middle = store.snapshot("INBOX").await.expect("snapshot");
    expunge(vec![15]).await;
    let conn = rusqlite::Connection::open(super::db_path(&dir)).expect("open db");
    let kept: i64 = conn
        .query_row("SELECT COUNT(*) FROM vanished", [], |row| row.get(0))
        .expect("count");
    assert_eq!(kept, 3, "pruned to vanished_keep");

    let old = store
        .changes_since("INBOX", before.index.modseq())
        .await
        .expect("changes");
    let mut gone: Vec<u32> = (1..=8).collect();
    gone.push(15);
    assert_eq!(old.vanished, gone, "every missing UID");
    let recent = store
        .changes_since("INBOX", middle.index.modseq())
        .await
        .expect("changes");
    assert_eq!(recent.vanished, vec![15], "exact after the floor");
    let now = store.snapshot("INBOX").await.expect("snapshot");
    assert_eq!(now.index.len(), 11);
    assert!(!now.index.contains(15) && now.index.contains(16));
    assert_eq!(now.info.messages, 11);
}

/// The writer's bound of an expunge record (`WriteCtx::vanished_bound`)
/// starts unknown, so a store reopened with a smaller `vanished_keep`
/// prunes at its first expunge; and while the bound stays under the
/// threshold, expunges keep every record.
#[tokio::test]
async fn a_reopened_store_prunes_to_its_own_vanished_keep() {
    let dir = tempfile::tempdir().expect("temp dir");
    let open_keeping = |keep: usize| {
        let options = crate::store::StoreOptions {
            vanished_keep: keep,
        };
        crate::store::Store::open_with(&super::db_path(&dir), &super::KEY, &options).expect("open")
    };
    let vanished = || {
        rusqlite::Connection::open(super::db_path(&dir))
            .expect("open db")
            .query_row("SELECT COUNT(*) FROM vanished", [], |row| {
                row.get::<_, i64>(0)
            })
            .expect("count")
    };
    let store = open_keeping(100);
    for i in 0..12 {
        append(&store, "INBOX", &[], message(&format!("m{i}"), "x")).await;
    }
    for uid in 1..=10u32 {
        store
            .store_flags("INBOX", &[uid], FlagOp::Add, &flags(&["\\Deleted"]), None)
            .await
            .expect("flag");
        store.expunge("INBOX", Some(&[uid])).await.expect("expunge");
    }
    store.close().await;
    assert_eq!(vanished(), 10, "under the threshold nothing is forgotten");
    let store = open_keeping(2);
    store
        .store_flags("INBOX", &[11], FlagOp::Add, &flags(&["\\Deleted"]), None)
        .await
        .expect("flag");
    store.expunge("INBOX", Some(&[11])).await.expect("expunge");
    store.close().await;
    assert_eq!(
        vanished(),
        2,
        "pruned at the first expunge after the reopen"
    );
}
