//! What the benchmarks that drive real daemons share: a 10 KiB test
//! message, an SMTP submitter (lettre), a minimal IMAP client for counting
//! and IDLE, percentiles, resident memory from `/proc`, and the timestamps
//! of a daemon's log lines.
//!
//! This is measuring equipment, not a test of the server: it asserts only
//! that the answers it needs came.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{SmtpTransport, Transport};

use crate::common::Node;

/// The value after `name` (`--samples 200`) on the command line, or
/// `default`. Anything else there (cargo passes `--bench`) is ignored.
pub fn flag<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(pos) => args
            .get(pos + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} takes a number")),
        None => default,
    }
}

/// A 10 KiB text/plain message with Message-ID `<{subject}@bench.example>`.
pub fn ten_kib_message(from: &str, to: &str, subject: &str) -> Vec<u8> {
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

/// An SMTP submitter at `sender`'s bridge for mail to `to`.
pub struct Submitter {
    transport: SmtpTransport,
    envelope: Envelope,
    from: String,
    to: String,
}

impl Submitter {
    /// Connects lazily (lettre keeps one connection open between sends).
    pub fn new(sender: &Node, to: &str) -> Submitter {
        let transport = SmtpTransport::builder_dangerous("127.0.0.1")
            .port(sender.running().smtp)
            .credentials(Credentials::new(
                sender.email.clone(),
                sender.cached_password(),
            ))
            .build();
        let envelope = Envelope::new(
            Some(sender.email.parse().expect("from")),
            vec![to.parse().expect("to")],
        )
        .expect("envelope");
        Submitter {
            transport,
            envelope,
            from: sender.email.clone(),
            to: to.to_string(),
        }
    }

    /// Submits a 10 KiB message with this subject (and Message-ID).
    pub fn send(&self, subject: &str) {
        self.send_raw(&ten_kib_message(&self.from, &self.to, subject));
    }

    /// Submits `raw` as it is.
    pub fn send_raw(&self, raw: &[u8]) {
        self.transport
            .send_raw(&self.envelope, raw)
            .expect("submit");
    }
}

/// Submits `count` 10 KiB messages (subjects `{prefix}-N`) from `sender`
/// to `to` over 4 parallel SMTP sessions, and says how long it took.
pub fn submit_many(sender: &Node, to: &str, count: usize, prefix: &str) {
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let submitter = Submitter::new(sender, to);
            scope.spawn(move || {
                for i in (worker..count).step_by(4) {
                    submitter.send(&format!("{prefix}-{i}"));
                }
            });
        }
    });
    eprintln!(
        "queued {count} messages in {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

/// The value at fraction `p` (0..=1) of sorted samples (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// "p50 X ms, p99 Y ms, max Z ms (N samples)" of unsorted samples in ms.
pub fn summary(samples: &[f64]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, min {:.2} ms, max {:.2} ms ({} samples)",
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.99),
        percentile(&sorted, 0.0),
        percentile(&sorted, 1.0),
        sorted.len()
    )
}

/// Resident set size of a process in bytes (`VmRSS`), 0 if it is gone.
pub fn rss(pid: u32) -> u64 {
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

/// RSS once it stops changing between two reads 100 ms apart (start-up or
/// a burst of work done), or after 4 s.
pub fn wait_settled_rss(pid: u32) -> u64 {
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

/// Bytes as MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Total size of the files in `dir` whose names start with `prefix`
/// (a SQLite database with its `-wal` and `-shm`).
pub fn files_size(dir: &std::path::Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The wall-clock times of the daemon log lines of `node` that contain
/// `needle`, in order. The daemon's `tracing` lines start with an RFC 3339
/// UTC timestamp (microseconds), taken from the same clock as
/// `SystemTime::now()` here.
pub fn log_times(node: &Node, needle: &str) -> Vec<SystemTime> {
    node.log()
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(line_time)
        .collect()
}

/// The timestamp a log line starts with.
pub fn line_time(line: &str) -> Option<SystemTime> {
    let stamp = line.split_whitespace().next()?;
    let parsed = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
    Some(SystemTime::from(parsed.with_timezone(&chrono::Utc)))
}

/// Milliseconds from `a` to `b` (negative if `b` is earlier).
pub fn ms_between(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

/// A minimal IMAP client for measuring (not a test of the server).
pub struct Imap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl Imap {
    /// Connects to `node`'s bridge and logs in. Reads time out after 120 s,
    /// so a benchmark whose mail never comes fails instead of hanging.
    pub fn login(node: &Node) -> Imap {
        let stream = TcpStream::connect(("127.0.0.1", node.running().imap)).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .expect("timeout");
        let mut imap = Imap {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
            tag: 0,
        };
        imap.line(); // greeting
        imap.command(&format!("LOGIN {} {}", node.email, node.cached_password()));
        imap
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read");
        assert!(n > 0, "connection closed");
        line
    }

    /// Sends one command; returns its untagged lines (it must end in OK).
    pub fn command(&mut self, command: &str) -> Vec<String> {
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

    /// `STATUS mailbox (MESSAGES)`.
    pub fn count(&mut self, mailbox: &str) -> usize {
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

    /// `SELECT mailbox`; returns EXISTS.
    pub fn select(&mut self, mailbox: &str) -> usize {
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

    /// Enters IDLE (RFC 2177) on the selected mailbox.
    pub fn start_idle(&mut self) {
        write!(self.writer, "i1 IDLE\r\n").expect("write");
        let line = self.line();
        assert!(line.starts_with('+'), "IDLE: {line}");
    }

    /// Reads untagged responses until `* N EXISTS` with N >= target.
    pub fn wait_exists(&mut self, target: usize) -> usize {
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

/// Follows a daemon log from where it ends now, line by line.
pub struct LogTail {
    file: std::fs::File,
    pending: Vec<u8>,
}

impl LogTail {
    /// Starts at the current end of `node`'s log.
    pub fn new(node: &Node) -> LogTail {
        use std::io::Seek;
        let mut file = std::fs::File::open(node.log_path()).expect("open the daemon log");
        file.seek(std::io::SeekFrom::End(0)).expect("seek");
        LogTail {
            file,
            pending: Vec::new(),
        }
    }

    /// Waits (polling every millisecond, at most `timeout`) for the next
    /// line containing `needle` and returns its timestamp; lines before it
    /// are skipped.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> SystemTime {
        use std::io::Read;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                let bytes: Vec<u8> = self.pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&bytes);
                if line.contains(needle)
                    && let Some(at) = line_time(&line)
                {
                    return at;
                }
            }
            let mut chunk = Vec::new();
            self.file.read_to_end(&mut chunk).expect("read the log");
            if chunk.is_empty() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no log line with {needle:?} within {timeout:?}"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            self.pending.extend_from_slice(&chunk);
        }
    }
}
