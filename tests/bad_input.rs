//! Issue 2, "what it must show" 6: bad input gets a clear protocol error and
//! leaves the store unchanged.

mod common;

use std::time::Duration;

use common::{Node, mailtool, mailtool_output, str_refs, wait_until, write_file};

const MAILBOXES: [&str; 3] = ["INBOX", "Sent", "Requests"];

fn counts(node: &Node) -> Vec<usize> {
    MAILBOXES.iter().map(|m| node.count(m)).collect()
}

fn smtp_args(node: &Node) -> Vec<String> {
    vec![
        "127.0.0.1".into(),
        node.running().smtp.to_string(),
        node.email.clone(),
        node.password(),
    ]
}

fn message(from: &str, to: &str, body_len: usize) -> Vec<u8> {
    let mut m = format!("From: {from}\r\nTo: {to}\r\nSubject: test\r\n\r\n").into_bytes();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    while m.len() < body_len {
        m.extend_from_slice(line);
    }
    m
}

#[test]
fn unknown_recipient_gets_550_and_nothing_is_queued() {
    let mut alice = Node::create("alice");
    alice.start();
    let before = counts(&alice);
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "m.eml",
        &message(&alice.email, "carol@example.org", 100),
    );
    let out = mailtool(
        &[
            &["smtp-expect"][..],
            &str_refs(&smtp_args(&alice)),
            &[
                &alice.email,
                "carol@example.org",
                "550",
                path.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert!(
        out.contains("mailnode contacts import"),
        "the 550 says how to add the contact: {out}"
    );
    assert_eq!(counts(&alice), before, "nothing filed or queued");
}

#[test]
fn wrong_bridge_password_is_refused_on_imap_and_smtp() {
    let mut alice = Node::create("alice");
    alice.start();
    let imap_port = alice.running().imap.to_string();
    let smtp_port = alice.running().smtp.to_string();
    mailtool(&[
        "login-fails",
        "127.0.0.1",
        &imap_port,
        &alice.email,
        "wrong-password",
    ]);
    mailtool(&[
        "smtp-auth-fails",
        "127.0.0.1",
        &smtp_port,
        &alice.email,
        "wrong-password",
    ]);
    // The right password still works afterwards.
    assert_eq!(alice.count("INBOX"), 0);
}

#[test]
fn message_signed_by_a_key_that_is_not_the_senders_card_is_refused() {
    // Mallory makes a key for Alice's address and writes to Bob, who has the
    // real Alice in his address book.
    let mut alice = Node::create("alice");
    let mut mallory = Node::create_with_email("mallory", "alice@example.org");
    let mut bob = Node::create("bob");
    bob.add_contact(&alice);
    mallory.add_contact(&bob);
    bob.start();
    mallory.start();
    alice.start();
    let before = counts(&bob);
    mallory.send_with_lettre(&[&bob.email], &message(&mallory.email, &bob.email, 200));
    // Mallory's node gets a bounce that names the mismatch.
    wait_until(
        Duration::from_secs(60),
        "the bounce in Mallory's INBOX",
        || mallory.count("INBOX") >= 1,
    );
    let bounce = String::from_utf8(mallory.fetch_all("INBOX").remove(0)).unwrap();
    assert!(
        bounce.contains("does not match the contact's card"),
        "the bounce gives the reason:\n{bounce}"
    );
    assert!(
        bob.log().contains("rejected a delivery"),
        "Bob's node logs the rejection"
    );
    assert_eq!(counts(&bob), before, "nothing filed at Bob");
}

#[test]
fn oversized_messages_are_refused_by_the_bridge_and_by_the_peer() {
    let mut alice = Node::create("alice");
    let mut bob = Node::create("bob");
    alice.add_contact(&bob);
    bob.add_contact(&alice);
    // Bob accepts at most 100 kB from peers (and from his own client).
    std::fs::write(
        bob.home().join("config.toml"),
        "[network]\nmax_message_size = 100000\n",
    )
    .unwrap();
    alice.start();
    bob.start();
    let dir = tempfile::tempdir().unwrap();

    // At Bob's own SMTP bridge: 552 at MAIL (SIZE) or after DATA.
    let big = write_file(
        dir.path(),
        "big.eml",
        &message(&bob.email, &alice.email, 200_000),
    );
    let before_bob = counts(&bob);
    mailtool(
        &[
            &["smtp-expect"][..],
            &str_refs(&smtp_args(&bob)),
            &[&bob.email, &alice.email, "552", big.to_str().unwrap()],
        ]
        .concat(),
    );
    assert_eq!(counts(&bob), before_bob, "nothing stored at Bob");

    // From Alice (whose limit is the default) to Bob: Bob's node refuses it,
    // Alice gets a bounce with the reason, Bob stores nothing.
    alice.send_with_lettre(&[&bob.email], &message(&alice.email, &bob.email, 150_000));
    wait_until(
        Duration::from_secs(60),
        "the bounce in Alice's INBOX",
        || alice.count("INBOX") >= 1,
    );
    let bounce = String::from_utf8(alice.fetch_all("INBOX").remove(0)).unwrap();
    assert!(
        bounce.contains("exceeds"),
        "the bounce gives the reason:\n{bounce}"
    );
    assert_eq!(counts(&bob), before_bob, "nothing stored at Bob");
}

#[test]
fn malformed_imap_and_smtp_command_lines_get_protocol_errors() {
    let mut alice = Node::create("alice");
    alice.start();
    let before = counts(&alice);
    let dir = tempfile::tempdir().unwrap();
    let imap_script = format!(
        "<< ^\\* OK\n\
         >> a1 LOGIN\n<< ^a1 BAD\n\
         >> this is not imap\n<< BAD\n\
         >> a2 FETCH 1:* (FLAGS)\n<< ^a2 (BAD|NO)\n\
         >> a3 LOGIN {user} {pass}\n<< ^a3 OK\n\
         >> a4 SELECT INBOX\n<<~ ^a4 OK\n\
         >> a5 FETCH 1:* (FLAGS\n<< ^a5 BAD\n\
         >> a6 NOOP\n<< ^a6 OK\n",
        user = alice.email,
        pass = alice.password()
    );
    let path = write_file(dir.path(), "imap.txt", imap_script.as_bytes());
    let out = mailtool_output(&[
        "raw",
        "127.0.0.1",
        &alice.running().imap.to_string(),
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::describe(&out));

    let imap_script2 = format!(
        "<< ^\\* OK\n\
         >> b1 LOGIN {user} {pass}\n<< ^b1 OK\n\
         >> b2 FETCH x:y (FLAGS)\n<< ^b2 BAD\n\
         >> b3 STORE 1 +FLAGS\n<< ^b3 BAD\n\
         >> b4 UID FETCH 1:* (NOSUCHITEM)\n<< ^b4 BAD\n\
         >> b5 SELECT\n<< ^b5 BAD\n\
         >> b6 NOOP\n<< ^b6 OK\n\
         >> b7 LOGOUT\n<< ^\\* BYE\n<< ^b7 OK\n",
        user = alice.email,
        pass = alice.password()
    );
    let path = write_file(dir.path(), "imap2.txt", imap_script2.as_bytes());
    let out = mailtool_output(&[
        "raw",
        "127.0.0.1",
        &alice.running().imap.to_string(),
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::describe(&out));

    let smtp_script = String::from(
        "<< ^220 \n\
         >> EHLO client.test\n<<~ ^250 \n\
         >> FOO BAR\n<< ^500 \n\
         >> MAIL FROM:<broken\n<< ^(501|530) \n\
         >> RCPT TO:<bob@example.org>\n<< ^(503|530) \n\
         >> DATA\n<< ^(503|530|554) \n\
         >> NOOP\n<< ^250 \n\
         >> QUIT\n<< ^221 \n",
    );
    let path = write_file(dir.path(), "smtp.txt", smtp_script.as_bytes());
    let out = mailtool_output(&[
        "raw",
        "127.0.0.1",
        &alice.running().smtp.to_string(),
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::describe(&out));
    assert_eq!(counts(&alice), before, "nothing changed in the store");
}
