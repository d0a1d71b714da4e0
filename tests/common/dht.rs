//! Issue 6: a net of real daemons on loopback that know each other by
//! PeerId alone: node 0 is a public node and the only bootstrap address
//! anyone is given; every node has every other's card, imported without an
//! address hint, so every first contact goes through a DHT lookup of a
//! signed locator record. Used by `tests/discovery.rs` and by the
//! `dht_lookup` benchmark.
//!
//! Everything stays on 127.0.0.1 and mDNS is off (`Node::start` passes
//! `--no-mdns` outside a namespace), so nothing leaves the machine.

use std::fs;
use std::time::Duration;

use super::{Node, value_of, wait_until};

/// Whether the node's daemon says it stored its locator in the DHT.
pub fn locator_published(node: &Node) -> bool {
    let out = node.cli_ok(&["status"]);
    value_of(&out, "locator-published").is_some_and(|v| v != "never")
}

/// Creates `count` nodes named `n00`, `n01`, … and gives each every other's
/// card, without address hints.
pub fn create_net(count: usize) -> Vec<Node> {
    let nodes: Vec<Node> = (0..count)
        .map(|i| Node::create(&format!("n{i:02}")))
        .collect();
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
    nodes
}

/// Starts node 0 as the public bootstrap node and the others with only its
/// address (`--bootstrap`), then waits until every node has published its
/// locator record. Returns the bootstrap multiaddr.
pub fn start_net(nodes: &mut [Node]) -> String {
    let (first, rest) = nodes.split_first_mut().expect("at least one node");
    first.extra_run_args.push("--public".into());
    first.start();
    let bootstrap = format!("{}/p2p/{}", first.p2p_addr(), first.peer_id());
    for node in rest.iter_mut() {
        node.extra_run_args.push("--bootstrap".into());
        node.extra_run_args.push(bootstrap.clone());
        node.start();
    }
    for node in nodes.iter() {
        wait_until(
            Duration::from_secs(60),
            &format!("{} publishes its locator record", node.name),
            || locator_published(node),
        );
    }
    bootstrap
}

/// Whether any node was given an address hint (there must be none).
pub fn has_address_hint(node: &Node) -> bool {
    fs::read_to_string(node.home().join("contacts.json"))
        .expect("contacts.json")
        .contains("/ip4/")
}
