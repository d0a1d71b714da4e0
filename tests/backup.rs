//! Issue 8, backup and restore: a node holding 1,000 messages is backed up
//! while a peer delivers more; restored into a fresh home and started on
//! other ports it shows every message of the backup with the same UIDs,
//! sizes and UIDVALIDITY (imaplib `STATUS` and `UID FETCH 1:* (UID
//! RFC822.SIZE)`), receives new mail and sends as before. Wrong
//! passphrases, truncated and altered files fail with their own error and
//! leave no home behind; an existing home is not overwritten.

mod common;

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Node, describe, files_containing, simple_message, wait_until};
use serde_json::Value;

const BACKUP_PASSPHRASE: &str = "a long backup passphrase";

fn uid_sizes(node: &Node, mailbox: &str) -> Value {
    let out = node.imap_tool("uid-sizes", &[mailbox]);
    serde_json::from_str(&out).expect("uid-sizes prints JSON")
}

fn pairs(state: &Value) -> Vec<(u64, u64)> {
    state["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| (m[0].as_u64().expect("uid"), m[1].as_u64().expect("size")))
        .collect()
}

fn backup(node: &Node, file: &Path, extra: &[&str]) -> String {
    let path = file.to_str().expect("utf-8 path");
    let out = node.cli_env(
        &[&["backup", path][..], extra].concat(),
        &[("MAILNODE_BACKUP_PASSPHRASE", BACKUP_PASSPHRASE)],
    );
    assert!(out.status.success(), "backup failed: {}", describe(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn restore(node: &Node, file: &Path, secret: &str, extra: &[&str]) -> std::process::Output {
    let path = file.to_str().expect("utf-8 path");
    node.cli_env(
        &[&["restore", path][..], extra].concat(),
        &[("MAILNODE_BACKUP_PASSPHRASE", secret)],
    )
}

#[test]
fn a_running_node_is_backed_up_and_restored_with_its_uids() {
    let (mut alice, bob) = Node::running_pair();
    let seeded: Vec<Vec<u8>> = (0..1000)
        .map(|i| {
            simple_message(
                "Carol <carol@example.org>",
                &alice.email,
                &format!("seed {i}"),
                &format!("seed-{i}"),
                &format!("seed body {i} SEED-SECRET-{i}"),
            )
        })
        .collect();
    let uids = alice.append_all("INBOX", "", &seeded);
    assert_eq!(uids.len(), 1000);
    alice.imap_cmds("SELECT INBOX\nUID STORE 1:10 +FLAGS (\\Seen $Important)");

    // Bob keeps delivering from before Alice's backup starts until after
    // it is done, and a few more after that.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("alice.backup");
    let done = AtomicBool::new(false);
    let (output, live) = std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            let mut sent = 0;
            let mut after = 0;
            while after < 5 {
                if done.load(Ordering::Acquire) {
                    after += 1;
                }
                bob.send_with_lettre(
                    &[&alice.email],
                    &simple_message(
                        &bob.email,
                        &alice.email,
                        &format!("live {sent}"),
                        &format!("live-{sent}"),
                        &format!("live body {sent}"),
                    ),
                );
                sent += 1;
            }
            sent
        });
        wait_until(Duration::from_secs(60), "Bob's first live messages", || {
            alice.count("INBOX") >= 1005
        });
        let output = backup(&alice, &file, &[]);
        done.store(true, Ordering::Release);
        (output, sender.join().expect("sender"))
    });
    assert!(output.contains("backup written"), "{output}");
    wait_until(
        Duration::from_secs(120),
        "Bob's live mail in Alice's INBOX",
        || alice.count("INBOX") == 1000 + live,
    );
    let original = uid_sizes(&alice, "INBOX");
    let original_sent = uid_sizes(&alice, "Sent");

    // Nothing of the messages or secrets is readable in the backup, and no
    // snapshot is left in the home.
    assert!(files_containing(dir.path(), b"SEED-SECRET-").is_empty());
    assert!(files_containing(dir.path(), alice.cached_password().as_bytes()).is_empty());
    let leftovers: Vec<_> = fs::read_dir(alice.home())
        .expect("home")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".backup-"))
        .collect();
    assert!(leftovers.is_empty(), "snapshot left behind: {leftovers:?}");

    alice.stop();
    let mut restored = Node::without_home("alice2", &alice.email);
    let out = restore(&restored, &file, BACKUP_PASSPHRASE, &[]);
    assert!(out.status.success(), "restore failed: {}", describe(&out));
    restored.start();

    let after = uid_sizes(&restored, "INBOX");
    assert_eq!(
        after["uidvalidity"], original["uidvalidity"],
        "UIDVALIDITY changed"
    );
    let got = pairs(&after);
    let want = pairs(&original);
    assert!(
        got.len() >= 1005 && got.len() < want.len(),
        "the backup should hold the seed and some of Bob's live mail, not all of it: {} of {}",
        got.len(),
        want.len()
    );
    // A consistent snapshot: exactly the original's messages below the
    // restored UIDNEXT, nothing else, same UIDs and sizes.
    let uidnext = after["uidnext"].as_u64().expect("uidnext");
    let expected: Vec<(u64, u64)> = want.iter().copied().filter(|(u, _)| *u < uidnext).collect();
    assert_eq!(got, expected, "restored INBOX differs from the original");
    eprintln!(
        "the backup holds {} of the {} messages Alice had once Bob's live mail was in",
        got.len(),
        want.len()
    );
    assert_eq!(&got[..1000], &want[..1000]);
    assert_eq!(
        uid_sizes(&restored, "INBOX")["uidvalidity"],
        original["uidvalidity"]
    );
    assert_eq!(
        uid_sizes(&restored, "Sent")["uidvalidity"],
        original_sent["uidvalidity"]
    );
    let state = restored.mailbox("INBOX");
    let flagged = state.message("<seed-3@example.org>").expect("seed 3");
    assert!(flagged.flags.contains("$Important"), "{flagged:?}");

    // Bob reaches the restored node at its new address; it sends as before.
    let card = restored.cli_ok(&["contacts", "export"]);
    let card_path = bob.home().join("alice-restored.asc");
    fs::write(&card_path, card).expect("card");
    bob.cli_ok(&[
        "contacts",
        "import",
        card_path.to_str().expect("utf-8"),
        "--addr",
        &restored.p2p_addr(),
    ]);
    let before = restored.count("INBOX");
    bob.send_with_lettre(
        &[&restored.email],
        &simple_message(&bob.email, &alice.email, "after", "after-restore", "hello"),
    );
    wait_until(
        Duration::from_secs(60),
        "mail for the restored node",
        || restored.count("INBOX") == before + 1,
    );
    let bob_before = bob.count("INBOX");
    restored.send_with_lettre(
        &[&bob.email],
        &simple_message(&alice.email, &bob.email, "reply", "reply-restored", "hi"),
    );
    wait_until(
        Duration::from_secs(60),
        "mail from the restored node",
        || bob.count("INBOX") == bob_before + 1,
    );
}

#[test]
fn bad_backups_fail_clearly_and_leave_no_home() {
    let mut alice = Node::create("alice");
    alice.start();
    alice.append(
        "INBOX",
        "",
        &simple_message("c@example.org", &alice.email, "one", "one", "body"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("alice.backup");
    backup(&alice, &file, &[]);
    let bytes = fs::read(&file).expect("backup");

    let target = Node::without_home("target", &alice.email);
    let expect_failure = |file: &Path, secret: &str, needle: &str| {
        let out = restore(&target, file, secret, &[]);
        assert!(
            !out.status.success(),
            "restore succeeded: {}",
            describe(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(needle),
            "expected {needle:?}: {}",
            describe(&out)
        );
        assert!(!stderr.contains("panicked"), "{}", describe(&out));
        assert!(!target.home().exists(), "a home was left behind");
        let parent = target.home().parent().expect("parent");
        let prefix = format!(
            ".{}.restore-",
            target.home().file_name().expect("name").to_string_lossy()
        );
        let staging: Vec<_> = fs::read_dir(parent)
            .expect("parent")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .collect();
        assert!(staging.is_empty(), "staging directory left: {staging:?}");
    };

    expect_failure(&file, "not the passphrase", "wrong passphrase");

    let truncated = dir.path().join("truncated.backup");
    fs::write(&truncated, &bytes[..bytes.len() - 1000]).expect("write");
    expect_failure(&truncated, BACKUP_PASSPHRASE, "truncated");

    let tampered = dir.path().join("tampered.backup");
    let mut altered = bytes.clone();
    let at = altered.len() / 2;
    altered[at] ^= 0x40;
    fs::write(&tampered, &altered).expect("write");
    expect_failure(&tampered, BACKUP_PASSPHRASE, "damaged or was altered");

    let other = dir.path().join("other.txt");
    fs::write(&other, b"hello").expect("write");
    expect_failure(&other, BACKUP_PASSPHRASE, "not a mailnode backup");

    // An existing home is refused, and named.
    let mut bob = Node::create("bob");
    let out = restore(&bob, &file, BACKUP_PASSPHRASE, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already exists") && stderr.contains("bob@example.org"),
        "{}",
        describe(&out)
    );
    assert!(stderr.contains("--force"), "{stderr}");
    let status = bob.cli_ok(&["status"]);
    assert!(
        status.contains("bob@example.org"),
        "bob's home changed: {status}"
    );

    // Not while a daemon runs in it, even with --force.
    bob.start();
    let out = restore(&bob, &file, BACKUP_PASSPHRASE, &["--force"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already running"),
        "{}",
        describe(&out)
    );
    bob.stop();

    // With --force it is moved aside, not lost.
    let out = restore(&bob, &file, BACKUP_PASSPHRASE, &["--force"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let aside = common::value_of(&stdout, "previous-home").expect("moved-aside path");
    assert!(Path::new(&aside).join("identity.json").exists());
    assert!(bob.cli_ok(&["status"]).contains("alice@example.org"));
    let _ = fs::remove_dir_all(&aside);
}

#[test]
fn a_recovery_code_backup_restores_keys_only() {
    let alice = Node::create("alice");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("keys.backup");
    let out = backup(&alice, &file, &["--keys-only", "--recovery-code"]);
    let code = common::value_of(&out, "recovery-code").expect("the code is printed");
    assert_eq!(code.len(), 34, "{code}");

    let target = Node::without_home("target", &alice.email);
    let out = restore(&target, &file, BACKUP_PASSPHRASE, &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong recovery code"),
        "{}",
        describe(&out)
    );
    assert!(!target.home().exists());
    // Typed in lower case with spaces, it still opens.
    let typed = code.to_lowercase().replace('-', " ");
    let out = restore(&target, &file, &typed, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!target.home().join("mail.db").exists());
    assert_eq!(target.password(), alice.password());
    assert_eq!(target.peer_id(), alice.peer_id());

    // A full backup of a node that never ran (no store yet) restores too.
    let full = dir.path().join("full.backup");
    backup(&alice, &full, &[]);
    let mut fresh = Node::without_home("fresh", &alice.email);
    let out = restore(&fresh, &full, BACKUP_PASSPHRASE, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no message store yet"));
    fresh.start();
    assert_eq!(fresh.count("INBOX"), 0);
}
