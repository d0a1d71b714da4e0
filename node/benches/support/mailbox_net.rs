//! Three real daemons for the mailbox-peer benchmarks: `post`, a public
//! node (`--public`) that is the DHT bootstrap and Bob's mailbox peer
//! (`mailnode mailbox add`); Alice and Bob, contacts of each other without
//! address hints. All on 127.0.0.1 with mDNS off, as in
//! `tests/mailbox_peers.rs`.

#![allow(dead_code)]

use std::io::Write;
use std::time::Duration;

use crate::common::{Node, value_of, wait_until};

/// The three nodes; Alice is created but not started.
pub struct MailboxNet {
    /// The public node.
    pub post: Node,
    /// The sender.
    pub alice: Node,
    /// The recipient, registered at `post`, running.
    pub bob: Node,
    /// `post`'s multiaddr with its PeerId (the bootstrap address).
    pub post_addr: String,
}

/// A `mailnode status` value.
pub fn status_value(node: &Node, name: &str) -> Option<String> {
    value_of(&node.cli_ok(&["status"]), name)
}

/// Starts `post` with `[mailbox]` limits `mailbox_limits` (TOML lines) in
/// its `config.toml`, then Bob, and waits until Bob has registered at
/// `post` and published a locator that names it. Alice gets `--bootstrap`
/// only if `alice_bootstrap`.
pub fn start(mailbox_limits: &str, alice_bootstrap: bool) -> MailboxNet {
    let mut post = Node::create("post");
    let alice = Node::create("alice");
    let mut bob = Node::create("bob");
    alice.add_contact_without_addr(&bob);
    bob.add_contact_without_addr(&alice);
    let mut config = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(post.home().join("config.toml"))
        .expect("config.toml");
    writeln!(config, "\n[mailbox]\n{mailbox_limits}").expect("write config.toml");
    post.extra_run_args.push("--public".into());
    post.start();
    let post_addr = format!("{}/p2p/{}", post.p2p_addr(), post.peer_id());
    bob.extra_run_args.push("--bootstrap".into());
    bob.extra_run_args.push(post_addr.clone());
    bob.cli_ok(&["mailbox", "add", &post_addr]);
    let mut net = MailboxNet {
        post,
        alice,
        bob,
        post_addr,
    };
    if alice_bootstrap {
        net.set_alice_bootstrap(true);
    }
    net.bob.start();
    let post_id = net.post.peer_id();
    wait_until(
        Duration::from_secs(60),
        "bob registers at post and publishes a locator naming it",
        || {
            net.bob.log().contains("mailbox collection round finished")
                && net.bob.log().contains("errors=0")
                && status_value(&net.bob, "locator-published").is_some_and(|v| v != "never")
                && status_value(&net.bob, "mailbox-peer").as_deref() == Some(post_id.as_str())
        },
    );
    net
}

impl MailboxNet {
    /// Gives Alice `post` as her bootstrap node (or takes it away) for her
    /// next start. Without it she finds nobody: no lookups, no deposits.
    pub fn set_alice_bootstrap(&mut self, on: bool) {
        self.alice
            .extra_run_args
            .retain(|a| a != "--bootstrap" && *a != self.post_addr);
        if on {
            self.alice.extra_run_args.push("--bootstrap".into());
            self.alice.extra_run_args.push(self.post_addr.clone());
        }
    }
}
