//! Encryption at rest for the store: key derivation, AES-256-GCM sealing of
//! message blobs and outbox envelopes, and a keyed HMAC-SHA256 for lookup
//! tags (Sent dedupe, delivery idempotency).
//!
//! This module owns every use of the store key. It never touches SQLite; the
//! callers decide what is sealed and which associated data binds it.
//!
//! Sealed format: `nonce (12 bytes) || ciphertext || tag (16 bytes)`. The
//! nonce is random (96 bits, NIST SP 800-38D §8.2.2); the associated data
//! binds each blob to the row and the kind it belongs to, so that blobs cannot
//! be swapped between rows or between header and body without detection.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use imap_bridge::backend::StoreError;
use mailparse::MailHeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Length of the random nonce in front of every sealed blob.
const NONCE_LEN: usize = 12;
/// Length of the GCM tag at the end of every sealed blob.
const TAG_LEN: usize = 16;
/// HMAC-SHA256 block size (RFC 2104 §2: B = 64 for SHA-256).
const HMAC_BLOCK: usize = 64;

/// What a sealed blob holds; part of its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BlobKind {
    /// The header block of a message, including the blank line.
    Header,
    /// Everything after the header block.
    Body,
    /// Recipient, fingerprint and PeerId of an outbox entry.
    Envelope,
    /// The last delivery error of an outbox entry.
    LastError,
    /// The constant that proves the key at open.
    KeyCheck,
    /// The mailbox peer that holds a deposited outbox entry.
    MailboxPeer,
    /// The SORT and THREAD fields of a message (`imap_bridge::mime::SortFields`).
    SortFields,
}

impl BlobKind {
    fn tag(self) -> u8 {
        match self {
            BlobKind::Header => b'H',
            BlobKind::Body => b'B',
            BlobKind::Envelope => b'E',
            BlobKind::LastError => b'L',
            BlobKind::KeyCheck => b'K',
            BlobKind::MailboxPeer => b'M',
            BlobKind::SortFields => b'S',
        }
    }
}

/// Associated data for a blob: a version label, the kind and the owner
/// (a message blob's row id, or an outbox entry's delivery id).
pub(super) fn aad(kind: BlobKind, owner: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(24 + owner.len());
    aad.extend_from_slice(b"mailnode store v1");
    aad.push(kind.tag());
    aad.extend_from_slice(owner);
    aad
}

/// Associated data of a message blob, bound to its `blobs` row id.
pub(super) fn blob_aad(kind: BlobKind, blob_id: i64) -> Vec<u8> {
    aad(kind, &blob_id.to_be_bytes())
}

/// The keys derived from the 32-byte store key.
pub(super) struct Crypto {
    cipher: Aes256Gcm,
    mac_key: Zeroizing<[u8; 32]>,
}

impl Crypto {
    /// Derives the encryption and MAC keys from the store key. Separate
    /// labels keep the two uses independent.
    pub(super) fn new(key: &[u8; 32]) -> Crypto {
        let enc_key = Zeroizing::new(derive(b"mailnode store v1 enc", key));
        let mac_key = Zeroizing::new(derive(b"mailnode store v1 mac", key));
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(enc_key.as_slice()));
        Crypto { cipher, mac_key }
    }

    /// Encrypts `plaintext` under a fresh random nonce.
    pub(super) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, &mut out[NONCE_LEN..])
            .map_err(|_| StoreError::Internal("cannot encrypt a blob (too large)".into()))?;
        out.extend_from_slice(tag.as_slice());
        Ok(out)
    }

    /// Decrypts a blob made by [`Crypto::seal`] with the same `aad`.
    pub(super) fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut plain = Vec::new();
        self.open_into(aad, sealed, &mut plain)?;
        Ok(plain)
    }

    /// Like [`Crypto::open`], appending the plaintext to `out` (which is
    /// left as it was on failure).
    pub(super) fn open_into(
        &self,
        aad: &[u8],
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(corrupt());
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let start = out.len();
        out.extend_from_slice(ciphertext);
        let decrypted = self.cipher.decrypt_in_place_detached(
            Nonce::from_slice(nonce),
            aad,
            &mut out[start..],
            Tag::from_slice(tag),
        );
        if decrypted.is_err() {
            out.truncate(start);
            return Err(corrupt());
        }
        Ok(())
    }

    /// HMAC-SHA256 (RFC 2104) under the MAC key over the concatenation of
    /// `parts`. Built on `sha2` directly to avoid another dependency.
    pub(super) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ipad = Zeroizing::new([0x36u8; HMAC_BLOCK]);
        let mut opad = Zeroizing::new([0x5cu8; HMAC_BLOCK]);
        for (i, byte) in self.mac_key.iter().enumerate() {
            ipad[i] ^= byte;
            opad[i] ^= byte;
        }
        let mut inner = Sha256::new();
        inner.update(ipad.as_slice());
        for part in parts {
            inner.update(part);
        }
        let inner = inner.finalize();
        let mut outer = Sha256::new();
        outer.update(opad.as_slice());
        outer.update(inner);
        outer.finalize().into()
    }

    /// The lookup tag of a message's Message-ID (Sent dedupe), if it has
    /// one. Only the tag is stored, never the Message-ID itself.
    pub(super) fn message_id_tag(&self, header: &[u8]) -> Option<[u8; 32]> {
        let (headers, _) = mailparse::parse_headers(header).ok()?;
        let value = headers.get_first_value("Message-ID")?;
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        Some(self.mac(&[b"message-id\0", value.as_bytes()]))
    }

    /// The idempotency tag of a delivery: who sent it and its id. Stored
    /// instead of the PeerId so the table does not list correspondents.
    pub(super) fn delivery_tag(&self, peer: &str, delivery_id: &[u8; 16]) -> [u8; 32] {
        self.mac(&[b"delivery\0", peer.as_bytes(), b"\0", delivery_id])
    }
}

fn derive(label: &[u8], key: &[u8; 32]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(label);
    hash.update(key);
    hash.finalize().into()
}

fn corrupt() -> StoreError {
    StoreError::Internal(
        "a stored blob failed authentication (wrong store key or a damaged database)".into(),
    )
}

/// Length of the header block of `message`: up to and including the first
/// empty line (CRLF or bare LF). A message without an empty line is all
/// header (RFC 5322 §2.1: the body is optional).
pub(super) fn header_len(message: &[u8]) -> usize {
    let mut line_start = 0;
    while line_start < message.len() {
        let rest = &message[line_start..];
        if rest.starts_with(b"\r\n") {
            return line_start + 2;
        }
        if rest.starts_with(b"\n") {
            return line_start + 1;
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(newline) => line_start += newline + 1,
            None => return message.len(),
        }
    }
    message.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crypto() -> Crypto {
        Crypto::new(&[7u8; 32])
    }

    #[test]
    fn seal_open_roundtrip() {
        let c = crypto();
        let aad = blob_aad(BlobKind::Body, 42);
        let sealed = c.seal(&aad, b"hello world").expect("seal");
        assert_eq!(sealed.len(), 11 + NONCE_LEN + TAG_LEN);
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        assert_eq!(c.open(&aad, &sealed).expect("open"), b"hello world");
    }

    #[test]
    fn open_rejects_other_row_kind_key_and_tampering() {
        let c = crypto();
        let sealed = c.seal(&blob_aad(BlobKind::Header, 1), b"x").expect("seal");
        assert!(c.open(&blob_aad(BlobKind::Header, 2), &sealed).is_err());
        assert!(c.open(&blob_aad(BlobKind::Body, 1), &sealed).is_err());
        assert!(
            Crypto::new(&[8u8; 32])
                .open(&blob_aad(BlobKind::Header, 1), &sealed)
                .is_err()
        );
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(c.open(&blob_aad(BlobKind::Header, 1), &bad).is_err());
        assert!(
            c.open(&blob_aad(BlobKind::Header, 1), &sealed[..10])
                .is_err()
        );
    }

    #[test]
    fn hmac_matches_rfc4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        // Our MAC key is derived, so check the construction on a Crypto
        // whose mac_key is set to the padded test key.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let c = Crypto {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&[0u8; 32])),
            mac_key: Zeroizing::new(key),
        };
        let mac = c.mac(&[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn message_id_tag_is_keyed_and_trimmed() {
        let c = crypto();
        let a = c.message_id_tag(b"Subject: x\r\nMessage-ID: <a@b>\r\n\r\n");
        let b = c.message_id_tag(b"message-id:   <a@b>  \r\n\r\n");
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(
            a,
            Crypto::new(&[1u8; 32]).message_id_tag(b"Message-ID: <a@b>\r\n\r\n")
        );
        assert_eq!(c.message_id_tag(b"Subject: none\r\n\r\n"), None);
    }

    #[test]
    fn header_len_finds_the_blank_line() {
        assert_eq!(header_len(b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\n"), 14);
        assert_eq!(header_len(b"A: 1\nB: 2\n\nbody"), 11);
        assert_eq!(header_len(b"\r\nbody"), 2);
        assert_eq!(header_len(b"A: 1\r\nno blank line"), 19);
        assert_eq!(header_len(b""), 0);
    }
}
