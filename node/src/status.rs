//! The daemon's status file: every few seconds the daemon writes
//! `status.json` (network state from the network service, outbox counts from
//! the store), and `mailnode status` prints it. A file rather than a control
//! socket: the CLI never needs to unlock anything or reach into the daemon.
//!
//! The same task keeps the network service's list of contacts current
//! (senders who are not contacts are rate-limited as strangers).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::contacts::Contacts;
use crate::home::{Home, write_atomic};
use crate::network::Network;
use crate::store::Store;

/// How often the file is rewritten.
const INTERVAL: Duration = Duration::from_secs(2);

/// What `status.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusFile {
    /// Unix seconds when it was written.
    pub written: u64,
    /// The network service's snapshot (as JSON, see `NetworkStatus`).
    pub network: serde_json::Value,
    /// Outbox entries still being tried.
    pub outbox_waiting: u64,
    /// Outbox entries held by a recipient's mailbox peer, not yet
    /// confirmed read.
    #[serde(default)]
    pub outbox_deposited: u64,
    /// On a public node: bytes of sealed mail held for others.
    #[serde(default)]
    pub mailbox_held_bytes: Option<u64>,
}

impl StatusFile {
    /// Reads the file a running daemon wrote.
    pub fn read(home: &Home) -> anyhow::Result<Option<StatusFile>> {
        match std::fs::read(home.path().join("status.json")) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

/// Runs until `shutdown`; removes the file on the way out.
pub async fn run(
    home: Home,
    network: Network,
    contacts: Contacts,
    devices: crate::sync::Devices,
    store: Store,
    mailbox: Option<std::sync::Arc<crate::mailbox::MailboxService>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let path = home.path().join("status.json");
    let mut told = None;
    loop {
        // Only when the address book or our own device list changed: the
        // network keeps the list. Our other devices (issue 8) are not held
        // to the limits for strangers either.
        let generation = (contacts.generation(), devices.siblings());
        if told.as_ref() != Some(&generation) {
            let mut peers = contacts
                .all()
                .iter()
                .flat_map(|c| c.card.devices().to_vec())
                .collect::<Vec<_>>();
            peers.extend(generation.1.iter().copied());
            network.set_contacts(peers).await;
            told = Some(generation);
        }
        if let Ok(status) = network.status().await {
            let counts = store.outbox_counts().await.unwrap_or_default();
            let file = StatusFile {
                written: crate::network::unix_now(),
                network: serde_json::to_value(&status).unwrap_or_default(),
                outbox_waiting: counts.waiting,
                outbox_deposited: counts.deposited,
                mailbox_held_bytes: match &mailbox {
                    Some(service) => service.total_bytes().await.ok(),
                    None => None,
                },
            };
            if let Ok(json) = serde_json::to_vec_pretty(&file)
                && let Err(err) = write_atomic(&path, &json)
            {
                tracing::warn!("cannot write {}: {err}", path.display());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
    let _ = std::fs::remove_file(&path);
}
