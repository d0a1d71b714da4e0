//! Tests of BODY/BODYSTRUCTURE, checked on the IMAP text imap-codec
//! produces for them.

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Data, Response};

use super::*;

/// The FETCH response for `item`, as sent on the wire.
fn wire_bytes(item: MessageDataItem<'static>) -> Vec<u8> {
    let data = Data::fetch(1, vec![item]).expect("valid fetch data");
    ResponseCodec::default()
        .encode(&Response::Data(data))
        .dump()
}

fn wire(item: MessageDataItem<'static>) -> String {
    String::from_utf8(wire_bytes(item)).expect("utf-8 response")
}

fn bodystructure(message: &[u8]) -> String {
    wire(MessageDataItem::BodyStructure(body_structure(
        message, true,
    )))
}

fn body(message: &[u8]) -> String {
    wire(MessageDataItem::Body(body_structure(message, false)))
}

const SIMPLE: &[u8] = b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\
From: Alice Example <alice@example.org>\r\n\
To: bob@example.net\r\n\
Subject: Hi Bob\r\n\
Message-ID: <1@example.org>\r\n\
\r\n\
Hello Bob\r\n\
bye\r\n";

#[test]
fn simple_message_encodes_as_rfc_text() {
    assert_eq!(
        wire(MessageDataItem::Envelope(crate::mime::envelope(SIMPLE))),
        "* 1 FETCH (ENVELOPE (\"Mon, 1 Jan 2024 10:00:00 +0000\" \"Hi Bob\" \
         ((\"Alice Example\" NIL \"alice\" \"example.org\")) \
         ((\"Alice Example\" NIL \"alice\" \"example.org\")) \
         ((\"Alice Example\" NIL \"alice\" \"example.org\")) \
         ((NIL NIL \"bob\" \"example.net\")) NIL NIL NIL \"<1@example.org>\"))\r\n"
    );
    assert_eq!(
        bodystructure(SIMPLE),
        "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \
         \"7BIT\" 16 2 NIL NIL NIL NIL))\r\n"
    );
    assert_eq!(
        body(SIMPLE),
        "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 16 2))\r\n"
    );
}

const MIXED: &[u8] = b"From: a@x\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
This is a multi-part message in MIME format.\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Gr=C3=BC=C3=9Fe\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Hi</p>\r\n\
--inner--\r\n\
\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"doc.pdf\"\r\n\
Content-Disposition: attachment; filename=\"doc.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-ID: <pdf@x>\r\n\
Content-Description: A document\r\n\
Content-Language: en, de\r\n\
Content-Location: http://x/doc.pdf\r\n\
\r\n\
JVBERi0=\r\n\
--outer--\r\n";

#[test]
fn nested_multipart_with_attachment() {
    assert_eq!(
        bodystructure(MIXED),
        "* 1 FETCH (BODYSTRUCTURE (\
         ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 15 1 NIL NIL NIL NIL)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 9 1 NIL NIL NIL NIL) \
         \"ALTERNATIVE\" (\"BOUNDARY\" \"inner\") NIL NIL NIL)\
         (\"APPLICATION\" \"PDF\" (\"NAME\" \"doc.pdf\") \"<pdf@x>\" \"A document\" \"BASE64\" 8 \
         NIL (\"attachment\" (\"FILENAME\" \"doc.pdf\")) (\"en\" \"de\") \"http://x/doc.pdf\") \
         \"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL))\r\n"
    );
    assert_eq!(
        body(MIXED),
        "* 1 FETCH (BODY (\
         ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 15 1)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 9 1) \"ALTERNATIVE\")\
         (\"APPLICATION\" \"PDF\" (\"NAME\" \"doc.pdf\") \"<pdf@x>\" \"A document\" \"BASE64\" 8) \
         \"MIXED\"))\r\n"
    );
}

const FORWARD: &[u8] = b"Subject: Fwd\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
--b\r\n\
\r\n\
see attached\r\n\
--b\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: Carol <c@y>\r\n\
Subject: inner\r\n\
\r\n\
inner body\r\n\
--b--\r\n";

#[test]
fn encapsulated_message_has_envelope_and_structure() {
    assert_eq!(
        bodystructure(FORWARD),
        "* 1 FETCH (BODYSTRUCTURE (\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 12 1 NIL NIL NIL NIL)\
         (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 47 \
         (NIL \"inner\" ((\"Carol\" NIL \"c\" \"y\")) ((\"Carol\" NIL \"c\" \"y\")) \
         ((\"Carol\" NIL \"c\" \"y\")) NIL NIL NIL NIL NIL) \
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 10 1 NIL NIL NIL NIL) \
         4 NIL NIL NIL NIL) \
         \"MIXED\" (\"BOUNDARY\" \"b\") NIL NIL NIL))\r\n"
    );
}

#[test]
fn broken_boundary_is_shown_as_text() {
    let msg = b"Content-Type: multipart/mixed; boundary=zzz\r\n\r\n--yyy\r\nx\r\n";
    assert_eq!(
        body(msg),
        "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 10 2))\r\n"
    );
}

#[test]
fn message_without_header_or_body() {
    assert_eq!(
        body(b""),
        "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 0 0))\r\n"
    );
    assert_eq!(
        body(b"no header here"),
        "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 14 1))\r\n"
    );
}

#[test]
fn eight_bit_parameters_become_literals() {
    let msg = b"Content-Type: image/png; name=\"\xc3\xa9.png\"\r\n\r\nx";
    assert_eq!(
        wire_bytes(MessageDataItem::Body(body_structure(msg, false))),
        b"* 1 FETCH (BODY (\"IMAGE\" \"PNG\" (\"NAME\" {6}\r\n\xc3\xa9.png) NIL NIL \"7BIT\" 1))\r\n"
    );
}

#[test]
fn line_counting() {
    assert_eq!(lines(b""), 0);
    assert_eq!(lines(b"a"), 1);
    assert_eq!(lines(b"a\r\n"), 1);
    assert_eq!(lines(b"a\r\nb"), 2);
    assert_eq!(lines(b"\n\n"), 2);
}

#[test]
fn hostile_inputs_do_not_panic() {
    let mut deep = Vec::new();
    for i in 0..100 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes(),
        );
    }
    let inputs: Vec<Vec<u8>> = vec![
        deep,
        b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n----\r\n".to_vec(),
        b"Content-Type: message/rfc822\r\n\r\n".to_vec(),
        b"Content-Type: text/plain; charset\r\n\r\n\x00\xff\xfe".to_vec(),
        b"\r\n\r\n\r\n".to_vec(),
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a--\r\n".to_vec(),
        b":\r\n:\r\n\r\n".to_vec(),
        vec![0xff; 64],
    ];
    for input in inputs {
        let _ = body_structure(&input, true);
        let _ = body_structure(&input, false);
    }
}
