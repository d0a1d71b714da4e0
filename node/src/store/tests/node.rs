//! The node's own operations: submission, the outbox schedule, bounces,
//! idempotent incoming deliveries and the Sent dedupe.

use imap_bridge::backend::{Content, MailStore};

use super::{append, flags, message, open, uids};
use crate::store::{Incoming, OutboxItem};

fn item(n: u8, recipient: &str) -> OutboxItem {
    OutboxItem {
        delivery_id: [n; 16],
        recipient: recipient.to_string(),
        recipient_fpr: format!("FPR{n}"),
        peer_id: format!("12D3KooPeer{n}"),
        payload: vec![0xc1, n, 0x00, 0xff],
    }
}

#[tokio::test]
async fn outbox_lifecycle_ends_in_delivery_or_bounce() {
    let (_dir, store) = open();
    assert_eq!(store.next_outbox_due().await.expect("due"), None);
    let sent = message("out", "to two people");
    let uid = store
        .submit_outgoing(
            sent.clone(),
            vec![item(1, "bob@example.org"), item(2, "carol@example.org")],
        )
        .await
        .expect("submit");
    let snapshot = store.snapshot("Sent").await.expect("sent");
    assert_eq!(uids(&snapshot), vec![uid]);
    assert_eq!(snapshot.messages()[0].flags, flags(&["\\Seen"]));
    let copy = store
        .fetch("Sent", &[uid], Content::Full)
        .await
        .expect("fetch");
    assert_eq!(&copy[0].1[..], &sent[..]);
    assert_eq!(store.outbox_len().await.expect("len"), 2);

    let now = super::super::now_ms() + 1;
    let due = store.due_outbox(now, 10, &[]).await.expect("due");
    assert_eq!(due.len(), 2);
    let first = &due[0];
    assert_eq!(first.delivery_id, [1; 16]);
    assert_eq!(first.recipient, "bob@example.org");
    assert_eq!(first.recipient_fpr, "FPR1");
    assert_eq!(first.peer_id, "12D3KooPeer1");
    assert_eq!(first.payload, vec![0xc1, 1, 0x00, 0xff]);
    assert_eq!(first.attempts, 0);
    assert_eq!(first.last_error, None);
    assert!(first.queued_at <= now);
    let (bob, carol) = (due[0].id, due[1].id);
    // In-flight entries are excluded; the limit holds.
    let others = store.due_outbox(now, 10, &[bob]).await.expect("due");
    assert_eq!(others.iter().map(|e| e.id).collect::<Vec<_>>(), vec![carol]);
    assert_eq!(store.due_outbox(now, 1, &[]).await.expect("due").len(), 1);
    assert!(store.due_outbox(now, 0, &[]).await.expect("due").is_empty());

    // A retry moves the entry into the future and records why.
    store
        .outbox_retry(bob, now + 60_000, "peer unreachable")
        .await
        .expect("retry");
    let due = store.due_outbox(now, 10, &[]).await.expect("due");
    assert_eq!(due.iter().map(|e| e.id).collect::<Vec<_>>(), vec![carol]);
    assert_eq!(
        store.next_outbox_due().await.expect("next"),
        Some(due[0].next_attempt)
    );
    store.outbox_delivered(carol).await.expect("delivered");
    assert_eq!(
        store.next_outbox_due().await.expect("next"),
        Some(now + 60_000)
    );
    let later = store.due_outbox(now + 60_000, 10, &[]).await.expect("due");
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].attempts, 1);
    assert_eq!(later[0].last_error.as_deref(), Some("peer unreachable"));

    // Start-up: everything is due again at once.
    store.outbox_reschedule_all(now).await.expect("reschedule");
    assert_eq!(store.due_outbox(now, 10, &[]).await.expect("due").len(), 1);

    // Giving up files the bounce in INBOX and empties the queue, once.
    let bounce = b"From: mailer-daemon@mailnode.invalid\r\nSubject: Undelivered\r\n\r\nsorry\r\n";
    store
        .outbox_failed(bob, bounce.to_vec())
        .await
        .expect("failed");
    assert_eq!(store.outbox_len().await.expect("len"), 0);
    assert_eq!(store.next_outbox_due().await.expect("next"), None);
    store
        .outbox_failed(bob, bounce.to_vec())
        .await
        .expect("again");
    let inbox = store.snapshot("INBOX").await.expect("inbox");
    assert_eq!(inbox.messages().len(), 1);
    let filed = store
        .fetch("INBOX", &[1], Content::Full)
        .await
        .expect("fetch");
    assert_eq!(&filed[0].1[..], &bounce[..]);
    // Unknown ids are not an error (the entry may be gone already).
    store
        .outbox_delivered(9_999)
        .await
        .expect("delivered unknown");
    store
        .outbox_retry(9_999, now, "x")
        .await
        .expect("retry unknown");
}

#[tokio::test]
async fn outbox_survives_reopen() {
    let (dir, store) = open();
    store
        .submit_outgoing(message("keep", "x"), vec![item(7, "dave@example.org")])
        .await
        .expect("submit");
    store.close().await;
    let store = crate::store::Store::open(&super::db_path(&dir), &super::KEY).expect("reopen");
    assert_eq!(store.outbox_len().await.expect("len"), 1);
    let due = store.due_outbox(i64::MAX, 10, &[]).await.expect("due");
    assert_eq!(due[0].recipient, "dave@example.org");
}

#[tokio::test]
async fn file_incoming_is_idempotent_per_peer_and_delivery() {
    let (_dir, store) = open();
    let bytes = message("incoming", "hi");
    let first = store
        .file_incoming("peerA", [9; 16], "INBOX", bytes.clone())
        .await
        .expect("file");
    assert_eq!(first, Incoming::Filed { uid: 1 });
    let again = store
        .file_incoming("peerA", [9; 16], "INBOX", bytes.clone())
        .await
        .expect("again");
    assert_eq!(again, Incoming::Duplicate);
    // Same id from another peer is another delivery.
    let other = store
        .file_incoming("peerB", [9; 16], "INBOX", bytes.clone())
        .await
        .expect("other peer");
    assert_eq!(other, Incoming::Filed { uid: 2 });
    assert_eq!(
        store
            .snapshot("INBOX")
            .await
            .expect("inbox")
            .messages()
            .len(),
        2
    );
    let fetched = store
        .fetch("INBOX", &[1], Content::Full)
        .await
        .expect("fetch");
    assert_eq!(&fetched[0].1[..], &bytes[..]);

    // Requests is re-created if the user deleted it.
    store.delete_mailbox("Requests").await.expect("delete");
    let request = store
        .file_incoming("stranger", [1; 16], "Requests", message("hello", "x"))
        .await
        .expect("file request");
    assert_eq!(request, Incoming::Filed { uid: 1 });
    let requests = store.snapshot("Requests").await.expect("requests");
    assert_eq!(requests.info.unseen, 1);
}

#[tokio::test]
async fn sent_copy_is_not_stored_twice() {
    let (_dir, store) = open();
    let submitted = message("dedupe", "body as submitted");
    let uid = store
        .submit_outgoing(submitted.clone(), vec![item(3, "bob@example.org")])
        .await
        .expect("submit");
    // The client appends its own copy (same Message-ID, maybe other bytes).
    let appended = store
        .append(
            "Sent",
            &flags(&["\\Seen", "$Forwarded"]),
            None,
            message("dedupe", "body as the client saved it"),
        )
        .await
        .expect("append");
    let sent = store.snapshot("Sent").await.expect("sent");
    assert_eq!(appended.uid_validity, sent.info.uid_validity);
    assert_eq!(appended.mapping, vec![(0, uid)]);
    assert_eq!(uids(&sent), vec![uid]);
    assert_eq!(sent.messages()[0].flags, flags(&["$Forwarded", "\\Seen"]));
    let kept = store
        .fetch("Sent", &[uid], Content::Full)
        .await
        .expect("fetch");
    assert_eq!(&kept[0].1[..], &submitted[..]);

    // Elsewhere, and without a Message-ID, appends are stored as given.
    append(&store, "Drafts", &[], message("dedupe", "x")).await;
    append(&store, "Drafts", &[], message("dedupe", "x")).await;
    assert_eq!(
        store
            .snapshot("Drafts")
            .await
            .expect("drafts")
            .messages()
            .len(),
        2
    );
    let anonymous = b"Subject: no id\r\n\r\nx\r\n".to_vec();
    append(&store, "Sent", &[], anonymous.clone()).await;
    append(&store, "Sent", &[], anonymous).await;
    assert_eq!(
        store.snapshot("Sent").await.expect("sent").messages().len(),
        3
    );

    // A client that appends before submitting does not get two copies either.
    let early = append(&store, "Sent", &[], message("early", "x")).await;
    let uid = store
        .submit_outgoing(message("early", "x"), vec![item(4, "bob@example.org")])
        .await
        .expect("submit");
    assert_eq!(uid, early);
    assert_eq!(store.outbox_len().await.expect("len"), 2);
}

#[tokio::test]
async fn submission_recreates_a_deleted_sent_mailbox() {
    let (_dir, store) = open();
    store.delete_mailbox("Sent").await.expect("delete");
    let uid = store
        .submit_outgoing(message("s", "x"), vec![item(5, "bob@example.org")])
        .await
        .expect("submit");
    let list = store.list_mailboxes().await.expect("list");
    let sent = list
        .iter()
        .find(|m| m.special_use == Some(imap_bridge::backend::SpecialUse::Sent))
        .expect("a \\Sent mailbox");
    assert_eq!(sent.name, "Sent");
    assert_eq!(sent.uid_next, uid + 1);
}

#[tokio::test]
async fn a_peer_coming_online_makes_only_its_entries_due() {
    let (_dir, store) = open();
    store
        .submit_outgoing(
            message("online", "x"),
            vec![item(1, "bob@example.org"), item(2, "carol@example.org")],
        )
        .await
        .expect("submit");
    let entries = store.due_outbox(i64::MAX, 10, &[]).await.expect("due");
    for entry in &entries {
        store
            .outbox_retry(entry.id, 1_000_000, "offline")
            .await
            .expect("retry");
    }
    assert!(
        store
            .due_outbox(500, 10, &[])
            .await
            .expect("due")
            .is_empty()
    );
    let moved = store
        .outbox_reschedule_peer("12D3KooPeer2", 500)
        .await
        .expect("reschedule");
    assert_eq!(moved, 1);
    let due = store.due_outbox(500, 10, &[]).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].recipient, "carol@example.org");
    assert_eq!(
        store
            .outbox_reschedule_peer("12D3KooUnknown", 500)
            .await
            .expect("reschedule"),
        0
    );
}
