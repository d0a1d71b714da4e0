//! SORT, THREAD, ESEARCH and SEARCHRES over the wire against the memory
//! store (issue 9): the answers, and a precise BAD or NO for every kind
//! of bad input. The same commands against a real daemon and Dovecot are
//! in `tests/sort_thread.rs`.

mod imap_support;

use imap_support::{Client, last_line, ok, start};

fn message(subject: &str, from: &str, date: &str, id: &str, refs: &str) -> String {
    let refs = if refs.is_empty() {
        String::new()
    } else {
        format!("References: {refs}\r\n")
    };
    format!(
        "From: {from}\r\nTo: me@example.org\r\nSubject: {subject}\r\nDate: {date}\r\n\
         Message-ID: {id}\r\n{refs}\r\nbody\r\n"
    )
}

async fn seeded() -> (imap_support::Server, Client) {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    for m in [
        message(
            "Lunch",
            "Zed <zed@example.org>",
            "Tue, 3 Mar 2026 10:00:00 +0000",
            "<a@x>",
            "",
        ),
        message(
            "Re: [team] lunch",
            "amy@example.org",
            "Tue, 3 Mar 2026 09:00:00 +0000",
            "<b@x>",
            "<a@x>",
        ),
        message(
            "Budget",
            "Bob <bob@example.org>",
            "Mon, 2 Mar 2026 10:00:00 +0000",
            "<c@x>",
            "",
        ),
        message(
            "Re: Re: Lunch",
            "Carl <carl@example.org>",
            "Wed, 4 Mar 2026 10:00:00 +0000",
            "<d@x>",
            "<a@x> <b@x>",
        ),
    ] {
        client.append("INBOX", "", &m).await;
    }
    client.select("INBOX").await;
    (server, client)
}

#[tokio::test]
async fn capabilities_are_advertised() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    let reply = client.command("CAPABILITY").await;
    for cap in [
        " SORT ",
        " SORT=DISPLAY ",
        " THREAD=ORDEREDSUBJECT ",
        " THREAD=REFERENCES ",
        " ESEARCH ",
        " SEARCHRES ",
    ] {
        assert!(reply.contains(cap), "{cap}: {reply}");
    }
}

#[tokio::test]
async fn sort_and_thread_answers() {
    let (_server, mut client) = seeded().await;
    let reply = client.command("SORT (DATE) UTF-8 ALL").await;
    assert!(reply.starts_with("* SORT 3 2 1 4\r\n"), "{reply}");
    let reply = client
        .command("SORT (SUBJECT REVERSE DATE) UTF-8 ALL")
        .await;
    assert!(reply.starts_with("* SORT 3 4 1 2\r\n"), "{reply}");
    let reply = client.command("UID SORT (FROM) UTF-8 NOT FROM zed").await;
    assert!(reply.starts_with("* SORT 2 3 4\r\n"), "{reply}");
    let reply = client.command("THREAD REFERENCES UTF-8 ALL").await;
    assert!(reply.starts_with("* THREAD (3)(1 2 4)\r\n"), "{reply}");
    let reply = client.command("THREAD ORDEREDSUBJECT UTF-8 ALL").await;
    assert!(reply.starts_with("* THREAD (3)(2 (1)(4))\r\n"), "{reply}");
    let reply = client.command("SORT (SIZE) UTF-8 SUBJECT nothing").await;
    assert!(reply.starts_with("* SORT\r\n"), "{reply}");
    let reply = client
        .command("THREAD REFERENCES UTF-8 SUBJECT nothing")
        .await;
    assert!(reply.starts_with("* THREAD\r\n"), "{reply}");
}

#[tokio::test]
async fn esearch_and_searchres() {
    let (_server, mut client) = seeded().await;
    let reply = client
        .command("SEARCH RETURN (MIN MAX COUNT) SUBJECT lunch")
        .await;
    assert!(reply.contains("* ESEARCH (TAG \""), "{reply}");
    assert!(reply.contains(") MIN 1 MAX 4 COUNT 3\r\n"), "{reply}");
    let reply = client
        .command("UID SEARCH RETURN (SAVE) SUBJECT lunch")
        .await;
    assert!(!reply.contains("ESEARCH") && ok(&reply), "{reply}");
    let reply = client.command("FETCH $ (UID)").await;
    assert_eq!(reply.matches(" FETCH (UID ").count(), 3, "{reply}");
    let reply = client.command("SEARCH NOT $").await;
    assert!(reply.starts_with("* SEARCH 3\r\n"), "{reply}");
    // A failed SEARCH ... SAVE empties `$`; `$` then names nothing.
    let reply = client
        .command("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
        .await;
    assert!(last_line(&reply).contains("NO [BADCHARSET"), "{reply}");
    let reply = client.command("UID COPY $ Archive").await;
    assert!(ok(&reply) && !reply.contains("COPYUID"), "{reply}");
}

#[tokio::test]
async fn bad_input_gets_precise_answers() {
    let (_server, mut client) = seeded().await;
    for (command, expected) in [
        ("SORT (DATE) KOI8-R ALL", "NO [BADCHARSET (US-ASCII UTF-8)]"),
        ("THREAD REFS UTF-8 ALL", "BAD"),
        ("SORT (NAME) UTF-8 ALL", "BAD"),
        ("SORT () UTF-8 ALL", "BAD"),
        ("SORT (DATE) UTF-8", "BAD"),
        (
            "SEARCH RETURN (PARTIAL 1:10) ALL",
            "BAD Unknown RETURN option",
        ),
        ("SEARCH RETURN ALL", "BAD RETURN needs a list of options"),
        ("SEARCH RETURN (MIN", "BAD Unterminated RETURN options"),
        ("SEARCH RETURN (MIN) BOGUS", "BAD"),
        ("FETCH $$ (UID)", "BAD"),
    ] {
        let reply = client.command(command).await;
        let last = last_line(&reply);
        assert!(last.contains(&format!(" {expected}")), "{command}: {reply}");
    }
    // Still usable afterwards.
    assert!(ok(&client.command("SORT (ARRIVAL) US-ASCII ALL").await));
    client.command("UNSELECT").await;
    let reply = client.command("SORT (DATE) UTF-8 ALL").await;
    assert!(last_line(&reply).contains(" BAD "), "{reply}");
}
