//! Device sync in the store (issue 8): the instance ids, the journal of
//! this device's user changes, and applying a sibling device's changes.
//!
//! Every message row carries an *instance* id, the same message on every
//! device of one identity: derived from the delivery for delivered mail
//! ([`delivered_instance`]; the devices share the store key, so the
//! delivery tag), from UIDVALIDITY and UID for rows stored before
//! migration 6 ([`fill_instances`]; a joined device starts from a copy of
//! the store, so both sides derive the same), random for what a device
//! creates (APPEND, COPY, the Sent copy), carried to the siblings in the
//! op. A MOVE keeps the instance.
//!
//! While the identity has siblings (`Store::set_sync_device`), every
//! change an IMAP client makes (STORE, EXPUNGE, MOVE, COPY, APPEND) and
//! the Sent copy of a submission add their [`SyncOp`]s to `sync_journal`
//! inside the same command, so in the same transaction: no change without
//! its journal row, no row without its change. The sync service
//! (`crate::sync`) takes the rows, queues them for the siblings and
//! deletes them in one transaction (`Store::sync_queue`).
//!
//! A sibling's ops are applied by [`apply`], never journalled again (no
//! echo). Each instance has two last-writer-wins registers in
//! `sync_state`, its flags and its place (mailbox, or expunged), each with
//! the [`Version`] of its last write (time in ms, then the device's
//! PeerId): an op older than the register is ignored, so ops may come in
//! any order and more than once. An op about an instance this device does
//! not have yet only sets the registers; the message is filed by them
//! when it comes (`placement`): in the mailbox and with the flags the
//! sibling gave it, or not at all after the sibling's expunge (the
//! tombstone).
//!
//! This module must not know about the network or OpenPGP.

use std::sync::Arc;

use imap_bridge::backend::{CopyResult, Flag, FlagOp, ModSeq, StoreError, StoreResult, Uid};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::mailboxes::{self, MAILBOX_COLUMNS, Mailbox};
use super::messages::{self, Instance, MessageRow, Sealed};
use super::writer::WriteCtx;
use super::{OutboxItem, Store, canonical, outbox, sql};

/// The version of a register write: later `at` wins, then the larger
/// device PeerId (base58), so every device orders two writes the same way.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Milliseconds since the Unix epoch at the writing device.
    pub at: i64,
    /// The writing device's PeerId.
    pub device: String,
}

/// One change of one message instance, as journalled and as sent to the
/// siblings (docs/protocol.md, "Device sync").
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum SyncOp {
    /// The instance's whole flag list is now `flags`.
    Flags {
        /// The message instance.
        instance: Instance,
        /// Every flag and keyword it has (never `\Recent`).
        flags: Vec<Flag>,
        /// When and where the change was made.
        version: Version,
    },
    /// The instance is now in `mailbox` (MOVE), or expunged (`None`).
    Place {
        /// The message instance.
        instance: Instance,
        /// The mailbox name; `None`: expunged.
        mailbox: Option<String>,
        /// When and where the change was made.
        version: Version,
    },
    /// A new instance (APPEND, COPY, the Sent copy of a submission).
    New {
        /// The new instance.
        instance: Instance,
        /// Where it was filed.
        mailbox: String,
        /// Its flags.
        flags: Vec<Flag>,
        /// INTERNALDATE: seconds since the epoch.
        date: i64,
        /// INTERNALDATE's zone, minutes east of UTC.
        offset: i32,
        /// A COPY names the instance it copies (the sibling has its
        /// content); `None` otherwise.
        source: Option<Instance>,
        /// The whole message, when the sibling cannot have it (added by
        /// the sync service when it sends the op; never journalled).
        #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
        content: Option<Vec<u8>>,
        /// When and where it was made.
        version: Version,
    },
    /// A mailbox CREATE, DELETE or RENAME.
    Mailbox {
        /// What changed.
        change: MailboxChange,
        /// When and where.
        version: Version,
    },
}

/// A change of the mailbox list. Applied as it comes, not by a register:
/// one the receiving store refuses (the mailbox exists already, or not
/// any more) changes nothing there.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum MailboxChange {
    /// CREATE.
    Create {
        /// The new mailbox.
        name: String,
    },
    /// DELETE, with the messages in it.
    Delete {
        /// The mailbox.
        name: String,
    },
    /// RENAME, with its children.
    Rename {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
}

impl SyncOp {
    /// The instance the op is about (`None` for a mailbox change).
    pub fn instance(&self) -> Option<&Instance> {
        match self {
            SyncOp::Flags { instance, .. }
            | SyncOp::Place { instance, .. }
            | SyncOp::New { instance, .. } => Some(instance),
            SyncOp::Mailbox { .. } => None,
        }
    }

    /// Its version.
    pub fn version(&self) -> &Version {
        match self {
            SyncOp::Flags { version, .. }
            | SyncOp::Place { version, .. }
            | SyncOp::New { version, .. }
            | SyncOp::Mailbox { version, .. } => version,
        }
    }
}

fn derive(label: &[u8], data: &[u8]) -> Instance {
    let mut hash = Sha256::new();
    hash.update(b"mailnode instance ");
    hash.update(label);
    hash.update([0]);
    hash.update(data);
    let digest = hash.finalize();
    let mut instance = Instance::default();
    instance.copy_from_slice(&digest[..16]);
    instance
}

/// The instance of a delivered message, from its delivery tag (an HMAC of
/// the sending peer and the delivery id under the store key, which every
/// device of the identity shares): each device computes the same one.
pub(super) fn delivered_instance(tag: &[u8; 32]) -> Instance {
    derive(b"delivered", tag)
}

/// Migration 6: an instance for every row stored before it, from the
/// mailbox's UIDVALIDITY and the UID (equal in two copies of one store).
pub(super) fn fill_instances(conn: &Connection) -> Result<(), StoreError> {
    let rows = conn
        .prepare(
            "SELECT m.mailbox_id, m.uid, b.uid_validity FROM messages m \
             JOIN mailboxes b ON b.id = m.mailbox_id WHERE m.instance IS NULL",
        )
        .and_then(|mut stmt| {
            stmt.query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, u32>(1)?,
                    row.get::<_, u32>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql)?;
    let mut update = conn
        .prepare("UPDATE messages SET instance = ?3 WHERE mailbox_id = ?1 AND uid = ?2")
        .map_err(sql)?;
    for (mailbox_id, uid, uid_validity) in rows {
        let mut data = uid_validity.to_be_bytes().to_vec();
        data.extend_from_slice(&uid.to_be_bytes());
        let instance = derive(b"row", &data);
        update
            .execute(params![mailbox_id, uid, &instance[..]])
            .map_err(sql)?;
    }
    Ok(())
}

/// The two registers of one instance.
#[derive(Debug, Default)]
struct State {
    flags: Option<Vec<Flag>>,
    flags_v: Version,
    place: Option<String>,
    place_v: Version,
}

impl State {
    /// A sibling expunged it.
    fn tombstone(&self) -> bool {
        self.place.is_none() && self.place_v.at > 0
    }
}

fn state(conn: &Connection, instance: &Instance) -> Result<State, StoreError> {
    conn.prepare_cached(
        "SELECT flags, flags_at, flags_dev, place, place_at, place_dev FROM sync_state \
         WHERE instance = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![&instance[..]], |row| {
            Ok(State {
                flags: row
                    .get::<_, Option<String>>(0)?
                    .map(|text| messages::decode_flags(&text)),
                flags_v: Version {
                    at: row.get(1)?,
                    device: row.get(2)?,
                },
                place: row.get(3)?,
                place_v: Version {
                    at: row.get(4)?,
                    device: row.get(5)?,
                },
            })
        })
        .optional()
    })
    .map(Option::unwrap_or_default)
    .map_err(sql)
}

fn save_flags(
    conn: &Connection,
    instance: &Instance,
    flags: &[Flag],
    version: &Version,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sync_state (instance, flags, flags_at, flags_dev) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (instance) DO UPDATE SET flags = excluded.flags, \
         flags_at = excluded.flags_at, flags_dev = excluded.flags_dev",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            &instance[..],
            flags.join(" "),
            version.at,
            version.device
        ])
    })
    .map_err(sql)?;
    Ok(())
}

fn save_place(
    conn: &Connection,
    instance: &Instance,
    place: Option<&str>,
    version: &Version,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sync_state (instance, place, place_at, place_dev) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (instance) DO UPDATE SET place = excluded.place, \
         place_at = excluded.place_at, place_dev = excluded.place_dev",
    )
    .and_then(|mut stmt| stmt.execute(params![&instance[..], place, version.at, version.device]))
    .map_err(sql)?;
    Ok(())
}

/// Where the instance is on this device: its mailbox and row.
fn locate(
    conn: &Connection,
    instance: &Instance,
) -> Result<Option<(Mailbox, MessageRow)>, StoreError> {
    let found: Option<(i64, Uid)> = conn
        .prepare_cached("SELECT mailbox_id, uid FROM messages WHERE instance = ?1 LIMIT 1")
        .and_then(|mut stmt| {
            stmt.query_row(params![&instance[..]], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(sql)?;
    let Some((mailbox_id, uid)) = found else {
        return Ok(None);
    };
    let mailbox = conn
        .prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?1"
        ))
        .and_then(|mut stmt| stmt.query_row(params![mailbox_id], Mailbox::from_row))
        .map_err(sql)?;
    Ok(messages::load(conn, mailbox_id, uid)?.map(|row| (mailbox, row)))
}

/// Where and with which flags a delivered message with `instance` is
/// filed: as given, unless a sibling's ops about it came first (its
/// registers); `None` if it is here already or a sibling expunged it.
pub(super) fn placement(
    ctx: &WriteCtx,
    instance: &Instance,
    mailbox: &str,
    flags: &[Flag],
) -> Result<Option<(String, Vec<Flag>)>, StoreError> {
    if locate(&ctx.conn, instance)?.is_some() {
        return Ok(None);
    }
    let state = state(&ctx.conn, instance)?;
    if state.tombstone() {
        tracing::debug!("a message a sibling device deleted arrived; not filed");
        return Ok(None);
    }
    let mailbox = match state.place {
        Some(place) if !mailboxes::is_outbox(&place) => place,
        _ => mailbox.to_string(),
    };
    let flags = state.flags.unwrap_or_else(|| flags.to_vec());
    Ok(Some((mailbox, flags)))
}

/// A version for a local write after `previous`: now, but always later
/// than the register's last write, so two quick changes stay ordered.
fn local_version(previous: &Version, device: &str) -> Version {
    Version {
        at: super::now_ms().max(previous.at + 1),
        device: device.to_string(),
    }
}

fn journal_op(conn: &Connection, op: &SyncOp) -> Result<(), StoreError> {
    let text = serde_json::to_string(op)
        .map_err(|err| StoreError::Internal(format!("cannot encode a sync op: {err}")))?;
    conn.prepare_cached("INSERT INTO sync_journal (op) VALUES (?1)")
        .and_then(|mut stmt| stmt.execute(params![text]))
        .map_err(sql)?;
    Ok(())
}

fn record_flags(
    conn: &Connection,
    device: &str,
    instance: &Instance,
    flags: &[Flag],
) -> Result<(), StoreError> {
    let version = local_version(&state(conn, instance)?.flags_v, device);
    save_flags(conn, instance, flags, &version)?;
    journal_op(
        conn,
        &SyncOp::Flags {
            instance: *instance,
            flags: flags.to_vec(),
            version,
        },
    )
}

fn record_place(
    conn: &Connection,
    device: &str,
    instance: &Instance,
    place: Option<&str>,
) -> Result<(), StoreError> {
    let version = local_version(&state(conn, instance)?.place_v, device);
    save_place(conn, instance, place, &version)?;
    journal_op(
        conn,
        &SyncOp::Place {
            instance: *instance,
            mailbox: place.map(str::to_string),
            version,
        },
    )
}

fn record_new(
    conn: &Connection,
    device: &str,
    mailbox: &str,
    row: &MessageRow,
    source: Option<Instance>,
) -> Result<(), StoreError> {
    let previous = state(conn, &row.instance)?;
    let version = local_version(std::cmp::max(&previous.place_v, &previous.flags_v), device);
    save_place(conn, &row.instance, Some(mailbox), &version)?;
    save_flags(conn, &row.instance, &row.flags, &version)?;
    journal_op(
        conn,
        &SyncOp::New {
            instance: row.instance,
            mailbox: mailbox.to_string(),
            flags: row.flags.clone(),
            date: row.internal_date,
            offset: row.date_offset,
            source,
            content: None,
            version,
        },
    )
}

/// Who journals: this device's PeerId while the identity has siblings.
pub(super) type Journal = Option<Arc<str>>;

/// STORE, journalled: the new flag list of every message it changed.
pub(super) fn store_flags(
    ctx: &mut WriteCtx,
    journal: &Journal,
    name: &str,
    uids: &[Uid],
    op: FlagOp,
    flags: &[Flag],
    unchanged_since: Option<ModSeq>,
) -> Result<StoreResult, StoreError> {
    let Some(device) = journal.as_deref().filter(|_| !mailboxes::is_outbox(name)) else {
        return messages::store_flags(ctx, name, uids, op, flags, unchanged_since);
    };
    let before = mailboxes::require(&ctx.conn, name)?.highest_modseq;
    let result = messages::store_flags(ctx, name, uids, op, flags, unchanged_since)?;
    let mailbox = mailboxes::require(&ctx.conn, name)?;
    for meta in result.updated.iter().filter(|m| m.modseq as i64 > before) {
        if let Some(row) = messages::load(&ctx.conn, mailbox.id, meta.uid)? {
            record_flags(&ctx.conn, device, &row.instance, &row.flags)?;
        }
    }
    Ok(result)
}

/// EXPUNGE, journalled: a tombstone for every message it removed.
pub(super) fn expunge(
    ctx: &mut WriteCtx,
    journal: &Journal,
    name: &str,
    only: Option<&[Uid]>,
) -> Result<Vec<Uid>, StoreError> {
    let device = journal.as_deref().filter(|_| !mailboxes::is_outbox(name));
    let candidates: Vec<(Uid, Instance)> = match device {
        Some(_) => {
            let mailbox = mailboxes::require(&ctx.conn, name)?;
            ctx.conn
                .prepare_cached(
                    "SELECT uid, instance FROM messages WHERE mailbox_id = ?1 AND deleted = 1",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![mailbox.id], |row| {
                        Ok((row.get(0)?, messages::instance_from(row.get(1)?)))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(sql)?
        }
        None => Vec::new(),
    };
    let removed = messages::expunge(ctx, name, only)?;
    if let Some(device) = device {
        for (uid, instance) in &candidates {
            if removed.binary_search(uid).is_ok() {
                record_place(&ctx.conn, device, instance, None)?;
            }
        }
    }
    Ok(removed)
}

/// MOVE, journalled: the new place of every message it moved.
pub(super) fn move_messages(
    ctx: &mut WriteCtx,
    journal: &Journal,
    from: &str,
    uids: &[Uid],
    to: &str,
) -> Result<CopyResult, StoreError> {
    let result = messages::move_messages(ctx, from, uids, to)?;
    if let Some(device) = journal.as_deref() {
        let target = mailboxes::require(&ctx.conn, to)?;
        for (_, uid) in &result.mapping {
            if let Some(row) = messages::load(&ctx.conn, target.id, *uid)? {
                record_place(&ctx.conn, device, &row.instance, Some(&target.name))?;
            }
        }
    }
    Ok(result)
}

/// COPY, journalled: each copy is a new instance naming its source.
pub(super) fn copy(
    ctx: &mut WriteCtx,
    journal: &Journal,
    from: &str,
    uids: &[Uid],
    to: &str,
) -> Result<CopyResult, StoreError> {
    let result = messages::copy(ctx, from, uids, to)?;
    if let Some(device) = journal.as_deref() {
        let source = mailboxes::require(&ctx.conn, from)?;
        let target = mailboxes::require(&ctx.conn, to)?;
        for (from_uid, to_uid) in &result.mapping {
            let original = messages::load(&ctx.conn, source.id, *from_uid)?;
            if let Some(row) = messages::load(&ctx.conn, target.id, *to_uid)? {
                let source = original.map(|o| o.instance);
                record_new(&ctx.conn, device, &target.name, &row, source)?;
            }
        }
    }
    Ok(result)
}

/// APPEND, journalled: a new instance whose content goes along; the Sent
/// copy a submission filed already only has its flags changed.
pub(super) fn append(
    ctx: &mut WriteCtx,
    journal: &Journal,
    name: &str,
    flags: &[Flag],
    date: (i64, i32),
    sealed: &Sealed,
) -> Result<CopyResult, StoreError> {
    let Some(device) = journal.as_deref().filter(|_| !mailboxes::is_outbox(name)) else {
        return messages::append(ctx, name, flags, date, sealed);
    };
    let before = mailboxes::require(&ctx.conn, name)?;
    let result = messages::append(ctx, name, flags, date, sealed)?;
    for (_, uid) in &result.mapping {
        if let Some(row) = messages::load(&ctx.conn, before.id, *uid)? {
            if *uid >= before.uid_next {
                record_new(&ctx.conn, device, &before.name, &row, None)?;
            } else {
                record_flags(&ctx.conn, device, &row.instance, &row.flags)?;
            }
        }
    }
    Ok(result)
}

/// CREATE, DELETE or RENAME, journalled (never of `Outbox`, which the
/// bridge refuses anyway).
pub(super) fn change_mailbox(
    ctx: &mut WriteCtx,
    journal: &Journal,
    change: MailboxChange,
) -> Result<(), StoreError> {
    apply_mailbox(ctx, &change)?;
    if let Some(device) = journal.as_deref() {
        let version = local_version(&Version::default(), device);
        journal_op(&ctx.conn, &SyncOp::Mailbox { change, version })?;
    }
    Ok(())
}

fn apply_mailbox(ctx: &mut WriteCtx, change: &MailboxChange) -> Result<(), StoreError> {
    match change {
        MailboxChange::Create { name } => mailboxes::create(ctx, name),
        MailboxChange::Delete { name } if !mailboxes::is_outbox(name) => {
            mailboxes::delete(ctx, name)
        }
        MailboxChange::Rename { from, to }
            if !mailboxes::is_outbox(from) && !mailboxes::is_outbox(to) =>
        {
            mailboxes::rename(ctx, from, to)
        }
        _ => Err(StoreError::Cannot("Outbox is not synced".into())),
    }
}

/// The Sent copy `uid` of a submission, journalled as a new instance.
pub(super) fn sent_copy(ctx: &mut WriteCtx, journal: &Journal, uid: Uid) -> Result<(), StoreError> {
    let Some(device) = journal.as_deref() else {
        return Ok(());
    };
    let sent = mailboxes::sent(ctx)?;
    if let Some(row) = messages::load(&ctx.conn, sent.id, uid)? {
        record_new(&ctx.conn, device, &sent.name, &row, None)?;
    }
    Ok(())
}

/// Applies a sibling's ops, each by its register (older ones change
/// nothing). Not journalled. An op this store refuses (a mailbox name it
/// does not allow, a mailbox out of UIDs) is skipped alone, with a note
/// in the log, so one op never blocks the batch for good; a failure of
/// the store itself fails the batch (the sibling retries it).
fn apply(ctx: &mut WriteCtx, ops: &[(SyncOp, Option<Sealed>)]) -> Result<(), StoreError> {
    for (op, sealed) in ops {
        apply_guarded(ctx, op, sealed.as_ref())?;
    }
    Ok(())
}

/// [`apply_one`] in its own savepoint: refused, it is rolled back and
/// skipped.
fn apply_guarded(
    ctx: &mut WriteCtx,
    op: &SyncOp,
    sealed: Option<&Sealed>,
) -> Result<(), StoreError> {
    ctx.conn.execute_batch("SAVEPOINT sync_op").map_err(sql)?;
    match apply_one(ctx, op, sealed) {
        Ok(()) => ctx.conn.execute_batch("RELEASE sync_op").map_err(sql),
        Err(
            err @ (StoreError::Cannot(_)
            | StoreError::Rejected(_)
            | StoreError::NoSuchMailbox(_)
            | StoreError::AlreadyExists(_)),
        ) => {
            ctx.conn
                .execute_batch("ROLLBACK TO sync_op; RELEASE sync_op")
                .map_err(sql)?;
            ctx.vanished_bound.clear();
            tracing::warn!("skipped a sibling device's change this store refuses: {err}");
            Ok(())
        }
        Err(err) => Err(err),
    }
}

fn apply_one(ctx: &mut WriteCtx, op: &SyncOp, sealed: Option<&Sealed>) -> Result<(), StoreError> {
    match op {
        SyncOp::Mailbox { change, .. } => apply_mailbox(ctx, change)?,
        SyncOp::Flags {
            instance,
            flags,
            version,
        } => {
            if *version <= state(&ctx.conn, instance)?.flags_v {
                return Ok(());
            }
            let flags = messages::normalize_flags(flags);
            save_flags(&ctx.conn, instance, &flags, version)?;
            if let Some((mut mailbox, row)) = locate(&ctx.conn, instance)?
                && !mailboxes::is_outbox(&mailbox.name)
            {
                messages::change_flags(
                    ctx,
                    &mut mailbox,
                    &[row.uid],
                    FlagOp::Replace,
                    &flags,
                    None,
                )?;
            }
        }
        SyncOp::Place {
            instance,
            mailbox: place,
            version,
        } => {
            if *version <= state(&ctx.conn, instance)?.place_v {
                return Ok(());
            }
            save_place(&ctx.conn, instance, place.as_deref(), version)?;
            let Some((mut current, row)) = locate(&ctx.conn, instance)? else {
                return Ok(());
            };
            if mailboxes::is_outbox(&current.name) {
                return Ok(());
            }
            match place {
                None => messages::remove_uids(ctx, &mut current, &[row.uid])?,
                Some(name) if canonical(name) != current.name && !mailboxes::is_outbox(name) => {
                    let target = mailboxes::ensure(ctx, name)?;
                    messages::move_uids(ctx, current, &[row.uid], target)?;
                }
                Some(_) => {}
            }
        }
        SyncOp::New {
            instance,
            mailbox,
            flags,
            date,
            offset,
            source,
            version,
            ..
        } => {
            if locate(&ctx.conn, instance)?.is_some() {
                return Ok(());
            }
            let state = state(&ctx.conn, instance)?;
            if state.tombstone() {
                return Ok(());
            }
            let (place, place_v) = match state.place {
                Some(place) if state.place_v > *version => (place, state.place_v),
                _ => (mailbox.clone(), version.clone()),
            };
            let (flags, flags_v) = match state.flags {
                Some(flags) if state.flags_v > *version => (flags, state.flags_v),
                _ => (messages::normalize_flags(flags), version.clone()),
            };
            save_place(&ctx.conn, instance, Some(&place), &place_v)?;
            save_flags(&ctx.conn, instance, &flags, &flags_v)?;
            if mailboxes::is_outbox(&place) {
                return Ok(());
            }
            let date = (*date, *offset);
            match (sealed, source) {
                (Some(sealed), _) => {
                    let mut target = mailboxes::ensure(ctx, &place)?;
                    messages::file_as(ctx, &mut target, &flags, date, sealed, instance)?;
                    arrived(ctx, instance)?;
                }
                (None, Some(source)) => match locate(&ctx.conn, source)? {
                    Some((_, original)) => {
                        let mut target = mailboxes::ensure(ctx, &place)?;
                        messages::insert_row(
                            ctx,
                            &mut target,
                            original.blob_id,
                            original.size,
                            &flags,
                            date,
                            instance,
                        )?;
                        messages::save_mailbox(ctx, &target)?;
                    }
                    // The original is still on its way here: the copy is
                    // made when it arrives (`arrived`).
                    None => wait_for(&ctx.conn, source, op)?,
                },
                (None, None) => tracing::warn!(
                    "a sibling device's new message came without its content (too large to \
                     sync, or deleted there before it was sent); it is not filed here"
                ),
            }
        }
    }
    Ok(())
}

/// Keeps a sibling's COPY of `source`, which is not here yet.
fn wait_for(conn: &Connection, source: &Instance, op: &SyncOp) -> Result<(), StoreError> {
    let text = serde_json::to_string(op)
        .map_err(|err| StoreError::Internal(format!("cannot encode a sync op: {err}")))?;
    conn.prepare_cached("INSERT INTO sync_waiting (source, op) VALUES (?1, ?2)")
        .and_then(|mut stmt| stmt.execute(params![&source[..], text]))
        .map_err(sql)?;
    Ok(())
}

/// `instance` was just filed: the siblings' copies of it that waited for
/// it are made now.
pub(super) fn arrived(ctx: &mut WriteCtx, instance: &Instance) -> Result<(), StoreError> {
    let waiting: Vec<String> = ctx
        .conn
        .prepare_cached("SELECT op FROM sync_waiting WHERE source = ?1")
        .and_then(|mut stmt| {
            stmt.query_map(params![&instance[..]], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(sql)?;
    if waiting.is_empty() {
        return Ok(());
    }
    ctx.conn
        .prepare_cached("DELETE FROM sync_waiting WHERE source = ?1")
        .and_then(|mut stmt| stmt.execute(params![&instance[..]]))
        .map_err(sql)?;
    for text in waiting {
        match serde_json::from_str::<SyncOp>(&text) {
            Ok(op) => apply_guarded(ctx, &op, None)?,
            Err(err) => tracing::warn!("skipping an unreadable waiting copy: {err}"),
        }
    }
    Ok(())
}

/// The store's side of the sync service (`crate::sync`).
impl Store {
    /// Turns the journal on (`Some(this device's PeerId)`, while the
    /// identity has siblings) or off.
    pub fn set_sync_device(&self, device: Option<&str>) {
        let mut current = match self.inner.sync_device.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *current = device.map(Arc::from);
    }

    /// The journal setting, for a write about to be queued.
    fn journal(&self) -> Journal {
        match self.inner.sync_device.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Runs `op` like `Store::write` with the journal setting, then tells
    /// the sync service that the journal may have grown.
    pub(super) async fn write_journalled<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx, &Journal) -> Result<T, StoreError> + Send + 'static,
    {
        let journal = self.journal();
        let on = journal.is_some();
        let result = self.write(move |ctx| op(ctx, &journal)).await?;
        if on {
            self.inner.sync_wakeup.notify_one();
        }
        Ok(result)
    }

    /// Notified after every commit that may have added journal rows.
    pub fn sync_wakeup(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.inner.sync_wakeup)
    }

    /// Up to `limit` journal rows, oldest first, with their sequence
    /// numbers.
    pub async fn sync_pending(&self, limit: usize) -> Result<Vec<(i64, SyncOp)>, StoreError> {
        self.read(move |conn, _| pending(conn, limit)).await
    }

    /// The whole message of `instance` on this device, if it has it.
    pub async fn sync_content(&self, instance: Instance) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |conn, crypto| {
            let Some((mailbox, row)) = locate(conn, &instance)? else {
                return Ok(None);
            };
            let rows = super::read::sealed(
                conn,
                &mailbox.name,
                &[row.uid],
                imap_bridge::backend::Content::Full,
            )?;
            Ok(super::read::open(crypto, rows)?
                .into_iter()
                .next()
                .map(|(_, bytes)| bytes.to_vec()))
        })
        .await
    }

    /// Queues `items` (one control message per sibling) and deletes the
    /// journal rows up to `upto`, in one transaction.
    pub async fn sync_queue(&self, upto: i64, items: Vec<OutboxItem>) -> Result<(), StoreError> {
        let items = items
            .into_iter()
            .map(|item| outbox::seal_item(&self.inner.crypto, item))
            .collect::<Result<Vec<_>, _>>()?;
        let now = super::now_ms();
        self.write(move |ctx| {
            outbox::queue(ctx, &items, now)?;
            ctx.conn
                .prepare_cached("DELETE FROM sync_journal WHERE seq <= ?1")
                .and_then(|mut stmt| stmt.execute(params![upto]))
                .map_err(sql)?;
            Ok(())
        })
        .await
    }

    /// Applies a sibling's ops in one transaction; returns after the
    /// commit. New messages' contents are sealed first.
    pub async fn sync_apply(&self, ops: Vec<SyncOp>) -> Result<(), StoreError> {
        let mut prepared = Vec::with_capacity(ops.len());
        for mut op in ops {
            let sealed = match &mut op {
                SyncOp::New { content, .. } => match content.take() {
                    Some(bytes) => Some(self.seal(bytes).await?),
                    None => None,
                },
                _ => None,
            };
            prepared.push((op, sealed));
        }
        self.write(move |ctx| apply(ctx, &prepared)).await
    }
}

fn pending(conn: &Connection, limit: usize) -> Result<Vec<(i64, SyncOp)>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = conn
        .prepare_cached("SELECT seq, op FROM sync_journal ORDER BY seq LIMIT ?1")
        .and_then(|mut stmt| {
            stmt.query_map(params![limit], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql)?;
    let mut ops = Vec::with_capacity(rows.len());
    for (seq, text) in rows {
        match serde_json::from_str(&text) {
            Ok(op) => ops.push((seq, op)),
            // A row this version cannot read is skipped (and deleted with
            // the batch it sits in), never a reason to stop syncing.
            Err(err) => tracing::warn!(seq, "skipping an unreadable sync journal row: {err}"),
        }
    }
    Ok(ops)
}
