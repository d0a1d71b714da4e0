//! The mailbox peer's side of `/mailnode/mailbox/1`: who may register,
//! deposit, collect and acknowledge, and what is stored (`db.rs`).
//!
//! [`MailboxService`] is a cheap, cloneable handle. Its database lives on one
//! dedicated thread (`mailbox.db`, never touched from the async executor);
//! `handle` sends it a job over a bounded queue (full: `TryLater`) and awaits
//! the answer. Challenge nonces live in memory: they are short-lived and a
//! restart only makes the collector ask again.
//!
//! Rules (docs/protocol.md, "Mailbox peers"):
//! - Register, Collect and Ack come from the recipient itself: the Noise
//!   PeerId of the requester must be the registration's recipient, on top of
//!   the signatures.
//! - Deposits are accepted only for inbox ids of registered recipients, in an
//!   accepted epoch, within every quota; `Stored` only after the COMMIT.
//! - An envelope is deleted on the recipient's `Ack` and on nothing else but
//!   the retention limit.
//! - A new deposit is replicated to the recipient's other mailbox peers: the
//!   service emits [`Replication`]s on a bounded channel for the caller to
//!   send (`client::replicate`). A `Replicate` it receives is stored, never
//!   forwarded.
//!
//! This module must not open envelopes (it cannot) or talk to the network.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::identity::PublicKey;
use rand::RngCore;
use tokio::sync::{mpsc, oneshot};

use super::MailboxError;
use super::db::{Db, Deposited, Pruned, Registered};
use super::limits::{CLOCK_SKEW, MAX_REGISTRATION_LIFETIME, MailboxLimits};
use super::wire::{
    self, EnvelopeId, InboxId, MAX_ACK_IDS, MAX_COLLECT_INBOXES, MailboxRequest, MailboxResponse,
    Nonce, Registration,
};

/// The mailbox database file in the home.
pub const DATABASE_FILE: &str = "mailbox.db";

/// Jobs that may wait for the database thread before `TryLater`.
const JOB_QUEUE: usize = 1024;

/// Replications waiting to be sent before new ones are dropped (logged;
/// the first mailbox still holds the envelope).
const REPLICATION_QUEUE: usize = 1024;

/// How long a challenge nonce stays valid.
const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// Most outstanding nonces (one per peer).
const MAX_NONCES: usize = 10_000;

/// How often the retention pass runs (also once at start).
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// One `Replicate` request the caller must send to `peer`.
#[derive(Debug, Clone)]
pub struct Replication {
    /// Another mailbox peer of the recipient.
    pub peer: PeerId,
    /// The request to send it.
    pub request: MailboxRequest,
}

type Job = Box<dyn FnOnce(&mut Db) + Send>;
type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// A handle to the mailbox service of a public node.
#[derive(Clone)]
pub struct MailboxService {
    inner: Arc<Inner>,
}

struct Inner {
    local: PeerId,
    limits: MailboxLimits,
    jobs: std::sync::mpsc::SyncSender<Job>,
    nonces: Mutex<HashMap<PeerId, (Nonce, Instant)>>,
    replication_tx: mpsc::Sender<Replication>,
    replication_rx: Mutex<Option<mpsc::Receiver<Replication>>>,
    clock: Clock,
}

impl std::fmt::Debug for MailboxService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxService")
            .field("local", &self.inner.local)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl MailboxService {
    /// Opens (or creates) `mailbox.db` in `home` and starts the database
    /// thread, which prunes at once and then hourly. `local` is this node's
    /// PeerId: the recipients' signatures name it.
    pub fn open(
        home: &Path,
        local: PeerId,
        limits: MailboxLimits,
    ) -> Result<MailboxService, MailboxError> {
        MailboxService::open_with_clock(home, local, limits, Arc::new(super::unix_now))
    }

    pub(crate) fn open_with_clock(
        home: &Path,
        local: PeerId,
        limits: MailboxLimits,
        clock: Clock,
    ) -> Result<MailboxService, MailboxError> {
        limits.check()?;
        let path = home.join(DATABASE_FILE);
        let mut db = Db::open(&path)?;
        let pruned = db.prune(clock(), limits.retention)?;
        log_pruned(pruned);
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(JOB_QUEUE);
        let retention = limits.retention;
        let thread_clock = Arc::clone(&clock);
        std::thread::Builder::new()
            .name("mailbox-db".into())
            .spawn(move || run_db(db, queue, retention, thread_clock))
            .map_err(|err| MailboxError::Database {
                path: path.display().to_string(),
                reason: format!("cannot start its thread: {err}"),
            })?;
        let (replication_tx, replication_rx) = mpsc::channel(REPLICATION_QUEUE);
        Ok(MailboxService {
            inner: Arc::new(Inner {
                local,
                limits,
                jobs,
                nonces: Mutex::new(HashMap::new()),
                replication_tx,
                replication_rx: Mutex::new(Some(replication_rx)),
                clock,
            }),
        })
    }

    /// The replications to send (taken once; later calls get `None`). Hand
    /// it to `client::replicate` with the network's transport.
    pub fn replications(&self) -> Option<mpsc::Receiver<Replication>> {
        self.inner
            .replication_rx
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
    }

    /// The limits in force.
    pub fn limits(&self) -> &MailboxLimits {
        &self.inner.limits
    }

    /// Answers one request from `from` (the PeerId the connection's
    /// security handshake authenticated). Refusals are logged.
    pub async fn handle(&self, from: PeerId, request: MailboxRequest) -> MailboxResponse {
        let kind = request.kind();
        let response = match self.dispatch(from, request).await {
            Ok(response) => response,
            Err(MailboxError::Stopped) => MailboxResponse::TryLater {
                reason: "the mailbox is shutting down".into(),
                retry_after_secs: 30,
            },
            Err(MailboxError::Busy) => MailboxResponse::TryLater {
                reason: "the mailbox is busy".into(),
                retry_after_secs: 5,
            },
            Err(err @ MailboxError::Database { .. }) => {
                tracing::error!(%from, kind, "mailbox request failed: {err}");
                MailboxResponse::TryLater {
                    reason: "the mailbox cannot access its storage".into(),
                    retry_after_secs: 60,
                }
            }
            Err(err) => MailboxResponse::Refused {
                reason: err.to_string(),
            },
        };
        if let MailboxResponse::Refused { reason } = &response {
            tracing::warn!(%from, kind, "refused a mailbox request: {reason}");
        }
        response
    }

    async fn dispatch(
        &self,
        from: PeerId,
        request: MailboxRequest,
    ) -> Result<MailboxResponse, MailboxError> {
        match request {
            MailboxRequest::Register { registration } => self.register(from, registration).await,
            MailboxRequest::Deposit {
                inbox,
                deposit_id,
                sealed,
            } => self.deposit(from, inbox, deposit_id, sealed).await,
            MailboxRequest::Challenge => self.challenge(from),
            MailboxRequest::Collect {
                inboxes,
                nonce,
                signature,
                after,
                max,
            } => {
                self.collect(from, inboxes, nonce, signature, after, max)
                    .await
            }
            MailboxRequest::Ack {
                ids,
                nonce,
                signature,
            } => self.ack(from, ids, nonce, signature).await,
            MailboxRequest::Replicate {
                registration,
                depositor,
                id,
                sealed,
            } => {
                self.replicate(from, registration, depositor, id, sealed)
                    .await
            }
            // Receipts are for the sender's outbox, answered by the daemon
            // before the service sees any request.
            MailboxRequest::Receipt { .. } => Ok(MailboxResponse::Refused {
                reason: "receipts are not for the mailbox service".into(),
            }),
        }
    }

    /// Runs `job` on the database thread and waits for its result.
    async fn call<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Db) -> Result<T, MailboxError> + Send + 'static,
    ) -> Result<T, MailboxError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |db| {
            let _ = reply.send(job(db));
        });
        match self.inner.jobs.try_send(job) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(_)) => return Err(MailboxError::Busy),
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                return Err(MailboxError::Stopped);
            }
        }
        answer.await.map_err(|_| MailboxError::Stopped)?
    }

    fn now(&self) -> u64 {
        (self.inner.clock)()
    }

    /// Checks a registration's signature, times and that it names us; returns
    /// the recipient and its mailbox peers.
    fn check_registration(
        &self,
        registration: &Registration,
    ) -> Result<(PublicKey, Vec<PeerId>), MailboxError> {
        let (key, mailboxes) = registration.verify()?;
        let now = self.now();
        if registration.expires_at <= now {
            return Err(MailboxError::BadRequest(
                "the registration has expired".into(),
            ));
        }
        if registration.expires_at > now.saturating_add(MAX_REGISTRATION_LIFETIME.as_secs()) {
            return Err(MailboxError::BadRequest(format!(
                "a registration may be valid for at most {} days",
                MAX_REGISTRATION_LIFETIME.as_secs() / 86_400
            )));
        }
        if registration.issued_at > now.saturating_add(CLOCK_SKEW.as_secs()) {
            return Err(MailboxError::BadRequest(
                "the registration is issued in the future; check the clock".into(),
            ));
        }
        if !mailboxes.contains(&self.inner.local) {
            return Err(MailboxError::BadRequest(format!(
                "the registration does not name this mailbox peer ({})",
                self.inner.local
            )));
        }
        Ok((key, mailboxes))
    }

    async fn register(
        &self,
        from: PeerId,
        registration: Registration,
    ) -> Result<MailboxResponse, MailboxError> {
        let (key, mailboxes) = self.check_registration(&registration)?;
        let recipient = key.to_peer_id();
        if recipient != from {
            return Err(MailboxError::BadRequest(format!(
                "a registration is accepted only from its recipient ({recipient}), not from {from}"
            )));
        }
        let now = self.now();
        let limits = self.inner.limits.clone();
        let expires_at = registration.expires_at;
        let outcome = self
            .call(move |db| db.register(&recipient, &registration, &mailboxes, now, &limits))
            .await?;
        match outcome {
            Ok(()) => Ok(MailboxResponse::Registered { expires_at }),
            Err(reason) => Ok(MailboxResponse::Refused { reason }),
        }
    }

    async fn deposit(
        &self,
        from: PeerId,
        inbox: InboxId,
        deposit_id: [u8; 16],
        sealed: Vec<u8>,
    ) -> Result<MailboxResponse, MailboxError> {
        let limit = self.inner.limits.max_envelope_bytes;
        if sealed.len() as u64 > limit {
            return Err(MailboxError::BadRequest(format!(
                "an envelope of {} bytes exceeds this mailbox's limit of {limit} bytes",
                sealed.len()
            )));
        }
        let now = self.now();
        let limits = self.inner.limits.clone();
        let id = wire::envelope_id(&from, &deposit_id);
        let found = self
            .call(move |db| {
                let Some(recipient) = db.inbox_owner(&inbox, now)? else {
                    return Ok(Err(
                        "no recipient is registered at this mailbox under that inbox id"
                            .to_string(),
                    ));
                };
                let Some(registered) = db.registration(&recipient)? else {
                    return Ok(Err("the recipient is no longer registered here".to_string()));
                };
                if registered.registration.expires_at <= now {
                    return Ok(Err(
                        "the recipient's registration at this mailbox has expired".to_string(),
                    ));
                }
                let outcome = db.deposit(&recipient, &from, &id, &sealed, now, &limits)?;
                Ok(Ok((outcome, registered, sealed)))
            })
            .await?;
        let (outcome, registered, sealed) = match found {
            Ok(found) => found,
            Err(reason) => return Ok(MailboxResponse::Refused { reason }),
        };
        match outcome {
            Deposited::Stored => {
                self.emit_replications(&registered, &from, id, sealed);
                Ok(MailboxResponse::Stored)
            }
            Deposited::Duplicate => Ok(MailboxResponse::Stored),
            Deposited::Refused(reason) => Ok(MailboxResponse::Refused { reason }),
        }
    }

    /// Queues one `Replicate` per other mailbox peer of the recipient.
    fn emit_replications(
        &self,
        registered: &Registered,
        depositor: &PeerId,
        id: EnvelopeId,
        sealed: Vec<u8>,
    ) {
        for peer in &registered.mailboxes {
            if *peer == self.inner.local {
                continue;
            }
            let request = MailboxRequest::Replicate {
                registration: registered.registration.clone(),
                depositor: depositor.to_bytes(),
                id,
                sealed: sealed.clone(),
            };
            if self
                .inner
                .replication_tx
                .try_send(Replication {
                    peer: *peer,
                    request,
                })
                .is_err()
            {
                tracing::warn!(%peer, "the replication queue is full; this envelope is held here only");
            }
        }
    }

    fn challenge(&self, from: PeerId) -> Result<MailboxResponse, MailboxError> {
        let mut nonce = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut nonces = self
            .inner
            .nonces
            .lock()
            .map_err(|_| MailboxError::Stopped)?;
        if nonces.len() >= MAX_NONCES && !nonces.contains_key(&from) {
            nonces.retain(|_, (_, issued)| issued.elapsed() < NONCE_LIFETIME);
            if nonces.len() >= MAX_NONCES {
                return Err(MailboxError::Busy);
            }
        }
        nonces.insert(from, (nonce, Instant::now()));
        Ok(MailboxResponse::Nonce {
            nonce,
            valid_secs: NONCE_LIFETIME.as_secs() as u32,
        })
    }

    /// Whether `nonce` is the live nonce issued to `from`.
    fn check_nonce(&self, from: &PeerId, nonce: &Nonce) -> Result<(), MailboxError> {
        let nonces = self
            .inner
            .nonces
            .lock()
            .map_err(|_| MailboxError::Stopped)?;
        match nonces.get(from) {
            Some((issued, at)) if issued == nonce && at.elapsed() < NONCE_LIFETIME => Ok(()),
            Some((issued, _)) if issued == nonce => Err(MailboxError::BadRequest(
                "the challenge nonce has expired; ask for a new one".into(),
            )),
            _ => Err(MailboxError::BadRequest(
                "unknown challenge nonce; ask for one with Challenge first".into(),
            )),
        }
    }

    /// The recipient's stored key, for requests only the recipient may make.
    async fn recipient_key(&self, from: PeerId) -> Result<PublicKey, MailboxError> {
        let registered = self
            .call(move |db| db.registration(&from))
            .await?
            .ok_or_else(|| {
                MailboxError::BadRequest(format!("{from} is not registered at this mailbox"))
            })?;
        PublicKey::try_decode_protobuf(&registered.registration.recipient_key).map_err(|err| {
            MailboxError::Database {
                path: DATABASE_FILE.into(),
                reason: format!("a stored registration key is unreadable ({err})"),
            }
        })
    }

    async fn collect(
        &self,
        from: PeerId,
        inboxes: Vec<serde_bytes::ByteBuf>,
        nonce: Nonce,
        signature: Vec<u8>,
        after: u64,
        max: u32,
    ) -> Result<MailboxResponse, MailboxError> {
        if inboxes.is_empty() || inboxes.len() > MAX_COLLECT_INBOXES {
            return Err(MailboxError::BadRequest(format!(
                "a collect names 1 to {MAX_COLLECT_INBOXES} inbox ids"
            )));
        }
        let inboxes = wire::ids32(&inboxes, "an inbox id")?;
        self.check_nonce(&from, &nonce)?;
        let key = self.recipient_key(from).await?;
        let input = wire::collect_signing_input(&nonce, &self.inner.local, &inboxes);
        if !key.verify(&input, &signature) {
            return Err(MailboxError::BadSignature(
                "the collect signature does not verify with the registered recipient's key".into(),
            ));
        }
        let now = self.now();
        let count = max.clamp(1, self.inner.limits.collect_count);
        let bytes = self.inner.limits.collect_bytes;
        let answer = self
            .call(move |db| {
                for inbox in &inboxes {
                    if !db.owns_inbox(&from, inbox, now)? {
                        return Ok(Err(()));
                    }
                }
                db.collect(&from, after, count, bytes).map(Ok)
            })
            .await?;
        match answer {
            Ok((envelopes, more)) => Ok(MailboxResponse::Envelopes { envelopes, more }),
            Err(()) => Err(MailboxError::BadRequest(
                "an inbox id in the collect is not the requester's current or previous one".into(),
            )),
        }
    }

    async fn ack(
        &self,
        from: PeerId,
        ids: Vec<serde_bytes::ByteBuf>,
        nonce: Nonce,
        signature: Vec<u8>,
    ) -> Result<MailboxResponse, MailboxError> {
        if ids.len() > MAX_ACK_IDS {
            return Err(MailboxError::BadRequest(format!(
                "an ack names at most {MAX_ACK_IDS} envelopes"
            )));
        }
        let ids = wire::ids32(&ids, "an envelope id")?;
        self.check_nonce(&from, &nonce)?;
        let key = self.recipient_key(from).await?;
        let input = wire::ack_signing_input(&nonce, &self.inner.local, &ids);
        if !key.verify(&input, &signature) {
            return Err(MailboxError::BadSignature(
                "the ack signature does not verify with the registered recipient's key".into(),
            ));
        }
        let deleted = self.call(move |db| db.ack(&from, &ids)).await?;
        Ok(MailboxResponse::Acked { deleted })
    }

    async fn replicate(
        &self,
        from: PeerId,
        registration: Registration,
        depositor: Vec<u8>,
        id: EnvelopeId,
        sealed: Vec<u8>,
    ) -> Result<MailboxResponse, MailboxError> {
        let (key, mailboxes) = self.check_registration(&registration)?;
        if from == self.inner.local || !mailboxes.contains(&from) {
            return Err(MailboxError::BadRequest(format!(
                "{from} is not one of the recipient's mailbox peers; only they may replicate"
            )));
        }
        let depositor = PeerId::from_bytes(&depositor).map_err(|err| {
            MailboxError::BadRequest(format!("the depositor is not a PeerId ({err})"))
        })?;
        let limit = self.inner.limits.max_envelope_bytes;
        if sealed.len() as u64 > limit {
            return Err(MailboxError::BadRequest(format!(
                "an envelope of {} bytes exceeds this mailbox's limit of {limit} bytes",
                sealed.len()
            )));
        }
        let recipient = key.to_peer_id();
        let now = self.now();
        let limits = self.inner.limits.clone();
        let outcome = self
            .call(move |db| {
                // The recipient's own registration, relayed by a mailbox it
                // named, also registers it here (a newer one wins).
                let newer_held = db
                    .registration(&recipient)?
                    .is_some_and(|held| held.registration.issued_at > registration.issued_at);
                if !newer_held
                    && let Err(reason) =
                        db.register(&recipient, &registration, &mailboxes, now, &limits)?
                {
                    return Ok(Deposited::Refused(reason));
                }
                db.deposit(&recipient, &depositor, &id, &sealed, now, &limits)
            })
            .await?;
        match outcome {
            Deposited::Stored | Deposited::Duplicate => Ok(MailboxResponse::Replicated),
            Deposited::Refused(reason) => Ok(MailboxResponse::Refused { reason }),
        }
    }

    /// Runs a retention pass now (besides the automatic hourly one).
    pub async fn prune(&self) -> Result<Pruned, MailboxError> {
        let now = self.now();
        let retention = self.inner.limits.retention;
        let pruned = self.call(move |db| db.prune(now, retention)).await?;
        log_pruned(pruned);
        Ok(pruned)
    }

    /// How many envelopes wait for `recipient`.
    pub async fn held_for(&self, recipient: PeerId) -> Result<u64, MailboxError> {
        self.call(move |db| db.count_for(&recipient)).await
    }

    /// Bytes held for everyone.
    pub async fn total_bytes(&self) -> Result<u64, MailboxError> {
        self.call(|db| Ok(db.total_bytes())).await
    }
}

/// The database thread: jobs as they come, the retention pass between them.
fn run_db(mut db: Db, queue: std::sync::mpsc::Receiver<Job>, retention: Duration, clock: Clock) {
    let mut next_prune = Instant::now() + PRUNE_INTERVAL;
    loop {
        let wait = next_prune.saturating_duration_since(Instant::now());
        match queue.recv_timeout(wait) {
            Ok(job) => job(&mut db),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                match db.prune(clock(), retention) {
                    Ok(pruned) => log_pruned(pruned),
                    Err(err) => tracing::error!("the mailbox retention pass failed: {err}"),
                }
                next_prune = Instant::now() + PRUNE_INTERVAL;
            }
            // Every handle is gone: the service is over.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
}

fn log_pruned(pruned: Pruned) {
    if pruned.envelopes > 0 || pruned.registrations > 0 {
        tracing::info!(
            envelopes = pruned.envelopes,
            registrations = pruned.registrations,
            "mailbox retention pass removed uncollected envelopes and expired registrations"
        );
    }
}
