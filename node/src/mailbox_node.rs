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

/// How often we collect from our mailbox peers while running (and once at
/// start-up, and whenever a mailbox peer connects).
const COLLECT_EVERY: Duration = Duration::from_secs(30);

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
}

/// Spawns the tasks: serving requests, replication, pruning, collection.
pub fn spawn(tasks: &mut JoinSet<()>, parts: Parts, requests: mpsc::Receiver<InboundMailbox>) {
    tasks.spawn(serve(requests, parts.service.clone()));
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
async fn serve(mut requests: mpsc::Receiver<InboundMailbox>, service: Option<Arc<MailboxService>>) {
    while let Some(InboundMailbox {
        peer,
        request,
        reply,
    }) = requests.recv().await
    {
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

fn request_name(request: &MailboxRequest) -> &'static str {
    match request {
        MailboxRequest::Register { .. } => "Register",
        MailboxRequest::Deposit { .. } => "Deposit",
        MailboxRequest::Challenge => "Challenge",
        MailboxRequest::Collect { .. } => "Collect",
        MailboxRequest::Ack { .. } => "Ack",
        MailboxRequest::Replicate { .. } => "Replicate",
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
