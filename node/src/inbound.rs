//! The incoming path: what a node does with a delivery request from a peer
//! before it acknowledges it (DESIGN.md "The path of one message", step 5).
//!
//! Checks, in order, each failure answered with a precise reason the sender
//! logs (and bounces), and nothing filed:
//! 1. Who is the sender? The PeerId is authenticated by the Noise handshake.
//!    A contact is found by that PeerId, or by a card that their primary
//!    key signed to bind this new PeerId (`card_update::moved_contact`);
//!    contacts skip step 2.
//! 2. A stranger (anyone else) must fit the `[strangers]` rate limits
//!    (`TryLater` otherwise); must send their card, which must bind the same
//!    PeerId and whose address must not belong to one of our contacts under
//!    another key (that would be an impersonation); and must carry a valid
//!    proof-of-work stamp for this delivery (`StampRequired` without one,
//!    `Rejected` with the precise stamp error for a bad one; see `pow.rs`).
//!    A request we would refuse anyway is refused before a stamp is asked
//!    for, so nobody mints for nothing; all of it comes before decryption.
//! 3. The payload must be RFC 3156 PGP/MIME, decrypt with our key, and carry
//!    a good signature by that sender's key.
//! 4. The From of the decrypted message must be the signer's address.
//!
//! A card that would replace a verified contact's key (the same address or
//! PeerId under another primary key) is refused in either step, and a
//! notice is filed in INBOX (`key_notice`).
//!
//! A control message from a contact (a card update: rotation, revocation)
//! is applied by `card_update` instead of being filed, and mail from a
//! contact whose key is revoked that fails the signature check is refused
//! with the revocation as the reason (`card_update::from_revoked`).
//!
//! A delivery from another device of our own identity (its PeerId is on
//! our card: `crate::sync::Devices`) is a sibling's device-sync batch and
//! goes to `crate::sync::receive` before any of this; a PeerId that is not
//! (or no longer) on the card is not a sibling.
//!
//! Then the message is filed (INBOX for contacts, Requests for others, whose
//! card is kept first in the stranger list so `contacts accept` can promote
//! them) with the verified-signer field, deduplicated by (peer, delivery
//! id), and only after the commit is the request answered `Accepted`.

use std::sync::Arc;

use keys::{ContactCard, Identity};
use libp2p::PeerId;
use tokio::sync::{Semaphore, mpsc};

use crate::contacts::Contacts;
use crate::network::{DeliveryRequest, DeliveryResponse, InboundDelivery};
use crate::pgpmime;
use crate::pow;
use crate::rawmail::RawMessage;
use crate::store::{Incoming, Store};
use crate::strangers::{INBOX, REQUESTS, Reservation, Strangers};
use crate::verified;

/// Payloads up to this size are hashed for the stamp check on the calling
/// task (well under a millisecond).
const HASH_INLINE_MAX: usize = 256 * 1024;

/// Everything the inbound handler needs besides the request. Cheap to
/// clone.
#[derive(Clone)]
pub struct Inbound {
    /// Our identity: decryption key and PeerId (stamps are bound to it).
    pub identity: Arc<Identity>,
    /// The address book.
    pub contacts: Contacts,
    /// The mail store.
    pub store: Store,
    /// Limits and cards of strangers.
    pub strangers: Strangers,
    /// Bounds how many decryptions run at once.
    pub decrypt_permits: Arc<Semaphore>,
    /// The other devices of our identity (device sync, issue 8).
    pub devices: crate::sync::Devices,
}

impl Inbound {
    /// The handler's context; decryption runs on blocking threads, at most
    /// `parallel` at once.
    pub fn new(
        identity: Arc<Identity>,
        contacts: Contacts,
        store: Store,
        strangers: Strangers,
        parallel: usize,
    ) -> Inbound {
        Inbound {
            devices: crate::sync::Devices::new(&identity),
            identity,
            contacts,
            store,
            strangers,
            decrypt_permits: Arc::new(Semaphore::new(parallel.max(1))),
        }
    }
}

/// Runs until the inbound channel closes. Each request is handled on its own
/// task; decryption runs on blocking threads, at most `parallel` at once.
/// The limit covers only the decryption, not the wait for the store's
/// commit, so that many deliveries share one group commit (the network
/// service bounds how many requests are in flight).
pub async fn run(mut inbound: mpsc::Receiver<InboundDelivery>, context: Inbound) {
    while let Some(delivery) = inbound.recv().await {
        let context = context.clone();
        tokio::spawn(async move {
            let InboundDelivery {
                peer,
                request,
                reply,
            } = delivery;
            let response = handle(peer, request, &context).await;
            match &response {
                DeliveryResponse::Rejected { reason } => {
                    tracing::warn!(%peer, "rejected a delivery: {reason}");
                }
                DeliveryResponse::TryLater { reason, .. } => {
                    tracing::info!(%peer, "asked a peer to retry later: {reason}");
                }
                _ => {}
            }
            let _ = reply.send(response);
        });
    }
}

/// The checks and the filing of one delivery.
pub async fn handle(peer: PeerId, request: DeliveryRequest, context: &Inbound) -> DeliveryResponse {
    if context.devices.is_sibling(&peer) {
        return crate::sync::receive::handle(peer, request, context).await;
    }
    let mut request = request;
    let known = match context.contacts.by_peer_id(&peer) {
        Some(contact) => Some(contact),
        // A contact whose node has a new PeerId, announced by its card.
        None => {
            match crate::card_update::moved_contact(&peer, request.sender_card.as_deref(), context)
                .await
            {
                Some(Ok(contact)) => Some(contact),
                Some(Err(refusal)) => return refusal,
                None => None,
            }
        }
    };
    let (card, mailbox, reservation, contact) = match known {
        Some(contact) => {
            // Only a verified contact's card is compared (a parse per
            // message), since only a verified key is guarded this way.
            if contact.verified
                && let Some(refusal) =
                    refuse_key_change(&peer, request.sender_card.as_deref(), context).await
            {
                return refusal;
            }
            (contact.card.clone(), INBOX, None, Some(contact))
        }
        None => match admit_stranger(&peer, &mut request, context).await {
            Ok((card, reservation)) => (card, REQUESTS, Some(reservation), None),
            Err(response) => return response,
        },
    };
    let identity = Arc::clone(&context.identity);
    let payload = request.payload;
    // Kept only for a revoked contact, whose refusal looks at it again.
    let revoked_payload = contact
        .as_ref()
        .filter(|c| c.card.revocation().is_some())
        .map(|_| payload.clone());
    let signer = card.clone();
    let Ok(permit) = Arc::clone(&context.decrypt_permits).acquire_owned().await else {
        return DeliveryResponse::TryLater {
            reason: "the recipient is shutting down".into(),
            retry_after_secs: 5,
        };
    };
    let trace = received(&peer, context.identity.peer_id(), &request.id);
    let opened = tokio::task::spawn_blocking(move || {
        let opened = open(&identity, &payload, &signer, trace);
        drop(permit);
        opened
    })
    .await;
    let message = match opened {
        Ok(Ok(Opened::Mail(message))) => message,
        Ok(Ok(Opened::Control(card))) => {
            return match (&contact, card) {
                (Some(contact), Ok(bytes)) => {
                    crate::card_update::apply(&peer, contact, &bytes, context).await
                }
                (Some(_), Err(reason)) => DeliveryResponse::Rejected { reason },
                (None, _) => DeliveryResponse::Rejected {
                    reason: "card updates are taken only from contacts".into(),
                },
            };
        }
        Ok(Err(reason)) => {
            return match (&contact, revoked_payload) {
                (Some(contact), Some(payload)) => {
                    crate::card_update::from_revoked(&peer, contact, &payload, reason, context)
                        .await
                }
                _ => DeliveryResponse::Rejected { reason },
            };
        }
        Err(err) => {
            return DeliveryResponse::TryLater {
                reason: format!("the recipient could not process the message: {err}"),
                retry_after_secs: 5,
            };
        }
    };
    if reservation.is_some() {
        // Keep the card before the message is filed: a message in Requests
        // whose sender cannot be promoted later would be stranded.
        if let Err(err) = context.strangers.remember(&card).await {
            tracing::error!("cannot keep a stranger's card: {err}");
            return DeliveryResponse::TryLater {
                reason: "the recipient could not record the sender's card; it will accept a retry"
                    .into(),
                retry_after_secs: 30,
            };
        }
    }
    match context
        .store
        .file_incoming(&peer.to_string(), request.id, mailbox, message)
        .await
    {
        Ok(Incoming::Filed { uid }) => {
            tracing::info!(%peer, mailbox, uid, "message received");
            if let Some(reservation) = reservation {
                reservation.keep();
            }
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

/// The checks for a sender who is not a contact: rate limits, their card,
/// then the proof-of-work stamp (two hashes), all before anything is
/// decrypted. On success the message holds a slot in the limits until it is
/// filed (or not).
async fn admit_stranger(
    peer: &PeerId,
    request: &mut DeliveryRequest,
    context: &Inbound,
) -> Result<(ContactCard, Reservation), DeliveryResponse> {
    let strangers = &context.strangers;
    let try_later = |full: crate::strangers::Full| DeliveryResponse::TryLater {
        reason: full.reason,
        retry_after_secs: full.retry_after_secs,
    };
    // Before asking for a stamp: a sender over the limit, or one we would
    // refuse anyway, must not spend seconds minting one for nothing.
    strangers.check(peer).map_err(try_later)?;
    let card = match stranger_card(peer, request.sender_card.as_deref(), &context.contacts) {
        // Our own key from a PeerId not (or no longer) on our card: a
        // removed device, or someone with a copy of an old card; no stamp
        // makes it a sibling.
        Ok(card) if card.fingerprint() == context.identity.fingerprint() => {
            return Err(DeliveryResponse::Rejected {
                reason: format!(
                    "peer {peer} is not (or no longer) a device of this identity; it gets no                      mail and its changes are not taken"
                ),
            });
        }
        Ok(card) => card,
        Err(reason) => {
            let refusal = refuse_key_change(peer, request.sender_card.as_deref(), context).await;
            return Err(refusal.unwrap_or(DeliveryResponse::Rejected { reason }));
        }
    };
    let bits = strangers.policy().pow_bits;
    if bits > 0 {
        let Some(stamp) = request.stamp.take() else {
            tracing::info!(%peer, bits, "stamp required: the sender is not a contact");
            return Err(DeliveryResponse::StampRequired { bits });
        };
        let message = message_hash(request).await?;
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        let ours = context.identity.peer_id();
        if let Err(err) = pow::verify_hashed(&stamp, ours, &message, bits, now) {
            tracing::warn!(%peer, "refused a proof-of-work stamp: {err}");
            return Err(DeliveryResponse::Rejected {
                reason: err.to_string(),
            });
        }
        tracing::info!(%peer, bits = stamp.bits, "proof-of-work stamp verified");
    }
    let reservation = strangers.reserve(peer).map_err(try_later)?;
    Ok((card, reservation))
}

/// Refuses a card that would replace a verified contact's key (same
/// address or PeerId, another primary key) and files the notice that tells
/// the user (`key_notice`). `None` if the card is no such thing.
async fn refuse_key_change(
    peer: &PeerId,
    offered: Option<&[u8]>,
    context: &Inbound,
) -> Option<DeliveryResponse> {
    let card = ContactCard::from_bytes(offered?).ok()?;
    let contact = crate::key_notice::verified_clash(&context.contacts, &card)?;
    crate::key_notice::file(
        &context.store,
        context.identity.address(),
        &contact,
        &card,
        &peer.to_string(),
    )
    .await;
    Some(DeliveryResponse::Rejected {
        reason: format!(
            "the recipient verified the key {} of <{}> and refuses the card with key {}; a \
             verified key is never replaced by mail",
            contact.card.fingerprint(),
            contact.card.address(),
            card.fingerprint()
        ),
    })
}

/// The stamp's message hash of `request`. A large payload is hashed on a
/// blocking thread (moved there and back), so that a 32 MiB message does
/// not stall the async runtime for tens of milliseconds.
async fn message_hash(request: &mut DeliveryRequest) -> Result<[u8; 32], DeliveryResponse> {
    if request.payload.len() <= HASH_INLINE_MAX {
        return Ok(pow::message_hash(&request.id, &request.payload));
    }
    let id = request.id;
    let payload = std::mem::take(&mut request.payload);
    let hashed = tokio::task::spawn_blocking(move || {
        let hash = pow::message_hash(&id, &payload);
        (payload, hash)
    })
    .await;
    match hashed {
        Ok((payload, hash)) => {
            request.payload = payload;
            Ok(hash)
        }
        Err(err) => Err(DeliveryResponse::TryLater {
            reason: format!("the recipient could not process the message: {err}"),
            retry_after_secs: 5,
        }),
    }
}

/// The card a stranger sent, checked against the connection's PeerId and
/// our contacts' addresses.
fn stranger_card(
    peer: &PeerId,
    offered: Option<&[u8]>,
    contacts: &Contacts,
) -> Result<ContactCard, String> {
    let bytes = offered.ok_or_else(|| {
        format!("peer {peer} is not a contact of the recipient and sent no contact card")
    })?;
    let card = ContactCard::from_bytes(bytes)
        .map_err(|err| format!("the sender's contact card is not valid: {err}"))?;
    if !card.has_device(peer) {
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
    Ok(card)
}

/// A delivery that passed decryption and the signature check.
enum Opened {
    /// Mail to file, marked with its verified signer.
    Mail(Vec<u8>),
    /// A control message (`card_update`): the card it carries, or why it
    /// cannot be used.
    Control(Result<Vec<u8>, String>),
}

/// Unwraps, decrypts, verifies and marks a message. Errors are the reason
/// sent back to the peer.
fn open(
    identity: &Identity,
    payload: &[u8],
    signer: &ContactCard,
    trace: String,
) -> Result<Opened, String> {
    let armored = pgpmime::unwrap(payload).map_err(|err| err.to_string())?;
    let opened = identity
        .open(&armored, signer)
        .map_err(|err| format!("the message was refused: {err}"))?;
    check_from(&opened.plaintext, signer)?;
    if let Some(card) = crate::card_update::control_card(&opened.plaintext) {
        return Ok(Opened::Control(card));
    }
    verified::mark_received(&opened.plaintext, signer, trace)
        .map(Opened::Mail)
        .map_err(|err| format!("the decrypted message has a broken header: {err}"))
}

/// The `Received:` field (RFC 5321 §4.4) of a delivery from `peer`:
/// `from` and `by` are the two PeerIds (base58, a valid domain label),
/// `with mailnode`, the delivery id, and the time of arrival. No network
/// address is written: the sender's IP is not the recipient's to keep.
fn received(peer: &PeerId, ours: &PeerId, delivery_id: &[u8; 16]) -> String {
    format!(
        "Received: from {peer} by {ours} with mailnode id {}; {}",
        hex::encode(delivery_id),
        chrono::Utc::now().to_rfc2822()
    )
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
