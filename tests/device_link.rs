//! Issue 8, linked devices, pairing: `mailnode device link` on Alice's
//! node shows a one-time code, `mailnode device join CODE` makes a new
//! home with Alice's identity, a PeerId of its own, her address book and a
//! copy of her mail (same UIDVALIDITY and UIDs, an empty outbox). Both
//! cards list both devices, gpg and sq take the card, `device remove`
//! takes a device off. A code works once: used a second time, or tried
//! with a wrong secret (which spends it for the right one too), it fails.
//! Real `mailnode` processes, loopback only.

mod common;

use std::time::Duration;

use common::devices::{Linking, devices, join, link_new_device};
use common::{Node, describe, simple_message, value_of, wait_until};
use mailnode::device::code::PairingCode;

const WAIT: Duration = Duration::from_secs(90);

/// The code with another secret (and a checksum that fits it): what a
/// third party who knows where the linker waits, but not its secret, can
/// send.
fn with_other_secret(code: &str) -> String {
    let mut code = PairingCode::parse(code).expect("the shown code parses");
    code.secret[0] ^= 0x5a;
    code.to_text().to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_new_device_joins_with_the_identity_and_the_mail() {
    let (mut alice, mut bob) = Node::running_pair();
    // Mail in INBOX, in Sent, and one message still in the outbox (Bob
    // is offline), so the copy has something to clear.
    bob.send_with_lettre(
        &[&alice.email],
        &simple_message(&bob.email, &alice.email, "hello alice", "m1", "hi"),
    );
    wait_until(WAIT, "Bob's mail at Alice", || alice.count("INBOX") == 1);
    alice.send_with_lettre(
        &[&bob.email],
        &simple_message(&alice.email, &bob.email, "delivered", "m2", "hi"),
    );
    wait_until(WAIT, "Alice's mail at Bob", || bob.count("INBOX") == 1);
    bob.stop();
    alice.send_with_lettre(
        &[&bob.email],
        &simple_message(&alice.email, &bob.email, "queued", "m3", "hi"),
    );
    let before = alice.mailbox_state();
    assert_eq!(before["Outbox"].messages.len(), 1, "{before:?}");
    assert_eq!(before["Sent"].messages.len(), 2, "{before:?}");

    // The daemon holds the keys: linking refuses while it runs.
    let out = alice.cli(&["device", "link", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("stop it"), "{}", describe(&out));
    alice.stop();

    let mut link = Linking::start(&alice);
    let code = link.code();
    let mut laptop = Node::without_home("laptop", &alice.email);
    let out = join(&laptop, &code);
    assert!(
        out.status.success(),
        "join: {}\nlink: {}",
        describe(&out),
        link.text()
    );
    let joined = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, text) = link.finish();
    assert!(status.success(), "link: {text}");
    assert!(text.contains("linked: the device"), "{text}");

    // Both homes list both devices; each marks itself, with its own PeerId.
    let (alice_devices, alice_this) = devices(&alice);
    let (laptop_devices, laptop_this) = devices(&laptop);
    assert_eq!(alice_devices.len(), 2, "{alice_devices:?}");
    assert_eq!(alice_devices, laptop_devices);
    assert_ne!(alice_this, laptop_this);
    assert_eq!(
        value_of(&joined, "peer-id").as_deref(),
        Some(laptop_this.as_str())
    );
    assert_eq!(alice_devices[0], alice_this);
    assert_eq!(
        value_of(&joined, "fingerprint"),
        value_of(&alice.cli_ok(&["status"]), "fingerprint")
    );
    let card = alice.cli_ok(&["contacts", "export"]);
    assert_eq!(card, laptop.cli_ok(&["contacts", "export"]));
    let (listing, inspected) = common::gpg_and_sq_read(&card, &alice.email);
    assert!(listing.lines().any(|l| l.starts_with("pub:")), "{listing}");
    assert!(inspected.contains(&alice.email), "{inspected}");

    // The code is spent: a second join fails clearly and leaves no home.
    let thief = Node::without_home("thief", &alice.email);
    let out = join(&thief, &code);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot reach"), "{}", describe(&out));
    assert!(
        !thief.home().exists(),
        "a failed join leaves no home behind"
    );

    // The new device has Alice's contacts and mail: same UIDVALIDITY and
    // UIDs everywhere, and an empty Outbox (its entries were Alice's).
    assert!(
        laptop.cli_ok(&["contacts", "list"]).contains(&bob.email),
        "the address book came along"
    );
    laptop.start();
    let after = laptop.mailbox_state();
    for (name, mailbox) in &before {
        let copy = after
            .get(name)
            .unwrap_or_else(|| panic!("no {name} on the new device: {after:?}"));
        assert_eq!(copy.uidvalidity, mailbox.uidvalidity, "{name}");
        if name == "Outbox" {
            assert!(copy.messages.is_empty(), "{copy:?}");
        } else {
            assert_eq!(copy.messages, mailbox.messages, "{name}");
            assert_eq!(copy.uidnext, mailbox.uidnext, "{name}");
        }
    }
    assert_eq!(
        laptop.fetch_all("Sent").len(),
        2,
        "Sent keeps the queued message's blob"
    );
    laptop.stop();

    // Removing: not this device, not a stranger; the laptop goes.
    let out = alice.cli(&["device", "remove", &alice_this]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot remove itself"),
        "{}",
        describe(&out)
    );
    let stranger = bob.cli_ok(&["status"]);
    let stranger = value_of(&stranger, "peer-id").expect("bob's PeerId");
    let out = alice.cli(&["device", "remove", &stranger]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not one of your devices"),
        "{}",
        describe(&out)
    );
    let out = alice.cli(&["device", "remove", "not-a-peer-id"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a PeerId"),
        "{}",
        describe(&out)
    );
    alice.cli_ok(&["device", "remove", &laptop_this]);
    let (alice_devices, _) = devices(&alice);
    assert_eq!(alice_devices, vec![alice_this]);
    drop(laptop);
}

#[test]
fn a_wrong_code_fails_and_spends_the_code() {
    let alice = Node::create("alice");
    let mut link = Linking::start(&alice);
    let code = link.code();
    let wrong = with_other_secret(&code);
    let mallory = Node::without_home("mallory", &alice.email);
    let out = join(&mallory, &wrong);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("wrong pairing code"),
        "{}",
        describe(&out)
    );
    assert!(!mallory.home().exists(), "nothing was kept");
    let (status, text) = link.finish();
    assert!(!status.success(), "{text}");
    assert!(text.contains("wrong pairing code"), "{text}");
    assert!(text.contains("spent"), "{text}");

    // The right code no longer works either.
    let laptop = Node::without_home("laptop", &alice.email);
    let out = join(&laptop, &code);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot reach"), "{}", describe(&out));
    let (devices, _) = devices(&alice);
    assert_eq!(devices.len(), 1, "nobody was added: {devices:?}");
}

#[test]
fn join_refuses_a_home_with_an_identity_and_a_mistyped_code() {
    let bob = Node::create("bob");
    let alice = Node::create("alice");
    let mut link = Linking::start(&alice);
    let code = link.code();
    let out = join(&bob, &code);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already holds an identity"),
        "{}",
        describe(&out)
    );
    // A typing mistake is caught before anything is sent: the code stays
    // good for the right device.
    let mut typo: Vec<char> = code.chars().collect();
    typo[3] = if typo[3] == 'a' { 'b' } else { 'a' };
    let typo: String = typo.into_iter().collect();
    let laptop = Node::without_home("laptop", &alice.email);
    let out = join(&laptop, &typo);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("mistyped"), "{}", describe(&out));
    assert!(!laptop.home().exists());
    let out = join(&laptop, &code);
    assert!(
        out.status.success(),
        "{}\nlink: {}",
        describe(&out),
        link.text()
    );
    let (status, text) = link.finish();
    assert!(status.success(), "{text}");
}

fn has_subject(node: &Node, mailbox: &str, subject: &str) -> bool {
    node.imap_tool("subjects", &[mailbox])
        .lines()
        .any(|s| s == subject)
}

#[test]
fn mail_reaches_every_device_and_not_a_removed_one() {
    let (alice, mut bob) = Node::running_pair();
    bob.stop();
    let (mut laptop, laptop_peer) = link_new_device(&bob, "laptop");
    // Alice learns where the laptop listens, as she learnt Bob's address:
    // its card is Bob's card (same key), now listing both devices.
    alice.add_contact(&laptop);
    assert!(
        alice.contact_line(&bob.email).contains(&laptop_peer),
        "Alice's card of Bob lists the laptop"
    );
    bob.start();
    laptop.start();

    // One message, one submission: each device files its own copy.
    alice.send_with_lettre(
        &[&bob.email],
        &simple_message(&alice.email, &bob.email, "to both", "d1", "hi"),
    );
    for device in [&bob, &laptop] {
        wait_until(WAIT, &format!("the mail on {}", device.name), || {
            has_subject(device, "INBOX", "to both")
        });
    }
    // The laptop writes as Bob: Alice takes it as her contact's mail.
    laptop.send_with_lettre(
        &[&alice.email],
        &simple_message(&bob.email, &alice.email, "from the laptop", "d2", "hi"),
    );
    wait_until(WAIT, "the laptop's mail at Alice", || {
        has_subject(&alice, "INBOX", "from the laptop")
    });

    // Bob takes the laptop off his devices; his node announces the card.
    bob.stop();
    bob.cli_ok(&["device", "remove", &laptop_peer]);
    bob.start();
    wait_until(WAIT, "Alice applies Bob's card without the laptop", || {
        !alice.contact_line(&bob.email).contains(&laptop_peer)
    });
    alice.send_with_lettre(
        &[&bob.email],
        &simple_message(&alice.email, &bob.email, "after removal", "d3", "hi"),
    );
    wait_until(WAIT, "the mail on Bob's remaining device", || {
        has_subject(&bob, "INBOX", "after removal")
    });
    // Nothing is left in Alice's outbox for the laptop: it never gets it.
    wait_until(WAIT, "Alice's outbox drained", || {
        alice.count("Outbox") == 0
    });
    assert!(
        !has_subject(&laptop, "INBOX", "after removal"),
        "a removed device receives nothing new"
    );

    // Nor is the removed device Bob any more: Alice's node refuses it, and
    // the laptop's user gets the bounce.
    laptop.send_with_lettre(
        &[&alice.email],
        &simple_message(
            &bob.email,
            &alice.email,
            "from a removed device",
            "d4",
            "hi",
        ),
    );
    let bounce = format!("Undelivered mail to <{}>", alice.email);
    wait_until(WAIT, "the bounce on the removed device", || {
        has_subject(&laptop, "INBOX", &bounce)
    });
    assert!(!has_subject(&alice, "INBOX", "from a removed device"));
}
