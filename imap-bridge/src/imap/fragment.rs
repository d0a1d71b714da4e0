//! Splits the client's byte stream into complete IMAP messages before any
//! parsing, so literal bytes can never be read as commands (RFC 3501 §4.3,
//! §7.5; RFC 7888 LITERAL+).
//!
//! This module owns framing only: it knows lines, literal announcements
//! (`{n}` / `{n+}` at the end of a line) and size limits. It does no I/O and
//! does not know IMAP grammar beyond that; the session decides what a message
//! means and whether a synchronizing literal may be sent.
//!
//! Limits: a line longer than `max_line` or a literal larger than the current
//! literal limit rejects the message. The rejected bytes are discarded as they
//! arrive, never buffered, and framing continues with the next message so the
//! session survives.

use bytes::{Buf, BytesMut};

/// Default limit of one command line (without its literals).
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// Why a message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A line exceeded the line limit.
    LineTooLong,
    /// A literal exceeded the literal limit (RFC 7889 `[TOOBIG]`).
    LiteralTooBig,
}

/// What the framer found in the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete message: its lines with CRLF and its literals inline.
    Message(Vec<u8>),
    /// The last line announced a literal that is within the limit. For a
    /// synchronizing literal the caller must send a continuation request
    /// (or reject with [`Framer::reject_literal`]) before the client sends it.
    Literal {
        /// Announced length.
        length: u32,
        /// `{n}` (true) or `{n+}` (false).
        sync: bool,
    },
    /// A message was rejected. For a synchronizing literal the client waits
    /// for our answer and sends nothing more of this command; otherwise the
    /// rest of the command has already been discarded.
    Rejected {
        /// The tag of the message, if its first line was readable.
        tag: Option<String>,
        /// Why.
        reason: Rejection,
    },
}

#[derive(Debug)]
enum State {
    /// Reading a line of the current message.
    Line,
    /// Reading `remaining` literal bytes into the message.
    Literal { remaining: u32 },
    /// Discarding the rest of a rejected message's line; `tail` keeps the
    /// last bytes to spot a literal announcement at its end.
    DiscardLine { tail: Vec<u8> },
    /// Discarding `remaining` bytes of a literal of a rejected message.
    DiscardLiteral { remaining: u64 },
}

/// The framer: bytes in, [`Event`]s out.
#[derive(Debug)]
pub struct Framer {
    input: BytesMut,
    message: Vec<u8>,
    state: State,
    max_line: usize,
    max_literal: u32,
    /// Set when the current message is being discarded.
    rejected: Option<(Option<String>, Rejection)>,
    /// Length of the line being read that is already scanned for `\n`.
    scanned: usize,
}

impl Framer {
    /// A framer with the given limits.
    pub fn new(max_line: usize, max_literal: u32) -> Self {
        Framer {
            input: BytesMut::new(),
            message: Vec::new(),
            state: State::Line,
            max_line,
            max_literal,
            rejected: None,
            scanned: 0,
        }
    }

    /// Changes the literal limit (e.g. after authentication).
    pub fn set_max_literal(&mut self, max_literal: u32) {
        self.max_literal = max_literal;
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// Removes and returns every byte received but not yet framed, and
    /// resets framing. Used when the byte stream changes meaning (STARTTLS
    /// discards them, COMPRESS decompresses them).
    pub fn take_unframed(&mut self) -> BytesMut {
        self.message.clear();
        self.state = State::Line;
        self.rejected = None;
        self.scanned = 0;
        std::mem::take(&mut self.input)
    }

    /// Whether bytes of an unfinished message are held (used to decide
    /// whether an abrupt close lost a command).
    pub fn is_idle(&self) -> bool {
        self.input.is_empty() && self.message.is_empty() && matches!(self.state, State::Line)
    }

    /// After [`Event::Literal`] with `sync`, refuses the literal: the client
    /// will not send it, so the message is dropped and framing restarts.
    pub fn reject_literal(&mut self) {
        self.message.clear();
        self.state = State::Line;
        self.scanned = 0;
    }

    /// Frames as far as the buffered input allows. `None` means more input is
    /// needed.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            match &mut self.state {
                State::Line => {
                    let start = self.message.len();
                    let found = self.input[self.scanned..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map(|i| i + self.scanned);
                    let Some(newline) = found else {
                        self.scanned = self.input.len();
                        if self.input.len() > self.max_line {
                            // Keep the tag for the reply, then discard.
                            let tag = tag_of(&self.message, &self.input);
                            self.reject(tag, Rejection::LineTooLong);
                            let tail = tail_of(&self.input);
                            self.input.clear();
                            self.scanned = 0;
                            self.state = State::DiscardLine { tail };
                        }
                        return None;
                    };
                    self.scanned = 0;
                    if newline + 1 > self.max_line {
                        let tag = tag_of(&self.message, &self.input);
                        self.reject(tag, Rejection::LineTooLong);
                        let line = self.input.split_to(newline + 1);
                        if let Some(event) = self.after_discarded_line(&line) {
                            return Some(event);
                        }
                        continue;
                    }
                    let line = self.input.split_to(newline + 1);
                    self.message.extend_from_slice(&line);
                    match literal_announcement(&self.message[start..]) {
                        None => return Some(self.finish()),
                        Some((length, sync)) => {
                            // The whole message is capped too, so many small
                            // literals cannot add up to more than one big one.
                            let total = self.message.len() as u64 + length;
                            let cap = u64::from(self.max_literal) + self.max_line as u64;
                            if length > u64::from(self.max_literal) || total > cap {
                                let tag = tag_of(&self.message, &[]);
                                if sync {
                                    // RFC 7888 §4 / RFC 3501 §7.5: the client
                                    // waits for `+`; refuse now, it sends
                                    // nothing more of this command.
                                    self.message.clear();
                                    self.state = State::Line;
                                    return Some(Event::Rejected {
                                        tag,
                                        reason: Rejection::LiteralTooBig,
                                    });
                                }
                                // LITERAL+: the bytes come anyway; drop them.
                                self.reject(tag, Rejection::LiteralTooBig);
                                self.message.clear();
                                self.state = State::DiscardLiteral { remaining: length };
                                continue;
                            }
                            // Fits in u32 since it is below max_literal.
                            let length = u32::try_from(length).unwrap_or(u32::MAX);
                            self.state = State::Literal { remaining: length };
                            return Some(Event::Literal { length, sync });
                        }
                    }
                }
                State::Literal { remaining } => {
                    if self.input.is_empty() && *remaining > 0 {
                        return None;
                    }
                    let take = (*remaining as usize).min(self.input.len());
                    self.message.extend_from_slice(&self.input[..take]);
                    self.input.advance(take);
                    *remaining -= take as u32;
                    if *remaining == 0 {
                        self.state = State::Line;
                    } else {
                        return None;
                    }
                }
                State::DiscardLine { tail } => match self.input.iter().position(|&b| b == b'\n') {
                    None => {
                        let mut joined = std::mem::take(tail);
                        joined.extend_from_slice(&self.input);
                        *tail = tail_of(&joined);
                        self.input.clear();
                        return None;
                    }
                    Some(newline) => {
                        let mut line = std::mem::take(tail);
                        line.extend_from_slice(&self.input[..=newline]);
                        self.input.advance(newline + 1);
                        if let Some(event) = self.after_discarded_line(&line) {
                            return Some(event);
                        }
                    }
                },
                State::DiscardLiteral { remaining } => {
                    if self.input.is_empty() {
                        return None;
                    }
                    let take = (*remaining).min(self.input.len() as u64) as usize;
                    self.input.advance(take);
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        self.state = State::DiscardLine { tail: Vec::new() };
                    } else {
                        return None;
                    }
                }
            }
        }
    }

    fn reject(&mut self, tag: Option<String>, reason: Rejection) {
        if self.rejected.is_none() {
            self.rejected = Some((tag, reason));
        }
        self.message.clear();
    }

    /// The end of a line of a rejected message: either the message ends, or
    /// a literal follows that must be discarded too.
    fn after_discarded_line(&mut self, line: &[u8]) -> Option<Event> {
        match literal_announcement(line) {
            Some((length, false)) => {
                self.state = State::DiscardLiteral { remaining: length };
                None
            }
            // A synchronizing literal is never sent without our `+`, so the
            // rejection ends the command here.
            Some((_, true)) | None => {
                self.state = State::Line;
                let (tag, reason) = self
                    .rejected
                    .take()
                    .unwrap_or((None, Rejection::LineTooLong));
                Some(Event::Rejected { tag, reason })
            }
        }
    }

    fn finish(&mut self) -> Event {
        self.state = State::Line;
        match self.rejected.take() {
            Some((tag, reason)) => {
                self.message.clear();
                Event::Rejected { tag, reason }
            }
            None => Event::Message(std::mem::take(&mut self.message)),
        }
    }
}

/// The last bytes of a discarded line, enough to recognise `{4294967295+}\r`.
fn tail_of(bytes: &[u8]) -> Vec<u8> {
    const KEEP: usize = 24;
    bytes[bytes.len().saturating_sub(KEEP)..].to_vec()
}

/// The tag at the start of a message, if it is a valid tag (RFC 3501 §9:
/// `tag = 1*<any ASTRING-CHAR except "+">`).
fn tag_of(message: &[u8], more: &[u8]) -> Option<String> {
    let source = if message.is_empty() { more } else { message };
    let end = source.iter().position(|&b| b == b' ')?;
    let tag = &source[..end];
    is_tag(tag).then(|| String::from_utf8_lossy(tag).into_owned())
}

/// Whether bytes form a tag we can echo (RFC 3501 §9), at most 64 long.
pub fn is_tag(tag: &[u8]) -> bool {
    !tag.is_empty()
        && tag.len() <= 64
        && tag.iter().all(|&b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
        })
}

/// Recognises a literal announcement `{n}` or `{n+}` (LITERAL+, RFC 7888)
/// at the end of a line (`\r\n` or a bare `\n`). Also `~{n}` (RFC 3516
/// literal8) frames the same way.
pub fn literal_announcement(line: &[u8]) -> Option<(u64, bool)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let sync = match digits.strip_suffix(b"+") {
        Some(rest) => {
            digits = rest;
            false
        }
        None => true,
    };
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let text = std::str::from_utf8(digits).ok()?;
    let length: u64 = text.parse().ok()?;
    Some((length, sync))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(framer: &mut Framer) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(event) = framer.next_event() {
            out.push(event);
        }
        out
    }

    #[test]
    fn splits_pipelined_lines() {
        let mut framer = Framer::new(1024, 1024);
        framer.push(b"a NOOP\r\nb CAPABILITY\r\nc LOG");
        assert_eq!(
            events(&mut framer),
            vec![
                Event::Message(b"a NOOP\r\n".to_vec()),
                Event::Message(b"b CAPABILITY\r\n".to_vec())
            ]
        );
        framer.push(b"OUT\r\n");
        assert_eq!(
            events(&mut framer),
            vec![Event::Message(b"c LOGOUT\r\n".to_vec())]
        );
    }

    #[test]
    fn literal_bytes_are_never_lines() {
        let mut framer = Framer::new(1024, 1024);
        framer.push(b"a APPEND x {10}\r\n");
        assert_eq!(
            events(&mut framer),
            vec![Event::Literal {
                length: 10,
                sync: true
            }]
        );
        framer.push(b"b LOGOUT\r\n\r\n");
        assert_eq!(
            events(&mut framer),
            vec![Event::Message(
                b"a APPEND x {10}\r\nb LOGOUT\r\n\r\n".to_vec()
            )]
        );
    }

    #[test]
    fn non_sync_literal_and_several_literals() {
        let mut framer = Framer::new(1024, 1024);
        framer.push(b"a LOGIN {3+}\r\nbob {2+}\r\npw\r\n");
        assert_eq!(
            events(&mut framer),
            vec![
                Event::Literal {
                    length: 3,
                    sync: false
                },
                Event::Literal {
                    length: 2,
                    sync: false
                },
                Event::Message(b"a LOGIN {3+}\r\nbob {2+}\r\npw\r\n".to_vec())
            ]
        );
    }

    #[test]
    fn oversized_sync_literal_is_refused_before_data() {
        let mut framer = Framer::new(1024, 100);
        framer.push(b"t1 APPEND INBOX {101}\r\nt2 NOOP\r\n");
        assert_eq!(
            events(&mut framer),
            vec![
                Event::Rejected {
                    tag: Some("t1".into()),
                    reason: Rejection::LiteralTooBig
                },
                Event::Message(b"t2 NOOP\r\n".to_vec())
            ]
        );
    }

    #[test]
    fn oversized_non_sync_literal_is_discarded() {
        let mut framer = Framer::new(1024, 4);
        framer.push(b"t1 APPEND INBOX {9+}\r\nt9 NOOP");
        assert_eq!(events(&mut framer), vec![]);
        framer.push(b"\r\n\r\nt2 NOOP\r\n");
        assert_eq!(
            events(&mut framer),
            vec![
                Event::Rejected {
                    tag: Some("t1".into()),
                    reason: Rejection::LiteralTooBig
                },
                Event::Message(b"t2 NOOP\r\n".to_vec())
            ]
        );
    }

    #[test]
    fn long_line_is_rejected_without_buffering() {
        let mut framer = Framer::new(16, 100);
        framer.push(b"t1 SEARCH TEXT aaaaaaaaaaaaaa");
        assert_eq!(events(&mut framer), vec![]);
        assert!(framer.input.is_empty(), "the long line is not kept");
        framer.push(&[b'a'; 1000]);
        framer.push(b"\r\nt2 NOOP\r\n");
        assert_eq!(
            events(&mut framer),
            vec![
                Event::Rejected {
                    tag: Some("t1".into()),
                    reason: Rejection::LineTooLong
                },
                Event::Message(b"t2 NOOP\r\n".to_vec())
            ]
        );
    }

    #[test]
    fn long_line_ending_in_non_sync_literal_discards_literal() {
        let mut framer = Framer::new(16, 100);
        framer.push(b"t1 APPEND aaaaaaaaaaaaaaaaaaaaaaaa {5+}\r\nt3 XX\r\nt2 NOOP\r\n");
        assert_eq!(
            events(&mut framer),
            vec![
                Event::Rejected {
                    tag: Some("t1".into()),
                    reason: Rejection::LineTooLong
                },
                Event::Message(b"t2 NOOP\r\n".to_vec())
            ]
        );
    }

    #[test]
    fn announcement_forms() {
        assert_eq!(literal_announcement(b"a {5}\r\n"), Some((5, true)));
        assert_eq!(literal_announcement(b"a {5+}\r\n"), Some((5, false)));
        assert_eq!(literal_announcement(b"a ~{5}\n"), Some((5, true)));
        assert_eq!(literal_announcement(b"a {}\r\n"), None);
        assert_eq!(literal_announcement(b"a {x}\r\n"), None);
        assert_eq!(literal_announcement(b"a {5} \r\n"), None);
        assert_eq!(literal_announcement(b"a {99999999999}\r\n"), None);
        assert_eq!(literal_announcement(b"a 5}\r\n"), None);
    }

    #[test]
    fn reject_literal_restarts_framing() {
        let mut framer = Framer::new(1024, 100);
        framer.push(b"t1 APPEND INBOX {10}\r\n");
        assert_eq!(
            events(&mut framer),
            vec![Event::Literal {
                length: 10,
                sync: true
            }]
        );
        framer.reject_literal();
        framer.push(b"t2 NOOP\r\n");
        assert_eq!(
            events(&mut framer),
            vec![Event::Message(b"t2 NOOP\r\n".to_vec())]
        );
    }

    #[test]
    fn take_unframed_returns_pending_bytes() {
        let mut framer = Framer::new(1024, 100);
        framer.push(b"a STARTTLS\r\nb INJECTED\r\n");
        assert_eq!(
            framer.next_event(),
            Some(Event::Message(b"a STARTTLS\r\n".to_vec()))
        );
        assert_eq!(&framer.take_unframed()[..], b"b INJECTED\r\n");
        assert!(framer.is_idle());
    }
}
