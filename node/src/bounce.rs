//! Bounce messages: what the user finds in INBOX when a message cannot be
//! delivered (the recipient's node refused it, or the outbox gave up).
//!
//! A bounce is a plain-text message from the local node to its owner that
//! names the recipient, the original Message-ID and date, and the reason. It
//! is filed like any other message, so it is encrypted at rest too.

use mailparse::MailHeaderMap;

use crate::store::OutboxEntry;

/// Builds the bounce for a failed outbox entry.
pub fn build(own_address: &str, entry: &OutboxEntry, reason: &str) -> Vec<u8> {
    // The payload's outer (PGP/MIME) header carries Message-ID and Date in
    // the clear for routing; the subject is only inside the ciphertext.
    let (message_id, date) = match mailparse::parse_headers(&entry.payload) {
        Ok((headers, _)) => (
            headers.get_first_value("Message-ID").unwrap_or_default(),
            headers.get_first_value("Date").unwrap_or_default(),
        ),
        Err(_) => (String::new(), String::new()),
    };
    let now = chrono::Utc::now().to_rfc2822();
    let mut id = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
    let text = format!(
        "From: Mail Delivery System <mailer-daemon@mailnode.invalid>\r\n\
         To: <{own_address}>\r\n\
         Subject: Undelivered mail to <{recipient}>\r\n\
         Date: {now}\r\n\
         Message-ID: <bounce-{id}@mailnode.invalid>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
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
         The copy in your Sent folder is unchanged. Nothing will be retried.\r\n",
        recipient = entry.recipient,
        id = hex::encode(id),
        attempts = entry.attempts + 1,
    );
    text.into_bytes()
}
