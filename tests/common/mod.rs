//! End-to-end test harness: real `mailnode` processes with temporary homes on
//! loopback, driven with real clients (lettre, Python's imaplib/smtplib,
//! mbsync, curl).
//!
//! Each node gets its own temporary home and a fixed libp2p port on
//! 127.0.0.1 (chosen free at creation and kept across restarts, so the
//! address hint in its contacts' address books stays valid). IMAP and SMTP
//! ports are chosen by the OS at every start and read back from the
//! daemon's `run.json`. Daemon logs go to `daemon.log` inside the home, so
//! the "nothing in the clear" scans cover them too.
//!
//! Nothing here sleeps to synchronise: every wait polls a condition against
//! a deadline and fails with a description of what it waited for.

#![allow(dead_code)]

pub mod devices;
pub mod dht;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The passphrase test nodes protect their secrets with.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// Path of the `mailnode` binary under test.
pub fn mailnode_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mailnode"))
}

/// The repository's `tests/` directory.
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests")
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free TCP port on 127.0.0.1, below Linux's ephemeral range
/// (32768–60999): a port the OS hands out for `:0` can be taken by any
/// outgoing connection before the daemon binds it, which happens when many
/// daemons dial each other. Free now (TCP and UDP, for QUIC) is checked by
/// binding; bounded to a few thousand tries.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let spread = (std::process::id() % 500) as u16 * 20;
    for _ in 0..4000 {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % 12000;
        let port = 20000 + (spread + offset) % 12000;
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 31999")
}

/// Where a running daemon listens (from its `run.json`).
#[derive(Debug, Clone)]
pub struct Running {
    /// Daemon pid.
    pub pid: u32,
    /// IMAP port on 127.0.0.1.
    pub imap: u16,
    /// SMTP port on 127.0.0.1.
    pub smtp: u16,
}

/// One mailnode with its own home.
pub struct Node {
    /// Short name (`alice`).
    pub name: String,
    /// Its mail address.
    pub email: String,
    /// The temporary home (deleted on drop).
    pub home: tempfile::TempDir,
    /// libp2p TCP port on 127.0.0.1.
    pub p2p_port: u16,
    child: Option<Child>,
    running: Option<Running>,
    /// Extra `run` flags.
    pub extra_run_args: Vec<String>,
    /// Issue 6: the network namespace the daemon and its clients run in
    /// (`tests/netns`), and `--listen` addresses replacing the loopback one.
    netns: Option<String>,
    listen: Option<Vec<String>>,
}

impl Node {
    /// Creates a home and an identity (`mailnode keygen`) protected by the
    /// test passphrase.
    pub fn create(name: &str) -> Node {
        Node::create_with_email(name, &format!("{name}@example.org"))
    }

    /// Like [`Node::create`] with an explicit address.
    pub fn create_with_email(name: &str, email: &str) -> Node {
        let home = tempfile::Builder::new()
            .prefix(&format!("mailnode-{name}-"))
            .tempdir()
            .expect("tempdir");
        let node = Node::at(name, email, home);
        let display = format!("{}{}", name[..1].to_uppercase(), &name[1..]);
        let out = node.cli(&[
            "keygen",
            "--name",
            &display,
            "--email",
            email,
            "--secret-store",
            "passphrase",
        ]);
        assert!(out.status.success(), "keygen failed: {}", describe(&out));
        node
    }

    /// The home path.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A `mailnode` command for this home with the test passphrase.
    pub fn command(&self) -> Command {
        let mut cmd = self.client_command(mailnode_bin());
        cmd.arg("--home")
            .arg(self.home())
            .env("MAILNODE_PASSPHRASE", PASSPHRASE)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env(
                "RUST_LOG",
                std::env::var("MAILNODE_TEST_LOG").unwrap_or_else(|_| "info,mailnode=debug".into()),
            );
        cmd
    }

    /// Runs a CLI command to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run mailnode")
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "`mailnode {}` failed for {}: {}",
            args.join(" "),
            self.name,
            describe(&out)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Our libp2p address on loopback.
    pub fn p2p_addr(&self) -> String {
        format!("/ip4/127.0.0.1/tcp/{}", self.p2p_port)
    }

    /// Imports `other`'s card into this node's address book, with its
    /// loopback address as the hint.
    pub fn add_contact(&self, other: &Node) {
        let card = other.cli_ok(&["contacts", "export"]);
        let path = self.home().join(format!("{}.asc", other.name));
        fs::write(&path, card).expect("write card");
        self.cli_ok(&[
            "contacts",
            "import",
            path.to_str().expect("utf-8 path"),
            "--addr",
            &other.p2p_addr(),
        ]);
    }

    /// Starts the daemon and waits until it has published its ports.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let _ = fs::remove_file(self.home().join("run.json"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open log");
        let mut cmd = self.command();
        let listen = self.listen.clone().unwrap_or_else(|| vec![self.p2p_addr()]);
        cmd.arg("run")
            .args(listen.iter().flat_map(|a| ["--listen", a.as_str()]))
            .args(["--imap", "127.0.0.1:0", "--smtp", "127.0.0.1:0"]);
        // Outside a namespace nodes never look for peers on the LAN (that
        // LAN is the machine's); inside one, mDNS stays on unless asked.
        if self.netns.is_none() {
            cmd.arg("--no-mdns");
        }
        cmd.args(&self.extra_run_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let mut child = cmd.spawn().expect("cannot start mailnode run");
        let pid = child.id();
        let run_file = self.home().join("run.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        let running = loop {
            if let Ok(text) = fs::read_to_string(&run_file) {
                let json: serde_json::Value = serde_json::from_str(&text).expect("run.json");
                if json["pid"].as_u64() == Some(u64::from(pid)) {
                    break Running {
                        pid,
                        imap: port_of(json["imap"].as_str().expect("imap")),
                        smtp: port_of(json["smtp"].as_str().expect("smtp")),
                    };
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{}'s daemon exited during start-up ({status}); log:\n{}",
                    self.name,
                    self.log()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{}'s daemon did not start; log:\n{}", self.name, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.child = Some(child);
        self.running = Some(running);
    }

    /// Stops the daemon with SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        self.running = None;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    assert!(
                        status.success(),
                        "{} did not shut down cleanly ({status}); log:\n{}",
                        self.name,
                        self.log()
                    );
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    panic!("{} did not stop within 30 s", self.name);
                }
            }
        }
    }

    /// Kills the daemon with SIGKILL (a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.running = None;
    }

    /// Ports of the running daemon.
    pub fn running(&self) -> &Running {
        self.running
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.name))
    }

    /// The bridge password, from `mailnode bridge`.
    pub fn password(&self) -> String {
        let out = self.cli_ok(&["bridge"]);
        value_of(&out, "password").expect("bridge prints the password")
    }

    /// Path of the daemon log.
    pub fn log_path(&self) -> PathBuf {
        self.home().join("daemon.log")
    }

    /// The daemon log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// How many times `needle` occurs in the log.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// IMAP client arguments for the Python tool: host port user pass.
    pub fn imap_args(&self) -> Vec<String> {
        vec![
            "127.0.0.1".into(),
            self.running().imap.to_string(),
            self.email.clone(),
            self.password(),
        ]
    }

    /// Number of messages in a mailbox (IMAP STATUS through imaplib).
    pub fn count(&self, mailbox: &str) -> usize {
        let out = mailtool(&[&["count"][..], &str_refs(&self.imap_args()), &[mailbox]].concat());
        out.trim().parse().expect("count prints a number")
    }

    /// Every message of a mailbox as raw bytes (UID order), via imaplib.
    pub fn fetch_all(&self, mailbox: &str) -> Vec<Vec<u8>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir_str = dir.path().to_str().expect("utf-8").to_string();
        mailtool(
            &[
                &["fetch-all"][..],
                &str_refs(&self.imap_args()),
                &[mailbox, &dir_str],
            ]
            .concat(),
        );
        let mut files: Vec<PathBuf> = fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort_by_key(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u32>().ok())
                .unwrap_or(0)
        });
        files
            .iter()
            .map(|p| fs::read(p).expect("read message"))
            .collect()
    }

    /// Submits a raw message through the SMTP bridge with lettre.
    pub fn send_with_lettre(&self, to: &[&str], raw: &[u8]) {
        self.try_send_with_lettre(to, raw)
            .unwrap_or_else(|err| panic!("lettre could not submit: {err}"));
    }

    /// Like [`Node::send_with_lettre`], returning the server's refusal.
    pub fn try_send_with_lettre(&self, to: &[&str], raw: &[u8]) -> Result<(), String> {
        use lettre::address::Envelope;
        use lettre::transport::smtp::authentication::{Credentials, Mechanism};
        use lettre::{SmtpTransport, Transport};
        let transport = SmtpTransport::builder_dangerous("127.0.0.1")
            .port(self.running().smtp)
            .credentials(Credentials::new(self.email.clone(), self.cached_password()))
            .authentication(vec![Mechanism::Plain])
            .build();
        let envelope = Envelope::new(
            Some(self.email.parse().expect("from")),
            to.iter().map(|t| t.parse().expect("to")).collect(),
        )
        .expect("envelope");
        // lettre always ends DATA with "\r\n.\r\n", so a message that
        // already ends in CRLF would gain an empty line; hand it the message
        // without its final CRLF so that what it transmits is exactly `raw`.
        let raw = raw.strip_suffix(b"\r\n").unwrap_or(raw);
        transport
            .send_raw(&envelope, raw)
            .map(|_| ())
            .map_err(|err| err.to_string())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("bad address {addr}"))
}

/// The value of a `name: value` line.
pub fn value_of(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(": "))
            .map(|v| v.trim().to_string())
    })
}

/// Converts owned strings to `&str`s.
pub fn str_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Runs `tests/py/mailtool.py` with arguments; it must succeed. Returns stdout.
pub fn mailtool(args: &[&str]) -> String {
    let out = mailtool_output(args);
    assert!(
        out.status.success(),
        "mailtool {} failed: {}",
        args.first().unwrap_or(&""),
        describe(&out)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs `tests/py/mailtool.py` and returns whatever happened.
pub fn mailtool_output(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(tests_dir().join("py/mailtool.py"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run python3")
}

/// stdout + stderr of a finished command, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir` (recursively) that contains `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file()
            && let Ok(bytes) = fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(path);
        }
    }
    found
}

/// A message with a text body and a binary attachment, as lettre formats it.
pub fn message_with_attachment(
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
    attachment: &[u8],
) -> Vec<u8> {
    use lettre::message::header::ContentType;
    use lettre::message::{Attachment, MultiPart, SinglePart};
    let message = lettre::Message::builder()
        .from(from.parse().expect("from"))
        .to(to.parse().expect("to"))
        .subject(subject)
        // A client that sets its own Message-ID gets its message delivered
        // byte for byte; without one the bridge adds it (RFC 6409 §8.3).
        .message_id(Some(format!(
            "<{:016x}@mailnode.test>",
            rand::random::<u64>()
        )))
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(body.to_string()))
                .singlepart(Attachment::new("data.bin".to_string()).body(
                    attachment.to_vec(),
                    ContentType::parse("application/octet-stream").expect("ctype"),
                )),
        )
        .expect("message");
    message.formatted()
}

/// Writes `bytes` to a new file in `dir`, returning its path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let mut file = fs::File::create(&path).expect("create");
    file.write_all(bytes).expect("write");
    path
}

/// The `Received:` field a receiving node puts first on mail from a peer
/// (`from <sender PeerId> by <our PeerId> with mailnode id <hex>; <date>`),
/// checked for that shape, and the rest of the message; `None` and the
/// whole message when it has none (the sender's own Sent copy).
pub fn split_received(message: &[u8]) -> (Option<String>, &[u8]) {
    let prefix = b"Received: from ";
    if !message.starts_with(prefix) {
        return (None, message);
    }
    let end = message
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("line end");
    let line = String::from_utf8_lossy(&message[..end]).to_string();
    let words: Vec<&str> = line.split(' ').collect();
    assert!(
        words.len() >= 10
            && words[1] == "from"
            && words[2].starts_with("12D3")
            && words[3] == "by"
            && words[4].starts_with("12D3")
            && words[5..7] == ["with", "mailnode"]
            && words[7] == "id"
            && words[8].len() == 33
            && words[8].ends_with(';'),
        "not mailnode's trace field: {line}"
    );
    (Some(line), &message[end + 2..])
}

/// Strips the verified-signer field the recipient node adds first (after
/// its `Received:` field, see [`split_received`]); returns (that field's
/// value, the rest).
pub fn split_verified(message: &[u8]) -> (String, Vec<u8>) {
    let (_, message) = split_received(message);
    let prefix = b"X-Mailnode-Verified-Signer: ";
    assert!(
        message.starts_with(prefix),
        "the message does not start with the verified-signer field:\n{}",
        String::from_utf8_lossy(&message[..message.len().min(400)])
    );
    let end = message
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("line end");
    (
        String::from_utf8_lossy(&message[prefix.len()..end]).to_string(),
        message[end + 2..].to_vec(),
    )
}

// ---------------------------------------------------------------------------
// Issue 3: helpers for the real-client tests (bridge_clients, uid_stability,
// qresync, sent_dedupe). They wrap `tests/py/mailtool.py` subcommands.

/// One message as IMAP shows it: its UID, Message-ID and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageState {
    /// The message's UID.
    pub uid: u32,
    /// Its Message-ID field (`<...>`), empty if it has none.
    pub msgid: String,
    /// Its flags, without `\Recent` (which depends on the session).
    pub flags: std::collections::BTreeSet<String>,
}

/// One mailbox as EXAMINE and `UID FETCH 1:*` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxState {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT.
    pub uidnext: u32,
    /// HIGHESTMODSEQ (CONDSTORE), if the server sent it.
    pub highestmodseq: Option<u64>,
    /// The messages in UID order.
    pub messages: Vec<MessageState>,
}

impl MailboxState {
    /// The UID of the message with this Message-ID.
    pub fn uid_of(&self, msgid: &str) -> Option<u32> {
        self.messages
            .iter()
            .find(|m| m.msgid == msgid)
            .map(|m| m.uid)
    }

    /// The message with this Message-ID.
    pub fn message(&self, msgid: &str) -> Option<&MessageState> {
        self.messages.iter().find(|m| m.msgid == msgid)
    }

    /// (Message-ID, UID) of every message, sorted by UID.
    pub fn uid_map(&self) -> Vec<(String, u32)> {
        self.messages
            .iter()
            .map(|m| (m.msgid.clone(), m.uid))
            .collect()
    }
}

/// Every selectable mailbox of a node, by name.
pub type NodeState = std::collections::BTreeMap<String, MailboxState>;

fn json_u64(value: &serde_json::Value, what: &str) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("mailtool state: {what} is not a number: {value}"))
}

fn parse_state(text: &str) -> NodeState {
    let json: serde_json::Value = serde_json::from_str(text).expect("mailtool state prints JSON");
    let boxes = json.as_object().expect("mailtool state prints an object");
    boxes
        .iter()
        .map(|(name, b)| {
            let messages = b["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .map(|m| MessageState {
                    uid: u32::try_from(json_u64(&m["uid"], "uid")).expect("uid fits u32"),
                    msgid: m["msgid"].as_str().unwrap_or_default().to_string(),
                    flags: m["flags"]
                        .as_array()
                        .expect("flags")
                        .iter()
                        .filter_map(|f| f.as_str())
                        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                        .map(str::to_string)
                        .collect(),
                })
                .collect();
            let state = MailboxState {
                uidvalidity: u32::try_from(json_u64(&b["uidvalidity"], "uidvalidity"))
                    .expect("uidvalidity fits u32"),
                uidnext: u32::try_from(json_u64(&b["uidnext"], "uidnext"))
                    .expect("uidnext fits u32"),
                highestmodseq: b["highestmodseq"].as_u64(),
                messages,
            };
            (name.clone(), state)
        })
        .collect()
}

/// The Python interpreter itself: a version manager's `python3` shim
/// (pyenv) costs a quarter of a second per start on a loaded machine.
pub fn python_bin() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            Command::new("python3")
                .args(["-c", "import sys; print(sys.executable)"])
                .output()
                .ok()
                .filter(|out| out.status.success())
                .and_then(|out| String::from_utf8(out.stdout).ok())
                .map(|path| PathBuf::from(path.trim()))
                .filter(|path| path.is_file())
                .unwrap_or_else(|| PathBuf::from("python3"))
        })
        .clone()
}

/// Runs `tests/py/mailtool.py` with [`python_bin`]; returns whatever happened.
pub fn mailtool_fast(args: &[&str]) -> Output {
    Command::new(python_bin())
        .arg(tests_dir().join("py/mailtool.py"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run python3")
}

/// A small RFC 5322 message with a Message-ID `<{id}@example.org>`.
pub fn simple_message(from: &str, to: &str, subject: &str, id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Tue, 24 Nov 2026 19:00:00 +0000\r\n\
         Message-ID: <{id}@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Bridge passwords by home: `mailnode bridge` unlocks the identity
/// (Argon2id) on every call, and the password never changes.
static PASSWORDS: std::sync::Mutex<std::collections::BTreeMap<PathBuf, String>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

impl Node {
    /// The bridge password, asked of `mailnode bridge` once per home.
    pub fn cached_password(&self) -> String {
        let mut cache = PASSWORDS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry(self.home().to_path_buf())
            .or_insert_with(|| self.password())
            .clone()
    }

    /// IMAP client arguments (host port user pass) with the cached password.
    pub fn imap_args_cached(&self) -> Vec<String> {
        vec![
            "127.0.0.1".into(),
            self.running().imap.to_string(),
            self.email.clone(),
            self.cached_password(),
        ]
    }

    /// SMTP client arguments for the Python tool: host port user pass.
    pub fn smtp_args(&self) -> Vec<String> {
        vec![
            "127.0.0.1".into(),
            self.running().smtp.to_string(),
            self.email.clone(),
            self.cached_password(),
        ]
    }

    /// Runs a mailtool subcommand that takes this node's IMAP settings
    /// (host port user pass) before `rest`; it must succeed.
    pub fn imap_tool(&self, subcommand: &str, rest: &[&str]) -> String {
        let imap = self.imap_args_cached();
        let out = mailtool_fast(&[&[subcommand][..], &str_refs(&imap), rest].concat());
        assert!(
            out.status.success(),
            "mailtool {subcommand} failed: {}",
            describe(&out)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Like [`Node::imap_tool`], returning whatever happened.
    pub fn imap_tool_output(&self, subcommand: &str, rest: &[&str]) -> Output {
        mailtool_fast(&[&[subcommand][..], &str_refs(&self.imap_args_cached()), rest].concat())
    }

    /// APPENDs every message to `mailbox` with `flags` in one session;
    /// returns the APPENDUID UIDs in order.
    pub fn append_all(&self, mailbox: &str, flags: &str, messages: &[Vec<u8>]) -> Vec<u32> {
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, raw) in messages.iter().enumerate() {
            fs::write(dir.path().join(format!("{i:06}.eml")), raw).expect("write message");
        }
        let path = dir.path().to_str().expect("utf-8 path");
        self.imap_tool("append-dir", &[mailbox, flags, path])
            .lines()
            .map(|l| l.trim().parse().expect("append-dir prints UIDs"))
            .collect()
    }

    /// Every selectable mailbox with UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and
    /// each message's UID, Message-ID and flags.
    pub fn mailbox_state(&self) -> NodeState {
        parse_state(&self.imap_tool("state", &[]))
    }

    /// One mailbox's state; panics if it does not exist.
    pub fn mailbox(&self, name: &str) -> MailboxState {
        self.mailbox_state()
            .remove(name)
            .unwrap_or_else(|| panic!("{}: no mailbox {name}", self.name))
    }

    /// APPENDs `raw` to `mailbox` with `flags` (`""` or `(\Seen ...)`),
    /// using a LITERAL+ literal; returns the APPENDUID UID (0 if none).
    pub fn append(&self, mailbox: &str, flags: &str, raw: &[u8]) -> u32 {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        fs::write(file.path(), raw).expect("write message");
        let path = file.path().to_str().expect("utf-8 path");
        self.imap_tool("append", &[mailbox, flags, path])
            .trim()
            .parse()
            .expect("append prints a UID")
    }

    /// Runs raw IMAP commands (one per line; `NO:` / `BAD:` prefixes expect
    /// that status) in one session after LOGIN; returns every response line.
    pub fn imap_cmds(&self, script: &str) -> String {
        self.imap_tool("imap-cmds", &[script])
    }

    /// The bridge certificate's SHA-256 fingerprint from `mailnode bridge`.
    pub fn tls_fingerprint(&self) -> String {
        let out = self.cli_ok(&["bridge"]);
        value_of(&out, "tls-fingerprint-sha256")
            .expect("`mailnode bridge` prints tls-fingerprint-sha256")
    }

    /// The bridge's self-signed certificate in the home.
    pub fn bridge_cert_path(&self) -> PathBuf {
        self.home().join("bridge-cert.pem")
    }
}

// ---------------------------------------------------------------------------
// Issue 6: nodes inside network namespaces (tests/netns; mail clients for
// them are in tests/netns/node.rs), and contacts found by PeerId alone.

impl Node {
    /// Runs this node's daemon, CLI and mail clients inside network
    /// namespace `ns` (`ip netns exec NS ...`).
    pub fn set_netns(&mut self, ns: &str) {
        self.netns = Some(ns.to_string());
    }

    /// The `--listen` addresses of `run` (replacing the loopback default).
    pub fn set_listen(&mut self, addrs: &[&str]) {
        self.listen = Some(addrs.iter().map(|a| a.to_string()).collect());
    }

    /// The namespace the node runs in, if any.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// `program`, run inside this node's namespace if it has one.
    pub fn client_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// This node's PeerId (`mailnode status`).
    pub fn peer_id(&self) -> String {
        value_of(&self.cli_ok(&["status"]), "peer-id").expect("status prints peer-id")
    }

    /// This node's address-book line (`contacts list`) for `address`.
    pub fn contact_line(&self, address: &str) -> String {
        self.cli_ok(&["contacts", "list"])
            .lines()
            .find(|l| l.contains(&format!("<{address}>")))
            .unwrap_or_else(|| panic!("{address} is not a contact of {}", self.name))
            .to_string()
    }

    /// Imports `other`'s card with no address hint: the node must find it
    /// by PeerId alone (DHT, mDNS).
    pub fn add_contact_without_addr(&self, other: &Node) {
        let card = other.cli_ok(&["contacts", "export"]);
        let path = self.home().join(format!("{}.asc", other.name));
        fs::write(&path, card).expect("write card");
        self.cli_ok(&["contacts", "import", path.to_str().expect("utf-8 path")]);
    }
}

// ---------------------------------------------------------------------------
// Issue 8: backup and restore.

/// Imports `card` into a fresh GnuPG home and lists the key of `address`
/// (colons, with subkey fingerprints); inspects it with sq. Both must
/// accept it. Returns (gpg's listing, sq's text).
pub fn gpg_and_sq_read(card: &str, address: &str) -> (String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("card.asc");
    fs::write(&file, card).expect("card");
    let gnupg = dir.path().join("gnupg");
    fs::create_dir(&gnupg).expect("gnupg home");
    let gpg = |args: &[&str]| {
        Command::new("gpg")
            .arg("--homedir")
            .arg(&gnupg)
            .args(["--batch", "--with-colons"])
            .args(args)
            .output()
            .expect("gpg runs (scripts/install-test-deps installs it)")
    };
    let out = gpg(&["--import", file.to_str().expect("utf-8")]);
    assert!(out.status.success(), "gpg --import: {}", describe(&out));
    let out = gpg(&["--list-keys", "--with-subkey-fingerprints", address]);
    assert!(out.status.success(), "gpg --list-keys: {}", describe(&out));
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    // sq is installed by scripts/install-test-deps.
    let out = Command::new("sq")
        .arg("inspect")
        .arg(&file)
        .output()
        .expect("sq (Sequoia's command line tool) must be installed");
    assert!(out.status.success(), "sq inspect: {}", describe(&out));
    (listing, String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Node {
    /// A node whose home does not exist yet (its path is reserved and
    /// removed when the node is dropped): the target of `mailnode restore`.
    pub fn without_home(name: &str, email: &str) -> Node {
        let home = tempfile::Builder::new()
            .prefix(&format!("mailnode-{name}-"))
            .tempdir()
            .expect("tempdir");
        fs::remove_dir(home.path()).expect("free the home path");
        Node::at(name, email, home)
    }

    fn at(name: &str, email: &str, home: tempfile::TempDir) -> Node {
        Node {
            name: name.to_string(),
            email: email.to_string(),
            home,
            p2p_port: free_port(),
            child: None,
            running: None,
            extra_run_args: Vec::new(),
            netns: None,
            listen: None,
        }
    }

    /// Alice and Bob, each in the other's address book, both running.
    pub fn running_pair() -> (Node, Node) {
        let mut alice = Node::create("alice");
        let mut bob = Node::create("bob");
        alice.add_contact(&bob);
        bob.add_contact(&alice);
        alice.start();
        bob.start();
        (alice, bob)
    }

    /// Runs a CLI command with extra environment variables.
    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command();
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run mailnode")
    }
}
