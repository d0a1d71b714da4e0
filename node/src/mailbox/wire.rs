//! The messages of `/mailnode/mailbox/1` and the exact bytes each signature
//! covers (specified in `docs/protocol.md`, "Mailbox peers").
//!
//! This module owns the types and the signing inputs only: no I/O (that is
//! `codec.rs`), no policy (that is `service.rs`). Every byte field is a CBOR
//! byte string (`serde_bytes`), as on `/mailnode/deliver/1`.

use libp2p::identity::{Keypair, PublicKey};
use libp2p::{PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};

use super::MailboxError;

/// The mailbox protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/mailnode/mailbox/1");

/// A rotating inbox id (see `inbox.rs`): 32 bytes of SHA-256.
pub type InboxId = [u8; 32];

/// The mailbox's id of one stored envelope: SHA-256 over the depositor's
/// PeerId and its deposit id (see [`envelope_id`]).
pub type EnvelopeId = [u8; 32];

/// A challenge nonce.
pub type Nonce = [u8; 32];

/// Most mailbox peers one registration may name.
pub const MAX_MAILBOX_PEERS: usize = 8;

/// Most inbox ids one `Collect` may name.
pub const MAX_COLLECT_INBOXES: usize = 4;

/// Most envelope ids one `Ack` may name.
pub const MAX_ACK_IDS: usize = 1024;

/// "Hold mail for me": signed by the recipient's libp2p key, naming every
/// mailbox peer the recipient chose, so that each of them can check a
/// replicated envelope against the recipient's own choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The recipient's libp2p public key, protobuf-encoded; its PeerId is
    /// the recipient.
    #[serde(with = "serde_bytes")]
    pub recipient_key: Vec<u8>,
    /// The PeerIds (binary) of all the recipient's mailbox peers.
    pub mailboxes: Vec<serde_bytes::ByteBuf>,
    /// When it was signed (Unix seconds); a newer registration replaces an
    /// older one, never the other way round.
    pub issued_at: u64,
    /// When it stops being valid (Unix seconds). Deposits are refused after.
    pub expires_at: u64,
    /// The recipient's signature over [`Registration::signing_input`].
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl Registration {
    /// A registration signed with `keypair`.
    pub fn sign(
        keypair: &Keypair,
        mailboxes: &[PeerId],
        issued_at: u64,
        expires_at: u64,
    ) -> Result<Registration, MailboxError> {
        let mut registration = Registration {
            recipient_key: keypair.public().encode_protobuf(),
            mailboxes: mailboxes
                .iter()
                .map(|peer| serde_bytes::ByteBuf::from(peer.to_bytes()))
                .collect(),
            issued_at,
            expires_at,
            signature: Vec::new(),
        };
        registration.signature = keypair
            .sign(&registration.signing_input())
            .map_err(|err| MailboxError::Signing(err.to_string()))?;
        Ok(registration)
    }

    /// The bytes the signature covers.
    pub fn signing_input(&self) -> Vec<u8> {
        let mut input = SigningInput::new(b"mailnode-mailbox-register-v1");
        input.field(&self.recipient_key);
        input.count(self.mailboxes.len());
        for peer in &self.mailboxes {
            input.field(peer);
        }
        input.u64(self.issued_at);
        input.u64(self.expires_at);
        input.finish()
    }

    /// Checks the signature and the shape; returns the recipient's key and
    /// the mailbox peers it names. Does not check the times (the service
    /// does, against its clock).
    pub fn verify(&self) -> Result<(PublicKey, Vec<PeerId>), MailboxError> {
        let key = PublicKey::try_decode_protobuf(&self.recipient_key).map_err(|err| {
            MailboxError::BadRequest(format!(
                "the registration's key is not a libp2p key ({err})"
            ))
        })?;
        if self.mailboxes.is_empty() || self.mailboxes.len() > MAX_MAILBOX_PEERS {
            return Err(MailboxError::BadRequest(format!(
                "a registration names 1 to {MAX_MAILBOX_PEERS} mailbox peers, not {}",
                self.mailboxes.len()
            )));
        }
        let mut peers = Vec::with_capacity(self.mailboxes.len());
        for bytes in &self.mailboxes {
            let peer = PeerId::from_bytes(bytes).map_err(|err| {
                MailboxError::BadRequest(format!("the registration names a bad PeerId ({err})"))
            })?;
            peers.push(peer);
        }
        if !key.verify(&self.signing_input(), &self.signature) {
            return Err(MailboxError::BadSignature(
                "the registration is not signed by the recipient's key".into(),
            ));
        }
        Ok((key, peers))
    }
}

/// One envelope as the mailbox hands it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldEnvelope {
    /// The mailbox's id for it; `Ack` names it.
    #[serde(with = "serde_bytes")]
    pub id: EnvelopeId,
    /// Its position in the mailbox (increasing); the next `Collect` asks
    /// for what comes after the last one seen.
    pub seq: u64,
    /// When the mailbox received it (Unix seconds).
    pub received_at: u64,
    /// The sealed envelope (see `envelope.rs`), exactly as deposited.
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

/// A request on `/mailnode/mailbox/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailboxRequest {
    /// Recipient → mailbox: hold mail for me. The requester must be the
    /// registration's recipient, and the mailbox must be one it names.
    Register {
        /// The signed registration.
        registration: Registration,
    },
    /// Sender → mailbox: keep this envelope for the recipient of `inbox`.
    Deposit {
        /// The recipient's current (or previous) inbox id.
        #[serde(with = "serde_bytes")]
        inbox: InboxId,
        /// The sender's id for this deposit (its delivery id); a retry with
        /// the same id is answered `Stored` without a second copy.
        #[serde(with = "serde_bytes")]
        deposit_id: [u8; 16],
        /// The sealed envelope.
        #[serde(with = "serde_bytes")]
        sealed: Vec<u8>,
    },
    /// Recipient → mailbox: give me a fresh nonce to sign.
    Challenge,
    /// Recipient → mailbox: hand out what you hold for me.
    Collect {
        /// The inbox ids the recipient asks for (its current and previous).
        inboxes: Vec<serde_bytes::ByteBuf>,
        /// The nonce from `Challenge`.
        #[serde(with = "serde_bytes")]
        nonce: Nonce,
        /// Signature over [`collect_signing_input`].
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
        /// Hand out only envelopes with a larger `seq` (0: from the start).
        after: u64,
        /// Most envelopes in the answer (the mailbox may send fewer).
        max: u32,
    },
    /// Recipient → mailbox: these are committed in my store; delete them.
    Ack {
        /// The envelopes to delete.
        ids: Vec<serde_bytes::ByteBuf>,
        /// The nonce from `Challenge`.
        #[serde(with = "serde_bytes")]
        nonce: Nonce,
        /// Signature over [`ack_signing_input`].
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
    },
    /// Recipient → the original sender, directly: these deliveries, which
    /// the sender deposited at a mailbox peer, are now committed in the
    /// recipient's store (the read-side delivery ack). The sender closes
    /// the matching outbox entries; the requester's Noise PeerId must be the
    /// entries' recipient. Answered `Acked` with the number closed.
    Receipt {
        /// Delivery ids (16 bytes each).
        ids: Vec<serde_bytes::ByteBuf>,
    },
    /// Mailbox → another mailbox peer of the same recipient: keep a copy.
    /// The receiver never forwards it again.
    Replicate {
        /// The recipient's registration, naming both mailboxes.
        registration: Registration,
        /// The original depositor's PeerId (binary), for its quota.
        #[serde(with = "serde_bytes")]
        depositor: Vec<u8>,
        /// The envelope's id at the first mailbox (same at every replica).
        #[serde(with = "serde_bytes")]
        id: EnvelopeId,
        /// The sealed envelope.
        #[serde(with = "serde_bytes")]
        sealed: Vec<u8>,
    },
}

impl MailboxRequest {
    /// A short name for logs (never the content).
    pub fn kind(&self) -> &'static str {
        match self {
            MailboxRequest::Register { .. } => "register",
            MailboxRequest::Deposit { .. } => "deposit",
            MailboxRequest::Challenge => "challenge",
            MailboxRequest::Collect { .. } => "collect",
            MailboxRequest::Ack { .. } => "ack",
            MailboxRequest::Replicate { .. } => "replicate",
            MailboxRequest::Receipt { .. } => "receipt",
        }
    }
}

/// An answer on `/mailnode/mailbox/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailboxResponse {
    /// The registration is stored; deposits for the recipient are accepted
    /// until `expires_at`.
    Registered {
        /// The registration's expiry (Unix seconds).
        expires_at: u64,
    },
    /// The envelope is committed durably (or was already): the deposit is
    /// delivered as far as the sender's outbox is concerned.
    Stored,
    /// A fresh nonce for `Collect` and `Ack`, valid for `valid_secs`.
    Nonce {
        /// The nonce.
        #[serde(with = "serde_bytes")]
        nonce: Nonce,
        /// How long it stays valid.
        valid_secs: u32,
    },
    /// What the mailbox holds for the recipient after `after`.
    Envelopes {
        /// Oldest first.
        envelopes: Vec<HeldEnvelope>,
        /// Whether more wait beyond the last one.
        more: bool,
    },
    /// The acknowledged envelopes are deleted.
    Acked {
        /// How many were deleted (ids already gone are not counted).
        deleted: u32,
    },
    /// The replica is committed (or was already).
    Replicated,
    /// Refused for good; nothing was stored or deleted.
    Refused {
        /// Why, in words for the other side's log.
        reason: String,
    },
    /// Not now; nothing was stored or deleted.
    TryLater {
        /// Why.
        reason: String,
        /// The earliest sensible retry, in seconds.
        retry_after_secs: u32,
    },
}

/// The mailbox's envelope id for a deposit: SHA-256 of a domain tag, the
/// depositor's PeerId and its deposit id. Bound to the (Noise-authenticated)
/// depositor, so one sender cannot collide with another's deposits.
pub fn envelope_id(depositor: &PeerId, deposit_id: &[u8; 16]) -> EnvelopeId {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"mailnode-mailbox-envelope-v1");
    let depositor = depositor.to_bytes();
    hash.update(len_prefix(depositor.len()));
    hash.update(&depositor);
    hash.update(deposit_id);
    hash.finalize().into()
}

/// What the recipient signs for `Collect`: the nonce, the mailbox's PeerId
/// (so a signature cannot be replayed at another mailbox) and the inboxes.
pub fn collect_signing_input(nonce: &Nonce, mailbox: &PeerId, inboxes: &[InboxId]) -> Vec<u8> {
    let mut input = SigningInput::new(b"mailnode-mailbox-collect-v1");
    input.field(nonce);
    input.field(&mailbox.to_bytes());
    input.count(inboxes.len());
    for inbox in inboxes {
        input.field(inbox);
    }
    input.finish()
}

/// What the recipient signs for `Ack`: the nonce, the mailbox's PeerId and
/// the ids to delete.
pub fn ack_signing_input(nonce: &Nonce, mailbox: &PeerId, ids: &[EnvelopeId]) -> Vec<u8> {
    let mut input = SigningInput::new(b"mailnode-mailbox-ack-v1");
    input.field(nonce);
    input.field(&mailbox.to_bytes());
    input.count(ids.len());
    for id in ids {
        input.field(id);
    }
    input.finish()
}

/// Converts a list of CBOR byte strings into fixed 32-byte ids.
pub(crate) fn ids32(
    list: &[serde_bytes::ByteBuf],
    what: &str,
) -> Result<Vec<[u8; 32]>, MailboxError> {
    list.iter()
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                MailboxError::BadRequest(format!("{what} must be 32 bytes, not {}", bytes.len()))
            })
        })
        .collect()
}

/// A signing input: a domain tag, then every field as a u32 big-endian
/// length followed by its bytes, so no two field lists give the same bytes.
pub(crate) struct SigningInput(Vec<u8>);

impl SigningInput {
    pub(crate) fn new(domain: &[u8]) -> SigningInput {
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(&len_prefix(domain.len()));
        bytes.extend_from_slice(domain);
        SigningInput(bytes)
    }

    pub(crate) fn field(&mut self, value: &[u8]) {
        self.0.extend_from_slice(&len_prefix(value.len()));
        self.0.extend_from_slice(value);
    }

    pub(crate) fn count(&mut self, n: usize) {
        self.0.extend_from_slice(&len_prefix(n));
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

fn len_prefix(len: usize) -> [u8; 4] {
    // Every field we sign is far below 4 GiB (the frame limit); saturate
    // rather than wrap if that ever changed.
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}
