//! Shared helpers of the SMTP integration tests: a recording `Submission`,
//! a server started on 127.0.0.1:0, and a line-oriented raw client.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use imap_bridge::backend::{Envelope, RecipientError, Submission, SubmitError, Submitted};
use imap_bridge::smtp::{SmtpConfig, serve};
use imap_bridge::{BridgeCredentials, Secret};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The bridge account.
pub const USER: &str = "alice@example.org";
/// The bridge password.
pub const PASSWORD: &str = "s3cret bridge password";
/// The only address the test backend knows.
pub const KNOWN: &str = "bob@example.org";
/// The message size limit of the test server.
pub const MAX_SIZE: usize = 2048;

/// Upper bound for any single network step, so a broken server fails the
/// test instead of hanging it.
pub const STEP: Duration = Duration::from_secs(10);

/// Messages handed to the backend, with their envelopes.
type Log = Arc<Mutex<Vec<(Envelope, Vec<u8>)>>>;

/// A `Submission` that knows [`KNOWN`] and records what it is given.
#[derive(Clone, Default)]
pub struct Recorder {
    messages: Log,
}

impl Recorder {
    /// Everything submitted so far.
    pub fn messages(&self) -> Vec<(Envelope, Vec<u8>)> {
        self.messages.lock().expect("recorder lock").clone()
    }
}

impl Submission for Recorder {
    async fn check_recipient(&self, address: &str) -> Result<(), RecipientError> {
        if address.eq_ignore_ascii_case(KNOWN) {
            Ok(())
        } else {
            Err(RecipientError::Unknown(format!(
                "{address} is not in your address book; import their contact card first"
            )))
        }
    }

    async fn submit(&self, envelope: Envelope, message: Vec<u8>) -> Result<Submitted, SubmitError> {
        let mut messages = self.messages.lock().expect("recorder lock");
        messages.push((envelope, message));
        Ok(Submitted {
            queue_id: format!("test-{}", messages.len()),
        })
    }
}

/// A running server.
pub struct Server {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// What it received.
    pub recorder: Recorder,
    /// Set to `true` to stop it.
    pub shutdown: watch::Sender<bool>,
    /// The `serve` task.
    pub task: JoinHandle<std::io::Result<()>>,
}

/// Starts `serve` on 127.0.0.1:0.
pub async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let config = Arc::new(SmtpConfig {
        credentials: BridgeCredentials {
            username: USER.to_string(),
            password: Secret::new(PASSWORD),
        },
        hostname: "bridge.test".to_string(),
        max_message_size: MAX_SIZE,
        tls,
    });
    let recorder = Recorder::default();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let task = tokio::spawn(serve(listener, config, recorder.clone(), shutdown_rx));
    Server {
        addr,
        recorder,
        shutdown,
        task,
    }
}

/// A raw SMTP client over any transport.
pub struct Client<IO> {
    io: BufReader<IO>,
}

impl Client<TcpStream> {
    /// Connects and reads the greeting.
    pub async fn connect(addr: std::net::SocketAddr) -> (Self, String) {
        let stream = tokio::time::timeout(STEP, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let mut client = Client::new(stream);
        let greeting = client.reply().await;
        (client, greeting)
    }

    /// Gives back the TCP stream (for the TLS upgrade). Input already
    /// buffered is lost, which is fine right after a reply.
    pub fn into_inner(self) -> TcpStream {
        self.io.into_inner()
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Client<IO> {
    /// Wraps a connected transport.
    pub fn new(io: IO) -> Self {
        Client {
            io: BufReader::new(io),
        }
    }

    /// Sends raw bytes as they are.
    pub async fn send(&mut self, bytes: &[u8]) {
        let io = self.io.get_mut();
        io.write_all(bytes).await.expect("write");
        io.flush().await.expect("flush");
    }

    /// Reads one complete (possibly multi-line) reply, lines joined with
    /// CRLF as on the wire.
    pub async fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(STEP, self.io.read_line(&mut line))
                .await
                .expect("reply in time")
                .expect("read reply");
            assert!(read > 0, "connection closed; reply so far: {reply:?}");
            reply.push_str(&line);
            // The last line of a reply has a space after the code.
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    /// Sends one command line (CRLF added) and reads the reply.
    pub async fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Waits for the server to close the connection; returns what it sent
    /// meanwhile.
    pub async fn read_to_close(&mut self) -> String {
        let mut rest = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(STEP, self.io.read_line(&mut line))
                .await
                .expect("close in time");
            match read {
                Ok(0) | Err(_) => return rest,
                Ok(_) => rest.push_str(&line),
            }
        }
    }

    /// EHLO and AUTH PLAIN with the right credentials.
    pub async fn login(&mut self) {
        let ehlo = self.command("EHLO client.test").await;
        assert!(ehlo.starts_with("250-"), "{ehlo}");
        let reply = self
            .command(&format!("AUTH PLAIN {}", plain_token(USER, PASSWORD)))
            .await;
        assert_eq!(reply, "235 2.7.0 Authentication successful\r\n");
    }
}

/// The SASL PLAIN initial response for `user` and `password`.
pub fn plain_token(user: &str, password: &str) -> String {
    STANDARD.encode(format!("\0{user}\0{password}"))
}

/// Base64 of a string.
pub fn b64(text: &str) -> String {
    STANDARD.encode(text)
}
