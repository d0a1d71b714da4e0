//! Header blocks (RFC 5322 §2.2, §3.5): where a header block ends, and the
//! fields in it, as byte ranges of the original input.
//!
//! Both CRLF and bare LF line endings are accepted, because stored messages
//! are not always canonical. Nothing here allocates except [`unfold`].

use std::ops::Range;

/// One header field: its name, its raw value and where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    /// The field name, without the colon and without trailing white space.
    pub name: &'a [u8],
    /// The raw value after the colon, continuation lines included, without
    /// the final line ending.
    pub value: &'a [u8],
    /// The whole field (first line, continuation lines and the final line
    /// ending), relative to the slice given to [`fields`].
    pub raw: Range<usize>,
}

impl Field<'_> {
    /// Whether the field is called `name` (field names are case-insensitive,
    /// RFC 5322 §1.2.2).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// The end of the line starting at `pos`: the index just after its `\n`, or
/// the end of the input.
pub(crate) fn line_end(bytes: &[u8], pos: usize) -> usize {
    match bytes
        .get(pos..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
    {
        Some(i) => pos + i + 1,
        None => bytes.len(),
    }
}

/// The content of a line, without its `\r\n` or `\n`.
fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Where the name of a field ends, if `line` (without its line ending) can
/// start one: a non-empty name of printable ASCII other than `:`, optional
/// white space (obsolete syntax, RFC 5322 §4.5), then `:`. Returns the
/// position of the colon.
fn field_colon(line: &[u8]) -> Option<usize> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = trim_end_wsp(&line[..colon]);
    (!name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b))).then_some(colon)
}

/// The length of the header block at the start of `bytes`, including the
/// blank line that ends it; the body starts right after.
///
/// The block ends at the first empty line. A line that can be neither a
/// field nor a continuation also ends it (without being part of it): such a
/// message has lost its blank line or has no header at all, and treating the
/// rest as body is what a reader would expect.
pub(crate) fn header_len(bytes: &[u8]) -> usize {
    let mut fields = fields(bytes);
    for _ in fields.by_ref() {}
    fields.end()
}

/// The fields of the header block at the start of `bytes`, in order.
///
/// Iteration stops at the end of the header block (see [`header_len`]), so
/// passing a whole message is fine. One pass, no allocation: this is the
/// hot path of FETCH ENVELOPE.
pub(crate) fn fields(bytes: &[u8]) -> Fields<'_> {
    Fields {
        bytes,
        pos: 0,
        done: false,
    }
}

/// Iterator returned by [`fields`].
pub(crate) struct Fields<'a> {
    bytes: &'a [u8],
    /// Start of the next field; once `done`, the end of the header block.
    pos: usize,
    done: bool,
}

impl Fields<'_> {
    /// Once the iterator is exhausted: the length of the header block
    /// (see [`header_len`]).
    pub fn end(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let bytes = self.bytes;
        let start = self.pos;
        if self.done || start >= bytes.len() {
            self.done = true;
            return None;
        }
        let first_end = line_end(bytes, start);
        let first = strip_eol(&bytes[start..first_end]);
        if first.is_empty() {
            // The blank line that ends the block belongs to it.
            self.pos = first_end;
            self.done = true;
            return None;
        }
        // Leading white space can only be seen here on the very first line
        // (later continuations are consumed below): not a header.
        let Some(colon) = field_colon(first).filter(|_| !matches!(first[0], b' ' | b'\t')) else {
            self.done = true;
            return None;
        };
        // Continuation lines start with white space (RFC 5322 §2.2.3).
        let mut end = first_end;
        while end < bytes.len() && matches!(bytes[end], b' ' | b'\t') {
            end = line_end(bytes, end);
        }
        self.pos = end;
        let raw = &bytes[start..end];
        let value = raw.get(colon + 1..).map(strip_eol).unwrap_or_default();
        Some(Field {
            name: trim_end_wsp(&raw[..colon]),
            value,
            raw: start..end,
        })
    }
}

/// The raw value of the first field called `name`, if any.
pub(crate) fn first<'a>(bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
    fields(bytes).find(|f| f.is(name)).map(|f| f.value)
}

/// Unfolds a raw value (RFC 5322 §2.2.3: remove the CRLFs of folding) and
/// trims surrounding white space. Encoded words stay as they are.
pub(crate) fn unfold(value: &[u8]) -> Vec<u8> {
    let trimmed = trim_wsp(value);
    trimmed
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

fn is_wsp(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `bytes` without leading and trailing white space (including CR and LF).
pub(crate) fn trim_wsp(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_wsp(b))
        .unwrap_or(bytes.len());
    trim_end_wsp(&bytes[start..])
}

fn trim_end_wsp(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| !is_wsp(b)).map_or(0, |i| i + 1);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_block_includes_blank_line() {
        let msg = b"Subject: hi\r\nFrom: a@b\r\n\r\nbody\r\n";
        assert_eq!(header_len(msg), 26);
        assert_eq!(&msg[26..], b"body\r\n");
    }

    #[test]
    fn bare_lf_header_block() {
        let msg = b"Subject: hi\nX: y\n\nbody";
        assert_eq!(header_len(msg), 18);
    }

    #[test]
    fn message_without_header() {
        assert_eq!(header_len(b"just text\r\nmore\r\n"), 0);
        assert_eq!(header_len(b"\r\nbody"), 2);
        assert_eq!(header_len(b""), 0);
        assert_eq!(header_len(b"  indented\r\n"), 0);
    }

    #[test]
    fn header_without_blank_line_runs_to_end() {
        assert_eq!(header_len(b"Subject: x\r\nTo: y"), 17);
    }

    #[test]
    fn garbage_line_ends_header() {
        let msg = b"Subject: x\r\nthis is no field\r\nmore";
        assert_eq!(header_len(msg), 12);
    }

    #[test]
    fn folded_fields_keep_continuations() {
        let msg = b"Subject: one\r\n two\r\n\tthree\r\nTo : a@b\r\n\r\nbody";
        let all: Vec<Field<'_>> = fields(msg).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, b"Subject");
        assert_eq!(all[0].value, b" one\r\n two\r\n\tthree");
        assert_eq!(
            &msg[all[0].raw.clone()],
            b"Subject: one\r\n two\r\n\tthree\r\n"
        );
        assert_eq!(all[1].name, b"To");
        assert!(all[1].is("to"));
        assert_eq!(unfold(all[0].value), b"one two\tthree");
    }

    #[test]
    fn last_field_without_line_ending() {
        let all: Vec<Field<'_>> = fields(b"A: 1\r\nB: 2").collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].value, b" 2");
        assert_eq!(all[1].raw, 6..10);
    }

    #[test]
    fn first_finds_case_insensitively() {
        let msg = b"X-A: 1\r\nsubject: hello\r\nSubject: second\r\n\r\nSubject: body";
        assert_eq!(first(msg, "SUBJECT"), Some(&b" hello"[..]));
        assert_eq!(first(msg, "Date"), None);
    }
}
