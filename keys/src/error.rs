//! The one error type of the `keys` crate.

use std::path::PathBuf;

/// Everything that can go wrong with identities, cards and secrets. Each
/// message says what went wrong and, where there is one, what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file of the home could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A stored file is damaged or from an unknown version.
    #[error("{path} is damaged or not a mailnode file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The home already holds an identity.
    #[error("{0} already holds an identity; mailnode never overwrites one")]
    IdentityExists(PathBuf),
    /// The name or address given to keygen is unusable.
    #[error("{0}")]
    InvalidUserId(String),
    /// A contact card is not a usable mailnode card.
    #[error("not a usable mailnode contact card: {0}")]
    InvalidCard(String),
    /// OpenPGP operation failed.
    #[error("OpenPGP: {0}")]
    OpenPgp(String),
    /// A message could not be decrypted or its signature did not verify.
    #[error("{0}")]
    Refused(String),
    /// Neither the keyring nor a passphrase is available.
    #[error("{0}")]
    NoSecretStore(String),
    /// The OS keyring failed.
    #[error("the OS keyring (Secret Service) failed: {0}")]
    Keyring(String),
    /// The passphrase is wrong (or the secrets were tampered with).
    #[error("wrong passphrase: the secrets in {0} cannot be unlocked with it")]
    WrongPassphrase(PathBuf),
    /// The passphrase given is empty or too short.
    #[error("{0}")]
    WeakPassphrase(String),
    /// An exported secret bundle (a backup's) is damaged.
    #[error("the identity's secrets are damaged: {0}")]
    BadSecrets(String),
    /// A contact's card update is refused (wrong key, forged signature).
    #[error("{0}")]
    UpdateRefused(String),
    /// The key is revoked, so the operation cannot be done.
    #[error("{0}")]
    Revoked(String),
    /// The address book refuses a change.
    #[error("{0}")]
    AddressBook(String),
}

impl KeyError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        KeyError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn pgp(err: impl std::fmt::Display) -> Self {
        KeyError::OpenPgp(err.to_string())
    }
}
