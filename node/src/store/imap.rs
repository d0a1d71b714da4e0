//! The bridge's view of the store: `impl MailStore for Store`.
//!
//! Each method forwards to a writer command (`mailboxes`, `messages`) or a
//! read query (`read`). Nothing here touches SQL; the IMAP semantics live in
//! those modules, with the RFC sections they follow.
//!
//! This is also where clients are kept from changing `Outbox`, which
//! mailnode maintains from the outbox table: APPEND, COPY or MOVE into it,
//! MOVE or EXPUNGE out of it, DELETE and RENAME of it are refused with
//! `NO [CANNOT]`; flags may change. The node's own writers (`outbox`) do
//! not pass through here and are not guarded.

use std::sync::Arc;

use imap_bridge::backend::{
    Changes, Content, CopyResult, Flag, FlagOp, MailStore, MailboxChanged, MailboxInfo,
    MailboxSnapshot, ModSeq, Recent, SortFieldMap, StoreResult, StoreResultT, Uid,
};
use tokio::sync::broadcast;

use super::{MailboxChange, Store, StoreError, mailboxes, messages, now_date, read, recent, sync};

/// Why a client cannot change `Outbox`.
const OUTBOX_READ_ONLY: &str =
    "Outbox lists mail that is still being delivered; mailnode maintains it, it cannot be changed";

/// Refuses a client change that involves `Outbox`.
fn refuse_outbox(names: &[&str]) -> Result<(), StoreError> {
    if names.iter().any(|name| mailboxes::is_outbox(name)) {
        return Err(StoreError::Cannot(OUTBOX_READ_ONLY.into()));
    }
    Ok(())
}

impl MailStore for Store {
    async fn list_mailboxes(&self) -> StoreResultT<Vec<MailboxInfo>> {
        self.read(|conn, _| read::list(conn)).await
    }

    async fn create_mailbox(&self, name: &str) -> StoreResultT<()> {
        let change = MailboxChange::Create {
            name: name.to_string(),
        };
        self.write_journalled(move |ctx, journal| sync::change_mailbox(ctx, journal, change))
            .await
    }

    async fn delete_mailbox(&self, name: &str) -> StoreResultT<()> {
        refuse_outbox(&[name])?;
        let change = MailboxChange::Delete {
            name: name.to_string(),
        };
        self.write_journalled(move |ctx, journal| sync::change_mailbox(ctx, journal, change))
            .await
    }

    async fn rename_mailbox(&self, from: &str, to: &str) -> StoreResultT<()> {
        refuse_outbox(&[from])?;
        let change = MailboxChange::Rename {
            from: from.to_string(),
            to: to.to_string(),
        };
        self.write_journalled(move |ctx, journal| sync::change_mailbox(ctx, journal, change))
            .await
    }

    async fn set_subscribed(&self, name: &str, subscribed: bool) -> StoreResultT<()> {
        let name = name.to_string();
        self.write(move |ctx| mailboxes::subscribe(&ctx.conn, &name, subscribed))
            .await
    }

    async fn subscriptions(&self) -> StoreResultT<Vec<String>> {
        self.read(|conn, _| read::subscriptions(conn)).await
    }

    async fn snapshot(&self, mailbox: &str) -> StoreResultT<MailboxSnapshot> {
        let mailbox = mailbox.to_string();
        self.read_indexed(move |conn, indexes, seen| read::snapshot(conn, indexes, seen, &mailbox))
            .await
    }

    async fn recent(&self, mailbox: &str, below: Uid, claim: bool) -> StoreResultT<Recent> {
        let name = mailbox.to_string();
        let claims = Arc::clone(&self.inner.claims);
        let (recent, taken) = self
            .read(move |conn, _| {
                let found = mailboxes::require(conn, &name)?;
                let taken = claims.take(&found, below, claim);
                let unclaimed = recent::unclaimed(conn, found.id, taken.watermark)?;
                let recent = Recent {
                    first: taken.first,
                    unclaimed,
                };
                Ok((recent, taken.moved.then_some((found.id, taken.watermark))))
            })
            .await?;
        if let Some((id, watermark)) = taken {
            self.write_detached(move |ctx| recent::persist(ctx, id, watermark));
        }
        Ok(recent)
    }

    async fn changes_since(&self, mailbox: &str, since: ModSeq) -> StoreResultT<Changes> {
        let mailbox = mailbox.to_string();
        self.read_indexed(move |conn, indexes, seen| {
            read::changes_since(conn, indexes, seen, &mailbox, since)
        })
        .await
    }

    async fn fetch(
        &self,
        mailbox: &str,
        uids: &[Uid],
        content: Content,
    ) -> StoreResultT<Vec<(Uid, Arc<[u8]>)>> {
        if let [uid] = uids {
            return self.fetch_one(mailbox, *uid, content).await;
        }
        let mailbox = mailbox.to_string();
        let uids = uids.to_vec();
        self.read(move |conn, crypto| read::fetch(conn, crypto, &mailbox, &uids, content))
            .await
    }

    async fn sort_fields(&self, mailbox: &str, uids: &[Uid]) -> StoreResultT<Arc<SortFieldMap>> {
        let mailbox = mailbox.to_string();
        let uids = uids.to_vec();
        self.read_sort_fields(move |conn, crypto, cache| {
            cache.fields(conn, crypto, &mailbox, &uids)
        })
        .await
    }

    async fn store_flags(
        &self,
        mailbox: &str,
        uids: &[Uid],
        op: FlagOp,
        flags: &[Flag],
        unchanged_since: Option<ModSeq>,
    ) -> StoreResultT<StoreResult> {
        let mailbox = mailbox.to_string();
        let uids = uids.to_vec();
        let flags = flags.to_vec();
        self.write_journalled(move |ctx, journal| {
            sync::store_flags(ctx, journal, &mailbox, &uids, op, &flags, unchanged_since)
        })
        .await
    }

    async fn expunge(&self, mailbox: &str, only: Option<&[Uid]>) -> StoreResultT<Vec<Uid>> {
        let mailbox = mailbox.to_string();
        let only = only.map(<[Uid]>::to_vec);
        self.write_journalled(move |ctx, journal| {
            // An EXPUNGE (or CLOSE) that would remove nothing stays harmless,
            // so clients that CLOSE every folder keep working.
            if mailboxes::is_outbox(&mailbox)
                && let Some(outbox) = mailboxes::find(&ctx.conn, &mailbox)?
                && messages::has_deleted(&ctx.conn, outbox.id, only.as_deref())?
            {
                return Err(StoreError::Cannot(OUTBOX_READ_ONLY.into()));
            }
            sync::expunge(ctx, journal, &mailbox, only.as_deref())
        })
        .await
    }

    async fn append(
        &self,
        mailbox: &str,
        flags: &[Flag],
        internal_date: Option<(i64, i32)>,
        message: Vec<u8>,
    ) -> StoreResultT<CopyResult> {
        refuse_outbox(&[mailbox])?;
        let mailbox = mailbox.to_string();
        let flags = flags.to_vec();
        let date = internal_date.unwrap_or_else(now_date);
        let sealed = self.seal(message).await?;
        self.write_journalled(move |ctx, journal| {
            sync::append(ctx, journal, &mailbox, &flags, date, &sealed)
        })
        .await
    }

    async fn copy(&self, from: &str, uids: &[Uid], to: &str) -> StoreResultT<CopyResult> {
        refuse_outbox(&[to])?;
        let (from, to) = (from.to_string(), to.to_string());
        let uids = uids.to_vec();
        self.write_journalled(move |ctx, journal| sync::copy(ctx, journal, &from, &uids, &to))
            .await
    }

    async fn move_messages(&self, from: &str, uids: &[Uid], to: &str) -> StoreResultT<CopyResult> {
        refuse_outbox(&[from, to])?;
        let (from, to) = (from.to_string(), to.to_string());
        let uids = uids.to_vec();
        self.write_journalled(move |ctx, journal| {
            sync::move_messages(ctx, journal, &from, &uids, &to)
        })
        .await
    }

    fn watch(&self) -> broadcast::Receiver<MailboxChanged> {
        self.inner.events.subscribe()
    }
}
