//! FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8) with CONDSTORE's MODSEQ
//! and CHANGEDSINCE and QRESYNC's VANISHED modifier (RFC 7162 §3.1.4,
//! §3.2.6).
//!
//! Metadata items (FLAGS, UID, RFC822.SIZE, INTERNALDATE, MODSEQ) come from
//! the session's view; message bytes are asked from the store only when an
//! item needs them, and only the header when that is enough. Rendering of
//! ENVELOPE, BODYSTRUCTURE and sections is `crate::mime`'s job.

use std::collections::HashMap;
use std::io::Write;
use std::num::NonZeroU32;
use std::sync::Arc;

use chrono::{FixedOffset, TimeZone};
use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::core::{NString, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_codec::imap_types::flag::Flag as ImapFlag;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;

use super::response::{Completion, Sink, sequence_set};
use super::selected::{contains, intervals};
use super::session::Session;
use crate::backend::{Content, FlagOp, MailStore, MessageMeta, Uid};
use crate::mime::{self, SectionKind};

/// Messages whose content is fetched from the store per call.
const FULL_BATCH: usize = 16;
const HEADER_BATCH: usize = 200;
/// Output size at which a FETCH sends what it has so far: large enough
/// for few writes (a 10,000-message `FETCH 1:* ENVELOPE` leaves in about
/// fifty), small enough that the client parses the first messages while
/// the server renders the rest. At 1 MiB, Python's imaplib waited 45 ms
/// for its first byte and then parsed alone (docs/benchmarks.md, issue 10).
const FLUSH_AT: usize = 64 * 1024;

/// Decrypted messages by UID.
type Contents = HashMap<Uid, Arc<[u8]>>;

/// The content of a batch being read ahead.
type Prefetch = tokio::task::JoinHandle<Result<Contents, crate::backend::StoreError>>;

/// The content FETCH or SEARCH needs of these messages, by UID (nothing is
/// read from the store for [`Need::Nothing`]).
pub(super) async fn contents<S: MailStore>(
    store: &S,
    mailbox: &str,
    uids: &[Uid],
    need: Need,
) -> Result<Contents, crate::backend::StoreError> {
    let content = match need {
        Need::Nothing => return Ok(Contents::new()),
        Need::Header => Content::Header,
        Need::Full => Content::Full,
    };
    let found = store.fetch(mailbox, uids, content).await?;
    Ok(found.into_iter().collect())
}

/// How much of a message the requested items (FETCH) or criteria (SEARCH)
/// need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Need {
    Nothing,
    Header,
    Full,
}

/// Whether a section can be served from the top-level header alone.
fn section_need(section: Option<&Section<'_>>) -> Need {
    match section {
        Some(Section::Header(None))
        | Some(Section::HeaderFields(None, _))
        | Some(Section::HeaderFieldsNot(None, _)) => Need::Header,
        _ => Need::Full,
    }
}

fn item_need(item: &MessageDataItemName<'_>) -> Need {
    match item {
        MessageDataItemName::Flags
        | MessageDataItemName::InternalDate
        | MessageDataItemName::Rfc822Size
        | MessageDataItemName::Uid
        | MessageDataItemName::ModSeq => Need::Nothing,
        MessageDataItemName::Envelope | MessageDataItemName::Rfc822Header => Need::Header,
        MessageDataItemName::BodyExt { section, .. } => section_need(section.as_ref()),
        MessageDataItemName::Body
        | MessageDataItemName::BodyStructure
        | MessageDataItemName::Rfc822
        | MessageDataItemName::Rfc822Text
        | MessageDataItemName::Binary { .. }
        | MessageDataItemName::BinarySize { .. } => Need::Full,
    }
}

/// Whether fetching the item sets `\Seen` (RFC 3501 §6.4.5).
fn sets_seen(item: &MessageDataItemName<'_>) -> bool {
    matches!(
        item,
        MessageDataItemName::BodyExt { peek: false, .. }
            | MessageDataItemName::Binary { peek: false, .. }
            | MessageDataItemName::Rfc822
            | MessageDataItemName::Rfc822Text
    )
}

/// The part path and text specifier of a section for `crate::mime`.
pub fn section_request(section: Option<&Section<'_>>) -> (Vec<u32>, SectionKind) {
    let path = |part: Option<&imap_codec::imap_types::fetch::Part>| -> Vec<u32> {
        part.map(|p| p.0.as_ref().iter().map(|n| n.get()).collect())
            .unwrap_or_default()
    };
    let names = |fields: &Vec1<imap_codec::imap_types::core::AString<'_>>| -> Vec<String> {
        fields
            .as_ref()
            .iter()
            .map(|f| String::from_utf8_lossy(f.as_ref()).into_owned())
            .collect()
    };
    match section {
        None => (Vec::new(), SectionKind::Full),
        Some(Section::Part(part)) => (path(Some(part)), SectionKind::Full),
        Some(Section::Header(part)) => (path(part.as_ref()), SectionKind::Header),
        Some(Section::HeaderFields(part, fields)) => (
            path(part.as_ref()),
            SectionKind::HeaderFields(names(fields)),
        ),
        Some(Section::HeaderFieldsNot(part, fields)) => (
            path(part.as_ref()),
            SectionKind::HeaderFieldsNot(names(fields)),
        ),
        Some(Section::Text(part)) => (path(part.as_ref()), SectionKind::Text),
        Some(Section::Mime(part)) => (path(Some(part)), SectionKind::Mime),
    }
}

/// Appends `bytes` as an IMAP literal. A literal may not carry NUL
/// (RFC 3501 §4.3, CHAR8); like Dovecot, a NUL in stored data is sent as
/// 0x80. The check is one memchr pass.
fn write_literal(bytes: &[u8], out: &mut Vec<u8>) {
    let _ = write!(out, "{{{}}}\r\n", bytes.len());
    if bytes.contains(&0) {
        out.extend(bytes.iter().map(|&b| if b == 0 { 0x80 } else { b }));
    } else {
        out.extend_from_slice(bytes);
    }
}

/// Appends decoded bytes for BINARY: a literal8 (`~{n}`, RFC 3516 §4.2)
/// when they hold NUL, which a plain literal may not carry; otherwise a
/// plain literal, which every client reads.
fn write_literal8(bytes: &[u8], out: &mut Vec<u8>) {
    if bytes.contains(&0) {
        let _ = write!(out, "~{{{}}}\r\n", bytes.len());
        out.extend_from_slice(bytes);
    } else {
        write_literal(bytes, out);
    }
}

/// A part number as `1.2.3`.
fn write_part(section: &[NonZeroU32], out: &mut Vec<u8>) {
    for (i, n) in section.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        let _ = write!(out, "{n}");
    }
}

/// `<offset.length>` of a partial fetch (RFC 3501 §6.4.5).
fn partial(bytes: &[u8], range: Option<(u32, NonZeroU32)>) -> &[u8] {
    match range {
        None => bytes,
        Some((offset, length)) => {
            let start = (offset as usize).min(bytes.len());
            let end = start.saturating_add(length.get() as usize).min(bytes.len());
            &bytes[start..end]
        }
    }
}

/// INTERNALDATE with its zone.
pub fn internal_date(meta: &MessageMeta) -> DateTime {
    let zone = FixedOffset::east_opt(meta.internal_date_offset_minutes.saturating_mul(60))
        .or_else(|| FixedOffset::east_opt(0));
    let date = zone.and_then(|zone| zone.timestamp_opt(meta.internal_date, 0).single());
    date.and_then(|d| DateTime::try_from(d).ok())
        .unwrap_or_else(|| {
            let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH.fixed_offset();
            DateTime::unvalidated(epoch)
        })
}

impl<S: MailStore> Session<S> {
    /// Starts reading the content of the next batch while the current one
    /// is rendered: the store decrypts on a blocking thread, rendering runs
    /// on the session's, so on two cores both go at once.
    fn prefetch(&self, mailbox: &str, batch: &[(u32, Uid)], need: Need) -> Prefetch {
        let store = self.store.clone();
        let mailbox = mailbox.to_string();
        let uids: Vec<Uid> = batch.iter().map(|(_, uid)| *uid).collect();
        tokio::spawn(async move { contents(&store, &mailbox, &uids, need).await })
    }

    /// FETCH / UID FETCH.
    pub(super) async fn fetch(
        &mut self,
        set: &SequenceSet,
        items: MacroOrMessageDataItemNames<'_>,
        uid: bool,
        modifiers: &[FetchModifier],
        sink: &mut impl Sink,
    ) -> Completion {
        let Some(selected) = self.selected() else {
            return Completion::bad("No mailbox selected");
        };
        let (name, read_only) = (selected.name.clone(), selected.read_only);
        let targets = match selected.resolve(set, uid) {
            Ok(targets) => targets,
            Err(error) => return Completion::bad(error.to_string()),
        };
        // For VANISHED (EARLIER), `*` reaches every UID ever assigned, not
        // only those still in the view.
        let largest_uid = selected.uid_next.saturating_sub(1);
        let mut items: Vec<MessageDataItemName<'_>> = match items {
            MacroOrMessageDataItemNames::Macro(m) => m
                .expand()
                .into_iter()
                .map(IntoStatic::into_static)
                .collect(),
            MacroOrMessageDataItemNames::MessageDataItemNames(items) => items,
        };
        let mut changed_since = None;
        let mut vanished = false;
        for modifier in modifiers {
            match modifier {
                // `CHANGEDSINCE 0` (Thunderbird's first sync) is every message.
                FetchModifier::ChangedSince(value) => changed_since = Some(*value),
                FetchModifier::Vanished => vanished = true,
            }
        }
        // RFC 7162 §3.2.6: VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE.
        if vanished && (!uid || !self.qresync || changed_since.is_none()) {
            return Completion::bad(
                "VANISHED needs UID FETCH with CHANGEDSINCE after ENABLE QRESYNC",
            );
        }
        if changed_since.is_some() || items.contains(&MessageDataItemName::ModSeq) {
            self.condstore = true;
        }
        if changed_since.is_some() && !items.contains(&MessageDataItemName::ModSeq) {
            items.push(MessageDataItemName::ModSeq);
        }
        if uid && !items.contains(&MessageDataItemName::Uid) {
            // RFC 3501 §6.4.8: UID FETCH always returns UID.
            items.insert(0, MessageDataItemName::Uid);
        }

        if let (true, Some(since)) = (vanished, changed_since) {
            match self.store.changes_since(&name, since).await {
                Ok(changes) => {
                    let ranges = intervals(set, largest_uid);
                    let gone: Vec<Uid> = changes
                        .vanished
                        .into_iter()
                        .filter(|u| contains(&ranges, *u))
                        .collect();
                    if !gone.is_empty() {
                        self.out
                            .untagged(&format!("VANISHED (EARLIER) {}", sequence_set(&gone)));
                    }
                }
                Err(error) => return error.into(),
            }
        }

        let mut targets: Vec<(u32, Uid)> = targets;
        if let Some(since) = changed_since {
            targets.retain(|(_, uid)| {
                self.selected()
                    .and_then(|s| s.modseq_of(*uid))
                    .is_some_and(|modseq| modseq > since)
            });
        }

        // Implicit \Seen (RFC 3501 §6.4.5), before rendering so FLAGS show it.
        let mut flags_changed: std::collections::HashSet<Uid> = Default::default();
        if !read_only && items.iter().any(sets_seen) {
            let unseen: Vec<Uid> = targets
                .iter()
                .filter(|(_, uid)| {
                    self.selected()
                        .and_then(|s| s.meta(*uid))
                        .is_some_and(|m| !m.flags.iter().any(|f| f == "\\Seen"))
                })
                .map(|(_, uid)| *uid)
                .collect();
            if let Some(refusal) = self.binary_refusal(&name, &unseen, &items).await {
                return refusal;
            }
            if !unseen.is_empty() {
                match self
                    .store
                    .store_flags(&name, &unseen, FlagOp::Add, &["\\Seen".to_string()], None)
                    .await
                {
                    Ok(result) => {
                        for meta in &result.updated {
                            if let Some(selected) = self.selected_mut() {
                                selected.record(meta);
                            }
                            flags_changed.insert(meta.uid);
                        }
                    }
                    Err(error) => return error.into(),
                }
            }
        }
        let need = items.iter().map(item_need).max().unwrap_or(Need::Nothing);
        let batch = if need == Need::Full {
            FULL_BATCH
        } else {
            HEADER_BATCH
        };
        let batches: Vec<&[(u32, Uid)]> = targets.chunks(batch).collect();
        let mut next: Option<Prefetch> = None;
        for (index, &chunk) in batches.iter().enumerate() {
            let contents = match next.take() {
                Some(pending) => pending.await.unwrap_or_else(|error| {
                    Err(crate::backend::StoreError::Internal(format!(
                        "reading ahead failed: {error}"
                    )))
                }),
                None => {
                    let uids: Vec<Uid> = chunk.iter().map(|(_, uid)| *uid).collect();
                    contents(&self.store, &name, &uids, need).await
                }
            };
            let contents = match contents {
                Ok(contents) => contents,
                Err(error) => return error.into(),
            };
            if need != Need::Nothing {
                next = batches
                    .get(index + 1)
                    .map(|following| self.prefetch(&name, following, need));
            }
            for (seq, uid) in chunk {
                let Some(meta) = self.selected().and_then(|s| s.meta(*uid)) else {
                    continue;
                };
                let message = contents.get(uid).map(|m| &m[..]);
                if need != Need::Nothing && message.is_none() {
                    // Expunged meanwhile (RFC 2180 §4.1.3): nothing to show.
                    continue;
                }
                // Flags changed by this fetch are reported unasked
                // (RFC 3501 §6.4.5).
                if *seq == 0 {
                    continue;
                }
                let line = Line {
                    seq: *seq,
                    meta: &meta,
                    message: message.unwrap_or_default(),
                    recent: self.selected().is_some_and(|s| s.is_recent(meta.uid)),
                    add_flags: flags_changed.contains(uid),
                    condstore: self.condstore,
                };
                let rendered = render(&line, &items, self.out.buffer());
                if let Err(refusal) = rendered {
                    return refusal;
                }
                if self.out.len() >= FLUSH_AT && sink.send(self.out.take()).await.is_err() {
                    // The client is gone; the driver notices on its next
                    // write.
                    return Completion::no("Connection lost");
                }
            }
        }
        Completion::ok(if uid {
            "UID FETCH completed"
        } else {
            "FETCH completed"
        })
    }

    /// The refusal of a FETCH that sets `\Seen` through `BINARY[...]` when
    /// one of the messages it would mark has a part that cannot be decoded:
    /// checked before the flag is stored, so a refused FETCH marks nothing
    /// read. Reads those messages once more, which only a non-PEEK BINARY
    /// of unseen mail pays.
    async fn binary_refusal(
        &self,
        mailbox: &str,
        unseen: &[Uid],
        items: &[MessageDataItemName<'_>],
    ) -> Option<Completion> {
        let sections: Vec<&[NonZeroU32]> = items
            .iter()
            .filter_map(|item| match item {
                MessageDataItemName::Binary {
                    section,
                    peek: false,
                    ..
                } => Some(&section[..]),
                _ => None,
            })
            .collect();
        if sections.is_empty() {
            return None;
        }
        for chunk in unseen.chunks(FULL_BATCH) {
            let found = match contents(&self.store, mailbox, chunk, Need::Full).await {
                Ok(found) => found,
                Err(error) => return Some(error.into()),
            };
            for message in found.values() {
                let mut parts = BinaryParts::default();
                for section in &sections {
                    if let Err(refusal) = parts.decoded(message, section) {
                        return Some(refusal);
                    }
                }
            }
        }
        None
    }
}

/// One message's FETCH line, apart from the items asked.
#[derive(Clone, Copy)]
struct Line<'m> {
    seq: u32,
    meta: &'m MessageMeta,
    /// The header block or the whole message, as the items need.
    message: &'m [u8],
    /// Whether the session shows the message as `\Recent`.
    recent: bool,
    /// FLAGS was changed by this FETCH and goes along unasked.
    add_flags: bool,
    /// CONDSTORE is on: FLAGS travel with MODSEQ.
    condstore: bool,
}

/// Appends the FETCH response line of one message to `out`: its data
/// items in the order asked, or nothing when none applies. A BINARY
/// part that cannot be decoded leaves `out` as it was and returns the
/// refusal.
///
/// Everything is written here directly, byte for byte as imap-codec
/// writes the same imap-types values (`fetch_wire_tests.rs` compares the
/// two), without making those values: the metadata items, ENVELOPE from
/// the header, and the literals straight from the message. Only BODY,
/// BODYSTRUCTURE and the section spec of `BODY[...]` go through
/// imap-codec, one item at a time.
fn render(
    line: &Line<'_>,
    items: &[MessageDataItemName<'_>],
    out: &mut Vec<u8>,
) -> Result<(), Completion> {
    let Line {
        seq,
        meta,
        message,
        recent,
        add_flags,
        condstore,
    } = *line;
    let start = out.len();
    // Writing to a Vec cannot fail.
    let _ = write!(out, "* {seq} FETCH (");
    let open = out.len();
    let separate = |out: &mut Vec<u8>| {
        if out.len() > open {
            out.push(b' ');
        }
    };
    let mut has_flags = false;
    let mut has_modseq = false;
    let mut binary = BinaryParts::default();
    for item in items {
        // A UID or MODSEQ of 0 does not exist (RFC 3501, RFC 7162): left out.
        let absent = match item {
            MessageDataItemName::Uid => meta.uid == 0,
            MessageDataItemName::ModSeq => meta.modseq == 0,
            _ => false,
        };
        if absent {
            continue;
        }
        separate(out);
        match item {
            MessageDataItemName::Flags => {
                has_flags = true;
                write_flags(&meta.flags, recent, out);
            }
            MessageDataItemName::Uid => {
                let _ = write!(out, "UID {}", meta.uid);
            }
            MessageDataItemName::Rfc822Size => {
                let _ = write!(out, "RFC822.SIZE {}", meta.size);
            }
            MessageDataItemName::InternalDate => {
                let date = internal_date(meta);
                let _ = write!(
                    out,
                    "INTERNALDATE \"{}\"",
                    date.as_ref().format("%d-%b-%Y %H:%M:%S %z")
                );
            }
            MessageDataItemName::ModSeq => {
                has_modseq = true;
                let _ = write!(out, "MODSEQ ({})", meta.modseq);
            }
            MessageDataItemName::Envelope => {
                out.extend_from_slice(b"ENVELOPE ");
                mime::write_envelope(message, out);
            }
            MessageDataItemName::Body => encode_item(
                MessageDataItem::Body(mime::body_structure(message, false)),
                out,
            ),
            MessageDataItemName::BodyStructure => encode_item(
                MessageDataItem::BodyStructure(mime::body_structure(message, true)),
                out,
            ),
            MessageDataItemName::Rfc822 => {
                out.extend_from_slice(b"RFC822 ");
                write_literal(message, out);
            }
            MessageDataItemName::Rfc822Header => {
                let header = mime::section(message, &[], &SectionKind::Header).unwrap_or_default();
                out.extend_from_slice(b"RFC822.HEADER ");
                write_literal(&header, out);
            }
            MessageDataItemName::Rfc822Text => {
                let text = mime::section(message, &[], &SectionKind::Text).unwrap_or_default();
                out.extend_from_slice(b"RFC822.TEXT ");
                write_literal(&text, out);
            }
            MessageDataItemName::BodyExt {
                section,
                partial: range,
                ..
            } => {
                let (part, kind) = section_request(section.as_ref());
                // imap-codec writes `BODY[section]<origin> ` (and NIL, cut
                // off again); the data goes straight from the message.
                encode_item(
                    MessageDataItem::BodyExt {
                        section: section.clone(),
                        origin: range.map(|(offset, _)| offset),
                        data: NString(None),
                    },
                    out,
                );
                debug_assert!(out.ends_with(b"NIL"), "imap-codec wrote NIL last");
                out.truncate(out.len() - b"NIL".len());
                match mime::section(message, &part, &kind) {
                    Some(bytes) => write_literal(partial(&bytes, *range), out),
                    None => out.extend_from_slice(b"NIL"),
                }
            }
            MessageDataItemName::Binary {
                section,
                partial: range,
                ..
            } => {
                let decoded = match binary.decoded(message, section) {
                    Ok(decoded) => decoded,
                    Err(refusal) => {
                        out.truncate(start);
                        return Err(refusal);
                    }
                };
                out.extend_from_slice(b"BINARY[");
                write_part(section, out);
                out.push(b']');
                // RFC 3516 §8: a partial fetch's answer names its origin.
                if let Some((offset, _)) = range {
                    let _ = write!(out, "<{offset}>");
                }
                out.push(b' ');
                match decoded {
                    Some(bytes) => write_literal8(partial(bytes, *range), out),
                    None => out.extend_from_slice(b"NIL"),
                }
            }
            MessageDataItemName::BinarySize { section } => {
                let size = match binary.decoded(message, section) {
                    Ok(bytes) => bytes.map_or(0, |b| u32::try_from(b.len()).unwrap_or(u32::MAX)),
                    Err(refusal) => {
                        out.truncate(start);
                        return Err(refusal);
                    }
                };
                out.extend_from_slice(b"BINARY.SIZE[");
                write_part(section, out);
                let _ = write!(out, "] {size}");
            }
        }
    }
    if add_flags && !has_flags {
        separate(out);
        write_flags(&meta.flags, recent, out);
        has_flags = true;
    }
    // RFC 7162 §3.1.4.1: with CONDSTORE on, FLAGS travel with MODSEQ.
    if condstore && has_flags && !has_modseq && meta.modseq != 0 {
        separate(out);
        let _ = write!(out, "MODSEQ ({})", meta.modseq);
    }
    if out.len() == open {
        // No item applies (RFC 3501 has no empty FETCH response).
        out.truncate(start);
    } else {
        out.extend_from_slice(b")\r\n");
    }
    Ok(())
}

/// `FLAGS (...)` as imap-codec writes imap-types' flags: flags imap-types
/// cannot parse are left out, `\Recent` comes last.
fn write_flags(flags: &[String], recent: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"FLAGS (");
    let open = out.len();
    for flag in flags {
        if let Ok(flag) = ImapFlag::try_from(flag.as_str()) {
            if out.len() > open {
                out.push(b' ');
            }
            let _ = write!(out, "{flag}");
        }
    }
    if recent {
        if out.len() > open {
            out.push(b' ');
        }
        out.extend_from_slice(b"\\Recent");
    }
    out.push(b')');
}

/// Appends one data item as imap-codec encodes it inside a FETCH response
/// (it encodes only whole responses, so the line around it is cut off).
fn encode_item(item: MessageDataItem<'_>, out: &mut Vec<u8>) {
    const HEAD: &[u8] = b"* 1 FETCH (";
    const TAIL: &[u8] = b")\r\n";
    let response = Response::Data(Data::Fetch {
        seq: NonZeroU32::MIN,
        items: Vec1::from(item),
    });
    let encoded = ResponseCodec::default().encode(&response).dump();
    debug_assert!(encoded.starts_with(HEAD) && encoded.ends_with(TAIL));
    out.extend_from_slice(&encoded[HEAD.len()..encoded.len() - TAIL.len()]);
}

/// The parts of one message decoded for BINARY during one render, so that
/// `BINARY[1] BINARY.SIZE[1]` decodes part 1 once. Dropped with the render:
/// nothing decoded outlives the response it was made for.
#[derive(Default)]
struct BinaryParts {
    decoded: Vec<(Vec<NonZeroU32>, Option<Vec<u8>>)>,
}

impl BinaryParts {
    /// The decoded content of `BINARY[section]` (RFC 3516 §4.2), `None`
    /// for a part that does not exist; a part this server cannot decode
    /// fails the command: `NO [UNKNOWN-CTE]` for an unknown encoding
    /// (RFC 3516 §4.3), plain `NO` for data its encoding does not allow.
    fn decoded(
        &mut self,
        message: &[u8],
        section: &[NonZeroU32],
    ) -> Result<Option<&[u8]>, Completion> {
        let index = match self.decoded.iter().position(|(path, _)| path == section) {
            Some(index) => index,
            None => {
                let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
                let content = match mime::binary(message, &path) {
                    mime::Binary::Data(bytes) => Some(bytes),
                    mime::Binary::NoPart => None,
                    mime::Binary::UnknownEncoding(name) => {
                        return Err(Completion::no_code(
                            "UNKNOWN-CTE",
                            format!("Cannot decode the transfer encoding {name:?}"),
                        ));
                    }
                    mime::Binary::Broken => {
                        return Err(Completion::no(
                            "The part's data is not valid for its transfer encoding",
                        ));
                    }
                };
                self.decoded.push((section.to_vec(), content));
                self.decoded.len() - 1
            }
        };
        Ok(self.decoded[index].1.as_deref())
    }
}

#[cfg(test)]
#[path = "fetch_wire_tests.rs"]
mod wire_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_ranges() {
        let data = b"0123456789".to_vec();
        let two = NonZeroU32::new(2).expect("nonzero");
        assert_eq!(partial(&data, Some((3, two))), b"34");
        assert_eq!(partial(&data, Some((9, two))), b"9");
        assert_eq!(partial(&data, Some((20, two))), b"");
        assert_eq!(partial(&data, None), b"0123456789");
    }

    #[test]
    fn header_only_items() {
        assert_eq!(item_need(&MessageDataItemName::Envelope), Need::Header);
        assert_eq!(item_need(&MessageDataItemName::Flags), Need::Nothing);
        assert_eq!(item_need(&MessageDataItemName::BodyStructure), Need::Full);
        assert_eq!(section_need(Some(&Section::Header(None))), Need::Header);
        assert_eq!(section_need(Some(&Section::Text(None))), Need::Full);
        assert_eq!(section_need(None), Need::Full);
    }

    #[test]
    fn internal_date_keeps_zone() {
        let meta = MessageMeta {
            uid: 1,
            modseq: 1,
            flags: vec![],
            size: 0,
            internal_date: 0,
            internal_date_offset_minutes: 120,
        };
        let date = internal_date(&meta);
        assert_eq!(date.as_ref().offset().local_minus_utc(), 7200);
    }

    #[test]
    fn flags_are_written_normalised_with_recent_last() {
        let mut out = Vec::new();
        write_flags(
            &["\\seen".into(), "$Forwarded".into(), "bad flag".into()],
            true,
            &mut out,
        );
        assert_eq!(out, b"FLAGS (\\Seen $Forwarded \\Recent)");
        out.clear();
        write_flags(&[], false, &mut out);
        assert_eq!(out, b"FLAGS ()");
    }
}
