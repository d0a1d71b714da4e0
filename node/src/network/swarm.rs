//! Assembly of the libp2p swarm: transports (TCP with Noise and Yamux, QUIC
//! v1, DNS resolution of `/dns*` addresses) and the composed behaviour
//! (delivery request-response, Identify, Ping). Only construction lives
//! here; the event loop drives what this builds.

use std::convert::Infallible;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{Swarm, SwarmBuilder, identify, noise, ping, tcp, yamux};

use super::codec::{DeliveryCodec, PROTOCOL};
use super::{NetworkConfig, NetworkError};

/// How long establishing a connection (transport, security and multiplexer
/// handshakes) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Concurrent streams per connection. Deliveries to one peer are pipelined,
/// each on its own stream, so this bounds the deliveries in flight on one
/// connection. Yamux requires a 256 KiB window per stream out of its 1 GiB
/// connection window, so 1024 streams fit.
pub(crate) const MAX_STREAMS: usize = 1024;

/// The Identify protocol version string of mailnode nodes.
const IDENTIFY_PROTOCOL: &str = "/mailnode/id/1";

/// The composed behaviour; the derive generates `BehaviourEvent`.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// `/mailnode/deliver/1`.
    pub(crate) deliver: request_response::Behaviour<DeliveryCodec>,
    /// Exchanges listen addresses and protocol lists with peers.
    pub(crate) identify: identify::Behaviour,
    /// Detects dead connections.
    pub(crate) ping: ping::Behaviour,
}

/// Builds the swarm described by `config` (listening starts later).
pub(crate) fn build(config: &NetworkConfig) -> Result<Swarm<Behaviour>, NetworkError> {
    let max_message_size = config.max_message_size;
    let request_timeout = config.request_timeout;
    let idle = config.idle_connection_timeout;
    let behaviour = move |key: &Keypair| -> Behaviour {
        Behaviour {
            deliver: request_response::Behaviour::with_codec(
                DeliveryCodec::new(max_message_size),
                [(PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(request_timeout)
                    .with_max_concurrent_streams(MAX_STREAMS),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())
                    .with_agent_version(format!("mailnode/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
        }
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
    let swarm = match transports()?.with_dns() {
        Ok(builder) => builder
            .with_behaviour(behaviour)
            .map_err(never)?
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
                .with_behaviour(behaviour)
                .map_err(never)?
                .with_swarm_config(swarm_config)
                .with_connection_timeout(CONNECT_TIMEOUT)
                .build()
        }
    };
    Ok(swarm)
}

/// Maps the builder's `Infallible` behaviour error into any type.
fn never<T>(never: Infallible) -> T {
    match never {}
}
