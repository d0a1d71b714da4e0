//! APPEND, FETCH, STORE, EXPUNGE, COPY, MOVE and change tracking.

use imap_bridge::backend::{Content, FlagOp, MailStore, StoreError};

use super::{append, flags, message, open, uids};

#[tokio::test]
async fn append_fetch_roundtrip_is_byte_identical() {
    let (_dir, store) = open();
    let samples: Vec<(Vec<u8>, usize)> = vec![
        (message("crlf", "hello\r\nworld"), 0),
        (b"Subject: lf\nFrom: a@b\n\nbody\n\nmore\n".to_vec(), 23),
        (b"Subject: no body\r\n".to_vec(), 18),
        (
            b"Subject: 8bit\r\n\r\n\xff\x00\xfe caf\xc3\xa9\r\n".to_vec(),
            17,
        ),
        (b"\r\nonly a body".to_vec(), 2),
    ];
    for (bytes, header_len) in samples {
        let uid = append(&store, "INBOX", &[], bytes.clone()).await;
        let full = store
            .fetch("INBOX", &[uid], Content::Full)
            .await
            .expect("fetch full");
        assert_eq!(full.len(), 1);
        assert_eq!(full[0].0, uid);
        assert_eq!(&full[0].1[..], &bytes[..]);
        let header = store
            .fetch("inbox", &[uid], Content::Header)
            .await
            .expect("fetch header");
        let expected = if header_len == 0 {
            let end = bytes
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("blank line")
                + 4;
            &bytes[..end]
        } else {
            &bytes[..header_len]
        };
        assert_eq!(&header[0].1[..], expected);
        let snapshot = store.snapshot("INBOX").await.expect("snapshot");
        let meta = snapshot.index.meta(uid).expect("meta");
        assert_eq!(meta.size as usize, bytes.len());
    }
    let snapshot = store.snapshot("INBOX").await.expect("snapshot");
    assert_eq!(uids(&snapshot), vec![1, 2, 3, 4, 5]);
    assert_eq!(snapshot.info.messages, 5);
    assert_eq!(snapshot.info.unseen, 5);
    assert_eq!(snapshot.info.uid_next, 6);
    // Order follows the request; unknown UIDs are left out.
    let fetched = store
        .fetch("INBOX", &[3, 99, 1], Content::Header)
        .await
        .expect("fetch");
    assert_eq!(fetched.iter().map(|f| f.0).collect::<Vec<_>>(), vec![3, 1]);
}

#[tokio::test]
async fn append_keeps_flags_and_internal_date_and_refuses_bad_input() {
    let (_dir, store) = open();
    let result = store
        .append(
            "Drafts",
            &flags(&["\\draft", "\\Recent", "$Label1", "\\SEEN"]),
            Some((1_700_000_000, 120)),
            message("draft", "x"),
        )
        .await
        .expect("append");
    let snapshot = store.snapshot("Drafts").await.expect("snapshot");
    assert_eq!(result.uid_validity, snapshot.info.uid_validity);
    let meta = &snapshot.messages()[0];
    assert_eq!(meta.flags, flags(&["$Label1", "\\Draft", "\\Seen"]));
    assert_eq!(meta.internal_date, 1_700_000_000);
    assert_eq!(meta.internal_date_offset_minutes, 120);
    assert_eq!(snapshot.info.unseen, 0);
    assert_eq!(snapshot.info.size, meta.size as u64);

    let missing = store.append("Nope", &[], None, message("a", "b")).await;
    assert_eq!(missing, Err(StoreError::NoSuchMailbox("Nope".into())));
    let empty = store.append("INBOX", &[], None, Vec::new()).await;
    assert!(matches!(empty, Err(StoreError::Rejected(_))));
}

#[tokio::test]
async fn store_flags_ops_and_unchanged_since() {
    let (_dir, store) = open();
    for i in 0..3 {
        append(&store, "INBOX", &[], message(&format!("m{i}"), "x")).await;
    }
    let added = store
        .store_flags(
            "INBOX",
            &[1, 2, 3, 42],
            FlagOp::Add,
            &flags(&["\\Seen"]),
            None,
        )
        .await
        .expect("add");
    assert_eq!(added.updated.len(), 3);
    assert!(added.modified.is_empty());
    let modseq_1 = added.updated[0].modseq;
    assert!(added.updated.iter().all(|m| m.flags == flags(&["\\Seen"])));
    let info = store.snapshot("INBOX").await.expect("snapshot").info;
    assert_eq!(info.unseen, 0);
    assert_eq!(info.highest_modseq, added.updated[2].modseq);

    // Message 2 changes after modseq_1 was read...
    store
        .store_flags("INBOX", &[2], FlagOp::Add, &flags(&["$Important"]), None)
        .await
        .expect("add keyword");
    // ...so an UNCHANGEDSINCE store based on modseq_1 must leave it alone.
    let conditional = store
        .store_flags(
            "INBOX",
            &[1, 2],
            FlagOp::Remove,
            &flags(&["\\seen"]),
            Some(added.updated[1].modseq),
        )
        .await
        .expect("conditional");
    assert_eq!(conditional.modified, vec![2]);
    assert_eq!(conditional.updated.len(), 1);
    assert_eq!(conditional.updated[0].uid, 1);
    assert!(conditional.updated[0].flags.is_empty());
    assert!(conditional.updated[0].modseq > modseq_1);

    let replaced = store
        .store_flags(
            "INBOX",
            &[3],
            FlagOp::Replace,
            &flags(&["\\Flagged", "\\Answered"]),
            None,
        )
        .await
        .expect("replace");
    assert_eq!(
        replaced.updated[0].flags,
        flags(&["\\Answered", "\\Flagged"])
    );
    // A no-op store does not move the MODSEQ.
    let same = store
        .store_flags("INBOX", &[3], FlagOp::Add, &flags(&["\\Flagged"]), None)
        .await
        .expect("no-op");
    assert_eq!(same.updated[0].modseq, replaced.updated[0].modseq);
    let info = store.snapshot("INBOX").await.expect("snapshot").info;
    assert_eq!(info.unseen, 2);
}

#[tokio::test]
async fn expunge_records_vanished_for_changes_since() {
    let (_dir, store) = open();
    for i in 0..4 {
        append(&store, "INBOX", &[], message(&format!("m{i}"), "x")).await;
    }
    let start = store
        .snapshot("INBOX")
        .await
        .expect("snapshot")
        .info
        .highest_modseq;
    store
        .store_flags(
            "INBOX",
            &[1, 2, 3],
            FlagOp::Add,
            &flags(&["\\Deleted"]),
            None,
        )
        .await
        .expect("flag");
    let after_flags = store
        .snapshot("INBOX")
        .await
        .expect("snapshot")
        .info
        .highest_modseq;

    let only = store
        .expunge("INBOX", Some(&[2, 4]))
        .await
        .expect("uid expunge");
    assert_eq!(only, vec![2]);
    let changes = store
        .changes_since("INBOX", after_flags)
        .await
        .expect("changes");
    assert_eq!(changes.vanished, vec![2]);
    assert!(changes.changed.is_empty());
    assert!(changes.highest_modseq > after_flags);

    let rest = store.expunge("INBOX", None).await.expect("expunge");
    assert_eq!(rest, vec![1, 3]);
    let changes = store.changes_since("INBOX", start).await.expect("changes");
    assert_eq!(changes.vanished, vec![1, 2, 3]);
    assert_eq!(
        changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        Vec::<u32>::new()
    );
    assert_eq!(changes.uid_next, 5);
    let snapshot = store.snapshot("INBOX").await.expect("snapshot");
    assert_eq!(uids(&snapshot), vec![4]);
    assert_eq!(snapshot.info.messages, 1);
    assert_eq!(
        store
            .fetch("INBOX", &[1, 2, 3], Content::Full)
            .await
            .expect("fetch"),
        vec![]
    );

    // Arrivals and flag changes show as changed.
    let now = changes.highest_modseq;
    let new = append(&store, "INBOX", &[], message("new", "x")).await;
    store
        .store_flags("INBOX", &[4], FlagOp::Add, &flags(&["\\Seen"]), None)
        .await
        .expect("flag");
    let changes = store.changes_since("INBOX", now).await.expect("changes");
    assert_eq!(
        changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![4, new]
    );
    assert!(changes.vanished.is_empty());
    // UIDs are never reused after an expunge.
    assert_eq!(new, 5);
}

#[tokio::test]
async fn copy_and_move_keep_content_flags_and_dates() {
    let (_dir, store) = open();
    let a = message("a", "first");
    let b = message("b", "second");
    store
        .append(
            "INBOX",
            &flags(&["\\Flagged"]),
            Some((1_600_000_000, -300)),
            a.clone(),
        )
        .await
        .expect("append a");
    append(&store, "INBOX", &["\\Seen"], b.clone()).await;
    store.create_mailbox("Work").await.expect("create");

    let copied = store.copy("INBOX", &[2, 1, 7], "Work").await.expect("copy");
    let work = store.snapshot("Work").await.expect("snapshot");
    assert_eq!(copied.uid_validity, work.info.uid_validity);
    assert_eq!(copied.mapping, vec![(1, 1), (2, 2)]);
    assert_eq!(work.messages()[0].flags, flags(&["\\Flagged"]));
    assert_eq!(work.messages()[0].internal_date, 1_600_000_000);
    assert_eq!(work.messages()[0].internal_date_offset_minutes, -300);
    assert_eq!(work.info.unseen, 1);
    assert_eq!(
        store
            .snapshot("INBOX")
            .await
            .expect("inbox")
            .messages()
            .len(),
        2
    );

    let before = store
        .snapshot("INBOX")
        .await
        .expect("inbox")
        .info
        .highest_modseq;
    let moved = store
        .move_messages("INBOX", &[1], "Archive")
        .await
        .expect("move");
    assert_eq!(moved.mapping, vec![(1, 1)]);
    let inbox = store.changes_since("INBOX", before).await.expect("changes");
    assert_eq!(inbox.vanished, vec![1]);
    let fetched = store
        .fetch("Archive", &[1], Content::Full)
        .await
        .expect("fetch");
    assert_eq!(&fetched[0].1[..], &a[..]);

    // Copies share their content: deleting one mailbox keeps the others'.
    store.delete_mailbox("Work").await.expect("delete");
    let fetched = store
        .fetch("INBOX", &[2], Content::Full)
        .await
        .expect("fetch");
    assert_eq!(&fetched[0].1[..], &b[..]);
    let fetched = store
        .fetch("Archive", &[1], Content::Full)
        .await
        .expect("fetch");
    assert_eq!(&fetched[0].1[..], &a[..]);

    // Moving within one mailbox gives new UIDs and keeps the counts right.
    let same = store
        .move_messages("INBOX", &[2], "INBOX")
        .await
        .expect("move");
    assert_eq!(same.mapping, vec![(2, 3)]);
    let inbox = store.snapshot("INBOX").await.expect("inbox");
    assert_eq!(uids(&inbox), vec![3]);
    assert_eq!(inbox.info.messages, 1);
    assert_eq!(inbox.info.unseen, 0);

    assert_eq!(
        store.copy("INBOX", &[3], "Gone").await,
        Err(StoreError::NoSuchMailbox("Gone".into()))
    );
}

#[tokio::test]
async fn watch_announces_committed_changes() {
    let (_dir, store) = open();
    let mut events = store.watch();
    append(&store, "INBOX", &[], message("w", "x")).await;
    let event = events.recv().await.expect("event");
    assert_eq!(event.mailbox, "INBOX");
    let info = store.snapshot("INBOX").await.expect("snapshot").info;
    assert_eq!(event.highest_modseq, info.highest_modseq);

    store
        .store_flags("INBOX", &[1], FlagOp::Add, &flags(&["\\Seen"]), None)
        .await
        .expect("flags");
    let event = events.recv().await.expect("event");
    assert_eq!(event.mailbox, "INBOX");
    assert!(event.highest_modseq > info.highest_modseq);

    store.create_mailbox("New").await.expect("create");
    assert_eq!(events.recv().await.expect("event").mailbox, "New");
    // A failed command announces nothing.
    assert!(store.create_mailbox("New").await.is_err());
    store.delete_mailbox("New").await.expect("delete");
    assert_eq!(events.recv().await.expect("event").mailbox, "New");
    assert!(events.try_recv().is_err());
}

/// A run of ascending UIDs is read with one range scan; UIDs that are gone
/// stay out, the rest come in order with their own content, in both the
/// range and the one-by-one paths (issue 10).
#[tokio::test]
async fn fetch_of_a_uid_run_with_holes_returns_exactly_the_existing_messages() {
    let (_dir, store) = open();
    for i in 1..=12 {
        append(
            &store,
            "INBOX",
            &[],
            message(&format!("s{i}"), &format!("b{i}")),
        )
        .await;
    }
    store
        .store_flags("INBOX", &[3, 7], FlagOp::Add, &flags(&["\\Deleted"]), None)
        .await
        .expect("flag");
    store
        .expunge("INBOX", Some(&[3, 7]))
        .await
        .expect("uid expunge");
    let subject = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            .unwrap_or_default()
    };
    // 1..=12 plus one past the end: mostly consecutive, a range scan.
    let asked: Vec<u32> = (1..=13).collect();
    for content in [Content::Header, Content::Full] {
        let got = store.fetch("INBOX", &asked, content).await.expect("fetch");
        let uids: Vec<u32> = got.iter().map(|(uid, _)| *uid).collect();
        assert_eq!(uids, vec![1, 2, 4, 5, 6, 8, 9, 10, 11, 12]);
        for (uid, bytes) in &got {
            assert_eq!(subject(bytes), format!("s{uid}"));
            if content == Content::Full {
                assert!(String::from_utf8_lossy(bytes).contains(&format!("b{uid}")));
            }
        }
    }
    // Sparse and out of order: looked up one by one, in the order asked.
    let got = store
        .fetch("INBOX", &[12, 3, 1, 40], Content::Header)
        .await
        .expect("fetch");
    let uids: Vec<u32> = got.iter().map(|(uid, _)| *uid).collect();
    assert_eq!(uids, vec![12, 1]);
    assert_eq!(subject(&got[0].1), "s12");
}

/// A single message is read on the caller's task (`Store::fetch_one`) and a
/// large one decrypted on the blocking pool: both give the stored bytes, a
/// missing UID gives nothing, and a damaged blob gives an error, never
/// wrong bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_message_fetch_small_large_missing_and_damaged() {
    let (dir, store) = open();
    let small = message("small", "a short body");
    let large = message("large", &"0123456789abcdef, a long body\r\n".repeat(20_000));
    assert!(large.len() > 512 * 1024);
    let small_uid = append(&store, "INBOX", &[], small.clone()).await;
    let large_uid = append(&store, "INBOX", &[], large.clone()).await;
    for (uid, bytes) in [(small_uid, &small), (large_uid, &large)] {
        let full = store
            .fetch("INBOX", &[uid], Content::Full)
            .await
            .expect("fetch full");
        assert_eq!(full.len(), 1);
        assert_eq!((full[0].0, &full[0].1[..]), (uid, &bytes[..]));
        let header = store
            .fetch("INBOX", &[uid], Content::Header)
            .await
            .expect("fetch header");
        assert!(bytes.starts_with(&header[0].1) && header[0].1.ends_with(b"\r\n\r\n"));
    }
    let missing = store
        .fetch("INBOX", &[99], Content::Full)
        .await
        .expect("a missing UID is no error");
    assert!(missing.is_empty());
    let unknown = store.fetch("Nowhere", &[1], Content::Full).await;
    assert!(
        matches!(unknown, Err(StoreError::NoSuchMailbox(_))),
        "{unknown:?}"
    );

    // Flip one byte of the large message's sealed body behind the store.
    let conn = rusqlite::Connection::open(super::db_path(&dir)).expect("open db");
    let body: Vec<u8> = conn
        .query_row(
            "SELECT b.body FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.uid = ?1",
            [large_uid],
            |row| row.get(0),
        )
        .expect("sealed body");
    let mut damaged = body.clone();
    damaged[body.len() / 2] ^= 0x01;
    conn.execute(
        "UPDATE blobs SET body = ?1 WHERE id = (SELECT blob_id FROM messages WHERE uid = ?2)",
        rusqlite::params![damaged, large_uid],
    )
    .expect("damage");
    let refused = store.fetch("INBOX", &[large_uid], Content::Full).await;
    assert!(
        matches!(refused, Err(StoreError::Internal(_))),
        "{refused:?}"
    );
    // The header is sealed apart and still opens.
    store
        .fetch("INBOX", &[large_uid], Content::Header)
        .await
        .expect("header still opens");
}
