//! Address lists (RFC 5322 §3.4) split the way the IMAP ENVELOPE wants them
//! (RFC 3501 §7.4.2): personal name, source route, mailbox, host, and
//! group start/end markers.
//!
//! The parser is lenient and byte-based: values are never decoded (clients
//! decode RFC 2047 words themselves), only RFC 5322 quoting is removed.
//! Garbage never fails; it yields whatever addresses can be recognised.

/// Stand-ins for an address without local part or domain, so that the
/// address is not mistaken for a group marker (which has a NIL host). The
/// same words other IMAP servers use.
pub(crate) const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
/// See [`MISSING_MAILBOX`].
pub(crate) const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";

/// One element of an ENVELOPE address list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// A mailbox.
    Mailbox {
        /// The display name (phrase), quoting removed; `None` when absent.
        name: Option<Vec<u8>>,
        /// The obsolete source route, e.g. `@a,@b`.
        adl: Option<Vec<u8>>,
        /// The local part, quoting removed.
        mailbox: Vec<u8>,
        /// The domain.
        host: Vec<u8>,
    },
    /// `name:` starting a group.
    GroupStart(Vec<u8>),
    /// `;` ending a group.
    GroupEnd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An atom or dot-atom (or a domain literal, brackets included).
    Atom(Vec<u8>),
    /// A quoted string, quotes and escapes removed.
    Quoted(Vec<u8>),
    /// The text of a comment, outer parentheses removed.
    Comment(Vec<u8>),
    /// One of `< > @ , ; :`.
    Special(u8),
}

fn is_special(b: u8) -> bool {
    matches!(b, b'<' | b'>' | b'@' | b',' | b';' | b':')
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn tokenize(value: &[u8]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    while pos < value.len() {
        let b = value[pos];
        if is_space(b) {
            pos += 1;
        } else if is_special(b) {
            tokens.push(Token::Special(b));
            pos += 1;
        } else if b == b'"' {
            let (text, next) = quoted(value, pos + 1);
            tokens.push(Token::Quoted(text));
            pos = next;
        } else if b == b'(' {
            let (text, next) = comment(value, pos + 1);
            tokens.push(Token::Comment(text));
            pos = next;
        } else if b == b'[' {
            let end = value[pos..]
                .iter()
                .position(|&c| c == b']')
                .map_or(value.len(), |i| pos + i + 1);
            tokens.push(Token::Atom(value[pos..end].to_vec()));
            pos = end;
        } else {
            let start = pos;
            while pos < value.len()
                && !is_space(value[pos])
                && !is_special(value[pos])
                && !matches!(value[pos], b'"' | b'(' | b'[')
            {
                pos += 1;
            }
            tokens.push(Token::Atom(value[start..pos].to_vec()));
        }
    }
    tokens
}

/// A quoted string's content starting after its opening quote; returns the
/// unescaped text and the position after the closing quote.
fn quoted(value: &[u8], mut pos: usize) -> (Vec<u8>, usize) {
    let mut text = Vec::new();
    while pos < value.len() {
        match value[pos] {
            b'"' => return (text, pos + 1),
            b'\\' if pos + 1 < value.len() => {
                text.push(value[pos + 1]);
                pos += 2;
            }
            // Folding inside quoted strings is removed (RFC 5322 §3.2.4).
            b'\r' | b'\n' => pos += 1,
            c => {
                text.push(c);
                pos += 1;
            }
        }
    }
    (text, pos)
}

/// A comment's content starting after its opening parenthesis (comments
/// nest, RFC 5322 §3.2.2); returns the text and the position after it.
fn comment(value: &[u8], mut pos: usize) -> (Vec<u8>, usize) {
    let mut text = Vec::new();
    let mut depth = 1usize;
    while pos < value.len() {
        let c = value[pos];
        pos += 1;
        match c {
            b'\\' if pos < value.len() => {
                text.push(value[pos]);
                pos += 1;
            }
            b'(' => {
                depth += 1;
                text.push(c);
            }
            b')' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
                text.push(c);
            }
            b'\r' | b'\n' => {}
            _ => text.push(c),
        }
    }
    (text, pos)
}

/// Words of a phrase joined by single spaces.
fn phrase(words: &[Token]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for word in words {
        let bytes: &[u8] = match word {
            Token::Atom(b) | Token::Quoted(b) => b,
            Token::Special(c) => std::slice::from_ref(c),
            Token::Comment(_) => continue,
        };
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(bytes);
    }
    (!words.is_empty()).then_some(out)
}

/// Tokens glued together without spaces (local parts, domains, routes).
fn concat(tokens: &[Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for token in tokens {
        match token {
            Token::Atom(b) | Token::Quoted(b) => out.extend_from_slice(b),
            Token::Special(c) => out.push(*c),
            Token::Comment(_) => {}
        }
    }
    out
}

/// Splits addr-spec tokens into (local part, domain) at the last `@`.
fn addr_spec(tokens: &[Token]) -> (Vec<u8>, Option<Vec<u8>>) {
    match tokens.iter().rposition(|t| *t == Token::Special(b'@')) {
        Some(at) => (concat(&tokens[..at]), Some(concat(&tokens[at + 1..]))),
        None => (concat(tokens), None),
    }
}

/// An angle-addr: (source route, local part, domain).
type RouteAddr = (Option<Vec<u8>>, Vec<u8>, Option<Vec<u8>>);

/// The mailbox being assembled between two separators.
#[derive(Default)]
struct Pending {
    words: Vec<Token>,
    angle: Option<RouteAddr>,
    comment: Option<Vec<u8>>,
}

impl Pending {
    fn finish(&mut self, out: &mut Vec<Item>) {
        let pending = std::mem::take(self);
        let (name, adl, local, domain) = match pending.angle {
            Some((adl, local, domain)) => (phrase(&pending.words), adl, local, domain),
            None if pending.words.is_empty() => return,
            None => {
                let (local, domain) = addr_spec(&pending.words);
                (None, None, local, domain)
            }
        };
        // `user@host (Real Name)`: the comment is the only name there is.
        let name = name.or(pending.comment).filter(|n| !n.is_empty());
        let empty_angle = local.is_empty() && domain.as_ref().is_none_or(|d| d.is_empty());
        let (mailbox, host) = if empty_angle {
            // `<>` (a null return path) is shown as it is.
            (Vec::new(), Vec::new())
        } else {
            (
                if local.is_empty() {
                    MISSING_MAILBOX.to_vec()
                } else {
                    local
                },
                domain
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| MISSING_DOMAIN.to_vec()),
            )
        };
        out.push(Item::Mailbox {
            name,
            adl,
            mailbox,
            host,
        });
    }
}

/// Parses a raw address-list header value into ENVELOPE items.
pub(crate) fn parse(value: &[u8]) -> Vec<Item> {
    let tokens = tokenize(value);
    let mut out = Vec::new();
    let mut in_group = false;
    let mut pending = Pending::default();
    let mut iter = tokens.into_iter();
    while let Some(token) = iter.next() {
        match token {
            Token::Special(b':') if !in_group && pending.angle.is_none() => {
                let name = phrase(&pending.words).unwrap_or_default();
                pending = Pending::default();
                out.push(Item::GroupStart(name));
                in_group = true;
            }
            Token::Special(b'<') if pending.angle.is_none() => {
                let inner: Vec<Token> = iter
                    .by_ref()
                    .take_while(|t| *t != Token::Special(b'>'))
                    .filter(|t| !matches!(t, Token::Comment(_)))
                    .collect();
                // Obsolete source route `<@a,@b:user@host>` (RFC 5322 §4.4).
                let (adl, spec) = match inner.first() {
                    Some(Token::Special(b'@')) => {
                        match inner.iter().position(|t| *t == Token::Special(b':')) {
                            Some(colon) => (Some(concat(&inner[..colon])), &inner[colon + 1..]),
                            None => (None, &inner[..]),
                        }
                    }
                    _ => (None, &inner[..]),
                };
                let (local, domain) = addr_spec(spec);
                pending.angle = Some((adl, local, domain));
            }
            Token::Special(b',') => pending.finish(&mut out),
            Token::Special(b';') => {
                pending.finish(&mut out);
                if in_group {
                    out.push(Item::GroupEnd);
                    in_group = false;
                }
            }
            Token::Comment(text) => {
                if pending.comment.is_none() {
                    pending.comment = Some(text);
                }
            }
            other => {
                if pending.angle.is_none() {
                    pending.words.push(other);
                }
            }
        }
    }
    pending.finish(&mut out);
    if in_group {
        out.push(Item::GroupEnd);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(name: Option<&str>, mailbox: &str, host: &str) -> Item {
        Item::Mailbox {
            name: name.map(|n| n.as_bytes().to_vec()),
            adl: None,
            mailbox: mailbox.as_bytes().to_vec(),
            host: host.as_bytes().to_vec(),
        }
    }

    #[test]
    fn plain_and_named_addresses() {
        assert_eq!(
            parse(b"Terry Gray <gray@cac.washington.edu>, imap@cac.washington.edu"),
            vec![
                mailbox(Some("Terry Gray"), "gray", "cac.washington.edu"),
                mailbox(None, "imap", "cac.washington.edu"),
            ]
        );
    }

    #[test]
    fn quoted_names_and_local_parts() {
        assert_eq!(
            parse(b"\"Doe, John \\\"JD\\\"\" <\"john doe\"@example.com>"),
            vec![mailbox(Some("Doe, John \"JD\""), "john doe", "example.com")]
        );
    }

    #[test]
    fn encoded_words_stay_raw() {
        assert_eq!(
            parse(b"=?UTF-8?Q?J=C3=B6rg?= <j@x.de>"),
            vec![mailbox(Some("=?UTF-8?Q?J=C3=B6rg?="), "j", "x.de")]
        );
    }

    #[test]
    fn comment_is_the_name_of_a_bare_address() {
        assert_eq!(
            parse(b"john@example.com (John Smith)"),
            vec![mailbox(Some("John Smith"), "john", "example.com")]
        );
    }

    #[test]
    fn groups() {
        assert_eq!(
            parse(b"A Group: a@x, B <b@y>; c@z, undisclosed-recipients:;"),
            vec![
                Item::GroupStart(b"A Group".to_vec()),
                mailbox(None, "a", "x"),
                mailbox(Some("B"), "b", "y"),
                Item::GroupEnd,
                mailbox(None, "c", "z"),
                Item::GroupStart(b"undisclosed-recipients".to_vec()),
                Item::GroupEnd,
            ]
        );
    }

    #[test]
    fn unterminated_group_is_closed() {
        assert_eq!(
            parse(b"G: a@x"),
            vec![
                Item::GroupStart(b"G".to_vec()),
                mailbox(None, "a", "x"),
                Item::GroupEnd
            ]
        );
    }

    #[test]
    fn source_route() {
        assert_eq!(
            parse(b"<@relay.a,@relay.b:user@host>"),
            vec![Item::Mailbox {
                name: None,
                adl: Some(b"@relay.a,@relay.b".to_vec()),
                mailbox: b"user".to_vec(),
                host: b"host".to_vec(),
            }]
        );
    }

    #[test]
    fn missing_parts_and_garbage() {
        assert_eq!(
            parse(b"user"),
            vec![mailbox(None, "user", "MISSING_DOMAIN")]
        );
        assert_eq!(parse(b"<>"), vec![mailbox(None, "", "")]);
        assert_eq!(
            parse(b"@host"),
            vec![mailbox(None, "MISSING_MAILBOX", "host")]
        );
        assert_eq!(parse(b""), vec![]);
        assert_eq!(parse(b" , ,"), vec![]);
        assert_eq!(parse(b"Name <a@b"), vec![mailbox(Some("Name"), "a", "b")]);
        // Eight-bit garbage is carried through, never a failure.
        assert_eq!(
            parse(b"\xff\xfe <\xc3\xa9@x>"),
            vec![Item::Mailbox {
                name: Some(b"\xff\xfe".to_vec()),
                adl: None,
                mailbox: b"\xc3\xa9".to_vec(),
                host: b"x".to_vec(),
            }]
        );
    }

    #[test]
    fn unbalanced_comment_and_quote_do_not_panic() {
        for input in [
            &b"(((("[..],
            b"\"abc",
            b"a@b (c",
            b"\\",
            b"<<<>>>",
            b"a:b:c;;;",
        ] {
            let _ = parse(input);
        }
    }
}
