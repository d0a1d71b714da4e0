//! The per-connection driver: the only code that both owns the socket and
//! talks to the session. It moves framed messages from the [`Connection`]
//! into the [`Session`] and the session's output back, and carries out the
//! connection changes the session asks for (continuations, SASL exchange,
//! IDLE, STARTTLS, COMPRESS, shutdown).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::connection::Connection;
use super::fragment::{DEFAULT_MAX_LINE, Event, Framer, Rejection};
use super::response::{Completion, Kind};
use super::session::{Next, Session};
use super::{ImapConfig, ImapError};
use crate::backend::MailStore;

/// Largest literal accepted before login: enough for any credentials, too
/// small to be a memory lever for strangers.
const PRE_AUTH_MAX_LITERAL: u32 = 8 * 1024;
/// Time allowed to log in (RFC 3501 §5.4 leaves it to the server).
const PRE_AUTH_TIMEOUT: Duration = Duration::from_secs(60);
/// Inactivity autologout; RFC 3501 §5.4 asks for at least 30 minutes, and
/// RFC 2177 clients re-issue IDLE before 29.
const AUTOLOGOUT: Duration = Duration::from_secs(31 * 60);

/// Resolves when `shutdown` is (or becomes) true. A dropped sender means no
/// shutdown will ever be signalled.
pub async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// What the read loop got.
enum Input {
    Event(Option<Event>),
    Change,
    Shutdown,
    Timeout,
}

/// Serves one client until it logs out, disconnects, or the server shuts
/// down.
pub async fn run<S: MailStore>(
    stream: TcpStream,
    config: Arc<ImapConfig>,
    store: S,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ImapError> {
    let framer = Framer::new(
        DEFAULT_MAX_LINE,
        PRE_AUTH_MAX_LITERAL.min(config.max_literal),
    );
    let mut connection = Connection::new(stream, framer);
    let mut session = Session::new(config.clone(), store);
    let mut next = Next::Command;
    loop {
        connection.send(&session.take_output()).await?;
        if session.is_authenticated() {
            connection.framer_mut().set_max_literal(config.max_literal);
        }
        let idle_tag = match &next {
            Next::Close => break,
            Next::StartTls => {
                let tls = config.tls.clone().ok_or(ImapError::NoTls)?;
                connection.start_tls(tls).await?;
                session.tls = true;
                next = Next::Command;
                continue;
            }
            Next::Compress => {
                connection.start_compression();
                session.compressed = true;
                next = Next::Command;
                continue;
            }
            Next::Idle { tag } => Some(tag.clone()),
            Next::Command | Next::Authenticate { .. } => None,
        };
        let timeout = if session.is_authenticated() {
            AUTOLOGOUT
        } else {
            PRE_AUTH_TIMEOUT
        };
        let input = tokio::select! {
            event = connection.next_event() => Input::Event(event?),
            () = session.wait_for_change(), if idle_tag.is_some() => Input::Change,
            () = shutdown_requested(&mut shutdown) => Input::Shutdown,
            () = tokio::time::sleep(timeout) => Input::Timeout,
        };
        next = match input {
            Input::Shutdown => {
                session.shutdown();
                Next::Close
            }
            Input::Timeout => {
                session.out.untagged("BYE Autologout; idle for too long");
                Next::Close
            }
            Input::Change => session.idle_update().await.or_stay(next),
            // The client closed the connection (possibly mid-command).
            Input::Event(None) => {
                if connection.has_partial_command() {
                    tracing::debug!("IMAP client disconnected in the middle of a command");
                }
                break;
            }
            Input::Event(Some(event)) => {
                handle_event(&mut session, &mut connection, event, next).await
            }
        };
    }
    connection.shutdown().await;
    Ok(())
}

/// Keeps waiting in the current mode unless the update ended the session.
trait OrStay {
    fn or_stay(self, current: Next) -> Next;
}

impl OrStay for Next {
    fn or_stay(self, current: Next) -> Next {
        if self == Next::Close { self } else { current }
    }
}

async fn handle_event<S: MailStore>(
    session: &mut Session<S>,
    connection: &mut Connection,
    event: Event,
    mode: Next,
) -> Next {
    let pending_tag = match &mode {
        Next::Authenticate { tag } | Next::Idle { tag } => Some(tag.clone()),
        _ => None,
    };
    match event {
        Event::Message(bytes) => match mode {
            Next::Authenticate { tag } => session.authenticate_continue(&tag, &bytes),
            Next::Idle { tag } => session.idle_done(&tag, &bytes).await,
            _ => session.handle(&bytes, connection).await,
        },
        Event::Literal { sync, length } => {
            if let Some(tag) = pending_tag {
                // A SASL response or DONE never carries a literal.
                if sync {
                    connection.framer_mut().reject_literal();
                    session
                        .out
                        .tagged(&tag, &Completion::bad("Unexpected literal"));
                    return Next::Command;
                }
                return mode;
            }
            if sync {
                // RFC 3501 §7.5: ask for the literal's bytes.
                tracing::trace!(length, "continuation for a synchronizing literal");
                session.out.continuation("Ready for literal data");
            }
            mode
        }
        Event::Rejected { tag, reason } => {
            let (kind, code, text) = match reason {
                Rejection::LineTooLong => (Kind::Bad, None, "Command line too long".to_string()),
                Rejection::LiteralTooBig => (
                    Kind::No,
                    Some("TOOBIG"),
                    "Literal is larger than this server accepts".to_string(),
                ),
            };
            let completion = Completion {
                kind,
                code: code.map(str::to_string),
                text,
            };
            let tag = pending_tag.or(tag).unwrap_or_else(|| "*".to_string());
            session.out.tagged(&tag, &completion);
            Next::Command
        }
    }
}
