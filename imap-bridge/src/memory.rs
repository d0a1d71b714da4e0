//! An in-memory [`MailStore`] for tests of the bridge.
//!
//! It keeps every rule the trait documents (UIDVALIDITY never reused, UIDs
//! and MODSEQs only grow, expunged UIDs remembered for QRESYNC, a change
//! notification after every change) so the IMAP server can be tested alone.
//! It is not used by the node, which has the encrypted SQLite store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use crate::backend::{
    Changes, Content, CopyResult, Flag, FlagOp, MailStore, MailboxChanged, MailboxInfo,
    MailboxSnapshot, MessageMeta, ModSeq, Recent, SpecialUse, StoreError, StoreResult,
    StoreResultT, Uid, normalize_flag,
};
use crate::index::MessageIndex;

#[derive(Debug, Clone)]
struct Message {
    meta: MessageMeta,
    content: Arc<[u8]>,
}

#[derive(Debug, Clone)]
struct Mailbox {
    special_use: Option<SpecialUse>,
    uid_validity: u32,
    uid_next: Uid,
    highest_modseq: ModSeq,
    messages: BTreeMap<Uid, Message>,
    /// Expunged UIDs with the MODSEQ of their expunge.
    vanished: Vec<(Uid, ModSeq)>,
    /// The first UID no session has claimed as `\Recent`.
    recent_from: Uid,
}

impl Mailbox {
    fn new(uid_validity: u32, special_use: Option<SpecialUse>) -> Self {
        Mailbox {
            special_use,
            uid_validity,
            uid_next: 1,
            highest_modseq: 1,
            messages: BTreeMap::new(),
            vanished: Vec::new(),
            recent_from: 1,
        }
    }

    /// The message index, built afresh: this store is for tests, where
    /// mailboxes are small (the node's store keeps its index current).
    fn index(&self) -> Arc<MessageIndex> {
        Arc::new(MessageIndex::from_messages(
            self.messages.values().map(|m| m.meta.clone()),
            self.uid_next,
            self.highest_modseq,
        ))
    }

    fn next_modseq(&mut self) -> ModSeq {
        self.highest_modseq += 1;
        self.highest_modseq
    }

    fn insert(&mut self, flags: Vec<Flag>, date: (i64, i32), content: Arc<[u8]>) -> Uid {
        let uid = self.uid_next;
        self.uid_next += 1;
        let modseq = self.next_modseq();
        let meta = MessageMeta {
            uid,
            modseq,
            flags,
            size: u32::try_from(content.len()).unwrap_or(u32::MAX),
            internal_date: date.0,
            internal_date_offset_minutes: date.1,
        };
        self.messages.insert(uid, Message { meta, content });
        uid
    }

    fn remove(&mut self, uids: &[Uid]) -> Vec<Uid> {
        let mut removed: Vec<Uid> = uids
            .iter()
            .copied()
            .filter(|uid| self.messages.contains_key(uid))
            .collect();
        removed.sort_unstable();
        removed.dedup();
        if removed.is_empty() {
            return removed;
        }
        let modseq = self.next_modseq();
        for uid in &removed {
            self.messages.remove(uid);
            self.vanished.push((*uid, modseq));
        }
        removed
    }
}

#[derive(Debug)]
struct Inner {
    mailboxes: BTreeMap<String, Mailbox>,
    subscriptions: BTreeSet<String>,
    next_uid_validity: u32,
}

impl Inner {
    fn mailbox(&self, name: &str) -> StoreResultT<&Mailbox> {
        self.mailboxes
            .get(&canonical(name))
            .ok_or_else(|| StoreError::NoSuchMailbox(name.to_string()))
    }

    fn mailbox_mut(&mut self, name: &str) -> StoreResultT<&mut Mailbox> {
        self.mailboxes
            .get_mut(&canonical(name))
            .ok_or_else(|| StoreError::NoSuchMailbox(name.to_string()))
    }

    fn new_uid_validity(&mut self) -> u32 {
        let value = self.next_uid_validity;
        self.next_uid_validity += 1;
        value
    }
}

/// An in-memory mail store. Clones share the same mailboxes.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    changes: broadcast::Sender<MailboxChanged>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// `INBOX` in any case is INBOX (RFC 3501 §5.1); other names are kept.
fn canonical(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_string()
    } else {
        name.to_string()
    }
}

fn normalize_flags(flags: &[Flag]) -> Vec<Flag> {
    let mut out: Vec<Flag> = flags
        .iter()
        .map(|flag| normalize_flag(flag))
        .filter(|flag| !flag.eq_ignore_ascii_case("\\Recent"))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The header of a message: up to and including the blank line.
fn header_of(content: &[u8]) -> &[u8] {
    let mut line_start = 0;
    for (index, byte) in content.iter().enumerate() {
        if *byte == b'\n' {
            let line = &content[line_start..index];
            if line.is_empty() || line == b"\r" {
                return &content[..=index];
            }
            line_start = index + 1;
        }
    }
    content
}

impl MemoryStore {
    /// A store with INBOX, Sent, Drafts, Trash, Junk, Archive and Requests,
    /// all subscribed.
    pub fn new() -> Self {
        let mut inner = Inner {
            mailboxes: BTreeMap::new(),
            subscriptions: BTreeSet::new(),
            next_uid_validity: 1,
        };
        for (name, special_use) in crate::backend::DEFAULT_MAILBOXES {
            let uid_validity = inner.new_uid_validity();
            inner
                .mailboxes
                .insert(name.to_string(), Mailbox::new(uid_validity, special_use));
            inner.subscriptions.insert(name.to_string());
        }
        let (changes, _) = broadcast::channel(256);
        MemoryStore {
            inner: Arc::new(Mutex::new(inner)),
            changes,
        }
    }

    /// Files a message as the node would on delivery (flags empty, date now).
    pub fn deliver(&self, mailbox: &str, message: &[u8]) -> StoreResultT<Uid> {
        let now = chrono::Utc::now().timestamp();
        let (uid, modseq) = {
            let mut inner = self.lock()?;
            let mailbox = inner.mailbox_mut(mailbox)?;
            let uid = mailbox.insert(Vec::new(), (now, 0), Arc::from(message));
            (uid, mailbox.highest_modseq)
        };
        self.notify(mailbox, modseq);
        Ok(uid)
    }

    fn lock(&self) -> StoreResultT<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Internal("memory store lock poisoned".into()))
    }

    fn notify(&self, mailbox: &str, highest_modseq: ModSeq) {
        // No receivers is fine: nobody is watching.
        let _ = self.changes.send(MailboxChanged {
            mailbox: canonical(mailbox),
            highest_modseq,
        });
    }

    fn info(name: &str, mailbox: &Mailbox, subscribed: bool) -> MailboxInfo {
        MailboxInfo {
            name: name.to_string(),
            special_use: mailbox.special_use,
            subscribed,
            uid_validity: mailbox.uid_validity,
            uid_next: mailbox.uid_next,
            highest_modseq: mailbox.highest_modseq,
            messages: u32::try_from(mailbox.messages.len()).unwrap_or(u32::MAX),
            unseen: u32::try_from(
                mailbox
                    .messages
                    .values()
                    .filter(|m| !m.meta.flags.iter().any(|f| f == "\\Seen"))
                    .count(),
            )
            .unwrap_or(u32::MAX),
            size: mailbox
                .messages
                .values()
                .map(|m| u64::from(m.meta.size))
                .sum(),
        }
    }

    /// Copies (and for MOVE removes) messages; returns the mapping and the
    /// MODSEQs to announce.
    fn transfer(
        &self,
        from: &str,
        uids: &[Uid],
        to: &str,
        remove: bool,
    ) -> StoreResultT<CopyResult> {
        let (result, notes) = {
            let mut inner = self.lock()?;
            let source = inner.mailbox(from)?;
            let mut picked: Vec<Message> = uids
                .iter()
                .filter_map(|uid| source.messages.get(uid).cloned())
                .collect();
            picked.sort_by_key(|m| m.meta.uid);
            picked.dedup_by_key(|m| m.meta.uid);
            let target = inner.mailbox_mut(to)?;
            let mut mapping = Vec::with_capacity(picked.len());
            for message in &picked {
                let date = (
                    message.meta.internal_date,
                    message.meta.internal_date_offset_minutes,
                );
                let new_uid =
                    target.insert(message.meta.flags.clone(), date, message.content.clone());
                mapping.push((message.meta.uid, new_uid));
            }
            let result = CopyResult {
                uid_validity: target.uid_validity,
                mapping,
            };
            let mut notes = vec![(to.to_string(), target.highest_modseq)];
            if remove {
                let source = inner.mailbox_mut(from)?;
                let moved: Vec<Uid> = picked.iter().map(|m| m.meta.uid).collect();
                source.remove(&moved);
                notes.push((from.to_string(), source.highest_modseq));
            }
            (result, notes)
        };
        if !result.mapping.is_empty() {
            for (name, modseq) in notes {
                self.notify(&name, modseq);
            }
        }
        Ok(result)
    }
}

impl MailStore for MemoryStore {
    async fn list_mailboxes(&self) -> StoreResultT<Vec<MailboxInfo>> {
        let inner = self.lock()?;
        Ok(inner
            .mailboxes
            .iter()
            .map(|(name, mailbox)| Self::info(name, mailbox, inner.subscriptions.contains(name)))
            .collect())
    }

    async fn create_mailbox(&self, name: &str) -> StoreResultT<()> {
        let name = canonical(name.trim_end_matches('/'));
        if name.is_empty() || name.split('/').any(str::is_empty) {
            return Err(StoreError::Cannot(format!(
                "invalid mailbox name: {name:?}"
            )));
        }
        let mut inner = self.lock()?;
        if inner.mailboxes.contains_key(&name) {
            return Err(StoreError::AlreadyExists(name));
        }
        // RFC 3501 §6.3.3: create missing superior names too.
        let parts: Vec<&str> = name.split('/').collect();
        for end in 1..=parts.len() {
            let path = canonical(&parts[..end].join("/"));
            if !inner.mailboxes.contains_key(&path) {
                let uid_validity = inner.new_uid_validity();
                inner
                    .mailboxes
                    .insert(path, Mailbox::new(uid_validity, None));
            }
        }
        Ok(())
    }

    async fn delete_mailbox(&self, name: &str) -> StoreResultT<()> {
        let name = canonical(name);
        if name == "INBOX" {
            return Err(StoreError::Cannot("INBOX cannot be deleted".into()));
        }
        let modseq = {
            let mut inner = self.lock()?;
            let mailbox = inner
                .mailboxes
                .remove(&name)
                .ok_or_else(|| StoreError::NoSuchMailbox(name.clone()))?;
            mailbox.highest_modseq + 1
        };
        self.notify(&name, modseq);
        Ok(())
    }

    async fn rename_mailbox(&self, from: &str, to: &str) -> StoreResultT<()> {
        let from = canonical(from);
        let to = canonical(to);
        {
            let mut inner = self.lock()?;
            if !inner.mailboxes.contains_key(&from) {
                return Err(StoreError::NoSuchMailbox(from));
            }
            if inner.mailboxes.contains_key(&to) {
                return Err(StoreError::AlreadyExists(to));
            }
            if to.starts_with(&format!("{from}/")) {
                return Err(StoreError::Cannot(
                    "cannot rename a mailbox into itself".into(),
                ));
            }
            if from == "INBOX" {
                // RFC 3501 §6.3.5: INBOX's messages move, INBOX stays, empty.
                let uid_validity = inner.new_uid_validity();
                let old = inner
                    .mailboxes
                    .insert(from.clone(), Mailbox::new(uid_validity, None))
                    .ok_or_else(|| StoreError::NoSuchMailbox(from.clone()))?;
                inner.mailboxes.insert(to.clone(), old);
            } else {
                let prefix = format!("{from}/");
                let names: Vec<String> = inner
                    .mailboxes
                    .keys()
                    .filter(|name| **name == from || name.starts_with(&prefix))
                    .cloned()
                    .collect();
                for name in names {
                    if let Some(mailbox) = inner.mailboxes.remove(&name) {
                        let renamed = format!("{to}{}", &name[from.len()..]);
                        inner.mailboxes.insert(renamed, mailbox);
                    }
                }
            }
            // Superior names of the new name (RFC 3501 §6.3.5).
            let parts: Vec<&str> = to.split('/').collect();
            for end in 1..parts.len() {
                let path = canonical(&parts[..end].join("/"));
                if !inner.mailboxes.contains_key(&path) {
                    let uid_validity = inner.new_uid_validity();
                    inner
                        .mailboxes
                        .insert(path, Mailbox::new(uid_validity, None));
                }
            }
        }
        self.notify(&from, 0);
        Ok(())
    }

    async fn set_subscribed(&self, name: &str, subscribed: bool) -> StoreResultT<()> {
        let name = canonical(name);
        let mut inner = self.lock()?;
        if subscribed {
            inner.subscriptions.insert(name);
        } else {
            inner.subscriptions.remove(&name);
        }
        Ok(())
    }

    async fn subscriptions(&self) -> StoreResultT<Vec<String>> {
        Ok(self.lock()?.subscriptions.iter().cloned().collect())
    }

    async fn snapshot(&self, mailbox: &str) -> StoreResultT<MailboxSnapshot> {
        let inner = self.lock()?;
        let name = canonical(mailbox);
        let found = inner.mailbox(&name)?;
        Ok(MailboxSnapshot {
            info: Self::info(&name, found, inner.subscriptions.contains(&name)),
            index: found.index(),
        })
    }

    async fn recent(&self, mailbox: &str, below: Uid, claim: bool) -> StoreResultT<Recent> {
        let mut inner = self.lock()?;
        let found = inner.mailbox_mut(mailbox)?;
        let first = found.recent_from.min(below);
        if claim {
            found.recent_from = found.recent_from.max(below);
        }
        let from = found.recent_from;
        let unclaimed = found.messages.range(from..).count();
        Ok(Recent {
            first,
            unclaimed: u32::try_from(unclaimed).unwrap_or(u32::MAX),
        })
    }

    async fn changes_since(&self, mailbox: &str, since: ModSeq) -> StoreResultT<Changes> {
        let inner = self.lock()?;
        let found = inner.mailbox(mailbox)?;
        let mut vanished: Vec<Uid> = found
            .vanished
            .iter()
            .filter(|(_, modseq)| *modseq > since)
            .map(|(uid, _)| *uid)
            .collect();
        vanished.sort_unstable();
        Ok(Changes {
            highest_modseq: found.highest_modseq,
            uid_next: found.uid_next,
            changed: found
                .messages
                .values()
                .filter(|m| m.meta.modseq > since)
                .map(|m| m.meta.clone())
                .collect(),
            vanished,
            index: found.index(),
        })
    }

    async fn fetch(
        &self,
        mailbox: &str,
        uids: &[Uid],
        content: Content,
    ) -> StoreResultT<Vec<(Uid, Arc<[u8]>)>> {
        let inner = self.lock()?;
        let found = inner.mailbox(mailbox)?;
        Ok(uids
            .iter()
            .filter_map(|uid| {
                let message = found.messages.get(uid)?;
                let bytes = match content {
                    Content::Full => message.content.clone(),
                    Content::Header => Arc::from(header_of(&message.content)),
                };
                Some((*uid, bytes))
            })
            .collect())
    }

    async fn store_flags(
        &self,
        mailbox: &str,
        uids: &[Uid],
        op: FlagOp,
        flags: &[Flag],
        unchanged_since: Option<ModSeq>,
    ) -> StoreResultT<StoreResult> {
        let flags = normalize_flags(flags);
        let (result, modseq, changed) = {
            let mut inner = self.lock()?;
            let found = inner.mailbox_mut(mailbox)?;
            let mut wanted: Vec<Uid> = uids.to_vec();
            wanted.sort_unstable();
            wanted.dedup();
            let mut result = StoreResult::default();
            let mut changed = false;
            for uid in wanted {
                let Some(current) = found.messages.get(&uid).map(|m| m.meta.clone()) else {
                    continue;
                };
                if unchanged_since.is_some_and(|limit| current.modseq > limit) {
                    result.modified.push(uid);
                    continue;
                }
                let new_flags = match op {
                    FlagOp::Replace => flags.clone(),
                    FlagOp::Add => {
                        normalize_flags(&[current.flags.clone(), flags.clone()].concat())
                    }
                    FlagOp::Remove => current
                        .flags
                        .iter()
                        .filter(|f| !flags.contains(f))
                        .cloned()
                        .collect(),
                };
                if new_flags != current.flags {
                    let modseq = found.next_modseq();
                    if let Some(message) = found.messages.get_mut(&uid) {
                        message.meta.flags = new_flags;
                        message.meta.modseq = modseq;
                    }
                    changed = true;
                }
                if let Some(message) = found.messages.get(&uid) {
                    result.updated.push(message.meta.clone());
                }
            }
            (result, found.highest_modseq, changed)
        };
        if changed {
            self.notify(mailbox, modseq);
        }
        Ok(result)
    }

    async fn expunge(&self, mailbox: &str, only: Option<&[Uid]>) -> StoreResultT<Vec<Uid>> {
        let (removed, modseq) = {
            let mut inner = self.lock()?;
            let found = inner.mailbox_mut(mailbox)?;
            let deleted: Vec<Uid> = found
                .messages
                .values()
                .filter(|m| m.meta.flags.iter().any(|f| f == "\\Deleted"))
                .filter(|m| only.is_none_or(|set| set.contains(&m.meta.uid)))
                .map(|m| m.meta.uid)
                .collect();
            let removed = found.remove(&deleted);
            (removed, found.highest_modseq)
        };
        if !removed.is_empty() {
            self.notify(mailbox, modseq);
        }
        Ok(removed)
    }

    async fn append(
        &self,
        mailbox: &str,
        flags: &[Flag],
        internal_date: Option<(i64, i32)>,
        message: Vec<u8>,
    ) -> StoreResultT<CopyResult> {
        let date = internal_date.unwrap_or_else(|| (chrono::Utc::now().timestamp(), 0));
        let (result, modseq) = {
            let mut inner = self.lock()?;
            let found = inner.mailbox_mut(mailbox)?;
            let uid = found.insert(normalize_flags(flags), date, Arc::from(message));
            (
                CopyResult {
                    uid_validity: found.uid_validity,
                    mapping: vec![(0, uid)],
                },
                found.highest_modseq,
            )
        };
        self.notify(mailbox, modseq);
        Ok(result)
    }

    async fn copy(&self, from: &str, uids: &[Uid], to: &str) -> StoreResultT<CopyResult> {
        self.transfer(from, uids, to, false)
    }

    async fn move_messages(&self, from: &str, uids: &[Uid], to: &str) -> StoreResultT<CopyResult> {
        self.transfer(from, uids, to, true)
    }

    fn watch(&self) -> broadcast::Receiver<MailboxChanged> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"Subject: hi\r\nFrom: a@example.org\r\n\r\nbody\r\n";

    #[tokio::test]
    async fn default_mailboxes_and_special_use() {
        let store = MemoryStore::new();
        let boxes = store.list_mailboxes().await.expect("list");
        assert_eq!(boxes.len(), 7);
        let sent = boxes.iter().find(|b| b.name == "Sent").expect("Sent");
        assert_eq!(sent.special_use, Some(SpecialUse::Sent));
        assert!(sent.subscribed);
        let validities: BTreeSet<u32> = boxes.iter().map(|b| b.uid_validity).collect();
        assert_eq!(validities.len(), 7, "UIDVALIDITY differs per mailbox");
    }

    #[tokio::test]
    async fn append_flags_and_changes() {
        let store = MemoryStore::new();
        let mut watch = store.watch();
        let appended = store
            .append(
                "inbox",
                &["\\SEEN".into()],
                Some((1_000, 60)),
                MESSAGE.to_vec(),
            )
            .await
            .expect("append");
        assert_eq!(appended.mapping, vec![(0, 1)]);
        assert_eq!(watch.try_recv().expect("notified").mailbox, "INBOX");
        let snapshot = store.snapshot("INBOX").await.expect("snapshot");
        let first = &snapshot.messages()[0];
        assert_eq!(first.flags, vec!["\\Seen".to_string()]);
        assert_eq!(first.internal_date_offset_minutes, 60);
        let since = snapshot.info.highest_modseq;

        let result = store
            .store_flags(
                "INBOX",
                &[1],
                FlagOp::Add,
                &["\\Deleted".into()],
                Some(since),
            )
            .await
            .expect("store");
        assert_eq!(result.updated[0].flags, vec!["\\Deleted", "\\Seen"]);
        let stale = store
            .store_flags("INBOX", &[1], FlagOp::Add, &["$x".into()], Some(since))
            .await
            .expect("store");
        assert_eq!(stale.modified, vec![1]);

        let changes = store.changes_since("INBOX", since).await.expect("changes");
        assert_eq!(changes.changed.len(), 1);
        assert!(changes.highest_modseq > since);

        assert_eq!(
            store.expunge("INBOX", None).await.expect("expunge"),
            vec![1]
        );
        let changes = store.changes_since("INBOX", since).await.expect("changes");
        assert_eq!(changes.vanished, vec![1]);
        assert!(changes.changed.is_empty());
    }

    #[tokio::test]
    async fn fetch_header_only() {
        let store = MemoryStore::new();
        let uid = store.deliver("INBOX", MESSAGE).expect("deliver");
        let header = store
            .fetch("INBOX", &[uid, 99], Content::Header)
            .await
            .expect("fetch");
        assert_eq!(header.len(), 1);
        assert_eq!(
            &header[0].1[..],
            b"Subject: hi\r\nFrom: a@example.org\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn move_keeps_flags_and_records_vanished() {
        let store = MemoryStore::new();
        let uid = store.deliver("INBOX", MESSAGE).expect("deliver");
        store
            .store_flags("INBOX", &[uid], FlagOp::Add, &["$Label1".into()], None)
            .await
            .expect("flag");
        let moved = store
            .move_messages("INBOX", &[uid], "Trash")
            .await
            .expect("move");
        assert_eq!(moved.mapping, vec![(uid, 1)]);
        let trash = store.snapshot("Trash").await.expect("trash");
        assert_eq!(trash.messages()[0].flags, vec!["$Label1".to_string()]);
        let changes = store.changes_since("INBOX", 1).await.expect("changes");
        assert_eq!(changes.vanished, vec![uid]);
    }

    #[tokio::test]
    async fn create_rename_delete() {
        let store = MemoryStore::new();
        assert_eq!(
            store.create_mailbox("Trash").await,
            Err(StoreError::AlreadyExists("Trash".into()))
        );
        store.create_mailbox("a/b").await.expect("create");
        let names: Vec<String> = store
            .list_mailboxes()
            .await
            .expect("list")
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert!(names.contains(&"a".to_string()) && names.contains(&"a/b".to_string()));
        let old = store.snapshot("a/b").await.expect("a/b").info.uid_validity;
        store.rename_mailbox("a", "c").await.expect("rename");
        assert_eq!(
            store.snapshot("c/b").await.expect("c/b").info.uid_validity,
            old
        );
        store.delete_mailbox("c/b").await.expect("delete");
        store.create_mailbox("c/b").await.expect("re-create");
        assert!(store.snapshot("c/b").await.expect("c/b").info.uid_validity > old);
        assert!(matches!(
            store.delete_mailbox("INBOX").await,
            Err(StoreError::Cannot(_))
        ));
    }

    #[tokio::test]
    async fn rename_inbox_moves_messages() {
        let store = MemoryStore::new();
        store.deliver("INBOX", MESSAGE).expect("deliver");
        store.rename_mailbox("INBOX", "Old").await.expect("rename");
        assert_eq!(store.snapshot("Old").await.expect("Old").index.len(), 1);
        assert!(
            store
                .snapshot("INBOX")
                .await
                .expect("INBOX")
                .index
                .is_empty()
        );
    }
}
