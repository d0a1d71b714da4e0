//! The header fields SORT and THREAD need (RFC 5256, RFC 5957), already
//! reduced to what they compare: sort keys under `i;unicode-casemap`, the
//! sent date, the message's own id and its parents' ids.
//!
//! A store computes them once per message from the header (when the
//! message is stored) and keeps them, sealed like the rest of the content,
//! next to the message, so SORT and THREAD never decrypt a message. The
//! byte form ([`SortFields::encode`]) is versioned so a later change can
//! tell old records apart.

use super::{address, header, search, subject};

/// Version byte of the encoded form.
const VERSION: u8 = 1;

/// What SORT and THREAD know of one message, one at a time, to build a
/// [`SortFields`] from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortFieldParts {
    /// `Date:` as seconds since the epoch (UTC); `None` when missing or
    /// unparseable (SORT and THREAD then use INTERNALDATE, RFC 5256 §3).
    pub date: Option<i64>,
    /// Casemapped base subject (RFC 5256 §2.1).
    pub subject: String,
    /// The base subject came from a reply or forward.
    pub is_reply: bool,
    /// Casemapped addr-mailbox of the first From address.
    pub from: String,
    /// Casemapped addr-mailbox of the first To address.
    pub to: String,
    /// Casemapped addr-mailbox of the first Cc address.
    pub cc: String,
    /// Casemapped display name of the first From address, else its
    /// address (RFC 5957 §3).
    pub display_from: String,
    /// The same for the first To address.
    pub display_to: String,
    /// The Message-ID, without angle brackets; `None` when missing.
    pub message_id: Option<String>,
    /// The parents, oldest first: the ids of `References:`, else the first
    /// id of `In-Reply-To:` (RFC 5256 §2.3 step 1.A). Ids hold no white
    /// space.
    pub references: Vec<String>,
}

/// What SORT and THREAD know of one message ([`SortFieldParts`]), kept
/// compact: every text is in one allocation, in the packed form a
/// [`crate::sort_map::SortFieldMap`] stores for a whole mailbox (see
/// [`SortFieldsRef`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortFields {
    date: Option<i64>,
    bits: u8,
    /// The message's own packed texts, then its people's.
    packed: Box<[u8]>,
    /// Where the people's start in `packed`.
    split: usize,
}

impl Default for SortFields {
    fn default() -> SortFields {
        SortFields::new(SortFieldParts::default())
    }
}

/// The sort fields of one message, borrowed from a [`SortFields`] or from
/// a mailbox's [`crate::sort_map::SortFieldMap`].
///
/// The texts are in two packed forms, each its texts' lengths as LEB128
/// varints followed by the texts one after the other:
/// - `own`: the message's own texts, the base subject, the Message-ID and
///   the references joined by spaces ([`OWN`] of them);
/// - `people`: the first From, To and Cc mailboxes and the DISPLAYFROM
///   and DISPLAYTO keys ([`PEOPLE`] of them), which many messages of a
///   mailbox share, so a map keeps each distinct one once.
///
/// Both are self-delimiting, so a map keeps only where each starts.
#[derive(Clone, Copy)]
pub struct SortFieldsRef<'a> {
    date: Option<i64>,
    bits: u8,
    own: &'a [u8],
    people: &'a [u8],
}

/// The fields, not the arena they sit in (which goes on past them).
impl std::fmt::Debug for SortFieldsRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.parts().fmt(f)
    }
}

impl PartialEq for SortFieldsRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.date, self.bits, self.own(), self.people())
            == (other.date, other.bits, other.own(), other.people())
    }
}

impl Eq for SortFieldsRef<'_> {}

/// [`SortFieldsRef`]'s flag bits.
const IS_REPLY: u8 = 1;
const HAS_MESSAGE_ID: u8 = 2;

/// Texts in the `own` packed form, and in the `people` one.
const OWN: usize = 3;
const PEOPLE: usize = 5;

/// The packed forms of empty texts.
const EMPTY_OWN: [u8; OWN] = [0; OWN];
const EMPTY_PEOPLE: [u8; PEOPLE] = [0; PEOPLE];

/// The first mailbox of an address list: (addr-mailbox, display name or
/// address).
fn first_address(value: Option<&[u8]>) -> (String, String) {
    let Some(value) = value else {
        return (String::new(), String::new());
    };
    let unfolded = header::unfold(value);
    for item in address::parse(&unfolded) {
        if let address::Item::Mailbox {
            name,
            mailbox,
            host,
            ..
        } = item
        {
            let local = String::from_utf8_lossy(&mailbox).into_owned();
            let display = match name {
                Some(name) if !name.is_empty() => {
                    let decoded = search::decode_value(&name);
                    let trimmed = decoded.trim();
                    if trimmed.is_empty() {
                        None
                    } else {
                        Some(trimmed.to_string())
                    }
                }
                _ => None,
            };
            let display = display.unwrap_or_else(|| {
                if host.is_empty() {
                    local.clone()
                } else {
                    format!("{local}@{}", String::from_utf8_lossy(&host))
                }
            });
            return (subject::casemap(&local), subject::casemap(&display));
        }
    }
    (String::new(), String::new())
}

/// The `msg-id`s (`<...>`) of a header value, brackets removed. Text
/// outside brackets (comments, phrases in old In-Reply-To) is ignored.
fn message_ids(value: &[u8]) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.iter().position(|b| *b == b'<') {
        let after = &rest[open + 1..];
        let Some(close) = after.iter().position(|b| *b == b'>') else {
            break;
        };
        let id: Vec<u8> = after[..close]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if !id.is_empty() && !id.contains(&b'<') {
            ids.push(String::from_utf8_lossy(&id).into_owned());
        }
        rest = &after[close + 1..];
    }
    ids
}

impl SortFields {
    /// The fields of a message (or of its header block alone).
    pub fn from_message(message: &[u8]) -> SortFields {
        let mut fields = SortFieldParts::default();
        let (mut subject, mut from, mut to, mut cc) = (None, None, None, None);
        let (mut message_id, mut references, mut in_reply_to, mut date) = (None, None, None, None);
        for field in header::fields(message) {
            let slot = if field.is("Subject") {
                &mut subject
            } else if field.is("From") {
                &mut from
            } else if field.is("To") {
                &mut to
            } else if field.is("Cc") {
                &mut cc
            } else if field.is("Message-ID") {
                &mut message_id
            } else if field.is("References") {
                &mut references
            } else if field.is("In-Reply-To") {
                &mut in_reply_to
            } else if field.is("Date") {
                &mut date
            } else {
                continue;
            };
            // The first of repeated fields counts, as for ENVELOPE.
            slot.get_or_insert(field.value);
        }
        fields.date = date
            .and_then(|value| super::date::parse(&String::from_utf8_lossy(&header::unfold(value))));
        if let Some(value) = subject {
            let base = subject::base_subject(&search::decode_value(value));
            fields.subject = subject::casemap(&base.text);
            fields.is_reply = base.is_reply;
        }
        (fields.from, fields.display_from) = first_address(from);
        (fields.to, fields.display_to) = first_address(to);
        (fields.cc, _) = first_address(cc);
        fields.message_id = message_id.and_then(|v| message_ids(v).into_iter().next());
        fields.references = references.map(message_ids).unwrap_or_default();
        if fields.references.is_empty()
            && let Some(parent) = in_reply_to.and_then(|v| message_ids(v).into_iter().next())
        {
            fields.references.push(parent);
        }
        SortFields::new(fields)
    }

    /// Packs `parts`.
    pub fn new(parts: SortFieldParts) -> SortFields {
        let references = parts.references.join(" ");
        let own = [
            parts.subject.as_str(),
            parts.message_id.as_deref().unwrap_or_default(),
            &references,
        ];
        let people = [
            parts.from.as_str(),
            &parts.to,
            &parts.cc,
            &parts.display_from,
            &parts.display_to,
        ];
        let mut packed = Vec::with_capacity(
            OWN + PEOPLE + own.iter().chain(&people).map(|t| t.len()).sum::<usize>(),
        );
        pack(&mut packed, &own);
        let split = packed.len();
        pack(&mut packed, &people);
        let mut bits = 0;
        if parts.is_reply {
            bits |= IS_REPLY;
        }
        if parts.message_id.is_some() {
            bits |= HAS_MESSAGE_ID;
        }
        SortFields {
            date: parts.date,
            bits,
            packed: packed.into_boxed_slice(),
            split,
        }
    }

    /// The borrowed form, which has the accessors.
    pub fn view(&self) -> SortFieldsRef<'_> {
        let (own, people) = self.packed.split_at(self.split.min(self.packed.len()));
        SortFieldsRef {
            date: self.date,
            bits: self.bits,
            own,
            people,
        }
    }

    /// The fields one by one.
    pub fn parts(&self) -> SortFieldParts {
        self.view().parts()
    }

    /// The byte form a store keeps (before sealing it).
    pub fn encode(&self) -> Vec<u8> {
        let parts = self.parts();
        let this = &parts;
        let mut out = Vec::with_capacity(64 + this.subject.len());
        out.push(VERSION);
        match this.date {
            Some(date) => {
                out.push(1);
                out.extend_from_slice(&date.to_be_bytes());
            }
            None => out.push(0),
        }
        out.push(u8::from(this.is_reply));
        for text in [
            &this.subject,
            &this.from,
            &this.to,
            &this.cc,
            &this.display_from,
            &this.display_to,
        ] {
            put(&mut out, text);
        }
        match &this.message_id {
            Some(id) => {
                out.push(1);
                put(&mut out, id);
            }
            None => out.push(0),
        }
        let count = u32::try_from(this.references.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for id in this.references.iter().take(count as usize) {
            put(&mut out, id);
        }
        out
    }

    /// Reads [`SortFields::encode`]'s form; `None` if it is not one.
    pub fn decode(bytes: &[u8]) -> Option<SortFields> {
        let mut r = Reader { bytes };
        if r.byte()? != VERSION {
            return None;
        }
        let date = match r.byte()? {
            0 => None,
            _ => Some(i64::from_be_bytes(r.take(8)?.try_into().ok()?)),
        };
        let is_reply = r.byte()? != 0;
        let mut fields = SortFieldParts {
            date,
            is_reply,
            subject: r.text()?,
            from: r.text()?,
            to: r.text()?,
            cc: r.text()?,
            display_from: r.text()?,
            display_to: r.text()?,
            ..SortFieldParts::default()
        };
        fields.message_id = match r.byte()? {
            0 => None,
            _ => Some(r.text()?),
        };
        let count = r.u32()?;
        for _ in 0..count {
            fields.references.push(r.text()?);
        }
        r.bytes.is_empty().then(|| SortFields::new(fields))
    }
}

impl<'a> SortFieldsRef<'a> {
    /// The fields of a message that has none: every text empty.
    pub const EMPTY: SortFieldsRef<'static> = SortFieldsRef {
        date: None,
        bits: 0,
        own: &EMPTY_OWN,
        people: &EMPTY_PEOPLE,
    };

    /// The fields whose packed forms start `own` and `people` (either may
    /// go on past its end, as in a map's arena).
    pub(crate) fn from_packed(
        date: Option<i64>,
        bits: u8,
        own: &'a [u8],
        people: &'a [u8],
    ) -> Self {
        SortFieldsRef {
            date,
            bits,
            own,
            people,
        }
    }

    /// The flag bits, for a map that stores them apart.
    pub(crate) fn bits(&self) -> u8 {
        self.bits
    }

    /// The own packed form exactly, without what follows it in an arena.
    pub(crate) fn own(&self) -> &'a [u8] {
        exact::<OWN>(self.own)
    }

    /// The people's packed form exactly.
    pub(crate) fn people(&self) -> &'a [u8] {
        exact::<PEOPLE>(self.people)
    }

    fn part(&self, index: usize) -> &'a str {
        match index {
            0 => nth::<OWN>(self.own, 0),
            6 => nth::<OWN>(self.own, 1),
            7 => nth::<OWN>(self.own, 2),
            _ => nth::<PEOPLE>(self.people, index - 1),
        }
    }

    /// `Date:` in seconds since the epoch, if it parsed.
    pub fn date(&self) -> Option<i64> {
        self.date
    }

    /// Casemapped base subject.
    pub fn subject(&self) -> &'a str {
        self.part(0)
    }

    /// The base subject came from a reply or forward.
    pub fn is_reply(&self) -> bool {
        self.bits & IS_REPLY != 0
    }

    /// Casemapped addr-mailbox of the first From address.
    pub fn from(&self) -> &'a str {
        self.part(1)
    }

    /// Casemapped addr-mailbox of the first To address.
    pub fn to(&self) -> &'a str {
        self.part(2)
    }

    /// Casemapped addr-mailbox of the first Cc address.
    pub fn cc(&self) -> &'a str {
        self.part(3)
    }

    /// DISPLAYFROM's key.
    pub fn display_from(&self) -> &'a str {
        self.part(4)
    }

    /// DISPLAYTO's key.
    pub fn display_to(&self) -> &'a str {
        self.part(5)
    }

    /// The Message-ID without brackets.
    pub fn message_id(&self) -> Option<&'a str> {
        (self.bits & HAS_MESSAGE_ID != 0).then(|| self.part(6))
    }

    /// The parents, oldest first.
    pub fn references(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.part(7).split(' ').filter(|id| !id.is_empty())
    }

    /// The fields one by one.
    pub fn parts(&self) -> SortFieldParts {
        SortFieldParts {
            date: self.date,
            subject: self.subject().to_string(),
            is_reply: self.is_reply(),
            from: self.from().to_string(),
            to: self.to().to_string(),
            cc: self.cc().to_string(),
            display_from: self.display_from().to_string(),
            display_to: self.display_to().to_string(),
            message_id: self.message_id().map(str::to_string),
            references: self.references().map(str::to_string).collect(),
        }
    }

    /// An owned copy.
    pub fn to_owned(&self) -> SortFields {
        let (own, people) = (self.own(), self.people());
        SortFields {
            date: self.date,
            bits: self.bits,
            packed: [own, people].concat().into_boxed_slice(),
            split: own.len(),
        }
    }
}

/// Appends the packed form of `texts`: their lengths, then the texts.
fn pack(out: &mut Vec<u8>, texts: &[&str]) {
    for text in texts {
        put_varint(out, text.len());
    }
    for text in texts {
        out.extend_from_slice(text.as_bytes());
    }
}

/// The `N` lengths at the start of `packed`, and the bytes they take.
fn lengths<const N: usize>(packed: &[u8]) -> ([usize; N], usize) {
    let mut lengths = [0; N];
    let mut at = 0;
    for length in &mut lengths {
        let (value, used) = get_varint(packed.get(at..).unwrap_or_default());
        *length = value;
        at += used;
    }
    (lengths, at)
}

/// The packed form of `N` texts that starts `packed`, exactly.
fn exact<const N: usize>(packed: &[u8]) -> &[u8] {
    let (lengths, header) = lengths::<N>(packed);
    let total = header + lengths.iter().sum::<usize>();
    packed.get(..total).unwrap_or(packed)
}

/// Text `index` of the packed form of `N` texts that starts `packed`.
fn nth<const N: usize>(packed: &[u8], index: usize) -> &str {
    let (lengths, header) = lengths::<N>(packed);
    let start = header + lengths[..index].iter().sum::<usize>();
    let bytes = packed
        .get(start..start + lengths[index])
        .unwrap_or_default();
    // Always UTF-8: every text was packed from a `str`.
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// Appends `value` as a LEB128 varint.
fn put_varint(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// A LEB128 varint at the start of `bytes`, and its length; (0, len) for
/// a truncated one (never in a form [`SortFields::new`] packed).
fn get_varint(bytes: &[u8]) -> (usize, usize) {
    let mut value = 0usize;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    (0, bytes.len())
}

fn put(out: &mut Vec<u8>, text: &str) {
    // Header values are far below 4 GiB; longer ones are cut.
    let bytes = &text.as_bytes()[..text.len().min(u32::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <JM@example.de>\r\n\
To: bob@example.org, carol@example.org\r\n\
Subject: [list] Re: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= (fwd)\r\n\
Date: Tue, 3 Mar 2026 10:00:00 +0100\r\n\
Message-ID: <b@example.de>\r\n\
In-Reply-To: <a@example.de> (sent by Bob)\r\n\
\r\n\
body\r\n";

    #[test]
    fn fields_of_a_reply() {
        let owned = SortFields::from_message(MESSAGE);
        let f = owned.view();
        assert_eq!(f.date(), Some(1_772_528_400));
        assert_eq!(f.subject(), subject::casemap("Grüße"));
        assert!(f.is_reply());
        assert_eq!(f.from(), "JM");
        assert_eq!(f.display_from(), subject::casemap("Jörg Müller"));
        assert_eq!(f.to(), "BOB");
        assert_eq!(f.display_to(), "BOB@EXAMPLE.ORG");
        assert_eq!(f.cc(), "");
        assert_eq!(f.message_id(), Some("b@example.de"));
        assert_eq!(f.references().collect::<Vec<_>>(), ["a@example.de"]);
    }

    #[test]
    fn references_win_over_in_reply_to() {
        let owned = SortFields::from_message(
            b"References: <a@x> <b@x>\r\n\t<c@x>\r\nIn-Reply-To: <z@x>\r\n\r\n",
        );
        let f = owned.view();
        assert_eq!(f.references().collect::<Vec<_>>(), ["a@x", "b@x", "c@x"]);
        assert_eq!(f.message_id(), None);
        assert_eq!(f.date(), None);
        assert_eq!(SortFields::new(f.parts()), owned);
    }

    #[test]
    fn encode_decode_round_trip() {
        let f = SortFields::from_message(MESSAGE);
        assert_eq!(SortFields::decode(&f.encode()), Some(f));
        let empty = SortFields::default();
        assert_eq!(SortFields::decode(&empty.encode()), Some(empty));
        assert_eq!(SortFields::decode(b""), None);
        assert_eq!(SortFields::decode(&[VERSION, 0, 0, 0, 0, 0, 9]), None);
    }
}
