//! The incoming path: what a node does with a delivery request from a peer
//! before it acknowledges it (DESIGN.md "The path of one message", step 5).
//!
//! Checks, in order, each failure answered with a precise reason the sender
//! logs (and bounces), and nothing filed:
//! 1. Who is the sender? The PeerId is authenticated by the Noise handshake.
//!    A contact is found by that PeerId. Anyone else must send their card;
//!    the card must bind the same PeerId, and its address must not belong to
//!    one of our contacts under another key (that would be an impersonation).
//! 2. The payload must be RFC 3156 PGP/MIME, decrypt with our key, and carry
//!    a good signature by that sender's key.
//! 3. The From of the decrypted message must be the signer's address.
//!
//! Then the message is filed (INBOX for contacts, Requests for others) with
//! the verified-signer field, deduplicated by (peer, delivery id), and only
//! after the commit is the request answered `Accepted`.

use std::sync::Arc;

use keys::{ContactCard, Identity};
use libp2p::PeerId;
use tokio::sync::{Semaphore, mpsc};

use crate::contacts::Contacts;
use crate::network::{DeliveryRequest, DeliveryResponse, InboundDelivery};
use crate::pgpmime;
use crate::rawmail::RawMessage;
use crate::store::{Incoming, Store};
use crate::verified;

/// Where an accepted message is filed.
const INBOX: &str = "INBOX";
const REQUESTS: &str = "Requests";

/// Runs until the inbound channel closes. Each request is handled on its own
/// task; decryption runs on blocking threads, at most `parallel` at once.
/// The limit covers only the decryption, not the wait for the store's
/// commit, so that many deliveries share one group commit (the network
/// service bounds how many requests are in flight).
pub async fn run(
    mut inbound: mpsc::Receiver<InboundDelivery>,
    identity: Arc<Identity>,
    contacts: Contacts,
    store: Store,
    parallel: usize,
) {
    let permits = Arc::new(Semaphore::new(parallel.max(1)));
    while let Some(delivery) = inbound.recv().await {
        let identity = Arc::clone(&identity);
        let contacts = contacts.clone();
        let store = store.clone();
        let permits = Arc::clone(&permits);
        tokio::spawn(async move {
            let InboundDelivery {
                peer,
                request,
                reply,
            } = delivery;
            let response = handle(peer, request, &identity, &contacts, &store, &permits).await;
            if let DeliveryResponse::Rejected { reason } = &response {
                tracing::warn!(%peer, "rejected a delivery: {reason}");
            }
            let _ = reply.send(response);
        });
    }
}

/// The checks and the filing of one delivery.
pub async fn handle(
    peer: PeerId,
    request: DeliveryRequest,
    identity: &Arc<Identity>,
    contacts: &Contacts,
    store: &Store,
    decrypt_permits: &Arc<Semaphore>,
) -> DeliveryResponse {
    let (card, mailbox) = match sender_card(&peer, request.sender_card.as_deref(), contacts) {
        Ok(found) => found,
        Err(reason) => return DeliveryResponse::Rejected { reason },
    };
    let identity = Arc::clone(identity);
    let payload = request.payload;
    let signer = card.clone();
    let Ok(permit) = Arc::clone(decrypt_permits).acquire_owned().await else {
        return DeliveryResponse::TryLater {
            reason: "the recipient is shutting down".into(),
            retry_after_secs: 5,
        };
    };
    let opened = tokio::task::spawn_blocking(move || {
        let opened = open(&identity, &payload, &signer);
        drop(permit);
        opened
    })
    .await;
    let message = match opened {
        Ok(Ok(message)) => message,
        Ok(Err(reason)) => return DeliveryResponse::Rejected { reason },
        Err(err) => {
            return DeliveryResponse::TryLater {
                reason: format!("the recipient could not process the message: {err}"),
                retry_after_secs: 5,
            };
        }
    };
    match store
        .file_incoming(&peer.to_string(), request.id, mailbox, message)
        .await
    {
        Ok(Incoming::Filed { uid }) => {
            tracing::info!(%peer, mailbox, uid, "message received");
            DeliveryResponse::Accepted
        }
        Ok(Incoming::Duplicate) => {
            tracing::debug!(%peer, "duplicate delivery acknowledged again");
            DeliveryResponse::Accepted
        }
        Err(err) => {
            tracing::error!("cannot file an incoming message: {err}");
            DeliveryResponse::TryLater {
                reason: "the recipient's message store failed; it will accept a retry".into(),
                retry_after_secs: 30,
            }
        }
    }
}

/// Finds the card to verify the sender with, and where to file the message.
fn sender_card(
    peer: &PeerId,
    offered: Option<&[u8]>,
    contacts: &Contacts,
) -> Result<(ContactCard, &'static str), String> {
    if let Some(contact) = contacts.by_peer_id(peer) {
        return Ok((contact.card, INBOX));
    }
    let bytes = offered.ok_or_else(|| {
        format!("peer {peer} is not a contact of the recipient and sent no contact card")
    })?;
    let card = ContactCard::from_bytes(bytes)
        .map_err(|err| format!("the sender's contact card is not valid: {err}"))?;
    if card.peer_id() != peer {
        return Err(format!(
            "the sender's contact card belongs to peer {}, but the message came from peer {peer}",
            card.peer_id()
        ));
    }
    if let Some(known) = contacts.by_address(card.address()) {
        // The address is a contact's, but the key and peer are not: someone
        // claims to be that contact.
        return Err(format!(
            "the address <{}> belongs to a contact with key {}; this message is signed by key {} \
             (peer {peer}), which does not match the contact's card",
            card.address(),
            known.card.fingerprint(),
            card.fingerprint()
        ));
    }
    Ok((card, REQUESTS))
}

/// Unwraps, decrypts, verifies and marks a message. Errors are the reason
/// sent back to the peer.
fn open(identity: &Identity, payload: &[u8], signer: &ContactCard) -> Result<Vec<u8>, String> {
    let armored = pgpmime::unwrap(payload).map_err(|err| err.to_string())?;
    let opened = identity
        .open(&armored, signer)
        .map_err(|err| format!("the message was refused: {err}"))?;
    check_from(&opened.plaintext, signer)?;
    verified::mark(&opened.plaintext, signer)
        .map_err(|err| format!("the decrypted message has a broken header: {err}"))
}

/// The decrypted message's From must be the signer's own address.
fn check_from(message: &[u8], signer: &ContactCard) -> Result<(), String> {
    let raw = RawMessage::parse(message)
        .map_err(|err| format!("the decrypted message has a broken header: {err}"))?;
    let header_len = message.len() - raw.body.len();
    let (headers, _) = mailparse::parse_headers(&message[..header_len])
        .map_err(|err| format!("the decrypted message has a broken header: {err}"))?;
    use mailparse::MailHeaderMap;
    let from = headers
        .get_first_header("From")
        .ok_or_else(|| "the decrypted message has no From".to_string())?;
    let addrs = mailparse::addrparse_header(from)
        .map_err(|err| format!("the decrypted message's From is broken: {err}"))?;
    let matches = match addrs.extract_single_info() {
        Some(info) => info.addr.eq_ignore_ascii_case(signer.address()),
        None => false,
    };
    if !matches {
        return Err(format!(
            "the From of the message is not the signer's address <{}>",
            signer.address()
        ));
    }
    Ok(())
}
