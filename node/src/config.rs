//! Configuration: `config.toml` in the home, overridden by command-line
//! flags, resolved into one checked [`Settings`] before anything runs.
//!
//! Every field is optional in the file; the defaults are the conventions of
//! DESIGN.md (IMAP 127.0.0.1:1143, SMTP 127.0.0.1:1025, libp2p on TCP and
//! QUIC port 4870 on all interfaces).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use libp2p::Multiaddr;
use serde::Deserialize;

/// Default libp2p port for TCP and QUIC.
pub const DEFAULT_P2P_PORT: u16 = 4870;
/// Default IMAP bridge address.
pub const DEFAULT_IMAP: &str = "127.0.0.1:1143";
/// Default SMTP bridge address.
pub const DEFAULT_SMTP: &str = "127.0.0.1:1025";
/// Default largest message, in bytes, accepted from the mail client and from
/// peers (the same limit on both sides, so what we can send, others accept).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 32 * 1024 * 1024;

/// The file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[network]`
    #[serde(default)]
    pub network: NetworkSection,
    /// `[bridge]`
    #[serde(default)]
    pub bridge: BridgeSection,
    /// `[delivery]`
    #[serde(default)]
    pub delivery: DeliverySection,
    /// `[strangers]`
    #[serde(default)]
    pub strangers: StrangersSection,
    /// `[mailbox]`
    #[serde(default)]
    pub mailbox: MailboxSection,
}

/// `[mailbox]` section: the limits of the mailbox service a public node
/// runs (defaults in `crate::mailbox::MailboxLimits`, documented in
/// `docs/protocol.md`). The mailbox peers this node itself uses are kept
/// in `mailboxes.json` (`mailnode mailbox add|list|remove`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSection {
    /// Largest sealed envelope accepted, bytes.
    pub max_envelope_bytes: Option<u64>,
    /// Envelopes one sender may have waiting for one recipient.
    pub per_sender_count: Option<u32>,
    /// Bytes one sender may have waiting for one recipient.
    pub per_sender_bytes: Option<u64>,
    /// Bytes waiting for one recipient.
    pub per_inbox_bytes: Option<u64>,
    /// Bytes held in total.
    pub total_bytes: Option<u64>,
    /// Recipients registered at once.
    pub max_registrations: Option<u32>,
    /// Days an uncollected envelope is kept.
    pub retention_days: Option<u64>,
}

/// `[network]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// Multiaddrs to listen on.
    pub listen: Option<Vec<String>>,
    /// Largest message accepted from a peer, bytes.
    pub max_message_size: Option<usize>,
    /// Deliveries accepted per second from one peer (burst is 4x).
    pub rate_limit_per_second: Option<u32>,
    /// Run as a public node (relay, AutoNAT server, DHT server, mailbox).
    pub public: Option<bool>,
    /// Discover peers on the local network with mDNS (default true).
    pub mdns: Option<bool>,
    /// DHT bootstrap nodes, multiaddrs ending in /p2p/PEERID. There is no
    /// default list: mailnode dials nobody the user did not name.
    pub bootstrap: Option<Vec<String>>,
    /// Addresses to announce as they are (e.g. a port forward).
    pub external: Option<Vec<String>>,
    /// Speak the batch protocol `/mailnode/deliver/2` (default true). Off,
    /// the node serves and sends only `/mailnode/deliver/1`, like a node
    /// from before `/2` (the tests of the fallback use it).
    pub deliver_v2: Option<bool>,
}

/// `[bridge]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSection {
    /// IMAP listen address.
    pub imap: Option<String>,
    /// SMTP listen address.
    pub smtp: Option<String>,
    /// Expunged UIDs each mailbox remembers for QRESYNC clients.
    pub vanished_keep: Option<usize>,
}

/// `[delivery]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySection {
    /// How long the outbox keeps retrying before it gives up and bounces,
    /// in hours.
    pub give_up_after_hours: Option<u64>,
    /// The same in seconds; wins over `give_up_after_hours`. Not in the
    /// documented defaults: it exists so tests can see a bounce quickly.
    pub give_up_after_secs: Option<u64>,
    /// Longest wait between two attempts, in seconds.
    pub max_retry_interval_secs: Option<u64>,
}

/// `[strangers]` section: senders who are not contacts (their mail goes to
/// Requests). Defaults in `crate::strangers` and `crate::pow`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrangersSection {
    /// Proof-of-work difficulty of their stamps, in bits (0 turns stamps
    /// off; at most 32).
    pub pow_bits: Option<u8>,
    /// Messages filed per hour from one stranger PeerId.
    pub per_peer_per_hour: Option<u32>,
    /// Messages filed per hour from all strangers together.
    pub total_per_hour: Option<u32>,
}

impl ConfigFile {
    /// Reads `config.toml`; a missing file means all defaults.
    pub fn load(path: &Path) -> anyhow::Result<ConfigFile> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("{} is not valid configuration", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

/// Command-line overrides for `mailnode run`.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen` (repeatable).
    pub listen: Vec<String>,
    /// `--imap`.
    pub imap: Option<String>,
    /// `--smtp`.
    pub smtp: Option<String>,
    /// `--public`.
    pub public: bool,
    /// `--no-mdns`.
    pub no_mdns: bool,
    /// `--bootstrap` (repeatable; adds to the file's list).
    pub bootstrap: Vec<String>,
    /// `--external` (repeatable; adds to the file's list).
    pub external: Vec<String>,
}

/// The checked settings the daemon runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// libp2p listen addresses.
    pub listen: Vec<Multiaddr>,
    /// IMAP bridge address.
    pub imap: SocketAddr,
    /// SMTP bridge address.
    pub smtp: SocketAddr,
    /// Largest message accepted (client and peers).
    pub max_message_size: usize,
    /// Per-peer delivery rate limit (per second).
    pub rate_limit_per_second: u32,
    /// When the outbox gives up on a message.
    pub give_up_after: Duration,
    /// Longest wait between two delivery attempts.
    pub max_retry_interval: Duration,
    /// Rules for senders who are not contacts.
    pub strangers: crate::strangers::StrangerPolicy,
    /// A public node.
    pub public: bool,
    /// mDNS on the local network.
    pub mdns: bool,
    /// Speak `/mailnode/deliver/2` besides `/1`.
    pub deliver_v2: bool,
    /// DHT bootstrap nodes.
    pub bootstrap: Vec<Multiaddr>,
    /// Announced external addresses.
    pub external: Vec<Multiaddr>,
    /// Limits of the mailbox service (public nodes).
    pub mailbox: crate::mailbox::MailboxLimits,
    /// Expunged UIDs each mailbox remembers for QRESYNC clients.
    pub vanished_keep: usize,
}

impl Settings {
    /// Merges file and flags and checks every value.
    pub fn resolve(file: ConfigFile, flags: Overrides) -> anyhow::Result<Settings> {
        let listen_text = if !flags.listen.is_empty() {
            flags.listen
        } else if let Some(listen) = file.network.listen {
            listen
        } else {
            vec![
                format!("/ip4/0.0.0.0/tcp/{DEFAULT_P2P_PORT}"),
                format!("/ip4/0.0.0.0/udp/{DEFAULT_P2P_PORT}/quic-v1"),
            ]
        };
        let listen = parse_multiaddrs(&listen_text, "--listen", "/ip4/0.0.0.0/tcp/4870")?;
        let mut bootstrap_text = file.network.bootstrap.unwrap_or_default();
        bootstrap_text.extend(flags.bootstrap);
        let bootstrap = parse_multiaddrs(
            &bootstrap_text,
            "--bootstrap",
            "/ip4/198.51.100.10/tcp/4870/p2p/12D3KooW...",
        )?;
        for addr in &bootstrap {
            if crate::network::bootstrap_peer(addr).is_none() {
                anyhow::bail!(
                    "--bootstrap {addr} does not end in /p2p/PEERID; give the bootstrap node's \
                     full address (its PeerId is in its `mailnode status`)"
                );
            }
        }
        let mut external_text = file.network.external.unwrap_or_default();
        external_text.extend(flags.external);
        let external =
            parse_multiaddrs(&external_text, "--external", "/ip4/198.51.100.10/tcp/4870")?;
        if listen.is_empty() {
            anyhow::bail!("no listen address: give at least one --listen MULTIADDR");
        }
        let imap = parse_socket(
            flags
                .imap
                .or(file.bridge.imap)
                .as_deref()
                .unwrap_or(DEFAULT_IMAP),
            "--imap",
        )?;
        let smtp = parse_socket(
            flags
                .smtp
                .or(file.bridge.smtp)
                .as_deref()
                .unwrap_or(DEFAULT_SMTP),
            "--smtp",
        )?;
        for (name, addr) in [("IMAP", imap), ("SMTP", smtp)] {
            if !addr.ip().is_loopback() {
                tracing::warn!(
                    "the {name} bridge listens on {addr}, which is not a loopback address: \
                     other machines can reach it (it still requires the bridge password)"
                );
            }
        }
        let max_message_size = file
            .network
            .max_message_size
            .unwrap_or(DEFAULT_MAX_MESSAGE_SIZE);
        if max_message_size < 1024 {
            anyhow::bail!("network.max_message_size must be at least 1024 bytes");
        }
        let strangers = resolve_strangers(&file.strangers)?;
        let mailbox = resolve_mailbox(&file.mailbox)?;
        let vanished_keep = file
            .bridge
            .vanished_keep
            .unwrap_or(crate::store::VANISHED_KEEP);
        if vanished_keep == 0 {
            anyhow::bail!("bridge.vanished_keep must be at least 1");
        }
        Ok(Settings {
            listen,
            imap,
            smtp,
            max_message_size,
            rate_limit_per_second: file.network.rate_limit_per_second.unwrap_or(2000),
            give_up_after: Duration::from_secs(
                file.delivery
                    .give_up_after_secs
                    .unwrap_or(3600 * file.delivery.give_up_after_hours.unwrap_or(24 * 7)),
            ),
            max_retry_interval: Duration::from_secs(
                file.delivery.max_retry_interval_secs.unwrap_or(300).max(1),
            ),
            strangers,
            public: flags.public || file.network.public.unwrap_or(false),
            mdns: !flags.no_mdns && file.network.mdns.unwrap_or(true),
            deliver_v2: file.network.deliver_v2.unwrap_or(true),
            bootstrap,
            external,
            mailbox,
            vanished_keep,
        })
    }
}

fn resolve_mailbox(section: &MailboxSection) -> anyhow::Result<crate::mailbox::MailboxLimits> {
    let defaults = crate::mailbox::MailboxLimits::default();
    let limits = crate::mailbox::MailboxLimits {
        max_envelope_bytes: section
            .max_envelope_bytes
            .unwrap_or(defaults.max_envelope_bytes),
        per_sender_count: section
            .per_sender_count
            .unwrap_or(defaults.per_sender_count),
        per_sender_bytes: section
            .per_sender_bytes
            .unwrap_or(defaults.per_sender_bytes),
        per_inbox_bytes: section.per_inbox_bytes.unwrap_or(defaults.per_inbox_bytes),
        total_bytes: section.total_bytes.unwrap_or(defaults.total_bytes),
        max_registrations: section
            .max_registrations
            .unwrap_or(defaults.max_registrations),
        retention: section.retention_days.map_or(defaults.retention, |days| {
            Duration::from_secs(days.saturating_mul(86_400))
        }),
        ..defaults
    };
    limits.check()?;
    Ok(limits)
}

fn resolve_strangers(
    section: &StrangersSection,
) -> anyhow::Result<crate::strangers::StrangerPolicy> {
    let defaults = crate::strangers::StrangerPolicy::default();
    let pow_bits = section.pow_bits.unwrap_or(defaults.pow_bits);
    if pow_bits > crate::pow::MAX_MINT_BITS {
        anyhow::bail!(
            "strangers.pow_bits = {pow_bits} is more than senders mint (at most {}); \
             each extra bit doubles the sender's work, and 25 already takes seconds",
            crate::pow::MAX_MINT_BITS
        );
    }
    let per_peer_per_hour = section
        .per_peer_per_hour
        .unwrap_or(defaults.per_peer_per_hour);
    let total_per_hour = section.total_per_hour.unwrap_or(defaults.total_per_hour);
    if per_peer_per_hour == 0 || total_per_hour == 0 {
        anyhow::bail!(
            "strangers.per_peer_per_hour and strangers.total_per_hour must be at least 1 \
             (mail from people who are not contacts yet could never arrive)"
        );
    }
    Ok(crate::strangers::StrangerPolicy {
        pow_bits,
        per_peer_per_hour,
        total_per_hour,
    })
}

fn parse_multiaddrs(texts: &[String], flag: &str, example: &str) -> anyhow::Result<Vec<Multiaddr>> {
    texts
        .iter()
        .map(|text| {
            text.parse::<Multiaddr>()
                .with_context(|| format!("{flag} {text:?} is not a multiaddr (example: {example})"))
        })
        .collect()
}

fn parse_socket(text: &str, flag: &str) -> anyhow::Result<SocketAddr> {
    text.parse::<SocketAddr>()
        .with_context(|| format!("{flag} {text:?} is not HOST:PORT (example: 127.0.0.1:1143)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_conventions() {
        let settings = Settings::resolve(ConfigFile::default(), Overrides::default()).unwrap();
        assert_eq!(settings.imap.to_string(), "127.0.0.1:1143");
        assert_eq!(settings.smtp.to_string(), "127.0.0.1:1025");
        assert_eq!(settings.listen.len(), 2);
        assert!(settings.listen[1].to_string().contains("quic-v1"));
        assert!(settings.mdns, "mDNS is on by default");
        assert!(!settings.public);
        assert!(
            settings.bootstrap.is_empty(),
            "no bootstrap node is dialed by default"
        );
    }

    #[test]
    fn bootstrap_addresses_must_name_the_peer() {
        let flags = Overrides {
            bootstrap: vec!["/ip4/198.51.100.10/tcp/4870".into()],
            ..Overrides::default()
        };
        let err = Settings::resolve(ConfigFile::default(), flags).unwrap_err();
        assert!(err.to_string().contains("/p2p/PEERID"), "{err}");
        let file: ConfigFile = toml::from_str("[network]\nmdns = false\npublic = true\n").unwrap();
        let settings = Settings::resolve(file, Overrides::default()).unwrap();
        assert!(!settings.mdns && settings.public);
    }

    #[test]
    fn flags_override_the_file() {
        let file: ConfigFile = toml::from_str("[bridge]\nimap = \"127.0.0.1:2000\"\n").unwrap();
        let flags = Overrides {
            imap: Some("127.0.0.1:3000".into()),
            ..Overrides::default()
        };
        let settings = Settings::resolve(file, flags).unwrap();
        assert_eq!(settings.imap.port(), 3000);
    }

    #[test]
    fn mailbox_limits_come_from_the_file_and_are_checked() {
        let settings = Settings::resolve(ConfigFile::default(), Overrides::default()).unwrap();
        assert_eq!(settings.mailbox, crate::mailbox::MailboxLimits::default());
        let file: ConfigFile =
            toml::from_str("[mailbox]\nretention_days = 7\nper_sender_count = 5\n").unwrap();
        let settings = Settings::resolve(file, Overrides::default()).unwrap();
        assert_eq!(settings.mailbox.retention, Duration::from_secs(7 * 86_400));
        assert_eq!(settings.mailbox.per_sender_count, 5);
        let file: ConfigFile = toml::from_str("[mailbox]\nretention_days = 0\n").unwrap();
        let err = Settings::resolve(file, Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("retention"), "{err}");
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let flags = Overrides {
            listen: vec!["tcp:4870".into()],
            ..Overrides::default()
        };
        let err = Settings::resolve(ConfigFile::default(), flags).unwrap_err();
        assert!(err.to_string().contains("is not a multiaddr"), "{err}");
        let err = toml::from_str::<ConfigFile>("[bridge]\nimapp = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("imapp"), "{err}");
        let file: ConfigFile = toml::from_str("[bridge]\nvanished_keep = 0\n").unwrap();
        let err = Settings::resolve(file, Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("vanished_keep"), "{err}");
        let file: ConfigFile = toml::from_str("[bridge]\nvanished_keep = 5\n").unwrap();
        let settings = Settings::resolve(file, Overrides::default()).unwrap();
        assert_eq!(settings.vanished_keep, 5);
    }

    #[test]
    fn strangers_section_has_defaults_and_limits() {
        let settings = Settings::resolve(ConfigFile::default(), Overrides::default()).unwrap();
        assert_eq!(
            settings.strangers,
            crate::strangers::StrangerPolicy::default()
        );
        let file: ConfigFile =
            toml::from_str("[strangers]\npow_bits = 10\nper_peer_per_hour = 3\n").unwrap();
        let settings = Settings::resolve(file, Overrides::default()).unwrap();
        assert_eq!(settings.strangers.pow_bits, 10);
        assert_eq!(settings.strangers.per_peer_per_hour, 3);
        let file: ConfigFile = toml::from_str("[strangers]\npow_bits = 40\n").unwrap();
        let err = Settings::resolve(file, Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("at most 32"), "{err}");
    }
}
