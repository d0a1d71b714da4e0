//! Mailboxes: defaults, CREATE, DELETE, RENAME, subscriptions, UIDVALIDITY.

use imap_bridge::backend::{MailStore, SpecialUse, StoreError};

use super::{KEY, append, db_path, message, open, uids};
use crate::store::Store;

#[tokio::test]
async fn first_open_creates_the_default_mailboxes() {
    let (_dir, store) = open();
    let mut list = store.list_mailboxes().await.expect("list");
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = list.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "Archive", "Drafts", "INBOX", "Junk", "Outbox", "Requests", "Sent", "Trash"
        ]
    );
    let special = |name: &str| {
        list.iter()
            .find(|m| m.name == name)
            .and_then(|m| m.special_use)
    };
    assert_eq!(special("Sent"), Some(SpecialUse::Sent));
    assert_eq!(special("Drafts"), Some(SpecialUse::Drafts));
    assert_eq!(special("Trash"), Some(SpecialUse::Trash));
    assert_eq!(special("Junk"), Some(SpecialUse::Junk));
    assert_eq!(special("Archive"), Some(SpecialUse::Archive));
    assert_eq!(special("Requests"), None);
    assert_eq!(special("INBOX"), None);
    assert_eq!(special("Outbox"), None);
    for mailbox in &list {
        assert!(mailbox.subscribed, "{} subscribed", mailbox.name);
        assert_eq!(mailbox.uid_next, 1);
        assert!(mailbox.highest_modseq >= 1);
        assert!(mailbox.uid_validity >= 1);
        assert_eq!((mailbox.messages, mailbox.unseen, mailbox.size), (0, 0, 0));
    }
    let mut subscriptions = store.subscriptions().await.expect("subscriptions");
    subscriptions.sort();
    assert_eq!(subscriptions, names);
}

#[tokio::test]
async fn uids_and_uidvalidity_survive_reopen() {
    let (dir, store) = open();
    append(&store, "INBOX", &[], message("a", "1")).await;
    append(&store, "INBOX", &["\\Deleted"], message("b", "2")).await;
    store.expunge("INBOX", None).await.expect("expunge");
    let before = store.snapshot("INBOX").await.expect("snapshot");
    store.close().await;
    assert!(matches!(
        store.snapshot("INBOX").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.create_mailbox("x").await,
        Err(StoreError::Unavailable(_))
    ));
    drop(store);

    let store = Store::open(&db_path(&dir), &KEY).expect("reopen");
    let after = store.snapshot("INBOX").await.expect("snapshot");
    assert_eq!(after.info.uid_validity, before.info.uid_validity);
    assert_eq!(after.info.uid_next, 3);
    assert_eq!(after.info.highest_modseq, before.info.highest_modseq);
    assert_eq!(uids(&after), vec![1]);
    // UID 2 was expunged; it is never handed out again.
    assert_eq!(append(&store, "INBOX", &[], message("c", "3")).await, 3);
    let next = store.snapshot("INBOX").await.expect("snapshot");
    assert!(next.info.highest_modseq > before.info.highest_modseq);
    store.close().await;
}

#[tokio::test]
async fn create_validates_and_makes_parents() {
    let (_dir, store) = open();
    store
        .create_mailbox("Projects/2026/Q1/")
        .await
        .expect("create");
    let names: Vec<String> = store
        .list_mailboxes()
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.name)
        .collect();
    for name in ["Projects", "Projects/2026", "Projects/2026/Q1"] {
        assert!(names.iter().any(|n| n == name), "{name} exists");
    }
    assert_eq!(
        store.create_mailbox("Projects/2026").await,
        Err(StoreError::AlreadyExists("Projects/2026".into()))
    );
    assert_eq!(
        store.create_mailbox("inbox").await,
        Err(StoreError::AlreadyExists("INBOX".into()))
    );
    for bad in ["", "a//b", "/a", "a*", "100%", "a\r\nb"] {
        assert!(
            matches!(store.create_mailbox(bad).await, Err(StoreError::Cannot(_))),
            "{bad:?} refused"
        );
    }
    // Other names are case-sensitive.
    store
        .create_mailbox("projects")
        .await
        .expect("create lowercase");
}

#[tokio::test]
async fn delete_then_create_gives_a_new_uidvalidity() {
    let (_dir, store) = open();
    store.create_mailbox("Lists").await.expect("create");
    append(&store, "Lists", &[], message("l", "x")).await;
    let old = store.snapshot("Lists").await.expect("snapshot").info;
    store.delete_mailbox("Lists").await.expect("delete");
    assert_eq!(
        store.snapshot("Lists").await.map(|s| s.info),
        Err(StoreError::NoSuchMailbox("Lists".into()))
    );
    store.create_mailbox("Lists").await.expect("re-create");
    let new = store.snapshot("Lists").await.expect("snapshot");
    assert!(new.info.uid_validity > old.uid_validity);
    assert_eq!(new.info.uid_next, 1);
    assert!(new.messages().is_empty());

    assert!(matches!(
        store.delete_mailbox("INBOX").await,
        Err(StoreError::Cannot(_))
    ));
    assert!(matches!(
        store.delete_mailbox("inbox").await,
        Err(StoreError::Cannot(_))
    ));
    assert_eq!(
        store.delete_mailbox("Nothing").await,
        Err(StoreError::NoSuchMailbox("Nothing".into()))
    );
}

#[tokio::test]
async fn rename_keeps_uidvalidity_uids_children_and_subscriptions() {
    let (_dir, store) = open();
    store.create_mailbox("Old/Child").await.expect("create");
    store
        .set_subscribed("Old/Child", true)
        .await
        .expect("subscribe");
    append(&store, "Old", &[], message("o1", "x")).await;
    append(&store, "Old", &[], message("o2", "x")).await;
    append(&store, "Old/Child", &[], message("c1", "x")).await;
    let old = store.snapshot("Old").await.expect("snapshot");
    let child = store.snapshot("Old/Child").await.expect("snapshot");

    store
        .rename_mailbox("Old", "New/Place")
        .await
        .expect("rename");
    let renamed = store.snapshot("New/Place").await.expect("snapshot");
    assert_eq!(renamed.info.uid_validity, old.info.uid_validity);
    assert_eq!(uids(&renamed), uids(&old));
    assert_eq!(renamed.info.uid_next, old.info.uid_next);
    let renamed_child = store.snapshot("New/Place/Child").await.expect("child");
    assert_eq!(renamed_child.info.uid_validity, child.info.uid_validity);
    assert!(renamed_child.info.subscribed);
    assert!(store.snapshot("New").await.is_ok(), "parent created");
    assert!(matches!(
        store.snapshot("Old").await,
        Err(StoreError::NoSuchMailbox(_))
    ));
    assert!(matches!(
        store.snapshot("Old/Child").await,
        Err(StoreError::NoSuchMailbox(_))
    ));
    let subscriptions = store.subscriptions().await.expect("subscriptions");
    assert!(subscriptions.iter().any(|s| s == "New/Place/Child"));
    assert!(!subscriptions.iter().any(|s| s == "Old/Child"));

    assert_eq!(
        store.rename_mailbox("New/Place", "Sent").await,
        Err(StoreError::AlreadyExists("Sent".into()))
    );
    assert_eq!(
        store.rename_mailbox("Missing", "Other").await,
        Err(StoreError::NoSuchMailbox("Missing".into()))
    );
    assert!(matches!(
        store.rename_mailbox("New", "New/Place/Deeper").await,
        Err(StoreError::Cannot(_))
    ));
    assert!(matches!(
        store.rename_mailbox("Trash", "INBOX").await,
        Err(StoreError::AlreadyExists(_))
    ));
}

#[tokio::test]
async fn rename_inbox_moves_its_messages() {
    let (_dir, store) = open();
    append(&store, "INBOX", &[], message("i1", "x")).await;
    append(&store, "INBOX", &["\\Seen"], message("i2", "x")).await;
    let inbox = store.snapshot("INBOX").await.expect("inbox").info;
    store
        .rename_mailbox("INBOX", "Old Inbox")
        .await
        .expect("rename");
    let moved = store.snapshot("Old Inbox").await.expect("moved");
    assert_eq!(uids(&moved), vec![1, 2]);
    assert_eq!(moved.info.unseen, 1);
    let after = store.snapshot("INBOX").await.expect("inbox");
    assert!(after.messages().is_empty());
    assert_eq!(after.info.uid_validity, inbox.uid_validity);
    assert_eq!(after.info.uid_next, 3);
    let changes = store
        .changes_since("INBOX", inbox.highest_modseq)
        .await
        .expect("changes");
    assert_eq!(changes.vanished, vec![1, 2]);
}

#[tokio::test]
async fn subscriptions_need_no_mailbox() {
    let (_dir, store) = open();
    store
        .set_subscribed("Elsewhere", true)
        .await
        .expect("subscribe");
    store
        .set_subscribed("Junk", false)
        .await
        .expect("unsubscribe");
    let subscriptions = store.subscriptions().await.expect("subscriptions");
    assert!(subscriptions.iter().any(|s| s == "Elsewhere"));
    assert!(!subscriptions.iter().any(|s| s == "Junk"));
    let junk = store.snapshot("Junk").await.expect("junk");
    assert!(!junk.info.subscribed);
}

#[tokio::test]
async fn recent_claims_are_exclusive_forward_only_and_persisted() {
    let (dir, store) = open();
    for i in 0..3 {
        append(&store, "INBOX", &[], message("recent", &i.to_string())).await;
    }
    // A read-only look claims nothing.
    let peek = store.recent("INBOX", 4, false).await.expect("peek");
    assert_eq!((peek.first, peek.unclaimed), (1, 3));
    // A session that shows UIDs 1..=2 claims those two; the next one shown
    // up to UID 3 gets only UID 3; a session behind them gets nothing.
    let first = store.recent("INBOX", 3, true).await.expect("claim");
    assert_eq!((first.first, first.unclaimed), (1, 1));
    let second = store.recent("INBOX", 4, true).await.expect("claim");
    assert_eq!((second.first, second.unclaimed), (3, 0));
    let late = store.recent("INBOX", 2, true).await.expect("claim");
    assert_eq!(
        late.first, 2,
        "nothing below the watermark is handed out twice"
    );
    assert_eq!(
        store.recent("Nope", 1, true).await,
        Err(StoreError::NoSuchMailbox("Nope".into()))
    );
    // Mailboxes are independent.
    let sent = store.recent("Sent", 1, false).await.expect("peek");
    assert_eq!((sent.first, sent.unclaimed), (1, 0));
    append(&store, "INBOX", &[], message("recent", "later")).await;
    store.close().await;

    // The claims were written without anyone waiting, before the close.
    let store = Store::open(&db_path(&dir), &KEY).expect("reopen");
    let after = store.recent("INBOX", 5, false).await.expect("peek");
    assert_eq!((after.first, after.unclaimed), (4, 1));
    store.close().await;
}
