//! Issue 10: clients that keep Nagle's algorithm on (Python's `imaplib`,
//! lettre, most scripts) must not pay a delayed-ACK stall per message.
//!
//! Such a client sends the end of a command (an APPEND literal's closing
//! CRLF, the literal after a LITERAL+ line, SMTP's `.` after the message) in
//! a small write of its own, which its kernel holds back until the server
//! acknowledges the previous write. A server that lets its kernel delay
//! that ACK (40 ms at least on Linux) pays it once per message. Each test
//! here drives a real daemon with a `std::net::TcpStream` that never calls
//! `set_nodelay`, writing exactly as those clients do, and bounds the total
//! time by the connection's own NOOP round trip: a per-message stall shows
//! as a total far above it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use common::Node;

/// Messages sent by each test.
const MESSAGES: u32 = 200;
/// Per-message allowance never below this: far above the bridge's own work
/// per APPEND on a loaded machine (about 1 ms in a debug build), and still
/// half of Linux's smallest delayed-ACK timeout (`TCP_DELACK_MIN`, 40 ms),
/// so one stall per message always breaks the bound.
const FLOOR: Duration = Duration::from_millis(20);
/// How long one read may block before the test fails instead of hanging.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// An ~8 KiB message, like the ones the issue measured.
fn message(i: u32, from: &str) -> Vec<u8> {
    let mut m = format!(
        "From: {from}\r\nTo: {from}\r\nSubject: Nagle {i}\r\n\
         Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <nagle{i}@example.org>\r\n\r\n"
    );
    for line in 0..110 {
        m.push_str(&format!(
            "Line {line} of message {i}, long enough to make the body about eight KiB.\r\n"
        ));
    }
    m.into_bytes()
}

/// A connection with the operating system's default socket options: Nagle
/// stays on, as in `imaplib`.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        assert!(
            !stream.nodelay().expect("read TCP_NODELAY"),
            "the client must keep Nagle's algorithm on"
        );
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("read timeout");
        Client {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read a line");
        assert!(!line.is_empty(), "the server closed the connection");
        line
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).expect("write");
    }

    /// Reads one SMTP reply (all its lines); it must have `code`.
    fn reply(&mut self, code: &str) {
        loop {
            let line = self.line();
            assert!(line.starts_with(code), "expected {code}: {line}");
            if line.as_bytes().get(3) == Some(&b' ') {
                return;
            }
        }
    }

    /// Reads up to the tagged response of `tag`, which must be OK.
    fn tagged_ok(&mut self, tag: &str) {
        loop {
            let line = self.line();
            if let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                assert!(rest.starts_with("OK"), "{tag}: {line}");
                return;
            }
        }
    }

    fn imap_login(port: u16, node: &Node) -> Client {
        let mut client = Client::connect(port);
        assert!(client.line().starts_with("* OK"), "greeting");
        let login = format!("l LOGIN \"{}\" \"{}\"\r\n", node.email, node.password());
        client.writer.write_all(login.as_bytes()).expect("write");
        client.tagged_ok("l");
        client
    }

    /// The median of `count` NOOP round trips (each one small write, so
    /// Nagle never holds it).
    fn noop_rtt(&mut self, count: u32) -> Duration {
        let mut times: Vec<Duration> = (0..count)
            .map(|i| {
                let tag = format!("n{i}");
                let start = Instant::now();
                self.writer
                    .write_all(format!("{tag} NOOP\r\n").as_bytes())
                    .expect("write");
                self.tagged_ok(&tag);
                start.elapsed()
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    }

    /// The number of messages SELECT reports.
    fn select_exists(&mut self, mailbox: &str) -> u32 {
        self.writer
            .write_all(format!("s SELECT {mailbox}\r\n").as_bytes())
            .expect("write");
        let mut exists = None;
        loop {
            let line = self.line();
            if let Some(n) = line
                .strip_prefix("* ")
                .and_then(|r| r.strip_suffix(" EXISTS\r\n"))
            {
                exists = n.parse().ok();
            }
            if line.starts_with("s ") {
                assert!(line.starts_with("s OK"), "{line}");
                return exists.expect("SELECT reports EXISTS");
            }
        }
    }
}

/// The largest total time that shows no per-message stall.
fn bound(noop_rtt: Duration) -> Duration {
    (noop_rtt * 10).max(FLOOR) * MESSAGES
}

fn report(what: &str, total: Duration, noop_rtt: Duration, per_message: &mut [Duration]) -> String {
    per_message.sort();
    format!(
        "{what}: {MESSAGES} in {total:?} (median {:?}, max {:?} each); NOOP round trip \
         {noop_rtt:?}, bound {:?}",
        per_message[per_message.len() / 2],
        per_message[per_message.len() - 1],
        bound(noop_rtt)
    )
}

/// `imaplib`'s APPEND: the command line, wait for `+`, the literal in one
/// write and the closing CRLF in another.
#[test]
fn issue10_sync_literal_appends_do_not_stall() {
    let mut node = Node::create("nagle");
    node.start();
    let mut client = Client::imap_login(node.running().imap, &node);
    let rtt = client.noop_rtt(50);
    let mut each = Vec::new();
    let start = Instant::now();
    for i in 0..MESSAGES {
        let body = message(i, &node.email);
        let tag = format!("a{i}");
        let t = Instant::now();
        client
            .writer
            .write_all(format!("{tag} APPEND INBOX {{{}}}\r\n", body.len()).as_bytes())
            .expect("write");
        let go_ahead = client.line();
        assert!(go_ahead.starts_with('+'), "continuation: {go_ahead}");
        client.writer.write_all(&body).expect("write literal");
        client.writer.write_all(b"\r\n").expect("write CRLF");
        client.tagged_ok(&tag);
        each.push(t.elapsed());
    }
    let total = start.elapsed();
    let text = report("APPEND {n}", total, rtt, &mut each);
    println!("{text}");
    assert!(total < bound(rtt), "{text}");
    assert_eq!(
        client.select_exists("INBOX"),
        MESSAGES,
        "every APPEND stored"
    );
}

/// LITERAL+ (RFC 7888) from a client that writes the command line and the
/// literal separately: the literal waits for the ACK of the line.
#[test]
fn issue10_literal_plus_appends_do_not_stall() {
    let mut node = Node::create("nagleplus");
    node.start();
    let mut client = Client::imap_login(node.running().imap, &node);
    let rtt = client.noop_rtt(50);
    let mut each = Vec::new();
    let start = Instant::now();
    for i in 0..MESSAGES {
        let mut body = message(i, &node.email);
        let tag = format!("p{i}");
        let t = Instant::now();
        client
            .writer
            .write_all(format!("{tag} APPEND INBOX {{{}+}}\r\n", body.len()).as_bytes())
            .expect("write");
        body.extend_from_slice(b"\r\n");
        client.writer.write_all(&body).expect("write literal");
        client.tagged_ok(&tag);
        each.push(t.elapsed());
    }
    let total = start.elapsed();
    let text = report("APPEND {n+}", total, rtt, &mut each);
    println!("{text}");
    assert!(total < bound(rtt), "{text}");
    assert_eq!(
        client.select_exists("INBOX"),
        MESSAGES,
        "every APPEND stored"
    );
}

/// SMTP DATA as lettre writes it: the message in one write, the end marker
/// `.` in another.
#[test]
fn issue10_smtp_data_does_not_stall() {
    let mut node = Node::create("naglesmtp");
    node.start();
    let mut client = Client::connect(node.running().smtp);
    client.reply("220");
    client.send("EHLO nagle.example.org\r\n");
    client.reply("250");
    let token = base64::engine::general_purpose::STANDARD.encode(format!(
        "\0{}\0{}",
        node.email,
        node.password()
    ));
    client.send(&format!("AUTH PLAIN {token}\r\n"));
    client.reply("235");
    let mut rtts: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            client.send("NOOP\r\n");
            client.reply("250");
            t.elapsed()
        })
        .collect();
    rtts.sort();
    let rtt = rtts[rtts.len() / 2];
    let mut each = Vec::new();
    let start = Instant::now();
    for i in 0..MESSAGES {
        let t = Instant::now();
        client.send(&format!("MAIL FROM:<{}>\r\n", node.email));
        client.reply("250");
        client.send(&format!("RCPT TO:<{}>\r\n", node.email));
        client.reply("250");
        client.send("DATA\r\n");
        client.reply("354");
        client
            .writer
            .write_all(&message(i, &node.email))
            .expect("write message");
        client.send(".\r\n");
        client.reply("250");
        each.push(t.elapsed());
    }
    let total = start.elapsed();
    let text = report("SMTP DATA", total, rtt, &mut each);
    println!("{text}");
    assert!(total < bound(rtt), "{text}");
}
