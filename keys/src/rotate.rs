//! Changing the owner's own certificate after keygen (issue 8): a new
//! encryption subkey (`mailnode keys rotate`) and the revocation of the
//! whole key (`mailnode revoke`).
//!
//! Rotation adds an X25519 subkey bound by the primary key and revokes the
//! encryption subkeys in use with reason "superseded" (a soft revocation:
//! OpenPGP programs, gpg and sq included, stop encrypting to them). Their
//! secrets stay in the identity, so mail encrypted to them before the
//! rotation still decrypts. The primary key, and with it the fingerprint,
//! the safety number and every signature, stays the same.
//!
//! Revocation adds a key revocation signature made by the primary key: the
//! one made now with the reason the user gives, or the certificate made at
//! keygen (which says "no reason given", and so voids every signature).
//! Both change only the identity in memory; the caller stores it
//! ([`Identity::update_stored`]).

use std::time::SystemTime;

use openpgp::cert::{CertRevocationBuilder, SubkeyRevocationBuilder};
use openpgp::packet::key::{Key4, PublicParts, SecretParts, SubordinateRole};
use openpgp::packet::signature::SignatureBuilder;
use openpgp::packet::{Key, Packet};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::types::{Curve, KeyFlags, ReasonForRevocation, SignatureType};
use openpgp::{Cert, PacketPile};
use sequoia_openpgp as openpgp;

use crate::card::Revocation;
use crate::{Identity, KeyError, PeerId};

/// Why the owner revokes their key (RFC 9580 §5.2.3.31).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationReason {
    /// The secret key may be known to someone else: every signature by it
    /// is void, whatever its date.
    Compromised,
    /// Replaced by a new key: signatures made before the revocation stay
    /// valid.
    Superseded,
    /// No longer used: signatures made before the revocation stay valid.
    Retired,
}

/// What a rotation did.
#[derive(Clone, Debug)]
pub struct Rotation {
    /// Fingerprints of the encryption subkeys now superseded (still able to
    /// decrypt old mail).
    pub old: Vec<String>,
    /// Fingerprint of the new encryption subkey.
    pub new: String,
}

impl Identity {
    /// Makes a new encryption subkey and supersedes the current ones (see
    /// the module documentation). Refused for a revoked identity.
    pub fn rotate_encryption_key(&mut self) -> Result<Rotation, KeyError> {
        self.refuse_if_revoked()?;
        let policy = StandardPolicy::new();
        let tsk = self.tsk().clone();
        let mut primary = primary_keypair(&tsk)?;
        let old: Vec<Key<PublicParts, SubordinateRole>> = tsk
            .keys()
            .subkeys()
            .with_policy(&policy, None)
            .alive()
            .revoked(false)
            .for_transport_encryption()
            .map(|ka| ka.key().clone())
            .collect();
        let now = SystemTime::now();
        let subkey: Key<SecretParts, SubordinateRole> = Key4::generate_ecc(false, Curve::Cv25519)
            .map_err(KeyError::pgp)?
            .into();
        let binding = SignatureBuilder::new(SignatureType::SubkeyBinding)
            .set_key_flags(
                KeyFlags::empty()
                    .set_transport_encryption()
                    .set_storage_encryption(),
            )
            .and_then(|b| b.set_signature_creation_time(now))
            .and_then(|b| subkey.bind(&mut primary, &tsk, b))
            .map_err(KeyError::pgp)?;
        let mut packets = vec![Packet::from(subkey.clone()), binding.into()];
        for key in &old {
            let revocation = SubkeyRevocationBuilder::new()
                .set_reason_for_revocation(
                    ReasonForRevocation::KeySuperseded,
                    b"replaced by a new encryption subkey (mailnode keys rotate)",
                )
                .and_then(|b| b.set_signature_creation_time(now))
                .and_then(|b| b.build(&mut primary, &tsk, key, None))
                .map_err(KeyError::pgp)?;
            packets.push(revocation.into());
        }
        let rotated = tsk.insert_packets(packets).map_err(KeyError::pgp)?.0;
        self.replace_cert(rotated)?;
        Ok(Rotation {
            old: old.iter().map(|k| k.fingerprint().to_hex()).collect(),
            new: subkey.fingerprint().to_hex(),
        })
    }

    /// Gives the node a new libp2p identity (PeerId): a new Ed25519 key,
    /// bound by a new self-signature of the primary user ID whose device
    /// list names it in this device's place (`peer-id@mailnode.org` for the
    /// first device; the rest of the self-signature is kept). Returns the
    /// new PeerId.
    pub fn rotate_peer_id(&mut self) -> Result<PeerId, KeyError> {
        self.refuse_if_revoked()?;
        let keypair = libp2p::identity::Keypair::generate_ed25519();
        let peer_id = keypair.public().to_peer_id();
        // This device's place in the device list goes to the new PeerId.
        let devices: Vec<PeerId> = self
            .card()
            .devices()
            .iter()
            .map(|device| {
                if device == self.peer_id() {
                    peer_id
                } else {
                    *device
                }
            })
            .collect();
        let rebound = crate::devices::rebind_devices(self.tsk(), &devices)?;
        self.replace_cert_and_keypair(rebound, keypair)
            .map_err(|err| match err {
                // The new self-signature did not win over the old one.
                KeyError::InvalidCard(_) => KeyError::OpenPgp(
                    "the new PeerId binding did not take effect; try again in a second".into(),
                ),
                other => other,
            })?;
        Ok(peer_id)
    }

    /// Revokes the whole key now, for `reason`, with the owner's `text`.
    pub fn revoke(&mut self, reason: RevocationReason, text: &str) -> Result<Revocation, KeyError> {
        self.refuse_if_revoked()?;
        let code = match reason {
            RevocationReason::Compromised => ReasonForRevocation::KeyCompromised,
            RevocationReason::Superseded => ReasonForRevocation::KeySuperseded,
            RevocationReason::Retired => ReasonForRevocation::KeyRetired,
        };
        let tsk = self.tsk().clone();
        let mut primary = primary_keypair(&tsk)?;
        let signature = CertRevocationBuilder::new()
            .set_reason_for_revocation(code, text.as_bytes())
            .and_then(|b| b.build(&mut primary, &tsk, None))
            .map_err(KeyError::pgp)?;
        let revoked = tsk
            .insert_packets(std::iter::once(Packet::from(signature)))
            .map_err(KeyError::pgp)?
            .0;
        self.replace_cert(revoked)?;
        self.revoked_now()
    }

    /// Revokes the key with a revocation certificate (armored or binary:
    /// the one `mailnode revocation` prints, or a bare revocation
    /// signature). Refused unless it holds a revocation made by our
    /// primary key.
    pub fn apply_revocation_certificate(&mut self, bytes: &[u8]) -> Result<Revocation, KeyError> {
        self.refuse_if_revoked()?;
        let pile = PacketPile::from_bytes(bytes).map_err(|err| {
            KeyError::InvalidCard(format!(
                "it is not an OpenPGP revocation certificate ({err})"
            ))
        })?;
        let signatures: Vec<Packet> = pile
            .into_children()
            .filter(|p| {
                matches!(p, Packet::Signature(sig) if sig.typ() == SignatureType::KeyRevocation)
            })
            .collect();
        if signatures.is_empty() {
            return Err(KeyError::InvalidCard(
                "it holds no key revocation signature".into(),
            ));
        }
        let tsk = self.tsk().clone();
        let revoked: Cert = tsk.insert_packets(signatures).map_err(KeyError::pgp)?.0;
        let policy = StandardPolicy::new();
        if !matches!(
            revoked.revocation_status(&policy, None),
            openpgp::types::RevocationStatus::Revoked(_)
        ) {
            return Err(KeyError::InvalidCard(format!(
                "it does not revoke your key {}: its revocation is not made by that key's \
                 primary key",
                self.fingerprint()
            )));
        }
        self.replace_cert(revoked)?;
        self.revoked_now()
    }

    pub(crate) fn refuse_if_revoked(&self) -> Result<(), KeyError> {
        match self.card().revocation() {
            Some(revocation) => Err(KeyError::Revoked(format!(
                "your key {} is already {revocation}; make a new identity in a new home",
                self.fingerprint()
            ))),
            None => Ok(()),
        }
    }

    fn revoked_now(&self) -> Result<Revocation, KeyError> {
        self.card()
            .revocation()
            .cloned()
            .ok_or_else(|| KeyError::OpenPgp("the revocation did not take effect".into()))
    }
}

/// The primary key as a signer (certifications: bindings, revocations).
pub(crate) fn primary_keypair(tsk: &Cert) -> Result<openpgp::crypto::KeyPair, KeyError> {
    tsk.primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .and_then(|key| key.into_keypair())
        .map_err(|err| KeyError::OpenPgp(format!("the primary secret key is unusable ({err})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CardChange, ContactCard, PassphraseSource, Protection, Unlocker};
    use openpgp::serialize::SerializeInto;

    fn pair() -> (Identity, Identity) {
        (
            Identity::generate("Alice", "alice@example.org").expect("alice"),
            Identity::generate("Bob", "bob@example.org").expect("bob"),
        )
    }

    /// What Bob's node would read from the bytes Alice sends.
    fn received(card: &ContactCard) -> ContactCard {
        ContactCard::from_bytes_even_revoked(&card.to_binary()).expect("card")
    }

    #[test]
    fn a_rotation_is_applied_and_old_mail_still_decrypts() {
        let (mut alice, bob) = pair();
        let held = alice.card().clone();
        let before = bob.seal(b"old mail", alice.card()).expect("seal");
        let rotation = alice.rotate_encryption_key().expect("rotate");
        assert_eq!(rotation.old, held.encryption_keys());
        assert_eq!(alice.card().encryption_keys(), vec![rotation.new.clone()]);
        assert_eq!(alice.fingerprint(), held.fingerprint(), "primary key kept");
        assert!(alice.card().revocation().is_none());

        // Old mail decrypts with the kept subkey; new mail to the rotated
        // card decrypts too.
        assert_eq!(
            alice.open(&before, bob.card()).expect("old").plaintext,
            b"old mail"
        );
        let update = held
            .check_update(&received(alice.card()))
            .expect("accepted");
        assert_eq!(
            update.change,
            CardChange::Rotated {
                old: rotation.old.clone(),
                new: vec![rotation.new.clone()]
            }
        );
        let after = bob.seal(b"new mail", &update.card).expect("seal");
        assert_eq!(
            alice.open(&after, bob.card()).expect("new").plaintext,
            b"new mail"
        );
        // Only the new subkey is a recipient now.
        let pile = openpgp::PacketPile::from_bytes(&after).expect("pile");
        let recipients: Vec<String> = pile
            .descendants()
            .filter_map(|p| match p {
                Packet::PKESK(pkesk) => pkesk.recipient().map(|r| r.to_hex()),
                _ => None,
            })
            .collect();
        assert!(
            recipients
                .iter()
                .all(|r| !rotation.old[0].ends_with(r.as_str())),
            "still encrypted to the superseded subkey: {recipients:?}"
        );
        // Applying the same update again changes nothing; a second rotation
        // works as the first.
        let again = update
            .card
            .check_update(&received(alice.card()))
            .expect("again");
        assert_eq!(again.change, CardChange::Unchanged);
        let second = alice.rotate_encryption_key().expect("second rotation");
        assert_eq!(second.old, vec![rotation.new]);
        assert_eq!(
            alice.open(&before, bob.card()).expect("oldest").plaintext,
            b"old mail"
        );
    }

    #[test]
    fn an_update_by_another_primary_key_is_refused() {
        let (alice, _) = pair();
        let mallory = Identity::generate("Alice", "alice@example.org").expect("mallory");
        let err = alice
            .card()
            .check_update(&received(mallory.card()))
            .expect_err("another key");
        assert!(matches!(err, KeyError::UpdateRefused(_)), "{err}");
        assert!(err.to_string().contains(mallory.fingerprint()), "{err}");
    }

    #[test]
    fn a_revocation_by_another_key_is_refused() {
        let (alice, _) = pair();
        let mallory = Identity::generate("Mallory", "mallory@example.org").expect("mallory");
        let mut signer = primary_keypair(mallory.tsk()).expect("signer");
        let public = alice.card().cert().clone();
        let forged = CertRevocationBuilder::new()
            .set_reason_for_revocation(ReasonForRevocation::KeyCompromised, b"forged")
            .and_then(|b| b.build(&mut signer, &public, None))
            .expect("forged revocation");
        let cert = public
            .insert_packets(std::iter::once(Packet::from(forged.clone())))
            .expect("insert")
            .0;
        let offered = ContactCard::from_bytes_even_revoked(&cert.to_vec().expect("bytes"))
            .expect("still a card");
        assert!(offered.revocation().is_none(), "sequoia took the forgery");
        let err = alice.card().check_update(&offered).expect_err("forged");
        assert!(err.to_string().contains("did not make"), "{err}");

        // Nor can the owner's node be made to revoke itself with it.
        let mut alice = alice;
        let bare = Packet::from(forged).to_vec().expect("bare signature");
        let err = alice
            .apply_revocation_certificate(&bare)
            .expect_err("forged");
        assert!(err.to_string().contains("not made by"), "{err}");
        assert!(alice.card().revocation().is_none());
    }

    #[test]
    fn a_revocation_is_applied_and_ends_encryption_to_the_key() {
        let (mut alice, bob) = pair();
        let held = alice.card().clone();
        let revocation = alice
            .revoke(RevocationReason::Retired, "moving to a new key")
            .expect("revoke");
        assert!(!revocation.hard);
        assert!(
            revocation.reason.contains("moving to a new key"),
            "{revocation}"
        );
        assert!(alice.revoke(RevocationReason::Retired, "again").is_err());
        assert!(alice.rotate_encryption_key().is_err());

        let update = held
            .check_update(&received(alice.card()))
            .expect("accepted");
        assert_eq!(update.change, CardChange::Revoked(revocation.clone()));
        let err = crate::check_encryption_key(update.card.cert()).expect_err("revoked");
        assert!(err.to_string().contains("no longer encrypts"), "{err}");
        assert!(bob.seal(b"to a revoked key", &update.card).is_err());

        // Mail Alice signs after the revocation is refused by a holder of
        // the revoked card, and taken by one who does not know yet.
        let late = alice.seal(b"signed after", bob.card()).expect("seal");
        assert!(bob.open(&late, &update.card).is_err());
        assert!(bob.open(&late, &held).is_ok());

        // A revoked key is never taken back: the older card adds nothing.
        let again = update.card.check_update(&held).expect("old card");
        assert_eq!(again.change, CardChange::Unchanged);
        assert!(again.card.revocation().is_some());
        // A revoked card is not a new contact.
        assert!(ContactCard::from_bytes(&alice.card().to_binary()).is_err());
    }

    #[test]
    fn the_keygen_revocation_certificate_revokes() {
        let (mut alice, _) = pair();
        let certificate = alice.revocation_armored().to_string();
        let mut other = Identity::generate("Alice", "alice@example.org").expect("other");
        let err = other
            .apply_revocation_certificate(certificate.as_bytes())
            .expect_err("not theirs");
        assert!(err.to_string().contains("does not revoke"), "{err}");
        assert!(other.apply_revocation_certificate(b"garbage").is_err());
        let revocation = alice
            .apply_revocation_certificate(certificate.as_bytes())
            .expect("revoke");
        assert!(revocation.hard, "keygen's certificate gives no reason");
    }

    #[test]
    fn a_new_peer_id_is_bound_by_the_primary_key() {
        let (mut alice, bob) = pair();
        let held = alice.card().clone();
        let old = *alice.peer_id();
        let new = alice.rotate_peer_id().expect("new PeerId");
        assert_ne!(new, old);
        assert_eq!(*alice.peer_id(), new);
        assert_eq!(alice.libp2p_keypair().public().to_peer_id(), new);
        let update = held
            .check_update(&received(alice.card()))
            .expect("accepted");
        assert_eq!(update.new_peer_id, Some(new));
        assert_eq!(*update.card.peer_id(), new);
        assert_eq!(update.change, CardChange::Updated);
        // Mail still verifies against the updated card.
        let sealed = alice.seal(b"moved", bob.card()).expect("seal");
        assert!(bob.open(&sealed, &update.card).is_ok());
    }

    #[test]
    fn a_stored_identity_is_rotated_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (alice, bob) = pair();
        let protection = Protection::Passphrase(PassphraseSource::fixed("a good passphrase"));
        alice.save(dir.path(), &protection).expect("save");
        let old_mail = bob.seal(b"before", alice.card()).expect("seal");
        let unlocker = Unlocker::new(PassphraseSource::fixed("a good passphrase"));
        let rotation = Identity::update_stored(dir.path(), &unlocker, |identity| {
            identity.rotate_encryption_key()
        })
        .expect("rotate stored");
        let loaded = Identity::load(dir.path(), &unlocker).expect("load");
        assert_eq!(loaded.card().encryption_keys(), vec![rotation.new]);
        assert_eq!(loaded.bridge_password(), alice.bridge_password());
        assert_eq!(
            loaded.open(&old_mail, bob.card()).expect("old").plaintext,
            b"before"
        );
        let public = Identity::public_info(dir.path()).expect("public");
        assert_eq!(
            public.card.encryption_keys(),
            loaded.card().encryption_keys()
        );
        let new_peer =
            Identity::update_stored(dir.path(), &unlocker, |identity| identity.rotate_peer_id())
                .expect("new PeerId stored");
        let loaded = Identity::load(dir.path(), &unlocker).expect("load");
        assert_eq!(*loaded.peer_id(), new_peer);
        assert_eq!(
            *Identity::public_info(dir.path())
                .expect("public")
                .card
                .peer_id(),
            new_peer
        );
        let wrong = Unlocker::new(PassphraseSource::fixed("another passphrase"));
        assert!(Identity::update_stored(dir.path(), &wrong, |_| Ok(())).is_err());
    }
}
