//! The opt-in gateway through the user's existing mail account (issue 11):
//! mail to people who are not on mailnode goes out through the provider's
//! SMTP submission server, and mail sent to that account is fetched from
//! its IMAP server.
//!
//! - [`config`]: the account settings (`gateway.json`), checked.
//! - [`secret`]: the password, sealed under the store key.
//! - [`tls`]: certificate verification (system roots; loopback-only
//!   `--insecure-local`).
//! - [`imap_client`] / [`smtp`]: the two protocol clients.
//! - [`imap_parse`]: UIDVALIDITY, capabilities, FETCH UID/size from the
//!   client's collected lines.
//! - [`autocrypt`]: Autocrypt Level 1 header parsing and peer state;
//!   [`peers`] keeps the states, sealed.
//! - [`received`]: the inbound cursor decision and the local mark on
//!   fetched mail; [`fetch`] is the loop that fetches and files it.
//! - [`sealed`]: small files sealed under the store key.
//!
//! With no `gateway.json` in the home, nothing here runs and the node
//! behaves as it did before.

pub mod autocrypt;
pub mod command;
pub mod config;
pub mod fetch;
pub mod imap_client;
pub mod imap_parse;
pub mod outbound;
pub mod peers;
pub mod received;
pub mod sealed;
pub mod secret;
pub mod smtp;
pub mod tls;

pub use config::{Endpoint, GatewayConfig, TlsMode};
pub use secret::Password;

/// What `gateway test` found for one server.
#[derive(Debug)]
pub struct ProbeResult {
    /// `"SMTP"` or `"IMAP"`.
    pub server: &'static str,
    /// The server's address.
    pub endpoint: Endpoint,
    /// `Ok` or what failed, in words for the user.
    pub outcome: Result<(), String>,
}

/// Logs in to both servers and reports each separately.
pub async fn probe(config: &GatewayConfig, password: &Password) -> Vec<ProbeResult> {
    let smtp = smtp::probe(config, password).await;
    let imap = async {
        let mut client = imap_client::ImapClient::connect(config).await?;
        client.login(&config.user, password).await?;
        client.logout().await;
        anyhow::Ok(())
    }
    .await;
    vec![
        ProbeResult {
            server: "SMTP",
            endpoint: config.smtp.clone(),
            outcome: smtp.map_err(|err| format!("{err:#}")),
        },
        ProbeResult {
            server: "IMAP",
            endpoint: config.imap.clone(),
            outcome: imap.map_err(|err| format!("{err:#}")),
        },
    ]
}

/// A configured gateway, as the daemon runs it.
#[derive(Debug)]
pub struct Gateway {
    /// The outbound side.
    pub sender: std::sync::Arc<outbound::GatewaySender>,
    /// The Autocrypt records, shared by both sides.
    pub peers: peers::AutocryptPeers,
    /// The account settings.
    pub config: GatewayConfig,
    /// Its password.
    pub password: Password,
}

/// The configured gateway, `None` when there is none.
pub fn load(home: &std::path::Path, identity: &keys::Identity) -> anyhow::Result<Option<Gateway>> {
    let Some(config) = GatewayConfig::load(home)? else {
        return Ok(None);
    };
    let password = secret::load(home, identity.store_key(), &config)?;
    let sender = outbound::GatewaySender::new(&config, &password, identity.address())?;
    let peers = peers::AutocryptPeers::open(home, identity.store_key())?;
    tracing::info!(smtp = %config.smtp, imap = %config.imap, "gateway set up");
    Ok(Some(Gateway {
        sender,
        peers,
        config,
        password,
    }))
}
