//! The signed locator record: where a node can be reached right now.
//!
//! Each node publishes one record in the DHT under [`key`]`(its PeerId)`:
//! its current addresses (listen, confirmed external and relay circuit
//! addresses), the PeerIds of the mailbox peers it chose, a sequence number
//! and an expiry of at most 48 h, signed by its libp2p key. Every node
//! checks every record it stores (PutRecord) and every record it looks up
//! (signature, PeerId, key, seq, expiry, size) with [`Locator::verify`];
//! a bad record is refused and never used. The format is specified in
//! `docs/protocol.md` ("Locator records").
//!
//! This module owns the format and its checks. It does no I/O and keeps no
//! state: which record to keep when two arrive is the caller's rule
//! (the higher `seq` wins).

use std::time::Duration;

use libp2p::identity::{Keypair, PublicKey};
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The largest encoded record accepted anywhere (DHT store, lookup).
pub const MAX_RECORD_BYTES: usize = 4096;
/// The longest a record may claim to be valid.
pub const MAX_LIFETIME: Duration = Duration::from_secs(48 * 3600);
/// How far in the future a record's expiry may lie beyond [`MAX_LIFETIME`]
/// (clock skew between nodes).
const CLOCK_SKEW_SECS: u64 = 300;
/// At most this many addresses in one record.
pub const MAX_ADDRS: usize = 24;
/// At most this many mailbox peers in one record.
pub const MAX_MAILBOXES: usize = 8;

/// Domain separation of the record key and of the signature, so neither can
/// be mistaken for anything else signed or hashed by the same key.
const KEY_DOMAIN: &[u8] = b"mailnode-locator-key-v1";
const SIGNATURE_DOMAIN: &[u8] = b"mailnode-locator-record-v1";

/// The DHT key of `peer`'s locator record.
pub fn key(peer: &PeerId) -> libp2p::kad::RecordKey {
    let mut hash = Sha256::new();
    hash.update(KEY_DOMAIN);
    hash.update(peer.to_bytes());
    libp2p::kad::RecordKey::new(&hash.finalize().to_vec())
}

/// Where a node can be reached, as its record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locator {
    /// Whose record this is.
    pub peer: PeerId,
    /// Addresses to dial, best first.
    pub addrs: Vec<Multiaddr>,
    /// The mailbox peers that hold mail for this node while it is away.
    pub mailboxes: Vec<PeerId>,
    /// Higher replaces lower (milliseconds since the epoch at signing).
    pub seq: u64,
    /// Unix seconds after which the record is void.
    pub expires: u64,
}

/// Why a record was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LocatorError {
    /// Larger than [`MAX_RECORD_BYTES`].
    #[error("the locator record is {0} bytes, more than the limit of {MAX_RECORD_BYTES}")]
    TooLarge(usize),
    /// Not CBOR of the record schema, or a field does not parse.
    #[error("the locator record is malformed: {0}")]
    Malformed(String),
    /// The signature does not verify with the record's key.
    #[error("the locator record's signature is not valid")]
    BadSignature,
    /// The record's key is not the PeerId it claims, or not the one asked.
    #[error("the locator record is for peer {found}, expected {expected}")]
    WrongPeer {
        /// What the record says.
        found: String,
        /// What the caller expected.
        expected: String,
    },
    /// Stored under another DHT key than its PeerId's.
    #[error("the locator record is stored under a key that is not its PeerId's")]
    WrongKey,
    /// The expiry has passed.
    #[error("the locator record expired at {0} (Unix time)")]
    Expired(u64),
    /// The expiry is further away than 48 h.
    #[error("the locator record claims to be valid until {0} (Unix time), more than 48 h ahead")]
    TooLong(u64),
    /// More addresses or mailbox peers than allowed.
    #[error("the locator record lists too many {0}")]
    TooMany(&'static str),
}

/// The signed part, as encoded.
#[derive(Serialize, Deserialize)]
struct Content {
    #[serde(with = "serde_bytes")]
    peer: Vec<u8>,
    addrs: Vec<serde_bytes::ByteBuf>,
    mailboxes: Vec<serde_bytes::ByteBuf>,
    seq: u64,
    expires: u64,
}

/// The record value: the content, the public key and the signature.
#[derive(Serialize, Deserialize)]
struct Envelope {
    #[serde(with = "serde_bytes")]
    content: Vec<u8>,
    #[serde(with = "serde_bytes")]
    public_key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

impl Locator {
    /// Encodes and signs the record with `keypair`, which must be the key of
    /// `self.peer`.
    pub fn sign(&self, keypair: &Keypair) -> Result<Vec<u8>, LocatorError> {
        if keypair.public().to_peer_id() != self.peer {
            return Err(LocatorError::WrongPeer {
                found: keypair.public().to_peer_id().to_string(),
                expected: self.peer.to_string(),
            });
        }
        let content = Content {
            peer: self.peer.to_bytes(),
            addrs: self
                .addrs
                .iter()
                .take(MAX_ADDRS)
                .map(|a| serde_bytes::ByteBuf::from(a.to_vec()))
                .collect(),
            mailboxes: self
                .mailboxes
                .iter()
                .take(MAX_MAILBOXES)
                .map(|p| serde_bytes::ByteBuf::from(p.to_bytes()))
                .collect(),
            seq: self.seq,
            expires: self.expires,
        };
        let content = encode(&content)?;
        let signature = keypair
            .sign(&signed_bytes(&content))
            .map_err(|err| LocatorError::Malformed(format!("cannot sign: {err}")))?;
        let bytes = encode(&Envelope {
            content,
            public_key: keypair.public().encode_protobuf(),
            signature,
        })?;
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(LocatorError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// Decodes and checks a record: size, schema, signature, that the key
    /// is the claimed PeerId's, `expected` if given, and the expiry against
    /// `now` (Unix seconds).
    pub fn verify(
        bytes: &[u8],
        expected: Option<&PeerId>,
        now: u64,
    ) -> Result<Locator, LocatorError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(LocatorError::TooLarge(bytes.len()));
        }
        let envelope: Envelope = decode(bytes)?;
        let public_key = PublicKey::try_decode_protobuf(&envelope.public_key)
            .map_err(|err| LocatorError::Malformed(format!("public key: {err}")))?;
        if !public_key.verify(&signed_bytes(&envelope.content), &envelope.signature) {
            return Err(LocatorError::BadSignature);
        }
        let content: Content = decode(&envelope.content)?;
        let peer = PeerId::from_bytes(&content.peer)
            .map_err(|err| LocatorError::Malformed(format!("PeerId: {err}")))?;
        if public_key.to_peer_id() != peer {
            return Err(LocatorError::WrongPeer {
                found: public_key.to_peer_id().to_string(),
                expected: peer.to_string(),
            });
        }
        if let Some(expected) = expected
            && *expected != peer
        {
            return Err(LocatorError::WrongPeer {
                found: peer.to_string(),
                expected: expected.to_string(),
            });
        }
        if content.expires <= now {
            return Err(LocatorError::Expired(content.expires));
        }
        if content.expires > now + MAX_LIFETIME.as_secs() + CLOCK_SKEW_SECS {
            return Err(LocatorError::TooLong(content.expires));
        }
        if content.addrs.len() > MAX_ADDRS {
            return Err(LocatorError::TooMany("addresses"));
        }
        if content.mailboxes.len() > MAX_MAILBOXES {
            return Err(LocatorError::TooMany("mailbox peers"));
        }
        let addrs = content
            .addrs
            .iter()
            .map(|bytes| {
                Multiaddr::try_from(bytes.to_vec())
                    .map_err(|err| LocatorError::Malformed(format!("address: {err}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mailboxes = content
            .mailboxes
            .iter()
            .map(|bytes| {
                PeerId::from_bytes(bytes)
                    .map_err(|err| LocatorError::Malformed(format!("mailbox PeerId: {err}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Locator {
            peer,
            addrs,
            mailboxes,
            seq: content.seq,
            expires: content.expires,
        })
    }

    /// Checks a record found or offered under DHT key `key`: everything
    /// [`Locator::verify`] checks, and that the key is the record's PeerId's.
    pub fn verify_record(
        record_key: &libp2p::kad::RecordKey,
        bytes: &[u8],
        now: u64,
    ) -> Result<Locator, LocatorError> {
        let locator = Locator::verify(bytes, None, now)?;
        if key(&locator.peer) != *record_key {
            return Err(LocatorError::WrongKey);
        }
        Ok(locator)
    }
}

fn signed_bytes(content: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SIGNATURE_DOMAIN.len() + content.len());
    bytes.extend_from_slice(SIGNATURE_DOMAIN);
    bytes.extend_from_slice(content);
    bytes
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, LocatorError> {
    cbor4ii::serde::to_vec(Vec::new(), value)
        .map_err(|err| LocatorError::Malformed(format!("cannot encode: {err}")))
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, LocatorError> {
    cbor4ii::serde::from_slice(bytes).map_err(|err| LocatorError::Malformed(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn sample(keypair: &Keypair) -> Locator {
        Locator {
            peer: keypair.public().to_peer_id(),
            addrs: vec!["/ip4/198.51.100.7/tcp/4870".parse().unwrap()],
            mailboxes: vec![Keypair::generate_ed25519().public().to_peer_id()],
            seq: 7,
            expires: NOW + 3600,
        }
    }

    #[test]
    fn a_signed_record_verifies_and_round_trips() {
        let keypair = Keypair::generate_ed25519();
        let locator = sample(&keypair);
        let bytes = locator.sign(&keypair).unwrap();
        let back = Locator::verify(&bytes, Some(&locator.peer), NOW).unwrap();
        assert_eq!(back, locator);
        assert_eq!(
            Locator::verify_record(&key(&locator.peer), &bytes, NOW).unwrap(),
            locator
        );
    }

    #[test]
    fn forged_expired_and_misfiled_records_are_refused() {
        let keypair = Keypair::generate_ed25519();
        let locator = sample(&keypair);
        let mut bytes = locator.sign(&keypair).unwrap();
        // Expired, and too far ahead.
        assert_eq!(
            Locator::verify(&bytes, None, NOW + 3600),
            Err(LocatorError::Expired(NOW + 3600))
        );
        let long = Locator {
            expires: NOW + 49 * 3600,
            ..locator.clone()
        };
        let long_bytes = long.sign(&keypair).unwrap();
        assert!(matches!(
            Locator::verify(&long_bytes, None, NOW),
            Err(LocatorError::TooLong(_))
        ));
        // Another peer's record, asked for the wrong peer or under the wrong key.
        let other = Keypair::generate_ed25519().public().to_peer_id();
        assert!(matches!(
            Locator::verify(&bytes, Some(&other), NOW),
            Err(LocatorError::WrongPeer { .. })
        ));
        assert_eq!(
            Locator::verify_record(&key(&other), &bytes, NOW),
            Err(LocatorError::WrongKey)
        );
        // A flipped byte anywhere in the content breaks the signature or the schema.
        let last = bytes.len() - 70;
        bytes[last] ^= 0x01;
        assert!(Locator::verify(&bytes, None, NOW).is_err());
        // Signed by one key, claiming another's PeerId.
        let mallory = Keypair::generate_ed25519();
        assert!(matches!(
            locator.sign(&mallory),
            Err(LocatorError::WrongPeer { .. })
        ));
    }

    #[test]
    fn oversized_and_garbage_records_are_refused() {
        assert_eq!(
            Locator::verify(&vec![0u8; MAX_RECORD_BYTES + 1], None, NOW),
            Err(LocatorError::TooLarge(MAX_RECORD_BYTES + 1))
        );
        assert!(matches!(
            Locator::verify(b"\xa1\x61x\x01", None, NOW),
            Err(LocatorError::Malformed(_))
        ));
    }

    #[test]
    fn a_record_signed_by_another_key_fails_the_signature_check() {
        let keypair = Keypair::generate_ed25519();
        let locator = sample(&keypair);
        let bytes = locator.sign(&keypair).unwrap();
        let mut envelope: Envelope = decode(&bytes).unwrap();
        let mallory = Keypair::generate_ed25519();
        envelope.signature = mallory.sign(&signed_bytes(&envelope.content)).unwrap();
        let forged = encode(&envelope).unwrap();
        assert_eq!(
            Locator::verify(&forged, None, NOW),
            Err(LocatorError::BadSignature)
        );
        envelope.public_key = mallory.public().encode_protobuf();
        let forged = encode(&envelope).unwrap();
        assert!(matches!(
            Locator::verify(&forged, None, NOW),
            Err(LocatorError::WrongPeer { .. })
        ));
    }
}
