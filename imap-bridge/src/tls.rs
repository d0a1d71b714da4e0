//! TLS material for the bridge: the self-signed certificate that the node
//! makes once, the rustls server configuration built from it, and the
//! certificate fingerprint shown to users so they can check what their mail
//! client is asked to accept.
//!
//! This module owns PEM/DER handling and the choice of crypto provider. It
//! does not store anything: the node keeps the certificate and (encrypted)
//! key on disk. It never installs a process-wide rustls default provider;
//! the `ring` provider is passed explicitly so that the node and tests work
//! whatever else in the process uses rustls.

use std::sync::Arc;

use chrono::Datelike;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Why certificate generation or loading failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen could not build or sign the certificate.
    #[error("cannot generate the bridge TLS certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The certificate PEM holds no certificate or cannot be decoded.
    #[error("the bridge TLS certificate is not valid PEM: {0}")]
    CertificatePem(String),
    /// The key PEM holds no private key or cannot be decoded.
    #[error("the bridge TLS private key is not valid PEM: {0}")]
    KeyPem(String),
    /// rustls refused the certificate/key pair (for example a key that does
    /// not match the certificate).
    #[error("the bridge TLS certificate and key cannot be used: {0}")]
    Config(#[from] rustls::Error),
}

/// How long the self-signed certificate stays valid. Mail clients pin the
/// certificate the user accepted once; a certificate that expires would
/// bring the warning back, so it is made effectively permanent.
const VALIDITY_YEARS: i32 = 100;

/// Makes a self-signed ECDSA P-256 certificate for the bridge.
///
/// The subject alternative names always include `localhost` and
/// `127.0.0.1`, plus every entry of `names` (IP addresses become IP SANs,
/// anything else a DNS name). Duplicates are dropped. The certificate is
/// valid from yesterday (tolerating a slightly wrong clock) for about 100
/// years. Returns `(certificate PEM, PKCS#8 private key PEM)`.
pub fn self_signed(names: &[String]) -> Result<(String, String), TlsError> {
    let mut sans: Vec<String> = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    for name in names {
        let name = name.trim();
        if !name.is_empty() && !sans.iter().any(|known| known.eq_ignore_ascii_case(name)) {
            sans.push(name.to_string());
        }
    }
    let mut params = rcgen::CertificateParams::new(sans)?;
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::CommonName, "mailnode bridge");
    subject.push(rcgen::DnType::OrganizationName, "mailnode");
    params.distinguished_name = subject;

    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    let month = u8::try_from(yesterday.month()).unwrap_or(1);
    // Day 28 at most, so that the expiry date exists in every year.
    let day = u8::try_from(yesterday.day().min(28)).unwrap_or(1);
    params.not_before = rcgen::date_time_ymd(yesterday.year(), month, day);
    params.not_after = rcgen::date_time_ymd(yesterday.year() + VALIDITY_YEARS, month, day);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Builds the rustls server configuration for the bridge from a certificate
/// chain and private key in PEM form.
///
/// Uses the `ring` provider explicitly (no global default needed) with its
/// safe default protocol versions (TLS 1.2 and 1.3). No client certificates
/// are requested. ALPN is not set: IMAP and SMTP do not use it here.
pub fn server_config(cert_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certificates(cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|err| TlsError::KeyPem(err.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// The SHA-256 fingerprint of the first certificate in `cert_pem`, computed
/// over its DER encoding and written as upper-case hex pairs joined by
/// colons (`AB:CD:...`, 95 characters), the way Thunderbird and OpenSSL show
/// it.
pub fn fingerprint_sha256(cert_pem: &str) -> Result<String, TlsError> {
    let chain = certificates(cert_pem)?;
    let first = chain
        .first()
        .ok_or_else(|| TlsError::CertificatePem("no certificate found".to_string()))?;
    Ok(colon_hex(&Sha256::digest(first.as_ref())))
}

/// Decodes every `CERTIFICATE` block of a PEM text; at least one is required.
fn certificates(cert_pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::CertificatePem(err.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::CertificatePem("no certificate found".to_string()));
    }
    Ok(chain)
}

/// `[0xab, 0x01]` -> `"AB:01"`.
fn colon_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 3);
    for (index, byte) in bytes.iter().enumerate() {
        if index > 0 {
            out.push(':');
        }
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colon_hex_formats_pairs() {
        assert_eq!(colon_hex(&[0xab, 0x01, 0xff]), "AB:01:FF");
        assert_eq!(colon_hex(&[]), "");
    }

    #[test]
    fn self_signed_certificate_loads_into_rustls() {
        let (cert, key) =
            self_signed(&["mail.example".to_string(), "::1".to_string()]).expect("generate");
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.contains("PRIVATE KEY"));
        server_config(&cert, &key).expect("rustls accepts the pair");
    }

    #[test]
    fn fingerprint_has_32_uppercase_pairs_and_is_stable() {
        let (cert, _key) = self_signed(&[]).expect("generate");
        let fingerprint = fingerprint_sha256(&cert).expect("fingerprint");
        assert_eq!(fingerprint.len(), 32 * 3 - 1);
        assert!(fingerprint.split(':').all(|pair| {
            pair.len() == 2
                && pair
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
        }));
        assert_eq!(fingerprint_sha256(&cert).expect("again"), fingerprint);
    }

    #[test]
    fn two_certificates_differ() {
        let (first, _) = self_signed(&[]).expect("first");
        let (second, _) = self_signed(&[]).expect("second");
        assert_ne!(
            fingerprint_sha256(&first).expect("first"),
            fingerprint_sha256(&second).expect("second")
        );
    }

    #[test]
    fn mismatched_key_is_refused() {
        let (cert, _) = self_signed(&[]).expect("first");
        let (_, other_key) = self_signed(&[]).expect("second");
        assert!(server_config(&cert, &other_key).is_err());
    }

    #[test]
    fn garbage_pem_is_an_error_not_a_panic() {
        assert!(matches!(
            fingerprint_sha256("not a certificate"),
            Err(TlsError::CertificatePem(_))
        ));
        let (cert, _) = self_signed(&[]).expect("generate");
        assert!(matches!(
            server_config(
                &cert,
                "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n"
            ),
            Err(TlsError::KeyPem(_))
        ));
    }
}
