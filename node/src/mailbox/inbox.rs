//! Rotating inbox ids: the name under which a sender deposits mail for a
//! recipient at a mailbox peer.
//!
//! `inbox_id(recipient, epoch) = SHA-256("mailnode-inbox-v1" || recipient
//! PeerId bytes || epoch as u64 big-endian)`, with epochs of
//! [`EPOCH_SECS`] (one day) counted from the Unix epoch. Anyone who knows the
//! recipient's PeerId (its contacts) can compute it; an observer of the
//! deposits sees a name that changes every day instead of a stable id. The
//! mailbox accepts the current and the previous epoch (and the next one, for
//! senders whose clock runs ahead); the collector asks for current and
//! previous.
//!
//! This module is pure computation: no I/O, no clock of its own.

use libp2p::PeerId;
use sha2::{Digest, Sha256};

use super::wire::InboxId;

/// Length of one inbox epoch: one day.
pub const EPOCH_SECS: u64 = 24 * 60 * 60;

/// The epoch a Unix time falls in.
pub fn epoch_of(unix_secs: u64) -> u64 {
    unix_secs / EPOCH_SECS
}

/// The inbox id of `recipient` in `epoch`.
pub fn inbox_id(recipient: &PeerId, epoch: u64) -> InboxId {
    let mut hash = Sha256::new();
    hash.update(b"mailnode-inbox-v1");
    hash.update(recipient.to_bytes());
    hash.update(epoch.to_be_bytes());
    hash.finalize().into()
}

/// The inbox a sender deposits into at `now`.
pub fn current_inbox(recipient: &PeerId, now: u64) -> InboxId {
    inbox_id(recipient, epoch_of(now))
}

/// The inboxes a collector asks for at `now`: current, then previous.
pub fn collect_inboxes(recipient: &PeerId, now: u64) -> Vec<InboxId> {
    let epoch = epoch_of(now);
    vec![
        inbox_id(recipient, epoch),
        inbox_id(recipient, epoch.saturating_sub(1)),
    ]
}

/// The epochs a mailbox accepts deposits for at `now`: previous, current
/// and next.
pub fn accepted_epochs(now: u64) -> std::ops::RangeInclusive<u64> {
    let epoch = epoch_of(now);
    epoch.saturating_sub(1)..=epoch.saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_distinct_per_recipient_and_rotate_daily() {
        let alice = PeerId::random();
        let bob = PeerId::random();
        let now = 1_800_000_000;
        assert_eq!(current_inbox(&alice, now), current_inbox(&alice, now + 1));
        assert_ne!(current_inbox(&alice, now), current_inbox(&bob, now));
        let next_day = (epoch_of(now) + 1) * EPOCH_SECS;
        assert_ne!(current_inbox(&alice, now), current_inbox(&alice, next_day));
        assert_eq!(
            current_inbox(&alice, next_day - 1),
            current_inbox(&alice, now)
        );
        let asked = collect_inboxes(&alice, next_day);
        assert_eq!(
            asked,
            vec![current_inbox(&alice, next_day), current_inbox(&alice, now)]
        );
        assert_eq!(accepted_epochs(next_day), epoch_of(now)..=epoch_of(now) + 2);
    }

    #[test]
    fn the_derivation_is_the_documented_one() {
        let peer = PeerId::random();
        let mut input = b"mailnode-inbox-v1".to_vec();
        input.extend(peer.to_bytes());
        input.extend(20_000u64.to_be_bytes());
        let expected: [u8; 32] = Sha256::digest(&input).into();
        assert_eq!(inbox_id(&peer, 20_000), expected);
        assert_eq!(epoch_of(20_000 * EPOCH_SECS + 5), 20_000);
    }
}
