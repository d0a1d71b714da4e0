//! The writer thread: the only owner of the write connection.
//!
//! Commands arrive on a bounded channel, each with a oneshot for its reply.
//! The thread takes every command already waiting (up to [`MAX_BATCH`]),
//! runs each inside its own SAVEPOINT of one transaction, COMMITs once and
//! only then replies to all of them (group commit): one `fsync` of the WAL
//! covers the whole batch, and no caller hears "done" before its change is
//! durable. A failing command rolls back only its savepoint and gets its own
//! error; the others commit.
//!
//! After a commit, the writer brings the loaded indexes of the mailboxes
//! the batch changed up to date (`index`), then announces those mailboxes
//! on the change broadcast (IMAP IDLE and NOOP learn of new mail from it).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use imap_bridge::backend::{MailboxChanged, ModSeq, StoreError};
use rusqlite::{Connection, params};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::crypto::Crypto;
use super::index::Indexes;
use super::schema::meta_int;
use super::{run_cached, sql};

/// Most commands one transaction takes.
pub(super) const MAX_BATCH: usize = 256;

/// Counters the writer keeps in memory and writes back before each COMMIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counters {
    /// The last MODSEQ handed out (one global sequence, RFC 7162 §3.1.1
    /// only asks for per-mailbox monotonicity; global is simpler and
    /// stronger).
    pub modseq: i64,
    /// The last UIDVALIDITY handed out.
    pub last_uidvalidity: i64,
}

impl Counters {
    fn load(conn: &Connection) -> Result<Counters, StoreError> {
        Ok(Counters {
            modseq: meta_int(conn, "modseq")?,
            last_uidvalidity: meta_int(conn, "last_uidvalidity")?,
        })
    }

    fn save(&self, conn: &Connection) -> Result<(), StoreError> {
        let mut stmt = conn
            .prepare_cached("UPDATE meta SET value = ?2 WHERE key = ?1")
            .map_err(sql)?;
        stmt.execute(params!["modseq", self.modseq]).map_err(sql)?;
        stmt.execute(params!["last_uidvalidity", self.last_uidvalidity])
            .map_err(sql)?;
        Ok(())
    }
}

/// What a command sees while it runs: the connection inside the open
/// transaction, the counters, and the list of mailboxes it changed.
pub(super) struct WriteCtx {
    pub conn: Connection,
    pub crypto: Arc<Crypto>,
    /// Expunged UIDs kept per mailbox for QRESYNC (`messages::prune_vanished`).
    pub vanished_keep: usize,
    /// Per mailbox id, an upper bound of its `vanished` rows, known since
    /// this writer last counted them (`messages::prune_vanished`). Only this
    /// writer adds rows; anything rolled back forgets every bound.
    pub vanished_bound: HashMap<i64, usize>,
    counters: Counters,
    changed: Vec<MailboxChanged>,
}

impl WriteCtx {
    /// A new MODSEQ, larger than every one before.
    pub fn next_modseq(&mut self) -> i64 {
        self.counters.modseq += 1;
        self.counters.modseq
    }

    /// A new UIDVALIDITY: the current time in seconds, but always larger
    /// than the last one handed out, so that a re-created mailbox never gets
    /// a value a client may have cached (RFC 3501 §2.3.1.1).
    pub fn next_uidvalidity(&mut self) -> Result<u32, StoreError> {
        let next = super::now_secs()
            .max(self.counters.last_uidvalidity + 1)
            .max(1);
        let value = u32::try_from(next)
            .map_err(|_| StoreError::Internal("UIDVALIDITY space exhausted".into()))?;
        self.counters.last_uidvalidity = next;
        Ok(value)
    }

    /// Records that `mailbox` changed; announced after the commit.
    pub fn notify(&mut self, mailbox: &str, highest_modseq: i64) {
        self.changed.push(MailboxChanged {
            mailbox: mailbox.to_string(),
            highest_modseq: highest_modseq as ModSeq,
        });
    }
}

/// One queued write.
pub(super) trait Command: Send {
    /// Runs inside the transaction; keeps its own result.
    fn run(&mut self, ctx: &mut WriteCtx);
    /// Whether `run` failed (its savepoint is then rolled back).
    fn failed(&self) -> bool;
    /// Replies, after the COMMIT (`commit` is its outcome).
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

/// A closure and the oneshot its result goes to.
pub(super) struct Job<T, F> {
    op: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut WriteCtx) -> Result<T, StoreError> + Send + 'static,
{
    pub fn new(op: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Job<T, F> {
        Job {
            op: Some(op),
            result: None,
            reply,
        }
    }
}

impl<T, F> Command for Job<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut WriteCtx) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, ctx: &mut WriteCtx) {
        if let Some(op) = self.op.take() {
            // A bug in one command must not take the writer thread (and with
            // it the whole store) down: it fails alone and is rolled back.
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| op(ctx)));
            self.result = Some(outcome.unwrap_or_else(|_| {
                tracing::error!("a store command panicked; it was rolled back");
                Err(StoreError::Internal(
                    "a store command failed unexpectedly".into(),
                ))
            }));
        }
    }

    fn failed(&self) -> bool {
        !matches!(self.result, Some(Ok(_)))
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let result = match (commit, self.result) {
            (Err(err), _) => Err(err),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Internal("a store command did not run".into())),
        };
        // The caller may have gone away (cancelled); its change stands.
        let _ = self.reply.send(result);
    }
}

/// What the channel carries.
pub(super) enum Message {
    /// A write to run.
    Run(Box<dyn Command>),
    /// Stop after the commands before this one; reply when the database is
    /// checkpointed and closed.
    Close(oneshot::Sender<()>),
}

/// Starts the writer thread over an opened, migrated connection.
pub(super) fn spawn(
    conn: Connection,
    crypto: Arc<Crypto>,
    commands: mpsc::Receiver<Message>,
    events: broadcast::Sender<MailboxChanged>,
    indexes: Arc<Indexes>,
    vanished_keep: usize,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    let counters = Counters::load(&conn)?;
    let ctx = WriteCtx {
        conn,
        crypto,
        vanished_keep,
        vanished_bound: HashMap::new(),
        counters,
        changed: Vec::new(),
    };
    std::thread::Builder::new()
        .name("mailnode-store".into())
        .spawn(move || run(ctx, commands, events, &indexes))
        .map_err(|err| StoreError::Internal(format!("cannot start the store writer: {err}")))
}

fn run(
    mut ctx: WriteCtx,
    mut commands: mpsc::Receiver<Message>,
    events: broadcast::Sender<MailboxChanged>,
    indexes: &Indexes,
) {
    let mut batch: Vec<Box<dyn Command>> = Vec::with_capacity(MAX_BATCH);
    let mut close: Option<oneshot::Sender<()>> = None;
    while close.is_none() {
        match commands.blocking_recv() {
            Some(Message::Run(command)) => batch.push(command),
            Some(Message::Close(reply)) => close = Some(reply),
            None => break,
        }
        while close.is_none() && batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(Message::Run(command)) => batch.push(command),
                Ok(Message::Close(reply)) => close = Some(reply),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            execute(&mut ctx, &mut batch, &events, indexes);
        }
    }
    // Commands queued behind a Close are dropped with the receiver: their
    // callers see the store as unavailable.
    drop(commands);
    // Fold the WAL back into the database so the closed store is one file.
    if let Err(err) = ctx.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!("cannot checkpoint the mail store at close: {err}");
    }
    if let Err((_, err)) = ctx.conn.close() {
        tracing::warn!("cannot close the mail store cleanly: {err}");
    }
    if let Some(reply) = close {
        let _ = reply.send(());
    }
}

/// Runs one batch in one transaction and replies to every command.
fn execute(
    ctx: &mut WriteCtx,
    batch: &mut Vec<Box<dyn Command>>,
    events: &broadcast::Sender<MailboxChanged>,
    indexes: &Indexes,
) {
    let before = ctx.counters;
    ctx.changed.clear();
    let outcome = run_batch(ctx, batch);
    let commit = match outcome {
        Ok(()) => Ok(()),
        Err(err) => {
            tracing::error!("mail store transaction failed: {err}");
            let _ = ctx.conn.execute_batch("ROLLBACK");
            ctx.vanished_bound.clear();
            // Nothing of the batch is on disk: the counters go back too.
            ctx.counters = match Counters::load(&ctx.conn) {
                Ok(counters) => counters,
                Err(_) => before,
            };
            ctx.changed.clear();
            Err(err)
        }
    };
    if commit.is_ok() {
        let changed = merge(&mut ctx.changed);
        // Indexes first, so the sessions the announcement wakes find them
        // current; only committed state gets into an index.
        let names: Vec<String> = changed.iter().map(|c| c.mailbox.clone()).collect();
        indexes.refresh(&ctx.conn, &names);
        for change in changed {
            // No receivers is normal (no IMAP session open).
            let _ = events.send(change);
        }
    }
    for command in batch.drain(..) {
        command.finish(commit.clone());
    }
}

fn run_batch(ctx: &mut WriteCtx, batch: &mut [Box<dyn Command>]) -> Result<(), StoreError> {
    let persisted = ctx.counters;
    run_cached(&ctx.conn, "BEGIN IMMEDIATE")?;
    for command in batch.iter_mut() {
        let saved = ctx.counters;
        let mark = ctx.changed.len();
        run_cached(&ctx.conn, "SAVEPOINT cmd")?;
        command.run(ctx);
        if command.failed() {
            run_cached(&ctx.conn, "ROLLBACK TO cmd")?;
            run_cached(&ctx.conn, "RELEASE cmd")?;
            ctx.counters = saved;
            ctx.changed.truncate(mark);
            ctx.vanished_bound.clear();
        } else {
            run_cached(&ctx.conn, "RELEASE cmd")?;
        }
    }
    if ctx.counters != persisted {
        ctx.counters.save(&ctx.conn)?;
    }
    run_cached(&ctx.conn, "COMMIT")
}

/// One notification per changed mailbox (its last MODSEQ).
fn merge(changed: &mut Vec<MailboxChanged>) -> Vec<MailboxChanged> {
    let mut seen: Vec<MailboxChanged> = Vec::new();
    for change in changed.drain(..) {
        match seen.iter_mut().find(|c| c.mailbox == change.mailbox) {
            Some(existing) => {
                existing.highest_modseq = existing.highest_modseq.max(change.highest_modseq)
            }
            None => seen.push(change),
        }
    }
    seen
}
