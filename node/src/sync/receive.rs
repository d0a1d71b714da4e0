//! A delivery from a sibling device (its Noise-authenticated PeerId is on
//! our card; `inbound` checks that and hands it here).
//!
//! It must be signed by our own primary key and be a `device-sync`
//! control message; anything else from a sibling is `Rejected` with the
//! reason. The batch is applied in one store transaction and answered
//! `Accepted` only after the commit; applying is idempotent, so a retry
//! after a lost answer changes nothing.

use std::sync::Arc;

use keys::{ContactCard, Identity};
use libp2p::PeerId;

use super::batch::{self, Batch};
use crate::inbound::Inbound;
use crate::network::{DeliveryRequest, DeliveryResponse};

/// Checks, applies and answers a sibling's delivery.
pub async fn handle(peer: PeerId, request: DeliveryRequest, context: &Inbound) -> DeliveryResponse {
    let identity = Arc::clone(&context.identity);
    let own_card = context.devices.card();
    let Ok(permit) = Arc::clone(&context.decrypt_permits).acquire_owned().await else {
        return DeliveryResponse::TryLater {
            reason: "the recipient is shutting down".into(),
            retry_after_secs: 5,
        };
    };
    let payload = request.payload;
    let opened = tokio::task::spawn_blocking(move || {
        let opened = open(&identity, &own_card, &payload);
        drop(permit);
        opened
    })
    .await;
    let batch = match opened {
        Ok(Ok(batch)) => batch,
        Ok(Err(reason)) => {
            tracing::warn!(%peer, "refused a sibling device's message: {reason}");
            return DeliveryResponse::Rejected { reason };
        }
        Err(err) => {
            return DeliveryResponse::TryLater {
                reason: format!("the recipient could not process the message: {err}"),
                retry_after_secs: 5,
            };
        }
    };
    if let Some(card) = &batch.card {
        learn_card(&peer, card, context);
    }
    let count = batch.ops.len();
    match context.store.sync_apply(batch.ops).await {
        Ok(()) => {
            tracing::info!(%peer, ops = count, "applied a sibling device's changes");
            DeliveryResponse::Accepted
        }
        Err(err) => {
            tracing::error!("cannot apply a sibling device's changes: {err}");
            DeliveryResponse::TryLater {
                reason: "the recipient's message store failed; it will accept a retry".into(),
                retry_after_secs: 30,
            }
        }
    }
}

/// Decrypts the payload, checks the signature by our own primary key and
/// reads the batch.
fn open(identity: &Identity, own_card: &ContactCard, payload: &[u8]) -> Result<Batch, String> {
    let armored = crate::pgpmime::unwrap(payload).map_err(|err| err.to_string())?;
    let opened = identity.open(&armored, own_card).map_err(|err| {
        format!("a sibling device's message must be signed by our own key: {err}")
    })?;
    batch::open_control(&opened.plaintext)
}

/// A sibling's card: a device added or removed since ours.
fn learn_card(peer: &PeerId, bytes: &[u8], context: &Inbound) {
    let card = match ContactCard::from_bytes_even_revoked(bytes) {
        Ok(card) => card,
        Err(err) => {
            tracing::warn!(%peer, "a sibling device sent a card that is not usable: {err}");
            return;
        }
    };
    match context.devices.merge(&card) {
        Ok(true) => tracing::info!(
            %peer,
            devices = context.devices.card().devices().len(),
            "learned our updated card from a sibling device"
        ),
        Ok(false) => {}
        Err(reason) => tracing::warn!(%peer, "{reason}"),
    }
}
