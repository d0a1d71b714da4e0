//! Assembly of the libp2p swarm: transports (TCP with Noise and Yamux, QUIC
//! v1, DNS resolution of `/dns*` addresses, the relay v2 client transport)
//! and the composed behaviour. Only construction lives here; the event loop
//! drives what this builds.
//!
//! Every node runs: delivery request-response, Identify, Ping, Kademlia
//! (`/mailnode/kad/1`, records filtered by the event loop), the relay v2
//! client, DCUtR and the AutoNAT v2 client; mDNS unless turned off. A public
//! node (`--public`) adds the relay v2 server and the AutoNAT v2 server, with
//! the limits below, and runs Kademlia in server mode.

use std::num::NonZeroU32;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, Swarm, SwarmBuilder, autonat, dcutr, identify, kad, mdns, noise, ping, relay,
    tcp, yamux,
};

use super::batch::{BatchCodec, PROTOCOL_V2};
use super::codec::{DeliveryCodec, PROTOCOL};
use super::{NetworkConfig, NetworkError};
use crate::mailbox::{MailboxCodec, PROTOCOL as MAILBOX_PROTOCOL};

/// How long establishing a connection (transport, security and multiplexer
/// handshakes) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Concurrent streams per connection. Deliveries to one peer are pipelined,
/// each on its own stream, so this bounds the deliveries in flight on one
/// connection. Yamux requires a 256 KiB window per stream out of its 1 GiB
/// connection window, so 1024 streams fit.
pub(crate) const MAX_STREAMS: usize = 1024;

/// Concurrent `/mailnode/deliver/2` streams per connection: each carries
/// up to `batch::MAX_ITEMS` messages, so this bounds a peer's batches in
/// flight (and what the receiver buffers) far below `MAX_STREAMS` single
/// deliveries.
pub(crate) const MAX_BATCH_STREAMS: usize = 32;

/// The Identify protocol version string of mailnode nodes.
const IDENTIFY_PROTOCOL: &str = "/mailnode/id/1";

/// Our private Kademlia protocol: mailnode's DHT is not the IPFS one, so
/// its records and routing tables never mix with strangers' networks.
pub(crate) const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/mailnode/kad/1");

/// Records in the DHT live at most this long without a republish (locator
/// records carry their own expiry of at most 48 h as well).
pub(crate) const RECORD_TTL: Duration = Duration::from_secs(48 * 3600);

/// Limits of the relay v2 server of a public node (`docs/protocol.md`,
/// "Public nodes"). Circuits only carry the DCUtR hole-punch coordination
/// (mail never travels over them), so they are small on purpose.
pub(crate) mod relay_limits {
    use std::time::Duration;
    /// Reservations held at once, over all peers.
    pub const MAX_RESERVATIONS: usize = 256;
    /// Reservations one peer may hold.
    pub const MAX_RESERVATIONS_PER_PEER: usize = 4;
    /// How long a reservation lasts before it must be renewed.
    pub const RESERVATION_DURATION: Duration = Duration::from_secs(3600);
    /// Circuits open at once, over all peers.
    pub const MAX_CIRCUITS: usize = 64;
    /// Circuits one peer may have open at once.
    pub const MAX_CIRCUITS_PER_PEER: usize = 4;
    /// Longest life of a circuit.
    pub const MAX_CIRCUIT_DURATION: Duration = Duration::from_secs(120);
    /// Bytes a circuit may carry (each direction), enough for Identify and
    /// the DCUtR exchange, far too little for mail.
    pub const MAX_CIRCUIT_BYTES: u64 = 64 * 1024;
    /// New reservations per peer per minute.
    pub const RESERVATIONS_PER_PEER_PER_MINUTE: u32 = 8;
    /// New circuits per source peer per minute.
    pub const CIRCUITS_PER_PEER_PER_MINUTE: u32 = 16;
}

/// Limits of the Kademlia record store (every node holds some records of
/// others; a public node holds most).
pub(crate) mod dht_limits {
    /// Records stored at once.
    pub const MAX_RECORDS: usize = 20_000;
    /// Largest record value; a locator record is well below.
    pub const MAX_VALUE_BYTES: usize = super::super::locator::MAX_RECORD_BYTES;
}

/// The composed behaviour; the derive generates `BehaviourEvent`.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// `/mailnode/deliver/1`.
    pub(crate) deliver: request_response::Behaviour<DeliveryCodec>,
    /// `/mailnode/deliver/2` (batches), unless `[network] deliver_v2 = false`.
    pub(crate) deliver2: Toggle<request_response::Behaviour<BatchCodec>>,
    /// `/mailnode/mailbox/1`: deposits and collections at mailbox peers.
    pub(crate) mailbox: request_response::Behaviour<MailboxCodec>,
    /// Exchanges listen addresses and protocol lists with peers.
    pub(crate) identify: identify::Behaviour,
    /// Detects dead connections.
    pub(crate) ping: ping::Behaviour,
    /// The DHT: peer routing and the signed locator records.
    pub(crate) kad: kad::Behaviour<MemoryStore>,
    /// Reservations on public nodes' relays, and dialing through them.
    pub(crate) relay_client: relay::client::Behaviour,
    /// Upgrades a relayed connection to a direct one (hole punching).
    pub(crate) dcutr: dcutr::Behaviour,
    /// Asks public nodes whether our address candidates are reachable.
    pub(crate) autonat_client: autonat::v2::client::Behaviour<rand010::rngs::StdRng>,
    /// Peers on the local network (off with `--no-mdns`).
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    /// Public nodes only: the relay v2 server.
    pub(crate) relay_server: Toggle<relay::Behaviour>,
    /// Public nodes only: the AutoNAT v2 server.
    pub(crate) autonat_server: Toggle<autonat::v2::server::Behaviour<rand010::rngs::StdRng>>,
}

/// Builds the swarm described by `config` (listening starts later).
pub(crate) fn build(config: &NetworkConfig) -> Result<Swarm<Behaviour>, NetworkError> {
    let max_message_size = config.max_message_size;
    let request_timeout = config.request_timeout;
    let idle = config.idle_connection_timeout;
    let public = config.public;
    let mdns_on = config.mdns;
    let mailbox_limit = config.mailbox_request_limit;
    let deliver_v2 = config.deliver_v2;
    let behaviour = move |key: &Keypair,
                          relay_client: relay::client::Behaviour|
          -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
        let peer_id = key.public().to_peer_id();
        let mdns = if mdns_on {
            Some(mdns::tokio::Behaviour::new(
                mdns::Config::default(),
                peer_id,
            )?)
        } else {
            None
        };
        Ok(Behaviour {
            deliver: request_response::Behaviour::with_codec(
                DeliveryCodec::new(max_message_size),
                [(PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(request_timeout)
                    .with_max_concurrent_streams(MAX_STREAMS),
            ),
            deliver2: deliver_v2
                .then(|| {
                    request_response::Behaviour::with_codec(
                        super::batch::codec(max_message_size),
                        [(PROTOCOL_V2, ProtocolSupport::Full)],
                        request_response::Config::default()
                            .with_request_timeout(request_timeout)
                            .with_max_concurrent_streams(MAX_BATCH_STREAMS),
                    )
                })
                .into(),
            // Every node answers the mailbox protocol (a node that is not
            // public refuses deposits with a clear reason).
            mailbox: request_response::Behaviour::with_codec(
                MailboxCodec::new(mailbox_limit),
                [(MAILBOX_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(request_timeout)
                    .with_max_concurrent_streams(MAX_STREAMS),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())
                    .with_agent_version(format!("mailnode/{}", env!("CARGO_PKG_VERSION")))
                    .with_push_listen_addr_updates(true),
            ),
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(Duration::from_secs(10))
                    .with_timeout(Duration::from_secs(10)),
            ),
            kad: kademlia(peer_id, public),
            relay_client,
            dcutr: dcutr::Behaviour::new(peer_id),
            autonat_client: autonat::v2::client::Behaviour::new(
                rand010::make_rng(),
                autonat::v2::client::Config::default().with_probe_interval(Duration::from_secs(10)),
            ),
            mdns: Toggle::from(mdns),
            relay_server: Toggle::from(
                public.then(|| relay::Behaviour::new(peer_id, relay_config())),
            ),
            autonat_server: Toggle::from(
                public.then(|| autonat::v2::server::Behaviour::new(rand010::make_rng())),
            ),
        })
    };
    let swarm_config = move |cfg: libp2p::swarm::Config| {
        cfg.with_idle_connection_timeout(idle)
            .with_max_negotiating_inbound_streams(MAX_STREAMS)
    };
    let yamux = || {
        let mut cfg = yamux::Config::default();
        cfg.set_max_num_streams(MAX_STREAMS);
        cfg
    };
    // TCP, then QUIC; the builder is re-created for the DNS fallback below
    // because each builder step consumes it.
    let transports = || -> Result<_, NetworkError> {
        Ok(SwarmBuilder::with_existing_identity(config.keypair.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux,
            )
            .map_err(|err| NetworkError::Transport {
                transport: "TCP (Noise)",
                reason: err.to_string(),
            })?
            .with_quic_config(|mut quic| {
                quic.max_concurrent_stream_limit = u32::try_from(MAX_STREAMS).unwrap_or(u32::MAX);
                quic
            }))
    };
    let relay_error = |err: noise::Error| NetworkError::Transport {
        transport: "relay client (Noise)",
        reason: err.to_string(),
    };
    let behaviour_error = |err: libp2p::BehaviourBuilderError| NetworkError::Transport {
        transport: "mDNS",
        reason: err.to_string(),
    };
    let swarm = match transports()?.with_dns() {
        Ok(builder) => builder
            .with_relay_client(noise::Config::new, yamux)
            .map_err(relay_error)?
            .with_behaviour(behaviour)
            .map_err(behaviour_error)?
            .with_swarm_config(swarm_config)
            .with_connection_timeout(CONNECT_TIMEOUT)
            .build(),
        Err(err) => {
            // A machine without /etc/resolv.conf (some containers) can still
            // reach peers by IP address. `/dns` addresses then fail: asking a
            // public resolver nobody chose would tell a third party whom this
            // node talks to.
            tracing::warn!(
                "cannot read the system DNS configuration ({err}); /dns addresses of peers \
                 cannot be resolved, use /ip4 or /ip6 address hints"
            );
            transports()?
                .with_dns_config(
                    libp2p::dns::ResolverConfig::from_name_servers(Vec::new()),
                    libp2p::dns::ResolverOpts::default(),
                )
                .with_relay_client(noise::Config::new, yamux)
                .map_err(relay_error)?
                .with_behaviour(behaviour)
                .map_err(behaviour_error)?
                .with_swarm_config(swarm_config)
                .with_connection_timeout(CONNECT_TIMEOUT)
                .build()
        }
    };
    Ok(swarm)
}

/// Kademlia on our private protocol. Inbound records are not stored by
/// libp2p itself: the event loop validates each one first
/// (`StoreInserts::FilterBoth`). A public node is a DHT server from the
/// start; any other node is a client until an external address that is
/// not a relay circuit is confirmed (`EventLoop::update_dht_mode`).
fn kademlia(peer_id: libp2p::PeerId, public: bool) -> kad::Behaviour<MemoryStore> {
    let mut config = kad::Config::new(KAD_PROTOCOL);
    config
        .set_record_ttl(Some(RECORD_TTL))
        .set_publication_interval(Some(Duration::from_secs(12 * 3600)))
        .set_record_filtering(kad::StoreInserts::FilterBoth)
        .set_query_timeout(Duration::from_secs(30))
        .set_periodic_bootstrap_interval(Some(Duration::from_secs(5 * 60)));
    let store = MemoryStore::with_config(
        peer_id,
        MemoryStoreConfig {
            max_records: dht_limits::MAX_RECORDS,
            max_value_bytes: dht_limits::MAX_VALUE_BYTES,
            ..MemoryStoreConfig::default()
        },
    );
    let mut kad = kad::Behaviour::with_config(peer_id, store, config);
    kad.set_mode(Some(if public {
        kad::Mode::Server
    } else {
        kad::Mode::Client
    }));
    kad
}

fn relay_config() -> relay::Config {
    use relay_limits::*;
    let per_minute = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    relay::Config {
        max_reservations: MAX_RESERVATIONS,
        max_reservations_per_peer: MAX_RESERVATIONS_PER_PEER,
        reservation_duration: RESERVATION_DURATION,
        max_circuits: MAX_CIRCUITS,
        max_circuits_per_peer: MAX_CIRCUITS_PER_PEER,
        max_circuit_duration: MAX_CIRCUIT_DURATION,
        max_circuit_bytes: MAX_CIRCUIT_BYTES,
        ..relay::Config::default()
    }
    .reservation_rate_per_peer(
        per_minute(RESERVATIONS_PER_PEER_PER_MINUTE),
        Duration::from_secs(60),
    )
    .circuit_src_per_peer(
        per_minute(CIRCUITS_PER_PEER_PER_MINUTE),
        Duration::from_secs(60),
    )
}
