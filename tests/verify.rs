//! Issue 8, contact verification: `mailnode contacts verify` shows both
//! sides the same safety number (and a QR code, also as PNG) and marks the
//! contact verified; afterwards a card with another key for that contact,
//! arriving by mail or by import, is refused, and the user finds a notice
//! from mailnode in INBOX, once per refused key.

mod common;

use std::fs;
use std::time::Duration;

use common::{Node, describe, simple_message, value_of, wait_until};

const NOTICE_SUBJECT: &str = "Refused a new key for your verified contact <bob@example.org>";

fn subjects(node: &Node, mailbox: &str) -> Vec<String> {
    node.imap_tool("subjects", &[mailbox])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_verified_contacts_changed_key_is_refused_with_a_notice() {
    let (alice, bob) = Node::running_pair();
    let dir = tempfile::tempdir().expect("tempdir");
    let png = dir.path().join("bob.png");

    // Without a terminal or --yes nothing is marked.
    let out = alice.cli(&["contacts", "verify", "bob@example.org"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert!(!alice.cli_ok(&["contacts", "list"]).contains("verified"));

    let ours = alice.cli_ok(&[
        "contacts",
        "verify",
        "bob@example.org",
        "--yes",
        "--png",
        png.to_str().expect("utf-8"),
    ]);
    let theirs = bob.cli_ok(&["contacts", "verify", "alice@example.org", "--yes"]);
    let number = value_of(&ours, "safety-number").expect("safety number");
    assert_eq!(Some(number.clone()), value_of(&theirs, "safety-number"));
    assert_eq!(number.split(' ').count(), 12, "{number}");
    assert!(ours.contains('█'), "no QR code drawn:\n{ours}");
    let image = fs::read(&png).expect("png written");
    assert!(image.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(alice.cli_ok(&["contacts", "list"]).contains("verified"));

    // Mallory makes a key for Bob's address and writes to Alice.
    let mut mallory = Node::create_with_email("mallory", "bob@example.org");
    mallory.add_contact(&alice);
    mallory.start();
    for i in 0..2 {
        let forged = simple_message(
            "bob@example.org",
            &alice.email,
            "it is me, Bob",
            &format!("forged-{i}"),
            "new key, trust me",
        );
        mallory.send_with_lettre(&[&alice.email], &forged);
        wait_until(Duration::from_secs(60), "Mallory's bounce", || {
            mallory.count("INBOX") == i + 1
        });
    }
    let notices: Vec<String> = subjects(&alice, "INBOX")
        .into_iter()
        .filter(|s| s == NOTICE_SUBJECT)
        .collect();
    assert_eq!(notices.len(), 1, "one notice per refused key");
    assert_eq!(alice.count("Requests"), 0, "the forged mail was filed");
    let bounce = mallory.fetch_all("INBOX").remove(0);
    assert!(
        String::from_utf8_lossy(&bounce).contains("verified the key"),
        "{}",
        String::from_utf8_lossy(&bounce)
    );
    let notice = alice
        .fetch_all("INBOX")
        .into_iter()
        .find(|m| String::from_utf8_lossy(m).contains(NOTICE_SUBJECT))
        .expect("the notice");
    let text = String::from_utf8_lossy(&notice);
    let mallory_fpr = value_of(&mallory.cli_ok(&["status"]), "fingerprint").expect("fpr");
    assert!(
        text.contains("From: mailnode <mailnode@mailnode.invalid>"),
        "{text}"
    );
    assert!(text.contains(&mallory_fpr), "{text}");
    assert!(
        text.contains("mailnode contacts remove bob@example.org"),
        "{text}"
    );

    // Importing Mallory's card is refused too, even with --replace.
    let card = dir.path().join("mallory.asc");
    fs::write(&card, mallory.cli_ok(&["contacts", "export"])).expect("card");
    let out = alice.cli(&[
        "contacts",
        "import",
        card.to_str().expect("utf-8"),
        "--replace",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("verified contact"),
        "{}",
        describe(&out)
    );

    // The real Bob still reaches Alice.
    let before = alice.count("INBOX");
    bob.send_with_lettre(
        &[&alice.email],
        &simple_message(&bob.email, &alice.email, "still me", "real-bob", "hi"),
    );
    wait_until(Duration::from_secs(60), "Bob's mail", || {
        alice.count("INBOX") == before + 1
    });
}
