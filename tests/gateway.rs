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
#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use common::{Node, describe, files_containing, free_port, write_file};
use dovecot::{DOVECOT_PASS, Dovecot, Options};
use smtp_sink::{Delivery, Mode, SmtpSink};

/// `gateway add` for Carol's account at the test Dovecot.
fn add_gateway(node: &Node, smtp_port: u16, imap_port: u16, password: &str, insecure: bool) {
    add_gateway_with(node, smtp_port, imap_port, password, insecure, &[]);
}

/// [`add_gateway`] with more `gateway add` arguments.
fn add_gateway_with(
    node: &Node,
    smtp_port: u16,
    imap_port: u16,
    password: &str,
    insecure: bool,
    extra: &[&str],
) {
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
    args.extend_from_slice(extra);
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
    // The IMAP side is down too: the fetch loop says so and tries again.
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the failed fetch to be reported",
        || alice.log_count("fetching from the gateway failed") > 0,
    );
    assert!(alice.log().contains("trying again in"), "{}", alice.log());
    let sent = alice.fetch_all("Sent");
    assert_eq!(sent.len(), 1);
    let sent = String::from_utf8_lossy(&sent[0]);
    assert!(sent.contains("X-Mailnode-Gateway: plaintext"), "{sent}");
}

/// Appends `raw` to `user`'s INBOX at the provider's Dovecot (plain IMAP
/// on loopback, as the provider's own delivery would), with `date` as its
/// INTERNALDATE when given.
fn provider_append(provider: &Dovecot, user: &str, raw: &[u8], date: Option<&str>) {
    let flags = date.map(|d| format!("() \"{d}\"")).unwrap_or_default();
    provider_append_to(provider, user, "INBOX", &flags, raw);
}

/// Appends `raw` to `user`'s `mailbox` at the provider with `flags` (the
/// APPEND arguments before the literal: `""`, `(\Seen)`, `() "DATE"`).
fn provider_append_to(provider: &Dovecot, user: &str, mailbox: &str, flags: &str, raw: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_file(dir.path(), "message.eml", raw);
    let port = provider.port.to_string();
    common::mailtool(&[
        "append",
        "127.0.0.1",
        &port,
        user,
        DOVECOT_PASS,
        mailbox,
        flags,
        file.to_str().expect("utf-8"),
    ]);
}

/// Starts `node` and waits for its first pass over the provider's INBOX.
fn start_fetching(node: &mut Node) {
    node.start();
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the first pass over the provider's INBOX",
        || node.home().join("gateway-cursor.json").exists(),
    );
}

/// An OpenPGP key for `address` made by gpg in `gnupghome`, exported in
/// binary.
fn gpg_key(gnupghome: &std::path::Path, address: &str) -> Vec<u8> {
    gpg_with(
        gnupghome,
        &["--quick-gen-key", address, "default", "default", "never"],
        b"",
    );
    gpg_with(gnupghome, &["--export", address], b"")
}

/// Carol's mail to Alice's provider account, with Carol's Autocrypt header.
fn carol_message(subject: &str, id: &str, keydata: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(keydata);
    let mut autocrypt =
        "Autocrypt: addr=carol@example.net; prefer-encrypt=mutual; keydata=".to_string();
    for chunk in encoded.as_bytes().chunks(72) {
        autocrypt.push_str("\r\n ");
        autocrypt.push_str(std::str::from_utf8(chunk).expect("base64"));
    }
    format!(
        "From: Carol <carol@example.net>\r\n\
         To: alice@example.org\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: {id}\r\n\
         X-Mailnode-Verified-Signer: forged@example.org\r\n\
         {autocrypt}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         carol-body-{subject}\r\n",
        date = chrono::Utc::now().to_rfc2822(),
    )
    .into_bytes()
}

/// The messages of Alice's INBOX whose bytes contain `needle`.
fn inbox_with(node: &Node, needle: &str) -> Vec<String> {
    node.fetch_all("INBOX")
        .iter()
        .map(|m| String::from_utf8_lossy(m).to_string())
        .filter(|m| m.contains(needle))
        .collect()
}

/// Mail that arrives at the provider's INBOX after the gateway was added
/// lands in Alice's INBOX exactly once: across a restart, with mail that
/// arrived while the node was down, and when the saved position is lost (a
/// crash between the commit and the save). Mail from before the gateway is
/// not taken. Forged internal fields are removed, the message is encrypted
/// at rest, and Carol's Autocrypt key is recorded (sealed).
#[test]
fn provider_mail_is_fetched_exactly_once_across_restarts() {
    let provider = Dovecot::start_with(Options { tls: true });
    let imaps = provider.tls_port.expect("TLS port");
    let gnupg = tempfile::tempdir().expect("tempdir");
    let carol_key = gpg_key(gnupg.path(), "carol@example.net");

    let old = common::simple_message(
        "dave@example.net",
        "alice@example.org",
        "from 2020",
        "<old@example.net>",
        "old-body\r\n",
    );
    provider_append(&provider, "alice", &old, Some("01-Jan-2020 10:00:00 +0000"));

    let mut alice = Node::create("alice");
    add_gateway(&alice, free_port(), imaps, DOVECOT_PASS, true);
    start_fetching(&mut alice);
    provider_append(
        &provider,
        "alice",
        &carol_message("first", "<c1@example.net>", &carol_key),
        None,
    );
    common::wait_until(
        std::time::Duration::from_secs(30),
        "Carol's first message in INBOX (IDLE)",
        || alice.count("INBOX") >= 1,
    );
    let first = inbox_with(&alice, "carol-body-first");
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0].starts_with("X-Mailnode-Gateway: received\r\n"),
        "{}",
        first[0]
    );
    assert!(
        !first[0].contains("forged@example.org"),
        "a forged mark survived"
    );
    assert!(
        files_containing(alice.home(), b"carol-body-first").is_empty(),
        "fetched mail lies in the home in the clear"
    );
    assert!(alice.home().join("autocrypt.enc").exists());
    assert!(
        files_containing(alice.home(), b"carol@example.net").is_empty(),
        "the Autocrypt record lies in the home in the clear"
    );

    alice.stop();
    provider_append(
        &provider,
        "alice",
        &carol_message("second", "<c2@example.net>", &carol_key),
        None,
    );
    alice.start();
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the message that arrived while the node was down",
        || alice.count("INBOX") >= 2,
    );

    // A lost position (as after a crash right after a commit): everything
    // since the gateway was added is fetched again and recognised.
    alice.stop();
    std::fs::remove_file(alice.home().join("gateway-cursor.json")).expect("remove cursor");
    alice.start();
    // The position is saved after each message; the provider's UIDs are
    // 1 (the old one), 2 and 3.
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the pass after the lost position to reach the last message",
        || {
            std::fs::read_to_string(alice.home().join("gateway-cursor.json"))
                .is_ok_and(|text| text.contains("\"last_uid\":3"))
        },
    );
    let inbox = alice.fetch_all("INBOX");
    assert_eq!(inbox.len(), 2, "not exactly once: {} messages", inbox.len());
    assert_eq!(inbox_with(&alice, "carol-body-first").len(), 1);
    assert_eq!(inbox_with(&alice, "carol-body-second").len(), 1);
    assert!(
        inbox_with(&alice, "old-body").is_empty(),
        "mail from before the gateway was taken"
    );
    assert!(
        alice.log_count("fetched mail from the gateway") >= 2,
        "{}",
        alice.log()
    );
}

/// Runs gpg with `gnupghome`, feeding `input`; returns stdout.
fn gpg_with(gnupghome: &std::path::Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("gpg")
        .env("GNUPGHOME", gnupghome)
        .args([
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ])
        .args(["--trust-model", "always"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gpg is installed");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write to gpg");
    let out = child.wait_with_output().expect("gpg");
    assert!(out.status.success(), "gpg {args:?}: {}", describe(&out));
    out.stdout
}

/// A PGP/MIME message from Carol to Alice as an Autocrypt client writes
/// it: the plaintext is one MIME part with the protected Subject; the outer
/// Subject is `...`.
fn carol_encrypted(gnupghome: &std::path::Path, subject: &str, body: &str, sign: bool) -> Vec<u8> {
    carol_encrypted_to(gnupghome, "alice@example.org", subject, body, sign)
}

/// [`carol_encrypted`] to `recipient`'s key.
fn carol_encrypted_to(
    gnupghome: &std::path::Path,
    recipient: &str,
    subject: &str,
    body: &str,
    sign: bool,
) -> Vec<u8> {
    let inner = format!(
        "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\n\
         Subject: {subject}\r\n\r\n{body}\r\n"
    );
    let mut args = vec!["--armor", "--encrypt", "-r", recipient];
    if sign {
        args.extend(["--sign", "-u", "carol@example.net"]);
    }
    let armored = gpg_with(gnupghome, &args, inner.as_bytes());
    let mut out = format!(
        "From: Carol <carol@example.net>\r\n\
         To: alice@example.org\r\n\
         Subject: ...\r\n\
         Date: {date}\r\n\
         Message-ID: <enc-{subject}@example.net>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
         --b1\r\n\
         Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n",
        date = chrono::Utc::now().to_rfc2822(),
    )
    .into_bytes();
    out.extend_from_slice(&armored);
    out.extend_from_slice(b"\r\n--b1--\r\n");
    out
}

/// PGP/MIME mail to Alice's key is decrypted before it is filed. Its
/// signature is called good only against the key recorded for Carol from
/// an earlier Autocrypt header, and no gateway mail is marked as a
/// verified contact's.
#[test]
fn encrypted_provider_mail_is_decrypted_and_its_signature_checked() {
    let provider = Dovecot::start_with(Options { tls: true });
    let imaps = provider.tls_port.expect("TLS port");
    let gnupg = tempfile::tempdir().expect("tempdir");
    let carol_key = gpg_key(gnupg.path(), "carol@example.net");
    let mut alice = Node::create("alice");
    let card = alice.cli_ok(&["contacts", "export"]);
    gpg_with(gnupg.path(), &["--import"], card.as_bytes());
    add_gateway(&alice, free_port(), imaps, DOVECOT_PASS, true);
    start_fetching(&mut alice);

    // Before Carol's key is known, a signed message is decrypted but its
    // signature gets no credit.
    provider_append(
        &provider,
        "alice",
        &carol_encrypted(gnupg.path(), "early", "early-secret", true),
        None,
    );
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the early message",
        || alice.count("INBOX") >= 1,
    );
    provider_append(
        &provider,
        "alice",
        &carol_message("plain", "<p1@example.net>", &carol_key),
        None,
    );
    common::wait_until(
        std::time::Duration::from_secs(30),
        "Carol's Autocrypt header",
        || alice.count("INBOX") >= 2,
    );
    provider_append(
        &provider,
        "alice",
        &carol_encrypted(gnupg.path(), "late", "late-secret", true),
        None,
    );
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the signed message",
        || alice.count("INBOX") >= 3,
    );

    let early = inbox_with(&alice, "early-secret");
    assert_eq!(early.len(), 1, "the early message is not decrypted");
    assert!(
        early[0].starts_with("X-Mailnode-Gateway: received; decrypted; signature=none\r\n"),
        "{}",
        early[0]
    );
    let late = inbox_with(&alice, "late-secret");
    assert_eq!(late.len(), 1, "the late message is not decrypted");
    let late = &late[0];
    assert!(
        late.starts_with("X-Mailnode-Gateway: received; decrypted; signature=good (Autocrypt key "),
        "{late}"
    );
    assert!(
        late.contains("Subject: late\r\n"),
        "the protected Subject is lost: {late}"
    );
    assert!(!late.contains("Subject: ...\r\n"), "{late}");
    assert!(
        late.contains("From: Carol <carol@example.net>\r\n"),
        "{late}"
    );
    assert!(!late.contains("BEGIN PGP MESSAGE"), "{late}");
    // Encrypted, but not to Alice's key: filed as it came, and said so.
    provider_append(
        &provider,
        "alice",
        &carol_encrypted_to(
            gnupg.path(),
            "carol@example.net",
            "hers",
            "hers-secret",
            false,
        ),
        None,
    );
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the message encrypted to Carol only",
        || alice.count("INBOX") >= 4,
    );
    let hers = inbox_with(&alice, "encrypted.asc");
    let hers: Vec<&String> = hers.iter().filter(|m| m.contains("enc-hers@")).collect();
    assert_eq!(hers.len(), 1);
    assert!(
        hers[0].starts_with("X-Mailnode-Gateway: received; encrypted, not to this node's key\r\n"),
        "{}",
        hers[0]
    );
    for message in alice.fetch_all("INBOX") {
        let text = String::from_utf8_lossy(&message);
        assert!(!text.contains("X-Mailnode-Verified-Signer"), "{text}");
    }
    assert!(files_containing(alice.home(), b"late-secret").is_empty());
}

/// The number of messages in `user`'s `mailbox` at the provider.
fn provider_count(provider: &Dovecot, user: &str, mailbox: &str) -> usize {
    let port = provider.port.to_string();
    common::mailtool(&["count", "127.0.0.1", &port, user, DOVECOT_PASS, mailbox])
        .trim()
        .parse()
        .expect("a count")
}

/// With `--move-to Archive` a fetched message leaves the provider's INBOX
/// for Archive once it is filed here, and is not fetched again.
#[test]
fn move_to_moves_fetched_mail_out_of_the_providers_inbox() {
    let provider = Dovecot::start_with(Options { tls: true });
    let imaps = provider.tls_port.expect("TLS port");
    let port = provider.port.to_string();
    common::mailtool(&[
        "imap-cmds",
        "127.0.0.1",
        &port,
        "alice",
        DOVECOT_PASS,
        "CREATE Archive",
    ]);
    let mut alice = Node::create("alice");
    add_gateway_with(
        &alice,
        free_port(),
        imaps,
        DOVECOT_PASS,
        true,
        &["--move-to", "Archive"],
    );
    let list = alice.cli_ok(&["gateway", "list"]);
    assert!(list.contains("move-to: Archive"), "{list}");
    start_fetching(&mut alice);
    for n in 0..3 {
        let raw = common::simple_message(
            "dave@example.net",
            "alice@example.org",
            &format!("move {n}"),
            &format!("<move{n}@example.net>"),
            "moved-body\r\n",
        );
        provider_append(&provider, "alice", &raw, None);
    }
    common::wait_until(
        std::time::Duration::from_secs(30),
        "three messages fetched and moved",
        || provider_count(&provider, "alice", "Archive") == 3,
    );
    assert_eq!(provider_count(&provider, "alice", "INBOX"), 0);
    assert_eq!(alice.count("INBOX"), 3);
    alice.stop();
    alice.start();
    let raw = common::simple_message(
        "dave@example.net",
        "alice@example.org",
        "after restart",
        "<move-last@example.net>",
        "moved-body\r\n",
    );
    provider_append(&provider, "alice", &raw, None);
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the message after the restart",
        || provider_count(&provider, "alice", "Archive") == 4,
    );
    assert_eq!(alice.count("INBOX"), 4, "a moved message was fetched twice");
}

/// The provider: Dovecot for the mailboxes, the sink for submission
/// (logins as any Dovecot user with its password), delivering into
/// Dovecot.
fn provider() -> (Dovecot, SmtpSink) {
    let dovecot = Dovecot::start_with(Options { tls: true });
    let sink = SmtpSink::start(
        "alice",
        DOVECOT_PASS,
        Delivery {
            imap_port: dovecot.port,
            password: DOVECOT_PASS.to_string(),
        },
    );
    (dovecot, sink)
}

/// Every message in `user`'s `mailbox` at the provider.
fn provider_messages(provider: &Dovecot, user: &str, mailbox: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = provider.port.to_string();
    common::mailtool(&[
        "fetch-all",
        "127.0.0.1",
        &port,
        user,
        DOVECOT_PASS,
        mailbox,
        dir.path().to_str().expect("utf-8"),
    ]);
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).expect("read")).to_string())
        .collect()
}

/// Decrypts the PGP/MIME `message` with gpg; returns the plaintext and
/// gpg's status lines.
fn gpg_decrypt(gnupghome: &std::path::Path, message: &str) -> (String, String) {
    let out = std::process::Command::new("gpg")
        .env("GNUPGHOME", gnupghome)
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(["--status-fd", "2", "--decrypt"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(armored_part(message).as_bytes())?;
            child.wait_with_output()
        })
        .expect("gpg");
    assert!(
        out.status.success(),
        "gpg cannot decrypt: {}",
        describe(&out)
    );
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The armored OpenPGP message inside a PGP/MIME message.
fn armored_part(message: &str) -> String {
    let start = message
        .find("-----BEGIN PGP MESSAGE-----")
        .expect("an OpenPGP message");
    let end = message.find("-----END PGP MESSAGE-----").expect("its end") + 25;
    message[start..end].to_string()
}

/// Alice writes to Carol, who has no card: Carol's mailbox gets it with
/// Alice's Autocrypt header. Carol answers with her own header; the answer
/// reaches Alice once, and from then on Alice's mail to Carol is PGP/MIME,
/// signed, and Carol's gpg decrypts it.
#[test]
fn carol_gets_autocrypt_mail_and_after_her_reply_encrypted_mail() {
    let (dovecot, sink) = provider();
    let imaps = dovecot.tls_port.expect("TLS port");
    let gnupg = tempfile::tempdir().expect("tempdir");
    let carol_key = gpg_key(gnupg.path(), "carol@example.net");
    let mut alice = Node::create("alice");
    add_gateway(&alice, sink.port, imaps, DOVECOT_PASS, true);
    alice.start();

    let first = common::simple_message(
        "alice@example.org",
        "carol@example.net",
        "hello Carol",
        "<a1@example.org>",
        "first-words\r\n",
    );
    alice.send_with_lettre(&["carol@example.net"], &first);
    common::wait_until(
        std::time::Duration::from_secs(30),
        "Alice's message in Carol's mailbox",
        || provider_count(&dovecot, "carol", "INBOX") == 1,
    );
    let got = provider_messages(&dovecot, "carol", "INBOX");
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("first-words"), "{}", got[0]);
    assert!(
        got[0].contains("Autocrypt: addr=alice@example.org; prefer-encrypt=mutual; keydata="),
        "{}",
        got[0]
    );
    assert!(sink.logins() >= 1);
    let accepted = sink.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].from, "alice@example.org");
    assert_eq!(accepted[0].to, vec!["carol@example.net".to_string()]);
    // Alice's key from the header is one gpg takes.
    let keydata = {
        use mailparse::MailHeaderMap;
        let parsed = mailparse::parse_mail(got[0].as_bytes()).expect("parses");
        let value = parsed
            .headers
            .get_first_value("Autocrypt")
            .expect("Autocrypt");
        let data: String = value
            .split("keydata=")
            .nth(1)
            .expect("keydata")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64")
    };
    gpg_with(gnupg.path(), &["--import"], &keydata);
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the Outbox to empty",
        || alice.count("Outbox") == 0,
    );
    let sent = alice.fetch_all("Sent");
    assert_eq!(sent.len(), 1);
    assert!(String::from_utf8_lossy(&sent[0]).contains("X-Mailnode-Gateway: plaintext"));

    // Carol replies from her account; it lands in Alice's provider INBOX.
    provider_append(
        &dovecot,
        "alice",
        &carol_message("reply", "<c-reply@example.net>", &carol_key),
        None,
    );
    common::wait_until(
        std::time::Duration::from_secs(30),
        "Carol's reply in Alice's INBOX",
        || alice.count("INBOX") == 1,
    );

    let second = common::simple_message(
        "alice@example.org",
        "carol@example.net",
        "now encrypted",
        "<a2@example.org>",
        "second-words\r\n",
    );
    alice.send_with_lettre(&["carol@example.net"], &second);
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the encrypted message in Carol's mailbox",
        || provider_count(&dovecot, "carol", "INBOX") == 2,
    );
    let got = provider_messages(&dovecot, "carol", "INBOX");
    let encrypted = &got[1];
    assert!(
        !encrypted.contains("second-words"),
        "sent in the clear: {encrypted}"
    );
    assert!(encrypted.contains("multipart/encrypted"), "{encrypted}");
    assert!(
        encrypted.contains("Autocrypt: addr=alice@example.org"),
        "{encrypted}"
    );
    // The original Message-ID outside, so Carol's client threads it.
    assert!(
        encrypted.contains("Message-ID: <<a2@example.org>@example.org>"),
        "{encrypted}"
    );
    let (plain, status) = gpg_decrypt(gnupg.path(), encrypted);
    assert!(plain.contains("second-words"), "{plain}");
    assert!(plain.contains("Subject: now encrypted"), "{plain}");
    assert!(
        status.contains("[GNUPG:] GOODSIG"),
        "not signed by Alice: {status}"
    );
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the Outbox to empty",
        || alice.count("Outbox") == 0,
    );
    let sent = alice.fetch_all("Sent");
    assert_eq!(sent.len(), 2);
    assert!(String::from_utf8_lossy(&sent[1]).contains("X-Mailnode-Gateway: encrypted"));
    assert_eq!(
        alice.count("INBOX"),
        1,
        "the reply was filed more than once"
    );
}

/// The provider answers 451: the message waits and is retried, then
/// arrives once. It answers 550: a bounce with its text lands in INBOX.
#[test]
fn provider_refusals_retry_or_bounce() {
    let (dovecot, sink) = provider();
    let imaps = dovecot.tls_port.expect("TLS port");
    let mut alice = Node::create("alice");
    std::fs::write(
        alice.home().join("config.toml"),
        "[delivery]\nmax_retry_interval_secs = 1\n",
    )
    .expect("write config");
    add_gateway(&alice, sink.port, imaps, DOVECOT_PASS, true);
    alice.start();

    sink.set_mode(Mode::TempFail("451 4.3.0 try again later".into()));
    let raw = common::simple_message(
        "alice@example.org",
        "carol@example.net",
        "retried",
        "<r1@example.org>",
        "retried-words\r\n",
    );
    alice.send_with_lettre(&["carol@example.net"], &raw);
    common::wait_until(
        std::time::Duration::from_secs(30),
        "two refused attempts",
        || sink.refusals() >= 2,
    );
    assert_eq!(alice.count("Outbox"), 1, "the message is not waiting");
    assert_eq!(provider_count(&dovecot, "carol", "INBOX"), 0);
    sink.set_mode(Mode::Accept);
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the retried message",
        || provider_count(&dovecot, "carol", "INBOX") == 1,
    );
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the Outbox to empty",
        || alice.count("Outbox") == 0,
    );

    sink.set_mode(Mode::PermFail(
        "550 5.1.1 <dave@example.net>: mailbox unavailable".into(),
    ));
    let raw = common::simple_message(
        "alice@example.org",
        "dave@example.net",
        "refused",
        "<r2@example.org>",
        "refused-words\r\n",
    );
    alice.send_with_lettre(&["dave@example.net"], &raw);
    common::wait_until(std::time::Duration::from_secs(30), "the bounce", || {
        alice.count("INBOX") == 1
    });
    let bounce = String::from_utf8_lossy(&alice.fetch_all("INBOX")[0]).to_string();
    assert!(bounce.contains("mailbox unavailable"), "{bounce}");
    assert!(bounce.contains("dave@example.net"), "{bounce}");
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the Outbox to empty",
        || alice.count("Outbox") == 0,
    );
    assert_eq!(provider_count(&dovecot, "dave", "INBOX"), 0);
    assert_eq!(sink.accepted().len(), 1, "{:?}", sink.accepted());
}

/// One submission to Bob (a mailnode contact) and Carol (no card): Bob
/// gets it over libp2p, Carol through the provider, Alice has one Sent copy.
#[test]
fn mixed_recipients_go_their_own_ways_with_one_sent_copy() {
    let (dovecot, sink) = provider();
    let imaps = dovecot.tls_port.expect("TLS port");
    let mut alice = Node::create("alice");
    let mut bob = Node::create("bob");
    alice.add_contact(&bob);
    bob.add_contact(&alice);
    add_gateway(&alice, sink.port, imaps, DOVECOT_PASS, true);
    alice.start();
    bob.start();
    let raw = "From: alice@example.org\r\n\
         To: bob@example.org, carol@example.net\r\n\
         Subject: to both\r\n\
         Message-ID: <mixed@example.org>\r\n\
         \r\n\
         mixed-words\r\n";
    alice.send_with_lettre(&["bob@example.org", "carol@example.net"], raw.as_bytes());
    common::wait_until(std::time::Duration::from_secs(30), "Bob's copy", || {
        bob.count("INBOX") == 1
    });
    common::wait_until(std::time::Duration::from_secs(30), "Carol's copy", || {
        provider_count(&dovecot, "carol", "INBOX") == 1
    });
    let bobs = String::from_utf8_lossy(&bob.fetch_all("INBOX")[0]).to_string();
    assert!(bobs.contains("mixed-words"), "{bobs}");
    assert!(
        bobs.contains("X-Mailnode-Verified-Signer"),
        "not over libp2p: {bobs}"
    );
    assert!(!bobs.contains("Autocrypt:"), "{bobs}");
    let carols = &provider_messages(&dovecot, "carol", "INBOX")[0];
    assert!(carols.contains("mixed-words"), "{carols}");
    assert_eq!(sink.accepted().len(), 1);
    assert_eq!(sink.accepted()[0].to, vec!["carol@example.net".to_string()]);
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the Outbox to empty",
        || alice.count("Outbox") == 0,
    );
    assert_eq!(alice.count("Sent"), 1);
}

/// A key imported with `gateway import-key` is used at once: the next
/// message to that address is PGP/MIME and its owner's gpg decrypts it.
/// A file that is not a key is refused.
#[test]
fn an_imported_key_encrypts_gateway_mail() {
    let (dovecot, sink) = provider();
    let imaps = dovecot.tls_port.expect("TLS port");
    let gnupg = tempfile::tempdir().expect("tempdir");
    let key = gpg_key(gnupg.path(), "carol@example.net");
    let mut alice = Node::create("alice");
    let card = alice.cli_ok(&["contacts", "export"]);
    gpg_with(gnupg.path(), &["--import"], card.as_bytes());
    add_gateway(&alice, sink.port, imaps, DOVECOT_PASS, true);
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write_file(dir.path(), "bad.asc", b"not a key");
    let out = alice.cli(&[
        "gateway",
        "import-key",
        "carol@example.net",
        bad.to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success(), "a non-key was imported");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not an OpenPGP key"),
        "{}",
        describe(&out)
    );
    let file = write_file(dir.path(), "carol.pgp", &key);
    let out = alice.cli_ok(&[
        "gateway",
        "import-key",
        "Carol@Example.net",
        file.to_str().expect("utf-8"),
    ]);
    assert!(out.contains("now encrypted to"), "{out}");
    let keys = alice.cli_ok(&["gateway", "keys"]);
    assert!(keys.contains("<carol@example.net>: key "), "{keys}");
    alice.start();
    let raw = common::simple_message(
        "alice@example.org",
        "carol@example.net",
        "imported",
        "<imp@example.org>",
        "imported-words\r\n",
    );
    alice.send_with_lettre(&["carol@example.net"], &raw);
    common::wait_until(std::time::Duration::from_secs(30), "Carol's copy", || {
        provider_count(&dovecot, "carol", "INBOX") == 1
    });
    let got = &provider_messages(&dovecot, "carol", "INBOX")[0];
    assert!(!got.contains("imported-words"), "sent in the clear: {got}");
    let (plain, status) = gpg_decrypt(gnupg.path(), got);
    assert!(plain.contains("imported-words"), "{plain}");
    assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");

    // A keys-only backup carries the gateway and its keys, not the fetch
    // position (the mail it belongs to is not in it).
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the fetch position",
        || alice.home().join("gateway-cursor.json").exists(),
    );
    alice.stop();
    let backup = dir.path().join("alice.backup");
    let env = [("MAILNODE_BACKUP_PASSPHRASE", "a long backup passphrase")];
    let out = alice.cli_env(
        &["backup", backup.to_str().expect("utf-8"), "--keys-only"],
        &env,
    );
    assert!(out.status.success(), "backup: {}", describe(&out));
    let restored = Node::without_home("alice2", &alice.email);
    let out = restored.cli_env(&["restore", backup.to_str().expect("utf-8")], &env);
    assert!(out.status.success(), "restore: {}", describe(&out));
    let list = restored.cli_ok(&["gateway", "list"]);
    assert!(list.contains("user: alice"), "{list}");
    let keys = restored.cli_ok(&["gateway", "keys"]);
    assert!(keys.contains("<carol@example.net>: key "), "{keys}");
    assert!(!restored.home().join("gateway-cursor.json").exists());
}

/// `mailnode import imap` copies an old account's folders with their
/// flags and dates, shows its progress, leaves the old account unchanged,
/// and run again (as after an interruption, even with its saved position
/// lost) files nothing twice.
#[test]
fn import_copies_an_old_account_once() {
    let provider = Dovecot::start_with(Options { tls: true });
    let imaps = provider.tls_port.expect("TLS port");
    let port = provider.port.to_string();
    common::mailtool(&[
        "imap-cmds",
        "127.0.0.1",
        &port,
        "old",
        DOVECOT_PASS,
        "CREATE Archive/2019",
    ]);
    for n in 0..30 {
        let raw = common::simple_message(
            "dave@example.net",
            "alice@example.org",
            &format!("inbox {n}"),
            &format!("<in{n}@example.net>"),
            &format!("inbox-body-{n}\r\n"),
        );
        let seen = if n % 2 == 0 {
            Some("01-Feb-2019 10:00:00 +0000")
        } else {
            None
        };
        let flags = match seen {
            Some(date) => format!("(\\Seen) \"{date}\""),
            None => String::new(),
        };
        provider_append_to(&provider, "old", "INBOX", &flags, &raw);
    }
    for n in 0..5 {
        let raw = common::simple_message(
            "erin@example.net",
            "alice@example.org",
            &format!("archived {n}"),
            &format!("<ar{n}@example.net>"),
            &format!("archive-body-{n}\r\n"),
        );
        provider_append_to(&provider, "old", "Archive/2019", "(\\Flagged)", &raw);
    }

    let mut alice = Node::create("alice");
    let dir = tempfile::tempdir().expect("tempdir");
    let password = write_file(
        dir.path(),
        "password",
        format!("{DOVECOT_PASS}\n").as_bytes(),
    );
    let imap = format!("localhost:{imaps}");
    let args = [
        "import",
        "imap",
        "--imap",
        &imap,
        "--user",
        "old",
        "--password-file",
        password.to_str().expect("utf-8"),
        "--insecure-local",
    ];
    // Bad input first: each refused with its reason, nothing imported.
    let wrong_folder = [&args[..], &["--folder", "Nope"]].concat();
    let out = alice.cli(&wrong_folder);
    assert!(!out.status.success(), "an unknown folder was accepted");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no folder \"Nope\""),
        "{}",
        describe(&out)
    );
    let remote = [
        "import",
        "imap",
        "--imap",
        "imap.example.org:993",
        "--user",
        "old",
        "--password-file",
        args[7],
        "--insecure-local",
    ];
    let out = alice.cli(&remote);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a loopback address"),
        "{}",
        describe(&out)
    );
    let bad_password = write_file(dir.path(), "bad", b"wrong\n");
    let mut wrong_login = args.to_vec();
    wrong_login[7] = bad_password.to_str().expect("utf-8");
    let out = alice.cli(&wrong_login);
    assert!(!out.status.success(), "a wrong password was accepted");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused the login"),
        "{}",
        describe(&out)
    );
    assert!(!alice.home().join("import-state.json").exists());

    let out = alice.cli(&args);
    assert!(out.status.success(), "import: {}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("35/35 messages"), "{stderr}");
    assert!(stderr.contains("messages/s"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("imported 35 messages"), "{stdout}");
    assert!(
        files_containing(alice.home(), b"inbox-body-7").is_empty(),
        "imported mail lies in the home in the clear"
    );

    // Again: nothing new. Without the saved positions: all recognised.
    let out = alice.cli(&args);
    assert!(out.status.success(), "import again: {}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 0 messages"));
    std::fs::remove_file(alice.home().join("import-state.json")).expect("remove state");
    let out = alice.cli(&args);
    assert!(
        out.status.success(),
        "import without state: {}",
        describe(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("imported 0 messages"), "{stdout}");
    assert!(stdout.contains("35 were already here"), "{stdout}");

    alice.start();
    assert_eq!(alice.count("INBOX"), 30);
    assert_eq!(alice.count("Archive/2019"), 5);
    let inbox = alice.mailbox("INBOX");
    let seen = inbox
        .messages
        .iter()
        .filter(|m| m.flags.iter().any(|f| f == "\\Seen"))
        .count();
    assert_eq!(seen, 15, "flags were not kept");
    let archive = alice.mailbox("Archive/2019");
    assert!(
        archive
            .messages
            .iter()
            .all(|m| m.flags.contains("\\Flagged"))
    );
    // A running node refuses an import (it would write the store).
    let out = alice.cli(&args);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the node is running"),
        "{}",
        describe(&out)
    );
    // The old account is unchanged: nothing marked read there.
    let out = common::mailtool(&[
        "imap-cmds",
        "127.0.0.1",
        &port,
        "old",
        DOVECOT_PASS,
        "SELECT INBOX\nSEARCH UNSEEN",
    ]);
    let unseen = out
        .lines()
        .find_map(|l| l.strip_prefix("* SEARCH"))
        .expect("a SEARCH answer")
        .split_whitespace()
        .count();
    assert_eq!(unseen, 15, "{out}");
}

/// A message above the node's message limit stays at the provider; one
/// notice says so, also after a restart, and the mail after it is fetched.
#[test]
fn a_message_too_big_to_fetch_stays_at_the_provider_with_one_notice() {
    let provider = Dovecot::start_with(Options { tls: true });
    let imaps = provider.tls_port.expect("TLS port");
    let mut alice = Node::create("alice");
    std::fs::write(
        alice.home().join("config.toml"),
        "[network]\nmax_message_size = 4096\n",
    )
    .expect("write config");
    add_gateway(&alice, free_port(), imaps, DOVECOT_PASS, true);
    start_fetching(&mut alice);
    let big = common::simple_message(
        "dave@example.net",
        "alice@example.org",
        "big",
        "<big@example.net>",
        &"x".repeat(10_000),
    );
    provider_append(&provider, "alice", &big, None);
    let small = common::simple_message(
        "dave@example.net",
        "alice@example.org",
        "small",
        "<small@example.net>",
        "small-body\r\n",
    );
    provider_append(&provider, "alice", &small, None);
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the notice and the small message",
        || alice.count("INBOX") == 2,
    );
    let notice = inbox_with(&alice, "X-Mailnode-Notice: gateway-too-big");
    assert_eq!(notice.len(), 1);
    assert!(notice[0].contains("is too big to fetch"), "{}", notice[0]);
    assert_eq!(inbox_with(&alice, "small-body").len(), 1);
    assert!(inbox_with(&alice, "xxxxxxxxxx").is_empty());
    assert_eq!(
        provider_count(&provider, "alice", "INBOX"),
        2,
        "the big message left the provider"
    );
    alice.stop();
    std::fs::remove_file(alice.home().join("gateway-cursor.json")).expect("remove cursor");
    start_fetching(&mut alice);
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the pass after the lost position to reach the last message",
        || {
            std::fs::read_to_string(alice.home().join("gateway-cursor.json"))
                .is_ok_and(|text| text.contains("\"last_uid\":2"))
        },
    );
    assert_eq!(alice.count("INBOX"), 2, "the notice was filed twice");
}
