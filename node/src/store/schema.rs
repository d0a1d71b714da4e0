//! The database file: connection settings, numbered schema migrations
//! (`PRAGMA user_version`), the first-open seeding of the default mailboxes,
//! and the check that the store key is the one the database was made with.
//!
//! Only the writer thread migrates; readers open the file read-only after
//! the writer is up.

use std::path::Path;
use std::time::Duration;

use imap_bridge::backend::{DEFAULT_MAILBOXES, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::crypto::{BlobKind, Crypto, aad, blob_aad};
use super::sql;

/// Numbered migrations; entry `i` brings the schema from version `i` to
/// `i + 1`. Never edit a released entry: append a new one.
///
/// Clear columns are only what IMAP answers without decrypting (RFC 3501
/// UIDs, flags, sizes, dates, names, MODSEQs) plus random ids; every message
/// header and body, and every outbox envelope, is sealed (see `crypto`).
const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value ANY
    ) STRICT;

    CREATE TABLE mailboxes (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        name           TEXT NOT NULL UNIQUE,
        special_use    TEXT,
        uid_validity   INTEGER NOT NULL,
        uid_next       INTEGER NOT NULL,
        highest_modseq INTEGER NOT NULL,
        messages       INTEGER NOT NULL DEFAULT 0,
        unseen         INTEGER NOT NULL DEFAULT 0,
        size           INTEGER NOT NULL DEFAULT 0
    ) STRICT;

    CREATE TABLE subscriptions (
        name TEXT PRIMARY KEY
    ) STRICT, WITHOUT ROWID;

    -- Message content, shared by the copies of a message (COPY does not
    -- re-encrypt). The row id is in the associated data of both blobs.
    CREATE TABLE blobs (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        header     BLOB NOT NULL,
        body       BLOB NOT NULL,
        size       INTEGER NOT NULL,
        msgid_hmac BLOB
    ) STRICT;
    CREATE INDEX blobs_msgid ON blobs (msgid_hmac) WHERE msgid_hmac IS NOT NULL;

    CREATE TABLE messages (
        mailbox_id    INTEGER NOT NULL,
        uid           INTEGER NOT NULL,
        blob_id       INTEGER NOT NULL,
        modseq        INTEGER NOT NULL,
        flags         TEXT NOT NULL,
        seen          INTEGER NOT NULL,
        deleted       INTEGER NOT NULL,
        size          INTEGER NOT NULL,
        internal_date INTEGER NOT NULL,
        date_offset   INTEGER NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
    CREATE INDEX messages_blob ON messages (blob_id);

    -- Expunged UIDs with the MODSEQ of their expunge (RFC 7162 §3.2.10).
    CREATE TABLE vanished (
        mailbox_id INTEGER NOT NULL,
        uid        INTEGER NOT NULL,
        modseq     INTEGER NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX vanished_modseq ON vanished (mailbox_id, modseq);

    -- Deliveries already filed: HMAC(peer, delivery id) -> when.
    CREATE TABLE delivered (
        tag BLOB PRIMARY KEY,
        at  INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE outbox (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id  BLOB NOT NULL,
        envelope     BLOB NOT NULL,
        payload      BLOB NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        last_error   BLOB,
        queued_at    INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX outbox_due ON outbox (next_attempt);
    "#,
    // 2: delivery status the user can see. Each outbox entry remembers the
    // UID of its message's copy in the `Outbox` mailbox (shared by the
    // entries of one submission) and has a state: 0 waiting, 1 deposited at
    // one of the recipient's mailbox peers (which is then sealed in
    // `mailbox_peer`). The `Outbox` mailbox itself is created by
    // `ensure_outbox_mailbox` right after this step.
    r#"
    ALTER TABLE outbox ADD COLUMN outbox_uid INTEGER;
    ALTER TABLE outbox ADD COLUMN state INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN mailbox_peer BLOB;
    CREATE INDEX outbox_delivery ON outbox (delivery_id);
    CREATE INDEX outbox_copy ON outbox (outbox_uid) WHERE outbox_uid IS NOT NULL;
    CREATE INDEX outbox_state ON outbox (state, next_attempt);
    "#,
    // 3: the header fields SORT and THREAD compare (issue 9), sealed per
    // blob like the header they come from. Rows stored before this step
    // are filled in by `fill_sort_fields` right after it.
    r#"
    ALTER TABLE blobs ADD COLUMN sort_fields BLOB;
    "#,
    // 4 (issue 7): the `vanished` table is pruned (`messages::prune_vanished`);
    // each mailbox remembers the highest MODSEQ of an expunge it forgot, so
    // QRESYNC from before it gets every missing UID (RFC 7162 §3.2.5.2).
    // Waiting outbox entries are indexed by a keyed hash of the recipient's
    // PeerId (`outbox::peer_tag`), filled for older rows by `fill_peer_tags`.
    r#"
    ALTER TABLE mailboxes ADD COLUMN vanished_floor INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN peer_tag BLOB;
    CREATE INDEX outbox_peer ON outbox (peer_tag) WHERE state = 0;
    "#,
    // 5 (issue 7): `\Recent` (RFC 3501 §2.3.2). Each mailbox keeps the
    // first UID no session has claimed; mail already there at the upgrade
    // counts as seen by a session.
    r#"
    ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1;
    UPDATE mailboxes SET recent_uid = uid_next;
    "#,
    // 6 (issue 8, device sync, `sync`): every message row names its
    // instance (the same message on every device of the identity; rows
    // stored before get one derived from UIDVALIDITY and UID by
    // `sync::fill_instances`, so two copies of one store agree); per
    // instance the last-writer-wins registers a sibling's ops are compared
    // with; the journal of this device's user changes not yet queued for
    // the siblings; and a sibling's COPY of a message not here yet.
    r#"
    ALTER TABLE messages ADD COLUMN instance BLOB;
    CREATE INDEX messages_instance ON messages (instance);
    CREATE TABLE sync_state (
        instance  BLOB PRIMARY KEY,
        flags     TEXT,
        flags_at  INTEGER NOT NULL DEFAULT 0,
        flags_dev TEXT NOT NULL DEFAULT '',
        place     TEXT,
        place_at  INTEGER NOT NULL DEFAULT 0,
        place_dev TEXT NOT NULL DEFAULT ''
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE sync_journal (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        op  TEXT NOT NULL
    ) STRICT;
    CREATE TABLE sync_waiting (
        source BLOB NOT NULL,
        op     TEXT NOT NULL
    ) STRICT;
    CREATE INDEX sync_waiting_source ON sync_waiting (source);
    "#,
];

/// Creates a database at schema version 1 exactly (migration 1 and the
/// first-open seeding), as mailnode before migration 2 left it, so tests
/// can check the upgrade.
#[cfg(test)]
pub(super) fn create_version_1(path: &Path, crypto: &Crypto) -> Result<(), StoreError> {
    let conn = Connection::open(path).map_err(sql)?;
    conn.execute_batch(MIGRATIONS[0]).map_err(sql)?;
    seed(&conn, crypto)?;
    conn.pragma_update(None, "user_version", 1).map_err(sql)?;
    Ok(())
}

/// The mailbox that lists what is still being delivered (see `outbox`).
pub const OUTBOX_MAILBOX: &str = "Outbox";

/// How long a delivery id is remembered. Senders give up after days (7 by
/// default), so a month of memory is ample for idempotency.
const DELIVERED_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// A known plaintext sealed at creation; opening it proves the key.
const KEY_CHECK: &[u8] = b"mailnode store key check";

/// Opens the write connection: creates the file if needed, sets WAL with
/// `synchronous=FULL` (a commit survives power loss, docs/decisions.md),
/// runs pending migrations and checks the key.
pub(super) fn open_writer(path: &Path, crypto: &Crypto) -> Result<Connection, StoreError> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|err| {
            StoreError::Internal(format!("cannot create {}: {err}", parent.display()))
        })?;
    }
    let conn = Connection::open(path).map_err(sql)?;
    restrict_permissions(path);
    conn.busy_timeout(Duration::from_secs(10)).map_err(sql)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Internal(format!(
            "cannot switch {} to WAL mode (got {mode})",
            path.display()
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(sql)?;
    conn.set_prepared_statement_cache_capacity(64);
    stable_plans(&conn)?;
    migrate(&conn, crypto)?;
    check_key(&conn, crypto)?;
    prune_delivered(&conn)?;
    Ok(conn)
}

/// Opens a read-only connection for the reader pool.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(sql)?;
    conn.set_prepared_statement_cache_capacity(32);
    stable_plans(&conn)?;
    Ok(conn)
}

/// Keeps each cached statement's query plan across new bindings
/// (`SQLITE_DBCONFIG_ENABLE_QPSG`). The bundled SQLite is built with STAT4,
/// which otherwise re-prepares a statement on every new value bound to a
/// parameter compared with an indexed column: a FETCH of one message spent
/// 60% of its SQL time in the parser (docs/benchmarks.md, issue 10). Our
/// queries are point and range lookups on keys with no ANALYZE statistics,
/// so the plan never depends on the values.
fn stable_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(sql)?;
    Ok(())
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // Contents are encrypted, but names, sizes and dates are not: keep the
    // file to its owner. Failure (e.g. a filesystem without modes) is not
    // fatal.
    if let Err(err) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!("cannot restrict permissions of {}: {err}", path.display());
    }
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) {}

fn migrate(conn: &Connection, crypto: &Crypto) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::Internal(format!(
            "the mail store has schema version {version}, newer than this mailnode \
             understands ({known}); upgrade mailnode"
        )));
    }
    if version == known {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sql)?;
    let result = (|| {
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            conn.execute_batch(migration).map_err(sql)?;
            conn.pragma_update(None, "user_version", index as i64 + 1)
                .map_err(sql)?;
        }
        if version == 0 {
            seed(conn, crypto)?;
        }
        if version < 2 {
            ensure_outbox_mailbox(conn)?;
        }
        if version < 3 {
            fill_sort_fields(conn, crypto)?;
        }
        if version < 4 {
            super::outbox::fill_peer_tags(conn, crypto)?;
        }
        if version < 6 {
            super::sync::fill_instances(conn)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(sql),
        Err(err) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(err)
        }
    }
}

/// Migration 3: seals the sort fields of every message stored before it,
/// from its header (one pass, at the first open of the new version).
fn fill_sort_fields(conn: &Connection, crypto: &Crypto) -> Result<(), StoreError> {
    let mut select = conn
        .prepare("SELECT id, header FROM blobs WHERE sort_fields IS NULL")
        .map_err(sql)?;
    let rows = select
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .map_err(sql)?
        .collect::<rusqlite::Result<Vec<(i64, Vec<u8>)>>>()
        .map_err(sql)?;
    let mut update = conn
        .prepare("UPDATE blobs SET sort_fields = ?2 WHERE id = ?1")
        .map_err(sql)?;
    for (id, sealed) in rows {
        let header = crypto.open(&blob_aad(BlobKind::Header, id), &sealed)?;
        let fields = super::messages::seal_sort_fields(crypto, id, &header)?;
        update.execute(params![id, fields]).map_err(sql)?;
    }
    Ok(())
}

/// First open: counters, the key check and the default mailboxes.
fn seed(conn: &Connection, crypto: &Crypto) -> Result<(), StoreError> {
    let check = crypto.seal(&aad(BlobKind::KeyCheck, b""), KEY_CHECK)?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('modseq', 0), ('last_uidvalidity', 0), \
         ('key_check', ?1)",
        params![check],
    )
    .map_err(sql)?;
    let mut modseq: i64 = 0;
    let uid_validity = super::now_secs().clamp(1, i64::from(u32::MAX));
    for (name, special_use) in DEFAULT_MAILBOXES {
        modseq += 1;
        conn.execute(
            "INSERT INTO mailboxes (name, special_use, uid_validity, uid_next, highest_modseq) \
             VALUES (?1, ?2, ?3, 1, ?4)",
            params![
                name,
                special_use.map(|s| s.as_attribute()),
                uid_validity,
                modseq
            ],
        )
        .map_err(sql)?;
        conn.execute(
            "INSERT INTO subscriptions (name) VALUES (?1)",
            params![name],
        )
        .map_err(sql)?;
    }
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'modseq'",
        params![modseq],
    )
    .map_err(sql)?;
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'last_uidvalidity'",
        params![uid_validity],
    )
    .map_err(sql)?;
    Ok(())
}

/// Migration 2's data step: creates the `Outbox` mailbox, subscribed. A
/// mailbox of that name made by the user under schema 1 is theirs, not a
/// list mailnode keeps: it is renamed (with its children) to a free
/// `Outbox (old)` name first, so nothing of the user's is locked or lost.
fn ensure_outbox_mailbox(conn: &Connection) -> Result<(), StoreError> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT id FROM mailboxes WHERE name = ?1",
            params![OUTBOX_MAILBOX],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql)?;
    if exists.is_some() {
        let mut kept = None;
        for n in 1..=100 {
            let candidate = if n == 1 {
                format!("{OUTBOX_MAILBOX} (old)")
            } else {
                format!("{OUTBOX_MAILBOX} (old {n})")
            };
            let taken: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM mailboxes WHERE name = ?1 OR substr(name, 1, ?2) = ?3",
                    params![
                        candidate,
                        candidate.len() as i64 + 1,
                        format!("{candidate}/")
                    ],
                    |row| row.get(0),
                )
                .map_err(sql)?;
            if taken == 0 {
                kept = Some(candidate);
                break;
            }
        }
        let Some(kept) = kept else {
            return Err(StoreError::Internal(
                "cannot find a free name for the existing Outbox mailbox".into(),
            ));
        };
        let prefix = format!("{OUTBOX_MAILBOX}/");
        // Subscriptions need no mailbox, so one of the new names may be
        // subscribed already: that row simply stays.
        for table in ["mailboxes", "OR IGNORE subscriptions"] {
            conn.execute(
                &format!(
                    "UPDATE {table} SET name = ?1 || substr(name, ?2) \
                     WHERE name = ?3 OR substr(name, 1, ?4) = ?5"
                ),
                params![
                    kept,
                    OUTBOX_MAILBOX.len() as i64 + 1,
                    OUTBOX_MAILBOX,
                    prefix.len() as i64,
                    prefix
                ],
            )
            .map_err(sql)?;
        }
        tracing::warn!("your own mailbox Outbox is now called {kept:?}; mailnode keeps Outbox");
    }
    let modseq = meta_int(conn, "modseq")? + 1;
    let uid_validity = super::now_secs()
        .max(meta_int(conn, "last_uidvalidity")? + 1)
        .clamp(1, i64::from(u32::MAX));
    conn.execute(
        "INSERT INTO mailboxes (name, special_use, uid_validity, uid_next, highest_modseq) \
         VALUES (?1, NULL, ?2, 1, ?3)",
        params![OUTBOX_MAILBOX, uid_validity, modseq],
    )
    .map_err(sql)?;
    conn.execute(
        "INSERT OR IGNORE INTO subscriptions (name) VALUES (?1)",
        params![OUTBOX_MAILBOX],
    )
    .map_err(sql)?;
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'modseq'",
        params![modseq],
    )
    .map_err(sql)?;
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'last_uidvalidity'",
        params![uid_validity],
    )
    .map_err(sql)?;
    Ok(())
}

/// Checks a store file without changing it: SQLite's integrity check, a
/// schema version this code knows, and the key check (restore runs this on
/// the restored copy before it takes the place of a home).
pub(super) fn verify(path: &Path, crypto: &Crypto) -> Result<(), StoreError> {
    let conn = open_reader(path)?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check(1)", [], |row| row.get(0))
        .map_err(sql)?;
    if verdict != "ok" {
        return Err(StoreError::Internal(format!(
            "the mail store fails SQLite's integrity check: {verdict}"
        )));
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql)?;
    if version < 1 || version > MIGRATIONS.len() as i64 {
        return Err(StoreError::Internal(format!(
            "the mail store has schema version {version}, which this mailnode does not know"
        )));
    }
    check_key(&conn, crypto)
}

fn check_key(conn: &Connection, crypto: &Crypto) -> Result<(), StoreError> {
    let check: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'key_check'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql)?;
    let Some(check) = check else {
        return Err(StoreError::Internal(
            "the mail store has no key check; the database is damaged".into(),
        ));
    };
    match crypto.open(&aad(BlobKind::KeyCheck, b""), &check) {
        Ok(plain) if plain == KEY_CHECK => Ok(()),
        _ => Err(StoreError::Cannot(
            "the mail store was created with another key; use the identity (home \
             directory) it belongs to"
                .into(),
        )),
    }
}

fn prune_delivered(conn: &Connection) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM delivered WHERE at < ?1",
        params![super::now_ms() - DELIVERED_RETENTION_MS],
    )
    .map_err(sql)?;
    Ok(())
}

/// Reads an integer counter from `meta`.
pub(super) fn meta_int(conn: &Connection, key: &str) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT value FROM meta WHERE key = ?1",
        params![key],
        |row| row.get(0),
    )
    .map_err(sql)
}

/// The first unused `blobs` row id: above every id ever committed (the
/// AUTOINCREMENT sequence remembers deleted ones), so a sealed blob's
/// associated data is never reused for another blob.
pub(super) fn next_blob_id(conn: &Connection) -> Result<i64, StoreError> {
    let last: i64 = conn
        .query_row(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'blobs'), 0), \
                        COALESCE((SELECT MAX(id) FROM blobs), 0))",
            [],
            |row| row.get(0),
        )
        .map_err(sql)?;
    Ok(last + 1)
}
