//! `/mailnode/pair/1`: the messages between the linking and the joining
//! device, the small swarm that carries them, and the key schedule
//! (SPAKE2, key confirmation over the transcript, HKDF-SHA256, the sealed
//! chunks). Specified in `docs/protocol.md`, "Linking a device".
//!
//! This module does no file or store I/O; `link` and `join` drive it.

use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport, cbor};
use libp2p::{PeerId, StreamProtocol, Swarm, SwarmBuilder, noise, tcp, yamux};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity as SpakeIdentity, Password, Spake2};
use zeroize::Zeroizing;

/// The protocol id.
pub(crate) const PROTOCOL: StreamProtocol = StreamProtocol::new("/mailnode/pair/1");

/// Plaintext bytes of one chunk of the bundle.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Largest request frame (requests are small).
const MAX_REQUEST: u64 = 4 * 1024;
/// Largest response frame: a sealed chunk and the CBOR around it.
const MAX_RESPONSE: u64 = (CHUNK as u64) + 4 * 1024;

/// Domain of the transcript and prefix of every label.
const DOMAIN: &[u8] = b"mailnode-pair-v1";

/// What the joining device asks, in this order: `Hello`, `Confirm`, every
/// `Chunk` from 0 until one is the last, `Finish`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum PairRequest {
    /// The joiner's SPAKE2 message (side B).
    Hello {
        /// 33 bytes.
        #[serde(with = "serde_bytes")]
        pake: Vec<u8>,
    },
    /// The joiner's key confirmation.
    Confirm {
        /// 32 bytes.
        #[serde(with = "serde_bytes")]
        mac: Vec<u8>,
    },
    /// The bundle's chunk number `index`.
    Chunk {
        /// From 0, one after the other.
        index: u64,
    },
    /// Everything arrived and was checked; the joiner keeps it.
    Finish,
}

/// What the linking device answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum PairResponse {
    /// The linker's SPAKE2 message (side A).
    Hello {
        /// 33 bytes.
        #[serde(with = "serde_bytes")]
        pake: Vec<u8>,
    },
    /// The linker's key confirmation, sent once the joiner's checked out
    /// and the joiner is on the device list.
    Confirmed {
        /// 32 bytes.
        #[serde(with = "serde_bytes")]
        mac: Vec<u8>,
    },
    /// One sealed chunk of the bundle.
    Chunk {
        /// AES-256-GCM ciphertext and tag.
        #[serde(with = "serde_bytes")]
        sealed: Vec<u8>,
        /// Whether it is the last one (also authenticated, in the AAD).
        last: bool,
    },
    /// The linker took note; pairing is over.
    Finished,
    /// The session is over for good (the code is spent).
    Refused {
        /// Why, for the joiner's user.
        reason: String,
    },
}

/// The pairing swarm's behaviour: request-response over CBOR.
pub(crate) type Behaviour = cbor::Behaviour<PairRequest, PairResponse>;

/// A small swarm of its own for one pairing: TCP, Noise, Yamux and
/// `/mailnode/pair/1` only. The linker answers (`inbound`), the joiner
/// asks. A request may take `request_timeout` (the linker may wait for
/// its user's passphrase before it answers `Confirm`).
pub(crate) fn swarm(
    keypair: Keypair,
    inbound: bool,
    request_timeout: Duration,
) -> anyhow::Result<Swarm<Behaviour>> {
    let codec = cbor::codec::Codec::default()
        .set_request_size_maximum(MAX_REQUEST)
        .set_response_size_maximum(MAX_RESPONSE);
    let support = if inbound {
        ProtocolSupport::Inbound
    } else {
        ProtocolSupport::Outbound
    };
    let swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|err| anyhow::anyhow!("cannot set up TCP with Noise: {err}"))?
        .with_behaviour(move |_| {
            request_response::Behaviour::with_codec(
                codec,
                [(PROTOCOL, support)],
                request_response::Config::default().with_request_timeout(request_timeout),
            )
        })
        .map_err(|err| anyhow::anyhow!("cannot set up the pairing protocol: {err}"))?
        .with_swarm_config(|cfg| cfg.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    Ok(swarm)
}

/// Which side of the PAKE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `mailnode device link`, SPAKE2 side A.
    Linker,
    /// `mailnode device join`, SPAKE2 side B.
    Joiner,
}

/// A started SPAKE2 exchange.
pub(crate) struct Pake {
    role: Role,
    state: Spake2<Ed25519Group>,
    own: Vec<u8>,
    linker: PeerId,
    joiner: PeerId,
}

/// The keys of a pairing once SPAKE2 finished.
pub(crate) struct SessionKeys {
    /// The joiner's confirmation (sent in `Confirm`).
    pub(crate) joiner_confirm: Zeroizing<[u8; 32]>,
    /// The linker's confirmation (sent in `Confirmed`).
    pub(crate) linker_confirm: Zeroizing<[u8; 32]>,
    /// Seals the bundle's chunks (linker to joiner).
    bundle: Zeroizing<[u8; 32]>,
}

fn spake_identity(role: Role, peer: &PeerId) -> SpakeIdentity {
    let label: &[u8] = match role {
        Role::Linker => b"mailnode-pair-v1 linker ",
        Role::Joiner => b"mailnode-pair-v1 joiner ",
    };
    let mut id = label.to_vec();
    id.extend_from_slice(&peer.to_bytes());
    SpakeIdentity::new(&id)
}

impl Pake {
    /// Starts our side; the returned message goes to the other device.
    /// `linker` and `joiner` are the two PeerIds as Noise authenticated
    /// them (the joiner's own, the linker's from the code).
    pub(crate) fn start(
        role: Role,
        secret: &[u8],
        linker: PeerId,
        joiner: PeerId,
    ) -> (Pake, Vec<u8>) {
        let password = Password::new(secret);
        let (id_a, id_b) = (
            spake_identity(Role::Linker, &linker),
            spake_identity(Role::Joiner, &joiner),
        );
        let (state, own) = match role {
            Role::Linker => Spake2::<Ed25519Group>::start_a(&password, &id_a, &id_b),
            Role::Joiner => Spake2::<Ed25519Group>::start_b(&password, &id_a, &id_b),
        };
        let message = own.clone();
        (
            Pake {
                role,
                state,
                own,
                linker,
                joiner,
            },
            message,
        )
    }

    /// Finishes with the other device's message: both confirmations and
    /// the bundle key, from HKDF-SHA256 with the SPAKE2 key as input and the
    /// transcript hash (both PeerIds, both messages) as salt.
    pub(crate) fn finish(self, theirs: &[u8]) -> anyhow::Result<SessionKeys> {
        let (msg_a, msg_b) = match self.role {
            Role::Linker => (self.own.as_slice(), theirs),
            Role::Joiner => (theirs, self.own.as_slice()),
        };
        let transcript = transcript(&self.linker, &self.joiner, msg_a, msg_b);
        let key = Zeroizing::new(
            self.state
                .finish(theirs)
                .map_err(|err| anyhow::anyhow!("the other device's PAKE message is bad: {err}"))?,
        );
        let hkdf = Hkdf::<Sha256>::new(Some(&transcript), &key);
        let expand = |label: &str| -> anyhow::Result<Zeroizing<[u8; 32]>> {
            let mut out = Zeroizing::new([0u8; 32]);
            let mut info = DOMAIN.to_vec();
            info.push(b' ');
            info.extend_from_slice(label.as_bytes());
            hkdf.expand(&info, out.as_mut_slice())
                .map_err(|_| anyhow::anyhow!("HKDF output length"))?;
            Ok(out)
        };
        Ok(SessionKeys {
            joiner_confirm: expand("joiner confirm")?,
            linker_confirm: expand("linker confirm")?,
            bundle: expand("bundle")?,
        })
    }
}

/// SHA-256 over the domain and the length-prefixed linker PeerId, joiner
/// PeerId, message A and message B.
fn transcript(linker: &PeerId, joiner: &PeerId, msg_a: &[u8], msg_b: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    for field in [
        linker.to_bytes().as_slice(),
        joiner.to_bytes().as_slice(),
        msg_a,
        msg_b,
    ] {
        hasher.update((field.len() as u32).to_be_bytes());
        hasher.update(field);
    }
    hasher.finalize().into()
}

/// Compares a received confirmation in constant time.
pub(crate) fn confirms(expected: &[u8; 32], received: &[u8]) -> bool {
    received.len() == expected.len()
        && expected
            .iter()
            .zip(received)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

impl SessionKeys {
    fn chunk_parts(index: u64, last: bool) -> ([u8; 12], Vec<u8>) {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&index.to_be_bytes());
        let mut aad = DOMAIN.to_vec();
        aad.extend_from_slice(b" chunk");
        aad.extend_from_slice(&index.to_be_bytes());
        aad.push(u8::from(last));
        (nonce, aad)
    }

    /// Seals chunk `index` of the bundle (the linker's side).
    pub(crate) fn seal_chunk(
        &self,
        index: u64,
        last: bool,
        plain: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        let (nonce, aad) = Self::chunk_parts(index, last);
        Aes256Gcm::new(self.bundle.as_slice().into())
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| anyhow::anyhow!("cannot seal a chunk of the bundle"))
    }

    /// Opens chunk `index` (the joiner's side); fails for anything the
    /// linker did not seal as exactly this chunk.
    pub(crate) fn open_chunk(
        &self,
        index: u64,
        last: bool,
        sealed: &[u8],
    ) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let (nonce, aad) = Self::chunk_parts(index, last);
        Aes256Gcm::new(self.bundle.as_slice().into())
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                anyhow::anyhow!(
                    "chunk {index} of the bundle does not authenticate; nothing was kept"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(linker_secret: &[u8], joiner_secret: &[u8]) -> (SessionKeys, SessionKeys) {
        let (linker, joiner) = (PeerId::random(), PeerId::random());
        let (a, msg_a) = Pake::start(Role::Linker, linker_secret, linker, joiner);
        let (b, msg_b) = Pake::start(Role::Joiner, joiner_secret, linker, joiner);
        (
            a.finish(&msg_b).expect("linker"),
            b.finish(&msg_a).expect("joiner"),
        )
    }

    #[test]
    fn the_same_secret_gives_the_same_keys_and_a_chunk_opens() {
        let (l, j) = run(b"0123456789", b"0123456789");
        assert!(confirms(&l.joiner_confirm, j.joiner_confirm.as_slice()));
        assert!(confirms(&j.linker_confirm, l.linker_confirm.as_slice()));
        assert_ne!(*l.joiner_confirm, *l.linker_confirm);
        let sealed = l.seal_chunk(3, true, b"bundle bytes").expect("seal");
        assert_eq!(
            j.open_chunk(3, true, &sealed).expect("open").as_slice(),
            b"bundle bytes"
        );
        assert!(j.open_chunk(3, false, &sealed).is_err(), "last is bound");
        assert!(j.open_chunk(4, true, &sealed).is_err(), "index is bound");
    }

    #[test]
    fn another_secret_fails_the_confirmation() {
        let (l, j) = run(b"0123456789", b"0123456789x");
        assert!(!confirms(&l.joiner_confirm, j.joiner_confirm.as_slice()));
        assert!(!confirms(&j.linker_confirm, l.linker_confirm.as_slice()));
        assert!(!confirms(&l.joiner_confirm, &j.joiner_confirm[..31]));
    }

    #[test]
    fn the_peer_ids_are_bound() {
        let (linker, joiner, other) = (PeerId::random(), PeerId::random(), PeerId::random());
        let (a, msg_a) = Pake::start(Role::Linker, b"secret", linker, joiner);
        let (b, msg_b) = Pake::start(Role::Joiner, b"secret", linker, other);
        let (l, j) = (a.finish(&msg_b).expect("l"), b.finish(&msg_a).expect("j"));
        assert!(!confirms(&l.joiner_confirm, j.joiner_confirm.as_slice()));
    }
}
