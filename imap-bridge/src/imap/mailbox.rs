//! Mailbox commands: SELECT/EXAMINE (with CONDSTORE and QRESYNC, RFC 7162),
//! CLOSE, UNSELECT (RFC 3691), CREATE, DELETE, RENAME, SUBSCRIBE,
//! UNSUBSCRIBE and STATUS (RFC 3501 §6.3), and the translation between wire
//! mailbox names (modified UTF-7) and the store's UTF-8 names.

use std::sync::Arc;

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::SequenceSet;
use imap_codec::imap_types::status::StatusDataItemName;

use super::response::{Completion, sequence_set, string, string_utf8};
use super::selected::{Selected, contains, flags_fetch, intervals};
use super::session::{Session, State};
use super::utf7;
use crate::backend::{Changes, MailStore, MailboxInfo, MailboxSnapshot, StoreError, Uid};
use crate::index::MessageIndex;

/// How mailbox names travel on a connection: modified UTF-7 (RFC 3501
/// §5.1.3) until the client enables UTF8=ACCEPT, plain UTF-8 after it
/// (RFC 9755 §3: the server then neither sends nor interprets modified
/// UTF-7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Names {
    #[default]
    Utf7,
    Utf8,
}

impl Names {
    /// A name or pattern from the wire as text, leniently: modified UTF-7
    /// when it is valid, else as sent.
    pub fn decode_lossy(self, raw: &[u8]) -> String {
        let text = String::from_utf8_lossy(raw);
        match self {
            Names::Utf8 => text.into_owned(),
            Names::Utf7 => utf7::decode(&text).unwrap_or_else(|| text.into_owned()),
        }
    }

    /// The store name of a wire mailbox name. `INBOX` in any case is
    /// INBOX; other names are modified UTF-7, or raw UTF-8 from clients
    /// that send it anyway (or have enabled UTF8=ACCEPT).
    pub fn store_name(self, mailbox: &Mailbox<'_>) -> Result<String, Completion> {
        let raw = match mailbox {
            Mailbox::Inbox => return Ok("INBOX".to_string()),
            Mailbox::Other(other) => other.as_ref(),
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            return Err(Completion::bad("Mailbox name is not valid UTF-8"));
        };
        let name = if self == Names::Utf7 && text.is_ascii() {
            utf7::decode(text)
                .ok_or_else(|| Completion::bad("Invalid modified UTF-7 mailbox name"))?
        } else {
            text.to_string()
        };
        if name.eq_ignore_ascii_case("INBOX") {
            return Ok("INBOX".to_string());
        }
        if name.is_empty() || name.contains(['\r', '\n', '\0']) {
            return Err(Completion::no_code("CANNOT", "Invalid mailbox name"));
        }
        Ok(name)
    }

    /// A store name as an IMAP astring for responses: modified UTF-7 and
    /// quoted, or (UTF8=ACCEPT) UTF-8, quoted.
    pub fn wire(self, name: &str) -> String {
        if name == "INBOX" {
            return "INBOX".to_string();
        }
        match self {
            Names::Utf7 => string(&utf7::encode(name)),
            Names::Utf8 => string_utf8(name),
        }
    }
}

/// The flags every mailbox offers (RFC 3501 §2.3.2), plus common keywords
/// clients expect to be able to set.
const SYSTEM_FLAGS: [&str; 5] = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

/// The STATUS items a [`MailboxInfo`] does not hold, counted only when
/// asked for (0 otherwise).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Messages flagged `\Deleted` (RFC 9051 STATUS DELETED).
    pub deleted: u32,
    /// Messages with `\Recent` (RFC 3501 STATUS RECENT).
    pub recent: u32,
}

/// Untagged `STATUS` data for one mailbox (RFC 3501 §7.2.4).
pub fn status_line(
    info: &MailboxInfo,
    items: &[StatusDataItemName],
    counts: Counts,
    names: Names,
) -> String {
    let mut parts = Vec::new();
    for item in items {
        let part = match item {
            StatusDataItemName::Messages => format!("MESSAGES {}", info.messages),
            StatusDataItemName::Recent => format!("RECENT {}", counts.recent),
            StatusDataItemName::UidNext => format!("UIDNEXT {}", info.uid_next),
            StatusDataItemName::UidValidity => format!("UIDVALIDITY {}", info.uid_validity),
            StatusDataItemName::Unseen => format!("UNSEEN {}", info.unseen),
            StatusDataItemName::Deleted => format!("DELETED {}", counts.deleted),
            StatusDataItemName::DeletedStorage => "DELETED-STORAGE 0".to_string(),
            // RFC 8438: the sum of the messages' RFC822.SIZE.
            StatusDataItemName::Size => format!("SIZE {}", info.size),
            StatusDataItemName::HighestModSeq => {
                format!("HIGHESTMODSEQ {}", info.highest_modseq)
            }
        };
        parts.push(part);
    }
    format!("STATUS {} ({})", names.wire(&info.name), parts.join(" "))
}

impl<S: MailStore> Session<S> {
    /// SELECT and EXAMINE (RFC 3501 §6.3.1-2, RFC 7162 §3.1.8, §3.2.5).
    pub(super) async fn select(
        &mut self,
        mailbox: &Mailbox<'_>,
        parameters: Vec<SelectParameter>,
        read_only: bool,
    ) -> Completion {
        let name = match self.names.store_name(mailbox) {
            Ok(name) => name,
            Err(completion) => return completion,
        };
        let mut qresync = None;
        for parameter in parameters {
            match parameter {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    ..
                } => {
                    // RFC 7162 §3.2.5: only after ENABLE QRESYNC.
                    if !self.qresync {
                        return Completion::bad("QRESYNC is not enabled");
                    }
                    qresync = Some((uid_validity.get(), mod_sequence_value.get(), known_uids));
                }
            }
        }
        // Selecting closes the previous mailbox, without expunge
        // (RFC 3501 §6.3.1); RFC 7162 §3.2.11 marks the boundary.
        if matches!(self.state, State::Selected(_)) {
            self.state = State::Authenticated;
            self.out.untagged("OK [CLOSED] Previous mailbox closed");
        }
        let mut snapshot = match self.store.snapshot(&name).await {
            Ok(snapshot) => snapshot,
            Err(error) => return error.into(),
        };
        // QRESYNC (RFC 7162 §3.2.5.1): the changes and the view the session
        // starts from must be the same state, so the view is the index the
        // changes lead to.
        let mut catch_up = None;
        if let Some((uid_validity, since, known)) = qresync
            && uid_validity == snapshot.info.uid_validity
        {
            match self.store.changes_since(&name, since).await {
                Ok(changes) => {
                    snapshot.index = Arc::clone(&changes.index);
                    catch_up = Some((changes, since, known));
                }
                Err(error) => return error.into(),
            }
        }
        // \Recent (RFC 3501 §2.3.2): SELECT claims what no session has
        // been told of; EXAMINE shows it and leaves it for the next one.
        let below = snapshot.index.uid_next().max(snapshot.info.uid_next);
        let recent_first = match self.store.recent(&name, below, !read_only).await {
            Ok(recent) => recent.first,
            Err(error) => return error.into(),
        };
        self.write_select_data(&snapshot, read_only, recent_first);
        if let Some((changes, since, known)) = catch_up {
            self.qresync_catch_up(
                &snapshot.index,
                changes,
                since,
                known.as_ref(),
                recent_first,
            );
        }
        let mut selected = Selected::new(snapshot, read_only);
        selected.add_recent(recent_first, below);
        self.state = State::Selected(Box::new(selected));
        if read_only {
            Completion::ok_code("READ-ONLY", "EXAMINE completed")
        } else {
            Completion::ok_code("READ-WRITE", "SELECT completed")
        }
    }

    /// The untagged data of SELECT (RFC 3501 §6.3.1), all from the index:
    /// nothing here reads the messages.
    /// The messages from UID `recent_first` on are recent for this session.
    fn write_select_data(
        &mut self,
        snapshot: &MailboxSnapshot,
        read_only: bool,
        recent_first: Uid,
    ) {
        let index = &snapshot.index;
        let mut flags: Vec<&str> = SYSTEM_FLAGS.to_vec();
        flags.extend(index.keywords());
        self.out.untagged(&format!("FLAGS ({})", flags.join(" ")));
        if read_only {
            self.out
                .untagged("OK [PERMANENTFLAGS ()] Read-only mailbox");
        } else {
            self.out.untagged(&format!(
                "OK [PERMANENTFLAGS ({} \\*)] Flags permitted",
                flags.join(" ")
            ));
        }
        self.out.untagged(&format!("{} EXISTS", index.len()));
        let older = index.position(recent_first).unwrap_or_else(|p| p);
        self.out
            .untagged(&format!("{} RECENT", index.len() as usize - older));
        if let Some(position) = index.first_unseen() {
            self.out.untagged(&format!(
                "OK [UNSEEN {}] First unseen message",
                position + 1
            ));
        }
        let info = &snapshot.info;
        self.out.untagged(&format!(
            "OK [UIDVALIDITY {}] UIDs valid",
            info.uid_validity
        ));
        self.out.untagged(&format!(
            "OK [UIDNEXT {}] Predicted next UID",
            index.uid_next().max(info.uid_next)
        ));
        self.out.untagged(&format!(
            "OK [HIGHESTMODSEQ {}] Highest",
            index.modseq().max(info.highest_modseq).max(1)
        ));
    }

    /// QRESYNC resynchronisation after SELECT (RFC 7162 §3.2.5.1):
    /// `VANISHED (EARLIER)` for expunged known UIDs, then FETCH for every
    /// message changed since the client's MODSEQ. `changes` lead to
    /// `index`; the cost is that of the changes.
    fn qresync_catch_up(
        &mut self,
        index: &MessageIndex,
        changes: Changes,
        since: u64,
        known: Option<&SequenceSet>,
        recent_first: Uid,
    ) {
        let largest = index.uid_next().saturating_sub(1);
        let known = known.map(|set| intervals(set, largest));
        let vanished: Vec<Uid> = changes
            .vanished
            .iter()
            .copied()
            .filter(|uid| *uid < index.uid_next() && !index.contains(*uid))
            .filter(|uid| known.as_ref().is_none_or(|k| contains(k, *uid)))
            .collect();
        if !vanished.is_empty() {
            self.out
                .untagged(&format!("VANISHED (EARLIER) {}", sequence_set(&vanished)));
        }
        for meta in &changes.changed {
            if meta.modseq > since
                && let Ok(position) = index.position(meta.uid)
            {
                let seq = u32::try_from(position + 1).unwrap_or(u32::MAX);
                let recent = meta.uid >= recent_first;
                self.out
                    .untagged(&flags_fetch(seq, meta, recent, true, true));
            }
        }
    }

    /// CLOSE (expunges silently, RFC 3501 §6.4.2) or UNSELECT (RFC 3691).
    pub(super) async fn close(&mut self, expunge: bool) -> Completion {
        let Some(selected) = self.selected() else {
            return Completion::bad("No mailbox selected");
        };
        let (name, read_only) = (selected.name.clone(), selected.read_only);
        self.state = State::Authenticated;
        if expunge
            && !read_only
            && let Err(error) = self.store.expunge(&name, None).await
        {
            return error.into();
        }
        if expunge {
            Completion::ok("CLOSE completed")
        } else {
            Completion::ok("UNSELECT completed")
        }
    }

    /// CREATE (RFC 3501 §6.3.3).
    pub(super) async fn create(&mut self, mailbox: &Mailbox<'_>) -> Completion {
        let name = match self.names.store_name(mailbox) {
            Ok(name) => name,
            Err(completion) => return completion,
        };
        // A trailing delimiter only declares intent to create children.
        let name = name.trim_end_matches('/').to_string();
        if name.is_empty() || name.split('/').any(str::is_empty) {
            return Completion::no_code("CANNOT", "Invalid mailbox name");
        }
        if name.eq_ignore_ascii_case("INBOX") {
            return Completion::no_code("ALREADYEXISTS", "INBOX always exists");
        }
        match self.store.create_mailbox(&name).await {
            Ok(()) => Completion::ok("CREATE completed"),
            Err(error) => error.into(),
        }
    }

    /// DELETE (RFC 3501 §6.3.4).
    pub(super) async fn delete(&mut self, mailbox: &Mailbox<'_>) -> Completion {
        let name = match self.names.store_name(mailbox) {
            Ok(name) => name,
            Err(completion) => return completion,
        };
        if name == "INBOX" {
            return Completion::no_code("CANNOT", "INBOX cannot be deleted");
        }
        if self.selected().is_some_and(|s| s.name == name) {
            self.state = State::Authenticated;
            self.out.untagged("OK [CLOSED] Mailbox closed");
        }
        match self.store.delete_mailbox(&name).await {
            Ok(()) => Completion::ok("DELETE completed"),
            Err(error) => error.into(),
        }
    }

    /// RENAME (RFC 3501 §6.3.5). A selected mailbox keeps being selected
    /// under its new name (its UIDVALIDITY moves with it).
    pub(super) async fn rename(&mut self, from: &Mailbox<'_>, to: &Mailbox<'_>) -> Completion {
        let (from, to) = match (self.names.store_name(from), self.names.store_name(to)) {
            (Ok(from), Ok(to)) => (from, to.trim_end_matches('/').to_string()),
            (Err(completion), _) | (_, Err(completion)) => return completion,
        };
        if to == "INBOX" {
            return Completion::no_code("ALREADYEXISTS", "INBOX always exists");
        }
        if let Err(error) = self.store.rename_mailbox(&from, &to).await {
            return error.into();
        }
        if from != "INBOX" {
            let prefix = format!("{from}/");
            if let Some(selected) = self.selected_mut() {
                if selected.name == from {
                    selected.name = to.clone();
                } else if let Some(rest) = selected.name.strip_prefix(&prefix) {
                    selected.name = format!("{to}/{rest}");
                }
            }
        }
        Completion::ok("RENAME completed")
    }

    /// SUBSCRIBE / UNSUBSCRIBE (RFC 3501 §6.3.6-7).
    pub(super) async fn subscribe(&mut self, mailbox: &Mailbox<'_>, on: bool) -> Completion {
        let name = match self.names.store_name(mailbox) {
            Ok(name) => name,
            Err(completion) => return completion,
        };
        // Dovecot answers NO to a name that does not exist, and clients
        // rely on it to catch typos; UNSUBSCRIBE still takes any name, so
        // a subscription whose mailbox went away can be dropped.
        if on {
            match self.store.list_mailboxes().await {
                Ok(mailboxes) if mailboxes.iter().any(|m| m.name == name) => {}
                Ok(_) => return StoreError::NoSuchMailbox(name).into(),
                Err(error) => return error.into(),
            }
        }
        match self.store.set_subscribed(&name, on).await {
            Ok(()) if on => Completion::ok("SUBSCRIBE completed"),
            Ok(()) => Completion::ok("UNSUBSCRIBE completed"),
            Err(error) => error.into(),
        }
    }

    /// STATUS (RFC 3501 §6.3.10; HIGHESTMODSEQ RFC 7162 §3.1.6).
    pub(super) async fn status(
        &mut self,
        mailbox: &Mailbox<'_>,
        items: &[StatusDataItemName],
    ) -> Completion {
        let name = match self.names.store_name(mailbox) {
            Ok(name) => name,
            Err(completion) => return completion,
        };
        if items.contains(&StatusDataItemName::HighestModSeq) {
            self.condstore = true;
        }
        match self.status_of(&name, items).await {
            Ok(line) => {
                self.out.untagged(&line);
                Completion::ok("STATUS completed")
            }
            Err(error) => error.into(),
        }
    }

    /// The STATUS line of one mailbox.
    pub(super) async fn status_of(
        &self,
        name: &str,
        items: &[StatusDataItemName],
    ) -> Result<String, StoreError> {
        let mut counts = Counts::default();
        if items.contains(&StatusDataItemName::Recent) {
            counts.recent = match self.selected().filter(|s| s.name == name) {
                // The selected mailbox: what this session shows.
                Some(selected) => selected.recent_count(),
                None => self.store.recent(name, Uid::MAX, false).await?.unclaimed,
            };
        }
        if items.contains(&StatusDataItemName::Deleted) {
            let snapshot = self.store.snapshot(name).await?;
            counts.deleted = snapshot.index.deleted();
            return Ok(status_line(&snapshot.info, items, counts, self.names));
        }
        let mailboxes = self.store.list_mailboxes().await?;
        let info = mailboxes
            .iter()
            .find(|info| info.name == name)
            .ok_or_else(|| StoreError::NoSuchMailbox(name.to_string()))?;
        Ok(status_line(info, items, counts, self.names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_wire() {
        let utf7 = Names::Utf7;
        let inbox = Mailbox::try_from("inbox").expect("mailbox");
        assert_eq!(utf7.store_name(&inbox), Ok("INBOX".to_string()));
        let encoded = Mailbox::try_from("Entw&APw-rfe").expect("mailbox");
        assert_eq!(utf7.store_name(&encoded), Ok("Entwürfe".to_string()));
        let bad = Mailbox::try_from("a&ZeVnLIqe").expect("mailbox");
        assert!(utf7.store_name(&bad).is_err());
        // After ENABLE UTF8=ACCEPT nothing is modified UTF-7.
        let utf8 = Names::Utf8;
        assert_eq!(utf8.store_name(&encoded), Ok("Entw&APw-rfe".to_string()));
        assert_eq!(utf8.store_name(&bad), Ok("a&ZeVnLIqe".to_string()));
        let raw = Mailbox::try_from("Entwürfe").expect("mailbox");
        assert_eq!(utf8.store_name(&raw), Ok("Entwürfe".to_string()));
        assert_eq!(utf8.store_name(&inbox), Ok("INBOX".to_string()));
    }

    #[test]
    fn names_to_the_wire() {
        let utf7 = Names::Utf7;
        assert_eq!(utf7.wire("INBOX"), "INBOX");
        assert_eq!(utf7.wire("Entwürfe"), "\"Entw&APw-rfe\"");
        assert_eq!(utf7.wire("a \"b\""), "\"a \\\"b\\\"\"");
        let utf8 = Names::Utf8;
        assert_eq!(utf8.wire("Entwürfe"), "\"Entwürfe\"");
        assert_eq!(utf8.wire("a&b \"c\""), "\"a&b \\\"c\\\"\"");
    }

    #[test]
    fn status_items() {
        let info = MailboxInfo {
            name: "Sent".into(),
            special_use: None,
            subscribed: true,
            uid_validity: 4,
            uid_next: 9,
            highest_modseq: 30,
            messages: 8,
            unseen: 2,
            size: 1000,
        };
        let line = status_line(
            &info,
            &[
                StatusDataItemName::Messages,
                StatusDataItemName::UidNext,
                StatusDataItemName::Unseen,
                StatusDataItemName::HighestModSeq,
                StatusDataItemName::Recent,
            ],
            Counts {
                deleted: 0,
                recent: 3,
            },
            Names::Utf7,
        );
        assert_eq!(
            line,
            "STATUS \"Sent\" (MESSAGES 8 UIDNEXT 9 UNSEEN 2 HIGHESTMODSEQ 30 RECENT 3)"
        );
    }
}
