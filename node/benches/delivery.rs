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
#[path = "support/measure.rs"]
mod measure;

use std::time::{Duration, Instant};

use common::Node;
use measure::{Imap, Submitter, flag, mib, percentile, rss, ten_kib_message, wait_settled_rss};

fn main() {
    let messages = flag("--messages", 5000usize);
    let samples = flag("--latency-samples", 500usize);

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
    measure::submit_many(&alice, &bob.email, messages, "bulk");
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
    let submitter = Submitter::new(alice, &bob.email);
    let mut idle = Imap::login(bob);
    let mut exists = idle.select("INBOX");
    idle.start_idle();
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples + 20 {
        let raw = ten_kib_message(&alice.email, &bob.email, &format!("latency-{i}"));
        let start = Instant::now();
        submitter.send_raw(&raw);
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

fn imap_count(bob: &Node, mailbox: &str) -> usize {
    Imap::login(bob).count(mailbox)
}
