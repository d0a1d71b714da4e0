//! Linked devices (issue 8): `mailnode device link|join|list|remove`.
//!
//! One identity on several devices, each with its own node and PeerId,
//! listed in the card (`keys`' device list). This module owns pairing: the
//! existing device shows a one-time code (`code`) and waits (`link`); the
//! new one dials it, both run SPAKE2 with the code's secret and confirm the
//! key over the transcript (`wire`), and the new device receives the
//! identity, the address book and a copy of the mail store (`bundle`),
//! sealed with a key from the PAKE (`join`). `list` and `remove` manage the
//! device list. Every command that changes the card runs with the node
//! stopped (it takes the home's lock, as `keys rotate` does); the daemon
//! announces the changed card to every contact at its next start.
//!
//! It must not touch a running node's store: the copy of `mail.db` is a
//! snapshot, prepared on its own file. Secrets are never written in the
//! clear or logged.

use anyhow::{Context, bail};
use clap::Subcommand;
use keys::{Identity, Unlocker};
use libp2p::PeerId;

use crate::home::Home;

mod bundle;
pub mod code;
mod join;
mod link;
mod wire;

pub use join::join;
pub use link::{LinkArgs, link};

/// `mailnode device ...`.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// On the device that has your identity: show a one-time pairing code
    /// and wait for the new device (the node must be stopped).
    Link(LinkArgs),
    /// On the new device, into a new home: take the identity from the
    /// device showing CODE; this device gets a PeerId of its own.
    Join {
        /// The pairing code `mailnode device link` shows.
        code: String,
        /// Where the secret that unlocks the keys is kept on this device.
        #[arg(long, value_enum, default_value_t = crate::cli::SecretStore::Auto)]
        secret_store: crate::cli::SecretStore,
    },
    /// List your devices (PeerIds on your card); this one is marked.
    List,
    /// Take a device off your card: contacts stop delivering to it once
    /// they have the new card (the node must be stopped).
    Remove {
        /// The device's PeerId (`mailnode device list`).
        peer: String,
    },
}

/// `mailnode device list`.
pub fn list(home: &Home) -> anyhow::Result<()> {
    require_identity(home)?;
    let info = Identity::public_info(home.path())?;
    for peer in info.card.devices() {
        if *peer == info.peer_id {
            println!("{peer}\tthis device");
        } else {
            println!("{peer}");
        }
    }
    Ok(())
}

/// `mailnode device remove PEERID`.
pub fn remove(home: &Home, unlocker: &Unlocker, peer: &str) -> anyhow::Result<()> {
    let peer: PeerId = peer.trim().parse().with_context(|| {
        format!("{peer:?} is not a PeerId; `mailnode device list` shows your devices")
    })?;
    let _lock = crate::key_commands::prepare(home)?;
    let removed = Identity::update_stored(home.path(), unlocker, |identity| {
        if *identity.peer_id() == peer {
            return Ok(None);
        }
        identity.remove_device(&peer).map(Some)
    })
    .context("cannot change the device list")?;
    match removed {
        None => bail!(
            "{peer} is this device; a device cannot remove itself. Remove it from another of \
             your devices"
        ),
        Some(false) => {
            bail!("{peer} is not one of your devices; `mailnode device list` shows them")
        }
        Some(true) => {
            let card = Identity::public_info(home.path())?.card;
            println!("removed device {peer}");
            println!("devices: {}", card.devices().len());
            println!(
                "Start the node (`mailnode run`): it sends your card with the new device list to \
                 every contact, whose nodes then deliver nothing more to {peer}."
            );
            Ok(())
        }
    }
}

fn require_identity(home: &Home) -> anyhow::Result<()> {
    if !Identity::exists(home.path()) {
        bail!(
            "no identity in {}: create one with `mailnode keygen`, or join one with `mailnode \
             device join CODE`",
            home.path().display()
        );
    }
    Ok(())
}
