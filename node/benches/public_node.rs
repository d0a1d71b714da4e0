//! Memory of a real public node holding 10,000 deposited envelopes
//! (issue 6), through the real protocol.
//!
//! `post` is a real `mailnode run --public` daemon (release build); Bob
//! names it as his mailbox peer, registers, publishes his locator, and
//! stops. Alice's outbox is filled with `--envelopes N` (default 10,000)
//! 10 KiB messages to Bob while she runs without a bootstrap node (she can
//! find neither Bob nor `post`, so nothing leaves). She stops and starts
//! again with `post` as bootstrap: at start-up her outbox tries every entry,
//! fails to reach Bob directly (he is offline) and deposits each sealed
//! envelope at `post` over `/mailnode/mailbox/1`, one durable commit each.
//!
//! Printed: `post`'s resident memory (`VmRSS` of the daemon process, from
//! `/proc/PID/status`) idle before the deposits, its peak during them,
//! idle while holding the N envelopes, during and after Bob's collection;
//! the size of `mailbox.db` (+ WAL); the deposit rate (Alice's log lines
//! "message deposited at a mailbox peer", first to last, daemon
//! timestamps); and the collection time (Bob's daemon spawned until IMAP
//! `STATUS` shows all N in his INBOX, and until `post` reports 0 bytes
//! held, i.e. every envelope acknowledged and deleted).
//!
//! `cargo bench -p mailnode --bench public_node` (option after `--`:
//! `--envelopes N`).

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "support/mailbox_net.rs"]
mod mailbox_net;
#[path = "support/measure.rs"]
mod measure;

use std::time::{Duration, Instant};

use common::wait_until;
use mailbox_net::status_value;
use measure::{Imap, files_size, flag, log_times, mib, ms_between, rss, wait_settled_rss};

const DEPOSITED: &str = "message deposited at a mailbox peer";

fn main() {
    let envelopes = flag("--envelopes", 10_000usize);

    // The default quota (200 envelopes, 64 MiB per sender) would refuse
    // most of one sender's 10,000; raise it for the run.
    let mut net = mailbox_net::start(
        &format!(
            "per_sender_count = {}\nper_sender_bytes = 2147483648\nper_inbox_bytes = 2147483648",
            envelopes + 100
        ),
        false,
    );
    net.bob.stop();
    let post_pid = net.post.running().pid;
    let idle_before = wait_settled_rss(post_pid);

    // Fill Alice's outbox while she can reach nobody.
    net.alice.start();
    measure::submit_many(&net.alice, &net.bob.email, envelopes, "held");
    net.alice.stop();
    assert_eq!(
        net.alice.log_count(DEPOSITED),
        0,
        "nothing is deposited before Alice knows the DHT"
    );

    // Alice comes back with the bootstrap node: every entry is deposited.
    net.set_alice_bootstrap(true);
    net.alice.start();
    let mut peak_deposit = 0;
    let deadline = Instant::now() + Duration::from_secs(1800);
    while net.alice.log_count(DEPOSITED) < envelopes {
        peak_deposit = peak_deposit.max(rss(post_pid));
        assert!(Instant::now() < deadline, "the deposits did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    let times = log_times(&net.alice, DEPOSITED);
    let span_ms = ms_between(times[0], times[times.len() - 1]);
    let idle_holding = wait_settled_rss(post_pid);
    wait_until(
        Duration::from_secs(20),
        "post's status shows the held bytes",
        || status_value(&net.post, "mailbox-held-bytes").is_some_and(|v| v != "0"),
    );
    let held_bytes: u64 = status_value(&net.post, "mailbox-held-bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let db_bytes = files_size(net.post.home(), "mailbox.db");

    // Bob collects everything.
    let spawned = Instant::now();
    net.bob.start();
    let mut imap = Imap::login(&net.bob);
    let mut peak_collect = 0;
    let deadline = Instant::now() + Duration::from_secs(1800);
    while imap.count("INBOX") < envelopes {
        peak_collect = peak_collect.max(rss(post_pid));
        assert!(Instant::now() < deadline, "bob did not collect everything");
        std::thread::sleep(Duration::from_millis(50));
    }
    let collected = spawned.elapsed();
    wait_until(
        Duration::from_secs(300),
        "post deletes every acknowledged envelope",
        || {
            peak_collect = peak_collect.max(rss(post_pid));
            status_value(&net.post, "mailbox-held-bytes").as_deref() == Some("0")
        },
    );
    let emptied = spawned.elapsed();
    let idle_after = wait_settled_rss(post_pid);

    println!("public node holding {envelopes} deposited envelopes of 10 KiB messages");
    println!(
        "deposit: {envelopes} in {:.2} s first to last = {:.0} deposits/s",
        span_ms / 1000.0,
        (envelopes - 1) as f64 * 1000.0 / span_ms.max(1.0)
    );
    println!(
        "held: {:.1} MiB of sealed envelopes ({:.1} KiB each); mailbox.db + WAL on disk: {:.1} MiB",
        mib(held_bytes),
        held_bytes as f64 / 1024.0 / envelopes as f64,
        mib(db_bytes)
    );
    println!(
        "post VmRSS: idle before {:.1} MiB, peak during deposits {:.1} MiB, idle holding {:.1} MiB, \
         peak during collection {:.1} MiB, idle after {:.1} MiB",
        mib(idle_before),
        mib(peak_deposit),
        mib(idle_holding),
        mib(peak_collect),
        mib(idle_after)
    );
    println!(
        "collect: Bob's daemon spawned -> all {envelopes} in INBOX {:.2} s, -> post holds nothing {:.2} s",
        collected.as_secs_f64(),
        emptied.as_secs_f64()
    );
}
