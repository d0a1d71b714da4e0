//! Encryption without an OpenPGP signature, for containers whose author is
//! authenticated some other way (the mailbox envelope of `node`, signed with
//! the sender's libp2p key inside the encryption).
//!
//! [`encrypt_to`] encrypts to one contact's card only (not to ourselves:
//! nobody but the recipient ever needs to read an envelope), in binary
//! OpenPGP to keep it small. [`Identity::decrypt_unsigned`] decrypts with our
//! key and insists the message is encrypted and integrity-protected, but does
//! not look for a signature; callers must authenticate the plaintext
//! themselves. Everything that needs a signed message uses
//! [`Identity::seal`] / [`Identity::open`] instead.

use std::io::{Read, Write};

use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::Parse;
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message, Recipient};
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, KeyHandle};
use sequoia_openpgp as openpgp;

use crate::{ContactCard, Identity, KeyError};

/// Encrypts `plaintext` to `recipient`'s encryption keys, without signing it
/// and without an extra recipient. Returns a binary OpenPGP message.
pub fn encrypt_to(recipient: &ContactCard, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
    let policy = StandardPolicy::new();
    let recipients = transport_keys(recipient.cert(), &policy)?;
    let mut sink = Vec::with_capacity(plaintext.len() + 1024);
    {
        let message = Message::new(&mut sink);
        let message = Encryptor::for_recipients(message, recipients)
            .build()
            .map_err(KeyError::pgp)?;
        let mut literal = LiteralWriter::new(message).build().map_err(KeyError::pgp)?;
        literal.write_all(plaintext).map_err(KeyError::pgp)?;
        literal.finalize().map_err(KeyError::pgp)?;
    }
    Ok(sink)
}

/// The keys of `cert` that can encrypt today (supported, alive, not
/// revoked, for transport encryption); an error naming the certificate
/// when there is none.
pub(crate) fn transport_keys<'a>(
    cert: &'a Cert,
    policy: &'a StandardPolicy<'a>,
) -> Result<Vec<Recipient<'a>>, KeyError> {
    // Subkeys of a revoked certificate are not marked revoked themselves:
    // the certificate's own status must be checked.
    if let Ok(valid) = cert.with_policy(policy, None)
        && let openpgp::types::RevocationStatus::Revoked(sigs) = valid.revocation_status()
    {
        return Err(KeyError::Revoked(format!(
            "the key {} was {}; mailnode no longer encrypts to it",
            cert.fingerprint(),
            crate::card::Revocation::from_sigs(&sigs)
        )));
    }
    let keys: Vec<Recipient<'a>> = cert
        .keys()
        .with_policy(policy, None)
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .map(Recipient::from)
        .collect();
    if keys.is_empty() {
        return Err(KeyError::OpenPgp(format!(
            "the certificate {} has no usable encryption key (expired, revoked or too weak)",
            cert.fingerprint()
        )));
    }
    Ok(keys)
}

/// Checks that `cert` has a key we can encrypt to today.
pub fn check_encryption_key(cert: &Cert) -> Result<(), KeyError> {
    transport_keys(cert, &StandardPolicy::new()).map(|_| ())
}

impl Identity {
    /// Decrypts a message encrypted to us, signed or not, and returns its
    /// plaintext. Refuses a message that is not encrypted, not to us, fails
    /// its integrity check, or whose plaintext exceeds `max_plaintext` bytes
    /// (which also bounds what a compressed message can expand to).
    ///
    /// No signature is checked: the caller authenticates the content.
    pub fn decrypt_unsigned(
        &self,
        ciphertext: &[u8],
        max_plaintext: usize,
    ) -> Result<Vec<u8>, KeyError> {
        self.decrypt_from(ciphertext, max_plaintext, None)
            .map(|(plaintext, _)| plaintext)
    }

    /// Like [`Identity::decrypt_unsigned`], and also says whether the
    /// message carries a good signature by `signer` (a key we hold for its
    /// sender, such as one from an Autocrypt header): the fingerprint of
    /// `signer` when it does. A missing or bad signature is not an error
    /// here; the caller decides what it means.
    pub fn decrypt_from(
        &self,
        ciphertext: &[u8],
        max_plaintext: usize,
        signer: Option<&Cert>,
    ) -> Result<(Vec<u8>, Option<String>), KeyError> {
        let policy = StandardPolicy::new();
        let helper = UnsignedHelper {
            identity: self,
            decrypted: false,
            signer,
            good_signature: None,
        };
        let decryptor = DecryptorBuilder::from_bytes(ciphertext)
            .map_err(|err| KeyError::Refused(format!("it is not an OpenPGP message ({err})")))?
            .with_policy(&policy, None, helper)
            .map_err(|err| {
                KeyError::Refused(format!("it cannot be decrypted with our key ({err})"))
            })?;
        let limit = u64::try_from(max_plaintext)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut plaintext = Vec::with_capacity(ciphertext.len().min(max_plaintext));
        let mut reader = decryptor.take(limit);
        reader.read_to_end(&mut plaintext).map_err(|err| {
            KeyError::Refused(format!("it cannot be decrypted with our key ({err})"))
        })?;
        if plaintext.len() > max_plaintext {
            return Err(KeyError::Refused(format!(
                "its content exceeds the limit of {max_plaintext} bytes"
            )));
        }
        let decryptor = reader.into_inner();
        // `check` ran when the last byte was read; an unfinished message
        // (we stopped at the limit) never gets here.
        let helper = decryptor.helper_ref();
        if !helper.decrypted {
            return Err(KeyError::Refused(
                "it is not encrypted to our key".to_string(),
            ));
        }
        let good_signature = helper.good_signature.clone();
        Ok((plaintext, good_signature))
    }
}

struct UnsignedHelper<'a> {
    identity: &'a Identity,
    decrypted: bool,
    signer: Option<&'a Cert>,
    good_signature: Option<String>,
}

impl VerificationHelper for UnsignedHelper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.signer.into_iter().cloned().collect())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        let mut encrypted = false;
        for layer in structure {
            match layer {
                MessageLayer::Encryption { .. } => encrypted = true,
                MessageLayer::SignatureGroup { results } => {
                    for result in results.into_iter().flatten() {
                        let fingerprint = result.ka.cert().fingerprint();
                        if self.signer.is_some_and(|s| s.fingerprint() == fingerprint) {
                            self.good_signature = Some(fingerprint.to_hex());
                        }
                    }
                }
                MessageLayer::Compression { .. } => {}
            }
        }
        if !encrypted {
            return Err(
                openpgp::Error::InvalidOperation("the message is not encrypted".into()).into(),
            );
        }
        Ok(())
    }
}

impl DecryptionHelper for UnsignedHelper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        for pkesk in pkesks {
            for keypair in self.identity.decryption_keys() {
                let mut keypair = keypair.clone();
                if let Some((algo, session_key)) = pkesk.decrypt(&mut keypair, sym_algo)
                    && decrypt(algo, &session_key)
                {
                    self.decrypted = true;
                    return Ok(None);
                }
            }
        }
        Err(openpgp::Error::InvalidOperation("it is not encrypted to our key".into()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_by_a_given_key_are_reported() {
        let alice = Identity::generate("Alice", "alice@example.org").expect("alice");
        let bob = Identity::generate("Bob", "bob@example.org").expect("bob");
        let mallory = Identity::generate("Mallory", "alice@example.org").expect("mallory");
        let sealed = alice.seal(b"signed", bob.card()).expect("seal");
        let (plain, good) = bob
            .decrypt_from(&sealed, 1024, Some(alice.card().cert()))
            .expect("decrypt");
        assert_eq!(plain, b"signed");
        assert_eq!(good.as_deref(), Some(alice.fingerprint()));
        let (_, good) = bob
            .decrypt_from(&sealed, 1024, Some(mallory.card().cert()))
            .expect("decrypt");
        assert_eq!(good, None, "a signature by another key was taken");
        let unsigned = encrypt_to(bob.card(), b"unsigned").expect("encrypt");
        let (_, good) = bob
            .decrypt_from(&unsigned, 1024, Some(alice.card().cert()))
            .expect("decrypt");
        assert_eq!(good, None);
    }

    #[test]
    fn round_trip_to_one_recipient_only() {
        let alice = Identity::generate("Alice", "alice@example.org").expect("alice");
        let bob = Identity::generate("Bob", "bob@example.org").expect("bob");
        let sealed = encrypt_to(bob.card(), b"for bob").expect("encrypt");
        assert_eq!(
            bob.decrypt_unsigned(&sealed, 1024).expect("bob reads"),
            b"for bob"
        );
        // Not even the author can read it back: it is encrypted to Bob only.
        let err = alice.decrypt_unsigned(&sealed, 1024).expect_err("alice");
        assert!(matches!(err, KeyError::Refused(_)), "{err}");
    }

    #[test]
    fn tampered_plain_and_oversized_messages_are_refused() {
        let bob = Identity::generate("Bob", "bob@example.org").expect("bob");
        let mut sealed = encrypt_to(bob.card(), &[7u8; 4096]).expect("encrypt");
        let last = sealed.len() - 40;
        sealed[last] ^= 0x55;
        assert!(bob.decrypt_unsigned(&sealed, 1 << 20).is_err());
        assert!(bob.decrypt_unsigned(b"plain text", 1024).is_err());
        let sealed = encrypt_to(bob.card(), &[7u8; 4096]).expect("encrypt");
        let err = bob.decrypt_unsigned(&sealed, 4095).expect_err("too large");
        assert!(err.to_string().contains("exceeds"), "{err}");
        assert_eq!(
            bob.decrypt_unsigned(&sealed, 4096).expect("fits").len(),
            4096
        );
    }
}
