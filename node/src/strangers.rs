//! Mail from strangers (issue 6): the rules for senders who are not
//! contacts, applied by `inbound.rs`, and their promotion to contacts.
//!
//! Owns:
//! - [`StrangerPolicy`]: the `[strangers]` settings (stamp difficulty, rate
//!   limits);
//! - [`Limits`]: how many messages from strangers were filed in the last
//!   hour, per sender PeerId and in total, so that a flood of strangers can
//!   neither fill the disk nor starve contacts' mail (contacts are never
//!   counted);
//! - [`Strangers`]: the daemon's handle on both plus the stranger cards
//!   (`keys::StrangerBook`, `strangers.json`);
//! - [`run_promotions`]: when a stranger becomes a contact (`mailnode
//!   contacts accept`, or `contacts import` of their card), their messages
//!   move from Requests to INBOX; and when the user moves (or copies) one of
//!   a stranger's messages from Requests to INBOX with their mail client,
//!   that sender becomes a contact the same way.
//!
//! It must not decrypt, verify signatures or talk to the network: those are
//! `inbound.rs` and `network/`. Per-IP limits live in the network event loop.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imap_bridge::backend::{Content, MailStore, Uid};
use keys::{ContactCard, KeyError, StrangerBook};
use libp2p::PeerId;
use tokio::sync::watch;

use crate::contacts::Contacts;
use crate::store::Store;
use crate::verified;

/// Where strangers' mail is filed.
pub const REQUESTS: &str = "Requests";
/// Where it moves when its sender becomes a contact.
pub const INBOX: &str = "INBOX";

/// The window the rate limits count over.
const LIMIT_WINDOW: Duration = Duration::from_secs(3600);

/// How often the promotion task looks at the address book (a `stat` of
/// `contacts.json`; it reads the file only when it changed).
const PROMOTION_TICK: Duration = Duration::from_secs(1);

/// Default `[strangers] per_peer_per_hour`.
pub const DEFAULT_PER_PEER_PER_HOUR: u32 = 20;
/// Default `[strangers] total_per_hour`.
pub const DEFAULT_TOTAL_PER_HOUR: u32 = 500;

/// The `[strangers]` settings, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrangerPolicy {
    /// Proof-of-work difficulty a stranger's message must carry, in leading
    /// zero bits (0: no stamp needed). At most `pow::MAX_MINT_BITS`.
    pub pow_bits: u8,
    /// Messages filed in Requests per hour from one stranger PeerId.
    pub per_peer_per_hour: u32,
    /// Messages filed in Requests per hour from all strangers together.
    pub total_per_hour: u32,
}

impl Default for StrangerPolicy {
    fn default() -> Self {
        StrangerPolicy {
            pow_bits: crate::pow::DEFAULT_BITS,
            per_peer_per_hour: DEFAULT_PER_PEER_PER_HOUR,
            total_per_hour: DEFAULT_TOTAL_PER_HOUR,
        }
    }
}

/// A limit that is full: the reason for `TryLater` and when to come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full {
    /// Words for the sender's log.
    pub reason: String,
    /// When a slot frees up, in seconds (at least 60).
    pub retry_after_secs: u32,
}

/// Sliding-window counters of strangers' messages over the last hour.
/// Each stranger PeerId with a count also has it in the total, so at most
/// `total_per_hour` PeerIds are tracked: memory is bounded by the policy.
#[derive(Debug)]
pub struct Limits {
    policy: StrangerPolicy,
    per_peer: HashMap<PeerId, VecDeque<Instant>>,
    total: VecDeque<Instant>,
}

impl Limits {
    /// Empty counters under `policy`.
    pub fn new(policy: StrangerPolicy) -> Limits {
        Limits {
            policy,
            per_peer: HashMap::new(),
            total: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        let fresh = |at: &Instant| now.saturating_duration_since(*at) < LIMIT_WINDOW;
        while self.total.front().is_some_and(|at| !fresh(at)) {
            self.total.pop_front();
        }
        self.per_peer.retain(|_, times| {
            while times.front().is_some_and(|at| !fresh(at)) {
                times.pop_front();
            }
            !times.is_empty()
        });
    }

    /// Whether one more message from `peer` would fit at `now`.
    pub fn check(&mut self, peer: &PeerId, now: Instant) -> Result<(), Full> {
        self.expire(now);
        let retry = |oldest: Option<&Instant>| {
            let wait = oldest
                .map(|at| LIMIT_WINDOW.saturating_sub(now.saturating_duration_since(*at)))
                .unwrap_or(LIMIT_WINDOW);
            u32::try_from(wait.as_secs()).unwrap_or(u32::MAX).max(60)
        };
        if let Some(times) = self.per_peer.get(peer)
            && times.len() >= self.policy.per_peer_per_hour as usize
        {
            return Err(Full {
                reason: format!(
                    "this recipient accepts at most {} messages per hour from a sender who is not \
                     a contact; the rest waits until they add you as a contact or the hour passes",
                    self.policy.per_peer_per_hour
                ),
                retry_after_secs: retry(times.front()),
            });
        }
        if self.total.len() >= self.policy.total_per_hour as usize {
            return Err(Full {
                reason: format!(
                    "this recipient accepts at most {} messages per hour from senders who are not \
                     contacts, and that many arrived; try again later",
                    self.policy.total_per_hour
                ),
                retry_after_secs: retry(self.total.front()),
            });
        }
        Ok(())
    }

    /// Counts one message from `peer` at `now` if it fits.
    pub fn reserve(&mut self, peer: &PeerId, now: Instant) -> Result<(), Full> {
        self.check(peer, now)?;
        self.per_peer.entry(*peer).or_default().push_back(now);
        self.total.push_back(now);
        Ok(())
    }

    /// Takes back a reservation made at `at` (the message was not filed).
    pub fn release(&mut self, peer: &PeerId, at: Instant) {
        if let Some(times) = self.per_peer.get_mut(peer) {
            if let Some(index) = times.iter().rposition(|t| *t == at) {
                times.remove(index);
            }
            if times.is_empty() {
                self.per_peer.remove(peer);
            }
        }
        if let Some(index) = self.total.iter().rposition(|t| *t == at) {
            self.total.remove(index);
        }
    }
}

/// The daemon's shared state about strangers. Cheap to clone.
#[derive(Clone)]
pub struct Strangers {
    inner: Arc<Inner>,
}

struct Inner {
    policy: StrangerPolicy,
    limits: Mutex<Limits>,
    book: Mutex<StrangerBook>,
}

/// A counted slot in the limits; released when dropped unless
/// [`Reservation::keep`] was called (the message was filed).
pub struct Reservation {
    strangers: Strangers,
    peer: PeerId,
    at: Instant,
    kept: bool,
}

impl Reservation {
    /// The message was filed: the slot stays counted.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.kept {
            lock(&self.strangers.inner.limits).release(&self.peer, self.at);
        }
    }
}

impl Strangers {
    /// The state for a home's stranger list under `policy`.
    pub fn new(policy: StrangerPolicy, book: StrangerBook) -> Strangers {
        Strangers {
            inner: Arc::new(Inner {
                policy,
                limits: Mutex::new(Limits::new(policy)),
                book: Mutex::new(book),
            }),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> StrangerPolicy {
        self.inner.policy
    }

    /// Whether one more message from `peer` fits the limits now.
    pub fn check(&self, peer: &PeerId) -> Result<(), Full> {
        lock(&self.inner.limits).check(peer, Instant::now())
    }

    /// Counts one message from `peer`; dropping the reservation undoes it.
    pub fn reserve(&self, peer: &PeerId) -> Result<Reservation, Full> {
        let now = Instant::now();
        lock(&self.inner.limits).reserve(peer, now)?;
        Ok(Reservation {
            strangers: self.clone(),
            peer: *peer,
            at: now,
            kept: false,
        })
    }

    /// Keeps the card of a stranger whose message is about to be filed.
    /// Writes `strangers.json` (on a blocking thread) only for a new card.
    pub async fn remember(&self, card: &ContactCard) -> Result<(), KeyError> {
        let inner = Arc::clone(&self.inner);
        let card = card.clone();
        let now = chrono::Utc::now().timestamp();
        tokio::task::spawn_blocking(move || lock(&inner.book).remember(&card, now).map(|_| ()))
            .await
            .map_err(|err| {
                KeyError::AddressBook(format!("keeping a stranger's card failed: {err}"))
            })?
    }

    /// Fingerprints of every stranger kept.
    fn fingerprints(&self) -> Vec<String> {
        lock(&self.inner.book)
            .list()
            .iter()
            .map(|s| s.card.fingerprint().to_string())
            .collect()
    }

    /// The kept card with this fingerprint.
    fn card(&self, fingerprint: &str) -> Option<ContactCard> {
        lock(&self.inner.book)
            .by_fingerprint(fingerprint)
            .map(|s| s.card.clone())
    }

    fn forget(&self, fingerprint: &str) -> Result<bool, KeyError> {
        lock(&self.inner.book).forget(fingerprint)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Runs until `shutdown` turns true: whenever the address book changed (and
/// once at start-up), every stranger who is now a contact is promoted: their
/// messages move from Requests to INBOX and their card leaves the stranger
/// list. Whenever messages arrive in INBOX, a kept stranger who signed one
/// of them (the user moved it there) is added to the address book first.
pub async fn run_promotions(
    contacts: Contacts,
    strangers: Strangers,
    store: Store,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut events = store.watch();
    let mut inbox_next: Uid = match store.snapshot(INBOX).await {
        Ok(snapshot) => snapshot.info.uid_next,
        Err(_) => 1,
    };
    let mut seen: Option<u64> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let generation = contacts.generation();
        if seen != Some(generation) {
            seen = Some(generation);
            promote_contacts(&contacts, &strangers, &store).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(PROMOTION_TICK) => {}
            event = events.recv() => match event {
                Ok(changed) if changed.mailbox != INBOX => {}
                // An INBOX change, or missed some: look at the arrivals.
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    if promote_moved(&contacts, &strangers, &store, &mut inbox_next).await > 0 {
                        promote_contacts(&contacts, &strangers, &store).await;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = shutdown.changed() => {}
        }
    }
}

/// Looks at the messages that arrived in INBOX since UID `inbox_next`: a
/// kept stranger who signed one was moved there by the user, who thereby
/// accepted them; their card goes into the address book. Returns how many
/// strangers were added. Costs nothing while no stranger is kept.
async fn promote_moved(
    contacts: &Contacts,
    strangers: &Strangers,
    store: &Store,
    inbox_next: &mut Uid,
) -> usize {
    let kept = strangers.fingerprints();
    let Ok(snapshot) = store.snapshot(INBOX).await else {
        return 0;
    };
    let from = *inbox_next;
    *inbox_next = snapshot.info.uid_next;
    if kept.is_empty() {
        return 0;
    }
    let start = snapshot.index.position(from).unwrap_or_else(|p| p);
    let arrived: Vec<Uid> = snapshot.index.uids_from(start).collect();
    if arrived.is_empty() {
        return 0;
    }
    let headers = match store.fetch(INBOX, &arrived, Content::Header).await {
        Ok(headers) => headers,
        Err(err) => {
            tracing::warn!("cannot read new INBOX messages to look for accepted strangers: {err}");
            return 0;
        }
    };
    let mut added = 0;
    for fingerprint in headers.iter().filter_map(|(_, header)| signer_of(header)) {
        let Some(card) = strangers.card(&fingerprint) else {
            continue;
        };
        if contacts.by_fingerprint(&fingerprint).is_some() {
            continue;
        }
        match contacts.add(card.clone()) {
            Ok(_) => {
                added += 1;
                tracing::info!(
                    fingerprint,
                    address = card.address(),
                    "a stranger's message was moved to INBOX; the sender is now a contact"
                );
            }
            Err(err) => tracing::warn!(
                fingerprint,
                "a stranger's message was moved to INBOX, but they cannot become a contact: {err}"
            ),
        }
    }
    added
}

/// One pass of the promotion: returns how many messages moved.
pub async fn promote_contacts(contacts: &Contacts, strangers: &Strangers, store: &Store) -> usize {
    let contact_fprs: HashSet<String> = contacts
        .all()
        .iter()
        .map(|c| c.card.fingerprint().to_ascii_uppercase())
        .collect();
    let mut moved_total = 0;
    for fingerprint in strangers.fingerprints() {
        if !contact_fprs.contains(&fingerprint.to_ascii_uppercase()) {
            continue;
        }
        match move_to_inbox(store, &fingerprint).await {
            Ok(moved) => {
                moved_total += moved;
                tracing::info!(
                    fingerprint,
                    moved,
                    "a stranger became a contact; their messages moved from Requests to INBOX"
                );
                if let Err(err) = strangers.forget(&fingerprint) {
                    tracing::warn!("cannot update the stranger list: {err}");
                }
            }
            // Keep the stranger: the next change of the address book (or
            // the next start) tries again.
            Err(err) => tracing::error!(
                fingerprint,
                "cannot move a new contact's messages out of Requests: {err}"
            ),
        }
    }
    moved_total
}

/// Moves every message in Requests signed by `fingerprint` to INBOX, in one
/// store transaction (IMAP MOVE semantics: flags and dates kept). Returns
/// how many moved.
pub async fn move_to_inbox(
    store: &Store,
    fingerprint: &str,
) -> Result<usize, imap_bridge::backend::StoreError> {
    let snapshot = match store.snapshot(REQUESTS).await {
        Ok(snapshot) => snapshot,
        // The user deleted the folder: nothing to move.
        Err(imap_bridge::backend::StoreError::NoSuchMailbox(_)) => return Ok(0),
        Err(err) => return Err(err),
    };
    let uids: Vec<_> = snapshot.index.uids_from(0).collect();
    if uids.is_empty() {
        return Ok(0);
    }
    let headers = store.fetch(REQUESTS, &uids, Content::Header).await?;
    let theirs: Vec<_> = headers
        .iter()
        .filter(|(_, header)| {
            signer_of(header).is_some_and(|fpr| fpr.eq_ignore_ascii_case(fingerprint))
        })
        .map(|(uid, _)| *uid)
        .collect();
    if theirs.is_empty() {
        return Ok(0);
    }
    store.move_messages(REQUESTS, &theirs, INBOX).await?;
    Ok(theirs.len())
}

/// The fingerprint in a message's `X-Mailnode-Verified-Signer` field (the
/// node adds it at filing and removes any copy the sender sent, see
/// `verified.rs`).
fn signer_of(header: &[u8]) -> Option<String> {
    let (fields, _) = mailparse::parse_headers(header).ok()?;
    use mailparse::MailHeaderMap;
    let value = fields.get_first_value(verified::FIELD)?;
    value.split_whitespace().next().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    fn policy(per_peer: u32, total: u32) -> StrangerPolicy {
        StrangerPolicy {
            pow_bits: 8,
            per_peer_per_hour: per_peer,
            total_per_hour: total,
        }
    }

    #[test]
    fn per_peer_and_total_limits_hold_and_expire() {
        let mut limits = Limits::new(policy(2, 3));
        let (eve, mallory, carol) = (peer(), peer(), peer());
        let t0 = Instant::now();
        limits.reserve(&eve, t0).expect("first");
        limits.reserve(&eve, t0).expect("second");
        let full = limits.reserve(&eve, t0).expect_err("third from eve");
        assert!(
            full.reason.contains("at most 2 messages per hour"),
            "{}",
            full.reason
        );
        assert!(full.retry_after_secs >= 3599, "{}", full.retry_after_secs);
        limits.reserve(&mallory, t0).expect("mallory");
        let full = limits.check(&carol, t0).expect_err("total");
        assert!(
            full.reason.contains("at most 3 messages per hour"),
            "{}",
            full.reason
        );
        // An hour later everything is free again.
        let later = t0 + LIMIT_WINDOW;
        limits.reserve(&carol, later).expect("after an hour");
        assert_eq!(limits.per_peer.len(), 1, "expired peers are forgotten");
    }

    #[test]
    fn released_reservations_do_not_count() {
        let mut limits = Limits::new(policy(1, 10));
        let eve = peer();
        let t0 = Instant::now();
        limits.reserve(&eve, t0).expect("first");
        limits.release(&eve, t0);
        limits.reserve(&eve, t0).expect("again after release");
        assert_eq!(limits.total.len(), 1);
    }

    #[test]
    fn reservations_release_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let strangers =
            Strangers::new(policy(1, 10), StrangerBook::open(dir.path()).expect("book"));
        let eve = peer();
        let slot = strangers.reserve(&eve).expect("slot");
        assert!(strangers.reserve(&eve).is_err(), "one per hour");
        drop(slot);
        strangers.reserve(&eve).expect("free again").keep();
        assert!(strangers.check(&eve).is_err(), "a kept slot stays counted");
    }

    #[test]
    fn the_signer_is_read_from_the_verified_field() {
        let header = b"X-Mailnode-Verified-Signer: ABCDEF0123 (Carol <carol@example.org>)\r\n\
                       From: carol@example.org\r\n\r\n";
        assert_eq!(signer_of(header).as_deref(), Some("ABCDEF0123"));
        assert_eq!(signer_of(b"From: x@example.org\r\n\r\n"), None);
    }
}
