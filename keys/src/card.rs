//! Contact cards: a person's public OpenPGP certificate, with the libp2p
//! PeerId bound into the primary user ID's self-signature.
//!
//! A card is an ordinary armored OpenPGP key, so `gpg --import` and
//! Thunderbird accept it; mailnode additionally requires the notation
//! [`PEER_ID_NOTATION`], a signing-capable key and an encryption-capable key.

use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use libp2p::PeerId;
use openpgp::Cert;
use openpgp::cert::ValidCert;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use openpgp::types::ReasonForRevocation;
use sequoia_openpgp as openpgp;

use crate::KeyError;

/// The notation name under which a certificate binds its owner's PeerId
/// (base58 text), in the primary user ID's self-signature.
pub const PEER_ID_NOTATION: &str = "peer-id@mailnode.org";

/// The notation name under which a certificate lists each further device
/// of its owner (one notation per device, base58 PeerId), beside
/// [`PEER_ID_NOTATION`], in the same self-signature (issue 8).
pub const DEVICE_NOTATION: &str = "device@mailnode.org";

/// Most devices one card may list, the first included.
pub const MAX_DEVICES: usize = 16;

/// A contact's public certificate and what mailnode reads from it.
#[derive(Clone, Debug)]
pub struct ContactCard {
    /// Shared: a card is cloned for every message its owner sends (the
    /// address book hands out copies), and a deep copy of a certificate is
    /// dozens of allocations.
    cert: Arc<Cert>,
    name: String,
    address: String,
    fingerprint: String,
    /// Every device's PeerId, the [`PEER_ID_NOTATION`] one first.
    devices: Vec<PeerId>,
    revocation: Option<Revocation>,
}

/// A key revocation: its time and the reason its owner gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// When the revocation takes effect (its signature's creation time).
    pub at: SystemTime,
    /// The reason code in words and the owner's text, e.g. `key retired:
    /// moved to a new key`.
    pub reason: String,
    /// Whether every signature by the key is void, whatever its date
    /// (reason "compromised" or unspecified, RFC 9580 §5.2.3.31); otherwise
    /// only signatures made after [`Revocation::at`] are.
    pub hard: bool,
}

impl Revocation {
    pub(crate) fn from_sigs(sigs: &[&openpgp::packet::Signature]) -> Revocation {
        // The earliest revocation counts: it is in force from then on.
        let sig = sigs
            .iter()
            .min_by_key(|sig| sig.signature_creation_time())
            .copied();
        let at = sig
            .and_then(|sig| sig.signature_creation_time())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let (code, text) = sig
            .and_then(|sig| sig.reason_for_revocation())
            .map(|(code, text)| (code, String::from_utf8_lossy(text).into_owned()))
            .unwrap_or((ReasonForRevocation::Unspecified, String::new()));
        let words = match code {
            ReasonForRevocation::KeyCompromised => "key compromised",
            ReasonForRevocation::KeySuperseded => "key superseded",
            ReasonForRevocation::KeyRetired => "key retired",
            ReasonForRevocation::UIDRetired => "user ID retired",
            _ => "no reason given",
        };
        let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
        let reason = if text.trim().is_empty() {
            words.to_string()
        } else {
            format!("{words}: {}", text.trim())
        };
        Revocation {
            at,
            reason,
            hard: code.revocation_type() == openpgp::types::RevocationType::Hard,
        }
    }

    /// The revocation time as RFC 3339 UTC, seconds precision.
    pub fn date(&self) -> String {
        chrono::DateTime::<chrono::Utc>::from(self.at)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

impl std::fmt::Display for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "revoked on {}, reason: {}", self.date(), self.reason)
    }
}

impl ContactCard {
    /// Reads a card from armored or binary OpenPGP bytes. Secret key material,
    /// if any, is dropped.
    pub fn from_bytes(bytes: &[u8]) -> Result<ContactCard, KeyError> {
        ContactCard::from_cert(public_cert(bytes)?)
    }

    /// Checks a certificate and extracts name, address and PeerId. A revoked
    /// certificate is refused: nobody should start writing to a revoked key.
    pub fn from_cert(cert: Cert) -> Result<ContactCard, KeyError> {
        let card = ContactCard::from_cert_even_revoked(cert)?;
        if let Some(revocation) = card.revocation() {
            return Err(KeyError::InvalidCard(format!(
                "the certificate is revoked ({revocation})"
            )));
        }
        Ok(card)
    }

    /// Like [`ContactCard::from_bytes`], but a revoked card is read too
    /// (see [`ContactCard::revocation`]): the address book keeps a contact's
    /// revoked card so that it can say why mail to them is refused.
    pub fn from_bytes_even_revoked(bytes: &[u8]) -> Result<ContactCard, KeyError> {
        ContactCard::from_cert_even_revoked(public_cert(bytes)?)
    }

    /// Like [`ContactCard::from_cert`], but a revoked card is read too. A
    /// card that is not revoked must have a usable signing and encryption
    /// key; a revoked one needs neither (it is kept only to refuse).
    pub fn from_cert_even_revoked(cert: Cert) -> Result<ContactCard, KeyError> {
        let policy = StandardPolicy::new();
        let valid = cert.with_policy(&policy, None).map_err(|err| {
            KeyError::InvalidCard(format!("the certificate is not valid now ({err})"))
        })?;
        let revocation = match valid.revocation_status() {
            openpgp::types::RevocationStatus::Revoked(sigs) => Some(Revocation::from_sigs(&sigs)),
            _ => None,
        };
        let (name, address, devices) = read_primary_user_id(&valid)?;
        if revocation.is_none() {
            if valid
                .keys()
                .alive()
                .revoked(false)
                .for_signing()
                .next()
                .is_none()
            {
                return Err(KeyError::InvalidCard("it has no valid signing key".into()));
            }
            if valid
                .keys()
                .alive()
                .revoked(false)
                .for_transport_encryption()
                .next()
                .is_none()
            {
                return Err(KeyError::InvalidCard(
                    "it has no valid encryption key".into(),
                ));
            }
        }
        let fingerprint = cert.fingerprint().to_hex();
        Ok(ContactCard {
            cert: Arc::new(cert),
            name,
            address,
            fingerprint,
            devices,
            revocation,
        })
    }

    /// When and why the owner revoked this key, if they did. Senders never
    /// encrypt to a revoked card ([`crate::check_encryption_key`] refuses).
    pub fn revocation(&self) -> Option<&Revocation> {
        self.revocation.as_ref()
    }

    /// Fingerprints of the keys a sender encrypts to today (the newest
    /// encryption subkey after a rotation; none for a revoked card).
    pub fn encryption_keys(&self) -> Vec<String> {
        if self.revocation.is_some() {
            return Vec::new();
        }
        let policy = StandardPolicy::new();
        self.cert
            .keys()
            .with_policy(&policy, None)
            .supported()
            .alive()
            .revoked(false)
            .for_transport_encryption()
            .map(|ka| ka.key().fingerprint().to_hex())
            .collect()
    }

    /// The OpenPGP certificate (public parts only).
    pub fn cert(&self) -> &Cert {
        &self.cert
    }

    /// The display name from the primary user ID (may be empty).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The mail address from the primary user ID, lower-cased.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The certificate fingerprint, upper-case hex without spaces.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The PeerId of the owner's first device (the [`PEER_ID_NOTATION`]
    /// one): what a node that predates device lists delivers to.
    pub fn peer_id(&self) -> &PeerId {
        &self.devices[0]
    }

    /// Every device the owner's mail goes to, the first device first, each
    /// once (issue 8). A sender delivers to each; a delivery from any of
    /// them is the owner's.
    pub fn devices(&self) -> &[PeerId] {
        &self.devices
    }

    /// Whether `peer` is one of the owner's devices.
    pub fn has_device(&self, peer: &PeerId) -> bool {
        self.devices.contains(peer)
    }

    /// The card as armored text (what `contacts export` prints).
    pub fn to_armored(&self) -> String {
        match self.cert.armored().to_vec() {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            // Serializing a parsed public certificate into memory cannot
            // fail in practice; an empty string makes any use of it fail
            // loudly at the reader.
            Err(_) => String::new(),
        }
    }

    /// The card as binary OpenPGP (what travels with a delivery).
    pub fn to_binary(&self) -> Vec<u8> {
        self.cert.to_vec().unwrap_or_default()
    }
}

/// The certificate in `bytes` (armored or binary), secret parts dropped.
fn public_cert(bytes: &[u8]) -> Result<Cert, KeyError> {
    Cert::from_bytes(bytes)
        .map(Cert::strip_secret_key_material)
        .map_err(|err| KeyError::InvalidCard(format!("it is not an OpenPGP certificate ({err})")))
}

/// Name, address and the devices' PeerIds (the first device first) from
/// the primary user ID and its self-signature.
fn read_primary_user_id(valid: &ValidCert<'_>) -> Result<(String, String, Vec<PeerId>), KeyError> {
    let primary = valid
        .primary_userid()
        .map_err(|_| KeyError::InvalidCard("it has no valid user ID".into()))?;
    let userid = primary.userid();
    let address = userid.email_normalized().ok().flatten().ok_or_else(|| {
        KeyError::InvalidCard(format!(
            "its user ID {:?} has no mail address",
            String::from_utf8_lossy(userid.value())
        ))
    })?;
    let name = userid.name().ok().flatten().unwrap_or_default().to_string();
    let signature = primary.binding_signature();
    let first = signature.notation(PEER_ID_NOTATION).next().ok_or_else(|| {
        KeyError::InvalidCard(format!(
            "it binds no mailnode PeerId (no {PEER_ID_NOTATION} notation); it is an OpenPGP \
             key but not a mailnode contact card"
        ))
    })?;
    let mut devices = vec![notation_peer_id(first)?];
    for value in signature.notation(DEVICE_NOTATION) {
        let device = notation_peer_id(value)?;
        if !devices.contains(&device) {
            devices.push(device);
        }
    }
    if devices.len() > MAX_DEVICES {
        return Err(KeyError::InvalidCard(format!(
            "it lists {} devices; at most {MAX_DEVICES} are allowed",
            devices.len()
        )));
    }
    Ok((name, address, devices))
}

/// A PeerId notation's value.
fn notation_peer_id(value: &[u8]) -> Result<PeerId, KeyError> {
    let text = std::str::from_utf8(value)
        .map_err(|_| KeyError::InvalidCard("its PeerId notation is not text".into()))?;
    PeerId::from_str(text)
        .map_err(|err| KeyError::InvalidCard(format!("its PeerId {text:?} is invalid ({err})")))
}
