//! BODY and BODYSTRUCTURE (RFC 3501 §7.4.2, RFC 9051 §7.5.2) from the MIME
//! tree.
//!
//! Media types, subtypes and transfer encodings are upper-cased as in the
//! RFC's examples; parameter attributes are upper-cased, values are raw.
//! Sizes are octets of each part's body exactly as stored, so that they
//! agree with the sections [`super::section`] returns.

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_codec::imap_types::core::{IString, Vec1};

use super::content::{self, Disposition as ParsedDisposition};
use super::envelope::envelope;
use super::header;
use super::strings::{istring, nstring_opt};
use super::tree::{self, Entity, Kind};

/// The BODYSTRUCTURE (`extensible`) or BODY of a whole message.
pub(crate) fn body_structure(message: &[u8], extensible: bool) -> BodyStructure<'static> {
    let root = tree::parse(message);
    build(message, &root, extensible)
}

/// The MIME header fields a BODYSTRUCTURE reports, first occurrence each.
#[derive(Default)]
struct MimeFields<'a> {
    id: Option<&'a [u8]>,
    description: Option<&'a [u8]>,
    encoding: Option<&'a [u8]>,
    md5: Option<&'a [u8]>,
    disposition: Option<&'a [u8]>,
    language: Option<&'a [u8]>,
    location: Option<&'a [u8]>,
}

impl<'a> MimeFields<'a> {
    fn of(header_block: &'a [u8]) -> Self {
        let mut out = MimeFields::default();
        for field in header::fields(header_block) {
            let slot = if field.is("Content-ID") {
                &mut out.id
            } else if field.is("Content-Description") {
                &mut out.description
            } else if field.is("Content-Transfer-Encoding") {
                &mut out.encoding
            } else if field.is("Content-MD5") {
                &mut out.md5
            } else if field.is("Content-Disposition") {
                &mut out.disposition
            } else if field.is("Content-Language") {
                &mut out.language
            } else if field.is("Content-Location") {
                &mut out.location
            } else {
                continue;
            };
            if slot.is_none() {
                *slot = Some(field.value);
            }
        }
        out
    }

    /// `body-fld-dsp SP body-fld-lang SP body-fld-loc`, the tail shared by
    /// single- and multipart extension data. Always given in full, so every
    /// part carries the same number of extension fields.
    fn disposition_tail(&self) -> Disposition<'static> {
        let disposition = self
            .disposition
            .and_then(ParsedDisposition::parse)
            .map(|d| (istring(d.kind), params(&d.params)));
        let language = self
            .language
            .map(content::languages)
            .unwrap_or_default()
            .into_iter()
            .map(istring)
            .collect();
        Disposition {
            disposition,
            tail: Some(Language {
                language,
                tail: Some(Location {
                    location: nstring_opt(self.location.map(header::unfold)),
                    extensions: Vec::new(),
                }),
            }),
        }
    }
}

fn build(message: &[u8], entity: &Entity, extensible: bool) -> BodyStructure<'static> {
    let Kind::Multipart(children) = &entity.kind else {
        return single(message, entity, extensible);
    };
    let bodies: Vec<BodyStructure<'static>> = children
        .iter()
        .map(|child| build(message, child, extensible))
        .collect();
    let Ok(bodies) = Vec1::try_from(bodies) else {
        // The tree never builds an empty multipart; if it did, show the
        // entity as an opaque leaf rather than failing.
        return single(message, entity, extensible);
    };
    let extension_data = extensible.then(|| MultiPartExtensionData {
        parameter_list: params(&entity.content_type.params),
        tail: Some(MimeFields::of(entity.header_bytes(message)).disposition_tail()),
    });
    BodyStructure::Multi {
        bodies,
        subtype: upper(&entity.content_type.subtype),
        extension_data,
    }
}

fn single(message: &[u8], entity: &Entity, extensible: bool) -> BodyStructure<'static> {
    let fields = MimeFields::of(entity.header_bytes(message));
    let body = entity.body_bytes(message);
    let ct = &entity.content_type;
    let basic = BasicFields {
        parameter_list: params(&ct.params),
        id: nstring_opt(fields.id.map(header::unfold)),
        description: nstring_opt(fields.description.map(header::unfold)),
        content_transfer_encoding: encoding(fields.encoding),
        size: u32::try_from(body.len()).unwrap_or(u32::MAX),
    };
    let specific = match &entity.kind {
        Kind::Message(inner) => SpecificFields::Message {
            envelope: Box::new(envelope(inner.header_bytes(message))),
            body_structure: Box::new(build(message, inner, extensible)),
            number_of_lines: lines(body),
        },
        _ if ct.r#type == "text" => SpecificFields::Text {
            subtype: upper(&ct.subtype),
            number_of_lines: lines(body),
        },
        _ => SpecificFields::Basic {
            r#type: upper(&ct.r#type),
            subtype: upper(&ct.subtype),
        },
    };
    let extension_data = extensible.then(|| SinglePartExtensionData {
        md5: nstring_opt(fields.md5.map(header::unfold)),
        tail: Some(fields.disposition_tail()),
    });
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data,
    }
}

fn upper(s: &str) -> IString<'static> {
    istring(s.to_ascii_uppercase())
}

/// `body-fld-param`: attributes upper-cased, values raw.
fn params(params: &[(String, Vec<u8>)]) -> Vec<(IString<'static>, IString<'static>)> {
    params
        .iter()
        .map(|(attr, value)| (upper(attr), istring(value.clone())))
        .collect()
}

/// `body-fld-enc`: the first word of Content-Transfer-Encoding, upper-cased;
/// `7BIT` when absent (RFC 2045 §6.1).
fn encoding(value: Option<&[u8]>) -> IString<'static> {
    let word: Vec<u8> = value
        .map(header::trim_wsp)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'(' | b';'))
        .map(u8::to_ascii_uppercase)
        .collect();
    if word.is_empty() {
        istring("7BIT")
    } else {
        istring(word)
    }
}

/// `body-fld-lines`: the number of lines, counting a last line without a
/// line ending.
pub(crate) fn lines(body: &[u8]) -> u32 {
    let newlines = body.iter().filter(|&&b| b == b'\n').count();
    let partial = usize::from(body.last().is_some_and(|&b| b != b'\n'));
    u32::try_from(newlines + partial).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[path = "structure_tests.rs"]
mod tests;
