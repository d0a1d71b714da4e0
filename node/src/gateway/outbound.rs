//! Outbound mail through the gateway: recipients without a mailnode card.
//!
//! At submission each such recipient gets its own outbox entry whose
//! `peer_id` is [`GATEWAY_PEER`] and whose payload is the message as the
//! user wrote it plus an Autocrypt header (Autocrypt Level 1 §2.1) carrying
//! the user's public key. The delivery service hands those entries to
//! [`GatewaySender::send`], with the same rules as libp2p deliveries: the
//! entry leaves the outbox only after the provider's `250`; a 4xx or a
//! connection failure retries with backoff; a 5xx bounces with the
//! provider's own text.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lettre::address::Envelope;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::config::GatewayConfig;
use super::secret::Password;

/// The `peer_id` of outbox entries that leave through the gateway. Not a
/// valid PeerId, so such an entry can never be sent over libp2p.
pub const GATEWAY_PEER: &str = "gateway";

/// The Sent-copy header that says how a gateway copy left.
pub const SENT_MARK: &str = "X-Mailnode-Gateway";

/// What a gateway delivery attempt came to.
#[derive(Debug)]
pub enum SendOutcome {
    /// The provider accepted it (`250`).
    Accepted,
    /// A permanent refusal (5xx), with the provider's text.
    Refused(String),
    /// Try again later (4xx, connection or TLS failure).
    Retry(String),
}

/// The provider's SMTP submission server, logged in.
pub struct GatewaySender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: String,
}

impl std::fmt::Debug for GatewaySender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewaySender").finish_non_exhaustive()
    }
}

impl GatewaySender {
    /// A sender for `config`; `from` is the envelope sender (the user's
    /// address).
    pub fn new(
        config: &GatewayConfig,
        password: &Password,
        from: &str,
    ) -> anyhow::Result<Arc<GatewaySender>> {
        Ok(Arc::new(GatewaySender {
            transport: super::smtp::transport(config, password)?,
            from: from.to_string(),
        }))
    }

    /// Submits `message` for `recipient`.
    pub async fn send(&self, recipient: &str, message: &[u8]) -> SendOutcome {
        let parse = |a: &str| a.parse::<Address>();
        let envelope = match (parse(&self.from), parse(recipient)) {
            (Ok(from), Ok(to)) => match Envelope::new(Some(from), vec![to]) {
                Ok(envelope) => envelope,
                Err(err) => return SendOutcome::Refused(format!("bad envelope: {err}")),
            },
            _ => {
                return SendOutcome::Refused(format!(
                    "<{recipient}> or <{}> is not an address SMTP can carry",
                    self.from
                ));
            }
        };
        // lettre ends DATA with `\r\n.\r\n` whatever the message ends
        // with, so a message that already ends in CRLF would arrive with an
        // empty line added (RFC 5321 §4.1.1.4: that first CRLF is the end of
        // the last line). Hand it the message without its final CRLF.
        let message = message.strip_suffix(b"\r\n").unwrap_or(message);
        match self.transport.send_raw(&envelope, message).await {
            Ok(_) => SendOutcome::Accepted,
            Err(err) if err.is_permanent() => SendOutcome::Refused(format!(
                "the provider refused it: {}",
                super::smtp::describe(&err)
            )),
            Err(err) => {
                SendOutcome::Retry(format!("the provider: {}", super::smtp::describe(&err)))
            }
        }
    }
}

/// The Autocrypt header field (Level 1 §2.1) for `address` and its public
/// key (`keydata`, binary OpenPGP), folded at 76 columns, with CRLF.
pub fn autocrypt_header(address: &str, keydata: &[u8]) -> String {
    let encoded = B64.encode(keydata);
    let mut out = format!("Autocrypt: addr={address}; prefer-encrypt=mutual; keydata=");
    for chunk in encoded.as_bytes().chunks(72) {
        out.push_str("\r\n ");
        // Base64 is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    out.push_str("\r\n");
    out
}

/// The gateway copy for a recipient whose key is known (an Autocrypt
/// header from them, or an imported key): `delivery` signed with our key,
/// encrypted to theirs and ours, framed as RFC 3156 PGP/MIME, with our
/// Autocrypt header outside so their client learns our key too.
///
/// The outer Message-ID is the original one: the recipient's client
/// threads by it, and a reply's In-Reply-To must match our Sent copy.
pub fn encrypted_copy(
    identity: &keys::Identity,
    cert: &sequoia_openpgp::Cert,
    recipient: &str,
    delivery: &[u8],
    date: &str,
    autocrypt: &str,
) -> Result<Vec<u8>, keys::KeyError> {
    use mailparse::MailHeaderMap;
    let armored = identity.seal_to_cert(delivery, cert)?;
    let message_id = mailparse::parse_headers(delivery)
        .ok()
        .and_then(|(headers, _)| headers.get_first_value("Message-ID"))
        .map(|id| crate::bounce::one_line(id.trim()))
        .filter(|id| id.starts_with('<') && id.ends_with('>'))
        .unwrap_or_else(|| {
            format!(
                "<{}@mailnode.invalid>",
                hex::encode(rand::random::<[u8; 16]>())
            )
        });
    let outer = crate::pgpmime::OuterHeader {
        from: identity.address(),
        to: recipient,
        date,
        message_id: &message_id,
    };
    Ok(with_fields(
        &[autocrypt.to_string()],
        &crate::pgpmime::wrap(&outer, &armored),
    ))
}

/// The Sent-copy mark for the gateway recipients: `encrypted` or
/// `plaintext` when all went the same way, else who got what.
pub fn sent_mark(encrypted: &[String], plaintext: &[String]) -> String {
    let list = |rcpts: &[String]| {
        rcpts
            .iter()
            .map(|r| format!("<{r}>"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let value = match (encrypted.is_empty(), plaintext.is_empty()) {
        (false, true) => "encrypted".to_string(),
        (true, _) => "plaintext".to_string(),
        (false, false) => format!(
            "mixed; encrypted={}; plaintext={}",
            list(encrypted),
            list(plaintext)
        ),
    };
    format!("{SENT_MARK}: {value}\r\n")
}

/// Puts `fields` (each ending in CRLF) in front of `message`.
pub fn with_fields(fields: &[String], message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + fields.iter().map(String::len).sum::<usize>());
    for field in fields {
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_marks() {
        let a = vec!["a@x".to_string()];
        let b = vec!["b@y".to_string()];
        assert_eq!(sent_mark(&a, &[]), "X-Mailnode-Gateway: encrypted\r\n");
        assert_eq!(sent_mark(&[], &b), "X-Mailnode-Gateway: plaintext\r\n");
        assert_eq!(
            sent_mark(&a, &b),
            "X-Mailnode-Gateway: mixed; encrypted=<a@x>; plaintext=<b@y>\r\n"
        );
    }

    #[test]
    fn autocrypt_header_is_folded_and_parses() {
        let key = vec![0x99u8; 300];
        let header = autocrypt_header("alice@example.org", &key);
        assert!(header.starts_with(
            "Autocrypt: addr=alice@example.org; prefer-encrypt=mutual; keydata=\r\n "
        ));
        assert!(header.lines().all(|l| l.len() <= 78), "{header}");
        let message = with_fields(&[header], b"Subject: x\r\n\r\nbody\r\n");
        let parsed = mailparse::parse_mail(&message).expect("parses");
        use mailparse::MailHeaderMap;
        let value = parsed.headers.get_first_value("Autocrypt").expect("header");
        let keydata = value.split("keydata=").nth(1).expect("keydata");
        let keydata: String = keydata.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(B64.decode(keydata).expect("base64"), key);
    }
}
