//! Issue 7, "what it must show" 2: three IMAP sessions (Python's imaplib)
//! on one INBOX while a peer delivers and the clients expunge, by sequence
//! number, by UID and by MOVE. Every session's sequence numbers agree with
//! the server throughout (RFC 3501 §7.4.1: no EXPUNGE during FETCH, STORE
//! or SEARCH by number, and every EXPUNGE number right when sent) and with
//! a fresh SELECT at the end. The sessions share the store's mailbox index
//! and keep only what they have not been told yet (`tests/py/sessions.py`
//! does the checking).

mod common;

use std::process::Command;

use common::{Node, describe, python_bin, simple_message, str_refs, tests_dir};

/// Deliveries from the peer while the sessions work.
const DELIVERIES: usize = 20;

#[test]
fn issue7_three_sessions_agree_while_a_peer_delivers_and_clients_expunge() {
    let (mut alice, mut bob) = Node::running_pair();
    let messages: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            simple_message(
                "Carol <carol@example.org>",
                &bob.email,
                &format!("old {i}"),
                &format!("old-{i}"),
                &format!("an older message {i}"),
            )
        })
        .collect();
    bob.append_all("INBOX", "", &messages);

    let to = bob.email.clone();
    let from = alice.email.clone();
    let sender = std::thread::scope(|scope| {
        let alice = &alice;
        let delivering = scope.spawn(move || {
            for i in 0..DELIVERIES {
                let raw = simple_message(
                    &from,
                    &to,
                    &format!("peer delivery {i}"),
                    &format!("peer-{i}"),
                    "delivered while three sessions look",
                );
                alice.send_with_lettre(&[&to], &raw);
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let imap = bob.imap_args_cached();
        let out = Command::new(python_bin())
            .arg(tests_dir().join("py/sessions.py"))
            .arg("expunge-sessions")
            .args(str_refs(&imap))
            .arg(DELIVERIES.to_string())
            .output()
            .expect("cannot run python3");
        let joined = delivering.join();
        (out, joined)
    });
    let (out, joined) = sender;
    assert!(joined.is_ok(), "the peer's submissions failed");
    assert!(
        out.status.success(),
        "the sessions disagreed: {}",
        describe(&out)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    eprintln!("{summary}");
    assert!(summary.contains("rounds="), "{summary}");
    alice.stop();
    bob.stop();
}
