//! The bridge's MIME layer (`imap_bridge::mime`): ENVELOPE, BODYSTRUCTURE,
//! `BODY[section]` extraction and the SEARCH text matchers, fed arbitrary
//! message bytes (a peer chooses every byte of the mail a user receives).
//!
//! The module promises never to panic and to cut sections byte-exactly;
//! these targets check both, and check that what it builds for the client
//! can be encoded by imap-codec and read back by a client-side decoder.

use arbitrary::{Arbitrary, Unstructured};
use imap_bridge::mime::{self, SectionKind};
use imap_codec::ResponseCodec;
use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::body::{BodyStructure, SpecificFields};
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Data, Response};
use std::num::NonZeroU32;

/// Encodes `item` as `* 1 FETCH (item)` and checks that a client's decoder
/// accepts it: a response a client cannot parse breaks its sync.
/// Returns the encoded response.
fn assert_client_can_read(item: MessageDataItem<'static>, what: &str) -> Vec<u8> {
    let data = Data::Fetch {
        seq: NonZeroU32::MIN,
        items: Vec1::from(item),
    };
    let response = Response::Data(data);
    let encoded = ResponseCodec::default().encode(&response).dump();
    match ResponseCodec::default().decode(&encoded) {
        Ok((rest, _)) => assert!(rest.is_empty(), "{what}: trailing bytes after the response"),
        Err(error) => panic!(
            "{what}: imap-codec cannot decode the response it encoded ({error:?}): {}",
            String::from_utf8_lossy(&encoded)
        ),
    }
    encoded
}

/// Target `mime_envelope`.
/// The ENVELOPE FETCH writes in place (`mime::write_envelope`) must be
/// the bytes imap-codec encodes for the built one.
pub fn mime_envelope(data: &[u8]) {
    let envelope = mime::envelope(data);
    let encoded = assert_client_can_read(MessageDataItem::Envelope(envelope), "ENVELOPE");
    let mut written = b"* 1 FETCH (ENVELOPE ".to_vec();
    mime::write_envelope(data, &mut written);
    written.extend_from_slice(b")\r\n");
    assert_eq!(
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&encoded),
        "ENVELOPE written in place differs from imap-codec's"
    );
}

/// The deepest body structure imap-codec's client-side decoder reads: it
/// stops at 8 levels of recursion (`body(8)` in its fetch parser), which
/// in practice allows 6 nested containers (a seventh encapsulated message
/// is refused). The bridge nests up to 32 (`MAX_DEPTH` in
/// `mime::tree`), as RFC 3501 sets no limit; deeper structures are only
/// checked for not panicking.
const CLIENT_DECODER_DEPTH: usize = 6;

/// How many containers (multiparts, encapsulated messages) are nested.
fn depth(structure: &BodyStructure<'_>) -> usize {
    match structure {
        BodyStructure::Single { body, .. } => match &body.specific {
            SpecificFields::Message { body_structure, .. } => 1 + depth(body_structure),
            _ => 0,
        },
        BodyStructure::Multi { bodies, .. } => {
            1 + bodies.as_ref().iter().map(depth).max().unwrap_or(0)
        }
    }
}

/// Target `mime_body_structure`: both BODY and BODYSTRUCTURE.
pub fn mime_body_structure(data: &[u8]) {
    let body = mime::body_structure(data, false);
    if depth(&body) <= CLIENT_DECODER_DEPTH {
        assert_client_can_read(MessageDataItem::Body(body), "BODY");
    }
    let structure = mime::body_structure(data, true);
    if depth(&structure) <= CLIENT_DECODER_DEPTH {
        assert_client_can_read(MessageDataItem::BodyStructure(structure), "BODYSTRUCTURE");
    } else {
        let _ = ResponseCodec::default().encode(&Response::Data(Data::Fetch {
            seq: NonZeroU32::MIN,
            items: Vec1::from(MessageDataItem::BodyStructure(structure)),
        }));
    }
}

/// The text specifier of a fuzzed `BODY[...]`.
#[derive(Debug, Arbitrary)]
enum Specifier {
    Full,
    Header,
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    Mime,
}

impl Specifier {
    fn kind(self) -> SectionKind {
        match self {
            Specifier::Full => SectionKind::Full,
            Specifier::Header => SectionKind::Header,
            Specifier::HeaderFields(names) => SectionKind::HeaderFields(names),
            Specifier::HeaderFieldsNot(names) => SectionKind::HeaderFieldsNot(names),
            Specifier::Text => SectionKind::Text,
            Specifier::Mime => SectionKind::Mime,
        }
    }
}

/// Target `mime_section`: the input is a part path (up to 8 numbers, each
/// 0 to 7, so that real parts are hit), a specifier, then the message.
pub fn mime_section(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(depth) = input.int_in_range(0..=8u8) else {
        return;
    };
    let mut part = Vec::with_capacity(usize::from(depth));
    for _ in 0..depth {
        let Ok(n) = input.int_in_range(0..=7u32) else {
            return;
        };
        part.push(n);
    }
    let Ok(specifier) = Specifier::arbitrary(&mut input) else {
        return;
    };
    let message = input.take_rest();
    let kind = specifier.kind();
    let result = mime::section(message, &part, &kind);

    // The whole message is HEADER followed by TEXT, byte for byte
    // (RFC 3501 §6.4.5: both are exact pieces of RFC822).
    let header = mime::section(message, &[], &SectionKind::Header);
    let text = mime::section(message, &[], &SectionKind::Text);
    match (header, text) {
        (Some(mut header), Some(text)) => {
            header.extend_from_slice(&text);
            assert!(header == message, "HEADER + TEXT is not the message");
        }
        other => panic!("HEADER or TEXT of the whole message missing: {other:?}"),
    }
    assert_eq!(
        mime::section(message, &[], &SectionKind::Full).as_deref(),
        Some(message),
        "BODY[] is not the message"
    );
    assert_eq!(mime::section(message, &[], &SectionKind::Mime), None);

    // Every section without a field list is a slice of the message.
    if matches!(
        kind,
        SectionKind::Full | SectionKind::Header | SectionKind::Text | SectionKind::Mime
    ) && let Some(bytes) = &result
    {
        assert!(
            bytes.len() <= message.len(),
            "a section longer than the message"
        );
    }
    if part.is_empty() {
        return;
    }
    // A part's MIME header and its body are adjacent slices of the message.
    if let (Some(mime_header), Some(body)) = (
        mime::section(message, &part, &SectionKind::Mime),
        mime::section(message, &part, &SectionKind::Full),
    ) {
        assert!(
            mime_header.len() + body.len() <= message.len(),
            "MIME header and body of part {part:?} overlap"
        );
    } else {
        // A part exists for all specifiers or for none of MIME/Full.
        assert_eq!(
            mime::section(message, &part, &SectionKind::Mime).is_some(),
            mime::section(message, &part, &SectionKind::Full).is_some(),
            "part {part:?} exists for MIME but not for the body, or the reverse"
        );
    }
    // An encapsulated message's HEADER + TEXT is that part's body.
    if let Some(mut header) = mime::section(message, &part, &SectionKind::Header) {
        let text = mime::section(message, &part, &SectionKind::Text);
        let body = mime::section(message, &part, &SectionKind::Full);
        match (text, body) {
            (Some(text), Some(body)) => {
                header.extend_from_slice(&text);
                assert!(
                    header == body,
                    "HEADER + TEXT of part {part:?} is not its body"
                );
            }
            other => panic!("part {part:?} has a HEADER but not TEXT or body: {other:?}"),
        }
    }
}

/// The SEARCH keys that read message content.
#[derive(Debug, Arbitrary)]
struct SearchInput {
    field: String,
    needle: String,
}

/// Target `mime_search`: the input is a header field name and a needle,
/// then the message.
pub fn mime_search(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(SearchInput { field, needle }) = SearchInput::arbitrary(&mut input) else {
        return;
    };
    let message = input.take_rest();
    let in_header = mime::header_contains(message, &field, &needle);
    let in_body = mime::body_contains(message, &needle);
    let in_text = mime::text_contains(message, &needle);
    let _ = mime::sent_date(message);
    // SEARCH TEXT is HEADER-or-BODY (RFC 3501 §6.4.4).
    if in_body {
        assert!(in_text, "BODY matched but TEXT did not");
    }
    // An empty needle matches every body (RFC 3501 §6.4.4: substring).
    if needle.is_empty() {
        assert!(in_body, "an empty BODY needle did not match");
    }
    let _ = in_header;
}

/// Target `mime_sort_fields`: the fields SORT and THREAD keep of a message
/// (`imap_bridge::mime::SortFields`): made from arbitrary header bytes,
/// their byte form reads back to the same fields, and reading arbitrary
/// bytes as that form never panics.
pub fn mime_sort_fields(data: &[u8]) {
    let fields = mime::SortFields::from_message(data);
    assert_eq!(
        mime::SortFields::decode(&fields.encode()).as_ref(),
        Some(&fields),
        "sort fields do not survive encode -> decode"
    );
    let _ = mime::SortFields::decode(data);
    // Kept in a mailbox's map (one arena, shared correspondents), beside
    // fields that share its people and fields that share nothing.
    let mut map = imap_bridge::backend::SortFieldMap::default();
    map.insert(2, fields.clone());
    map.insert(1, mime::SortFields::default());
    map.insert(3, mime::SortFields::from_message(b"Subject: x\r\n\r\n"));
    map.insert_ref(4, fields.view());
    for uid in [2, 4] {
        assert_eq!(
            map.get(uid).map(|f| f.to_owned()).as_ref(),
            Some(&fields),
            "sort fields change in the map"
        );
    }
}
