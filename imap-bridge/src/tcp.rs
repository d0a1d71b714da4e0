//! TCP behaviour shared by the IMAP and SMTP servers: the socket options of
//! an accepted connection, and the immediate acknowledgement of a command
//! that is not complete yet (issue 10).
//!
//! Why the acknowledgement matters: a client that keeps Nagle's algorithm on
//! (Python's `imaplib` and `smtplib`, most scripts) holds back a small write
//! while an earlier one is unacknowledged. `imaplib` sends an APPEND literal
//! and its closing CRLF in two writes, so the CRLF waits for our ACK of the
//! literal. Linux delays that ACK (40 ms at least) on a connection it sees as
//! request/response ("ping-pong"), hoping to piggyback it on our answer; but
//! we cannot answer before the CRLF. Both sides wait, once per message.
//! Asking for the ACK at once (`TCP_QUICKACK`) whenever we go back to the
//! socket with a command only partly received breaks that circle; complete
//! commands still get their ACK piggybacked on the answer.
//!
//! This module owns socket options only; it must not read or write bytes.

use tokio::net::TcpStream;

/// A transport that runs over one TCP connection (plain or TLS), so socket
/// options can be set whatever layers sit on top.
pub(crate) trait OverTcp {
    /// The TCP connection underneath.
    fn tcp(&self) -> &TcpStream;
}

impl OverTcp for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl OverTcp for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// Options for a freshly accepted client connection: no Nagle on our side.
/// The servers already gather each answer into one write, so Nagle could
/// only delay the last segment of an answer behind the client's delayed ACK.
pub(crate) fn configure_accepted(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
}

/// Acknowledges at once everything received so far, instead of leaving it
/// to the delayed-ACK timer. Call before waiting for the rest of a command
/// that is partly read (see the module documentation). Costs one system
/// call, and one bare ACK only when an acknowledgement was pending.
pub(crate) fn acknowledge_now(stream: &impl OverTcp) {
    quickack(stream.tcp());
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn quickack(stream: &TcpStream) {
    // TCP_QUICKACK is not sticky: the kernel may go back to delaying ACKs
    // after our next answer, which is why this is called before every read
    // of an unfinished command rather than once per connection.
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_quickack(true) {
        tracing::trace!(%error, "cannot set TCP_QUICKACK");
    }
}

/// Elsewhere the delayed-ACK rules differ (BSDs acknowledge every second
/// segment and have no such switch); nothing to do.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn quickack(_stream: &TcpStream) {}
