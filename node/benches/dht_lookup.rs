//! DHT locator lookups in the 20-node net on loopback (issue 6).
//!
//! The net of `tests/discovery.rs` (`tests/common/dht.rs`): 20 real daemons
//! (release build), node 0 a public node and the only bootstrap address,
//! every card imported without an address hint, mDNS off. Then, one pair at
//! a time for every pair {i, j} of the 19 other nodes (171 pairs), node i
//! sends a 10 KiB message to node j twice:
//!
//! - **cold**: the first message between the two. Meant as lookup + dial +
//!   deliver, but on loopback it is not cold: each daemon dials its
//!   contacts at start-up, and AutoNAT confirms the loopback address, so
//!   every node runs Kademlia in server mode and is connected to the others
//!   before the first message (docs/benchmarks.md says more);
//! - **warm**: the same again right after: connection open, nothing to
//!   look up.
//!
//! Each is timed from the start of the SMTP submission at i until j's IMAP
//! client, in IDLE on INBOX, reads the new `EXISTS`. Then every node's log
//! gives the **lookup** itself: from its line "looking up a locator record"
//! to the next "found a locator record" for the same peer (the daemon's own
//! timestamps, microseconds), over all lookups of the run.
//!
//! `cargo bench -p mailnode --bench dht_lookup` (options after `--`:
//! `--nodes N` (default 20), `--pairs P` (default: all pairs)).

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "support/measure.rs"]
mod measure;

use std::collections::HashMap;
use std::time::Instant;

use common::dht;
use measure::{Imap, Submitter, flag, line_time, ms_between, summary};

fn main() {
    let count = flag("--nodes", 20usize);
    let max_pairs = flag("--pairs", usize::MAX);
    assert!(count >= 3, "--nodes must be at least 3");

    let started = Instant::now();
    let mut nodes = dht::create_net(count);
    dht::start_net(&mut nodes);
    eprintln!(
        "{count} nodes up and published in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut idle: Vec<Option<(Imap, usize)>> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            (i > 0).then(|| {
                let mut imap = Imap::login(node);
                let exists = imap.select("INBOX");
                imap.start_idle();
                (imap, exists)
            })
        })
        .collect();
    let pairs: Vec<(usize, usize)> = (1..count)
        .flat_map(|i| (i + 1..count).map(move |j| (i, j)))
        .take(max_pairs)
        .collect();
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for (n, &(i, j)) in pairs.iter().enumerate() {
        let submitter = Submitter::new(&nodes[i], &nodes[j].email);
        let (imap, exists) = idle[j].as_mut().expect("idle session");
        for (round, samples) in [&mut cold, &mut warm].into_iter().enumerate() {
            let start = Instant::now();
            submitter.send(&format!("dht-{n}-{round}"));
            *exists = imap.wait_exists(*exists + 1);
            samples.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }

    let (lookups, unresolved) = lookup_times(&nodes);
    println!(
        "{count} nodes on loopback, one bootstrap node, no address hints; {} pairs",
        pairs.len()
    );
    println!(
        "first message between two nodes (already connected, see the docs), submit -> EXISTS: {}",
        summary(&cold)
    );
    println!(
        "warm delivery (connected), submit -> EXISTS: {}",
        summary(&warm)
    );
    println!("DHT lookup, 'looking up' -> 'found': {}", summary(&lookups));
    println!(
        "lookups without a record found (mostly the start-up ones, before the records were published): {unresolved}"
    );
}

/// Every lookup in every node's log, paired by peer: (durations in ms of
/// the lookups that found a record, number that did not).
fn lookup_times(nodes: &[common::Node]) -> (Vec<f64>, usize) {
    let mut found = Vec::new();
    let mut unresolved = 0;
    for node in nodes {
        let mut open: HashMap<String, std::time::SystemTime> = HashMap::new();
        for line in node.log().lines() {
            let peer = || {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix("peer="))
                    .map(str::to_string)
            };
            if line.contains("looking up a locator record") {
                if let (Some(peer), Some(at)) = (peer(), line_time(line))
                    && open.insert(peer, at).is_some()
                {
                    unresolved += 1;
                }
            } else if line.contains("found a locator record")
                && let (Some(peer), Some(at)) = (peer(), line_time(line))
                && let Some(began) = open.remove(&peer)
            {
                found.push(ms_between(began, at));
            }
        }
        unresolved += open.len();
    }
    (found, unresolved)
}
