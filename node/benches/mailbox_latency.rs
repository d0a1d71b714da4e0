//! Delivery latency, direct against via a mailbox peer (issue 6).
//!
//! Three real daemons (release build) on loopback, as in
//! `tests/mailbox_peers.rs`: `post` (public node, DHT bootstrap, Bob's
//! mailbox peer), Alice and Bob (contacts without address hints). Messages
//! are 10 KiB, submitted one at a time to Alice's SMTP bridge with lettre.
//!
//! - **direct**: Alice and Bob up and connected; from the start of the SMTP
//!   submission until Bob's IMAP client, in IDLE on INBOX, reads the
//!   `* N EXISTS` (the issue-2 definition, `benches/delivery.rs`).
//! - **deposit**: Bob stopped (cleanly, after registering and publishing his
//!   locator); from the start of the submission until the timestamp of
//!   Alice's log line "message deposited at a mailbox peer", which her
//!   outbox writes when `post` has answered `Stored` (after `post`'s
//!   commit): the moment the message counts as delivered for her outbox.
//!   It includes the failed direct attempt first (dial refused, a DHT
//!   lookup of Bob's locator), sealing the envelope, and the deposit.
//! - **collect, batch**: the deposited messages (one per deposit sample) are
//!   waiting; from the spawn of Bob's `mailnode run` until IMAP `STATUS`
//!   shows them all in his INBOX.
//! - **collect, one message**: `--collect-samples` times, Bob stops, one
//!   message is deposited, Bob starts; from the spawn of his daemon until
//!   `STATUS INBOX` (polled every 5 ms once the bridge is up) shows it, and
//!   from "bridge up" (run.json written) until then.
//!
//! `cargo bench -p mailnode --bench mailbox_latency` (options after `--`:
//! `--samples N` (default 200) for direct and deposit, `--collect-samples N`
//! (default 20)).

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "support/mailbox_net.rs"]
mod mailbox_net;
#[path = "support/measure.rs"]
mod measure;

use std::time::{Duration, Instant, SystemTime};

use common::Node;
use measure::{Imap, LogTail, Submitter, flag, ms_between, summary};

/// Samples before the measured ones (connections, caches, page cache).
const WARMUP: usize = 10;
/// The line Alice's outbox writes after a mailbox peer's `Stored`.
const DEPOSITED: &str = "message deposited at a mailbox peer";

fn main() {
    let samples = flag("--samples", 200usize);
    let collect_samples = flag("--collect-samples", 20usize);

    // Room at the mailbox for every deposit of the run from one sender.
    let mut net = mailbox_net::start(
        "per_sender_count = 100000\nper_sender_bytes = 1073741824\nper_inbox_bytes = 1073741824",
        true,
    );
    net.alice.start();
    let submitter = Submitter::new(&net.alice, &net.bob.email);

    // ---- direct ----------------------------------------------------------
    let direct = {
        let mut idle = Imap::login(&net.bob);
        let mut exists = idle.select("INBOX");
        idle.start_idle();
        let mut out = Vec::with_capacity(samples);
        for i in 0..WARMUP + samples {
            let start = Instant::now();
            submitter.send(&format!("direct-{i}"));
            exists = idle.wait_exists(exists + 1);
            if i >= WARMUP {
                out.push(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
        out
    };
    println!("direct, submit -> EXISTS at Bob: {}", summary(&direct));

    // ---- deposit ---------------------------------------------------------
    let inbox_before = Imap::login(&net.bob).count("INBOX");
    net.bob.stop();
    let mut tail = LogTail::new(&net.alice);
    let mut deposit = Vec::with_capacity(samples);
    for i in 0..WARMUP + samples {
        let start = SystemTime::now();
        submitter.send(&format!("deposit-{i}"));
        let at = tail.wait_for(DEPOSITED, Duration::from_secs(120));
        if i >= WARMUP {
            deposit.push(ms_between(start, at));
        }
    }
    println!(
        "deposit, submit -> stored at the mailbox peer (Bob offline): {}",
        summary(&deposit)
    );

    // ---- collect: every deposit at once ---------------------------------
    let waiting = WARMUP + samples;
    let (spawn_to_all, ready_to_all) = collect(&mut net.bob, inbox_before + waiting);
    println!(
        "collect of {waiting} deposited messages, Bob's daemon spawned -> all in INBOX: {spawn_to_all:.0} ms \
         (bridge up -> all: {ready_to_all:.0} ms)"
    );

    // ---- collect: one message -------------------------------------------
    let mut spawn_to_visible = Vec::with_capacity(collect_samples);
    let mut ready_to_visible = Vec::with_capacity(collect_samples);
    let mut expected = inbox_before + waiting;
    for i in 0..collect_samples {
        net.bob.stop();
        let mut tail = LogTail::new(&net.alice);
        submitter.send(&format!("collect-{i}"));
        tail.wait_for(DEPOSITED, Duration::from_secs(120));
        expected += 1;
        let (spawned, ready) = collect(&mut net.bob, expected);
        spawn_to_visible.push(spawned);
        ready_to_visible.push(ready);
    }
    println!(
        "collect of one message, Bob's daemon spawned -> in INBOX: {}",
        summary(&spawn_to_visible)
    );
    println!(
        "collect of one message, Bob's bridge up -> in INBOX: {}",
        summary(&ready_to_visible)
    );
}

/// Starts Bob and polls his INBOX until it holds `target` messages. Returns
/// (ms from the spawn, ms from the bridge being up).
fn collect(bob: &mut Node, target: usize) -> (f64, f64) {
    let spawned = Instant::now();
    bob.start();
    let ready = Instant::now();
    let mut imap = Imap::login(bob);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if imap.count("INBOX") >= target {
            let done = Instant::now();
            return (
                (done - spawned).as_secs_f64() * 1000.0,
                (done - ready).as_secs_f64() * 1000.0,
            );
        }
        assert!(
            Instant::now() < deadline,
            "bob did not collect {target} messages"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
