//! A raw, blocking IMAP client for the Thunderbird tests: sends bytes as
//! given, reads the server's responses unit by unit (a line with the
//! literals it announces and the lines after them), and speaks
//! COMPRESS=DEFLATE (RFC 4978) once asked to.
//!
//! Every read has a deadline; nothing here sleeps.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::inflate::{Inflater, stored_blocks};
use super::transcript::literal_marker;

/// How long one response may take.
pub const STEP: Duration = Duration::from_secs(20);

/// One response unit from the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The protocol lines (without CRLF and without literal contents).
    pub lines: Vec<String>,
    /// The literals, in order.
    pub literals: Vec<Vec<u8>>,
}

impl Reply {
    /// The first line.
    pub fn head(&self) -> &str {
        self.lines.first().map_or("", String::as_str)
    }

    /// The tag of a tagged response.
    pub fn tag(&self) -> Option<&str> {
        let tag = self.head().split(' ').next()?;
        (tag != "*" && tag != "+" && !tag.is_empty()).then_some(tag)
    }

    /// `OK`, `NO` or `BAD` of a tagged response.
    pub fn status(&self) -> Option<&str> {
        self.tag()?;
        self.head().split(' ').nth(1)
    }

    /// Whether this is a continuation request.
    pub fn is_continuation(&self) -> bool {
        self.head() == "+" || self.head().starts_with("+ ")
    }

    /// The lines joined with spaces (literal contents left out).
    pub fn joined(&self) -> String {
        self.lines.join(" ")
    }
}

/// A connection to an IMAP server.
pub struct Client {
    stream: TcpStream,
    /// Plain bytes received and not yet framed.
    buf: Vec<u8>,
    /// DEFLATE is on in both directions.
    inflater: Option<Inflater>,
    /// The last tag [`Client::command`] used.
    counter: u32,
}

impl Client {
    /// Connects to 127.0.0.1:`port` and reads the greeting.
    pub fn connect(port: u16) -> io::Result<(Client, Reply)> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        let mut client = Client {
            stream,
            buf: Vec::new(),
            inflater: None,
            counter: 0,
        };
        let greeting = client.reply()?;
        Ok((client, greeting))
    }

    /// Connects and logs in with LOGIN.
    pub fn logged_in(port: u16, user: &str, password: &str) -> io::Result<Client> {
        let (mut client, _) = Client::connect(port)?;
        let replies = client.command(&format!("LOGIN {} {}", quoted(user), quoted(password)))?;
        match replies.last().and_then(Reply::status) {
            Some("OK") => Ok(client),
            _ => Err(io::Error::other(format!("LOGIN failed: {replies:?}"))),
        }
    }

    /// Sends bytes (compressed when DEFLATE is on).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.inflater.is_some() {
            // Stored blocks are valid DEFLATE and end byte-aligned, as a
            // sync flush would (RFC 4978 §4).
            self.stream.write_all(&stored_blocks(bytes))?;
        } else {
            self.stream.write_all(bytes)?;
        }
        self.stream.flush()
    }

    /// Turns DEFLATE on after the server's OK to COMPRESS.
    pub fn start_compression(&mut self) -> io::Result<()> {
        let mut inflater = Inflater::default();
        let leftover = std::mem::take(&mut self.buf);
        self.buf = inflater
            .push(&leftover)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))?;
        self.inflater = Some(inflater);
        Ok(())
    }

    /// Reads more bytes into the buffer before `deadline`.
    fn fill(&mut self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no complete response in time; unframed: {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            ));
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        match &mut self.inflater {
            None => self.buf.extend_from_slice(&chunk[..n]),
            Some(inflater) => {
                let plain = inflater
                    .push(&chunk[..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))?;
                self.buf.extend_from_slice(&plain);
            }
        }
        Ok(())
    }

    /// The next response unit.
    pub fn reply(&mut self) -> io::Result<Reply> {
        let deadline = Instant::now() + STEP;
        let mut reply = Reply::default();
        loop {
            let newline = loop {
                if let Some(at) = self.buf.iter().position(|b| *b == b'\n') {
                    break at;
                }
                self.fill(deadline)?;
            };
            let raw: Vec<u8> = self.buf.drain(..=newline).collect();
            let line = String::from_utf8_lossy(&raw)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            let literal = literal_marker(&line);
            reply.lines.push(line);
            let Some((length, _)) = literal else {
                return Ok(reply);
            };
            while self.buf.len() < length {
                self.fill(deadline)?;
            }
            reply.literals.push(self.buf.drain(..length).collect());
        }
    }

    /// Reads until the tagged response of `tag`; returns every unit read.
    pub fn until_tagged(&mut self, tag: &str) -> io::Result<Vec<Reply>> {
        let mut replies = Vec::new();
        loop {
            let reply = self.reply()?;
            let done = reply.tag() == Some(tag);
            replies.push(reply);
            if done {
                return Ok(replies);
            }
        }
    }

    /// Reads until a continuation request; returns every unit read.
    pub fn until_continuation(&mut self) -> io::Result<Vec<Reply>> {
        let mut replies = Vec::new();
        loop {
            let reply = self.reply()?;
            let done = reply.is_continuation();
            replies.push(reply);
            if done {
                return Ok(replies);
            }
        }
    }

    /// Sends `TAG command` (no literals) and reads up to its tagged reply.
    pub fn command(&mut self, command: &str) -> io::Result<Vec<Reply>> {
        self.counter += 1;
        let tag = format!("w{}", self.counter);
        self.send(format!("{tag} {command}\r\n").as_bytes())?;
        self.until_tagged(&tag)
    }

    /// APPENDs a message with a LITERAL+ literal; returns the replies.
    pub fn append(&mut self, mailbox: &str, flags: &str, message: &[u8]) -> io::Result<Vec<Reply>> {
        self.counter += 1;
        let tag = format!("w{}", self.counter);
        let mut bytes = format!(
            "{tag} APPEND {} ({flags}) {{{}+}}\r\n",
            quoted(mailbox),
            message.len()
        )
        .into_bytes();
        bytes.extend_from_slice(message);
        bytes.extend_from_slice(b"\r\n");
        self.send(&bytes)?;
        self.until_tagged(&tag)
    }
}

/// A quoted string (RFC 3501 §4.3) of plain ASCII text.
pub fn quoted(text: &str) -> String {
    imap_bridge::imap::quoted(text).expect("plain ASCII text")
}

/// The number after `NAME ` in a response (`UID 7` → 7).
pub fn number_after(text: &str, name: &str) -> Option<u64> {
    let pattern = format!("{name} ");
    let mut from = 0;
    while let Some(found) = text[from..].find(&pattern) {
        let at = from + found;
        let boundary = at == 0 || !text.as_bytes()[at - 1].is_ascii_alphanumeric();
        let digits: String = text[at + pattern.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if boundary && !digits.is_empty() {
            return digits.parse().ok();
        }
        from = at + pattern.len();
    }
    None
}
