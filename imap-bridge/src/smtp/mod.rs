//! The localhost SMTP submission server (RFC 5321, RFC 6409) through which
//! mail clients hand outgoing mail to the node.
//!
//! This module owns the listener: it accepts connections, runs one session
//! task per connection, and stops them on shutdown. The pieces:
//! - [`framing`]: cuts the byte stream into command lines and DATA content
//!   (public so that fuzz targets can drive it);
//! - `session`: the protocol state machine (no I/O);
//! - `auth`: the SASL PLAIN and LOGIN exchanges (RFC 4954);
//! - `reply`: reply formatting and the one table of refusal codes;
//! - `connection`: the driver that owns a socket (and its TLS upgrade,
//!   RFC 3207) and feeds the session.
//!
//! Messages reach the node only through [`Submission`]; nothing here
//! stores mail, and neither message content nor passwords are logged.

mod auth;
mod connection;
pub mod framing;
mod reply;
mod session;
#[cfg(test)]
mod session_tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backend::Submission;
use crate::config::BridgeCredentials;

pub use session::{MAX_AUTH_FAILURES, MAX_RECIPIENTS};

/// Most sessions served at once; further connections get `421` and are
/// closed. A localhost bridge has a handful of clients.
pub const MAX_SESSIONS: usize = 64;

/// How long `serve` waits for sessions to say goodbye after shutdown before
/// it drops them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Configuration of the SMTP submission server.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// The account clients must authenticate as.
    pub credentials: BridgeCredentials,
    /// The name the server gives itself in the greeting and EHLO.
    pub hostname: String,
    /// Largest message accepted, in bytes (announced as SIZE, RFC 1870).
    pub max_message_size: usize,
    /// Server TLS configuration; when present, STARTTLS is offered.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Why a session ended abnormally (for logs).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Reading from or writing to the client failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The STARTTLS handshake failed or timed out.
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
}

/// Serves SMTP submission on `listener` until `shutdown` becomes `true` (or
/// its sender is dropped). Every connection is served by its own task; on
/// shutdown the server stops accepting, every session answers
/// `421 4.3.2 Service shutting down` at its next read and closes, and
/// `serve` returns once they have (or after a grace period).
///
/// Errors accepting single connections are logged and do not stop the
/// server.
pub async fn serve<S: Submission>(
    listener: TcpListener,
    config: Arc<SmtpConfig>,
    submission: S,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            () = connection::shutdown_requested(&mut shutdown) => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "smtp connection");
                    let config = Arc::clone(&config);
                    let submission = submission.clone();
                    let shutdown = shutdown.clone();
                    let too_many = sessions.len() >= MAX_SESSIONS;
                    sessions.spawn(async move {
                        let result = if too_many {
                            connection::refuse_busy(stream).await
                        } else {
                            connection::run(stream, config, submission, shutdown).await
                        };
                        if let Err(error) = result {
                            tracing::debug!(%peer, %error, "smtp session ended");
                        }
                    });
                }
                Err(error) => {
                    // Typically out of file descriptors: wait a little
                    // instead of spinning, then keep serving.
                    tracing::warn!(%error, "cannot accept an SMTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = sessions.len(),
            "SMTP sessions did not end in time; dropping them"
        );
        sessions.abort_all();
    }
    Ok(())
}
