//! Device sync (issue 8): the journal of user changes and applying a
//! sibling's ops, between two stores that share the store key like two
//! devices of one identity.

use imap_bridge::backend::{Content, FlagOp, MailStore};

use super::{KEY, append, flags, message};
use crate::store::{Store, SyncOp, Version};

struct Devices {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    one: Store,
    two: Store,
}

fn devices() -> Devices {
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let one = Store::open(&a.path().join("mail.db"), &KEY).expect("open");
    let two = Store::open(&b.path().join("mail.db"), &KEY).expect("open");
    one.set_sync_device(Some("device-one"));
    two.set_sync_device(Some("device-two"));
    Devices {
        _dirs: (a, b),
        one,
        two,
    }
}

/// What the sync service does, without the network: `from`'s journal,
/// contents added, applied to `to`, then deleted. Returns the ops.
async fn sync(from: &Store, to: &Store) -> Vec<SyncOp> {
    let pending = from.sync_pending(1000).await.expect("pending");
    let upto = pending.last().map_or(0, |(seq, _)| *seq);
    let mut ops = Vec::new();
    for (_, mut op) in pending {
        if let SyncOp::New {
            instance,
            source: None,
            content,
            ..
        } = &mut op
        {
            *content = from.sync_content(*instance).await.expect("content");
        }
        ops.push(op);
    }
    to.sync_apply(ops.clone()).await.expect("apply");
    from.sync_queue(upto, Vec::new()).await.expect("queue");
    ops
}

async fn flags_of(store: &Store, mailbox: &str) -> Vec<Vec<String>> {
    let snapshot = store.snapshot(mailbox).await.expect("snapshot");
    snapshot
        .messages()
        .iter()
        .map(|m| m.flags.clone())
        .collect()
}

async fn count(store: &Store, mailbox: &str) -> usize {
    store
        .snapshot(mailbox)
        .await
        .map(|s| s.messages().len())
        .unwrap_or(0)
}

async fn deliver(store: &Store, id: u8, subject: &str) {
    store
        .file_incoming("alice-peer", [id; 16], "INBOX", message(subject, "hi"))
        .await
        .expect("file");
}

#[tokio::test]
async fn flags_expunge_and_move_reach_the_sibling_once() {
    let d = devices();
    deliver(&d.one, 1, "first").await;
    deliver(&d.two, 1, "first").await;
    deliver(&d.one, 2, "second").await;
    deliver(&d.two, 2, "second").await;
    // Nothing the node filed itself is journalled.
    assert!(d.one.sync_pending(10).await.expect("pending").is_empty());

    d.one
        .store_flags(
            "INBOX",
            &[1],
            FlagOp::Add,
            &flags(&["\\Flagged", "\\Seen"]),
            None,
        )
        .await
        .expect("store");
    // IMAP sessions on device two hear of the applied change at once.
    let mut events = d.two.watch();
    let ops = sync(&d.one, &d.two).await;
    let event = events.try_recv().expect("a change notification");
    assert_eq!(event.mailbox, "INBOX");
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert_eq!(
        flags_of(&d.two, "INBOX").await,
        vec![flags(&["\\Flagged", "\\Seen"]), vec![]]
    );
    // Applied, not journalled again (no echo); applying again changes
    // nothing.
    assert!(d.two.sync_pending(10).await.expect("pending").is_empty());
    let before = d
        .two
        .snapshot("INBOX")
        .await
        .expect("snapshot")
        .info
        .highest_modseq;
    d.two.sync_apply(ops).await.expect("again");
    let after = d
        .two
        .snapshot("INBOX")
        .await
        .expect("snapshot")
        .info
        .highest_modseq;
    assert_eq!(before, after);

    d.one.create_mailbox("Projects").await.expect("create");
    d.one
        .move_messages("INBOX", &[2], "Projects")
        .await
        .expect("move");
    sync(&d.one, &d.two).await;
    assert_eq!(count(&d.two, "INBOX").await, 1);
    assert_eq!(
        count(&d.two, "Projects").await,
        1,
        "the move creates the folder"
    );

    d.one
        .store_flags("INBOX", &[1], FlagOp::Add, &flags(&["\\Deleted"]), None)
        .await
        .expect("store");
    d.one.expunge("INBOX", None).await.expect("expunge");
    sync(&d.one, &d.two).await;
    assert_eq!(count(&d.two, "INBOX").await, 0);
    let changes = d.two.changes_since("INBOX", before).await.expect("changes");
    assert!(changes.vanished.contains(&1), "{changes:?}");

    // And back: a change on device two reaches device one.
    d.two
        .store_flags("Projects", &[1], FlagOp::Add, &flags(&["$label1"]), None)
        .await
        .expect("store");
    sync(&d.two, &d.one).await;
    assert_eq!(
        flags_of(&d.one, "Projects").await,
        vec![flags(&["$label1"])]
    );
}

#[tokio::test]
async fn an_append_travels_with_its_content_and_a_copy_by_reference() {
    let d = devices();
    let draft = message("draft", "not sent yet");
    append(&d.one, "Drafts", &["\\Draft"], draft.clone()).await;
    deliver(&d.one, 7, "delivered").await;
    deliver(&d.two, 7, "delivered").await;
    d.one.create_mailbox("Keep").await.expect("create");
    d.one.copy("INBOX", &[1], "Keep").await.expect("copy");
    let ops = sync(&d.one, &d.two).await;
    assert_eq!(ops.len(), 3, "{ops:?}");
    let fetched = d
        .two
        .fetch("Drafts", &[1], Content::Full)
        .await
        .expect("fetch");
    assert_eq!(&fetched[0].1[..], &draft[..]);
    assert_eq!(flags_of(&d.two, "Drafts").await, vec![flags(&["\\Draft"])]);
    let copy = d
        .two
        .fetch("Keep", &[1], Content::Full)
        .await
        .expect("fetch");
    assert!(String::from_utf8_lossy(&copy[0].1).contains("delivered"));

    // A COPY of a message device two does not have yet waits for it.
    deliver(&d.one, 8, "late original").await;
    d.one.copy("INBOX", &[2], "Keep").await.expect("copy");
    sync(&d.one, &d.two).await;
    assert_eq!(count(&d.two, "Keep").await, 1);
    deliver(&d.two, 8, "late original").await;
    assert_eq!(count(&d.two, "Keep").await, 2);
    assert_eq!(count(&d.two, "INBOX").await, 2);

    // The draft's later changes find it on device two by its instance.
    d.one
        .store_flags("Drafts", &[1], FlagOp::Add, &flags(&["\\Seen"]), None)
        .await
        .expect("store");
    sync(&d.one, &d.two).await;
    assert_eq!(
        flags_of(&d.two, "Drafts").await,
        vec![flags(&["\\Draft", "\\Seen"])]
    );
}

#[tokio::test]
async fn ops_before_the_message_arrives_are_kept_and_older_ops_lose() {
    let d = devices();
    deliver(&d.one, 3, "early").await;
    deliver(&d.one, 4, "deleted").await;
    d.one
        .store_flags("INBOX", &[1], FlagOp::Add, &flags(&["\\Seen"]), None)
        .await
        .expect("store");
    d.one.create_mailbox("Later").await.expect("create");
    d.one
        .move_messages("INBOX", &[1], "Later")
        .await
        .expect("move");
    d.one
        .store_flags("INBOX", &[2], FlagOp::Add, &flags(&["\\Deleted"]), None)
        .await
        .expect("store");
    d.one.expunge("INBOX", None).await.expect("expunge");
    let ops = sync(&d.one, &d.two).await;
    // Device two has neither message yet: nothing is filed by the ops.
    assert_eq!(count(&d.two, "INBOX").await, 0);

    // Then the sender's copies arrive: the first goes where the sibling
    // put it, with its flags; the deleted one is not filed at all.
    deliver(&d.two, 3, "early").await;
    deliver(&d.two, 4, "deleted").await;
    assert_eq!(count(&d.two, "INBOX").await, 0);
    assert_eq!(flags_of(&d.two, "Later").await, vec![flags(&["\\Seen"])]);

    // Ops applied in reverse order and again end the same.
    let mut reversed = ops.clone();
    reversed.reverse();
    d.two.sync_apply(reversed).await.expect("apply");
    assert_eq!(count(&d.two, "INBOX").await, 0);
    assert_eq!(flags_of(&d.two, "Later").await, vec![flags(&["\\Seen"])]);

    let instance = *ops[0].instance().expect("an instance");
    // An op this store refuses is skipped alone: the rest of the batch
    // applies.
    let refused = SyncOp::Place {
        instance,
        mailbox: Some("bad//name".into()),
        version: Version {
            at: i64::MAX / 2,
            device: "device-one".into(),
        },
    };
    let draft = SyncOp::New {
        instance: [5; 16],
        mailbox: "Drafts".into(),
        flags: Vec::new(),
        date: 1_800_000_000,
        offset: 0,
        source: None,
        content: Some(message("after", "x")),
        version: Version {
            at: 2,
            device: "device-one".into(),
        },
    };
    d.two.sync_apply(vec![refused, draft]).await.expect("apply");
    assert_eq!(count(&d.two, "Drafts").await, 1);
    assert_eq!(count(&d.two, "Later").await, 1);

    // An op older than the register changes nothing.
    let stale = SyncOp::Flags {
        instance,
        flags: flags(&["\\Answered"]),
        version: Version {
            at: 1,
            device: "device-one".into(),
        },
    };
    d.two.sync_apply(vec![stale]).await.expect("apply");
    assert_eq!(flags_of(&d.two, "Later").await, vec![flags(&["\\Seen"])]);
}

#[tokio::test]
async fn the_sent_copy_is_journalled_and_a_copied_journal_is_dropped() {
    let d = devices();
    d.one
        .submit_outgoing(message("sent", "to bob"), Vec::new())
        .await
        .expect("submit");
    sync(&d.one, &d.two).await;
    assert_eq!(count(&d.two, "Sent").await, 1);
    assert_eq!(flags_of(&d.two, "Sent").await, vec![flags(&["\\Seen"])]);

    // Without siblings nothing is journalled.
    d.one.set_sync_device(None);
    d.one
        .store_flags("Sent", &[1], FlagOp::Add, &flags(&["\\Flagged"]), None)
        .await
        .expect("store");
    assert!(d.one.sync_pending(10).await.expect("pending").is_empty());
}

#[tokio::test]
async fn mailbox_create_rename_and_delete_reach_the_sibling() {
    let d = devices();
    d.one.create_mailbox("Work").await.expect("create");
    d.one.create_mailbox("Work/2026").await.expect("create");
    sync(&d.one, &d.two).await;
    let names = |store: Store| async move {
        store
            .list_mailboxes()
            .await
            .expect("list")
            .into_iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
    };
    assert!(
        names(d.two.clone())
            .await
            .contains(&"Work/2026".to_string())
    );
    d.one.rename_mailbox("Work", "Job").await.expect("rename");
    d.one
        .delete_mailbox("Spam?")
        .await
        .expect_err("no such mailbox");
    sync(&d.one, &d.two).await;
    let now = names(d.two.clone()).await;
    assert!(now.contains(&"Job/2026".to_string()), "{now:?}");
    assert!(!now.contains(&"Work".to_string()), "{now:?}");
    d.one.delete_mailbox("Job/2026").await.expect("delete");
    // The same CREATE made on both: the sibling's is refused there and
    // skipped, the rest applies.
    d.two.create_mailbox("Both").await.expect("create");
    d.one.create_mailbox("Both").await.expect("create");
    sync(&d.one, &d.two).await;
    let now = names(d.two.clone()).await;
    assert!(!now.contains(&"Job/2026".to_string()), "{now:?}");
    assert!(now.contains(&"Both".to_string()), "{now:?}");
}

#[test]
fn ops_round_trip_through_cbor_and_json() {
    let op = SyncOp::New {
        instance: [9; 16],
        mailbox: "Drafts".into(),
        flags: flags(&["\\Draft"]),
        date: 1_800_000_000,
        offset: 60,
        source: None,
        content: Some(b"Subject: x\r\n\r\nbody".to_vec()),
        version: Version {
            at: 5,
            device: "12D3".into(),
        },
    };
    let cbor = cbor4ii::serde::to_vec(Vec::new(), &op).expect("cbor");
    let back: SyncOp = cbor4ii::serde::from_slice(&cbor).expect("decode");
    assert_eq!(back, op);
    let json = serde_json::to_string(&op).expect("json");
    assert_eq!(serde_json::from_str::<SyncOp>(&json).expect("decode"), op);
}

#[tokio::test]
async fn migration_6_gives_old_rows_the_same_instance_in_every_copy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mail.db");
    let store = Store::open(&path, &KEY).expect("open");
    append(&store, "INBOX", &[], message("old", "x")).await;
    store.close().await;
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(
            "DROP INDEX messages_instance; ALTER TABLE messages DROP COLUMN instance; \
             DROP TABLE sync_state; DROP TABLE sync_journal; DROP TABLE sync_waiting; \
             PRAGMA user_version = 5;",
        )
        .expect("downgrade");
    }
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).expect("copy");
    let instance = |path: &std::path::Path| -> Vec<u8> {
        let store = Store::open(path, &KEY).expect("migrate");
        drop(store);
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.query_row("SELECT instance FROM messages", [], |row| row.get(0))
            .expect("instance")
    };
    let (one, two) = (instance(&path), instance(&copy));
    assert_eq!(one.len(), 16);
    assert_eq!(one, two);
}
