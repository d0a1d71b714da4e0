//! `mailnode keys rotate` and `mailnode revoke` (issue 8): change the
//! node's own certificate, with the node stopped.
//!
//! Both take the home's lock, so they refuse while the daemon runs (it
//! holds the secrets in memory and would keep using the old ones). They
//! write the new secrets and card; the daemon announces the changed card to
//! every contact at its next start (`announce`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use keys::{AddressBook, Identity, RevocationReason, Unlocker};

use crate::home::Home;

/// `mailnode keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new encryption subkey; the old one keeps decrypting old mail.
    /// Contacts get the new card when the node next starts. The node must
    /// be stopped.
    Rotate {
        /// Give the node a new libp2p identity (PeerId) as well.
        #[arg(long)]
        new_peer_id: bool,
    },
}

/// The reason given with `mailnode revoke`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Reason {
    /// Someone else may have the key: every signature by it is void.
    Compromised,
    /// You moved to a new key: signatures made before now stay valid.
    Superseded,
    /// You no longer use the key: signatures made before now stay valid.
    Retired,
}

/// What `mailnode revoke` was given.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// Why (default: retired).
    #[arg(long, value_enum, default_value_t = Reason::Retired)]
    pub reason: Reason,
    /// A few words for your contacts, shown in their notice.
    #[arg(long, default_value = "")]
    pub message: String,
    /// Use this revocation certificate (what `mailnode revocation` printed
    /// at keygen) instead of making a new revocation.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["reason", "message"])]
    pub certificate: Option<PathBuf>,
    /// Revoke without asking (revocation cannot be undone).
    #[arg(long)]
    pub yes: bool,
}

/// `mailnode keys rotate`.
pub fn rotate(home: &Home, unlocker: &Unlocker, new_peer_id: bool) -> anyhow::Result<()> {
    let _lock = prepare(home)?;
    let (rotation, peer) = Identity::update_stored(home.path(), unlocker, |identity| {
        let rotation = identity.rotate_encryption_key()?;
        let peer = if new_peer_id {
            Some(identity.rotate_peer_id()?)
        } else {
            None
        };
        Ok((rotation, peer))
    })
    .context("cannot rotate the encryption key")?;
    if let Some(peer) = peer {
        println!("new-peer-id: {peer}");
        println!(
            "Mail waiting for your old PeerId at mailbox peers can no longer be collected; \
             contacts deliver to the new one once they have your card."
        );
    }
    println!("new-encryption-key: {}", rotation.new);
    for old in &rotation.old {
        println!("superseded-key: {old} (kept to decrypt old mail)");
    }
    println!(
        "Your fingerprint and safety number are unchanged. Start the node: it sends the new \
         card to every contact, whose nodes apply it automatically."
    );
    Ok(())
}

/// `mailnode revoke`.
pub fn revoke(home: &Home, unlocker: &Unlocker, args: &RevokeArgs) -> anyhow::Result<()> {
    let certificate = match &args.certificate {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read the certificate {}", path.display()))?,
        ),
        None => None,
    };
    if !args.yes
        && !crate::cli::confirm(
            "Revoke your key for good? Contacts will stop encrypting to it and refuse mail \
             signed by it.",
            "not revoked: revocation cannot be undone; run this in a terminal to confirm, or \
             pass --yes",
        )?
    {
        println!("not revoked.");
        return Ok(());
    }
    let _lock = prepare(home)?;
    let reason = match args.reason {
        Reason::Compromised => RevocationReason::Compromised,
        Reason::Superseded => RevocationReason::Superseded,
        Reason::Retired => RevocationReason::Retired,
    };
    let revocation =
        Identity::update_stored(home.path(), unlocker, |identity| match &certificate {
            Some(bytes) => identity.apply_revocation_certificate(bytes),
            None => identity.revoke(reason, args.message.trim()),
        })
        .context("cannot revoke the key")?;
    println!("revoked: {revocation}");
    println!(
        "Start the node once more: it sends the revocation to every contact. Then make a new \
         identity in a new home and give your contacts its card."
    );
    Ok(())
}

/// Takes the home's lock (the daemon must be stopped) and records, before
/// the card changes, that contacts hold the current one (`announce`).
/// `mailnode device link|remove` change the card too and start here.
pub(crate) fn prepare(home: &Home) -> anyhow::Result<std::fs::File> {
    if !Identity::exists(home.path()) {
        bail!(
            "{} holds no identity; create one with `mailnode keygen`",
            home.path().display()
        );
    }
    let lock = home.lock().map_err(|err| {
        anyhow::anyhow!(
            "{err}. The running node holds your keys in memory: stop it (SIGTERM or Ctrl-C), \
             run this command, then start it again"
        )
    })?;
    let card = Identity::public_info(home.path())?.card;
    let book = AddressBook::open(home.path())?;
    crate::announce::baseline(home.path(), &card, book.list())?;
    Ok(lock)
}
