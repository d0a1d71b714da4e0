//! Issue 8, key rotation and revocation between real daemons: Alice
//! rotates her encryption key (or revokes her key) with her node stopped;
//! at its next start her node sends the new card to Bob through the
//! outbox; Bob's node applies it only when Alice's primary key made it,
//! files a notice, and from then on encrypts to the new key (or refuses
//! to encrypt at all). Forged updates and revocations, delivered to Bob
//! over Alice's own authenticated channel, are refused. gpg and sq accept
//! the rotated card.

mod common;

use std::time::Duration;

use common::{Node, describe, simple_message, value_of, wait_until};

const WAIT: Duration = Duration::from_secs(90);

fn subjects(node: &Node, mailbox: &str) -> Vec<String> {
    node.imap_tool("subjects", &[mailbox])
        .lines()
        .map(str::to_string)
        .collect()
}

fn has_subject(node: &Node, mailbox: &str, subject: &str) -> bool {
    subjects(node, mailbox).iter().any(|s| s == subject)
}

/// The message in `mailbox` whose text contains `needle`.
fn message_containing(node: &Node, mailbox: &str, needle: &str) -> String {
    node.fetch_all(mailbox)
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .find(|m| m.contains(needle))
        .unwrap_or_else(|| {
            panic!(
                "no message in {mailbox} of {} contains {needle:?}",
                node.name
            )
        })
}

/// Bob writes to Alice and Alice to Bob; each message arrives.
fn mail_both_ways(alice: &Node, bob: &Node, tag: &str) {
    for (from, to) in [(bob, alice), (alice, bob)] {
        let subject = format!("{tag} from {}", from.name);
        from.send_with_lettre(
            &[&to.email],
            &simple_message(
                &from.email,
                &to.email,
                &subject,
                &subject.replace(' ', "-"),
                "hi",
            ),
        );
        wait_until(WAIT, &format!("{subject} at {}", to.name), || {
            has_subject(to, "INBOX", &subject)
        });
    }
}

/// A control message as a user could submit it by hand: the node's checks
/// must hold whatever its body says.
fn control_message(from: &str, to: &str, card: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: new card\r\nDate: Tue, 24 Nov 2026 19:00:00 +0000\r\n\
         Message-ID: <forged-{}@example.org>\r\nX-Mailnode-Control: card-update\r\n\
         MIME-Version: 1.0\r\nContent-Type: application/pgp-keys\r\n\r\n{}",
        card.len(),
        card.replace("\r\n", "\n").replace('\n', "\r\n")
    )
    .into_bytes()
}

fn try_send(node: &Node, to: &str, raw: &[u8]) -> Result<(), String> {
    node.try_send_with_lettre(&[to], raw)
}

#[test]
fn a_rotation_reaches_bob_and_mail_flows_both_ways() {
    let (mut alice, bob) = Node::running_pair();
    bob.cli_ok(&["contacts", "verify", "alice@example.org", "--yes"]);
    let old_line = bob.contact_line("alice@example.org");

    // Refused while the daemon runs: it holds the secrets.
    let out = alice.cli(&["keys", "rotate"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stop it"),
        "{}",
        describe(&out)
    );

    alice.stop();
    let rotated = alice.cli_ok(&["keys", "rotate"]);
    let new_key = value_of(&rotated, "new-encryption-key").expect("new key printed");
    let card = alice.cli_ok(&["contacts", "export"]);
    alice.start();

    let subject = "Alice <alice@example.org> rotated their encryption key";
    wait_until(WAIT, "Bob's notice of the rotation", || {
        has_subject(&bob, "INBOX", subject)
    });
    let notice = message_containing(&bob, "INBOX", subject);
    assert!(notice.contains(&new_key), "{notice}");
    let line = bob.contact_line("alice@example.org");
    assert!(
        line.contains(&format!("encryption-key {new_key}")),
        "{line}"
    );
    assert!(line.ends_with("verified"), "no longer verified: {line}");
    assert_ne!(line, old_line);

    // Mail both ways, Bob's now encrypted to the new key.
    mail_both_ways(&alice, &bob, "after rotation");
    assert!(
        !has_subject(&bob, "INBOX", "mailnode card update"),
        "the control message was filed as mail"
    );

    // A restart announces nothing again.
    alice.stop();
    alice.start();
    alice.stop();
    assert_eq!(
        alice.log_count("queued our changed card for a contact"),
        1,
        "{}",
        alice.log()
    );

    // gpg and sq take the rotated card; gpg sees the new subkey as the
    // usable one and the old one as revoked.
    let (listing, text) = common::gpg_and_sq_read(&card, "alice@example.org");
    let subkeys: Vec<&str> = listing.lines().filter(|l| l.starts_with("sub:")).collect();
    assert_eq!(subkeys.len(), 2, "{listing}");
    assert!(subkeys.iter().any(|l| l.starts_with("sub:r:")), "{listing}");
    let valid = listing
        .lines()
        .skip_while(|l| !l.starts_with("sub:") || l.starts_with("sub:r:"))
        .find(|l| l.starts_with("fpr:"))
        .expect("the valid subkey's fingerprint");
    assert!(valid.contains(&new_key), "{listing}");
    assert!(text.contains(&new_key), "{text}");
}

#[test]
fn a_card_update_by_another_key_is_refused() {
    let (alice, bob) = Node::running_pair();
    let before = bob.contact_line("alice@example.org");
    // Mallory's key claims Alice's address; the card reaches Bob over
    // Alice's own authenticated channel (as if Mallory held Alice's
    // node), and over a contact's channel for someone else's address.
    let mallory = Node::create_with_email("mallory", "alice@example.org");
    let forged = mallory.cli_ok(&["contacts", "export"]);
    alice.send_with_lettre(
        &[&bob.email],
        &control_message(&alice.email, &bob.email, &forged),
    );
    wait_until(WAIT, "Alice's bounce", || alice.count("INBOX") == 1);
    let bounce = String::from_utf8_lossy(&alice.fetch_all("INBOX")[0]).into_owned();
    assert!(bounce.contains("card update refused"), "{bounce}");
    assert!(
        bounce.contains("an update must be made by the primary key"),
        "{bounce}"
    );
    assert_eq!(bob.contact_line("alice@example.org"), before);
    assert_eq!(bob.count("INBOX"), 0, "something was filed at Bob");
    assert!(bob.log().contains("refused a card update"), "{}", bob.log());

    // Mail still flows with the key Bob holds.
    alice.send_with_lettre(
        &[&bob.email],
        &simple_message(&alice.email, &bob.email, "still me", "a2", "hello"),
    );
    wait_until(WAIT, "Alice's mail", || {
        has_subject(&bob, "INBOX", "still me")
    });
}

#[test]
fn a_revocation_reaches_bob_and_a_forged_one_does_not() {
    let (mut alice, bob) = Node::running_pair();

    // A revocation made by another key (Mallory's, for Alice's address)
    // is refused; Bob keeps encrypting to Alice.
    let mallory = Node::create_with_email("mallory", "alice@example.org");
    let forged = mallory.cli_ok(&["revocation"]);
    alice.send_with_lettre(
        &[&bob.email],
        &control_message(&alice.email, &bob.email, &forged),
    );
    wait_until(WAIT, "Alice's bounce", || alice.count("INBOX") == 1);
    assert!(
        !bob.contact_line("alice@example.org").contains("revoked"),
        "a forged revocation was applied"
    );
    try_send(
        &bob,
        &alice.email,
        &simple_message(&bob.email, &alice.email, "before", "b0", "x"),
    )
    .expect("Bob still writes to Alice");
    wait_until(WAIT, "Bob's mail", || {
        has_subject(&alice, "INBOX", "before")
    });

    // The real revocation.
    alice.stop();
    let out = alice.cli(&["revoke", "--reason", "retired"]);
    assert!(
        !out.status.success(),
        "revoked without --yes: {}",
        describe(&out)
    );
    let revoked = alice.cli_ok(&["revoke", "--yes", "--message", "moving to a new key"]);
    assert!(revoked.contains("revoked on"), "{revoked}");
    let status = alice.cli_ok(&["status"]);
    assert!(status.contains("key: revoked on"), "{status}");
    alice.start();

    let subject = "Alice <alice@example.org> revoked their key";
    wait_until(WAIT, "Bob's notice of the revocation", || {
        has_subject(&bob, "INBOX", subject)
    });
    let notice = message_containing(&bob, "INBOX", subject);
    assert!(notice.contains("moving to a new key"), "{notice}");
    assert!(bob.contact_line("alice@example.org").contains("revoked on"));

    // Bob's node no longer encrypts to Alice: refused at RCPT, with why.
    let err = try_send(
        &bob,
        &alice.email,
        &simple_message(&bob.email, &alice.email, "after", "b1", "x"),
    )
    .expect_err("mail to a revoked key was accepted");
    assert!(err.contains("5.7.1") && err.contains("revoked"), "{err}");

    // Mail Alice signs after the revocation is refused, with a notice.
    let before_late = alice.count("INBOX");
    alice.send_with_lettre(
        &[&bob.email],
        &simple_message(&alice.email, &bob.email, "late", "a3", "signed after"),
    );
    wait_until(WAIT, "Alice's bounce for late mail", || {
        alice.count("INBOX") > before_late
    });
    let bounce = message_containing(&alice, "INBOX", "this node refuses mail signed by it");
    assert!(bounce.contains("revoked on"), "{bounce}");
    assert!(!has_subject(&bob, "INBOX", "late"), "late mail was filed");
    assert!(has_subject(
        &bob,
        "INBOX",
        "Refused mail signed by the revoked key of <alice@example.org>"
    ));
}

#[test]
fn an_announcement_waits_in_the_outbox_for_an_offline_contact() {
    let (mut alice, mut bob) = Node::running_pair();
    bob.stop();
    alice.stop();
    let rotated = alice.cli_ok(&["keys", "rotate"]);
    let new_key = value_of(&rotated, "new-encryption-key").expect("new key printed");
    alice.start();
    wait_until(WAIT, "the announcement to be queued and tried", || {
        alice.log_count("queued our changed card for a contact") == 1
            && alice.log().contains("will retry")
    });
    // A restart keeps the queued announcement and queues no second one.
    alice.stop();
    alice.start();
    bob.start();
    wait_until(WAIT, "Bob's notice of the rotation", || {
        has_subject(
            &bob,
            "INBOX",
            "Alice <alice@example.org> rotated their encryption key",
        )
    });
    assert!(bob.contact_line("alice@example.org").contains(&new_key));
    assert_eq!(alice.log_count("queued our changed card for a contact"), 1);
    assert_eq!(bob.count("INBOX"), 1, "one notice, nothing else");
}

#[test]
fn a_revocation_certificate_imported_by_hand_is_checked() {
    let alice = Node::create("alice");
    let bob = Node::create("bob");
    bob.add_contact(&alice);
    let dir = tempfile::tempdir().expect("tempdir");
    let mallory = Node::create_with_email("mallory", "alice@example.org");
    let forged = dir.path().join("forged.asc");
    std::fs::write(&forged, mallory.cli_ok(&["revocation"])).expect("write");
    let out = bob.cli(&["contacts", "import", forged.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(!bob.contact_line("alice@example.org").contains("revoked"));

    let real = dir.path().join("alice-revocation.asc");
    std::fs::write(&real, alice.cli_ok(&["revocation"])).expect("write");
    let out = bob.cli_ok(&["contacts", "import", real.to_str().expect("utf-8")]);
    assert!(out.contains("revoked on"), "{out}");
    let line = bob.contact_line("alice@example.org");
    assert!(
        line.contains("revoked on") && line.contains("no reason given"),
        "{line}"
    );
    // A revoked key is not a new contact either.
    let carol = Node::create("carol");
    let out = carol.cli(&["contacts", "import", real.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("revoked"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_new_peer_id_reaches_bob_and_mail_flows_both_ways() {
    let (mut alice, bob) = Node::running_pair();
    bob.cli_ok(&["contacts", "verify", "alice@example.org", "--yes"]);
    let old_peer = alice.peer_id();
    alice.stop();
    let out = alice.cli_ok(&["keys", "rotate", "--new-peer-id"]);
    let new_peer = value_of(&out, "new-peer-id").expect("new PeerId printed");
    assert_ne!(new_peer, old_peer);
    alice.start();
    assert_eq!(alice.peer_id(), new_peer);

    let subject = "Alice <alice@example.org> moved to a new node identity (PeerId)";
    wait_until(WAIT, "Bob's notice of the new PeerId", || {
        has_subject(&bob, "INBOX", subject)
    });
    assert!(has_subject(
        &bob,
        "INBOX",
        "Alice <alice@example.org> rotated their encryption key"
    ));
    let line = bob.contact_line("alice@example.org");
    assert!(line.contains(&format!("peer-id {new_peer}")), "{line}");
    assert!(line.ends_with("verified"), "{line}");

    mail_both_ways(&alice, &bob, "new node");
}

#[test]
fn mail_queued_for_a_key_revoked_meanwhile_bounces() {
    let (mut alice, bob) = Node::running_pair();
    alice.stop();
    bob.send_with_lettre(
        &[&alice.email],
        &simple_message(&bob.email, &alice.email, "queued", "b9", "waits for Alice"),
    );
    wait_until(WAIT, "the message to wait in Bob's outbox", || {
        bob.count("Outbox") == 1 && bob.log().contains("will retry")
    });
    // Bob learns of the revocation while the message waits (by hand here;
    // by Alice's announcement in the other tests).
    let dir = tempfile::tempdir().expect("tempdir");
    let certificate = dir.path().join("alice-revocation.asc");
    std::fs::write(&certificate, alice.cli_ok(&["revocation"])).expect("write");
    bob.cli_ok(&["contacts", "import", certificate.to_str().expect("utf-8")]);
    wait_until(WAIT, "the bounce", || {
        bob.count("Outbox") == 0 && bob.count("INBOX") == 1
    });
    let bounce = String::from_utf8_lossy(&bob.fetch_all("INBOX")[0]).into_owned();
    assert!(bounce.contains("5.7.1"), "{bounce}");
    assert!(bounce.contains("revoked their key"), "{bounce}");
}
