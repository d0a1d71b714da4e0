//! The daemon's side of mailbox peers: it answers `/mailnode/mailbox/1`
//! requests (with the mailbox service on a public node, a clear refusal
//! elsewhere; the service prunes past-retention envelopes by itself), sends
//! a public node's replications, and collects our own mail from the mailbox
//! peers we chose.
//!
//! Collected envelopes are filed through `inbound::handle`, exactly like a
//! direct delivery from the envelope's (signature-authenticated) sender, so
//! every check of the direct path applies; the mailbox deletes an envelope
//! only after that filing committed (`mailbox::collect`).
//!
//! This module only wires; the protocol rules live in `mailbox/`.

use std::sync::Arc;
use std::time::Duration;

use keys::Identity;
use libp2p::PeerId;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::inbound::{self, Inbound};
use crate::mailbox::{self, MailboxRequest, MailboxResponse, MailboxService};
use crate::network::{InboundMailbox, Network};
use crate::store::Store;

/// How often we collect from our mailbox peers while running (and once at
/// start-up, and whenever a mailbox peer connects).
const COLLECT_EVERY: Duration = Duration::from_secs(30);
/// Most delivery ids in one receipt.
const MAX_RECEIPT_IDS: usize = 256;

/// What the mailbox tasks need.
pub struct Parts {
    /// The network handle.
    pub network: Network,
    /// Our identity (to open envelopes, sign collections).
    pub identity: Arc<Identity>,
    /// The inbound handler's context, to file collected mail.
    pub inbound: Inbound,
    /// The mailbox service, on a public node.
    pub service: Option<Arc<MailboxService>>,
    /// The mailbox peers we collect from.
    pub peers: Vec<PeerId>,
    /// Turns true at shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// Our store: receipts close deposited outbox entries.
    pub store: Store,
}

/// Spawns the tasks: serving requests, replication, pruning, collection.
pub fn spawn(tasks: &mut JoinSet<()>, parts: Parts, requests: mpsc::Receiver<InboundMailbox>) {
    tasks.spawn(serve(requests, parts.service.clone(), parts.store.clone()));
    if let Some(service) = &parts.service
        && let Some(queue) = service.replications()
    {
        tasks.spawn(mailbox::replicate(parts.network.clone(), queue));
    }
    if !parts.peers.is_empty() {
        tasks.spawn(collect_loop(parts));
    }
}

/// Answers every inbound mailbox request.
async fn serve(
    mut requests: mpsc::Receiver<InboundMailbox>,
    service: Option<Arc<MailboxService>>,
    store: Store,
) {
    while let Some(InboundMailbox {
        peer,
        request,
        reply,
    }) = requests.recv().await
    {
        if let MailboxRequest::Receipt { ids } = request {
            let store = store.clone();
            tokio::spawn(async move {
                let _ = reply.send(close_receipts(&store, peer, &ids).await);
            });
            continue;
        }
        match &service {
            Some(service) => {
                let service = Arc::clone(service);
                tokio::spawn(async move {
                    let response = service.handle(peer, request).await;
                    if let MailboxResponse::Refused { reason } = &response {
                        tracing::info!(%peer, "mailbox: refused a request: {reason}");
                    }
                    let _ = reply.send(response);
                });
            }
            None => {
                let what = request_name(&request);
                tracing::info!(%peer, "mailbox: refused a {what} request: not a public node");
                let _ = reply.send(MailboxResponse::Refused {
                    reason: "this node is not a public node and holds no mail for others \
                             (it runs without --public)"
                        .to_string(),
                });
            }
        }
    }
}

/// The recipient `peer` confirms deposited deliveries: close them.
async fn close_receipts(
    store: &Store,
    peer: PeerId,
    ids: &[serde_bytes::ByteBuf],
) -> MailboxResponse {
    if ids.len() > MAX_RECEIPT_IDS {
        return MailboxResponse::Refused {
            reason: format!("at most {MAX_RECEIPT_IDS} ids per receipt"),
        };
    }
    let mut closed = 0u32;
    for id in ids {
        let Ok(id) = <[u8; 16]>::try_from(id.as_ref()) else {
            return MailboxResponse::Refused {
                reason: "a delivery id is 16 bytes".to_string(),
            };
        };
        match store.outbox_receipt(&peer.to_string(), id).await {
            Ok(true) => closed += 1,
            Ok(false) => {}
            Err(err) => {
                tracing::error!("cannot close a deposited outbox entry: {err}");
                return MailboxResponse::TryLater {
                    reason: "the sender's store failed".to_string(),
                    retry_after_secs: 30,
                };
            }
        }
    }
    if closed > 0 {
        tracing::info!(%peer, closed, "the recipient confirmed deposited mail");
    }
    MailboxResponse::Acked { deleted: closed }
}

/// Tells each sender, directly, which of its deposited deliveries we
/// filed. Best effort: a sender we cannot reach keeps its entry as
/// "deposited" until the mailbox retention ends.
async fn send_receipts(network: &Network, filed: &[mailbox::Filed]) {
    let mut by_sender: std::collections::HashMap<PeerId, Vec<serde_bytes::ByteBuf>> =
        std::collections::HashMap::new();
    for f in filed {
        by_sender
            .entry(f.sender)
            .or_default()
            .push(serde_bytes::ByteBuf::from(f.id.to_vec()));
    }
    for (sender, ids) in by_sender {
        for chunk in ids.chunks(MAX_RECEIPT_IDS) {
            let request = MailboxRequest::Receipt {
                ids: chunk.to_vec(),
            };
            match network.mailbox_request(sender, request).await {
                Ok(MailboxResponse::Acked { deleted }) => {
                    tracing::debug!(%sender, deleted, "sent a delivery receipt");
                }
                Ok(other) => tracing::debug!(%sender, "a receipt was not taken: {other:?}"),
                Err(err) => tracing::debug!(%sender, "cannot send a delivery receipt: {err}"),
            }
        }
    }
}

fn request_name(request: &MailboxRequest) -> &'static str {
    match request {
        MailboxRequest::Register { .. } => "Register",
        MailboxRequest::Deposit { .. } => "Deposit",
        MailboxRequest::Challenge => "Challenge",
        MailboxRequest::Collect { .. } => "Collect",
        MailboxRequest::Ack { .. } => "Ack",
        MailboxRequest::Replicate { .. } => "Replicate",
        MailboxRequest::Receipt { .. } => "Receipt",
    }
}

/// Collects from our mailbox peers at start, every [`COLLECT_EVERY`], and
/// when one of them connects.
async fn collect_loop(parts: Parts) {
    let Parts {
        network,
        identity,
        inbound,
        peers,
        mut shutdown,
        ..
    } = parts;
    let mut connected = network.connected();
    loop {
        let context = inbound.clone();
        let report = mailbox::collect(&network, &identity, &peers, |sender, request| {
            let context = context.clone();
            async move { inbound::handle(sender, request, &context).await }
        })
        .await;
        if !report.filed.is_empty() {
            let network = network.clone();
            let filed = report.filed.clone();
            tokio::spawn(async move { send_receipts(&network, &filed).await });
        }
        if !report.filed.is_empty() || !report.rejected.is_empty() {
            tracing::info!(
                filed = report.filed.len(),
                rejected = report.rejected.len(),
                unreadable = report.unreadable,
                deferred = report.deferred,
                "collected mail from mailbox peers"
            );
        }
        for (peer, error) in &report.errors {
            tracing::debug!(mailbox = %peer, "mailbox: collection failed: {error}");
        }
        tracing::debug!(
            mailboxes = peers.len(),
            errors = report.errors.len(),
            "mailbox collection round finished"
        );
        let deadline = tokio::time::sleep(COLLECT_EVERY);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                peer = connected.recv() => match peer {
                    Ok(peer) if peers.contains(&peer) => break,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = shutdown.changed() => return,
            }
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn receipts_with_bad_ids_are_refused_and_unknown_ids_close_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("mail.db"), &[7u8; 32]).expect("store");
        let peer = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let short = [serde_bytes::ByteBuf::from(vec![1u8; 3])];
        assert!(matches!(
            close_receipts(&store, peer, &short).await,
            MailboxResponse::Refused { reason } if reason.contains("16 bytes")
        ));
        let too_many: Vec<_> = (0..=MAX_RECEIPT_IDS)
            .map(|_| serde_bytes::ByteBuf::from(vec![0u8; 16]))
            .collect();
        assert!(matches!(
            close_receipts(&store, peer, &too_many).await,
            MailboxResponse::Refused { .. }
        ));
        let unknown = [serde_bytes::ByteBuf::from(vec![9u8; 16])];
        assert_eq!(
            close_receipts(&store, peer, &unknown).await,
            MailboxResponse::Acked { deleted: 0 }
        );
        store.close().await;
    }
}
