//! The one error type of the mailbox module.

/// What can go wrong in the mailbox: sealing and opening envelopes, the
/// mailbox database, requests that break the protocol. Each message says
/// what went wrong; none carries message content.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// The mailbox database failed.
    #[error("the mailbox database {path} failed: {reason}")]
    Database {
        /// The database file.
        path: String,
        /// SQLite's words.
        reason: String,
    },
    /// The mailbox service has stopped (its thread ended).
    #[error("the mailbox service has stopped")]
    Stopped,
    /// The mailbox's queue is full; the caller answers `TryLater`.
    #[error("the mailbox is busy")]
    Busy,
    /// A request is malformed or breaks the protocol.
    #[error("{0}")]
    BadRequest(String),
    /// A signature does not verify.
    #[error("{0}")]
    BadSignature(String),
    /// Signing with our own key failed.
    #[error("cannot sign with this node's key: {0}")]
    Signing(String),
    /// An envelope cannot be sealed (the recipient's card is unusable).
    #[error("cannot seal the envelope: {0}")]
    Seal(String),
    /// An envelope cannot be opened: not for us, damaged, or forged.
    #[error("the envelope cannot be opened: {0}")]
    Open(String),
    /// The mailbox peer list file cannot be read or written.
    #[error("{path}: {reason}")]
    PeerList {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A limit given in the configuration is unusable.
    #[error("[mailbox] {0}")]
    Limits(String),
}
