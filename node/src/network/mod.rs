//! The libp2p network service: transports, the delivery protocols
//! (`/mailnode/deliver/1`, and `/2` for batches: `batch.rs`), and the peer-facing admission checks.
//!
//! Shape (after rust-libp2p's file-sharing example): [`Network`] is a cheap,
//! cloneable handle that sends commands over a bounded channel, each command
//! carrying a oneshot for its answer; one event-loop task (`event_loop.rs`)
//! alone owns the `Swarm` and correlates request ids with pending answers.
//!
//! This module owns: which transports and protocols run, the wire framing
//! and its size caps (`codec.rs`), the per-peer rate limit (`rate.rs`), and
//! turning inbound requests into [`InboundDelivery`] items. It must not
//! decrypt, verify or store anything: that is `inbound.rs`' job, and it runs
//! outside the event loop so a slow disk or a large message never stalls the
//! network. The wire protocol is specified in `docs/protocol.md`.

mod batch;
mod codec;
mod discovery;
mod error;
mod event_loop;
pub mod locator;
mod rate;
mod reach;
mod swarm;
#[cfg(test)]
mod tests;

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};

pub use batch::{BatchItem, BatchRequest, BatchResponse};
pub use discovery::unix_now;
pub use error::{DeliveryError, NetworkError};

/// Capacity of the command channel from handles to the event loop. Senders
/// wait (back-pressure) when it is full; nothing is dropped.
const COMMAND_CHANNEL: usize = 256;

/// Capacity of the channel of inbound deliveries. When it is full the node
/// answers `TryLater` instead of blocking the event loop.
const INBOUND_CHANNEL: usize = 1024;

/// Capacity of the connected-peers notification (a lagging subscriber only
/// loses hints).
const CONNECTED_CHANNEL: usize = 256;

/// Everything the network service needs to start.
pub struct NetworkConfig {
    /// The node's libp2p identity; its public key is the node's PeerId.
    pub keypair: libp2p::identity::Keypair,
    /// Addresses to listen on (TCP and/or QUIC multiaddrs; port 0 picks one).
    pub listen: Vec<Multiaddr>,
    /// The largest message payload this node accepts, in bytes. Requests
    /// larger than this plus 64 KiB (card and framing) are refused unread.
    pub max_message_size: usize,
    /// How long one request may take, from opening its stream to its answer.
    pub request_timeout: Duration,
    /// How long an unused connection stays open.
    pub idle_connection_timeout: Duration,
    /// How often one peer may send requests.
    pub rate_limit: RateLimit,
    /// How often peers who are not contacts may send requests, per PeerId
    /// and, added up, per IP address.
    pub stranger_limits: StrangerLimits,
    /// A public node: relay v2 server, AutoNAT v2 server, Kademlia server.
    pub public: bool,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// DHT bootstrap nodes (multiaddrs ending in `/p2p/PEERID`).
    pub bootstrap: Vec<Multiaddr>,
    /// Addresses this node is reachable at, announced as they are (a public
    /// node behind a port forward, say). Listen addresses are found anyway.
    pub external: Vec<Multiaddr>,
    /// The mailbox peers named in this node's locator record.
    pub mailboxes: Vec<PeerId>,
    /// Largest mailbox-protocol request read (a public node's envelope
    /// limit plus framing).
    pub mailbox_request_limit: u64,
    /// Speak `/mailnode/deliver/2` (batches) besides `/1`: serve it, and
    /// send batches to peers that serve it. Off (`[network] deliver_v2 =
    /// false`), the node behaves as one from before `/2`.
    pub deliver_v2: bool,
}

/// A mailbox-protocol request from a peer, waiting for the daemon's answer.
pub struct InboundMailbox {
    /// The remote PeerId, authenticated by the connection's handshake.
    pub peer: PeerId,
    /// The request.
    pub request: crate::mailbox::MailboxRequest,
    /// Where the answer goes. Dropping it answers `TryLater`.
    pub reply: oneshot::Sender<crate::mailbox::MailboxResponse>,
}

/// What the network service hands to the rest of the node.
pub struct Inbound {
    /// Delivery requests that passed the admission checks.
    pub deliveries: mpsc::Receiver<InboundDelivery>,
    /// Mailbox-protocol requests.
    pub mailbox: mpsc::Receiver<InboundMailbox>,
}

/// Limits for senders who are not contacts: a token bucket per PeerId and
/// one per IP address (PeerIds are free to make, addresses are not).
#[derive(Debug, Clone, Copy)]
pub struct StrangerLimits {
    /// Per stranger PeerId.
    pub per_peer: RateLimit,
    /// Per IP address, over every stranger PeerId connecting from it.
    pub per_ip: RateLimit,
}

impl Default for StrangerLimits {
    fn default() -> Self {
        Self {
            per_peer: RateLimit {
                per_second: 1,
                burst: 10,
            },
            per_ip: RateLimit {
                per_second: 2,
                burst: 20,
            },
        }
    }
}

/// What AutoNAT has found out about this node's reachability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NatStatus {
    /// No probe has finished yet.
    Unknown,
    /// At least one address was confirmed reachable from outside.
    Public,
    /// Probes finished and none of our addresses was reachable: behind NAT
    /// or a firewall; reachable through relays and hole punching.
    Private,
}

/// A snapshot of the network service, for `mailnode status`.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkStatus {
    /// This node's PeerId.
    pub peer_id: String,
    /// Whether the node runs as a public node.
    pub public: bool,
    /// AutoNAT's verdict.
    pub nat: NatStatus,
    /// Bound listen addresses.
    pub listen: Vec<String>,
    /// Addresses confirmed reachable from outside (AutoNAT) or configured.
    pub external: Vec<String>,
    /// Relay circuit addresses we hold a reservation for.
    pub relay_reservations: Vec<String>,
    /// Peers in the Kademlia routing table.
    pub dht_peers: usize,
    /// Whether Kademlia runs in server mode.
    pub dht_server: bool,
    /// Connected peers.
    pub connected_peers: usize,
    /// When our locator record was last stored in the DHT (Unix seconds).
    pub locator_published: Option<u64>,
    /// Sequence number of our current locator record.
    pub locator_seq: Option<u64>,
    /// The mailbox peers our locator names.
    pub mailboxes: Vec<String>,
}

/// A per-peer token bucket: `burst` requests at once, refilled at
/// `per_second` requests per second. `per_second == 0` disables the limit.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Sustained requests per second and peer.
    pub per_second: u32,
    /// Requests a peer may send at once after being quiet (at least 1).
    pub burst: u32,
}

/// One delivery request: an encrypted message for this node's user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRequest {
    /// Sender-chosen delivery id; the receiver deduplicates by (peer, id),
    /// so a retry after a lost acknowledgement never makes a second copy.
    #[serde(with = "serde_bytes")]
    pub id: [u8; 16],
    /// The sender's contact card (binary OpenPGP certificate), so that a
    /// receiver who does not know the sender yet can verify the signature.
    #[serde(with = "serde_bytes")]
    pub sender_card: Option<Vec<u8>>,
    /// The RFC 3156 PGP/MIME message, signed and encrypted.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// A proof-of-work stamp for this delivery (`crate::pow`), sent only
    /// after the recipient answered [`DeliveryResponse::StampRequired`].
    /// Absent (or `null`) in requests from nodes that predate stamps.
    #[serde(default)]
    pub stamp: Option<crate::pow::Stamp>,
}

/// The receiver's answer to a [`DeliveryRequest`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum DeliveryResponse {
    /// Stored durably (or already stored: a duplicate). The sender may
    /// forget the message.
    Accepted,
    /// Refused for good; the sender bounces the message to its author.
    Rejected {
        /// Why, in words for the author of the message.
        reason: String,
    },
    /// Not now; the sender retries after at least `retry_after_secs`.
    TryLater {
        /// Why, for the sender's log.
        reason: String,
        /// The earliest sensible retry, in seconds.
        retry_after_secs: u32,
    },
    /// This recipient does not know the sender (not a contact): send the
    /// same request again with a proof-of-work stamp of at least `bits`
    /// leading zero bits (`crate::pow`). Nothing was stored.
    StampRequired {
        /// The difficulty the recipient requires.
        bits: u8,
    },
}

/// A delivery request that passed the network-level checks (size, rate),
/// waiting for the inbound handler's verdict.
pub struct InboundDelivery {
    /// The remote PeerId, authenticated by the connection's security
    /// handshake (Noise on TCP, TLS on QUIC).
    pub peer: PeerId,
    /// The request as received.
    pub request: DeliveryRequest,
    /// Where the answer goes. Dropping it answers `TryLater`.
    pub reply: oneshot::Sender<DeliveryResponse>,
}

impl std::fmt::Debug for InboundDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundDelivery")
            .field("peer", &self.peer)
            .field("id", &hex::encode(self.request.id))
            .field("payload_len", &self.request.payload.len())
            .finish_non_exhaustive()
    }
}

/// What a handle asks of the event loop; each carries its answer's oneshot
/// (except `Dial`, which is a hint and answers nothing).
enum Command {
    Dial {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    },
    /// Answer once a direct (not relayed) connection to `peer` exists.
    EnsureDirect {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        reply: oneshot::Sender<Result<(), DeliveryError>>,
    },
    /// Look up `peer`'s locator record in the DHT.
    Lookup {
        peer: PeerId,
        reply: oneshot::Sender<Result<locator::Locator, DeliveryError>>,
    },
    Status {
        reply: oneshot::Sender<NetworkStatus>,
    },
    /// One mailbox-protocol request (the caller ensured a connection).
    Mailbox {
        peer: PeerId,
        request: crate::mailbox::MailboxRequest,
        reply: oneshot::Sender<Result<crate::mailbox::MailboxResponse, DeliveryError>>,
    },
    /// The PeerIds of our contacts (they are not limited as strangers).
    SetContacts {
        peers: Vec<PeerId>,
    },
    /// The mailbox peers to name in our locator record.
    SetMailboxes {
        peers: Vec<PeerId>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Result<Vec<Multiaddr>, NetworkError>>,
    },
    Deliver {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: DeliveryRequest,
        reply: oneshot::Sender<Result<DeliveryResponse, DeliveryError>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    /// How many connections are established (tests check pipelining).
    #[cfg(test)]
    Connections {
        reply: oneshot::Sender<u32>,
    },
}

/// Builds the swarm, starts listening on every configured address, and
/// spawns the event loop. Returns the handle and the inbound deliveries.
///
/// Must be called inside a Tokio runtime.
pub async fn start(config: NetworkConfig) -> Result<(Network, Inbound), NetworkError> {
    let local_peer_id = config.keypair.public().to_peer_id();
    let mut swarm = swarm::build(&config)?;
    tracing::info!(peer_id = %local_peer_id, "starting the peer-to-peer network");

    for addr in &config.bootstrap {
        if bootstrap_peer(addr).is_none() {
            return Err(NetworkError::Bootstrap { addr: addr.clone() });
        }
    }
    let mut listeners = Vec::with_capacity(config.listen.len());
    for addr in &config.listen {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|err| NetworkError::Listen {
                addr: addr.clone(),
                reason: error::transport_error_text(&err),
            })?;
        listeners.push((id, addr.clone()));
    }

    let (command_tx, command_rx) = mpsc::channel(COMMAND_CHANNEL);
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CHANNEL);
    let (mailbox_tx, mailbox_rx) = mpsc::channel(INBOUND_CHANNEL);
    let (connected_tx, _) = broadcast::channel(CONNECTED_CHANNEL);
    let event_loop = event_loop::EventLoop::new(
        swarm,
        command_rx,
        inbound_tx,
        mailbox_tx,
        connected_tx.clone(),
        listeners,
        &config,
    );
    tokio::spawn(event_loop.run());

    let network = Network {
        local_peer_id,
        commands: command_tx,
        connected: connected_tx,
        deadline: client_deadline(config.request_timeout),
    };
    Ok((
        network,
        Inbound {
            deliveries: inbound_rx,
            mailbox: mailbox_rx,
        },
    ))
}

/// The PeerId at the end of a bootstrap address (`.../p2p/PEERID`).
pub(crate) fn bootstrap_peer(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

impl crate::mailbox::MailboxTransport for Network {
    async fn request(
        &self,
        peer: PeerId,
        request: crate::mailbox::MailboxRequest,
    ) -> Result<crate::mailbox::MailboxResponse, String> {
        self.mailbox_request(peer, request)
            .await
            .map_err(|err| err.to_string())
    }
}

/// The longest a handle waits for any answer from the event loop: the
/// request timeout plus time to dial. libp2p reports every request's end by
/// itself; this is only a guard so that a caller can never hang.
fn client_deadline(request_timeout: Duration) -> Duration {
    request_timeout
        .saturating_add(swarm::CONNECT_TIMEOUT)
        .saturating_add(Duration::from_secs(5))
}

/// A cheap, cloneable handle to the network service.
#[derive(Clone)]
pub struct Network {
    local_peer_id: PeerId,
    commands: mpsc::Sender<Command>,
    connected: broadcast::Sender<PeerId>,
    deadline: Duration,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("local_peer_id", &self.local_peer_id)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// This node's PeerId.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Peers as they become connected (their first connection). The outbox
    /// uses it to send what waits for a peer as soon as it is back online.
    pub fn connected(&self) -> broadcast::Receiver<PeerId> {
        self.connected.subscribe()
    }

    /// Connects to `peer` in the background if not connected yet. A node
    /// greets its contacts this way at start-up, so that peers holding mail
    /// for it learn at once that it is back.
    pub fn dial(&self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if peer == self.local_peer_id {
            return;
        }
        // A hint only: if the command queue is full, the peer will be
        // reached by the next delivery anyway.
        let _ = self.commands.try_send(Command::Dial { peer, addrs });
    }

    /// Waits until every configured listen address is bound; returns the
    /// actual addresses (port 0 resolved).
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::ListenAddrs { reply })
            .await
            .map_err(|_| NetworkError::Stopped)?;
        answer.await.map_err(|_| NetworkError::Stopped)?
    }

    /// Sends one request to `peer` (dialing with `addrs` as hints if not
    /// connected) and waits for its answer.
    pub async fn deliver(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: DeliveryRequest,
    ) -> Result<DeliveryResponse, DeliveryError> {
        if peer == self.local_peer_id {
            return Err(DeliveryError::Unreachable(
                "the recipient's PeerId is this node's own; a node does not deliver to itself"
                    .to_string(),
            ));
        }
        self.ensure_direct(peer, addrs.clone()).await?;
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Deliver {
                peer,
                addrs,
                request,
                reply,
            })
            .await
            .map_err(|_| DeliveryError::Shutdown)?;
        match tokio::time::timeout(self.deadline, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(DeliveryError::Shutdown),
            Err(_) => Err(DeliveryError::Timeout),
        }
    }

    /// Waits until a direct connection to `peer` exists: an existing one, a
    /// dial to the hints or to the addresses of its locator record (looked
    /// up in the DHT), or a relayed connection upgraded by hole punching.
    /// Mail never travels over a relay circuit, so without a direct path
    /// this fails with [`DeliveryError::NoDirectPath`] or `Unreachable`.
    pub async fn ensure_direct(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    ) -> Result<(), DeliveryError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::EnsureDirect { peer, addrs, reply })
            .await
            .map_err(|_| DeliveryError::Shutdown)?;
        match tokio::time::timeout(self.deadline, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(DeliveryError::Shutdown),
            Err(_) => Err(DeliveryError::Timeout),
        }
    }

    /// Looks up `peer`'s locator record (checked; the newest one found).
    pub async fn lookup(&self, peer: PeerId) -> Result<locator::Locator, DeliveryError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Lookup { peer, reply })
            .await
            .map_err(|_| DeliveryError::Shutdown)?;
        match tokio::time::timeout(self.deadline, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(DeliveryError::Shutdown),
            Err(_) => Err(DeliveryError::Timeout),
        }
    }

    /// Sends one mailbox-protocol request to `peer` (a direct connection
    /// first, found like any peer) and waits for its answer.
    pub async fn mailbox_request(
        &self,
        peer: PeerId,
        request: crate::mailbox::MailboxRequest,
    ) -> Result<crate::mailbox::MailboxResponse, DeliveryError> {
        self.ensure_direct(peer, Vec::new()).await?;
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Mailbox {
                peer,
                request,
                reply,
            })
            .await
            .map_err(|_| DeliveryError::Shutdown)?;
        match tokio::time::timeout(self.deadline, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(DeliveryError::Shutdown),
            Err(_) => Err(DeliveryError::Timeout),
        }
    }

    /// A snapshot of the service's state.
    pub async fn status(&self) -> Result<NetworkStatus, NetworkError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Status { reply })
            .await
            .map_err(|_| NetworkError::Stopped)?;
        answer.await.map_err(|_| NetworkError::Stopped)
    }

    /// Tells the service who our contacts are (strangers' limits do not
    /// apply to them).
    pub async fn set_contacts(&self, peers: Vec<PeerId>) {
        let _ = self.commands.send(Command::SetContacts { peers }).await;
    }

    /// Tells the service which mailbox peers to name in our locator record
    /// (it republishes the record).
    pub async fn set_mailboxes(&self, peers: Vec<PeerId>) {
        let _ = self.commands.send(Command::SetMailboxes { peers }).await;
    }

    /// The number of established connections.
    #[cfg(test)]
    async fn connections(&self) -> u32 {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::Connections { reply })
            .await
            .is_err()
        {
            return 0;
        }
        answer.await.unwrap_or(0)
    }

    /// Stops the event loop: closes the listeners and connections, answers
    /// every pending delivery with [`DeliveryError::Shutdown`], and closes
    /// the inbound channel. Later calls to [`Network::deliver`] return
    /// `Shutdown`. Returns once the loop has stopped; calling it again is
    /// harmless.
    pub async fn shutdown(&self) {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = answer.await;
        }
    }
}
