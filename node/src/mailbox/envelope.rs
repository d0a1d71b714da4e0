//! Sealed envelopes: a [`DeliveryRequest`] wrapped so that a mailbox peer
//! can hold it without reading it, and the recipient can authenticate the
//! sender's PeerId without a Noise connection to the sender.
//!
//! Inside, in this order (every variable field a u32 big-endian length and
//! its bytes):
//!
//! | field | content |
//! | --- | --- |
//! | magic | the 8 bytes `MNENVv1\0` |
//! | sender key | the sender's libp2p public key, protobuf-encoded |
//! | recipient | the recipient's PeerId, binary |
//! | id | the delivery id, 16 bytes, no length |
//! | card | one byte 0 (no card) or 1 followed by the field |
//! | payload | the PGP/MIME message, as on `/mailnode/deliver/1` |
//! | signature | the sender key's signature, see [`signing_input`] |
//!
//! The whole is encrypted with OpenPGP to the recipient's card only
//! (`keys::encrypt_to`, binary, no OpenPGP signature: the libp2p signature
//! authenticates the PeerId, and the PGP/MIME payload carries its own
//! OpenPGP signature checked by `inbound.rs`).
//!
//! This module must not decide what to do with an opened request: it hands
//! (sender PeerId, request) to the caller, who files it like a direct one.

use keys::{ContactCard, Identity};
use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey};
use sha2::{Digest, Sha256};

use super::MailboxError;
use super::wire::SigningInput;
use crate::network::DeliveryRequest;

const MAGIC: &[u8; 8] = b"MNENVv1\0";

/// Largest plaintext [`open`] accepts: a 48 MiB envelope limit plus room.
pub const MAX_OPEN: usize = 49 * 1024 * 1024;

/// Seals `request` for the device `recipient_peer` of `recipient`: signs
/// it with the sender's `keypair` and encrypts everything to the
/// recipient's card.
pub fn seal(
    keypair: &Keypair,
    recipient: &ContactCard,
    recipient_peer: PeerId,
    request: &DeliveryRequest,
) -> Result<Vec<u8>, MailboxError> {
    let input = signing_input(&recipient_peer, request);
    let signature = keypair
        .sign(&input)
        .map_err(|err| MailboxError::Signing(err.to_string()))?;
    let sender_key = keypair.public().encode_protobuf();
    let mut plain = Vec::with_capacity(request.payload.len() + 4096);
    plain.extend_from_slice(MAGIC);
    put(&mut plain, &sender_key);
    put(&mut plain, &recipient_peer.to_bytes());
    plain.extend_from_slice(&request.id);
    match &request.sender_card {
        Some(card) => {
            plain.push(1);
            put(&mut plain, card);
        }
        None => plain.push(0),
    }
    put(&mut plain, &request.payload);
    put(&mut plain, &signature);
    keys::encrypt_to(recipient, &plain).map_err(|err| MailboxError::Seal(err.to_string()))
}

/// Opens an envelope sealed for `identity`: decrypts it, checks it names us
/// as the recipient and that the sender's key signed it. Returns the
/// sender's PeerId (derived from the key that signed) and the request.
pub fn open(identity: &Identity, sealed: &[u8]) -> Result<(PeerId, DeliveryRequest), MailboxError> {
    let plain = identity
        .decrypt_unsigned(sealed, MAX_OPEN)
        .map_err(|err| MailboxError::Open(err.to_string()))?;
    let mut reader = Reader { rest: &plain };
    if reader.take(MAGIC.len())? != MAGIC {
        return Err(damaged("it does not start with the envelope marker"));
    }
    let sender_key = PublicKey::try_decode_protobuf(reader.field()?)
        .map_err(|err| damaged(&format!("the sender key is not a libp2p key ({err})")))?;
    let recipient = PeerId::from_bytes(reader.field()?)
        .map_err(|err| damaged(&format!("the recipient is not a PeerId ({err})")))?;
    let id: [u8; 16] = reader
        .take(16)?
        .try_into()
        .map_err(|_| damaged("the delivery id is short"))?;
    let sender_card = match reader.take(1)? {
        [0] => None,
        [1] => Some(reader.field()?.to_vec()),
        _ => return Err(damaged("the card flag is neither 0 nor 1")),
    };
    let payload = reader.field()?.to_vec();
    let signature = reader.field()?;
    if !reader.rest.is_empty() {
        return Err(damaged("bytes follow the signature"));
    }
    if recipient != *identity.peer_id() {
        return Err(MailboxError::Open(format!(
            "it was sealed for another recipient ({recipient}), not this node ({})",
            identity.peer_id()
        )));
    }
    // Stamps are asked for interactively (`StampRequired`), which a
    // deposit cannot do: an envelope carries none.
    let request = DeliveryRequest {
        id,
        sender_card,
        payload,
        stamp: None,
    };
    let sender = sender_key.to_peer_id();
    if !sender_key.verify(&signing_input(&recipient, &request), signature) {
        return Err(MailboxError::Open(format!(
            "the signature of its sender {sender} does not verify (forged or damaged)"
        )));
    }
    Ok((sender, request))
}

/// What the sender signs: the recipient's PeerId, the delivery id, and
/// SHA-256 of the payload and of the card (or of nothing, flagged), so
/// neither can be swapped for another.
fn signing_input(recipient: &PeerId, request: &DeliveryRequest) -> Vec<u8> {
    let mut input = SigningInput::new(b"mailnode-envelope-v1");
    input.field(&recipient.to_bytes());
    input.field(&request.id);
    input.field(&Sha256::digest(&request.payload));
    match &request.sender_card {
        Some(card) => input.field(&Sha256::digest(card)),
        None => input.field(&[]),
    }
    input.finish()
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    // Fields are bounded by the envelope size, far below 4 GiB.
    out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(field);
}

fn damaged(what: &str) -> MailboxError {
    MailboxError::Open(format!("it is damaged: {what}"))
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MailboxError> {
        if self.rest.len() < n {
            return Err(damaged("it ends early"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn field(&mut self) -> Result<&'a [u8], MailboxError> {
        let len = self.take(4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        self.take(usize::try_from(len).map_err(|_| damaged("a field is too long"))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> DeliveryRequest {
        DeliveryRequest {
            id: [9; 16],
            sender_card: Some(vec![0x99, 1, 2, 3]),
            payload: b"Content-Type: multipart/encrypted\r\n\r\n...".to_vec(),
            stamp: None,
        }
    }

    #[test]
    fn seal_and_open_authenticate_the_sender_peer_id() {
        let alice = Identity::generate("Alice", "alice@example.org").expect("alice");
        let bob = Identity::generate("Bob", "bob@example.org").expect("bob");
        let sealed = seal(
            alice.libp2p_keypair(),
            bob.card(),
            *bob.peer_id(),
            &request(),
        )
        .expect("seal");
        // The mailbox sees ciphertext only.
        assert!(!sealed.windows(9).any(|w| w == b"multipart"));
        let (sender, opened) = open(&bob, &sealed).expect("open");
        assert_eq!(sender, *alice.peer_id());
        assert_eq!(opened.id, [9; 16]);
        assert_eq!(opened.sender_card, request().sender_card);
        assert_eq!(opened.payload, request().payload);
        let mut no_card = request();
        no_card.sender_card = None;
        let sealed =
            seal(alice.libp2p_keypair(), bob.card(), *bob.peer_id(), &no_card).expect("seal");
        assert_eq!(open(&bob, &sealed).expect("open").1.sender_card, None);
    }

    #[test]
    fn an_envelope_for_someone_else_is_refused() {
        let alice = Identity::generate("Alice", "alice@example.org").expect("alice");
        let bob = Identity::generate("Bob", "bob@example.org").expect("bob");
        let carol = Identity::generate("Carol", "carol@example.org").expect("carol");
        let sealed = seal(
            alice.libp2p_keypair(),
            carol.card(),
            *carol.peer_id(),
            &request(),
        )
        .expect("seal");
        let err = open(&bob, &sealed).expect_err("not for bob");
        assert!(err.to_string().contains("cannot be decrypted"), "{err}");
    }

    #[test]
    fn a_tampered_envelope_is_refused() {
        let alice = Identity::generate("Alice", "alice@example.org").expect("alice");
        let bob = Identity::generate("Bob", "bob@example.org").expect("bob");
        let mut sealed = seal(
            alice.libp2p_keypair(),
            bob.card(),
            *bob.peer_id(),
            &request(),
        )
        .expect("seal");
        let middle = sealed.len() / 2;
        sealed[middle] ^= 1;
        assert!(matches!(open(&bob, &sealed), Err(MailboxError::Open(_))));
        assert!(matches!(open(&bob, b"garbage"), Err(MailboxError::Open(_))));
    }

    /// Builds the inner plaintext by hand, as a forger who can encrypt to
    /// Bob (anyone can) but does not hold the claimed sender's key would.
    fn forged(
        sender_key: &PublicKey,
        recipient: &PeerId,
        signer: &Keypair,
        req: &DeliveryRequest,
    ) -> Vec<u8> {
        let mut plain = MAGIC.to_vec();
        put(&mut plain, &sender_key.encode_protobuf());
        put(&mut plain, &recipient.to_bytes());
        plain.extend_from_slice(&req.id);
        plain.push(0);
        put(&mut plain, &req.payload);
        let signature = signer.sign(&signing_input(recipient, req)).expect("sign");
        put(&mut plain, &signature);
        plain
    }

    #[test]
    fn a_wrong_sender_signature_is_refused() {
        let alice = Identity::generate("Alice", "alice@example.org").expect("alice");
        let bob = Identity::generate("Bob", "bob@example.org").expect("bob");
        let mallory = Keypair::generate_ed25519();
        let mut req = request();
        req.sender_card = None;
        // Claims to be Alice, signed by Mallory.
        let plain = forged(
            &alice.libp2p_keypair().public(),
            bob.peer_id(),
            &mallory,
            &req,
        );
        let sealed = keys::encrypt_to(bob.card(), &plain).expect("encrypt");
        let err = open(&bob, &sealed).expect_err("forged");
        assert!(err.to_string().contains("does not verify"), "{err}");
        assert!(
            err.to_string().contains(&alice.peer_id().to_string()),
            "{err}"
        );
        // Signed for Carol, re-encrypted to Bob by someone who read it.
        let carol = PeerId::random();
        let plain = forged(&mallory.public(), &carol, &mallory, &req);
        let sealed = keys::encrypt_to(bob.card(), &plain).expect("encrypt");
        let err = open(&bob, &sealed).expect_err("for carol");
        assert!(err.to_string().contains("another recipient"), "{err}");
        // A swapped payload breaks the signature.
        let mut plain = forged(&mallory.public(), bob.peer_id(), &mallory, &req);
        let pos = plain
            .windows(9)
            .position(|w| w == b"multipart")
            .expect("payload");
        plain[pos] = b'M';
        let sealed = keys::encrypt_to(bob.card(), &plain).expect("encrypt");
        assert!(
            open(&bob, &sealed)
                .expect_err("swapped")
                .to_string()
                .contains("does not verify")
        );
        // Truncated inner content.
        let plain = forged(&mallory.public(), bob.peer_id(), &mallory, &req);
        let sealed = keys::encrypt_to(bob.card(), &plain[..plain.len() - 3]).expect("encrypt");
        assert!(
            open(&bob, &sealed)
                .expect_err("short")
                .to_string()
                .contains("damaged")
        );
    }
}
