//! Finding peers: DHT bootstrap, Identify feeding Kademlia, mDNS on the
//! LAN, and the signed locator records (publishing ours, checking every
//! record stored at us or found by a lookup).
//!
//! [`Discovery`] is plain state; the `impl EventLoop` block below is the
//! part of the event loop that handles these events, so only the loop
//! touches the swarm. Records are specified in `locator.rs` and
//! `docs/protocol.md` ("Locator records").

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::kad::{self, GetRecordOk, QueryId, QueryResult, Quorum, Record};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, Swarm, identify, mdns};
use tokio::sync::oneshot;

use super::error::DeliveryError;
use super::event_loop::EventLoop;
use super::locator::{self, Locator};
use super::swarm::{Behaviour, KAD_PROTOCOL};
use super::{NetworkConfig, bootstrap_peer};

/// A looked-up locator is used without asking the DHT again for this long.
const LOCATOR_FRESH: Duration = Duration::from_secs(60);
/// Locators cached at most (a bound against a flood of lookups).
const MAX_CACHED: usize = 4096;
/// Our record is republished this often even if nothing changed (it is
/// valid for 48 h).
const REPUBLISH: Duration = Duration::from_secs(12 * 3600);
/// After a change of addresses, wait this long for more changes before
/// publishing (addresses often come in bursts at start-up).
const SETTLE: Duration = Duration::from_secs(1);
/// When a publication reached no DHT peer, try again after this long.
const PUBLISH_RETRY: Duration = Duration::from_secs(5);
/// Lifetime written into our record.
const LIFETIME: Duration = Duration::from_secs(48 * 3600);

type LookupReply = oneshot::Sender<Result<Locator, DeliveryError>>;

/// One lookup in flight.
struct Lookup {
    peer: PeerId,
    best: Option<Locator>,
    refused: Option<String>,
}

/// The discovery state of the event loop.
pub(crate) struct Discovery {
    local: PeerId,
    bootstrap: Vec<(PeerId, Multiaddr)>,
    external: Vec<Multiaddr>,
    pub(crate) mailboxes: Vec<PeerId>,
    cache: HashMap<PeerId, (Locator, Instant)>,
    lookups: HashMap<QueryId, Lookup>,
    lookup_of: HashMap<PeerId, QueryId>,
    waiters: HashMap<PeerId, Vec<LookupReply>>,
    publish_due: Option<Instant>,
    publishing: Option<(QueryId, u64)>,
    /// (seq, Unix seconds) of the last record stored at a DHT peer.
    pub(crate) published: Option<(u64, u64)>,
}

impl Discovery {
    pub(crate) fn new(local: PeerId, config: &NetworkConfig) -> Self {
        let bootstrap = config
            .bootstrap
            .iter()
            .filter_map(|addr| bootstrap_peer(addr).map(|peer| (peer, addr.clone())))
            .collect();
        Self {
            local,
            bootstrap,
            external: config.external.clone(),
            mailboxes: config.mailboxes.clone(),
            cache: HashMap::new(),
            lookups: HashMap::new(),
            lookup_of: HashMap::new(),
            waiters: HashMap::new(),
            publish_due: Some(Instant::now() + SETTLE),
            publishing: None,
            published: None,
        }
    }

    /// A locator looked up lately, if any.
    pub(crate) fn cached(&self, peer: &PeerId) -> Option<&Locator> {
        self.cache.get(peer).map(|(locator, _)| locator)
    }

    fn fresh(&self, peer: &PeerId) -> Option<&Locator> {
        self.cache
            .get(peer)
            .filter(|(locator, at)| at.elapsed() < LOCATOR_FRESH && locator.expires > unix_now())
            .map(|(locator, _)| locator)
    }

    /// Whether a lookup for `peer` is in flight.
    pub(crate) fn looking_up(&self, peer: &PeerId) -> bool {
        self.lookup_of.contains_key(peer)
    }

    /// Our addresses (or mailbox peers) changed: publish a new record soon.
    pub(crate) fn addresses_changed(&mut self) {
        let soon = Instant::now() + SETTLE;
        self.publish_due = Some(self.publish_due.map_or(soon, |due| due.min(soon)));
    }

    /// Starts a lookup of `peer`'s record unless one is in flight.
    pub(crate) fn start_lookup(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        if self.lookup_of.contains_key(&peer) {
            return;
        }
        let id = swarm.behaviour_mut().kad.get_record(locator::key(&peer));
        tracing::debug!(%peer, "looking up a locator record");
        self.lookups.insert(
            id,
            Lookup {
                peer,
                best: None,
                refused: None,
            },
        );
        self.lookup_of.insert(peer, id);
    }

    /// Answers every waiting lookup with `error()` (at shutdown).
    pub(crate) fn fail_all(self, error: impl Fn() -> DeliveryError) {
        for (_, waiters) in self.waiters {
            for waiter in waiters {
                let _ = waiter.send(Err(error()));
            }
        }
    }
}

impl EventLoop {
    /// Dials the bootstrap nodes and announces configured external
    /// addresses. Called once when the loop starts.
    pub(crate) fn start_discovery(&mut self) {
        for addr in self.discovery.external.clone() {
            self.swarm.add_external_address(addr);
        }
        for (peer, addr) in self.discovery.bootstrap.clone() {
            let mut dial_addr = addr.clone();
            if matches!(dial_addr.iter().last(), Some(Protocol::P2p(_))) {
                dial_addr.pop();
            }
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, dial_addr.clone());
            if let Err(err) = self.swarm.dial(addr.clone()) {
                tracing::warn!(%addr, "cannot dial a bootstrap node: {err}");
            }
        }
        if !self.discovery.bootstrap.is_empty() {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
    }

    /// Looks up `peer`'s locator for a caller (cached answers are reused).
    pub(crate) fn lookup(&mut self, peer: PeerId, reply: LookupReply) {
        if let Some(locator) = self.discovery.fresh(&peer) {
            let _ = reply.send(Ok(locator.clone()));
            return;
        }
        self.discovery.waiters.entry(peer).or_default().push(reply);
        self.discovery.start_lookup(&mut self.swarm, peer);
    }

    pub(crate) fn set_mailboxes(&mut self, peers: Vec<PeerId>) {
        self.discovery.mailboxes = peers;
        self.discovery.addresses_changed();
    }

    /// The timers of discovery: publication of our record.
    pub(crate) fn discovery_tick(&mut self, now: Instant) {
        if self.discovery.publishing.is_none()
            && self.discovery.publish_due.is_some_and(|due| due <= now)
        {
            self.publish_locator();
        }
    }

    /// The addresses our record announces: configured and confirmed
    /// external addresses, relay circuit addresses, and the bound listen
    /// addresses (loopback ones only when there is nothing else, so that
    /// nodes on one machine still find each other).
    fn announced_addrs(&self) -> Vec<Multiaddr> {
        let mut addrs: Vec<Multiaddr> = self.swarm.external_addresses().cloned().collect();
        let listen: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
        let (circuits, direct): (Vec<_>, Vec<_>) = listen
            .into_iter()
            .partition(|a| a.iter().any(|p| matches!(p, Protocol::P2pCircuit)));
        let (loopback, other): (Vec<_>, Vec<_>) = direct.into_iter().partition(is_loopback);
        addrs.extend(other);
        addrs.extend(circuits);
        if addrs.is_empty() {
            addrs.extend(loopback);
        }
        let mut seen = std::collections::HashSet::new();
        addrs.retain(|a| seen.insert(a.clone()));
        addrs.truncate(locator::MAX_ADDRS);
        addrs
    }

    fn publish_locator(&mut self) {
        let now = unix_now();
        let seq = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let record = Locator {
            peer: self.discovery.local,
            addrs: self.announced_addrs(),
            mailboxes: self.discovery.mailboxes.clone(),
            seq,
            expires: now + LIFETIME.as_secs(),
        };
        let value = match record.sign(&self.keypair) {
            Ok(value) => value,
            Err(err) => {
                tracing::error!("cannot sign our locator record: {err}");
                self.discovery.publish_due = Some(Instant::now() + PUBLISH_RETRY);
                return;
            }
        };
        let record = Record {
            key: locator::key(&self.discovery.local),
            value,
            publisher: None,
            expires: Some(Instant::now() + LIFETIME),
        };
        match self
            .swarm
            .behaviour_mut()
            .kad
            .put_record(record, Quorum::One)
        {
            Ok(id) => {
                tracing::debug!(seq, "publishing our locator record");
                self.discovery.publishing = Some((id, seq));
                self.discovery.publish_due = None;
            }
            Err(err) => {
                tracing::warn!("cannot store our locator record: {err}");
                self.discovery.publish_due = Some(Instant::now() + PUBLISH_RETRY);
            }
        }
    }

    pub(crate) fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        tracing::debug!(peer = %peer_id, agent = %info.agent_version, "identified a peer");
        if info.protocols.contains(&KAD_PROTOCOL) {
            for addr in &info.listen_addrs {
                if is_dialable(addr) {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, addr.clone());
                }
            }
        }
        let hop = info
            .protocols
            .iter()
            .any(|p| p.as_ref() == "/libp2p/circuit/relay/0.2.0/hop");
        if hop {
            self.relay_available(peer_id, &info.listen_addrs);
        }
    }

    pub(crate) fn on_mdns(&mut self, event: mdns::Event) {
        let mdns::Event::Discovered(found) = event else {
            return;
        };
        let mut peers: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
        for (peer, addr) in found {
            if peer != self.discovery.local {
                peers.entry(peer).or_default().push(addr);
            }
        }
        for (peer, addrs) in peers {
            tracing::info!(%peer, "found a peer on the local network (mDNS)");
            for addr in &addrs {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, addr.clone());
            }
            // Connecting tells the outbox that the peer is here, so mail
            // waiting for it goes now.
            self.dial(peer, addrs);
        }
    }

    pub(crate) fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => self.on_offered_record(source, record),
            kad::Event::OutboundQueryProgressed {
                id,
                result: QueryResult::GetRecord(result),
                step,
                ..
            } => self.on_lookup_progress(id, result, step.last),
            kad::Event::OutboundQueryProgressed {
                id,
                result: QueryResult::PutRecord(result),
                ..
            } => {
                if let Some((publishing, seq)) = self.discovery.publishing
                    && publishing == id
                {
                    self.discovery.publishing = None;
                    match result {
                        Ok(_) => {
                            tracing::info!(seq, "published our locator record");
                            self.discovery.published = Some((seq, unix_now()));
                            let next = Instant::now() + REPUBLISH;
                            self.discovery.publish_due =
                                Some(self.discovery.publish_due.map_or(next, |d| d.min(next)));
                        }
                        Err(err) => {
                            tracing::debug!("our locator record reached no DHT peer yet: {err}");
                            let retry = Instant::now() + PUBLISH_RETRY;
                            self.discovery.publish_due =
                                Some(self.discovery.publish_due.map_or(retry, |d| d.min(retry)));
                        }
                    }
                }
            }
            kad::Event::OutboundQueryProgressed {
                result: QueryResult::Bootstrap(Err(err)),
                ..
            } => tracing::debug!("DHT bootstrap: {err}"),
            kad::Event::ModeChanged { new_mode } => {
                tracing::info!(mode = %new_mode, "DHT mode changed");
            }
            kad::Event::RoutingUpdated {
                peer,
                is_new_peer: true,
                ..
            } => {
                tracing::debug!(%peer, "a DHT peer joined the routing table");
                // A publication that found nobody can go now.
                if self.discovery.published.is_none() && self.discovery.publishing.is_none() {
                    self.discovery.addresses_changed();
                }
            }
            _ => {}
        }
    }

    /// A peer asks us to store a record: only a valid locator, and never
    /// an older one over a newer.
    fn on_offered_record(&mut self, source: PeerId, record: Record) {
        let now = unix_now();
        let offered = match Locator::verify_record(&record.key, &record.value, now) {
            Ok(locator) => locator,
            Err(err) => {
                tracing::info!(peer = %source, "refused a DHT record: {err}");
                return;
            }
        };
        let kad = &mut self.swarm.behaviour_mut().kad;
        if let Some(stored) = kad::store::RecordStore::get(kad.store_mut(), &record.key)
            && let Ok(stored) = Locator::verify_record(&record.key, &stored.value, now)
            && stored.seq > offered.seq
        {
            tracing::info!(peer = %source, owner = %offered.peer, "refused a DHT record older than the one stored");
            return;
        }
        let lifetime = Duration::from_secs(offered.expires.saturating_sub(now)).min(LIFETIME);
        let record = Record {
            expires: Some(Instant::now() + lifetime),
            ..record
        };
        if let Err(err) = kad::store::RecordStore::put(kad.store_mut(), record) {
            tracing::info!(peer = %source, "cannot store a DHT record: {err}");
        }
    }

    fn on_lookup_progress(
        &mut self,
        id: QueryId,
        result: Result<GetRecordOk, kad::GetRecordError>,
        last: bool,
    ) {
        let Some(lookup) = self.discovery.lookups.get_mut(&id) else {
            return;
        };
        let mut done = last;
        if let Ok(GetRecordOk::FoundRecord(found)) = result {
            match Locator::verify_record(&found.record.key, &found.record.value, unix_now()) {
                Ok(locator) if locator.peer == lookup.peer => {
                    if lookup.best.as_ref().is_none_or(|b| b.seq < locator.seq) {
                        lookup.best = Some(locator);
                    }
                    // One valid record is enough to dial; a newer one found
                    // later would be found by the next lookup.
                    done = true;
                }
                Ok(_) => {}
                Err(err) => {
                    let from = found
                        .peer
                        .map_or("our store".to_string(), |p| p.to_string());
                    tracing::info!(peer = %lookup.peer, %from, "refused a locator record found in the DHT: {err}");
                    lookup.refused = Some(err.to_string());
                }
            }
        }
        if !done {
            return;
        }
        if let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
            query.finish();
        }
        let Some(lookup) = self.discovery.lookups.remove(&id) else {
            return;
        };
        self.discovery.lookup_of.remove(&lookup.peer);
        let waiters = self
            .discovery
            .waiters
            .remove(&lookup.peer)
            .unwrap_or_default();
        match lookup.best {
            Some(locator) => {
                tracing::debug!(peer = %lookup.peer, addrs = locator.addrs.len(), "found a locator record");
                if self.discovery.cache.len() >= MAX_CACHED {
                    self.discovery.cache.clear();
                }
                self.discovery
                    .cache
                    .insert(lookup.peer, (locator.clone(), Instant::now()));
                for waiter in waiters {
                    let _ = waiter.send(Ok(locator.clone()));
                }
                self.on_locator_found(&locator);
            }
            None => {
                let why = lookup
                    .refused
                    .unwrap_or_else(|| "no DHT peer holds its record".to_string());
                for waiter in waiters {
                    let _ = waiter.send(Err(DeliveryError::NotFound(why.clone())));
                }
                self.on_locator_missing(lookup.peer, &why);
            }
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

/// An address worth putting into the routing table: a concrete IP and no
/// relay circuit.
fn is_dialable(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        Protocol::P2pCircuit => true,
        _ => false,
    })
}
