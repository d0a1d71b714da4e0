//! The provider's SMTP submission server in the gateway tests: a small
//! ESMTP server the test owns, on loopback with implicit TLS (a
//! self-signed certificate for `localhost` from the bridge's TLS code; the
//! node is told `--insecure-local`).
//!
//! Why a sink and not Postfix: Postfix is not installed on the test
//! machines, and it wants a root-owned spool, system configuration and a
//! queue manager whose retries the test cannot steer. The sink lets a test
//! make "the provider" answer 4xx or 5xx on demand ([`Mode`]), records
//! what it accepted (envelope and bytes), and delivers each accepted
//! message into the recipient's mailbox at the test's Dovecot with IMAP
//! APPEND, as the provider's own delivery would, so Carol's mailbox really
//! receives it.
//!
//! Every read has a timeout, lines and messages are bounded, and the server
//! stops when the sink is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

const MAX_LINE: usize = 4096;
const MAX_MESSAGE: usize = 40 * 1024 * 1024;

/// How the sink answers a message's recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `250` and delivery.
    Accept,
    /// This 4xx reply at RCPT (e.g. `451 4.3.0 try later`).
    TempFail(String),
    /// This 5xx reply at RCPT (e.g. `550 5.1.1 no such user`).
    PermFail(String),
}

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// MAIL FROM.
    pub from: String,
    /// RCPT TO, in order.
    pub to: Vec<String>,
    /// The message, dot-unstuffed.
    pub data: Vec<u8>,
}

/// Where accepted mail is delivered: IMAP APPEND to the recipient's local
/// part at this plain loopback port, with this password.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Dovecot's plain IMAP port.
    pub imap_port: u16,
    /// The password every Dovecot user has.
    pub password: String,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    accepted: Vec<Accepted>,
    logins: usize,
    refusals: usize,
}

/// A running sink; stops on drop.
pub struct SmtpSink {
    /// The port on 127.0.0.1 (implicit TLS).
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A self-signed certificate for `localhost`, made by the bridge's own
/// TLS code.
fn tls_config() -> Arc<rustls::ServerConfig> {
    let (cert, key) = imap_bridge::tls::self_signed(&[]).expect("self-signed certificate");
    imap_bridge::tls::server_config(&cert, &key).expect("server TLS configuration")
}

impl SmtpSink {
    /// Starts a sink that accepts `user` / `password` and delivers into
    /// `delivery`'s Dovecot.
    pub fn start(user: &str, password: &str, delivery: Delivery) -> SmtpSink {
        let tls = tls_config();
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Accept,
            accepted: Vec::new(),
            logins: 0,
            refusals: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            let credentials = (user.to_string(), password.to_string());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let session = Session {
                                state: Arc::clone(&state),
                                credentials: credentials.clone(),
                                delivery: delivery.clone(),
                            };
                            let tls = Arc::clone(&tls);
                            std::thread::spawn(move || {
                                // A broken session is the client's problem;
                                // the test sees it in what was accepted.
                                let _ = session.run(stream, tls);
                            });
                        }
                        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        SmtpSink {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Changes how the next recipients are answered.
    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().expect("sink state").mode = mode;
    }

    /// What was accepted so far.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.state.lock().expect("sink state").accepted.clone()
    }

    /// Successful logins so far.
    pub fn logins(&self) -> usize {
        self.state.lock().expect("sink state").logins
    }

    /// Recipients refused (4xx or 5xx) so far.
    pub fn refusals(&self) -> usize {
        self.state.lock().expect("sink state").refusals
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Session {
    state: Arc<Mutex<State>>,
    credentials: (String, String),
    delivery: Delivery,
}

type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

fn reply(out: &mut BufReader<Tls>, text: &str) -> std::io::Result<()> {
    let stream = out.get_mut();
    stream.write_all(text.as_bytes())?;
    stream.write_all(b"\r\n")?;
    stream.flush()
}

fn read_line(input: &mut BufReader<Tls>) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    let read = input
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&line).trim_end().to_string()))
}

impl Session {
    fn run(self, tcp: TcpStream, tls: Arc<rustls::ServerConfig>) -> std::io::Result<()> {
        tcp.set_nonblocking(false)?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        let conn = rustls::ServerConnection::new(tls).map_err(std::io::Error::other)?;
        let mut io = BufReader::new(rustls::StreamOwned::new(conn, tcp));
        reply(&mut io, "220 localhost ESMTP test sink")?;
        let mut authed = false;
        let mut from: Option<String> = None;
        let mut to: Vec<String> = Vec::new();
        while let Some(line) = read_line(&mut io)? {
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                reply(
                    &mut io,
                    "250-localhost\r\n250-AUTH PLAIN LOGIN\r\n250-SIZE 41943040\r\n250 8BITMIME",
                )?;
            } else if upper.starts_with("AUTH PLAIN") {
                let arg = match line.split_whitespace().nth(2) {
                    Some(arg) => arg.to_string(),
                    None => {
                        reply(&mut io, "334 ")?;
                        read_line(&mut io)?.unwrap_or_default()
                    }
                };
                let decoded = B64.decode(arg.trim()).unwrap_or_default();
                let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
                let ok = parts.len() == 3
                    && parts[1] == self.credentials.0.as_bytes()
                    && parts[2] == self.credentials.1.as_bytes();
                authed = self.login(&mut io, ok)?;
            } else if upper.starts_with("AUTH LOGIN") {
                reply(&mut io, "334 VXNlcm5hbWU6")?;
                let user = B64
                    .decode(read_line(&mut io)?.unwrap_or_default().trim())
                    .unwrap_or_default();
                reply(&mut io, "334 UGFzc3dvcmQ6")?;
                let pass = B64
                    .decode(read_line(&mut io)?.unwrap_or_default().trim())
                    .unwrap_or_default();
                let ok =
                    user == self.credentials.0.as_bytes() && pass == self.credentials.1.as_bytes();
                authed = self.login(&mut io, ok)?;
            } else if upper.starts_with("MAIL FROM:") {
                if !authed {
                    reply(&mut io, "530 5.7.0 Authentication required")?;
                    continue;
                }
                from = Some(address(&line[10..]));
                to.clear();
                reply(&mut io, "250 2.1.0 Ok")?;
            } else if upper.starts_with("RCPT TO:") {
                if from.is_none() {
                    reply(&mut io, "503 5.5.1 MAIL first")?;
                    continue;
                }
                let mode = self.state.lock().expect("sink state").mode.clone();
                match mode {
                    Mode::Accept => {
                        to.push(address(&line[8..]));
                        reply(&mut io, "250 2.1.5 Ok")?;
                    }
                    Mode::TempFail(text) | Mode::PermFail(text) => {
                        self.state.lock().expect("sink state").refusals += 1;
                        reply(&mut io, &text)?;
                    }
                }
            } else if upper == "DATA" {
                if to.is_empty() {
                    reply(&mut io, "554 5.5.1 No valid recipients")?;
                    continue;
                }
                reply(&mut io, "354 End data with <CR><LF>.<CR><LF>")?;
                let data = read_data(&mut io)?;
                let accepted = Accepted {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                };
                let delivered = accepted
                    .to
                    .iter()
                    .all(|rcpt| self.deliver(rcpt, &accepted.data).is_ok());
                if delivered {
                    self.state
                        .lock()
                        .expect("sink state")
                        .accepted
                        .push(accepted);
                    reply(&mut io, "250 2.0.0 Ok: queued")?;
                } else {
                    reply(&mut io, "451 4.3.0 delivery into the mailbox failed")?;
                }
            } else if upper == "RSET" {
                from = None;
                to.clear();
                reply(&mut io, "250 2.0.0 Ok")?;
            } else if upper == "NOOP" {
                reply(&mut io, "250 2.0.0 Ok")?;
            } else if upper == "QUIT" {
                reply(&mut io, "221 2.0.0 Bye")?;
                return Ok(());
            } else {
                reply(&mut io, "502 5.5.2 Command not recognized")?;
            }
        }
        Ok(())
    }

    fn login(&self, io: &mut BufReader<Tls>, ok: bool) -> std::io::Result<bool> {
        if ok {
            self.state.lock().expect("sink state").logins += 1;
            reply(io, "235 2.7.0 Authentication successful")?;
        } else {
            reply(io, "535 5.7.8 Authentication credentials invalid")?;
        }
        Ok(ok)
    }

    /// IMAP APPEND of `data` into the INBOX of `rcpt`'s local part.
    fn deliver(&self, rcpt: &str, data: &[u8]) -> std::io::Result<()> {
        let user = rcpt.split('@').next().unwrap_or(rcpt);
        let stream = TcpStream::connect(("127.0.0.1", self.delivery.imap_port))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        let mut line = String::new();
        let mut expect = |reader: &mut BufReader<TcpStream>, prefix: &str| -> std::io::Result<()> {
            for _ in 0..100 {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    break;
                }
                if let Some(rest) = line.strip_prefix(prefix) {
                    if rest.starts_with("OK") || prefix == "+" {
                        return Ok(());
                    }
                    break;
                }
            }
            Err(std::io::Error::other(format!("IMAP: {line}")))
        };
        expect(&mut reader, "* ")?;
        write!(
            writer,
            "a LOGIN \"{user}\" \"{}\"\r\n",
            self.delivery.password
        )?;
        expect(&mut reader, "a ")?;
        write!(writer, "b APPEND INBOX {{{}}}\r\n", data.len())?;
        expect(&mut reader, "+")?;
        writer.write_all(data)?;
        writer.write_all(b"\r\n")?;
        expect(&mut reader, "b ")?;
        write!(writer, "c LOGOUT\r\n")?;
        Ok(())
    }
}

/// The address inside `<...>` of a MAIL/RCPT argument.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    let inner = arg
        .strip_prefix('<')
        .and_then(|rest| rest.split_once('>'))
        .map_or(arg, |(inner, _)| inner);
    inner.to_ascii_lowercase()
}

/// The DATA lines up to the lone dot, unstuffed, with CRLF line ends.
fn read_data(io: &mut BufReader<Tls>) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    loop {
        let mut line = Vec::new();
        let read = io
            .by_ref()
            .take(MAX_LINE as u64 * 256)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Err(std::io::Error::other("the client closed during DATA"));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(line);
        if data.len() > MAX_MESSAGE {
            return Err(std::io::Error::other("message too large"));
        }
    }
}
