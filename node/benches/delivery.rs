//! Node-to-node delivery benchmark (issue 2, "what it must show" 7).
//!
//! Runs two real `mailnode` daemons (release build) with temporary homes on
//! loopback and measures:
//!
//! - **throughput**: Alice's outbox is filled with N 10 KiB messages while
//!   Bob is offline; then both run and we time how fast the messages go from
//!   Alice's outbox to committed in Bob's store (Bob's INBOX count, polled
//!   over IMAP STATUS), in messages per second;
//! - **latency**: one message at a time, from the start of the SMTP
//!   submission at Alice until Bob's IMAP client, idling on INBOX, sees the
//!   `EXISTS` (p50, p99);
//! - **memory**: resident set size of each daemon idle and the peak under
//!   the throughput load.
//!
//! `cargo bench -p mailnode --bench delivery` (options after `--`:
//! `--messages N` (default 5000), `--latency-samples N` (default 500)).

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Node;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{SmtpTransport, Transport};

fn main() {
    let mut messages = 5000usize;
    let mut samples = 500usize;
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--messages" => {
                messages = args[i + 1].parse().expect("--messages N");
                i += 1;
            }
            "--latency-samples" => {
                samples = args[i + 1].parse().expect("--latency-samples N");
                i += 1;
            }
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }

    let mut alice = Node::create("alice");
    let mut bob = Node::create("bob");
    alice.add_contact(&bob);
    bob.add_contact(&alice);

    // Idle memory: both daemons up, nothing happening.
    alice.start();
    bob.start();
    let idle_alice = wait_settled_rss(alice.running().pid);
    let idle_bob = wait_settled_rss(bob.running().pid);

    // ---- latency ---------------------------------------------------------
    let latencies = measure_latency(&alice, &bob, samples);

    // ---- throughput ------------------------------------------------------
    let base = imap_count(&bob, "INBOX");
    bob.stop();
    fill_outbox(&alice, &bob, messages);
    alice.stop();
    bob.start();
    alice.start();
    let (rate, peak_alice, peak_bob, elapsed) = measure_drain(&alice, &bob, base, base + messages);

    println!("mailnode delivery benchmark (release build, loopback, 10 KiB messages)");
    println!(
        "throughput: {rate:.0} messages/s ({messages} messages in {elapsed:.2} s, outbox -> committed at Bob)"
    );
    println!(
        "latency submit -> visible in Bob's INBOX: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        latencies.len()
    );
    println!(
        "resident memory idle: alice {:.1} MiB, bob {:.1} MiB",
        mib(idle_alice),
        mib(idle_bob)
    );
    println!(
        "resident memory peak under load: alice {:.1} MiB, bob {:.1} MiB",
        mib(peak_alice),
        mib(peak_bob)
    );
}

fn ten_kib_message(from: &str, to: &str, subject: &str) -> Vec<u8> {
    let mut m = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Tue, 24 Nov 2026 19:00:00 +0000\r\n\
         Message-ID: <{subject}@bench.example>\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopq\r\n";
    while m.len() < 10 * 1024 {
        m.extend_from_slice(line);
    }
    m
}

fn smtp(alice: &Node) -> (SmtpTransport, Envelope) {
    let transport = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(alice.running().smtp)
        .credentials(Credentials::new(alice.email.clone(), alice.password()))
        .build();
    let envelope = Envelope::new(
        Some(alice.email.parse().expect("from")),
        vec!["bob@example.org".parse().expect("to")],
    )
    .expect("envelope");
    (transport, envelope)
}

/// Submits `count` messages with Bob offline, over 4 parallel SMTP sessions.
fn fill_outbox(alice: &Node, bob: &Node, count: usize) {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let (transport, envelope) = smtp(alice);
            let from = alice.email.clone();
            let to = bob.email.clone();
            scope.spawn(move || {
                for i in (worker..count).step_by(4) {
                    let raw = ten_kib_message(&from, &to, &format!("bulk-{i}"));
                    transport.send_raw(&envelope, &raw).expect("submit");
                }
            });
        }
    });
    eprintln!(
        "queued {count} messages in {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

/// Polls Bob's INBOX count until it reaches `target`. Returns (rate, peak
/// RSS alice, peak RSS bob, seconds).
fn measure_drain(alice: &Node, bob: &Node, base: usize, target: usize) -> (f64, u64, u64, f64) {
    let mut conn = Imap::login(bob);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, usize)> = None;
    let mut peak_alice = 0;
    let mut peak_bob = 0;
    loop {
        let n = conn.count("INBOX");
        peak_alice = peak_alice.max(rss(alice.running().pid));
        peak_bob = peak_bob.max(rss(bob.running().pid));
        if first.is_none() && n > base {
            first = Some((Instant::now(), n));
        }
        if n >= target {
            let (t0, n0) = first.expect("started");
            let secs = t0.elapsed().as_secs_f64();
            let rate = (target - n0) as f64 / secs.max(1e-9);
            return (rate, peak_alice, peak_bob, secs);
        }
        assert!(
            Instant::now() < deadline,
            "drain did not finish: {n}/{target}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn measure_latency(alice: &Node, bob: &Node, samples: usize) -> Vec<f64> {
    let (transport, envelope) = smtp(alice);
    let mut idle = Imap::login(bob);
    let mut exists = idle.select("INBOX");
    idle.start_idle();
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples + 20 {
        let raw = ten_kib_message(&alice.email, &bob.email, &format!("latency-{i}"));
        let start = Instant::now();
        transport.send_raw(&envelope, &raw).expect("submit");
        let target = exists + 1;
        exists = idle.wait_exists(target);
        // The first few warm up connections and caches.
        if i >= 20 {
            out.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    out.sort_by(|a, b| a.total_cmp(b));
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// RSS once it stops changing (start-up allocations done).
fn wait_settled_rss(pid: u32) -> u64 {
    let mut last = rss(pid);
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        let now = rss(pid);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn imap_count(bob: &Node, mailbox: &str) -> usize {
    Imap::login(bob).count(mailbox)
}

/// A minimal IMAP client for measuring (not a test of the server).
struct Imap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl Imap {
    fn login(node: &Node) -> Imap {
        let stream = TcpStream::connect(("127.0.0.1", node.running().imap)).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut imap = Imap {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
            tag: 0,
        };
        imap.line(); // greeting
        imap.command(&format!("LOGIN {} {}", node.email, node.password()));
        imap
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read");
        assert!(n > 0, "connection closed");
        line
    }

    fn command(&mut self, command: &str) -> Vec<String> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        write!(self.writer, "{tag} {command}\r\n").expect("write");
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            if line.starts_with(&format!("{tag} ")) {
                assert!(line.contains(" OK"), "{command}: {line}");
                return lines;
            }
            lines.push(line);
        }
    }

    fn count(&mut self, mailbox: &str) -> usize {
        let lines = self.command(&format!("STATUS {mailbox} (MESSAGES)"));
        lines
            .iter()
            .find_map(|l| {
                l.split("MESSAGES ")
                    .nth(1)
                    .and_then(|r| r.trim_end().trim_end_matches(')').parse().ok())
            })
            .expect("STATUS MESSAGES")
    }

    fn select(&mut self, mailbox: &str) -> usize {
        let lines = self.command(&format!("SELECT {mailbox}"));
        lines
            .iter()
            .find_map(|l| {
                l.strip_prefix("* ")
                    .and_then(|r| r.strip_suffix(" EXISTS\r\n"))
                    .and_then(|n| n.parse().ok())
            })
            .expect("EXISTS")
    }

    fn start_idle(&mut self) {
        write!(self.writer, "i1 IDLE\r\n").expect("write");
        let line = self.line();
        assert!(line.starts_with('+'), "IDLE: {line}");
    }

    /// Reads untagged responses until `* N EXISTS` with N >= target.
    fn wait_exists(&mut self, target: usize) -> usize {
        loop {
            let line = self.line();
            if let Some(n) = line
                .strip_prefix("* ")
                .and_then(|r| r.strip_suffix(" EXISTS\r\n"))
                .and_then(|n| n.parse::<usize>().ok())
                && n >= target
            {
                return n;
            }
        }
    }
}
