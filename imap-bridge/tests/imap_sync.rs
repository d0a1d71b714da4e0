//! Several sessions on one mailbox: IDLE pushes, EXPUNGE timing (RFC 3501
//! §7.4.1), CONDSTORE (CHANGEDSINCE, UNCHANGEDSINCE) and QRESYNC
//! resynchronisation after a reconnect (RFC 7162).

mod imap_support;

use std::time::Duration;

use imap_bridge::backend::{FlagOp, MailStore};
use imap_support::{Client, MESSAGE, last_line, ok, start};

/// IDLE must push within this time.
const PUSH: Duration = Duration::from_secs(1);

/// The number in `[NAME n]` of a reply.
fn code_value(reply: &str, name: &str) -> u64 {
    let start = reply.find(&format!("[{name} ")).expect(name) + name.len() + 2;
    let rest = &reply[start..];
    rest[..rest.find(']').expect("]")].parse().expect("number")
}

/// The number after `ITEM ` in a STATUS reply.
fn status_value(reply: &str, item: &str) -> u64 {
    let start = reply.find(&format!("{item} ")).expect(item) + item.len() + 1;
    reply[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("number")
}

async fn line_within(client: &mut Client, limit: Duration) -> String {
    tokio::time::timeout(limit, client.line())
        .await
        .expect("pushed in time")
}

#[tokio::test]
async fn idle_pushes_arrivals_flags_and_expunges() {
    let server = start().await;
    let mut watcher = Client::logged_in(server.addr).await;
    watcher.select("INBOX").await;
    watcher.send(b"idle IDLE\r\n").await;
    assert_eq!(watcher.line().await, "+ idling\r\n");

    // Delivery by the node.
    server
        .store
        .deliver("INBOX", MESSAGE.as_bytes())
        .expect("deliver");
    assert_eq!(line_within(&mut watcher, PUSH).await, "* 1 EXISTS\r\n");
    // The watcher is the first session told of it (RFC 3501 §2.3.2).
    assert_eq!(line_within(&mut watcher, PUSH).await, "* 1 RECENT\r\n");

    // Another client's flag change.
    let mut other = Client::logged_in(server.addr).await;
    other.select("INBOX").await;
    assert!(ok(&other.command("STORE 1 +FLAGS (\\Seen)").await));
    assert_eq!(
        line_within(&mut watcher, PUSH).await,
        "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))\r\n"
    );

    // Another client's expunge.
    assert!(ok(&other.command("STORE 1 +FLAGS (\\Deleted)").await));
    assert_eq!(
        line_within(&mut watcher, PUSH).await,
        "* 1 FETCH (UID 1 FLAGS (\\Deleted \\Seen \\Recent))\r\n"
    );
    assert!(ok(&other.command("EXPUNGE").await));
    assert_eq!(line_within(&mut watcher, PUSH).await, "* 1 EXPUNGE\r\n");

    // Changes to other mailboxes are not pushed.
    other.append("Sent", "", MESSAGE).await;
    watcher.send(b"DONE\r\n").await;
    assert_eq!(watcher.line().await, "idle OK IDLE terminated\r\n");
}

#[tokio::test]
async fn idle_other_than_done_is_bad() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    client.send(b"i IDLE\r\n").await;
    assert!(client.line().await.starts_with("+ "));
    client.send(b"NOOP\r\n").await;
    assert!(client.line().await.starts_with("i BAD"));
    assert!(ok(&client.command("NOOP").await));
}

#[tokio::test]
async fn expunge_is_held_back_during_fetch_store_search() {
    let server = start().await;
    let mut a = Client::logged_in(server.addr).await;
    a.append("INBOX", "", MESSAGE).await;
    a.append("INBOX", "", MESSAGE).await;
    Client::seen_before(server.addr, "INBOX").await;
    a.select("INBOX").await;

    let mut b = Client::logged_in(server.addr).await;
    b.select("INBOX").await;
    assert!(ok(&b.command("STORE 1 +FLAGS.SILENT (\\Deleted)").await));
    assert!(ok(&b.command("EXPUNGE").await));

    // RFC 3501 §7.4.1: no EXPUNGE during FETCH, STORE or SEARCH.
    let reply = a.command("FETCH 1:2 (UID)").await;
    assert!(!reply.contains("EXPUNGE"), "{reply}");
    assert!(
        reply.contains("* 2 FETCH (UID 2)"),
        "numbers unchanged: {reply}"
    );
    let reply = a.command("SEARCH ALL").await;
    assert!(reply.starts_with("* SEARCH 2\r\n"), "{reply}");
    let reply = a.command("STORE 2 +FLAGS (\\Flagged)").await;
    assert!(
        reply.starts_with("* 2 FETCH (FLAGS (\\Flagged))"),
        "{reply}"
    );
    // NOOP may announce it; afterwards the numbers shift.
    let reply = a.command("NOOP").await;
    assert!(reply.starts_with("* 1 EXPUNGE\r\n"), "{reply}");
    let reply = a.command("FETCH 1 (UID)").await;
    assert!(reply.starts_with("* 1 FETCH (UID 2)"), "{reply}");
}

#[tokio::test]
async fn uid_commands_may_announce_expunges() {
    let server = start().await;
    let mut a = Client::logged_in(server.addr).await;
    a.append("INBOX", "\\Deleted", MESSAGE).await;
    a.append("INBOX", "", MESSAGE).await;
    Client::seen_before(server.addr, "INBOX").await;
    a.select("INBOX").await;
    server.store.expunge("INBOX", None).await.expect("expunge");
    let reply = a.command("UID FETCH 1:* (FLAGS)").await;
    assert!(
        reply.starts_with("* 1 EXPUNGE\r\n* 1 FETCH (UID 2 FLAGS ())"),
        "{reply}"
    );
}

#[tokio::test]
async fn append_to_selected_mailbox_reports_exists() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    client.select("INBOX").await;
    let reply = client
        .command(&format!("APPEND INBOX {{{}+}}\r\n{MESSAGE}", MESSAGE.len()))
        .await;
    assert!(reply.starts_with("* 1 EXISTS\r\n"), "{reply}");
    assert!(ok(&reply));
}

#[tokio::test]
async fn condstore_changedsince_and_unchangedsince() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    client.append("INBOX", "", MESSAGE).await;
    client.append("INBOX", "", MESSAGE).await;
    Client::seen_before(server.addr, "INBOX").await;
    let reply = client.command("SELECT INBOX (CONDSTORE)").await;
    let since = code_value(&reply, "HIGHESTMODSEQ");

    server
        .store
        .store_flags("INBOX", &[2], FlagOp::Add, &["\\Answered".into()], None)
        .await
        .expect("flag");
    let reply = client
        .command(&format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {since})"))
        .await;
    let fetches: Vec<&str> = reply.lines().filter(|l| l.contains("FETCH (")).collect();
    assert_eq!(fetches.len(), 2, "one unsolicited, one answer: {reply}");
    assert!(
        fetches
            .iter()
            .all(|l| l.starts_with("* 2 FETCH") && l.contains("MODSEQ (")),
        "{reply}"
    );

    let reply = client.command("UID FETCH 2 (MODSEQ)").await;
    let current = reply
        .split("MODSEQ (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("modseq");
    let reply = client
        .command(&format!(
            "UID STORE 1,2 (UNCHANGEDSINCE {since}) +FLAGS (\\Flagged)"
        ))
        .await;
    assert!(last_line(&reply).contains("OK [MODIFIED 2]"), "{reply}");
    assert!(
        reply.contains("* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ ("),
        "{reply}"
    );
    let reply = client
        .command(&format!(
            "UID STORE 2 (UNCHANGEDSINCE {current}) +FLAGS (\\Flagged)"
        ))
        .await;
    assert!(ok(&reply) && !reply.contains("MODIFIED"), "{reply}");
}

/// The other two mod-sequence arguments allow 0 by RFC 7162's grammar: a
/// STORE with `UNCHANGEDSINCE 0` fails for every message (§3.1.3), and
/// `SEARCH MODSEQ 0` matches every message (§3.1.5).
#[tokio::test]
async fn unchangedsince_zero_and_search_modseq_zero() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    client.append("INBOX", "", MESSAGE).await;
    client.append("INBOX", "", MESSAGE).await;
    client.select("INBOX").await;
    let reply = client
        .command("UID STORE 1:2 (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)")
        .await;
    assert!(last_line(&reply).contains("OK [MODIFIED 1:2]"), "{reply}");
    assert!(!reply.contains("\\Flagged"), "{reply}");
    let reply = client.command("SEARCH MODSEQ 0").await;
    assert!(
        ok(&reply) && reply.starts_with("* SEARCH 1 2 (MODSEQ "),
        "{reply}"
    );
}

#[tokio::test]
async fn qresync_reconnect() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    for _ in 0..3 {
        client.append("INBOX", "", MESSAGE).await;
    }
    // Without ENABLE QRESYNC the parameter is an error (RFC 7162 §3.2.5).
    let reply = client.command("SELECT INBOX (QRESYNC (1 1))").await;
    assert!(last_line(&reply).contains(" BAD "), "{reply}");
    assert!(ok(&client.command("ENABLE QRESYNC").await));
    let reply = client.select("INBOX").await;
    let validity = code_value(&reply, "UIDVALIDITY");
    let modseq = code_value(&reply, "HIGHESTMODSEQ");
    assert!(ok(&client.command("LOGOUT").await));

    // While the client is away: UID 1 expunged, UID 2 flagged, UID 4 new.
    let store = &server.store;
    store
        .store_flags("INBOX", &[1], FlagOp::Add, &["\\Deleted".into()], None)
        .await
        .expect("flag");
    store.expunge("INBOX", None).await.expect("expunge");
    store
        .store_flags("INBOX", &[2], FlagOp::Add, &["\\Seen".into()], None)
        .await
        .expect("flag");
    store.deliver("INBOX", MESSAGE.as_bytes()).expect("deliver");

    let mut client = Client::logged_in(server.addr).await;
    assert!(ok(&client.command("ENABLE QRESYNC").await));
    let reply = client
        .command(&format!("SELECT INBOX (QRESYNC ({validity} {modseq} 1:3))"))
        .await;
    assert!(ok(&reply), "{reply}");
    assert!(reply.contains("* VANISHED (EARLIER) 1\r\n"), "{reply}");
    assert!(
        reply.contains("* 1 FETCH (UID 2 FLAGS (\\Seen) MODSEQ ("),
        "{reply}"
    );
    assert!(
        // New while the client was away: recent for it.
        reply.contains("* 3 FETCH (UID 4 FLAGS (\\Recent) MODSEQ ("),
        "{reply}"
    );
    assert!(!reply.contains("UID 3 "), "unchanged: {reply}");

    // A stale UIDVALIDITY gets a plain SELECT answer.
    let reply = client
        .command(&format!(
            "SELECT INBOX (QRESYNC ({} {modseq}))",
            validity + 100
        ))
        .await;
    assert!(reply.starts_with("* OK [CLOSED]"), "{reply}");
    assert!(!reply.contains("VANISHED"), "{reply}");

    // With QRESYNC on, expunges are VANISHED, and UID FETCH can ask for
    // VANISHED (EARLIER).
    store.expunge("INBOX", None).await.expect("noop expunge");
    store
        .store_flags("INBOX", &[4], FlagOp::Add, &["\\Deleted".into()], None)
        .await
        .expect("flag");
    let status = client.command("STATUS INBOX (HIGHESTMODSEQ)").await;
    let before = status_value(&status, "HIGHESTMODSEQ");
    store.expunge("INBOX", None).await.expect("expunge");
    let reply = client.command("NOOP").await;
    assert!(reply.contains("* VANISHED 4\r\n"), "{reply}");
    let reply = client
        .command(&format!(
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {before} VANISHED)"
        ))
        .await;
    assert!(reply.starts_with("* VANISHED (EARLIER) 4\r\n"), "{reply}");
}

/// Thunderbird with `use_condstore` asks `UID fetch 1:* (FLAGS)
/// (CHANGEDSINCE 0)` for a folder it never synchronised. RFC 7162's grammar
/// wants a non-zero value, but Dovecot answers it, and a `BAD` leaves
/// Thunderbird's folder without flags. Our imap-codec fork decodes the 0
/// (vendor/patches/imap-codec-changedsince-zero.patch).
#[tokio::test]
async fn thunderbird_changedsince_zero_returns_every_message() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    client.append("INBOX", "\\Seen", MESSAGE).await;
    client.append("INBOX", "", MESSAGE).await;
    Client::seen_before(server.addr, "INBOX").await;
    client.select("INBOX").await;
    let reply = client
        .command("UID fetch 1:* (FLAGS) (CHANGEDSINCE 0)")
        .await;
    assert!(ok(&reply), "{reply}");
    assert!(
        reply.contains("* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (")
            && reply.contains("* 2 FETCH (UID 2 FLAGS () MODSEQ ("),
        "{reply}"
    );
    // A real CHANGEDSINCE keeps its meaning afterwards.
    let modseq = reply
        .split("MODSEQ (")
        .filter_map(|rest| rest.split(')').next()?.parse::<u64>().ok())
        .max()
        .expect("modseq");
    let reply = client
        .command(&format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})"))
        .await;
    assert!(ok(&reply) && !reply.contains("FETCH ("), "{reply}");
}
