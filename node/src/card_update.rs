//! Card updates from contacts (issue 8): the receiving side of key rotation
//! and revocation.
//!
//! A contact's node announces a changed card with a *control message*: an
//! ordinary delivery (PGP/MIME, signed by the contact's primary key,
//! encrypted to us, authenticated by the Noise PeerId like all mail) whose
//! decrypted header has `X-Mailnode-Control: card-update` and whose body is
//! the armored card. `inbound` recognises it after the usual checks and
//! hands it here instead of filing it. The update is applied only when
//! `keys::ContactCard::check_update` accepts it (same primary key, every
//! signature made by it, same address and PeerId); the user is told what
//! changed by a notice in INBOX, filed once per change.
//!
//! A delivery from an unknown PeerId whose `sender_card` is a contact's key
//! binding that PeerId (`keys rotate --new-peer-id`) updates that contact
//! first ([`moved_contact`]), so it is then handled as theirs.
//!
//! Mail from a contact whose key is revoked is refused here too, with the
//! revocation in the reason and a notice, except the contact's own
//! announcement of that revocation arriving again (a retry).

use keys::{CardChange, Contact, ContactCard};
use libp2p::PeerId;

use crate::bounce::one_line;
use crate::inbound::Inbound;
use crate::key_notice;
use crate::network::DeliveryResponse;
use crate::rawmail::RawMessage;

/// The header field that marks a control message.
pub const CONTROL_FIELD: &str = "X-Mailnode-Control";

/// The one control message kind: the body is the sender's armored card.
pub const CARD_UPDATE: &str = "card-update";

/// The card a control message carries: `None` for ordinary mail,
/// `Some(Err)` for a control message we cannot use.
pub fn control_card(message: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let raw = RawMessage::parse(message).ok()?;
    let header_len = message.len() - raw.body.len();
    let (headers, _) = mailparse::parse_headers(&message[..header_len]).ok()?;
    use mailparse::MailHeaderMap;
    let kind = headers.get_first_value(CONTROL_FIELD)?;
    if !kind.trim().eq_ignore_ascii_case(CARD_UPDATE) {
        return Some(Err(format!(
            "unknown control message {CONTROL_FIELD}: {}",
            one_line(kind.trim())
        )));
    }
    Some(Ok(raw.body.to_vec()))
}

/// The plaintext of the control message that announces `card` to `to`,
/// from `from` (our address and display name).
pub fn control_message(from_name: &str, from: &str, to: &str, card: &ContactCard) -> Vec<u8> {
    let mut message = control_header(ControlHeader {
        from_name,
        from,
        to,
        kind: CARD_UPDATE,
        subject: "mailnode card update",
        content_type: "application/pgp-keys",
        encoding: "7bit",
    });
    message.push_str(
        &card
            .to_armored()
            .replace("\r\n", "\n")
            .replace('\n', "\r\n"),
    );
    message.into_bytes()
}

/// What the header of a control message says.
pub struct ControlHeader<'a> {
    /// Our display name and address.
    pub from_name: &'a str,
    pub from: &'a str,
    /// The recipient's address.
    pub to: &'a str,
    /// The value of [`CONTROL_FIELD`].
    pub kind: &'a str,
    pub subject: &'a str,
    pub content_type: &'a str,
    pub encoding: &'a str,
}

/// The header of a control message of `kind` (card updates, device sync),
/// with a random Message-ID, up to and with the empty line.
pub fn control_header(header: ControlHeader<'_>) -> String {
    let id: [u8; 16] = rand::random();
    format!(
        "From: {name} <{from}>\r\n\
         To: <{to}>\r\n\
         Date: {date}\r\n\
         Message-ID: <{kind}-{id}@mailnode.invalid>\r\n\
         Subject: {subject}\r\n\
         {CONTROL_FIELD}: {kind}\r\n\
         Auto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: {content_type}\r\n\
         Content-Transfer-Encoding: {encoding}\r\n\
         \r\n",
        name = one_line(header.from_name).replace(['<', '>', '"'], ""),
        from = header.from,
        to = header.to,
        kind = header.kind,
        subject = header.subject,
        content_type = header.content_type,
        encoding = header.encoding,
        date = chrono::Utc::now().to_rfc2822(),
        id = hex::encode(id),
    )
}

/// Applies the card update `bytes` that `contact` sent (already
/// authenticated as theirs), and answers the delivery.
pub async fn apply(
    peer: &PeerId,
    contact: &Contact,
    bytes: &[u8],
    context: &Inbound,
) -> DeliveryResponse {
    match ContactCard::from_bytes_even_revoked(bytes) {
        Ok(offered) => apply_card(peer, contact, &offered, context).await,
        Err(err) => refused(
            peer,
            contact,
            &format!("the card update is not usable: {err}"),
        ),
    }
}

/// A delivery from a PeerId that no contact's card binds, whose
/// `sender_card` is a contact's key binding that PeerId now (the contact
/// ran `mailnode keys rotate --new-peer-id`; the Noise handshake proved
/// the PeerId, the contact's primary key signed the binding). The card
/// update is applied and the contact, as updated, returned. `None` when
/// the card is no such thing: the sender is a stranger.
pub async fn moved_contact(
    peer: &PeerId,
    offered: Option<&[u8]>,
    context: &Inbound,
) -> Option<Result<Contact, DeliveryResponse>> {
    let card = ContactCard::from_bytes(offered?).ok()?;
    if !card.has_device(peer) {
        return None;
    }
    let contact = context.contacts.by_fingerprint(card.fingerprint())?;
    match apply_card(peer, &contact, &card, context).await {
        DeliveryResponse::Accepted => {}
        refusal => return Some(Err(refusal)),
    }
    Some(
        context
            .contacts
            .by_peer_id(peer)
            .ok_or_else(|| DeliveryResponse::Rejected {
                reason: format!("peer {peer} is not a contact of the recipient"),
            }),
    )
}

/// Checks and stores `offered` as `contact`'s new card, with its notices.
async fn apply_card(
    peer: &PeerId,
    contact: &Contact,
    offered: &ContactCard,
    context: &Inbound,
) -> DeliveryResponse {
    let update = match contact.card.check_update(offered) {
        Ok(update) => update,
        Err(err) => {
            if contact.verified && offered.fingerprint() != contact.card.fingerprint() {
                key_notice::file(
                    &context.store,
                    context.identity.address(),
                    contact,
                    offered,
                    &peer.to_string(),
                )
                .await;
            }
            return refused(peer, contact, &err.to_string());
        }
    };
    let mut notices = Vec::new();
    match &update.change {
        CardChange::Unchanged => {
            tracing::debug!(%peer, contact = contact.card.address(), "card update without news");
            return DeliveryResponse::Accepted;
        }
        CardChange::Updated => {}
        CardChange::Rotated { old, new } => notices.push(rotated_notice(contact, old, new)),
        CardChange::Revoked(revocation) => notices.push(revoked_notice(contact, revocation)),
    }
    if let Some(new_peer) = &update.new_peer_id {
        notices.push(moved_notice(contact, new_peer));
    }
    // The notices first: if storing the card fails the sender retries, and
    // a notice, filed under the same id, is not repeated.
    for (id, subject, body) in notices {
        file_notice(context, "card-update", id, &subject, &body).await;
    }
    match context.contacts.apply_update(&update) {
        Ok(true) => {
            tracing::info!(
                %peer,
                contact = contact.card.address(),
                change = ?update.change,
                "applied a contact's card update"
            );
            DeliveryResponse::Accepted
        }
        Ok(false) => refused(peer, contact, "the contact was removed meanwhile"),
        Err(err) => {
            tracing::error!("cannot store a contact's card update: {err}");
            DeliveryResponse::TryLater {
                reason: "the recipient could not store the card update; it will accept a retry"
                    .into(),
                retry_after_secs: 30,
            }
        }
    }
}

fn refused(peer: &PeerId, contact: &Contact, reason: &str) -> DeliveryResponse {
    tracing::warn!(
        %peer,
        contact = contact.card.address(),
        "refused a card update: {reason}"
    );
    DeliveryResponse::Rejected {
        reason: format!("card update refused: {reason}"),
    }
}

/// Answers mail from `contact`, whose key is revoked, that did not pass the
/// signature check (`open_error`): the contact's announcement of that
/// revocation again is `Accepted` (a retry after a lost answer); anything
/// else is refused, with a notice once per revoked key.
pub async fn from_revoked(
    peer: &PeerId,
    contact: &Contact,
    payload: &[u8],
    open_error: String,
    context: &Inbound,
) -> DeliveryResponse {
    let Some(revocation) = contact.card.revocation() else {
        return DeliveryResponse::Rejected { reason: open_error };
    };
    if announces_held_revocation(contact, payload, context) {
        return DeliveryResponse::Accepted;
    }
    let card = &contact.card;
    let reason = format!(
        "the key {} of <{}> was {revocation}; this node refuses mail signed by it",
        card.fingerprint(),
        card.address()
    );
    tracing::warn!(%peer, contact = card.address(), "refused mail: {reason}");
    let id = key_notice::delivery_id(&["revoked-mail", card.address(), card.fingerprint()]);
    let body = format!(
        "A message from {name} <{address}> was refused: it is signed by the key\r\n\
         {fpr}, which {name} revoked on {date} ({why}).\r\n\
         Mail signed by a revoked key may come from whoever has that key now.\r\n\
         Ask {name} over another channel for their new contact card.\r\n",
        name = one_line(card.name()),
        address = one_line(card.address()),
        fpr = card.fingerprint(),
        date = revocation.date(),
        why = one_line(&revocation.reason),
    );
    let subject = format!(
        "Refused mail signed by the revoked key of <{}>",
        card.address()
    );
    file_notice(context, "revoked-key-mail", id, &subject, &body).await;
    DeliveryResponse::Rejected { reason }
}

/// Files a notice of `kind` in INBOX, once per `id`.
async fn file_notice(context: &Inbound, kind: &str, id: [u8; 16], subject: &str, body: &str) {
    let message = key_notice::notice(context.identity.address(), subject, kind, &id, body);
    key_notice::file_notice(&context.store, id, message).await;
}

/// Whether `payload` is `contact`'s card update carrying nothing beyond the
/// revoked card we hold. Its signature is not needed for that: a
/// revocation authenticates itself, and nothing would change.
fn announces_held_revocation(contact: &Contact, payload: &[u8], context: &Inbound) -> bool {
    let Ok(armored) = crate::pgpmime::unwrap(payload) else {
        return false;
    };
    let Ok(plaintext) = context.identity.decrypt_unsigned(&armored, 1 << 20) else {
        return false;
    };
    let Some(Ok(bytes)) = control_card(&plaintext) else {
        return false;
    };
    ContactCard::from_bytes_even_revoked(&bytes)
        .and_then(|offered| contact.card.check_update(&offered))
        .is_ok_and(|update| update.change == CardChange::Unchanged)
}

fn rotated_notice(contact: &Contact, old: &[String], new: &[String]) -> ([u8; 16], String, String) {
    let card = &contact.card;
    let mut parts = vec!["rotated", card.address()];
    parts.extend(new.iter().map(String::as_str));
    let id = key_notice::delivery_id(&parts);
    let subject = format!(
        "{} <{}> rotated their encryption key",
        one_line(card.name()),
        card.address()
    );
    let body = format!(
        "{name} <{address}> made a new encryption key, signed by the primary key\r\n\
         {fpr} that you already had{verified}. mailnode applied it: mail\r\n\
         to {name} is now encrypted to the new key.\r\n\
         \r\n\
         Old encryption key(s): {old}\r\n\
         New encryption key(s): {new}\r\n\
         \r\n\
         Nothing to do: the safety number and the fingerprint stay the same.\r\n",
        name = one_line(card.name()),
        address = one_line(card.address()),
        fpr = card.fingerprint(),
        verified = if contact.verified {
            " (and verified)"
        } else {
            ""
        },
        old = old.join(", "),
        new = new.join(", "),
    );
    (id, subject, body)
}

fn moved_notice(contact: &Contact, new_peer: &PeerId) -> ([u8; 16], String, String) {
    let card = &contact.card;
    let new_peer = new_peer.to_string();
    let id = key_notice::delivery_id(&["moved", card.address(), &new_peer]);
    let subject = format!(
        "{} <{}> moved to a new node identity (PeerId)",
        one_line(card.name()),
        card.address()
    );
    let body = format!(
        "The node of {name} <{address}> now has the PeerId\r\n\
         {new_peer}\r\n\
         (before: {old}). The change is signed by their primary key {fpr},\r\n\
         which you already had{verified}; mailnode applied it and delivers to the\r\n\
         new PeerId from now on. Nothing to do.\r\n",
        name = one_line(card.name()),
        address = one_line(card.address()),
        old = card.peer_id(),
        fpr = card.fingerprint(),
        verified = if contact.verified {
            " (and verified)"
        } else {
            ""
        },
    );
    (id, subject, body)
}

fn revoked_notice(contact: &Contact, revocation: &keys::Revocation) -> ([u8; 16], String, String) {
    let card = &contact.card;
    let id = key_notice::delivery_id(&["revoked", card.address(), card.fingerprint()]);
    let subject = format!(
        "{} <{}> revoked their key",
        one_line(card.name()),
        card.address()
    );
    let body = format!(
        "{name} <{address}> revoked their key {fpr}\r\n\
         on {date} (reason: {why}).\r\n\
         \r\n\
         mailnode no longer encrypts mail to that key: sending to <{address}>\r\n\
         is refused until you have their new card. Mail signed by the key after\r\n\
         the revocation{hard} is refused.\r\n\
         \r\n\
         What to do: ask {name} over another channel for their new contact card,\r\n\
         check its fingerprint with them, then `mailnode contacts remove {address}`\r\n\
         and `mailnode contacts import CARD`.\r\n",
        name = one_line(card.name()),
        address = one_line(card.address()),
        fpr = card.fingerprint(),
        date = revocation.date(),
        why = one_line(&revocation.reason),
        hard = if revocation.hard {
            " (and, since the key may be compromised, before it)"
        } else {
            ""
        },
    );
    (id, subject, body)
}

/// The refusal of a revoked contact as an SMTP or bounce reason.
pub fn revoked_recipient(card: &ContactCard) -> Option<String> {
    let revocation = card.revocation()?;
    Some(format!(
        "<{}> revoked their key {} ({revocation}); mailnode no longer encrypts to it. Ask them \
         for their new contact card, then `mailnode contacts remove {}` and `mailnode contacts \
         import CARD`",
        card.address(),
        card.fingerprint(),
        card.address()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keys::Identity;

    #[test]
    fn a_control_message_round_trips_and_others_are_mail() {
        let alice = Identity::generate("Alice", "alice@example.org").expect("alice");
        let message = control_message(
            "Alice",
            "alice@example.org",
            "bob@example.org",
            alice.card(),
        );
        let card = control_card(&message).expect("control").expect("usable");
        let parsed = ContactCard::from_bytes(&card).expect("card");
        assert_eq!(parsed.fingerprint(), alice.fingerprint());
        assert!(control_card(b"From: a@b\r\nSubject: hi\r\n\r\nbody").is_none());
        let unknown = control_card(b"X-Mailnode-Control: self-destruct\r\n\r\n").expect("control");
        assert!(unknown.expect_err("unknown").contains("self-destruct"));
    }
}
