//! Issue 6, "what it must show": 20 nodes on loopback with one bootstrap
//! node and no `--addr` hints anywhere. Every node finds every other through
//! the DHT (signed locator records) and delivers to it; 380 messages, each
//! exactly once.
//!
//! Everything stays on 127.0.0.1 and mDNS is off (the harness passes
//! `--no-mdns`), so nothing leaves the machine.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use common::{Node, simple_message, wait_until};

const NODES: usize = 20;

/// The PeerId `mailnode status` prints.
fn peer_id(node: &Node) -> String {
    let out = node.cli_ok(&["status"]);
    common::value_of(&out, "peer-id").expect("status prints the peer-id")
}

/// Whether the node's daemon says it stored its locator in the DHT.
fn locator_published(node: &Node) -> bool {
    let out = node.cli_ok(&["status"]);
    common::value_of(&out, "locator-published").is_some_and(|v| v != "never")
}

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
    let mut nodes: Vec<Node> = (0..NODES)
        .map(|i| Node::create(&format!("n{i:02}")))
        .collect();
    // Cards are exchanged with no address hints at all.
    let cards: Vec<(String, std::path::PathBuf)> = nodes
        .iter()
        .map(|n| {
            let path = n.home().join("own-card.asc");
            fs::write(&path, n.cli_ok(&["contacts", "export"])).expect("write card");
            (n.name.clone(), path)
        })
        .collect();
    for node in &nodes {
        for (name, path) in &cards {
            if *name != node.name {
                node.cli_ok(&["contacts", "import", path.to_str().expect("utf-8")]);
            }
        }
    }

    // Node 0 is the public bootstrap node; the others know only its address.
    nodes[0].extra_run_args.push("--public".into());
    nodes[0].start();
    let bootstrap = format!("{}/p2p/{}", nodes[0].p2p_addr(), peer_id(&nodes[0]));
    for node in nodes.iter_mut().skip(1) {
        node.extra_run_args.push("--bootstrap".into());
        node.extra_run_args.push(bootstrap.clone());
        node.start();
    }
    for node in &nodes {
        wait_until(
            Duration::from_secs(60),
            &format!("{} publishes its locator record", node.name),
            || locator_published(node),
        );
    }

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
        let book = fs::read_to_string(node.home().join("contacts.json")).expect("contacts.json");
        assert!(!book.contains("/ip4/"), "{} has an address hint", node.name);
    }
}
