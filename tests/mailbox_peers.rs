//! Issue 6, "Mailbox peers": Bob is offline; Alice's node finds his locator
//! record in the DHT, deposits the sealed message at the mailbox peer Bob
//! named, and forgets it (deposited = delivered for her outbox). Bob starts
//! later, collects, files it byte-identical, acknowledges after his commit,
//! and the mailbox then holds nothing.
//!
//! The failure path beside it: a mailbox peer that is not a public node
//! refuses Register and Deposit with a reason that says so, and the
//! sender's outbox keeps the message until the recipient is back.
//!
//! All on 127.0.0.1, mDNS off, no address hints between Alice and Bob.

mod common;

use std::time::Duration;

use common::{Node, simple_message, split_verified, wait_until};

fn status_value(node: &Node, name: &str) -> Option<String> {
    common::value_of(&node.cli_ok(&["status"]), name)
}

/// Alice and Bob, each with the other's card and no address hint.
fn contacts_without_hints() -> (Node, Node) {
    let alice = Node::create("alice");
    let bob = Node::create("bob");
    alice.add_contact_without_addr(&bob);
    bob.add_contact_without_addr(&alice);
    (alice, bob)
}

/// Starts `node` as a public node; returns its address with its PeerId.
fn start_public(node: &mut Node) -> String {
    node.extra_run_args.push("--public".into());
    node.start();
    format!("{}/p2p/{}", node.p2p_addr(), node.peer_id())
}

/// Gives each of `nodes` the bootstrap address `addr` for its next start.
fn bootstrap_with(nodes: &mut [&mut Node], addr: &str) {
    for node in nodes {
        node.extra_run_args.push("--bootstrap".into());
        node.extra_run_args.push(addr.to_string());
    }
}

#[test]
fn an_offline_recipient_collects_from_its_mailbox_peer() {
    let mut post = Node::create("post");
    let (mut alice, mut bob) = contacts_without_hints();
    let post_addr = start_public(&mut post);
    let post_id = post.peer_id();
    bootstrap_with(&mut [&mut alice, &mut bob], &post_addr);
    bob.cli_ok(&["mailbox", "add", &post_addr]);

    // Bob comes online once: registers at his mailbox peer and publishes a
    // locator naming it; then he goes offline.
    bob.start();
    wait_until(
        Duration::from_secs(60),
        "bob registers at his mailbox peer and publishes his locator",
        || {
            bob.log().contains("mailbox collection round finished")
                && bob.log().contains("errors=0")
                && status_value(&bob, "locator-published").is_some_and(|v| v != "never")
                && status_value(&bob, "mailbox-peer").as_deref() == Some(post_id.as_str())
        },
    );
    bob.stop();

    alice.start();
    let raw = simple_message(
        &alice.email,
        &bob.email,
        "while you were away",
        "mailbox-1",
        "kept for you by a mailbox peer that cannot read it",
    );
    alice.send_with_lettre(&[&bob.email], &raw);
    wait_until(
        Duration::from_secs(120),
        "alice deposits the message at bob's mailbox peer",
        || alice.log().contains("message deposited at a mailbox peer"),
    );
    wait_until(Duration::from_secs(20), "alice's outbox is empty", || {
        status_value(&alice, "outbox-waiting").as_deref() == Some("0")
    });
    wait_until(Duration::from_secs(20), "the mailbox peer holds it", || {
        status_value(&post, "mailbox-held-bytes").is_some_and(|v| v != "0")
    });
    // The mailbox peer cannot read it: the subject and body are nowhere in
    // its home.
    assert!(
        common::files_containing(post.home(), b"kept for you by a mailbox peer").is_empty(),
        "the message is readable at the mailbox peer"
    );

    bob.start();
    wait_until(Duration::from_secs(90), "bob collects the message", || {
        bob.count("INBOX") == 1
    });
    let (signer, body) = split_verified(&bob.fetch_all("INBOX")[0]);
    assert!(!signer.is_empty(), "the collected message is verified");
    assert_eq!(body, raw, "the collected message is byte-identical");
    wait_until(
        Duration::from_secs(30),
        "the mailbox peer deletes it after bob's ack",
        || status_value(&post, "mailbox-held-bytes").as_deref() == Some("0"),
    );
    // Collected exactly once, even across later collection rounds.
    wait_until(Duration::from_secs(60), "a second collection round", || {
        bob.log_count("mailbox collection round finished") >= 2
    });
    assert_eq!(bob.count("INBOX"), 1);
}

/// Issue 6, failure path: a mailbox request to a node that runs without
/// `--public` is refused with a reason that says so, and the sender loses
/// nothing: Bob's registration is refused, Alice's deposit is refused and
/// her message stays in her outbox (waiting, not deposited) until Bob is
/// back and takes it directly.
#[test]
fn a_node_that_is_not_public_refuses_mailbox_requests_and_the_outbox_keeps_the_message() {
    let mut boot = Node::create("boot");
    let mut plain = Node::create("plain");
    let (mut alice, mut bob) = contacts_without_hints();
    let boot_addr = start_public(&mut boot);
    bootstrap_with(&mut [&mut plain, &mut alice, &mut bob], &boot_addr);
    plain.start();
    let plain_id = plain.peer_id();
    // Bob names the ordinary node as his mailbox peer (a mistake a user
    // can make: `mailbox add` cannot know whether a node is public).
    bob.cli_ok(&[
        "mailbox",
        "add",
        &format!("{}/p2p/{plain_id}", plain.p2p_addr()),
    ]);

    bob.start();
    wait_until(
        Duration::from_secs(60),
        "bob's registration is refused and his locator published",
        || {
            bob.log()
                .contains("registration: refused: this node is not a public node")
                && status_value(&bob, "locator-published").is_some_and(|v| v != "never")
                && status_value(&bob, "mailbox-peer").as_deref() == Some(plain_id.as_str())
        },
    );
    assert!(
        plain
            .log()
            .contains("mailbox: refused a Register request: not a public node"),
        "the ordinary node logs the refusal"
    );
    bob.stop();

    alice.start();
    let raw = simple_message(
        &alice.email,
        &bob.email,
        "nobody holds this for you",
        "not-public-1",
        "an ordinary node keeps no mail for others",
    );
    alice.send_with_lettre(&[&bob.email], &raw);
    wait_until(
        Duration::from_secs(120),
        "the ordinary node refuses alice's deposit",
        || {
            plain
                .log()
                .contains("mailbox: refused a Deposit request: not a public node")
                && alice.log().contains(&format!(
                    "{plain_id} refused: this node is not a public node"
                ))
        },
    );
    // Nothing lost: still waiting in Alice's outbox, not counted as
    // deposited, and the ordinary node holds no mailbox at all.
    wait_until(Duration::from_secs(10), "alice's status is current", || {
        status_value(&alice, "outbox-waiting").as_deref() == Some("1")
    });
    assert_eq!(
        status_value(&alice, "outbox-deposited").as_deref(),
        Some("0")
    );
    assert!(!alice.log().contains("message deposited at a mailbox peer"));
    assert_eq!(status_value(&plain, "mailbox-held-bytes"), None);
    assert!(!plain.home().join("mailbox.db").exists());

    // Bob comes back: the retry delivers it directly, once.
    bob.start();
    wait_until(Duration::from_secs(120), "bob receives the message", || {
        bob.count("INBOX") == 1
    });
    let (_, body) = split_verified(&bob.fetch_all("INBOX")[0]);
    assert_eq!(body, raw, "delivered byte-identical");
    wait_until(Duration::from_secs(20), "alice's outbox is empty", || {
        status_value(&alice, "outbox-waiting").as_deref() == Some("0")
    });
    assert_eq!(bob.count("INBOX"), 1);
}
