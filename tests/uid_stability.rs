//! Issue 3, "what it must show" 3: UIDVALIDITY and the UIDs of existing
//! messages never change — across restarts (clean and crash), renames and
//! re-created folders — new UIDs only grow, and a folder that is deleted
//! and created again gets a new UIDVALIDITY (RFC 3501 §2.3.1.1).

mod common;

use common::{MailboxState, Node, NodeState, simple_message};

/// APPENDs `count` messages with Message-IDs `<{prefix}-{i}@example.org>`.
fn fill(node: &Node, mailbox: &str, prefix: &str, count: usize) -> Vec<u32> {
    let messages: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            simple_message(
                "Carol <carol@example.org>",
                &node.email,
                &format!("{prefix} {i}"),
                &format!("{prefix}-{i}"),
                &format!("{prefix} body {i}"),
            )
        })
        .collect();
    node.append_all(mailbox, "", &messages)
}

fn get<'a>(state: &'a NodeState, name: &str) -> &'a MailboxState {
    state
        .get(name)
        .unwrap_or_else(|| panic!("no mailbox {name} in {:?}", state.keys()))
}

/// `now` still has the UIDVALIDITY and every (Message-ID, UID) of `before`.
fn assert_kept(before: &MailboxState, now: &MailboxState, what: &str) {
    assert_eq!(
        now.uidvalidity, before.uidvalidity,
        "{what}: UIDVALIDITY changed"
    );
    assert_eq!(
        now.uid_map(),
        before.uid_map(),
        "{what}: the UIDs of existing messages changed"
    );
    assert!(
        now.uidnext >= before.uidnext,
        "{what}: UIDNEXT went back from {} to {}",
        before.uidnext,
        now.uidnext
    );
}

fn assert_same_boxes(before: &NodeState, now: &NodeState, what: &str) {
    for (name, mailbox) in before {
        assert_kept(mailbox, get(now, name), &format!("{what}, {name}"));
    }
}

#[test]
fn uids_survive_restarts_renames_and_recreated_folders() {
    let mut alice = Node::create("alice");
    alice.start();
    alice.imap_cmds("CREATE \"Work\"\nCREATE \"Work/Deep\"\nCREATE \"Old\"");
    let inbox = fill(&alice, "INBOX", "inbox", 4);
    fill(&alice, "Work", "work", 3);
    fill(&alice, "Work/Deep", "deep", 2);
    fill(&alice, "Old", "old", 2);

    // Expunge INBOX's newest message: its UID must never come back.
    let newest = inbox.last().copied().expect("four UIDs");
    alice.imap_cmds(&format!(
        "SELECT INBOX\nUID STORE {newest} +FLAGS (\\Deleted)\nUID EXPUNGE {newest}"
    ));
    let start = alice.mailbox_state();
    assert_eq!(get(&start, "INBOX").messages.len(), 3);

    // 1. A clean restart.
    alice.stop();
    alice.start();
    let after_restart = alice.mailbox_state();
    assert_same_boxes(&start, &after_restart, "after a restart");
    let uid = alice.append(
        "INBOX",
        "",
        &simple_message("c@example.org", &alice.email, "new", "inbox-new", "n"),
    );
    assert!(
        uid > newest,
        "a new UID ({uid}) is above every earlier one, expunged {newest} included"
    );

    // 2. RENAME keeps the mailbox (and its children) with UIDVALIDITY and
    // UIDs; a folder created under the old name is a new mailbox.
    alice.imap_cmds("RENAME \"Work\" \"Projects\"\nCREATE \"Work\"");
    let renamed = alice.mailbox_state();
    assert_kept(
        get(&start, "Work"),
        get(&renamed, "Projects"),
        "Work renamed to Projects",
    );
    assert_kept(
        get(&start, "Work/Deep"),
        get(&renamed, "Projects/Deep"),
        "Work/Deep renamed to Projects/Deep",
    );
    assert!(
        !renamed.contains_key("Work/Deep"),
        "Work/Deep moved: {:?}",
        renamed.keys()
    );
    let new_work = get(&renamed, "Work");
    assert!(new_work.messages.is_empty(), "{new_work:?}");
    assert_ne!(
        new_work.uidvalidity,
        get(&start, "Work").uidvalidity,
        "a re-created Work has a new UIDVALIDITY"
    );

    // 3. DELETE then CREATE under the same name: a new UIDVALIDITY.
    alice.imap_cmds("DELETE \"Old\"\nCREATE \"Old\"");
    let recreated = alice.mailbox_state();
    let old = get(&recreated, "Old");
    assert!(old.messages.is_empty(), "{old:?}");
    assert_ne!(
        old.uidvalidity,
        get(&start, "Old").uidvalidity,
        "a deleted and re-created Old has a new UIDVALIDITY"
    );
    fill(&alice, "Old", "old-again", 1);
    fill(&alice, "Work", "work-again", 1);

    // 4. MOVE and COPY give the target new UIDs above its UIDNEXT.
    let inbox_now = get(&recreated, "INBOX");
    let projects_next = get(&recreated, "Projects").uidnext;
    let moved = inbox_now.uid_of("<inbox-0@example.org>").expect("inbox-0");
    let copied = inbox_now.uid_of("<inbox-1@example.org>").expect("inbox-1");
    let out = alice.imap_cmds(&format!(
        "SELECT INBOX\nUID MOVE {moved} \"Projects\"\nUID COPY {copied} \"Projects\""
    ));
    assert!(out.contains("COPYUID"), "UIDPLUS COPYUID: {out}");
    let before_crash = alice.mailbox_state();
    let projects = get(&before_crash, "Projects");
    for id in ["<inbox-0@example.org>", "<inbox-1@example.org>"] {
        let uid = projects.uid_of(id).expect("moved/copied");
        assert!(
            uid >= projects_next,
            "{id} got UID {uid} in Projects, below its UIDNEXT {projects_next}"
        );
    }

    // 5. A crash (SIGKILL) changes nothing either.
    alice.kill();
    alice.start();
    let after_crash = alice.mailbox_state();
    assert_same_boxes(&before_crash, &after_crash, "after a crash");
    for (name, mailbox) in &after_crash {
        // mailnode keeps Outbox and refuses APPEND into it (see
        // tests/outbox_folder.rs); its UIDs survived the crash above.
        if name == "Outbox" {
            continue;
        }
        let prefix = name.to_lowercase().replace('/', "-");
        let raw = simple_message(
            "c@example.org",
            &alice.email,
            "last",
            &format!("{prefix}-last"),
            "x",
        );
        let uid = alice.append(name, "", &raw);
        let highest = before_crash
            .get(name)
            .and_then(|m| m.messages.last())
            .map_or(0, |m| m.uid);
        assert!(
            uid > highest && uid >= mailbox.uidnext,
            "{name}: new UID {uid} after the crash must exceed {highest} and reach UIDNEXT {}",
            mailbox.uidnext
        );
    }
}
