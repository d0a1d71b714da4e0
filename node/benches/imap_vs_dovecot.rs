//! mailnode's IMAP bridge against Dovecot, side by side, in one run
//! (issue 3, "what it must show" 6).
//!
//! For each mailbox size (10,000 and 100,000 messages by default) the
//! benchmark starts a fresh Dovecot (Debian's `dovecot-imapd`, throwaway
//! configuration on a loopback port, mdbox storage (Dovecot's own high-performance
//! format; Maildir rescans its directory on every APPEND and took about an hour
//! for 100,000), static password) and a
//! fresh mailnode (release build, temporary home), and times the same
//! operations against both with the same raw-socket client:
//!
//! 1. bulk APPEND of every message (pipelined with LITERAL+),
//! 2. SELECT INBOX on a new connection,
//! 3. `FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE)`,
//! 4. `UID FETCH` of 100 full bodies spread over the mailbox,
//! 5. `UID SEARCH TEXT` for a word in 1 % of the messages,
//! 6. a QRESYNC reconnect after 100 flag changes and 10 expunges,
//! 7. `SORT (DATE)`, `SORT (SUBJECT)` and `THREAD REFERENCES` over the
//!    whole mailbox (issue 9): the first run after SELECT (which builds
//!    either server's sort data) and the median of the next five.
//!
//! Operations 2-5 run five times each and the median is reported.
//! It prints a Markdown table with both times and the ratio mailnode/Dovecot,
//! and the resident memory of both (mailnode: the daemon; Dovecot: the sum
//! over its processes), measured with one client connected that has INBOX
//! selected and its flags fetched.
//!
//! mailnode's resident memory after each operation goes to stderr, to see
//! where it grows.
//!
//! `cargo bench -p mailnode --bench imap_vs_dovecot [-- --sizes 10000,100000]
//! [--only sort|select] [--mailnode-only]`: `--only sort` times only the
//! SORT and THREAD rows after the APPEND, `--only select` only SELECT and
//! the QRESYNC reconnect (the 1,000,000-message run), and then restarts
//! the daemon to time its start-up and the first SELECT, which builds the
//! mailbox index; `--mailnode-only` leaves Dovecot out.
//! Needs root (to start Dovecot with its own users) and `dovecot-imapd`.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "support/dovecot.rs"]
mod dovecot;
#[path = "support/measure.rs"]
mod measure;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Node;
use dovecot::{DOVECOT_PASS, DOVECOT_USER, Dovecot};
use measure::rss;

/// Which operations a run times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    /// Everything.
    All,
    /// `--only sort`: bulk APPEND (to fill the mailboxes), then only the
    /// SORT and THREAD rows, for working on those.
    Sort,
    /// `--only select`: bulk APPEND, then only SELECT and the QRESYNC
    /// reconnect, for the 1,000,000-message run.
    Select,
}

/// One row: the operation, mailnode's time and Dovecot's (none with
/// `--mailnode-only`).
type Row = (&'static str, Duration, Option<Duration>);

fn main() {
    let mut sizes = vec![10_000usize, 100_000];
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--sizes") {
        sizes = args[pos + 1]
            .split(',')
            .map(|s| s.parse().expect("--sizes N,M"))
            .collect();
    }
    let only = match args
        .iter()
        .position(|a| a == "--only")
        .and_then(|pos| args.get(pos + 1))
        .map(String::as_str)
    {
        None => Only::All,
        Some("sort") => Only::Sort,
        Some("select") => Only::Select,
        Some(other) => panic!("--only sort|select, not {other}"),
    };
    // `--mailnode-only`: no Dovecot (its 1,000,000-message APPEND alone
    // would take hours on this machine).
    let with_dovecot = !args.iter().any(|a| a == "--mailnode-only");
    println!("| mailbox | operation | mailnode | Dovecot | ratio |");
    println!("| ---: | --- | ---: | ---: | ---: |");
    let mut memory = Vec::new();
    let mut restarts = Vec::new();
    for &n in &sizes {
        let dovecot = with_dovecot.then(Dovecot::start);
        let mut node = Node::create("bench");
        node.start();
        let pid = node.running().pid;
        let mn = Endpoint {
            port: node.running().imap,
            user: node.email.clone(),
            pass: node.password(),
        };
        let dv = dovecot.as_ref().map(|dovecot| Endpoint {
            port: dovecot.port,
            user: DOVECOT_USER.into(),
            pass: DOVECOT_PASS.into(),
        });
        let mut rows: Vec<Row> = Vec::new();
        let mut time =
            |rows: &mut Vec<Row>, op: &'static str, f: &dyn Fn(&Endpoint) -> Duration| {
                rows.push((op, f(&mn), dv.as_ref().map(f)));
                // Where the daemon's memory grows, operation by operation.
                eprintln!("{n}: mailnode RSS after {op}: {:.1} MiB", mib(rss(pid)));
            };
        time(&mut rows, "bulk APPEND", &|ep| append_all(ep, n));
        match only {
            Only::All => other_rows(&mut rows, &mut time, n),
            Only::Select => {
                time(&mut rows, "SELECT", &time_select);
                time(&mut rows, "QRESYNC reconnect", &|ep| time_qresync(ep, n));
            }
            Only::Sort => {}
        }
        if only != Only::Select {
            for (op, command) in [
                ("SORT (DATE)", "SORT (DATE) UTF-8 ALL"),
                ("SORT (SUBJECT)", "SORT (SUBJECT) UTF-8 ALL"),
                ("THREAD REFERENCES", "THREAD REFERENCES UTF-8 ALL"),
            ] {
                let mn_times = time_first_and_median(&mn, command);
                let dv_times = dv.as_ref().map(|dv| time_first_and_median(dv, command));
                rows.push((first_label(op), mn_times.0, dv_times.map(|t| t.0)));
                rows.push((op, mn_times.1, dv_times.map(|t| t.1)));
                eprintln!("{n}: mailnode RSS after {op}: {:.1} MiB", mib(rss(pid)));
            }
        }
        for (op, a, b) in rows {
            match b {
                Some(b) => println!(
                    "| {n} | {op} | {:.1} ms | {:.1} ms | {:.2} |",
                    ms(a),
                    ms(b),
                    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
                ),
                None => println!("| {n} | {op} | {:.1} ms | — | — |", ms(a)),
            }
        }
        // Memory with a client connected that has INBOX selected and its
        // flags fetched, as Thunderbird leaves it (issue 7).
        let mut mn_client = Conn::open(&mn);
        mn_client.run("SELECT INBOX");
        mn_client.run("FETCH 1:* (UID FLAGS)");
        let dv_client = dv.as_ref().map(|dv| {
            let mut client = Conn::open(dv);
            client.run("SELECT INBOX");
            client.run("FETCH 1:* (UID FLAGS)");
            client
        });
        // Right after, and once the daemon has had a few seconds to give
        // freed memory back (`mailnode::memory` trims once a second).
        std::thread::sleep(Duration::from_millis(500));
        let soon = (rss(pid), dovecot.as_ref().map(Dovecot::rss));
        std::thread::sleep(SETTLE);
        let settled = (rss(pid), dovecot.as_ref().map(Dovecot::rss));
        memory.push((n, soon, settled));
        drop((mn_client, dv_client));
        drop(dovecot);
        node.stop();
        if only == Only::Select {
            // The first SELECT after a start builds the mailbox index from
            // the messages rows; every later one shares it (issue 7).
            let started = Instant::now();
            node.start();
            let start_up = started.elapsed();
            let ep = Endpoint {
                port: node.running().imap,
                user: node.email.clone(),
                pass: node.password(),
            };
            let mut conn = Conn::open(&ep);
            let begin = Instant::now();
            conn.run("SELECT INBOX");
            let first = begin.elapsed();
            drop(conn);
            let rss_after = rss(node.running().pid);
            restarts.push((n, start_up, first, time_select(&ep), rss_after));
            node.stop();
        }
    }
    if !restarts.is_empty() {
        println!();
        println!("After a restart of the daemon (same home): the time from `mailnode run` to");
        println!("its ports being published, the first SELECT (it builds the index), the");
        println!("median of the next SELECTs and the resident set after them:");
        println!("| mailbox | start-up | first SELECT | SELECT after it | RSS |");
        println!("| ---: | ---: | ---: | ---: | ---: |");
        for (n, start_up, first, next, rss_after) in restarts {
            println!(
                "| {n} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} MiB |",
                ms(start_up),
                ms(first),
                ms(next),
                mib(rss_after)
            );
        }
    }
    println!();
    println!("Resident memory, one client connected with INBOX selected, 0.5 s after its");
    println!("last command and {} s later:", SETTLE.as_secs_f64() + 0.5);
    println!("| mailbox | when | mailnode RSS | Dovecot RSS (all processes) | ratio |");
    println!("| ---: | --- | ---: | ---: | ---: |");
    for (n, soon, settled) in memory {
        for (when, (a, b)) in [("0.5 s", soon), ("settled", settled)] {
            match b {
                Some(b) => println!(
                    "| {n} | {when} | {:.1} MiB | {:.1} MiB | {:.2} |",
                    mib(a),
                    mib(b),
                    a as f64 / (b as f64).max(1.0)
                ),
                None => println!("| {n} | {when} | {:.1} MiB | — | — |", mib(a)),
            }
        }
    }
}

/// How long the memory measurement waits the second time.
const SETTLE: Duration = Duration::from_millis(2500);

/// The rows of operations 2-6 (SELECT to QRESYNC reconnect), timed by
/// `time` against each server.
fn other_rows(
    rows: &mut Vec<Row>,
    time: &mut impl FnMut(&mut Vec<Row>, &'static str, &dyn Fn(&Endpoint) -> Duration),
    n: usize,
) {
    time(rows, "SELECT", &time_select);
    time(rows, "FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE)", &|ep| {
        time_command(ep, "FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE)")
    });
    let uids = spread_uids(n, 100);
    let fetch = format!("UID FETCH {uids} (BODY.PEEK[])");
    time(rows, "UID FETCH 100 bodies", &|ep| time_command(ep, &fetch));
    time(rows, "UID SEARCH TEXT", &|ep| {
        time_command(ep, "UID SEARCH TEXT \"zanzibar\"")
    });
    time(rows, "QRESYNC reconnect", &|ep| time_qresync(ep, n));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

/// Message `i` of a deterministic, varied corpus (plain, multipart, a few
/// KiB each), in conversations of five; one in a hundred contains the word
/// "zanzibar" in its body. Made one at a time: a million would not fit in
/// the benchmark's memory comfortably.
fn message(i: usize) -> Vec<u8> {
    let word = if i % 100 == 7 { "zanzibar" } else { "ordinary" };
    // Conversations of five (issue 9, THREAD): a first message and
    // four replies to it.
    let root = i - i % 5;
    let (subject, references) = if i == root {
        (format!("Topic {} number {i}", i / 5), String::new())
    } else {
        (
            format!("Re: Topic {} number {root}", i / 5),
            format!("References: <m{root}@example.org>\r\n"),
        )
    };
    let lines = 20 + (i * 7919) % 60;
    let mut body = String::new();
    for l in 0..lines {
        body.push_str(&format!(
            "Line {l} of message {i}: an {word} text about things, nothing more.\r\n"
        ));
    }
    if i.is_multiple_of(3) {
        format!(
            "From: Sender {s} <sender{s}@example.org>\r\nTo: tester@example.org\r\n\
             Subject: {subject}\r\nDate: Tue, 24 Nov 2026 10:{m:02}:00 +0000\r\n\
             Message-ID: <m{i}@example.org>\r\n{references}MIME-Version: 1.0\r\n\
             Content-Type: multipart/alternative; boundary=\"b{i}\"\r\n\r\n\
             --b{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
             --b{i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{body}</p>\r\n--b{i}--\r\n",
            s = i % 50,
            m = i % 60
        )
    } else {
        format!(
            "From: Sender {s} <sender{s}@example.org>\r\nTo: tester@example.org\r\n\
             Subject: {subject}\r\nDate: Tue, 24 Nov 2026 10:{m:02}:00 +0000\r\n\
             Message-ID: <m{i}@example.org>\r\n{references}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}",
            s = i % 50,
            m = i % 60
        )
    }
    .into_bytes()
}

fn spread_uids(n: usize, k: usize) -> String {
    (0..k)
        .map(|j| (1 + j * n / k).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

struct Endpoint {
    port: u16,
    user: String,
    pass: String,
}

/// A raw IMAP connection that reads responses without interpreting more
/// than it must (literals are skipped by length).
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl Conn {
    fn open(ep: &Endpoint) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", ep.port)).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut conn = Conn {
            reader: BufReader::with_capacity(1 << 16, stream.try_clone().expect("clone")),
            writer: stream,
            tag: 0,
        };
        conn.read_line();
        conn.run(&format!("LOGIN \"{}\" \"{}\"", ep.user, ep.pass));
        conn
    }

    fn read_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).expect("read");
        assert!(!line.is_empty(), "connection closed");
        line
    }

    /// Reads one response line, skipping any literals it announces.
    fn read_response(&mut self) -> Vec<u8> {
        let mut line = self.read_line();
        loop {
            let trimmed = line.strip_suffix(b"\r\n").unwrap_or(&line);
            let Some(open) = trimmed.iter().rposition(|&b| b == b'{') else {
                return line;
            };
            if !trimmed.ends_with(b"}") {
                return line;
            }
            let len: usize = std::str::from_utf8(&trimmed[open + 1..trimmed.len() - 1])
                .ok()
                .and_then(|s| s.trim_end_matches('+').parse().ok())
                .unwrap_or(0);
            let mut buf = vec![0u8; len];
            self.reader.read_exact(&mut buf).expect("literal");
            let rest = self.read_line();
            line = rest;
        }
    }

    fn send(&mut self, command: &str) -> String {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        write!(self.writer, "{tag} {command}\r\n").expect("write");
        tag
    }

    fn wait(&mut self, tag: &str) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_response();
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                assert!(
                    line[tag.len()..].starts_with(b" OK"),
                    "{}",
                    String::from_utf8_lossy(&line)
                );
                return lines;
            }
            lines.push(line);
        }
    }

    fn run(&mut self, command: &str) -> Vec<Vec<u8>> {
        let tag = self.send(command);
        self.wait(&tag)
    }
}

/// Bulk APPEND of messages 0 to `n - 1`.
fn append_all(ep: &Endpoint, n: usize) -> Duration {
    let mut conn = Conn::open(ep);
    let start = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for m in (0..n).map(message) {
        conn.tag += 1;
        let tag = format!("t{}", conn.tag);
        let mut cmd = format!("{tag} APPEND INBOX {{{}+}}\r\n", m.len()).into_bytes();
        cmd.extend_from_slice(&m);
        cmd.extend_from_slice(b"\r\n");
        conn.writer.write_all(&cmd).expect("write");
        pending.push_back(tag);
        if pending.len() >= 64 {
            let tag = pending.pop_front().expect("tag");
            conn.wait(&tag);
        }
    }
    while let Some(tag) = pending.pop_front() {
        conn.wait(&tag);
    }
    start.elapsed()
}

/// How often each read-only operation is repeated; the median is reported,
/// so one scheduling hiccup on a 2-core machine does not decide a row.
const REPEAT: usize = 5;

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

/// SELECT on a new connection each time (what a reconnecting client pays).
fn time_select(ep: &Endpoint) -> Duration {
    median(
        (0..REPEAT)
            .map(|_| {
                let mut conn = Conn::open(ep);
                let start = Instant::now();
                conn.run("SELECT INBOX");
                start.elapsed()
            })
            .collect(),
    )
}

fn time_command(ep: &Endpoint, command: &str) -> Duration {
    let mut conn = Conn::open(ep);
    conn.run("SELECT INBOX");
    median(
        (0..REPEAT)
            .map(|_| {
                let start = Instant::now();
                conn.run(command);
                start.elapsed()
            })
            .collect(),
    )
}

/// The first run of `command` after SELECT on a new connection, and the
/// median of the next [`REPEAT`].
fn time_first_and_median(ep: &Endpoint, command: &str) -> (Duration, Duration) {
    let mut conn = Conn::open(ep);
    conn.run("SELECT INBOX");
    let start = Instant::now();
    let lines = conn.run(command);
    let first = start.elapsed();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(b"* SORT") || l.starts_with(b"* THREAD")),
        "{command} answered"
    );
    let runs = (0..REPEAT)
        .map(|_| {
            let start = Instant::now();
            conn.run(command);
            start.elapsed()
        })
        .collect();
    (first, median(runs))
}

fn first_label(op: &str) -> &'static str {
    match op {
        "SORT (DATE)" => "SORT (DATE), first after SELECT",
        "SORT (SUBJECT)" => "SORT (SUBJECT), first after SELECT",
        _ => "THREAD REFERENCES, first after SELECT",
    }
}

/// Records UIDVALIDITY/HIGHESTMODSEQ, makes 100 flag changes and 10
/// expunges on another connection, then times a QRESYNC reconnect.
fn time_qresync(ep: &Endpoint, n: usize) -> Duration {
    let mut first = Conn::open(ep);
    first.run("ENABLE QRESYNC");
    let lines = first.run("SELECT INBOX");
    let mut uidvalidity = 0u64;
    let mut modseq = 0u64;
    for line in &lines {
        let text = String::from_utf8_lossy(line);
        if let Some(v) = number_after(&text, "UIDVALIDITY ") {
            uidvalidity = v;
        }
        if let Some(v) = number_after(&text, "HIGHESTMODSEQ ") {
            modseq = v;
        }
    }
    assert!(
        uidvalidity > 0 && modseq > 0,
        "SELECT gave UIDVALIDITY and HIGHESTMODSEQ"
    );
    drop(first);
    let mut other = Conn::open(ep);
    other.run("SELECT INBOX");
    for j in 0..100 {
        other.run(&format!(
            "UID STORE {} +FLAGS.SILENT (\\Flagged)",
            1 + j * (n / 100)
        ));
    }
    for j in 0..10 {
        other.run(&format!(
            "UID STORE {} +FLAGS.SILENT (\\Deleted)",
            2 + j * (n / 10)
        ));
    }
    other.run("EXPUNGE");
    drop(other);
    let start = Instant::now();
    let mut conn = Conn::open(ep);
    conn.run("ENABLE QRESYNC");
    let lines = conn.run(&format!("SELECT INBOX (QRESYNC ({uidvalidity} {modseq}))"));
    let elapsed = start.elapsed();
    let fetches = lines
        .iter()
        .filter(|l| l.windows(6).any(|w| w == b"FETCH "))
        .count();
    assert!(
        fetches >= 100,
        "QRESYNC reported the flag changes ({fetches})"
    );
    elapsed
}

fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
