//! SEARCH and UID SEARCH (RFC 3501 §6.4.4) with the CONDSTORE MODSEQ
//! criterion (RFC 7162 §3.1.5).
//!
//! Criteria on flags, sizes, dates and numbers are answered from the
//! session's view; message bytes are fetched (header only when enough) only
//! if a criterion needs them. Text matching itself is `crate::mime`'s job.

use std::fmt::Write as _;

use chrono::{FixedOffset, NaiveDate, TimeZone, Utc};
use imap_codec::imap_types::core::{AString, Charset};
use imap_codec::imap_types::search::SearchKey;

use super::fetch::Need;
use super::response::Completion;
use super::selected::{Hit, contains, intervals};
use super::session::Session;
use crate::backend::{MailStore, MessageMeta, Uid};
use crate::mime;

/// Messages fetched per store call while searching text.
const SEARCH_BATCH: usize = 32;

fn need(key: &SearchKey<'_>) -> Need {
    match key {
        SearchKey::And(keys) => keys
            .as_ref()
            .iter()
            .map(need)
            .max()
            .unwrap_or(Need::Nothing),
        SearchKey::Or(a, b) => need(a).max(need(b)),
        SearchKey::Not(inner) => need(inner),
        SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::To(_)
        | SearchKey::Subject(_)
        | SearchKey::Header(_, _)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => Need::Header,
        SearchKey::Body(_) | SearchKey::Text(_) => Need::Full,
        _ => Need::Nothing,
    }
}

fn uses_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(uses_modseq),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::Not(inner) => uses_modseq(inner),
        SearchKey::ModSequence { .. } => true,
        _ => false,
    }
}

/// What one message looks like to the criteria.
#[derive(Debug)]
pub struct Candidate<'a> {
    /// Sequence number.
    pub seq: u32,
    /// Metadata.
    pub meta: &'a MessageMeta,
    /// Bytes, when the criteria need them.
    pub message: &'a [u8],
    /// Whether the session shows it with `\Recent`.
    pub recent: bool,
}

/// Numbers `*` stands for.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Highest sequence number.
    pub exists: u32,
    /// Highest UID.
    pub largest_uid: Uid,
}

fn text(value: &AString<'_>) -> String {
    String::from_utf8_lossy(value.as_ref()).into_owned()
}

fn has_flag(meta: &MessageMeta, flag: &str) -> bool {
    meta.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

/// INTERNALDATE's calendar day in its own zone (RFC 3501 §6.4.4:
/// "disregarding time and timezone").
fn internal_day(meta: &MessageMeta) -> Option<NaiveDate> {
    let zone = FixedOffset::east_opt(meta.internal_date_offset_minutes.saturating_mul(60))?;
    Some(
        zone.timestamp_opt(meta.internal_date, 0)
            .single()?
            .date_naive(),
    )
}

fn sent_day(message: &[u8]) -> Option<NaiveDate> {
    let seconds = mime::sent_date(message)?;
    Some(Utc.timestamp_opt(seconds, 0).single()?.date_naive())
}

/// Whether one message matches a criterion.
pub fn matches(key: &SearchKey<'_>, c: &Candidate<'_>, bounds: Bounds) -> bool {
    let meta = c.meta;
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| matches(k, c, bounds)),
        SearchKey::Or(a, b) => matches(a, c, bounds) || matches(b, c, bounds),
        SearchKey::Not(inner) => !matches(inner, c, bounds),
        SearchKey::SequenceSet(set) => contains(&intervals(set, bounds.exists), c.seq),
        SearchKey::Uid(set) => contains(&intervals(set, bounds.largest_uid), meta.uid),
        SearchKey::All => true,
        SearchKey::Answered => has_flag(meta, "\\Answered"),
        SearchKey::Deleted => has_flag(meta, "\\Deleted"),
        SearchKey::Draft => has_flag(meta, "\\Draft"),
        SearchKey::Flagged => has_flag(meta, "\\Flagged"),
        SearchKey::Seen => has_flag(meta, "\\Seen"),
        SearchKey::Unanswered => !has_flag(meta, "\\Answered"),
        SearchKey::Undeleted => !has_flag(meta, "\\Deleted"),
        SearchKey::Undraft => !has_flag(meta, "\\Draft"),
        SearchKey::Unflagged => !has_flag(meta, "\\Flagged"),
        SearchKey::Unseen => !has_flag(meta, "\\Seen"),
        SearchKey::Keyword(keyword) => has_flag(meta, keyword.inner()),
        SearchKey::Unkeyword(keyword) => !has_flag(meta, keyword.inner()),
        SearchKey::Recent => c.recent,
        SearchKey::New => c.recent && !has_flag(meta, "\\Seen"),
        SearchKey::Old => !c.recent,
        SearchKey::Larger(size) => meta.size > *size,
        SearchKey::Smaller(size) => meta.size < *size,
        SearchKey::Before(date) => internal_day(meta).is_some_and(|d| d < *date.as_ref()),
        SearchKey::On(date) => internal_day(meta).is_some_and(|d| d == *date.as_ref()),
        SearchKey::Since(date) => internal_day(meta).is_some_and(|d| d >= *date.as_ref()),
        SearchKey::SentBefore(date) => sent_day(c.message).is_some_and(|d| d < *date.as_ref()),
        SearchKey::SentOn(date) => sent_day(c.message).is_some_and(|d| d == *date.as_ref()),
        SearchKey::SentSince(date) => sent_day(c.message).is_some_and(|d| d >= *date.as_ref()),
        SearchKey::Bcc(v) => mime::header_contains(c.message, "Bcc", &text(v)),
        SearchKey::Cc(v) => mime::header_contains(c.message, "Cc", &text(v)),
        SearchKey::From(v) => mime::header_contains(c.message, "From", &text(v)),
        SearchKey::To(v) => mime::header_contains(c.message, "To", &text(v)),
        SearchKey::Subject(v) => mime::header_contains(c.message, "Subject", &text(v)),
        SearchKey::Header(field, v) => mime::header_contains(c.message, &text(field), &text(v)),
        SearchKey::Body(v) => mime::body_contains(c.message, &text(v)),
        SearchKey::Text(v) => mime::text_contains(c.message, &text(v)),
        SearchKey::ModSequence { modseq, .. } => meta.modseq >= *modseq,
    }
}

/// The charsets SEARCH, SORT and THREAD accept (RFC 3501 §6.4.4).
pub(super) fn check_charset(charset: &Charset<'_>) -> Result<(), Completion> {
    let name = match charset {
        Charset::Atom(atom) => atom.inner().to_string(),
        Charset::Quoted(quoted) => quoted.inner().to_string(),
    };
    if name.eq_ignore_ascii_case("US-ASCII") || name.eq_ignore_ascii_case("UTF-8") {
        Ok(())
    } else {
        Err(Completion::no_code(
            "BADCHARSET (US-ASCII UTF-8)",
            "Unsupported charset",
        ))
    }
}

/// The messages that matched a search, in sequence order.
#[derive(Debug, Default)]
pub(super) struct Matches {
    /// Each match, ascending.
    pub found: Vec<Hit>,
    /// The criteria used MODSEQ (RFC 7162 §3.1.5).
    pub with_modseq: bool,
}

impl<S: MailStore> Session<S> {
    /// The messages of the selected mailbox that match every criterion
    /// (SEARCH, and the search part of SORT and THREAD).
    pub(super) async fn matching(
        &mut self,
        charset: Option<&Charset<'_>>,
        criteria: &[SearchKey<'_>],
    ) -> Result<Matches, Completion> {
        if let Some(charset) = charset {
            check_charset(charset)?;
        }
        let Some(selected) = self.selected() else {
            return Err(Completion::bad("No mailbox selected"));
        };
        let name = selected.name.clone();
        let bounds = Bounds {
            exists: selected.exists(),
            largest_uid: selected.largest_uid(),
        };
        let key = SearchKey::And(match criteria.to_vec().try_into() {
            Ok(keys) => keys,
            Err(_) => return Err(Completion::bad("Empty search")),
        });
        let with_modseq = uses_modseq(&key);
        if with_modseq {
            self.condstore = true;
        }
        let need = need(&key);
        let Some(selected) = self.selected() else {
            return Err(Completion::bad("No mailbox selected"));
        };
        if matches!(key, SearchKey::And(ref keys) if keys.as_ref() == [SearchKey::All]) {
            return Ok(Matches {
                found: selected.hits(),
                with_modseq,
            });
        }
        let live: Vec<(u32, MessageMeta)> = selected.live();

        let mut found = Vec::new();
        for chunk in live.chunks(SEARCH_BATCH) {
            let contents = if need == Need::Nothing {
                Default::default()
            } else {
                let uids: Vec<Uid> = chunk.iter().map(|(_, m)| m.uid).collect();
                super::fetch::contents(&self.store, &name, &uids, need)
                    .await
                    .map_err(Completion::from)?
            };
            for (seq, meta) in chunk {
                let message = contents.get(&meta.uid).map(|m| &m[..]).unwrap_or_default();
                let candidate = Candidate {
                    seq: *seq,
                    meta,
                    message,
                    recent: selected.is_recent(meta.uid),
                };
                if matches(&key, &candidate, bounds) {
                    found.push(Hit::of(*seq, meta));
                }
            }
        }
        Ok(Matches { found, with_modseq })
    }

    /// SEARCH / UID SEARCH, and with RETURN options ESEARCH (RFC 4731) and
    /// SEARCHRES (RFC 5182).
    pub(super) async fn search(
        &mut self,
        tag: &str,
        charset: Option<&Charset<'_>>,
        criteria: &[SearchKey<'_>],
        uid: bool,
    ) -> Completion {
        let returns = self.search_return.take();
        let matches = match self.matching(charset, criteria).await {
            Ok(matches) => matches,
            Err(completion) => {
                // RFC 5182 §2.1: a failed SEARCH ... SAVE empties `$`.
                if returns.as_ref().is_some_and(|r| r.save)
                    && let Some(selected) = self.selected_mut()
                {
                    selected.saved = Some(Vec::new());
                }
                return completion;
            }
        };
        let found = &matches.found;
        let highest = found.iter().map(|hit| hit.modseq).max();
        let modseq = if matches.with_modseq { highest } else { None };
        if let Some(returns) = returns {
            self.esearch_reply(tag, &returns, found, uid, modseq);
        } else {
            let mut line = String::from("SEARCH");
            for hit in found {
                // Writing to a String cannot fail.
                let _ = write!(line, " {}", if uid { hit.uid } else { hit.seq });
            }
            // RFC 7162 §3.1.5: the highest MODSEQ of the matches.
            if let Some(highest) = modseq {
                line.push_str(&format!(" (MODSEQ {highest})"));
            }
            self.out.untagged(&line);
        }
        Completion::ok(if uid {
            "UID SEARCH completed"
        } else {
            "SEARCH completed"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::CommandCodec;
    use imap_codec::decode::Decoder;
    use imap_codec::imap_types::command::CommandBody;

    const MESSAGE: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: Quarterly report\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nThe numbers are in.\r\n";

    fn criteria(line: &str) -> Vec<SearchKey<'static>> {
        use imap_codec::imap_types::IntoStatic;
        let bytes = format!("a SEARCH {line}\r\n");
        let (_, command) = CommandCodec::default()
            .decode(bytes.as_bytes())
            .expect("decode");
        match command.body.into_static() {
            CommandBody::Search { criteria, .. } => criteria.into_inner(),
            other => panic!("not a search: {other:?}"),
        }
    }

    fn check(line: &str, meta: &MessageMeta, seq: u32) -> bool {
        check_as(line, meta, seq, false)
    }

    /// [`check`] for a message the session shows as `\Recent` or not.
    fn check_as(line: &str, meta: &MessageMeta, seq: u32, recent: bool) -> bool {
        let keys = criteria(line);
        let key = SearchKey::And(keys.try_into().expect("non-empty"));
        let candidate = Candidate {
            seq,
            meta,
            message: MESSAGE,
            recent,
        };
        matches(
            &key,
            &candidate,
            Bounds {
                exists: 10,
                largest_uid: 40,
            },
        )
    }

    fn meta() -> MessageMeta {
        MessageMeta {
            uid: 33,
            modseq: 7,
            flags: vec!["\\Seen".into(), "$Work".into()],
            size: 500,
            // 2026-03-03T10:00:00Z
            internal_date: 1_772_532_000,
            internal_date_offset_minutes: 0,
        }
    }

    #[test]
    fn flags_and_numbers() {
        let m = meta();
        assert!(check("SEEN", &m, 3));
        assert!(!check("UNSEEN", &m, 3));
        assert!(check("KEYWORD $work", &m, 3));
        assert!(check("UNFLAGGED UNDELETED", &m, 3));
        assert!(check("2:4", &m, 3));
        assert!(!check("4:*", &m, 3));
        assert!(check("UID 30:*", &m, 3));
        assert!(check("LARGER 499 SMALLER 501", &m, 3));
        assert!(check("OR DELETED SEEN", &m, 3));
        assert!(check("NOT NEW OLD", &m, 3));
        assert!(!check("RECENT", &m, 3));
        // NEW is RECENT and UNSEEN (RFC 3501 §6.4.4); OLD is NOT RECENT.
        assert!(check_as("RECENT NOT OLD", &m, 3, true));
        assert!(!check_as("NEW", &m, 3, true));
        let unseen = MessageMeta {
            flags: vec![],
            ..m.clone()
        };
        assert!(check_as("NEW", &unseen, 3, true));
        assert!(!check_as("NEW", &unseen, 3, false));
        assert!(check("MODSEQ 7", &m, 3));
        assert!(!check("MODSEQ 8", &m, 3));
    }

    #[test]
    fn dates() {
        let m = meta();
        assert!(check("ON 3-Mar-2026", &m, 1));
        assert!(check("SINCE 3-Mar-2026 BEFORE 4-Mar-2026", &m, 1));
        assert!(!check("BEFORE 3-Mar-2026", &m, 1));
        assert!(check("SENTON 3-Mar-2026", &m, 1));
        assert!(check("SENTSINCE 1-Jan-2026 SENTBEFORE 1-Apr-2026", &m, 1));
    }

    #[test]
    fn text_criteria_use_mime() {
        let m = meta();
        assert!(check("SUBJECT quarterly", &m, 1));
        assert!(check("FROM alice", &m, 1));
        assert!(check("TO bob@example.org", &m, 1));
        assert!(!check("CC bob", &m, 1));
        assert!(check("HEADER Subject report", &m, 1));
        assert!(check("BODY numbers", &m, 1));
        assert!(check("TEXT alice", &m, 1));
        assert!(!check("BODY absent", &m, 1));
    }

    #[test]
    fn needs() {
        let keys = criteria("SEEN SUBJECT x");
        assert_eq!(keys.iter().map(need).max(), Some(Need::Header));
        let keys = criteria("OR SEEN BODY x");
        assert_eq!(keys.iter().map(need).max(), Some(Need::Full));
    }
}
