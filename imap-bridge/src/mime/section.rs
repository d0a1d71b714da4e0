//! `BODY[section]` extraction (RFC 3501 §6.4.5, RFC 9051 §6.4.5): byte-exact
//! slices of the stored message, addressed by part numbers.
//!
//! Part numbering: the parts of a multipart are numbered from 1; a
//! non-multipart message (or encapsulated message) has exactly one part, its
//! body, numbered 1; the parts of an encapsulated `message/rfc822` are
//! numbered as those of the message it holds. `HEADER`, `HEADER.FIELDS`,
//! `HEADER.FIELDS.NOT` and `TEXT` apply to the whole message or to a
//! `message/rfc822` part; `MIME` applies to a numbered part only.

use super::header;
use super::transfer::{self, Encoding};
use super::tree::{self, Entity, Kind};
use super::{Binary, SectionKind};

/// See [`super::section`].
pub(crate) fn section(message: &[u8], part: &[u32], kind: &SectionKind) -> Option<Vec<u8>> {
    if part.is_empty() {
        return match kind {
            SectionKind::Full => Some(message.to_vec()),
            SectionKind::Mime => None,
            _ => message_text(message, kind),
        };
    }
    let root = tree::parse(message);
    let target = resolve(&root, part)?;
    match kind {
        SectionKind::Full => Some(target.body_bytes(message).to_vec()),
        SectionKind::Mime => Some(target.header_bytes(message).to_vec()),
        _ => match &target.kind {
            Kind::Message(inner) => {
                let bytes = message.get(inner.header.start..inner.body.end)?;
                message_text(bytes, kind)
            }
            _ => None,
        },
    }
}

/// See [`super::binary`].
pub(crate) fn binary(message: &[u8], part: &[u32]) -> Binary {
    if part.is_empty() {
        return Binary::Data(message.to_vec());
    }
    let root = tree::parse(message);
    let Some(target) = resolve(&root, part) else {
        return Binary::NoPart;
    };
    let body = target.body_bytes(message);
    if !matches!(target.kind, Kind::Single) {
        return Binary::Data(body.to_vec());
    }
    match transfer::declared(target.header_bytes(message)) {
        Encoding::Unknown(name) => Binary::UnknownEncoding(name),
        encoding => transfer::decode(body, &encoding).map_or(Binary::Broken, Binary::Data),
    }
}

/// `HEADER`, `HEADER.FIELDS[.NOT]` or `TEXT` of the message in `bytes`.
fn message_text(bytes: &[u8], kind: &SectionKind) -> Option<Vec<u8>> {
    let split = header::header_len(bytes);
    let (block, text) = bytes.split_at(split);
    match kind {
        SectionKind::Header => Some(block.to_vec()),
        SectionKind::Text => Some(text.to_vec()),
        SectionKind::HeaderFields(names) => Some(header_fields(block, names, true)),
        SectionKind::HeaderFieldsNot(names) => Some(header_fields(block, names, false)),
        SectionKind::Full | SectionKind::Mime => None,
    }
}

/// The entity `path` designates, if it exists.
fn resolve<'a>(root: &'a Entity, path: &[u32]) -> Option<&'a Entity> {
    let (&first, rest) = path.split_first()?;
    let mut current = part_of_message(root, first)?;
    for &n in rest {
        current = match &current.kind {
            Kind::Multipart(children) => nth(children, n)?,
            Kind::Message(inner) => part_of_message(inner, n)?,
            Kind::Single => return None,
        };
    }
    Some(current)
}

/// Part `n` of a message: the n-th part of its multipart body, or, for a
/// non-multipart message, the message itself as part 1.
fn part_of_message(message: &Entity, n: u32) -> Option<&Entity> {
    match &message.kind {
        Kind::Multipart(children) => nth(children, n),
        _ => (n == 1).then_some(message),
    }
}

fn nth(children: &[Entity], n: u32) -> Option<&Entity> {
    let index = usize::try_from(n.checked_sub(1)?).ok()?;
    children.get(index)
}

/// The fields of `block` whose names are (`keep == true`) or are not in
/// `names`, as their original bytes and in message order, followed by the
/// blank line that always ends a header section.
fn header_fields(block: &[u8], names: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for field in header::fields(block) {
        if names.iter().any(|name| field.is(name)) != keep {
            continue;
        }
        let raw = block.get(field.raw.clone()).unwrap_or_default();
        out.extend_from_slice(raw);
        if !raw.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
#[path = "section_tests.rs"]
mod tests;
