//! Tests of the SEARCH helpers on raw messages.

use super::*;

const ENCODED: &[u8] = b"From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <jm@example.de>\r\n\
Subject: =?UTF-8?B?R3LDvMOfZSBhdXM=?=\r\n =?UTF-8?Q?_M=C3=BCnchen?=\r\n\
To: team@example.de\r\n\
Date: Tue, 2 Jan 2024 12:30:00 +0100\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Sch=F6ne Gr=FC=DFe aus dem B=FCro\r\n";

#[test]
fn header_search_decodes_rfc2047() {
    assert!(header_contains(ENCODED, "subject", "grüße aus münchen"));
    assert!(header_contains(ENCODED, "From", "jörg müller"));
    assert!(header_contains(ENCODED, "from", "JM@EXAMPLE"));
    assert!(!header_contains(ENCODED, "to", "jörg"));
    assert!(header_contains(ENCODED, "to", ""));
    assert!(!header_contains(ENCODED, "cc", ""));
}

#[test]
fn body_search_decodes_transfer_encoding_and_charset() {
    assert!(body_contains(ENCODED, "schöne grüße"));
    assert!(body_contains(ENCODED, "BÜRO"));
    assert!(!body_contains(ENCODED, "münchen"));
    assert!(body_contains(ENCODED, ""));
}

#[test]
fn text_search_covers_header_and_body() {
    assert!(text_contains(ENCODED, "münchen"));
    assert!(text_contains(ENCODED, "büro"));
    assert!(text_contains(ENCODED, "team@"));
    assert!(!text_contains(ENCODED, "nowhere"));
}

#[test]
fn body_search_in_multipart_and_base64() {
    let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
SGVsbG8gV8O2cmxk\r\n\
--b\r\n\
Content-Type: application/octet-stream\r\n\
\r\n\
secret binary\r\n\
--b\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: attached note\r\n\
\r\n\
inner words\r\n\
--b--\r\n";
    assert!(body_contains(m, "hello wörld"));
    assert!(
        !body_contains(m, "secret"),
        "non-text parts are not searched"
    );
    assert!(body_contains(m, "inner words"));
    assert!(
        body_contains(m, "attached note"),
        "encapsulated headers are body text"
    );
    assert!(!header_contains(m, "subject", "attached"));
}

#[test]
fn undeclared_utf8_and_broken_input() {
    assert!(body_contains(b"Subject: x\r\n\r\nna\xc3\xafve", "naïve"));
    assert!(body_contains(b"no header\r\n", "HEADER"));
    assert!(!body_contains(b"\xff\xfe\x00", "x"));
    let broken =
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!";
    assert!(body_contains(broken, "not base64"));
}

#[test]
fn sent_dates() {
    assert_eq!(sent_date(ENCODED), Some(1_704_195_000));
    assert_eq!(
        sent_date(b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n\r\n"),
        Some(837_595_405)
    );
    assert_eq!(
        sent_date(b"Date: 17 Jul 96 02:23:25 PDT\r\n\r\n"),
        Some(837_595_405)
    );
    assert_eq!(sent_date(b"Date: garbage\r\n\r\n"), None);

    assert_eq!(sent_date(b"Subject: no date\r\n\r\n"), None);
    assert_eq!(sent_date(b""), None);
}
