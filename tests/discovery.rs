//! Issue 6, "what it must show": 20 nodes on loopback with one bootstrap
//! node and no `--addr` hints anywhere. Every node finds every other through
//! the DHT (signed locator records) and delivers to it; 380 messages, each
//! exactly once.
//!
//! Everything stays on 127.0.0.1 and mDNS is off (the harness passes
//! `--no-mdns`), so nothing leaves the machine.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{dht, simple_message, wait_until};

const NODES: usize = 20;

/// The From address of a raw message.
fn from_of(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .find_map(|l| l.strip_prefix("From: "))
        .map(|v| {
            v.rsplit('<')
                .next()
                .unwrap_or(v)
                .trim_end_matches('>')
                .to_string()
        })
        .unwrap_or_default()
}

#[test]
fn twenty_nodes_find_each_other_through_the_dht_and_deliver_exactly_once() {
    // Node 0 is the public bootstrap node; the others know only its
    // address, and have each other's cards without address hints.
    let mut nodes = dht::create_net(NODES);
    dht::start_net(&mut nodes);

    // Each node writes one message to all 19 others.
    let addresses: Vec<String> = nodes.iter().map(|n| n.email.clone()).collect();
    for (i, node) in nodes.iter().enumerate() {
        let to: Vec<&str> = addresses
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| a.as_str())
            .collect();
        let raw = simple_message(
            &node.email,
            &to.join(", "),
            &format!("hello from {}", node.name),
            &format!("dht-{i}"),
            "found you through the DHT",
        );
        node.send_with_lettre(&to, &raw);
    }

    for node in &nodes {
        wait_until(
            Duration::from_secs(180),
            &format!("{} receives 19 messages", node.name),
            || node.count("INBOX") >= NODES - 1,
        );
    }
    // Exactly once: one message from each other node, none twice.
    for node in &nodes {
        let mut senders: BTreeMap<String, usize> = BTreeMap::new();
        for raw in node.fetch_all("INBOX") {
            *senders.entry(from_of(&raw)).or_default() += 1;
        }
        let expected: BTreeMap<String, usize> = addresses
            .iter()
            .filter(|a| **a != node.email)
            .map(|a| (a.clone(), 1))
            .collect();
        assert_eq!(senders, expected, "{}'s INBOX", node.name);
    }
    // Without hints, every connection between two non-bootstrap nodes
    // began with a lookup of a locator record (the one looked up may have
    // been the dialer or the dialed, so count over all nodes).
    let lookups: usize = nodes
        .iter()
        .map(|n| n.log_count("found a locator record"))
        .sum();
    assert!(
        lookups >= NODES - 1,
        "only {lookups} locator lookups succeeded"
    );
    // Nobody was given an address hint.
    for node in &nodes {
        assert!(
            !dht::has_address_hint(node),
            "{} has an address hint",
            node.name
        );
    }
}
