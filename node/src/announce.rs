//! Telling every contact about our changed card (issue 8, sender side).
//!
//! `mailnode keys rotate` and `mailnode revoke` change the identity while
//! the daemon is stopped. At its next start the daemon queues, for every
//! contact that has not been sent the current card, one control message
//! (`card_update::control_message`: signed by our primary key, encrypted to
//! the contact, like any mail) in the durable outbox, which delivers it
//! with the usual retries and mailbox deposits. `announced.json` records,
//! per contact fingerprint, the SHA-256 of the card last queued for them,
//! written after the outbox commit: a restart neither loses an
//! announcement (it is in the outbox) nor repeats one (it is recorded). A
//! crash between the commit and the record repeats an announcement once,
//! which the receiver takes as "nothing new".
//!
//! A home without the file (every home before this version) gets a
//! baseline: every contact is taken to hold the current card, so nobody is
//! sent anything. The key commands write that baseline *before* they
//! change the card, so the change itself is always announced.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use keys::{Contact, ContactCard, Identity};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contacts::Contacts;
use crate::store::Store;

const FILE: &str = "announced.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Announced {
    version: u32,
    /// Contact fingerprint → SHA-256 (hex) of the card last queued for them.
    sent: BTreeMap<String, String>,
}

fn card_hash(card: &ContactCard) -> String {
    hex::encode(Sha256::digest(card.to_binary()))
}

fn read(home: &Path) -> anyhow::Result<Option<Announced>> {
    let path = home.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is damaged; delete it to start afresh", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write(home: &Path, state: &Announced) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(state)?;
    crate::home::write_atomic(&home.join(FILE), &json)
}

/// Writes the baseline (every contact has `card`) unless there is a record
/// already. The key commands call this before they change the card.
pub fn baseline(home: &Path, card: &ContactCard, contacts: &[Contact]) -> anyhow::Result<()> {
    if read(home)?.is_some() {
        return Ok(());
    }
    let hash = card_hash(card);
    let state = Announced {
        version: 1,
        sent: contacts
            .iter()
            .map(|c| (c.card.fingerprint().to_string(), hash.clone()))
            .collect(),
    };
    write(home, &state)
}

/// Queues our current card for every contact that was not sent it yet;
/// returns how many. Contacts whose own key is revoked are skipped (we
/// cannot encrypt to them).
pub async fn announce(
    home: &Path,
    identity: &Arc<Identity>,
    contacts: &Contacts,
    store: &Store,
) -> anyhow::Result<usize> {
    let all = contacts.all();
    let Some(mut state) = read(home)? else {
        baseline(home, identity.card(), &all)?;
        return Ok(0);
    };
    let current = card_hash(identity.card());
    let due: Vec<Contact> = all
        .into_iter()
        .filter(|c| c.card.revocation().is_none())
        .filter(|c| state.sent.get(c.card.fingerprint()) != Some(&current))
        .collect();
    if due.is_empty() {
        return Ok(0);
    }
    let sealer = Arc::clone(identity);
    let targets = due.clone();
    let items = tokio::task::spawn_blocking(move || {
        let date = chrono::Utc::now().to_rfc2822();
        let mut items = Vec::with_capacity(targets.len());
        for contact in &targets {
            let address = contact.card.address().to_string();
            let message = crate::card_update::control_message(
                sealer.name(),
                sealer.address(),
                &address,
                sealer.card(),
            );
            let cards = [(address, contact.card.clone())];
            items.extend(crate::submit::seal_for_each(
                &sealer, &message, &date, &cards,
            )?);
        }
        Ok::<_, imap_bridge::backend::SubmitError>(items)
    })
    .await
    .context("the sealing task failed")?
    .context("cannot seal the card update")?;
    store
        .queue_outgoing(items)
        .await
        .context("cannot queue the card update")?;
    for contact in &due {
        state
            .sent
            .insert(contact.card.fingerprint().to_string(), current.clone());
    }
    state.version = 1;
    write(home, &state)?;
    for contact in &due {
        tracing::info!(
            contact = contact.card.address(),
            "queued our changed card for a contact"
        );
    }
    Ok(due.len())
}
