//! Messages that the session harnesses put in the mailbox before the fuzzed
//! client connects, so that FETCH, SEARCH and the section code have
//! structure to walk (nested multiparts, an encapsulated message, encoded
//! words, quoted-printable and base64).

/// A plain single-part message with encoded words and a folded header.
pub const PLAIN: &[u8] = b"From: =?UTF-8?Q?Ren=C3=A9?= <rene@example.org>\r\n\
To: fuzz@example.org, \"Group\": a@example.org, b@example.org;\r\n\
Cc: <c@example.org>\r\n\
Subject: =?ISO-8859-1?B?SGVsbG8gV29ybGQ=?=\r\n \
continued\r\n\
Date: Tue, 24 Nov 2026 19:00:00 +0100\r\n\
Message-ID: <plain@example.org>\r\n\
In-Reply-To: <earlier@example.org>\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Caf=C3=A9 au lait=\r\n\
, soft break.\r\n";

/// A multipart/mixed message holding an alternative, an attachment and a
/// forwarded message/rfc822 that is itself multipart.
pub const NESTED: &[u8] = b"From: alice@example.org\r\n\
To: fuzz@example.org\r\n\
Subject: nested\r\n\
Date: 1 Jan 2026 00:00:00 GMT\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
plain text\r\n\
--inner\r\n\
Content-Type: text/html; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
<p>caf=E9</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"a.pdf\"\r\n\
Content-Disposition: attachment; filename=\"a.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Language: en, de\r\n\
Content-Location: http://example.org/a.pdf\r\n\
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: bob@example.org\r\n\
Subject: inner\r\n\
Content-Type: multipart/digest; boundary=d\r\n\
\r\n\
--d\r\n\
\r\n\
Subject: digest entry\r\n\
\r\n\
digest body\r\n\
--d--\r\n\
--outer--\r\n\
epilogue\r\n";

/// An RFC 3156 PGP/MIME message as the node exchanges them.
pub const PGP_MIME: &[u8] = b"From: alice@example.org\r\n\
To: bob@example.org\r\n\
Subject: ...\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n \
boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: application/pgp-encrypted\r\n\
\r\n\
Version: 1\r\n\
\r\n\
--b\r\n\
Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
\r\n\
-----BEGIN PGP MESSAGE-----\r\n\
\r\n\
wcBMA0\r\n\
=abcd\r\n\
-----END PGP MESSAGE-----\r\n\
\r\n\
--b--\r\n";

/// Every sample, for seeding stores and corpora.
pub const ALL: [&[u8]; 3] = [PLAIN, NESTED, PGP_MIME];
