//! mailnode's IMAP bridge against Dovecot through the client users actually
//! run: Python's standard `imaplib` with default socket options (Nagle on,
//! synchronizing literals only), side by side in one run (issue 10).
//!
//! `imap_vs_dovecot` measures the servers with a tuned raw client
//! (TCP_NODELAY, pipelined LITERAL+); it could not see a stall that only a
//! Nagle-bound client triggers. This one drives every operation through
//! `benches/imaplib_client.py`, once against a fresh mailnode (release
//! build, temporary home) and once against a fresh Dovecot (see
//! `support/dovecot.rs`), for each mailbox size (2,000 and 10,000 messages
//! of about 8 KiB by default):
//!
//! 1. APPEND of every message, one after another,
//! 2. SELECT INBOX on a fresh connection,
//! 3. `FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE)`,
//! 4. 100 × `UID FETCH <uid> (BODY.PEEK[])` (UIDs spread over the mailbox),
//! 5. `UID SEARCH TEXT zanzibar` (a word in 1 % of the messages).
//!
//! Operations 2-5 run once untimed, then `REPEAT` times, in each of `ROUNDS`
//! client runs per server; the servers take turns run by run, and the
//! median over all timed repetitions is reported. Times are measured inside the
//! Python process (interpreter start-up is not counted) and include the
//! client's own parsing, the same for both servers.
//!
//! `cargo bench -p mailnode --bench imaplib_vs_dovecot [-- --sizes 2000,10000]`
//! Needs root (to start Dovecot with its own users), `dovecot-imapd` and
//! python3.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "support/dovecot.rs"]
mod dovecot;
#[path = "support/measure.rs"]
mod measure;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Node;
use dovecot::{DOVECOT_PASS, DOVECOT_USER, Dovecot};
use measure::rss;

/// Timed repetitions of each read-only operation per client run.
const REPEAT: usize = 5;
/// Client runs per server and read-only operation; the servers take turns
/// (and turns going first), so a burst of load on the shared machine lands
/// on both.
const ROUNDS: usize = 4;

/// One server as the Python client sees it.
struct Endpoint {
    port: u16,
    user: String,
    pass: String,
}

fn main() {
    let mut sizes = vec![2_000usize, 10_000];
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--sizes") {
        sizes = args[pos + 1]
            .split(',')
            .map(|s| s.parse().expect("--sizes N,M"))
            .collect();
    }
    println!(
        "| mailbox | operation (Python imaplib, default socket options) | mailnode | Dovecot | ratio |"
    );
    println!("| ---: | --- | ---: | ---: | ---: |");
    let mut memory = Vec::new();
    for &n in &sizes {
        let dovecot = Dovecot::start();
        let mut node = Node::create("imaplib");
        node.start();
        let mn = Endpoint {
            port: node.running().imap,
            user: node.email.clone(),
            pass: node.password(),
        };
        let dv = Endpoint {
            port: dovecot.port,
            user: DOVECOT_USER.into(),
            pass: DOVECOT_PASS.into(),
        };
        let count = n.to_string();
        let repeat = REPEAT.to_string();
        let ops: [(&str, &str, &str); 5] = [
            ("APPEND, one after another", "append", &count),
            ("SELECT", "select", &repeat),
            (
                "FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE)",
                "fetch-meta",
                &repeat,
            ),
            ("100 × UID FETCH BODY.PEEK[]", "fetch-bodies", &repeat),
            ("UID SEARCH TEXT", "search", &repeat),
        ];
        for (label, op, arg) in ops {
            let rounds = if op == "append" { 1 } else { ROUNDS };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for round in 0..rounds {
                if round % 2 == 0 {
                    a.extend(run_client(&mn, op, arg));
                    b.extend(run_client(&dv, op, arg));
                } else {
                    b.extend(run_client(&dv, op, arg));
                    a.extend(run_client(&mn, op, arg));
                }
            }
            let (a, b) = (median(a), median(b));
            let per = if op == "append" {
                format!(
                    " ({:.2} / {:.2} ms each)",
                    ms(a) / n as f64,
                    ms(b) / n as f64
                )
            } else {
                String::new()
            };
            println!(
                "| {n} | {label}{per} | {} | {} | {:.2} |",
                show(a),
                show(b),
                a.as_secs_f64() / b.as_secs_f64().max(1e-9)
            );
        }
        // Right after the last client (SEARCH's burst may still be held),
        // and once the daemon has had time to give it back (it trims once
        // a second, `mailnode::memory`).
        let now = (rss(node.running().pid), dovecot.rss());
        std::thread::sleep(SETTLE);
        let settled = (rss(node.running().pid), dovecot.rss());
        memory.push((n, now, settled));
        drop(dovecot);
        node.stop();
    }
    println!();
    println!("| mailbox | when | mailnode RSS | Dovecot RSS (all processes) | ratio |");
    println!("| ---: | --- | ---: | ---: | ---: |");
    for (n, now, settled) in memory {
        for (when, (a, b)) in [("after the last client", now), ("3 s later", settled)] {
            println!(
                "| {n} | {when} | {:.1} MiB | {:.1} MiB | {:.2} |",
                mib(a),
                mib(b),
                a as f64 / (b as f64).max(1.0)
            );
        }
    }
}

/// How long the second memory reading waits.
const SETTLE: Duration = Duration::from_secs(3);

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Milliseconds, or seconds for long operations.
fn show(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{:.2} ms", ms(d))
    }
}

fn client_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/imaplib_client.py")
}

/// The median of some timings, in seconds.
fn median(mut times: Vec<f64>) -> Duration {
    assert!(!times.is_empty(), "no timings");
    times.sort_by(f64::total_cmp);
    Duration::from_secs_f64(times[times.len() / 2])
}

/// Runs one operation through `imaplib_client.py`; the times of its timed
/// repetitions, in seconds.
fn run_client(ep: &Endpoint, op: &str, arg: &str) -> Vec<f64> {
    let out = Command::new(common::python_bin())
        .arg(client_script())
        .args([op, &ep.port.to_string(), &ep.user, &ep.pass, arg])
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "imaplib_client.py {op} failed: {}",
        common::describe(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
    json["seconds"]
        .as_array()
        .expect("seconds")
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect()
}
