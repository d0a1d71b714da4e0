//! The node owner's identity: creation (`keygen`), storage with every secret
//! encrypted, unlocking, and the OpenPGP operations the node needs (seal a
//! message for a contact, open one from a contact).
//!
//! Files in the home:
//! - `identity.json`: public facts (name, address, fingerprint, PeerId) and
//!   how the data key is protected (keyring entry or passphrase-wrapped key).
//! - `card.asc`: our public contact card.
//! - `secrets.bin`: the secret key material, the libp2p key, the bridge
//!   password, the store key and the revocation certificate, AES-256-GCM
//!   under the data key.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use libp2p::PeerId;
use openpgp::cert::{CertBuilder, CipherSuite};
use openpgp::crypto::{KeyPair, SessionKey};
use openpgp::packet::signature::SignatureBuilder;
use openpgp::packet::signature::subpacket::NotationDataFlags;
use openpgp::packet::{PKESK, SKESK, UserID};
use openpgp::parse::Parse;
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Signer};
use openpgp::types::{KeyFlags, SignatureType, SymmetricAlgorithm};
use openpgp::{Cert, KeyHandle};
use rand::{Rng, RngCore};
use sequoia_openpgp as openpgp;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::KeyError;
use crate::book::write_atomically;
use crate::card::{ContactCard, PEER_ID_NOTATION};
use crate::secrets::{self, KeyGuard, Protection, ProtectionUsed, Unlocker};

const IDENTITY_FILE: &str = "identity.json";
const CARD_FILE: &str = "card.asc";
const SECRETS_FILE: &str = "secrets.bin";
const FORMAT_VERSION: u32 = 1;

/// Largest message `open` accepts; the whole plaintext is held back until
/// the signature is checked, so it must fit the decryptor's buffer.
const MAX_OPEN: usize = 256 * 1024 * 1024;

/// `identity.json`.
#[derive(Debug, Serialize, Deserialize)]
struct IdentityFile {
    version: u32,
    name: String,
    address: String,
    fingerprint: String,
    peer_id: String,
    guard: KeyGuard,
}

/// What `secrets.bin` decrypts to.
#[derive(Serialize, Deserialize)]
struct SecretBundle {
    tsk: String,
    libp2p: String,
    bridge_password: String,
    store_key: String,
    revocation: String,
}

/// What can be read from a home without unlocking it.
#[derive(Debug, Clone)]
pub struct PublicInfo {
    /// Our own contact card.
    pub card: ContactCard,
    /// This device's PeerId (one of the card's devices).
    pub peer_id: PeerId,
}

/// A decrypted and verified message.
#[derive(Debug)]
pub struct Opened {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// Fingerprint of the certificate whose key made the good signature.
    pub signer_fingerprint: String,
}

/// The node owner's unlocked identity.
pub struct Identity {
    card: ContactCard,
    /// This device's PeerId (of `keypair`), one of the card's devices.
    peer_id: PeerId,
    tsk: Cert,
    signer: KeyPair,
    decryptors: Vec<KeyPair>,
    keypair: libp2p::identity::Keypair,
    bridge_password: Zeroizing<String>,
    store_key: Zeroizing<[u8; 32]>,
    revocation: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("address", &self.card.address())
            .field("fingerprint", &self.card.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Creates a new identity in memory: a Curve25519 certificate (Ed25519
    /// primary for certification and signing, X25519 encryption subkey) with
    /// the user ID `name <email>` whose self-signature binds a new libp2p
    /// Ed25519 PeerId; a revocation certificate; a bridge password; a store key.
    pub fn generate(name: &str, email: &str) -> Result<Identity, KeyError> {
        let name = name.trim();
        let email = email.trim();
        check_user_id(name, email)?;
        let keypair = libp2p::identity::Keypair::generate_ed25519();
        let peer_id = keypair.public().to_peer_id();
        let user_id = if name.is_empty() {
            format!("<{email}>")
        } else {
            format!("{name} <{email}>")
        };
        let template = SignatureBuilder::new(SignatureType::PositiveCertification)
            .set_notation(
                PEER_ID_NOTATION,
                peer_id.to_string().as_bytes(),
                NotationDataFlags::empty().set_human_readable(),
                false,
            )
            .map_err(KeyError::pgp)?;
        let (tsk, revocation) = CertBuilder::new()
            .set_cipher_suite(CipherSuite::Cv25519)
            .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
            .add_userid_with(UserID::from(user_id), template)
            .map_err(KeyError::pgp)?
            .add_subkey(
                KeyFlags::empty()
                    .set_transport_encryption()
                    .set_storage_encryption(),
                None,
                None,
            )
            .generate()
            .map_err(KeyError::pgp)?;
        let revocation = Packet::armored_signature(&tsk, revocation)?;
        let mut store_key = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(store_key.as_mut_slice());
        Identity::assemble(tsk, keypair, new_bridge_password(), store_key, revocation)
    }

    pub(crate) fn assemble(
        tsk: Cert,
        keypair: libp2p::identity::Keypair,
        bridge_password: Zeroizing<String>,
        store_key: Zeroizing<[u8; 32]>,
        revocation: String,
    ) -> Result<Identity, KeyError> {
        // A revoked identity still loads: its node must announce the
        // revocation to every contact, and old mail must still decrypt.
        let card = ContactCard::from_cert_even_revoked(tsk.clone().strip_secret_key_material())?;
        let peer_id = keypair.public().to_peer_id();
        if !card.has_device(&peer_id) {
            return Err(KeyError::InvalidCard(
                "the certificate does not list this device's PeerId (of the stored libp2p key) \
                 among its devices"
                    .into(),
            ));
        }
        let policy = StandardPolicy::new();
        let valid = tsk.with_policy(&policy, None).map_err(KeyError::pgp)?;
        let signer = valid
            .keys()
            .secret()
            .alive()
            .revoked(false)
            .for_signing()
            .next()
            .or_else(|| valid.keys().secret().alive().for_signing().next())
            .ok_or_else(|| KeyError::OpenPgp("the identity has no secret signing key".into()))?
            .key()
            .clone()
            .into_keypair()
            .map_err(KeyError::pgp)?;
        let decryptors = valid
            .keys()
            .secret()
            .for_transport_encryption()
            .filter_map(|ka| ka.key().clone().into_keypair().ok())
            .collect::<Vec<_>>();
        if decryptors.is_empty() {
            return Err(KeyError::OpenPgp(
                "the identity has no secret encryption key".into(),
            ));
        }
        Ok(Identity {
            card,
            peer_id,
            tsk,
            signer,
            decryptors,
            keypair,
            bridge_password,
            store_key,
            revocation,
        })
    }

    /// Whether `home` already holds an identity.
    pub fn exists(home: &Path) -> bool {
        home.join(IDENTITY_FILE).exists()
    }

    /// Writes the identity into `home`, secrets encrypted under a new data
    /// key kept as `protection` says. Refuses to overwrite an identity.
    pub fn save(&self, home: &Path, protection: &Protection) -> Result<ProtectionUsed, KeyError> {
        if Identity::exists(home) {
            return Err(KeyError::IdentityExists(home.to_path_buf()));
        }
        let mut data_key = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(data_key.as_mut_slice());
        // Homes made before linked devices named the keyring entry by the
        // fingerprint alone; identity.json says which name each one uses.
        let device = format!("{}/{}", self.fingerprint(), self.peer_id());
        let (guard, used) = secrets::protect(&data_key, protection, self.fingerprint(), &device)?;

        let plain = self.export_secrets()?;
        let sealed = encrypt_secrets(&data_key, self.fingerprint(), &plain)?;
        write_new(&home.join(SECRETS_FILE), &sealed, true)?;
        write_new(
            &home.join(CARD_FILE),
            self.card.to_armored().as_bytes(),
            false,
        )?;
        let file = IdentityFile {
            version: FORMAT_VERSION,
            name: self.name().to_string(),
            address: self.address().to_string(),
            fingerprint: self.fingerprint().to_string(),
            peer_id: self.peer_id().to_string(),
            guard,
        };
        let json =
            serde_json::to_vec_pretty(&file).map_err(|err| KeyError::OpenPgp(err.to_string()))?;
        // identity.json last: its presence means the identity is complete.
        write_new(&home.join(IDENTITY_FILE), &json, false)?;
        Ok(used)
    }

    /// Reads our public card without unlocking anything.
    pub fn public_info(home: &Path) -> Result<PublicInfo, KeyError> {
        let file = read_identity_file(home)?;
        let path = home.join(CARD_FILE);
        let bytes = std::fs::read(&path).map_err(|err| KeyError::io(&path, err))?;
        let card = ContactCard::from_bytes_even_revoked(&bytes)?;
        if card.fingerprint() != file.fingerprint {
            return Err(KeyError::Corrupt {
                path,
                reason: "it is not the card of this home's identity".into(),
            });
        }
        let peer_id = file.peer_id.parse().map_err(|_| KeyError::Corrupt {
            path: home.join(IDENTITY_FILE),
            reason: "its PeerId is not valid".into(),
        })?;
        Ok(PublicInfo { card, peer_id })
    }

    /// Unlocks the identity stored in `home`.
    pub fn load(home: &Path, unlocker: &Unlocker) -> Result<Identity, KeyError> {
        let file = read_identity_file(home)?;
        let id_path = home.join(IDENTITY_FILE);
        let data_key = secrets::unlock(&file.guard, unlocker, &file.fingerprint, &id_path)?;
        Identity::load_with(home, &file, &data_key)
    }

    /// Unlocks the identity in `home`, lets `change` modify it (a key
    /// rotation, a revocation), and writes its secrets and card back under
    /// the same data key, so the keyring entry or passphrase stays as it
    /// was. Each file is replaced atomically, `secrets.bin` first, then
    /// `card.asc`, then `identity.json` if the PeerId changed. The primary
    /// key may not change. The caller must hold the home's lock (no daemon
    /// may be running on the old secrets).
    pub fn update_stored<T>(
        home: &Path,
        unlocker: &Unlocker,
        change: impl FnOnce(&mut Identity) -> Result<T, KeyError>,
    ) -> Result<T, KeyError> {
        let file = read_identity_file(home)?;
        let id_path = home.join(IDENTITY_FILE);
        let data_key = secrets::unlock(&file.guard, unlocker, &file.fingerprint, &id_path)?;
        let mut identity = Identity::load_with(home, &file, &data_key)?;
        let outcome = change(&mut identity)?;
        if identity.fingerprint() != file.fingerprint {
            return Err(KeyError::OpenPgp(
                "a change of the stored identity may not replace its primary key".into(),
            ));
        }
        let plain = identity.export_secrets()?;
        let sealed = encrypt_secrets(&data_key, &file.fingerprint, &plain)?;
        let path = home.join(SECRETS_FILE);
        write_atomically(&path, &sealed, true).map_err(|err| KeyError::io(&path, err))?;
        let path = home.join(CARD_FILE);
        write_atomically(&path, identity.card.to_armored().as_bytes(), false)
            .map_err(|err| KeyError::io(&path, err))?;
        let peer_id = identity.peer_id().to_string();
        if peer_id != file.peer_id {
            let updated = IdentityFile { peer_id, ..file };
            let json = serde_json::to_vec_pretty(&updated)
                .map_err(|err| KeyError::OpenPgp(err.to_string()))?;
            write_atomically(&id_path, &json, false).map_err(|err| KeyError::io(&id_path, err))?;
        }
        Ok(outcome)
    }

    fn load_with(
        home: &Path,
        file: &IdentityFile,
        data_key: &[u8; 32],
    ) -> Result<Identity, KeyError> {
        let path = home.join(SECRETS_FILE);
        let sealed = std::fs::read(&path).map_err(|err| KeyError::io(&path, err))?;
        let plain = decrypt_secrets(data_key, &file.fingerprint, &sealed, &path)?;
        let identity = Identity::import_secrets(&plain).map_err(|err| match err {
            KeyError::BadSecrets(reason) => KeyError::Corrupt {
                path: path.clone(),
                reason,
            },
            other => other,
        })?;
        if identity.fingerprint() != file.fingerprint {
            return Err(KeyError::Corrupt {
                path,
                reason: "the secrets belong to another identity".into(),
            });
        }
        Ok(identity)
    }

    /// Every secret of the identity as one plaintext bundle (what
    /// `secrets.bin` holds once decrypted), for `mailnode backup`, which
    /// encrypts it at once. The caller must not write it anywhere in the
    /// clear.
    pub fn export_secrets(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let tsk_bytes = Zeroizing::new(self.tsk.as_tsk().to_vec().map_err(KeyError::pgp)?);
        let libp2p_bytes =
            Zeroizing::new(self.keypair.to_protobuf_encoding().map_err(|err| {
                KeyError::OpenPgp(format!("cannot encode the libp2p key: {err}"))
            })?);
        let bundle = SecretBundle {
            tsk: B64.encode(&*tsk_bytes),
            libp2p: B64.encode(&*libp2p_bytes),
            bridge_password: self.bridge_password.to_string(),
            store_key: B64.encode(*self.store_key),
            revocation: self.revocation.clone(),
        };
        let plain = serde_json::to_vec(&bundle).map_err(|err| KeyError::OpenPgp(err.to_string()));
        drop(Zeroizing::new(bundle.bridge_password));
        drop(Zeroizing::new(bundle.store_key));
        drop(Zeroizing::new(bundle.tsk));
        plain.map(Zeroizing::new)
    }

    /// Rebuilds an identity from a bundle made by
    /// [`Identity::export_secrets`] (`mailnode restore`). Every part is
    /// checked: the keys must belong together, as when loading from a home.
    pub fn import_secrets(plain: &[u8]) -> Result<Identity, KeyError> {
        let bad = |reason: &str| KeyError::BadSecrets(reason.to_string());
        let bundle: SecretBundle =
            serde_json::from_slice(plain).map_err(|_| bad("unreadable secret bundle"))?;
        let tsk_bytes = Zeroizing::new(B64.decode(&bundle.tsk).map_err(|_| bad("bad key"))?);
        let tsk = Cert::from_bytes(&*tsk_bytes).map_err(|_| bad("bad OpenPGP key"))?;
        let libp2p_bytes = Zeroizing::new(
            B64.decode(&bundle.libp2p)
                .map_err(|_| bad("bad libp2p key"))?,
        );
        let keypair = libp2p::identity::Keypair::from_protobuf_encoding(&libp2p_bytes)
            .map_err(|_| bad("bad libp2p key"))?;
        let store_key_bytes = Zeroizing::new(
            B64.decode(&bundle.store_key)
                .map_err(|_| bad("bad store key"))?,
        );
        if store_key_bytes.len() != 32 {
            return Err(bad("bad store key length"));
        }
        let mut store_key = Zeroizing::new([0u8; 32]);
        store_key.copy_from_slice(&store_key_bytes);
        let identity = Identity::assemble(
            tsk,
            keypair,
            Zeroizing::new(bundle.bridge_password.clone()),
            store_key,
            bundle.revocation.clone(),
        );
        drop(Zeroizing::new(bundle.bridge_password));
        drop(Zeroizing::new(bundle.store_key));
        drop(Zeroizing::new(bundle.tsk));
        identity
    }

    /// Display name.
    pub fn name(&self) -> &str {
        self.card.name()
    }

    /// Mail address (lower-case).
    pub fn address(&self) -> &str {
        self.card.address()
    }

    /// Certificate fingerprint (upper-case hex).
    pub fn fingerprint(&self) -> &str {
        self.card.fingerprint()
    }

    /// This device's PeerId: what the node runs as. The card's
    /// [`ContactCard::peer_id`] is the first device's, which is this one
    /// unless the device joined later (`mailnode device join`).
    pub fn peer_id(&self) -> &PeerId {
        &self.peer_id
    }

    /// Our public contact card.
    pub fn card(&self) -> &ContactCard {
        &self.card
    }

    /// The libp2p identity the node runs with.
    pub fn libp2p_keypair(&self) -> &libp2p::identity::Keypair {
        &self.keypair
    }

    /// The password mail clients use on the bridge.
    pub fn bridge_password(&self) -> &str {
        &self.bridge_password
    }

    /// The key that encrypts the message store.
    pub fn store_key(&self) -> &[u8; 32] {
        &self.store_key
    }

    /// The store key as kept (for `devices.rs`, which hands it to a new
    /// device).
    pub(crate) fn store_key_copy(&self) -> Zeroizing<[u8; 32]> {
        self.store_key.clone()
    }

    /// The armored revocation certificate (publish it if the key is lost or
    /// stolen).
    pub fn revocation_armored(&self) -> &str {
        &self.revocation
    }

    /// The certificate with its secret keys (for `rotate.rs`).
    pub(crate) fn tsk(&self) -> &Cert {
        &self.tsk
    }

    /// Replaces the certificate with a changed one of the same primary key
    /// (`rotate.rs`); card, signer and decryption keys are derived again.
    pub(crate) fn replace_cert(&mut self, tsk: Cert) -> Result<(), KeyError> {
        let keypair = self.keypair.clone();
        self.replace_cert_and_keypair(tsk, keypair)
    }

    /// [`Identity::replace_cert`] with a new libp2p key, which the new
    /// certificate must bind.
    pub(crate) fn replace_cert_and_keypair(
        &mut self,
        tsk: Cert,
        keypair: libp2p::identity::Keypair,
    ) -> Result<(), KeyError> {
        let rebuilt = Identity::assemble(
            tsk,
            keypair,
            self.bridge_password.clone(),
            self.store_key.clone(),
            self.revocation.clone(),
        )?;
        *self = rebuilt;
        Ok(())
    }

    /// Our secret decryption keys (for `seal.rs`, which decrypts messages
    /// that carry no OpenPGP signature).
    pub(crate) fn decryption_keys(&self) -> &[KeyPair] {
        &self.decryptors
    }

    /// Signs `plaintext` with our key and encrypts it to `recipient` and to
    /// ourselves. Returns an armored OpenPGP message.
    pub fn seal(&self, plaintext: &[u8], recipient: &ContactCard) -> Result<Vec<u8>, KeyError> {
        self.seal_to_cert(plaintext, recipient.cert())
    }

    /// [`Identity::seal`] for any OpenPGP certificate, such as one learned
    /// from an Autocrypt header (which carries no mailnode card fields).
    pub fn seal_to_cert(&self, plaintext: &[u8], recipient: &Cert) -> Result<Vec<u8>, KeyError> {
        let policy = StandardPolicy::new();
        let mut recipients = crate::seal::transport_keys(recipient, &policy)?;
        // After our own revocation we still sign (the announcement of the
        // revocation itself), but no longer encrypt to the revoked key.
        if self.card.revocation().is_none() {
            recipients.extend(crate::seal::transport_keys(self.card.cert(), &policy)?);
        }
        let mut sink = Vec::with_capacity(plaintext.len() * 4 / 3 + 2048);
        {
            let message = Message::new(&mut sink);
            let message = Armorer::new(message).build().map_err(KeyError::pgp)?;
            let message = Encryptor::for_recipients(message, recipients)
                .build()
                .map_err(KeyError::pgp)?;
            let message = Signer::new(message, self.signer.clone())
                .map_err(KeyError::pgp)?
                .build()
                .map_err(KeyError::pgp)?;
            let mut literal = LiteralWriter::new(message).build().map_err(KeyError::pgp)?;
            literal.write_all(plaintext).map_err(KeyError::pgp)?;
            literal.finalize().map_err(KeyError::pgp)?;
        }
        Ok(sink)
    }

    /// Decrypts a message with our key and checks that it carries a good
    /// signature by `signer`'s key. Anything else is refused.
    pub fn open(&self, ciphertext: &[u8], signer: &ContactCard) -> Result<Opened, KeyError> {
        let policy = StandardPolicy::new();
        let helper = OpenHelper {
            signer,
            decryptors: self.decryptors.clone(),
            decrypted: false,
            verified: None,
        };
        // The armor decoded in one pass (`armor`); sequoia's own reader
        // takes any other form.
        let binary = crate::armor::binary_message(ciphertext);
        let mut decryptor = DecryptorBuilder::from_bytes(binary.as_deref().unwrap_or(ciphertext))
            .map_err(|err| KeyError::Refused(format!("it is not an OpenPGP message ({err})")))?
            .buffer_size(MAX_OPEN)
            .with_policy(&policy, None, helper)
            .map_err(|err| refusal(&err.to_string(), signer))?;
        let mut plaintext = Vec::with_capacity(ciphertext.len());
        decryptor
            .read_to_end(&mut plaintext)
            .map_err(|err| refusal(&err.to_string(), signer))?;
        let helper = decryptor.into_helper();
        match helper.verified {
            Some(signer_fingerprint) if helper.decrypted => Ok(Opened {
                plaintext,
                signer_fingerprint,
            }),
            _ => Err(KeyError::Refused(format!(
                "it is not signed by the key of <{}> ({})",
                signer.address(),
                signer.fingerprint()
            ))),
        }
    }
}

/// Turns sequoia's error text into a reason the sender can act on.
fn refusal(detail: &str, signer: &ContactCard) -> KeyError {
    if detail.contains(NOT_SIGNED) {
        KeyError::Refused(format!(
            "it is not signed by the key of <{}> ({}), which the recipient has for that sender",
            signer.address(),
            signer.fingerprint()
        ))
    } else if detail.contains(NOT_ENCRYPTED) {
        KeyError::Refused("it is not encrypted; mailnode accepts only encrypted mail".into())
    } else {
        KeyError::Refused(format!(
            "it cannot be decrypted with the recipient's key ({detail})"
        ))
    }
}

const NOT_SIGNED: &str = "no good signature by the sender's key";
const NOT_ENCRYPTED: &str = "the message is not encrypted";

struct OpenHelper<'a> {
    signer: &'a ContactCard,
    decryptors: Vec<KeyPair>,
    decrypted: bool,
    verified: Option<String>,
}

impl VerificationHelper for OpenHelper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(vec![self.signer.cert().clone()])
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        let mut encrypted = false;
        for layer in structure.into_iter() {
            match layer {
                MessageLayer::Encryption { .. } => encrypted = true,
                MessageLayer::SignatureGroup { results } => {
                    for result in results.into_iter().flatten() {
                        let fingerprint = result.ka.cert().fingerprint().to_hex();
                        if fingerprint == self.signer.fingerprint() {
                            self.verified = Some(fingerprint);
                        }
                    }
                }
                MessageLayer::Compression { .. } => {}
            }
        }
        if !encrypted {
            return Err(openpgp::Error::InvalidOperation(NOT_ENCRYPTED.into()).into());
        }
        if self.verified.is_none() {
            return Err(openpgp::Error::InvalidOperation(NOT_SIGNED.into()).into());
        }
        Ok(())
    }
}

impl DecryptionHelper for OpenHelper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        for pkesk in pkesks {
            for keypair in self.decryptors.iter_mut() {
                if let Some((algo, session_key)) = pkesk.decrypt(keypair, sym_algo)
                    && decrypt(algo, &session_key)
                {
                    self.decrypted = true;
                    return Ok(None);
                }
            }
        }
        Err(
            openpgp::Error::InvalidOperation("it is not encrypted to the recipient's key".into())
                .into(),
        )
    }
}

/// Armors a revocation signature as a revocation certificate.
struct Packet;

impl Packet {
    fn armored_signature(
        cert: &Cert,
        revocation: openpgp::packet::Signature,
    ) -> Result<String, KeyError> {
        let revoked = cert
            .clone()
            .strip_secret_key_material()
            .insert_packets(std::iter::once(openpgp::Packet::from(revocation)))
            .map_err(KeyError::pgp)?
            .0;
        let bytes = revoked.armored().to_vec().map_err(KeyError::pgp)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Rejects user IDs that would not round-trip through a certificate.
fn check_user_id(name: &str, email: &str) -> Result<(), KeyError> {
    if name.contains(['<', '>', '\n', '\r']) {
        return Err(KeyError::InvalidUserId(format!(
            "the name {name:?} may not contain '<', '>' or line breaks"
        )));
    }
    let valid_email = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.contains(|c: char| c.is_whitespace() || c == '<' || c == '>')
        }
        None => false,
    };
    if !valid_email {
        return Err(KeyError::InvalidUserId(format!(
            "{email:?} is not a mail address (example: alice@example.org)"
        )));
    }
    Ok(())
}

/// 24 random characters from an unambiguous alphabet (about 137 bits).
pub(crate) fn new_bridge_password() -> Zeroizing<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    Zeroizing::new(
        (0..24)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect(),
    )
}

fn secrets_aad(fingerprint: &str) -> Vec<u8> {
    let mut aad = b"mailnode secrets v1 ".to_vec();
    aad.extend_from_slice(fingerprint.as_bytes());
    aad
}

fn encrypt_secrets(key: &[u8; 32], fingerprint: &str, plain: &[u8]) -> Result<Vec<u8>, KeyError> {
    let cipher =
        Aes256Gcm::new_from_slice(key).map_err(|err| KeyError::OpenPgp(err.to_string()))?;
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &secrets_aad(fingerprint),
            },
        )
        .map_err(|err| KeyError::OpenPgp(format!("cannot encrypt the secrets: {err}")))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn decrypt_secrets(
    key: &[u8; 32],
    fingerprint: &str,
    sealed: &[u8],
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if sealed.len() < 12 + 16 {
        return Err(KeyError::Corrupt {
            path: path.to_path_buf(),
            reason: "too short".into(),
        });
    }
    let cipher =
        Aes256Gcm::new_from_slice(key).map_err(|err| KeyError::OpenPgp(err.to_string()))?;
    let (nonce, body) = sealed.split_at(12);
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: &secrets_aad(fingerprint),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| KeyError::Corrupt {
            path: path.to_path_buf(),
            reason: "the secrets do not decrypt with the unlocked key (damaged or replaced)".into(),
        })
}

fn read_identity_file(home: &Path) -> Result<IdentityFile, KeyError> {
    let path = home.join(IDENTITY_FILE);
    let bytes = std::fs::read(&path).map_err(|err| KeyError::io(&path, err))?;
    let file: IdentityFile = serde_json::from_slice(&bytes).map_err(|err| KeyError::Corrupt {
        path: path.clone(),
        reason: err.to_string(),
    })?;
    if file.version != FORMAT_VERSION {
        return Err(KeyError::Corrupt {
            path,
            reason: format!("unknown format version {}", file.version),
        });
    }
    Ok(file)
}

/// Writes a new file (never replacing one), fsynced; `private` files are
/// readable by the owner only.
fn write_new(path: &PathBuf, bytes: &[u8], private: bool) -> Result<(), KeyError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    options.mode(if private { 0o600 } else { 0o644 });
    let mut file = options.open(path).map_err(|err| KeyError::io(path, err))?;
    file.write_all(bytes)
        .map_err(|err| KeyError::io(path, err))?;
    file.sync_all().map_err(|err| KeyError::io(path, err))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PassphraseSource;

    fn pair() -> (Identity, Identity) {
        (
            Identity::generate("Alice", "alice@example.org").expect("alice"),
            Identity::generate("Bob", "bob@example.org").expect("bob"),
        )
    }

    #[test]
    fn card_binds_peer_id_and_round_trips() {
        let (alice, _) = pair();
        let armored = alice.card().to_armored();
        assert!(armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
        assert!(!armored.contains("PRIVATE"));
        let card = ContactCard::from_bytes(armored.as_bytes()).expect("parse");
        assert_eq!(card.peer_id(), alice.peer_id());
        assert_eq!(card.address(), "alice@example.org");
        assert_eq!(card.name(), "Alice");
        assert_eq!(card.fingerprint(), alice.fingerprint());
        let binary = ContactCard::from_bytes(&alice.card().to_binary()).expect("binary");
        assert_eq!(binary.fingerprint(), alice.fingerprint());
    }

    #[test]
    fn seal_and_open_between_two_identities() {
        let (alice, bob) = pair();
        let sealed = alice
            .seal(b"Subject: hi\r\n\r\nhello", bob.card())
            .expect("seal");
        let opened = bob.open(&sealed, alice.card()).expect("open");
        assert_eq!(opened.plaintext, b"Subject: hi\r\n\r\nhello");
        assert_eq!(opened.signer_fingerprint, alice.fingerprint());
        // Alice can read her own copy too.
        assert!(alice.open(&sealed, alice.card()).is_ok());
    }

    #[test]
    fn a_message_signed_by_someone_else_is_refused() {
        let (alice, bob) = pair();
        let mallory = Identity::generate("Alice", "alice@example.org").expect("mallory");
        let sealed = mallory.seal(b"hello", bob.card()).expect("seal");
        let err = bob.open(&sealed, alice.card()).expect_err("forged");
        assert!(err.to_string().contains("not signed by the key"), "{err}");
        let garbage = bob.open(b"not openpgp", alice.card()).expect_err("garbage");
        assert!(matches!(garbage, KeyError::Refused(_)));
    }

    #[test]
    fn a_message_for_someone_else_is_refused() {
        let (alice, bob) = pair();
        let carol = Identity::generate("Carol", "carol@example.org").expect("carol");
        let sealed = alice.seal(b"hello", carol.card()).expect("seal");
        let err = bob.open(&sealed, alice.card()).expect_err("not for bob");
        assert!(err.to_string().contains("decrypted"), "{err}");
    }

    #[test]
    fn save_load_and_refuse_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let alice = Identity::generate("Alice", "alice@example.org").expect("alice");
        let protection = Protection::Passphrase(PassphraseSource::fixed("a good passphrase"));
        alice.save(dir.path(), &protection).expect("save");
        assert!(Identity::exists(dir.path()));
        let again = Identity::generate("Alice", "alice@example.org").expect("again");
        assert!(matches!(
            again.save(dir.path(), &protection),
            Err(KeyError::IdentityExists(_))
        ));
        let unlocker = Unlocker::new(PassphraseSource::fixed("a good passphrase"));
        let loaded = Identity::load(dir.path(), &unlocker).expect("load");
        assert_eq!(loaded.fingerprint(), alice.fingerprint());
        assert_eq!(loaded.peer_id(), alice.peer_id());
        assert_eq!(loaded.bridge_password(), alice.bridge_password());
        assert_eq!(loaded.store_key(), alice.store_key());
        let wrong = Unlocker::new(PassphraseSource::fixed("another passphrase"));
        assert!(matches!(
            Identity::load(dir.path(), &wrong),
            Err(KeyError::WrongPassphrase(_))
        ));
        // No secret in the clear on disk.
        for entry in std::fs::read_dir(dir.path()).expect("dir") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(alice.bridge_password()));
            assert!(!text.contains("PRIVATE KEY"));
        }
        let public = Identity::public_info(dir.path()).expect("public");
        assert_eq!(public.card.fingerprint(), alice.fingerprint());
    }

    #[test]
    fn exported_secrets_rebuild_the_same_identity() {
        let alice = Identity::generate("Alice", "alice@example.org").expect("alice");
        let bundle = alice.export_secrets().expect("export");
        let back = Identity::import_secrets(&bundle).expect("import");
        assert_eq!(back.fingerprint(), alice.fingerprint());
        assert_eq!(back.peer_id(), alice.peer_id());
        assert_eq!(back.store_key(), alice.store_key());
        assert_eq!(back.bridge_password(), alice.bridge_password());
        assert_eq!(back.revocation_armored(), alice.revocation_armored());
        assert!(matches!(
            Identity::import_secrets(b"{}"),
            Err(KeyError::BadSecrets(_))
        ));
    }

    #[test]
    fn bad_user_ids_are_refused() {
        assert!(Identity::generate("Alice", "not-an-address").is_err());
        assert!(Identity::generate("Al<ice>", "alice@example.org").is_err());
    }
}
