//! The FETCH lines written in place against imap-codec's encoding of the
//! same items as imap-types values (what the bridge sent before): byte for
//! byte equal, over headers that exercise quoting, literals, NUL, folding,
//! groups and the Sender/Reply-To defaults, and over flags, `\Recent`,
//! CONDSTORE and zero UIDs and MODSEQs.

use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::{
    AString, IString, Literal, LiteralMode, NString, NString8, Vec1,
};
use imap_codec::imap_types::extensions::binary::Literal8;
use imap_codec::imap_types::fetch::{MessageDataItem, MessageDataItemName, Part, Section};
use imap_codec::imap_types::flag::{Flag, FlagFetch};
use imap_codec::imap_types::response::{Data, Response};

use super::{Line, internal_date, render, section_request};
use crate::backend::MessageMeta;
use crate::mime::{self, SectionKind};

/// FLAGS as the bridge built it before: imap-types flags (anything
/// unparseable left out), `\Recent` last.
fn fetch_flags(flags: &[String], recent: bool) -> Vec<FlagFetch<'static>> {
    let mut out: Vec<FlagFetch<'static>> = flags
        .iter()
        .filter_map(|flag| Flag::try_from(flag.as_str()).ok())
        .map(|flag| FlagFetch::Flag(flag.into_static()))
        .collect();
    if recent {
        out.push(FlagFetch::Recent);
    }
    out
}

/// A literal as the bridge built it before (NUL sent as 0x80).
fn literal(mut bytes: Vec<u8>) -> NString<'static> {
    for byte in bytes.iter_mut().filter(|b| **b == 0) {
        *byte = 0x80;
    }
    NString(Some(IString::Literal(Literal::unvalidated(bytes))))
}

/// BINARY's value as the bridge built it before.
fn literal8(bytes: Vec<u8>) -> NString8<'static> {
    if bytes.contains(&0) {
        NString8::Literal8(Literal8 {
            data: bytes.into(),
            mode: LiteralMode::Sync,
        })
    } else {
        NString8::NString(literal(bytes))
    }
}

/// The line as imap-codec writes it from imap-types values.
fn reference(line: &Line<'_>, items: &[MessageDataItemName<'_>]) -> Vec<u8> {
    let meta = line.meta;
    let mut out = Vec::new();
    let mut has_flags = false;
    let mut has_modseq = false;
    for item in items {
        out.push(match item {
            MessageDataItemName::Flags => {
                has_flags = true;
                MessageDataItem::Flags(fetch_flags(&meta.flags, line.recent))
            }
            MessageDataItemName::Uid => match NonZeroU32::new(meta.uid) {
                Some(uid) => MessageDataItem::Uid(uid),
                None => continue,
            },
            MessageDataItemName::Rfc822Size => MessageDataItem::Rfc822Size(meta.size),
            MessageDataItemName::InternalDate => MessageDataItem::InternalDate(internal_date(meta)),
            MessageDataItemName::ModSeq => match NonZeroU64::new(meta.modseq) {
                Some(modseq) => {
                    has_modseq = true;
                    MessageDataItem::ModSeq(modseq)
                }
                None => continue,
            },
            MessageDataItemName::Envelope => {
                MessageDataItem::Envelope(mime::envelope(line.message))
            }
            MessageDataItemName::BodyStructure => {
                MessageDataItem::BodyStructure(mime::body_structure(line.message, true))
            }
            MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(literal(line.message.to_vec())),
            MessageDataItemName::Rfc822Header => MessageDataItem::Rfc822Header(literal(
                mime::section(line.message, &[], &SectionKind::Header).unwrap_or_default(),
            )),
            MessageDataItemName::Rfc822Text => MessageDataItem::Rfc822Text(literal(
                mime::section(line.message, &[], &SectionKind::Text).unwrap_or_default(),
            )),
            MessageDataItemName::BodyExt {
                section, partial, ..
            } => {
                let (part, kind) = section_request(section.as_ref());
                let data = mime::section(line.message, &part, &kind).map(|bytes| {
                    let range = super::partial(&bytes, *partial).to_vec();
                    literal(range)
                });
                MessageDataItem::BodyExt {
                    section: section.clone().map(IntoStatic::into_static),
                    origin: partial.map(|(offset, _)| offset),
                    data: data.unwrap_or(NString(None)),
                }
            }
            MessageDataItemName::Binary {
                section,
                partial: None,
                ..
            } => {
                let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
                let value = match mime::binary(line.message, &path) {
                    mime::Binary::Data(bytes) => literal8(bytes),
                    _ => NString8::NString(NString(None)),
                };
                MessageDataItem::Binary {
                    section: section.clone(),
                    value,
                }
            }
            MessageDataItemName::BinarySize { section } => {
                let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
                let size = match mime::binary(line.message, &path) {
                    mime::Binary::Data(bytes) => u32::try_from(bytes.len()).expect("small"),
                    _ => 0,
                };
                MessageDataItem::BinarySize {
                    section: section.clone(),
                    size,
                }
            }
            other => panic!("no reference for {other:?}"),
        });
    }
    if line.add_flags && !has_flags {
        out.push(MessageDataItem::Flags(fetch_flags(
            &meta.flags,
            line.recent,
        )));
        has_flags = true;
    }
    if line.condstore
        && has_flags
        && !has_modseq
        && let Some(modseq) = NonZeroU64::new(meta.modseq)
    {
        out.push(MessageDataItem::ModSeq(modseq));
    }
    let (Some(seq), Ok(items)) = (NonZeroU32::new(line.seq), Vec1::try_from(out)) else {
        return Vec::new();
    };
    ResponseCodec::default()
        .encode(&Response::Data(Data::Fetch { seq, items }))
        .dump()
}

fn written(line: &Line<'_>, items: &[MessageDataItemName<'_>]) -> Vec<u8> {
    let mut out = b"before".to_vec();
    render(line, items, &mut out).expect("no BINARY asked");
    assert!(out.starts_with(b"before"), "what was there stays");
    out.split_off(6)
}

const HEADERS: &[&[u8]] = &[
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\nFrom: Terry Gray <gray@cac.washington.edu>\r\nSubject: IMAP4rev1 WG mtg\r\nTo: imap@cac.washington.edu\r\ncc: minutes@CNRI.Reston.VA.US,\r\n John Klensin <KLENSIN@MIT.EDU>\r\nMessage-Id: <B27397-0100000@cac.washington.edu>\r\n\r\nbody\r\n",
    b"From: \"a \\\"quoted\\\" \\\\ name\" <a@b>\r\nSubject: back\\slash \"and\" quote\r\n\r\n",
    b"Subject: caf\xc3\xa9 \x00\xff\r\nFrom: J\xc3\xb6rg <j@example.org>\r\n\r\n",
    b"Subject: nul\x00inside\r\nIn-Reply-To: <x@y>\r\n\r\n",
    b"Subject: =?UTF-8?B?SGFsbG8=?=\r\n =?UTF-8?Q?_W=C3=B6rld?=\r\n\tand a tab\r\n\r\n",
    b"To: team: a@x, \"B\" <b@y>;, undisclosed-recipients:;\r\nBcc: <@route,@other:z@w>\r\n\r\n",
    b"From: a@x\r\nSender: s@x\r\nReply-To:\r\n\r\n",
    b"From: a@x\r\nSender:   \r\nReply-To: r@x, q@x\r\n\r\n",
    b"Subject:\r\nDate:\r\nMessage-ID:   \r\n\r\n",
    b"just a body, no header\r\n",
    b"",
    b"From: <>\r\nTo: @\r\nCc: \"\" <@>\r\n\r\n",
    b"Subject: a\rb\nc\r\n\r\n",
    b"Subject: \x7f\x01\x1b control\r\n\r\n",
    b"From: m@x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nAGFiYw==\r\n--b\r\nContent-Type: text/plain\r\n\r\nsecond \x00 part\r\n--b--\r\n",
];

fn meta(uid: u32, modseq: u64, flags: &[&str]) -> MessageMeta {
    MessageMeta {
        uid,
        modseq,
        flags: flags.iter().map(|f| f.to_string()).collect(),
        size: 1234,
        internal_date: 838_544_605,
        internal_date_offset_minutes: -420,
    }
}

#[test]
fn lines_match_imap_codec_byte_for_byte() {
    let metas = [
        meta(7, 3, &["\\Seen", "$Label1"]),
        meta(1, 1, &[]),
        meta(0, 0, &["\\seen", "\\Custom", "bad flag(", "\\Flagged"]),
        MessageMeta {
            internal_date: 0,
            internal_date_offset_minutes: 330,
            ..meta(
                4_294_967_295,
                u64::MAX >> 1,
                &["\\Answered", "\\Draft", "\\Deleted"],
            )
        },
    ];
    let item_lists: Vec<Vec<MessageDataItemName<'static>>> = vec![
        vec![
            MessageDataItemName::Uid,
            MessageDataItemName::Flags,
            MessageDataItemName::Envelope,
            MessageDataItemName::Rfc822Size,
        ],
        vec![
            MessageDataItemName::Envelope,
            MessageDataItemName::InternalDate,
            MessageDataItemName::ModSeq,
            MessageDataItemName::BodyStructure,
        ],
        vec![MessageDataItemName::Uid],
        vec![MessageDataItemName::ModSeq],
        vec![
            MessageDataItemName::Rfc822,
            MessageDataItemName::Rfc822Header,
            MessageDataItemName::Rfc822Text,
            MessageDataItemName::BodyExt {
                section: None,
                partial: None,
                peek: true,
            },
            MessageDataItemName::BodyExt {
                section: Some(Section::Text(None)),
                partial: Some((2, NonZeroU32::new(5).expect("nonzero"))),
                peek: false,
            },
            MessageDataItemName::BodyExt {
                section: Some(Section::HeaderFields(
                    None,
                    Vec1::from(AString::try_from("Subject").expect("atom")),
                )),
                partial: None,
                peek: true,
            },
            MessageDataItemName::BodyExt {
                section: Some(Section::Part(Part(Vec1::from(
                    NonZeroU32::new(2).expect("2"),
                )))),
                partial: None,
                peek: true,
            },
            MessageDataItemName::Binary {
                section: vec![NonZeroU32::MIN],
                partial: None,
                peek: true,
            },
            MessageDataItemName::BinarySize {
                section: vec![NonZeroU32::MIN],
            },
        ],
    ];
    let mut compared = 0;
    for message in HEADERS {
        for meta in &metas {
            for items in &item_lists {
                for (recent, add_flags, condstore) in [
                    (false, false, false),
                    (true, false, true),
                    (false, true, true),
                    (true, true, false),
                ] {
                    let line = Line {
                        seq: 42,
                        meta,
                        message,
                        recent,
                        add_flags,
                        condstore,
                    };
                    let expected = reference(&line, items);
                    assert_eq!(
                        String::from_utf8_lossy(&written(&line, items)),
                        String::from_utf8_lossy(&expected),
                        "{items:?} of {:?}",
                        String::from_utf8_lossy(message)
                    );
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, HEADERS.len() * 4 * 5 * 4);
}

#[test]
fn a_partial_binary_answer_names_its_origin() {
    // RFC 3516 §8 `"BINARY" section-binary ["<" number ">"]`; imap-codec
    // leaves the origin out, so this one item is not compared with it.
    let meta = meta(3, 3, &[]);
    let message = b"Content-Transfer-Encoding: base64\r\n\r\nAGFiYw==\r\n";
    let line = Line {
        seq: 2,
        meta: &meta,
        message,
        recent: false,
        add_flags: false,
        condstore: false,
    };
    let items = [MessageDataItemName::Binary {
        section: vec![NonZeroU32::MIN],
        partial: Some((0, NonZeroU32::new(2).expect("nonzero"))),
        peek: true,
    }];
    assert_eq!(
        written(&line, &items),
        b"* 2 FETCH (BINARY[1]<0> ~{2}\r\n\0a)\r\n"
    );
}

#[test]
fn a_line_with_no_item_that_applies_is_not_written() {
    let meta = meta(0, 0, &[]);
    let line = Line {
        seq: 1,
        meta: &meta,
        message: b"",
        recent: false,
        add_flags: false,
        condstore: true,
    };
    assert!(
        written(
            &line,
            &[MessageDataItemName::Uid, MessageDataItemName::ModSeq]
        )
        .is_empty()
    );
}

#[test]
fn an_undecodable_binary_part_leaves_the_buffer_as_it_was() {
    let meta = meta(3, 3, &[]);
    let message = b"Content-Transfer-Encoding: x-unknown\r\n\r\nabc\r\n";
    let line = Line {
        seq: 1,
        meta: &meta,
        message,
        recent: false,
        add_flags: false,
        condstore: false,
    };
    let mut out = b"kept".to_vec();
    let items = [
        MessageDataItemName::Uid,
        MessageDataItemName::Binary {
            section: vec![NonZeroU32::MIN],
            partial: None,
            peek: true,
        },
    ];
    let refusal = render(&line, &items, &mut out).expect_err("unknown encoding");
    assert_eq!(refusal.code.as_deref(), Some("UNKNOWN-CTE"));
    assert_eq!(out, b"kept");
}

#[test]
fn codec_items_sit_between_written_ones() {
    let meta = meta(9, 2, &["\\Seen"]);
    let message = b"Subject: s\r\n\r\nhello\r\n";
    let line = Line {
        seq: 5,
        meta: &meta,
        message,
        recent: false,
        add_flags: false,
        condstore: false,
    };
    let items = [
        MessageDataItemName::Uid,
        MessageDataItemName::BodyExt {
            section: Some(Section::Text(None)),
            partial: None,
            peek: true,
        },
        MessageDataItemName::Flags,
    ];
    assert_eq!(
        written(&line, &items),
        b"* 5 FETCH (UID 9 BODY[TEXT] {7}\r\nhello\r\n FLAGS (\\Seen))\r\n"
    );
}
