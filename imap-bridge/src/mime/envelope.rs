//! The ENVELOPE structure (RFC 3501 §7.4.2, RFC 9051 §7.5.2), built from a
//! single pass over the header block only: fetching ENVELOPE for a whole
//! mailbox must not parse bodies.

use imap_codec::imap_types::core::NString;
use imap_codec::imap_types::envelope::{Address, Envelope};

use super::address::{self, Item};
use super::header;
use super::strings::{nstring, nstring_opt};

/// The ENVELOPE of the entity whose header block starts `bytes`.
///
/// Each member comes from the first field of its name. Values are unfolded
/// but otherwise raw, as RFC 3501 requires (clients decode RFC 2047).
pub(crate) fn envelope(bytes: &[u8]) -> Envelope<'static> {
    let mut date = None;
    let mut subject = None;
    let mut from = None;
    let mut sender = None;
    let mut reply_to = None;
    let mut to = None;
    let mut cc = None;
    let mut bcc = None;
    let mut in_reply_to = None;
    let mut message_id = None;
    for field in header::fields(bytes) {
        let slot = match field.name.len() {
            2 if field.is("To") => &mut to,
            2 if field.is("Cc") => &mut cc,
            3 if field.is("Bcc") => &mut bcc,
            4 if field.is("Date") => &mut date,
            4 if field.is("From") => &mut from,
            6 if field.is("Sender") => &mut sender,
            7 if field.is("Subject") => &mut subject,
            8 if field.is("Reply-To") => &mut reply_to,
            10 if field.is("Message-ID") => &mut message_id,
            11 if field.is("In-Reply-To") => &mut in_reply_to,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(field.value);
        }
    }
    let from = addresses(from);
    // "If the Sender or Reply-To lines are absent in the [RFC-2822] header,
    // or are present but empty, the server sets the corresponding member of
    // the envelope to be the same value as the from member" (RFC 3501).
    let or_from = |list: Vec<Address<'static>>| if list.is_empty() { from.clone() } else { list };
    Envelope {
        date: raw(date),
        subject: raw(subject),
        sender: or_from(addresses(sender)),
        reply_to: or_from(addresses(reply_to)),
        from,
        to: addresses(to),
        cc: addresses(cc),
        bcc: addresses(bcc),
        in_reply_to: raw(in_reply_to),
        message_id: raw(message_id),
    }
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
