//! `\Recent` (RFC 3501 §2.3.2): a message is recent in the first session
//! told of it, and in read-only sessions until such a session exists.
//!
//! Each mailbox has one watermark, the first UID no session has claimed. A
//! read-write session claims everything below the UIDNEXT it shows (at
//! SELECT, and at each sync that brings new mail); claims are taken in
//! memory under one lock, so two sessions never get the same message.
//!
//! The watermark is written to `mailboxes.recent_uid` by the writer, but
//! without anyone waiting for that commit: SELECT must not wait for an
//! fsync. A crash can lose a claim written only in memory; the messages are
//! then recent once more, which is harmless, and nothing else depends on it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use imap_bridge::backend::{StoreError, Uid};
use rusqlite::{Connection, params};

use super::mailboxes::Mailbox;
use super::sql;
use super::writer::WriteCtx;

/// The watermarks claimed since the store opened, by mailbox id (ids are
/// never reused, so a deleted mailbox's entry can do no harm).
#[derive(Default)]
pub(super) struct Claims {
    watermarks: Mutex<HashMap<i64, Uid>>,
}

/// The outcome of one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Taken {
    /// The caller's recent messages run from this UID up to `below`.
    pub first: Uid,
    /// The watermark after the claim.
    pub watermark: Uid,
    /// Whether the claim moved the watermark (and it should be written).
    pub moved: bool,
}

impl Claims {
    fn watermarks(&self) -> MutexGuard<'_, HashMap<i64, Uid>> {
        // The map is consistent even if a holder panicked.
        match self.watermarks.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The unclaimed UIDs of `mailbox` below `below` are recent for the
    /// caller; with `claim` they are its alone from now on.
    pub(super) fn take(&self, mailbox: &Mailbox, below: Uid, claim: bool) -> Taken {
        let mut watermarks = self.watermarks();
        let stored = mailbox.recent_uid.max(1);
        let watermark = watermarks
            .get(&mailbox.id)
            .map_or(stored, |w| (*w).max(stored));
        let first = watermark.min(below);
        if claim && below > watermark {
            watermarks.insert(mailbox.id, below);
            return Taken {
                first,
                watermark: below,
                moved: true,
            };
        }
        Taken {
            first,
            watermark,
            moved: false,
        }
    }
}

/// Messages of mailbox `id` from UID `watermark` on: those no session has
/// claimed (STATUS RECENT). Reads only those rows of the primary key.
pub(super) fn unclaimed(conn: &Connection, id: i64, watermark: Uid) -> Result<u32, StoreError> {
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM messages WHERE mailbox_id = ?1 AND uid >= ?2")
        .and_then(|mut stmt| stmt.query_row(params![id, watermark], |row| row.get(0)))
        .map_err(sql)?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// Writer: records a claim in the mailbox's row. Only ever raises it, so
/// claims written out of order leave the highest.
pub(super) fn persist(ctx: &mut WriteCtx, id: i64, watermark: Uid) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached("UPDATE mailboxes SET recent_uid = MAX(recent_uid, ?2) WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![id, watermark]))
        .map(drop)
        .map_err(sql)
}
