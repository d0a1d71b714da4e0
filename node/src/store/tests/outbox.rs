//! The `Outbox` mailbox, the deposited state, receipts, and the upgrade of
//! a schema-1 database (migration 2).

use imap_bridge::backend::{Content, FlagOp, MailStore, StoreError};
use rusqlite::params;

use super::{KEY, append, db_path, flags, message, open, uids};
use crate::store::crypto::{BlobKind, Crypto, aad};
use crate::store::{OutboxCounts, OutboxItem, Store};

fn item(n: u8, recipient: &str) -> OutboxItem {
    OutboxItem {
        delivery_id: [n; 16],
        recipient: recipient.to_string(),
        recipient_fpr: format!("FPR{n}"),
        peer_id: format!("12D3KooPeer{n}"),
        payload: vec![0xc1, n, 0x00, 0xff],
    }
}

/// The UIDs in `Outbox`.
async fn outbox(store: &Store) -> Vec<u32> {
    uids(&store.snapshot("Outbox").await.expect("outbox"))
}

/// The outbox row ids, in delivery-id order.
async fn entry_ids(store: &Store) -> Vec<i64> {
    let mut due = store.due_outbox(i64::MAX, 100, &[]).await.expect("due");
    due.sort_by_key(|entry| entry.delivery_id);
    due.iter().map(|entry| entry.id).collect()
}

fn is_cannot(result: Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(result, Err(StoreError::Cannot(text)) if text.contains("mailnode maintains it"))
}

#[tokio::test]
async fn outbox_copy_appears_on_submit_and_goes_with_the_last_entry() {
    let (_dir, store) = open();
    assert!(outbox(&store).await.is_empty());
    let sent = message("two", "to two people");
    let sent_uid = store
        .submit_outgoing(
            sent.clone(),
            vec![item(1, "bob@example.org"), item(2, "carol@example.org")],
        )
        .await
        .expect("submit");
    // One copy for the message, not one per recipient, byte-identical to
    // the Sent copy (the same blob) and seen.
    let copies = outbox(&store).await;
    assert_eq!(copies.len(), 1);
    let snapshot = store.snapshot("Outbox").await.expect("outbox");
    assert_eq!(snapshot.messages()[0].flags, flags(&["\\Seen"]));
    let fetched = store
        .fetch("Outbox", &copies, Content::Full)
        .await
        .expect("fetch");
    assert_eq!(&fetched[0].1[..], &sent[..]);
    let before = snapshot.info.highest_modseq;

    let ids = entry_ids(&store).await;
    store.outbox_delivered(ids[0]).await.expect("delivered");
    assert_eq!(outbox(&store).await, copies, "carol's entry still waits");
    let bounce = b"Subject: bounce\r\n\r\nno\r\n".to_vec();
    store.outbox_failed(ids[1], bounce).await.expect("failed");
    assert!(outbox(&store).await.is_empty());
    // Expunged like any message: QRESYNC clients learn it as VANISHED.
    let changes = store
        .changes_since("Outbox", before)
        .await
        .expect("changes");
    assert_eq!(changes.vanished, copies);
    // Sent keeps its copy (the blob is shared, not dropped with Outbox's).
    let kept = store
        .fetch("Sent", &[sent_uid], Content::Full)
        .await
        .expect("sent");
    assert_eq!(&kept[0].1[..], &sent[..]);
    assert_eq!(
        store.outbox_counts().await.expect("counts"),
        OutboxCounts::default()
    );
}

#[tokio::test]
async fn deposited_entries_are_not_due_are_counted_and_marked() {
    let (_dir, store) = open();
    store
        .submit_outgoing(
            message("dep", "x"),
            vec![item(1, "bob@example.org"), item(2, "carol@example.org")],
        )
        .await
        .expect("submit");
    let ids = entry_ids(&store).await;
    store
        .outbox_deposited(ids[0], "12D3KooMailbox")
        .await
        .expect("deposited");
    assert_eq!(
        store.outbox_counts().await.expect("counts"),
        OutboxCounts {
            waiting: 1,
            deposited: 1
        }
    );
    assert_eq!(
        entry_ids(&store).await,
        vec![ids[1]],
        "deposited is not due"
    );
    // Start-up and a returning peer do not make it due again either.
    let now = crate::store::now_ms();
    store.outbox_reschedule_all(now).await.expect("reschedule");
    assert_eq!(
        store
            .outbox_reschedule_peer("12D3KooPeer1", now)
            .await
            .expect("peer"),
        0
    );
    assert_eq!(entry_ids(&store).await, vec![ids[1]]);
    let snapshot = store.snapshot("Outbox").await.expect("outbox");
    assert_eq!(
        snapshot.messages()[0].flags,
        flags(&["\\Seen"]),
        "carol waits"
    );
    // Once every recipient's entry is deposited, the copy says so.
    store
        .outbox_deposited(ids[1], "12D3KooMailbox")
        .await
        .expect("deposited");
    let snapshot = store.snapshot("Outbox").await.expect("outbox");
    assert_eq!(
        snapshot.messages()[0].flags,
        flags(&["$Deposited", "\\Seen"])
    );
    assert!(store.next_outbox_due().await.expect("next").is_none());
    assert!(entry_ids(&store).await.is_empty());

    // Within the retention nothing is dropped; after it, both go, without
    // a bounce, and the Outbox copy with them.
    assert_eq!(
        store
            .outbox_drop_expired_deposits(now)
            .await
            .expect("sweep"),
        0
    );
    let later = now + crate::store::DEPOSIT_RETENTION_MS + 1;
    assert_eq!(
        store
            .outbox_drop_expired_deposits(later)
            .await
            .expect("sweep"),
        2
    );
    assert_eq!(store.outbox_len().await.expect("len"), 0);
    assert!(outbox(&store).await.is_empty());
    assert!(
        store
            .snapshot("INBOX")
            .await
            .expect("inbox")
            .messages()
            .is_empty()
    );
}

#[tokio::test]
async fn a_receipt_closes_only_its_own_recipients_entry() {
    let (_dir, store) = open();
    store
        .submit_outgoing(message("rcpt", "x"), vec![item(5, "bob@example.org")])
        .await
        .expect("submit");
    let ids = entry_ids(&store).await;
    store
        .outbox_deposited(ids[0], "12D3KooMailbox")
        .await
        .expect("deposited");
    // Another PeerId (the mailbox peer itself, say) cannot close it, nor
    // can the right PeerId with another delivery id.
    assert!(
        !store
            .outbox_receipt("12D3KooMailbox", [5; 16])
            .await
            .expect("receipt")
    );
    assert!(
        !store
            .outbox_receipt("12D3KooPeer5", [6; 16])
            .await
            .expect("receipt")
    );
    assert_eq!(store.outbox_len().await.expect("len"), 1);
    assert_eq!(outbox(&store).await.len(), 1);
    assert!(
        store
            .outbox_receipt("12D3KooPeer5", [5; 16])
            .await
            .expect("receipt")
    );
    assert_eq!(store.outbox_len().await.expect("len"), 0);
    assert!(outbox(&store).await.is_empty());
    // A repeated receipt finds nothing.
    assert!(
        !store
            .outbox_receipt("12D3KooPeer5", [5; 16])
            .await
            .expect("receipt")
    );
}

#[tokio::test]
async fn clients_cannot_change_outbox_but_may_flag() {
    let (_dir, store) = open();
    store
        .submit_outgoing(message("ro", "x"), vec![item(1, "bob@example.org")])
        .await
        .expect("submit");
    let copy = outbox(&store).await;
    let inbox_uid = append(&store, "INBOX", &[], message("mine", "x")).await;
    assert!(is_cannot(
        store
            .append("Outbox", &[], None, message("forged", "x"))
            .await
    ));
    assert!(is_cannot(store.copy("INBOX", &[inbox_uid], "Outbox").await));
    assert!(is_cannot(
        store.move_messages("INBOX", &[inbox_uid], "Outbox").await
    ));
    assert!(is_cannot(
        store.move_messages("Outbox", &copy, "Trash").await
    ));
    assert!(is_cannot(store.delete_mailbox("Outbox").await));
    assert!(is_cannot(store.rename_mailbox("Outbox", "Elsewhere").await));
    // Flags may change; \Deleted then EXPUNGE is refused, while an EXPUNGE
    // (or CLOSE) with nothing to remove is harmless.
    assert!(
        store
            .expunge("Outbox", None)
            .await
            .expect("no-op")
            .is_empty()
    );
    store
        .store_flags("Outbox", &copy, FlagOp::Add, &flags(&["\\Deleted"]), None)
        .await
        .expect("flag");
    assert!(is_cannot(store.expunge("Outbox", None).await));
    assert!(is_cannot(store.expunge("Outbox", Some(&copy)).await));
    assert_eq!(outbox(&store).await, copy);
    // Copying out is fine: it makes the user's own copy elsewhere.
    let copied = store.copy("Outbox", &copy, "Archive").await.expect("copy");
    assert_eq!(copied.mapping.len(), 1);
    assert_eq!(store.outbox_len().await.expect("len"), 1);
}

#[tokio::test]
async fn a_version_1_database_is_migrated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_path(&dir);
    let crypto = Crypto::new(&KEY);
    crate::store::schema::create_version_1(&path, &crypto).expect("create v1");
    // What a schema-1 mailnode left: a user folder named Outbox (with a
    // child and a message) and a queued entry without an Outbox copy.
    {
        let conn = rusqlite::Connection::open(&path).expect("open v1");
        for (id, name) in [(100, "Outbox"), (101, "Outbox/Sub")] {
            conn.execute(
                "INSERT INTO mailboxes (id, name, uid_validity, uid_next, highest_modseq) \
                 VALUES (?1, ?2, 7, 5, 1)",
                params![id, name],
            )
            .expect("mailbox");
            conn.execute(
                "INSERT INTO subscriptions (name) VALUES (?1)",
                params![name],
            )
            .expect("subscribe");
        }
        let envelope = br#"{"recipient":"old@example.org","recipient_fpr":"F","peer_id":"P"}"#;
        let sealed = crypto
            .seal(&aad(BlobKind::Envelope, &[9; 16]), envelope)
            .expect("seal");
        conn.execute(
            "INSERT INTO outbox (delivery_id, envelope, payload, next_attempt, queued_at) \
             VALUES (?1, ?2, x'00', 5, 5)",
            params![&[9u8; 16][..], sealed],
        )
        .expect("entry");
    }
    let store = Store::open(&path, &KEY).expect("migrate");
    append(&store, "Outbox (old)", &[], message("kept", "x")).await;
    let mut names: Vec<String> = store
        .list_mailboxes()
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.name)
        .collect();
    names.sort();
    assert!(names.contains(&"Outbox".to_string()));
    assert!(names.contains(&"Outbox (old)".to_string()));
    assert!(names.contains(&"Outbox (old)/Sub".to_string()));
    assert!(!names.contains(&"Outbox/Sub".to_string()));
    let subscribed = store.subscriptions().await.expect("subscriptions");
    assert!(subscribed.contains(&"Outbox".to_string()));
    assert!(subscribed.contains(&"Outbox (old)/Sub".to_string()));
    // UIDs given out before the upgrade were not recent (schema 5); the
    // message appended after it is.
    let recent = store
        .recent("Outbox (old)/Sub", 5, false)
        .await
        .expect("recent");
    assert_eq!((recent.first, recent.unclaimed), (5, 0));
    let recent = store
        .recent("Outbox (old)", 6, false)
        .await
        .expect("recent");
    assert_eq!((recent.first, recent.unclaimed), (5, 1));
    // The old entry got its peer tag at the upgrade: its peer's connection
    // finds it (next_attempt 5 is after 1), another peer's does not.
    assert_eq!(store.outbox_reschedule_peer("Q", 1).await.expect("peer"), 0);
    assert_eq!(store.outbox_reschedule_peer("P", 1).await.expect("peer"), 1);
    // The mailnode Outbox starts empty; the old entry is waiting and due.
    assert!(outbox(&store).await.is_empty());
    let due = store.due_outbox(i64::MAX, 10, &[]).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].recipient, "old@example.org");
    // Its end removes no Outbox copy (it has none) and fails nothing.
    store.outbox_delivered(due[0].id).await.expect("delivered");
    store.close().await;

    // Reopening a migrated database migrates nothing more.
    let store = Store::open(&path, &KEY).expect("reopen");
    store
        .submit_outgoing(message("after", "x"), vec![item(3, "bob@example.org")])
        .await
        .expect("submit");
    assert_eq!(outbox(&store).await.len(), 1);
    assert_eq!(
        store.outbox_counts().await.expect("counts"),
        OutboxCounts {
            waiting: 1,
            deposited: 0
        }
    );
    store.close().await;
    let conn = rusqlite::Connection::open(&path).expect("open");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, 6);
}
