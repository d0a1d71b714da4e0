//! Contact cards: a person's public OpenPGP certificate, with the libp2p
//! PeerId bound into the primary user ID's self-signature.
//!
//! A card is an ordinary armored OpenPGP key, so `gpg --import` and
//! Thunderbird accept it; mailnode additionally requires the notation
//! [`PEER_ID_NOTATION`], a signing-capable key and an encryption-capable key.

use std::str::FromStr;

use libp2p::PeerId;
use openpgp::Cert;
use openpgp::cert::ValidCert;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use sequoia_openpgp as openpgp;

use crate::KeyError;

/// The notation name under which a certificate binds its owner's PeerId
/// (base58 text), in the primary user ID's self-signature.
pub const PEER_ID_NOTATION: &str = "peer-id@mailnode.org";

/// A contact's public certificate and what mailnode reads from it.
#[derive(Clone, Debug)]
pub struct ContactCard {
    cert: Cert,
    name: String,
    address: String,
    fingerprint: String,
    peer_id: PeerId,
}

impl ContactCard {
    /// Reads a card from armored or binary OpenPGP bytes. Secret key material,
    /// if any, is dropped.
    pub fn from_bytes(bytes: &[u8]) -> Result<ContactCard, KeyError> {
        let cert = Cert::from_bytes(bytes).map_err(|err| {
            KeyError::InvalidCard(format!("it is not an OpenPGP certificate ({err})"))
        })?;
        ContactCard::from_cert(cert.strip_secret_key_material())
    }

    /// Checks a certificate and extracts name, address and PeerId.
    pub fn from_cert(cert: Cert) -> Result<ContactCard, KeyError> {
        let policy = StandardPolicy::new();
        let valid = cert.with_policy(&policy, None).map_err(|err| {
            KeyError::InvalidCard(format!("the certificate is not valid now ({err})"))
        })?;
        if let openpgp::types::RevocationStatus::Revoked(_) = valid.revocation_status() {
            return Err(KeyError::InvalidCard("the certificate is revoked".into()));
        }
        let (name, address, peer_id) = read_primary_user_id(&valid)?;
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
        let fingerprint = cert.fingerprint().to_hex();
        Ok(ContactCard {
            cert,
            name,
            address,
            fingerprint,
            peer_id,
        })
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

    /// The libp2p PeerId the owner's node authenticates as.
    pub fn peer_id(&self) -> &PeerId {
        &self.peer_id
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

/// Name, address and PeerId from the primary user ID and its self-signature.
fn read_primary_user_id(valid: &ValidCert<'_>) -> Result<(String, String, PeerId), KeyError> {
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
    let value = primary
        .binding_signature()
        .notation(PEER_ID_NOTATION)
        .next()
        .ok_or_else(|| {
            KeyError::InvalidCard(format!(
                "it binds no mailnode PeerId (no {PEER_ID_NOTATION} notation); it is an OpenPGP \
                 key but not a mailnode contact card"
            ))
        })?;
    let text = std::str::from_utf8(value)
        .map_err(|_| KeyError::InvalidCard("its PeerId notation is not text".into()))?;
    let peer_id = PeerId::from_str(text)
        .map_err(|err| KeyError::InvalidCard(format!("its PeerId {text:?} is invalid ({err})")))?;
    Ok((name, address, peer_id))
}
