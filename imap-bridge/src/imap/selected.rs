//! The selected mailbox as one session sees it: its sequence-number↔UID map,
//! and the synchronisation that tells the client about other sessions'
//! changes (RFC 3501 §5.2, §7.4.1; RFC 7162 §3.2.10 VANISHED).
//!
//! The map is not the session's own copy of the mailbox: it is the version
//! of the store's shared [`MessageIndex`] the session last synchronised to
//! (an `Arc`, shared with every other session at that version), plus what
//! only this session has:
//! - *ghosts*: messages expunged in the store but not yet announced to this
//!   client. They keep their sequence numbers until the session may send
//!   EXPUNGE (RFC 3501 §7.4.1), so numbers never shift under a client
//!   between its commands;
//! - its own flag changes since that version, already reported to the
//!   client, so the next update does not repeat them.
//!
//! Both are as small as the changes they track, so a session costs O(changes),
//! not O(messages), in memory and in time.

use std::collections::HashMap;
use std::sync::Arc;

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::response::{Output, flag_list, sequence_set};
use crate::backend::{Changes, MailboxSnapshot, MessageMeta, ModSeq, Uid};
use crate::index::MessageIndex;

/// What an update may tell the client.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// Whether EXPUNGE/VANISHED may be sent now (RFC 3501 §7.4.1).
    pub expunges: bool,
    /// QRESYNC enabled: VANISHED instead of EXPUNGE.
    pub qresync: bool,
    /// CONDSTORE enabled: MODSEQ in FETCH responses.
    pub condstore: bool,
}

/// A message expunged in the store that the client still sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ghost {
    uid: Uid,
    /// Its sequence number minus one.
    position: usize,
}

/// A message as SEARCH, SORT and THREAD answer with it: its numbers and
/// what sorting by ARRIVAL and SIZE needs, not its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Sequence number.
    pub seq: u32,
    /// UID.
    pub uid: Uid,
    /// MODSEQ (this session's view).
    pub modseq: ModSeq,
    /// RFC822.SIZE.
    pub size: u32,
    /// INTERNALDATE, seconds since the Unix epoch.
    pub internal_date: i64,
}

impl Hit {
    /// The hit for message `seq` with metadata `meta`.
    pub fn of(seq: u32, meta: &MessageMeta) -> Hit {
        Hit {
            seq,
            uid: meta.uid,
            modseq: meta.modseq,
            size: meta.size,
            internal_date: meta.internal_date,
        }
    }
}

/// The selected mailbox.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The store's name of the mailbox.
    pub name: String,
    /// EXAMINE (or SELECT of a mailbox we may not change).
    pub read_only: bool,
    /// The store's index at the state this view is synchronised to.
    index: Arc<MessageIndex>,
    /// Not yet announced expunges, ascending UID (and position).
    ghosts: Vec<Ghost>,
    /// This session's own flag changes after `index`, already reported.
    own: HashMap<Uid, MessageMeta>,
    /// The store's MODSEQ this view is synchronised to.
    pub highest_modseq: ModSeq,
    /// UIDNEXT as last seen.
    pub uid_next: Uid,
    /// The SEARCHRES result variable `$` (RFC 5182): UIDs, `None` until a
    /// SEARCH saved one. Expunged UIDs are skipped when it is used.
    pub saved: Option<Vec<Uid>>,
    /// The UIDs this session shows with `\Recent` (RFC 3501 §2.3.2), as
    /// ascending, disjoint half-open ranges: one per claim that found
    /// something, so a handful however large the mailbox.
    recent: Vec<(Uid, Uid)>,
}

/// A message number out of range in a sequence set (RFC 3501 §9: `BAD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid message sequence number: {0}")]
pub struct BadSequence(pub u32);

fn seq(position: usize) -> u32 {
    u32::try_from(position + 1).unwrap_or(u32::MAX)
}

impl Selected {
    /// The view right after SELECT: the snapshot's index, nothing else.
    pub fn new(snapshot: MailboxSnapshot, read_only: bool) -> Self {
        Selected {
            name: snapshot.info.name,
            read_only,
            highest_modseq: snapshot.index.modseq().max(snapshot.info.highest_modseq),
            uid_next: snapshot.index.uid_next().max(snapshot.info.uid_next),
            saved: None,
            index: snapshot.index,
            ghosts: Vec::new(),
            own: HashMap::new(),
            recent: Vec::new(),
        }
    }

    /// Adds the UIDs from `first` up to `below` to those this session
    /// shows as `\Recent` (what [`crate::backend::MailStore::recent`]
    /// gave it). Claims only move forward, so the ranges stay ascending.
    pub fn add_recent(&mut self, first: Uid, below: Uid) {
        let first = first.max(self.recent.last().map_or(0, |&(_, end)| end));
        if first >= below {
            return;
        }
        match self.recent.last_mut() {
            Some(last) if last.1 == first => last.1 = below,
            _ => self.recent.push((first, below)),
        }
    }

    /// Whether this session shows `uid` with `\Recent`.
    pub fn is_recent(&self, uid: Uid) -> bool {
        let index = self.recent.partition_point(|&(_, end)| end <= uid);
        self.recent
            .get(index)
            .is_some_and(|&(first, _)| first <= uid)
    }

    /// How many messages the client sees with `\Recent` (the RECENT
    /// response): those in the recent ranges, ghosts included.
    pub fn recent_count(&self) -> u32 {
        let live: usize = self
            .recent
            .iter()
            .map(|&(first, end)| {
                let from = self.index.position(first).unwrap_or_else(|p| p);
                let to = self.index.position(end).unwrap_or_else(|p| p);
                to - from
            })
            .sum();
        let ghosts = self.ghosts.iter().filter(|g| self.is_recent(g.uid)).count();
        u32::try_from(live + ghosts).unwrap_or(u32::MAX)
    }

    /// Number of messages the client knows (EXISTS).
    pub fn exists(&self) -> u32 {
        self.index
            .len()
            .saturating_add(u32::try_from(self.ghosts.len()).unwrap_or(u32::MAX))
    }

    /// The largest UID the client knows (ghosts included), or 0.
    pub fn largest_uid(&self) -> Uid {
        let live = self.index.last_uid().unwrap_or(0);
        live.max(self.ghosts.last().map_or(0, |g| g.uid))
    }

    /// Ghosts with a UID below `uid`.
    fn ghosts_below(&self, uid: Uid) -> usize {
        if self.ghosts.is_empty() {
            return 0;
        }
        self.ghosts.partition_point(|g| g.uid < uid)
    }

    /// Sequence number of a UID the client knows (ghosts included).
    pub fn seq_of(&self, uid: Uid) -> Option<u32> {
        match self.index.position(uid) {
            Ok(position) => Some(seq(position + self.ghosts_below(uid))),
            Err(_) => self
                .ghosts
                .binary_search_by_key(&uid, |g| g.uid)
                .ok()
                .map(|i| seq(self.ghosts[i].position)),
        }
    }

    /// Metadata of a live message as the client last heard it.
    pub fn meta(&self, uid: Uid) -> Option<MessageMeta> {
        match self.own.get(&uid) {
            Some(meta) => Some(meta.clone()),
            None => self.index.meta(uid),
        }
    }

    /// MODSEQ of a live message as the client last heard it.
    pub fn modseq_of(&self, uid: Uid) -> Option<ModSeq> {
        match self.own.get(&uid) {
            Some(meta) => Some(meta.modseq),
            None => self.index.modseq_of(uid),
        }
    }

    /// Numbers `messages` (the index's, ascending UID) with their sequence
    /// numbers, counting the ghosts before each.
    fn numbered<T>(
        &self,
        messages: impl Iterator<Item = T>,
        uid_of: impl Fn(&T) -> Uid,
    ) -> impl Iterator<Item = (u32, T)> {
        let mut ghosts = self.ghosts.iter().peekable();
        let mut skipped = 0;
        messages.enumerate().map(move |(position, message)| {
            let uid = uid_of(&message);
            while ghosts.next_if(|g| g.uid < uid).is_some() {
                skipped += 1;
            }
            (seq(position + skipped), message)
        })
    }

    /// Every live message as (sequence number, metadata), ascending.
    pub fn live(&self) -> Vec<(u32, MessageMeta)> {
        self.numbered(self.index.iter(), |meta| meta.uid)
            .map(|(seq, meta)| (seq, self.own.get(&meta.uid).cloned().unwrap_or(meta)))
            .collect()
    }

    /// Every live message as a [`Hit`], ascending: [`Selected::live`]
    /// without the flags, for what answers with numbers (SEARCH ALL, SORT,
    /// THREAD).
    pub fn hits(&self) -> Vec<Hit> {
        self.numbered(self.index.briefs(), |brief| brief.uid)
            .map(|(seq, brief)| Hit {
                seq,
                uid: brief.uid,
                modseq: self
                    .own
                    .get(&brief.uid)
                    .map_or(brief.modseq, |own| own.modseq),
                size: brief.size,
                internal_date: brief.internal_date,
            })
            .collect()
    }

    /// The live (not ghost) messages a sequence set names, as
    /// (sequence number, UID), ascending. Costs O(messages named), not
    /// O(messages in the mailbox).
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<(u32, Uid)>, BadSequence> {
        let mut out = Vec::new();
        if uid {
            for (low, high) in intervals(set, self.largest_uid()) {
                let start = self.index.position(low).unwrap_or_else(|p| p);
                for (offset, found) in self.index.uids_from(start).enumerate() {
                    if found > high {
                        break;
                    }
                    out.push((seq(start + offset + self.ghosts_below(found)), found));
                }
            }
            return Ok(out);
        }
        let count = self.exists();
        let ranges = intervals(set, count);
        if let Some(&(_, high)) = ranges.last()
            && high > count
        {
            return Err(BadSequence(high));
        }
        for (low, high) in ranges {
            let (low, high) = (low.max(1) as usize - 1, high as usize);
            if low >= high {
                continue;
            }
            if self.ghosts.is_empty() {
                let uids = self.index.uids_from(low).take(high - low);
                out.extend(uids.enumerate().map(|(i, u)| (seq(low + i), u)));
                continue;
            }
            for position in low..high {
                let before = self.ghosts.partition_point(|g| g.position < position);
                if self
                    .ghosts
                    .get(before)
                    .is_some_and(|g| g.position == position)
                {
                    continue;
                }
                if let Some(found) = self.index.uid_at(position - before) {
                    out.push((seq(position), found));
                }
            }
        }
        Ok(out)
    }

    /// Records our own flag change (already reported to the client) so the
    /// next update does not repeat it.
    pub fn record(&mut self, meta: &MessageMeta) {
        if self
            .modseq_of(meta.uid)
            .is_some_and(|modseq| modseq <= meta.modseq)
        {
            self.own.insert(meta.uid, meta.clone());
        }
    }

    /// Sets the ghosts (ascending UIDs, none of them in `index`), placing
    /// each among the live messages.
    fn set_ghosts(&mut self, uids: Vec<Uid>) {
        self.ghosts = uids
            .into_iter()
            .enumerate()
            .map(|(i, uid)| Ghost {
                uid,
                position: self.index.position(uid).unwrap_or_else(|p| p) + i,
            })
            .collect();
    }

    /// Moves the view to the state `changes` lead to, writing the untagged
    /// responses the client may receive now. Costs O(changes).
    pub fn apply(&mut self, changes: Changes, report: Report, out: &mut Output) {
        let before = self.exists();
        let old = std::mem::replace(&mut self.index, changes.index);
        // What the client saw and the store no longer has becomes a ghost.
        let mut ghosts: Vec<Uid> = self.ghosts.iter().map(|g| g.uid).collect();
        ghosts.extend(
            changes
                .vanished
                .iter()
                .copied()
                .filter(|uid| old.contains(*uid) && !self.index.contains(*uid)),
        );
        ghosts.sort_unstable();
        ghosts.dedup();
        let arrivals = changes
            .changed
            .iter()
            .filter(|m| !old.contains(m.uid) && self.index.contains(m.uid))
            .count();
        let removed = ghosts.len() - self.ghosts.len();
        if old.len() as usize - removed + arrivals != self.index.len() as usize {
            // The changes do not account for the new index (a store that
            // forgot expunges): find what the client would lose the slow
            // way, rather than let its numbers shift.
            tracing::warn!(mailbox = %self.name, "mailbox changes incomplete; comparing indexes");
            ghosts.extend(old.uids_from(0).filter(|uid| !self.index.contains(*uid)));
            ghosts.sort_unstable();
            ghosts.dedup();
        }
        let mut flag_updates = Vec::new();
        for meta in &changes.changed {
            let known = match self.own.get(&meta.uid) {
                Some(own) => Some((own.modseq, own.flags.clone())),
                None => old.meta(meta.uid).map(|m| (m.modseq, m.flags)),
            };
            // New messages are announced by EXISTS below; UIDs only grow
            // (RFC 3501 §2.3.1.1), so they sort after everything the client
            // knows and no number it holds moves.
            if let Some((modseq, flags)) = known
                && meta.modseq > modseq
                && (flags != meta.flags || report.condstore)
            {
                flag_updates.push(meta);
            }
        }
        self.own.clear();
        self.set_ghosts(ghosts);
        // Ghosts still count here, so the count grew by the arrivals alone.
        let arrived = self.exists() > before;
        if report.expunges {
            self.flush_expunged(report, out);
        }
        if arrived {
            out.untagged(&format!("{} EXISTS", self.exists()));
            // RFC 3501 §7.3.2: RECENT follows a change of the mailbox's size.
            out.untagged(&format!("{} RECENT", self.recent_count()));
        }
        for meta in flag_updates {
            if let Some(seq) = self.seq_of(meta.uid) {
                let recent = self.is_recent(meta.uid);
                out.untagged(&flags_fetch(seq, meta, recent, true, report.condstore));
            }
        }
        self.highest_modseq = self.highest_modseq.max(changes.highest_modseq);
        self.uid_next = self.uid_next.max(changes.uid_next);
    }

    /// Announces and drops every ghost (EXPUNGE in descending order so each
    /// number is right when sent, or one VANISHED for QRESYNC clients).
    fn flush_expunged(&mut self, report: Report, out: &mut Output) {
        if self.ghosts.is_empty() {
            return;
        }
        if report.qresync {
            let uids: Vec<Uid> = self.ghosts.iter().map(|g| g.uid).collect();
            out.untagged(&format!("VANISHED {}", sequence_set(&uids)));
        } else {
            for ghost in self.ghosts.iter().rev() {
                out.untagged(&format!("{} EXPUNGE", ghost.position + 1));
            }
        }
        self.ghosts.clear();
    }
}

/// `n FETCH (UID u FLAGS (...) [MODSEQ (m)])`, with `\Recent` among the
/// flags when the session shows the message as recent.
pub fn flags_fetch(
    seq: u32,
    meta: &MessageMeta,
    recent: bool,
    with_uid: bool,
    condstore: bool,
) -> String {
    let mut line = format!("{seq} FETCH (");
    if with_uid {
        line.push_str(&format!("UID {} ", meta.uid));
    }
    line.push_str(&format!("FLAGS {}", flag_list(&meta.flags, recent)));
    if condstore {
        line.push_str(&format!(" MODSEQ ({})", meta.modseq));
    }
    line.push(')');
    line
}

/// A sequence set as sorted, merged inclusive ranges; `*` is `largest`.
/// Ranges are independent of the order of their ends (RFC 3501 §9).
pub fn intervals(set: &SequenceSet, largest: u32) -> Vec<(u32, u32)> {
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    let mut ranges: Vec<(u32, u32)> = set
        .0
        .as_ref()
        .iter()
        .map(|sequence| match sequence {
            Sequence::Single(v) => (value(v), value(v)),
            Sequence::Range(a, b) => {
                let (a, b) = (value(a), value(b));
                (a.min(b), a.max(b))
            }
        })
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (low, high) in ranges {
        match merged.last_mut() {
            Some(last) if low <= last.1.saturating_add(1) => last.1 = last.1.max(high),
            _ => merged.push((low, high)),
        }
    }
    merged
}

/// Whether sorted, merged ranges contain `n`.
pub fn contains(ranges: &[(u32, u32)], n: u32) -> bool {
    let index = ranges.partition_point(|&(_, high)| high < n);
    ranges.get(index).is_some_and(|&(low, _)| low <= n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MailboxInfo;

    fn meta(uid: Uid, modseq: ModSeq, flags: &[&str]) -> MessageMeta {
        MessageMeta {
            uid,
            modseq,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            size: 10,
            internal_date: 0,
            internal_date_offset_minutes: 0,
        }
    }

    fn view(uids: &[Uid]) -> Selected {
        Selected::new(
            MailboxSnapshot {
                info: MailboxInfo {
                    name: "INBOX".into(),
                    special_use: None,
                    subscribed: true,
                    uid_validity: 9,
                    uid_next: uids.last().map_or(1, |u| u + 1),
                    highest_modseq: 10,
                    messages: uids.len() as u32,
                    unseen: 0,
                    size: 0,
                },
                index: Arc::new(MessageIndex::from_messages(
                    uids.iter().map(|u| meta(*u, 5, &[])),
                    uids.last().map_or(1, |u| u + 1),
                    10,
                )),
            },
            false,
        )
    }

    /// The changes a store would report, with the index they lead to.
    fn changes_to(
        v: &Selected,
        highest_modseq: ModSeq,
        changed: Vec<MessageMeta>,
        vanished: Vec<Uid>,
    ) -> Changes {
        let uid_next = changed
            .iter()
            .map(|m| m.uid + 1)
            .max()
            .unwrap_or(v.uid_next);
        Changes {
            highest_modseq,
            uid_next,
            index: Arc::new(v.index.apply(&changed, &vanished, uid_next, highest_modseq)),
            changed,
            vanished,
        }
    }

    fn set(text: &str) -> SequenceSet {
        text.parse().expect("sequence set")
    }

    fn text(out: &mut Output) -> String {
        String::from_utf8(out.take()).expect("utf8")
    }

    const PLAIN: Report = Report {
        expunges: true,
        qresync: false,
        condstore: false,
    };

    #[test]
    fn resolves_sequence_and_uid_sets() {
        let v = view(&[3, 5, 8, 20]);
        assert_eq!(
            v.resolve(&set("2:*"), false),
            Ok(vec![(2, 5), (3, 8), (4, 20)])
        );
        assert_eq!(v.resolve(&set("5"), false), Err(BadSequence(5)));
        assert_eq!(
            v.resolve(&set("4:9,21:*"), true),
            Ok(vec![(2, 5), (3, 8), (4, 20)])
        );
        // RFC 3501 §6.4.8: 559:* includes the highest UID.
        assert_eq!(v.resolve(&set("559:*"), true), Ok(vec![(4, 20)]));
        assert_eq!(view(&[]).resolve(&set("1:*"), true), Ok(vec![]));
    }

    #[test]
    fn interval_merging() {
        let ranges = intervals(&set("7,1:3,4,10:8"), 100);
        assert_eq!(ranges, vec![(1, 4), (7, 10)]);
        assert!(contains(&ranges, 4) && contains(&ranges, 7) && !contains(&ranges, 5));
    }

    #[test]
    fn expunge_held_back_until_allowed() {
        let mut v = view(&[1, 2, 3]);
        let mut out = Output::default();
        let changes = changes_to(&v, 12, vec![meta(4, 11, &[])], vec![2]);
        let during_fetch = Report {
            expunges: false,
            ..PLAIN
        };
        v.add_recent(4, 5);
        v.apply(changes, during_fetch, &mut out);
        assert_eq!(
            text(&mut out),
            "* 4 EXISTS\r\n* 1 RECENT\r\n",
            "ghost keeps numbering"
        );
        assert!(v.is_recent(4) && !v.is_recent(3));
        assert_eq!(
            v.resolve(&set("1:*"), false),
            Ok(vec![(1, 1), (3, 3), (4, 4)])
        );
        assert_eq!(v.resolve(&set("2:3"), true), Ok(vec![(3, 3)]));
        assert_eq!(v.seq_of(2), Some(2), "the ghost keeps its number");
        assert_eq!(v.seq_of(4), Some(4));
        let nothing = changes_to(&v, 12, vec![], vec![]);
        v.apply(nothing, PLAIN, &mut out);
        assert_eq!(text(&mut out), "* 2 EXPUNGE\r\n");
        assert_eq!(v.exists(), 3);
        assert_eq!(v.seq_of(4), Some(3));
    }

    #[test]
    fn expunges_descend_and_vanished_for_qresync() {
        let mut v = view(&[1, 2, 3, 4]);
        let mut out = Output::default();
        let changes = changes_to(&v, 12, vec![], vec![1, 3]);
        v.clone().apply(changes.clone(), PLAIN, &mut out);
        assert_eq!(text(&mut out), "* 3 EXPUNGE\r\n* 1 EXPUNGE\r\n");
        let qresync = Report {
            qresync: true,
            condstore: true,
            ..PLAIN
        };
        v.apply(changes, qresync, &mut out);
        assert_eq!(text(&mut out), "* VANISHED 1,3\r\n");
    }

    #[test]
    fn ghosts_pile_up_across_updates_and_leave_in_descending_order() {
        // Another session expunges twice and mail arrives while this one
        // may not hear of expunges (RFC 3501 §7.4.1): its numbers stay.
        let mut v = view(&[10, 20, 30, 40, 50]);
        let mut out = Output::default();
        let quiet = Report {
            expunges: false,
            ..PLAIN
        };
        let first = changes_to(&v, 11, vec![], vec![20, 40]);
        v.apply(first, quiet, &mut out);
        let second = changes_to(&v, 12, vec![meta(60, 12, &[])], vec![10, 50]);
        v.apply(second, quiet, &mut out);
        // Another session claimed UID 60 first: not recent here.
        assert_eq!(text(&mut out), "* 6 EXISTS\r\n* 0 RECENT\r\n");
        assert_eq!(v.exists(), 6);
        assert_eq!(v.resolve(&set("1:*"), false), Ok(vec![(3, 30), (6, 60)]));
        assert_eq!(v.resolve(&set("*"), true), Ok(vec![(6, 60)]));
        assert_eq!(
            v.live()
                .iter()
                .map(|(s, m)| (*s, m.uid))
                .collect::<Vec<_>>(),
            [(3, 30), (6, 60)]
        );
        let nothing = changes_to(&v, 12, vec![], vec![]);
        v.apply(nothing, PLAIN, &mut out);
        assert_eq!(
            text(&mut out),
            "* 5 EXPUNGE\r\n* 4 EXPUNGE\r\n* 2 EXPUNGE\r\n* 1 EXPUNGE\r\n"
        );
        assert_eq!(v.resolve(&set("1:*"), false), Ok(vec![(1, 30), (2, 60)]));
    }

    #[test]
    fn a_store_that_forgets_expunges_does_not_shift_numbers() {
        let mut v = view(&[1, 2, 3]);
        let mut out = Output::default();
        let mut lossy = changes_to(&v, 12, vec![], vec![2]);
        lossy.vanished.clear();
        let quiet = Report {
            expunges: false,
            ..PLAIN
        };
        v.apply(lossy, quiet, &mut out);
        assert_eq!(v.resolve(&set("3"), false), Ok(vec![(3, 3)]));
        let nothing = changes_to(&v, 12, vec![], vec![]);
        v.apply(nothing, PLAIN, &mut out);
        assert_eq!(text(&mut out), "* 2 EXPUNGE\r\n");
    }

    #[test]
    fn flag_changes_are_reported_once() {
        let mut v = view(&[1, 2]);
        let mut out = Output::default();
        let changes = changes_to(&v, 11, vec![meta(2, 11, &["\\Seen"])], vec![]);
        v.apply(changes.clone(), PLAIN, &mut out);
        assert_eq!(text(&mut out), "* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n");
        v.apply(changes, PLAIN, &mut out);
        assert_eq!(text(&mut out), "", "same MODSEQ is not repeated");
    }

    #[test]
    fn own_changes_are_not_repeated_but_later_ones_are() {
        let mut v = view(&[1, 2]);
        let mut out = Output::default();
        v.record(&meta(1, 11, &["\\Seen"]));
        assert_eq!(v.meta(1).map(|m| m.flags), Some(vec!["\\Seen".to_string()]));
        let ours = changes_to(&v, 11, vec![meta(1, 11, &["\\Seen"])], vec![]);
        v.apply(ours, PLAIN, &mut out);
        assert_eq!(text(&mut out), "");
        v.record(&meta(2, 12, &["\\Flagged"]));
        let theirs = changes_to(&v, 13, vec![meta(2, 13, &[])], vec![]);
        v.apply(theirs, PLAIN, &mut out);
        assert_eq!(text(&mut out), "* 2 FETCH (UID 2 FLAGS ())\r\n");
    }

    #[test]
    fn recent_ranges_count_live_messages_and_ghosts() {
        let mut v = view(&[1, 2, 3, 5, 8]);
        assert_eq!(v.recent_count(), 0);
        v.add_recent(3, 6);
        // An empty claim, then one that overlaps the last: nothing twice.
        v.add_recent(6, 6);
        v.add_recent(4, 9);
        assert_eq!(v.recent, vec![(3, 9)]);
        assert!(!v.is_recent(2) && v.is_recent(3) && v.is_recent(8) && !v.is_recent(9));
        assert_eq!(v.recent_count(), 3);
        let mut out = Output::default();
        let quiet = Report {
            expunges: false,
            ..PLAIN
        };
        let changes = changes_to(&v, 12, vec![], vec![5]);
        v.apply(changes, quiet, &mut out);
        assert_eq!(v.recent_count(), 3, "a ghost still shows as recent");
        v.apply(changes_to(&v, 13, vec![], vec![]), PLAIN, &mut out);
        assert_eq!(v.recent_count(), 2);
        v.add_recent(12, 20);
        assert_eq!(v.recent, vec![(3, 9), (12, 20)]);
        assert!(v.is_recent(12) && !v.is_recent(10));
    }
}
