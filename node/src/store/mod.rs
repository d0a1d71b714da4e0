//! The encrypted SQLite mail store: mailboxes, messages, the outbox and the
//! record of deliveries already filed.
//!
//! [`Store`] is a cheap, cloneable handle. Behind it:
//! - one writer thread (`writer`) alone owns the write connection and
//!   group-commits every waiting command in one transaction, each command in
//!   its own SAVEPOINT; a method returns only after its COMMIT, and the
//!   database runs WAL with `synchronous=FULL`, so "done" survives power loss;
//! - a small pool of read-only connections (`read`), used from
//!   `spawn_blocking`, so reads never wait behind the writer; a FETCH of
//!   one message, a single indexed lookup, runs on the caller's task
//!   instead (`Store::fetch_one`);
//! - sealing (`crypto`): every message header block and body is encrypted
//!   with AES-256-GCM under a key derived from the store key, bound to its
//!   row, before it reaches SQLite. Only what IMAP answers without
//!   decrypting (UIDs, flags, sizes, dates, mailbox names, MODSEQs) is clear.
//!
//! The store implements the bridge's [`MailStore`] contract (see `imap`) and
//! the node's own needs: submission with its outbox entries, the delivery
//! schedule, and idempotent filing of incoming deliveries.
//!
//! It must not know about the network, OpenPGP or IMAP syntax: callers hand
//! it bytes and get bytes back.
//!
//! [`MailStore`]: imap_bridge::backend::MailStore

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use imap_bridge::backend::{Content, MailboxChanged, Uid};
use rusqlite::Connection;
use tokio::sync::{broadcast, mpsc, oneshot};

pub use imap_bridge::backend::StoreError;

mod crypto;
mod imap;
mod index;
mod mailboxes;
mod messages;
mod outbox;
mod read;
mod recent;
mod schema;
mod sort_cache;
mod sync;
mod writer;

#[cfg(test)]
mod tests;

use crypto::Crypto;
use index::{Indexes, Seen};
use messages::Sealed;
use read::Readers;
use recent::Claims;
use sort_cache::SortCache;
use writer::{Job, Message, WriteCtx};

/// Commands that may wait for the writer before senders are held back.
const COMMAND_QUEUE: usize = 1024;
/// Change notifications buffered per receiver (a slow IMAP session that
/// falls further behind re-reads the mailbox, see `broadcast` lagging).
const EVENT_CAPACITY: usize = 1024;
/// Messages up to this size are sealed on the calling task; larger ones go
/// to the blocking pool so they do not stall the async runtime.
const SEAL_INLINE_MAX: usize = 64 * 1024;
/// A single fetched message up to this size (sealed) is decrypted on the
/// calling task, for the same reason; AES-GCM opens it in a few
/// microseconds.
const OPEN_HERE_MAX: usize = 256 * 1024;

/// Expunged UIDs each mailbox keeps for QRESYNC by default: a client
/// that was away for fewer expunges than this gets the exact list.
pub const VANISHED_KEEP: usize = 20_000;

/// Settings of a store that are not in the file.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Expunged UIDs kept per mailbox (see `messages::prune_vanished`).
    pub vanished_keep: usize,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            vanished_keep: VANISHED_KEEP,
        }
    }
}

/// One message for one recipient, queued for delivery by
/// [`Store::submit_outgoing`].
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// Random id of this delivery; the recipient's node deduplicates on it.
    pub delivery_id: [u8; 16],
    /// The recipient's address.
    pub recipient: String,
    /// Fingerprint of the recipient's certificate.
    pub recipient_fpr: String,
    /// The recipient node's PeerId.
    pub peer_id: String,
    /// The sealed PGP/MIME message (OpenPGP ciphertext).
    pub payload: Vec<u8>,
}

/// A queued delivery, as the outbox service sees it.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    /// Row id; the handle for the `outbox_*` methods.
    pub id: i64,
    /// Random id of this delivery.
    pub delivery_id: [u8; 16],
    /// The recipient's address.
    pub recipient: String,
    /// Fingerprint of the recipient's certificate.
    pub recipient_fpr: String,
    /// The recipient node's PeerId.
    pub peer_id: String,
    /// The sealed PGP/MIME message.
    pub payload: Vec<u8>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (ms since the Unix epoch).
    pub next_attempt: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued (ms since the Unix epoch).
    pub queued_at: i64,
}

/// How many outbox entries are in each state (for `mailnode status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Entries still being tried on their schedule.
    pub waiting: u64,
    /// Entries a mailbox peer of the recipient committed, not yet
    /// confirmed read by the recipient.
    pub deposited: u64,
}

pub use messages::Instance;
pub use outbox::{DEPOSIT_RETENTION_MS, DEPOSITED_KEYWORD};
pub use schema::OUTBOX_MAILBOX;
pub use sync::{MailboxChange, SyncOp, Version};

/// Outcome of [`Store::file_incoming`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// Filed under this UID.
    Filed {
        /// UID in the target mailbox.
        uid: u32,
    },
    /// This delivery was filed before; nothing was stored.
    Duplicate,
}

/// Handle to the mail store. Cloning is cheap; all clones share the writer
/// thread, the reader pool and the change broadcast.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<Message>,
    readers: Readers,
    crypto: Arc<Crypto>,
    events: broadcast::Sender<MailboxChanged>,
    /// The mailbox indexes, shared with the writer (see `index`).
    indexes: Arc<Indexes>,
    /// The SORT and THREAD fields read so far (see `sort_cache`).
    sort_fields: Arc<SortCache>,
    /// Next `blobs` row id. Reserved before sealing (the id is in the
    /// associated data) so sealing can run outside the writer thread.
    next_blob: AtomicI64,
    /// The `\Recent` claims of the sessions (see `recent`).
    claims: Arc<Claims>,
    /// This device's PeerId while the identity has siblings: user changes
    /// are then journalled for them (`sync`).
    sync_device: std::sync::RwLock<Option<Arc<str>>>,
    /// Notified after a commit that may have journalled something.
    sync_wakeup: Arc<tokio::sync::Notify>,
    closed: AtomicBool,
}

impl Store {
    /// Opens (creating and migrating as needed) the store at `path` with
    /// the 32-byte store key, and starts its writer thread. Fails with
    /// `Cannot` if the database was made with another key.
    pub fn open(path: &Path, key: &[u8; 32]) -> Result<Store, StoreError> {
        Store::open_with(path, key, &StoreOptions::default())
    }

    /// Like [`Store::open`], with `options`.
    pub fn open_with(
        path: &Path,
        key: &[u8; 32],
        options: &StoreOptions,
    ) -> Result<Store, StoreError> {
        let crypto = Arc::new(Crypto::new(key));
        let conn = schema::open_writer(path, &crypto)?;
        let next_blob = schema::next_blob_id(&conn)?;
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let indexes = Arc::new(Indexes::default());
        writer::spawn(
            conn,
            Arc::clone(&crypto),
            receiver,
            events.clone(),
            Arc::clone(&indexes),
            options.vanished_keep.max(1),
        )?;
        Ok(Store {
            inner: Arc::new(Inner {
                commands,
                readers: Readers::new(path.to_path_buf()),
                crypto,
                events,
                indexes,
                sort_fields: Arc::default(),
                next_blob: AtomicI64::new(next_blob),
                claims: Arc::default(),
                sync_device: std::sync::RwLock::new(None),
                sync_wakeup: Arc::default(),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Checks the store file at `path` without opening it for writing:
    /// SQLite's integrity check, a known schema version, and that `key` is
    /// the key it was made with.
    pub fn verify_file(path: &Path, key: &[u8; 32]) -> Result<(), StoreError> {
        schema::verify(path, &Crypto::new(key))
    }

    /// Finishes the writes already queued, checkpoints the WAL into the
    /// database and stops the writer. Every later call fails with
    /// `Unavailable`.
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.readers.close();
        let (reply, done) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Message::Close(reply))
            .await
            .is_ok()
        {
            let _ = done.await;
        }
    }

    /// Files the Sent copy of a submission, a copy in `Outbox` (same blob)
    /// and one outbox entry per recipient, in one transaction. Returns the
    /// UID of the copy in Sent.
    pub async fn submit_outgoing(
        &self,
        sent_copy: Vec<u8>,
        items: Vec<OutboxItem>,
    ) -> Result<u32, StoreError> {
        let sealed = self.seal(sent_copy).await?;
        let items = items
            .into_iter()
            .map(|item| outbox::seal_item(&self.inner.crypto, item))
            .collect::<Result<Vec<_>, _>>()?;
        let now = now_ms();
        self.write_journalled(move |ctx, journal| {
            let uid = outbox::submit(ctx, &sealed, &items, now)?;
            sync::sent_copy(ctx, journal, uid)?;
            Ok(uid)
        })
        .await
    }

    /// Queues outbox entries without a Sent or Outbox copy (the node's
    /// own control messages), in one transaction.
    pub async fn queue_outgoing(&self, items: Vec<OutboxItem>) -> Result<(), StoreError> {
        let items = items
            .into_iter()
            .map(|item| outbox::seal_item(&self.inner.crypto, item))
            .collect::<Result<Vec<_>, _>>()?;
        let now = now_ms();
        self.write(move |ctx| outbox::queue(ctx, &items, now)).await
    }

    /// Up to `limit` waiting entries due at `now_ms`, earliest first, except
    /// the ids in `exclude` (already in flight). Deposited entries are never
    /// due.
    pub async fn due_outbox(
        &self,
        now_ms: i64,
        limit: usize,
        exclude: &[i64],
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let exclude = exclude.to_vec();
        self.read(move |conn, crypto| outbox::due(conn, crypto, now_ms, limit, &exclude))
            .await
    }

    /// The earliest `next_attempt` of a waiting entry; `None` if there is
    /// none.
    pub async fn next_outbox_due(&self) -> Result<Option<i64>, StoreError> {
        self.read(|conn, _| outbox::next_due(conn)).await
    }

    /// The recipient acknowledged: removes the entry (and the message's
    /// Outbox copy with its last entry).
    pub async fn outbox_delivered(&self, id: i64) -> Result<(), StoreError> {
        self.write(move |ctx| outbox::delivered(ctx, id)).await
    }

    /// An attempt failed: counts it, records why, and sets the next time.
    pub async fn outbox_retry(
        &self,
        id: i64,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let error = error.to_string();
        self.write(move |ctx| outbox::retry(ctx, id, next_attempt_ms, &error))
            .await
    }

    /// Delivery gave up: removes the entry (and the message's Outbox copy
    /// with its last entry) and files `bounce` in INBOX, in one transaction.
    pub async fn outbox_failed(&self, id: i64, bounce: Vec<u8>) -> Result<(), StoreError> {
        let sealed = self.seal(bounce).await?;
        self.write(move |ctx| outbox::failed(ctx, id, &sealed))
            .await
    }

    /// Makes every entry due at `now_ms`.
    pub async fn outbox_reschedule_all(&self, now_ms: i64) -> Result<(), StoreError> {
        self.write(move |ctx| outbox::reschedule_all(ctx, now_ms))
            .await
    }

    /// Makes every queued delivery to `peer` due now (it just came online).
    /// Returns how many there were.
    pub async fn outbox_reschedule_peer(
        &self,
        peer: &str,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let peer = peer.to_string();
        self.write(move |ctx| outbox::reschedule_peer(ctx, &peer, now_ms))
            .await
    }

    /// A mailbox peer of the recipient committed entry `id`: it is shown as
    /// deposited (`$Deposited` on its Outbox copy once every recipient's
    /// entry is), gets no more attempts, and stays until the recipient's
    /// receipt ([`Store::outbox_receipt`]) or [`DEPOSIT_RETENTION_MS`] after
    /// it was queued. `mailbox_peer` (its PeerId) is stored sealed. An
    /// entry that is gone already is not an error.
    pub async fn outbox_deposited(&self, id: i64, mailbox_peer: &str) -> Result<(), StoreError> {
        let mailbox_peer = mailbox_peer.to_string();
        self.write(move |ctx| outbox::deposited(ctx, id, &mailbox_peer))
            .await
    }

    /// The recipient's read-side acknowledgement: removes the entry with
    /// `delivery_id` whose recipient node is `peer_id` (waiting or
    /// deposited), with its Outbox copy if it was the last. Returns whether
    /// one was removed; a receipt from any other PeerId removes nothing.
    pub async fn outbox_receipt(
        &self,
        peer_id: &str,
        delivery_id: [u8; 16],
    ) -> Result<bool, StoreError> {
        let peer_id = peer_id.to_string();
        self.write(move |ctx| outbox::receipt(ctx, &peer_id, &delivery_id))
            .await
    }

    /// Drops deposited entries queued more than [`DEPOSIT_RETENTION_MS`]
    /// before `now_ms`, without bounces (each is logged). Only reads unless
    /// there is one to drop. Returns how many were dropped.
    pub async fn outbox_drop_expired_deposits(&self, now_ms: i64) -> Result<usize, StoreError> {
        if !self
            .read(move |conn, _| outbox::has_expired_deposits(conn, now_ms))
            .await?
        {
            return Ok(0);
        }
        self.write(move |ctx| outbox::drop_expired_deposits(ctx, now_ms))
            .await
    }

    /// Outbox entries per state.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.read(|conn, _| outbox::counts(conn)).await
    }

    /// Number of queued deliveries.
    pub async fn outbox_len(&self) -> Result<u64, StoreError> {
        self.read(|conn, _| outbox::len(conn)).await
    }

    /// Files a verified delivery from `peer` in `mailbox` (created if
    /// missing). Idempotent by (`peer`, `delivery_id`): a repeated delivery
    /// returns [`Incoming::Duplicate`] and stores nothing.
    pub async fn file_incoming(
        &self,
        peer: &str,
        delivery_id: [u8; 16],
        mailbox: &str,
        message: Vec<u8>,
    ) -> Result<Incoming, StoreError> {
        let tag = self.inner.crypto.delivery_tag(peer, &delivery_id);
        let sealed = self.seal(message).await?;
        let mailbox = mailbox.to_string();
        self.write(move |ctx| messages::file_incoming(ctx, tag, &mailbox, &sealed))
            .await
    }

    /// Files an imported message in `mailbox` (created if missing) with
    /// its original `flags` and INTERNALDATE, once: idempotent by
    /// (`source`, `id`) like [`Store::file_incoming`], so an interrupted
    /// import can run again without duplicates.
    pub async fn file_imported(
        &self,
        source: &str,
        id: [u8; 16],
        mailbox: &str,
        flags: Vec<String>,
        date: (i64, i32),
        message: Vec<u8>,
    ) -> Result<Incoming, StoreError> {
        let tag = self.inner.crypto.delivery_tag(source, &id);
        let sealed = self.seal(message).await?;
        let mailbox = mailbox.to_string();
        self.write(move |ctx| messages::file_once(ctx, tag, &mailbox, &flags, date, &sealed))
            .await
    }

    /// Runs `op` on the writer thread inside the next group commit and
    /// returns its result once the commit is durable.
    async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<T, StoreError> + Send + 'static,
    {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands
            .send(Message::Run(Box::new(Job::new(op, reply))))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Queues `op` for the writer's next group commit without waiting for
    /// it: for writes nobody must wait on and whose loss in a crash is
    /// harmless (`recent`). Dropped, with a note in the log, if the queue
    /// is full.
    fn write_detached<F>(&self, op: F)
    where
        F: FnOnce(&mut WriteCtx) -> Result<(), StoreError> + Send + 'static,
    {
        // Nobody listens for the reply.
        let (reply, _) = oneshot::channel();
        let job = Message::Run(Box::new(Job::new(op, reply)));
        if self.inner.commands.try_send(job).is_err() {
            tracing::debug!("the store's queue is full; a background write was skipped");
        }
    }

    /// Runs `op` on a pooled read connection in the blocking pool.
    async fn read<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Crypto) -> Result<T, StoreError> + Send + 'static,
    {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.readers.with(|conn| op(conn, &inner.crypto)))
            .await
            .map_err(|err| StoreError::Internal(format!("a store read failed: {err}")))?
    }

    /// FETCH of one message, the round trip of a client reading mail one
    /// message at a time: the lookup runs on the calling task, and the
    /// decryption too unless the message is large. The hop to the blocking
    /// pool and back, two thread switches, costs more than one indexed
    /// lookup (docs/benchmarks.md, issue 10).
    async fn fetch_one(
        &self,
        mailbox: &str,
        uid: Uid,
        content: Content,
    ) -> Result<Vec<read::Fetched>, StoreError> {
        let rows =
            (self.inner.readers).with(|conn| read::sealed(conn, mailbox, &[uid], content))?;
        if read::sealed_len(&rows) <= OPEN_HERE_MAX {
            return read::open(&self.inner.crypto, rows);
        }
        let crypto = Arc::clone(&self.inner.crypto);
        tokio::task::spawn_blocking(move || read::open(&crypto, rows))
            .await
            .map_err(|err| StoreError::Internal(format!("a store read failed: {err}")))?
    }

    /// Runs `op` like [`Store::read`], with the mailbox indexes and the
    /// versions installed before its transaction began (see `index`).
    async fn read_indexed<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Indexes, &Seen) -> Result<T, StoreError> + Send + 'static,
    {
        // Taken here, before the read transaction starts on the blocking
        // thread: every version in it is of a state that transaction sees.
        let seen = self.inner.indexes.seen();
        let indexes = Arc::clone(&self.inner.indexes);
        self.read(move |conn, _| op(conn, &indexes, &seen)).await
    }

    /// Runs `op` like [`Store::read`] with the cache of sort fields.
    async fn read_sort_fields<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Crypto, &SortCache) -> Result<T, StoreError> + Send + 'static,
    {
        let cache = Arc::clone(&self.inner.sort_fields);
        self.read(move |conn, crypto| op(conn, crypto, &cache))
            .await
    }

    /// Seals a message under a freshly reserved blob id.
    async fn seal(&self, message: Vec<u8>) -> Result<Sealed, StoreError> {
        let blob_id = self.inner.next_blob.fetch_add(1, Ordering::Relaxed);
        if message.len() <= SEAL_INLINE_MAX {
            return messages::seal(&self.inner.crypto, blob_id, &message);
        }
        let crypto = Arc::clone(&self.inner.crypto);
        tokio::task::spawn_blocking(move || messages::seal(&crypto, blob_id, &message))
            .await
            .map_err(|err| StoreError::Internal(format!("sealing a message failed: {err}")))?
    }
}

/// The error every call gets after [`Store::close`].
fn closed() -> StoreError {
    StoreError::Unavailable("the mail store is closed".into())
}

/// Runs a statement that returns no rows from the connection's statement
/// cache: the readers' transactions and the writer's per-command
/// savepoints would otherwise be parsed again every time (issue 7's and
/// issue 10's profiles).
fn run_cached(conn: &rusqlite::Connection, statement: &str) -> Result<(), StoreError> {
    conn.prepare_cached(statement)
        .and_then(|mut stmt| stmt.execute([]))
        .map(drop)
        .map_err(sql)
}

/// Maps SQLite errors: contention and a full disk are temporary, anything
/// else is a storage failure.
fn sql(err: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(format!("the mail store is busy: {err}"))
        }
        Some(ErrorCode::DiskFull) => {
            StoreError::Unavailable(format!("the disk is full; free some space: {err}"))
        }
        _ => StoreError::Internal(format!("mail store: {err}")),
    }
}

/// The stored spelling of a mailbox name: `INBOX` in any case is `INBOX`
/// (RFC 3501 §5.1); other names are case-sensitive.
fn canonical(name: &str) -> Cow<'_, str> {
    if name.eq_ignore_ascii_case("INBOX") {
        Cow::Borrowed("INBOX")
    } else {
        Cow::Borrowed(name)
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Seconds since the Unix epoch.
fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// INTERNALDATE for "now": seconds since the epoch and the local zone
/// offset in minutes.
fn now_date() -> (i64, i32) {
    let now = chrono::Local::now();
    (now.timestamp(), now.offset().local_minus_utc() / 60)
}
