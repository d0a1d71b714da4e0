//! The check a node applies before it lets a contact's new card replace the
//! one it holds (issue 8: key rotation and revocation by card update).
//!
//! An update is accepted only when it is the same certificate, as far as
//! the primary key goes: the same primary fingerprint, and every signature
//! it brings made by that primary key (a revocation or binding made by any
//! other key is refused, not silently dropped). The held and offered
//! certificates are merged (`Cert::merge_public`), so nothing the holder
//! already had is lost, and the merged certificate must still be a card
//! for the same address. Its PeerId may be new (`mailnode keys rotate
//! --new-peer-id`): the primary key's newest self-signature binds it. A
//! revoked key is never brought back.
//!
//! The check decides and reports; it writes nothing. The address book
//! stores the result ([`crate::AddressBook::apply_update`]).

use openpgp::serialize::SerializeInto;
use sequoia_openpgp as openpgp;

use crate::KeyError;
use crate::card::{ContactCard, Revocation};

/// What an accepted update changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardChange {
    /// Nothing new: the offered card adds nothing to the held one.
    Unchanged,
    /// The encryption key was rotated: senders now encrypt to `new`
    /// (fingerprints) instead of `old`.
    Rotated {
        /// The encryption keys of the held card.
        old: Vec<String>,
        /// The encryption keys of the updated card.
        new: Vec<String>,
    },
    /// The owner revoked the key.
    Revoked(Revocation),
    /// Something else changed (a renewed self-signature, say) that senders
    /// need not be told about.
    Updated,
}

/// An accepted update: the merged card to store and what changed.
#[derive(Clone, Debug)]
pub struct CardUpdate {
    /// The held card merged with the offered one.
    pub card: ContactCard,
    /// What changed.
    pub change: CardChange,
    /// The first device's PeerId of the updated card, when the held card
    /// does not list it among its devices (the contact's node moved to a
    /// new PeerId).
    pub new_peer_id: Option<libp2p::PeerId>,
}

impl ContactCard {
    /// Checks `offered` as an update of this (held) card; see the module
    /// documentation. `Err(KeyError::UpdateRefused)` says why not.
    pub fn check_update(&self, offered: &ContactCard) -> Result<CardUpdate, KeyError> {
        let refuse = |reason: String| KeyError::UpdateRefused(reason);
        if offered.fingerprint() != self.fingerprint() {
            return Err(refuse(format!(
                "the card update for <{}> is for the key {}, but the key held for <{}> is {}; \
                 an update must be made by the primary key already held",
                offered.address(),
                offered.fingerprint(),
                self.address(),
                self.fingerprint()
            )));
        }
        let cert = offered.cert();
        let foreign = cert.bad_signatures().count()
            + cert.primary_key().other_revocations().count()
            + cert
                .keys()
                .subkeys()
                .map(|ka| ka.bundle().other_revocations().count())
                .sum::<usize>();
        if foreign > 0 {
            return Err(refuse(format!(
                "the card update for <{}> carries {foreign} signature(s) or revocation(s) that \
                 the primary key {} did not make",
                self.address(),
                self.fingerprint()
            )));
        }
        let merged = self
            .cert()
            .clone()
            .merge_public(cert.clone())
            .map_err(|err| refuse(format!("the card update cannot be merged ({err})")))?;
        let card = ContactCard::from_cert_even_revoked(merged)
            .map_err(|err| refuse(format!("the updated card is not usable: {err}")))?;
        if card.address() != self.address() {
            return Err(refuse(format!(
                "the card update changes the address from <{}> to <{}>; mailnode does not \
                 accept that by update",
                self.address(),
                card.address()
            )));
        }
        // A new PeerId is accepted: the merged card's newest self-signature,
        // made by the primary key (checked above), binds it. A device added
        // to or removed from the list is no move.
        let new_peer_id = (!self.has_device(card.peer_id())).then(|| *card.peer_id());
        let change = match (self.revocation(), card.revocation()) {
            (Some(_), None) => {
                return Err(refuse(format!(
                    "the key {} of <{}> is revoked; a revoked key is never taken back",
                    self.fingerprint(),
                    self.address()
                )));
            }
            (None, Some(revocation)) => CardChange::Revoked(revocation.clone()),
            _ if card.encryption_keys() != self.encryption_keys() => CardChange::Rotated {
                old: self.encryption_keys(),
                new: card.encryption_keys(),
            },
            _ if card.cert().to_vec().ok() != self.cert().to_vec().ok() => CardChange::Updated,
            _ => CardChange::Unchanged,
        };
        Ok(CardUpdate {
            card,
            change,
            new_peer_id,
        })
    }
}
