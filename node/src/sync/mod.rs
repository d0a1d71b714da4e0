//! Device sync (issue 8): the devices of one identity keep one mailbox.
//!
//! Mail from others reaches every device on its own (senders deliver to
//! each device on the card). What the *user* does on one device (flags,
//! moves, expunges, APPENDed messages, the Sent copy of a submission) the
//! store journals in the transaction of the change (`store::sync`); this
//! service takes the journal, packs it into one control message per
//! sibling ([`batch`]: signed by our primary key, encrypted to our own
//! card), queues those in the durable outbox and deletes the journal rows
//! in one transaction. The outbox delivers with its retries; the sibling
//! applies a batch in one transaction and answers `Accepted` only after
//! that commit ([`receive`]).
//!
//! [`Devices`] is this device's view of the identity's device list: the
//! own card as last learned (a sibling's batch carries its card, so an
//! added or removed device is learned at once, and `card.asc` is
//! rewritten); the daemon merges `card.asc` into the identity at start.
//!
//! Must not: touch SQL (the store owns the journal), or apply anything
//! that did not come from a device on the card signed by our own key.

pub mod batch;
pub mod receive;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use keys::{ContactCard, Identity};
use libp2p::PeerId;
use tokio::sync::{Notify, watch};

use crate::network::Network;
use crate::pgpmime::{self, OuterHeader};
use crate::store::{OutboxItem, Store, SyncOp};
use batch::{BATCH_VERSION, Batch};

/// How long the service waits after the first journalled change before it
/// sends, so a client's burst of commands travels in one batch.
const FLUSH_DELAY: Duration = Duration::from_millis(150);

/// Most ops one batch carries.
const MAX_OPS: usize = 2_000;

/// The share of the delivery size limit a batch's plaintext may use: the
/// armored ciphertext is about 4/3 of it, plus the PGP/MIME frame.
const BUDGET_NUM: usize = 5;
const BUDGET_DEN: usize = 8;

/// Room kept in the budget for the header and the card.
const BATCH_OVERHEAD: usize = 16 * 1024;

/// This device's view of the identity's devices. Cheap to clone.
#[derive(Clone)]
pub struct Devices {
    own: PeerId,
    state: Arc<RwLock<ContactCard>>,
    /// Where the card is kept (`card.asc`); `None` in tests.
    card_file: Option<PathBuf>,
}

impl Devices {
    /// The devices of `identity`'s card.
    pub fn new(identity: &Identity) -> Devices {
        Devices {
            own: *identity.peer_id(),
            state: Arc::new(RwLock::new(identity.card().clone())),
            card_file: None,
        }
    }

    /// Keeps a card learned from a sibling in `path` as well.
    pub fn with_card_file(mut self, path: PathBuf) -> Devices {
        self.card_file = Some(path);
        self
    }

    /// Runs `f` on the held card without copying it (every inbound
    /// delivery asks [`Devices::is_sibling`]).
    fn with<R>(&self, f: impl FnOnce(&ContactCard) -> R) -> R {
        match self.state.read() {
            Ok(card) => f(&card),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// The own card as last learned.
    pub fn card(&self) -> ContactCard {
        self.with(ContactCard::clone)
    }

    /// This device's PeerId.
    pub fn own(&self) -> &PeerId {
        &self.own
    }

    /// Every other device on the card.
    pub fn siblings(&self) -> Vec<PeerId> {
        self.with(|card| {
            card.devices()
                .iter()
                .filter(|peer| **peer != self.own)
                .copied()
                .collect()
        })
    }

    /// Whether `peer` is another device on our card now.
    pub fn is_sibling(&self, peer: &PeerId) -> bool {
        *peer != self.own && self.with(|card| card.has_device(peer))
    }

    /// Takes a sibling's card when it is a newer version of ours that
    /// still lists this device; returns whether it changed anything.
    pub fn merge(&self, offered: &ContactCard) -> Result<bool, String> {
        let mut held = match self.state.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let update = held
            .check_update(offered)
            .map_err(|err| format!("the sibling's card is refused: {err}"))?;
        if update.change == keys::CardChange::Unchanged {
            return Ok(false);
        }
        if !update.card.has_device(&self.own) {
            return Err(format!(
                "the sibling's card no longer lists this device {}; it was removed from the \
                 identity's devices",
                self.own
            ));
        }
        if let Some(path) = &self.card_file
            && let Err(err) = crate::home::write_atomic(path, update.card.to_armored().as_bytes())
        {
            tracing::error!("cannot keep our updated card: {err:#}");
        }
        *held = update.card;
        Ok(true)
    }
}

/// Everything the service needs.
pub struct Service {
    /// The identity: signs and seals the batches.
    pub identity: Arc<Identity>,
    /// The device list.
    pub devices: Devices,
    /// The journal and the outbox.
    pub store: Store,
    /// Notified after batches are queued.
    pub outbox_wakeup: Arc<Notify>,
    /// Greets the siblings at start.
    pub network: Network,
    /// The delivery size limit (the siblings run the same settings).
    pub max_message_size: usize,
}

/// Runs the service until `shutdown` turns true.
pub async fn run(service: Service, mut shutdown: watch::Receiver<bool>) {
    let own = service.devices.own().to_string();
    let wakeup = service.store.sync_wakeup();
    let mut siblings = Vec::new();
    loop {
        let now = service.devices.siblings();
        if now != siblings {
            siblings = now;
            let device = (!siblings.is_empty()).then_some(own.as_str());
            service.store.set_sync_device(device);
            for peer in &siblings {
                // Reach them now: what waits for us, or for them, goes at once.
                service.network.dial(*peer, Vec::new());
            }
            tracing::info!(siblings = siblings.len(), "device sync");
        }
        match service.flush().await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(err) => {
                tracing::error!("device sync: {err}");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
        }
        tokio::select! {
            _ = wakeup.notified() => {}
            // The device list may change without a write (a sibling's card).
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::time::sleep(FLUSH_DELAY).await;
    }
}

impl Service {
    /// Queues one batch of the journal for every sibling; `Ok(true)` if
    /// more is waiting.
    async fn flush(&self) -> Result<bool, String> {
        let pending = self
            .store
            .sync_pending(MAX_OPS)
            .await
            .map_err(|err| format!("cannot read the journal: {err}"))?;
        let Some((last, _)) = pending.last() else {
            return Ok(false);
        };
        let last = *last;
        let siblings = self.devices.siblings();
        if siblings.is_empty() {
            // The last sibling was removed: nobody to tell.
            self.store
                .sync_queue(last, Vec::new())
                .await
                .map_err(|err| format!("cannot clear the journal: {err}"))?;
            return Ok(false);
        }
        let budget = self.max_message_size / BUDGET_DEN * BUDGET_NUM;
        let card = self.devices.card().to_binary();
        let mut used = BATCH_OVERHEAD + card.len();
        let mut ops = Vec::new();
        let mut upto = 0;
        for (seq, op) in pending {
            let op = self.with_content(op, budget).await?;
            let len = Batch::op_len(&op);
            if !ops.is_empty() && used + len > budget {
                break;
            }
            used += len;
            ops.push(op);
            upto = seq;
        }
        let more = upto < last || ops.len() >= MAX_OPS;
        let count = ops.len();
        let batch = Batch {
            version: BATCH_VERSION,
            device: self.devices.own().to_string(),
            card: Some(card),
            ops,
        };
        let identity = Arc::clone(&self.identity);
        let own_card = self.devices.card();
        let items =
            tokio::task::spawn_blocking(move || seal(&identity, &own_card, &batch, &siblings))
                .await
                .map_err(|err| format!("the sealing task failed: {err}"))??;
        self.store
            .sync_queue(upto, items)
            .await
            .map_err(|err| format!("cannot queue a batch: {err}"))?;
        self.outbox_wakeup.notify_one();
        tracing::debug!(ops = count, "queued a device-sync batch");
        Ok(more)
    }

    /// A new message's content, when the siblings cannot have it: an
    /// APPEND or a Sent copy (a COPY names its source). A message too
    /// large for a batch goes without it (the sibling does not file it).
    async fn with_content(&self, mut op: SyncOp, budget: usize) -> Result<SyncOp, String> {
        if let SyncOp::New {
            instance,
            source: None,
            content,
            ..
        } = &mut op
        {
            let bytes = self
                .store
                .sync_content(*instance)
                .await
                .map_err(|err| format!("cannot read a message to sync: {err}"))?;
            *content = match bytes {
                Some(bytes) if bytes.len() + BATCH_OVERHEAD * 2 > budget => {
                    tracing::warn!(
                        size = bytes.len(),
                        "a new message is too large to sync to the other devices; they will \
                         not have it"
                    );
                    None
                }
                other => other,
            };
        }
        Ok(op)
    }
}

/// The batch signed, sealed to our own card and framed once, then one
/// outbox item (its own delivery id) per sibling.
fn seal(
    identity: &Identity,
    own_card: &ContactCard,
    batch: &Batch,
    siblings: &[PeerId],
) -> Result<Vec<OutboxItem>, String> {
    let message = batch::control_message(identity.name(), identity.address(), batch);
    let armored = identity
        .seal(&message, own_card)
        .map_err(|err| format!("cannot seal a device-sync batch: {err}"))?;
    let date = chrono::Utc::now().to_rfc2822();
    let outer_id = format!(
        "<{}@mailnode.invalid>",
        hex::encode(rand::random::<[u8; 16]>())
    );
    let outer = OuterHeader {
        from: identity.address(),
        to: identity.address(),
        date: &date,
        message_id: &outer_id,
    };
    let payload = pgpmime::wrap(&outer, &armored);
    Ok(siblings
        .iter()
        .map(|peer| OutboxItem {
            delivery_id: rand::random(),
            recipient: identity.address().to_string(),
            recipient_fpr: identity.fingerprint().to_string(),
            peer_id: peer.to_string(),
            payload: payload.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair_peer() -> (libp2p::identity::Keypair, PeerId) {
        let keypair = libp2p::identity::Keypair::generate_ed25519();
        let peer = keypair.public().to_peer_id();
        (keypair, peer)
    }

    #[test]
    fn a_siblings_newer_card_changes_the_device_list() {
        let mut laptop = Identity::generate("Bob", "bob@example.org").expect("bob");
        let (phone_key, phone) = keypair_peer();
        assert!(laptop.add_device(phone).expect("add"));
        let secrets = laptop.export_for_device().expect("export");
        let phone_identity = Identity::join_device(&secrets, phone_key).expect("join");
        let on_phone = Devices::new(&phone_identity);
        assert_eq!(on_phone.siblings(), vec![*laptop.peer_id()]);
        assert!(on_phone.is_sibling(laptop.peer_id()));
        assert!(!on_phone.is_sibling(&phone));

        // The laptop links a tablet: the phone learns it from the card.
        let (_, tablet) = keypair_peer();
        assert!(laptop.add_device(tablet).expect("add"));
        assert!(on_phone.merge(laptop.card()).expect("merge"));
        assert!(on_phone.is_sibling(&tablet));
        assert!(!on_phone.merge(laptop.card()).expect("again"), "no news");

        // A card of another key is refused; so is one without the phone.
        let other = Identity::generate("Bob", "bob@example.org").expect("other");
        assert!(on_phone.merge(other.card()).is_err());
        assert!(laptop.remove_device(&phone).expect("remove"));
        let err = on_phone.merge(laptop.card()).expect_err("removed");
        assert!(err.contains("no longer lists this device"), "{err}");
        assert!(on_phone.is_sibling(&tablet), "the held card stays");
    }
}
