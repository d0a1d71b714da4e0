//! The two client sides of `/mailnode/mailbox/1`: the sender's deposit and
//! the recipient's collector, plus the sender of a mailbox peer's
//! replications. All are written against [`MailboxTransport`], which the
//! network handle implements (and tests implement with a real
//! `MailboxService` in-process).
//!
//! The collector files each opened envelope through a callback that must
//! behave like a direct delivery (`inbound::handle`): it answers `Accepted`
//! only after the recipient's store committed. Only then, or for envelopes
//! that can never be filed (unreadable, forged, `Rejected`), does the
//! collector acknowledge, so the mailbox deletes nothing that is not safe at
//! home. This module must not file or store anything itself.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use keys::{ContactCard, Identity};
use libp2p::PeerId;
use libp2p::identity::Keypair;
use tokio::sync::mpsc;

use super::envelope;
use super::inbox;
use super::service::Replication;
use super::unix_now;
use super::wire::{self, EnvelopeId, MailboxRequest, MailboxResponse, Registration};
use crate::network::{DeliveryRequest, DeliveryResponse};

/// How long the collector's registrations are valid; it registers again at
/// every collection, so this only matters while the recipient is offline
/// (deposits are refused after it).
pub const REGISTRATION_LIFETIME: Duration = Duration::from_secs(14 * 24 * 3600);

/// Envelopes asked for per `Collect` (the mailbox may send fewer).
const PAGE: u32 = 64;

/// Most `Collect` pages per mailbox in one collection (bounds the loop; what
/// is left waits for the next collection).
const MAX_PAGES: usize = 1000;

/// Replications sent at once.
const REPLICATION_PARALLEL: usize = 8;

/// Attempts per replication, and the waits between them.
const REPLICATION_BACKOFF: [Duration; 2] = [Duration::from_secs(5), Duration::from_secs(30)];

/// How a node sends one mailbox request to a peer and gets its answer.
/// The network handle implements it; a test may call a `MailboxService`.
pub trait MailboxTransport: Send + Sync {
    /// Sends `request` to `peer` (dialing it if need be) and waits for the
    /// answer. `Err` is any failure without an answer (unreachable, timeout,
    /// closed stream), in words for the log.
    fn request(
        &self,
        peer: PeerId,
        request: MailboxRequest,
    ) -> impl Future<Output = Result<MailboxResponse, String>> + Send;
}

/// What one mailbox peer said to a deposit that did not store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Refused for good (not registered there, over quota, too large).
    Refused(String),
    /// Busy; try again after `retry_after_secs`.
    TryLater {
        /// Why.
        reason: String,
        /// The earliest sensible retry.
        retry_after_secs: u32,
    },
    /// No answer (unreachable, timeout) or an answer that makes no sense.
    Failed(String),
}

/// A deposit that no mailbox peer stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no mailbox peer stored the envelope: {}", describe(.attempts))]
pub struct DepositError {
    /// Each mailbox peer tried, in order, and what it said; empty when the
    /// recipient names no mailbox peer or sealing failed (see `reason`).
    pub attempts: Vec<(PeerId, Attempt)>,
}

fn describe(attempts: &[(PeerId, Attempt)]) -> String {
    if attempts.is_empty() {
        return "the recipient names no usable mailbox peer".into();
    }
    attempts
        .iter()
        .map(|(peer, attempt)| match attempt {
            Attempt::Refused(reason) => format!("{peer} refused: {reason}"),
            Attempt::TryLater { reason, .. } => format!("{peer} asked to try later: {reason}"),
            Attempt::Failed(reason) => format!("{peer} failed: {reason}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Seals `request` for `recipient` and deposits it at the first of
/// `mailboxes` that commits it. `Ok(peer)` is the mailbox that answered
/// `Stored`: from then on the deposit counts as delivered for the outbox.
pub async fn deposit<T: MailboxTransport>(
    transport: &T,
    keypair: &Keypair,
    recipient: &ContactCard,
    recipient_peer: PeerId,
    mailboxes: &[PeerId],
    request: &DeliveryRequest,
) -> Result<PeerId, DepositError> {
    if mailboxes.is_empty() {
        return Err(DepositError {
            attempts: Vec::new(),
        });
    }
    let (keypair, card, delivery) = (keypair.clone(), recipient.clone(), request.clone());
    // OpenPGP encryption of up to tens of MiB: off the async executor.
    let sealed = tokio::task::spawn_blocking(move || {
        envelope::seal(&keypair, &card, recipient_peer, &delivery)
    })
    .await
    .map_err(|err| err.to_string())
    .and_then(|sealed| sealed.map_err(|err| err.to_string()));
    let sealed = match sealed {
        Ok(sealed) => sealed,
        Err(reason) => {
            return Err(DepositError {
                attempts: mailboxes
                    .iter()
                    .map(|peer| (*peer, Attempt::Failed(reason.clone())))
                    .collect(),
            });
        }
    };
    let inbox = inbox::current_inbox(&recipient_peer, unix_now());
    let mut attempts = Vec::new();
    for mailbox in mailboxes {
        let request = MailboxRequest::Deposit {
            inbox,
            deposit_id: request.id,
            sealed: sealed.clone(),
        };
        let attempt = match transport.request(*mailbox, request).await {
            Ok(MailboxResponse::Stored) => return Ok(*mailbox),
            Ok(MailboxResponse::Refused { reason }) => Attempt::Refused(reason),
            Ok(MailboxResponse::TryLater {
                reason,
                retry_after_secs,
            }) => Attempt::TryLater {
                reason,
                retry_after_secs,
            },
            Ok(other) => Attempt::Failed(format!(
                "unexpected answer to a deposit: {}",
                answer_name(&other)
            )),
            Err(reason) => Attempt::Failed(reason),
        };
        tracing::debug!(%mailbox, ?attempt, "a mailbox peer did not store a deposit");
        attempts.push((*mailbox, attempt));
    }
    Err(DepositError { attempts })
}

/// One envelope filed at home through the callback.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filed {
    /// The sender, authenticated by the envelope's signature.
    pub sender: PeerId,
    /// The delivery id (what the read-side receipt names).
    pub id: [u8; 16],
}

/// What one collection did.
#[derive(Debug, Default)]
pub struct CollectReport {
    /// Every (sender, delivery id) filed (`Accepted` by the callback), once
    /// each even when several mailbox peers held a copy.
    pub filed: Vec<Filed>,
    /// Envelopes the callback refused for good (acknowledged and deleted
    /// at the mailbox): the sender and the reason.
    pub rejected: Vec<(PeerId, String)>,
    /// Envelopes that could not be opened (not for us, damaged, forged);
    /// acknowledged and deleted.
    pub unreadable: u32,
    /// Envelopes the callback answered `TryLater`: left at the mailbox for
    /// the next collection.
    pub deferred: u32,
    /// Mailbox peers that failed or refused, and why.
    pub errors: Vec<(PeerId, String)>,
}

/// Registers at every mailbox peer in `mailboxes`, collects what each holds,
/// opens every envelope, hands it to `file` (which must answer like
/// `inbound::handle`: `Accepted` only after the store's commit), and
/// acknowledges what is filed or can never be.
pub async fn collect<T, F, Fut>(
    transport: &T,
    identity: &Arc<Identity>,
    mailboxes: &[PeerId],
    mut file: F,
) -> CollectReport
where
    T: MailboxTransport,
    F: FnMut(PeerId, DeliveryRequest) -> Fut,
    Fut: Future<Output = DeliveryResponse>,
{
    let mut report = CollectReport::default();
    let mut seen = HashSet::new();
    for mailbox in mailboxes {
        if let Err(reason) = collect_one(
            transport,
            identity,
            mailboxes,
            *mailbox,
            &mut file,
            &mut report,
            &mut seen,
        )
        .await
        {
            tracing::warn!(%mailbox, "collecting from a mailbox peer failed: {reason}");
            report.errors.push((*mailbox, reason));
        }
    }
    report
}

async fn collect_one<T, F, Fut>(
    transport: &T,
    identity: &Arc<Identity>,
    mailboxes: &[PeerId],
    mailbox: PeerId,
    file: &mut F,
    report: &mut CollectReport,
    seen: &mut HashSet<Filed>,
) -> Result<(), String>
where
    T: MailboxTransport,
    F: FnMut(PeerId, DeliveryRequest) -> Fut,
    Fut: Future<Output = DeliveryResponse>,
{
    let keypair = identity.libp2p_keypair();
    let now = unix_now();
    let registration = Registration::sign(
        keypair,
        mailboxes,
        now,
        now.saturating_add(REGISTRATION_LIFETIME.as_secs()),
    )
    .map_err(|err| err.to_string())?;
    match transport
        .request(mailbox, MailboxRequest::Register { registration })
        .await?
    {
        MailboxResponse::Registered { .. } => {}
        other => return Err(format!("registration: {}", answer_text(&other))),
    }
    let nonce = match transport
        .request(mailbox, MailboxRequest::Challenge)
        .await?
    {
        MailboxResponse::Nonce { nonce, .. } => nonce,
        other => return Err(format!("challenge: {}", answer_text(&other))),
    };
    let inboxes = inbox::collect_inboxes(identity.peer_id(), now);
    let signature = keypair
        .sign(&wire::collect_signing_input(&nonce, &mailbox, &inboxes))
        .map_err(|err| err.to_string())?;
    let mut after = 0;
    for _ in 0..MAX_PAGES {
        let request = MailboxRequest::Collect {
            inboxes: inboxes
                .iter()
                .map(|id| serde_bytes::ByteBuf::from(id.to_vec()))
                .collect(),
            nonce,
            signature: signature.clone(),
            after,
            max: PAGE,
        };
        let (envelopes, more) = match transport.request(mailbox, request).await? {
            MailboxResponse::Envelopes { envelopes, more } => (envelopes, more),
            other => return Err(format!("collect: {}", answer_text(&other))),
        };
        let mut done: Vec<EnvelopeId> = Vec::new();
        for held in envelopes {
            after = after.max(held.seq);
            let opener = Arc::clone(identity);
            let opened = tokio::task::spawn_blocking(move || envelope::open(&opener, &held.sealed))
                .await
                .map_err(|err| format!("opening an envelope: {err}"))?;
            let (sender, request) = match opened {
                Ok(opened) => opened,
                Err(err) => {
                    tracing::warn!(%mailbox, "deleting an envelope that cannot be opened: {err}");
                    report.unreadable += 1;
                    done.push(held.id);
                    continue;
                }
            };
            let id = request.id;
            match file(sender, request).await {
                DeliveryResponse::Accepted => {
                    done.push(held.id);
                    let filed = Filed { sender, id };
                    if seen.insert(filed.clone()) {
                        report.filed.push(filed);
                    }
                }
                DeliveryResponse::Rejected { reason } => {
                    tracing::warn!(%mailbox, %sender, "deleting an envelope refused at filing: {reason}");
                    done.push(held.id);
                    report.rejected.push((sender, reason));
                }
                DeliveryResponse::TryLater { .. } => report.deferred += 1,
                DeliveryResponse::StampRequired { bits } => {
                    // A stranger must pay with a stamp, which only a direct
                    // exchange can ask for.
                    let reason = format!(
                        "the sender is not a contact and sent no proof-of-work stamp \
                         ({bits} bits), which a deposit cannot carry"
                    );
                    tracing::warn!(%mailbox, %sender, "deleting an envelope: {reason}");
                    done.push(held.id);
                    report.rejected.push((sender, reason));
                }
            }
        }
        if !done.is_empty() {
            acknowledge(transport, keypair, mailbox, &nonce, &done).await?;
        }
        if !more {
            return Ok(());
        }
    }
    Ok(())
}

async fn acknowledge<T: MailboxTransport>(
    transport: &T,
    keypair: &Keypair,
    mailbox: PeerId,
    nonce: &wire::Nonce,
    ids: &[EnvelopeId],
) -> Result<(), String> {
    for chunk in ids.chunks(wire::MAX_ACK_IDS) {
        let signature = keypair
            .sign(&wire::ack_signing_input(nonce, &mailbox, chunk))
            .map_err(|err| err.to_string())?;
        let request = MailboxRequest::Ack {
            ids: chunk
                .iter()
                .map(|id| serde_bytes::ByteBuf::from(id.to_vec()))
                .collect(),
            nonce: *nonce,
            signature,
        };
        match transport.request(mailbox, request).await? {
            MailboxResponse::Acked { .. } => {}
            other => return Err(format!("ack: {}", answer_text(&other))),
        }
    }
    Ok(())
}

/// Sends a mailbox service's replications until its queue closes: several
/// at once, each tried up to three times. A replica that cannot be placed
/// is logged; the envelope is still held where it was deposited.
pub async fn replicate<T: MailboxTransport + 'static>(
    transport: T,
    mut queue: mpsc::Receiver<Replication>,
) {
    let transport = Arc::new(transport);
    let permits = Arc::new(tokio::sync::Semaphore::new(REPLICATION_PARALLEL));
    while let Some(replication) = queue.recv().await {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let transport = Arc::clone(&transport);
        tokio::spawn(async move {
            let _permit = permit;
            send_replication(&*transport, replication).await;
        });
    }
}

async fn send_replication<T: MailboxTransport>(transport: &T, replication: Replication) {
    let Replication { peer, request } = replication;
    let mut waits = REPLICATION_BACKOFF.iter();
    loop {
        let outcome = transport.request(peer, request.clone()).await;
        let reason = match outcome {
            Ok(MailboxResponse::Replicated) => return,
            Ok(MailboxResponse::Refused { reason }) => {
                tracing::warn!(%peer, "a mailbox peer refused a replica: {reason}");
                return;
            }
            Ok(other) => answer_text(&other),
            Err(reason) => reason,
        };
        match waits.next() {
            Some(wait) => tokio::time::sleep(*wait).await,
            None => {
                tracing::warn!(%peer, "giving up replicating an envelope: {reason}");
                return;
            }
        }
    }
}

fn answer_name(response: &MailboxResponse) -> &'static str {
    match response {
        MailboxResponse::Registered { .. } => "Registered",
        MailboxResponse::Stored => "Stored",
        MailboxResponse::Nonce { .. } => "Nonce",
        MailboxResponse::Envelopes { .. } => "Envelopes",
        MailboxResponse::Acked { .. } => "Acked",
        MailboxResponse::Replicated => "Replicated",
        MailboxResponse::Refused { .. } => "Refused",
        MailboxResponse::TryLater { .. } => "TryLater",
    }
}

fn answer_text(response: &MailboxResponse) -> String {
    match response {
        MailboxResponse::Refused { reason } => format!("refused: {reason}"),
        MailboxResponse::TryLater { reason, .. } => format!("try later: {reason}"),
        other => format!("unexpected answer {}", answer_name(other)),
    }
}
