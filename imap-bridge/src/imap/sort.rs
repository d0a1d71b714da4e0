//! SORT and UID SORT (RFC 5256 §3) with the DISPLAYFROM and DISPLAYTO keys
//! of RFC 5957, and the gathering of sort fields THREAD shares.
//!
//! The messages are those the search criteria match (see `search`); their
//! fields come from [`MailStore::sort_fields`], which a store answers from
//! what it keeps beside each message, so nothing here decrypts or parses a
//! message. Strings were casemapped (`i;unicode-casemap`) when the fields
//! were made, so they compare as octets here.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_codec::imap_types::search::SearchKey;

use super::response::Completion;
use super::session::Session;
use crate::backend::{MailStore, MessageMeta, SortFieldMap, Uid};
use crate::mime::SortFields;

/// One matched message with what SORT and THREAD compare.
#[derive(Debug, Clone)]
pub(super) struct Sortable<'a> {
    /// Sequence number (the final tie-break, RFC 5256 §3).
    pub seq: u32,
    /// Clear metadata (ARRIVAL, SIZE, INTERNALDATE).
    pub meta: MessageMeta,
    /// The header fields.
    pub fields: &'a SortFields,
}

impl Sortable<'_> {
    /// The sent date: `Date:`, else INTERNALDATE (RFC 5256 §2.2, §3).
    pub fn sent(&self) -> i64 {
        self.fields.date().unwrap_or(self.meta.internal_date)
    }

    /// The number the client sees.
    pub fn number(&self, uid: bool) -> u32 {
        if uid { self.meta.uid } else { self.seq }
    }
}

/// A signed number as a `u64` of the same order.
fn ordered(value: i64) -> u64 {
    (value as u64) ^ (1 << 63)
}

/// The text a string key compares.
fn text<'a>(key: &SortKey, message: &Sortable<'a>) -> &'a str {
    match key {
        SortKey::Subject => message.fields.subject(),
        SortKey::From => message.fields.from(),
        SortKey::To => message.fields.to(),
        SortKey::Cc => message.fields.cc(),
        SortKey::DisplayFrom => message.fields.display_from(),
        SortKey::DisplayTo => message.fields.display_to(),
        SortKey::Arrival | SortKey::Date | SortKey::Size => "",
    }
}

/// One criterion as a number per message whose order is the criterion's
/// order. Strings are ranked once (distinct values sorted, usually far
/// fewer than messages), so sorting compares integers in one array instead
/// of chasing every message's fields: at 100,000 messages that is what
/// keeps SORT within Dovecot's time.
fn column(criterion: &SortCriterion, messages: &[Sortable<'_>]) -> Vec<u64> {
    let mut column: Vec<u64> = match &criterion.key {
        SortKey::Arrival => messages
            .iter()
            .map(|m| ordered(m.meta.internal_date))
            .collect(),
        SortKey::Date => messages.iter().map(|m| ordered(m.sent())).collect(),
        SortKey::Size => messages.iter().map(|m| u64::from(m.meta.size)).collect(),
        key => {
            let mut ranks: HashMap<&str, u64> = HashMap::new();
            for message in messages {
                ranks.entry(text(key, message)).or_insert(0);
            }
            let mut distinct: Vec<&str> = ranks.keys().copied().collect();
            distinct.sort_unstable();
            for (rank, value) in distinct.into_iter().enumerate() {
                ranks.insert(value, rank as u64);
            }
            messages
                .iter()
                .map(|m| ranks.get(text(key, m)).copied().unwrap_or_default())
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

/// Sorts `messages` (in sequence order) by `criteria`, then by sequence
/// number (RFC 5256 §3).
pub(super) fn sort(criteria: &[SortCriterion], messages: &mut Vec<Sortable<'_>>) {
    let columns: Vec<Vec<u64>> = criteria.iter().map(|c| column(c, messages)).collect();
    let mut order: Vec<usize> = (0..messages.len()).collect();
    // Stable sorts: equal keys keep sequence order.
    match columns.as_slice() {
        [] => {}
        [only] => order.sort_by_key(|&i| only[i]),
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

/// The matched messages joined with their fields (an empty set of fields
/// for a message the store has none of).
pub(super) fn join<'a>(
    found: Vec<(u32, MessageMeta)>,
    fields: &'a SortFieldMap,
    empty: &'a SortFields,
) -> Vec<Sortable<'a>> {
    found
        .into_iter()
        .map(|(seq, meta)| Sortable {
            seq,
            fields: fields.get(&meta.uid).unwrap_or(empty),
            meta,
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
    ) -> Result<(Vec<(u32, MessageMeta)>, Arc<SortFieldMap>), Completion> {
        let matches = self.matching(Some(charset), search).await?;
        let Some(selected) = self.selected() else {
            return Err(Completion::bad("No mailbox selected"));
        };
        let mut fields = Arc::default();
        if with_fields && !matches.found.is_empty() {
            let uids: Vec<Uid> = matches.found.iter().map(|(_, m)| m.uid).collect();
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
        let empty = SortFields::default();
        let mut messages = join(found, &fields, &empty);
        sort(criteria, &mut messages);
        let mut line = String::with_capacity(5 + messages.len() * 7);
        line.push_str("SORT");
        for message in &messages {
            line.push(' ');
            line.push_str(&message.number(uid).to_string());
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
    use crate::mime::SortFieldParts;

    fn message(
        seq: u32,
        size: u32,
        date: Option<i64>,
        subject: &str,
        from: &str,
    ) -> Sortable<'static> {
        let fields = SortFields::new(SortFieldParts {
            date,
            subject: subject.into(),
            from: from.into(),
            ..SortFieldParts::default()
        });
        Sortable {
            seq,
            meta: MessageMeta {
                uid: seq * 10,
                modseq: 1,
                flags: Vec::new(),
                size,
                internal_date: 1000 - i64::from(seq),
                internal_date_offset_minutes: 0,
            },
            // Leaked: a test's few messages live as long as the test.
            fields: Box::leak(Box::new(fields)),
        }
    }

    fn order(criteria: &[(bool, SortKey)], messages: &[Sortable<'static>]) -> Vec<u32> {
        let criteria: Vec<SortCriterion> = criteria
            .iter()
            .map(|(reverse, key)| SortCriterion {
                reverse: *reverse,
                key: key.clone(),
            })
            .collect();
        let mut messages = messages.to_vec();
        sort(&criteria, &mut messages);
        messages.iter().map(|m| m.seq).collect()
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
}
