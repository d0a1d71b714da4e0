//! The network service's errors: [`NetworkError`] for starting and running
//! the service, [`DeliveryError`] for one outbound delivery. Every message
//! says what went wrong and, where there is something to do, what to do.

use libp2p::Multiaddr;
use libp2p::core::transport::TransportError;

/// The network service could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A transport (TCP, QUIC, DNS) could not be set up.
    #[error("cannot set up the {transport} transport: {reason}")]
    Transport {
        /// Which transport.
        transport: &'static str,
        /// The underlying error.
        reason: String,
    },
    /// A listen address could not be bound.
    #[error(
        "cannot listen on {addr}: {reason}; is another program (another mailnode?) using that \
         port? Choose another with --listen MULTIADDR or network.listen in config.toml"
    )]
    Listen {
        /// The configured address.
        addr: Multiaddr,
        /// The underlying error.
        reason: String,
    },
    /// The network service is not running (it was shut down or failed).
    #[error("the peer-to-peer network service has stopped")]
    Stopped,
}

/// One delivery attempt failed before the recipient answered. Every variant
/// is temporary from the sender's point of view: the outbox retries it.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// No connection to the recipient's node could be made.
    #[error(
        "cannot reach the recipient's node: {0}; it may be offline, or its addresses in the \
         contact card may be out of date"
    )]
    Unreachable(String),
    /// The recipient's node did not answer in time.
    #[error("the recipient's node did not answer in time; it may be overloaded or on a slow link")]
    Timeout,
    /// The connection closed before the recipient's node answered.
    #[error("the connection to the recipient's node closed before it answered")]
    ConnectionClosed,
    /// The recipient's node does not speak the delivery protocol, or the
    /// exchange broke.
    #[error("the delivery exchange with the recipient's node failed: {0}")]
    Protocol(String),
    /// This node's network service has stopped.
    #[error("this node's network service has stopped (the node is shutting down)")]
    Shutdown,
}

/// The readable text of a listen error, without libp2p's type names.
pub(crate) fn transport_error_text(err: &TransportError<std::io::Error>) -> String {
    match err {
        TransportError::MultiaddrNotSupported(addr) => {
            format!("no enabled transport supports {addr} (use /tcp/PORT or /udp/PORT/quic-v1)")
        }
        TransportError::Other(err) => err.to_string(),
    }
}

/// A readable account of why a dial failed, for [`DeliveryError::Unreachable`].
pub(crate) fn dial_error_text(err: &libp2p::swarm::DialError) -> String {
    use libp2p::swarm::DialError;
    match err {
        DialError::NoAddresses => {
            "no network address is known for it (its contact card lists none)".to_string()
        }
        DialError::WrongPeerId { obtained, address } => format!(
            "the node at {address} is {obtained}, not the recipient; the address in the contact \
             card is stale"
        ),
        DialError::LocalPeerId { address } => {
            format!("{address} is this node's own address")
        }
        DialError::Transport(attempts) => {
            let attempts: Vec<String> = attempts
                .iter()
                .map(|(addr, err)| match err {
                    TransportError::MultiaddrNotSupported(_) => {
                        format!("{addr}: no enabled transport supports this address")
                    }
                    TransportError::Other(err) => format!("{addr}: {}", error_chain(err)),
                })
                .collect();
            attempts.join("; ")
        }
        other => other.to_string(),
    }
}

/// `err` and its sources, joined by ": ", skipping repeats (io::Error
/// displays its inner error, which is also its source).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        let part = err.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = err.source();
    }
    text
}
