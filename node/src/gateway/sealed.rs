//! Small files of the gateway sealed under the store key: AES-256-GCM with
//! a key derived per purpose (`label`) from the store key, a random nonce
//! in front, and associated data that binds the file to what it belongs to.
//!
//! The store key lives only in the OS keyring or under the user's
//! passphrase (`keys` crate), so a sealed file is useless on its own.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;

fn cipher(label: &[u8], store_key: &[u8; 32]) -> Aes256Gcm {
    let mut hasher = Sha256::new();
    hasher.update(label);
    hasher.update(store_key);
    Aes256Gcm::new(&hasher.finalize())
}

/// Encrypts `plain`; the result is `nonce || ciphertext`.
pub fn seal(label: &[u8], store_key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let sealed = cipher(label, store_key)
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        // AES-GCM fails only for inputs beyond 64 GiB.
        .expect("AES-GCM seals any file of the gateway");
    let mut file = nonce.to_vec();
    file.extend_from_slice(&sealed);
    file
}

/// Decrypts what [`seal`] made with the same label, key and `aad`; `None`
/// when it is damaged or belongs to another key or purpose.
pub fn open(
    label: &[u8],
    store_key: &[u8; 32],
    aad: &[u8],
    file: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if file.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = file.split_at(NONCE_LEN);
    cipher(label, store_key)
        .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let key = [3u8; 32];
        let file = seal(b"purpose\0", &key, b"aad", b"plain text");
        assert!(!file.windows(5).any(|w| w == b"plain"));
        assert_eq!(
            open(b"purpose\0", &key, b"aad", &file)
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"plain text"[..])
        );
        assert!(open(b"other\0", &key, b"aad", &file).is_none());
        assert!(open(b"purpose\0", &[4u8; 32], b"aad", &file).is_none());
        assert!(open(b"purpose\0", &key, b"other", &file).is_none());
        assert!(open(b"purpose\0", &key, b"aad", &file[..5]).is_none());
    }
}
