//! Writes the fixture identities (`fixtures/`) and the seed corpora
//! (`seeds/<target>/`). Run once by hand, then commit the files:
//!
//! ```text
//! cargo test --test seeds -- --ignored
//! ```
//!
//! Existing fixture identities are kept (the seeds of `pgp_open` and
//! `delivery_cbor` are sealed to them); delete `fixtures/` to make new ones.

use std::path::{Path, PathBuf};

#[cfg(feature = "node")]
use keys::{Identity, PassphraseSource, Protection};
#[cfg(feature = "node")]
use libp2p::StreamProtocol;
#[cfg(feature = "node")]
use libp2p::request_response::{Codec as _, cbor};
#[cfg(feature = "node")]
use mailnode::network::{DeliveryRequest, DeliveryResponse};
#[cfg(feature = "node")]
use mailnode::pgpmime::{self, OuterHeader};
#[cfg(feature = "node")]
use mailnode_fuzz::node::{FIXTURE_PASSPHRASE, fixture_dir, fixtures};
use mailnode_fuzz::samples;

fn seed_dir(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    std::fs::create_dir_all(&dir).expect("creating a seed directory");
    dir
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    std::fs::write(seed_dir(target).join(name), bytes).expect("writing a seed");
}

fn with_prefix(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(rest);
    out
}

#[cfg(feature = "node")]
fn make_identities() {
    for (name, email) in [("Alice", "alice@example.org"), ("Bob", "bob@example.org")] {
        let home = fixture_dir().join(name.to_lowercase());
        if Identity::exists(&home) {
            continue;
        }
        std::fs::create_dir_all(&home).expect("creating a fixture home");
        let identity = Identity::generate(name, email).expect("generating a fixture identity");
        let protection = Protection::Passphrase(PassphraseSource::fixed(FIXTURE_PASSPHRASE));
        identity
            .save(&home, &protection)
            .expect("saving a fixture identity");
    }
}

const IMAP_COMMANDS: &[&[u8]] = &[
    b"1 capability\r\n",
    b"2 authenticate PLAIN\r\n",
    b"3 namespace\r\n",
    b"4 ID (\"name\" \"Thunderbird\" \"version\" \"153.0\")\r\n",
    b"5 list (subscribed) \"\" \"*\" return (special-use)\r\n",
    b"6 create \"Trash\"\r\n",
    b"7 select \"INBOX\" (CONDSTORE)\r\n",
    b"8 UID fetch 1:* (FLAGS)\r\n",
    b"9 UID fetch 1:3 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])\r\n",
    b"10 UID fetch 3 (UID RFC822.SIZE BODY.PEEK[TEXT]<0.2048>)\r\n",
    b"11 UID fetch 2 (BODY.PEEK[1.2.MIME] BODY[2.HEADER.FIELDS.NOT (Subject)] BODY.PEEK[]<0.65536>)\r\n",
    b"12 uid store 2 +Flags.SILENT (\\Seen $Forwarded $label1)\r\n",
    b"13 uid move 2 \"Trash\"\r\n",
    b"14 append \"Sent\" (\\Seen) \"24-Nov-2026 19:00:00 +0100\" {12+}\r\nSubject: x\r\n\r\n",
    b"15 UID SEARCH OR (BODY caf TEXT x) NOT (SENTSINCE 1-Jan-2026 LARGER 10 KEYWORD $Junk) 1:*\r\n",
    b"16 IDLE\r\n",
    b"DONE\r\n",
    b"17 select INBOX (QRESYNC (1 5 1:3))\r\n",
    b"18 COMPRESS DEFLATE\r\n",
    b"19 UID EXPUNGE 1:2\r\n",
    b"20 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)\r\n",
    b"21 LOGIN {16+}\r\nfuzz@example.org \"fuzz-password\"\r\n",
    // Thunderbird's first CONDSTORE sync; decodes only with our imap-codec fork.
    b"22 UID fetch 1:* (FLAGS) (CHANGEDSINCE 0)\r\n",
];

const IMAP_SESSIONS: &[(&str, &[u8])] = &[
    ("greeting", b"\x00a CAPABILITY\r\nb LOGOUT\r\n"),
    (
        "sasl",
        b"\x00a AUTHENTICATE PLAIN\r\nAGZ1enpAZXhhbXBsZS5vcmcAZnV6ei1wYXNzd29yZA==\r\nb SELECT INBOX\r\n",
    ),
    (
        "thunderbird",
        b"\x01a namespace\r\nb ID (\"name\" \"Thunderbird\")\r\nc list (subscribed) \"\" \"*\" return (special-use)\r\nd create \"Trash\"\r\ne select \"INBOX\"\r\nf UID fetch 1:* (FLAGS)\r\ng UID fetch 1:3 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date)])\r\nh UID fetch 2 (UID RFC822.SIZE BODY.PEEK[TEXT]<0.2048>)\r\ni uid store 1 +Flags (\\Seen)\r\nj uid move 1 \"Trash\"\r\nk append \"Sent\" (\\Seen) {25+}\r\nSubject: sent\r\n\r\nhello\r\n\r\nl LOGOUT\r\n",
    ),
    (
        "fetch_sections",
        b"\x02a FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE INTERNALDATE UID FLAGS)\r\nb FETCH 2 (BODY[1.1] BODY[1.2.MIME] BODY[2]<0.10> BODY[3.HEADER] BODY[3.TEXT] BODY[3.1.1] RFC822.HEADER RFC822.TEXT)\r\nc FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])\r\n",
    ),
    (
        "search",
        b"\x02a SEARCH FROM alice SUBJECT hello TO fuzz CC c BCC x\r\nb UID SEARCH OR BODY caf TEXT digest\r\nc SEARCH SENTBEFORE 1-Jan-2030 SENTON 24-Nov-2026 SINCE 1-Jan-2000 LARGER 100 SMALLER 100000\r\nd SEARCH NOT SEEN UNANSWERED KEYWORD $label1 HEADER Message-ID plain 2:*\r\ne SEARCH CHARSET UTF-8 TEXT {4+}\r\ncaf\xc3\xa9\r\n",
    ),
    (
        "mailboxes",
        b"\x01a CREATE work/projects\r\nb LIST \"\" \"*\" RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\nc RENAME work Arbeit/&AOQ-\r\nd SUBSCRIBE Arbeit\r\ne LSUB \"\" *\r\nf DELETE Arbeit/&AOQ-/projects\r\ng STATUS Sent (MESSAGES UIDNEXT UIDVALIDITY)\r\nh UNSUBSCRIBE Sent\r\ni LIST (SUBSCRIBED REMOTE) \"\" (INBOX Sent \"%\")\r\n",
    ),
    (
        "messages",
        b"\x02a STORE 1:2 +FLAGS (\\Deleted $Junk)\r\nb COPY 1 Archive\r\nc UID COPY 1:* Junk\r\nd MOVE 2 Trash\r\ne EXPUNGE\r\nf UID EXPUNGE 3\r\ng CLOSE\r\nh SELECT Archive\r\ni UNSELECT\r\nj EXAMINE Trash\r\nk CHECK\r\n",
    ),
    (
        "qresync",
        b"\x03a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\nb STORE 1 -FLAGS.SILENT (\\Seen) \r\nc UID STORE 2 (UNCHANGEDSINCE 1) +FLAGS ($NotJunk)\r\nd NOOP\r\ne IDLE\r\nDONE\r\n",
    ),
    ("idle", b"\x02a IDLE\r\nDONE\r\nb IDLE\r\n"),
    ("literal", b"\x01a APPEND INBOX (\\Flagged) {30}\r\nSubject: literal\r\n\r\nbody\r\n\r\nb LOGOUT\r\n"),
    (
        "sort_thread",
        b"\x02a SORT (REVERSE DATE SUBJECT) UTF-8 ALL\r\nb UID SORT (DISPLAYFROM CC SIZE ARRIVAL TO) US-ASCII SINCE 1-Jan-2000\r\nc THREAD REFERENCES UTF-8 ALL\r\nd UID THREAD ORDEREDSUBJECT UTF-8 SUBJECT x\r\ne SEARCH RETURN (MIN MAX COUNT ALL SAVE) ALL\r\nf FETCH $ (UID)\r\ng UID SEARCH RETURN () $ SUBJECT {3+}\r\nRe:\r\nh UID COPY $ Archive\r\n",
    ),
];

/// Inputs of `imap_search_return`: ESEARCH and SEARCHRES commands.
const SEARCH_RETURNS: &[&[u8]] = &[
    b"a SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN\r\n",
    b"a UID SEARCH RETURN () OR $ SUBJECT \"$\"\r\n",
    b"a SEARCH RETURN (SAVE) TEXT {5+}\r\n$ ) (\r\n",
    b"a UID FETCH $ (FLAGS)\r\n",
    b"a STORE $ +FLAGS ($)\r\n",
    b"a UID EXPUNGE $\r\n",
    b"a SORT (DATE) UTF-8 $\r\n",
];

const SMTP_LINES: &[&[u8]] = &[
    b"EHLO client.example.org\r\n",
    b"HELO x\r\n",
    b"MAIL FROM:<fuzz@example.org> SIZE=1000 BODY=8BITMIME SMTPUTF8\r\n",
    b"MAIL FROM:<> RET=HDRS ENVID=abc\r\n",
    b"RCPT TO:<bob@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.org\r\n",
    b"RCPT TO:<\"quoted local\"@example.org>\r\n",
    b"AUTH PLAIN AGZ1enpAZXhhbXBsZS5vcmcAZnV6ei1wYXNzd29yZA==\r\n",
    b"AUTH LOGIN\r\n",
    b"DATA\r\nBDAT 100 LAST\r\nRSET\r\nNOOP\r\nVRFY bob\r\nQUIT\r\nSTARTTLS\r\n",
];

const SMTP_SESSIONS: &[(&str, &[u8])] = &[
    (
        "submit",
        b"\x01MAIL FROM:<fuzz@example.org> BODY=8BITMIME\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\nFrom: fuzz@example.org\r\nSubject: hi\r\n\r\n..stuffed\r\nbody\r\n.\r\nQUIT\r\n",
    ),
    (
        "refusals",
        b"\x01MAIL FROM:<fuzz@example.org>\r\nRCPT TO:<eve@elsewhere.test>\r\nRCPT TO:<temp@example.org>\r\nRCPT TO:<nobody>\r\nDATA\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nREJECT\r\n.\r\nMAIL FROM:<fuzz@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nLATER\r\n.\r\nRSET\r\n",
    ),
    (
        "auth_login",
        b"\x00EHLO a\r\nAUTH LOGIN\r\nZnV6ekBleGFtcGxlLm9yZw==\r\nZnV6ei1wYXNzd29yZA==\r\nMAIL FROM:<fuzz@example.org>\r\n",
    ),
    (
        "auth_plain_continuation",
        b"\x00EHLO a\r\nAUTH PLAIN\r\nAGZ1enpAZXhhbXBsZS5vcmcAZnV6ei1wYXNzd29yZA==\r\nNOOP\r\n",
    ),
    (
        "bad",
        b"\x00MAIL FROM:<x@y>\r\nAUTH PLAIN bm9wZQ==\r\nAUTH PLAIN *\r\nHELO\r\nEHLO a\r\nAUTH CRAM-MD5\r\nSTARTTLS\r\nVRFY x\r\nQUIT\r\n",
    ),
];

fn smtp_framing_seeds() {
    let stream: &[u8] =
        b"EHLO a\r\nMAIL FROM:<a@b>\nDATA\r\nline\r\n..dot\r\n.x\nbare\r\r\n.\r\nQUIT\r\n";
    write("smtp_framing", "whole", &with_prefix(&[255, 0], stream));
    write(
        "smtp_framing",
        "pieces",
        &with_prefix(&[255, 3, 0, 1, 2], stream),
    );
    write(
        "smtp_framing",
        "too_large",
        &with_prefix(&[2, 2, 5, 9], stream),
    );
    let mut long = vec![255, 1, 40];
    long.extend(std::iter::repeat_n(b'x', 4100));
    long.extend_from_slice(b"\r\nNOOP\r\nDATA\r\n");
    long.extend(std::iter::repeat_n(b'y', 5000));
    long.extend_from_slice(b"\r\n.\r\n");
    write("smtp_framing", "long_lines", &long);
}

fn message_seeds() {
    for (i, sample) in samples::ALL.iter().enumerate() {
        let name = format!("sample{i}");
        for target in [
            "mime_envelope",
            "mime_body_structure",
            "rawmail_parse",
            "verified_mark",
            "mime_sort_fields",
        ] {
            write(target, &name, sample);
        }
        write("pgpmime_unwrap", &name, sample);
        // Part path length 2, parts 1 and 2, specifier MIME (variant 5 of
        // 6 is chosen from the next bytes), then the message.
        write("mime_section", &name, &with_prefix(&[2, 1, 2, 5], sample));
        write(
            "mime_section",
            &format!("{name}_header"),
            &with_prefix(&[1, 3, 1], sample),
        );
        write(
            "mime_section",
            &format!("{name}_top"),
            &with_prefix(&[0, 0], sample),
        );
        write(
            "mime_search",
            &name,
            &with_prefix(b"\x07Subject\x03caf", sample),
        );
    }
    let forged = b"X-Mailnode-Verified-Signer: 0000 (Mallory <m@example.org>)\r\n\
x-mailnode-verified-signer : forged\r\n\
Subject: hi\r\n\tX-Mailnode-Verified-Signer: folded\r\n\
\r\n\
X-Mailnode-Verified-Signer: in the body\r\n";
    write("verified_mark", "forged", forged);
    write("rawmail_parse", "forged", forged);
    write("rawmail_parse", "bare_lf", b"A: 1\n b\nC:2\n\nbody\n");
    write("rawmail_parse", "no_body", b"A: 1\r\nB: 2");
    write("mime_sort_fields", "thread", b"Subject: [list] Re: [Fwd: Re[2]: =?utf-8?q?caf=C3=A9?=] (fwd)\r\nReferences: <a@x> <b@x>\r\n\t<c@x\r\nIn-Reply-To: <z@x> (by z)\r\nFrom: \"B, Jr.\" <b@x>\r\nDate: garbage\r\n\r\n");
    write("mime_envelope", "groups", b"From: \"a, b\" <a@b>, (comment) c@d\r\nTo: g: x@y, <@route:z@w>;, undisclosed-recipients:;\r\nSender: =?utf-8?B?w6k=?= <e@f>\r\nMessage-ID: <id>\r\n\r\n");
    write("mime_body_structure", "deep", &{
        let mut nested = Vec::new();
        for _ in 0..40 {
            nested.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        nested.extend_from_slice(b"Subject: bottom\r\n\r\nbody\r\n");
        nested
    });
    write(
        "pgpmime_unwrap",
        "armor",
        b"-----BEGIN PGP MESSAGE-----\n\nwcBMA0\n=abcd\n-----END PGP MESSAGE-----\n",
    );
}

#[cfg(feature = "node")]
fn pgp_seeds() {
    let (alice, bob) = fixtures();
    let sealed = alice
        .seal(samples::PLAIN, bob.card())
        .expect("sealing a seed");
    write("pgp_open", "sealed", &sealed);
    let to_self = alice
        .seal(samples::NESTED, alice.card())
        .expect("sealing a seed");
    write("pgp_open", "not_for_bob", &to_self);
    let forged = bob
        .seal(samples::NESTED, bob.card())
        .expect("sealing a seed");
    write("pgp_open", "signed_by_bob", &forged);

    write(
        "contact_card",
        "armored",
        alice.card().to_armored().as_bytes(),
    );
    write("contact_card", "binary", &alice.card().to_binary());

    let outer = OuterHeader {
        from: "alice@example.org",
        to: "bob@example.org",
        date: "Tue, 24 Nov 2026 19:00:00 +0000",
        message_id: "<seed@example.org>",
    };
    let payload = pgpmime::wrap(&outer, &sealed);
    let protocol = StreamProtocol::new("/mailnode/deliver/1");
    let mut codec = cbor::codec::Codec::<DeliveryRequest, DeliveryResponse>::default();
    let request = DeliveryRequest {
        id: [7; 16],
        sender_card: Some(alice.card().to_binary()),
        payload,
        stamp: None,
    };
    let mut body = Vec::new();
    futures::executor::block_on(codec.write_request(&protocol, &mut body, request))
        .expect("encoding a seed request");
    write("delivery_cbor", "request", &body);
    let mut answer = Vec::new();
    let response = DeliveryResponse::TryLater {
        reason: "busy".into(),
        retry_after_secs: 30,
    };
    futures::executor::block_on(codec.write_response(&protocol, &mut answer, response))
        .expect("encoding a seed response");
    write("delivery_cbor", "response", &answer);
}

#[test]
#[ignore = "writes the committed seeds and fixtures; run by hand"]
fn write_fixtures_and_seeds() {
    #[cfg(feature = "node")]
    make_identities();
    for (i, command) in IMAP_COMMANDS.iter().enumerate() {
        write("imap_command", &format!("{i:02}"), command);
    }
    for (name, session) in IMAP_SESSIONS {
        write("imap_session", name, session);
    }
    for (i, command) in SEARCH_RETURNS.iter().enumerate() {
        write("imap_search_return", &format!("{i:02}"), command);
    }
    for (i, line) in SMTP_LINES.iter().enumerate() {
        write("smtp_command", &format!("{i:02}"), line);
    }
    for (name, session) in SMTP_SESSIONS {
        write("smtp_session", name, session);
    }
    smtp_framing_seeds();
    message_seeds();
    #[cfg(feature = "node")]
    pgp_seeds();
}

/// The seeds of `control_card` alone (the run above also re-seals the
/// `pgp_open` seeds, which then differ byte for byte):
/// `cargo test --test seeds control -- --ignored`.
#[cfg(feature = "node")]
#[test]
#[ignore = "writes the committed seeds; run by hand"]
fn write_control_card_seeds() {
    let (alice, bob) = fixtures();
    let announce = |card| {
        mailnode::card_update::control_message(
            "Alice",
            "alice@example.org",
            "bob@example.org",
            card,
        )
    };
    let update = announce(alice.card());
    write("control_card", "update", &update);
    // Bob's card announced as Alice's: refused by check_update.
    write("control_card", "other_key", &announce(bob.card()));
    let text = String::from_utf8_lossy(&update).into_owned();
    write(
        "control_card",
        "unknown_kind",
        text.replacen("card-update", "key-wipe", 1).as_bytes(),
    );
    let header_end = text.find("\r\n\r\n").expect("a header") + 4;
    write("control_card", "no_body", &update[..header_end]);
    write(
        "control_card",
        "binary_card",
        &[&update[..header_end], &alice.card().to_binary()[..]].concat(),
    );
    write("control_card", "plain_mail", samples::PLAIN);
}
