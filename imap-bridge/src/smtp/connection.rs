//! The driver of one SMTP connection: it owns the socket, reads into the
//! input buffer, feeds the [`Session`], writes replies, and performs the
//! STARTTLS upgrade.
//!
//! Replies are buffered and written when no complete command is left in
//! the input, so a pipelined group (RFC 2920 §3.1) is answered in order and
//! in one write, and no reply waits for input that will not come. This
//! module must not interpret commands: that is the session's job.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::framing::{Frame, LineFramer};
use super::reply::{Refusal, Reply};
use super::session::{Action, Session};
use super::{SessionError, SmtpConfig};
use crate::backend::Submission;
use crate::tcp::{self, OverTcp};

/// How long a client may stay silent. RFC 5321 §4.5.3.2.7 suggests at
/// least five minutes for the server.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How much to read at a time.
const READ_CHUNK: usize = 16 * 1024;

/// How a drive over one transport ended.
enum End {
    /// The connection is finished.
    Closed,
    /// The client asked for TLS and got `220`: upgrade the transport.
    StartTls,
}

/// Resolves once shutdown is requested: the value becomes `true` or the
/// sender is gone (no one could ever ask us to stop any more, which only
/// happens when the node itself is going away).
pub(super) async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Answers a connection over the session limit with `421` and closes it.
pub(super) async fn refuse_busy(mut stream: TcpStream) -> Result<(), SessionError> {
    let mut out = Vec::new();
    Refusal::TooManySessions.reply().write_to(&mut out);
    stream.write_all(&out).await?;
    stream.shutdown().await?;
    Ok(())
}

/// Serves one connection to its end.
pub(super) async fn run<S: Submission>(
    mut stream: TcpStream,
    config: Arc<SmtpConfig>,
    submission: S,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SessionError> {
    tcp::configure_accepted(&stream);
    let mut session = Session::new(Arc::clone(&config), submission);
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    if *shutdown.borrow() {
        send(&mut stream, &Refusal::ShuttingDown.reply()).await?;
        stream.shutdown().await?;
        return Ok(());
    }
    send(&mut stream, &session.greeting()).await?;
    match drive(&mut stream, &mut session, &mut input, &mut shutdown).await? {
        End::Closed => Ok(()),
        End::StartTls => {
            let Some(tls) = config.tls.clone() else {
                // The session offers STARTTLS only with a configuration.
                return Ok(());
            };
            // RFC 3207 §4.2 and CVE-2011-0411: anything the client sent
            // after STARTTLS, before the handshake, must not be executed.
            input.clear();
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            let mut stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                .await
                .map_err(|_| {
                    SessionError::Handshake(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client did not complete the handshake in time",
                    ))
                })?
                .map_err(SessionError::Handshake)?;
            session.tls_started();
            tracing::debug!("smtp session upgraded to TLS");
            // The session refuses a second STARTTLS, so this drive can only
            // end with `Closed`.
            drive(&mut stream, &mut session, &mut input, &mut shutdown).await?;
            Ok(())
        }
    }
}

async fn send<IO: AsyncWrite + Unpin>(io: &mut IO, reply: &Reply) -> std::io::Result<()> {
    let mut out = Vec::new();
    reply.write_to(&mut out);
    io.write_all(&out).await?;
    io.flush().await
}

/// Runs the session over one transport until it closes or asks for TLS.
async fn drive<IO, S>(
    io: &mut IO,
    session: &mut Session<S>,
    input: &mut BytesMut,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<End, SessionError>
where
    IO: AsyncRead + AsyncWrite + OverTcp + Unpin,
    S: Submission,
{
    let mut framer = LineFramer::default();
    let mut out: Vec<u8> = Vec::new();
    loop {
        // Answer everything that is complete in the buffer, in order.
        loop {
            let response = if session.in_data() {
                match session.on_data(input).await {
                    Some(response) => response,
                    None => break,
                }
            } else {
                match framer.next_frame(input) {
                    Some(Frame::Line(line)) => session.on_line(&line).await,
                    Some(Frame::TooLong) => session.on_line_too_long(),
                    None => break,
                }
            };
            response.reply.write_to(&mut out);
            match response.action {
                Action::Continue => {}
                Action::Close => {
                    io.write_all(&out).await?;
                    io.flush().await?;
                    // A failed close after the last reply loses nothing.
                    let _ = io.shutdown().await;
                    return Ok(End::Closed);
                }
                Action::StartTls => {
                    io.write_all(&out).await?;
                    io.flush().await?;
                    return Ok(End::StartTls);
                }
            }
        }
        if !out.is_empty() {
            io.write_all(&out).await?;
            io.flush().await?;
            out.clear();
        }

        if !input.is_empty() || session.in_data() {
            // Part of a command line or of a message is in: a Nagle-bound
            // client may hold the rest until we acknowledge it (issue 10).
            tcp::acknowledge_now(io);
        }
        input.reserve(READ_CHUNK);
        let read = tokio::select! {
            biased;
            () = shutdown_requested(shutdown) => {
                close_with(io, &Refusal::ShuttingDown.reply()).await?;
                return Ok(End::Closed);
            }
            read = tokio::time::timeout(IDLE_TIMEOUT, io.read_buf(input)) => read,
        };
        match read {
            Err(_elapsed) => {
                close_with(io, &Refusal::Timeout.reply()).await?;
                return Ok(End::Closed);
            }
            Ok(Ok(0)) => return Ok(End::Closed),
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(error.into()),
        }
    }
}

async fn close_with<IO: AsyncWrite + Unpin>(io: &mut IO, reply: &Reply) -> std::io::Result<()> {
    send(io, reply).await?;
    let _ = io.shutdown().await;
    Ok(())
}
