//! SORT and UID SORT (RFC 5256 §3) with the DISPLAYFROM and DISPLAYTO keys
//! of RFC 5957, and the gathering of sort fields THREAD shares.
//!
//! The messages are those the search criteria match (see `search`); their
//! fields come from [`MailStore::sort_fields`], which a store answers from
//! what it keeps beside each message, so nothing here decrypts or parses a
//! message. Strings were casemapped (`i;unicode-casemap`) when the fields
//! were made, so they compare as octets here.

use std::cmp::Ordering;
use std::sync::Arc;

use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_codec::imap_types::search::SearchKey;

use super::response::Completion;
use super::session::Session;
use crate::backend::{MailStore, MessageMeta, Uid};
use crate::mime::SortFields;

/// One matched message with what SORT and THREAD compare.
#[derive(Debug, Clone)]
pub(super) struct Sortable {
    /// Sequence number (the final tie-break, RFC 5256 §3).
    pub seq: u32,
    /// Clear metadata (ARRIVAL, SIZE, INTERNALDATE).
    pub meta: MessageMeta,
    /// The header fields.
    pub fields: Arc<SortFields>,
}

impl Sortable {
    /// The sent date: `Date:`, else INTERNALDATE (RFC 5256 §2.2, §3).
    pub fn sent(&self) -> i64 {
        self.fields.date().unwrap_or(self.meta.internal_date)
    }

    /// The number the client sees.
    pub fn number(&self, uid: bool) -> u32 {
        if uid { self.meta.uid } else { self.seq }
    }
}

fn compare_key(key: &SortKey, a: &Sortable, b: &Sortable) -> Ordering {
    match key {
        SortKey::Arrival => a.meta.internal_date.cmp(&b.meta.internal_date),
        SortKey::Date => a.sent().cmp(&b.sent()),
        SortKey::Size => a.meta.size.cmp(&b.meta.size),
        SortKey::Subject => a.fields.subject().cmp(b.fields.subject()),
        SortKey::From => a.fields.from().cmp(b.fields.from()),
        SortKey::To => a.fields.to().cmp(b.fields.to()),
        SortKey::Cc => a.fields.cc().cmp(b.fields.cc()),
        SortKey::DisplayFrom => a.fields.display_from().cmp(b.fields.display_from()),
        SortKey::DisplayTo => a.fields.display_to().cmp(b.fields.display_to()),
    }
}

/// Orders `a` and `b` by `criteria`, then by sequence number.
fn compare(criteria: &[SortCriterion], a: &Sortable, b: &Sortable) -> Ordering {
    for criterion in criteria {
        let order = compare_key(&criterion.key, a, b);
        let order = if criterion.reverse {
            order.reverse()
        } else {
            order
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.seq.cmp(&b.seq)
}

/// Sorts `messages` in place (RFC 5256 §3).
pub(super) fn sort(criteria: &[SortCriterion], messages: &mut [Sortable]) {
    messages.sort_unstable_by(|a, b| compare(criteria, a, b));
}

impl<S: MailStore> Session<S> {
    /// The messages matching `search`, with their sort fields (fetched only
    /// when `with_fields`).
    pub(super) async fn sortables(
        &mut self,
        charset: &Charset<'_>,
        search: &[SearchKey<'_>],
        with_fields: bool,
    ) -> Result<Vec<Sortable>, Completion> {
        let matches = self.matching(Some(charset), search).await?;
        let Some(selected) = self.selected() else {
            return Err(Completion::bad("No mailbox selected"));
        };
        let mut fields: Vec<(Uid, Arc<SortFields>)> = Vec::new();
        if with_fields && !matches.found.is_empty() {
            let uids: Vec<Uid> = matches.found.iter().map(|(_, m)| m.uid).collect();
            let name = selected.name.clone();
            fields = self
                .store
                .sort_fields(&name, &uids)
                .await
                .map_err(Completion::from)?;
        }
        // The answer follows the order asked (ascending UID), with missing
        // UIDs left out: walk both lists together.
        let empty = Arc::new(SortFields::default());
        let mut fields = fields.into_iter().peekable();
        Ok(matches
            .found
            .into_iter()
            .map(|(seq, meta)| {
                while fields.next_if(|(uid, _)| *uid < meta.uid).is_some() {}
                let found = fields.next_if(|(uid, _)| *uid == meta.uid);
                Sortable {
                    seq,
                    fields: found.map_or_else(|| Arc::clone(&empty), |(_, f)| f),
                    meta,
                }
            })
            .collect())
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
        let mut messages = match self.sortables(charset, search, with_fields).await {
            Ok(messages) => messages,
            Err(completion) => return completion,
        };
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

    fn message(seq: u32, size: u32, date: Option<i64>, subject: &str, from: &str) -> Sortable {
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
            fields: Arc::new(SortFields::new(SortFieldParts {
                date,
                subject: subject.into(),
                from: from.into(),
                ..SortFieldParts::default()
            })),
        }
    }

    fn order(criteria: &[(bool, SortKey)], messages: &[Sortable]) -> Vec<u32> {
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
    }
}
