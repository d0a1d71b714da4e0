//! Commands that change messages: STORE (RFC 3501 §6.4.6, UNCHANGEDSINCE
//! RFC 7162 §3.1.3), COPY (§6.4.7, COPYUID RFC 4315), MOVE (RFC 6851),
//! EXPUNGE and UID EXPUNGE (RFC 4315 §2.1), and APPEND (§6.3.11, APPENDUID).

use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::{Flag as ImapFlag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::SequenceSet;

use super::fragment::literal_announcement;
use super::mailbox::Names;
use super::response::{Completion, sequence_set};
use super::selected::flags_fetch;
use super::session::Session;
use crate::backend::{Flag, FlagOp, MailStore, StoreError, Uid};

/// Flags from the wire in the store's spelling. `\Recent` cannot be set
/// (RFC 3501 §2.3.2).
fn store_flags(flags: &[ImapFlag<'_>]) -> Vec<Flag> {
    flags
        .iter()
        .map(|flag| crate::backend::normalize_flag(&flag.to_string()))
        .filter(|flag| !flag.eq_ignore_ascii_case("\\Recent"))
        .collect()
}

/// `NO [TRYCREATE]` when the target is missing (RFC 3501 §6.3.11, §6.4.7).
fn target_error(error: StoreError) -> Completion {
    match error {
        StoreError::NoSuchMailbox(name) => {
            Completion::no_code("TRYCREATE", format!("Mailbox {name} does not exist"))
        }
        other => other.into(),
    }
}

impl<S: MailStore> Session<S> {
    /// STORE / UID STORE.
    pub(super) async fn store_command(
        &mut self,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[ImapFlag<'_>],
        uid: bool,
        modifiers: &[StoreModifier],
    ) -> Completion {
        let Some(selected) = self.selected() else {
            return Completion::bad("No mailbox selected");
        };
        if selected.read_only {
            return Completion::no("Mailbox is read-only (EXAMINE)");
        }
        let name = selected.name.clone();
        let targets = match selected.resolve(set, uid) {
            Ok(targets) => targets,
            Err(error) => return Completion::bad(error.to_string()),
        };
        let mut unchanged_since = None;
        for modifier in modifiers {
            let StoreModifier::UnchangedSince(value) = modifier;
            unchanged_since = Some(*value);
            self.condstore = true;
        }
        let op = match kind {
            StoreType::Replace => FlagOp::Replace,
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
        };
        let uids: Vec<Uid> = targets.iter().map(|(_, uid)| *uid).collect();
        if uids.is_empty() {
            return Completion::ok("STORE completed (no messages)");
        }
        let result = match self
            .store
            .store_flags(&name, &uids, op, &store_flags(flags), unchanged_since)
            .await
        {
            Ok(result) => result,
            Err(error) => return error.into(),
        };
        let silent = response == StoreResponse::Silent;
        for meta in &result.updated {
            let before = self.selected().and_then(|s| s.modseq_of(meta.uid));
            if let Some(selected) = self.selected_mut() {
                selected.record(meta);
            }
            let Some(seq) = self.selected().and_then(|s| s.seq_of(meta.uid)) else {
                continue;
            };
            if !silent {
                let recent = self.selected().is_some_and(|s| s.is_recent(meta.uid));
                self.out
                    .untagged(&flags_fetch(seq, meta, recent, uid, self.condstore));
            } else if self.condstore && before.is_some_and(|b| b < meta.modseq) {
                // RFC 7162 §3.1.3: even with .SILENT, the new MODSEQ of a
                // changed message is reported.
                let uid_part = if uid {
                    format!("UID {} ", meta.uid)
                } else {
                    String::new()
                };
                self.out
                    .untagged(&format!("{seq} FETCH ({uid_part}MODSEQ ({}))", meta.modseq));
            }
        }
        self.mark_dirty();
        if result.modified.is_empty() {
            return Completion::ok("STORE completed");
        }
        // RFC 7162 §3.1.3: the messages that failed UNCHANGEDSINCE.
        let numbers: Vec<u32> = if uid {
            result.modified.clone()
        } else {
            let mut seqs: Vec<u32> = result
                .modified
                .iter()
                .filter_map(|u| self.selected().and_then(|s| s.seq_of(*u)))
                .collect();
            seqs.sort_unstable();
            seqs
        };
        Completion::ok_code(
            format!("MODIFIED {}", sequence_set(&numbers)),
            "Conditional STORE failed for some messages",
        )
    }

    /// COPY, MOVE and their UID forms.
    pub(super) async fn copy_or_move(
        &mut self,
        set: &SequenceSet,
        mailbox: &Mailbox<'_>,
        uid: bool,
        moving: bool,
    ) -> Completion {
        let verb = if moving { "MOVE" } else { "COPY" };
        let target = match self.names.store_name(mailbox) {
            Ok(name) => name,
            Err(completion) => return completion,
        };
        let Some(selected) = self.selected() else {
            return Completion::bad("No mailbox selected");
        };
        if moving && selected.read_only {
            return Completion::no("Mailbox is read-only (EXAMINE)");
        }
        let name = selected.name.clone();
        let targets = match selected.resolve(set, uid) {
            Ok(targets) => targets,
            Err(error) => return Completion::bad(error.to_string()),
        };
        let uids: Vec<Uid> = targets.iter().map(|(_, uid)| *uid).collect();
        if uids.is_empty() {
            return Completion::ok(format!("{verb} completed (no messages)"));
        }
        let result = if moving {
            self.store.move_messages(&name, &uids, &target).await
        } else {
            self.store.copy(&name, &uids, &target).await
        };
        let result = match result {
            Ok(result) => result,
            Err(error) => return target_error(error),
        };
        let copyuid = if result.mapping.is_empty() {
            None
        } else {
            let sources: Vec<u32> = result.mapping.iter().map(|(s, _)| *s).collect();
            let destinations: Vec<u32> = result.mapping.iter().map(|(_, d)| *d).collect();
            Some(format!(
                "COPYUID {} {} {}",
                result.uid_validity,
                sequence_set(&sources),
                sequence_set(&destinations)
            ))
        };
        if !moving {
            return match copyuid {
                Some(code) => Completion::ok_code(code, "COPY completed"),
                None => Completion::ok("COPY completed"),
            };
        }
        // RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges.
        if let Some(code) = copyuid {
            self.out.untagged(&format!("OK [{code}] Moved"));
        }
        self.announce_own_expunges().await;
        Completion::ok("MOVE completed")
    }

    /// EXPUNGE, or UID EXPUNGE with a UID set (RFC 4315 §2.1).
    pub(super) async fn expunge(&mut self, uids: Option<&SequenceSet>) -> Completion {
        let Some(selected) = self.selected() else {
            return Completion::bad("No mailbox selected");
        };
        if selected.read_only {
            return Completion::no("Mailbox is read-only (EXAMINE)");
        }
        let name = selected.name.clone();
        let only: Option<Vec<Uid>> = match uids {
            None => None,
            Some(set) => match selected.resolve(set, true) {
                Ok(found) => Some(found.into_iter().map(|(_, uid)| uid).collect()),
                Err(error) => return Completion::bad(error.to_string()),
            },
        };
        match self.store.expunge(&name, only.as_deref()).await {
            Ok(expunged) if expunged.is_empty() => {}
            Ok(_) => self.announce_own_expunges().await,
            Err(error) => return error.into(),
        }
        Completion::ok("EXPUNGE completed")
    }

    /// After this session's EXPUNGE or MOVE: brings the view to the store's
    /// state at once and announces every expunge in it, ours and those held
    /// back (RFC 3501 §7.4.1 allows them during EXPUNGE; RFC 6851 §4.3 asks
    /// for them during MOVE), in descending order or as VANISHED.
    async fn announce_own_expunges(&mut self) {
        self.mark_dirty();
        self.sync(true, true).await;
    }

    /// APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315 §3).
    pub(super) async fn append(
        &mut self,
        mailbox: &Mailbox<'_>,
        flags: &[ImapFlag<'_>],
        date: Option<&DateTime>,
        message: LiteralOrLiteral8<'_>,
    ) -> Completion {
        let target = match self.names.store_name(mailbox) {
            Ok(name) => name,
            Err(completion) => return completion,
        };
        let mut bytes = match message {
            LiteralOrLiteral8::Literal(literal) => literal.into_inner().into_owned(),
            LiteralOrLiteral8::Literal8(literal) => literal.data.into_owned(),
        };
        if self.names == Names::Utf8 {
            unwrap_imaplib_utf8(&mut bytes);
        }
        if bytes.is_empty() {
            return Completion::no("Empty message");
        }
        let date = date.map(|d| {
            let d = d.as_ref();
            (d.timestamp(), d.offset().local_minus_utc() / 60)
        });
        match self
            .store
            .append(&target, &store_flags(flags), date, bytes)
            .await
        {
            Ok(result) => {
                if self.selected().is_some_and(|s| s.name == target) {
                    self.mark_dirty();
                }
                match result.mapping.first() {
                    Some((_, uid)) => Completion::ok_code(
                        format!("APPENDUID {} {uid}", result.uid_validity),
                        "APPEND completed",
                    ),
                    None => Completion::ok("APPEND completed"),
                }
            }
            Err(error) => target_error(error),
        }
    }
}

/// Python's imaplib (3.11, the version on this machine) sends APPEND after
/// `ENABLE UTF8=ACCEPT` as `APPEND box {n}` with `UTF8 (<message>)` as the
/// literal: the data item's wrapper inside the message. No message can
/// start with `UTF8 (` (a header field name holds no space), so the wrapper
/// is taken off and the message stored as the client meant it.
fn unwrap_imaplib_utf8(bytes: &mut Vec<u8>) {
    if bytes.len() > 7 && bytes.starts_with(b"UTF8 (") && bytes.ends_with(b")") {
        bytes.pop();
        bytes.drain(..6);
    }
}

/// `APPEND ... UTF8 (~{n}<CRLF><message>)` (the UTF8 append data item of
/// RFC 6855 §4, kept by RFC 9755 for clients that send it) rewritten to the
/// plain `APPEND ... ~{n}<CRLF><message>` that imap-codec parses; `None` if
/// `message` is not of that form. The message bytes are kept as sent.
pub(super) fn utf8_append_data(message: &[u8]) -> Option<Vec<u8>> {
    let line_end = message.iter().position(|&b| b == b'\n')? + 1;
    let (length, _) = literal_announcement(&message[..line_end])?;
    let line = message[..line_end].strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line.split(|&b| b == b' ');
    words.next()?; // tag
    if !words.next()?.eq_ignore_ascii_case(b"APPEND") {
        return None;
    }
    let brace = line.iter().rposition(|&b| b == b'{')?;
    let announcement = &line[brace.checked_sub(1)?..];
    let before = line[..brace].strip_suffix(b"~")?.strip_suffix(b"(")?;
    let keyword = before.len().checked_sub(5)?;
    if !before[keyword..].eq_ignore_ascii_case(b"UTF8 ") || !before[..keyword].ends_with(b" ") {
        return None;
    }
    let data_end = line_end.checked_add(usize::try_from(length).ok()?)?;
    let data = message.get(line_end..data_end)?;
    if !matches!(&message[data_end..], b")\r\n" | b")\n") {
        return None;
    }
    let mut out = Vec::with_capacity(message.len());
    out.extend_from_slice(&before[..keyword]);
    out.extend_from_slice(announcement);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_flags_to_store_flags() {
        let flags = [
            ImapFlag::Seen,
            ImapFlag::try_from("$Forwarded").expect("keyword"),
            ImapFlag::try_from("\\Recent").expect("flag"),
        ];
        assert_eq!(store_flags(&flags), vec!["\\Seen", "$Forwarded"]);
    }

    #[test]
    fn missing_target_asks_to_create() {
        let c = target_error(StoreError::NoSuchMailbox("Nope".into()));
        assert_eq!(c.code.as_deref(), Some("TRYCREATE"));
        let c = target_error(StoreError::Cannot("x".into()));
        assert_eq!(c.code.as_deref(), Some("CANNOT"));
    }

    #[test]
    fn utf8_append_data_is_unwrapped() {
        let wrapped = b"a1 APPEND INBOX (\\Seen) utf8 (~{6}\r\nSubj\xc3\xa9)\r\n";
        assert_eq!(
            utf8_append_data(wrapped).as_deref(),
            Some(&b"a1 APPEND INBOX (\\Seen) ~{6}\r\nSubj\xc3\xa9\r\n"[..])
        );
        let non_sync = b"a1 APPEND \"Entw\xc3\xbcrfe\" UTF8 (~{2+}\r\nhi)\r\n";
        assert_eq!(
            utf8_append_data(non_sync).as_deref(),
            Some(&b"a1 APPEND \"Entw\xc3\xbcrfe\" ~{2+}\r\nhi\r\n"[..])
        );
        for other in [
            &b"a1 APPEND INBOX {2}\r\nhi\r\n"[..],
            b"a1 APPEND INBOX UTF8 (~{2}\r\nhi\r\n",
            b"a1 APPEND INBOX UTF8 (~{3}\r\nhi)\r\n",
            b"a1 SEARCH UTF8 (~{2}\r\nhi)\r\n",
            b"a1 APPEND INBOX XUTF8 (~{2}\r\nhi)\r\n",
        ] {
            assert_eq!(utf8_append_data(other), None, "{other:?}");
        }
    }
}
