//! One identity on several devices (issue 8): the card's device list, and
//! what a new device receives.
//!
//! Every device of an owner runs its own node with its own libp2p key
//! (PeerId) and holds the same OpenPGP key. The card lists the devices in
//! the primary user ID's self-signature: the first in the
//! [`PEER_ID_NOTATION`] notation (what every card has had from the start),
//! each further one in a [`DEVICE_NOTATION`] notation. Adding or removing a
//! device is a new self-signature of the primary user ID by the primary
//! key, the rest of the previous one kept, with a later creation time so
//! that it is the one that counts; contacts take it as any card update.
//! Both are unknown, non-critical notations to other OpenPGP programs,
//! which keep and ignore them.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use openpgp::Cert;
use openpgp::packet::Packet;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::packet::signature::subpacket::{NotationDataFlags, SubpacketTag, SubpacketValue};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use sequoia_openpgp as openpgp;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::card::{DEVICE_NOTATION, MAX_DEVICES, PEER_ID_NOTATION};
use crate::identity::new_bridge_password;
use crate::{ContactCard, Identity, KeyError, PeerId};

/// What a new device receives from a device of the identity
/// ([`Identity::export_for_device`]).
#[derive(Serialize, Deserialize)]
struct DeviceBundle {
    /// The certificate with its secret keys, binary OpenPGP, base64.
    tsk: String,
    /// The message store key, base64: a copy of the store stays readable.
    store_key: String,
    /// The armored revocation certificate made at keygen.
    revocation: String,
}

impl Identity {
    /// The owner's other devices: the card's devices without this one.
    pub fn siblings(&self) -> Vec<PeerId> {
        self.card()
            .devices()
            .iter()
            .filter(|peer| *peer != self.peer_id())
            .copied()
            .collect()
    }

    /// Lists `peer` as a device of the identity (a new self-signature).
    /// `Ok(false)` when it is listed already. Refused for a revoked
    /// identity and beyond [`MAX_DEVICES`].
    pub fn add_device(&mut self, peer: PeerId) -> Result<bool, KeyError> {
        self.refuse_if_revoked()?;
        let mut devices = self.card().devices().to_vec();
        if devices.contains(&peer) {
            return Ok(false);
        }
        if devices.len() >= MAX_DEVICES {
            return Err(KeyError::InvalidCard(format!(
                "the identity has {MAX_DEVICES} devices already; remove one first \
                 (mailnode device remove)"
            )));
        }
        devices.push(peer);
        let tsk = rebind_devices(self.tsk(), &devices)?;
        self.replace_cert(tsk)?;
        Ok(true)
    }

    /// Takes `peer` off the device list (a new self-signature): contacts
    /// that apply the card stop delivering to it and no longer take mail
    /// from it. `Ok(false)` when it is not listed. This device cannot remove
    /// itself. When the first device goes, the next one takes its place in
    /// [`PEER_ID_NOTATION`].
    pub fn remove_device(&mut self, peer: &PeerId) -> Result<bool, KeyError> {
        self.refuse_if_revoked()?;
        if peer == self.peer_id() {
            return Err(KeyError::InvalidCard(
                "a device cannot remove itself; remove it from another of your devices".into(),
            ));
        }
        let mut devices = self.card().devices().to_vec();
        let before = devices.len();
        devices.retain(|device| device != peer);
        if devices.len() == before {
            return Ok(false);
        }
        let tsk = rebind_devices(self.tsk(), &devices)?;
        self.replace_cert(tsk)?;
        Ok(true)
    }

    /// What a new device of this identity needs beside its own libp2p key:
    /// the OpenPGP secret key, the revocation certificate and the store key
    /// (so that a copy of this device's store stays readable there). Not the
    /// libp2p key nor the bridge password: each device has its own. The
    /// caller must encrypt it at once and never write it in the clear.
    pub fn export_for_device(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let tsk = Zeroizing::new(self.tsk().as_tsk().to_vec().map_err(KeyError::pgp)?);
        let store_key = self.store_key_copy();
        let bundle = DeviceBundle {
            tsk: B64.encode(&*tsk),
            store_key: B64.encode(*store_key),
            revocation: self.revocation_armored().to_string(),
        };
        let plain = serde_json::to_vec(&bundle).map_err(|err| KeyError::OpenPgp(err.to_string()));
        drop(Zeroizing::new(bundle.tsk));
        drop(Zeroizing::new(bundle.store_key));
        plain.map(Zeroizing::new)
    }

    /// The identity of a new device from what [`Identity::export_for_device`]
    /// made, with the device's own libp2p key (whose PeerId the card must
    /// list already) and a new bridge password.
    pub fn join_device(
        secrets: &[u8],
        keypair: libp2p::identity::Keypair,
    ) -> Result<Identity, KeyError> {
        let bad = |reason: &str| KeyError::BadSecrets(reason.to_string());
        let bundle: DeviceBundle =
            serde_json::from_slice(secrets).map_err(|_| bad("unreadable device bundle"))?;
        let tsk_bytes = Zeroizing::new(B64.decode(&bundle.tsk).map_err(|_| bad("bad key"))?);
        let tsk = Cert::from_bytes(&*tsk_bytes).map_err(|_| bad("bad OpenPGP key"))?;
        if !tsk.is_tsk() {
            return Err(bad("the device bundle holds no secret key"));
        }
        let key_bytes = Zeroizing::new(
            B64.decode(&bundle.store_key)
                .map_err(|_| bad("bad store key"))?,
        );
        let mut store_key = Zeroizing::new([0u8; 32]);
        if key_bytes.len() != store_key.len() {
            return Err(bad("bad store key length"));
        }
        store_key.copy_from_slice(&key_bytes);
        let identity = Identity::assemble(
            tsk,
            keypair,
            new_bridge_password(),
            store_key,
            bundle.revocation.clone(),
        );
        drop(Zeroizing::new(bundle.tsk));
        drop(Zeroizing::new(bundle.store_key));
        identity
    }

    /// Merges our own card as another device of ours sent it (a device
    /// added or removed there, a rotation): only the same primary key, and
    /// only what verifies (sequoia's merge keeps our secrets). `Ok(true)`
    /// when the card changed. Refused when the merged card no longer lists
    /// this device: it was removed, and keeps the card it had.
    pub fn merge_own_card(&mut self, card: &ContactCard) -> Result<bool, KeyError> {
        if card.fingerprint() != self.fingerprint() {
            return Err(KeyError::InvalidCard(format!(
                "the card is of key {}, not of this identity's key {}",
                card.fingerprint(),
                self.fingerprint()
            )));
        }
        let before = self.card().to_binary();
        let merged = self
            .tsk()
            .clone()
            .merge_public(card.cert().clone())
            .map_err(KeyError::pgp)?;
        let merged_card =
            ContactCard::from_cert_even_revoked(merged.clone().strip_secret_key_material())?;
        if !merged_card.has_device(self.peer_id()) {
            return Err(KeyError::InvalidCard(format!(
                "the card no longer lists this device ({}): it was removed from the identity's \
                 devices",
                self.peer_id()
            )));
        }
        self.replace_cert(merged)?;
        Ok(self.card().to_binary() != before)
    }
}

/// `tsk` with a new self-signature of its primary user ID that lists
/// `devices` (the first in [`PEER_ID_NOTATION`], the others in
/// [`DEVICE_NOTATION`]); every other subpacket of the current one is kept.
/// Its creation time must be after the current one's to take effect, and
/// OpenPGP counts whole seconds: a second change within the second of the
/// first waits for the next second (at most one).
pub(crate) fn rebind_devices(tsk: &Cert, devices: &[PeerId]) -> Result<Cert, KeyError> {
    let (first, others) = devices
        .split_first()
        .ok_or_else(|| KeyError::InvalidCard("an identity needs at least one device".into()))?;
    let policy = StandardPolicy::new();
    let valid = tsk.with_policy(&policy, None).map_err(KeyError::pgp)?;
    let primary = valid.primary_userid().map_err(KeyError::pgp)?;
    let userid = primary.userid().clone();
    let current = primary.binding_signature().clone();
    if let Some(wait) = current
        .signature_creation_time()
        .map(|t| t + Duration::from_secs(1))
        .and_then(|next| next.duration_since(SystemTime::now()).ok())
    {
        std::thread::sleep(wait.min(Duration::from_secs(1)));
    }
    let kept: Vec<(String, Vec<u8>, NotationDataFlags, bool)> = current
        .hashed_area()
        .iter()
        .filter_map(|subpacket| match subpacket.value() {
            SubpacketValue::NotationData(n)
                if n.name() != PEER_ID_NOTATION && n.name() != DEVICE_NOTATION =>
            {
                Some((
                    n.name().to_string(),
                    n.value().to_vec(),
                    n.flags().clone(),
                    subpacket.critical(),
                ))
            }
            _ => None,
        })
        .collect();
    let readable = || NotationDataFlags::empty().set_human_readable();
    let mut builder = SignatureBuilder::from(current)
        .modify_hashed_area(|mut area| {
            area.remove_all(SubpacketTag::NotationData);
            Ok(area)
        })
        .and_then(|b| b.set_signature_creation_time(SystemTime::now()))
        .map_err(KeyError::pgp)?;
    for (name, value, flags, critical) in kept {
        builder = builder
            .add_notation(name, value, flags, critical)
            .map_err(KeyError::pgp)?;
    }
    builder = builder
        .add_notation(PEER_ID_NOTATION, first.to_string(), readable(), false)
        .map_err(KeyError::pgp)?;
    for device in others {
        builder = builder
            .add_notation(DEVICE_NOTATION, device.to_string(), readable(), false)
            .map_err(KeyError::pgp)?;
    }
    let mut signer = crate::rotate::primary_keypair(tsk)?;
    let binding = userid
        .bind(&mut signer, tsk, builder)
        .map_err(KeyError::pgp)?;
    Ok(tsk
        .clone()
        .insert_packets(std::iter::once(Packet::from(binding)))
        .map_err(KeyError::pgp)?
        .0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device_peer() -> (libp2p::identity::Keypair, PeerId) {
        let keypair = libp2p::identity::Keypair::generate_ed25519();
        let peer = keypair.public().to_peer_id();
        (keypair, peer)
    }

    #[test]
    fn a_device_is_added_joined_and_removed() {
        let mut alice = Identity::generate("Alice", "alice@example.org").expect("identity");
        let first = *alice.peer_id();
        let (keypair, laptop) = device_peer();
        assert!(alice.add_device(laptop).expect("add"));
        assert!(!alice.add_device(laptop).expect("add again"), "listed once");
        assert_eq!(alice.card().devices(), &[first, laptop]);
        assert_eq!(alice.siblings(), vec![laptop]);

        // The card as a contact reads it: the same list, from the armor.
        let read = ContactCard::from_bytes(alice.card().to_armored().as_bytes()).expect("card");
        assert_eq!(read.devices(), &[first, laptop]);
        assert_eq!(read.peer_id(), &first);

        let bundle = alice.export_for_device().expect("bundle");
        let joined = Identity::join_device(&bundle, keypair).expect("join");
        assert_eq!(joined.peer_id(), &laptop);
        assert_eq!(joined.fingerprint(), alice.fingerprint());
        assert_eq!(joined.store_key(), alice.store_key());
        assert_ne!(joined.bridge_password(), alice.bridge_password());
        assert_eq!(joined.siblings(), vec![first]);

        // A device whose PeerId the card does not list cannot join.
        let (stranger, _) = device_peer();
        let err = Identity::join_device(&bundle, stranger).expect_err("unlisted device");
        assert!(err.to_string().contains("does not list"), "{err}");

        assert!(
            alice.remove_device(&first).is_err(),
            "a device cannot remove itself"
        );
        assert!(alice.remove_device(&laptop).expect("remove"));
        assert!(!alice.remove_device(&laptop).expect("remove again"));
        assert_eq!(alice.card().devices(), &[first]);
    }

    #[test]
    fn siblings_merge_each_others_cards() {
        let mut phone = Identity::generate("Bob", "bob@example.org").expect("identity");
        let (keypair, laptop_peer) = device_peer();
        phone.add_device(laptop_peer).expect("add");
        let mut laptop =
            Identity::join_device(&phone.export_for_device().expect("bundle"), keypair)
                .expect("join");

        // The laptop adds a third device; the phone merges that card.
        let (_, tablet) = device_peer();
        laptop.add_device(tablet).expect("add tablet");
        assert!(phone.merge_own_card(laptop.card()).expect("merge"));
        assert!(phone.card().has_device(&tablet));
        assert!(!phone.merge_own_card(laptop.card()).expect("merge again"));

        // The phone removes the laptop: the laptop refuses that card.
        phone.remove_device(&laptop_peer).expect("remove laptop");
        let err = laptop
            .merge_own_card(phone.card())
            .expect_err("removed device");
        assert!(err.to_string().contains("removed"), "{err}");
        assert!(laptop.card().has_device(&laptop_peer));

        // Another key's card is refused.
        let mallory = Identity::generate("Mallory", "bob@example.org").expect("identity");
        assert!(phone.merge_own_card(mallory.card()).is_err());
    }

    #[test]
    fn the_first_device_can_be_removed_by_another() {
        let mut phone = Identity::generate("Bob", "bob@example.org").expect("identity");
        let first = *phone.peer_id();
        let (keypair, laptop_peer) = device_peer();
        phone.add_device(laptop_peer).expect("add");
        let mut laptop =
            Identity::join_device(&phone.export_for_device().expect("bundle"), keypair)
                .expect("join");
        assert!(laptop.remove_device(&first).expect("remove the first"));
        assert_eq!(laptop.card().devices(), &[laptop_peer]);
        assert_eq!(laptop.card().peer_id(), &laptop_peer);
    }

    #[test]
    fn the_device_list_is_bounded() {
        let mut alice = Identity::generate("Alice", "alice@example.org").expect("identity");
        // Fifteen more devices in one self-signature (fifteen `add_device`
        // calls would each wait for the next second).
        let mut devices = alice.card().devices().to_vec();
        devices.extend((1..MAX_DEVICES).map(|_| device_peer().1));
        let full = rebind_devices(alice.tsk(), &devices).expect("rebind");
        alice.replace_cert(full).expect("sixteen devices");
        assert_eq!(alice.card().devices().len(), MAX_DEVICES);
        let err = alice
            .add_device(device_peer().1)
            .expect_err("a seventeenth");
        assert!(err.to_string().contains("remove one first"), "{err}");

        // A card that lists more is no card.
        devices.push(device_peer().1);
        let over = rebind_devices(alice.tsk(), &devices).expect("rebind");
        let err = ContactCard::from_cert(over.strip_secret_key_material()).expect_err("17");
        assert!(err.to_string().contains("at most 16"), "{err}");
    }

    #[test]
    fn a_device_notation_that_is_no_peer_id_makes_no_card() {
        let alice = Identity::generate("Alice", "alice@example.org").expect("identity");
        let tsk = alice.tsk();
        let policy = StandardPolicy::new();
        let valid = tsk.with_policy(&policy, None).expect("valid");
        let primary = valid.primary_userid().expect("user id");
        let userid = primary.userid().clone();
        let builder = SignatureBuilder::from(primary.binding_signature().clone())
            .set_signature_creation_time(
                primary
                    .binding_signature()
                    .signature_creation_time()
                    .expect("time")
                    + Duration::from_secs(1),
            )
            .and_then(|b| {
                b.add_notation(
                    DEVICE_NOTATION,
                    "not-a-peer-id",
                    NotationDataFlags::empty().set_human_readable(),
                    false,
                )
            })
            .expect("builder");
        let mut signer = crate::rotate::primary_keypair(tsk).expect("signer");
        let binding = userid.bind(&mut signer, tsk, builder).expect("bind");
        let cert = tsk
            .clone()
            .insert_packets(std::iter::once(Packet::from(binding)))
            .expect("insert")
            .0
            .strip_secret_key_material();
        let err = ContactCard::from_cert(cert).expect_err("bad device notation");
        assert!(
            err.to_string().contains("\"not-a-peer-id\" is invalid"),
            "{err}"
        );
    }
}
