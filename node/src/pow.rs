//! Proof-of-work stamps: what a sender who is not a contact pays to have a
//! message filed in the recipient's `Requests` (issue 6, "Strangers").
//!
//! A [`Stamp`] is hashcash on SHA-256, bound to three things so that one
//! stamp buys exactly one delivery:
//! - the recipient's PeerId (a stamp minted for Bob is worthless at Carol);
//! - a time window of [`WINDOW_SECS`] (one hour), so stamps cannot be
//!   stockpiled: the recipient accepts the current and the previous window,
//!   and the next one within [`CLOCK_SKEW_SECS`] of its start;
//! - the message: SHA-256 over (delivery id ‖ payload), so a stamp cannot be
//!   moved to another delivery. (Replaying the whole request is harmless:
//!   the receiver deduplicates by (peer, delivery id).)
//!
//! The work: find a `nonce` such that
//! `SHA-256(challenge ‖ nonce)` starts with at least `bits` zero bits, where
//! `challenge = SHA-256("mailnode-pow-1" ‖ len(recipient) ‖ recipient ‖
//! window ‖ bits ‖ message hash)`. Each attempt hashes one 40-byte block, so
//! minting costs about 2^bits SHA-256 compressions and verifying costs two
//! (plus one pass over the payload for the message hash). The exact byte
//! layout is in `docs/protocol.md` ("Proof-of-work stamps").
//!
//! This module is pure computation: no I/O, no clock (callers pass `now`),
//! no async. [`mint`] is CPU-bound for seconds: callers run it on a blocking
//! thread, and it gives up after a bounded number of attempts or when its
//! cancel flag is raised.

use std::sync::atomic::{AtomicBool, Ordering};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Length of one stamp time window, in seconds.
pub const WINDOW_SECS: u64 = 3600;

/// How far ahead of the recipient's clock a sender's clock may be: a stamp
/// for the next window is accepted this many seconds before it starts.
pub const CLOCK_SKEW_SECS: u64 = 300;

/// The default difficulty, in leading zero bits: 2^25 SHA-256 compressions
/// on average, measured at 1.3 s of CPU per stamp on a core with SHA
/// extensions (release build; several seconds without them). Figures in
/// `docs/benchmarks.md`.
pub const DEFAULT_BITS: u8 = 25;

/// The most a sender agrees to mint. A recipient asking for more is refused
/// (the message bounces) rather than burning the sender's CPU for hours.
pub const MAX_MINT_BITS: u8 = 32;

/// Domain separation for the challenge hash.
const CHALLENGE_DOMAIN: &[u8] = b"mailnode-pow-1";

/// Domain separation for the message hash.
const MESSAGE_DOMAIN: &[u8] = b"mailnode-pow-msg-1";

/// How many attempts pass between two looks at the cancel flag.
const CANCEL_CHECK_EVERY: u64 = 1 << 14;

/// A proof-of-work stamp, carried in `DeliveryRequest::stamp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The recipient's PeerId, in its binary (multihash) form.
    #[serde(with = "serde_bytes")]
    pub recipient: Vec<u8>,
    /// The time window: seconds since the Unix epoch divided by
    /// [`WINDOW_SECS`], at the sender's clock when it minted.
    pub window: u64,
    /// The solution.
    pub nonce: u64,
    /// The difficulty the sender minted for, in leading zero bits.
    pub bits: u8,
}

/// Why a stamp is not accepted, or could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    /// The stamp was minted for another node.
    #[error("the proof-of-work stamp is for peer {stamp_for}, not for this recipient ({ours})")]
    WrongRecipient {
        /// The PeerId in the stamp (text).
        stamp_for: String,
        /// Our PeerId.
        ours: PeerId,
    },
    /// The stamp's window has passed.
    #[error(
        "the proof-of-work stamp is too old: it is for time window {window}, the recipient is in \
         window {current} (windows are {WINDOW_SECS} s; the current and the previous one are \
         accepted); mint a new one"
    )]
    TooOld {
        /// The stamp's window.
        window: u64,
        /// The recipient's current window.
        current: u64,
    },
    /// The stamp's window has not started yet at the recipient.
    #[error(
        "the proof-of-work stamp is for a future time window {window}, the recipient is in \
         window {current} (windows are {WINDOW_SECS} s, clocks may differ by {CLOCK_SKEW_SECS} s); \
         check the sender's clock"
    )]
    InFuture {
        /// The stamp's window.
        window: u64,
        /// The recipient's current window.
        current: u64,
    },
    /// The stamp does not carry the work the recipient requires.
    #[error(
        "the proof-of-work stamp is not enough work: the recipient requires {required} bits, \
         the stamp claims {claimed} and its hash has {found} leading zero bits"
    )]
    NotEnoughWork {
        /// What the recipient requires.
        required: u8,
        /// What the stamp says it was minted for.
        claimed: u8,
        /// Leading zero bits of the stamp's hash for this message.
        found: u32,
    },
    /// The stamp cannot be read.
    #[error("the proof-of-work stamp is malformed: {0}")]
    Malformed(String),
    /// A sender refuses to mint a stamp this hard.
    #[error(
        "the recipient asks for a proof-of-work stamp of {bits} bits; this node mints at most \
         {MAX_MINT_BITS} bits (that would take hours)"
    )]
    TooHard {
        /// The difficulty asked for.
        bits: u8,
    },
    /// Minting stopped after its budget of attempts without a solution.
    #[error("no proof-of-work solution found in {attempts} attempts")]
    GaveUp {
        /// How many nonces were tried.
        attempts: u64,
    },
    /// Minting was cancelled (the node is shutting down).
    #[error("minting the proof-of-work stamp was cancelled")]
    Cancelled,
}

/// The time window `now_secs` (seconds since the Unix epoch) falls in.
pub fn window_of(now_secs: u64) -> u64 {
    now_secs / WINDOW_SECS
}

/// SHA-256 over (delivery id ‖ payload), domain-separated: what binds a
/// stamp to one delivery.
pub fn message_hash(id: &[u8; 16], payload: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(MESSAGE_DOMAIN);
    hasher.update(id);
    hasher.update(payload);
    hasher.finalize().into()
}

/// The default attempt budget for `bits`: 64 times the expected number of
/// attempts, so that running out has probability e^-64 for an honest
/// minter, yet a bug can never spin forever.
pub fn default_budget(bits: u8) -> u64 {
    1u64.checked_shl(u32::from(bits) + 6).unwrap_or(u64::MAX)
}

/// Mints a stamp for delivering (`id`, `payload`) to `recipient` at
/// `now_secs`, with [`default_budget`] attempts and no cancellation.
/// CPU-bound: run it on a blocking thread.
pub fn mint(
    recipient: &PeerId,
    id: &[u8; 16],
    payload: &[u8],
    bits: u8,
    now_secs: u64,
) -> Result<Stamp, StampError> {
    let cancel = AtomicBool::new(false);
    mint_bounded(
        recipient,
        &message_hash(id, payload),
        bits,
        now_secs,
        default_budget(bits),
        &cancel,
    )
}

/// Mints a stamp for a message whose [`message_hash`] is `message`, trying
/// at most `max_attempts` nonces and stopping early when `cancel` is set
/// (checked every few thousand attempts).
pub fn mint_bounded(
    recipient: &PeerId,
    message: &[u8; 32],
    bits: u8,
    now_secs: u64,
    max_attempts: u64,
    cancel: &AtomicBool,
) -> Result<Stamp, StampError> {
    if bits > MAX_MINT_BITS {
        return Err(StampError::TooHard { bits });
    }
    let recipient = recipient.to_bytes();
    let window = window_of(now_secs);
    let challenge = challenge(&recipient, window, bits, message)?;
    // A random start, so that two stamps for the same challenge (a resend
    // after a restart) do not repeat the same search.
    let start: u64 = rand::random();
    for attempt in 0..max_attempts {
        if attempt % CANCEL_CHECK_EVERY == 0 && cancel.load(Ordering::Relaxed) {
            return Err(StampError::Cancelled);
        }
        let nonce = start.wrapping_add(attempt);
        if leading_zero_bits(&work(&challenge, nonce)) >= u32::from(bits) {
            return Ok(Stamp {
                recipient,
                window,
                nonce,
                bits,
            });
        }
    }
    Err(StampError::GaveUp {
        attempts: max_attempts,
    })
}

/// Checks `stamp` for delivering (`id`, `payload`) to `ours` at `now_secs`,
/// requiring `required_bits` of work. Costs two SHA-256 compressions plus
/// one pass over the payload.
pub fn verify(
    stamp: &Stamp,
    ours: &PeerId,
    id: &[u8; 16],
    payload: &[u8],
    required_bits: u8,
    now_secs: u64,
) -> Result<(), StampError> {
    verify_hashed(
        stamp,
        ours,
        &message_hash(id, payload),
        required_bits,
        now_secs,
    )
}

/// [`verify`] for a message whose [`message_hash`] is already known (a
/// receiver hashes a large payload off the async runtime). Costs two
/// SHA-256 compressions.
pub fn verify_hashed(
    stamp: &Stamp,
    ours: &PeerId,
    message: &[u8; 32],
    required_bits: u8,
    now_secs: u64,
) -> Result<(), StampError> {
    let recipient = PeerId::from_bytes(&stamp.recipient)
        .map_err(|err| StampError::Malformed(format!("its recipient is not a PeerId: {err}")))?;
    if recipient != *ours {
        return Err(StampError::WrongRecipient {
            stamp_for: recipient.to_string(),
            ours: *ours,
        });
    }
    let current = window_of(now_secs);
    if stamp.window > current {
        let next_starts = current.saturating_add(1).saturating_mul(WINDOW_SECS);
        let early_enough =
            stamp.window == current + 1 && now_secs.saturating_add(CLOCK_SKEW_SECS) >= next_starts;
        if !early_enough {
            return Err(StampError::InFuture {
                window: stamp.window,
                current,
            });
        }
    } else if stamp.window + 1 < current {
        return Err(StampError::TooOld {
            window: stamp.window,
            current,
        });
    }
    if stamp.bits < required_bits {
        return Err(StampError::NotEnoughWork {
            required: required_bits,
            claimed: stamp.bits,
            found: 0,
        });
    }
    let challenge = challenge(&stamp.recipient, stamp.window, stamp.bits, message)?;
    let found = leading_zero_bits(&work(&challenge, stamp.nonce));
    // The claimed bits are part of the challenge, so the hash must show the
    // claim (which is at least what we require).
    if found < u32::from(stamp.bits) {
        return Err(StampError::NotEnoughWork {
            required: required_bits,
            claimed: stamp.bits,
            found,
        });
    }
    Ok(())
}

/// The per-stamp constant: everything the work is bound to, in one digest.
fn challenge(
    recipient: &[u8],
    window: u64,
    bits: u8,
    message: &[u8; 32],
) -> Result<[u8; 32], StampError> {
    let len = u8::try_from(recipient.len())
        .map_err(|_| StampError::Malformed("its recipient is longer than 255 bytes".into()))?;
    let mut hasher = Sha256::new();
    hasher.update(CHALLENGE_DOMAIN);
    hasher.update([len]);
    hasher.update(recipient);
    hasher.update(window.to_be_bytes());
    hasher.update([bits]);
    hasher.update(message);
    Ok(hasher.finalize().into())
}

/// One attempt: SHA-256(challenge ‖ nonce as 8 bytes big-endian).
fn work(challenge: &[u8; 32], nonce: u64) -> [u8; 32] {
    let mut block = [0u8; 40];
    block[..32].copy_from_slice(challenge);
    block[32..].copy_from_slice(&nonce.to_be_bytes());
    Sha256::digest(block).into()
}

/// Number of leading zero bits of a digest.
fn leading_zero_bits(digest: &[u8; 32]) -> u32 {
    let mut zeros = 0;
    for byte in digest {
        if *byte == 0 {
            zeros += 8;
        } else {
            zeros += byte.leading_zeros();
            break;
        }
    }
    zeros
}

#[cfg(test)]
mod tests {
    use super::*;

    const BITS: u8 = 10;
    /// 2026-12-02 15:30:00 UTC: half-way through a window.
    const NOW: u64 = 1_796_225_400;

    fn peer() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    fn minted(bob: &PeerId) -> Stamp {
        mint(bob, &[1; 16], b"payload", BITS, NOW).expect("mint")
    }

    #[test]
    fn a_minted_stamp_verifies() {
        let bob = peer();
        let stamp = minted(&bob);
        assert_eq!(stamp.window, window_of(NOW));
        assert_eq!(stamp.bits, BITS);
        verify(&stamp, &bob, &[1; 16], b"payload", BITS, NOW).expect("valid");
        // Asking for less than was minted is fine too.
        verify(&stamp, &bob, &[1; 16], b"payload", BITS - 2, NOW).expect("valid");
    }

    #[test]
    fn another_recipient_is_refused() {
        let bob = peer();
        let carol = peer();
        let stamp = minted(&bob);
        let err = verify(&stamp, &carol, &[1; 16], b"payload", BITS, NOW).expect_err("refused");
        assert!(
            matches!(&err, StampError::WrongRecipient { stamp_for, ours }
                if *stamp_for == bob.to_string() && *ours == carol),
            "{err}"
        );
        assert!(err.to_string().contains("not for this recipient"), "{err}");
    }

    #[test]
    fn another_message_or_delivery_id_is_refused() {
        let bob = peer();
        let stamp = minted(&bob);
        // Another id or payload changes the challenge: the nonce found for
        // the first one solves another with probability 2^-10 only, so of
        // eight others at most a couple may pass by chance (more than two
        // has a probability below 10^-7).
        let passed = (0..8u8)
            .filter(|i| {
                let id = [*i + 2; 16];
                verify(&stamp, &bob, &id, b"payload", BITS, NOW).is_ok()
                    || verify(&stamp, &bob, &[1; 16], &[*i; 7], BITS, NOW).is_ok()
            })
            .count();
        assert!(
            passed <= 2,
            "a stamp carried over to {passed} other messages"
        );
        let err = verify(&stamp, &bob, &[9; 16], b"payload", BITS + 8, NOW)
            .expect_err("a stronger requirement");
        assert!(matches!(err, StampError::NotEnoughWork { .. }), "{err}");
    }

    #[test]
    fn windows_current_previous_and_skew() {
        let bob = peer();
        let stamp = minted(&bob);
        let start = window_of(NOW) * WINDOW_SECS;
        // Still valid through the whole next window.
        verify(
            &stamp,
            &bob,
            &[1; 16],
            b"payload",
            BITS,
            start + 2 * WINDOW_SECS - 1,
        )
        .expect("previous window");
        let err = verify(
            &stamp,
            &bob,
            &[1; 16],
            b"payload",
            BITS,
            start + 2 * WINDOW_SECS,
        )
        .expect_err("too old");
        assert!(matches!(err, StampError::TooOld { .. }), "{err}");
        assert!(err.to_string().contains("3600 s"), "{err}");
        // Recipient's clock a little behind (within the skew): accepted.
        verify(
            &stamp,
            &bob,
            &[1; 16],
            b"payload",
            BITS,
            start - CLOCK_SKEW_SECS,
        )
        .expect("skew");
        // More than the skew behind: refused as from the future.
        let err = verify(
            &stamp,
            &bob,
            &[1; 16],
            b"payload",
            BITS,
            start - CLOCK_SKEW_SECS - 1,
        )
        .expect_err("future");
        assert!(matches!(err, StampError::InFuture { .. }), "{err}");
        let err = verify(
            &stamp,
            &bob,
            &[1; 16],
            b"payload",
            BITS,
            start - 5 * WINDOW_SECS,
        )
        .expect_err("far future");
        assert!(matches!(err, StampError::InFuture { .. }), "{err}");
    }

    #[test]
    fn not_enough_work_is_refused() {
        let bob = peer();
        let stamp = minted(&bob);
        let err = verify(&stamp, &bob, &[1; 16], b"payload", BITS + 4, NOW).expect_err("weak");
        assert_eq!(
            err,
            StampError::NotEnoughWork {
                required: BITS + 4,
                claimed: BITS,
                found: 0
            }
        );
        // Claiming more than the hash shows is caught by the hash.
        let mut inflated = stamp.clone();
        inflated.bits = 30;
        let err = verify(&inflated, &bob, &[1; 16], b"payload", BITS, NOW).expect_err("lie");
        assert!(
            matches!(err, StampError::NotEnoughWork { claimed: 30, found, .. } if found < 30),
            "{err}"
        );
        // A changed nonce no longer solves the challenge (with probability
        // 1 - 2^-10; try a few until one fails, bounded).
        let failed = (1..=8u64).any(|delta| {
            let mut forged = stamp.clone();
            forged.nonce = forged.nonce.wrapping_add(delta);
            verify(&forged, &bob, &[1; 16], b"payload", BITS, NOW).is_err()
        });
        assert!(failed);
    }

    #[test]
    fn malformed_recipient_is_refused() {
        let bob = peer();
        let mut stamp = minted(&bob);
        stamp.recipient = vec![0xff; 3];
        let err = verify(&stamp, &bob, &[1; 16], b"payload", BITS, NOW).expect_err("junk");
        assert!(matches!(err, StampError::Malformed(_)), "{err}");
    }

    #[test]
    fn minting_is_bounded_and_cancellable() {
        let bob = peer();
        let message = message_hash(&[1; 16], b"payload");
        let never = AtomicBool::new(false);
        let err = mint_bounded(&bob, &message, 30, NOW, 1000, &never).expect_err("budget");
        assert_eq!(err, StampError::GaveUp { attempts: 1000 });
        let cancelled = AtomicBool::new(true);
        let err = mint_bounded(&bob, &message, 30, NOW, u64::MAX, &cancelled).expect_err("cancel");
        assert_eq!(err, StampError::Cancelled);
        let err = mint(&bob, &[1; 16], b"payload", MAX_MINT_BITS + 1, NOW).expect_err("too hard");
        assert_eq!(err, StampError::TooHard { bits: 33 });
        assert_eq!(default_budget(10), 1 << 16);
        assert_eq!(default_budget(60), u64::MAX);
    }

    #[test]
    fn zero_bits_count() {
        let mut digest = [0u8; 32];
        assert_eq!(leading_zero_bits(&digest), 256);
        digest[1] = 0b0001_0000;
        assert_eq!(leading_zero_bits(&digest), 11);
        digest[0] = 0x80;
        assert_eq!(leading_zero_bits(&digest), 0);
    }

    #[test]
    fn stamps_round_trip_through_cbor_with_byte_strings() {
        use libp2p::request_response::Codec;
        use libp2p::request_response::cbor::codec::Codec as Cbor;
        let bob = peer();
        let stamp = minted(&bob);
        let mut codec = Cbor::<Stamp, Stamp>::default();
        let protocol = libp2p::StreamProtocol::new("/test");
        let mut wire = Vec::new();
        futures::executor::block_on(codec.write_request(&protocol, &mut wire, stamp.clone()))
            .expect("encode");
        // The recipient is a CBOR byte string (major type 2), not an array.
        let len = u8::try_from(stamp.recipient.len()).expect("short");
        assert!(
            wire.windows(2).any(|w| w == [0x58, len]),
            "byte string header"
        );
        let back = futures::executor::block_on(codec.read_request(&protocol, &mut wire.as_slice()))
            .expect("decode");
        assert_eq!(back, stamp);
    }
}
