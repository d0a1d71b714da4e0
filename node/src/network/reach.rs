//! Reaching a peer directly: callers waiting for a direct connection,
//! relay reservations for when we are behind a NAT, DCUtR hole punching,
//! and what AutoNAT says about our own reachability.
//!
//! Rule (DESIGN.md "Reaching a peer"): mail travels only over direct
//! connections. A relayed connection is a way to coordinate a hole punch;
//! once the punch gives a direct connection the relayed one is closed. A
//! caller that gets no direct connection in time is told so, and the outbox
//! deposits the mail at one of the recipient's mailbox peers instead.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, autonat, dcutr, relay};
use tokio::sync::oneshot;

use super::discovery::is_loopback;
use super::error::DeliveryError;
use super::event_loop::EventLoop;
use super::locator::Locator;
use super::{NatStatus, NetworkConfig, NetworkStatus};

/// How long a caller waits for a direct connection (dial, lookup, relayed
/// connection and hole punch together).
const DIRECT_WAIT: Duration = Duration::from_secs(30);
/// Relays we hold reservations on at once.
const MAX_RELAYS: usize = 2;

type DirectReply = oneshot::Sender<Result<(), DeliveryError>>;

struct Waiter {
    deadline: Instant,
    reply: DirectReply,
}

/// A relay we hold (or asked for) a reservation on.
struct RelayEntry {
    listener: ListenerId,
    circuit: Option<Multiaddr>,
}

/// The reachability state of the event loop.
pub(crate) struct Reach {
    public: bool,
    waiters: HashMap<PeerId, Vec<Waiter>>,
    /// Why the last hole punch with a peer failed.
    punch_failed: HashMap<PeerId, String>,
    relays: HashMap<PeerId, RelayEntry>,
    /// Peers that offer the relay hop protocol, with an address to reach
    /// them at.
    relay_candidates: HashMap<PeerId, Multiaddr>,
    pub(crate) nat: NatStatus,
}

impl Reach {
    pub(crate) fn new(config: &NetworkConfig) -> Self {
        Self {
            public: config.public,
            waiters: HashMap::new(),
            punch_failed: HashMap::new(),
            relays: HashMap::new(),
            relay_candidates: HashMap::new(),
            nat: if config.public {
                NatStatus::Public
            } else {
                NatStatus::Unknown
            },
        }
    }

    fn wake(&mut self, peer: &PeerId, result: impl Fn() -> Result<(), DeliveryError>) {
        for waiter in self.waiters.remove(peer).unwrap_or_default() {
            let _ = waiter.reply.send(result());
        }
    }

    /// Answers every waiter with `error()` (at shutdown).
    pub(crate) fn fail_all(self, error: impl Fn() -> DeliveryError) {
        for (_, waiters) in self.waiters {
            for waiter in waiters {
                let _ = waiter.reply.send(Err(error()));
            }
        }
    }
}

impl EventLoop {
    fn has_direct(&self, peer: &PeerId) -> bool {
        self.connections
            .values()
            .any(|c| c.peer == *peer && !c.relayed)
    }

    fn has_relayed(&self, peer: &PeerId) -> bool {
        self.connections
            .values()
            .any(|c| c.peer == *peer && c.relayed)
    }

    /// Answers `reply` once a direct connection to `peer` exists.
    pub(crate) fn ensure_direct(
        &mut self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        reply: DirectReply,
    ) {
        if self.has_direct(&peer) {
            let _ = reply.send(Ok(()));
            return;
        }
        let first = !self.reach.waiters.contains_key(&peer);
        self.reach.waiters.entry(peer).or_default().push(Waiter {
            deadline: Instant::now() + DIRECT_WAIT,
            reply,
        });
        if !first {
            return;
        }
        self.reach.punch_failed.remove(&peer);
        let known = !addrs.is_empty() || self.discovery.cached(&peer).is_some();
        if self.has_relayed(&peer) {
            // A relayed connection left from an earlier attempt had its
            // hole punch already; only a fresh circuit punches again.
            self.close_relayed(&peer);
            let mut addrs = addrs;
            if let Some(locator) = self.discovery.cached(&peer) {
                addrs.extend(locator.addrs.iter().cloned());
            }
            let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(libp2p::swarm::dial_opts::PeerCondition::Always)
                .build();
            self.dial_tracked(peer, opts);
        } else {
            self.dial(peer, addrs);
        }
        if known {
            // The hints may be stale: look for a fresher record meanwhile.
            self.discovery.start_lookup(&mut self.swarm, peer);
        }
    }

    /// A lookup found `locator`: dial it for whoever waits.
    pub(crate) fn on_locator_found(&mut self, locator: &Locator) {
        for addr in &locator.addrs {
            self.swarm.add_peer_address(locator.peer, addr.clone());
        }
        if self.reach.waiters.contains_key(&locator.peer) && !self.has_direct(&locator.peer) {
            let mut addrs = locator.addrs.clone();
            if self.has_relayed(&locator.peer) {
                // The relayed connection is there; only direct tries help.
                addrs.retain(|a| !is_circuit(a));
            }
            if !addrs.is_empty() {
                let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(locator.peer)
                    .addresses(addrs)
                    .condition(libp2p::swarm::dial_opts::PeerCondition::Always)
                    .build();
                self.dial_tracked(locator.peer, opts);
            }
        }
    }

    /// A lookup found nothing: waiters fail unless a dial is still going.
    pub(crate) fn on_locator_missing(&mut self, peer: PeerId, why: &str) {
        if self.swarm.is_connected(&peer) || self.dialing(&peer) {
            return;
        }
        let why = why.to_string();
        let hint_error = self.dial_errors.get(&peer).cloned();
        self.reach.wake(&peer, || {
            Err(match &hint_error {
                Some(err) => DeliveryError::Unreachable(format!("{err}; and {why}")),
                None => DeliveryError::NotFound(why.clone()),
            })
        });
    }

    fn dialing(&self, peer: &PeerId) -> bool {
        self.dials.values().any(|p| p == peer)
    }

    pub(crate) fn on_connection_established(&mut self, peer: PeerId, relayed: bool) {
        if relayed {
            tracing::info!(%peer, "relayed connection; waiting for the hole punch");
            return;
        }
        self.reach.wake(&peer, || Ok(()));
        // A direct connection makes the relayed ones useless; freeing them
        // keeps the relay's small circuit budget for others.
        self.close_relayed(&peer);
    }

    /// Closes every relayed connection to `peer`. Mail never crosses them,
    /// and DCUtR punches once per relayed connection: one whose punch
    /// failed or was overtaken only holds a circuit of the relay's budget.
    fn close_relayed(&mut self, peer: &PeerId) {
        let relayed: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(_, c)| c.peer == *peer && c.relayed)
            .map(|(id, _)| *id)
            .collect();
        for id in relayed {
            self.swarm.close_connection(id);
        }
    }

    /// Every dial to `peer` failed.
    pub(crate) fn on_dial_failed(&mut self, peer: PeerId) {
        if !self.reach.waiters.contains_key(&peer) || self.swarm.is_connected(&peer) {
            return;
        }
        if self.discovery.looking_up(&peer) || self.dialing(&peer) {
            // The lookup may still bring addresses that work.
            return;
        }
        let text = self
            .dial_errors
            .get(&peer)
            .cloned()
            .unwrap_or_else(|| "no connection could be made".to_string());
        self.reach
            .wake(&peer, || Err(DeliveryError::Unreachable(text.clone())));
    }

    pub(crate) fn on_dcutr(&mut self, event: dcutr::Event) {
        let peer = event.remote_peer_id;
        match event.result {
            Ok(_) => {
                tracing::info!(%peer, "hole punch succeeded: direct connection");
            }
            Err(err) => {
                tracing::info!(%peer, "hole punch failed: {err}");
                let text = err.to_string();
                self.reach.punch_failed.insert(peer, text.clone());
                // Only the side that wants the direct path closes the
                // relayed connection: the other side may still have to
                // answer a request that came over it (with `TryLater`).
                let waiting = self.reach.waiters.contains_key(&peer);
                if waiting && !self.has_direct(&peer) {
                    self.reach
                        .wake(&peer, || Err(DeliveryError::NoDirectPath(text.clone())));
                    self.close_relayed(&peer);
                }
            }
        }
    }

    pub(crate) fn on_autonat(&mut self, event: autonat::v2::client::Event) {
        match event.result {
            Ok(()) => {
                tracing::info!(address = %event.tested_addr, server = %event.server, "AutoNAT: reachable from outside");
                self.reach.nat = NatStatus::Public;
            }
            Err(err) => {
                tracing::info!(address = %event.tested_addr, server = %event.server, "AutoNAT: not reachable from outside: {err}");
                if !self.swarm.external_addresses().any(|a| !is_circuit(a)) {
                    self.reach.nat = NatStatus::Private;
                }
            }
        }
        self.update_dht_mode();
    }

    /// Kademlia serves the DHT only where others can dial us: a public
    /// node, or one with a confirmed external address that is not a relay
    /// circuit. libp2p's automatic mode would also serve behind a NAT as
    /// soon as a relay reservation is confirmed, and peers would then put
    /// an address nobody can dial into their routing tables.
    pub(crate) fn update_dht_mode(&mut self) {
        let reachable =
            self.reach.public || self.swarm.external_addresses().any(|a| !is_circuit(a));
        let mode = if reachable {
            libp2p::kad::Mode::Server
        } else {
            libp2p::kad::Mode::Client
        };
        let kad = &mut self.swarm.behaviour_mut().kad;
        if kad.mode() != mode {
            kad.set_mode(Some(mode));
        }
    }

    pub(crate) fn on_relay_client(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                if !renewal {
                    tracing::info!(relay = %relay_peer_id, "relay reservation accepted");
                }
            }
            relay::client::Event::OutboundCircuitEstablished { relay_peer_id, .. } => {
                tracing::debug!(relay = %relay_peer_id, "opened a relay circuit");
            }
            relay::client::Event::InboundCircuitEstablished { src_peer_id, .. } => {
                tracing::debug!(peer = %src_peer_id, "a peer reached us through a relay circuit");
            }
        }
    }

    /// A peer offers the relay hop protocol: hold a reservation on it if we
    /// may be behind a NAT and have fewer than [`MAX_RELAYS`].
    pub(crate) fn relay_available(&mut self, relay: PeerId, listen_addrs: &[Multiaddr]) {
        if self.reach.public || relay == *self.swarm.local_peer_id() {
            return;
        }
        let dialed = self
            .connections
            .values()
            .find(|c| c.peer == relay && c.dialer && !c.relayed)
            .map(|c| c.remote.clone());
        // A relay's loopback addresses are ours to dial only when we reach
        // the relay over loopback ourselves (nodes on one machine).
        let over_loopback = self
            .connections
            .values()
            .any(|c| c.peer == relay && is_loopback(&c.remote));
        let Some(addr) = dialed.or_else(|| {
            listen_addrs
                .iter()
                .find(|a| {
                    !is_circuit(a) && !is_unspecified(a) && (over_loopback || !is_loopback(a))
                })
                .cloned()
        }) else {
            return;
        };
        let mut addr = addr;
        if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
            addr.pop();
        }
        self.reach.relay_candidates.insert(relay, addr);
        self.reserve_relays();
        self.open_quic_leg(relay, listen_addrs, over_loopback);
    }

    /// Identify on a connection tells us the address our NAT gives that
    /// connection's transport only, and DCUtR offers the peer just those
    /// addresses. A NAT'd node that listens on QUIC but reaches a relay
    /// over TCP alone opens a QUIC connection to it as well, so that its
    /// hole punches can go over QUIC. They then also survive a router that
    /// lost its state: the dead TCP connection's port pair stays taken for
    /// minutes (its FIN is never answered), and a TCP punch from that port
    /// cannot start until it is free.
    fn open_quic_leg(&mut self, relay: PeerId, listen_addrs: &[Multiaddr], over_loopback: bool) {
        let listening_on_quic = self
            .swarm
            .listeners()
            .any(|a| is_quic(a) && !is_loopback(a));
        let have_quic = self
            .connections
            .values()
            .any(|c| c.peer == relay && !c.relayed && is_quic(&c.remote));
        if !listening_on_quic || have_quic || self.dialing(&relay) {
            return;
        }
        let Some(addr) = listen_addrs.iter().find(|a| {
            is_quic(a) && !is_circuit(a) && !is_unspecified(a) && (over_loopback || !is_loopback(a))
        }) else {
            return;
        };
        tracing::debug!(%relay, address = %addr, "opening a QUIC connection to a relay for hole punching");
        let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(relay)
            .addresses(vec![addr.clone()])
            .condition(libp2p::swarm::dial_opts::PeerCondition::Always)
            .build();
        self.dial_tracked(relay, opts);
    }

    fn reserve_relays(&mut self) {
        if self.reach.public || self.reach.nat == NatStatus::Public {
            return;
        }
        let candidates: Vec<(PeerId, Multiaddr)> = self
            .reach
            .relay_candidates
            .iter()
            .filter(|(peer, _)| !self.reach.relays.contains_key(peer))
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        for (relay, addr) in candidates {
            if self.reach.relays.len() >= MAX_RELAYS {
                return;
            }
            let circuit = addr.with(Protocol::P2p(relay)).with(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(listener) => {
                    tracing::debug!(%relay, "asking for a relay reservation");
                    self.reach.relays.insert(
                        relay,
                        RelayEntry {
                            listener,
                            circuit: None,
                        },
                    );
                }
                Err(err) => tracing::warn!(%relay, "cannot listen through a relay: {err}"),
            }
        }
    }

    pub(crate) fn on_new_listen_addr(&mut self, listener: ListenerId, address: Multiaddr) {
        if let Some(entry) = self
            .reach
            .relays
            .values_mut()
            .find(|e| e.listener == listener)
        {
            tracing::info!(%address, "reachable through a relay circuit");
            entry.circuit = Some(address);
        }
        self.discovery.addresses_changed();
    }

    pub(crate) fn on_listener_closed(&mut self, listener: ListenerId) {
        let lost: Vec<PeerId> = self
            .reach
            .relays
            .iter()
            .filter(|(_, e)| e.listener == listener)
            .map(|(p, _)| *p)
            .collect();
        for relay in lost {
            tracing::info!(%relay, "relay reservation ended");
            self.reach.relays.remove(&relay);
            self.discovery.addresses_changed();
        }
    }

    /// The timers: waiters' deadlines, reservations to renew, publication.
    pub(crate) fn on_tick(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .reach
            .waiters
            .iter()
            .filter(|(_, ws)| ws.iter().any(|w| w.deadline <= now))
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            let relayed = self.has_relayed(&peer);
            let punch = self.reach.punch_failed.get(&peer).cloned();
            let dial = self.dial_errors.get(&peer).cloned();
            let Some(waiters) = self.reach.waiters.get_mut(&peer) else {
                continue;
            };
            let (late, keep): (Vec<_>, Vec<_>) = waiters.drain(..).partition(|w| w.deadline <= now);
            *waiters = keep;
            if waiters.is_empty() {
                self.reach.waiters.remove(&peer);
                // Nobody waits for this peer any more: a relayed connection
                // whose punch did not finish in time goes too, so that the
                // next attempt opens a new circuit and punches afresh.
                self.close_relayed(&peer);
            }
            let secs = DIRECT_WAIT.as_secs();
            for waiter in late {
                let error = if relayed || punch.is_some() {
                    DeliveryError::NoDirectPath(
                        punch
                            .clone()
                            .unwrap_or_else(|| format!("only a relayed connection after {secs} s")),
                    )
                } else {
                    DeliveryError::Unreachable(
                        dial.clone()
                            .unwrap_or_else(|| format!("no connection within {secs} s")),
                    )
                };
                let _ = waiter.reply.send(Err(error));
            }
        }
        self.reserve_relays();
        self.discovery_tick(now);
    }

    pub(crate) fn status(&mut self) -> NetworkStatus {
        let kad = &mut self.swarm.behaviour_mut().kad;
        let dht_peers = kad.kbuckets().map(|b| b.num_entries()).sum();
        let dht_server = kad.mode() == libp2p::kad::Mode::Server;
        let mut external: Vec<String> = self
            .swarm
            .external_addresses()
            .map(ToString::to_string)
            .collect();
        external.sort();
        let mut listen: Vec<String> = self
            .swarm
            .listeners()
            .filter(|a| !is_circuit(a))
            .map(ToString::to_string)
            .collect();
        listen.sort();
        NetworkStatus {
            peer_id: self.swarm.local_peer_id().to_string(),
            public: self.reach.public,
            nat: self.reach.nat.clone(),
            listen,
            external,
            relay_reservations: self
                .reach
                .relays
                .values()
                .filter_map(|e| e.circuit.as_ref().map(ToString::to_string))
                .collect(),
            dht_peers,
            dht_server,
            connected_peers: self.swarm.connected_peers().count(),
            locator_published: self.discovery.published.map(|(_, at)| at),
            locator_seq: self.discovery.published.map(|(seq, _)| seq),
            mailboxes: self
                .discovery
                .mailboxes
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

pub(crate) fn is_circuit(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

fn is_quic(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::QuicV1))
}

fn is_unspecified(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}
