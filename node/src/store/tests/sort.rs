//! The SORT and THREAD fields (issue 9): sealed when a message is stored,
//! served from memory after the first read, and filled in for messages a
//! version before migration 3 stored.

use imap_bridge::backend::{FlagOp, MailStore};

use super::{KEY, Store, append, db_path, message, open};

#[tokio::test]
async fn fields_come_from_the_stored_header() {
    let (_dir, store) = open();
    let a = append(&store, "INBOX", &[], message("Re: [list] lunch", "x")).await;
    let b = append(&store, "INBOX", &[], message("dinner", "y")).await;
    let fields = store
        .sort_fields("INBOX", &[b, 999, a])
        .await
        .expect("fields");
    let mut got: Vec<(u32, &str, bool)> = fields
        .iter()
        .map(|(uid, f)| (uid, f.subject(), f.is_reply()))
        .collect();
    got.sort();
    // The missing UID is absent.
    assert_eq!(got, vec![(a, "LUNCH", true), (b, "DINNER", false)]);
    assert_eq!(fields.get(b).expect("fields").from(), "ALICE");
    assert_eq!(fields.get(b).expect("fields").display_to(), "BOB");
    assert_eq!(
        fields.get(b).expect("fields").message_id(),
        Some("dinner@example.org")
    );
    // A copy shares the blob, and so the fields.
    let copied = store.copy("INBOX", &[a], "Archive").await.expect("copy");
    let archived = store
        .sort_fields("Archive", &[copied.mapping[0].1])
        .await
        .expect("fields");
    assert_eq!(
        archived.get(copied.mapping[0].1).expect("fields").subject(),
        "LUNCH"
    );
    // Cached, and still right for what is left after an expunge.
    store
        .store_flags("INBOX", &[a], FlagOp::Add, &["\\Deleted".into()], None)
        .await
        .expect("flag");
    store.expunge("INBOX", None).await.expect("expunge");
    let fields = store.sort_fields("INBOX", &[b]).await.expect("fields");
    assert_eq!(fields.get(b).expect("fields").subject(), "DINNER");
    assert!(store.sort_fields("Nope", &[1]).await.is_err());
    store.close().await;
}

#[tokio::test]
async fn migration_3_fills_old_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_path(&dir);
    let store = Store::open(&path, &KEY).expect("open");
    let uid = append(&store, "INBOX", &[], message("Fwd: old", "x")).await;
    store.close().await;
    // What a version-2 mailnode left: no sort fields.
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(
            "ALTER TABLE blobs DROP COLUMN sort_fields; \
             ALTER TABLE mailboxes DROP COLUMN vanished_floor; \
             ALTER TABLE mailboxes DROP COLUMN recent_uid; DROP INDEX outbox_peer; \
             ALTER TABLE outbox DROP COLUMN peer_tag; DROP INDEX messages_instance; \
             ALTER TABLE messages DROP COLUMN instance; DROP TABLE sync_state; \
             DROP TABLE sync_journal; \
             DROP TABLE sync_waiting; PRAGMA user_version = 2;",
        )
        .expect("downgrade");
    }
    let store = Store::open(&path, &KEY).expect("migrate");
    let fields = store.sort_fields("INBOX", &[uid]).await.expect("fields");
    assert_eq!(fields.get(uid).expect("fields").subject(), "OLD");
    assert!(fields.get(uid).expect("fields").is_reply());
    store.close().await;
    let conn = rusqlite::Connection::open(&path).expect("open");
    let empty: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM blobs WHERE sort_fields IS NULL",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(empty, 0);
}
