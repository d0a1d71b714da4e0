//! `mailbox.db`: the SQLite file of a mailbox peer, owned by one thread.
//!
//! WAL with `synchronous=FULL`: `Stored` is answered only after the COMMIT
//! that holds the envelope, so it survives power loss. Every write is one
//! transaction. The thread runs jobs from a bounded queue and, between
//! them, the hourly retention pass.
//!
//! Clear on disk: the recipients' and depositors' PeerIds, sizes and times
//! (what the quotas need). The envelopes are OpenPGP ciphertext for their
//! recipient; this module never looks inside them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::PeerId;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::MailboxError;
use super::inbox;
use super::limits::MailboxLimits;
use super::wire::{EnvelopeId, HeldEnvelope, InboxId, Registration};

/// Numbered migrations; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE registrations (
        recipient BLOB PRIMARY KEY,
        key BLOB NOT NULL,
        mailboxes TEXT NOT NULL,
        issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        signature BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE inbox_ids (
        inbox BLOB PRIMARY KEY,
        recipient BLOB NOT NULL,
        epoch INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX inbox_ids_recipient ON inbox_ids(recipient);
    CREATE TABLE envelopes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id BLOB NOT NULL,
        recipient BLOB NOT NULL,
        sender BLOB NOT NULL,
        size INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        UNIQUE (recipient, id)
    );
    CREATE INDEX envelopes_quota ON envelopes(recipient, sender, size);
    CREATE INDEX envelopes_age ON envelopes(received_at);
"];

/// A registration as stored.
#[derive(Debug, Clone)]
pub(super) struct Registered {
    pub registration: Registration,
    pub mailboxes: Vec<PeerId>,
}

/// What a deposit did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Deposited {
    /// Newly committed.
    Stored,
    /// The same envelope id was already held for that recipient.
    Duplicate,
    /// Over a limit; nothing stored.
    Refused(String),
}

/// What a retention pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Envelopes older than the retention limit.
    pub envelopes: u64,
    /// Expired registrations with nothing left to collect.
    pub registrations: u64,
}

/// The connection and the totals kept in memory.
pub(super) struct Db {
    conn: Connection,
    path: PathBuf,
    total_bytes: u64,
}

impl Db {
    pub(super) fn open(path: &Path) -> Result<Db, MailboxError> {
        let fail = |err: rusqlite::Error| database(path, err);
        let conn = Connection::open(path).map_err(fail)?;
        restrict_permissions(path);
        conn.busy_timeout(Duration::from_secs(10)).map_err(fail)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(MailboxError::Database {
                path: path.display().to_string(),
                reason: format!("cannot switch to WAL mode (got {mode})"),
            });
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;")
            .map_err(fail)?;
        conn.set_prepared_statement_cache_capacity(32);
        // Plans that survive rebinding (see `store::schema::stable_plans`).
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(fail)?;
        let mut db = Db {
            conn,
            path: path.to_path_buf(),
            total_bytes: 0,
        };
        db.migrate()?;
        db.total_bytes = db
            .conn
            .query_row("SELECT COALESCE(SUM(size), 0) FROM envelopes", [], |row| {
                row.get::<_, i64>(0)
            })
            .map_err(|err| db.err(err))?
            .max(0) as u64;
        Ok(db)
    }

    fn err(&self, err: rusqlite::Error) -> MailboxError {
        database(&self.path, err)
    }

    fn migrate(&mut self) -> Result<(), MailboxError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|err| self.err(err))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(MailboxError::Database {
                path: self.path.display().to_string(),
                reason: format!(
                    "schema version {version} is newer than this mailnode understands ({known}); \
                     upgrade mailnode"
                ),
            });
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|err| database(&path, err))?;
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(migration)
                .map_err(|err| database(&path, err))?;
            tx.pragma_update(None, "user_version", index as i64 + 1)
                .map_err(|err| database(&path, err))?;
        }
        tx.commit().map_err(|err| database(&path, err))
    }

    /// Bytes held for everyone.
    pub(super) fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The stored registration of `recipient`.
    pub(super) fn registration(
        &self,
        recipient: &PeerId,
    ) -> Result<Option<Registered>, MailboxError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT key, mailboxes, issued_at, expires_at, signature
                 FROM registrations WHERE recipient = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![recipient.to_bytes()], |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, Vec<u8>>(4)?,
                    ))
                })
                .optional()
            })
            .map_err(|err| self.err(err))?;
        let Some((key, mailboxes, issued_at, expires_at, signature)) = row else {
            return Ok(None);
        };
        let mailboxes = mailboxes
            .split_whitespace()
            .map(|text| text.parse::<PeerId>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| MailboxError::Database {
                path: self.path.display().to_string(),
                reason: format!("a stored registration names a bad PeerId ({err})"),
            })?;
        let registration = Registration {
            recipient_key: key,
            mailboxes: mailboxes
                .iter()
                .map(|peer| serde_bytes::ByteBuf::from(peer.to_bytes()))
                .collect(),
            issued_at: issued_at.max(0) as u64,
            expires_at: expires_at.max(0) as u64,
            signature,
        };
        Ok(Some(Registered {
            registration,
            mailboxes,
        }))
    }

    /// Stores a verified registration unless a newer one is held, and the
    /// inbox ids around `now`. `Err(reason)` inside `Ok` is a refusal.
    pub(super) fn register(
        &mut self,
        recipient: &PeerId,
        registration: &Registration,
        mailboxes: &[PeerId],
        now: u64,
        limits: &MailboxLimits,
    ) -> Result<Result<(), String>, MailboxError> {
        let path = self.path.clone();
        let fail = |err: rusqlite::Error| database(&path, err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT issued_at FROM registrations WHERE recipient = ?1",
                params![recipient.to_bytes()],
                |row| row.get(0),
            )
            .optional()
            .map_err(fail)?;
        match existing {
            Some(issued) if issued > to_sql(registration.issued_at) => {
                return Ok(Err(
                    "this mailbox holds a newer registration for that recipient".into(),
                ));
            }
            Some(_) => {}
            None => {
                let count: i64 = tx
                    .query_row("SELECT COUNT(*) FROM registrations", [], |row| row.get(0))
                    .map_err(fail)?;
                if count >= i64::from(limits.max_registrations) {
                    return Ok(Err(format!(
                        "this mailbox serves its maximum of {} recipients; choose another \
                         mailbox peer",
                        limits.max_registrations
                    )));
                }
            }
        }
        let names = mailboxes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        tx.execute(
            "INSERT INTO registrations (recipient, key, mailboxes, issued_at, expires_at, signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (recipient) DO UPDATE SET key = excluded.key,
                mailboxes = excluded.mailboxes, issued_at = excluded.issued_at,
                expires_at = excluded.expires_at, signature = excluded.signature",
            params![
                recipient.to_bytes(),
                registration.recipient_key,
                names,
                to_sql(registration.issued_at),
                to_sql(registration.expires_at),
                registration.signature
            ],
        )
        .map_err(fail)?;
        insert_inbox_ids(&tx, recipient, now).map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(Ok(()))
    }

    /// The recipient an inbox id belongs to, if it is of an accepted epoch.
    pub(super) fn inbox_owner(
        &self,
        inbox: &InboxId,
        now: u64,
    ) -> Result<Option<PeerId>, MailboxError> {
        let epochs = inbox::accepted_epochs(now);
        let owner: Option<Vec<u8>> = self
            .conn
            .prepare_cached(
                "SELECT recipient FROM inbox_ids WHERE inbox = ?1 AND epoch BETWEEN ?2 AND ?3",
            )
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![
                        inbox.as_slice(),
                        to_sql(*epochs.start()),
                        to_sql(*epochs.end())
                    ],
                    |row| row.get(0),
                )
                .optional()
            })
            .map_err(|err| self.err(err))?;
        Ok(owner.and_then(|bytes| PeerId::from_bytes(&bytes).ok()))
    }

    /// Stores one envelope after checking every quota in the same
    /// transaction.
    pub(super) fn deposit(
        &mut self,
        recipient: &PeerId,
        sender: &PeerId,
        id: &EnvelopeId,
        sealed: &[u8],
        now: u64,
        limits: &MailboxLimits,
    ) -> Result<Deposited, MailboxError> {
        let size = sealed.len() as u64;
        let path = self.path.clone();
        let fail = |err: rusqlite::Error| database(&path, err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let recipient_bytes = recipient.to_bytes();
        let sender_bytes = sender.to_bytes();
        let held: bool = tx
            .query_row(
                "SELECT 1 FROM envelopes WHERE recipient = ?1 AND id = ?2",
                params![recipient_bytes, id.as_slice()],
                |_| Ok(true),
            )
            .optional()
            .map_err(fail)?
            .unwrap_or(false);
        if held {
            return Ok(Deposited::Duplicate);
        }
        let (sender_count, sender_bytes_held): (i64, i64) = tx
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM envelopes
                 WHERE recipient = ?1 AND sender = ?2",
                params![recipient_bytes, sender_bytes],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(fail)?;
        let inbox_bytes: i64 = tx
            .query_row(
                "SELECT COALESCE(SUM(size), 0) FROM envelopes WHERE recipient = ?1",
                params![recipient_bytes],
                |row| row.get(0),
            )
            .map_err(fail)?;
        let refusal = if sender_count >= i64::from(limits.per_sender_count) {
            Some(format!(
                "over quota: this sender already has {} envelopes waiting for that recipient \
                 (limit {})",
                sender_count, limits.per_sender_count
            ))
        } else if sender_bytes_held as u64 + size > limits.per_sender_bytes {
            Some(format!(
                "over quota: this sender's envelopes for that recipient would exceed {} bytes",
                limits.per_sender_bytes
            ))
        } else if inbox_bytes as u64 + size > limits.per_inbox_bytes {
            Some(format!(
                "over quota: the recipient's inbox would exceed {} bytes",
                limits.per_inbox_bytes
            ))
        } else if self.total_bytes + size > limits.total_bytes {
            Some(format!(
                "over quota: this mailbox is full ({} bytes in total)",
                limits.total_bytes
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            return Ok(Deposited::Refused(reason));
        }
        tx.execute(
            "INSERT INTO envelopes (id, recipient, sender, size, received_at, sealed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id.as_slice(),
                recipient_bytes,
                sender_bytes,
                to_sql(size),
                to_sql(now),
                sealed
            ],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        self.total_bytes += size;
        Ok(Deposited::Stored)
    }

    /// Whether `inbox` is one of `recipient`'s accepted inbox ids.
    pub(super) fn owns_inbox(
        &self,
        recipient: &PeerId,
        inbox: &InboxId,
        now: u64,
    ) -> Result<bool, MailboxError> {
        Ok(self.inbox_owner(inbox, now)?.as_ref() == Some(recipient))
    }

    /// Envelopes of `recipient` after `after`, oldest first, at most
    /// `count` and about `bytes` (the first one always, even if larger).
    pub(super) fn collect(
        &self,
        recipient: &PeerId,
        after: u64,
        count: u32,
        bytes: u64,
    ) -> Result<(Vec<HeldEnvelope>, bool), MailboxError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, id, received_at, size FROM envelopes
                 WHERE recipient = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(|err| self.err(err))?;
        // Sizes first, so that blobs beyond the byte budget are never read.
        let rows = stmt
            .query_map(
                params![recipient.to_bytes(), to_sql(after), i64::from(count) + 1],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Vec<u8>>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                },
            )
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|err| self.err(err))?;
        let mut chosen = Vec::new();
        let mut total = 0u64;
        let mut more = false;
        for (seq, id, received_at, size) in rows {
            let size = size.max(0) as u64;
            if chosen.len() as u32 >= count || (!chosen.is_empty() && total + size > bytes) {
                more = true;
                break;
            }
            let Ok(id) = EnvelopeId::try_from(id.as_slice()) else {
                continue;
            };
            total += size;
            chosen.push((seq, id, received_at));
        }
        let mut blob = self
            .conn
            .prepare_cached("SELECT sealed FROM envelopes WHERE seq = ?1")
            .map_err(|err| self.err(err))?;
        let mut envelopes = Vec::with_capacity(chosen.len());
        for (seq, id, received_at) in chosen {
            let sealed: Option<Vec<u8>> = blob
                .query_row(params![seq], |row| row.get(0))
                .optional()
                .map_err(|err| self.err(err))?;
            if let Some(sealed) = sealed {
                envelopes.push(HeldEnvelope {
                    id,
                    seq: seq.max(0) as u64,
                    received_at: received_at.max(0) as u64,
                    sealed,
                });
            }
        }
        Ok((envelopes, more))
    }

    /// Deletes exactly the named envelopes of `recipient`.
    pub(super) fn ack(
        &mut self,
        recipient: &PeerId,
        ids: &[EnvelopeId],
    ) -> Result<u32, MailboxError> {
        let path = self.path.clone();
        let fail = |err: rusqlite::Error| database(&path, err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let mut deleted = 0u32;
        let mut freed = 0u64;
        {
            let mut stmt = tx
                .prepare_cached(
                    "DELETE FROM envelopes WHERE recipient = ?1 AND id = ?2 RETURNING size",
                )
                .map_err(fail)?;
            let recipient = recipient.to_bytes();
            for id in ids {
                let size: Option<i64> = stmt
                    .query_row(params![recipient, id.as_slice()], |row| row.get(0))
                    .optional()
                    .map_err(fail)?;
                if let Some(size) = size {
                    deleted += 1;
                    freed += size.max(0) as u64;
                }
            }
        }
        tx.commit().map_err(fail)?;
        self.total_bytes = self.total_bytes.saturating_sub(freed);
        Ok(deleted)
    }

    /// The retention pass: envelopes older than `retention`, expired
    /// registrations with nothing left, and inbox ids of past epochs; adds
    /// the inbox ids of the coming epoch for every live registration.
    pub(super) fn prune(&mut self, now: u64, retention: Duration) -> Result<Pruned, MailboxError> {
        let path = self.path.clone();
        let fail = |err: rusqlite::Error| database(&path, err);
        let cutoff = now.saturating_sub(retention.as_secs());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let freed: i64 = tx
            .query_row(
                "SELECT COALESCE(SUM(size), 0) FROM envelopes WHERE received_at < ?1",
                params![to_sql(cutoff)],
                |row| row.get(0),
            )
            .map_err(fail)?;
        let envelopes = tx
            .execute(
                "DELETE FROM envelopes WHERE received_at < ?1",
                params![to_sql(cutoff)],
            )
            .map_err(fail)? as u64;
        let registrations = tx
            .execute(
                "DELETE FROM registrations WHERE expires_at < ?1
                 AND NOT EXISTS (SELECT 1 FROM envelopes WHERE envelopes.recipient = registrations.recipient)",
                params![to_sql(now)],
            )
            .map_err(fail)? as u64;
        let first = *inbox::accepted_epochs(now).start();
        tx.execute(
            "DELETE FROM inbox_ids WHERE epoch < ?1
             OR recipient NOT IN (SELECT recipient FROM registrations)",
            params![to_sql(first)],
        )
        .map_err(fail)?;
        let live: Vec<Vec<u8>> = tx
            .prepare("SELECT recipient FROM registrations WHERE expires_at >= ?1")
            .and_then(|mut stmt| {
                stmt.query_map(params![to_sql(now)], |row| row.get(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(fail)?;
        for bytes in live {
            if let Ok(recipient) = PeerId::from_bytes(&bytes) {
                insert_inbox_ids(&tx, &recipient, now).map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)?;
        self.total_bytes = self.total_bytes.saturating_sub(freed.max(0) as u64);
        Ok(Pruned {
            envelopes,
            registrations,
        })
    }

    /// How many envelopes are held for `recipient` (tests, status).
    pub(super) fn count_for(&self, recipient: &PeerId) -> Result<u64, MailboxError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM envelopes WHERE recipient = ?1",
                params![recipient.to_bytes()],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|err| self.err(err))
    }
}

/// The inbox ids of `recipient` for every accepted epoch around `now`.
fn insert_inbox_ids(conn: &Connection, recipient: &PeerId, now: u64) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO inbox_ids (inbox, recipient, epoch) VALUES (?1, ?2, ?3)",
    )?;
    let recipient_bytes = recipient.to_bytes();
    // One epoch beyond the accepted range, so that the ids exist before the
    // next hourly pass even right at a day boundary.
    let epochs = inbox::accepted_epochs(now);
    for epoch in *epochs.start()..=epochs.end().saturating_add(1) {
        let id = inbox::inbox_id(recipient, epoch);
        stmt.execute(params![id.as_slice(), recipient_bytes, to_sql(epoch)])?;
    }
    Ok(())
}

/// SQLite integers are signed; our times and sizes fit, saturate if not.
fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn database(path: &Path, err: rusqlite::Error) -> MailboxError {
    MailboxError::Database {
        path: path.display().to_string(),
        reason: err.to_string(),
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // The envelopes are ciphertext, but who writes to whom is not: keep the
    // file to its owner. A filesystem without modes is not fatal.
    if let Err(err) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!("cannot restrict permissions of {}: {err}", path.display());
    }
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) {}
