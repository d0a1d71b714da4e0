//! The message-content side of SEARCH (RFC 3501 §6.4.4): substring matches
//! on decoded headers and text, and the sent date (parsed in [`super::date`]).
//!
//! Matching is case-insensitive on Unicode lower case, after RFC 2047
//! decoding of header values and after undoing transfer encodings and
//! charsets of text parts, as users search for what they see, not for what
//! is on the wire.

use std::collections::BTreeMap;

use mailparse::ParsedContentType;
use mailparse::body::Body;

use super::header;
use super::transfer::{self, Encoding};
use super::tree::{self, Entity, Kind};

/// See [`super::header_contains`].
pub(crate) fn header_contains(message: &[u8], field: &str, needle: &str) -> bool {
    let needle = needle.to_lowercase();
    header::fields(message)
        .filter(|f| f.is(field))
        .any(|f| decode_value(f.value).to_lowercase().contains(&needle))
}

/// See [`super::body_contains`].
pub(crate) fn body_contains(message: &[u8], needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let needle = needle.to_lowercase();
    let root = tree::parse(message);
    let mut found = false;
    visit_texts(message, &root, false, &mut |text| {
        found = found || text.to_lowercase().contains(&needle);
        found
    });
    found
}

/// See [`super::text_contains`].
pub(crate) fn text_contains(message: &[u8], needle: &str) -> bool {
    let lower = needle.to_lowercase();
    header_text(message).to_lowercase().contains(&lower) || body_contains(message, needle)
}

/// See [`super::sent_date`].
pub(crate) fn sent_date(message: &[u8]) -> Option<i64> {
    let value = header::unfold(header::first(message, "Date")?);
    super::date::parse(&String::from_utf8_lossy(&value))
}

/// A header value with RFC 2047 encoded words decoded and folding removed.
pub(super) fn decode_value(raw: &[u8]) -> String {
    let unfolded = header::unfold(raw);
    if !unfolded.windows(2).any(|w| w == b"=?") {
        if let Ok(text) = String::from_utf8(unfolded) {
            return text;
        }
        return String::from_utf8_lossy(raw).into_owned();
    }
    let mut line = Vec::with_capacity(unfolded.len() + 3);
    line.extend_from_slice(b"X: ");
    line.extend_from_slice(&unfolded);
    match mailparse::parse_header(&line) {
        Ok((parsed, _)) => parsed.get_value(),
        Err(_) => String::from_utf8_lossy(&unfolded).into_owned(),
    }
}

/// The whole header block as decoded `Name: value` lines.
fn header_text(bytes: &[u8]) -> String {
    let mut out = String::new();
    for field in header::fields(bytes) {
        out.push_str(&String::from_utf8_lossy(field.name));
        out.push_str(": ");
        out.push_str(&decode_value(field.value));
        out.push('\n');
    }
    out
}

/// Calls `f` with the decoded text of every text part (and the headers of
/// encapsulated messages, which are text of the outer body) until it
/// returns `true`. `with_header` says whether `entity`'s own header counts.
fn visit_texts(
    message: &[u8],
    entity: &Entity,
    with_header: bool,
    f: &mut dyn FnMut(&str) -> bool,
) -> bool {
    if with_header && f(&header_text(entity.header_bytes(message))) {
        return true;
    }
    match &entity.kind {
        Kind::Multipart(children) => children
            .iter()
            .any(|child| visit_texts(message, child, false, f)),
        Kind::Message(inner) => visit_texts(message, inner, true, f),
        Kind::Single if entity.content_type.r#type == "text" => f(&decoded_text(message, entity)),
        Kind::Single => false,
    }
}

/// The text of a leaf part: transfer encoding undone (RFC 2045 §6), then
/// converted from its charset. Undecodable data falls back to the raw
/// bytes read as UTF-8.
fn decoded_text(message: &[u8], entity: &Entity) -> String {
    let raw = entity.body_bytes(message);
    let encoding = transfer::declared(entity.header_bytes(message));
    let charset = entity
        .content_type
        .param("charset")
        .map(|c| String::from_utf8_lossy(c).trim().to_ascii_lowercase())
        .unwrap_or_default();
    let ctype = ParsedContentType {
        mimetype: format!(
            "{}/{}",
            entity.content_type.r#type, entity.content_type.subtype
        ),
        charset: charset.clone(),
        params: BTreeMap::new(),
    };
    let decoded = match encoding {
        Encoding::Identity => None,
        _ => transfer::decode(raw, &encoding),
    };
    let bytes = decoded.as_deref().unwrap_or(raw);
    // Undeclared or ASCII-declared text is very often UTF-8 in practice;
    // mailparse would read it as windows-1252.
    if matches!(
        charset.as_str(),
        "" | "us-ascii" | "ascii" | "utf-8" | "utf8"
    ) && let Ok(text) = std::str::from_utf8(bytes)
    {
        return text.to_owned();
    }
    let eight_bit = Some("8bit".to_owned());
    match Body::new(bytes, &ctype, &eight_bit) {
        Body::EightBit(text) => text
            .get_as_string()
            .unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned()),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
