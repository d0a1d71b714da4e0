//! One client connection's byte layers: TCP, optional TLS (STARTTLS,
//! RFC 3501 §6.2.1), optional DEFLATE (COMPRESS, RFC 4978), and framing of
//! the resulting byte stream into messages.
//!
//! This module owns the socket. It knows nothing of IMAP commands: the
//! driver asks it for the next framed event and hands it bytes to send.

use std::io;
use std::sync::Arc;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::fragment::{Event, Framer};
use super::response::Sink;
use crate::tcp;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Most decompressed bytes produced per step, so a small "zip bomb" cannot
/// make us allocate much before framing limits apply.
const INFLATE_CHUNK: usize = 64 * 1024;

/// The stream under the IMAP layer.
#[derive(Debug)]
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only during the STARTTLS handshake, or after a failed one.
    Gone,
}

/// RFC 4978 state: raw DEFLATE both ways.
#[derive(Debug)]
struct Deflate {
    inflate: Decompress,
    deflate: Compress,
    /// Compressed bytes received but not yet inflated.
    pending: Vec<u8>,
}

/// A client connection.
#[derive(Debug)]
pub struct Connection {
    transport: Transport,
    deflate: Option<Deflate>,
    framer: Framer,
    read_buf: Vec<u8>,
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "connection lost during TLS set-up",
    )
}

impl Connection {
    /// Wraps an accepted socket.
    pub fn new(stream: TcpStream, framer: Framer) -> Self {
        Connection {
            transport: Transport::Plain(stream),
            deflate: None,
            framer,
            read_buf: vec![0; READ_CHUNK],
        }
    }

    /// The framer, to adjust limits.
    pub fn framer_mut(&mut self) -> &mut Framer {
        &mut self.framer
    }

    /// Whether the client left an unfinished command behind (also when
    /// its bytes are still compressed).
    pub fn has_partial_command(&self) -> bool {
        !self.framer.is_idle() || self.deflate.as_ref().is_some_and(|d| !d.pending.is_empty())
    }

    /// The next framed event; `Ok(None)` when the client closed the
    /// connection. Cancel-safe: bytes are only consumed by completed reads.
    pub async fn next_event(&mut self) -> io::Result<Option<Event>> {
        loop {
            if let Some(event) = self.framer.next_event() {
                return Ok(Some(event));
            }
            if self.inflate_pending()? {
                continue;
            }
            if self.has_partial_command() {
                // A Nagle-bound client may be holding the rest of this
                // command until we acknowledge what it sent (issue 10).
                self.acknowledge_now();
            }
            let n = match &mut self.transport {
                Transport::Plain(stream) => stream.read(&mut self.read_buf).await?,
                Transport::Tls(stream) => stream.read(&mut self.read_buf).await?,
                Transport::Gone => return Err(gone()),
            };
            if n == 0 {
                return Ok(None);
            }
            match &mut self.deflate {
                Some(deflate) => deflate.pending.extend_from_slice(&self.read_buf[..n]),
                None => self.framer.push(&self.read_buf[..n]),
            }
        }
    }

    /// Sends the TCP acknowledgement of everything read so far now (see
    /// [`crate::tcp`]).
    fn acknowledge_now(&self) {
        match &self.transport {
            Transport::Plain(stream) => tcp::acknowledge_now(stream),
            Transport::Tls(stream) => tcp::acknowledge_now(stream.as_ref()),
            Transport::Gone => {}
        }
    }

    /// Inflates up to [`INFLATE_CHUNK`] bytes of pending compressed input
    /// into the framer. Returns whether it produced anything.
    fn inflate_pending(&mut self) -> io::Result<bool> {
        let Some(deflate) = &mut self.deflate else {
            return Ok(false);
        };
        if deflate.pending.is_empty() {
            return Ok(false);
        }
        let mut out = Vec::with_capacity(INFLATE_CHUNK);
        let before_in = deflate.inflate.total_in();
        let status = deflate
            .inflate
            .decompress_vec(&deflate.pending, &mut out, FlushDecompress::Sync)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let consumed = usize::try_from(deflate.inflate.total_in() - before_in)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        deflate.pending.drain(..consumed);
        if status == Status::StreamEnd {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "client ended the DEFLATE stream",
            ));
        }
        self.framer.push(&out);
        Ok(!out.is_empty() || consumed > 0)
    }

    /// Sends bytes (compressed when COMPRESS is active) and flushes.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let compressed;
        let wire: &[u8] = match &mut self.deflate {
            None => bytes,
            Some(deflate) => {
                compressed = deflate_all(&mut deflate.deflate, bytes)?;
                &compressed
            }
        };
        match &mut self.transport {
            Transport::Plain(stream) => {
                stream.write_all(wire).await?;
                stream.flush().await
            }
            Transport::Tls(stream) => {
                stream.write_all(wire).await?;
                stream.flush().await
            }
            Transport::Gone => Err(gone()),
        }
    }

    /// Runs the TLS handshake after `OK Begin TLS`. Bytes the client sent
    /// after STARTTLS in the clear are discarded: they must not be treated
    /// as protected commands (RFC 3501 §6.2.1, RFC 7817 §5 injection).
    pub async fn start_tls(&mut self, config: Arc<rustls::ServerConfig>) -> io::Result<()> {
        let dropped = self.framer.take_unframed();
        if !dropped.is_empty() {
            tracing::debug!(
                bytes = dropped.len(),
                "discarding plaintext sent after STARTTLS"
            );
        }
        let Transport::Plain(stream) = std::mem::replace(&mut self.transport, Transport::Gone)
        else {
            return Err(io::Error::other(
                "STARTTLS on a connection that is not plain",
            ));
        };
        let tls = TlsAcceptor::from(config).accept(stream).await?;
        self.transport = Transport::Tls(Box::new(tls));
        Ok(())
    }

    /// Starts DEFLATE in both directions after `OK DEFLATE active`. Bytes the
    /// client already sent after the COMPRESS command are compressed data.
    pub fn start_compression(&mut self) {
        let leftover = self.framer.take_unframed();
        self.deflate = Some(Deflate {
            // RFC 4978 §3: raw DEFLATE (RFC 1951), no zlib header.
            inflate: Decompress::new(false),
            deflate: Compress::new(Compression::default(), false),
            pending: leftover.to_vec(),
        });
    }

    /// Closes the write side politely.
    pub async fn shutdown(&mut self) {
        let _ = match &mut self.transport {
            Transport::Plain(stream) => stream.shutdown().await,
            Transport::Tls(stream) => stream.shutdown().await,
            Transport::Gone => Ok(()),
        };
    }
}

impl Sink for Connection {
    async fn send(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        Connection::send(self, &bytes).await
    }
}

/// Compresses `input` and ends with a sync flush so the client can inflate
/// everything sent so far (RFC 4978 §4).
fn deflate_all(deflate: &mut Compress, input: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() / 2 + 64);
    let mut offset = 0;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(1024));
        }
        let before_in = deflate.total_in();
        let before_out = deflate.total_out();
        deflate
            .compress_vec(&input[offset..], &mut out, FlushCompress::Sync)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        offset += usize::try_from(deflate.total_in() - before_in)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let produced = deflate.total_out() - before_out;
        // Done when all input is in and the flush no longer fills the
        // buffer (a full buffer may hide more flush output).
        if offset >= input.len() && out.len() < out.capacity() && produced > 0 {
            return Ok(out);
        }
        if offset >= input.len() && produced == 0 && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deflate_round_trip_with_sync_flush() {
        let mut compress = Compress::new(Compression::default(), false);
        let mut inflate = Decompress::new(false);
        let text: Vec<u8> = b"* 1 FETCH (FLAGS (\\Seen))\r\n".repeat(5000);
        for chunk in [&text[..], b"a OK done\r\n"] {
            let wire = deflate_all(&mut compress, chunk).expect("compress");
            let mut out = Vec::with_capacity(chunk.len() + 1024);
            inflate
                .decompress_vec(&wire, &mut out, FlushDecompress::Sync)
                .expect("inflate");
            assert_eq!(out, chunk, "a sync flush makes every byte available");
        }
    }
}
