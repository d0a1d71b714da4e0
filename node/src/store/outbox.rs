//! The outbox table: submission (Sent copy, its copy in the `Outbox`
//! mailbox and one entry per recipient, in one transaction), the delivery
//! schedule, the deposited state, and the end of an entry (delivered,
//! failed with a bounce in INBOX, closed by the recipient's receipt, or a
//! deposit that outlived the mailbox retention).
//!
//! An entry is *waiting* (state 0: due for attempts on its schedule) or
//! *deposited* (state 1: a mailbox peer of the recipient committed it; no
//! more attempts, kept until the recipient's read-side receipt or the
//! mailbox retention). The `Outbox` mailbox holds one copy of each message
//! that still has entries (sharing the Sent copy's blob); the last entry of
//! a message to go takes the copy with it, in the same transaction, and a
//! copy whose entries are all deposited carries the keyword `$Deposited`.
//!
//! Payloads are OpenPGP ciphertext already and are stored as they are; the
//! envelope (recipient, fingerprint, PeerId), the last error and the mailbox
//! peer are sealed, bound to the entry's random delivery id. Waiting entries
//! are indexed by `peer_tag`, a keyed hash (HMAC under the store key) of the
//! recipient's PeerId, so a peer's connection reschedules its entries with
//! one indexed UPDATE and the PeerId is never in the file in the clear. The
//! delivery policy (backoff, giving up) belongs to `crate::outbox`, not here.

use imap_bridge::backend::{StoreError, Uid};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::crypto::{BlobKind, Crypto, aad};
use super::mailboxes;
use super::messages::{self, Sealed};
use super::writer::WriteCtx;
use super::{OutboxCounts, OutboxEntry, OutboxItem, sql};

/// Entry state: attempts continue on the schedule.
const WAITING: i64 = 0;
/// Entry state: a mailbox peer of the recipient committed it.
const DEPOSITED: i64 = 1;

/// How long a deposited entry is kept: the mailbox peers' retention
/// (30 days, docs/protocol.md). After that the mailbox has dropped it too.
pub const DEPOSIT_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// The keyword on an `Outbox` copy whose every entry is deposited.
pub const DEPOSITED_KEYWORD: &str = "$Deposited";

/// The sealed part of an outbox entry.
#[derive(Serialize, Deserialize)]
struct Envelope {
    recipient: String,
    recipient_fpr: String,
    peer_id: String,
}

/// An outbox item ready for the writer.
pub(super) struct SealedItem {
    delivery_id: [u8; 16],
    envelope: Vec<u8>,
    payload: Vec<u8>,
    peer_tag: Vec<u8>,
}

/// The keyed hash that indexes waiting entries by recipient PeerId
/// (`outbox.peer_tag`): a peer's connection finds its entries without
/// opening every envelope, and the PeerId is not in the file in the clear.
pub(super) fn peer_tag(crypto: &Crypto, peer_id: &str) -> Vec<u8> {
    crypto.mac(&[b"mailnode outbox peer", peer_id.as_bytes()])[..16].to_vec()
}

/// Seals the envelope of an item (CPU work, done by the caller).
pub(super) fn seal_item(crypto: &Crypto, item: OutboxItem) -> Result<SealedItem, StoreError> {
    let envelope = serde_json::to_vec(&Envelope {
        recipient: item.recipient,
        recipient_fpr: item.recipient_fpr,
        peer_id: item.peer_id.clone(),
    })
    .map_err(|err| StoreError::Internal(format!("cannot encode an outbox envelope: {err}")))?;
    Ok(SealedItem {
        delivery_id: item.delivery_id,
        envelope: crypto.seal(&aad(BlobKind::Envelope, &item.delivery_id), &envelope)?,
        payload: item.payload,
        peer_tag: peer_tag(crypto, &item.peer_id),
    })
}

/// Files the Sent copy and queues every item, in the caller's transaction
/// (the SMTP `250` waits for its COMMIT). A Sent copy whose Message-ID is
/// already in Sent (the client appended it first) is not stored twice.
pub(super) fn submit(
    ctx: &mut WriteCtx,
    sent_copy: &Sealed,
    items: &[SealedItem],
    now_ms: i64,
) -> Result<Uid, StoreError> {
    let mut sent = mailboxes::sent(ctx)?;
    let existing = match &sent_copy.msgid {
        Some(tag) => messages::find_by_message_id(&ctx.conn, sent.id, tag)?,
        None => None,
    };
    let seen = ["\\Seen".to_string()];
    let uid = match existing {
        Some(uid) => uid,
        None => messages::file(ctx, &mut sent, &seen, super::now_date(), sent_copy)?,
    };
    // The Outbox copy shares the Sent copy's blob, as COPY does.
    let outbox_uid = if items.is_empty() {
        None
    } else {
        let mut outbox = mailboxes::outbox(ctx)?;
        messages::copy_one(ctx, sent.id, uid, &mut outbox, &seen)?
    };
    insert(ctx, items, now_ms, outbox_uid)?;
    Ok(uid)
}

/// Queues items that have no Sent or Outbox copy: the node's own control
/// messages (card updates, issue 8), which the user did not write.
pub(super) fn queue(
    ctx: &mut WriteCtx,
    items: &[SealedItem],
    now_ms: i64,
) -> Result<(), StoreError> {
    insert(ctx, items, now_ms, None)
}

fn insert(
    ctx: &mut WriteCtx,
    items: &[SealedItem],
    now_ms: i64,
    outbox_uid: Option<Uid>,
) -> Result<(), StoreError> {
    let mut stmt = ctx
        .conn
        .prepare_cached(
            "INSERT INTO outbox (delivery_id, envelope, payload, attempts, next_attempt, \
             queued_at, outbox_uid, state, peer_tag) VALUES (?1, ?2, ?3, 0, ?4, ?4, ?5, 0, ?6)",
        )
        .map_err(sql)?;
    for item in items {
        stmt.execute(params![
            &item.delivery_id[..],
            item.envelope,
            item.payload,
            now_ms,
            outbox_uid,
            item.peer_tag
        ])
        .map_err(sql)?;
    }
    Ok(())
}

/// Removes entry `id` and, if it was the last entry of its message, the
/// message's `Outbox` copy (or marks the copy `$Deposited` when only
/// deposited entries remain). Returns whether the entry existed.
fn finish(ctx: &mut WriteCtx, id: i64) -> Result<bool, StoreError> {
    let copy: Option<Option<i64>> = ctx
        .conn
        .prepare_cached("SELECT outbox_uid FROM outbox WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row(params![id], |row| row.get(0)).optional())
        .map_err(sql)?;
    let Some(copy) = copy else {
        return Ok(false);
    };
    ctx.conn
        .prepare_cached("DELETE FROM outbox WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![id]))
        .map_err(sql)?;
    if let Some(copy) = copy {
        sync_copy(ctx, copy)?;
    }
    Ok(true)
}

/// Brings the `Outbox` copy `uid` in line with its remaining entries: gone
/// with the last one, `$Deposited` once none is waiting.
fn sync_copy(ctx: &mut WriteCtx, uid: i64) -> Result<(), StoreError> {
    let (total, waiting): (i64, i64) = ctx
        .conn
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(state = 0), 0) FROM outbox WHERE outbox_uid = ?1",
        )
        .and_then(|mut stmt| stmt.query_row(params![uid], |row| Ok((row.get(0)?, row.get(1)?))))
        .map_err(sql)?;
    let Some(mut outbox) = mailboxes::find(&ctx.conn, super::schema::OUTBOX_MAILBOX)? else {
        return Ok(());
    };
    let uid = Uid::try_from(uid)
        .map_err(|_| StoreError::Internal("an Outbox UID is out of range".into()))?;
    if total == 0 {
        messages::remove_uids(ctx, &mut outbox, &[uid])
    } else if waiting == 0 {
        messages::add_flags(ctx, &mut outbox, &[uid], &[DEPOSITED_KEYWORD.to_string()])
    } else {
        Ok(())
    }
}

/// Removes a delivered entry (already gone is fine: acknowledgements may
/// race with a restart).
pub(super) fn delivered(ctx: &mut WriteCtx, id: i64) -> Result<(), StoreError> {
    finish(ctx, id)?;
    Ok(())
}

/// A mailbox peer committed entry `id`: no more attempts; it is kept,
/// deposited, until the recipient's receipt or the mailbox retention
/// (counted from when it was queued) runs out. Already gone is fine.
pub(super) fn deposited(ctx: &mut WriteCtx, id: i64, mailbox_peer: &str) -> Result<(), StoreError> {
    let row: Option<(Vec<u8>, Option<i64>)> = ctx
        .conn
        .prepare_cached("SELECT delivery_id, outbox_uid FROM outbox WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(sql)?;
    let Some((delivery_id, copy)) = row else {
        return Ok(());
    };
    let sealed = ctx.crypto.seal(
        &aad(BlobKind::MailboxPeer, &delivery_id),
        mailbox_peer.as_bytes(),
    )?;
    ctx.conn
        .prepare_cached(
            "UPDATE outbox SET state = ?2, mailbox_peer = ?3, next_attempt = queued_at + ?4 \
             WHERE id = ?1",
        )
        .and_then(|mut stmt| stmt.execute(params![id, DEPOSITED, sealed, DEPOSIT_RETENTION_MS]))
        .map_err(sql)?;
    if let Some(copy) = copy {
        sync_copy(ctx, copy)?;
    }
    Ok(())
}

/// The recipient `peer_id` acknowledged reading delivery `delivery_id`:
/// removes that entry. The PeerId is sealed in the envelope, so the entries
/// with that delivery id (one per device of the recipient) are opened
/// and compared; a receipt from any other PeerId removes nothing.
pub(super) fn receipt(
    ctx: &mut WriteCtx,
    peer_id: &str,
    delivery_id: &[u8; 16],
) -> Result<bool, StoreError> {
    let mut matching = Vec::new();
    {
        let mut stmt = ctx
            .conn
            .prepare_cached("SELECT id, envelope FROM outbox WHERE delivery_id = ?1")
            .map_err(sql)?;
        let mut rows = stmt.query(params![&delivery_id[..]]).map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            let id: i64 = row.get(0).map_err(sql)?;
            let sealed: Vec<u8> = row.get(1).map_err(sql)?;
            let Ok(plain) = ctx
                .crypto
                .open(&aad(BlobKind::Envelope, delivery_id), &sealed)
            else {
                continue;
            };
            if serde_json::from_slice::<Envelope>(&plain).is_ok_and(|e| e.peer_id == peer_id) {
                matching.push(id);
            }
        }
    }
    let mut removed = false;
    for id in matching {
        removed |= finish(ctx, id)?;
    }
    Ok(removed)
}

/// Drops deposited entries older than the mailbox retention, without a
/// bounce: the mailbox peer had it, and has dropped it by now too. Returns
/// how many were dropped.
pub(super) fn drop_expired_deposits(ctx: &mut WriteCtx, now_ms: i64) -> Result<usize, StoreError> {
    let ids = {
        let mut stmt = ctx
            .conn
            .prepare_cached("SELECT id FROM outbox WHERE state = ?1 AND next_attempt <= ?2")
            .map_err(sql)?;
        stmt.query_map(params![DEPOSITED, now_ms], |row| row.get::<_, i64>(0))
            .map_err(sql)?
            .collect::<rusqlite::Result<Vec<i64>>>()
            .map_err(sql)?
    };
    for &id in &ids {
        tracing::info!(
            id,
            "a deposited message was never confirmed read within the mailbox retention; \
             it leaves the outbox without a bounce"
        );
        finish(ctx, id)?;
    }
    Ok(ids.len())
}

/// Whether any deposited entry is past the retention at `now_ms` (a read,
/// so the sweep writes only when there is something to drop).
pub(super) fn has_expired_deposits(conn: &Connection, now_ms: i64) -> Result<bool, StoreError> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM outbox WHERE state = ?1 AND next_attempt <= ?2 LIMIT 1")
        .and_then(|mut stmt| {
            stmt.query_row(params![DEPOSITED, now_ms], |row| row.get(0))
                .optional()
        })
        .map_err(sql)?;
    Ok(found.is_some())
}

/// Entries per state.
pub(super) fn counts(conn: &Connection) -> Result<OutboxCounts, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        .map_err(sql)?;
    let mut rows = stmt.query([]).map_err(sql)?;
    let mut counts = OutboxCounts::default();
    while let Some(row) = rows.next().map_err(sql)? {
        let state: i64 = row.get(0).map_err(sql)?;
        let count = row.get::<_, i64>(1).map_err(sql)?.max(0) as u64;
        match state {
            WAITING => counts.waiting += count,
            DEPOSITED => counts.deposited += count,
            other => tracing::warn!(state = other, "an outbox entry has an unknown state"),
        }
    }
    Ok(counts)
}

/// Records a failed attempt and when to try again.
pub(super) fn retry(
    ctx: &mut WriteCtx,
    id: i64,
    next_attempt_ms: i64,
    error: &str,
) -> Result<(), StoreError> {
    let delivery_id: Option<Vec<u8>> = ctx
        .conn
        .prepare_cached("SELECT delivery_id FROM outbox WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row(params![id], |row| row.get(0)).optional())
        .map_err(sql)?;
    let Some(delivery_id) = delivery_id else {
        return Ok(());
    };
    let sealed = ctx
        .crypto
        .seal(&aad(BlobKind::LastError, &delivery_id), error.as_bytes())?;
    ctx.conn
        .prepare_cached(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?2, last_error = ?3 \
             WHERE id = ?1 AND state = 0",
        )
        .and_then(|mut stmt| stmt.execute(params![id, next_attempt_ms, sealed]))
        .map_err(sql)?;
    Ok(())
}

/// Gives up on an entry: removes it and files the bounce in INBOX, in one
/// transaction. An entry that is already gone files nothing, so a repeated
/// call does not bounce twice.
pub(super) fn failed(ctx: &mut WriteCtx, id: i64, bounce: &Sealed) -> Result<(), StoreError> {
    if !finish(ctx, id)? {
        return Ok(());
    }
    let mut inbox = mailboxes::ensure(ctx, "INBOX")?;
    messages::file(ctx, &mut inbox, &[], super::now_date(), bounce)?;
    Ok(())
}

/// Makes every waiting entry due at `now_ms` (start-up: the network has
/// changed). Deposited entries keep their retention deadline.
pub(super) fn reschedule_all(ctx: &mut WriteCtx, now_ms: i64) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached("UPDATE outbox SET next_attempt = ?1 WHERE state = 0")
        .and_then(|mut stmt| stmt.execute(params![now_ms]))
        .map_err(sql)?;
    Ok(())
}

/// Makes every waiting entry for `peer` due at `now_ms` (the peer just came
/// online), found by its keyed peer tag. Returns how many entries were
/// moved forward.
pub(super) fn reschedule_peer(
    ctx: &mut WriteCtx,
    peer: &str,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let tag = peer_tag(&ctx.crypto, peer);
    ctx.conn
        .prepare_cached(
            "UPDATE outbox SET next_attempt = ?1 \
             WHERE peer_tag = ?2 AND state = 0 AND next_attempt > ?1",
        )
        .and_then(|mut stmt| stmt.execute(params![now_ms, tag]))
        .map_err(sql)
}

/// Schema 4: the peer tag of every entry queued before it (each envelope
/// opened once, at the upgrade). An envelope that does not open keeps no
/// tag; its entry is still tried on its schedule and at start-up.
pub(super) fn fill_peer_tags(conn: &Connection, crypto: &Crypto) -> Result<(), StoreError> {
    let mut select = conn
        .prepare("SELECT id, delivery_id, envelope FROM outbox WHERE peer_tag IS NULL")
        .map_err(sql)?;
    let mut update = conn
        .prepare("UPDATE outbox SET peer_tag = ?2 WHERE id = ?1")
        .map_err(sql)?;
    let mut rows = select.query([]).map_err(sql)?;
    while let Some(row) = rows.next().map_err(sql)? {
        let id: i64 = row.get(0).map_err(sql)?;
        let delivery_id: Vec<u8> = row.get(1).map_err(sql)?;
        let sealed: Vec<u8> = row.get(2).map_err(sql)?;
        let Ok(plain) = crypto.open(&aad(BlobKind::Envelope, &delivery_id), &sealed) else {
            continue;
        };
        if let Ok(envelope) = serde_json::from_slice::<Envelope>(&plain) {
            update
                .execute(params![id, peer_tag(crypto, &envelope.peer_id)])
                .map_err(sql)?;
        }
    }
    Ok(())
}

/// Entries due at `now_ms`, earliest first, leaving out `exclude` (those in
/// flight). A row that cannot be decrypted is logged and skipped so that it
/// does not stop the rest of the queue.
pub(super) fn due(
    conn: &Connection,
    crypto: &Crypto,
    now_ms: i64,
    limit: usize,
    exclude: &[i64],
) -> Result<Vec<OutboxEntry>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let wanted = i64::try_from(limit.saturating_add(exclude.len())).unwrap_or(i64::MAX);
    // Ids first: entries in flight (`exclude`) are due too, and stepping over
    // their rows must not load their payloads (SQLite reads every selected
    // column of a row when it steps onto it).
    let mut ids_stmt = conn
        .prepare_cached(
            "SELECT id FROM outbox WHERE state = 0 AND next_attempt <= ?1 \
             ORDER BY next_attempt, id LIMIT ?2",
        )
        .map_err(sql)?;
    let exclude: std::collections::HashSet<i64> = exclude.iter().copied().collect();
    let mut chosen = Vec::with_capacity(limit);
    let mut ids = ids_stmt.query(params![now_ms, wanted]).map_err(sql)?;
    while let Some(row) = ids.next().map_err(sql)? {
        let id: i64 = row.get(0).map_err(sql)?;
        if !exclude.contains(&id) {
            chosen.push(id);
            if chosen.len() == limit {
                break;
            }
        }
    }
    drop(ids);
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, delivery_id, envelope, payload, attempts, next_attempt, last_error, \
             queued_at FROM outbox WHERE id = ?1",
        )
        .map_err(sql)?;
    let mut entries = Vec::with_capacity(chosen.len());
    for id in chosen {
        let mut rows = stmt.query(params![id]).map_err(sql)?;
        if let Some(row) = rows.next().map_err(sql)? {
            match entry(row, crypto) {
                Ok(entry) => entries.push(entry),
                Err(err) => tracing::error!(id, "skipping an unreadable outbox entry: {err}"),
            }
        }
    }
    Ok(entries)
}

fn entry(row: &Row<'_>, crypto: &Crypto) -> Result<OutboxEntry, StoreError> {
    let delivery_id: Vec<u8> = row.get(1).map_err(sql)?;
    let delivery_id: [u8; 16] = delivery_id
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Internal("an outbox delivery id is not 16 bytes".into()))?;
    let sealed: Vec<u8> = row.get(2).map_err(sql)?;
    let envelope = crypto.open(&aad(BlobKind::Envelope, &delivery_id), &sealed)?;
    let envelope: Envelope = serde_json::from_slice(&envelope)
        .map_err(|err| StoreError::Internal(format!("bad outbox envelope: {err}")))?;
    let last_error: Option<Vec<u8>> = row.get(6).map_err(sql)?;
    let last_error = match last_error {
        Some(sealed) => {
            let plain = crypto.open(&aad(BlobKind::LastError, &delivery_id), &sealed)?;
            Some(String::from_utf8_lossy(&plain).into_owned())
        }
        None => None,
    };
    Ok(OutboxEntry {
        id: row.get(0).map_err(sql)?,
        delivery_id,
        recipient: envelope.recipient,
        recipient_fpr: envelope.recipient_fpr,
        peer_id: envelope.peer_id,
        payload: row.get(3).map_err(sql)?,
        attempts: row.get(4).map_err(sql)?,
        next_attempt: row.get(5).map_err(sql)?,
        last_error,
        queued_at: row.get(7).map_err(sql)?,
    })
}

/// The earliest `next_attempt` of a waiting entry, if there is one.
pub(super) fn next_due(conn: &Connection) -> Result<Option<i64>, StoreError> {
    conn.query_row(
        "SELECT MIN(next_attempt) FROM outbox WHERE state = 0",
        [],
        |row| row.get(0),
    )
    .map_err(sql)
}

/// Number of queued entries.
pub(super) fn len(conn: &Connection) -> Result<u64, StoreError> {
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM outbox", [], |row| row.get(0))
        .map_err(sql)?;
    Ok(count.max(0) as u64)
}
