//! mailnode's identity, contact cards, address book and secret protection.
//!
//! - [`Identity`]: the node owner's OpenPGP certificate (Curve25519), its
//!   libp2p key, the bridge password and the store key. Created once by
//!   `mailnode keygen`, kept in the home directory with every secret encrypted.
//! - [`ContactCard`]: a person's public certificate, one standard armored
//!   OpenPGP key whose user-ID self-signature binds their libp2p PeerId with
//!   the notation [`PEER_ID_NOTATION`].
//! - [`AddressBook`]: the contacts this node delivers to and accepts mail from.
//! - [`SafetyNumber`]: what two contacts compare to verify each other's key.
//! - [`StrangerBook`]: the cards of senders whose mail waits in `Requests`.
//! - [`Protection`] / [`Unlocker`]: where the unlock secret lives: the OS
//!   keyring (Secret Service) when reachable, else a passphrase.
//!
//! This crate does no networking and never writes a secret in the clear.

#![forbid(unsafe_code)]

mod armor;
mod book;
mod card;
mod devices;
mod error;
mod identity;
mod rotate;
mod safety;
mod seal;
mod secrets;
mod strangers;
mod update;

pub use book::{AddressBook, Contact, Outcome};
pub use card::{ContactCard, DEVICE_NOTATION, MAX_DEVICES, PEER_ID_NOTATION, Revocation};
pub use error::KeyError;
pub use identity::{Identity, Opened, PublicInfo};
pub use rotate::{RevocationReason, Rotation};
pub use safety::SafetyNumber;
pub use seal::{check_encryption_key, encrypt_to};
pub use secrets::{
    ARGON2_PARAMS, PASSPHRASE_ENV, PassphraseSource, Protection, ProtectionUsed, Unlocker,
    derive as argon2id,
};
pub use strangers::{MAX_STRANGERS, Stranger, StrangerBook};
pub use update::{CardChange, CardUpdate};

/// Re-exported so that callers name the same PeerId and Multiaddr types.
pub use libp2p::{Multiaddr, PeerId};
