//! Mailbox commands over the wire: LIST/LSUB (plain and LIST-EXTENDED with
//! SPECIAL-USE and STATUS), CREATE, DELETE, RENAME, SUBSCRIBE, STATUS,
//! SELECT/EXAMINE, CLOSE and UNSELECT.

mod imap_support;

use imap_support::{Client, MESSAGE, last_line, ok, start};

#[tokio::test]
async fn list_shows_special_use_and_children() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    let reply = client.command("LIST \"\" \"*\"").await;
    let expected = [
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n",
        "* LIST (\\HasNoChildren \\Archive) \"/\" \"Archive\"\r\n",
        "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"\r\n",
        "* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"\r\n",
        "* LIST (\\HasNoChildren) \"/\" \"Requests\"\r\n",
        "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n",
        "* LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\"\r\n",
    ];
    assert_eq!(reply.lines().count(), expected.len() + 1, "{reply}");
    assert!(reply.starts_with(expected[0]), "INBOX first: {reply}");
    for line in expected {
        assert!(reply.contains(line), "{line} in {reply}");
    }
    assert!(ok(&reply));

    let reply = client.command("LIST \"\" \"\"").await;
    assert!(
        reply.starts_with("* LIST (\\Noselect) \"/\" \"\"\r\n"),
        "{reply}"
    );
    let reply = client.command("list \"\" inbox").await;
    assert!(
        reply.starts_with("* LIST (\\HasNoChildren) \"/\" INBOX\r\n"),
        "{reply}"
    );

    assert!(ok(&client.command("CREATE Archive/2026/March").await));
    let reply = client.command("LIST \"\" \"Archive/%\"").await;
    assert!(
        reply.starts_with("* LIST (\\HasChildren) \"/\" \"Archive/2026\"\r\n"),
        "{reply}"
    );
    let reply = client.command("LIST \"Archive/\" \"%\"").await;
    assert!(
        reply.contains("\"Archive/2026\""),
        "reference joins: {reply}"
    );
    let reply = client.command("LIST \"\" \"%\"").await;
    assert!(
        reply.contains("* LIST (\\HasChildren \\Archive) \"/\" \"Archive\"\r\n"),
        "{reply}"
    );
    assert!(
        !reply.contains("Archive/2026"),
        "% stops at the delimiter: {reply}"
    );
}

#[tokio::test]
async fn thunderbird_list_subscribed_special_use() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    assert!(ok(&client.command("UNSUBSCRIBE Junk").await));
    // SUBSCRIBE to a missing name is refused (as Dovecot does, issue 9);
    // a subscription outlives its mailbox (RFC 3501 §6.3.4).
    let reply = client.command("SUBSCRIBE Gone").await;
    assert!(reply.contains(" NO [NONEXISTENT]"), "{reply}");
    assert!(ok(&client.command("CREATE Gone").await));
    assert!(ok(&client.command("SUBSCRIBE Gone").await));
    assert!(ok(&client.command("DELETE Gone").await));
    let reply = client
        .command("list (subscribed) \"\" \"*\" return (special-use)")
        .await;
    assert!(ok(&reply), "{reply}");
    assert!(
        reply.contains("* LIST (\\HasNoChildren \\Subscribed \\Sent) \"/\" \"Sent\"\r\n"),
        "{reply}"
    );
    assert!(
        reply.contains("* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX\r\n"),
        "{reply}"
    );
    assert!(!reply.contains("\"Junk\""), "unsubscribed: {reply}");
    assert!(
        reply.contains("* LIST (\\NonExistent \\Subscribed) \"/\" \"Gone\"\r\n"),
        "{reply}"
    );
    let reply = client.command("LIST (SPECIAL-USE) \"\" *").await;
    assert_eq!(reply.lines().count(), 6, "five special-use boxes: {reply}");
}

#[tokio::test]
async fn list_status_and_multiple_patterns() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    client.append("Sent", "\\Seen", MESSAGE).await;
    client.append("Sent", "", MESSAGE).await;
    let reply = client
        .command(
            "LIST \"\" (\"Sent\" INBOX) RETURN (CHILDREN STATUS (MESSAGES UNSEEN HIGHESTMODSEQ))",
        )
        .await;
    assert!(ok(&reply), "{reply}");
    let sent_list = reply
        .find("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n")
        .expect("Sent listed");
    let sent_status = reply
        .find("* STATUS \"Sent\" (MESSAGES 2 UNSEEN 1 HIGHESTMODSEQ ")
        .expect("Sent status");
    assert!(sent_status > sent_list, "STATUS follows its LIST line");
    assert!(
        reply.contains("* STATUS INBOX (MESSAGES 0 UNSEEN 0 "),
        "{reply}"
    );
    assert!(!reply.contains("Drafts"), "{reply}");
}

#[tokio::test]
async fn lsub() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    assert!(ok(&client.command("CREATE a/b").await));
    assert!(ok(&client.command("SUBSCRIBE a/b").await));
    let reply = client.command("LSUB \"\" \"*\"").await;
    assert!(reply.contains("* LSUB () \"/\" \"a/b\"\r\n"), "{reply}");
    assert!(reply.contains("* LSUB () \"/\" \"Sent\"\r\n"), "{reply}");
    let reply = client.command("LSUB \"\" \"%\"").await;
    assert!(
        reply.contains("* LSUB (\\Noselect) \"/\" \"a\"\r\n"),
        "{reply}"
    );
}

#[tokio::test]
async fn create_delete_rename() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    // Thunderbird creates Trash at start-up; it exists.
    let reply = client.command("create \"Trash\"").await;
    assert!(last_line(&reply).contains("NO [ALREADYEXISTS]"), "{reply}");
    let reply = client.command("CREATE inbox").await;
    assert!(last_line(&reply).contains("NO [ALREADYEXISTS]"), "{reply}");
    assert!(ok(&client.command("CREATE Projects/").await));
    assert!(ok(&client.command("CREATE \"Entw&APw-rfe\"").await));
    let reply = client.command("LIST \"\" \"Entw*\"").await;
    assert!(
        reply.contains("\"Entw&APw-rfe\""),
        "modified UTF-7 round trip: {reply}"
    );
    let names: Vec<String> = imap_support_names(&server).await;
    assert!(names.contains(&"Entwürfe".to_string()), "{names:?}");
    assert!(names.contains(&"Projects".to_string()), "{names:?}");

    assert!(ok(&client.command("RENAME Projects Work").await));
    let reply = client.command("RENAME Nope Other").await;
    assert!(last_line(&reply).contains("NO [NONEXISTENT]"), "{reply}");
    let reply = client.command("RENAME Work Sent").await;
    assert!(last_line(&reply).contains("NO [ALREADYEXISTS]"), "{reply}");
    assert!(ok(&client.command("DELETE Work").await));
    let reply = client.command("DELETE Work").await;
    assert!(last_line(&reply).contains("NO [NONEXISTENT]"), "{reply}");
    let reply = client.command("DELETE INBOX").await;
    assert!(last_line(&reply).contains("NO [CANNOT]"), "{reply}");
    let reply = client.command("CREATE \"bad&name\"").await;
    assert!(last_line(&reply).contains(" BAD "), "{reply}");
}

async fn imap_support_names(server: &imap_support::Server) -> Vec<String> {
    use imap_bridge::backend::MailStore;
    server
        .store
        .list_mailboxes()
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.name)
        .collect()
}

#[tokio::test]
async fn rename_keeps_the_selection() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    assert!(ok(&client.command("CREATE Old").await));
    client.append("Old", "", MESSAGE).await;
    client.select("Old").await;
    assert!(ok(&client.command("RENAME Old New").await));
    let reply = client.command("FETCH 1 (UID)").await;
    assert!(reply.starts_with("* 1 FETCH (UID 1)"), "{reply}");
    assert!(ok(&client.command("NOOP").await));
}

#[tokio::test]
async fn status_items() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    client.append("INBOX", "\\Seen \\Deleted", MESSAGE).await;
    client.append("INBOX", "", MESSAGE).await;
    let reply = client
        .command("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED HIGHESTMODSEQ)")
        .await;
    let line = reply.lines().next().expect("status line");
    assert!(
        line.starts_with("* STATUS INBOX (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY "),
        "{line}"
    );
    assert!(
        line.contains(" UNSEEN 1 DELETED 1 HIGHESTMODSEQ "),
        "{line}"
    );
    let reply = client.command("STATUS Nowhere (MESSAGES)").await;
    assert!(last_line(&reply).contains("NO [NONEXISTENT]"), "{reply}");
}

#[tokio::test]
async fn select_and_examine() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    client.append("INBOX", "\\Seen $Label1", MESSAGE).await;
    client.append("INBOX", "", MESSAGE).await;
    let reply = client.select("\"INBOX\"").await;
    for expected in [
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)\r\n",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)]",
        "* 2 EXISTS\r\n",
        // Appended, and no session was told of them before.
        "* 2 RECENT\r\n",
        "* OK [UNSEEN 2]",
        "* OK [UIDVALIDITY ",
        "* OK [UIDNEXT 3]",
        "* OK [HIGHESTMODSEQ ",
    ] {
        assert!(reply.contains(expected), "{expected} in {reply}");
    }
    assert!(last_line(&reply).contains("OK [READ-WRITE]"), "{reply}");

    let reply = client.command("EXAMINE INBOX").await;
    assert!(reply.starts_with("* OK [CLOSED]"), "{reply}");
    assert!(
        reply.contains("* 0 RECENT\r\n"),
        "SELECT claimed them: {reply}"
    );
    assert!(reply.contains("[PERMANENTFLAGS ()]"), "{reply}");
    assert!(last_line(&reply).contains("OK [READ-ONLY]"), "{reply}");
    // Read-only: no \Seen from BODY[], no STORE, no EXPUNGE.
    let reply = client.command("FETCH 2 BODY[]").await;
    assert!(!reply.contains("\\Seen"), "{reply}");
    let reply = client.command("STORE 1 +FLAGS (\\Flagged)").await;
    assert!(last_line(&reply).contains(" NO "), "{reply}");
    let reply = client.command("EXPUNGE").await;
    assert!(last_line(&reply).contains(" NO "), "{reply}");

    let reply = client.command("SELECT Nowhere").await;
    assert!(last_line(&reply).contains("NO [NONEXISTENT]"), "{reply}");
    let reply = client.command("FETCH 1 FLAGS").await;
    assert!(
        last_line(&reply).contains(" BAD "),
        "failed SELECT deselects: {reply}"
    );
}

#[tokio::test]
async fn close_expunges_unselect_does_not() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    client.append("INBOX", "\\Deleted", MESSAGE).await;
    client.append("INBOX", "\\Deleted", MESSAGE).await;
    client.select("INBOX").await;
    let reply = client.command("UNSELECT").await;
    assert_eq!(reply.lines().count(), 1, "{reply}");
    let reply = client.command("STATUS INBOX (MESSAGES)").await;
    assert!(reply.contains("MESSAGES 2"), "{reply}");
    client.select("INBOX").await;
    let reply = client.command("CLOSE").await;
    assert_eq!(reply.lines().count(), 1, "CLOSE sends no EXPUNGE: {reply}");
    let reply = client.command("STATUS INBOX (MESSAGES)").await;
    assert!(reply.contains("MESSAGES 0"), "{reply}");
    let reply = client.command("CLOSE").await;
    assert!(last_line(&reply).contains(" BAD "), "{reply}");
}
