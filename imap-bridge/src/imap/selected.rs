//! The selected mailbox as one session sees it: its sequence-number↔UID map,
//! the metadata it last reported, and the synchronisation that tells the
//! client about other sessions' changes (RFC 3501 §5.2, §7.4.1; RFC 7162
//! §3.2.10 VANISHED).
//!
//! Messages expunged elsewhere stay in the map as "ghosts" until the session
//! may announce the expunge, so sequence numbers never shift under a client
//! between its commands.

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::response::{Output, flag_list, sequence_set};
use crate::backend::{Changes, MailboxSnapshot, MessageMeta, ModSeq, Uid};

/// One message in the session's view.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Metadata as last reported to the client.
    pub meta: MessageMeta,
    /// Expunged in the store but not yet announced to this client.
    pub expunged: bool,
}

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

/// The selected mailbox.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The store's name of the mailbox.
    pub name: String,
    /// EXAMINE (or SELECT of a mailbox we may not change).
    pub read_only: bool,
    /// Messages by sequence number minus one, ascending UID.
    pub messages: Vec<Slot>,
    /// The store's MODSEQ this view is synchronised to.
    pub highest_modseq: ModSeq,
    /// UIDNEXT as last seen.
    pub uid_next: Uid,
}

/// A message number out of range in a sequence set (RFC 3501 §9: `BAD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid message sequence number: {0}")]
pub struct BadSequence(pub u32);

impl Selected {
    /// The view right after SELECT.
    pub fn new(snapshot: MailboxSnapshot, read_only: bool) -> Self {
        Selected {
            name: snapshot.info.name,
            read_only,
            messages: snapshot
                .messages
                .into_iter()
                .map(|meta| Slot {
                    meta,
                    expunged: false,
                })
                .collect(),
            highest_modseq: snapshot.info.highest_modseq,
            uid_next: snapshot.info.uid_next,
        }
    }

    /// Number of messages the client knows (EXISTS).
    pub fn exists(&self) -> u32 {
        u32::try_from(self.messages.len()).unwrap_or(u32::MAX)
    }

    /// Index of a UID in the map.
    pub fn index_of(&self, uid: Uid) -> Option<usize> {
        self.messages
            .binary_search_by_key(&uid, |s| s.meta.uid)
            .ok()
    }

    /// Sequence number of a UID.
    pub fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.index_of(uid).and_then(|i| u32::try_from(i + 1).ok())
    }

    /// The live (not ghost) messages a sequence set names, as
    /// (sequence number, UID), ascending.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<(u32, Uid)>, BadSequence> {
        let mut out = Vec::new();
        if uid {
            let largest = self.messages.last().map_or(0, |s| s.meta.uid);
            let ranges = intervals(set, largest);
            for (index, slot) in self.messages.iter().enumerate() {
                if !slot.expunged && contains(&ranges, slot.meta.uid) {
                    out.push((u32::try_from(index + 1).unwrap_or(u32::MAX), slot.meta.uid));
                }
            }
        } else {
            let count = self.exists();
            let ranges = intervals(set, count);
            if let Some(&(_, high)) = ranges.last()
                && high > count
            {
                return Err(BadSequence(high));
            }
            for (low, high) in ranges {
                for seq in low.max(1)..=high {
                    let slot = &self.messages[(seq - 1) as usize];
                    if !slot.expunged {
                        out.push((seq, slot.meta.uid));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Records our own flag change so the next update does not repeat it.
    pub fn record(&mut self, meta: &MessageMeta) {
        if let Some(index) = self.index_of(meta.uid)
            && self.messages[index].meta.modseq <= meta.modseq
        {
            self.messages[index].meta = meta.clone();
        }
    }

    /// Removes messages this session expunged itself (EXPUNGE, MOVE) and
    /// announces them; UIDs not in the view are ignored.
    pub fn remove_announced(&mut self, uids: &[Uid], report: Report, out: &mut Output) {
        for uid in uids {
            if let Some(index) = self.index_of(*uid) {
                self.messages[index].expunged = true;
            }
        }
        self.flush_expunged(report, out);
    }

    /// Applies what changed in the store, writing the untagged responses the
    /// client may receive now.
    pub fn apply(&mut self, changes: Changes, report: Report, out: &mut Output) {
        for uid in &changes.vanished {
            if let Some(index) = self.index_of(*uid) {
                self.messages[index].expunged = true;
            }
        }
        let mut flag_updates = Vec::new();
        let mut arrived = false;
        for meta in changes.changed {
            match self.index_of(meta.uid) {
                Some(index) => {
                    let slot = &mut self.messages[index];
                    if !slot.expunged && meta.modseq > slot.meta.modseq {
                        let flags_changed = slot.meta.flags != meta.flags;
                        slot.meta = meta;
                        if flags_changed || report.condstore {
                            flag_updates.push(slot.meta.uid);
                        }
                    }
                }
                None => {
                    // UIDs only grow (RFC 3501 §2.3.1.1): anything new sorts
                    // last. A smaller unknown UID cannot be shown without
                    // renumbering, so it is left for the next SELECT.
                    let last = self.messages.last().map_or(0, |s| s.meta.uid);
                    if meta.uid > last {
                        self.messages.push(Slot {
                            meta,
                            expunged: false,
                        });
                        arrived = true;
                    }
                }
            }
        }
        if report.expunges {
            self.flush_expunged(report, out);
        }
        if arrived {
            out.untagged(&format!("{} EXISTS", self.exists()));
        }
        for uid in flag_updates {
            if let Some(seq) = self.seq_of(uid) {
                let meta = &self.messages[(seq - 1) as usize].meta;
                out.untagged(&flags_fetch(seq, meta, true, report.condstore));
            }
        }
        self.highest_modseq = self.highest_modseq.max(changes.highest_modseq);
        self.uid_next = self.uid_next.max(changes.uid_next);
    }

    /// Announces and drops every ghost (EXPUNGE in descending order so each
    /// number is right when sent, or one VANISHED for QRESYNC clients).
    fn flush_expunged(&mut self, report: Report, out: &mut Output) {
        if !self.messages.iter().any(|s| s.expunged) {
            return;
        }
        if report.qresync {
            let uids: Vec<Uid> = self
                .messages
                .iter()
                .filter(|s| s.expunged)
                .map(|s| s.meta.uid)
                .collect();
            out.untagged(&format!("VANISHED {}", sequence_set(&uids)));
        } else {
            for index in (0..self.messages.len()).rev() {
                if self.messages[index].expunged {
                    out.untagged(&format!("{} EXPUNGE", index + 1));
                }
            }
        }
        self.messages.retain(|s| !s.expunged);
    }
}

/// `n FETCH (UID u FLAGS (...) [MODSEQ (m)])`.
pub fn flags_fetch(seq: u32, meta: &MessageMeta, with_uid: bool, condstore: bool) -> String {
    let mut line = format!("{seq} FETCH (");
    if with_uid {
        line.push_str(&format!("UID {} ", meta.uid));
    }
    line.push_str(&format!("FLAGS {}", flag_list(&meta.flags)));
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
                messages: uids.iter().map(|u| meta(*u, 5, &[])).collect(),
            },
            false,
        )
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
        let changes = Changes {
            highest_modseq: 12,
            uid_next: 5,
            changed: vec![meta(4, 11, &[])],
            vanished: vec![2],
        };
        let during_fetch = Report {
            expunges: false,
            ..PLAIN
        };
        v.apply(changes, during_fetch, &mut out);
        assert_eq!(text(&mut out), "* 4 EXISTS\r\n", "ghost keeps numbering");
        assert_eq!(
            v.resolve(&set("1:*"), false),
            Ok(vec![(1, 1), (3, 3), (4, 4)])
        );
        v.apply(Changes::default(), PLAIN, &mut out);
        assert_eq!(text(&mut out), "* 2 EXPUNGE\r\n");
        assert_eq!(v.exists(), 3);
    }

    #[test]
    fn expunges_descend_and_vanished_for_qresync() {
        let mut v = view(&[1, 2, 3, 4]);
        let mut out = Output::default();
        let changes = Changes {
            highest_modseq: 12,
            uid_next: 5,
            changed: vec![],
            vanished: vec![1, 3],
        };
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
    fn flag_changes_are_reported_once() {
        let mut v = view(&[1, 2]);
        let mut out = Output::default();
        let changes = Changes {
            highest_modseq: 11,
            uid_next: 3,
            changed: vec![meta(2, 11, &["\\Seen"])],
            vanished: vec![],
        };
        v.apply(changes.clone(), PLAIN, &mut out);
        assert_eq!(text(&mut out), "* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n");
        v.apply(changes, PLAIN, &mut out);
        assert_eq!(text(&mut out), "", "same MODSEQ is not repeated");
    }
}
