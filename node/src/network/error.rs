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
    /// A bootstrap address does not say which peer it is.
    #[error(
        "the bootstrap address {addr} does not end in /p2p/PEERID; give the full address \
         of the bootstrap node, e.g. /ip4/198.51.100.10/tcp/4870/p2p/12D3KooW..."
    )]
    Bootstrap {
        /// The address as configured.
        addr: Multiaddr,
    },
    /// The network service is not running (it was shut down or failed).
    #[error("the peer-to-peer network service has stopped")]
    Stopped,
}

/// One delivery attempt failed before the recipient answered. Every variant
/// is temporary from the sender's point of view: the outbox retries it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// No connection to the recipient's node could be made.
    #[error(
        "cannot reach the recipient's node: {0}; it may be offline, or its addresses in the \
         contact card may be out of date"
    )]
    Unreachable(String),
    /// The recipient's node is reachable only through a relay circuit, and
    /// hole punching did not give a direct connection. Mail never travels
    /// over a relay: the outbox deposits it at a mailbox peer instead.
    #[error(
        "no direct connection to the recipient's node could be made ({0}); it is behind a NAT \
         that hole punching could not pass"
    )]
    NoDirectPath(String),
    /// The recipient has no locator record in the DHT and no address hints.
    #[error(
        "the recipient's node has no address: no locator record in the DHT and no address hints \
         in the contact ({0})"
    )]
    NotFound(String),
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
                .map(|(addr, err)| {
                    // The recipient's PeerId suffix adds nothing here.
                    let addr: Multiaddr = addr
                        .iter()
                        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
                        .collect();
                    match err {
                        TransportError::MultiaddrNotSupported(_) => {
                            format!("{addr}: no enabled transport supports this address")
                        }
                        TransportError::Other(err) => {
                            format!("{addr}: {}", one_line(&error_chain(err)))
                        }
                    }
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

/// Folds a multi-line error text (libp2p-tcp reports "Multiple dial errors
/// occurred:" followed by " - reason" lines) into one line.
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(|line| line.trim().trim_start_matches("- ").trim())
        .filter(|line| !line.is_empty())
        .collect();
    match lines.as_slice() {
        [heading, only] if heading.ends_with(':') => (*only).to_string(),
        [heading, rest @ ..] if heading.ends_with(':') => format!("{heading} {}", rest.join("; ")),
        _ => lines.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_errors_become_one_line() {
        assert_eq!(
            one_line("Multiple dial errors occurred:\n - Connection refused (os error 111)"),
            "Connection refused (os error 111)"
        );
        assert_eq!(
            one_line("Multiple dial errors occurred:\n - refused\n - unreachable"),
            "Multiple dial errors occurred: refused; unreachable"
        );
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let err = NetworkError::Listen {
            addr: "/ip4/127.0.0.1/tcp/4870".parse().expect("multiaddr"),
            reason: "Address in use".into(),
        };
        let text = err.to_string();
        assert!(
            text.contains("/ip4/127.0.0.1/tcp/4870") && text.contains("--listen"),
            "{text}"
        );
        let text = DeliveryError::Unreachable("x: refused".into()).to_string();
        assert!(
            text.contains("x: refused") && text.contains("contact card"),
            "{text}"
        );
    }
}
