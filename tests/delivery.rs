//! Issue 2, "what it must show" 2 and 5: a message travels from Alice's mail
//! client to Bob's, end to end, and nothing of it is ever on disk in the
//! clear.

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use common::{Node, describe, mailtool, split_verified, str_refs, wait_until, write_file};
use rand::RngCore;

#[test]
fn alice_writes_to_bob_end_to_end() {
    let (mut alice, mut bob) = Node::running_pair();

    let marker = format!("MARKER{:016x}", rand::random::<u64>());
    let mut attachment = vec![0u8; 64 * 1024];
    rand::thread_rng().fill_bytes(&mut attachment);

    // 1. lettre: a multipart message with a binary attachment.
    let first = common::message_with_attachment(
        &alice.email,
        &bob.email,
        &format!("Hello Bob {marker}"),
        &format!("The body says {marker}.\r\nSecond line."),
        &attachment,
    );
    alice.send_with_lettre(&[&bob.email], &first);

    // 2. Python smtplib: a plain message with UTF-8 and a Bcc header.
    let second = format!(
        "From: Alice <{a}>\r\nTo: Bob <{b}>\r\nBcc: {b}\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= {marker}\r\n\
         Date: Tue, 24 Nov 2026 19:00:00 +0000\r\nMessage-ID: <second-{marker}@example.org>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Grüße, {marker}!\r\n.leading dot line\r\n",
        a = alice.email,
        b = bob.email
    )
    .into_bytes();
    let dir = tempfile::tempdir().unwrap();
    let second_path = write_file(dir.path(), "second.eml", &second);
    let smtp_args = vec![
        "127.0.0.1".to_string(),
        alice.running().smtp.to_string(),
        alice.email.clone(),
        alice.password(),
    ];
    mailtool(
        &[
            &["smtp-send"][..],
            &str_refs(&smtp_args),
            &[&alice.email, &bob.email, second_path.to_str().unwrap()],
        ]
        .concat(),
    );

    wait_until(
        Duration::from_secs(60),
        "two messages in Bob's INBOX",
        || bob.count("INBOX") >= 2,
    );
    let inbox = bob.fetch_all("INBOX");
    assert_eq!(inbox.len(), 2, "Bob's INBOX has exactly the two messages");

    // Each arrived byte-identical after the verified-signer field, except
    // that the second lost its Bcc field. (Arrival order is not submission
    // order: deliveries run concurrently.)
    let alice_fpr = common::value_of(&alice.cli_ok(&["status"]), "fingerprint").unwrap();
    let expected_second: Vec<u8> = {
        let text = String::from_utf8(second.clone()).unwrap();
        text.replace(&format!("Bcc: {}\r\n", bob.email), "")
            .into_bytes()
    };
    let mut got_first = false;
    let mut got_second = false;
    let (alice_peer, bob_peer) = (alice.peer_id(), bob.peer_id());
    for message in &inbox {
        // The trace field names both nodes (RFC 5321 §4.4), no address.
        let (trace, _) = common::split_received(message);
        let trace = trace.expect("a Received: field first");
        assert!(
            trace.starts_with(&format!(
                "Received: from {alice_peer} by {bob_peer} with mailnode id "
            )),
            "{trace}"
        );
        assert!(!trace.contains("127.0.0.1"), "{trace}");
        let (signer, rest) = split_verified(message);
        assert!(
            signer.starts_with(&alice_fpr) && signer.contains(&alice.email),
            "verified signer {signer} is Alice {alice_fpr}"
        );
        if rest == first {
            got_first = true;
            // The attachment decodes to the same bytes (a real MIME parser).
            let parsed = mailparse::parse_mail(&rest).unwrap();
            assert_eq!(parsed.subparts[1].get_body_raw().unwrap(), attachment);
        } else if rest == expected_second {
            got_second = true;
        } else {
            let at = rest
                .iter()
                .zip(&first)
                .position(|(a, b)| a != b)
                .unwrap_or(rest.len().min(first.len()));
            let around = |m: &[u8]| {
                String::from_utf8_lossy(&m[at.saturating_sub(60)..(at + 60).min(m.len())])
                    .into_owned()
            };
            panic!(
                "unexpected message in Bob's INBOX (differs from the first at byte {at}):\n\
                 got:  {:?}\nsent: {:?}",
                around(&rest),
                around(&first)
            );
        }
    }
    assert!(got_first, "lettre's message arrived byte-identical");
    assert!(
        got_second,
        "smtplib's message arrived byte-identical without Bcc"
    );

    // Alice's Sent holds both copies, the second still with its Bcc.
    let sent = alice.fetch_all("Sent");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], first);
    assert_eq!(sent[1], second);

    // mbsync syncs Bob's INBOX to a Maildir with the same bytes.
    let maildir = tempfile::tempdir().unwrap();
    let bob_pass = bob.password();
    let config = format!(
        "IMAPAccount bob\nHost 127.0.0.1\nPort {port}\nUser {user}\nPass {pass}\nSSLType None\nAuthMechs LOGIN\n\n\
         IMAPStore bob-remote\nAccount bob\n\n\
         MaildirStore bob-local\nPath {dir}/\nInbox {dir}/INBOX\n\n\
         Channel bob\nFar :bob-remote:\nNear :bob-local:\nPatterns INBOX\nCreate Near\nSyncState *\n",
        port = bob.running().imap,
        user = bob.email,
        pass = bob_pass,
        dir = maildir.path().display()
    );
    let config_path = write_file(dir.path(), "mbsyncrc", config.as_bytes());
    let out = Command::new("mbsync")
        .arg("-c")
        .arg(&config_path)
        .arg("-a")
        .output()
        .expect("mbsync is installed (apt-get install isync)");
    assert!(out.status.success(), "mbsync failed: {}", describe(&out));
    let mut synced: Vec<Vec<u8>> = fs::read_dir(maildir.path().join("INBOX/new"))
        .unwrap()
        .chain(fs::read_dir(maildir.path().join("INBOX/cur")).unwrap())
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .collect();
    synced.sort_by_key(|m| m.len());
    let mut expected_synced = inbox.clone();
    expected_synced.sort_by_key(|m| m.len());
    assert_eq!(synced.len(), 2, "mbsync fetched both messages");
    for (got, want) in synced.iter().zip(&expected_synced) {
        // mbsync may add an X-TUID header, and stores lines with LF endings
        // (the Unix Maildir convention); everything else must match.
        let got = strip_tuid(got);
        let want = String::from_utf8_lossy(want)
            .replace("\r\n", "\n")
            .into_bytes();
        assert_eq!(got, want, "Maildir copy equals the IMAP copy");
    }

    // Nothing in the clear: the marker is in no file of either home, while
    // running and after a clean stop (which checkpoints the WAL).
    for node in [&alice, &bob] {
        let found = common::files_containing(node.home(), marker.as_bytes());
        assert!(found.is_empty(), "marker found in the clear: {found:?}");
    }
    alice.stop();
    bob.stop();
    for node in [&alice, &bob] {
        let found = common::files_containing(node.home(), marker.as_bytes());
        assert!(found.is_empty(), "marker found in the clear: {found:?}");
        // Nor the bridge password.
        let password = node.password();
        let found = common::files_containing(node.home(), password.as_bytes());
        assert!(found.is_empty(), "bridge password in the clear: {found:?}");
    }
}

fn strip_tuid(message: &[u8]) -> Vec<u8> {
    let text = message.to_vec();
    if let Some(pos) = text.windows(7).position(|w| w == b"X-TUID:")
        && let Some(end) = text[pos..].iter().position(|&b| b == b'\n')
    {
        let mut out = text[..pos].to_vec();
        out.extend_from_slice(&text[pos + end + 1..]);
        return out;
    }
    text
}
