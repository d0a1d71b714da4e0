//! The SORT and THREAD fields of one mailbox ([`SortFieldMap`]), as a store
//! hands them to the session (issue 9).
//!
//! The fields sit in one vector in UID order, so a session joins them to
//! its matches (which are in UID order too) in one sequential merge, not a
//! hash lookup per message. For each string sort key the map also keeps,
//! once asked, every message's *rank*: the position of its text among the
//! distinct texts of the mailbox. A repeated SORT by SUBJECT then compares
//! integers it already has; the strings are compared only when the map
//! changes (new mail), not on every SORT.

use std::sync::OnceLock;

use crate::backend::Uid;
use crate::mime::SortFields;

/// The string keys a SORT ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKey {
    /// The base subject (RFC 5256 §2.1).
    Subject,
    /// The first From mailbox.
    From,
    /// The first To mailbox.
    To,
    /// The first Cc mailbox.
    Cc,
    /// RFC 5957 DISPLAYFROM.
    DisplayFrom,
    /// RFC 5957 DISPLAYTO.
    DisplayTo,
}

impl TextKey {
    const COUNT: usize = 6;

    fn slot(self) -> usize {
        self as usize
    }

    /// The text of `fields` this key compares.
    pub fn of(self, fields: &SortFields) -> &str {
        match self {
            TextKey::Subject => fields.subject(),
            TextKey::From => fields.from(),
            TextKey::To => fields.to(),
            TextKey::Cc => fields.cc(),
            TextKey::DisplayFrom => fields.display_from(),
            TextKey::DisplayTo => fields.display_to(),
        }
    }
}

/// The sort fields of messages of one mailbox, ascending UID
/// ([`crate::backend::MailStore::sort_fields`]).
#[derive(Debug, Clone, Default)]
pub struct SortFieldMap {
    uids: Vec<Uid>,
    fields: Vec<SortFields>,
    /// Per [`TextKey`], every entry's rank; made when first asked, dropped
    /// when the map changes.
    ranks: [OnceLock<Box<[u32]>>; TextKey::COUNT],
}

impl SortFieldMap {
    /// An empty map with room for `capacity` messages.
    pub fn with_capacity(capacity: usize) -> SortFieldMap {
        SortFieldMap {
            uids: Vec::with_capacity(capacity),
            fields: Vec::with_capacity(capacity),
            ranks: Default::default(),
        }
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.uids.len()
    }

    /// No message at all.
    pub fn is_empty(&self) -> bool {
        self.uids.is_empty()
    }

    /// Adds (or replaces) the fields of `uid`. Cheapest in ascending UID
    /// order, which is how stores fill it and how new mail arrives.
    pub fn insert(&mut self, uid: Uid, fields: SortFields) {
        self.ranks = Default::default();
        if self.uids.last().is_none_or(|last| *last < uid) {
            self.uids.push(uid);
            self.fields.push(fields);
            return;
        }
        match self.uids.binary_search(&uid) {
            Ok(at) => self.fields[at] = fields,
            Err(at) => {
                self.uids.insert(at, uid);
                self.fields.insert(at, fields);
            }
        }
    }

    /// The fields of `uid`, if the map has them.
    pub fn get(&self, uid: Uid) -> Option<&SortFields> {
        let at = self.uids.binary_search(&uid).ok()?;
        Some(&self.fields[at])
    }

    /// Every (UID, fields), ascending UID.
    pub fn iter(&self) -> impl Iterator<Item = (Uid, &SortFields)> {
        self.uids.iter().copied().zip(self.fields.iter())
    }

    /// The fields at a position [`SortFieldMap::positions`] gave.
    pub fn at(&self, position: usize) -> &SortFields {
        &self.fields[position]
    }

    /// Where each of `uids` is in the map (`None`: not there). One merge
    /// when `uids` ascend, as matches and index UIDs do; a binary search
    /// each otherwise.
    pub fn positions(&self, uids: impl IntoIterator<Item = Uid>) -> Vec<Option<usize>> {
        let uids = uids.into_iter();
        let mut out = Vec::with_capacity(uids.size_hint().0);
        let mut next = 0;
        let mut previous = None;
        for uid in uids {
            if previous.is_some_and(|p| p >= uid) {
                next = 0;
            }
            previous = Some(uid);
            let rest = &self.uids[next..];
            let mut step = 0;
            while step < MERGE_STEP && step < rest.len() && rest[step] < uid {
                step += 1;
            }
            if step == MERGE_STEP {
                // A long gap: skip it by binary search instead of walking it.
                step += rest[step..].partition_point(|u| *u < uid);
            }
            next += step;
            if self.uids.get(next) == Some(&uid) {
                out.push(Some(next));
            } else {
                out.push(None);
            }
        }
        out
    }

    /// Every entry's rank for `key`, in map order: equal texts have equal
    /// ranks, a smaller rank is a smaller text (octet order; the texts are
    /// casemapped already), and the empty text (what a message without
    /// fields has) ranks 0.
    pub fn ranks(&self, key: TextKey) -> &[u32] {
        self.ranks[key.slot()].get_or_init(|| self.rank(key))
    }

    fn rank(&self, key: TextKey) -> Box<[u32]> {
        let texts: Vec<&str> = self.fields.iter().map(|f| key.of(f)).collect();
        let mut order: Vec<u32> = (0..u32::try_from(texts.len()).unwrap_or(u32::MAX)).collect();
        order.sort_unstable_by(|a, b| texts[*a as usize].cmp(texts[*b as usize]));
        let mut ranks = vec![0u32; texts.len()].into_boxed_slice();
        let mut rank = 0u32;
        let mut last = "";
        for i in order {
            let text = texts[i as usize];
            if text != last {
                rank += 1;
                last = text;
            }
            ranks[i as usize] = rank;
        }
        ranks
    }
}

/// How far [`SortFieldMap::positions`] looks ahead linearly before it
/// binary-searches the rest.
const MERGE_STEP: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::SortFieldParts;

    fn fields(subject: &str) -> SortFields {
        SortFields::new(SortFieldParts {
            subject: subject.into(),
            ..SortFieldParts::default()
        })
    }

    #[test]
    fn insert_keeps_uid_order_and_replaces() {
        let mut map = SortFieldMap::default();
        map.insert(5, fields("E"));
        map.insert(9, fields("I"));
        map.insert(2, fields("B"));
        map.insert(5, fields("E2"));
        let got: Vec<(Uid, &str)> = map.iter().map(|(u, f)| (u, f.subject())).collect();
        assert_eq!(got, [(2, "B"), (5, "E2"), (9, "I")]);
        assert_eq!(map.get(9).map(SortFields::subject), Some("I"));
        assert!(map.get(3).is_none());
        assert!(map.get(2).is_some() && map.get(10).is_none());
    }

    #[test]
    fn positions_merge_and_fall_back() {
        let mut map = SortFieldMap::with_capacity(100);
        for uid in (1..=100).map(|n| n * 3) {
            map.insert(uid, fields(""));
        }
        assert_eq!(
            map.positions([3, 4, 6, 150, 297, 300, 301]),
            [Some(0), None, Some(1), Some(49), Some(98), Some(99), None]
        );
        // Not ascending: still right.
        assert_eq!(map.positions([300, 3, 3]), [Some(99), Some(0), Some(0)]);
        assert_eq!(SortFieldMap::default().positions([1]), [None]);
    }

    #[test]
    fn ranks_order_texts_and_empty_is_zero() {
        let mut map = SortFieldMap::default();
        for (uid, subject) in [(1, "B"), (2, ""), (3, "A"), (4, "B"), (5, "C")] {
            map.insert(uid, fields(subject));
        }
        assert_eq!(map.ranks(TextKey::Subject), [2, 0, 1, 2, 3]);
        // Every message's From is empty.
        assert_eq!(map.ranks(TextKey::From), [0, 0, 0, 0, 0]);
        // A change drops the ranks.
        map.insert(6, fields("AA"));
        assert_eq!(map.ranks(TextKey::Subject), [3, 0, 1, 3, 4, 2]);
    }
}
