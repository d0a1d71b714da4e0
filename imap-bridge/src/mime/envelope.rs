//! The ENVELOPE structure (RFC 3501 §7.4.2, RFC 9051 §7.5.2), built from a
//! single pass over the header block only: fetching ENVELOPE for a whole
//! mailbox must not parse bodies.

use imap_codec::imap_types::core::NString;
use imap_codec::imap_types::envelope::{Address, Envelope};

use super::address::{self, Item};
use super::header;
use super::strings::{nstring, nstring_opt, write_istring};

/// The header fields ENVELOPE is made of, each the first of its name.
#[derive(Default)]
struct Fields<'a> {
    date: Option<&'a [u8]>,
    subject: Option<&'a [u8]>,
    from: Option<&'a [u8]>,
    sender: Option<&'a [u8]>,
    reply_to: Option<&'a [u8]>,
    to: Option<&'a [u8]>,
    cc: Option<&'a [u8]>,
    bcc: Option<&'a [u8]>,
    in_reply_to: Option<&'a [u8]>,
    message_id: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// One pass over the header block that starts `bytes`.
    fn of(bytes: &'a [u8]) -> Self {
        let mut found = Fields::default();
        for field in header::fields(bytes) {
            let slot = match field.name.len() {
                2 if field.is("To") => &mut found.to,
                2 if field.is("Cc") => &mut found.cc,
                3 if field.is("Bcc") => &mut found.bcc,
                4 if field.is("Date") => &mut found.date,
                4 if field.is("From") => &mut found.from,
                6 if field.is("Sender") => &mut found.sender,
                7 if field.is("Subject") => &mut found.subject,
                8 if field.is("Reply-To") => &mut found.reply_to,
                10 if field.is("Message-ID") => &mut found.message_id,
                11 if field.is("In-Reply-To") => &mut found.in_reply_to,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(field.value);
            }
        }
        found
    }
}

/// The ENVELOPE of the entity whose header block starts `bytes`.
///
/// Each member comes from the first field of its name. Values are unfolded
/// but otherwise raw, as RFC 3501 requires (clients decode RFC 2047).
pub(crate) fn envelope(bytes: &[u8]) -> Envelope<'static> {
    let fields = Fields::of(bytes);
    let from = addresses(fields.from);
    // "If the Sender or Reply-To lines are absent in the [RFC-2822] header,
    // or are present but empty, the server sets the corresponding member of
    // the envelope to be the same value as the from member" (RFC 3501).
    let or_from = |list: Vec<Address<'static>>| if list.is_empty() { from.clone() } else { list };
    Envelope {
        date: raw(fields.date),
        subject: raw(fields.subject),
        sender: or_from(addresses(fields.sender)),
        reply_to: or_from(addresses(fields.reply_to)),
        from,
        to: addresses(fields.to),
        cc: addresses(fields.cc),
        bcc: addresses(fields.bcc),
        in_reply_to: raw(fields.in_reply_to),
        message_id: raw(fields.message_id),
    }
}

/// Appends to `out` the wire form of [`envelope`]`(bytes)`, byte for byte
/// what imap-codec encodes for it, without building the imap-types values:
/// `FETCH 1:* ENVELOPE` of a large mailbox spent most of its time making,
/// encoding and dropping them (docs/benchmarks.md, issue 7).
pub(crate) fn write_envelope(bytes: &[u8], out: &mut Vec<u8>) {
    let fields = Fields::of(bytes);
    let from = parsed(fields.from);
    let (sender, reply_to) = (parsed(fields.sender), parsed(fields.reply_to));
    // Sender and Reply-To default to From, as in `envelope`.
    let or_from = |list| if Vec::is_empty(list) { &from } else { list };
    out.push(b'(');
    write_raw(fields.date, out);
    out.push(b' ');
    write_raw(fields.subject, out);
    out.push(b' ');
    write_addresses(&from, out);
    out.push(b' ');
    write_addresses(or_from(&sender), out);
    out.push(b' ');
    write_addresses(or_from(&reply_to), out);
    out.push(b' ');
    write_addresses(&parsed(fields.to), out);
    out.push(b' ');
    write_addresses(&parsed(fields.cc), out);
    out.push(b' ');
    write_addresses(&parsed(fields.bcc), out);
    out.push(b' ');
    write_raw(fields.in_reply_to, out);
    out.push(b' ');
    write_raw(fields.message_id, out);
    out.push(b')');
}

/// The addresses of a field; none when it is absent.
fn parsed(value: Option<&[u8]>) -> Vec<Item> {
    value.map(address::parse).unwrap_or_default()
}

/// An unstructured member as [`raw`] makes and imap-codec writes it.
fn write_raw(value: Option<&[u8]>, out: &mut Vec<u8>) {
    match value {
        None => out.extend_from_slice(b"NIL"),
        Some(value) => write_istring(header::trim_wsp(value), |b| b == b'\r' || b == b'\n', out),
    }
}

/// An address member as [`addresses`] makes and imap-codec writes it: NIL
/// when empty, else the addresses in parentheses with nothing between them.
fn write_addresses(items: &[Item], out: &mut Vec<u8>) {
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    let none = |_: u8| false;
    let nil = |out: &mut Vec<u8>| out.extend_from_slice(b"NIL");
    out.push(b'(');
    for item in items {
        out.push(b'(');
        match item {
            Item::Mailbox {
                name,
                adl,
                mailbox,
                host,
            } => {
                match name {
                    Some(name) => write_istring(name, none, out),
                    None => nil(out),
                }
                out.push(b' ');
                match adl {
                    Some(adl) => write_istring(adl, none, out),
                    None => nil(out),
                }
                out.push(b' ');
                write_istring(mailbox, none, out);
                out.push(b' ');
                write_istring(host, none, out);
            }
            Item::GroupStart(name) => {
                out.extend_from_slice(b"NIL NIL ");
                write_istring(name, none, out);
                out.extend_from_slice(b" NIL");
            }
            Item::GroupEnd => out.extend_from_slice(b"NIL NIL NIL NIL"),
        }
        out.push(b')');
    }
    out.push(b')');
}

/// An unstructured member: NIL when the field is absent, else its unfolded
/// raw value.
fn raw(value: Option<&[u8]>) -> NString<'static> {
    nstring_opt(value.map(header::unfold))
}

/// An address member; empty (encoded as NIL) when the field is absent or
/// holds no address.
fn addresses(value: Option<&[u8]>) -> Vec<Address<'static>> {
    let Some(value) = value else {
        return Vec::new();
    };
    address::parse(value)
        .into_iter()
        .map(|item| match item {
            Item::Mailbox {
                name,
                adl,
                mailbox,
                host,
            } => Address {
                name: nstring_opt(name),
                adl: nstring_opt(adl),
                mailbox: nstring(mailbox),
                host: nstring(host),
            },
            // Group syntax (RFC 3501 §7.4.2): the start marker has a NIL host
            // and the group name as mailbox; the end marker is all NIL.
            Item::GroupStart(name) => Address {
                name: NString(None),
                adl: NString(None),
                mailbox: nstring(name),
                host: NString(None),
            },
            Item::GroupEnd => Address {
                name: NString(None),
                adl: NString(None),
                mailbox: NString(None),
                host: NString(None),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: &NString<'_>) -> Option<String> {
        n.0.clone()
            .map(|s| String::from_utf8_lossy(s.into_inner().as_ref()).into_owned())
    }

    fn addr(a: &Address<'_>) -> [Option<String>; 4] {
        [text(&a.name), text(&a.adl), text(&a.mailbox), text(&a.host)]
    }

    #[test]
    fn simple_message() {
        let env = envelope(
            b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n\
From: Terry Gray <gray@cac.washington.edu>\r\n\
Subject: IMAP4rev1 WG mtg summary and minutes\r\n\
To: imap@cac.washington.edu\r\n\
cc: minutes@CNRI.Reston.VA.US,\r\n John Klensin <KLENSIN@MIT.EDU>\r\n\
Message-Id: <B27397-0100000@cac.washington.edu>\r\n\
\r\n\
To: not-a-header@example.com\r\n",
        );
        assert_eq!(
            text(&env.date).as_deref(),
            Some("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)")
        );
        assert_eq!(
            text(&env.subject).as_deref(),
            Some("IMAP4rev1 WG mtg summary and minutes")
        );
        assert_eq!(env.from.len(), 1);
        assert_eq!(env.sender, env.from);
        assert_eq!(env.reply_to, env.from);
        assert_eq!(
            addr(&env.from[0]),
            [
                Some("Terry Gray".into()),
                None,
                Some("gray".into()),
                Some("cac.washington.edu".into())
            ]
        );
        assert_eq!(env.to.len(), 1);
        assert_eq!(env.cc.len(), 2);
        assert_eq!(text(&env.cc[1].name).as_deref(), Some("John Klensin"));
        assert!(env.bcc.is_empty());
        assert_eq!(env.in_reply_to, NString(None));
        assert_eq!(
            text(&env.message_id).as_deref(),
            Some("<B27397-0100000@cac.washington.edu>")
        );
    }

    #[test]
    fn no_headers_at_all() {
        let env = envelope(b"just a body\r\n");
        assert_eq!(env.date, NString(None));
        assert_eq!(env.subject, NString(None));
        assert!(env.from.is_empty() && env.sender.is_empty() && env.to.is_empty());
    }

    #[test]
    fn encoded_and_folded_subject_stays_raw() {
        let env = envelope(b"Subject: =?UTF-8?B?SGFsbG8=?=\r\n =?UTF-8?Q?_W=C3=B6rld?=\r\n\r\n");
        assert_eq!(
            text(&env.subject).as_deref(),
            Some("=?UTF-8?B?SGFsbG8=?= =?UTF-8?Q?_W=C3=B6rld?=")
        );
    }

    #[test]
    fn explicit_sender_and_empty_reply_to() {
        let env = envelope(b"From: a@x\r\nSender: s@x\r\nReply-To:\r\n\r\n");
        assert_eq!(text(&env.sender[0].mailbox).as_deref(), Some("s"));
        assert_eq!(env.reply_to, env.from);
    }

    #[test]
    fn first_field_wins_and_groups_render() {
        let env = envelope(b"To: team: a@x;\r\nTo: other@y\r\n\r\n");
        assert_eq!(env.to.len(), 3);
        assert_eq!(addr(&env.to[0]), [None, None, Some("team".into()), None]);
        assert_eq!(addr(&env.to[2]), [None, None, None, None]);
    }

    #[test]
    fn eight_bit_and_nul_bytes() {
        let env = envelope(b"Subject: caf\xc3\xa9 \x00\xff\r\n\r\n");
        assert_eq!(
            env.subject.into_option().as_deref(),
            Some(&b"caf\xc3\xa9 \xff"[..])
        );
    }
}
