//! The MIME tree of a message (RFC 2045, RFC 2046), as byte ranges of the
//! original message.
//!
//! Every entity (the message itself, each part of a multipart, each
//! encapsulated `message/rfc822`) knows where its header block and its body
//! are, so that sections can be cut out byte-exactly. Broken structure never
//! fails: a multipart without a usable boundary becomes `text/plain`, and
//! below [`MAX_DEPTH`] levels of nesting containers become opaque
//! `application/octet-stream` leaves, which bounds recursion on hostile
//! input.

use std::ops::Range;

use super::content::ContentType;
use super::header;

/// How deep multiparts and encapsulated messages may nest before the rest is
/// treated as opaque data. Real mail rarely goes past 5 levels.
pub(crate) const MAX_DEPTH: usize = 32;

/// One MIME entity: header block, body, and what the body contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entity {
    /// The header block, including the blank line that ends it (absolute
    /// offsets into the message).
    pub header: Range<usize>,
    /// The body (absolute offsets into the message).
    pub body: Range<usize>,
    /// The effective content type (after defaults and fallbacks).
    pub content_type: ContentType,
    /// What the body is made of.
    pub kind: Kind,
}

/// The shape of an entity's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A leaf: text, attachment, or anything opaque.
    Single,
    /// A multipart with at least one part (RFC 2046 §5.1).
    Multipart(Vec<Entity>),
    /// An encapsulated message (`message/rfc822`, RFC 2046 §5.2.1).
    Message(Box<Entity>),
}

impl Entity {
    /// The header block bytes of this entity.
    pub fn header_bytes<'a>(&self, message: &'a [u8]) -> &'a [u8] {
        message.get(self.header.clone()).unwrap_or_default()
    }

    /// The body bytes of this entity.
    pub fn body_bytes<'a>(&self, message: &'a [u8]) -> &'a [u8] {
        message.get(self.body.clone()).unwrap_or_default()
    }
}

/// Parses the whole message into its MIME tree.
pub(crate) fn parse(message: &[u8]) -> Entity {
    parse_entity(message, 0..message.len(), ContentType::text_plain(), 0)
}

/// Parses the entity occupying `range` of `message`; `default` is its
/// content type when it declares none (RFC 2045 §5.2, RFC 2046 §5.1.5).
fn parse_entity(message: &[u8], range: Range<usize>, default: ContentType, depth: usize) -> Entity {
    let bytes = message.get(range.clone()).unwrap_or_default();
    // One pass finds both the Content-Type and the end of the header.
    let mut fields = header::fields(bytes);
    let declared = fields
        .by_ref()
        .find(|f| f.is("Content-Type"))
        .map(|f| ContentType::parse(f.value));
    for _ in fields.by_ref() {}
    let header = range.start..range.start + fields.end();
    let body = header.end..range.end;
    let content_type = match declared {
        None => default,
        Some(Some(ct)) => ct,
        // A present but invalid Content-Type means text/plain even inside a
        // digest (RFC 2045 §5.2).
        Some(None) => ContentType::text_plain(),
    };
    let mut entity = Entity {
        header,
        body,
        content_type,
        kind: Kind::Single,
    };
    let container =
        entity.content_type.r#type == "multipart" || entity.content_type.is("message", "rfc822");
    if !container {
        return entity;
    }
    if depth >= MAX_DEPTH {
        entity.content_type = ContentType {
            r#type: "application".into(),
            subtype: "octet-stream".into(),
            params: Vec::new(),
        };
        return entity;
    }
    if entity.content_type.r#type == "message" {
        let inner = parse_entity(
            message,
            entity.body.clone(),
            ContentType::text_plain(),
            depth + 1,
        );
        entity.kind = Kind::Message(Box::new(inner));
        return entity;
    }
    let parts = entity
        .content_type
        .param("boundary")
        .filter(|b| !b.is_empty())
        .map(|boundary| split_multipart(message, entity.body.clone(), boundary))
        .unwrap_or_default();
    if parts.is_empty() {
        // No boundary, or none of its delimiters: show the body as text.
        entity.content_type = ContentType::text_plain();
        return entity;
    }
    let part_default = if entity.content_type.subtype == "digest" {
        ContentType::message_rfc822()
    } else {
        ContentType::text_plain()
    };
    let children = parts
        .into_iter()
        .map(|part| parse_entity(message, part, part_default.clone(), depth + 1))
        .collect();
    entity.kind = Kind::Multipart(children);
    entity
}

/// What a delimiter line is (RFC 2046 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delimiter {
    /// `--boundary`
    Part,
    /// `--boundary--`
    Close,
}

/// Whether `line` (line ending included) is a delimiter for `boundary`:
/// `--boundary`, optionally `--`, then only transport padding.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<Delimiter> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (kind, rest) = match rest.strip_prefix(b"--") {
        Some(rest) => (Delimiter::Close, rest),
        None => (Delimiter::Part, rest),
    };
    rest.iter()
        .all(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .then_some(kind)
}

/// The ranges of the parts of a multipart body. The line break before each
/// delimiter belongs to the delimiter, not to the part (RFC 2046 §5.1.1).
/// The preamble and the epilogue are dropped. A missing close delimiter
/// lets the last part run to the end of the body.
fn split_multipart(message: &[u8], body: Range<usize>, boundary: &[u8]) -> Vec<Range<usize>> {
    let mut parts = Vec::new();
    let mut part_start: Option<usize> = None;
    let mut pos = body.start;
    let end = body.end.min(message.len());
    while pos < end {
        let line_end = header::line_end(&message[..end], pos);
        let line = &message[pos..line_end];
        if let Some(kind) = line
            .starts_with(b"--")
            .then(|| delimiter(line, boundary))
            .flatten()
        {
            if let Some(start) = part_start {
                parts.push(start..content_end(message, start, pos));
            }
            if kind == Delimiter::Close {
                return parts;
            }
            part_start = Some(line_end);
        }
        pos = line_end;
    }
    if let Some(start) = part_start {
        parts.push(start..end.max(start));
    }
    parts
}

/// The end of a part's content whose next delimiter line starts at
/// `delimiter`: just before the CRLF (or LF) that precedes it.
fn content_end(message: &[u8], start: usize, delimiter: usize) -> usize {
    let mut end = delimiter;
    if end > start && message.get(end - 1) == Some(&b'\n') {
        end -= 1;
        if end > start && message.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"Content-Type: multipart/mixed; boundary=XX\r\n\
\r\n\
preamble\r\n\
--XX\r\n\
Content-Type: text/plain\r\n\
\r\n\
hello\r\n\
--XX\r\n\
\r\n\
second\r\n\
--XX--\r\n\
epilogue\r\n";

    fn children(entity: &Entity) -> &[Entity] {
        match &entity.kind {
            Kind::Multipart(children) => children,
            other => panic!("expected a multipart, got {other:?}"),
        }
    }

    #[test]
    fn splits_parts_without_delimiter_line_breaks() {
        let root = parse(MIXED);
        let parts = children(&root);
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0].header_bytes(MIXED),
            b"Content-Type: text/plain\r\n\r\n"
        );
        assert_eq!(parts[0].body_bytes(MIXED), b"hello");
        assert_eq!(parts[1].header_bytes(MIXED), b"\r\n");
        assert_eq!(parts[1].body_bytes(MIXED), b"second");
        assert!(parts[1].content_type.is("text", "plain"));
    }

    #[test]
    fn missing_close_delimiter_runs_to_end() {
        let msg = b"Content-Type: multipart/mixed; boundary=\"a b\"\n\n--a b\n\nonly part\n";
        let root = parse(msg);
        let parts = children(&root);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].body_bytes(msg), b"only part\n");
    }

    #[test]
    fn boundary_prefix_is_not_a_delimiter() {
        let msg = b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n\r\nx\r\n--abc\r\ny\r\n--ab--\r\n";
        let root = parse(msg);
        let parts = children(&root);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].body_bytes(msg), b"x\r\n--abc\r\ny");
    }

    #[test]
    fn broken_boundary_falls_back_to_text() {
        let msg = b"Content-Type: multipart/mixed; boundary=nothere\r\n\r\n--other\r\nbody\r\n";
        let root = parse(msg);
        assert_eq!(root.kind, Kind::Single);
        assert!(root.content_type.is("text", "plain"));
        let msg = b"Content-Type: multipart/mixed\r\n\r\nbody\r\n";
        assert!(parse(msg).content_type.is("text", "plain"));
    }

    #[test]
    fn digest_parts_default_to_message() {
        let msg = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: inner\r\n\r\ntext\r\n--d--\r\n";
        let root = parse(msg);
        let part = &children(&root)[0];
        assert!(part.content_type.is("message", "rfc822"));
        match &part.kind {
            Kind::Message(inner) => assert_eq!(inner.body_bytes(msg), b"text"),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn deep_nesting_is_capped() {
        let mut msg = Vec::new();
        for _ in 0..200 {
            msg.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        msg.extend_from_slice(b"Subject: bottom\r\n\r\nx");
        let mut entity = parse(&msg);
        let mut depth = 0;
        while let Kind::Message(inner) = entity.kind {
            entity = *inner;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
        assert!(entity.content_type.is("application", "octet-stream"));
    }

    #[test]
    fn invalid_content_type_is_text() {
        let root = parse(b"Content-Type: garbage\r\n\r\nx");
        assert!(root.content_type.is("text", "plain"));
    }
}
