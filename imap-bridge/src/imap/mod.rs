//! The bridge's IMAP4rev1 server (RFC 3501) with the extensions Thunderbird
//! and other clients rely on: LITERAL+, SASL-IR, ID, ENABLE, IDLE,
//! NAMESPACE, UNSELECT, UIDPLUS, MOVE, CHILDREN, SPECIAL-USE,
//! LIST-EXTENDED, LIST-STATUS, CONDSTORE, QRESYNC, SORT, SORT=DISPLAY,
//! THREAD=ORDEREDSUBJECT, THREAD=REFERENCES, ESEARCH, SEARCHRES,
//! COMPRESS=DEFLATE and STARTTLS.
//!
//! This module owns the listening loop and one task per connection. Layers,
//! from the socket up: [`connection`] (TCP, TLS, DEFLATE), [`fragment`]
//! (lines and literals, size limits), [`session`] (state machine and the one
//! dispatching `match`), and one module per command group (`auth`,
//! `mailbox`, `list`, `fetch`, `search`, `esearch`, `sort`, `thread`,
//! `message`). It reaches mail only
//! through [`MailStore`] and renders messages only through `crate::mime`; it
//! must not know how or where mail is stored.

mod auth;
mod connection;
mod driver;
pub mod esearch;
mod fetch;
mod fragment;
mod list;
mod mailbox;
mod message;
mod response;
pub use response::quoted;
mod search;
mod selected;
mod session;
mod sort;
mod thread;
pub mod utf7;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backend::MailStore;
use crate::config::BridgeCredentials;

/// Connections served at once; more are greeted with BYE (RFC 3501 §7.1.5).
const MAX_CONNECTIONS: usize = 256;
/// How long sessions get to say BYE after shutdown before being dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Configuration of the IMAP server.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// The one account served.
    pub credentials: BridgeCredentials,
    /// Largest literal (e.g. an APPENDed message) accepted, in octets.
    pub max_literal: u32,
    /// TLS settings for STARTTLS; `None` disables STARTTLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Why a connection ended abnormally. Logged, never shown to the client.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// Reading, writing, TLS or DEFLATE failed.
    #[error("IMAP connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// STARTTLS was accepted without TLS settings (a bug).
    #[error("STARTTLS without TLS configuration")]
    NoTls,
}

/// Accepts IMAP connections on `listener` until `shutdown` becomes true,
/// serving each in its own task. On shutdown it stops accepting, sessions
/// send `* BYE`, and it returns once they ended (or after a short grace
/// period).
pub async fn serve<S: MailStore>(
    listener: TcpListener,
    config: Arc<ImapConfig>,
    store: S,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((mut stream, peer)) => {
                    if sessions.len() >= MAX_CONNECTIONS {
                        tracing::warn!(%peer, "too many IMAP connections");
                        let _ = stream.write_all(b"* BYE Too many connections\r\n").await;
                        continue;
                    }
                    crate::tcp::configure_accepted(&stream);
                    tracing::debug!(%peer, "IMAP connection");
                    let (config, store, shutdown) =
                        (config.clone(), store.clone(), shutdown.clone());
                    sessions.spawn(async move {
                        if let Err(error) = driver::run(stream, config, store, shutdown).await {
                            tracing::debug!(%peer, %error, "IMAP connection ended");
                        }
                    });
                }
                Err(error) => {
                    // Usually transient (EMFILE, ECONNABORTED): back off a
                    // little instead of spinning.
                    tracing::warn!(%error, "accepting an IMAP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            () = driver::shutdown_requested(&mut shutdown) => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        sessions.abort_all();
    }
    Ok(())
}
