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

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use crate::backend::Uid;
use crate::mime::{SortFields, SortFieldsRef};

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
    pub fn of(self, fields: SortFieldsRef<'_>) -> &str {
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
///
/// Stored column by column: a store keeps one of these per mailbox in
/// memory, so a message costs 21 bytes plus its own packed texts (see
/// [`SortFieldsRef`]), which sit one after the other in one arena. The
/// texts of its people (first From, To, Cc and the display keys) are kept
/// once per distinct set in a second arena, as most mail of a mailbox
/// shares its correspondents. A replaced entry leaves its old texts in the
/// arena until the map is rebuilt (stores rebuild it when messages go).
#[derive(Debug, Clone, Default)]
pub struct SortFieldMap {
    uids: Vec<Uid>,
    /// The `Date:` of each, when [`HAS_DATE`] is in its bits.
    dates: Vec<i64>,
    bits: Vec<u8>,
    /// Where each entry's own packed form starts in `arena`.
    starts: Vec<u32>,
    arena: Vec<u8>,
    /// Each entry's people: an index into `people_starts`.
    people: Vec<u32>,
    /// Where each distinct people form starts in `people_arena`.
    people_starts: Vec<u32>,
    people_arena: Vec<u8>,
    /// A hash of each distinct people form, to find it again. Two forms
    /// with one hash are both kept (only the first is found): sharing is
    /// a saving, never needed for correctness.
    people_by_hash: HashMap<u64, u32>,
    /// Per [`TextKey`], every entry's rank; made when first asked, dropped
    /// when the map changes.
    ranks: [OnceLock<Box<[u32]>>; TextKey::COUNT],
}

impl SortFieldMap {
    /// An empty map with room for `capacity` messages.
    pub fn with_capacity(capacity: usize) -> SortFieldMap {
        SortFieldMap {
            uids: Vec::with_capacity(capacity),
            dates: Vec::with_capacity(capacity),
            bits: Vec::with_capacity(capacity),
            starts: Vec::with_capacity(capacity),
            people: Vec::with_capacity(capacity),
            ..SortFieldMap::default()
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

    /// Gives back the room the vectors grew beyond what they hold: for a
    /// map that is filled once and then kept.
    pub fn shrink_to_fit(&mut self) {
        self.uids.shrink_to_fit();
        self.dates.shrink_to_fit();
        self.bits.shrink_to_fit();
        self.starts.shrink_to_fit();
        self.arena.shrink_to_fit();
        self.people.shrink_to_fit();
        self.people_starts.shrink_to_fit();
        self.people_arena.shrink_to_fit();
        self.people_by_hash.shrink_to_fit();
    }

    /// Adds (or replaces) the fields of `uid`. Cheapest in ascending UID
    /// order, which is how stores fill it and how new mail arrives.
    pub fn insert(&mut self, uid: Uid, fields: SortFields) {
        self.insert_ref(uid, fields.view());
    }

    /// [`SortFieldMap::insert`] of borrowed fields (copied in).
    ///
    /// # Panics
    /// Never in practice: an arena would have to pass 4 GiB of header
    /// texts, far beyond any mailbox's.
    pub fn insert_ref(&mut self, uid: Uid, fields: SortFieldsRef<'_>) {
        self.ranks = Default::default();
        let start = offset(self.arena.len());
        self.arena.extend_from_slice(fields.own());
        let people = self.people_id(fields.people());
        let bits = fields.bits() | fields.date().map_or(0, |_| HAS_DATE);
        let date = fields.date().unwrap_or_default();
        if self.uids.last().is_none_or(|last| *last < uid) {
            self.uids.push(uid);
            self.dates.push(date);
            self.bits.push(bits);
            self.starts.push(start);
            self.people.push(people);
            return;
        }
        match self.uids.binary_search(&uid) {
            Ok(at) => {
                self.dates[at] = date;
                self.bits[at] = bits;
                self.starts[at] = start;
                self.people[at] = people;
            }
            Err(at) => {
                self.uids.insert(at, uid);
                self.dates.insert(at, date);
                self.bits.insert(at, bits);
                self.starts.insert(at, start);
                self.people.insert(at, people);
            }
        }
    }

    /// The id of the people form `packed`: one already kept, or a new one.
    fn people_id(&mut self, packed: &[u8]) -> u32 {
        let mut hasher = DefaultHasher::new();
        packed.hash(&mut hasher);
        let hash = hasher.finish();
        if let Some(&id) = self.people_by_hash.get(&hash)
            && self.people_form(id) == packed
        {
            return id;
        }
        let id = offset(self.people_starts.len());
        self.people_starts.push(offset(self.people_arena.len()));
        self.people_arena.extend_from_slice(packed);
        self.people_by_hash.entry(hash).or_insert(id);
        id
    }

    /// The people form `id` (open-ended: it may go on into the next).
    fn people_at(&self, id: u32) -> &[u8] {
        let start = self.people_starts[id as usize] as usize;
        self.people_arena.get(start..).unwrap_or_default()
    }

    /// The people form `id`, exactly.
    fn people_form(&self, id: u32) -> &[u8] {
        let start = self.people_starts[id as usize] as usize;
        let end = self
            .people_starts
            .get(id as usize + 1)
            .map_or(self.people_arena.len(), |next| *next as usize);
        self.people_arena.get(start..end).unwrap_or_default()
    }

    /// The fields of `uid`, if the map has them.
    pub fn get(&self, uid: Uid) -> Option<SortFieldsRef<'_>> {
        let at = self.uids.binary_search(&uid).ok()?;
        Some(self.at(at))
    }

    /// Every (UID, fields), ascending UID.
    pub fn iter(&self) -> impl Iterator<Item = (Uid, SortFieldsRef<'_>)> {
        (0..self.len()).map(|at| (self.uids[at], self.at(at)))
    }

    /// The fields at a position [`SortFieldMap::positions`] gave.
    pub fn at(&self, position: usize) -> SortFieldsRef<'_> {
        let start = self.starts[position] as usize;
        let bits = self.bits[position];
        SortFieldsRef::from_packed(
            (bits & HAS_DATE != 0).then(|| self.dates[position]),
            bits & !HAS_DATE,
            self.arena.get(start..).unwrap_or_default(),
            self.people_at(self.people[position]),
        )
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
        let texts: Vec<&str> = (0..self.len()).map(|at| key.of(self.at(at))).collect();
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

/// `len` as an arena offset or id.
///
/// # Panics
/// Past 4 GiB of texts or 4 G entries, which no mailbox comes near.
fn offset(len: usize) -> u32 {
    u32::try_from(len).expect("sort field arenas below 4 GiB")
}

/// The bit of a map entry's bits that says it has a date (above the bits
/// of [`SortFieldsRef`]).
const HAS_DATE: u8 = 0x80;

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
        assert_eq!(map.get(9).map(|f| f.subject()), Some("I"));
        assert!(map.get(3).is_none());
        assert!(map.get(2).is_some() && map.get(10).is_none());
    }

    #[test]
    fn entries_keep_every_field_through_the_arena() {
        let long = "x".repeat(300);
        let full = SortFields::new(SortFieldParts {
            date: Some(0),
            subject: long.clone(),
            is_reply: true,
            from: "jm".into(),
            to: "bob".into(),
            cc: "carol".into(),
            display_from: "jörg müller".into(),
            display_to: "bob@example.org".into(),
            message_id: Some("b@example.de".into()),
            references: vec!["a@x".into(), long.clone()],
        });
        let bare = SortFields::new(SortFieldParts {
            date: None,
            message_id: None,
            ..full.parts()
        });
        let mut map = SortFieldMap::default();
        map.insert(7, full.clone());
        map.insert(3, bare.clone());
        map.insert(9, SortFields::default());
        assert_eq!(map.get(7).map(|f| f.to_owned()), Some(full.clone()));
        assert_eq!(map.get(3).map(|f| f.to_owned()), Some(bare.clone()));
        assert_eq!(map.get(9), Some(SortFieldsRef::EMPTY));
        // `full` and `bare` share their people: kept once.
        assert_eq!(map.people_starts.len(), 2);
        assert_eq!(map.people[0], map.people[1]);
        let seven = map.get(7).expect("7");
        assert_eq!(seven.date(), Some(0));
        assert!(seven.is_reply());
        assert_eq!(seven.subject(), long);
        assert_eq!(seven.display_from(), "jörg müller");
        assert_eq!(
            seven.references().collect::<Vec<_>>(),
            ["a@x", long.as_str()]
        );
        let three = map.get(3).expect("3");
        assert_eq!((three.date(), three.message_id()), (None, None));
        // Copied from one map to another, and replaced in place.
        let mut copy = SortFieldMap::with_capacity(2);
        for (uid, fields) in map.iter() {
            copy.insert_ref(uid, fields);
        }
        copy.insert(7, bare.clone());
        copy.shrink_to_fit();
        let got: Vec<(Uid, SortFields)> = copy.iter().map(|(u, f)| (u, f.to_owned())).collect();
        assert_eq!(
            got,
            [(3, bare.clone()), (7, bare), (9, SortFields::default())]
        );
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
