//! The outgoing path: what happens between the SMTP bridge accepting DATA and
//! its `250` (DESIGN.md "The path of one message", steps 2 and 3).
//!
//! Every recipient must be in the address book (checked at RCPT). After DATA
//! the message is checked (it must parse, and its From must be the owner's
//! address), completed (Message-ID and Date are added when missing, RFC 6409
//! §8), stripped of its Bcc header for delivery, then signed and encrypted
//! once per recipient: a separate ciphertext per recipient means the key IDs
//! in one recipient's copy never reveal who else (a Bcc recipient above all)
//! got the message. The Sent copy and every outbox entry are written in one
//! transaction; only then does SMTP answer `250`.
//!
//! With a gateway configured (issue 11), a recipient without a card is
//! accepted at RCPT and queued for the provider's SMTP server instead: the
//! message plus an Autocrypt header (`crate::gateway::outbound`), signed and
//! PGP/MIME-encrypted when the recipient's key is known from an Autocrypt
//! header or an import, as written otherwise; the Sent copy is marked
//! `X-Mailnode-Gateway: encrypted`, `plaintext` or `mixed; ...`. Without a
//! gateway such a recipient is refused at RCPT, as before.

use std::sync::Arc;

use imap_bridge::backend::{
    Envelope, MailStore, RecipientError, Submission, SubmitError, Submitted,
};
use keys::{ContactCard, Identity};
use rand::RngCore;
use tokio::sync::Notify;

use crate::contacts::Contacts;
use crate::pgpmime::{self, OuterHeader};
use crate::rawmail::RawMessage;
use crate::store::{OutboxItem, Store};
use crate::verified;

/// The node's implementation of the bridge's [`Submission`] trait.
#[derive(Clone)]
pub struct Outgoing {
    identity: Arc<Identity>,
    contacts: Contacts,
    store: Store,
    outbox_wakeup: Arc<Notify>,
    max_message_size: usize,
    /// The Autocrypt header for gateway mail; `Some` iff a gateway is set up.
    gateway_autocrypt: Option<String>,
    /// The keys of gateway recipients (Autocrypt records).
    gateway_peers: Option<crate::gateway::peers::AutocryptPeers>,
}

impl Outgoing {
    /// Creates the submission service. `outbox_wakeup` is notified after
    /// every queued message so delivery starts at once.
    pub fn new(
        identity: Arc<Identity>,
        contacts: Contacts,
        store: Store,
        outbox_wakeup: Arc<Notify>,
        max_message_size: usize,
    ) -> Outgoing {
        Outgoing {
            identity,
            contacts,
            store,
            outbox_wakeup,
            max_message_size,
            gateway_autocrypt: None,
            gateway_peers: None,
        }
    }

    /// Sends recipients without a card through the gateway (issue 11).
    pub fn with_gateway(mut self, peers: crate::gateway::peers::AutocryptPeers) -> Outgoing {
        self.gateway_peers = Some(peers);
        let header = crate::gateway::outbound::autocrypt_header(
            self.identity.address(),
            &self.identity.card().to_binary(),
        );
        self.gateway_autocrypt = Some(header);
        self
    }

    fn is_self(&self, address: &str) -> bool {
        address.eq_ignore_ascii_case(self.identity.address())
    }
}

/// Checks that `address` looks like `local@domain`.
fn plausible_address(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !address
                    .chars()
                    .any(|c| c.is_whitespace() || c == '<' || c == '>')
        }
        None => false,
    }
}

impl Submission for Outgoing {
    async fn check_recipient(&self, address: &str) -> Result<(), RecipientError> {
        if !plausible_address(address) {
            return Err(RecipientError::Invalid(format!(
                "<{address}> is not a mail address"
            )));
        }
        let contact = self.contacts.by_address(address);
        if let Some(refusal) = contact
            .as_ref()
            .and_then(|c| crate::card_update::revoked_recipient(&c.card))
        {
            return Err(RecipientError::Refused(refusal));
        }
        if self.is_self(address) || contact.is_some() || self.gateway_autocrypt.is_some() {
            return Ok(());
        }
        Err(RecipientError::Unknown(format!(
            "<{address}> is not in your mailnode address book. Ask them for their contact card \
             (`mailnode contacts export`) and add it with `mailnode contacts import CARD.asc`, \
             then send again"
        )))
    }

    async fn submit(&self, envelope: Envelope, message: Vec<u8>) -> Result<Submitted, SubmitError> {
        if message.len() > self.max_message_size {
            return Err(SubmitError::TooLarge(format!(
                "message of {} bytes exceeds the limit of {} bytes",
                message.len(),
                self.max_message_size
            )));
        }
        let prepared = prepare(&message, self.identity.address())?;

        let mut recipients: Vec<String> = Vec::new();
        for rcpt in &envelope.recipients {
            let rcpt = rcpt.to_ascii_lowercase();
            if !recipients.contains(&rcpt) {
                recipients.push(rcpt);
            }
        }
        let mut cards: Vec<(String, ContactCard)> = Vec::new();
        let mut by_gateway: Vec<String> = Vec::new();
        let mut to_self = false;
        for rcpt in &recipients {
            if self.is_self(rcpt) {
                to_self = true;
                continue;
            }
            match self.contacts.by_address(rcpt) {
                Some(contact) => cards.push((rcpt.clone(), contact.card.clone())),
                None if self.gateway_autocrypt.is_some() => by_gateway.push(rcpt.clone()),
                None => {
                    return Err(SubmitError::Rejected(format!(
                        "<{rcpt}> was removed from the address book during the submission"
                    )));
                }
            }
        }

        let identity = Arc::clone(&self.identity);
        let delivery = prepared.delivery.clone();
        let date = prepared.date.clone();
        let items =
            tokio::task::spawn_blocking(move || seal_for_each(&identity, &delivery, &date, &cards))
                .await
                .map_err(|err| {
                    SubmitError::Temporary(format!("encryption task failed: {err}"))
                })??;
        let mut items = items;
        let mut sent_copy = prepared.sent_copy;
        if let Some(autocrypt) = &self.gateway_autocrypt
            && !by_gateway.is_empty()
        {
            let gateway_items = self
                .gateway_items(&by_gateway, autocrypt, &prepared.delivery, &prepared.date)
                .await?;
            let encrypted: Vec<String> = gateway_items
                .iter()
                .filter(|(_, encrypted)| *encrypted)
                .map(|(item, _)| item.recipient.clone())
                .collect();
            let plaintext: Vec<String> = gateway_items
                .iter()
                .filter(|(_, encrypted)| !*encrypted)
                .map(|(item, _)| item.recipient.clone())
                .collect();
            items.extend(gateway_items.into_iter().map(|(item, _)| item));
            let mark = crate::gateway::outbound::sent_mark(&encrypted, &plaintext);
            sent_copy = crate::gateway::outbound::with_fields(&[mark], &sent_copy);
        }

        let queue_id = items
            .first()
            .map(|item| hex::encode(&item.delivery_id[..8]))
            .unwrap_or_else(|| hex::encode(random_id()));
        let sent_uid = self
            .store
            .submit_outgoing(sent_copy, items)
            .await
            .map_err(|err| {
                tracing::error!("cannot queue a submitted message: {err}");
                SubmitError::Temporary(format!("the message store failed: {err}"))
            })?;
        self.outbox_wakeup.notify_one();
        tracing::info!(
            queue_id,
            sent_uid,
            recipients = recipients.len(),
            "message queued"
        );

        if to_self {
            // Mail to oneself is filed at once; it never leaves the node.
            let own = verified::mark(&prepared.delivery, self.identity.card()).map_err(|err| {
                SubmitError::Rejected(format!("cannot file a copy for yourself: {err}"))
            })?;
            if let Err(err) = self.store.append("INBOX", &[], None, own).await {
                tracing::error!("cannot file a message to oneself in INBOX: {err}");
            }
        }
        Ok(Submitted { queue_id })
    }
}

/// A submitted message after checks and completion.
struct Prepared {
    /// What goes to Sent: the message as submitted plus any added fields.
    sent_copy: Vec<u8>,
    /// What recipients get: the same without Bcc.
    delivery: Vec<u8>,
    /// The Date field value.
    date: String,
}

fn prepare(message: &[u8], own_address: &str) -> Result<Prepared, SubmitError> {
    let raw = RawMessage::parse(message)
        .map_err(|err| SubmitError::Rejected(format!("the message header is broken: {err}")))?;
    let header_len = message.len() - raw.body.len();
    let (headers, _) = mailparse::parse_headers(&message[..header_len])
        .map_err(|err| SubmitError::Rejected(format!("the message header is broken: {err}")))?;
    // Every MIME part must parse too: a broken message is refused here, with
    // the reason, rather than delivered and failing at the recipient.
    mailparse::parse_mail(message)
        .map_err(|err| SubmitError::Rejected(format!("the message is not valid MIME: {err}")))?;

    use mailparse::MailHeaderMap;
    let from = headers
        .get_first_header("From")
        .ok_or_else(|| SubmitError::Rejected("the message has no From header field".to_string()))?;
    let from_addrs = mailparse::addrparse_header(from)
        .map_err(|err| SubmitError::Rejected(format!("the From header is broken: {err}")))?;
    let singles: Vec<String> = from_addrs
        .iter()
        .flat_map(|addr| match addr {
            mailparse::MailAddr::Single(info) => vec![info.addr.clone()],
            mailparse::MailAddr::Group(group) => {
                group.addrs.iter().map(|info| info.addr.clone()).collect()
            }
        })
        .collect();
    if singles.len() != 1 || !singles[0].eq_ignore_ascii_case(own_address) {
        return Err(SubmitError::Rejected(format!(
            "the From address must be your own address <{own_address}> (it is {:?}): \
             mailnode signs every message with your key",
            singles.join(", ")
        )));
    }

    let mut added = Vec::new();
    let date = match headers.get_first_value("Date") {
        Some(date) => date.trim().to_string(),
        None => {
            let date = chrono::Utc::now().to_rfc2822();
            added.push(format!("Date: {date}"));
            date
        }
    };
    let has_message_id = headers
        .get_first_value("Message-ID")
        .is_some_and(|id| !id.trim().is_empty());
    if !has_message_id {
        // RFC 6409 §8.3: the submission server may add a missing Message-ID.
        let domain = own_address.rsplit_once('@').map_or("mailnode", |(_, d)| d);
        added.push(format!(
            "Message-ID: <{}@{domain}>",
            hex::encode(random_id())
        ));
    }
    let sent_copy = if added.is_empty() {
        message.to_vec()
    } else {
        raw.rebuild(&added, |_| true)
    };
    let delivery = raw.rebuild(&added, |field| !field.name.eq_ignore_ascii_case(b"bcc"));
    Ok(Prepared {
        sent_copy,
        delivery,
        date,
    })
}

impl Outgoing {
    /// One outbox entry per gateway recipient, with whether it is
    /// encrypted (their key is known) or goes as written.
    async fn gateway_items(
        &self,
        recipients: &[String],
        autocrypt: &str,
        delivery: &[u8],
        date: &str,
    ) -> Result<Vec<(OutboxItem, bool)>, SubmitError> {
        let mut keyed = Vec::new();
        let mut plain = Vec::new();
        for rcpt in recipients {
            let key = match &self.gateway_peers {
                Some(peers) => peers.key_for(rcpt).unwrap_or_else(|err| {
                    tracing::warn!("cannot read the Autocrypt records: {err:#}");
                    None
                }),
                None => None,
            };
            match key {
                Some(cert) => keyed.push((rcpt.clone(), cert)),
                None => plain.push(rcpt.clone()),
            }
        }
        let item = |recipient: &str, recipient_fpr: String, payload: Vec<u8>| OutboxItem {
            delivery_id: random_id(),
            recipient: recipient.to_string(),
            recipient_fpr,
            peer_id: crate::gateway::outbound::GATEWAY_PEER.to_string(),
            payload,
        };
        let mut items = Vec::with_capacity(recipients.len());
        if !plain.is_empty() {
            let payload = crate::gateway::outbound::with_fields(&[autocrypt.to_string()], delivery);
            items.extend(
                plain
                    .iter()
                    .map(|rcpt| (item(rcpt, String::new(), payload.clone()), false)),
            );
        }
        if !keyed.is_empty() {
            let identity = Arc::clone(&self.identity);
            let delivery = delivery.to_vec();
            let date = date.to_string();
            let autocrypt = autocrypt.to_string();
            let sealed = tokio::task::spawn_blocking(move || {
                keyed
                    .iter()
                    .map(|(rcpt, cert)| {
                        crate::gateway::outbound::encrypted_copy(
                            &identity, cert, rcpt, &delivery, &date, &autocrypt,
                        )
                        .map(|payload| (rcpt.clone(), cert.fingerprint().to_hex(), payload))
                        .map_err(|err| {
                            SubmitError::Rejected(format!(
                                "cannot encrypt to <{rcpt}> with the key from their Autocrypt \
                                 header: {err}"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, SubmitError>>()
            })
            .await
            .map_err(|err| SubmitError::Temporary(format!("encryption task failed: {err}")))??;
            items.extend(
                sealed
                    .into_iter()
                    .map(|(rcpt, fpr, payload)| (item(&rcpt, fpr, payload), true)),
            );
        }
        Ok(items)
    }
}

/// Signed and encrypted outbox entries for each (address, card), one per
/// device the card lists (issue 8), each address with its own outer header
/// and delivery id, which its devices' entries share: they carry the same
/// message, and the receiver files a delivery id from one sender once
/// (also the node's control messages, `announce`).
pub(crate) fn seal_for_each(
    identity: &Identity,
    delivery: &[u8],
    date: &str,
    cards: &[(String, ContactCard)],
) -> Result<Vec<OutboxItem>, SubmitError> {
    let mut items = Vec::with_capacity(cards.len());
    for (address, card) in cards {
        let armored = identity.seal(delivery, card).map_err(|err| {
            SubmitError::Rejected(format!("cannot encrypt to <{address}>: {err}"))
        })?;
        // The outer Message-ID is opaque: the original one is part of the
        // encrypted message, and may itself say something about it.
        let outer_id = format!("<{}@mailnode.invalid>", hex::encode(random_id()));
        let outer = OuterHeader {
            from: identity.address(),
            to: address,
            date,
            message_id: &outer_id,
        };
        let mut delivery_id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut delivery_id);
        let payload = pgpmime::wrap(&outer, &armored);
        for device in card.devices() {
            items.push(OutboxItem {
                delivery_id,
                recipient: address.clone(),
                recipient_fpr: card.fingerprint().to_string(),
                peer_id: device.to_string(),
                payload: payload.clone(),
            });
        }
    }
    Ok(items)
}

fn random_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut id);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcc_is_removed_only_from_the_delivered_copy() {
        let msg = b"From: alice@example.org\r\nTo: bob@example.org\r\nBcc: carol@example.org\r\nSubject: s\r\nDate: Tue, 24 Nov 2026 19:00:00 +0000\r\nMessage-ID: <x@example.org>\r\n\r\nbody\r\n";
        let prepared = prepare(msg, "alice@example.org").unwrap();
        assert_eq!(prepared.sent_copy, msg);
        let delivered = String::from_utf8(prepared.delivery).unwrap();
        assert!(!delivered.to_ascii_lowercase().contains("bcc"));
        assert!(delivered.ends_with("\r\n\r\nbody\r\n"));
    }

    #[test]
    fn missing_message_id_and_date_are_added() {
        let msg = b"From: Alice <Alice@Example.org>\r\nTo: bob@example.org\r\n\r\nbody\r\n";
        let prepared = prepare(msg, "alice@example.org").unwrap();
        let sent = String::from_utf8(prepared.sent_copy).unwrap();
        assert!(sent.starts_with("Date: "), "{sent}");
        assert!(sent.contains("\r\nMessage-ID: <"), "{sent}");
        assert!(sent.contains("@example.org>\r\n"), "{sent}");
    }

    #[test]
    fn a_foreign_from_is_refused() {
        let msg = b"From: mallory@example.org\r\n\r\nbody\r\n";
        let err = prepare(msg, "alice@example.org").err().unwrap();
        assert!(
            err.to_string().contains("must be your own address"),
            "{err}"
        );
        let err = prepare(b"Subject: x\r\n\r\nbody", "alice@example.org")
            .err()
            .unwrap();
        assert!(err.to_string().contains("no From"), "{err}");
        let err = prepare(b"not a header\r\n\r\nbody", "alice@example.org")
            .err()
            .unwrap();
        assert!(err.to_string().contains("header is broken"), "{err}");
    }

    #[test]
    fn addresses_are_checked_for_shape() {
        assert!(plausible_address("bob@example.org"));
        assert!(!plausible_address("bob"));
        assert!(!plausible_address("@example.org"));
        assert!(!plausible_address("bob @example.org"));
    }
}
