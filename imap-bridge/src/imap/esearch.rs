//! ESEARCH (RFC 4731: `SEARCH RETURN (MIN MAX COUNT ALL)`) and SEARCHRES
//! (RFC 5182: `RETURN (SAVE)` and the `$` that stands for the saved
//! result).
//!
//! imap-codec 2.0.0-alpha.10 parses neither, so this module rewrites such a
//! command into one it does parse before decoding: the `RETURN (...)`
//! group is taken out (and handed to SEARCH as a [`SearchReturn`]), and
//! each `$` becomes the saved messages (`UID 3:5,9` inside search criteria,
//! a sequence set where one is expected). The scan skips quoted strings
//! and literal bytes, so nothing inside them is ever rewritten; literal
//! counts stay right because only text before each `{n}` changes.
//!
//! Public only so that the fuzz targets can reach [`rewrite`].

use super::response::sequence_set;
use super::selected::Hit;
use super::session::Session;
use crate::backend::{MailStore, Uid};

/// The RETURN options of one SEARCH.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchReturn {
    /// `MIN`
    pub min: bool,
    /// `MAX`
    pub max: bool,
    /// `COUNT`
    pub count: bool,
    /// `ALL` (also an empty list, RFC 4731 §3.1)
    pub all: bool,
    /// `SAVE` (RFC 5182)
    pub save: bool,
}

/// The saved result as the rewrite needs it, both ways round.
#[derive(Debug, Clone, Default)]
pub struct Dollar {
    /// The saved messages' UIDs still in the mailbox, as a sequence set
    /// (empty when none).
    pub uids: String,
    /// Their sequence numbers, as a sequence set.
    pub seqs: String,
}

/// A command rewritten for the codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The command without `RETURN (...)` and with `$` replaced.
    pub bytes: Vec<u8>,
    /// The RETURN options of a SEARCH, if it had them.
    pub returns: Option<SearchReturn>,
    /// A `$` stood for no message where a sequence set was expected: the
    /// command has nothing to act on (RFC 5182 §2.1).
    pub empty_set: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Atom,
    Open,
    Close,
    /// A quoted string or a literal: never looked into.
    Opaque,
}

/// The top-level tokens of a command with their byte ranges.
fn tokens(message: &[u8]) -> Vec<(Token, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < message.len() {
        let start = pos;
        match message[pos] {
            b' ' | b'\r' | b'\n' => pos += 1,
            b'(' => {
                out.push((Token::Open, pos, pos + 1));
                pos += 1;
            }
            b')' => {
                out.push((Token::Close, pos, pos + 1));
                pos += 1;
            }
            b'"' => {
                pos += 1;
                while pos < message.len() && message[pos] != b'"' {
                    pos += if message[pos] == b'\\' { 2 } else { 1 };
                }
                pos = (pos + 1).min(message.len());
                out.push((Token::Opaque, start, pos));
            }
            b'{' => {
                // `{n}` or `{n+}` (`~{n}` for BINARY is an atom start
                // here; such commands are not rewritten).
                let close = message[pos..].iter().position(|b| *b == b'}');
                let length = close.and_then(|c| {
                    let digits = &message[pos + 1..pos + c];
                    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
                    std::str::from_utf8(digits).ok()?.parse::<usize>().ok()
                });
                match (close, length) {
                    (Some(c), Some(n)) => {
                        let mut end = pos + c + 1;
                        if message[end..].starts_with(b"\r\n") {
                            end += 2;
                        }
                        pos = end.saturating_add(n).min(message.len());
                    }
                    _ => pos = message.len(),
                }
                out.push((Token::Opaque, start, pos));
            }
            _ => {
                while pos < message.len()
                    && !matches!(message[pos], b' ' | b'(' | b')' | b'\r' | b'\n' | b'"')
                {
                    pos += 1;
                }
                out.push((Token::Atom, start, pos));
            }
        }
    }
    out
}

fn atom_is(message: &[u8], token: &(Token, usize, usize), word: &str) -> bool {
    token.0 == Token::Atom && message[token.1..token.2].eq_ignore_ascii_case(word.as_bytes())
}

/// Rewrites a SEARCH with RETURN options or a command that uses `$`;
/// `None` when there is nothing to rewrite. `Err` is the text of a `BAD`.
pub fn rewrite(message: &[u8], dollar: &Dollar) -> Result<Option<Rewritten>, &'static str> {
    let tokens = tokens(message);
    let mut at = 1;
    let uid = tokens.get(at).is_some_and(|t| atom_is(message, t, "UID"));
    if uid {
        at += 1;
    }
    let Some(command) = tokens.get(at) else {
        return Ok(None);
    };
    let is = |word| atom_is(message, command, word);
    let searches = is("SEARCH") || is("SORT") || is("THREAD");
    let takes_set =
        is("FETCH") || is("STORE") || is("COPY") || is("MOVE") || (uid && is("EXPUNGE"));
    if !searches && !takes_set {
        return Ok(None);
    }
    // (start, end, replacement) edits, in order.
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut returns = None;
    let mut empty_set = false;
    let mut next = at + 1;
    if is("SEARCH")
        && tokens
            .get(next)
            .is_some_and(|t| atom_is(message, t, "RETURN"))
    {
        tokens
            .get(next + 1)
            .filter(|t| t.0 == Token::Open)
            .ok_or("RETURN needs a list of options")?;
        let mut options = SearchReturn::default();
        let mut end = None;
        for (i, token) in tokens.iter().enumerate().skip(next + 2) {
            match token.0 {
                Token::Close => {
                    end = Some(i);
                    break;
                }
                Token::Atom => match message[token.1..token.2].to_ascii_uppercase().as_slice() {
                    b"MIN" => options.min = true,
                    b"MAX" => options.max = true,
                    b"COUNT" => options.count = true,
                    b"ALL" => options.all = true,
                    b"SAVE" => options.save = true,
                    _ => return Err("Unknown RETURN option"),
                },
                _ => return Err("Invalid RETURN option"),
            }
        }
        let end = end.ok_or("Unterminated RETURN options")?;
        if end == next + 2 {
            options.all = true; // `RETURN ()` (RFC 4731 §3.1)
        }
        let close = tokens[end].2;
        // Drop `RETURN (...)` and the space after it.
        let cut_end = if message.get(close) == Some(&b' ') {
            close + 1
        } else {
            close
        };
        edits.push((tokens[next].1, cut_end, Vec::new()));
        returns = Some(options);
        next = end + 1;
    }
    for (i, token) in tokens.iter().enumerate().skip(next) {
        if token.0 != Token::Atom || &message[token.1..token.2] != b"$" {
            continue;
        }
        let replacement = if searches {
            if dollar.uids.is_empty() {
                b"NOT ALL".to_vec()
            } else {
                format!("UID {}", dollar.uids).into_bytes()
            }
        } else if i == at + 1 {
            let set = if uid { &dollar.uids } else { &dollar.seqs };
            if set.is_empty() {
                empty_set = true;
                b"1".to_vec()
            } else {
                set.clone().into_bytes()
            }
        } else {
            continue;
        };
        edits.push((token.1, token.2, replacement));
    }
    if edits.is_empty() {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(message.len() + 32);
    let mut copied = 0;
    for (start, end, replacement) in edits {
        bytes.extend_from_slice(&message[copied..start]);
        bytes.extend_from_slice(&replacement);
        copied = end;
    }
    bytes.extend_from_slice(&message[copied..]);
    Ok(Some(Rewritten {
        bytes,
        returns,
        empty_set,
    }))
}

impl<S: MailStore> Session<S> {
    /// The saved result in both forms, for [`rewrite`].
    pub(super) fn dollar(&self) -> Dollar {
        let Some(selected) = self.selected() else {
            return Dollar::default();
        };
        let saved = selected.saved.as_deref().unwrap_or_default();
        let mut live: Vec<(u32, Uid)> = saved
            .iter()
            .filter_map(|uid| Some((selected.seq_of(*uid)?, *uid)))
            .collect();
        // Sequence numbers grow with UIDs: one order serves both.
        live.sort_unstable();
        live.dedup();
        let seqs: Vec<u32> = live.iter().map(|(seq, _)| *seq).collect();
        let uids: Vec<Uid> = live.iter().map(|(_, uid)| *uid).collect();
        Dollar {
            uids: sequence_set(&uids),
            seqs: sequence_set(&seqs),
        }
    }

    /// The ESEARCH response (RFC 4731 §3.1) and the SAVE of `$` (RFC 5182
    /// §2.4) for the matches of one SEARCH.
    pub(super) fn esearch_reply(
        &mut self,
        tag: &str,
        returns: &SearchReturn,
        found: &[Hit],
        uid: bool,
        modseq: Option<u64>,
    ) {
        if returns.save
            && let Some(selected) = self.selected_mut()
        {
            // With MIN or MAX but neither ALL nor COUNT, only those are
            // saved (RFC 5182 §2.4).
            let only_ends = (returns.min || returns.max) && !returns.all && !returns.count;
            let mut saved: Vec<Uid> = if only_ends {
                let mut ends = Vec::new();
                if returns.min
                    && let Some(first) = found.first()
                {
                    ends.push(first.uid);
                }
                if returns.max
                    && let Some(last) = found.last()
                {
                    ends.push(last.uid);
                }
                ends
            } else {
                found.iter().map(|hit| hit.uid).collect()
            };
            saved.dedup();
            selected.saved = Some(saved);
        }
        let only_save =
            returns.save && !returns.min && !returns.max && !returns.count && !returns.all;
        if only_save {
            return;
        }
        let number = |hit: &Hit| if uid { hit.uid } else { hit.seq };
        let quoted = tag.replace('\\', "\\\\").replace('"', "\\\"");
        let mut line = format!("ESEARCH (TAG \"{quoted}\")");
        if uid {
            line.push_str(" UID");
        }
        if returns.min
            && let Some(first) = found.first()
        {
            line.push_str(&format!(" MIN {}", number(first)));
        }
        if returns.max
            && let Some(last) = found.last()
        {
            line.push_str(&format!(" MAX {}", number(last)));
        }
        // ALL before COUNT, in the order Dovecot answers (RFC 4731 leaves
        // the order open).
        if returns.all && !found.is_empty() {
            let mut numbers: Vec<u32> = found.iter().map(number).collect();
            numbers.sort_unstable();
            line.push_str(&format!(" ALL {}", sequence_set(&numbers)));
        }
        if returns.count {
            line.push_str(&format!(" COUNT {}", found.len()));
        }
        if let Some(modseq) = modseq {
            line.push_str(&format!(" MODSEQ {modseq}"));
        }
        self.out.untagged(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dollar() -> Dollar {
        Dollar {
            uids: "3:5,9".into(),
            seqs: "2:4,6".into(),
        }
    }

    fn text(r: &Rewritten) -> String {
        String::from_utf8_lossy(&r.bytes).into_owned()
    }

    #[test]
    fn return_options_are_taken_out() {
        let r = rewrite(b"a SEARCH RETURN (MIN COUNT) UNSEEN\r\n", &dollar())
            .expect("ok")
            .expect("rewritten");
        assert_eq!(text(&r), "a SEARCH UNSEEN\r\n");
        let returns = r.returns.expect("returns");
        assert!(returns.min && returns.count && !returns.all && !returns.max);
        let r = rewrite(b"a UID SEARCH return () ALL\r\n", &dollar())
            .expect("ok")
            .expect("rewritten");
        assert_eq!(text(&r), "a UID SEARCH ALL\r\n");
        assert!(r.returns.expect("returns").all);
    }

    #[test]
    fn bad_options_are_bad() {
        assert!(rewrite(b"a SEARCH RETURN (PARTIAL 1:5) ALL\r\n", &dollar()).is_err());
        assert!(rewrite(b"a SEARCH RETURN ALL\r\n", &dollar()).is_err());
        assert!(rewrite(b"a SEARCH RETURN (MIN\r\n", &dollar()).is_err());
    }

    #[test]
    fn dollar_becomes_the_saved_messages() {
        let r = rewrite(b"a SEARCH $ SEEN\r\n", &dollar())
            .expect("ok")
            .expect("rewritten");
        assert_eq!(text(&r), "a SEARCH UID 3:5,9 SEEN\r\n");
        let r = rewrite(b"a FETCH $ (FLAGS)\r\n", &dollar())
            .expect("ok")
            .expect("rewritten");
        assert_eq!(text(&r), "a FETCH 2:4,6 (FLAGS)\r\n");
        let r = rewrite(b"a UID STORE $ +FLAGS ($)\r\n", &dollar())
            .expect("ok")
            .expect("rewritten");
        // Only the sequence set: a flag called `$` stays.
        assert_eq!(text(&r), "a UID STORE 3:5,9 +FLAGS ($)\r\n");
        let r = rewrite(b"a UID COPY $ Archive\r\n", &Dollar::default())
            .expect("ok")
            .expect("rewritten");
        assert!(r.empty_set);
        let r = rewrite(b"a SEARCH OR $ 1\r\n", &Dollar::default())
            .expect("ok")
            .expect("rewritten");
        assert_eq!(text(&r), "a SEARCH OR NOT ALL 1\r\n");
    }

    #[test]
    fn quoted_strings_and_literals_are_left_alone() {
        assert_eq!(rewrite(b"a SEARCH SUBJECT \"$\"\r\n", &dollar()), Ok(None));
        let r = rewrite(b"a SEARCH SUBJECT {1}\r\n$ $\r\n", &dollar())
            .expect("ok")
            .expect("rewritten");
        assert_eq!(text(&r), "a SEARCH SUBJECT {1}\r\n$ UID 3:5,9\r\n");
        assert_eq!(rewrite(b"a NOOP\r\n", &dollar()), Ok(None));
        assert_eq!(rewrite(b"a SEARCH {99}\r\n$", &dollar()), Ok(None));
    }
}
