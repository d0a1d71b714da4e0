//! Mailbox rows and the writes that change them: CREATE, DELETE, RENAME
//! and subscriptions (RFC 3501 §6.3.3–§6.3.7).
//!
//! Runs on the writer thread only, inside the writer's transaction. Names
//! are full `/`-delimited names; `INBOX` is case-insensitive and stored as
//! `INBOX`.

use imap_bridge::backend::{SpecialUse, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::schema::OUTBOX_MAILBOX;
use super::writer::WriteCtx;
use super::{canonical, sql};

/// The hierarchy delimiter (RFC 3501 §5.1.1).
pub(super) const DELIMITER: char = '/';

/// Longest mailbox name accepted, in bytes.
const MAX_NAME_LEN: usize = 1024;

/// One row of `mailboxes`.
#[derive(Debug, Clone)]
pub(super) struct Mailbox {
    pub id: i64,
    pub name: String,
    pub special_use: Option<String>,
    pub uid_validity: u32,
    pub uid_next: u32,
    pub highest_modseq: i64,
    pub messages: i64,
    pub unseen: i64,
    pub size: i64,
    /// Expunges up to this MODSEQ are no longer in `vanished`.
    pub vanished_floor: i64,
    /// The first UID no session has claimed as `\Recent`, as last written
    /// (the store's in-memory claims may be ahead: `Store::recent`).
    pub recent_uid: u32,
}

/// The columns [`Mailbox::from_row`] reads, in order.
pub(super) const MAILBOX_COLUMNS: &str = "id, name, special_use, uid_validity, uid_next, highest_modseq, messages, unseen, size, \
     vanished_floor, recent_uid";

impl Mailbox {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Mailbox> {
        Ok(Mailbox {
            id: row.get(0)?,
            name: row.get(1)?,
            special_use: row.get(2)?,
            uid_validity: row.get(3)?,
            uid_next: row.get(4)?,
            highest_modseq: row.get(5)?,
            messages: row.get(6)?,
            unseen: row.get(7)?,
            size: row.get(8)?,
            vanished_floor: row.get(9)?,
            recent_uid: row.get(10)?,
        })
    }

    /// Whether this is the `\Sent` mailbox (RFC 6154).
    pub(super) fn is_sent(&self) -> bool {
        self.special_use.as_deref() == Some(SpecialUse::Sent.as_attribute())
    }
}

/// The SPECIAL-USE attribute stored as text, back as the enum.
pub(super) fn parse_special_use(text: Option<&str>) -> Option<SpecialUse> {
    [
        SpecialUse::Sent,
        SpecialUse::Drafts,
        SpecialUse::Trash,
        SpecialUse::Junk,
        SpecialUse::Archive,
    ]
    .into_iter()
    .find(|special| Some(special.as_attribute()) == text)
}

/// Looks a mailbox up by (canonical) name.
pub(super) fn find(conn: &Connection, name: &str) -> Result<Option<Mailbox>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE name = ?1"
        ))
        .map_err(sql)?;
    stmt.query_row(params![canonical(name)], Mailbox::from_row)
        .optional()
        .map_err(sql)
}

/// Looks a mailbox up by name; `NoSuchMailbox` if it does not exist.
pub(super) fn require(conn: &Connection, name: &str) -> Result<Mailbox, StoreError> {
    find(conn, name)?.ok_or_else(|| StoreError::NoSuchMailbox(canonical(name).into_owned()))
}

/// The mailbox with a SPECIAL-USE attribute, if one exists (the oldest if
/// several do).
pub(super) fn find_special(
    conn: &Connection,
    special: SpecialUse,
) -> Result<Option<Mailbox>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE special_use = ?1 ORDER BY id LIMIT 1"
        ))
        .map_err(sql)?;
    stmt.query_row(params![special.as_attribute()], Mailbox::from_row)
        .optional()
        .map_err(sql)
}

/// The `\Sent` mailbox; re-created as `Sent` if the user deleted it, since
/// every submission files a copy there.
pub(super) fn sent(ctx: &mut WriteCtx) -> Result<Mailbox, StoreError> {
    if let Some(mailbox) = find_special(&ctx.conn, SpecialUse::Sent)? {
        return Ok(mailbox);
    }
    let name = if find(&ctx.conn, "Sent")?.is_some() {
        "Sent Messages"
    } else {
        "Sent"
    };
    create_one(ctx, name, Some(SpecialUse::Sent))
}

/// The `Outbox` mailbox mailnode keeps (what is still being delivered);
/// re-created if it is missing, like [`sent`]. Migration 2 creates it.
pub(super) fn outbox(ctx: &mut WriteCtx) -> Result<Mailbox, StoreError> {
    if let Some(mailbox) = find(&ctx.conn, OUTBOX_MAILBOX)? {
        return Ok(mailbox);
    }
    let mailbox = create_one(ctx, OUTBOX_MAILBOX, None)?;
    subscribe(&ctx.conn, OUTBOX_MAILBOX, true)?;
    Ok(mailbox)
}

/// Whether `name` is the `Outbox` mailbox mailnode keeps (names other than
/// INBOX are case-sensitive, RFC 3501 §5.1).
pub(super) fn is_outbox(name: &str) -> bool {
    name == OUTBOX_MAILBOX
}

/// A mailbox the node files into (INBOX, Requests); created if missing.
pub(super) fn ensure(ctx: &mut WriteCtx, name: &str) -> Result<Mailbox, StoreError> {
    if let Some(mailbox) = find(&ctx.conn, name)? {
        return Ok(mailbox);
    }
    let name = validate(name)?;
    create_parents(ctx, &name)?;
    create_one(ctx, &name, None)
}

/// Checks a name and returns its canonical form. Refused: empty names or
/// components, wildcards (RFC 3501 §6.3.8 gives `*` and `%` meaning in
/// LIST), control characters, and very long names.
pub(super) fn validate(name: &str) -> Result<String, StoreError> {
    let name = canonical(name);
    if name.is_empty() {
        return Err(StoreError::Cannot("a mailbox name cannot be empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StoreError::Cannot("the mailbox name is too long".into()));
    }
    if name.split(DELIMITER).any(str::is_empty) {
        return Err(StoreError::Cannot(format!(
            "the mailbox name {name:?} has an empty level"
        )));
    }
    if name.chars().any(|c| c.is_control() || c == '*' || c == '%') {
        return Err(StoreError::Cannot(format!(
            "the mailbox name {name:?} contains a character that is not allowed"
        )));
    }
    Ok(name.into_owned())
}

/// Inserts one mailbox with a fresh UIDVALIDITY.
pub(super) fn create_one(
    ctx: &mut WriteCtx,
    name: &str,
    special_use: Option<SpecialUse>,
) -> Result<Mailbox, StoreError> {
    let uid_validity = ctx.next_uidvalidity()?;
    let modseq = ctx.next_modseq();
    ctx.conn
        .prepare_cached(
            "INSERT INTO mailboxes (name, special_use, uid_validity, uid_next, highest_modseq) \
             VALUES (?1, ?2, ?3, 1, ?4)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                name,
                special_use.map(SpecialUse::as_attribute),
                uid_validity,
                modseq
            ])
        })
        .map_err(sql)?;
    ctx.notify(name, modseq);
    Ok(Mailbox {
        id: ctx.conn.last_insert_rowid(),
        name: name.to_string(),
        special_use: special_use.map(|s| s.as_attribute().to_string()),
        uid_validity,
        uid_next: 1,
        highest_modseq: modseq,
        messages: 0,
        unseen: 0,
        size: 0,
        vanished_floor: 0,
        recent_uid: 1,
    })
}

/// Creates the missing superiors of `name` (RFC 3501 §6.3.3: "the server
/// SHOULD create any superior hierarchical names that are needed").
fn create_parents(ctx: &mut WriteCtx, name: &str) -> Result<(), StoreError> {
    for (index, _) in name.match_indices(DELIMITER) {
        let parent = &name[..index];
        if find(&ctx.conn, parent)?.is_none() {
            create_one(ctx, parent, None)?;
        }
    }
    Ok(())
}

/// CREATE. A trailing delimiter only announces children and is dropped.
pub(super) fn create(ctx: &mut WriteCtx, name: &str) -> Result<(), StoreError> {
    let trimmed = name.strip_suffix(DELIMITER).unwrap_or(name);
    let name = validate(trimmed)?;
    if find(&ctx.conn, &name)?.is_some() {
        return Err(StoreError::AlreadyExists(name));
    }
    create_parents(ctx, &name)?;
    create_one(ctx, &name, None)?;
    Ok(())
}

/// DELETE: the mailbox and its messages. Children stay (they are separate
/// mailboxes here); the subscription stays too, as RFC 3501 §6.3.6 asks the
/// server not to drop subscriptions on its own.
pub(super) fn delete(ctx: &mut WriteCtx, name: &str) -> Result<(), StoreError> {
    let name = canonical(name);
    if name == "INBOX" {
        return Err(StoreError::Cannot("INBOX cannot be deleted".into()));
    }
    let mailbox = require(&ctx.conn, &name)?;
    // Blobs only this mailbox uses go with it; copies elsewhere keep theirs.
    ctx.conn
        .prepare_cached(
            "DELETE FROM blobs WHERE id IN (SELECT blob_id FROM messages WHERE mailbox_id = ?1) \
             AND NOT EXISTS (SELECT 1 FROM messages m \
                             WHERE m.blob_id = blobs.id AND m.mailbox_id != ?1)",
        )
        .and_then(|mut stmt| stmt.execute(params![mailbox.id]))
        .map_err(sql)?;
    for statement in [
        "DELETE FROM messages WHERE mailbox_id = ?1",
        "DELETE FROM vanished WHERE mailbox_id = ?1",
        "DELETE FROM mailboxes WHERE id = ?1",
    ] {
        ctx.conn
            .prepare_cached(statement)
            .and_then(|mut stmt| stmt.execute(params![mailbox.id]))
            .map_err(sql)?;
    }
    let modseq = ctx.next_modseq();
    ctx.notify(&mailbox.name, modseq);
    Ok(())
}

/// RENAME (RFC 3501 §6.3.5): the mailbox and its children keep their ids,
/// so UIDVALIDITY and UIDs move with them. Renaming INBOX moves its
/// messages into a new mailbox and leaves INBOX empty.
pub(super) fn rename(ctx: &mut WriteCtx, from: &str, to: &str) -> Result<(), StoreError> {
    let from = canonical(from).into_owned();
    let to = validate(to)?;
    let source = require(&ctx.conn, &from)?;
    if find(&ctx.conn, &to)?.is_some() {
        return Err(StoreError::AlreadyExists(to));
    }
    if to.starts_with(&format!("{from}{DELIMITER}")) {
        return Err(StoreError::Cannot(format!(
            "cannot move {from} inside itself"
        )));
    }
    if from == "INBOX" {
        create_parents(ctx, &to)?;
        let target = create_one(ctx, &to, None)?;
        let uids = super::messages::all_uids(&ctx.conn, source.id)?;
        super::messages::move_uids(ctx, source, &uids, target)?;
        return Ok(());
    }
    let prefix = format!("{from}{DELIMITER}");
    let mut renames: Vec<(i64, String, String, i64)> = Vec::new();
    {
        let mut stmt = ctx
            .conn
            .prepare_cached("SELECT id, name, highest_modseq FROM mailboxes")
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .map_err(sql)?;
        for row in rows {
            let (id, name, modseq) = row.map_err(sql)?;
            let new_name = if name == from {
                to.clone()
            } else if let Some(rest) = name.strip_prefix(&prefix) {
                format!("{to}{DELIMITER}{rest}")
            } else {
                continue;
            };
            renames.push((id, name, new_name, modseq));
        }
    }
    for (_, _, new_name, _) in &renames {
        if find(&ctx.conn, new_name)?.is_some() {
            return Err(StoreError::AlreadyExists(new_name.clone()));
        }
    }
    for (id, old_name, new_name, modseq) in &renames {
        ctx.conn
            .prepare_cached("UPDATE mailboxes SET name = ?2 WHERE id = ?1")
            .and_then(|mut stmt| stmt.execute(params![id, new_name]))
            .map_err(sql)?;
        // Subscriptions follow the rename so the folder stays visible in
        // clients that list subscribed folders only.
        let moved = ctx
            .conn
            .prepare_cached("DELETE FROM subscriptions WHERE name = ?1")
            .and_then(|mut stmt| stmt.execute(params![old_name]))
            .map_err(sql)?;
        if moved > 0 {
            subscribe(&ctx.conn, new_name, true)?;
        }
        ctx.notify(old_name, *modseq);
        ctx.notify(new_name, *modseq);
    }
    create_parents(ctx, &to)?;
    Ok(())
}

/// SUBSCRIBE / UNSUBSCRIBE; the name need not exist.
pub(super) fn subscribe(conn: &Connection, name: &str, on: bool) -> Result<(), StoreError> {
    let statement = if on {
        "INSERT OR IGNORE INTO subscriptions (name) VALUES (?1)"
    } else {
        "DELETE FROM subscriptions WHERE name = ?1"
    };
    conn.prepare_cached(statement)
        .and_then(|mut stmt| stmt.execute(params![canonical(name)]))
        .map_err(sql)?;
    Ok(())
}
