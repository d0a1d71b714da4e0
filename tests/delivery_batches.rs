//! Issue 7: `/mailnode/deliver/2` carries several messages per request, one
//! answer per message, between real daemons; a node that speaks only
//! `/mailnode/deliver/1` (`[network] deliver_v2 = false`, the switch these
//! tests use to play a node from before `/2`) still sends to and receives
//! from one that speaks both.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Node, wait_until};

const WAIT: Duration = Duration::from_secs(90);

fn message(from: &str, to: &str, subject: &str, body_len: usize) -> Vec<u8> {
    let mut m = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\n\r\n"
    )
    .into_bytes();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    while m.len() < body_len {
        m.extend_from_slice(line);
    }
    m
}

/// Alice and Bob as contacts, with extra `[network]` settings for each.
fn pair(alice_network: &str, bob_network: &str) -> (Node, Node) {
    let alice = Node::create("alice");
    let bob = Node::create("bob");
    alice.add_contact(&bob);
    bob.add_contact(&alice);
    for (node, network) in [(&alice, alice_network), (&bob, bob_network)] {
        if !network.is_empty() {
            std::fs::write(
                node.home().join("config.toml"),
                format!("[network]\n{network}\n"),
            )
            .expect("write config.toml");
        }
    }
    (alice, bob)
}

/// Queues `subjects` at Alice while Bob is offline, so that they wait in
/// her outbox and leave together when Bob comes online.
fn queue_while_offline(alice: &Node, bob: &Node, subjects: &[String], body_len: usize) {
    for subject in subjects {
        alice.send_with_lettre(
            &[&bob.email],
            &message(&alice.email, &bob.email, subject, body_len),
        );
    }
    wait_until(WAIT, "the messages queued in Alice's outbox", || {
        alice.count("Outbox") == subjects.len()
    });
}

fn subjects(node: &Node, mailbox: &str) -> Vec<String> {
    common::mailtool(
        &[
            &["subjects"][..],
            &common::str_refs(&node.imap_args()),
            &[mailbox],
        ]
        .concat(),
    )
    .lines()
    .map(str::to_string)
    .collect()
}

fn names(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i:02}")).collect()
}

/// Sends 12 queued messages from Alice to Bob and checks each arrives
/// exactly once and Alice's outbox empties; returns how many batches Bob
/// received.
fn drain(alice_network: &str, bob_network: &str) -> usize {
    let (mut alice, mut bob) = pair(alice_network, bob_network);
    alice.start();
    let sent = names("drain", 12);
    queue_while_offline(&alice, &bob, &sent, 10 * 1024);
    bob.start();
    wait_until(WAIT, "all 12 messages in Bob's INBOX", || {
        bob.count("INBOX") >= sent.len()
    });
    wait_until(WAIT, "Alice's outbox to empty", || {
        alice.count("Outbox") == 0
    });
    let got = subjects(&bob, "INBOX");
    assert_eq!(got.len(), sent.len(), "no duplicates: {got:?}");
    assert_eq!(
        got.iter().collect::<BTreeSet<_>>(),
        sent.iter().collect::<BTreeSet<_>>()
    );
    bob.log_count("received a batch")
}

#[test]
fn issue7_two_current_nodes_deliver_in_batches() {
    assert!(drain("", "") >= 1, "Bob received at least one batch");
}

#[test]
fn issue7_a_deliver_1_only_receiver_gets_mail_from_a_deliver_2_sender() {
    assert_eq!(drain("", "deliver_v2 = false"), 0, "no batch reached Bob");
}

#[test]
fn issue7_a_deliver_1_only_sender_reaches_a_deliver_2_receiver() {
    assert_eq!(drain("deliver_v2 = false", ""), 0, "Alice sent no batch");
}

/// One message of a batch is refused (too large for Bob) while the others
/// are accepted: those land once, the refused one bounces to Alice, and
/// the outbox keeps nothing that was accepted.
#[test]
fn issue7_a_refused_message_in_a_batch_bounces_alone() {
    let (mut alice, mut bob) = pair("", "max_message_size = 100000");
    alice.start();
    let small = names("small", 5);
    queue_while_offline(&alice, &bob, &small, 4 * 1024);
    alice.send_with_lettre(
        &[&bob.email],
        &message(&alice.email, &bob.email, "big", 150_000),
    );
    wait_until(WAIT, "six messages in Alice's outbox", || {
        alice.count("Outbox") == 6
    });
    bob.start();
    wait_until(WAIT, "the five small messages at Bob", || {
        bob.count("INBOX") >= 5
    });
    wait_until(WAIT, "the bounce in Alice's INBOX", || {
        alice.count("INBOX") >= 1
    });
    wait_until(WAIT, "Alice's outbox to empty", || {
        alice.count("Outbox") == 0
    });
    let got = subjects(&bob, "INBOX");
    assert_eq!(
        got.iter().collect::<BTreeSet<_>>(),
        small.iter().collect::<BTreeSet<_>>(),
        "exactly the small messages, once each"
    );
    let bounce = String::from_utf8(alice.fetch_all("INBOX").remove(0)).expect("text");
    assert!(bounce.contains("exceeds"), "the bounce says why:\n{bounce}");
    assert!(bob.log_count("received a batch") >= 1);
}

/// Bob's per-peer rate limit (1 a second, burst 4) lets only part of a
/// batch in; the rest is answered `TryLater` message by message, stays in
/// Alice's outbox and arrives on the retries, each message once.
#[test]
fn issue7_rate_limited_messages_of_a_batch_stay_queued_and_arrive_once() {
    let (mut alice, mut bob) = pair("", "rate_limit_per_second = 1");
    alice.start();
    let sent = names("limited", 10);
    queue_while_offline(&alice, &bob, &sent, 2 * 1024);
    bob.start();
    wait_until(WAIT, "the first messages at Bob", || {
        bob.count("INBOX") >= 1
    });
    // Accepted ones leave the outbox, the others stay: together they are
    // always all ten (nothing lost, nothing removed before its Accepted).
    // The outbox is read first: an entry gone from it was committed at
    // Bob before, so the count read after includes it.
    wait_until(WAIT, "every message at Bob", || {
        let queued = alice.count("Outbox");
        let at_bob = bob.count("INBOX");
        assert!(
            at_bob + queued >= sent.len(),
            "{at_bob} at Bob + {queued} queued < {}",
            sent.len()
        );
        at_bob >= sent.len()
    });
    wait_until(WAIT, "Alice's outbox to empty", || {
        alice.count("Outbox") == 0
    });
    let got = subjects(&bob, "INBOX");
    assert_eq!(got.len(), sent.len(), "no duplicates: {got:?}");
    assert!(
        bob.log()
            .contains("rate limit: asked a peer to retry later"),
        "the limit applied per message"
    );
}
