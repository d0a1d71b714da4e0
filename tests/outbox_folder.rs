//! The delivery status a mail client sees (issue 6): the `Outbox` folder
//! lists what is still being delivered and refuses changes, empties when
//! the mail is delivered, and a message that cannot be delivered in time
//! comes back as an RFC 3464 report in INBOX.
//!
//! Real daemons on loopback (mDNS off), driven over IMAP with Python's
//! imaplib; the bounce is parsed with Python's `email` package, as a client
//! written against the standard library would.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Node, python_bin, simple_message, wait_until};

/// imaplib against a node: prints one line per finding, exits 1 with a
/// reason when an expectation fails. argv: host port user pass check.
const CLIENT: &str = r#"
import email, imaplib, sys
from email import policy

host, port, user, password, check = sys.argv[1:6]
conn = imaplib.IMAP4(host, int(port))
conn.login(user, password)

def fail(why):
    print(why, file=sys.stderr)
    sys.exit(1)

def messages(mailbox):
    typ, _ = conn.select('"%s"' % mailbox)
    if typ != "OK":
        fail("cannot select " + mailbox)
    typ, data = conn.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
    found = []
    for item in data:
        if isinstance(item, tuple):
            found.append((item[0].decode(), item[1]))
    return found

if check == "outbox-waiting":
    waiting = messages("Outbox")
    if len(waiting) != 1:
        fail("Outbox holds %d messages, not 1" % len(waiting))
    meta, raw = waiting[0]
    msg = email.message_from_bytes(raw, policy=policy.default)
    print("subject:", msg["Subject"])
    print("flags:", meta)
    typ, data = conn.append('"Outbox"', None, None, b"Subject: forged\r\n\r\nx\r\n")
    print("append:", typ, data[0].decode())
    if typ != "NO" or b"mailnode maintains it" not in data[0]:
        fail("APPEND to Outbox was not refused: %s %r" % (typ, data))
    typ, data = conn.delete('"Outbox"')
    print("delete:", typ, data[0].decode())
    if typ != "NO":
        fail("DELETE of Outbox was not refused")
elif check == "bounce":
    inbox = messages("INBOX")
    if len(inbox) != 1:
        fail("INBOX holds %d messages, not 1" % len(inbox))
    report = email.message_from_bytes(inbox[0][1], policy=policy.default)
    print("subject:", report["Subject"])
    if report.get_content_type() != "multipart/report":
        fail("not a multipart/report: " + report.get_content_type())
    if report.get_param("report-type") != "delivery-status":
        fail("report-type is %r" % report.get_param("report-type"))
    parts = report.get_payload()
    kinds = [part.get_content_type() for part in parts]
    print("parts:", " ".join(kinds))
    if kinds != ["text/plain", "message/delivery-status", "text/rfc822-headers"]:
        fail("unexpected parts %r" % kinds)
    # The email package parses message/delivery-status into header blocks:
    # the per-message fields, then one block per recipient.
    blocks = parts[1].get_payload()
    print("reporting-mta:", blocks[0]["Reporting-MTA"])
    for block in blocks[1:]:
        for field in ("Final-Recipient", "Action", "Status", "Diagnostic-Code"):
            print("%s: %s" % (field.lower(), block[field]))
    print("original-message-id:", email.message_from_string(parts[2].get_payload())["Message-ID"])
    if messages("Outbox"):
        fail("Outbox is not empty after the bounce")
else:
    fail("unknown check " + check)
conn.logout()
"#;

/// Messages in `mailbox` (IMAP STATUS via imaplib), with the cached bridge
/// password: asking `mailnode bridge` unlocks the identity every time.
fn count(node: &Node, mailbox: &str) -> usize {
    node.imap_tool("count", &[mailbox])
        .trim()
        .parse()
        .expect("count prints a number")
}

/// Runs one `CLIENT` check against `node`; returns its output lines.
fn client(node: &Node, check: &str) -> String {
    let imap = node.imap_args_cached();
    let out = Command::new(python_bin())
        .arg("-c")
        .arg(CLIENT)
        .args(&imap)
        .arg(check)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run python3");
    assert!(
        out.status.success(),
        "imaplib check {check} failed: {}",
        common::describe(&out)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn outbox_lists_waiting_mail_until_it_is_delivered() {
    let mut alice = Node::create("alice");
    let mut bob = Node::create("bob");
    alice.add_contact(&bob);
    bob.add_contact(&alice);
    alice.start();
    assert_eq!(count(&alice, "Outbox"), 0);

    // Bob is offline: the message waits, and Alice's client sees it.
    let raw = simple_message(
        &alice.email,
        &bob.email,
        "waiting for Bob",
        "outbox-1",
        "Bob is offline.",
    );
    alice.send_with_lettre(&[&bob.email], &raw);
    assert_eq!(
        count(&alice, "Outbox"),
        1,
        "the SMTP 250 came after the commit"
    );
    let seen = client(&alice, "outbox-waiting");
    assert!(seen.contains("subject: waiting for Bob"), "{seen}");
    assert!(seen.contains("\\Seen"), "{seen}");
    assert_eq!(
        count(&alice, "Outbox"),
        1,
        "the refused APPEND left nothing"
    );
    assert_eq!(count(&alice, "Sent"), 1);

    // Bob comes online: delivered, and the Outbox empties.
    bob.start();
    wait_until(Duration::from_secs(60), "delivery to Bob", || {
        count(&bob, "INBOX") == 1
    });
    wait_until(Duration::from_secs(30), "Alice's Outbox to empty", || {
        count(&alice, "Outbox") == 0
    });
    assert_eq!(count(&alice, "Sent"), 1, "Sent keeps its copy");
    alice.stop();
    bob.stop();
}

#[test]
fn undeliverable_mail_bounces_as_a_delivery_status_report() {
    let mut alice = Node::create("alice");
    let carol = Node::create("carol");
    alice.add_contact(&carol);
    // Carol never comes online. Give up after 15 s instead of 7 days
    // (long enough to look at the Outbox first on a loaded machine).
    std::fs::write(
        alice.home().join("config.toml"),
        "[delivery]\ngive_up_after_secs = 15\nmax_retry_interval_secs = 1\n",
    )
    .expect("write config");
    alice.start();
    let raw = simple_message(
        &alice.email,
        &carol.email,
        "never read",
        "bounce-1",
        "Carol is away.",
    );
    alice.send_with_lettre(&[&carol.email], &raw);
    assert_eq!(count(&alice, "Outbox"), 1);
    wait_until(Duration::from_secs(60), "the bounce in INBOX", || {
        count(&alice, "INBOX") == 1
    });
    let report = client(&alice, "bounce");
    for expected in [
        "subject: Undelivered mail to <carol@example.org>",
        "parts: text/plain message/delivery-status text/rfc822-headers",
        ".mailnode.invalid",
        "final-recipient: rfc822; carol@example.org",
        "action: failed",
        "status: 4.4.7",
        "diagnostic-code: X-mailnode; it could not be delivered for 15 seconds",
    ] {
        assert!(report.contains(expected), "{expected:?} not in:\n{report}");
    }
    assert!(
        report.contains("original-message-id: <"),
        "the original's outer header is attached:\n{report}"
    );
    assert_eq!(count(&alice, "Outbox"), 0);
    alice.stop();
}
