//! Issue 7: IMAP extensions through a real client against a real daemon.
//!
//! - STATUS=SIZE (RFC 8438): `STATUS (SIZE)` and `LIST ... RETURN (STATUS
//!   (SIZE))` give the sum of the messages' RFC822.SIZE, kept current by the
//!   store's writer through APPEND and EXPUNGE (`mailtool.py status-size`,
//!   imaplib).
//! - BINARY (RFC 3516): APPEND with a literal8 keeps NUL bytes; `BINARY[n]`
//!   undoes quoted-printable and base64 and sends NUL-bearing content as a
//!   literal8; `BINARY.SIZE`; an unknown encoding is `NO [UNKNOWN-CTE]`;
//!   only the non-PEEK form sets `\Seen` (`mailtool.py binary`: the APPEND
//!   on a raw socket, since imaplib cannot send a literal8, the rest
//!   through imaplib).
//! - UTF8=ACCEPT (RFC 9755): after `ENABLE UTF8=ACCEPT` mailbox names are
//!   UTF-8 both ways, APPEND works through imaplib and with the `UTF8
//!   (~{n})` data item, and SEARCH takes raw UTF-8 strings; a session that
//!   did not enable it keeps modified UTF-7 (`mailtool.py utf8-accept`).
//! - `\Recent` (RFC 3501 §2.3.2): new mail is recent in the first
//!   read-write session told of it and in read-only sessions until then;
//!   STATUS RECENT counts what no session has claimed; SEARCH RECENT, NEW
//!   and OLD follow; claims survive a restart (`mailtool.py recent`, five
//!   imaplib sessions).

mod common;

use base64::Engine;
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
    let number = |key: &str| {
        json[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {out}"))
    };
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

#[test]
fn binary_fetch_decodes_parts_and_keeps_nul_bytes() {
    let mut alice = Node::create("alice");
    alice.start();
    alice.imap_cmds("CREATE \"Binary\"");
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let raw_with_nul = b"raw\x00binary\x00\xff\x01 part".to_vec();
    let mut message = b"From: Carol <carol@example.org>\r\n\
To: alice@example.org\r\n\
Subject: binary parts\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"sep\"\r\n\
\r\n\
--sep\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
caf=C3=A9 =\r\nau lait\r\n\
--sep\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n"
        .to_vec();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&all_bytes);
    for line in encoded.as_bytes().chunks(76) {
        message.extend_from_slice(line);
        message.extend_from_slice(b"\r\n");
    }
    message.extend_from_slice(
        b"--sep\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: binary\r\n\r\n",
    );
    message.extend_from_slice(&raw_with_nul);
    message.extend_from_slice(
        b"\r\n--sep\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 file\r\n--sep--\r\n",
    );
    let hexfile = alice.home().join("binary.hex");
    std::fs::write(&hexfile, hex::encode(&message)).expect("write hex");

    let out = alice.imap_tool("binary", &["Binary", hexfile.to_str().expect("utf-8 path")]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("binary JSON");
    assert_eq!(json["capability"], true, "{out}");
    let part = |n: &str| {
        let part = &json["parts"][n];
        let bytes = hex::decode(part["hex"].as_str().expect("hex")).expect("hex");
        let size = part["size"].as_u64().expect("size");
        assert_eq!(
            size,
            bytes.len() as u64,
            "BINARY.SIZE[{n}] is the decoded size"
        );
        (bytes, part["literal8"].as_bool().expect("literal8"))
    };
    assert_eq!(part("1"), ("caf\u{e9} au lait".as_bytes().to_vec(), false));
    assert_eq!(
        part("2"),
        (all_bytes, true),
        "NUL-bearing content as literal8"
    );
    assert_eq!(
        part("3"),
        (raw_with_nul, true),
        "APPEND's literal8 kept the bytes"
    );
    let refused = json["unknown_cte"].as_array().expect("unknown_cte");
    assert_eq!(refused[0], "NO", "{out}");
    assert!(
        refused[1]
            .as_str()
            .expect("text")
            .starts_with("[UNKNOWN-CTE]"),
        "{out}"
    );
    let missing = json["missing"].as_array().expect("missing");
    assert_eq!(missing[0], "OK", "{out}");
    let missing_data = missing[1].as_str().expect("data");
    assert!(
        missing_data.contains("BINARY[9] NIL") && missing_data.contains("BINARY.SIZE[9] 0"),
        "{out}"
    );
    // PEEK leaves \Seen alone; BINARY[1] sets it.
    assert!(
        !json["flags_before"]
            .as_str()
            .expect("flags")
            .contains("\\Seen"),
        "{out}"
    );
    assert!(
        !json["flags_after_peek"]
            .as_str()
            .expect("flags")
            .contains("\\Seen"),
        "{out}"
    );
    assert!(
        json["flags_after_binary"]
            .as_str()
            .expect("flags")
            .contains("\\Seen"),
        "{out}"
    );
}

#[test]
fn utf8_accept_names_append_and_search() {
    let mut alice = Node::create("alice");
    alice.start();
    let out = alice.imap_tool("utf8-accept", &[]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("utf8-accept JSON");
    let lines = |key: &str| -> Vec<String> {
        json[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} in {out}"))
            .iter()
            .map(|v| v.as_str().expect("string").to_string())
            .collect()
    };
    assert_eq!(json["capability"], true, "{out}");
    let names_in = |list: &[String], name: &str| list.iter().any(|l| l.ends_with(name));
    // Without ENABLE: modified UTF-7, before and after the other session.
    for key in ["list_before", "list_plain_again"] {
        let list = lines(key);
        assert!(names_in(&list, "\"Entw&APw-rfe\""), "{key}: {list:?}");
        assert!(
            !list.iter().any(|l| l.contains('\u{fc}')),
            "{key}: {list:?}"
        );
    }
    assert_eq!(json["enable"][0], "OK", "{out}");
    assert_eq!(json["enable"][1][0], "UTF8=ACCEPT", "{out}");
    let list = lines("list_after");
    assert!(names_in(&list, "\"Entw\u{fc}rfe\""), "{list:?}");
    assert!(!list.iter().any(|l| l.contains("&APw-")), "{list:?}");
    assert_eq!(json["status"][0], "OK", "{out}");
    assert!(
        json["status"][1]
            .as_str()
            .expect("status")
            .starts_with("\"Entw\u{fc}rfe\" (MESSAGES 0)"),
        "{out}"
    );
    assert_eq!(json["append_imaplib"], "OK", "{out}");
    assert!(
        json["append_utf8_data"]
            .as_str()
            .expect("append")
            .starts_with("r1 OK"),
        "{out}"
    );
    // Both messages stored exactly as meant (imaplib's wrapper removed).
    assert_eq!(json["stored"], json["expected"], "{out}");
    assert_eq!(json["search_body"], "1", "{out}");
    assert_eq!(json["search_subject"], "2", "{out}");
}

#[test]
fn recent_belongs_to_the_first_session_told_and_survives_a_restart() {
    let mut alice = Node::create("alice");
    alice.start();
    let messages: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            simple_message(
                "Carol <carol@example.org>",
                &alice.email,
                &format!("recent {i}"),
                &format!("recent-{i}"),
                "A new message.",
            )
        })
        .collect();
    // APPEND without SELECT: nobody has been told of these yet.
    assert_eq!(alice.append_all("INBOX", "", &messages), vec![1, 2, 3]);

    let out = alice.imap_tool("recent", &["INBOX"]);
    let seen: serde_json::Value = serde_json::from_str(out.trim()).expect("recent JSON");
    let expected = serde_json::json!({
        "status_before": 3,
        // EXAMINE shows them and claims nothing.
        "examine": [3],
        "examine_flags": [1, 2, 3],
        "examine_search": [1, 2, 3],
        "status_after_examine": 3,
        // The first SELECT takes them.
        "first": [3],
        "first_flags": [1, 2, 3],
        "first_new": [1, 2, 3],
        "first_new_after_seen": [2, 3],
        "first_old": [],
        "first_status": 3,
        // The second SELECT finds none left.
        "second": [0],
        "second_flags": [],
        "second_search": [],
        "second_old": [1, 2, 3],
        "status_after_selects": 0,
        // Mail that arrives while both are selected goes to the one told
        // first.
        "second_noop": {"exists": [4], "recent": [1]},
        "first_noop": {"exists": [4], "recent": [3]},
        "second_flags_after": [4],
        "first_flags_after": [1, 2, 3],
        "status_end": 0,
    });
    assert_eq!(seen, expected, "{out}");

    // Claims are kept across a restart: nothing is recent again.
    alice.stop();
    alice.start();
    let after = alice.imap_cmds("STATUS INBOX (RECENT MESSAGES)\nSELECT INBOX");
    assert!(
        after.contains("* STATUS INBOX (RECENT 0 MESSAGES 4)") && after.contains("* 0 RECENT"),
        "{after}"
    );
    alice.stop();
}
