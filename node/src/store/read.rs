//! The read side: a small pool of read-only connections and the queries
//! IMAP needs (LIST, STATUS, SELECT, QRESYNC changes, FETCH). SELECT and
//! the changes of a mailbox come with its shared index (`index`).
//!
//! WAL mode lets readers run beside the writer: a read never waits behind a
//! group commit, and each read runs in its own read transaction so it sees
//! one committed state. Nothing here writes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use imap_bridge::backend::{
    Changes, Content, MailboxInfo, MailboxSnapshot, MessageMeta, ModSeq, StoreError, Uid,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::crypto::{BlobKind, Crypto, blob_aad};
use super::index::{self, Indexes, Seen};
use super::mailboxes::{self, MAILBOX_COLUMNS, Mailbox, parse_special_use};
use super::messages::decode_flags;
use super::schema::open_reader;
use super::{run_cached, sql};

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 4;

/// The pool of read-only connections.
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Readers {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // A panic while holding the lock leaves a plain Vec behind; it is
        // still consistent.
        match self.idle.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Runs `op` in a read transaction on a pooled connection. Blocking:
    /// call from `spawn_blocking`, or see `Store::fetch_one` for the one
    /// exception.
    pub(super) fn with<T>(
        &self,
        op: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(super::closed());
        }
        let pooled = self.idle().pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        // The statements are cached: a single-message FETCH is a handful
        // of microseconds of SQL, and parsing BEGIN each time was a
        // visible part of it.
        run_cached(&conn, "BEGIN")?;
        let result = op(&conn);
        // Read-only: ending the transaction either way is the same. A
        // connection that could not end it is not reused.
        if run_cached(&conn, "ROLLBACK").is_ok() && !self.closed.load(Ordering::Acquire) {
            let mut idle = self.idle();
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        result
    }

    /// Drops the idle connections and refuses new reads.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle().clear();
    }
}

fn info(mailbox: &Mailbox, subscribed: bool) -> MailboxInfo {
    MailboxInfo {
        name: mailbox.name.clone(),
        special_use: parse_special_use(mailbox.special_use.as_deref()),
        subscribed,
        uid_validity: mailbox.uid_validity,
        uid_next: mailbox.uid_next,
        highest_modseq: mailbox.highest_modseq.max(1) as ModSeq,
        messages: u32::try_from(mailbox.messages.max(0)).unwrap_or(u32::MAX),
        unseen: u32::try_from(mailbox.unseen.max(0)).unwrap_or(u32::MAX),
        size: mailbox.size.max(0) as u64,
    }
}

fn is_subscribed(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM subscriptions WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row(params![name], |row| row.get(0)).optional())
        .map_err(sql)?;
    Ok(found.is_some())
}

/// LIST / STATUS of every mailbox.
pub(super) fn list(conn: &Connection) -> Result<Vec<MailboxInfo>, StoreError> {
    let subscribed = subscriptions(conn)?;
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes ORDER BY name"
        ))
        .map_err(sql)?;
    let mailboxes = stmt
        .query_map([], Mailbox::from_row)
        .map_err(sql)?
        .collect::<rusqlite::Result<Vec<Mailbox>>>()
        .map_err(sql)?;
    Ok(mailboxes
        .iter()
        .map(|mailbox| info(mailbox, subscribed.contains(&mailbox.name)))
        .collect())
}

/// LSUB: every subscribed name.
pub(super) fn subscriptions(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT name FROM subscriptions ORDER BY name")
        .map_err(sql)?;
    let names = stmt
        .query_map([], |row| row.get(0))
        .map_err(sql)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(sql)?;
    Ok(names)
}

/// The clear columns of a message as [`meta`] reads them.
pub(super) const META_COLUMNS: &str = "uid, modseq, flags, size, internal_date, date_offset";

/// One message's clear metadata from a row of [`META_COLUMNS`].
pub(super) fn meta(row: &rusqlite::Row<'_>) -> rusqlite::Result<MessageMeta> {
    Ok(MessageMeta {
        uid: row.get(0)?,
        modseq: row.get::<_, i64>(1)?.max(0) as ModSeq,
        flags: decode_flags(&row.get::<_, String>(2)?),
        size: row.get(3)?,
        internal_date: row.get(4)?,
        internal_date_offset_minutes: row.get(5)?,
    })
}

/// SELECT / EXAMINE: the summary and the mailbox's shared index, without
/// reading the messages (see `index`).
pub(super) fn snapshot(
    conn: &Connection,
    indexes: &Indexes,
    seen: &Seen,
    name: &str,
) -> Result<MailboxSnapshot, StoreError> {
    let mailbox = mailboxes::require(conn, name)?;
    let subscribed = is_subscribed(conn, &mailbox.name)?;
    let index = indexes.current(conn, seen, &mailbox)?;
    Ok(MailboxSnapshot {
        info: info(&mailbox, subscribed),
        index,
    })
}

/// Changes after `since` (RFC 7162 §3.1.4 CHANGEDSINCE, §3.2.5.2 VANISHED)
/// and the index they lead to, from one read transaction. Reads only the
/// rows changed since.
pub(super) fn changes_since(
    conn: &Connection,
    indexes: &Indexes,
    seen: &Seen,
    name: &str,
    since: ModSeq,
) -> Result<Changes, StoreError> {
    let mailbox = mailboxes::require(conn, name)?;
    let index = indexes.current(conn, seen, &mailbox)?;
    Ok(Changes {
        highest_modseq: mailbox.highest_modseq.max(1) as ModSeq,
        uid_next: mailbox.uid_next,
        changed: index::changed_since(conn, mailbox.id, since)?,
        vanished: index::vanished_since(conn, &mailbox, since)?,
        index,
    })
}

/// One fetched message: its UID and the decrypted bytes.
pub(super) type Fetched = (Uid, Arc<[u8]>);

/// FETCH: decrypts the header block (and the body for `Full`) of each
/// existing UID, in the order asked.
pub(super) fn fetch(
    conn: &Connection,
    crypto: &Crypto,
    name: &str,
    uids: &[Uid],
    content: Content,
) -> Result<Vec<Fetched>, StoreError> {
    open(crypto, sealed(conn, name, uids, content)?)
}

/// The sealed parts of each existing UID, in the order asked: the SQL half
/// of [`fetch`].
pub(super) fn sealed(
    conn: &Connection,
    name: &str,
    uids: &[Uid],
    content: Content,
) -> Result<Vec<SealedRow>, StoreError> {
    let mailbox = mailboxes::require(conn, name)?;
    if mostly_consecutive(uids) {
        rows_in_range(conn, mailbox.id, uids, content)
    } else {
        rows_one_by_one(conn, mailbox.id, uids, content)
    }
}

/// Decrypts rows read by [`sealed`]: the crypto half of [`fetch`].
pub(super) fn open(crypto: &Crypto, rows: Vec<SealedRow>) -> Result<Vec<Fetched>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for (uid, blob_id, header, body) in rows {
        let mut bytes = Vec::with_capacity(header.len() + body.as_ref().map_or(0, Vec::len));
        crypto.open_into(&blob_aad(BlobKind::Header, blob_id), &header, &mut bytes)?;
        if let Some(body) = body {
            crypto.open_into(&blob_aad(BlobKind::Body, blob_id), &body, &mut bytes)?;
        }
        out.push((uid, Arc::from(bytes)));
    }
    Ok(out)
}

/// The bytes [`open`] would decrypt.
pub(super) fn sealed_len(rows: &[SealedRow]) -> usize {
    rows.iter()
        .map(|(_, _, header, body)| header.len() + body.as_ref().map_or(0, Vec::len))
        .sum()
}

/// A stored message's sealed parts: UID, blob id, header, body (`Full`).
pub(super) type SealedRow = (Uid, i64, Vec<u8>, Option<Vec<u8>>);

/// The cached statement reading `content` of the messages matching
/// `condition` (over `m`, the messages row); a header fetch never loads
/// bodies.
fn fetch_statement<'c>(
    conn: &'c Connection,
    content: Content,
    condition: &str,
) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
    let columns = match content {
        Content::Header => "m.uid, b.id, b.header, NULL",
        Content::Full => "m.uid, b.id, b.header, b.body",
    };
    conn.prepare_cached(&format!(
        "SELECT {columns} FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE {condition}"
    ))
    .map_err(sql)
}

fn sealed_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SealedRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

/// Ascending UIDs with few gaps (`FETCH 1:*`, a batch of new mail): one
/// range scan costs less than a lookup per UID, and reads at most a
/// quarter more rows than asked.
fn mostly_consecutive(uids: &[Uid]) -> bool {
    let (Some(&first), Some(&last)) = (uids.first(), uids.last()) else {
        return false;
    };
    let span = u64::from(last.saturating_sub(first)) + 1;
    uids.len() > 1
        && uids.windows(2).all(|pair| pair[0] < pair[1])
        && span <= uids.len() as u64 + uids.len() as u64 / 4
}

fn rows_in_range(
    conn: &Connection,
    mailbox_id: i64,
    uids: &[Uid],
    content: Content,
) -> Result<Vec<SealedRow>, StoreError> {
    let mut stmt = fetch_statement(
        conn,
        content,
        "m.mailbox_id = ?1 AND m.uid BETWEEN ?2 AND ?3 ORDER BY m.uid",
    )?;
    let (first, last) = (uids[0], uids[uids.len() - 1]);
    let mut wanted = uids.iter().peekable();
    let mut out = Vec::with_capacity(uids.len());
    let rows = stmt
        .query_map(params![mailbox_id, first, last], sealed_row)
        .map_err(sql)?;
    for row in rows {
        let row = row.map_err(sql)?;
        // Both ascending: skip the asked UIDs that are gone, keep the row
        // if it was asked.
        while wanted.next_if(|&&uid| uid < row.0).is_some() {}
        if wanted.next_if(|&&uid| uid == row.0).is_some() {
            out.push(row);
        }
    }
    Ok(out)
}

fn rows_one_by_one(
    conn: &Connection,
    mailbox_id: i64,
    uids: &[Uid],
    content: Content,
) -> Result<Vec<SealedRow>, StoreError> {
    let mut stmt = fetch_statement(conn, content, "m.mailbox_id = ?1 AND m.uid = ?2")?;
    let mut out = Vec::with_capacity(uids.len());
    for &uid in uids {
        if let Some(row) = stmt
            .query_row(params![mailbox_id, uid], sealed_row)
            .optional()
            .map_err(sql)?
        {
            out.push(row);
        }
    }
    Ok(out)
}
