//! Notices a user finds in INBOX about contacts' keys: here, when a verified
//! contact's key seemed to change (a card with another primary key for that
//! contact's address or PeerId arrived with a message, and was refused); the
//! shared [`notice`] and [`file_notice`] also carry the card-update notices
//! of `card_update` (a contact rotated or revoked their key).
//!
//! The notice is a local message, from mailnode itself
//! (`mailnode@mailnode.invalid`), never sent anywhere. It is filed through
//! the store's idempotent filing under a delivery id derived from (address,
//! new fingerprint), so one refused key gives one notice however often its
//! holder retries. This module decides nothing: `inbound` refuses the
//! message; this only tells the user.

use keys::{Contact, ContactCard};
use sha2::{Digest, Sha256};

use crate::bounce::one_line;
use crate::store::{Incoming, Store};
use crate::strangers::INBOX;

/// The sender name of every notice.
pub const FROM: &str = "mailnode <mailnode@mailnode.invalid>";

/// The pseudo-peer under which notices are deduplicated.
const NOTICE_PEER: &str = "mailnode-key-change-notice";

/// Builds the notice for `contact`, whose verified key was offered to be
/// replaced by `offered` (which came from `peer`).
pub fn build(own_address: &str, contact: &Contact, offered: &ContactCard, peer: &str) -> Vec<u8> {
    let known = &contact.card;
    let address = one_line(known.address());
    let name = one_line(known.name());
    let body = format!(
        "A message claiming to be from {name} <{address}> arrived with a\r\n\
         contact card for a different key. You verified {name}'s key, so\r\n\
         mailnode refused the message and kept the key you verified.\r\n\
         \r\n\
         Verified key:  {old}\r\n\
         Offered key:   {new}\r\n\
         Offered by peer: {peer}\r\n\
         \r\n\
         What to do: ask {name} over another channel (in person, by phone)\r\n\
         whether they made a new key. If they did not, someone may be trying\r\n\
         to impersonate them; keep the verified key and do nothing else.\r\n\
         If they did, compare the new key's fingerprint with them, then run\r\n\
         `mailnode contacts remove {address}`, import their new card with\r\n\
         `mailnode contacts import CARD`, and verify it again with\r\n\
         `mailnode contacts verify {address}`.\r\n",
        old = known.fingerprint(),
        new = offered.fingerprint(),
        peer = one_line(peer),
    );
    let id = delivery_id(&[known.address(), offered.fingerprint()]);
    notice(
        own_address,
        &format!("Refused a new key for your verified contact <{address}>"),
        "key-change",
        &id,
        &body,
    )
}

/// A notice message from mailnode to the user: `kind` goes into
/// `X-Mailnode-Notice`, `id` (from [`delivery_id`]) into the Message-ID,
/// `body` (CRLF lines) after a line saying who wrote it.
pub fn notice(own_address: &str, subject: &str, kind: &str, id: &[u8; 16], body: &str) -> Vec<u8> {
    let now = chrono::Utc::now().to_rfc2822();
    format!(
        "From: {FROM}\r\n\
         To: <{own_address}>\r\n\
         Subject: {subject}\r\n\
         Date: {now}\r\n\
         Message-ID: <{kind}-{id}@mailnode.invalid>\r\n\
         Auto-Submitted: auto-generated\r\n\
         X-Mailnode-Notice: {kind}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         This notice was written by your own mailnode; it did not come from anyone.\r\n\
         \r\n\
         {body}",
        subject = one_line(subject),
        id = hex::encode(&id[..8]),
    )
    .into_bytes()
}

/// The delivery id a notice is filed under: a hash of what makes it
/// unique (kind, address, key...), compared without regard to case, so the
/// same event gives one notice however often it happens.
pub fn delivery_id(parts: &[&str]) -> [u8; 16] {
    // The separator only between parts: the ids of key-change notices
    // (address, fingerprint) stay those of earlier versions.
    let mut hash = Sha256::new().chain_update(b"mailnode key change notice\0");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hash.update(b"\0");
        }
        hash.update(part.to_ascii_lowercase().as_bytes());
    }
    let digest = hash.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// Files the notice in INBOX (once per refused key).
pub async fn file(
    store: &Store,
    own_address: &str,
    contact: &Contact,
    offered: &ContactCard,
    peer: &str,
) {
    let message = build(own_address, contact, offered, peer);
    let id = delivery_id(&[contact.card.address(), offered.fingerprint()]);
    if file_notice(store, id, message).await {
        tracing::warn!(
            contact = contact.card.address(),
            offered = offered.fingerprint(),
            "refused a new key for a verified contact; notice filed in INBOX"
        );
    }
}

/// Files a notice in INBOX under `id`, once: returns whether it is new.
pub async fn file_notice(store: &Store, id: [u8; 16], message: Vec<u8>) -> bool {
    match store.file_incoming(NOTICE_PEER, id, INBOX, message).await {
        Ok(Incoming::Filed { uid }) => {
            tracing::info!(uid, "notice filed in INBOX");
            true
        }
        Ok(Incoming::Duplicate) => false,
        Err(err) => {
            tracing::error!("cannot file a notice in INBOX: {err}");
            false
        }
    }
}

/// The verified contact whose key `offered` would replace: one with the
/// same address or a PeerId of one of its devices under another primary
/// key.
pub fn verified_clash(
    contacts: &crate::contacts::Contacts,
    offered: &ContactCard,
) -> Option<Contact> {
    std::iter::once(contacts.by_address(offered.address()))
        .chain(
            offered
                .devices()
                .iter()
                .map(|peer| contacts.by_peer_id(peer)),
        )
        .flatten()
        .find(|c| c.verified && c.card.fingerprint() != offered.fingerprint())
}

#[cfg(test)]
mod tests {
    use super::*;
    use keys::{AddressBook, Identity};

    #[test]
    fn only_another_key_for_a_verified_contact_clashes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bob = Identity::generate("Bob", "bob@example.org").expect("bob");
        let carol = Identity::generate("Carol", "carol@example.org").expect("carol");
        let mut book = AddressBook::open(dir.path()).expect("book");
        book.add(bob.card().clone(), vec![], false).expect("bob");
        book.add(carol.card().clone(), vec![], false)
            .expect("carol");
        book.set_verified(bob.fingerprint()).expect("verify");
        let contacts = crate::contacts::Contacts::new(AddressBook::open(dir.path()).expect("book"));

        let fake_bob = Identity::generate("Bob", "bob@example.org").expect("fake");
        let clash = verified_clash(&contacts, fake_bob.card()).expect("a clash");
        assert_eq!(clash.card.fingerprint(), bob.fingerprint());
        assert!(
            verified_clash(&contacts, bob.card()).is_none(),
            "the same key"
        );
        let fake_carol = Identity::generate("Carol", "carol@example.org").expect("fake");
        assert!(
            verified_clash(&contacts, fake_carol.card()).is_none(),
            "Carol is not verified"
        );

        let notice = String::from_utf8(build("alice@example.org", &clash, fake_bob.card(), "peer"))
            .expect("utf-8");
        assert!(notice.starts_with(&format!("From: {FROM}\r\n")));
        assert!(notice.contains(bob.fingerprint()) && notice.contains(fake_bob.fingerprint()));
        assert_eq!(
            delivery_id(&["BOB@example.org", &fake_bob.fingerprint().to_lowercase()]),
            delivery_id(&["bob@example.org", fake_bob.fingerprint()]),
            "one notice per (address, key)"
        );
    }
}
