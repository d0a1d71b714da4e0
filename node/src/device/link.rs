//! `mailnode device link`: the existing device shows a one-time pairing
//! code and waits, with the node stopped, for exactly one new device.
//!
//! One attempt per code: whatever goes wrong after a device sent its first
//! message (a wrong code, a second device, a device that goes away) ends
//! the session, and the code with it. The device list changes only after
//! the joiner proved the code, and is changed back if the joiner does not
//! take the whole bundle.

use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use keys::{Identity, Unlocker};
use libp2p::request_response::{self, Message, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::bundle::{self, CARD, Outgoing, PLAIN_FILES, SECRETS};
use super::code::{MAX_ADDRS, PairingCode};
use super::wire::{self, Behaviour, PairRequest, PairResponse, Pake, Role, SessionKeys};
use crate::home::Home;

/// How long the joiner may wait for an answer; the linker may be asking
/// its user for the passphrase before it answers `Confirm`.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// What `mailnode device link` was given.
#[derive(Debug, clap::Args)]
pub struct LinkArgs {
    /// Where to wait for the new device (repeatable). Default: TCP port
    /// 4870 on all interfaces, as the node.
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// How long to wait for the new device, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
}

/// Where the session stands.
enum Stage {
    /// No device has spoken yet.
    Waiting,
    /// A device sent its PAKE message; its confirmation is awaited.
    Pake { peer: PeerId, keys: SessionKeys },
    /// It proved the code; the device list and the bundle are being made.
    Preparing {
        peer: PeerId,
        keys: SessionKeys,
        channel: ResponseChannel<PairResponse>,
    },
    /// The bundle is being fetched, chunk `next` is due.
    Sending {
        peer: PeerId,
        keys: SessionKeys,
        out: Outgoing,
        next: u64,
        done: bool,
    },
}

/// `mailnode device link`.
pub fn link(home: &Home, unlocker: &Unlocker, args: &LinkArgs) -> anyhow::Result<()> {
    let _lock = crate::key_commands::prepare(home)?;
    let card = Identity::public_info(home.path())?.card;
    if let Some(revocation) = card.revocation() {
        bail!("this identity is revoked ({revocation}); a new device cannot join it");
    }
    let listen = if args.listen.is_empty() {
        vec![format!(
            "/ip4/0.0.0.0/tcp/{}",
            crate::config::DEFAULT_P2P_PORT
        )]
    } else {
        args.listen.clone()
    };
    let listen = listen
        .iter()
        .map(|text| {
            text.parse::<Multiaddr>().with_context(|| {
                format!("--listen {text:?} is not a multiaddr (example: /ip4/0.0.0.0/tcp/4870)")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    runtime.block_on(Session::run(
        home,
        unlocker,
        listen,
        deadline,
        card.address(),
    ))
}

struct Session<'a> {
    home: &'a Home,
    unlocker: &'a Unlocker,
    swarm: Swarm<Behaviour>,
    stage: Stage,
    /// The device added to the list, until the joiner has everything.
    added: Option<PeerId>,
    /// Where the blocking preparation (device list, bundle) reports.
    ready_tx: mpsc::Sender<anyhow::Result<Outgoing>>,
    ready_rx: mpsc::Receiver<anyhow::Result<Outgoing>>,
}

impl<'a> Session<'a> {
    async fn run(
        home: &'a Home,
        unlocker: &'a Unlocker,
        listen: Vec<Multiaddr>,
        deadline: Instant,
        address: &str,
    ) -> anyhow::Result<()> {
        // A key of its own for each session: a code shown earlier names
        // another PeerId, so it can never reach (and spend) this session.
        let keypair = libp2p::identity::Keypair::generate_ed25519();
        let me = keypair.public().to_peer_id();
        let mut swarm = wire::swarm(keypair, true, REQUEST_TIMEOUT)?;
        for addr in &listen {
            swarm
                .listen_on(addr.clone())
                .with_context(|| format!("cannot listen on {addr}"))?;
        }
        let addrs = listen_addrs(&mut swarm).await?;
        let code = PairingCode::new(me, addrs.clone());
        let text = code.to_text();
        println!("Link a new device to <{address}>. On the new device, run:");
        println!();
        println!("    mailnode device join {}", text.as_str());
        println!();
        print!("{}", crate::qr::terminal(text.as_str())?);
        println!("pairing-code: {}", text.as_str());
        for addr in &addrs {
            println!("waiting-at: {addr}");
        }
        println!(
            "The code works once, for one device, while this command waits (at most until \
             it times out). Anyone who has the code can take your identity: show it to no one \
             else."
        );
        let (ready_tx, ready_rx) = mpsc::channel(1);
        let mut session = Session {
            home,
            unlocker,
            swarm,
            stage: Stage::Waiting,
            added: None,
            ready_tx,
            ready_rx,
        };
        let outcome = session.serve(code, deadline).await;
        if let Err(err) = &outcome {
            session.roll_back().await;
            return Err(anyhow::anyhow!("{err:#}. The pairing code is spent"));
        }
        outcome
    }

    /// Answers the joiner until it finished, or fails.
    async fn serve(&mut self, code: PairingCode, deadline: Instant) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => {
                    if let Some(done) = self.on_event(event, &code)? {
                        return self.finished(done).await;
                    }
                }
                ready = self.ready_rx.recv() => {
                    let ready = ready.context("the preparation stopped")?;
                    self.on_ready(ready)?;
                }
                () = tokio::time::sleep_until(deadline) => {
                    bail!("no new device completed the pairing before the timeout");
                }
                _ = tokio::signal::ctrl_c() => bail!("stopped (Ctrl-C)"),
            }
        }
    }

    /// Handles one swarm event; `Some` with the finished channel when the
    /// joiner said it keeps everything.
    fn on_event(
        &mut self,
        event: SwarmEvent<request_response::Event<PairRequest, PairResponse>>,
        code: &PairingCode,
    ) -> anyhow::Result<Option<(PeerId, ResponseChannel<PairResponse>)>> {
        match event {
            SwarmEvent::Behaviour(request_response::Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            }) => self.on_request(peer, request, channel, code),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } if self.session_peer() == Some(peer_id) => {
                bail!("the new device {peer_id} went away before it had everything")
            }
            SwarmEvent::Behaviour(request_response::Event::InboundFailure {
                peer, error, ..
            }) if self.session_peer() == Some(peer) => {
                bail!("the exchange with the new device {peer} failed: {error}")
            }
            _ => Ok(None),
        }
    }

    fn session_peer(&self) -> Option<PeerId> {
        match &self.stage {
            Stage::Waiting => None,
            Stage::Pake { peer, .. }
            | Stage::Preparing { peer, .. }
            | Stage::Sending { peer, .. } => Some(*peer),
        }
    }

    fn on_request(
        &mut self,
        peer: PeerId,
        request: PairRequest,
        channel: ResponseChannel<PairResponse>,
        code: &PairingCode,
    ) -> anyhow::Result<Option<(PeerId, ResponseChannel<PairResponse>)>> {
        let stage = std::mem::replace(&mut self.stage, Stage::Waiting);
        match (stage, request) {
            (Stage::Waiting, PairRequest::Hello { pake }) => {
                let me = *self.swarm.local_peer_id();
                let (state, ours) = Pake::start(Role::Linker, code.secret.as_slice(), me, peer);
                let keys = match state.finish(&pake) {
                    Ok(keys) => keys,
                    Err(err) => {
                        self.refuse(channel, "the pairing message is malformed");
                        return Err(err);
                    }
                };
                self.respond(channel, PairResponse::Hello { pake: ours });
                println!("a device ({peer}) is trying the code...");
                self.stage = Stage::Pake { peer, keys };
                Ok(None)
            }
            (
                Stage::Pake {
                    peer: expected,
                    keys,
                },
                PairRequest::Confirm { mac },
            ) if expected == peer => {
                if !wire::confirms(&keys.joiner_confirm, &mac) {
                    self.refuse(
                        channel,
                        "wrong pairing code; the code is spent, run `mailnode device link` \
                         again for a new one",
                    );
                    bail!(
                        "the device {peer} tried a wrong pairing code, so nothing was sent. If \
                         that was not you, someone else saw where this device waits"
                    );
                }
                println!("the device {peer} proved the code; adding it to your devices");
                let (home, unlocker, ready) = (
                    self.home.clone(),
                    self.unlocker.clone(),
                    self.ready_tx.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    let prepared = prepare(&home, &unlocker, peer);
                    let _ = ready.blocking_send(prepared);
                });
                self.added = Some(peer);
                self.stage = Stage::Preparing {
                    peer,
                    keys,
                    channel,
                };
                Ok(None)
            }
            (
                Stage::Sending {
                    peer: expected,
                    keys,
                    mut out,
                    next,
                    done: false,
                },
                PairRequest::Chunk { index },
            ) if expected == peer && index == next => {
                let (plain, last) = out.next_chunk()?;
                let sealed = keys.seal_chunk(index, last, &plain)?;
                self.respond(channel, PairResponse::Chunk { sealed, last });
                self.stage = Stage::Sending {
                    peer,
                    keys,
                    out,
                    next: next + 1,
                    done: last,
                };
                Ok(None)
            }
            (
                Stage::Sending {
                    peer: expected,
                    done: true,
                    ..
                },
                PairRequest::Finish,
            ) if expected == peer => Ok(Some((peer, channel))),
            (stage, request) => {
                self.stage = stage;
                self.refuse(
                    channel,
                    "this pairing session is over; run `mailnode device link` again for a new code",
                );
                match self.session_peer() {
                    Some(current) if current != peer => bail!(
                        "a second device ({peer}) tried the code while {current} was joining; \
                         pairing stopped. If you did not start a second join, someone else has \
                         the code"
                    ),
                    _ => bail!("the device {peer} broke the pairing protocol ({request:?})"),
                }
            }
        }
    }

    /// The device list and bundle are ready (or failed): answer `Confirm`.
    fn on_ready(&mut self, ready: anyhow::Result<Outgoing>) -> anyhow::Result<()> {
        let stage = std::mem::replace(&mut self.stage, Stage::Waiting);
        let Stage::Preparing {
            peer,
            keys,
            channel,
        } = stage
        else {
            bail!("internal: a bundle without a session");
        };
        match ready {
            Ok(out) => {
                let mac = keys.linker_confirm.to_vec();
                self.respond(channel, PairResponse::Confirmed { mac });
                self.stage = Stage::Sending {
                    peer,
                    keys,
                    out,
                    next: 0,
                    done: false,
                };
                Ok(())
            }
            Err(err) => {
                self.added = None; // `prepare` undid its own change
                self.refuse(channel, "the other device could not prepare the identity");
                Err(err)
            }
        }
    }

    /// The joiner keeps everything: answer, let the answer go out, report.
    async fn finished(
        &mut self,
        (peer, channel): (PeerId, ResponseChannel<PairResponse>),
    ) -> anyhow::Result<()> {
        self.added = None;
        self.respond(channel, PairResponse::Finished);
        self.flush().await;
        let card = Identity::public_info(self.home.path())?.card;
        println!("linked: the device {peer} joined <{}>", card.address());
        println!("devices: {}", card.devices().len());
        println!(
            "Start the node (`mailnode run`): it sends your card with the new device list to \
             every contact."
        );
        Ok(())
    }

    fn respond(&mut self, channel: ResponseChannel<PairResponse>, response: PairResponse) {
        // A failure shows up as an InboundFailure event.
        let _ = self.swarm.behaviour_mut().send_response(channel, response);
    }

    fn refuse(&mut self, channel: ResponseChannel<PairResponse>, reason: &str) {
        self.respond(
            channel,
            PairResponse::Refused {
                reason: reason.to_string(),
            },
        );
    }

    /// Polls the swarm until the joiner, having read the last answer,
    /// closes the connection (at most a few seconds): exiting at once could
    /// cut the answer off before it left.
    async fn flush(&mut self) {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => {
                    if let SwarmEvent::ConnectionClosed { num_established: 0, .. } = event
                        && self.swarm.connected_peers().next().is_none()
                    {
                        return;
                    }
                }
                () = tokio::time::sleep_until(until) => return,
            }
        }
    }

    /// After a failure: lets a refusal reach the joiner, and takes a device
    /// that did not finish off the list again.
    async fn roll_back(&mut self) {
        self.flush().await;
        if matches!(self.stage, Stage::Preparing { .. }) {
            // Let the preparation end before its change is undone.
            let _ = self.ready_rx.recv().await;
        }
        if let Some(peer) = self.added.take() {
            let (home, unlocker) = (self.home.clone(), self.unlocker.clone());
            let undone =
                tokio::task::spawn_blocking(move || remove_again(&home, &unlocker, peer)).await;
            if let Ok(Err(err)) | Err(err) = undone.map_err(anyhow::Error::from) {
                eprintln!(
                    "mailnode: could not take {peer} off the device list again ({err:#}); run \
                     `mailnode device remove {peer}`"
                );
            }
        }
    }
}

/// Waits until the listeners report their addresses and picks those a new
/// device can dial: without unspecified ones, loopback only if nothing
/// else, at most [`MAX_ADDRS`].
async fn listen_addrs(swarm: &mut Swarm<Behaviour>) -> anyhow::Result<Vec<Multiaddr>> {
    let mut addrs: Vec<Multiaddr> = Vec::new();
    let first = Instant::now() + Duration::from_secs(10);
    loop {
        // Interfaces are reported one by one, right after each other; a
        // short quiet moment after the first means all are in.
        let until = if addrs.is_empty() {
            first
        } else {
            Instant::now() + Duration::from_millis(300)
        };
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => addrs.push(address),
                SwarmEvent::ListenerError { error, .. } => {
                    bail!("cannot listen for the new device: {error}")
                }
                SwarmEvent::ListenerClosed { reason: Err(error), .. } => {
                    bail!("cannot listen for the new device: {error}")
                }
                _ => {}
            },
            () = tokio::time::sleep_until(until) => break,
        }
    }
    Ok(pick_dialable(addrs))
}

fn pick_dialable(mut addrs: Vec<Multiaddr>) -> Vec<Multiaddr> {
    use libp2p::multiaddr::Protocol;
    let loopback = |addr: &Multiaddr| {
        addr.iter().any(|p| match p {
            Protocol::Ip4(ip) => ip.is_loopback(),
            Protocol::Ip6(ip) => ip.is_loopback(),
            _ => false,
        })
    };
    if addrs.iter().any(|a| !loopback(a)) {
        addrs.retain(|a| !loopback(a));
    }
    // IPv4 first: the likelier to work across a home network.
    addrs.sort_by_key(|a| !matches!(a.iter().next(), Some(Protocol::Ip4(_))));
    addrs.dedup();
    addrs.truncate(MAX_ADDRS);
    addrs
}

/// Adds `peer` to the device list and builds the bundle for it. Undoes the
/// addition if the bundle cannot be made.
fn prepare(home: &Home, unlocker: &Unlocker, peer: PeerId) -> anyhow::Result<Outgoing> {
    let (secrets, card) = Identity::update_stored(home.path(), unlocker, |identity| {
        identity.add_device(peer)?;
        Ok((identity.export_for_device()?, identity.card().to_armored()))
    })
    .context("cannot add the new device to your card")?;
    let built = (|| -> anyhow::Result<Outgoing> {
        let mut files = Vec::new();
        for name in PLAIN_FILES {
            if let Some(bytes) = bundle::read_if_present(&home.path().join(name))? {
                files.push((*name, bytes));
            }
        }
        let mut entries: Vec<(&str, &[u8])> =
            vec![(SECRETS, secrets.as_slice()), (CARD, card.as_bytes())];
        entries.extend(files.iter().map(|(n, b)| (*n, b.as_slice())));
        let store = if home.store_file().exists() {
            let snapshot = crate::backup::snapshot(&home.store_file())?;
            bundle::prepare_copied_store(snapshot.path())
                .context("cannot prepare the copy of the mail store")?;
            Some(snapshot)
        } else {
            None
        };
        Outgoing::new(&entries, store)
    })();
    if built.is_err()
        && let Err(err) = remove_again(home, unlocker, peer)
    {
        eprintln!(
            "mailnode: could not take {peer} off the device list again ({err:#}); run \
             `mailnode device remove {peer}`"
        );
    }
    built
}

fn remove_again(home: &Home, unlocker: &Unlocker, peer: PeerId) -> anyhow::Result<()> {
    Identity::update_stored(home.path(), unlocker, |identity| {
        identity.remove_device(&peer)
    })?;
    eprintln!("mailnode: the device {peer} was taken off the device list again");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialable_addresses_leave_out_loopback_when_there_is_more() {
        let parse = |s: &str| s.parse::<Multiaddr>().expect("addr");
        let picked = pick_dialable(vec![
            parse("/ip4/127.0.0.1/tcp/4870"),
            parse("/ip6/2001:db8::2/tcp/4870"),
            parse("/ip4/192.0.2.5/tcp/4870"),
        ]);
        assert_eq!(
            picked,
            vec![
                parse("/ip4/192.0.2.5/tcp/4870"),
                parse("/ip6/2001:db8::2/tcp/4870")
            ]
        );
        let only = pick_dialable(vec![parse("/ip4/127.0.0.1/tcp/1")]);
        assert_eq!(only, vec![parse("/ip4/127.0.0.1/tcp/1")]);
    }
}
