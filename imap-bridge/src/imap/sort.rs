//! SORT and UID SORT (RFC 5256 §3) with the DISPLAYFROM and DISPLAYTO keys
//! of RFC 5957, and the gathering of sort fields THREAD shares.
//!
//! The messages are those the search criteria match (see `search`); their
//! fields come from [`MailStore::sort_fields`], which a store answers from
//! what it keeps beside each message, so nothing here decrypts or parses a
//! message. Strings were casemapped (`i;unicode-casemap`) when the fields
//! were made, so they compare as octets here.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::Arc;

use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_codec::imap_types::search::SearchKey;

use super::response::Completion;
use super::selected::Hit;
use super::session::Session;
use crate::backend::{MailStore, SortFieldMap, Uid};
use crate::mime::SortFieldsRef;
use crate::sort_map::TextKey;

/// One matched message with what SORT and THREAD compare.
#[derive(Debug, Clone)]
pub(super) struct Sortable<'a> {
    /// Numbers, ARRIVAL and SIZE; its sequence number is the final
    /// tie-break (RFC 5256 §3).
    pub hit: Hit,
    /// The header fields.
    pub fields: SortFieldsRef<'a>,
    /// Where `fields` are in the mailbox's [`SortFieldMap`] (`None`: the
    /// store has none for it, and `fields` are empty).
    pub position: Option<usize>,
}

impl Sortable<'_> {
    /// The sent date: `Date:`, else INTERNALDATE (RFC 5256 §2.2, §3).
    pub fn sent(&self) -> i64 {
        self.fields.date().unwrap_or(self.hit.internal_date)
    }

    /// The number the client sees.
    pub fn number(&self, uid: bool) -> u32 {
        if uid { self.hit.uid } else { self.hit.seq }
    }
}

/// A signed number as a `u64` of the same order.
fn ordered(value: i64) -> u64 {
    (value as u64) ^ (1 << 63)
}

/// The string key a sort key compares, if it is one.
fn text_key(key: &SortKey) -> Option<TextKey> {
    Some(match key {
        SortKey::Subject => TextKey::Subject,
        SortKey::From => TextKey::From,
        SortKey::To => TextKey::To,
        SortKey::Cc => TextKey::Cc,
        SortKey::DisplayFrom => TextKey::DisplayFrom,
        SortKey::DisplayTo => TextKey::DisplayTo,
        SortKey::Arrival | SortKey::Date | SortKey::Size => return None,
    })
}

/// One criterion as a number per message whose order is the criterion's
/// order. String keys use the ranks the map keeps (see `sort_map`), so
/// sorting compares integers in one array instead of chasing every
/// message's texts, and a repeated SORT compares no string at all: at
/// 100,000 messages that is what keeps SORT within Dovecot's time.
fn column(criterion: &SortCriterion, messages: &[Sortable<'_>], map: &SortFieldMap) -> Vec<u64> {
    let mut column: Vec<u64> = match text_key(&criterion.key) {
        None if criterion.key == SortKey::Arrival => messages
            .iter()
            .map(|m| ordered(m.hit.internal_date))
            .collect(),
        None if criterion.key == SortKey::Date => {
            messages.iter().map(|m| ordered(m.sent())).collect()
        }
        None => messages.iter().map(|m| u64::from(m.hit.size)).collect(),
        Some(key) => {
            let ranks = map.ranks(key);
            messages
                .iter()
                .map(|m| m.position.map_or(0, |at| u64::from(ranks[at])))
                .collect()
        }
    };
    if criterion.reverse {
        for value in &mut column {
            *value = !*value;
        }
    }
    column
}

/// Sorts `messages` (in sequence order, their fields from `map`) by
/// `criteria`, then by sequence number (RFC 5256 §3).
pub(super) fn sort(
    criteria: &[SortCriterion],
    messages: &mut Vec<Sortable<'_>>,
    map: &SortFieldMap,
) {
    let columns: Vec<Vec<u64>> = criteria.iter().map(|c| column(c, messages, map)).collect();
    let mut order: Vec<usize> = (0..messages.len()).collect();
    // Equal keys keep sequence order (the messages come in it).
    match columns.as_slice() {
        [] => {}
        [only] => {
            // The position is part of the key, so an unstable sort of
            // plain pairs is as good as a stable one, and faster.
            let mut keyed: Vec<(u64, usize)> = only.iter().copied().zip(0..).collect();
            keyed.sort_unstable();
            order = keyed.into_iter().map(|(_, i)| i).collect();
        }
        _ => order.sort_by(|&a, &b| {
            columns
                .iter()
                .map(|c| c[a].cmp(&c[b]))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        }),
    }
    let mut slots: Vec<Option<Sortable<'_>>> =
        std::mem::take(messages).into_iter().map(Some).collect();
    messages.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

/// The matched messages (ascending) joined with their fields (an empty
/// set of fields for a message the store has none of): one merge.
pub(super) fn join<'a>(found: Vec<Hit>, fields: &'a SortFieldMap) -> Vec<Sortable<'a>> {
    let positions = fields.positions(found.iter().map(|hit| hit.uid));
    found
        .into_iter()
        .zip(positions)
        .map(|(hit, position)| Sortable {
            hit,
            fields: position.map_or(SortFieldsRef::EMPTY, |at| fields.at(at)),
            position,
        })
        .collect()
}

impl<S: MailStore> Session<S> {
    /// The messages matching `search` and the fields of (at least) those
    /// messages (fetched only when `with_fields`).
    pub(super) async fn sortables(
        &mut self,
        charset: &Charset<'_>,
        search: &[SearchKey<'_>],
        with_fields: bool,
    ) -> Result<(Vec<Hit>, Arc<SortFieldMap>), Completion> {
        let matches = self.matching(Some(charset), search).await?;
        let Some(selected) = self.selected() else {
            return Err(Completion::bad("No mailbox selected"));
        };
        let mut fields = Arc::default();
        if with_fields && !matches.found.is_empty() {
            let uids: Vec<Uid> = matches.found.iter().map(|hit| hit.uid).collect();
            let name = selected.name.clone();
            fields = self
                .store
                .sort_fields(&name, &uids)
                .await
                .map_err(Completion::from)?;
        }
        Ok((matches.found, fields))
    }

    /// SORT / UID SORT.
    pub(super) async fn sort(
        &mut self,
        criteria: &[SortCriterion],
        charset: &Charset<'_>,
        search: &[SearchKey<'_>],
        uid: bool,
    ) -> Completion {
        let with_fields = criteria
            .iter()
            .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
        let (found, fields) = match self.sortables(charset, search, with_fields).await {
            Ok(found) => found,
            Err(completion) => return completion,
        };
        let mut messages = join(found, &fields);
        sort(criteria, &mut messages, &fields);
        let mut line = String::with_capacity(5 + messages.len() * 7);
        line.push_str("SORT");
        for message in &messages {
            // Writing to a String cannot fail.
            let _ = write!(line, " {}", message.number(uid));
        }
        self.out.untagged(&line);
        Completion::ok(if uid {
            "UID SORT completed"
        } else {
            "SORT completed"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::{SortFieldParts, SortFields};

    fn message(
        seq: u32,
        size: u32,
        date: Option<i64>,
        subject: &str,
        from: &str,
    ) -> (Hit, SortFields) {
        let fields = SortFields::new(SortFieldParts {
            date,
            subject: subject.into(),
            from: from.into(),
            ..SortFieldParts::default()
        });
        let hit = Hit {
            seq,
            uid: seq * 10,
            modseq: 1,
            size,
            internal_date: 1000 - i64::from(seq),
        };
        (hit, fields)
    }

    fn order(criteria: &[(bool, SortKey)], messages: &[(Hit, SortFields)]) -> Vec<u32> {
        let criteria: Vec<SortCriterion> = criteria
            .iter()
            .map(|(reverse, key)| SortCriterion {
                reverse: *reverse,
                key: key.clone(),
            })
            .collect();
        let mut map = SortFieldMap::default();
        for (hit, fields) in messages {
            map.insert(hit.uid, fields.clone());
        }
        let found = messages.iter().map(|(hit, _)| *hit).collect();
        let mut sortables = join(found, &map);
        sort(&criteria, &mut sortables, &map);
        sortables.iter().map(|m| m.hit.seq).collect()
    }

    #[test]
    fn keys_reverse_and_ties() {
        let messages = [
            message(1, 300, Some(50), "B", "x"),
            message(2, 100, None, "A", "x"),
            message(3, 200, Some(50), "A", "y"),
        ];
        assert_eq!(order(&[(false, SortKey::Size)], &messages), [2, 3, 1]);
        assert_eq!(order(&[(true, SortKey::Size)], &messages), [1, 3, 2]);
        // Message 2 has no Date: its INTERNALDATE (998) counts.
        assert_eq!(order(&[(false, SortKey::Date)], &messages), [1, 3, 2]);
        assert_eq!(order(&[(false, SortKey::Arrival)], &messages), [3, 2, 1]);
        // Equal subjects fall to the next key, then to sequence order.
        assert_eq!(
            order(
                &[(false, SortKey::Subject), (true, SortKey::From)],
                &messages
            ),
            [3, 2, 1]
        );
        assert_eq!(order(&[(false, SortKey::From)], &messages), [1, 2, 3]);
        assert_eq!(order(&[(true, SortKey::Cc)], &messages), [1, 2, 3]);
        assert_eq!(order(&[(true, SortKey::Subject)], &messages), [1, 2, 3]);
    }

    #[test]
    fn messages_without_fields_sort_as_empty_texts() {
        let (with, fields) = message(1, 1, Some(5), "A", "x");
        let (bare, _) = message(2, 1, None, "", "");
        let mut map = SortFieldMap::default();
        map.insert(with.uid, fields);
        let mut sortables = join(vec![with, bare], &map);
        assert_eq!(sortables[0].position, Some(0));
        assert_eq!(sortables[1].position, None);
        let criteria = [SortCriterion {
            reverse: false,
            key: SortKey::Subject,
        }];
        sort(&criteria, &mut sortables, &map);
        let seqs: Vec<u32> = sortables.iter().map(|m| m.hit.seq).collect();
        assert_eq!(seqs, [2, 1]);
    }
}
