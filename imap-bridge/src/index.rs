//! The message index of one mailbox: every message's clear metadata (UID,
//! MODSEQ, flags, size, INTERNALDATE) in UID order, with the counts SELECT
//! and STATUS answer from (EXISTS, unseen, deleted, first unseen), compact
//! and immutable.
//!
//! An index is a *version*: [`MessageIndex::apply`] makes the next version
//! from the changes since this one and shares every part that did not
//! change. Messages are kept in chunks behind `Arc`s, so a new version
//! copies only the chunks a change touches (a few KiB) plus one pointer per
//! chunk, never the whole mailbox. The store keeps the current version of
//! each mailbox and hands it to every session on that mailbox: SELECT is an
//! `Arc` clone, not a read of every message, and a session that still
//! shows an older version keeps it alive only as long as it needs it.
//!
//! A message costs 32 bytes here; flags are kept as bits for the five
//! system flags plus the id of an interned keyword set, shared by every
//! message with the same keywords.
//!
//! The index only holds what the store keeps in the clear anyway; it never
//! holds message content.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::backend::{Flag, MessageMeta, ModSeq, Uid};

/// Messages per chunk after a rebuild; a chunk is split when it grows to
/// twice this.
const CHUNK: usize = 256;

/// The system flags kept as bits (RFC 3501 §2.3.2), in bit order.
const SYSTEM_FLAGS: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];
const SEEN: u8 = 1;
const DELETED: u8 = 1 << 3;

/// One message: 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    uid: Uid,
    size: u32,
    modseq: ModSeq,
    date: i64,
    /// INTERNALDATE's zone in minutes east of UTC (real zones are within
    /// ±1,440).
    offset: i16,
    /// Bits of [`SYSTEM_FLAGS`].
    system: u8,
    /// Id of the keyword set in [`KeywordSets`]; 0 is the empty set.
    keywords: u32,
}

impl Entry {
    fn has(&self, bit: u8) -> bool {
        self.system & bit != 0
    }
}

/// A run of consecutive messages and its counts.
#[derive(Debug, Clone, Default)]
struct Chunk {
    entries: Vec<Entry>,
    unseen: u32,
    deleted: u32,
}

impl Chunk {
    fn new(entries: Vec<Entry>) -> Chunk {
        let mut chunk = Chunk {
            entries,
            unseen: 0,
            deleted: 0,
        };
        chunk.recount();
        chunk
    }

    fn recount(&mut self) {
        self.unseen = count(&self.entries, |e| !e.has(SEEN));
        self.deleted = count(&self.entries, |e| e.has(DELETED));
    }

    fn last_uid(&self) -> Uid {
        self.entries.last().map_or(0, |e| e.uid)
    }
}

fn count(entries: &[Entry], test: impl Fn(&Entry) -> bool) -> u32 {
    u32::try_from(entries.iter().filter(|e| test(e)).count()).unwrap_or(u32::MAX)
}

/// `entries` (ascending UID) in full chunks.
fn chunked(entries: &[Entry]) -> Vec<Arc<Chunk>> {
    entries
        .chunks(CHUNK)
        .map(|run| Arc::new(Chunk::new(run.to_vec())))
        .collect()
}

/// The distinct keyword sets of a mailbox, each stored once. Ids are never
/// reused, so versions that share this table agree on every id they hold.
#[derive(Debug, Clone, Default)]
struct KeywordSets {
    sets: Vec<Arc<[Flag]>>,
    ids: HashMap<Arc<[Flag]>, u32>,
}

impl KeywordSets {
    fn get(&self, id: u32) -> &[Flag] {
        match id {
            0 => &[],
            id => self.sets.get(id as usize - 1).map_or(&[], |set| set),
        }
    }
}

/// Interns `keywords` (sorted), copying the table only when it is shared
/// and the set is new.
fn intern(table: &mut Arc<KeywordSets>, keywords: Vec<Flag>) -> u32 {
    if keywords.is_empty() {
        return 0;
    }
    if let Some(id) = table.ids.get(keywords.as_slice()) {
        return *id;
    }
    let table = Arc::make_mut(table);
    let set: Arc<[Flag]> = keywords.into();
    table.sets.push(Arc::clone(&set));
    let id = u32::try_from(table.sets.len()).unwrap_or(u32::MAX);
    table.ids.insert(set, id);
    id
}

/// What [`MessageIndex::briefs`] gives for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Brief {
    /// UID.
    pub uid: Uid,
    /// MODSEQ of its last change.
    pub modseq: ModSeq,
    /// RFC822.SIZE.
    pub size: u32,
    /// INTERNALDATE, seconds since the Unix epoch.
    pub internal_date: i64,
}

/// One version of a mailbox's message index. Cloning is cheap (one pointer
/// per chunk); sessions hold it behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct MessageIndex {
    chunks: Vec<Arc<Chunk>>,
    /// Messages before each chunk.
    starts: Vec<u32>,
    len: u32,
    unseen: u32,
    deleted: u32,
    keywords: Arc<KeywordSets>,
    modseq: ModSeq,
    uid_next: Uid,
}

impl MessageIndex {
    /// An index of `messages` (any order) at HIGHESTMODSEQ `modseq` with
    /// UIDNEXT `uid_next`.
    pub fn from_messages(
        messages: impl IntoIterator<Item = MessageMeta>,
        uid_next: Uid,
        modseq: ModSeq,
    ) -> MessageIndex {
        let mut index = MessageIndex {
            uid_next,
            modseq,
            ..MessageIndex::default()
        };
        let mut entries: Vec<Entry> = messages.into_iter().map(|meta| index.entry(meta)).collect();
        if !entries.is_sorted_by_key(|e| e.uid) {
            entries.sort_by_key(|e| e.uid);
        }
        entries.dedup_by_key(|e| e.uid);
        index.chunks = chunked(&entries);
        index.recount();
        index
    }

    /// The next version: `vanished` UIDs removed, `changed` messages
    /// replaced or added, at the new HIGHESTMODSEQ and UIDNEXT. Only the
    /// chunks that change are copied.
    pub fn apply(
        &self,
        changed: &[MessageMeta],
        vanished: &[Uid],
        uid_next: Uid,
        modseq: ModSeq,
    ) -> MessageIndex {
        let mut next = self.clone();
        next.uid_next = uid_next.max(self.uid_next);
        next.modseq = modseq.max(self.modseq);
        for uid in vanished {
            next.remove(*uid);
        }
        for meta in changed {
            let entry = next.entry(meta.clone());
            next.upsert(entry);
        }
        next.chunks.retain(|chunk| !chunk.entries.is_empty());
        // Many removals leave small chunks behind: rebuild when they
        // clearly outnumber full ones.
        if next.chunks.len() > 4 + 2 * (next.entry_count() / CHUNK) {
            let entries: Vec<Entry> = next
                .chunks
                .iter()
                .flat_map(|c| c.entries.iter().copied())
                .collect();
            next.chunks = chunked(&entries);
        }
        next.recount();
        next
    }

    fn entry_count(&self) -> usize {
        self.chunks.iter().map(|c| c.entries.len()).sum()
    }

    fn entry(&mut self, meta: MessageMeta) -> Entry {
        let mut system = 0u8;
        let mut keywords = Vec::new();
        for flag in meta.flags {
            match SYSTEM_FLAGS.iter().position(|s| *s == flag) {
                Some(bit) => system |= 1 << bit,
                None => keywords.push(flag),
            }
        }
        keywords.sort();
        keywords.dedup();
        Entry {
            uid: meta.uid,
            size: meta.size,
            modseq: meta.modseq,
            date: meta.internal_date,
            offset: i16::try_from(meta.internal_date_offset_minutes).unwrap_or(0),
            system,
            keywords: intern(&mut self.keywords, keywords),
        }
    }

    /// The chunk that holds `uid` or would: the first whose last UID is at
    /// least `uid`, else the last chunk.
    fn chunk_for(&self, uid: Uid) -> usize {
        let found = self.chunks.partition_point(|c| c.last_uid() < uid);
        found.min(self.chunks.len().saturating_sub(1))
    }

    fn remove(&mut self, uid: Uid) {
        if self.chunks.is_empty() {
            return;
        }
        let at = self.chunk_for(uid);
        if let Ok(pos) = self.chunks[at]
            .entries
            .binary_search_by_key(&uid, |e| e.uid)
        {
            let chunk = Arc::make_mut(&mut self.chunks[at]);
            chunk.entries.remove(pos);
            chunk.recount();
        }
    }

    fn upsert(&mut self, entry: Entry) {
        if self.chunks.is_empty() {
            self.chunks.push(Arc::new(Chunk::new(vec![entry])));
            return;
        }
        let at = self.chunk_for(entry.uid);
        let found = self.chunks[at]
            .entries
            .binary_search_by_key(&entry.uid, |e| e.uid);
        // New mail has a UID above every other (RFC 3501 §2.3.1.1): an
        // append to the last chunk, which starts a fresh chunk once full.
        if let Err(pos) = found
            && pos == self.chunks[at].entries.len()
            && pos >= CHUNK
        {
            self.chunks
                .insert(at + 1, Arc::new(Chunk::new(vec![entry])));
            return;
        }
        let chunk = Arc::make_mut(&mut self.chunks[at]);
        match found {
            Ok(pos) => chunk.entries[pos] = entry,
            Err(pos) => {
                chunk.entries.insert(pos, entry);
                if chunk.entries.len() >= 2 * CHUNK {
                    let tail = chunk.entries.split_off(CHUNK);
                    chunk.recount();
                    self.chunks.insert(at + 1, Arc::new(Chunk::new(tail)));
                    return;
                }
            }
        }
        chunk.recount();
    }

    fn recount(&mut self) {
        self.starts.clear();
        let (mut len, mut unseen, mut deleted) = (0u32, 0u32, 0u32);
        for chunk in &self.chunks {
            self.starts.push(len);
            len = len.saturating_add(chunk.entries.len() as u32);
            unseen = unseen.saturating_add(chunk.unseen);
            deleted = deleted.saturating_add(chunk.deleted);
        }
        (self.len, self.unseen, self.deleted) = (len, unseen, deleted);
    }

    /// Number of messages.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether there is no message.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// HIGHESTMODSEQ of the state this version shows.
    pub fn modseq(&self) -> ModSeq {
        self.modseq
    }

    /// UIDNEXT of the state this version shows.
    pub fn uid_next(&self) -> Uid {
        self.uid_next
    }

    /// Messages without `\Seen`.
    pub fn unseen(&self) -> u32 {
        self.unseen
    }

    /// Messages with `\Deleted` (STATUS DELETED, RFC 9051 §6.3.11).
    pub fn deleted(&self) -> u32 {
        self.deleted
    }

    /// Total RFC822.SIZE of all messages (STATUS SIZE, RFC 8438).
    pub fn total_size(&self) -> u64 {
        self.chunks
            .iter()
            .flat_map(|c| c.entries.iter())
            .map(|e| u64::from(e.size))
            .sum()
    }

    /// The highest UID, if any.
    pub fn last_uid(&self) -> Option<Uid> {
        self.chunks
            .last()
            .and_then(|c| c.entries.last())
            .map(|e| e.uid)
    }

    /// `Ok(position)` of `uid`, or `Err(position)` where it would be (the
    /// number of messages with a smaller UID). Positions start at 0.
    pub fn position(&self, uid: Uid) -> Result<usize, usize> {
        if self.chunks.is_empty() {
            return Err(0);
        }
        let at = self.chunk_for(uid);
        let start = self.starts[at] as usize;
        match self.chunks[at]
            .entries
            .binary_search_by_key(&uid, |e| e.uid)
        {
            Ok(pos) => Ok(start + pos),
            Err(pos) => Err(start + pos),
        }
    }

    /// Whether `uid` is in the index.
    pub fn contains(&self, uid: Uid) -> bool {
        self.position(uid).is_ok()
    }

    fn entry_at(&self, position: usize) -> Option<&Entry> {
        let position = u32::try_from(position).ok()?;
        if position >= self.len {
            return None;
        }
        let at = self.starts.partition_point(|start| *start <= position) - 1;
        self.chunks[at]
            .entries
            .get((position - self.starts[at]) as usize)
    }

    /// UID of the message at `position`.
    pub fn uid_at(&self, position: usize) -> Option<Uid> {
        self.entry_at(position).map(|e| e.uid)
    }

    /// Metadata of the message at `position`.
    pub fn meta_at(&self, position: usize) -> Option<MessageMeta> {
        self.entry_at(position).map(|e| self.meta_of(e))
    }

    /// Metadata of `uid`.
    pub fn meta(&self, uid: Uid) -> Option<MessageMeta> {
        self.position(uid).ok().and_then(|pos| self.meta_at(pos))
    }

    /// MODSEQ of `uid`, without building its metadata.
    pub fn modseq_of(&self, uid: Uid) -> Option<ModSeq> {
        let pos = self.position(uid).ok()?;
        self.entry_at(pos).map(|e| e.modseq)
    }

    fn meta_of(&self, entry: &Entry) -> MessageMeta {
        let keywords = self.keywords.get(entry.keywords);
        let mut flags: Vec<Flag> = Vec::with_capacity(keywords.len() + 2);
        for (bit, name) in SYSTEM_FLAGS.iter().enumerate() {
            if entry.has(1 << bit) {
                flags.push((*name).to_string());
            }
        }
        flags.extend(keywords.iter().cloned());
        flags.sort();
        MessageMeta {
            uid: entry.uid,
            modseq: entry.modseq,
            flags,
            size: entry.size,
            internal_date: entry.date,
            internal_date_offset_minutes: i32::from(entry.offset),
        }
    }

    /// Position of the first message without `\Seen`: skips whole chunks
    /// by their counts.
    pub fn first_unseen(&self) -> Option<usize> {
        let at = self.chunks.iter().position(|c| c.unseen > 0)?;
        let pos = self.chunks[at].entries.iter().position(|e| !e.has(SEEN))?;
        Some(self.starts[at] as usize + pos)
    }

    /// Every keyword any message of this mailbox has or had since the
    /// index was built (for the FLAGS response, RFC 3501 §7.2.6).
    pub fn keywords(&self) -> BTreeSet<&str> {
        self.keywords
            .sets
            .iter()
            .flat_map(|set| set.iter().map(String::as_str))
            .collect()
    }

    /// The UIDs from `position` on, in order.
    pub fn uids_from(&self, position: usize) -> impl Iterator<Item = Uid> + '_ {
        let position = u32::try_from(position).unwrap_or(u32::MAX);
        let at = self
            .starts
            .partition_point(|start| *start <= position)
            .saturating_sub(1);
        let skip = position.saturating_sub(self.starts.get(at).copied().unwrap_or(0)) as usize;
        self.chunks
            .iter()
            .skip(at)
            .flat_map(|c| c.entries.iter().map(|e| e.uid))
            .skip(skip)
    }

    /// Every message's UID, MODSEQ, size and INTERNALDATE, ascending UID:
    /// [`MessageIndex::iter`] without building each message's flag list.
    pub fn briefs(&self) -> impl Iterator<Item = Brief> + '_ {
        self.chunks
            .iter()
            .flat_map(|c| c.entries.iter())
            .map(|e| Brief {
                uid: e.uid,
                modseq: e.modseq,
                size: e.size,
                internal_date: e.date,
            })
    }

    /// Every message's metadata, ascending UID.
    pub fn iter(&self) -> impl Iterator<Item = MessageMeta> + '_ {
        self.chunks
            .iter()
            .flat_map(|c| c.entries.iter())
            .map(|e| self.meta_of(e))
    }

    /// Approximate heap size in bytes (for the memory figures).
    pub fn heap_size(&self) -> usize {
        let entries: usize = self
            .chunks
            .iter()
            .map(|c| c.entries.capacity() * std::mem::size_of::<Entry>())
            .sum();
        entries + self.chunks.len() * (std::mem::size_of::<Chunk>() + 8 + 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(uid: Uid, modseq: ModSeq, flags: &[&str]) -> MessageMeta {
        MessageMeta {
            uid,
            modseq,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            size: uid * 10,
            internal_date: i64::from(uid),
            internal_date_offset_minutes: -60,
        }
    }

    fn uids(index: &MessageIndex) -> Vec<Uid> {
        index.iter().map(|m| m.uid).collect()
    }

    #[test]
    fn entry_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }

    #[test]
    fn round_trips_metadata_and_counts() {
        let messages = vec![
            meta(1, 3, &["\\Seen", "$Work"]),
            meta(4, 5, &[]),
            meta(9, 7, &["\\Deleted", "\\Seen", "$Work"]),
        ];
        let index = MessageIndex::from_messages(messages.clone(), 10, 7);
        assert_eq!(index.iter().collect::<Vec<_>>(), {
            let mut sorted = messages.clone();
            for m in &mut sorted {
                m.flags.sort();
            }
            sorted
        });
        assert_eq!((index.len(), index.unseen(), index.deleted()), (3, 1, 1));
        assert_eq!(index.first_unseen(), Some(1));
        assert_eq!(index.position(4), Ok(1));
        assert_eq!(index.position(5), Err(2));
        assert_eq!(index.position(100), Err(3));
        assert_eq!(index.keywords().into_iter().collect::<Vec<_>>(), ["$Work"]);
        assert_eq!(index.total_size(), 140);
    }

    #[test]
    fn versions_share_unchanged_chunks() {
        let all: Vec<MessageMeta> = (1..=10_000).map(|u| meta(u, 1, &["\\Seen"])).collect();
        let first = MessageIndex::from_messages(all, 10_001, 1);
        let second = first.apply(
            &[meta(5_000, 2, &[]), meta(10_001, 3, &[])],
            &[7, 9_999],
            10_002,
            3,
        );
        assert_eq!(first.len(), 10_000, "the old version is unchanged");
        assert_eq!(second.len(), 9_999);
        assert_eq!(second.unseen(), 2);
        assert_eq!(second.first_unseen(), second.position(5_000).ok());
        assert_eq!(second.last_uid(), Some(10_001));
        assert!(!second.contains(7) && !second.contains(9_999));
        let shared = first
            .chunks
            .iter()
            .zip(&second.chunks)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert!(shared >= first.chunks.len() - 4, "{shared} shared");
        for pos in [0, 1, 5, 4_997, 9_998] {
            let uid = second.uid_at(pos).expect("uid");
            assert_eq!(second.position(uid), Ok(pos));
        }
        assert_eq!(second.uid_at(9_999), None);
        assert_eq!(
            second.uids_from(9_996).collect::<Vec<_>>(),
            [9_998, 10_000, 10_001]
        );
    }

    #[test]
    fn appends_split_and_removals_merge() {
        let mut index = MessageIndex::default();
        for uid in 1..=2_000 {
            index = index.apply(&[meta(uid, u64::from(uid), &[])], &[], uid + 1, uid.into());
        }
        assert_eq!(uids(&index), (1..=2_000).collect::<Vec<_>>());
        assert!(index.chunks.iter().all(|c| c.entries.len() <= 2 * CHUNK));
        let gone: Vec<Uid> = (1..=2_000).filter(|u| u % 50 != 0).collect();
        let index = index.apply(&[], &gone, 2_001, 5_000);
        assert_eq!(uids(&index), (1..=40).map(|u| u * 50).collect::<Vec<_>>());
        assert!(index.chunks.len() <= 5, "{} chunks", index.chunks.len());
        let index = index.apply(&[], &(1..=2_000).collect::<Vec<_>>(), 2_001, 5_001);
        assert!(index.is_empty() && index.first_unseen().is_none());
        assert_eq!(index.position(3), Err(0));
    }
}
