//! Server responses: the output buffer a session writes into, the tagged
//! completion of a command, and the one place where storage errors become
//! IMAP response codes (RFC 5530).
//!
//! Lines are written here by hand with the quoting rules of RFC 3501 §4.3
//! (status responses, LIST, STATUS, SEARCH); FETCH writes its lines into
//! the same buffer (`fetch.rs`, with imap-codec for its large items).
//! Nothing here does I/O.

use crate::backend::StoreError;

/// The result word of a tagged response (RFC 3501 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BAD`
    Bad,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Ok => "OK",
            Kind::No => "NO",
            Kind::Bad => "BAD",
        }
    }
}

/// How a command ends: the tagged status response, minus the tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// OK, NO or BAD.
    pub kind: Kind,
    /// Response code without brackets, e.g. `READ-WRITE` or
    /// `APPENDUID 7 12`.
    pub code: Option<String>,
    /// Human-readable text.
    pub text: String,
}

impl Completion {
    /// `OK text`.
    pub fn ok(text: impl Into<String>) -> Self {
        Completion {
            kind: Kind::Ok,
            code: None,
            text: text.into(),
        }
    }

    /// `OK [code] text`.
    pub fn ok_code(code: impl Into<String>, text: impl Into<String>) -> Self {
        Completion {
            kind: Kind::Ok,
            code: Some(code.into()),
            text: text.into(),
        }
    }

    /// `NO text`.
    pub fn no(text: impl Into<String>) -> Self {
        Completion {
            kind: Kind::No,
            code: None,
            text: text.into(),
        }
    }

    /// `NO [code] text`.
    pub fn no_code(code: impl Into<String>, text: impl Into<String>) -> Self {
        Completion {
            kind: Kind::No,
            code: Some(code.into()),
            text: text.into(),
        }
    }

    /// `BAD text`.
    pub fn bad(text: impl Into<String>) -> Self {
        Completion {
            kind: Kind::Bad,
            code: None,
            text: text.into(),
        }
    }
}

/// Storage failures become `NO` with the RFC 5530 code of their kind. This
/// is the only mapping from [`StoreError`] to the wire.
impl From<StoreError> for Completion {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::NoSuchMailbox(_) => Completion::no_code("NONEXISTENT", error.to_string()),
            StoreError::AlreadyExists(_) => Completion::no_code("ALREADYEXISTS", error.to_string()),
            StoreError::Cannot(_) => Completion::no_code("CANNOT", error.to_string()),
            StoreError::Rejected(_) => Completion::no_code("LIMIT", error.to_string()),
            StoreError::Unavailable(_) => Completion::no_code("UNAVAILABLE", error.to_string()),
            StoreError::Internal(_) => {
                tracing::warn!(%error, "store failure while serving IMAP");
                Completion::no_code("SERVERBUG", "internal error, see the node's log")
            }
        }
    }
}

/// Where a long response can be sent before the command ends, so a big
/// FETCH is never held in memory whole. The driver's connection is one;
/// tests use a `Vec<u8>`.
pub trait Sink: Send {
    /// Sends bytes to the client now.
    fn send(&mut self, bytes: Vec<u8>) -> impl Future<Output = std::io::Result<()>> + Send;
}

impl Sink for Vec<u8> {
    async fn send(&mut self, bytes: Vec<u8>) -> std::io::Result<()> {
        self.extend_from_slice(&bytes);
        Ok(())
    }
}

/// Bytes waiting to be sent to the client.
#[derive(Debug, Default)]
pub struct Output {
    buf: Vec<u8>,
}

impl Output {
    /// Appends a tagged status response.
    pub fn tagged(&mut self, tag: &str, completion: &Completion) {
        self.status(
            tag,
            completion.kind,
            completion.code.as_deref(),
            &completion.text,
        );
    }

    /// Appends `tag KIND [code] text` (the tag may be `*`).
    pub fn status(&mut self, tag: &str, kind: Kind, code: Option<&str>, text: &str) {
        self.buf.extend_from_slice(tag.as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(kind.as_str().as_bytes());
        if let Some(code) = code {
            self.buf.extend_from_slice(b" [");
            self.buf.extend_from_slice(sanitize(code).as_bytes());
            self.buf.push(b']');
        }
        self.buf.push(b' ');
        self.buf.extend_from_slice(sanitize(text).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Appends an untagged line; `line` is everything after `* `.
    pub fn untagged(&mut self, line: &str) {
        self.buf.extend_from_slice(b"* ");
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Appends a command continuation request (RFC 3501 §7.5). An empty
    /// text gives `+ ` (an empty SASL challenge).
    pub fn continuation(&mut self, text: &str) {
        self.buf.extend_from_slice(b"+ ");
        if !text.is_empty() {
            self.buf.extend_from_slice(sanitize(text).as_bytes());
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Takes everything waiting.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// The bytes waiting, for a FETCH line written in place.
    pub(super) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
}

/// Makes text safe for a `text` element: no CR/LF, never empty
/// (RFC 3501 §9 `text = 1*TEXT-CHAR`).
fn sanitize(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c == '\r' || c == '\n' || c == '\0' {
                ' '
            } else {
                c
            }
        })
        .collect();
    if cleaned.is_empty() {
        "completed".to_string()
    } else {
        cleaned
    }
}

/// A quoted string (RFC 3501 §4.3) for `value`, or `None` when it holds
/// bytes a quoted string cannot carry (8-bit, CR, LF, NUL) and a literal is
/// needed. Public so that IMAP clients (the node's gateway) quote the same way.
pub fn quoted(value: &str) -> Option<String> {
    quote(value, false)
}

fn quote(value: &str, utf8: bool) -> Option<String> {
    let quotable = value
        .bytes()
        .all(|b| (utf8 || b.is_ascii()) && b != b'\r' && b != b'\n' && b != 0);
    if !quotable {
        return None;
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// An IMAP `string` for arbitrary text: a quoted string when the rules of
/// RFC 3501 §4.3 allow, else a literal.
pub fn string(value: &str) -> String {
    string_or_literal(value, false)
}

/// Like [`string`], with UTF-8 allowed in the quoted form (RFC 9755 §3,
/// after `ENABLE UTF8=ACCEPT`).
pub fn string_utf8(value: &str) -> String {
    string_or_literal(value, true)
}

fn string_or_literal(value: &str, utf8: bool) -> String {
    quote(value, utf8).unwrap_or_else(|| format!("{{{}}}\r\n{value}", value.len()))
}

/// A compact sequence set (`1:3,7`) of ascending numbers.
pub fn sequence_set(numbers: &[u32]) -> String {
    let mut out = String::new();
    let mut index = 0;
    while index < numbers.len() {
        let start = numbers[index];
        let mut end = start;
        while index + 1 < numbers.len() && numbers[index + 1] == end.wrapping_add(1) {
            index += 1;
            end = numbers[index];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        index += 1;
    }
    out
}

/// The flag list `(\Seen $Label1)`, with `\Recent` last when `recent`.
pub fn flag_list(flags: &[String], recent: bool) -> String {
    let mut list = flags.join(" ");
    if recent {
        if !list.is_empty() {
            list.push(' ');
        }
        list.push_str("\\Recent");
    }
    format!("({list})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_with_code_and_sanitized_text() {
        let mut out = Output::default();
        out.tagged("a1", &Completion::no_code("CANNOT", "bad\r\nthing"));
        out.tagged("a2", &Completion::ok(""));
        assert_eq!(
            out.take(),
            b"a1 NO [CANNOT] bad  thing\r\na2 OK completed\r\n".to_vec()
        );
        assert!(out.take().is_empty());
    }

    #[test]
    fn store_errors_map_to_rfc5530_codes() {
        let c = Completion::from(StoreError::AlreadyExists("Trash".into()));
        assert_eq!(
            (c.kind, c.code.as_deref()),
            (Kind::No, Some("ALREADYEXISTS"))
        );
        let c = Completion::from(StoreError::NoSuchMailbox("x".into()));
        assert_eq!(c.code.as_deref(), Some("NONEXISTENT"));
        let c = Completion::from(StoreError::Internal("disk on fire".into()));
        assert_eq!(c.code.as_deref(), Some("SERVERBUG"));
        assert!(!c.text.contains("disk"), "internal details stay in the log");
    }

    #[test]
    fn strings_quote_or_literal() {
        assert_eq!(string("INBOX"), "\"INBOX\"");
        assert_eq!(string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(string("line\nbreak"), "{10}\r\nline\nbreak");
        assert_eq!(string("Grüße"), "{7}\r\nGrüße");
    }

    #[test]
    fn compact_sequence_sets() {
        assert_eq!(sequence_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(sequence_set(&[5]), "5");
        assert_eq!(sequence_set(&[]), "");
    }
}
