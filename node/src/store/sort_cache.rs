//! The SORT and THREAD fields of messages (issue 9): read from the sealed
//! `blobs.sort_fields` column, opened once and kept in memory per mailbox,
//! so a repeated SORT or THREAD does no SQL beyond finding the mailbox and
//! never decrypts a message.
//!
//! A message's fields never change (its content is immutable and a UID is
//! never reused), so entries stay valid until the message goes. The cache
//! of a mailbox is rebuilt from the table whenever a request misses more
//! than a few messages, which also drops the entries of expunged ones; a
//! deleted mailbox's entries go when the cache is next rebuilt (mailbox
//! ids are never reused, so they can never be served for another
//! mailbox). The decrypted fields stay in memory only, like every other
//! decrypted content this process handles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use imap_bridge::backend::{SortFieldMap, StoreError, Uid};
use imap_bridge::mime::SortFields;
use rusqlite::{Connection, OptionalExtension, params};

use super::crypto::{BlobKind, Crypto, blob_aad};
use super::mailboxes;
use super::sql;

/// Misses up to this many are read one by one; more rebuild the mailbox.
const FEW: usize = 64;

/// Most mailboxes whose fields are kept; the least recently used go.
const MAX_MAILBOXES: usize = 16;

type Fields = SortFieldMap;

/// The cached fields, by mailbox id.
#[derive(Default)]
pub(super) struct SortCache {
    mailboxes: Mutex<HashMap<i64, (u64, Arc<Fields>)>>,
    clock: Mutex<u64>,
}

impl SortCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<i64, (u64, Arc<Fields>)>> {
        // The map stays consistent even if a holder panicked.
        match self.mailboxes.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn tick(&self) -> u64 {
        let mut clock = match self.clock.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *clock += 1;
        *clock
    }

    fn get(&self, id: i64) -> Option<Arc<Fields>> {
        let now = self.tick();
        let mut map = self.lock();
        let entry = map.get_mut(&id)?;
        entry.0 = now;
        Some(Arc::clone(&entry.1))
    }

    fn put(&self, id: i64, fields: Arc<Fields>) {
        let now = self.tick();
        let mut map = self.lock();
        map.insert(id, (now, fields));
        while map.len() > MAX_MAILBOXES {
            let Some(oldest) = map.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k) else {
                break;
            };
            map.remove(&oldest);
        }
    }

    /// The fields of (at least) `uids` in mailbox `name`; UIDs that do not
    /// exist are absent. Usually the cached map itself, not a copy.
    pub(super) fn fields(
        &self,
        conn: &Connection,
        crypto: &Crypto,
        name: &str,
        uids: &[Uid],
    ) -> Result<Arc<SortFieldMap>, StoreError> {
        let mailbox = mailboxes::require(conn, name)?;
        let cached = self.get(mailbox.id).unwrap_or_default();
        let missing: Vec<Uid> = uids
            .iter()
            .zip(cached.positions(uids.iter().copied()))
            .filter(|(_, at)| at.is_none())
            .map(|(uid, _)| *uid)
            .collect();
        let fields = if missing.is_empty() {
            cached
        } else if missing.len() <= FEW {
            // New mail since the last call: add it in place (the map is
            // copied only if another reader holds it right now).
            let mut fields = cached;
            self.lock().remove(&mailbox.id);
            let map = Arc::make_mut(&mut fields);
            for uid in missing {
                if let Some(found) = read_one(conn, crypto, mailbox.id, uid)? {
                    map.insert(uid, found);
                }
            }
            self.put(mailbox.id, Arc::clone(&fields));
            fields
        } else {
            let fields = Arc::new(read_all(conn, crypto, mailbox.id, &cached)?);
            self.put(mailbox.id, Arc::clone(&fields));
            fields
        };
        Ok(fields)
    }
}

/// Opens one row's sealed fields (or, for a row that has none, derives
/// them from its header).
fn open(
    crypto: &Crypto,
    blob_id: i64,
    sealed: Option<Vec<u8>>,
    header: Option<Vec<u8>>,
) -> Result<SortFields, StoreError> {
    if let Some(sealed) = sealed {
        let bytes = crypto.open(&blob_aad(BlobKind::SortFields, blob_id), &sealed)?;
        if let Some(fields) = SortFields::decode(&bytes) {
            return Ok(fields);
        }
    }
    let header = match header {
        Some(header) => crypto.open(&blob_aad(BlobKind::Header, blob_id), &header)?,
        None => Vec::new(),
    };
    Ok(SortFields::from_message(&header))
}

const COLUMNS: &str = "m.uid, b.id, b.sort_fields, \
     CASE WHEN b.sort_fields IS NULL THEN b.header END \
     FROM messages m JOIN blobs b ON b.id = m.blob_id";

type Row = (Uid, i64, Option<Vec<u8>>, Option<Vec<u8>>);

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn read_one(
    conn: &Connection,
    crypto: &Crypto,
    mailbox_id: i64,
    uid: Uid,
) -> Result<Option<SortFields>, StoreError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} WHERE m.mailbox_id = ?1 AND m.uid = ?2"
        ))
        .and_then(|mut stmt| stmt.query_row(params![mailbox_id, uid], row).optional())
        .map_err(sql)?;
    found
        .map(|(_, blob, sealed, header)| open(crypto, blob, sealed, header))
        .transpose()
}

/// Every message of the mailbox, reusing what `cached` already has.
fn read_all(
    conn: &Connection,
    crypto: &Crypto,
    mailbox_id: i64,
    cached: &Fields,
) -> Result<Fields, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} WHERE m.mailbox_id = ?1 ORDER BY m.uid"
        ))
        .map_err(sql)?;
    let rows = stmt.query_map(params![mailbox_id], row).map_err(sql)?;
    let mut fields = Fields::with_capacity(cached.len().max(1024));
    for found in rows {
        let (uid, blob, sealed, header) = found.map_err(sql)?;
        match cached.get(uid) {
            Some(known) => fields.insert_ref(uid, known),
            None => fields.insert(uid, open(crypto, blob, sealed, header)?),
        }
    }
    // Kept until the mailbox changes a lot: no room beyond what it holds.
    fields.shrink_to_fit();
    Ok(fields)
}
