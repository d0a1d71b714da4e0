//! Issue 2, "what it must show" 3 and 4: the outbox survives restarts of
//! either side, and a recipient killed mid-delivery loses nothing and
//! duplicates nothing.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Node, wait_until};

fn plain_message(from: &str, to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Tue, 24 Nov 2026 19:00:00 +0000\r\n\
         Message-ID: <{subject}@example.org>\r\n\r\nbody of {subject}\r\n"
    )
    .into_bytes()
}

#[test]
fn offline_recipient_gets_the_message_exactly_once() {
    let mut alice = Node::create("alice");
    let mut bob = Node::create("bob");
    alice.add_contact(&bob);
    bob.add_contact(&alice);

    // Bob is not running: Alice's node accepts the message and queues it.
    alice.start();
    alice.send_with_lettre(
        &[&bob.email],
        &plain_message(&alice.email, &bob.email, "offline-1"),
    );
    wait_until(Duration::from_secs(30), "a failed first attempt", || {
        alice.log().contains("delivery failed, will retry")
    });
    // Alice restarts: the queue is on disk, nobody re-sends anything.
    alice.stop();
    alice.start();
    // Bob comes online later.
    bob.start();
    wait_until(
        Duration::from_secs(90),
        "the message in Bob's INBOX",
        || bob.count("INBOX") >= 1,
    );
    wait_until(
        Duration::from_secs(30),
        "Alice's node to record the delivery",
        || alice.log_count("message delivered") >= 1,
    );
    // Restart both once more: nothing is left to send, nothing arrives twice.
    alice.stop();
    bob.stop();
    bob.start();
    alice.start();
    assert_eq!(bob.count("INBOX"), 1, "exactly once");
    assert_eq!(
        common::mailtool(
            &[
                &["subjects"][..],
                &common::str_refs(&bob.imap_args()),
                &["INBOX"]
            ]
            .concat()
        )
        .trim(),
        "offline-1"
    );
    assert_eq!(alice.count("Sent"), 1);
}

#[test]
fn recipient_killed_during_200_deliveries_loses_and_duplicates_nothing() {
    const COUNT: usize = 200;
    let (alice, mut bob) = Node::running_pair();

    // Submit 200 messages over one SMTP session while delivery runs.
    {
        use lettre::address::Envelope;
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{SmtpTransport, Transport};
        let transport = SmtpTransport::builder_dangerous("127.0.0.1")
            .port(alice.running().smtp)
            .credentials(Credentials::new(alice.email.clone(), alice.password()))
            .build();
        let envelope = Envelope::new(
            Some(alice.email.parse().unwrap()),
            vec![bob.email.parse().unwrap()],
        )
        .unwrap();
        let mut killed = false;
        for i in 0..COUNT {
            let raw = plain_message(&alice.email, &bob.email, &format!("crash-{i:03}"));
            transport.send_raw(&envelope, &raw).expect("submit");
            if !killed && i >= 20 && alice.log_count("message delivered") >= 10 {
                // Crash Bob in the middle of the stream of deliveries.
                bob.kill();
                killed = true;
            }
        }
        if !killed {
            bob.kill();
        }
    }
    bob.start();
    wait_until(
        Duration::from_secs(180),
        "all 200 messages in Bob's INBOX",
        || bob.count("INBOX") >= COUNT,
    );
    wait_until(Duration::from_secs(60), "Alice's outbox to drain", || {
        alice.log_count("message delivered") >= COUNT
    });
    let subjects = common::mailtool(
        &[
            &["subjects"][..],
            &common::str_refs(&bob.imap_args()),
            &["INBOX"],
        ]
        .concat(),
    );
    let lines: Vec<&str> = subjects.lines().collect();
    assert_eq!(lines.len(), COUNT, "exactly 200 messages, no duplicates");
    let unique: BTreeSet<&str> = lines.iter().copied().collect();
    let expected: BTreeSet<String> = (0..COUNT).map(|i| format!("crash-{i:03}")).collect();
    assert_eq!(
        unique,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "every message exactly once"
    );
}

/// A recipient that comes back online greets its contacts; the sender's
/// node then sends what waits at once instead of at the end of its backoff.
#[test]
fn a_returning_recipient_gets_waiting_mail_without_waiting_for_the_backoff() {
    let mut alice = Node::create("alice");
    let mut bob = Node::create("bob");
    alice.add_contact(&bob);
    bob.add_contact(&alice);
    alice.start();
    alice.send_with_lettre(
        &[&bob.email],
        &plain_message(&alice.email, &bob.email, "greeting-1"),
    );
    // Three failed attempts: the next one is at least 6.4 s away (8 s ±20 %).
    wait_until(Duration::from_secs(60), "three failed attempts", || {
        alice.log_count("delivery failed, will retry") >= 3
    });
    bob.start();
    wait_until(
        Duration::from_secs(30),
        "Alice's node to notice Bob is back",
        || {
            alice
                .log()
                .contains("peer is online, sending what waits for it")
        },
    );
    wait_until(
        Duration::from_secs(30),
        "the message in Bob's INBOX",
        || bob.count("INBOX") >= 1,
    );
    assert_eq!(
        alice.log_count("delivery failed, will retry"),
        3,
        "delivered on the greeting, not by a fourth retry"
    );
}
