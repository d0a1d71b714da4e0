//! Message rows and the writes that change them: APPEND, STORE, EXPUNGE,
//! COPY, MOVE, and the filing of incoming deliveries.
//!
//! Runs on the writer thread only, inside the writer's transaction. Every
//! change takes a new MODSEQ (RFC 7162 §3.1) and raises the mailbox's
//! HIGHESTMODSEQ; every expunge is remembered in `vanished` for QRESYNC
//! (RFC 7162 §3.2.10). Content is sealed before it gets here (see
//! [`seal`]); this module never sees a key.

use imap_bridge::backend::{
    CopyResult, Flag, FlagOp, MessageMeta, ModSeq, StoreError, StoreResult, Uid, normalize_flag,
};
use imap_bridge::mime::SortFields;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::crypto::{BlobKind, Crypto, blob_aad, header_len};
use super::mailboxes::{self, Mailbox};
use super::writer::WriteCtx;
use super::{Incoming, sql};

const SEEN: &str = "\\Seen";
const DELETED: &str = "\\Deleted";

/// A message sealed for storage, ready for the writer.
pub(super) struct Sealed {
    /// The `blobs` row id it is bound to (reserved by the caller).
    pub blob_id: i64,
    /// Sealed header block.
    pub header: Vec<u8>,
    /// Sealed body.
    pub body: Vec<u8>,
    /// RFC822.SIZE of the plaintext.
    pub size: u32,
    /// HMAC of its Message-ID, for the Sent dedupe.
    pub msgid: Option<[u8; 32]>,
    /// Sealed SORT and THREAD fields ([`seal_sort_fields`]).
    pub sort_fields: Vec<u8>,
}

/// The SORT and THREAD fields of a message (from its header), sealed and
/// bound to `blob_id` (issue 9: SORT and THREAD never decrypt messages).
pub(super) fn seal_sort_fields(
    crypto: &Crypto,
    blob_id: i64,
    header: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let fields = SortFields::from_message(header).encode();
    crypto.seal(&blob_aad(BlobKind::SortFields, blob_id), &fields)
}

/// Splits `message` into header block and body and seals both, bound to
/// `blob_id`. CPU work only; callers run it off the writer thread.
pub(super) fn seal(crypto: &Crypto, blob_id: i64, message: &[u8]) -> Result<Sealed, StoreError> {
    if message.is_empty() {
        return Err(StoreError::Rejected(
            "an empty message cannot be stored".into(),
        ));
    }
    let size = u32::try_from(message.len())
        .map_err(|_| StoreError::Rejected("the message is too large to store".into()))?;
    let (header, body) = message.split_at(header_len(message));
    Ok(Sealed {
        blob_id,
        header: crypto.seal(&blob_aad(BlobKind::Header, blob_id), header)?,
        body: crypto.seal(&blob_aad(BlobKind::Body, blob_id), body)?,
        size,
        msgid: crypto.message_id_tag(header),
        sort_fields: seal_sort_fields(crypto, blob_id, header)?,
    })
}

/// Flags as stored: normalised (`normalize_flag`), without `\Recent`
/// (session state, RFC 3501 §2.3.2, never stored), without duplicates
/// (keywords compared case-insensitively), sorted.
pub(super) fn normalize_flags(flags: &[Flag]) -> Vec<Flag> {
    let mut out: Vec<Flag> = flags
        .iter()
        .map(|flag| normalize_flag(flag.trim()))
        .filter(|flag| !flag.is_empty() && !flag.eq_ignore_ascii_case("\\Recent"))
        .collect();
    out.sort_by_key(|flag| flag.to_ascii_lowercase());
    out.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    out.sort();
    out
}

/// Flags joined for the `flags` column; flags are IMAP atoms, which
/// contain no space (RFC 3501 §9 `flag-keyword = atom`).
fn encode_flags(flags: &[Flag]) -> String {
    flags.join(" ")
}

/// The `flags` column back as a list.
pub(super) fn decode_flags(text: &str) -> Vec<Flag> {
    text.split(' ')
        .filter(|flag| !flag.is_empty())
        .map(str::to_string)
        .collect()
}

fn has(flags: &[Flag], wanted: &str) -> bool {
    flags.iter().any(|flag| flag == wanted)
}

/// The cross-device identity of one message instance (issue 8, device
/// sync; see `super::sync`).
pub type Instance = [u8; 16];

/// An instance id from a stored column; a row without one (none should
/// exist after migration 6) reads as all zeroes, which no op names.
pub(super) fn instance_from(bytes: Option<Vec<u8>>) -> Instance {
    bytes
        .and_then(|bytes| <Instance>::try_from(bytes.as_slice()).ok())
        .unwrap_or_default()
}

/// A fresh random instance id (a message this device creates).
pub(super) fn new_instance() -> Instance {
    rand::random()
}

/// The clear columns of one message, as the writer needs them.
#[derive(Debug, Clone)]
pub(super) struct MessageRow {
    pub uid: Uid,
    pub blob_id: i64,
    pub modseq: i64,
    pub flags: Vec<Flag>,
    pub size: u32,
    pub internal_date: i64,
    pub date_offset: i32,
    pub instance: Instance,
}

const ROW_COLUMNS: &str = "uid, blob_id, modseq, flags, size, internal_date, date_offset, instance";

impl MessageRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<MessageRow> {
        Ok(MessageRow {
            uid: row.get(0)?,
            blob_id: row.get(1)?,
            modseq: row.get(2)?,
            flags: decode_flags(&row.get::<_, String>(3)?),
            size: row.get(4)?,
            internal_date: row.get(5)?,
            date_offset: row.get(6)?,
            instance: instance_from(row.get(7)?),
        })
    }

    fn meta(&self) -> MessageMeta {
        MessageMeta {
            uid: self.uid,
            modseq: self.modseq as ModSeq,
            flags: self.flags.clone(),
            size: self.size,
            internal_date: self.internal_date,
            internal_date_offset_minutes: self.date_offset,
        }
    }
}

pub(super) fn load(
    conn: &Connection,
    mailbox_id: i64,
    uid: Uid,
) -> Result<Option<MessageRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM messages WHERE mailbox_id = ?1 AND uid = ?2"
        ))
        .map_err(sql)?;
    stmt.query_row(params![mailbox_id, uid], MessageRow::from_row)
        .optional()
        .map_err(sql)
}

/// The rows of the given UIDs that exist, ascending, each once.
pub(super) fn load_many(
    conn: &Connection,
    mailbox_id: i64,
    uids: &[Uid],
) -> Result<Vec<MessageRow>, StoreError> {
    let mut uids = uids.to_vec();
    uids.sort_unstable();
    uids.dedup();
    let mut rows = Vec::with_capacity(uids.len());
    for uid in uids {
        if let Some(row) = load(conn, mailbox_id, uid)? {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Every UID of a mailbox, ascending.
pub(super) fn all_uids(conn: &Connection, mailbox_id: i64) -> Result<Vec<Uid>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT uid FROM messages WHERE mailbox_id = ?1 ORDER BY uid")
        .map_err(sql)?;
    let uids = stmt
        .query_map(params![mailbox_id], |row| row.get(0))
        .map_err(sql)?
        .collect::<rusqlite::Result<Vec<Uid>>>()
        .map_err(sql)?;
    Ok(uids)
}

/// Writes a mailbox's counters back and announces its change.
pub(super) fn save_mailbox(ctx: &mut WriteCtx, mailbox: &Mailbox) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached(
            "UPDATE mailboxes SET uid_next = ?2, highest_modseq = ?3, messages = ?4, \
             unseen = ?5, size = ?6, vanished_floor = ?7 WHERE id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                mailbox.id,
                mailbox.uid_next,
                mailbox.highest_modseq,
                mailbox.messages,
                mailbox.unseen,
                mailbox.size,
                mailbox.vanished_floor
            ])
        })
        .map_err(sql)?;
    ctx.notify(&mailbox.name, mailbox.highest_modseq);
    Ok(())
}

/// Adds a message row pointing at an existing blob; the mailbox's counters
/// are updated in memory (the caller saves them once).
pub(super) fn insert_row(
    ctx: &mut WriteCtx,
    mailbox: &mut Mailbox,
    blob_id: i64,
    size: u32,
    flags: &[Flag],
    (internal_date, date_offset): (i64, i32),
    instance: &Instance,
) -> Result<Uid, StoreError> {
    let uid = mailbox.uid_next;
    // UIDs are never reused (RFC 3501 §2.3.1.1), so a mailbox that has used
    // them all cannot take more.
    let uid_next = uid.checked_add(1).ok_or_else(|| {
        StoreError::Cannot(format!(
            "{} has used every UID; create a new mailbox",
            mailbox.name
        ))
    })?;
    let modseq = ctx.next_modseq();
    let seen = has(flags, SEEN);
    ctx.conn
        .prepare_cached(
            "INSERT INTO messages (mailbox_id, uid, blob_id, modseq, flags, seen, deleted, \
             size, internal_date, date_offset, instance) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                mailbox.id,
                uid,
                blob_id,
                modseq,
                encode_flags(flags),
                seen,
                has(flags, DELETED),
                size,
                internal_date,
                date_offset,
                &instance[..]
            ])
        })
        .map_err(sql)?;
    mailbox.uid_next = uid_next;
    mailbox.highest_modseq = modseq;
    mailbox.messages += 1;
    mailbox.unseen += i64::from(!seen);
    mailbox.size += i64::from(size);
    Ok(uid)
}

fn insert_blob(ctx: &mut WriteCtx, sealed: &Sealed) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached(
            "INSERT INTO blobs (id, header, body, size, msgid_hmac, sort_fields) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                sealed.blob_id,
                sealed.header,
                sealed.body,
                sealed.size,
                sealed.msgid.as_ref().map(|tag| &tag[..]),
                sealed.sort_fields
            ])
        })
        .map_err(sql)?;
    Ok(())
}

/// Stores a sealed message in `mailbox` as a new instance and saves the
/// mailbox.
pub(super) fn file(
    ctx: &mut WriteCtx,
    mailbox: &mut Mailbox,
    flags: &[Flag],
    date: (i64, i32),
    sealed: &Sealed,
) -> Result<Uid, StoreError> {
    file_as(ctx, mailbox, flags, date, sealed, &new_instance())
}

/// [`file`] under a given instance id.
pub(super) fn file_as(
    ctx: &mut WriteCtx,
    mailbox: &mut Mailbox,
    flags: &[Flag],
    date: (i64, i32),
    sealed: &Sealed,
    instance: &Instance,
) -> Result<Uid, StoreError> {
    insert_blob(ctx, sealed)?;
    let uid = insert_row(
        ctx,
        mailbox,
        sealed.blob_id,
        sealed.size,
        flags,
        date,
        instance,
    )?;
    save_mailbox(ctx, mailbox)?;
    Ok(uid)
}

/// The UID of a message in `mailbox` whose Message-ID has this tag.
pub(super) fn find_by_message_id(
    conn: &Connection,
    mailbox_id: i64,
    tag: &[u8; 32],
) -> Result<Option<Uid>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.uid FROM blobs b JOIN messages m ON m.blob_id = b.id \
             WHERE b.msgid_hmac = ?2 AND m.mailbox_id = ?1 ORDER BY m.uid LIMIT 1",
        )
        .map_err(sql)?;
    stmt.query_row(params![mailbox_id, &tag[..]], |row| row.get(0))
        .optional()
        .map_err(sql)
}

/// APPEND (RFC 3501 §6.3.11). In the `\Sent` mailbox, a message whose
/// Message-ID is already there (the copy filed at submission) is not stored
/// twice: the existing UID is returned and the flags are added to it, since
/// clients APPEND their own copy after submitting.
pub(super) fn append(
    ctx: &mut WriteCtx,
    name: &str,
    flags: &[Flag],
    date: (i64, i32),
    sealed: &Sealed,
) -> Result<CopyResult, StoreError> {
    let mut mailbox = mailboxes::require(&ctx.conn, name)?;
    let flags = normalize_flags(flags);
    if mailbox.is_sent()
        && let Some(tag) = &sealed.msgid
        && let Some(uid) = find_by_message_id(&ctx.conn, mailbox.id, tag)?
    {
        change_flags(ctx, &mut mailbox, &[uid], FlagOp::Add, &flags, None)?;
        return Ok(CopyResult {
            uid_validity: mailbox.uid_validity,
            mapping: vec![(0, uid)],
        });
    }
    let uid = file(ctx, &mut mailbox, &flags, date, sealed)?;
    Ok(CopyResult {
        uid_validity: mailbox.uid_validity,
        mapping: vec![(0, uid)],
    })
}

/// Files a delivery from a peer unless that delivery was filed before
/// (same peer and delivery id): retries after a lost acknowledgement must
/// not duplicate mail. The delivery is recorded in the same transaction.
pub(super) fn file_incoming(
    ctx: &mut WriteCtx,
    tag: [u8; 32],
    mailbox: &str,
    sealed: &Sealed,
) -> Result<Incoming, StoreError> {
    file_once(ctx, tag, mailbox, &[], super::now_date(), sealed)
}

/// [`file_incoming`] with the flags and INTERNALDATE the message had
/// where it came from (an import).
pub(super) fn file_once(
    ctx: &mut WriteCtx,
    tag: [u8; 32],
    mailbox: &str,
    flags: &[Flag],
    date: (i64, i32),
    sealed: &Sealed,
) -> Result<Incoming, StoreError> {
    let known: Option<i64> = ctx
        .conn
        .prepare_cached("SELECT 1 FROM delivered WHERE tag = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![&tag[..]], |row| row.get(0))
                .optional()
        })
        .map_err(sql)?;
    if known.is_some() {
        return Ok(Incoming::Duplicate);
    }
    // The same on every device of the identity (they share the store key,
    // so the tag): a sibling's changes to this message find it here.
    let instance = super::sync::delivered_instance(&tag);
    let filed = match super::sync::placement(ctx, &instance, mailbox, &normalize_flags(flags))? {
        Some((mailbox, flags)) => {
            let mut target = mailboxes::ensure(ctx, &mailbox)?;
            let uid = file_as(ctx, &mut target, &flags, date, sealed, &instance)?;
            super::sync::arrived(ctx, &instance)?;
            Incoming::Filed { uid }
        }
        // Here already, or a sibling's user deleted it before it came.
        None => Incoming::Duplicate,
    };
    ctx.conn
        .prepare_cached("INSERT INTO delivered (tag, at) VALUES (?1, ?2)")
        .and_then(|mut stmt| stmt.execute(params![&tag[..], super::now_ms()]))
        .map_err(sql)?;
    Ok(filed)
}

/// The new flag list of a message for one STORE operation.
fn apply(op: FlagOp, current: &[Flag], given: &[Flag]) -> Vec<Flag> {
    match op {
        FlagOp::Replace => given.to_vec(),
        FlagOp::Add => {
            let mut all = current.to_vec();
            all.extend(given.iter().cloned());
            normalize_flags(&all)
        }
        FlagOp::Remove => current
            .iter()
            .filter(|flag| !given.iter().any(|g| g.eq_ignore_ascii_case(flag)))
            .cloned()
            .collect(),
    }
}

/// Changes the flags of existing messages of `mailbox` and saves it if
/// anything changed. `given` must be normalised.
pub(super) fn change_flags(
    ctx: &mut WriteCtx,
    mailbox: &mut Mailbox,
    uids: &[Uid],
    op: FlagOp,
    given: &[Flag],
    unchanged_since: Option<ModSeq>,
) -> Result<StoreResult, StoreError> {
    let mut result = StoreResult::default();
    let mut changed = false;
    for mut row in load_many(&ctx.conn, mailbox.id, uids)? {
        // RFC 7162 §3.1.3: a message changed after UNCHANGEDSINCE is left
        // alone and reported in the MODIFIED response code.
        if let Some(since) = unchanged_since
            && row.modseq as ModSeq > since
        {
            result.modified.push(row.uid);
            continue;
        }
        let flags = apply(op, &row.flags, given);
        if flags != row.flags {
            let was_seen = has(&row.flags, SEEN);
            let seen = has(&flags, SEEN);
            let modseq = ctx.next_modseq();
            ctx.conn
                .prepare_cached(
                    "UPDATE messages SET flags = ?3, seen = ?4, deleted = ?5, modseq = ?6 \
                     WHERE mailbox_id = ?1 AND uid = ?2",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        mailbox.id,
                        row.uid,
                        encode_flags(&flags),
                        seen,
                        has(&flags, DELETED),
                        modseq
                    ])
                })
                .map_err(sql)?;
            mailbox.unseen += i64::from(was_seen) - i64::from(seen);
            mailbox.highest_modseq = modseq;
            row.flags = flags;
            row.modseq = modseq;
            changed = true;
        }
        result.updated.push(row.meta());
    }
    if changed {
        save_mailbox(ctx, mailbox)?;
    }
    Ok(result)
}

/// STORE (RFC 3501 §6.4.6, RFC 7162 §3.1.3).
pub(super) fn store_flags(
    ctx: &mut WriteCtx,
    name: &str,
    uids: &[Uid],
    op: FlagOp,
    flags: &[Flag],
    unchanged_since: Option<ModSeq>,
) -> Result<StoreResult, StoreError> {
    let mut mailbox = mailboxes::require(&ctx.conn, name)?;
    let given = normalize_flags(flags);
    change_flags(ctx, &mut mailbox, uids, op, &given, unchanged_since)
}

/// Removes rows, remembers them in `vanished`, drops blobs no other row
/// uses, and saves the mailbox.
fn remove(
    ctx: &mut WriteCtx,
    mailbox: &mut Mailbox,
    rows: &[MessageRow],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    for row in rows {
        let modseq = ctx.next_modseq();
        ctx.conn
            .prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2")
            .and_then(|mut stmt| stmt.execute(params![mailbox.id, row.uid]))
            .map_err(sql)?;
        ctx.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO vanished (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut stmt| stmt.execute(params![mailbox.id, row.uid, modseq]))
            .map_err(sql)?;
        mailbox.messages -= 1;
        mailbox.unseen -= i64::from(!has(&row.flags, SEEN));
        mailbox.size -= i64::from(row.size);
        mailbox.highest_modseq = modseq;
    }
    let mut blobs: Vec<i64> = rows.iter().map(|row| row.blob_id).collect();
    blobs.sort_unstable();
    blobs.dedup();
    for blob_id in blobs {
        ctx.conn
            .prepare_cached(
                "DELETE FROM blobs WHERE id = ?1 \
                 AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = ?1)",
            )
            .and_then(|mut stmt| stmt.execute(params![blob_id]))
            .map_err(sql)?;
    }
    if let Some(bound) = ctx.vanished_bound.get_mut(&mailbox.id) {
        *bound += rows.len();
    }
    prune_vanished(ctx, mailbox)?;
    save_mailbox(ctx, mailbox)
}

/// Keeps `vanished` of a mailbox to the newest `ctx.vanished_keep`
/// expunges once it has grown a quarter past that (so pruning runs once
/// per many expunges), and raises the mailbox's `vanished_floor` to the
/// newest MODSEQ forgotten. A QRESYNC client that last synchronised before
/// the floor is answered with every UID the mailbox no longer has
/// (`index::vanished_since`), a superset RFC 7162 §3.2.5.2 allows; the
/// shared index behind the floor is rebuilt rather than caught up.
///
/// The COUNT walks every row of the mailbox's record, and the Outbox loses
/// a message on every delivery (issue 7: 7.8 % of the sender's CPU in the
/// delivery benchmark); so it runs only when the writer's upper bound
/// (`WriteCtx::vanished_bound`, the last count plus the expunges since)
/// says the record may have grown past the threshold.
fn prune_vanished(ctx: &mut WriteCtx, mailbox: &mut Mailbox) -> Result<(), StoreError> {
    let threshold = ctx.vanished_keep.saturating_add(ctx.vanished_keep / 4);
    if ctx
        .vanished_bound
        .get(&mailbox.id)
        .is_some_and(|&bound| bound <= threshold)
    {
        return Ok(());
    }
    let keep = i64::try_from(ctx.vanished_keep).unwrap_or(i64::MAX);
    let count: i64 = ctx
        .conn
        .prepare_cached("SELECT COUNT(*) FROM vanished WHERE mailbox_id = ?1")
        .and_then(|mut stmt| stmt.query_row(params![mailbox.id], |row| row.get(0)))
        .map_err(sql)?;
    let counted = usize::try_from(count).unwrap_or(usize::MAX);
    if counted <= threshold {
        ctx.vanished_bound.insert(mailbox.id, counted);
        return Ok(());
    }
    // Expunges have distinct MODSEQs: the one `count - keep` from the
    // oldest is the newest to forget.
    let cutoff: i64 = ctx
        .conn
        .prepare_cached(
            "SELECT modseq FROM vanished WHERE mailbox_id = ?1 ORDER BY modseq \
             LIMIT 1 OFFSET ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![mailbox.id, count - keep - 1], |row| row.get(0))
        })
        .map_err(sql)?;
    ctx.conn
        .prepare_cached("DELETE FROM vanished WHERE mailbox_id = ?1 AND modseq <= ?2")
        .and_then(|mut stmt| stmt.execute(params![mailbox.id, cutoff]))
        .map_err(sql)?;
    mailbox.vanished_floor = mailbox.vanished_floor.max(cutoff);
    ctx.vanished_bound
        .insert(mailbox.id, counted.min(ctx.vanished_keep));
    tracing::debug!(
        mailbox = %mailbox.name,
        forgotten = count - keep,
        floor = mailbox.vanished_floor,
        "pruned the expunge record"
    );
    Ok(())
}

/// EXPUNGE / UID EXPUNGE (RFC 3501 §6.4.3, RFC 4315 §2.1).
pub(super) fn expunge(
    ctx: &mut WriteCtx,
    name: &str,
    only: Option<&[Uid]>,
) -> Result<Vec<Uid>, StoreError> {
    let mut mailbox = mailboxes::require(&ctx.conn, name)?;
    let mut rows = {
        let mut stmt = ctx
            .conn
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM messages WHERE mailbox_id = ?1 AND deleted = 1 \
                 ORDER BY uid"
            ))
            .map_err(sql)?;
        stmt.query_map(params![mailbox.id], MessageRow::from_row)
            .map_err(sql)?
            .collect::<rusqlite::Result<Vec<MessageRow>>>()
            .map_err(sql)?
    };
    if let Some(only) = only {
        let mut only = only.to_vec();
        only.sort_unstable();
        rows.retain(|row| only.binary_search(&row.uid).is_ok());
    }
    remove(ctx, &mut mailbox, &rows)?;
    Ok(rows.iter().map(|row| row.uid).collect())
}

/// Adds copies of `rows` to `target` (same blobs, flags and INTERNALDATE)
/// and saves it. A move keeps each row's instance id; a copy is a new
/// instance.
fn copy_rows(
    ctx: &mut WriteCtx,
    rows: &[MessageRow],
    target: &mut Mailbox,
    moving: bool,
) -> Result<Vec<(Uid, Uid)>, StoreError> {
    let mut mapping = Vec::with_capacity(rows.len());
    for row in rows {
        let date = (row.internal_date, row.date_offset);
        let instance = if moving { row.instance } else { new_instance() };
        let uid = insert_row(
            ctx,
            target,
            row.blob_id,
            row.size,
            &row.flags,
            date,
            &instance,
        )?;
        mapping.push((row.uid, uid));
    }
    if !rows.is_empty() {
        save_mailbox(ctx, target)?;
    }
    Ok(mapping)
}

/// Files one more copy of message `uid` of `source_id` in `target`, with
/// `flags`, sharing its blob (nothing is encrypted again). `None` if the
/// source message does not exist.
pub(super) fn copy_one(
    ctx: &mut WriteCtx,
    source_id: i64,
    uid: Uid,
    target: &mut Mailbox,
    flags: &[Flag],
) -> Result<Option<Uid>, StoreError> {
    let Some(row) = load(&ctx.conn, source_id, uid)? else {
        return Ok(None);
    };
    let date = (row.internal_date, row.date_offset);
    let flags = normalize_flags(flags);
    let copy = insert_row(
        ctx,
        target,
        row.blob_id,
        row.size,
        &flags,
        date,
        &new_instance(),
    )?;
    save_mailbox(ctx, target)?;
    Ok(Some(copy))
}

/// Expunges the given UIDs of `mailbox` whatever their flags (the node's own
/// maintenance, e.g. of `Outbox`); they are remembered in `vanished` like
/// any expunge, so clients see EXPUNGE or VANISHED.
pub(super) fn remove_uids(
    ctx: &mut WriteCtx,
    mailbox: &mut Mailbox,
    uids: &[Uid],
) -> Result<(), StoreError> {
    let rows = load_many(&ctx.conn, mailbox.id, uids)?;
    remove(ctx, mailbox, &rows)
}

/// Adds `flags` to the given UIDs of `mailbox` (the node's own marks, e.g.
/// `$Deposited`).
pub(super) fn add_flags(
    ctx: &mut WriteCtx,
    mailbox: &mut Mailbox,
    uids: &[Uid],
    flags: &[Flag],
) -> Result<(), StoreError> {
    let given = normalize_flags(flags);
    change_flags(ctx, mailbox, uids, FlagOp::Add, &given, None)?;
    Ok(())
}

/// Whether any message of `mailbox` has `\Deleted` (what EXPUNGE would
/// remove), restricted to `only` when given.
pub(super) fn has_deleted(
    conn: &Connection,
    mailbox_id: i64,
    only: Option<&[Uid]>,
) -> Result<bool, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT uid FROM messages WHERE mailbox_id = ?1 AND deleted = 1")
        .map_err(sql)?;
    let deleted = stmt
        .query_map(params![mailbox_id], |row| row.get::<_, Uid>(0))
        .map_err(sql)?
        .collect::<rusqlite::Result<Vec<Uid>>>()
        .map_err(sql)?;
    Ok(match only {
        None => !deleted.is_empty(),
        Some(only) => deleted.iter().any(|uid| only.contains(uid)),
    })
}

/// COPY (RFC 3501 §6.4.7); UIDs that do not exist are skipped.
pub(super) fn copy(
    ctx: &mut WriteCtx,
    from: &str,
    uids: &[Uid],
    to: &str,
) -> Result<CopyResult, StoreError> {
    let source = mailboxes::require(&ctx.conn, from)?;
    let mut target = mailboxes::require(&ctx.conn, to)?;
    let rows = load_many(&ctx.conn, source.id, uids)?;
    let mapping = copy_rows(ctx, &rows, &mut target, false)?;
    Ok(CopyResult {
        uid_validity: target.uid_validity,
        mapping,
    })
}

/// MOVE (RFC 6851): copy, then expunge from the source, in one command.
pub(super) fn move_messages(
    ctx: &mut WriteCtx,
    from: &str,
    uids: &[Uid],
    to: &str,
) -> Result<CopyResult, StoreError> {
    let source = mailboxes::require(&ctx.conn, from)?;
    let target = mailboxes::require(&ctx.conn, to)?;
    move_uids(ctx, source, uids, target)
}

/// Moves messages between two mailboxes (which may be the same one: the
/// messages then get new UIDs).
pub(super) fn move_uids(
    ctx: &mut WriteCtx,
    source: Mailbox,
    uids: &[Uid],
    mut target: Mailbox,
) -> Result<CopyResult, StoreError> {
    let rows = load_many(&ctx.conn, source.id, uids)?;
    let mapping = copy_rows(ctx, &rows, &mut target, true)?;
    // The in-memory counters of a mailbox must come from its latest state.
    let mut source = if source.id == target.id {
        target.clone()
    } else {
        source
    };
    remove(ctx, &mut source, &rows)?;
    Ok(CopyResult {
        uid_validity: target.uid_validity,
        mapping,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(list: &[&str]) -> Vec<Flag> {
        list.iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn normalize_drops_recent_and_duplicates() {
        assert_eq!(
            normalize_flags(&flags(&[
                "\\SEEN", "$label1", "\\recent", "\\Seen", "$LABEL1", ""
            ])),
            flags(&["$label1", "\\Seen"])
        );
    }

    #[test]
    fn encode_decode_roundtrip() {
        let list = flags(&["$Forwarded", "\\Answered", "\\Seen"]);
        assert_eq!(decode_flags(&encode_flags(&list)), list);
        assert!(decode_flags("").is_empty());
    }

    #[test]
    fn apply_add_remove_replace() {
        let current = flags(&["\\Seen", "$Junk"]);
        assert_eq!(
            apply(FlagOp::Add, &current, &flags(&["\\Flagged"])),
            flags(&["$Junk", "\\Flagged", "\\Seen"])
        );
        assert_eq!(
            apply(FlagOp::Remove, &current, &flags(&["$junk"])),
            flags(&["\\Seen"])
        );
        assert_eq!(
            apply(FlagOp::Replace, &current, &flags(&["\\Draft"])),
            flags(&["\\Draft"])
        );
    }
}
