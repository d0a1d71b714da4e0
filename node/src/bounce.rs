//! Bounce messages: what the user finds in INBOX when a message cannot be
//! delivered (the recipient's node refused it, or the outbox gave up).
//!
//! A bounce is a delivery status notification shaped after RFC 3464, so
//! mail clients (Thunderbird among them) recognise it as one: a
//! `multipart/report; report-type=delivery-status` (RFC 6522) with
//! 1. a `text/plain` part for the reader (recipient, Message-ID, date,
//!    reason, what happens now);
//! 2. a `message/delivery-status` part: per-message fields
//!    (`Reporting-MTA`, `Arrival-Date`) and one per-recipient block
//!    (`Final-Recipient`, `Action: failed`, `Status`, `Diagnostic-Code`,
//!    `Last-Attempt-Date`), RFC 3464 §2.2–§2.3;
//! 3. a `text/rfc822-headers` part with the original's outer header fields.
//!    Only the outer (PGP/MIME) header is used: it is what travels in the
//!    clear anyway (routing Message-ID, Date, From/To); the subject and the
//!    body stay inside the ciphertext and never reach a bounce.
//!
//! It is from the local node to its owner and is filed like any other
//! message, so it is encrypted at rest too. This module only builds bytes;
//! deciding when to bounce belongs to `crate::outbox`.

use std::fmt::Write as _;

use crate::store::OutboxEntry;

/// Why a delivery failed for good; it picks the RFC 3463 status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The recipient's node refused the message (`5.7.1`, delivery not
    /// authorized, message refused).
    Refused(String),
    /// The outbox gave up after the configured time (`4.4.7`, delivery time
    /// expired: the cause was transient, it just lasted too long).
    Expired(String),
    /// Any other permanent failure (`5.0.0`).
    Other(String),
}

impl Failure {
    /// The RFC 3463 status code of this failure.
    pub fn status(&self) -> &'static str {
        match self {
            Failure::Refused(_) => "5.7.1",
            Failure::Expired(_) => "4.4.7",
            Failure::Other(_) => "5.0.0",
        }
    }

    /// The reason, for people.
    pub fn reason(&self) -> &str {
        match self {
            Failure::Refused(reason) | Failure::Expired(reason) | Failure::Other(reason) => reason,
        }
    }
}

/// Builds the bounce for a failed outbox entry. `own_peer` (our PeerId)
/// names the reporting node.
pub fn build(own_address: &str, own_peer: &str, entry: &OutboxEntry, failure: &Failure) -> Vec<u8> {
    let original = outer_header(&entry.payload);
    let (message_id, date) = match mailparse::parse_headers(original) {
        Ok((headers, _)) => {
            use mailparse::MailHeaderMap;
            (
                headers.get_first_value("Message-ID").unwrap_or_default(),
                headers.get_first_value("Date").unwrap_or_default(),
            )
        }
        Err(_) => (String::new(), String::new()),
    };
    let now = chrono::Utc::now();
    let arrival = chrono::DateTime::from_timestamp_millis(entry.queued_at).unwrap_or(now);
    let boundary = format!("bounce-{}", random_hex(12));
    let recipient = one_line(&entry.recipient);
    let reason = one_line(failure.reason());
    let reporting = reporting_name(own_peer);

    let mut out = String::with_capacity(2048 + original.len());
    let _ = write!(
        out,
        "From: Mail Delivery System <mailer-daemon@mailnode.invalid>\r\n\
         To: <{own_address}>\r\n\
         Subject: Undelivered mail to <{recipient}>\r\n\
         Date: {now}\r\n\
         Message-ID: <bounce-{id}@mailnode.invalid>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n \
         boundary=\"{boundary}\"\r\n\
         \r\n\
         This is a delivery status notification (RFC 3464).\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         Your message could not be delivered to <{recipient}>.\r\n\
         \r\n\
         Reason: {reason}\r\n\
         \r\n\
         Message-ID: {message_id}\r\n\
         Date: {date}\r\n\
         Attempts: {attempts}\r\n\
         \r\n\
         The copy in your Sent folder is unchanged. Nothing will be retried.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; {reporting}\r\n\
         Original-Envelope-Id: {envelope_id}\r\n\
         Arrival-Date: {arrival}\r\n\
         \r\n\
         Final-Recipient: rfc822; {recipient}\r\n\
         Action: failed\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: X-mailnode; {reason}\r\n\
         Last-Attempt-Date: {now}\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n",
        now = now.to_rfc2822(),
        id = random_hex(12),
        message_id = one_line(&message_id),
        date = one_line(&date),
        attempts = entry.attempts + 1,
        envelope_id = hex::encode(entry.delivery_id),
        arrival = arrival.to_rfc2822(),
        status = failure.status(),
    );
    // The original header block, in CRLF lines, without its blank line.
    for line in String::from_utf8_lossy(original).lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    let _ = write!(out, "\r\n--{boundary}--\r\n");
    out.into_bytes()
}

/// The header block of `payload` (up to and including the blank line), or
/// nothing if it has none.
fn outer_header(payload: &[u8]) -> &[u8] {
    for (index, window) in payload.windows(2).enumerate() {
        if window == b"\n\n" {
            return &payload[..index + 2];
        }
        if window == b"\n\r" && payload.get(index + 2) == Some(&b'\n') {
            return &payload[..index + 3];
        }
    }
    &[]
}

/// The `Reporting-MTA` name: our PeerId under the reserved `.invalid` TLD
/// (RFC 2606), since nodes have no DNS names.
fn reporting_name(own_peer: &str) -> String {
    let label: String = own_peer
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(63)
        .collect();
    if label.is_empty() {
        "mailnode.invalid".to_string()
    } else {
        format!("{label}.mailnode.invalid")
    }
}

/// A value folded into one header line: line breaks (from a peer's reason
/// text, say) must not start new fields.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> OutboxEntry {
        OutboxEntry {
            id: 1,
            delivery_id: [7; 16],
            recipient: "bob@example.org".into(),
            recipient_fpr: "FPR".into(),
            peer_id: "12D3KooWBob".into(),
            payload: b"From: alice@example.org\r\nTo: bob@example.org\r\n\
                       Message-ID: <outer-1@mailnode.invalid>\r\n\
                       Date: Wed, 2 Dec 2026 10:00:00 +0000\r\n\
                       Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"x\"\r\n\
                       \r\n--x\r\nsecret ciphertext\r\n--x--\r\n"
                .to_vec(),
            attempts: 4,
            next_attempt: 0,
            last_error: None,
            queued_at: 1_764_669_600_000,
        }
    }

    #[test]
    fn bounce_is_a_delivery_status_report() {
        let failure = Failure::Expired("it could not be delivered for 7 days\r\nX: y".into());
        let bytes = build("alice@example.org", "12D3KooWAlice", &entry(), &failure);
        let mail = mailparse::parse_mail(&bytes).expect("the bounce parses");
        assert_eq!(mail.ctype.mimetype, "multipart/report");
        assert_eq!(
            mail.ctype.params.get("report-type").map(String::as_str),
            Some("delivery-status")
        );
        let kinds: Vec<&str> = mail
            .subparts
            .iter()
            .map(|part| part.ctype.mimetype.as_str())
            .collect();
        assert_eq!(
            kinds,
            vec![
                "text/plain",
                "message/delivery-status",
                "text/rfc822-headers"
            ]
        );
        let text = mail.subparts[0].get_body().expect("text");
        assert!(text.contains("could not be delivered to <bob@example.org>"));
        assert!(text.contains("<outer-1@mailnode.invalid>"));
        let status =
            String::from_utf8(mail.subparts[1].get_body_raw().expect("status")).expect("utf-8");
        for field in [
            "Reporting-MTA: dns; 12D3KooWAlice.mailnode.invalid",
            "Arrival-Date: ",
            "Final-Recipient: rfc822; bob@example.org",
            "Action: failed",
            "Status: 4.4.7",
            "Diagnostic-Code: X-mailnode; it could not be delivered for 7 days  X: y",
            "Last-Attempt-Date: ",
        ] {
            assert!(status.contains(field), "{field:?} missing in {status}");
        }
        // The reason's line break did not become a header field of its own.
        assert!(!status.contains("\r\nX: y"));
        let headers = mail.subparts[2].get_body().expect("headers");
        assert!(headers.contains("Message-ID: <outer-1@mailnode.invalid>"));
        assert!(!headers.contains("secret ciphertext"));
    }

    #[test]
    fn status_codes_follow_the_failure() {
        assert_eq!(Failure::Refused("no".into()).status(), "5.7.1");
        assert_eq!(Failure::Expired("late".into()).status(), "4.4.7");
        assert_eq!(Failure::Other("bad".into()).status(), "5.0.0");
        let bytes = build(
            "alice@example.org",
            "",
            &entry(),
            &Failure::Refused("not a contact".into()),
        );
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.contains("Status: 5.7.1\r\n"));
        assert!(text.contains("Reporting-MTA: dns; mailnode.invalid\r\n"));
    }
}
