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
//! - [`autocrypt`]: Autocrypt Level 1 header parsing and peer state
//!   (not yet wired to an inbound path).
//! - [`received`]: the inbound cursor decision and the local mark on
//!   fetched mail (the fetch loop is not built yet).
//!
//! With no `gateway.json` in the home, nothing here runs and the node
//! behaves as it did before.

pub mod autocrypt;
pub mod command;
pub mod config;
pub mod imap_client;
pub mod imap_parse;
pub mod outbound;
pub mod received;
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

/// The outbound side of a configured gateway, `None` when there is none.
pub fn load_sender(
    home: &std::path::Path,
    identity: &keys::Identity,
) -> anyhow::Result<Option<std::sync::Arc<outbound::GatewaySender>>> {
    let Some(config) = GatewayConfig::load(home)? else {
        return Ok(None);
    };
    let password = secret::load(home, identity.store_key(), &config)?;
    let sender = outbound::GatewaySender::new(&config, &password, identity.address())?;
    tracing::info!(smtp = %config.smtp, imap = %config.imap, "gateway set up");
    Ok(Some(sender))
}
