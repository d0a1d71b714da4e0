//! RFC 3156 PGP/MIME framing of the messages nodes exchange.
//!
//! What travels between nodes is an ordinary RFC 5322 message of type
//! `multipart/encrypted; protocol="application/pgp-encrypted"` (RFC 3156 §4).
//! Its second part is the ASCII-armored OpenPGP message, which decrypts to
//! the complete original message (all of its headers and its body, the
//! "protected headers" of Autocrypt / Memory Hole). The outer header carries
//! only what routing needs and hides the subject (`Subject: ...`).
//!
//! This module frames and unframes; it does no cryptography.

use rand::RngCore;

/// The outer header values of a wrapped message.
#[derive(Debug, Clone)]
pub struct OuterHeader<'a> {
    /// `From`: the sender's address.
    pub from: &'a str,
    /// `To`: the one recipient this copy is encrypted for.
    pub to: &'a str,
    /// `Date` of the original message.
    pub date: &'a str,
    /// An opaque `Message-ID` for the wrapper (with angle brackets); never
    /// the original's, which travels encrypted.
    pub message_id: &'a str,
}

/// Why a payload is not a PGP/MIME message we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnwrapError {
    /// The MIME structure could not be parsed.
    #[error("the message is not valid MIME: {0}")]
    Mime(String),
    /// It parsed, but it is not RFC 3156 multipart/encrypted.
    #[error("the message is not PGP/MIME encrypted (RFC 3156): {0}")]
    NotEncrypted(String),
}

/// Wraps an armored OpenPGP message in a `multipart/encrypted` message.
pub fn wrap(outer: &OuterHeader<'_>, armored: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let boundary = format!("mailnode-{}", hex::encode(nonce));
    let mut out = Vec::with_capacity(armored.len() + 768);
    let header = format!(
        "From: {from}\r\n\
         To: {to}\r\n\
         Subject: ...\r\n\
         Date: {date}\r\n\
         Message-ID: {message_id}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n \
         boundary=\"{boundary}\"\r\n\
         \r\n\
         This is an OpenPGP/MIME encrypted message (RFC 3156).\r\n\
         --{boundary}\r\n\
         Content-Type: application/pgp-encrypted\r\n\
         Content-Description: PGP/MIME version identification\r\n\
         \r\n\
         Version: 1\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
         Content-Description: OpenPGP encrypted message\r\n\
         Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\
         \r\n",
        from = outer.from,
        to = outer.to,
        date = outer.date,
        message_id = outer.message_id,
    );
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(armored);
    if !armored.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// Extracts the OpenPGP message from a `multipart/encrypted` message.
pub fn unwrap(payload: &[u8]) -> Result<Vec<u8>, UnwrapError> {
    let parsed = mailparse::parse_mail(payload).map_err(|e| UnwrapError::Mime(e.to_string()))?;
    let ctype = &parsed.ctype;
    if !ctype.mimetype.eq_ignore_ascii_case("multipart/encrypted") {
        return Err(UnwrapError::NotEncrypted(format!(
            "its type is {}",
            ctype.mimetype
        )));
    }
    let protocol = ctype.params.get("protocol").map(String::as_str);
    if !protocol.is_some_and(|p| p.eq_ignore_ascii_case("application/pgp-encrypted")) {
        return Err(UnwrapError::NotEncrypted(
            "the protocol parameter is not application/pgp-encrypted".into(),
        ));
    }
    if parsed.subparts.len() != 2 {
        return Err(UnwrapError::NotEncrypted(format!(
            "it has {} parts instead of 2",
            parsed.subparts.len()
        )));
    }
    let control = &parsed.subparts[0];
    if !control
        .ctype
        .mimetype
        .eq_ignore_ascii_case("application/pgp-encrypted")
    {
        return Err(UnwrapError::NotEncrypted(
            "the first part is not application/pgp-encrypted".into(),
        ));
    }
    let data = &parsed.subparts[1];
    if !data
        .ctype
        .mimetype
        .eq_ignore_ascii_case("application/octet-stream")
    {
        return Err(UnwrapError::NotEncrypted(
            "the second part is not application/octet-stream".into(),
        ));
    }
    data.get_body_raw()
        .map_err(|e| UnwrapError::Mime(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARMORED: &[u8] =
        b"-----BEGIN PGP MESSAGE-----\n\nwcBMA0\n=abcd\n-----END PGP MESSAGE-----\n";

    #[test]
    fn wrap_then_unwrap_returns_the_armor() {
        let outer = OuterHeader {
            from: "alice@example.org",
            to: "bob@example.org",
            date: "Tue, 24 Nov 2026 19:00:00 +0000",
            message_id: "<1@example.org>",
        };
        let wrapped = wrap(&outer, ARMORED);
        let text = String::from_utf8(wrapped.clone()).unwrap();
        assert!(text.contains("Subject: ...\r\n"));
        assert!(text.contains("protocol=\"application/pgp-encrypted\""));
        let armored = unwrap(&wrapped).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&armored).trim_end(),
            String::from_utf8_lossy(ARMORED).trim_end()
        );
    }

    #[test]
    fn plain_messages_are_refused() {
        let err = unwrap(b"From: a@b\r\nSubject: x\r\n\r\nhello\r\n").unwrap_err();
        assert!(matches!(err, UnwrapError::NotEncrypted(_)), "{err}");
        let err = unwrap(
            b"Content-Type: multipart/encrypted; protocol=\"application/pgp-signature\"; boundary=x\r\n\r\n--x\r\n\r\na\r\n--x--\r\n",
        )
        .unwrap_err();
        assert!(matches!(err, UnwrapError::NotEncrypted(_)), "{err}");
    }
}
