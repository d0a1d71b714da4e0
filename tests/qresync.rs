//! Issue 3, "what it must show" 4: a client that reconnects after N flag
//! changes receives exactly those N changes and the vanished UIDs, not the
//! whole mailbox (CONDSTORE and QRESYNC, RFC 7162) — also after the node
//! restarted in between.
//!
//! The client is a raw-socket Python session (`mailtool.py qresync-record`
//! and `qresync-check`), because imaplib hides the untagged responses a
//! resynchronising client depends on.

mod common;

use common::{Node, simple_message};

/// Message count of the test mailbox.
const MESSAGES: usize = 20;

#[test]
fn reconnect_gets_only_the_changes_and_vanished_uids() {
    let mut alice = Node::create("alice");
    alice.start();
    alice.imap_cmds("CREATE \"Resync\"");
    let messages: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|i| {
            simple_message(
                "Carol <carol@example.org>",
                &alice.email,
                &format!("resync {i}"),
                &format!("resync-{i}"),
                &format!("message {i}"),
            )
        })
        .collect();
    let uids = alice.append_all("Resync", "", &messages);
    assert_eq!(uids.len(), MESSAGES);
    assert!(
        uids.windows(2).all(|w| w[0] < w[1]),
        "APPENDUIDs grow: {uids:?}"
    );

    // The client records where it is, then goes away without LOGOUT.
    let record = alice.imap_tool("qresync-record", &["Resync"]);
    let (uidvalidity, modseq) = record
        .trim()
        .split_once(' ')
        .expect("qresync-record prints UIDVALIDITY HIGHESTMODSEQ");

    // Another session makes N = 5 flag changes of every kind, and expunges
    // three messages, one of which it had flagged first (only its
    // disappearance may be reported, not its flag change).
    let u = |i: usize| uids[i].to_string();
    let changed = [u(1), u(3), u(5), u(7), u(9)];
    let vanished = [u(12), u(14), u(16)];
    alice.imap_cmds(&format!(
        "SELECT \"Resync\"\n\
         UID STORE {} +FLAGS (\\Flagged)\n\
         UID STORE {} +FLAGS ($label1 $Forwarded)\n\
         UID STORE {} +FLAGS.SILENT (\\Seen)\n\
         UID STORE {} FLAGS (\\Answered $Junk)\n\
         UID STORE {} +FLAGS (\\Seen)\n\
         UID STORE {} -FLAGS (\\Seen)\n\
         UID STORE {} +FLAGS (\\Flagged)\n\
         UID STORE {},{},{} +FLAGS (\\Deleted)\n\
         UID EXPUNGE {},{},{}",
        changed[0],
        changed[1],
        changed[2],
        changed[3],
        changed[4],
        changed[4],
        vanished[0],
        vanished[0],
        vanished[1],
        vanished[2],
        vanished[0],
        vanished[1],
        vanished[2],
    ));
    let changed = changed.join(",");
    let vanished = vanished.join(",");

    // Reconnect: SELECT (QRESYNC (uidvalidity modseq)) after ENABLE QRESYNC.
    let check = |node: &Node| {
        node.imap_tool(
            "qresync-check",
            &["Resync", uidvalidity, modseq, &changed, &vanished],
        )
    };
    let report = check(&alice);
    assert!(report.contains("qresync-check: OK"), "{report}");

    // The mod-sequences and the record of expunged UIDs survive a restart.
    alice.stop();
    alice.start();
    let report = check(&alice);
    assert!(report.contains("qresync-check: OK"), "{report}");

    // A client that is up to date gets nothing at all, and STATUS agrees
    // with SELECT on HIGHESTMODSEQ.
    let record = alice.imap_tool("qresync-record", &["Resync"]);
    let (uidvalidity_now, latest) = record.trim().split_once(' ').expect("record");
    assert_eq!(uidvalidity_now, uidvalidity, "UIDVALIDITY is stable");
    assert!(
        latest.parse::<u64>().expect("modseq") > modseq.parse::<u64>().expect("modseq"),
        "HIGHESTMODSEQ grew from {modseq} to {latest}"
    );
    let report = alice.imap_tool("qresync-check", &["Resync", uidvalidity, latest, "-", "-"]);
    assert!(report.contains("qresync-check: OK"), "{report}");
    let status = alice.imap_cmds("STATUS \"Resync\" (MESSAGES HIGHESTMODSEQ)");
    assert!(
        status.contains(&format!("HIGHESTMODSEQ {latest}")),
        "STATUS HIGHESTMODSEQ equals SELECT's: {status}"
    );
    assert!(
        status.contains(&format!("MESSAGES {}", MESSAGES - 3)),
        "{status}"
    );
}

/// Issue 7: the record of expunged UIDs is pruned to `[bridge]
/// vanished_keep` entries per mailbox. A client that synchronised before
/// the forgotten expunges is answered with every UID the mailbox no longer
/// has (a superset, RFC 7162 §3.2.5.2: it drops the UIDs it never had); a
/// client that synchronised after them gets the exact list.
#[test]
fn a_pruned_expunge_record_answers_old_clients_with_every_missing_uid() {
    let mut alice = Node::create("alice");
    std::fs::write(
        alice.home().join("config.toml"),
        "[bridge]\nvanished_keep = 4\n",
    )
    .expect("write config.toml");
    alice.start();
    alice.imap_cmds("CREATE \"Pruned\"");
    let messages: Vec<Vec<u8>> = (0..30)
        .map(|i| {
            simple_message(
                "Carol <carol@example.org>",
                &alice.email,
                &format!("pruned {i}"),
                &format!("pruned-{i}"),
                &format!("message {i}"),
            )
        })
        .collect();
    let uids = alice.append_all("Pruned", "", &messages);
    assert_eq!(uids, (1..=30).collect::<Vec<u32>>());
    let expunge = |set: &str| {
        alice.imap_cmds(&format!(
            "SELECT \"Pruned\"\nUID STORE {set} +FLAGS.SILENT (\\Deleted)\nUID EXPUNGE {set}"
        ));
    };
    let record = || {
        let line = alice.imap_tool("qresync-record", &["Pruned"]);
        let (validity, modseq) = line.trim().split_once(' ').expect("record");
        (validity.to_string(), modseq.to_string())
    };

    expunge("1:2");
    let (validity, old) = record();
    // Twelve expunges, one command each: the record is pruned to 4 several
    // times over, forgetting those of UIDs 1 to 10.
    for uid in 3..=14 {
        expunge(&uid.to_string());
    }
    let (_, recent) = record();
    expunge("20");
    expunge("21");

    let check = |since: &str, vanished: &str| {
        let report = alice.imap_tool(
            "qresync-check",
            &["Pruned", &validity, since, "-", vanished],
        );
        assert!(report.contains("qresync-check: OK"), "{report}");
    };
    // Before the floor: every UID below UIDNEXT that is gone, 1 and 2
    // included (the client never had them after its record).
    check(&old, "1:14,20:21");
    // After it: exactly what was expunged since.
    check(&recent, "20:21");
    assert!(
        alice.log().contains("pruned the expunge record"),
        "the daemon logs the pruning"
    );
}
