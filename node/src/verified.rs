//! The header that tells the reader who verifiably signed a message.
//!
//! When a message's OpenPGP signature checks out, the node files it with one
//! added field at the top of the header:
//!
//! ```text
//! X-Mailnode-Verified-Signer: 0123...ABCD (Alice <alice@example.org>)
//! ```
//!
//! Any field of that name that arrived inside the message is removed first,
//! so a sender cannot forge it. Every other byte of the message stays as the
//! sender wrote it.

use keys::ContactCard;

use crate::rawmail::{HeaderError, RawMessage};

/// The field name.
pub const FIELD: &str = "X-Mailnode-Verified-Signer";

/// Returns the message with the verified-signer field for `signer` added and
/// any such field from the sender removed.
pub fn mark(message: &[u8], signer: &ContactCard) -> Result<Vec<u8>, HeaderError> {
    mark_after(message, signer, None)
}

/// Like [`mark`], with `trace` (a complete `Received:` field, RFC 5321
/// §4.4) first: how the message reached this node.
pub fn mark_received(
    message: &[u8],
    signer: &ContactCard,
    trace: String,
) -> Result<Vec<u8>, HeaderError> {
    mark_after(message, signer, Some(trace))
}

fn mark_after(
    message: &[u8],
    signer: &ContactCard,
    trace: Option<String>,
) -> Result<Vec<u8>, HeaderError> {
    let raw = RawMessage::parse(message)?;
    let value = format!(
        "{FIELD}: {} ({})",
        signer.fingerprint(),
        header_safe(&format!("{} <{}>", signer.name(), signer.address()))
    );
    let fields: Vec<String> = trace.into_iter().chain([value]).collect();
    Ok(raw.rebuild(&fields, |field| {
        !field.name.eq_ignore_ascii_case(FIELD.as_bytes())
    }))
}

/// Keeps a value on one line and in printable ASCII, replacing anything else
/// with `?` (names are informational; the fingerprint is what counts).
fn header_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_stay_on_one_line() {
        assert_eq!(header_safe("Eve\r\nBcc: x"), "Eve??Bcc: x");
        assert_eq!(header_safe("Zoë <z@x>"), "Zo? <z@x>");
    }
}
