//! Message rendering for IMAP: everything the IMAP session needs to know
//! about the *inside* of a stored RFC 5322 message.
//!
//! This module owns:
//! - the ENVELOPE (RFC 3501 §7.4.2) built from the top-level header,
//! - BODY and BODYSTRUCTURE (RFC 3501 §7.4.2, RFC 9051 §7.5.2),
//! - byte-exact section extraction for `BODY[...]` (RFC 3501 §6.4.5),
//! - the text matching that SEARCH needs (HEADER, BODY, TEXT, SENTON...),
//! - the fields SORT and THREAD compare ([`SortFields`], RFC 5256).
//!
//! It works on the raw message bytes only and keeps no state between calls.
//! It must not do I/O, must not know about mailboxes or flags, and must never
//! panic: every input comes from the network or from disk, so broken MIME,
//! missing headers, 8-bit garbage and absurd nesting all degrade to something
//! a client can display (usually a `text/plain` part).
//!
//! The parsing here is our own small, offset-keeping parser (`header`,
//! `tree`) because sections must be exact slices of the original bytes.
//! mailparse is used only where decoding is needed (RFC 2047 words,
//! transfer encodings, charsets).

mod address;
mod content;
mod date;
mod envelope;
mod header;
mod search;
mod section;
mod sort_fields;
mod strings;
mod structure;
mod subject;
mod transfer;
mod tree;

pub use sort_fields::{SortFieldParts, SortFields, SortFieldsRef};

use imap_codec::imap_types::body::BodyStructure;
use imap_codec::imap_types::envelope::Envelope;

/// Which piece of a message (or of one of its parts) `BODY[...]` asks for
/// (RFC 3501 §6.4.5 `section-msgtext` / `section-text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionKind {
    /// No text specifier: the whole message (`BODY[]`) or the whole body of a
    /// part (`BODY[1.2]`).
    Full,
    /// `HEADER`: the header block including the blank line that ends it.
    Header,
    /// `HEADER.FIELDS (...)`: only the named fields, then a blank line.
    HeaderFields(Vec<String>),
    /// `HEADER.FIELDS.NOT (...)`: every field except the named ones, then a
    /// blank line.
    HeaderFieldsNot(Vec<String>),
    /// `TEXT`: the body after the header block.
    Text,
    /// `MIME`: the MIME header block of a part (only valid with a part
    /// number).
    Mime,
}

/// The ENVELOPE of a message (RFC 3501 §7.4.2), from its top-level header.
///
/// Only the header block is parsed, so this is cheap even for large
/// messages. Values are the raw header values (unfolded, RFC 2047 words left
/// encoded, as the RFC requires); absent fields are NIL, and `sender` and
/// `reply-to` default to `from`.
pub fn envelope(message: &[u8]) -> Envelope<'static> {
    envelope::envelope(message)
}

/// Appends the ENVELOPE of a message to `out` in its wire form: the bytes
/// imap-codec would write for [`envelope`]`(message)`, made without
/// building it.
pub fn write_envelope(message: &[u8], out: &mut Vec<u8>) {
    envelope::write_envelope(message, out);
}

/// The BODYSTRUCTURE (`extensible == true`) or BODY (`extensible == false`)
/// of a message (RFC 3501 §7.4.2).
///
/// With `extensible`, every part carries its extension data (MD5,
/// disposition, language, location; for multiparts also the parameters).
pub fn body_structure(message: &[u8], extensible: bool) -> BodyStructure<'static> {
    structure::body_structure(message, extensible)
}

/// The bytes of a `BODY[...]` section (RFC 3501 §6.4.5).
///
/// `part` holds the nested part numbers as in `BODY[1.2.MIME]` (empty means
/// the whole message). Returns `None` if the part does not exist or the text
/// specifier does not apply to it (e.g. `MIME` without a part number, or
/// `HEADER` of a part that is not `message/rfc822`). Partial fetches
/// (`<offset.length>`) are left to the caller.
pub fn section(message: &[u8], part: &[u32], kind: &SectionKind) -> Option<Vec<u8>> {
    section::section(message, part, kind)
}

/// What `BINARY[part]` / `BINARY.SIZE[part]` (RFC 3516) hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binary {
    /// The content with its transfer encoding undone.
    Data(Vec<u8>),
    /// The part does not exist.
    NoPart,
    /// The part declares a transfer encoding this server cannot undo
    /// (`NO [UNKNOWN-CTE]`); its name.
    UnknownEncoding(String),
    /// The part's data is not valid for its declared encoding.
    Broken,
}

/// The decoded content of a part for `BINARY[...]` (RFC 3516 §4.2).
///
/// `part` as for [`section`]; empty means the whole message, as stored. A
/// multipart or an encapsulated message is returned as it is (RFC 2045
/// allows them no encoding but identity); a leaf has its
/// Content-Transfer-Encoding undone.
pub fn binary(message: &[u8], part: &[u32]) -> Binary {
    section::binary(message, part)
}

/// Whether any top-level `field` header of the message contains `needle`,
/// compared case-insensitively after RFC 2047 decoding (SEARCH HEADER,
/// FROM, TO, SUBJECT...). An empty needle matches every message that has
/// the field (RFC 3501 §6.4.4).
pub fn header_contains(message: &[u8], field: &str, needle: &str) -> bool {
    search::header_contains(message, field, needle)
}

/// Whether the decoded text of the message body contains `needle`,
/// case-insensitively (SEARCH BODY). Only text parts are searched, after
/// undoing quoted-printable/base64 and converting their charset.
pub fn body_contains(message: &[u8], needle: &str) -> bool {
    search::body_contains(message, needle)
}

/// Whether the header or the body contains `needle` (SEARCH TEXT).
pub fn text_contains(message: &[u8], needle: &str) -> bool {
    search::text_contains(message, needle)
}

/// The `Date:` header as seconds since the Unix epoch (SEARCH SENTBEFORE,
/// SENTON, SENTSINCE). `None` if the header is missing or unparseable.
pub fn sent_date(message: &[u8]) -> Option<i64> {
    search::sent_date(message)
}

#[cfg(test)]
#[path = "robustness_tests.rs"]
mod robustness_tests;
