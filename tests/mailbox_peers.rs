//! Issue 6, "Mailbox peers": Bob is offline; Alice's node finds his locator
//! record in the DHT, deposits the sealed message at the mailbox peer Bob
//! named, and forgets it (deposited = delivered for her outbox). Bob starts
//! later, collects, files it byte-identical, acknowledges after his commit,
//! and the mailbox then holds nothing.
//!
//! All on 127.0.0.1, mDNS off, no address hints between Alice and Bob.

mod common;

use std::fs;
use std::time::Duration;

use common::{Node, simple_message, split_verified, wait_until};

fn status_value(node: &Node, name: &str) -> Option<String> {
    common::value_of(&node.cli_ok(&["status"]), name)
}

fn import_without_hint(node: &Node, other: &Node) {
    let path = node.home().join(format!("{}.asc", other.name));
    fs::write(&path, other.cli_ok(&["contacts", "export"])).expect("write card");
    node.cli_ok(&["contacts", "import", path.to_str().expect("utf-8")]);
}

#[test]
fn an_offline_recipient_collects_from_its_mailbox_peer() {
    let mut post = Node::create("post");
    let mut alice = Node::create("alice");
    let mut bob = Node::create("bob");
    import_without_hint(&alice, &bob);
    import_without_hint(&bob, &alice);

    post.extra_run_args.push("--public".into());
    post.start();
    let post_id = status_value(&post, "peer-id").expect("post's peer-id");
    let post_addr = format!("{}/p2p/{post_id}", post.p2p_addr());
    for node in [&mut alice, &mut bob] {
        node.extra_run_args.push("--bootstrap".into());
        node.extra_run_args.push(post_addr.clone());
    }
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
