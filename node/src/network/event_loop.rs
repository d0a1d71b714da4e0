//! The event loop: the one task that owns the `Swarm`.
//!
//! It `select!`s over swarm events, handle commands and the verdicts of the
//! inbound handler, and keeps the maps that correlate asynchronous answers
//! with their requests: outbound request id → the caller's oneshot, and
//! inbound request → the response channel. Admission checks (rate limit,
//! size) answer at once here; everything slower happens in other tasks, so
//! nothing in this loop waits on disk, crypto or a full channel.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::core::transport::ListenerId;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::batch::{BatchResponse, Batches};
use super::codec::WireRequest;
use super::discovery::Discovery;
use super::error::{DeliveryError, NetworkError, dial_error_text};
use super::rate::RateLimiter;
use super::reach::Reach;
use super::swarm::{Behaviour, BehaviourEvent};
use super::{
    Command, DeliveryRequest, DeliveryResponse, InboundDelivery, InboundMailbox, NetworkConfig,
};
use crate::mailbox::{MailboxResponse, MailboxWire, oversized_response};

/// How often the loop wakes for its timers (waiters' deadlines, the
/// locator's publication, relay reservations).
const TICK: Duration = Duration::from_millis(500);

/// Longest `reason` sent in a response; keeps every answer far below the
/// 64 KiB response cap whatever the inbound handler writes.
pub(crate) const MAX_REASON: usize = 1024;

/// Remembered dial failures (for error messages) before the map is reset.
const MAX_DIAL_ERRORS: usize = 1024;

/// An inbound request's answer, once the inbound handler has given it.
type PendingReply =
    BoxFuture<'static, (ResponseChannel<DeliveryResponse>, PeerId, DeliveryResponse)>;

/// An inbound batch's answers, once the inbound handler has given them all.
type PendingBatchReply =
    BoxFuture<'static, (ResponseChannel<BatchResponse>, PeerId, BatchResponse)>;

/// An inbound mailbox request's answer, once the daemon has given it.
type PendingMailboxReply =
    BoxFuture<'static, (ResponseChannel<MailboxResponse>, PeerId, MailboxResponse)>;

/// The caller waiting for a mailbox request's answer.
type MailboxReply = oneshot::Sender<Result<MailboxResponse, DeliveryError>>;

/// The caller waiting for an outbound delivery's answer.
pub(crate) type DeliveryReply = oneshot::Sender<Result<DeliveryResponse, DeliveryError>>;

/// One configured listen address and what became of it.
struct Listener {
    configured: Multiaddr,
    bound: Vec<Multiaddr>,
    ever_bound: bool,
    failure: Option<String>,
}

/// One established connection.
pub(crate) struct Connection {
    pub(crate) peer: PeerId,
    /// Through a relay circuit: used for hole punching only, never mail.
    pub(crate) relayed: bool,
    pub(crate) remote: Multiaddr,
    /// We dialed it (else the peer did).
    pub(crate) dialer: bool,
}

/// The state owned by the network task.
pub(crate) struct EventLoop {
    /// Tells subscribers when a peer becomes connected.
    connected: broadcast::Sender<PeerId>,
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) connections: HashMap<ConnectionId, Connection>,
    /// The DHT side: bootstrap, identify → Kademlia, mDNS, locator records.
    pub(crate) discovery: Discovery,
    /// Getting a direct connection: waiters, relays, hole punching, AutoNAT.
    pub(crate) reach: Reach,
    pub(crate) keypair: libp2p::identity::Keypair,
    contacts: HashSet<PeerId>,
    stranger_peers: RateLimiter,
    stranger_ips: RateLimiter<IpAddr>,
    commands: mpsc::Receiver<Command>,
    inbound: mpsc::Sender<InboundDelivery>,
    mailbox_inbound: mpsc::Sender<InboundMailbox>,
    mailbox_outbound: HashMap<OutboundRequestId, MailboxReply>,
    mailbox_replies: FuturesUnordered<PendingMailboxReply>,
    mailbox_limit: u64,
    limiter: RateLimiter,
    pub(crate) max_message_size: usize,
    pub(crate) request_timeout: Duration,
    outbound: HashMap<OutboundRequestId, (PeerId, DeliveryReply)>,
    replies: FuturesUnordered<PendingReply>,
    /// `/mailnode/deliver/2`: outbound batches per peer (`batch.rs`).
    pub(crate) batches: Batches,
    pub(crate) batch_replies: FuturesUnordered<PendingBatchReply>,
    listeners: HashMap<ListenerId, Listener>,
    listen_waiters: Vec<oneshot::Sender<Result<Vec<Multiaddr>, NetworkError>>>,
    pub(crate) dial_errors: HashMap<PeerId, String>,
    /// Our own dials still in progress.
    pub(crate) dials: HashMap<ConnectionId, PeerId>,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        inbound: mpsc::Sender<InboundDelivery>,
        mailbox_inbound: mpsc::Sender<InboundMailbox>,
        connected: broadcast::Sender<PeerId>,
        listeners: Vec<(ListenerId, Multiaddr)>,
        config: &NetworkConfig,
    ) -> Self {
        let listeners = listeners
            .into_iter()
            .map(|(id, configured)| {
                let listener = Listener {
                    configured,
                    bound: Vec::new(),
                    ever_bound: false,
                    failure: None,
                };
                (id, listener)
            })
            .collect();
        let local = *swarm.local_peer_id();
        Self {
            swarm,
            connections: HashMap::new(),
            discovery: Discovery::new(local, config),
            reach: Reach::new(config),
            keypair: config.keypair.clone(),
            contacts: HashSet::new(),
            stranger_peers: RateLimiter::new(config.stranger_limits.per_peer),
            stranger_ips: RateLimiter::new(config.stranger_limits.per_ip),
            commands,
            inbound,
            mailbox_inbound,
            mailbox_outbound: HashMap::new(),
            mailbox_replies: FuturesUnordered::new(),
            mailbox_limit: config.mailbox_request_limit,
            connected,
            limiter: RateLimiter::new(config.rate_limit),
            max_message_size: config.max_message_size,
            request_timeout: config.request_timeout,
            outbound: HashMap::new(),
            replies: FuturesUnordered::new(),
            batches: Batches::new(config.deliver_v2),
            batch_replies: FuturesUnordered::new(),
            listeners,
            listen_waiters: Vec::new(),
            dial_errors: HashMap::new(),
            dials: HashMap::new(),
        }
    }

    /// Runs until a `Shutdown` command or until every handle is dropped.
    pub(crate) async fn run(mut self) {
        self.start_discovery();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown_reply = loop {
            // Deliveries queued for batches go out once no further command
            // waits: whatever arrived together travels together, and
            // nothing waits for a timer.
            if self.batches.has_queued() && self.commands.is_empty() {
                self.flush_batches();
            }
            tokio::select! {
                _ = tick.tick() => self.on_tick(),
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { reply }) => break Some(reply),
                    Some(command) => self.on_command(command),
                    None => break None,
                },
                Some((channel, peer, response)) = self.replies.next(), if !self.replies.is_empty() => {
                    self.respond(channel, peer, response);
                }
                Some((channel, peer, response)) = self.batch_replies.next(), if !self.batch_replies.is_empty() => {
                    self.respond_batch(channel, peer, response);
                }
                Some((channel, peer, response)) = self.mailbox_replies.next(), if !self.mailbox_replies.is_empty() => {
                    self.respond_mailbox(channel, peer, response);
                }
            }
        };
        self.stop();
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    /// Fails everything pending and drops the swarm, which closes the
    /// listeners and connections, and the inbound sender, which ends the
    /// inbound handler's loop.
    fn stop(self) {
        let Self {
            swarm,
            commands,
            inbound,
            outbound,
            mailbox_outbound,
            listen_waiters,
            reach,
            discovery,
            batches,
            ..
        } = self;
        tracing::info!("stopping the peer-to-peer network");
        drop(swarm);
        reach.fail_all(|| DeliveryError::Shutdown);
        discovery.fail_all(|| DeliveryError::Shutdown);
        drop(inbound);
        batches.fail_all();
        for (_, (_, reply)) in outbound {
            let _ = reply.send(Err(DeliveryError::Shutdown));
        }
        for (_, reply) in mailbox_outbound {
            let _ = reply.send(Err(DeliveryError::Shutdown));
        }
        for waiter in listen_waiters {
            let _ = waiter.send(Err(NetworkError::Stopped));
        }
        // Queued commands are dropped with their oneshots; their callers see
        // `Shutdown` / `Stopped`.
        drop(commands);
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::ListenAddrs { reply } => match self.listen_status() {
                Some(result) => {
                    let _ = reply.send(result);
                }
                None => self.listen_waiters.push(reply),
            },
            Command::Dial { peer, addrs } => self.dial(peer, addrs),
            Command::EnsureDirect { peer, addrs, reply } => self.ensure_direct(peer, addrs, reply),
            Command::Lookup { peer, reply } => self.lookup(peer, reply),
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::SetContacts { peers } => self.contacts = peers.into_iter().collect(),
            Command::SetMailboxes { peers } => self.set_mailboxes(peers),
            Command::Mailbox {
                peer,
                request,
                reply,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .mailbox
                    .send_request(&peer, MailboxWire::Request(request));
                self.mailbox_outbound.insert(id, reply);
            }
            Command::Deliver {
                peer,
                addrs,
                request,
                reply,
            } => {
                for addr in addrs {
                    self.swarm.add_peer_address(peer, addr);
                }
                self.queue_delivery(peer, request, reply);
            }
            #[cfg(test)]
            Command::Connections { reply } => {
                let count = self
                    .swarm
                    .network_info()
                    .connection_counters()
                    .num_established();
                let _ = reply.send(count);
            }
            // Handled in `run`, which stops the loop.
            Command::Shutdown { reply } => {
                let _ = reply.send(());
            }
        }
    }

    /// Starts one outbound request. request-response dials the peer when it
    /// is not connected (with the addresses added here) and otherwise opens a
    /// new stream on the existing connection, so concurrent deliveries to
    /// one peer are pipelined.
    pub(crate) fn dial(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if self.swarm.is_connected(&peer) {
            return;
        }
        for addr in &addrs {
            self.swarm.add_peer_address(peer, addr.clone());
        }
        let mut addrs = addrs;
        if let Some(locator) = self.discovery.cached(&peer) {
            addrs.extend(locator.addrs.iter().cloned());
        }
        if addrs.is_empty() {
            // Nothing to dial yet: find the peer's locator first; the
            // lookup dials when it finds addresses.
            self.discovery.start_lookup(&mut self.swarm, peer);
            return;
        }
        let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
            .addresses(addrs)
            .build();
        self.dial_tracked(peer, opts);
    }

    /// Dials and remembers the dial until it ends.
    pub(crate) fn dial_tracked(&mut self, peer: PeerId, opts: libp2p::swarm::dial_opts::DialOpts) {
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.dials.insert(id, peer);
            }
            Err(err) => tracing::debug!(%peer, "cannot dial a peer: {err}"),
        }
    }

    /// Sends one delivery over `/mailnode/deliver/1`.
    pub(crate) fn send_single(
        &mut self,
        peer: PeerId,
        request: DeliveryRequest,
        reply: DeliveryReply,
    ) {
        let id = self
            .swarm
            .behaviour_mut()
            .deliver
            .send_request(&peer, WireRequest::Delivery(request));
        self.outbound.insert(id, (peer, reply));
    }

    /// `None` while some listener has neither bound nor failed.
    fn listen_status(&self) -> Option<Result<Vec<Multiaddr>, NetworkError>> {
        if let Some(failed) = self.listeners.values().find(|l| l.failure.is_some()) {
            return Some(Err(NetworkError::Listen {
                addr: failed.configured.clone(),
                reason: failed.failure.clone().unwrap_or_default(),
            }));
        }
        if self.listeners.values().all(|l| l.ever_bound) {
            let mut addrs: Vec<Multiaddr> = self
                .listeners
                .values()
                .flat_map(|l| l.bound.iter().cloned())
                .collect();
            addrs.sort();
            addrs.dedup();
            return Some(Ok(addrs));
        }
        None
    }

    fn wake_listen_waiters(&mut self) {
        if self.listen_waiters.is_empty() {
            return;
        }
        if let Some(result) = self.listen_status() {
            for waiter in self.listen_waiters.drain(..) {
                let answer = match &result {
                    Ok(addrs) => Ok(addrs.clone()),
                    Err(NetworkError::Listen { addr, reason }) => Err(NetworkError::Listen {
                        addr: addr.clone(),
                        reason: reason.clone(),
                    }),
                    Err(_) => Err(NetworkError::Stopped),
                };
                let _ = waiter.send(answer);
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Deliver(event)) => self.on_delivery_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Mailbox(event)) => self.on_mailbox_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Deliver2(event)) => self.on_batch_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => {
                if let libp2p::identify::Event::Received { peer_id, info, .. } = &event {
                    self.learn_protocols(*peer_id, &info.protocols);
                }
                self.on_identify(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad(event),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(event)) => self.on_mdns(event),
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(event)) => {
                self.on_relay_client(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => self.on_dcutr(event),
            SwarmEvent::Behaviour(BehaviourEvent::AutonatClient(event)) => self.on_autonat(event),
            SwarmEvent::Behaviour(BehaviourEvent::RelayServer(event)) => {
                tracing::debug!("relay: {event:?}");
            }
            SwarmEvent::Behaviour(BehaviourEvent::AutonatServer(event)) => {
                tracing::debug!(client = %event.client, tested = %event.tested_addr, ok = event.result.is_ok(), "answered an AutoNAT probe");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(libp2p::ping::Event {
                result: Err(libp2p::ping::Failure::Unsupported),
                ..
            })) => {
                // A peer may speak only some of our protocols (a DHT-only
                // client, another implementation): its connection is alive.
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(libp2p::ping::Event {
                peer,
                connection,
                result: Err(err),
            })) => {
                // A connection that no longer answers pings is dead (a NAT
                // forgot its mapping, the peer's address changed): close
                // it, so that the next delivery dials again instead of
                // waiting for timeouts on it.
                tracing::info!(%peer, "closing a connection that stopped answering pings: {err}");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(_)) => {}
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                tracing::info!(%address, "listening");
                if let Some(listener) = self.listeners.get_mut(&listener_id) {
                    listener.ever_bound = true;
                    listener.bound.push(address.clone());
                }
                self.on_new_listen_addr(listener_id, address);
                self.wake_listen_waiters();
            }
            SwarmEvent::ExpiredListenAddr {
                listener_id,
                address,
            } => {
                tracing::info!(%address, "no longer listening");
                if let Some(listener) = self.listeners.get_mut(&listener_id) {
                    listener.bound.retain(|a| *a != address);
                }
                self.discovery.addresses_changed();
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                tracing::info!(%address, "external address confirmed");
                self.update_dht_mode();
                self.discovery.addresses_changed();
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                tracing::info!(%address, "external address expired");
                self.update_dht_mode();
                self.discovery.addresses_changed();
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                self.on_listener_closed(listener_id);
                if let Some(listener) = self.listeners.get_mut(&listener_id) {
                    listener.bound.clear();
                    if let Err(err) = reason {
                        tracing::error!(address = %listener.configured, "a listener failed: {err}");
                        if !listener.ever_bound {
                            listener.failure = Some(err.to_string());
                        }
                    }
                }
                self.wake_listen_waiters();
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!("a listener reported an error: {error}");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.dials.remove(&connection_id);
                let relayed = endpoint.is_relayed();
                let remote = endpoint.get_remote_address().clone();
                tracing::debug!(peer = %peer_id, address = %remote, relayed, "connected");
                self.connections.insert(
                    connection_id,
                    Connection {
                        peer: peer_id,
                        relayed,
                        remote,
                        dialer: endpoint.is_dialer(),
                    },
                );
                if !relayed {
                    self.dial_errors.remove(&peer_id);
                }
                self.on_connection_established(peer_id, relayed);
                if num_established.get() == 1 {
                    // Nobody listening is fine: no receiver, no interest.
                    let _ = self.connected.send(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                cause,
                ..
            } => {
                self.connections.remove(&connection_id);
                match cause {
                    Some(cause) => tracing::debug!(peer = %peer_id, "connection closed: {cause}"),
                    None => tracing::debug!(peer = %peer_id, "connection closed"),
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                connection_id,
                error,
            } => {
                self.dials.remove(&connection_id);
                let text = dial_error_text(&error);
                tracing::debug!(%peer, "cannot connect: {text}");
                if self.dial_errors.len() >= MAX_DIAL_ERRORS {
                    self.dial_errors.clear();
                }
                self.dial_errors.insert(peer, text);
                self.on_dial_failed(peer);
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                tracing::debug!(remote = %send_back_addr, "an incoming connection failed: {error}");
            }
            _ => {}
        }
    }

    fn on_delivery_event(&mut self, event: request_response::Event<WireRequest, DeliveryResponse>) {
        match event {
            request_response::Event::Message {
                peer,
                connection_id,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
            } => self.on_inbound(peer, connection_id, request, channel),
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((_, reply)) = self.outbound.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let error = self.outbound_failed(peer, error);
                if let Some((_, reply)) = self.outbound.remove(&request_id) {
                    let _ = reply.send(Err(error));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "an incoming delivery failed: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// What a failed outbound delivery (or batch) means for its callers.
    /// A timeout closes the peer's connections: the connection carried a
    /// request and brought no answer in time, so it is treated as dead and
    /// the retry dials afresh.
    pub(crate) fn outbound_failed(
        &mut self,
        peer: PeerId,
        error: OutboundFailure,
    ) -> DeliveryError {
        tracing::debug!(%peer, "a delivery attempt failed: {error}");
        if matches!(error, OutboundFailure::Timeout) && self.swarm.disconnect_peer_id(peer).is_ok()
        {
            tracing::info!(%peer, "closed the connections to a peer that did not answer in time");
        }
        self.delivery_error(peer, error)
    }

    /// Admission of one inbound request: the rate limit, then the size cap,
    /// then hand-off to the inbound handler. The `peer` is the one the
    /// connection's security handshake authenticated.
    fn on_inbound(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        request: WireRequest,
        channel: ResponseChannel<DeliveryResponse>,
    ) {
        if let Err(response) = self.admit(peer, connection, Instant::now()) {
            self.respond(channel, peer, response);
            return;
        }
        let request = match request {
            WireRequest::Delivery(request) => request,
            WireRequest::Oversized { declared } => {
                tracing::info!(%peer, declared, "refused an oversized delivery");
                let response = self.oversized(declared);
                self.respond(channel, peer, response);
                return;
            }
        };
        match self.hand_off(peer, request) {
            Ok(verdict) => {
                let timeout = self.request_timeout;
                self.replies.push(Box::pin(async move {
                    (channel, peer, await_verdict(verdict, timeout).await)
                }));
            }
            Err(response) => self.respond(channel, peer, response),
        }
    }

    /// The refusal of a message of `size` bytes, over this node's limit.
    pub(crate) fn oversized(&self, size: u64) -> DeliveryResponse {
        DeliveryResponse::Rejected {
            reason: format!(
                "message of {size} bytes exceeds this node's limit of {} bytes",
                self.max_message_size
            ),
        }
    }

    /// The per-message checks before a delivery is read further: not over a
    /// relay circuit, the stranger limits, the per-peer rate limit. Every
    /// message of a `/2` batch passes them one by one.
    pub(crate) fn admit(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        now: Instant,
    ) -> Result<(), DeliveryResponse> {
        let (relayed, ip) = match self.connections.get(&connection) {
            Some(c) => (c.relayed, ip_of(&c.remote)),
            None => (false, None),
        };
        if relayed {
            // Circuits exist to coordinate the hole punch; their limits are
            // small on purpose. Mail waits for the direct connection.
            tracing::debug!(%peer, "refused a delivery over a relay circuit");
            return Err(DeliveryResponse::TryLater {
                reason: "mail is not accepted over a relay circuit; connect directly".to_string(),
                retry_after_secs: 5,
            });
        }
        if !self.contacts.contains(&peer) {
            let peer_ok = self.stranger_peers.allow(peer, now);
            let ip_ok = ip.is_none_or(|ip| self.stranger_ips.allow(ip, now));
            if !(peer_ok && ip_ok) {
                tracing::info!(%peer, ?ip, "rate limit for senders who are not contacts: asked to retry later");
                return Err(DeliveryResponse::TryLater {
                    reason: "rate limit for senders who are not contacts of the recipient"
                        .to_string(),
                    retry_after_secs: 10,
                });
            }
        }
        if !self.limiter.allow(peer, now) {
            tracing::debug!(%peer, "rate limit: asked a peer to retry later");
            return Err(DeliveryResponse::TryLater {
                reason: "rate limit".to_string(),
                retry_after_secs: 1,
            });
        }
        Ok(())
    }

    /// Hands one admitted delivery to the inbound handler; its verdict
    /// arrives on the returned receiver. A full or closed channel is
    /// answered at once.
    pub(crate) fn hand_off(
        &mut self,
        peer: PeerId,
        request: DeliveryRequest,
    ) -> Result<oneshot::Receiver<DeliveryResponse>, DeliveryResponse> {
        let (reply, verdict) = oneshot::channel();
        let delivery = InboundDelivery {
            peer,
            request,
            reply,
        };
        match self.inbound.try_send(delivery) {
            Ok(()) => Ok(verdict),
            Err(TrySendError::Full(_)) => {
                tracing::warn!(%peer, "too many deliveries waiting; asked a peer to retry later");
                Err(DeliveryResponse::TryLater {
                    reason: "the recipient is busy".to_string(),
                    retry_after_secs: 5,
                })
            }
            Err(TrySendError::Closed(_)) => Err(DeliveryResponse::TryLater {
                reason: "the recipient is not accepting messages right now".to_string(),
                retry_after_secs: 30,
            }),
        }
    }

    fn on_mailbox_event(&mut self, event: request_response::Event<MailboxWire, MailboxResponse>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_mailbox_request(peer, request, channel),
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.mailbox_outbound.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, "a mailbox request failed: {error}");
                if let Some(reply) = self.mailbox_outbound.remove(&request_id) {
                    let _ = reply.send(Err(self.delivery_error(peer, error)));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "an incoming mailbox request failed: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Admission of a mailbox request: the per-peer rate limit and the size
    /// cap, then hand-off to the daemon (the mailbox service, receipts).
    fn on_mailbox_request(
        &mut self,
        peer: PeerId,
        request: MailboxWire,
        channel: ResponseChannel<MailboxResponse>,
    ) {
        if !self.limiter.allow(peer, Instant::now()) {
            let response = MailboxResponse::TryLater {
                reason: "rate limit".to_string(),
                retry_after_secs: 1,
            };
            self.respond_mailbox(channel, peer, response);
            return;
        }
        let request = match request {
            MailboxWire::Request(request) => request,
            MailboxWire::Oversized { declared } => {
                tracing::info!(%peer, declared, "refused an oversized mailbox request");
                let response = oversized_response(declared, self.mailbox_limit);
                self.respond_mailbox(channel, peer, response);
                return;
            }
        };
        let (reply, verdict) = oneshot::channel();
        let item = InboundMailbox {
            peer,
            request,
            reply,
        };
        match self.mailbox_inbound.try_send(item) {
            Ok(()) => {
                let timeout = self.request_timeout;
                self.mailbox_replies.push(Box::pin(async move {
                    let response = match tokio::time::timeout(timeout, verdict).await {
                        Ok(Ok(response)) => response,
                        _ => MailboxResponse::TryLater {
                            reason: "the node could not process the request in time".to_string(),
                            retry_after_secs: 10,
                        },
                    };
                    (channel, peer, response)
                }));
            }
            Err(_) => {
                let response = MailboxResponse::TryLater {
                    reason: "the node is busy".to_string(),
                    retry_after_secs: 5,
                };
                self.respond_mailbox(channel, peer, response);
            }
        }
    }

    fn respond_mailbox(
        &mut self,
        channel: ResponseChannel<MailboxResponse>,
        peer: PeerId,
        response: MailboxResponse,
    ) {
        if self
            .swarm
            .behaviour_mut()
            .mailbox
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!(%peer, "the requester left before the mailbox answer was sent");
        }
    }

    fn respond(
        &mut self,
        channel: ResponseChannel<DeliveryResponse>,
        peer: PeerId,
        response: DeliveryResponse,
    ) {
        let response = clamp_reason(response);
        if self
            .swarm
            .behaviour_mut()
            .deliver
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!(%peer, "the requester left before the answer was sent");
        }
    }

    fn delivery_error(&self, peer: PeerId, failure: OutboundFailure) -> DeliveryError {
        match failure {
            OutboundFailure::DialFailure => DeliveryError::Unreachable(
                self.dial_errors
                    .get(&peer)
                    .cloned()
                    .unwrap_or_else(|| "no connection could be made".to_string()),
            ),
            OutboundFailure::Timeout => DeliveryError::Timeout,
            OutboundFailure::ConnectionClosed => DeliveryError::ConnectionClosed,
            OutboundFailure::UnsupportedProtocols => DeliveryError::Protocol(format!(
                "the node {peer} does not speak {}",
                super::codec::PROTOCOL
            )),
            OutboundFailure::Io(err) => match err.kind() {
                std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe => DeliveryError::ConnectionClosed,
                _ => DeliveryError::Protocol(err.to_string()),
            },
        }
    }
}

/// The IP address of a connection's remote address, if it has one.
pub(crate) fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        libp2p::multiaddr::Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// The inbound handler's verdict on one delivery, or `TryLater` when it
/// dropped the request or took longer than `timeout`.
pub(crate) async fn await_verdict(
    verdict: oneshot::Receiver<DeliveryResponse>,
    timeout: Duration,
) -> DeliveryResponse {
    match tokio::time::timeout(timeout, verdict).await {
        Ok(Ok(response)) => response,
        Ok(Err(_dropped)) => DeliveryResponse::TryLater {
            reason: "the recipient could not process the message".to_string(),
            retry_after_secs: 5,
        },
        // The requester has given up by now too; answer anyway in case its
        // clock is slower.
        Err(_elapsed) => DeliveryResponse::TryLater {
            reason: "the recipient took too long to process the message".to_string(),
            retry_after_secs: 30,
        },
    }
}

/// Shortens an over-long `reason` (at a character boundary).
pub(crate) fn clamp_reason(response: DeliveryResponse) -> DeliveryResponse {
    fn clamp(mut reason: String) -> String {
        if reason.len() > MAX_REASON {
            let mut end = MAX_REASON;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        reason
    }
    match response {
        DeliveryResponse::Accepted => DeliveryResponse::Accepted,
        DeliveryResponse::Rejected { reason } => DeliveryResponse::Rejected {
            reason: clamp(reason),
        },
        DeliveryResponse::TryLater {
            reason,
            retry_after_secs,
        } => DeliveryResponse::TryLater {
            reason: clamp(reason),
            retry_after_secs,
        },
        DeliveryResponse::StampRequired { bits } => DeliveryResponse::StampRequired { bits },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reasons_are_clamped_at_a_char_boundary() {
        let reason = "é".repeat(MAX_REASON);
        let DeliveryResponse::Rejected { reason } =
            clamp_reason(DeliveryResponse::Rejected { reason })
        else {
            panic!("the variant changed");
        };
        assert!(reason.len() <= MAX_REASON);
        assert!(reason.chars().all(|c| c == 'é'));
        let short = DeliveryResponse::TryLater {
            reason: "rate limit".into(),
            retry_after_secs: 1,
        };
        assert_eq!(clamp_reason(short.clone()), short);
    }
}
