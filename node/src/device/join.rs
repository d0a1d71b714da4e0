//! `mailnode device join CODE`: a new device takes the identity from a
//! device running `mailnode device link`, with a libp2p key (PeerId) of
//! its own.
//!
//! Everything received goes into a staging directory inside the home and
//! is checked there (every chunk authenticated, the secrets a complete
//! identity that lists this device, the mail store opened with the received
//! store key); only after the linker acknowledged the end are the files
//! moved into the home, `identity.json` last. Any failure before removes
//! the staging directory, so the home is left as it was.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use keys::{ContactCard, Identity, Protection};
use libp2p::request_response::{self, Message, OutboundFailure};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{PeerId, Swarm};
use rand::Rng;

use super::bundle::{self, Incoming};
use super::code::PairingCode;
use super::wire::{self, Behaviour, PairRequest, PairResponse, Pake, Role};
use crate::home::Home;

/// How long reaching the linking device may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Files of a home that a join writes; none may be there before.
const WRITES: &[&str] = &[
    "identity.json",
    "secrets.bin",
    "card.asc",
    bundle::STORE,
    "contacts.json",
    "strangers.json",
    "announced.json",
    "mailboxes.json",
];

/// A staging directory, removed with everything in it unless kept.
struct Staging {
    path: PathBuf,
    /// The home did not exist before: it goes too on failure.
    home: Option<PathBuf>,
    keep: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
            if let Some(home) = &self.home {
                let _ = fs::remove_dir(home);
            }
        }
    }
}

/// `mailnode device join`.
pub fn join(home: &Home, code: &str, protection: &Protection) -> anyhow::Result<()> {
    if Identity::exists(home.path()) {
        bail!(
            "{} already holds an identity; a device joins into a new, empty home. Use another \
             --home (or `mailnode device link` from this one to add a device)",
            home.path().display()
        );
    }
    for name in WRITES {
        if home.path().join(name).exists() {
            bail!(
                "{} already holds {name}; a device joins into a new, empty home. Use another \
                 --home, or move that file away",
                home.path().display()
            );
        }
    }
    let code = PairingCode::parse(code)?;
    let existed = home.path().exists();
    home.ensure_exists()?;
    let staging = Staging {
        path: home
            .path()
            .join(format!(".join-{:08x}", rand::thread_rng().r#gen::<u32>())),
        home: (!existed).then(|| home.path().to_path_buf()),
        keep: false,
    };
    fs::create_dir(&staging.path)
        .with_context(|| format!("cannot create {}", staging.path.display()))?;
    crate::home::set_private(&staging.path)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let joined = runtime.block_on(receive(&code, &staging.path, protection))?;
    move_into(&staging.path, home.path())?;
    let mut staging = staging;
    staging.keep = true;
    let _ = fs::remove_dir(&staging.path);

    let identity = &joined.identity;
    println!(
        "joined the identity of {} <{}>",
        identity.name(),
        identity.address()
    );
    println!("fingerprint: {}", identity.fingerprint());
    println!("peer-id: {}", identity.peer_id());
    println!("devices: {}", identity.card().devices().len());
    println!(
        "messages: {}",
        if joined.store {
            "copied from the other device, with their UIDs and flags"
        } else {
            "none (the other device had no message store yet)"
        }
    );
    println!("secrets: {}", joined.used);
    println!("home: {}", home.path().display());
    println!();
    println!(
        "Next: `mailnode run` starts the node; `mailnode bridge` prints the mail client \
         settings (this device has a bridge password of its own)."
    );
    Ok(())
}

/// What a completed exchange left in the staging directory.
struct Joined {
    identity: Identity,
    used: keys::ProtectionUsed,
    store: bool,
}

/// Runs the exchange and leaves the complete, checked home in `dir`.
async fn receive(
    code: &PairingCode,
    dir: &Path,
    protection: &Protection,
) -> anyhow::Result<Joined> {
    let keypair = libp2p::identity::Keypair::generate_ed25519();
    let me = keypair.public().to_peer_id();
    let swarm = wire::swarm(keypair.clone(), false, super::link::REQUEST_TIMEOUT)?;
    let mut link = Link {
        swarm,
        peer: code.peer,
    };
    link.connect(code).await?;

    let (pake, hello) = Pake::start(Role::Joiner, code.secret.as_slice(), code.peer, me);
    let theirs = match link.ask(PairRequest::Hello { pake: hello }).await? {
        PairResponse::Hello { pake } => pake,
        other => return Err(unexpected(other)),
    };
    let keys = pake.finish(&theirs)?;
    let mac = keys.joiner_confirm.to_vec();
    match link.ask(PairRequest::Confirm { mac }).await? {
        PairResponse::Confirmed { mac } if wire::confirms(&keys.linker_confirm, &mac) => {}
        PairResponse::Confirmed { .. } => bail!(
            "the other device does not confirm the pairing code: it is not the device that \
             showed it. Nothing was received"
        ),
        other => return Err(unexpected(other)),
    }

    let mut incoming = Incoming::new(dir);
    for index in 0u64.. {
        match link.ask(PairRequest::Chunk { index }).await? {
            PairResponse::Chunk { sealed, last } => {
                let plain = keys.open_chunk(index, last, &sealed)?;
                incoming.feed(&plain)?;
                if last {
                    break;
                }
            }
            other => return Err(unexpected(other)),
        }
    }
    incoming.finish()?;
    let secrets = incoming
        .secrets
        .take()
        .context("the bundle holds no identity")?;
    let identity = Identity::join_device(&secrets, keypair)
        .context("the identity received does not form a usable identity for this device")?;
    drop(secrets);
    let card = ContactCard::from_bytes_even_revoked(incoming.card.as_deref().unwrap_or_default())
        .context("the card received is not usable")?;
    if card.fingerprint() != identity.fingerprint() || !card.has_device(&me) {
        bail!(
            "the card received does not belong to the identity received, or does not list this device"
        );
    }
    if incoming.store {
        crate::store::Store::verify_file(&dir.join(bundle::STORE), identity.store_key())
            .map_err(|err| anyhow::anyhow!("the mail store received is not usable: {err}"))?;
    }
    let used = identity
        .save(dir, protection)
        .context("cannot protect the secrets received")?;
    match link.ask(PairRequest::Finish).await? {
        PairResponse::Finished => {}
        other => return Err(unexpected(other)),
    }
    Ok(Joined {
        identity,
        used,
        store: incoming.store,
    })
}

fn unexpected(response: PairResponse) -> anyhow::Error {
    match response {
        PairResponse::Refused { reason } => {
            anyhow::anyhow!("the other device refused: {reason}. Nothing was kept")
        }
        other => anyhow::anyhow!(
            "the other device answered out of turn ({}); nothing was kept",
            match other {
                PairResponse::Hello { .. } => "Hello",
                PairResponse::Confirmed { .. } => "Confirmed",
                PairResponse::Chunk { .. } => "Chunk",
                PairResponse::Finished => "Finished",
                PairResponse::Refused { .. } => "Refused",
            }
        ),
    }
}

/// The connection to the linking device.
struct Link {
    swarm: Swarm<Behaviour>,
    peer: PeerId,
}

impl Link {
    /// Dials the code's addresses; Noise proves the code's PeerId.
    async fn connect(&mut self, code: &PairingCode) -> anyhow::Result<()> {
        let addrs: Vec<String> = code.addrs.iter().map(ToString::to_string).collect();
        let where_ = addrs.join(", ");
        self.swarm
            .dial(
                DialOpts::peer_id(code.peer)
                    .addresses(code.addrs.clone())
                    .build(),
            )
            .with_context(|| format!("cannot dial {where_}"))?;
        let deadline = tokio::time::Instant::now() + DIAL_TIMEOUT;
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => match event {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == self.peer => {
                        return Ok(());
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => bail!(
                        "cannot reach the device that showed this code ({where_}): {error}. A \
                         code works once, and only while `mailnode device link` waits on that \
                         device; if it has ended, run it again there for a new code"
                    ),
                    _ => {}
                },
                () = tokio::time::sleep_until(deadline) => bail!(
                    "the device that showed this code ({where_}) did not answer within {} s",
                    DIAL_TIMEOUT.as_secs()
                ),
            }
        }
    }

    /// Sends one request and waits for its answer.
    async fn ask(&mut self, request: PairRequest) -> anyhow::Result<PairResponse> {
        let id = self.swarm.behaviour_mut().send_request(&self.peer, request);
        loop {
            match self.swarm.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message:
                        Message::Response {
                            request_id,
                            response,
                        },
                    ..
                }) if request_id == id => return Ok(response),
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                }) if request_id == id => {
                    return Err(match error {
                        OutboundFailure::ConnectionClosed => anyhow::anyhow!(
                            "the other device ended the pairing (the code is spent, or it \
                             stopped); nothing was kept"
                        ),
                        other => anyhow::anyhow!(
                            "the pairing with the other device failed: {other}; nothing was kept"
                        ),
                    });
                }
                _ => {}
            }
        }
    }
}

/// Moves every file of `staging` into `home`, `identity.json` last (its
/// presence means the identity is complete); on failure takes back what
/// was moved.
fn move_into(staging: &Path, home: &Path) -> anyhow::Result<()> {
    let mut names: Vec<_> = fs::read_dir(staging)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort_by_key(|name| name == "identity.json");
    let mut moved = Vec::new();
    for name in &names {
        let target = home.join(name);
        if let Err(err) = fs::rename(staging.join(name), &target) {
            for done in &moved {
                let _ = fs::remove_file(done);
            }
            return Err(err)
                .with_context(|| format!("cannot move {} into place", target.display()));
        }
        moved.push(target);
    }
    if let Ok(dir) = fs::File::open(home) {
        let _ = dir.sync_all();
    }
    Ok(())
}
