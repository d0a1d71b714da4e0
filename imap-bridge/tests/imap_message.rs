//! Message commands over the wire: APPEND, FETCH (every item), STORE,
//! SEARCH, COPY, MOVE, EXPUNGE, UID EXPUNGE, and Thunderbird's observed
//! command sequence.

mod imap_support;

use imap_support::{Client, MESSAGE, last_line, ok, start};

const MULTIPART: &str = "From: Carol <carol@example.org>\r\n\
To: me@example.org\r\n\
Cc: dave@example.org\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= with attachment\r\n\
Date: Wed, 4 Mar 2026 09:30:00 +0100\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"xyz\"\r\n\
\r\n\
--xyz\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
See the attached invoice.\r\n\
--xyz\r\n\
Content-Type: application/pdf; name=\"invoice.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--xyz--\r\n";

async fn mailbox_with_two() -> (imap_support::Server, Client) {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    client.append("INBOX", "", MESSAGE).await;
    client.append("INBOX", "\\Flagged", MULTIPART).await;
    Client::seen_before(server.addr, "INBOX").await;
    client.select("INBOX").await;
    (server, client)
}

#[tokio::test]
async fn append_with_flags_and_date() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    // Thunderbird: `append "Sent" (\Seen) {n+}`.
    let reply = client
        .command(&format!(
            "append \"Sent\" (\\Seen) \"05-Mar-2026 12:00:00 +0200\" {{{}+}}\r\n{MESSAGE}",
            MESSAGE.len()
        ))
        .await;
    assert!(last_line(&reply).contains("OK [APPENDUID "), "{reply}");
    assert_eq!(imap_support::appended_uid(&reply), 1);
    Client::seen_before(server.addr, "Sent").await;
    client.select("Sent").await;
    let reply = client
        .command("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
        .await;
    assert!(
        reply.starts_with(&format!(
            "* 1 FETCH (FLAGS (\\Seen) INTERNALDATE \"05-Mar-2026 12:00:00 +0200\" RFC822.SIZE {})",
            MESSAGE.len()
        )),
        "{reply}"
    );
    let reply = client.command("APPEND Nowhere {3+}\r\nabc").await;
    assert!(last_line(&reply).contains("NO [TRYCREATE]"), "{reply}");
    // A synchronizing literal gets a continuation first.
    client
        .send(format!("s APPEND INBOX {{{}}}\r\n", MESSAGE.len()).as_bytes())
        .await;
    assert!(client.line().await.starts_with("+ "));
    client.send(format!("{MESSAGE}\r\n").as_bytes()).await;
    let reply = client.until_tagged("s").await;
    assert!(ok(&reply), "{reply}");
}

#[tokio::test]
async fn fetch_metadata_and_macros() {
    let (_server, mut client) = mailbox_with_two().await;
    let reply = client.command("FETCH 1:* FLAGS").await;
    assert!(
        reply.starts_with("* 1 FETCH (FLAGS ())\r\n* 2 FETCH (FLAGS (\\Flagged))\r\n"),
        "{reply}"
    );
    let reply = client.command("UID FETCH 1:* (FLAGS)").await;
    assert!(
        reply.starts_with("* 1 FETCH (UID 1 FLAGS ())\r\n"),
        "UID added: {reply}"
    );
    let reply = client.command("FETCH 1 FAST").await;
    assert!(
        reply.contains("FLAGS ()")
            && reply.contains("INTERNALDATE \"")
            && reply.contains("RFC822.SIZE"),
        "{reply}"
    );
    let reply = client.command("FETCH 1 ALL").await;
    assert!(
        reply.contains("ENVELOPE (\"Tue, 3 Mar 2026 10:00:00 +0000\" \"Lunch on Friday\""),
        "{reply}"
    );
    let reply = client.command("FETCH 2 FULL").await;
    assert!(reply.contains("BODY ((\"TEXT\" \"PLAIN\""), "{reply}");
    let reply = client.command("FETCH 2 BODYSTRUCTURE").await;
    assert!(
        reply.contains("BODYSTRUCTURE ((\"TEXT\" \"PLAIN\""),
        "{reply}"
    );
    assert!(reply.contains("\"MIXED\""), "{reply}");
    let reply = client.command("FETCH 3 FLAGS").await;
    assert!(last_line(&reply).contains(" BAD "), "no message 3: {reply}");
    let reply = client.command("UID FETCH 3:9 FLAGS").await;
    assert_eq!(
        reply.lines().count(),
        1,
        "unknown UIDs are ignored: {reply}"
    );
}

#[tokio::test]
async fn fetch_sections_and_seen() {
    let (_server, mut client) = mailbox_with_two().await;
    // Thunderbird's header fetch.
    let reply = client
        .command("UID fetch 1:2 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])")
        .await;
    assert!(
        reply.contains("BODY[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)] {"),
        "{reply}"
    );
    assert!(reply.contains("Subject: Lunch on Friday\r\n"), "{reply}");
    assert!(!reply.contains("Shall we meet"), "headers only: {reply}");
    assert!(!reply.contains("\\Seen"), "PEEK keeps unseen: {reply}");

    let reply = client.command("UID FETCH 1 BODY.PEEK[TEXT]<0.2048>").await;
    assert!(
        reply.contains("BODY[TEXT]<0> {24}\r\nShall we meet at noon?\r\n"),
        "{reply}"
    );
    let reply = client.command("UID FETCH 1 BODY.PEEK[]<6.5>").await;
    assert!(reply.contains("BODY[]<6> {5}\r\nAlice"), "{reply}");
    let reply = client
        .command("FETCH 2 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[9])")
        .await;
    // The CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1).
    assert!(
        reply.contains("BODY[1] {25}\r\nSee the attached invoice. BODY"),
        "{reply}"
    );
    assert!(reply.contains("BODY[2.MIME] {"), "{reply}");
    assert!(reply.contains("BODY[9] NIL"), "{reply}");
    let reply = client.command("FETCH 1 (RFC822.HEADER)").await;
    assert!(
        reply.contains("RFC822.HEADER {") && !reply.contains("\\Seen"),
        "{reply}"
    );

    // BODY[] without PEEK sets \Seen and reports the new flags.
    let reply = client.command("FETCH 1 BODY[]").await;
    assert!(reply.contains("Shall we meet at noon?"), "{reply}");
    assert!(reply.contains("FLAGS (\\Seen)"), "{reply}");
    let reply = client.command("FETCH 2 RFC822.TEXT").await;
    assert!(reply.contains("FLAGS (\\Flagged \\Seen)"), "{reply}");
    let reply = client.command("FETCH 1:2 (FLAGS RFC822)").await;
    assert_eq!(reply.matches("\\Seen").count(), 2, "{reply}");
}

#[tokio::test]
async fn store_variants() {
    let (_server, mut client) = mailbox_with_two().await;
    let reply = client.command("STORE 1 +FLAGS (\\Seen $Label1)").await;
    assert!(
        reply.starts_with("* 1 FETCH (FLAGS ($Label1 \\Seen))\r\n"),
        "{reply}"
    );
    let reply = client.command("STORE 1 -FLAGS ($Label1)").await;
    assert!(
        reply.starts_with("* 1 FETCH (FLAGS (\\Seen))\r\n"),
        "{reply}"
    );
    let reply = client.command("STORE 1:2 FLAGS (\\Answered)").await;
    assert!(reply.contains("* 2 FETCH (FLAGS (\\Answered))"), "{reply}");
    let reply = client.command("STORE 1 +FLAGS.SILENT (\\Draft)").await;
    assert_eq!(reply.lines().count(), 1, "{reply}");
    // Thunderbird: `uid store N +Flags (\Seen)`.
    let reply = client.command("uid store 2 +Flags (\\Seen)").await;
    assert!(
        reply.starts_with("* 2 FETCH (UID 2 FLAGS (\\Answered \\Seen))"),
        "{reply}"
    );
    let reply = client.command("FETCH 1 FLAGS").await;
    assert!(reply.contains("FLAGS (\\Answered \\Draft)"), "{reply}");
}

#[tokio::test]
async fn search_criteria() {
    let (_server, mut client) = mailbox_with_two().await;
    assert!(ok(&client.command("STORE 1 +FLAGS (\\Seen $Work)").await));
    for (criteria, expected) in [
        ("ALL", "* SEARCH 1 2"),
        ("SEEN", "* SEARCH 1"),
        ("UNSEEN", "* SEARCH 2"),
        ("FLAGGED", "* SEARCH 2"),
        ("KEYWORD $Work", "* SEARCH 1"),
        ("UNKEYWORD $Work", "* SEARCH 2"),
        ("SUBJECT lunch", "* SEARCH 1"),
        ("CHARSET UTF-8 SUBJECT {7+}\r\ngrüße", "* SEARCH 2"),
        ("FROM carol", "* SEARCH 2"),
        ("TO me@example.org", "* SEARCH 1 2"),
        ("CC dave", "* SEARCH 2"),
        ("BCC anyone", "* SEARCH"),
        ("HEADER Message-ID lunch@", "* SEARCH 1"),
        ("BODY invoice", "* SEARCH 2"),
        ("TEXT noon", "* SEARCH 1"),
        ("SENTBEFORE 4-Mar-2026", "* SEARCH 1"),
        ("SENTON 4-Mar-2026", "* SEARCH 2"),
        ("SENTSINCE 1-Jan-2030", "* SEARCH"),
        ("SINCE 1-Jan-2000", "* SEARCH 1 2"),
        ("BEFORE 1-Jan-2000", "* SEARCH"),
        ("LARGER 300", "* SEARCH 2"),
        ("SMALLER 300", "* SEARCH 1"),
        ("OR FLAGGED SEEN", "* SEARCH 1 2"),
        ("NOT SEEN", "* SEARCH 2"),
        ("2", "* SEARCH 2"),
        ("UID 1", "* SEARCH 1"),
        ("NEW", "* SEARCH"),
        ("OLD", "* SEARCH 1 2"),
        ("RECENT", "* SEARCH"),
    ] {
        let reply = client.command(&format!("SEARCH {criteria}")).await;
        assert_eq!(reply.lines().next(), Some(expected), "{criteria}: {reply}");
        assert!(ok(&reply), "{criteria}: {reply}");
    }
    let reply = client.command("UID SEARCH UNSEEN").await;
    assert!(reply.starts_with("* SEARCH 2\r\n"), "{reply}");
    let reply = client.command("SEARCH CHARSET UTF-8 SUBJECT lunch").await;
    assert!(reply.starts_with("* SEARCH 1\r\n"), "{reply}");
    let reply = client.command("SEARCH CHARSET KOI8-R SUBJECT x").await;
    assert!(last_line(&reply).contains("NO [BADCHARSET"), "{reply}");
    let reply = client.command("SEARCH MODSEQ 1").await;
    assert!(reply.starts_with("* SEARCH 1 2 (MODSEQ "), "{reply}");
}

#[tokio::test]
async fn copy_move_and_expunge() {
    let (_server, mut client) = mailbox_with_two().await;
    let reply = client.command("COPY 1:2 Archive").await;
    assert!(last_line(&reply).contains("OK [COPYUID "), "{reply}");
    assert!(last_line(&reply).contains(" 1:2 1:2]"), "{reply}");
    let reply = client.command("COPY 1 Nowhere").await;
    assert!(last_line(&reply).contains("NO [TRYCREATE]"), "{reply}");

    // Thunderbird: `uid move N "Trash"`.
    let reply = client.command("uid move 1 \"Trash\"").await;
    assert!(reply.starts_with("* OK [COPYUID "), "{reply}");
    assert!(reply.contains("* 1 EXPUNGE\r\n"), "{reply}");
    assert!(ok(&reply));
    let reply = client.command("FETCH 1 (UID)").await;
    assert!(
        reply.starts_with("* 1 FETCH (UID 2)"),
        "renumbered: {reply}"
    );
    let reply = client.command("STATUS Trash (MESSAGES)").await;
    assert!(reply.contains("MESSAGES 1"), "{reply}");

    client.append("INBOX", "\\Deleted", MESSAGE).await;
    client.append("INBOX", "\\Deleted", MESSAGE).await;
    let reply = client.command("SEARCH ALL").await;
    assert!(reply.starts_with("* SEARCH 1 2 3\r\n"), "{reply}");
    // UID EXPUNGE only touches the given UIDs (RFC 4315 §2.1).
    let reply = client.command("UID EXPUNGE 4").await;
    assert!(reply.starts_with("* 3 EXPUNGE\r\n"), "{reply}");
    let reply = client.command("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    assert!(ok(&reply));
    let reply = client.command("EXPUNGE").await;
    assert!(
        reply.starts_with("* 2 EXPUNGE\r\n* 1 EXPUNGE\r\n"),
        "{reply}"
    );
    let reply = client.command("SEARCH ALL").await;
    assert!(reply.starts_with("* SEARCH\r\n"), "{reply}");
    assert!(ok(&client.command("CHECK").await));
}

#[tokio::test]
async fn thunderbird_start_up_sequence() {
    let server = start().await;
    let uid = server
        .store
        .deliver("INBOX", MESSAGE.as_bytes())
        .expect("deliver");
    let (mut client, greeting) = Client::connect(server.addr).await;
    assert!(greeting.contains("AUTH=PLAIN"));
    client.send(b"1 authenticate PLAIN\r\n").await;
    assert_eq!(client.line().await, "+ \r\n");
    let response = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("\0{}\0{}", imap_support::USER, imap_support::PASSWORD),
    );
    client.send(format!("{response}\r\n").as_bytes()).await;
    assert!(ok(&client.until_tagged("1").await));
    assert!(ok(&client.command("COMPRESS DEFLATE").await));
    client.start_deflate();
    assert!(ok(&client.command("namespace").await));
    assert!(ok(&client
        .command("ID (\"name\" \"Thunderbird\" \"version\" \"140\")")
        .await));
    let reply = client
        .command("list (subscribed) \"\" \"*\" return (special-use)")
        .await;
    assert!(reply.contains("\\Trash"), "{reply}");
    let reply = client.command("create \"Trash\"").await;
    assert!(last_line(&reply).contains("ALREADYEXISTS"), "{reply}");
    let reply = client.command("select \"INBOX\"").await;
    assert!(reply.contains("[HIGHESTMODSEQ "), "{reply}");
    let reply = client.command("UID fetch 1:* (FLAGS)").await;
    assert!(
        // Newly delivered: recent for the first session told of it.
        reply.starts_with(&format!("* 1 FETCH (UID {uid} FLAGS (\\Recent))")),
        "{reply}"
    );
    let reply = client
        .command(&format!("UID fetch {uid}:{uid} (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Subject)])"))
        .await;
    assert!(reply.contains("Subject: Lunch on Friday"), "{reply}");
    let reply = client
        .command(&format!(
            "UID fetch {uid} (UID RFC822.SIZE BODY.PEEK[]<0.65536>)"
        ))
        .await;
    assert!(reply.contains("Shall we meet at noon?"), "{reply}");
    let reply = client
        .command(&format!("uid store {uid} +Flags (\\Seen)"))
        .await;
    assert!(reply.contains("FLAGS (\\Seen \\Recent)"), "{reply}");
    let reply = client.command(&format!("uid move {uid} \"Trash\"")).await;
    assert!(ok(&reply), "{reply}");
    let reply = client
        .command("append \"Sent\" (\\Seen) {5+}\r\nHello")
        .await;
    assert!(ok(&reply), "{reply}");
    let reply = client.command("logout").await;
    assert!(reply.contains("* BYE"), "{reply}");
}

/// A message whose parts cannot all be decoded for BINARY: part 1 is good
/// base64, part 2 declares an encoding nobody defines, part 3 is not
/// base64 at all.
const UNDECODABLE: &str = "From: Carol <carol@example.org>\r\n\
To: me@example.org\r\n\
Subject: parts\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
aGVsbG8=\r\n\
--b\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: x-uuencode\r\n\
\r\n\
begin 644 x\r\n\
--b\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
!!! not base64 !!!\r\n\
--b--\r\n";

#[tokio::test]
async fn binary_of_undecodable_parts_fails_the_command_and_changes_nothing() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    client.append("INBOX", "", UNDECODABLE).await;
    Client::seen_before(server.addr, "INBOX").await;
    client.select("INBOX").await;

    // The same part asked for twice in one FETCH, content and size.
    let reply = client
        .command("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
        .await;
    assert!(ok(&reply), "{reply}");
    assert!(
        reply.starts_with("* 1 FETCH (BINARY[1] {5}\r\nhello BINARY.SIZE[1] 5"),
        "{reply}"
    );

    let reply = client.command("FETCH 1 BINARY.PEEK[2]").await;
    assert!(
        last_line(&reply).contains(" NO [UNKNOWN-CTE] "),
        "an unknown encoding is refused with its code (RFC 3516 §4.3): {reply}"
    );
    assert!(!reply.contains("* 1 FETCH"), "no partial data: {reply}");

    // Without PEEK: the refusal must not set \Seen either.
    let reply = client.command("FETCH 1 BINARY[3]").await;
    let last = last_line(&reply);
    assert!(
        last.contains(" NO ") && !last.contains('['),
        "broken base64 is a plain NO, not UNKNOWN-CTE: {reply}"
    );
    assert!(!reply.contains("* 1 FETCH"), "no partial data: {reply}");

    // The refusals set no flag and left the message as it was.
    let reply = client.command("FETCH 1 (FLAGS BODY.PEEK[])").await;
    assert!(ok(&reply), "{reply}");
    assert!(reply.contains("FLAGS ()"), "{reply}");
    assert!(reply.contains(UNDECODABLE), "{reply}");
}
