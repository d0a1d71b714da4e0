//! Shared harness of the IMAP integration tests: starts `imap::serve` on
//! 127.0.0.1:0 over a `MemoryStore` and talks raw IMAP to it, with a
//! deadline on every read.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use imap_bridge::imap::{ImapConfig, serve};
use imap_bridge::memory::MemoryStore;
use imap_bridge::{BridgeCredentials, Secret};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Deadline of one step (a read, a handshake).
pub const STEP: Duration = Duration::from_secs(5);
/// The account.
pub const USER: &str = "me@example.org";
/// Its bridge password.
pub const PASSWORD: &str = "correct horse battery";
/// Literal limit of the test server.
pub const MAX_LITERAL: u32 = 64 * 1024;

/// A message as a client would APPEND it.
pub const MESSAGE: &str = "From: Alice <alice@example.org>\r\n\
To: Bob <me@example.org>\r\n\
Subject: Lunch on Friday\r\n\
Date: Tue, 3 Mar 2026 10:00:00 +0000\r\n\
Message-ID: <lunch@example.org>\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Shall we meet at noon?\r\n";

/// A running server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its store, for delivering mail behind the clients' backs.
    pub store: MemoryStore,
    shutdown: watch::Sender<bool>,
    handle: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Signals shutdown and waits for `serve` to return.
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task")
            .expect("serve result");
    }
}

/// Starts a server without TLS.
pub async fn start() -> Server {
    start_with(None).await
}

/// Starts a server, with STARTTLS when `tls` is given.
pub async fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let store = MemoryStore::new();
    let config = Arc::new(ImapConfig {
        credentials: BridgeCredentials {
            username: USER.to_string(),
            password: Secret::new(PASSWORD),
        },
        max_literal: MAX_LITERAL,
        tls,
    });
    let (shutdown, receiver) = watch::channel(false);
    let handle = tokio::spawn(serve(listener, config, store.clone(), receiver));
    Server {
        addr,
        store,
        shutdown,
        handle,
    }
}

/// Any byte stream the client can use.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A raw IMAP client.
pub struct Client {
    stream: Box<dyn Io>,
    buf: Vec<u8>,
    tag: u32,
    deflate: Option<(Compress, Decompress)>,
}

impl Client {
    /// Connects and returns the client and the greeting line.
    pub async fn connect(addr: SocketAddr) -> (Client, String) {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut client = Client::new(Box::new(stream));
        let greeting = client.line().await;
        (client, greeting)
    }

    /// Connects and logs in.
    pub async fn logged_in(addr: SocketAddr) -> Client {
        let (mut client, _) = Client::connect(addr).await;
        let reply = client
            .command(&format!("LOGIN {USER} \"{PASSWORD}\""))
            .await;
        assert!(ok(&reply), "{reply}");
        client
    }

    /// Wraps a stream.
    pub fn new(stream: Box<dyn Io>) -> Client {
        Client {
            stream,
            buf: Vec::new(),
            tag: 0,
            deflate: None,
        }
    }

    /// The stream, e.g. for a TLS handshake.
    pub fn into_inner(self) -> Box<dyn Io> {
        assert!(self.buf.is_empty(), "no unread bytes before a handshake");
        self.stream
    }

    /// Turns on COMPRESS=DEFLATE on our side.
    pub fn start_deflate(&mut self) {
        assert!(self.buf.is_empty());
        self.deflate = Some((
            Compress::new(Compression::fast(), false),
            Decompress::new(false),
        ));
    }

    /// Sends raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        let wire = match &mut self.deflate {
            None => bytes.to_vec(),
            Some((compress, _)) => {
                let mut out = Vec::with_capacity(bytes.len() + 1024);
                compress
                    .compress_vec(bytes, &mut out, FlushCompress::Sync)
                    .expect("compress");
                out
            }
        };
        self.stream.write_all(&wire).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = vec![0u8; 16 * 1024];
        let n = tokio::time::timeout(STEP, self.stream.read(&mut chunk))
            .await
            .expect("server answered in time")
            .expect("read");
        if n == 0 {
            return false;
        }
        match &mut self.deflate {
            None => self.buf.extend_from_slice(&chunk[..n]),
            Some((_, inflate)) => {
                let mut out = Vec::with_capacity(n * 20 + 4096);
                inflate
                    .decompress_vec(&chunk[..n], &mut out, FlushDecompress::Sync)
                    .expect("inflate");
                self.buf.extend_from_slice(&out);
            }
        }
        true
    }

    /// One response line, with any literals it announces inlined. Panics
    /// on timeout or EOF.
    pub async fn line(&mut self) -> String {
        self.try_line().await.expect("connection still open")
    }

    /// Like [`Client::line`], `None` on EOF.
    pub async fn try_line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        loop {
            while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let part: Vec<u8> = self.buf.drain(..=pos).collect();
                line.extend_from_slice(&part);
                match literal_length(&part) {
                    None => return Some(String::from_utf8_lossy(&line).into_owned()),
                    Some(length) => {
                        while self.buf.len() < length {
                            if !self.fill().await {
                                return None;
                            }
                        }
                        line.extend(self.buf.drain(..length));
                    }
                }
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// Reads lines until the tagged response of `tag`; returns them all.
    pub async fn until_tagged(&mut self, tag: &str) -> String {
        let mut all = String::new();
        let prefix = format!("{tag} ");
        loop {
            let line = self.line().await;
            all.push_str(&line);
            if line.starts_with(&prefix) {
                return all;
            }
        }
    }

    /// A fresh tag.
    pub fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("t{}", self.tag)
    }

    /// Sends `TAG command` and returns every line up to the tagged reply.
    pub async fn command(&mut self, command: &str) -> String {
        let tag = self.next_tag();
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        self.until_tagged(&tag).await
    }

    /// Lets another session SELECT `mailbox` and log out, so the messages
    /// in it now are not `\Recent` for the sessions a test drives (RFC
    /// 3501 §2.3.2): a mailbox someone looked at before, as most are.
    pub async fn seen_before(addr: SocketAddr, mailbox: &str) {
        let mut other = Client::logged_in(addr).await;
        other.select(mailbox).await;
        assert!(ok(&other.command("LOGOUT").await));
    }

    /// Selects a mailbox, asserting success.
    pub async fn select(&mut self, mailbox: &str) -> String {
        let reply = self.command(&format!("SELECT {mailbox}")).await;
        assert!(ok(&reply), "{reply}");
        reply
    }

    /// APPENDs with a LITERAL+ literal; returns the new UID.
    pub async fn append(&mut self, mailbox: &str, flags: &str, message: &str) -> u32 {
        let tag = self.next_tag();
        let command = format!(
            "{tag} APPEND {mailbox} ({flags}) {{{}+}}\r\n{message}\r\n",
            message.len()
        );
        self.send(command.as_bytes()).await;
        let reply = self.until_tagged(&tag).await;
        assert!(ok(&reply), "{reply}");
        appended_uid(&reply)
    }

    /// Reads until EOF (after BYE); returns what came.
    pub async fn until_closed(&mut self) -> String {
        let mut all = String::new();
        while let Some(line) = self.try_line().await {
            all.push_str(&line);
        }
        all
    }
}

/// `{n}` at the end of a response line.
fn literal_length(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?;
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|b| *b == b'{')?;
    std::str::from_utf8(&inner[open + 1..]).ok()?.parse().ok()
}

/// Whether the last line of a reply is a tagged OK.
pub fn ok(reply: &str) -> bool {
    last_line(reply)
        .split_whitespace()
        .nth(1)
        .is_some_and(|word| word == "OK")
}

/// The last line of a reply (the tagged one).
pub fn last_line(reply: &str) -> &str {
    reply.trim_end().rsplit("\r\n").next().unwrap_or_default()
}

/// The UID in `[APPENDUID v uid]`.
pub fn appended_uid(reply: &str) -> u32 {
    let start = reply.find("[APPENDUID ").expect("APPENDUID") + "[APPENDUID ".len();
    let rest = &reply[start..];
    let end = rest.find(']').expect("closing bracket");
    rest[..end]
        .split(' ')
        .nth(1)
        .and_then(|uid| uid.parse().ok())
        .expect("uid")
}

/// Waits until `check` holds for the store, polling with a deadline.
pub async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + STEP;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::task::yield_now().await;
    }
}
