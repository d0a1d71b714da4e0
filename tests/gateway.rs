//! Issue 11: the gateway through the user's existing mail account.
//!
//! A private Dovecot (`node/benches/support/dovecot.rs`, implicit TLS with a
//! self-signed certificate for `localhost`) plays the provider's mailbox.
//! These tests cover the configuration: the password never lies in the
//! home in the clear, `--insecure-local` is refused for remote hosts, and
//! `gateway test` says precisely what fails (connection, certificate,
//! login) for each server.

mod common;
#[path = "../node/benches/support/dovecot.rs"]
#[allow(dead_code)]
mod dovecot;
#[path = "../node/benches/support/measure.rs"]
mod measure;

use common::{Node, describe, files_containing, free_port, write_file};
use dovecot::{DOVECOT_PASS, Dovecot, Options};

/// `gateway add` for Carol's account at the test Dovecot.
fn add_gateway(node: &Node, smtp_port: u16, imap_port: u16, password: &str, insecure: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_file(dir.path(), "password", format!("{password}\n").as_bytes());
    let smtp = format!("localhost:{smtp_port}");
    let imap = format!("localhost:{imap_port}");
    let mut args = vec![
        "gateway",
        "add",
        "--smtp",
        &smtp,
        "--imap",
        &imap,
        "--user",
        "alice",
        "--password-file",
        file.to_str().expect("utf-8"),
    ];
    if insecure {
        args.push("--insecure-local");
    }
    node.cli_ok(&args);
}

/// `gateway test`'s output; it must fail (the SMTP port refuses).
fn gateway_test(node: &Node) -> String {
    let out = node.cli(&["gateway", "test"]);
    assert!(
        !out.status.success(),
        "gateway test passed: {}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn insecure_local_is_refused_for_remote_hosts() {
    let node = Node::create("alice");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_file(dir.path(), "password", b"whatever\n");
    let out = node.cli(&[
        "gateway",
        "add",
        "--smtp",
        "smtp.example.org:465",
        "--imap",
        "127.0.0.1:993",
        "--user",
        "alice",
        "--password-file",
        file.to_str().expect("utf-8"),
        "--insecure-local",
    ]);
    assert!(!out.status.success(), "accepted: {}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(!node.home().join("gateway.json").exists());
    let list = node.cli_ok(&["gateway", "list"]);
    assert!(list.contains("no gateway"), "{list}");
}

#[test]
fn gateway_test_says_what_fails() {
    let provider = Dovecot::start_with(Options { tls: true });
    let imaps = provider.tls_port.expect("TLS port");
    let closed = free_port();
    let node = Node::create("alice");

    // Right password, certificate checks off (loopback): IMAP logs in, the
    // SMTP port refuses connections.
    add_gateway(&node, closed, imaps, DOVECOT_PASS, true);
    assert!(
        files_containing(node.home(), DOVECOT_PASS.as_bytes()).is_empty(),
        "the gateway password lies in the home in the clear"
    );
    let list = node.cli_ok(&["gateway", "list"]);
    assert!(list.contains(&format!("imap: localhost:{imaps}")), "{list}");
    assert!(list.contains("NOT checked"), "{list}");
    let out = gateway_test(&node);
    assert!(
        out.contains(&format!("IMAP localhost:{imaps}: ok")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "SMTP localhost:{closed}: FAILED: the connection failed"
        )),
        "{out}"
    );
    let out = node.cli(&[
        "gateway", "add", "--smtp", "a:1", "--imap", "b:2", "--user", "u",
    ]);
    assert!(!out.status.success(), "a second gateway was added");

    // Wrong password: the login is refused, in those words.
    node.cli_ok(&["gateway", "remove"]);
    assert!(!node.home().join("gateway-password.enc").exists());
    add_gateway(&node, closed, imaps, "not-the-password", true);
    let out = gateway_test(&node);
    assert!(
        out.contains(&format!(
            "IMAP localhost:{imaps}: FAILED: the server refused the login of \"alice\""
        )),
        "{out}"
    );

    // Certificates checked (the default): the self-signed one is refused
    // before anything, the password least of all, is sent.
    node.cli_ok(&["gateway", "remove"]);
    add_gateway(&node, closed, imaps, DOVECOT_PASS, false);
    let out = gateway_test(&node);
    assert!(
        out.contains(&format!(
            "IMAP localhost:{imaps}: FAILED: TLS with localhost:{imaps} failed"
        )),
        "{out}"
    );
    assert!(out.contains("certificate"), "{out}");
}

/// Without a gateway a recipient without a card is refused at RCPT, as
/// before; with one (provider's SMTP down) the message is accepted, waits
/// in the outbox and is retried, and the Sent copy says it left in the
/// clear. The SMTP sink that accepts the retry is not built yet.
#[test]
fn gateway_recipients_wait_in_the_outbox_while_the_provider_is_down() {
    let mut alice = Node::create("alice");
    alice.start();
    let raw = common::simple_message(
        "alice@example.org",
        "carol@example.net",
        "hello Carol",
        "<gw1@example.org>",
        "Hi Carol\r\n",
    );
    let refused = std::panic::catch_unwind(|| alice.send_with_lettre(&["carol@example.net"], &raw));
    assert!(
        refused.is_err(),
        "a recipient without a card was accepted without a gateway"
    );
    alice.stop();

    add_gateway(&alice, free_port(), free_port(), "whatever", true);
    alice.start();
    alice.send_with_lettre(&["carol@example.net"], &raw);
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the gateway delivery to be retried",
        || alice.log_count("will retry") > 0 || alice.log().contains("delivery failed"),
    );
    assert_eq!(
        alice.count("Outbox"),
        1,
        "the message is not waiting in the Outbox"
    );
    let sent = alice.fetch_all("Sent");
    assert_eq!(sent.len(), 1);
    let sent = String::from_utf8_lossy(&sent[0]);
    assert!(sent.contains("X-Mailnode-Gateway: plaintext"), "{sent}");
}
