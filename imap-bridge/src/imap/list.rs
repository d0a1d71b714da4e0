//! LIST and LSUB (RFC 3501 §6.3.8-9) with LIST-EXTENDED (RFC 5258),
//! SPECIAL-USE (RFC 6154), CHILDREN (RFC 3348) and LIST-STATUS (RFC 5819).
//!
//! imap-codec parses only the RFC 3501 form of LIST, so this module has its
//! own small parser for the extended form Thunderbird sends, e.g.
//! `LIST (SUBSCRIBED) "" "*" RETURN (SPECIAL-USE)`. Replies are written by
//! hand. Wildcards: `*` matches anything, `%` anything but the delimiter.

use std::collections::{BTreeMap, BTreeSet};

use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::status::StatusDataItemName;

use super::mailbox::Names;
use super::response::Completion;
use super::session::Session;
use crate::backend::{MailStore, MailboxInfo};

/// A LIST or LSUB request in either syntax.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// Reference name (store form).
    pub reference: String,
    /// Mailbox patterns (store form).
    pub patterns: Vec<String>,
    /// LSUB rather than LIST.
    pub lsub: bool,
    /// The extended syntax was used (RFC 5258).
    pub extended: bool,
    /// Selection option SUBSCRIBED.
    pub select_subscribed: bool,
    /// Selection option RECURSIVEMATCH.
    pub recursive_match: bool,
    /// Selection option SPECIAL-USE (RFC 6154 §3).
    pub select_special_use: bool,
    /// Return option SUBSCRIBED.
    pub return_subscribed: bool,
    /// Return option STATUS (RFC 5819) with its items.
    pub return_status: Option<Vec<StatusDataItemName>>,
}

impl ListRequest {
    /// The RFC 3501 form parsed by imap-codec.
    pub fn plain(
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
        lsub: bool,
        names: Names,
    ) -> Self {
        let reference = match reference {
            Mailbox::Inbox => "INBOX".to_string(),
            Mailbox::Other(other) => names.decode_lossy(other.as_ref()),
        };
        let pattern = match pattern {
            ListMailbox::Token(token) => names.decode_lossy(token.as_ref()),
            ListMailbox::String(string) => names.decode_lossy(string.as_ref()),
        };
        ListRequest {
            reference,
            patterns: vec![pattern],
            lsub,
            ..ListRequest::default()
        }
    }
}

/// One token of a LIST command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Atom(String),
    Str(Vec<u8>),
}

/// Why the extended LIST parser gave up (the session answers BAD).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid LIST command: {0}")]
pub struct ListSyntaxError(&'static str);

fn tokenize(mut input: &[u8]) -> Result<Vec<Token>, ListSyntaxError> {
    let mut tokens = Vec::new();
    loop {
        while let Some(rest) = input.strip_prefix(b" ") {
            input = rest;
        }
        let Some(&first) = input.first() else {
            return Ok(tokens);
        };
        match first {
            b'\r' | b'\n' => {
                let rest = input.strip_prefix(b"\r").unwrap_or(input);
                return if rest == b"\n" {
                    Ok(tokens)
                } else {
                    Err(ListSyntaxError("text after the end of the line"))
                };
            }
            b'(' => {
                tokens.push(Token::Open);
                input = &input[1..];
            }
            b')' => {
                tokens.push(Token::Close);
                input = &input[1..];
            }
            b'"' => {
                let mut value = Vec::new();
                let mut index = 1;
                loop {
                    match input.get(index) {
                        None | Some(b'\r' | b'\n') => {
                            return Err(ListSyntaxError("unterminated quoted string"));
                        }
                        Some(b'\\') => {
                            let escaped = *input
                                .get(index + 1)
                                .ok_or(ListSyntaxError("unterminated quoted string"))?;
                            value.push(escaped);
                            index += 2;
                        }
                        Some(b'"') => break,
                        Some(&byte) => {
                            value.push(byte);
                            index += 1;
                        }
                    }
                }
                tokens.push(Token::Str(value));
                input = &input[index + 1..];
            }
            b'{' => {
                let close = input
                    .iter()
                    .position(|b| *b == b'}')
                    .ok_or(ListSyntaxError("bad literal"))?;
                let digits = input[1..close]
                    .strip_suffix(b"+")
                    .unwrap_or(&input[1..close]);
                let length: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or(ListSyntaxError("bad literal length"))?;
                let rest = input[close + 1..]
                    .strip_prefix(b"\r\n")
                    .ok_or(ListSyntaxError("bad literal"))?;
                if rest.len() < length {
                    return Err(ListSyntaxError("short literal"));
                }
                tokens.push(Token::Str(rest[..length].to_vec()));
                input = &rest[length..];
            }
            _ => {
                let end = input
                    .iter()
                    .position(|b| matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n' | b'"'))
                    .unwrap_or(input.len());
                tokens.push(Token::Atom(
                    String::from_utf8_lossy(&input[..end]).into_owned(),
                ));
                input = &input[end..];
            }
        }
    }
}

fn status_item(name: &str) -> Option<StatusDataItemName> {
    Some(match name.to_ascii_uppercase().as_str() {
        "MESSAGES" => StatusDataItemName::Messages,
        "RECENT" => StatusDataItemName::Recent,
        "UIDNEXT" => StatusDataItemName::UidNext,
        "UIDVALIDITY" => StatusDataItemName::UidValidity,
        "UNSEEN" => StatusDataItemName::Unseen,
        "DELETED" => StatusDataItemName::Deleted,
        "HIGHESTMODSEQ" => StatusDataItemName::HighestModSeq,
        "SIZE" => StatusDataItemName::Size,
        _ => return None,
    })
}

/// Parses `tag LIST ...` in the extended syntax of RFC 5258 §6.
pub fn parse_list_command(message: &[u8], names: Names) -> Result<ListRequest, ListSyntaxError> {
    let tokens = tokenize(message)?;
    let mut tokens = tokens.into_iter().peekable();
    let _tag = tokens.next();
    match tokens.next() {
        Some(Token::Atom(word)) if word.eq_ignore_ascii_case("LIST") => {}
        _ => return Err(ListSyntaxError("not a LIST command")),
    }
    let mut request = ListRequest {
        extended: true,
        ..ListRequest::default()
    };
    if tokens.peek() == Some(&Token::Open) {
        tokens.next();
        loop {
            match tokens.next() {
                Some(Token::Close) => break,
                Some(Token::Atom(option)) => match option.to_ascii_uppercase().as_str() {
                    "SUBSCRIBED" => request.select_subscribed = true,
                    "RECURSIVEMATCH" => request.recursive_match = true,
                    "SPECIAL-USE" => request.select_special_use = true,
                    "REMOTE" => {}
                    _ => return Err(ListSyntaxError("unknown selection option")),
                },
                _ => return Err(ListSyntaxError("bad selection options")),
            }
        }
        // RFC 5258 §3: RECURSIVEMATCH needs another selection option.
        if request.recursive_match && !request.select_subscribed {
            return Err(ListSyntaxError("RECURSIVEMATCH alone"));
        }
    }
    request.reference = match tokens.next() {
        Some(Token::Atom(atom)) => names.decode_lossy(atom.as_bytes()),
        Some(Token::Str(bytes)) => names.decode_lossy(&bytes),
        _ => return Err(ListSyntaxError("missing reference")),
    };
    match tokens.next() {
        Some(Token::Atom(atom)) => request.patterns.push(names.decode_lossy(atom.as_bytes())),
        Some(Token::Str(bytes)) => request.patterns.push(names.decode_lossy(&bytes)),
        Some(Token::Open) => loop {
            match tokens.next() {
                Some(Token::Close) if !request.patterns.is_empty() => break,
                Some(Token::Atom(atom)) => {
                    request.patterns.push(names.decode_lossy(atom.as_bytes()))
                }
                Some(Token::Str(bytes)) => request.patterns.push(names.decode_lossy(&bytes)),
                _ => return Err(ListSyntaxError("bad pattern list")),
            }
        },
        _ => return Err(ListSyntaxError("missing pattern")),
    }
    match tokens.next() {
        None => return Ok(request),
        Some(Token::Atom(word)) if word.eq_ignore_ascii_case("RETURN") => {}
        _ => return Err(ListSyntaxError("expected RETURN")),
    }
    if tokens.next() != Some(Token::Open) {
        return Err(ListSyntaxError("bad return options"));
    }
    loop {
        match tokens.next() {
            Some(Token::Close) => break,
            Some(Token::Atom(option)) => match option.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => request.return_subscribed = true,
                "CHILDREN" | "SPECIAL-USE" => {}
                "STATUS" => {
                    if tokens.next() != Some(Token::Open) {
                        return Err(ListSyntaxError("bad STATUS return option"));
                    }
                    let mut items = Vec::new();
                    loop {
                        match tokens.next() {
                            Some(Token::Close) => break,
                            Some(Token::Atom(item)) => items.push(
                                status_item(&item).ok_or(ListSyntaxError("bad status item"))?,
                            ),
                            _ => return Err(ListSyntaxError("bad STATUS return option")),
                        }
                    }
                    request.return_status = Some(items);
                }
                _ => return Err(ListSyntaxError("unknown return option")),
            },
            _ => return Err(ListSyntaxError("bad return options")),
        }
    }
    if tokens.next().is_some() {
        return Err(ListSyntaxError("text after the return options"));
    }
    Ok(request)
}

/// Wildcard match (RFC 3501 §6.3.8), in O(pattern × name) time so hostile
/// patterns like `*a*a*a*b` stay cheap.
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    // reachable[j]: the pattern consumed so far matches name[..j].
    let mut reachable = vec![false; name.len() + 1];
    reachable[0] = true;
    for &p in pattern {
        let mut next = vec![false; name.len() + 1];
        match p {
            b'*' => {
                let mut any = false;
                for j in 0..=name.len() {
                    any |= reachable[j];
                    next[j] = any;
                }
            }
            b'%' => {
                let mut any = false;
                for j in 0..=name.len() {
                    // `%` never crosses the delimiter.
                    if j > 0 && name[j - 1] == b'/' {
                        any = false;
                    }
                    any |= reachable[j];
                    next[j] = any;
                }
            }
            c => {
                for j in 1..=name.len() {
                    next[j] = reachable[j - 1] && name[j - 1] == c;
                }
            }
        }
        reachable = next;
    }
    reachable[name.len()]
}

/// Whether a name matches a full pattern, INBOX case-insensitively.
fn name_matches(pattern: &str, name: &str) -> bool {
    if matches(pattern.as_bytes(), name.as_bytes()) {
        return true;
    }
    if let Some(rest) = name.strip_prefix("INBOX")
        && pattern.len() >= 5
        && pattern.is_char_boundary(5)
        && pattern[..5].eq_ignore_ascii_case("INBOX")
    {
        let pattern = format!("INBOX{}", &pattern[5..]);
        return matches(pattern.as_bytes(), format!("INBOX{rest}").as_bytes());
    }
    false
}

/// Every superior name of `name` (`a/b/c` → `a`, `a/b`).
fn parents(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/')
        .map(move |(index, _)| &name[..index])
}

/// One line of the answer.
#[derive(Debug, Default)]
struct Entry {
    exists: bool,
    subscribed: bool,
    has_children: bool,
    /// A subscribed child exists (RECURSIVEMATCH CHILDINFO).
    subscribed_child: bool,
    special_use: Option<&'static str>,
}

impl<S: MailStore> Session<S> {
    /// Answers LIST or LSUB.
    pub(super) async fn list(&mut self, request: ListRequest) -> Completion {
        let command = if request.lsub { "LSUB" } else { "LIST" };
        // RFC 3501 §6.3.8: an empty pattern asks for the delimiter.
        if !request.lsub && request.patterns.iter().all(String::is_empty) {
            self.out.untagged("LIST (\\Noselect) \"/\" \"\"");
            return Completion::ok("LIST completed");
        }
        let mailboxes = match self.store.list_mailboxes().await {
            Ok(mailboxes) => mailboxes,
            Err(error) => return error.into(),
        };
        let subscriptions: BTreeSet<String> = match self.store.subscriptions().await {
            Ok(names) => names.into_iter().collect(),
            Err(error) => return error.into(),
        };
        let infos: BTreeMap<&str, &MailboxInfo> =
            mailboxes.iter().map(|m| (m.name.as_str(), m)).collect();

        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        for info in &mailboxes {
            let entry = entries.entry(info.name.clone()).or_default();
            entry.exists = true;
            entry.special_use = info.special_use.map(|s| s.as_attribute());
        }
        for name in &subscriptions {
            entries.entry(name.clone()).or_default().subscribed = true;
        }
        let names: Vec<String> = entries.keys().cloned().collect();
        for name in &names {
            let (exists, subscribed) = entries
                .get(name)
                .map_or((false, false), |e| (e.exists, e.subscribed));
            for parent in parents(name) {
                let entry = entries.entry(parent.to_string()).or_default();
                if exists {
                    entry.has_children = true;
                }
                if subscribed {
                    entry.subscribed_child = true;
                }
            }
        }

        let by_subscription = request.lsub || request.select_subscribed;
        let mut lines = Vec::new();
        for (name, entry) in &entries {
            let full_patterns = request
                .patterns
                .iter()
                .map(|p| format!("{}{p}", request.reference));
            let mut matched = false;
            for pattern in full_patterns {
                if name_matches(&pattern, name) {
                    matched = true;
                    break;
                }
            }
            if !matched {
                continue;
            }
            let mut attributes: Vec<&str> = Vec::new();
            let mut child_info = false;
            if by_subscription {
                if !entry.subscribed {
                    // LSUB with `%` shows unsubscribed parents of subscribed
                    // names as \Noselect (RFC 3501 §6.3.9); RECURSIVEMATCH
                    // shows them with CHILDINFO (RFC 5258 §3.5).
                    let trailing_percent = request.patterns.iter().any(|p| p.ends_with('%'));
                    if request.lsub && entry.subscribed_child && trailing_percent {
                        attributes.push("\\Noselect");
                    } else if request.recursive_match && entry.subscribed_child {
                        child_info = true;
                    } else {
                        continue;
                    }
                }
            } else if !entry.exists && !entry.has_children {
                continue;
            }
            if request.select_special_use && entry.special_use.is_none() {
                continue;
            }
            if !request.lsub {
                if !entry.exists {
                    attributes.push(if request.extended {
                        "\\NonExistent"
                    } else {
                        "\\Noselect"
                    });
                }
                if entry.exists || entry.has_children {
                    attributes.push(if entry.has_children {
                        "\\HasChildren"
                    } else {
                        "\\HasNoChildren"
                    });
                }
                if entry.subscribed && (request.select_subscribed || request.return_subscribed) {
                    attributes.push("\\Subscribed");
                }
                if let Some(special_use) = entry.special_use {
                    attributes.push(special_use);
                }
            }
            let mut line = format!(
                "{command} ({}) \"/\" {}",
                attributes.join(" "),
                self.names.wire(name)
            );
            if child_info {
                line.push_str(" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            lines.push((name.clone(), line, entry.exists));
        }
        // INBOX first, as clients expect; then by name.
        lines.sort_by_key(|(name, _, _)| (name != "INBOX", name.clone()));
        if request
            .return_status
            .as_ref()
            .is_some_and(|items| items.contains(&StatusDataItemName::HighestModSeq))
        {
            self.condstore = true;
        }
        for (name, line, exists) in lines {
            self.out.untagged(&line);
            // RFC 5819: STATUS follows its LIST line; failures are
            // silently skipped.
            if let (Some(items), true) = (&request.return_status, exists)
                && infos.contains_key(name.as_str())
                && let Ok(status) = self.status_of(&name, items).await
            {
                self.out.untagged(&status);
            }
        }
        Completion::ok(format!("{command} completed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thunderbird_list_subscribed() {
        let request = parse_list_command(
            b"5 list (subscribed) \"\" \"*\" return (special-use)\r\n",
            Names::Utf7,
        )
        .expect("parse");
        assert!(request.extended && request.select_subscribed);
        assert_eq!(request.reference, "");
        assert_eq!(request.patterns, vec!["*".to_string()]);
        assert!(!request.return_subscribed);
    }

    #[test]
    fn return_status_and_multiple_patterns() {
        let request = parse_list_command(
            b"a LIST \"\" (INBOX \"Sent\" {4}\r\nJunk) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n",
            Names::Utf7,
        )
        .expect("parse");
        assert_eq!(request.patterns, vec!["INBOX", "Sent", "Junk"]);
        assert_eq!(
            request.return_status,
            Some(vec![
                StatusDataItemName::Messages,
                StatusDataItemName::Unseen
            ])
        );
    }

    #[test]
    fn rejects_malformed_extended_list() {
        for line in [
            &b"a LIST (BOGUS) \"\" *\r\n"[..],
            b"a LIST \"\"\r\n",
            b"a LIST \"\" * RETURN\r\n",
            b"a LIST \"\" * RETURN (STATUS (NOPE))\r\n",
            b"a LIST (RECURSIVEMATCH) \"\" *\r\n",
            b"a LIST \"\" \"unterminated\r\n",
            b"a LIST \"\" () \r\n",
        ] {
            assert!(parse_list_command(line, Names::Utf7).is_err(), "{line:?}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(matches(b"*", b"a/b/c"));
        assert!(matches(b"%", b"Sent"));
        assert!(!matches(b"%", b"a/b"));
        assert!(matches(b"a/%", b"a/b"));
        assert!(matches(b"S*t", b"Sent"));
        assert!(!matches(b"S%x", b"Sent"));
        assert!(name_matches("inbox", "INBOX"));
        assert!(name_matches("InBox/%", "INBOX/x"));
        assert!(
            !name_matches("sent", "Sent"),
            "only INBOX is case-insensitive"
        );
        let hostile = "*a".repeat(40) + "b";
        assert!(!matches(hostile.as_bytes(), "a".repeat(200).as_bytes()));
    }

    #[test]
    fn parents_of_a_name() {
        assert_eq!(parents("a/b/c").collect::<Vec<_>>(), vec!["a", "a/b"]);
        assert_eq!(parents("a").count(), 0);
    }
}
