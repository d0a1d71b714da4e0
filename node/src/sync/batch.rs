//! The device-sync control message: what one batch of ops looks like on
//! the wire (docs/protocol.md, "Device sync").
//!
//! The plaintext is a mail message whose header says
//! `X-Mailnode-Control: device-sync` and whose body is the CBOR of a
//! [`Batch`]; it is signed by the identity's primary key and encrypted to
//! the identity's own card (every device holds its secret keys), then
//! framed as RFC 3156 PGP/MIME like any delivery.

use serde::{Deserialize, Serialize};

use crate::card_update::{CONTROL_FIELD, ControlHeader, control_header};
use crate::rawmail::RawMessage;
use crate::store::SyncOp;

/// The control kind of a device-sync message.
pub const DEVICE_SYNC: &str = "device-sync";

/// The batch format this node writes and reads.
pub const BATCH_VERSION: u32 = 1;

/// One batch of a device's ops, oldest first.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Batch {
    /// [`BATCH_VERSION`].
    pub version: u32,
    /// The sending device's PeerId (base58).
    pub device: String,
    /// The sender's current card (binary OpenPGP), so a sibling learns of
    /// an added or removed device.
    #[serde(default, with = "serde_bytes")]
    pub card: Option<Vec<u8>>,
    /// The changes.
    pub ops: Vec<SyncOp>,
}

impl Batch {
    /// The CBOR of the batch.
    pub fn encode(&self) -> Vec<u8> {
        // Writing CBOR into a Vec cannot fail for these types.
        cbor4ii::serde::to_vec(Vec::new(), self).unwrap_or_default()
    }

    /// A batch from its CBOR.
    pub fn decode(bytes: &[u8]) -> Result<Batch, String> {
        let batch: Batch = cbor4ii::serde::from_slice(bytes)
            .map_err(|err| format!("the device-sync batch is not readable: {err}"))?;
        if batch.version != BATCH_VERSION {
            return Err(format!(
                "the device-sync batch has version {}, this node reads {BATCH_VERSION}; \
                 update mailnode on every device",
                batch.version
            ));
        }
        Ok(batch)
    }

    /// How many CBOR bytes `op` adds to a batch (for the size budget).
    pub fn op_len(op: &SyncOp) -> usize {
        cbor4ii::serde::to_vec(Vec::new(), op).map_or(0, |bytes| bytes.len())
    }
}

/// The plaintext control message carrying `batch`, from and to
/// `address`.
pub fn control_message(name: &str, address: &str, batch: &Batch) -> Vec<u8> {
    let mut message = control_header(ControlHeader {
        from_name: name,
        from: address,
        to: address,
        kind: DEVICE_SYNC,
        subject: "mailnode device sync",
        content_type: "application/cbor",
        encoding: "binary",
    })
    .into_bytes();
    message.extend_from_slice(&batch.encode());
    message
}

/// The batch a decrypted control message carries; an error says why the
/// message is not a device-sync message a sibling may send.
pub fn open_control(message: &[u8]) -> Result<Batch, String> {
    let raw = RawMessage::parse(message)
        .map_err(|err| format!("the sibling's message has a broken header: {err}"))?;
    let header_len = message.len() - raw.body.len();
    let (headers, _) = mailparse::parse_headers(&message[..header_len])
        .map_err(|err| format!("the sibling's message has a broken header: {err}"))?;
    use mailparse::MailHeaderMap;
    match headers.get_first_value(CONTROL_FIELD) {
        Some(kind) if kind.trim().eq_ignore_ascii_case(DEVICE_SYNC) => Batch::decode(raw.body),
        Some(kind) => Err(format!(
            "a sibling device sends only {CONTROL_FIELD}: {DEVICE_SYNC} messages, not {}",
            crate::bounce::one_line(kind.trim())
        )),
        None => Err(format!(
            "a sibling device sends only {CONTROL_FIELD}: {DEVICE_SYNC} messages, not mail"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Version;

    #[test]
    fn a_batch_round_trips_and_other_messages_are_refused() {
        let batch = Batch {
            version: BATCH_VERSION,
            device: "12D3KooW".into(),
            card: Some(vec![1, 2, 3]),
            ops: vec![SyncOp::Place {
                instance: [1; 16],
                mailbox: Some("Archive".into()),
                version: Version {
                    at: 7,
                    device: "12D3KooW".into(),
                },
            }],
        };
        let message = control_message("Bob", "bob@example.org", &batch);
        assert_eq!(open_control(&message).expect("batch"), batch);
        let mail = open_control(b"From: bob@example.org\r\nSubject: hi\r\n\r\nbody");
        assert!(mail.expect_err("mail").contains("not mail"));
        let card = open_control(b"X-Mailnode-Control: card-update\r\n\r\nkey");
        assert!(card.expect_err("card").contains("not card-update"));
        let broken = open_control(b"X-Mailnode-Control: device-sync\r\n\r\n\xff\x00");
        assert!(broken.expect_err("broken").contains("not readable"));
        let mut newer = batch.clone();
        newer.version = 99;
        let err = Batch::decode(&newer.encode()).expect_err("version");
        assert!(err.contains("version 99"), "{err}");
    }
}
