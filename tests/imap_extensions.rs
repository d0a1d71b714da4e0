//! Issue 7: IMAP extensions through a real client against a real daemon.
//!
//! STATUS=SIZE (RFC 8438): `STATUS (SIZE)` and `LIST ... RETURN (STATUS
//! (SIZE))` give the sum of the messages' RFC822.SIZE, kept current by the
//! store's writer through APPEND and EXPUNGE. The client is Python's
//! imaplib (`mailtool.py status-size`).

mod common;

use common::{Node, simple_message};

/// What `mailtool.py status-size` saw of one mailbox.
#[derive(Debug, PartialEq)]
struct SizeReport {
    capability: bool,
    size: u64,
    list_size: u64,
    messages: u64,
    sum: u64,
}

fn status_size(node: &Node, mailbox: &str) -> SizeReport {
    let out = node.imap_tool("status-size", &[mailbox]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("status-size JSON");
    let number = |key: &str| json[key].as_u64().unwrap_or_else(|| panic!("{key} in {out}"));
    SizeReport {
        capability: json["capability"].as_bool().expect("capability"),
        size: number("size"),
        list_size: number("list_size"),
        messages: number("messages"),
        sum: number("sum"),
    }
}

#[test]
fn status_size_follows_append_and_expunge() {
    let mut alice = Node::create("alice");
    alice.start();
    alice.imap_cmds("CREATE \"Sized\"");
    let empty = status_size(&alice, "Sized");
    assert_eq!(
        empty,
        SizeReport {
            capability: true,
            size: 0,
            list_size: 0,
            messages: 0,
            sum: 0
        }
    );

    // Messages of different sizes, one with 8-bit text.
    let messages: Vec<Vec<u8>> = [10usize, 2_000, 70_000]
        .iter()
        .enumerate()
        .map(|(i, lines)| {
            let body = format!("line of message {i}, caf\u{e9}\r\n").repeat(*lines);
            simple_message(
                "Carol <carol@example.org>",
                &alice.email,
                &format!("sized {i}"),
                &format!("sized-{i}"),
                &body,
            )
        })
        .collect();
    let uids = alice.append_all("Sized", "", &messages);
    assert_eq!(uids.len(), 3);
    let total: u64 = messages.iter().map(|m| m.len() as u64).sum();
    let report = status_size(&alice, "Sized");
    assert_eq!((report.messages, report.size), (3, total), "{report:?}");
    assert_eq!(report.sum, total, "SIZE is the sum of RFC822.SIZE");
    assert_eq!(report.list_size, total, "LIST-STATUS agrees");

    // Expunge the middle one: the size drops by exactly its length.
    alice.imap_cmds(&format!(
        "SELECT \"Sized\"\nUID STORE {} +FLAGS.SILENT (\\Deleted)\nEXPUNGE",
        uids[1]
    ));
    let after = status_size(&alice, "Sized");
    let left = total - messages[1].len() as u64;
    assert_eq!((after.messages, after.size), (2, left), "{after:?}");
    assert_eq!((after.sum, after.list_size), (left, left));

    // INBOX is sized independently.
    let inbox = status_size(&alice, "INBOX");
    assert_eq!(inbox.size, inbox.sum);
}
