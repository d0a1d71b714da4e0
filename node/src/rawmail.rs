//! Byte-exact edits of an RFC 5322 message's header block.
//!
//! mailparse gives decoded values but not the raw byte ranges of each field,
//! and the node must change a message without touching a single other byte
//! (the recipient must see the subject, body and attachments exactly as the
//! sender wrote them). This module only splits the header block into raw
//! fields (RFC 5322 §2.2: a field starts at a line that does not begin with
//! whitespace; folded lines continue it) so fields can be removed or added.
//! Decoding of values is left to mailparse.

/// One raw header field, including its folded continuation lines and the
/// line ending(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawField<'a> {
    /// The field name as written (before the colon), without surrounding space.
    pub name: &'a [u8],
    /// The whole field, name to final line ending.
    pub raw: &'a [u8],
}

/// A message split into its header fields and body.
#[derive(Debug, Clone)]
pub struct RawMessage<'a> {
    /// Header fields in order.
    pub fields: Vec<RawField<'a>>,
    /// The separator line between header and body (`\r\n` or `\n`), empty
    /// when the message has no body.
    pub separator: &'a [u8],
    /// Everything after the separator.
    pub body: &'a [u8],
}

/// Why a message's header block is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A line in the header block is neither a field nor a continuation.
    #[error("line {line} of the header is not a header field (no colon)")]
    NotAField {
        /// 1-based line number.
        line: usize,
    },
    /// The message starts with a continuation line.
    #[error("the message starts with a folded (indented) line")]
    LeadingContinuation,
    /// There is no header at all.
    #[error("the message has no header")]
    Empty,
}

impl<'a> RawMessage<'a> {
    /// Splits `message` into header fields and body.
    pub fn parse(message: &'a [u8]) -> Result<RawMessage<'a>, HeaderError> {
        let mut fields: Vec<RawField<'a>> = Vec::new();
        let mut pos = 0;
        let mut line_no = 0;
        let mut current: Option<(usize, usize)> = None; // (start, name_end)
        while pos < message.len() {
            let end = match memchr(b'\n', &message[pos..]) {
                Some(i) => pos + i + 1,
                None => message.len(),
            };
            let line = &message[pos..end];
            line_no += 1;
            let content = trim_line_ending(line);
            if content.is_empty() {
                if let Some((start, name_end)) = current.take() {
                    fields.push(field(message, start, name_end, pos));
                }
                if fields.is_empty() {
                    return Err(HeaderError::Empty);
                }
                return Ok(RawMessage {
                    fields,
                    separator: line,
                    body: &message[end..],
                });
            }
            if content[0] == b' ' || content[0] == b'\t' {
                if current.is_none() {
                    return Err(HeaderError::LeadingContinuation);
                }
            } else {
                if let Some((start, name_end)) = current.take() {
                    fields.push(field(message, start, name_end, pos));
                }
                let colon =
                    memchr(b':', content).ok_or(HeaderError::NotAField { line: line_no })?;
                current = Some((pos, pos + colon));
            }
            pos = end;
        }
        if let Some((start, name_end)) = current.take() {
            fields.push(field(message, start, name_end, message.len()));
        }
        if fields.is_empty() {
            return Err(HeaderError::Empty);
        }
        Ok(RawMessage {
            fields,
            separator: &[],
            body: &[],
        })
    }

    /// Whether a field with this name (case-insensitive) is present.
    pub fn has(&self, name: &str) -> bool {
        self.fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// The line ending the message uses (`\r\n` unless it uses bare `\n`).
    pub fn line_ending(&self) -> &'static [u8] {
        match self.fields.first() {
            Some(f) if !f.raw.ends_with(b"\r\n") && f.raw.ends_with(b"\n") => b"\n",
            _ => b"\r\n",
        }
    }

    /// Re-assembles the message with `prepend` fields first (each a complete
    /// field without line ending), then every field for which `keep` returns
    /// true, then the separator and the untouched body.
    pub fn rebuild(&self, prepend: &[String], keep: impl Fn(&RawField<'_>) -> bool) -> Vec<u8> {
        let eol = self.line_ending();
        let mut out = Vec::with_capacity(
            self.fields.iter().map(|f| f.raw.len()).sum::<usize>()
                + self.body.len()
                + prepend.iter().map(|p| p.len() + 2).sum::<usize>()
                + 2,
        );
        for field in prepend {
            out.extend_from_slice(field.as_bytes());
            out.extend_from_slice(eol);
        }
        for field in &self.fields {
            if keep(field) {
                out.extend_from_slice(field.raw);
                if !field.raw.ends_with(b"\n") {
                    out.extend_from_slice(eol);
                }
            }
        }
        if self.separator.is_empty() {
            out.extend_from_slice(eol);
        } else {
            out.extend_from_slice(self.separator);
        }
        out.extend_from_slice(self.body);
        out
    }
}

fn field(message: &[u8], start: usize, name_end: usize, end: usize) -> RawField<'_> {
    RawField {
        name: trim_ascii(&message[start..name_end]),
        raw: &message[start..end],
    }
}

fn trim_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nBcc: carol@example.org,\r\n dave@example.org\r\nSubject: hi\r\n\r\nbody line\r\n";

    #[test]
    fn splits_fields_with_folding() {
        let msg = RawMessage::parse(MSG).unwrap();
        let names: Vec<&[u8]> = msg.fields.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            vec![&b"From"[..], &b"To"[..], &b"Bcc"[..], &b"Subject"[..]]
        );
        assert_eq!(
            msg.fields[2].raw,
            b"Bcc: carol@example.org,\r\n dave@example.org\r\n"
        );
        assert_eq!(msg.body, b"body line\r\n");
    }

    #[test]
    fn rebuild_removes_only_the_named_field() {
        let msg = RawMessage::parse(MSG).unwrap();
        let out = msg.rebuild(&["X-Test: 1".into()], |f| {
            !f.name.eq_ignore_ascii_case(b"bcc")
        });
        assert_eq!(
            out,
            b"X-Test: 1\r\nFrom: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nbody line\r\n"
        );
        let same = msg.rebuild(&[], |_| true);
        assert_eq!(same, MSG);
    }

    #[test]
    fn bare_lf_messages_keep_their_line_endings() {
        let raw = b"From: a@b\nSubject: x\n\nbody\n";
        let msg = RawMessage::parse(raw).unwrap();
        assert_eq!(msg.line_ending(), b"\n");
        assert_eq!(
            msg.rebuild(&["X: y".into()], |_| true),
            b"X: y\nFrom: a@b\nSubject: x\n\nbody\n"
        );
    }

    #[test]
    fn header_only_message() {
        let msg = RawMessage::parse(b"Subject: x\r\n").unwrap();
        assert!(msg.body.is_empty());
        assert_eq!(msg.rebuild(&[], |_| true), b"Subject: x\r\n\r\n");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(
            RawMessage::parse(b"this is not a header\r\n\r\nbody"),
            Err(HeaderError::NotAField { line: 1 })
        ));
        assert!(matches!(
            RawMessage::parse(b" folded\r\n\r\n"),
            Err(HeaderError::LeadingContinuation)
        ));
        assert!(matches!(
            RawMessage::parse(b"\r\nbody"),
            Err(HeaderError::Empty)
        ));
    }
}
