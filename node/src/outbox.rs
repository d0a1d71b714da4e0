//! The delivery service: moves queued messages from the outbox to their
//! recipients' nodes (DESIGN.md "The path of one message", step 4).
//!
//! Rules:
//! - An entry leaves the outbox only when the recipient answers `Accepted`,
//!   which it does only after its own commit. A crash anywhere before that
//!   leaves the entry queued, and it is sent again; the recipient
//!   deduplicates by (peer, delivery id), so a resend never makes a copy.
//! - Unreachable peers, timeouts and `TryLater` are retried with exponential
//!   backoff (2 s doubling up to the configured maximum, with jitter), across
//!   restarts: the schedule lives in the store. At start-up every entry is
//!   tried once at once.
//! - `Rejected` is permanent: the entry is replaced by a bounce in INBOX that
//!   says who refused what and why. So is giving up after the configured
//!   time since the message was queued (a week by default).
//! - When a peer connects (it came online and greeted us, see
//!   `daemon.rs`), its waiting entries are tried at once instead of at the
//!   end of their backoff.
//! - Many deliveries are in flight at once (they are pipelined over one
//!   connection per peer by the network service).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, broadcast, mpsc, watch};

use crate::bounce::Failure;
use crate::contacts::Contacts;
use crate::network::{DeliveryRequest, DeliveryResponse, Network};
use crate::store::{OutboxEntry, Store};

/// How many deliveries may be in flight at once.
const MAX_IN_FLIGHT: usize = 512;

/// Settings of the delivery service.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// Longest wait between two attempts.
    pub max_retry_interval: Duration,
    /// When to give up on an entry (counted from its first attempt).
    pub give_up_after: Duration,
    /// Our own card (binary), sent with every request so that recipients
    /// who do not have us as a contact can still verify us.
    pub own_card: Vec<u8>,
    /// Our own address, for bounces.
    pub own_address: String,
    /// Our own PeerId, which names the reporting node in bounces.
    pub own_peer_id: String,
    /// Our libp2p key: deposits at mailbox peers are signed with it.
    pub keypair: libp2p::identity::Keypair,
    /// The provider's SMTP server, when a gateway is set up (issue 11).
    pub gateway: Option<Arc<crate::gateway::outbound::GatewaySender>>,
}

/// Runs the delivery service until `shutdown` turns true.
pub async fn run(
    store: Store,
    network: Network,
    contacts: Contacts,
    wakeup: Arc<Notify>,
    settings: OutboxSettings,
    mut connected: broadcast::Receiver<libp2p::PeerId>,
    mut shutdown: watch::Receiver<bool>,
) {
    let settings = Arc::new(settings);
    let in_flight: Arc<Mutex<HashSet<i64>>> = Arc::new(Mutex::new(HashSet::new()));
    let (done_tx, mut done_rx) = mpsc::channel::<i64>(MAX_IN_FLIGHT);
    // At start-up every queued entry is tried at once, whatever its backoff
    // said: a restart is when the network or the peers most likely changed.
    if let Err(err) = store.outbox_reschedule_all(now_ms()).await {
        tracing::error!("cannot reschedule the outbox: {err}");
    }
    let mut last_sweep: Option<std::time::Instant> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Deposits older than the mailbox retention leave without a bounce;
        // checking once a minute is plenty for a 30-day limit.
        if last_sweep.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
            last_sweep = Some(std::time::Instant::now());
            if let Err(err) = store.outbox_drop_expired_deposits(now_ms()).await {
                tracing::error!("cannot drop expired deposits: {err}");
            }
        }
        let busy: Vec<i64> = lock(&in_flight).iter().copied().collect();
        let room = MAX_IN_FLIGHT.saturating_sub(busy.len());
        if room > 0 {
            match store.due_outbox(now_ms(), room, &busy).await {
                Ok(due) => {
                    for entry in due {
                        lock(&in_flight).insert(entry.id);
                        let job = Job {
                            store: store.clone(),
                            network: network.clone(),
                            contacts: contacts.clone(),
                            settings: Arc::clone(&settings),
                        };
                        let done = done_tx.clone();
                        tokio::spawn(async move {
                            let id = entry.id;
                            job.deliver(entry).await;
                            let _ = done.send(id).await;
                        });
                    }
                }
                Err(err) => tracing::error!("cannot read the outbox: {err}"),
            }
        }
        let next_due = if lock(&in_flight).len() >= MAX_IN_FLIGHT {
            None
        } else {
            store.next_outbox_due().await.unwrap_or_else(|err| {
                tracing::error!("cannot read the outbox: {err}");
                Some(now_ms() + 5_000)
            })
        };
        let sleep_ms = match next_due {
            Some(due) => (due - now_ms()).clamp(0, 60_000) as u64,
            None => 60_000,
        };
        // Entries in flight have a due time in the past; do not spin on them.
        let sleep_ms = if sleep_ms == 0 && !lock(&in_flight).is_empty() {
            1_000
        } else {
            sleep_ms
        };
        tokio::select! {
            _ = wakeup.notified() => {}
            Some(id) = done_rx.recv() => {
                lock(&in_flight).remove(&id);
                while let Ok(id) = done_rx.try_recv() {
                    lock(&in_flight).remove(&id);
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms)) => {}
            peer = connected.recv() => match peer {
                // A peer came online: what waits for it goes now, not at
                // the end of its backoff.
                Ok(peer) => match store.outbox_reschedule_peer(&peer.to_string(), now_ms()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(%peer, queued = n, "peer is online, sending what waits for it"),
                    Err(err) => tracing::error!("cannot reschedule the outbox: {err}"),
                },
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed some: treat everyone as possibly back.
                    if let Err(err) = store.outbox_reschedule_all(now_ms()).await {
                        tracing::error!("cannot reschedule the outbox: {err}");
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = shutdown.changed() => {}
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Everything one delivery attempt needs.
struct Job {
    store: Store,
    network: Network,
    contacts: Contacts,
    settings: Arc<OutboxSettings>,
}

impl Job {
    async fn deliver(self, entry: OutboxEntry) {
        if entry.peer_id == crate::gateway::outbound::GATEWAY_PEER {
            self.deliver_by_gateway(&entry).await;
            return;
        }
        let peer = match entry.peer_id.parse::<libp2p::PeerId>() {
            Ok(peer) => peer,
            Err(err) => {
                self.fail(
                    &entry,
                    Failure::Other(format!("the recipient's PeerId is invalid: {err}")),
                )
                .await;
                return;
            }
        };
        let contact = self.contacts.by_fingerprint(&entry.recipient_fpr);
        // The contact's node may have a new PeerId since this was queued
        // (their card update, issue 8): an entry for a PeerId their card no
        // longer lists goes to their first device. For a device they
        // removed that is a copy the first device has had already (same
        // delivery id, so it files it once): the removed device gets nothing.
        let peer = match &contact {
            Some(c) if !c.card.has_device(&peer) => *c.card.peer_id(),
            _ => peer,
        };
        if let Some(refusal) = contact
            .as_ref()
            .and_then(|c| crate::card_update::revoked_recipient(&c.card))
        {
            // Queued before the recipient's revocation arrived: encrypted
            // to a key its owner says is no longer theirs alone.
            tracing::warn!(recipient_peer = %peer, "not delivered: {refusal}");
            self.fail(&entry, Failure::Refused(refusal)).await;
            return;
        }
        let addrs = contact.map(|contact| contact.addrs).unwrap_or_default();
        let request = |stamp| DeliveryRequest {
            id: entry.delivery_id,
            sender_card: Some(self.settings.own_card.clone()),
            payload: entry.payload.clone(),
            stamp,
        };
        let mut answer = self
            .network
            .deliver(peer, addrs.clone(), request(None))
            .await;
        if let Ok(DeliveryResponse::StampRequired { bits }) = answer {
            // We are not the recipient's contact: pay the proof of work and
            // send again at once.
            match mint_stamp(peer, &entry, bits).await {
                Ok(stamp) => {
                    answer = self
                        .network
                        .deliver(peer, addrs, request(Some(stamp)))
                        .await
                }
                Err(err @ crate::pow::StampError::TooHard { .. }) => {
                    tracing::warn!(recipient_peer = %peer, "cannot pay the recipient's stamp: {err}");
                    self.fail(
                        &entry,
                        Failure::Refused(format!("the recipient's node refused it: {err}")),
                    )
                    .await;
                    return;
                }
                Err(err) => {
                    self.retry(&entry, &err.to_string(), None).await;
                    return;
                }
            }
        }
        match answer {
            Ok(DeliveryResponse::Accepted) => {
                tracing::info!(recipient_peer = %peer, "message delivered");
                if let Err(err) = self.store.outbox_delivered(entry.id).await {
                    tracing::error!("cannot remove a delivered message from the outbox: {err}");
                }
            }
            Ok(DeliveryResponse::Rejected { reason }) => {
                tracing::warn!(recipient_peer = %peer, "the recipient refused a message: {reason}");
                self.fail(
                    &entry,
                    Failure::Refused(format!("the recipient's node refused it: {reason}")),
                )
                .await;
            }
            Ok(DeliveryResponse::TryLater {
                reason,
                retry_after_secs,
            }) => {
                let wait = Duration::from_secs(retry_after_secs.into());
                self.retry(
                    &entry,
                    &format!("the recipient asked to retry: {reason}"),
                    Some(wait),
                )
                .await;
            }
            Ok(DeliveryResponse::StampRequired { bits }) => {
                // Asked again although a stamp went with it (the recipient
                // changed its difficulty in between): try later.
                self.retry(
                    &entry,
                    &format!("the recipient asked for a {bits}-bit proof-of-work stamp again"),
                    None,
                )
                .await;
            }
            Err(err) => {
                // No direct path (offline, or behind a NAT hole punching
                // could not pass): leave it at one of the recipient's
                // mailbox peers if it named any.
                match self.deposit(peer, &entry, request(None)).await {
                    Ok(mailbox) => {
                        tracing::info!(recipient_peer = %peer, %mailbox, "message deposited at a mailbox peer");
                        if let Err(err) = self
                            .store
                            .outbox_deposited(entry.id, &mailbox.to_string())
                            .await
                        {
                            tracing::error!("cannot record a deposited message: {err}");
                        }
                    }
                    Err(why) => {
                        self.retry(&entry, &format!("{err}; {why}"), None).await;
                    }
                }
            }
        }
    }

    /// Sends an entry for a recipient without a card through the provider:
    /// the same ack-after-commit rule (the entry leaves only on `250`), a
    /// 5xx bounces with the provider's words, anything else retries.
    async fn deliver_by_gateway(&self, entry: &OutboxEntry) {
        use crate::gateway::outbound::SendOutcome;
        let Some(gateway) = &self.settings.gateway else {
            // The gateway was removed while mail waited for it: keep it.
            self.retry(
                entry,
                "no gateway is set up any more (`mailnode gateway add`)",
                None,
            )
            .await;
            return;
        };
        match gateway.send(&entry.recipient, &entry.payload).await {
            SendOutcome::Accepted => {
                tracing::info!("message handed to the gateway's provider");
                if let Err(err) = self.store.outbox_delivered(entry.id).await {
                    tracing::error!("cannot remove a delivered message from the outbox: {err}");
                }
            }
            SendOutcome::Refused(reason) => {
                tracing::warn!("the gateway's provider refused a message: {reason}");
                self.fail(entry, Failure::Refused(reason)).await;
            }
            SendOutcome::Retry(reason) => self.retry(entry, &reason, None).await,
        }
    }

    /// Deposits the sealed request at the first of the recipient's mailbox
    /// peers (from its locator record) that commits it.
    async fn deposit(
        &self,
        peer: libp2p::PeerId,
        entry: &OutboxEntry,
        request: DeliveryRequest,
    ) -> Result<libp2p::PeerId, String> {
        let card = self
            .contacts
            .by_fingerprint(&entry.recipient_fpr)
            .map(|c| c.card)
            .ok_or_else(|| "the recipient is no longer a contact".to_string())?;
        let mailboxes = match self.network.lookup(peer).await {
            Ok(locator) => locator.mailboxes,
            Err(err) => return Err(format!("no mailbox peer known ({err})")),
        };
        if mailboxes.is_empty() {
            return Err("the recipient names no mailbox peer".to_string());
        }
        crate::mailbox::deposit(
            &self.network,
            &self.settings.keypair,
            &card,
            peer,
            &mailboxes,
            &request,
        )
        .await
        .map_err(|err| err.to_string())
    }

    async fn retry(&self, entry: &OutboxEntry, error: &str, at_least: Option<Duration>) {
        let attempts = entry.attempts + 1;
        let given_up = now_ms() - entry.queued_at > self.settings.give_up_after.as_millis() as i64;
        if given_up {
            self.fail(
                entry,
                Failure::Expired(format!(
                    "it could not be delivered for {}; the last error was: {error}",
                    for_people(self.settings.give_up_after)
                )),
            )
            .await;
            return;
        }
        let wait =
            backoff(attempts, self.settings.max_retry_interval).max(at_least.unwrap_or_default());
        tracing::debug!(
            attempts,
            wait_ms = wait.as_millis() as u64,
            "delivery failed, will retry: {error}"
        );
        if let Err(err) = self
            .store
            .outbox_retry(entry.id, now_ms() + wait.as_millis() as i64, error)
            .await
        {
            tracing::error!("cannot reschedule an outbox entry: {err}");
        }
    }

    async fn fail(&self, entry: &OutboxEntry, failure: Failure) {
        let bounce = crate::bounce::build(
            &self.settings.own_address,
            &self.settings.own_peer_id,
            entry,
            &failure,
        );
        if let Err(err) = self.store.outbox_failed(entry.id, bounce).await {
            tracing::error!("cannot record a failed delivery: {err}");
        }
    }
}

/// A give-up time as people say it: "7 days", "36 hours", "90 seconds".
fn for_people(duration: Duration) -> String {
    let secs = duration.as_secs();
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if secs >= 86_400 && secs.is_multiple_of(86_400) {
        plural(secs / 86_400, "day")
    } else if secs >= 3600 && secs.is_multiple_of(3600) {
        plural(secs / 3600, "hour")
    } else {
        plural(secs, "second")
    }
}

/// Mints a proof-of-work stamp for one delivery to `peer` on a blocking
/// thread. One mint runs at a time (a stranger writing to many strangers
/// must not take every core), and dropping the future (shutdown) cancels
/// the search. Nothing of it is kept: a retry mints again.
async fn mint_stamp(
    peer: libp2p::PeerId,
    entry: &OutboxEntry,
    bits: u8,
) -> Result<crate::pow::Stamp, crate::pow::StampError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static MINTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    /// Raises the cancel flag when the waiting future goes away.
    struct CancelOnDrop(Arc<AtomicBool>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    if bits > crate::pow::MAX_MINT_BITS {
        return Err(crate::pow::StampError::TooHard { bits });
    }
    let _permit = MINTING
        .acquire()
        .await
        .map_err(|_| crate::pow::StampError::Cancelled)?;
    let message = crate::pow::message_hash(&entry.delivery_id, &entry.payload);
    let cancel = Arc::new(AtomicBool::new(false));
    let guard = CancelOnDrop(Arc::clone(&cancel));
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let started = std::time::Instant::now();
    let stamp = tokio::task::spawn_blocking(move || {
        crate::pow::mint_bounded(
            &peer,
            &message,
            bits,
            now,
            crate::pow::default_budget(bits),
            &cancel,
        )
    })
    .await
    .map_err(|_| crate::pow::StampError::Cancelled)??;
    drop(guard);
    tracing::info!(
        recipient_peer = %peer,
        bits,
        millis = started.elapsed().as_millis() as u64,
        "minted a proof-of-work stamp"
    );
    Ok(stamp)
}

/// Wait before attempt `attempts + 1`: 2 s doubling, capped, ±20 % jitter.
fn backoff(attempts: u32, max: Duration) -> Duration {
    let base = Duration::from_secs(2)
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
        .min(max);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    base.mul_f64(jitter)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let max = Duration::from_secs(300);
        let first = backoff(1, max);
        assert!(first >= Duration::from_millis(1600) && first <= Duration::from_millis(2400));
        let fourth = backoff(4, max);
        assert!(fourth >= Duration::from_millis(12_800) && fourth <= Duration::from_millis(19_200));
        let late = backoff(30, max);
        assert!(late <= Duration::from_secs(360) && late >= Duration::from_secs(240));
    }
}
