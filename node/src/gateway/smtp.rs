//! The provider's SMTP submission server, through lettre.
//!
//! TLS is required (implicit TLS or STARTTLS; lettre's `Tls::Required`
//! refuses to go on without the upgrade), so neither the password nor a
//! message is sent in the clear.

use std::time::Duration;

use anyhow::Context;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use super::config::{GatewayConfig, TlsMode};
use super::imap_client::clean;
use super::secret::Password;

/// How long one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);

/// A transport to the provider, logged in with `password`.
pub fn transport(
    config: &GatewayConfig,
    password: &Password,
) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let params = TlsParameters::builder(config.smtp.host.clone())
        .dangerous_accept_invalid_certs(config.insecure_local)
        .build_rustls()
        .context("cannot set up TLS for SMTP")?;
    let tls = match config.tls {
        TlsMode::Implicit => Tls::Wrapper(params),
        TlsMode::Starttls => Tls::Required(params),
    };
    Ok(
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.smtp.host.clone())
            .port(config.smtp.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT))
            .credentials(Credentials::new(
                config.user.clone(),
                password.expose().to_string(),
            ))
            .build(),
    )
}

/// Describes a lettre error for the user: which kind, and the server's own
/// words when it gave some.
pub fn describe(err: &lettre::transport::smtp::Error) -> String {
    let kind = if err.is_tls() {
        "TLS failed (a certificate the system roots do not vouch for, or a name that does not \
         match, is refused; nothing was sent)"
    } else if err.is_permanent() {
        "the server refused"
    } else if err.is_transient() {
        "the server asked to try later"
    } else if err.is_timeout() {
        "no answer in time"
    } else {
        "the connection failed"
    };
    let detail = std::error::Error::source(err)
        .map(|source| format!("{err}: {source}"))
        .unwrap_or_else(|| err.to_string());
    format!("{kind}: {}", clean(&detail))
}

/// Connects, says EHLO, upgrades to TLS and logs in.
pub async fn probe(config: &GatewayConfig, password: &Password) -> anyhow::Result<()> {
    let transport = transport(config, password)?;
    match transport.test_connection().await {
        Ok(true) => Ok(()),
        Ok(false) => anyhow::bail!("the server did not answer NOOP after the login"),
        Err(err) => anyhow::bail!("{}", describe(&err)),
    }
}
