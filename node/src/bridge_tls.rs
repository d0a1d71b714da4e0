//! The bridge's TLS certificate: self-signed, made once per node and kept,
//! so a mail client that accepted it once never sees a new one.
//!
//! The certificate is public (`bridge-cert.pem`); its private key is stored
//! encrypted under a key derived from the node's store key
//! (`bridge-key.enc`, AES-256-GCM), never in the clear.

use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio_rustls::rustls::ServerConfig;

use crate::home::{Home, write_atomic};

const AAD: &[u8] = b"mailnode bridge tls key v1";

fn key_encryption_key(store_key: &[u8; 32]) -> Aes256Gcm {
    let mut hasher = Sha256::new();
    hasher.update(b"mailnode bridge tls key encryption\0");
    hasher.update(store_key);
    Aes256Gcm::new(&hasher.finalize())
}

/// Loads the bridge certificate, creating it on first use. Returns the
/// rustls configuration and the certificate's SHA-256 fingerprint.
pub fn load_or_create(
    home: &Home,
    store_key: &[u8; 32],
) -> anyhow::Result<(Arc<ServerConfig>, String)> {
    let cert_path = home.bridge_cert_file();
    let key_path = home.bridge_key_file();
    let cipher = key_encryption_key(store_key);
    let (cert_pem, key_pem) = if cert_path.exists() && key_path.exists() {
        let cert_pem = std::fs::read_to_string(&cert_path)
            .with_context(|| format!("cannot read {}", cert_path.display()))?;
        let sealed = std::fs::read(&key_path)
            .with_context(|| format!("cannot read {}", key_path.display()))?;
        if sealed.len() < 12 {
            anyhow::bail!("{} is damaged (too short)", key_path.display());
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        let key_pem = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                aes_gcm::aead::Payload {
                    msg: ciphertext,
                    aad: AAD,
                },
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "{} cannot be decrypted with this node's key (damaged or from another node)",
                    key_path.display()
                )
            })?;
        let key_pem = String::from_utf8(key_pem).context("the bridge TLS key is damaged")?;
        (cert_pem, key_pem)
    } else {
        let (cert_pem, key_pem) = imap_bridge::tls::self_signed(&[
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ])?;
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                aes_gcm::aead::Payload {
                    msg: key_pem.as_bytes(),
                    aad: AAD,
                },
            )
            .map_err(|_| anyhow::anyhow!("cannot encrypt the bridge TLS key"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        write_atomic(&key_path, &sealed)?;
        write_atomic(&cert_path, cert_pem.as_bytes())?;
        tracing::info!("created the bridge's TLS certificate");
        (cert_pem, key_pem)
    };
    let config = imap_bridge::tls::server_config(&cert_pem, &key_pem)?;
    let fingerprint = imap_bridge::tls::fingerprint_sha256(&cert_pem)?;
    Ok((config, fingerprint))
}

/// The certificate's fingerprint, if the node has made one.
pub fn fingerprint(home: &Home) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(home.bridge_cert_file()) {
        Ok(pem) => Ok(Some(imap_bridge::tls::fingerprint_sha256(&pem)?)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err.into()),
    }
}
