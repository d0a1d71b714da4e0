//! The limits a mailbox peer enforces, with their defaults (configurable in
//! `config.toml` `[mailbox]`, documented in `docs/protocol.md`).

use std::time::Duration;

use super::MailboxError;
use super::codec::FRAMING_ALLOWANCE;

const MIB: u64 = 1024 * 1024;

/// The largest envelope limit that may be configured: every `Collect`
/// answer must fit the codec's response cap.
pub const MAX_ENVELOPE_LIMIT: u64 = 48 * MIB;

/// The longest a registration may be valid (from now); a longer one is
/// refused, so a recipient who disappears stops being served.
pub const MAX_REGISTRATION_LIFETIME: Duration = Duration::from_secs(31 * 24 * 3600);

/// How far in the future a registration's `issued_at` may lie (clock skew).
pub const CLOCK_SKEW: Duration = Duration::from_secs(10 * 60);

/// What a mailbox peer holds at most, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxLimits {
    /// Largest sealed envelope accepted, bytes (default 33 MiB: a 32 MiB
    /// message, the sender's card and the sealing overhead).
    pub max_envelope_bytes: u64,
    /// Envelopes one sender may have waiting for one recipient (default 200).
    pub per_sender_count: u32,
    /// Bytes one sender may have waiting for one recipient (default 64 MiB).
    pub per_sender_bytes: u64,
    /// Bytes waiting for one recipient from all senders (default 256 MiB).
    pub per_inbox_bytes: u64,
    /// Bytes held for everyone (default 4 GiB).
    pub total_bytes: u64,
    /// Recipients registered at once (default 1000).
    pub max_registrations: u32,
    /// How long an envelope is kept when nobody collects it (default 30
    /// days); pruned at start and hourly.
    pub retention: Duration,
    /// Most envelopes in one `Collect` answer (default 64).
    pub collect_count: u32,
    /// Most bytes of envelopes in one `Collect` answer (default 16 MiB; one
    /// envelope larger than this still goes out, alone).
    pub collect_bytes: u64,
}

impl Default for MailboxLimits {
    fn default() -> MailboxLimits {
        MailboxLimits {
            max_envelope_bytes: 33 * MIB,
            per_sender_count: 200,
            per_sender_bytes: 64 * MIB,
            per_inbox_bytes: 256 * MIB,
            total_bytes: 4096 * MIB,
            max_registrations: 1000,
            retention: Duration::from_secs(30 * 24 * 3600),
            collect_count: 64,
            collect_bytes: 16 * MIB,
        }
    }
}

impl MailboxLimits {
    /// Checks that the limits make sense together.
    pub fn check(&self) -> Result<(), MailboxError> {
        if self.max_envelope_bytes < 1024 || self.max_envelope_bytes > MAX_ENVELOPE_LIMIT {
            return Err(MailboxError::Limits(format!(
                "max_envelope_bytes must be between 1024 and {MAX_ENVELOPE_LIMIT}, not {}",
                self.max_envelope_bytes
            )));
        }
        if self.collect_bytes > MAX_ENVELOPE_LIMIT || self.collect_count == 0 {
            return Err(MailboxError::Limits(format!(
                "collect_bytes must be at most {MAX_ENVELOPE_LIMIT} and collect_count at least 1"
            )));
        }
        if self.per_sender_count == 0 || self.max_registrations == 0 {
            return Err(MailboxError::Limits(
                "per_sender_count and max_registrations must be at least 1".into(),
            ));
        }
        if self.per_sender_bytes > self.per_inbox_bytes || self.per_inbox_bytes > self.total_bytes {
            return Err(MailboxError::Limits(
                "the byte limits must satisfy per_sender_bytes <= per_inbox_bytes <= total_bytes"
                    .into(),
            ));
        }
        if self.retention < Duration::from_secs(3600) {
            return Err(MailboxError::Limits(
                "retention must be at least one hour".into(),
            ));
        }
        Ok(())
    }

    /// The request frame limit for `MailboxCodec::new`: one envelope plus
    /// room for the rest of the request.
    pub fn request_limit(&self) -> u64 {
        self.max_envelope_bytes.saturating_add(FRAMING_ALLOWANCE)
    }
}
