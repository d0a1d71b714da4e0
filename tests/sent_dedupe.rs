//! Issue 3, "what it must show" 5: after a client submits a message over
//! SMTP and then APPENDs its own copy to Sent (as Thunderbird does), Sent
//! holds it once, with the flags of the APPEND applied.

mod common;

use std::collections::BTreeSet;

use common::{Node, describe, mailtool_fast, simple_message, str_refs, write_file};

/// Submits `raw` with Python's smtplib.
fn submit(node: &Node, to: &str, raw: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(dir.path(), "submit.eml", raw);
    let out = mailtool_fast(
        &[
            &["smtp-send"][..],
            &str_refs(&node.smtp_args()),
            &[&node.email, to, path.to_str().expect("utf-8 path")],
        ]
        .concat(),
    );
    assert!(out.status.success(), "smtplib: {}", describe(&out));
}

fn flags(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|f| f.to_string()).collect()
}

#[test]
fn sent_holds_a_submitted_message_once() {
    let mut alice = Node::create("alice");
    // Bob only needs to be a contact: the message waits in Alice's outbox.
    let bob = Node::create("bob");
    alice.add_contact(&bob);
    alice.start();

    // 1. The same bytes submitted, then appended with \Seen \Flagged.
    let first = simple_message(
        "Alice <alice@example.org>",
        "Bob <bob@example.org>",
        "Minutes",
        "sent-dedupe-1",
        "The minutes of today's meeting.",
    );
    submit(&alice, &bob.email, &first);
    let sent = alice.mailbox("Sent");
    let filed = sent
        .uid_of("<sent-dedupe-1@example.org>")
        .unwrap_or_else(|| panic!("the submitted message is filed in Sent: {sent:?}"));
    assert_eq!(sent.messages.len(), 1, "{sent:?}");

    let appended = alice.append("Sent", "(\\Seen \\Flagged)", &first);
    let sent = alice.mailbox("Sent");
    assert_eq!(
        sent.messages.len(),
        1,
        "APPEND of the submitted message must not add a second copy: {sent:?}"
    );
    let message = sent
        .message("<sent-dedupe-1@example.org>")
        .expect("still in Sent");
    assert!(
        message.flags.is_superset(&flags(&["\\Seen", "\\Flagged"])),
        "the APPEND's flags are applied: {message:?}"
    );
    assert!(
        appended == 0 || sent.uid_of("<sent-dedupe-1@example.org>") == Some(appended),
        "APPENDUID {appended} must name the message Sent holds (it was UID {filed}): {sent:?}"
    );

    // 2. Thunderbird's copy differs from what it submitted: it keeps the
    // Bcc field, which SMTP submission never carries.
    let second = simple_message(
        "Alice <alice@example.org>",
        "Bob <bob@example.org>",
        "Agenda",
        "sent-dedupe-2",
        "The agenda for tomorrow.",
    );
    submit(&alice, &bob.email, &second);
    let with_bcc = {
        let text = String::from_utf8(second.clone()).expect("utf-8");
        text.replacen(
            "Subject: Agenda\r\n",
            "Bcc: Bob <bob@example.org>\r\nSubject: Agenda\r\n",
            1,
        )
        .into_bytes()
    };
    alice.append("Sent", "(\\Seen $label1)", &with_bcc);
    let sent = alice.mailbox("Sent");
    assert_eq!(sent.messages.len(), 2, "{sent:?}");
    let message = sent
        .message("<sent-dedupe-2@example.org>")
        .expect("second message in Sent");
    assert!(
        message.flags.is_superset(&flags(&["\\Seen", "$label1"])),
        "the APPEND's flags are applied: {message:?}"
    );

    // 3. A message that was never submitted is an ordinary APPEND.
    let draft = simple_message(
        "Alice <alice@example.org>",
        "Bob <bob@example.org>",
        "Written elsewhere",
        "sent-dedupe-3",
        "Filed by hand.",
    );
    alice.append("Sent", "(\\Seen)", &draft);
    let sent = alice.mailbox("Sent");
    assert_eq!(sent.messages.len(), 3, "{sent:?}");

    // 4. A restart changes nothing of that.
    alice.stop();
    alice.start();
    let after = alice.mailbox("Sent");
    assert_eq!(after.uid_map(), sent.uid_map(), "Sent after a restart");
    let ids: Vec<&str> = after.messages.iter().map(|m| m.msgid.as_str()).collect();
    assert_eq!(
        ids,
        [
            "<sent-dedupe-1@example.org>",
            "<sent-dedupe-2@example.org>",
            "<sent-dedupe-3@example.org>"
        ],
        "each message once"
    );
}
