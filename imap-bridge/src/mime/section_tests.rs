//! Tests of `BODY[section]` extraction, on the numbering example of
//! RFC 3501 §6.4.5 and on broken input.

use super::*;

fn get(message: &[u8], part: &[u32], kind: SectionKind) -> Option<String> {
    section(message, part, &kind).map(|b| String::from_utf8(b).expect("utf-8 section"))
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

const SIMPLE: &[u8] = b"Subject: hello\r\n\
\x20world\r\n\
From: a@x\r\n\
X-Folded: one\r\n\
\ttwo\r\n\
subject: second\r\n\
\r\n\
Body line\r\n";

#[test]
fn whole_message_sections() {
    assert_eq!(
        section(SIMPLE, &[], &SectionKind::Full),
        Some(SIMPLE.to_vec())
    );
    assert_eq!(
        get(SIMPLE, &[], SectionKind::Header).as_deref(),
        Some(
            "Subject: hello\r\n world\r\nFrom: a@x\r\nX-Folded: one\r\n\ttwo\r\nsubject: second\r\n\r\n"
        )
    );
    assert_eq!(
        get(SIMPLE, &[], SectionKind::Text).as_deref(),
        Some("Body line\r\n")
    );
    assert_eq!(get(SIMPLE, &[], SectionKind::Mime), None);
}

#[test]
fn header_fields_keep_folding_order_and_case() {
    assert_eq!(
        get(
            SIMPLE,
            &[],
            SectionKind::HeaderFields(names(&["SUBJECT", "x-folded"]))
        )
        .as_deref(),
        Some("Subject: hello\r\n world\r\nX-Folded: one\r\n\ttwo\r\nsubject: second\r\n\r\n")
    );
    assert_eq!(
        get(
            SIMPLE,
            &[],
            SectionKind::HeaderFieldsNot(names(&["subject", "X-FOLDED"]))
        )
        .as_deref(),
        Some("From: a@x\r\n\r\n")
    );
    assert_eq!(
        get(SIMPLE, &[], SectionKind::HeaderFields(names(&["Nope"]))).as_deref(),
        Some("\r\n")
    );
}

#[test]
fn header_fields_of_unterminated_header() {
    assert_eq!(
        get(
            b"A: 1\r\nB: 2",
            &[],
            SectionKind::HeaderFields(names(&["b"]))
        )
        .as_deref(),
        Some("B: 2\r\n\r\n")
    );
}

#[test]
fn single_part_message_has_part_one() {
    assert_eq!(
        get(SIMPLE, &[1], SectionKind::Full).as_deref(),
        Some("Body line\r\n")
    );
    assert!(get(SIMPLE, &[1], SectionKind::Mime).is_some());
    assert_eq!(get(SIMPLE, &[2], SectionKind::Full), None);
    assert_eq!(get(SIMPLE, &[0], SectionKind::Full), None);
    assert_eq!(get(SIMPLE, &[1, 1], SectionKind::Full), None);
    assert_eq!(get(SIMPLE, &[1], SectionKind::Header), None);
}

/// The structure of the RFC 3501 §6.4.5 example (shortened: parts 2 and
/// 3.2 left out).
const RFC_EXAMPLE: &[u8] = b"Subject: top\r\n\
Content-Type: MULTIPART/MIXED; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: TEXT/PLAIN\r\n\
\r\n\
part 1\r\n\
--b1\r\n\
Content-Type: MESSAGE/RFC822\r\n\
\r\n\
Subject: part 3\r\n\
Content-Type: multipart/mixed; boundary=b2\r\n\
\r\n\
--b2\r\n\
\r\n\
part 3.1\r\n\
--b2--\r\n\
--b1\r\n\
Content-Type: multipart/mixed; boundary=b3\r\n\
\r\n\
--b3\r\n\
Content-Type: IMAGE/GIF\r\n\
\r\n\
GIF89a\r\n\
--b3\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: part 4.2\r\n\
Content-Type: multipart/mixed; boundary=b4\r\n\
\r\n\
--b4\r\n\
\r\n\
part 4.2.1\r\n\
--b4\r\n\
Content-Type: multipart/alternative; boundary=b5\r\n\
\r\n\
--b5\r\n\
\r\n\
part 4.2.2.1\r\n\
--b5\r\n\
Content-Type: text/richtext\r\n\
\r\n\
part 4.2.2.2\r\n\
--b5--\r\n\
--b4--\r\n\
--b3--\r\n\
--b1--\r\n";

#[test]
fn rfc3501_part_numbering() {
    let m = RFC_EXAMPLE;
    assert_eq!(get(m, &[1], SectionKind::Full).as_deref(), Some("part 1"));
    assert_eq!(
        get(m, &[1], SectionKind::Mime).as_deref(),
        Some("Content-Type: TEXT/PLAIN\r\n\r\n")
    );
    assert_eq!(
        get(m, &[2, 0], SectionKind::Full),
        None,
        "part numbers start at 1"
    );
    assert_eq!(
        get(m, &[2], SectionKind::Header).as_deref(),
        Some("Subject: part 3\r\nContent-Type: multipart/mixed; boundary=b2\r\n\r\n")
    );
    assert_eq!(
        get(m, &[2], SectionKind::HeaderFields(names(&["subject"]))).as_deref(),
        Some("Subject: part 3\r\n\r\n")
    );
    assert_eq!(
        get(m, &[2], SectionKind::Text).as_deref(),
        Some("--b2\r\n\r\npart 3.1\r\n--b2--")
    );
    assert_eq!(
        get(m, &[2, 1], SectionKind::Full).as_deref(),
        Some("part 3.1")
    );
    assert_eq!(
        get(m, &[3, 1], SectionKind::Full).as_deref(),
        Some("GIF89a")
    );
    assert_eq!(
        get(m, &[3, 1], SectionKind::Mime).as_deref(),
        Some("Content-Type: IMAGE/GIF\r\n\r\n")
    );
    assert_eq!(get(m, &[3, 1], SectionKind::Header), None, "not a message");
    assert_eq!(
        get(m, &[3, 2], SectionKind::HeaderFields(names(&["Subject"]))).as_deref(),
        Some("Subject: part 4.2\r\n\r\n")
    );
    assert_eq!(
        get(m, &[3, 2, 1], SectionKind::Full).as_deref(),
        Some("part 4.2.1")
    );
    assert_eq!(
        get(m, &[3, 2, 2, 1], SectionKind::Full).as_deref(),
        Some("part 4.2.2.1")
    );
    assert_eq!(
        get(m, &[3, 2, 2, 2], SectionKind::Full).as_deref(),
        Some("part 4.2.2.2")
    );
    assert_eq!(get(m, &[3, 2, 2, 3], SectionKind::Full), None);
    assert_eq!(get(m, &[4], SectionKind::Full), None);
    assert_eq!(get(m, &[3, 2, 2, 2, 1], SectionKind::Full), None);
    assert_eq!(get(m, &[u32::MAX], SectionKind::Full), None);
}

#[test]
fn encapsulated_single_part_message() {
    let m = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner text";
    assert_eq!(
        get(m, &[1], SectionKind::Full).as_deref(),
        Some("Subject: in\r\n\r\ninner text")
    );
    assert_eq!(
        get(m, &[1, 1], SectionKind::Full).as_deref(),
        Some("inner text")
    );
    assert_eq!(
        get(m, &[1], SectionKind::Text).as_deref(),
        Some("inner text")
    );
}

#[test]
fn message_without_headers() {
    let m = b"no header at all\r\n";
    assert_eq!(get(m, &[], SectionKind::Header).as_deref(), Some(""));
    assert_eq!(
        get(m, &[], SectionKind::Text).as_deref(),
        Some("no header at all\r\n")
    );
    assert_eq!(
        get(m, &[1], SectionKind::Full).as_deref(),
        Some("no header at all\r\n")
    );
    assert_eq!(
        get(m, &[], SectionKind::HeaderFields(names(&["subject"]))).as_deref(),
        Some("\r\n")
    );
}

#[test]
fn sections_are_byte_exact_with_eight_bit_and_lf() {
    let m = b"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: application/octet-stream\n\n\x00\xff\r\x80\n--x--\n";
    assert_eq!(
        section(m, &[1], &SectionKind::Full),
        Some(b"\x00\xff\r\x80".to_vec())
    );
}

const ENCODED: &[u8] = b"Subject: parts\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
caf=C3=A9 =\r\n\
au lait\r\n\
--b\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAEC/w==\r\n\
--b\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: x-uuencode\r\n\
\r\n\
begin 644 x\r\n\
--b\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
!!! not base64 !!!\r\n\
--b\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
\r\n\
plain inner body\r\n\
--b--\r\n";

#[test]
fn binary_undoes_transfer_encodings() {
    assert_eq!(binary(ENCODED, &[]), Binary::Data(ENCODED.to_vec()));
    assert_eq!(
        binary(ENCODED, &[1]),
        Binary::Data("café au lait".as_bytes().to_vec())
    );
    assert_eq!(binary(ENCODED, &[2]), Binary::Data(vec![0, 1, 2, 0xff]));
    assert_eq!(
        binary(ENCODED, &[3]),
        Binary::UnknownEncoding("x-uuencode".into())
    );
    assert_eq!(binary(ENCODED, &[4]), Binary::Broken);
    // An encapsulated message comes as it is; its own part 1 is its body.
    assert_eq!(
        binary(ENCODED, &[5]),
        Binary::Data(b"Subject: inner\r\n\r\nplain inner body".to_vec())
    );
    assert_eq!(
        binary(ENCODED, &[5, 1]),
        Binary::Data(b"plain inner body".to_vec())
    );
    assert_eq!(binary(ENCODED, &[6]), Binary::NoPart);
    assert_eq!(binary(ENCODED, &[2, 1]), Binary::NoPart);
    // A single-part message: part 1 is its body, undecoded when it
    // declares no encoding.
    assert_eq!(
        binary(SIMPLE, &[1]),
        Binary::Data(b"Body line\r\n".to_vec())
    );
}
