//! The mailbox indexes: per mailbox, the current version of its
//! [`MessageIndex`] (every message's UID, MODSEQ, flags, size and date in
//! UID order, with the counts SELECT shows), shared by every IMAP session
//! on that mailbox, so SELECT, EXAMINE and STATUS cost O(1) or O(changes)
//! instead of a read of every message (issue 7).
//!
//! The index is a cache of the `messages` table, not a second record: it
//! holds only columns that are clear there already (no content, nothing
//! new on disk), is built from the table the first time a mailbox is
//! asked for, and is then kept current from the change log the table
//! already has (every change raises a MODSEQ; expunges are in `vanished`):
//! - the writer, after each COMMIT, brings the loaded index of every
//!   mailbox the batch changed up to date (`refresh`), before announcing
//!   the change, so sessions that wake up find it current;
//! - a reader that finds it behind its own transaction (an index built
//!   while the writer committed) catches it up the same way (`current`).
//!
//! Both read only the rows changed since the index's MODSEQ (the
//! `messages_modseq` and `vanished_modseq` indexes), and a new version
//! copies only the chunks that change (see `imap_bridge::index`).
//!
//! Versions only move forward: one is installed only if it is newer than
//! the installed one. A reader takes its view of the cache *before* its
//! read transaction starts, so every version it holds is of a state its
//! transaction can see (the writer installs only after COMMIT, and WAL
//! readers see every commit finished before they start).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use imap_bridge::backend::{MessageMeta, ModSeq, StoreError, Uid};
use imap_bridge::index::MessageIndex;
use rusqlite::{Connection, params};

use super::mailboxes::{self, Mailbox};
use super::read::{META_COLUMNS, meta};
use super::sql;

/// The installed versions, by mailbox id (ids are never reused:
/// `AUTOINCREMENT`).
#[derive(Default)]
pub(super) struct Indexes {
    versions: Mutex<HashMap<i64, Arc<MessageIndex>>>,
}

/// The versions installed when a reader started: a copy of the map of
/// pointers (a handful of mailboxes), taken before the read transaction.
pub(super) struct Seen(HashMap<i64, Arc<MessageIndex>>);

impl Indexes {
    fn versions(&self) -> MutexGuard<'_, HashMap<i64, Arc<MessageIndex>>> {
        // The map is consistent even if a holder panicked.
        match self.versions.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The installed versions, for a reader about to start its transaction.
    pub(super) fn seen(&self) -> Seen {
        Seen(self.versions().clone())
    }

    /// Installs `index` for `id` unless a newer one is there.
    fn install(&self, id: i64, index: &Arc<MessageIndex>) {
        let mut versions = self.versions();
        let newer = versions
            .get(&id)
            .is_none_or(|installed| installed.modseq() < index.modseq());
        if newer {
            versions.insert(id, Arc::clone(index));
        }
    }

    /// The index of `mailbox` at the state `conn`'s transaction sees
    /// (`mailbox` was read in it): the installed version, caught up if it
    /// is behind, or built from the table the first time.
    pub(super) fn current(
        &self,
        conn: &Connection,
        seen: &Seen,
        mailbox: &Mailbox,
    ) -> Result<Arc<MessageIndex>, StoreError> {
        let target = modseq(mailbox.highest_modseq);
        match seen.0.get(&mailbox.id) {
            Some(index) if index.modseq() == target => Ok(Arc::clone(index)),
            Some(index) if index.modseq() < target => {
                let next = Arc::new(catch_up(conn, mailbox, index)?);
                self.install(mailbox.id, &next);
                Ok(next)
            }
            // Newer than this transaction (cannot happen, see the module
            // docs) or not loaded yet: build it from this transaction.
            _ => {
                let built = Arc::new(build(conn, mailbox)?);
                self.install(mailbox.id, &built);
                Ok(built)
            }
        }
    }

    /// Writer, after a COMMIT: brings the loaded indexes of the mailboxes
    /// named in `changed` up to the committed state, and drops those of
    /// mailboxes that are gone. A failure only leaves an index behind, for
    /// the next reader to catch up.
    pub(super) fn refresh(&self, conn: &Connection, changed: &[String]) {
        if self.versions().is_empty() {
            return;
        }
        let mut gone = false;
        for name in changed {
            let mailbox = match mailboxes::find(conn, name) {
                Ok(Some(mailbox)) => mailbox,
                Ok(None) => {
                    gone = true;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, mailbox = %name, "cannot refresh the mailbox index");
                    continue;
                }
            };
            let Some(index) = self.versions().get(&mailbox.id).cloned() else {
                continue;
            };
            if index.modseq() >= modseq(mailbox.highest_modseq) {
                continue;
            }
            match catch_up(conn, &mailbox, &index) {
                Ok(next) => self.install(mailbox.id, &Arc::new(next)),
                Err(error) => {
                    tracing::warn!(%error, mailbox = %name, "cannot refresh the mailbox index")
                }
            }
        }
        if gone {
            self.forget_deleted(conn);
        }
    }

    /// Drops the versions of mailboxes that no longer exist (DELETE).
    fn forget_deleted(&self, conn: &Connection) {
        let ids: Vec<i64> = self.versions().keys().copied().collect();
        let mut stmt = match conn.prepare_cached("SELECT 1 FROM mailboxes WHERE id = ?1") {
            Ok(stmt) => stmt,
            Err(_) => return,
        };
        for id in ids {
            if let Ok(false) = stmt.exists(params![id]) {
                self.versions().remove(&id);
            }
        }
    }

    /// Messages held by the installed indexes, and their heap size in
    /// bytes (for logs and tests).
    #[cfg(test)]
    pub(super) fn footprint(&self) -> (u64, usize) {
        let versions = self.versions();
        let messages = versions.values().map(|i| u64::from(i.len())).sum();
        let bytes = versions.values().map(|i| i.heap_size()).sum();
        (messages, bytes)
    }
}

fn modseq(value: i64) -> ModSeq {
    value.max(0) as ModSeq
}

/// The whole index of a mailbox, from its rows: the one O(messages) read,
/// done once per mailbox and process.
fn build(conn: &Connection, mailbox: &Mailbox) -> Result<MessageIndex, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {META_COLUMNS} FROM messages WHERE mailbox_id = ?1 ORDER BY uid"
        ))
        .map_err(sql)?;
    let rows = stmt.query_map(params![mailbox.id], meta).map_err(sql)?;
    let mut messages = Vec::with_capacity(usize::try_from(mailbox.messages).unwrap_or(0));
    for row in rows {
        messages.push(row.map_err(sql)?);
    }
    let index =
        MessageIndex::from_messages(messages, mailbox.uid_next, modseq(mailbox.highest_modseq));
    check(&index, mailbox);
    Ok(index)
}

/// `index` brought to the state of `mailbox` from the rows changed since.
fn catch_up(
    conn: &Connection,
    mailbox: &Mailbox,
    index: &MessageIndex,
) -> Result<MessageIndex, StoreError> {
    let since = index.modseq();
    if modseq(mailbox.vanished_floor) > since {
        // Expunges after `since` may have been forgotten (`prune_vanished`).
        return build(conn, mailbox);
    }
    let changed = changed_since(conn, mailbox.id, since)?;
    let vanished = vanished_since(conn, mailbox, since)?;
    let next = index.apply(
        &changed,
        &vanished,
        mailbox.uid_next,
        modseq(mailbox.highest_modseq),
    );
    check(&next, mailbox);
    Ok(next)
}

/// The index and the mailbox row's counters describe the same state.
fn check(index: &MessageIndex, mailbox: &Mailbox) {
    debug_assert_eq!(
        (i64::from(index.len()), i64::from(index.unseen())),
        (mailbox.messages, mailbox.unseen),
        "index of {} disagrees with its counters",
        mailbox.name
    );
}

/// Messages that arrived or changed after `since`, ascending UID.
pub(super) fn changed_since(
    conn: &Connection,
    mailbox_id: i64,
    since: ModSeq,
) -> Result<Vec<MessageMeta>, StoreError> {
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {META_COLUMNS} FROM messages WHERE mailbox_id = ?1 AND modseq > ?2 \
             ORDER BY uid"
        ))
        .map_err(sql)?;
    stmt.query_map(params![mailbox_id, since], meta)
        .map_err(sql)?
        .collect::<rusqlite::Result<Vec<MessageMeta>>>()
        .map_err(sql)
}

/// UIDs expunged after `since`, ascending. When `since` is older than the
/// expunges the mailbox still remembers (its `vanished_floor`), every UID
/// below UIDNEXT that is not in the mailbox: a superset of the answer,
/// which RFC 7162 §3.2.5.2 allows (clients drop UIDs they do not have).
pub(super) fn vanished_since(
    conn: &Connection,
    mailbox: &Mailbox,
    since: ModSeq,
) -> Result<Vec<Uid>, StoreError> {
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    if since < mailbox.vanished_floor {
        return missing_uids(conn, mailbox);
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT uid FROM vanished WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
        )
        .map_err(sql)?;
    stmt.query_map(params![mailbox.id, since], |row| row.get(0))
        .map_err(sql)?
        .collect::<rusqlite::Result<Vec<Uid>>>()
        .map_err(sql)
}

/// The UIDs from 1 to UIDNEXT - 1 that no message of `mailbox` has.
fn missing_uids(conn: &Connection, mailbox: &Mailbox) -> Result<Vec<Uid>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT uid FROM messages WHERE mailbox_id = ?1 ORDER BY uid")
        .map_err(sql)?;
    let present = stmt
        .query_map(params![mailbox.id], |row| row.get::<_, Uid>(0))
        .map_err(sql)?;
    let mut missing = Vec::new();
    let mut next: Uid = 1;
    for uid in present {
        let uid = uid.map_err(sql)?;
        missing.extend(next..uid);
        next = uid.saturating_add(1);
    }
    missing.extend(next..mailbox.uid_next);
    Ok(missing)
}
