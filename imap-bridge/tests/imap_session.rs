//! Connection-level behaviour of the IMAP server: greeting, capabilities,
//! LOGIN and AUTHENTICATE, bad input of every kind, ID/NAMESPACE/ENABLE,
//! COMPRESS, STARTTLS and shutdown.

mod imap_support;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use imap_bridge::tls::{self_signed, server_config};
use imap_support::{Client, MAX_LITERAL, PASSWORD, STEP, USER, last_line, ok, start, start_with};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

#[tokio::test]
async fn greeting_lists_capabilities() {
    let server = start().await;
    let (mut client, greeting) = Client::connect(server.addr).await;
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4rev1 "),
        "{greeting}"
    );
    for cap in [
        "AUTH=PLAIN",
        "SASL-IR",
        "LITERAL+",
        "IDLE",
        "UIDPLUS",
        "MOVE",
        "CONDSTORE",
        "QRESYNC",
        "SPECIAL-USE",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "COMPRESS=DEFLATE",
        "NAMESPACE",
        "ID",
        "ENABLE",
        "UNSELECT",
        "CHILDREN",
    ] {
        assert!(greeting.contains(cap), "{cap} in {greeting}");
    }
    assert!(!greeting.contains("STARTTLS"), "no TLS configured");
    assert!(!greeting.contains("LOGINDISABLED"));
    assert!(greeting.ends_with("mailnode ready\r\n"));

    let reply = client.command("CAPABILITY").await;
    assert!(reply.starts_with("* CAPABILITY IMAP4rev1 "), "{reply}");
    assert!(ok(&reply));
    assert!(ok(&client.command("NOOP").await));
    let reply = client.command("LOGOUT").await;
    assert!(reply.starts_with("* BYE "), "{reply}");
    assert!(ok(&reply));
    assert_eq!(client.until_closed().await, "");
}

#[tokio::test]
async fn login_right_and_wrong() {
    let server = start().await;
    let (mut client, _) = Client::connect(server.addr).await;
    let reply = client.command(&format!("LOGIN {USER} wrong")).await;
    assert!(
        last_line(&reply).contains("NO [AUTHENTICATIONFAILED]"),
        "{reply}"
    );
    // Nothing changed: still not authenticated.
    let reply = client.command("SELECT INBOX").await;
    assert!(last_line(&reply).contains(" BAD "), "{reply}");
    // User names compare case-insensitively; mixed-case command names.
    let reply = client
        .command(&format!("lOgIn \"{}\" \"{PASSWORD}\"", USER.to_uppercase()))
        .await;
    assert!(ok(&reply), "{reply}");
    assert!(reply.contains("[CAPABILITY IMAP4rev1"), "{reply}");
    let reply = client
        .command(&format!("LOGIN {USER} \"{PASSWORD}\""))
        .await;
    assert!(
        last_line(&reply).contains(" BAD "),
        "already logged in: {reply}"
    );
}

#[tokio::test]
async fn login_with_literals() {
    let server = start().await;
    let (mut client, _) = Client::connect(server.addr).await;
    client
        .send(format!("a1 LOGIN {{{}}}\r\n", USER.len()).as_bytes())
        .await;
    assert!(client.line().await.starts_with("+ "));
    client
        .send(format!("{USER} {{{}}}\r\n", PASSWORD.len()).as_bytes())
        .await;
    assert!(client.line().await.starts_with("+ "));
    client.send(format!("{PASSWORD}\r\n").as_bytes()).await;
    let reply = client.until_tagged("a1").await;
    assert!(ok(&reply), "{reply}");
}

#[tokio::test]
async fn too_many_failures_close_the_connection() {
    let server = start().await;
    let (mut client, _) = Client::connect(server.addr).await;
    for _ in 0..4 {
        let reply = client.command(&format!("LOGIN {USER} nope")).await;
        assert!(last_line(&reply).contains("AUTHENTICATIONFAILED"));
    }
    client
        .send(format!("x LOGIN {USER} nope\r\n").as_bytes())
        .await;
    let rest = client.until_closed().await;
    assert!(rest.contains("x NO [AUTHENTICATIONFAILED]"), "{rest}");
    assert!(rest.contains("* BYE"), "{rest}");
}

fn plain(user: &str, password: &str) -> String {
    STANDARD.encode(format!("\0{user}\0{password}"))
}

#[tokio::test]
async fn authenticate_plain_with_continuation() {
    let server = start().await;
    let (mut client, _) = Client::connect(server.addr).await;
    // Thunderbird: `authenticate PLAIN`, then waits for `+`.
    client.send(b"1 authenticate PLAIN\r\n").await;
    assert_eq!(client.line().await, "+ \r\n");
    client
        .send(format!("{}\r\n", plain(USER, "bad")).as_bytes())
        .await;
    let reply = client.until_tagged("1").await;
    assert!(
        last_line(&reply).contains("NO [AUTHENTICATIONFAILED]"),
        "{reply}"
    );

    client.send(b"2 AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(client.line().await, "+ \r\n");
    client.send(b"*\r\n").await;
    let reply = client.until_tagged("2").await;
    assert!(last_line(&reply).starts_with("2 BAD"), "cancel: {reply}");

    client.send(b"3 AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(client.line().await, "+ \r\n");
    client.send(b"not base64!\r\n").await;
    let reply = client.until_tagged("3").await;
    assert!(last_line(&reply).starts_with("3 BAD"), "{reply}");

    client.send(b"4 AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(client.line().await, "+ \r\n");
    client
        .send(format!("{}\r\n", plain(USER, PASSWORD)).as_bytes())
        .await;
    let reply = client.until_tagged("4").await;
    assert!(ok(&reply), "{reply}");
    assert!(ok(&client.command("SELECT INBOX").await));
}

#[tokio::test]
async fn authenticate_plain_initial_response_and_other_mechanisms() {
    let server = start().await;
    let (mut client, _) = Client::connect(server.addr).await;
    let reply = client.command("AUTHENTICATE CRAM-MD5").await;
    assert!(last_line(&reply).contains(" NO "), "{reply}");
    let reply = client
        .command(&format!("AUTHENTICATE PLAIN {}", plain(USER, PASSWORD)))
        .await;
    assert!(ok(&reply), "{reply}");
}

#[tokio::test]
async fn garbage_is_bad_and_the_session_survives() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    for (line, tag) in [
        (&b"\r\n"[..], "*"),
        (b"hello world\r\n", "hello"),
        (b"a1 FROBNICATE\r\n", "a1"),
        (b"a2 SELECT\r\n", "a2"),
        (b"a3 FETCH 1:* (FLAGS\r\n", "a3"),
        (b"a4 LIST (BOGUS) \"\" *\r\n", "a4"),
        (b"\xff\xfe\x00garbage\r\n", "*"),
        (b"a5 NOOP\n", "a5"),
    ] {
        client.send(line).await;
        let reply = client.line().await;
        assert!(
            reply.starts_with(&format!("{tag} BAD ")),
            "{line:?} -> {reply}"
        );
    }
    assert!(ok(&client.command("NOOP").await));
    let reply = client.command("SORT (DATE) UTF-8 ALL").await;
    assert!(last_line(&reply).contains(" BAD "), "{reply}");
}

#[tokio::test]
async fn oversized_literals_are_refused() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    // Synchronizing: refused before any byte is sent.
    client
        .send(format!("big APPEND INBOX {{{}}}\r\n", MAX_LITERAL + 1).as_bytes())
        .await;
    let reply = client.line().await;
    assert!(reply.starts_with("big NO [TOOBIG]"), "{reply}");
    // LITERAL+: the bytes come anyway and are discarded unread.
    let size = MAX_LITERAL as usize + 10;
    let mut command = format!("big2 APPEND INBOX {{{size}+}}\r\n").into_bytes();
    command.extend(std::iter::repeat_n(b'x', size));
    command.extend_from_slice(b"\r\n");
    client.send(&command).await;
    let reply = client.until_tagged("big2").await;
    assert!(last_line(&reply).starts_with("big2 NO [TOOBIG]"), "{reply}");
    assert!(ok(&client.command("NOOP").await), "session continues");
    let reply = client.command("STATUS INBOX (MESSAGES)").await;
    assert!(reply.contains("MESSAGES 0"), "nothing stored: {reply}");
}

#[tokio::test]
async fn overlong_line_is_bad() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    let mut line = b"long SEARCH TEXT ".to_vec();
    line.extend(std::iter::repeat_n(b'a', 70 * 1024));
    line.extend_from_slice(b"\r\n");
    client.send(&line).await;
    let reply = client.line().await;
    assert!(reply.starts_with("long BAD"), "{reply}");
    assert!(ok(&client.command("NOOP").await));
}

#[tokio::test]
async fn unterminated_literal_and_abrupt_close() {
    let server = start().await;
    {
        let mut client = Client::logged_in(server.addr).await;
        client.send(b"a APPEND INBOX {100}\r\n").await;
        assert!(client.line().await.starts_with("+ "));
        client.send(b"only a few bytes").await;
        // Dropped here: the server must just let go.
    }
    {
        let mut client = Client::logged_in(server.addr).await;
        client.send(b"a SELECT INBOX\r\n").await;
        // Closed without reading the answer.
    }
    let mut client = Client::logged_in(server.addr).await;
    let reply = client.command("STATUS INBOX (MESSAGES)").await;
    assert!(reply.contains("MESSAGES 0"), "{reply}");
}

#[tokio::test]
async fn id_namespace_enable() {
    let server = start().await;
    let (mut client, _) = Client::connect(server.addr).await;
    // ID works before login (RFC 2971).
    let reply = client
        .command("ID (\"name\" \"Thunderbird\" \"version\" \"140.0\")")
        .await;
    assert!(reply.starts_with("* ID (\"name\" \"mailnode\""), "{reply}");
    let mut client = Client::logged_in(server.addr).await;
    let reply = client.command("namespace").await;
    assert!(
        reply.starts_with("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"),
        "{reply}"
    );
    let reply = client.command("ENABLE QRESYNC CONDSTORE X-UNKNOWN").await;
    assert!(
        reply.starts_with("* ENABLED QRESYNC CONDSTORE\r\n"),
        "{reply}"
    );
    assert!(ok(&reply));
}

#[tokio::test]
async fn compress_deflate() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    let reply = client.command("COMPRESS DEFLATE").await;
    assert!(ok(&reply), "{reply}");
    client.start_deflate();
    let reply = client.command("LIST \"\" \"*\"").await;
    assert!(
        reply.contains("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\""),
        "{reply}"
    );
    let uid = client
        .append("INBOX", "\\Seen", imap_support::MESSAGE)
        .await;
    client.select("INBOX").await;
    let reply = client
        .command(&format!("UID FETCH {uid} BODY.PEEK[]"))
        .await;
    assert!(reply.contains("Shall we meet at noon?"), "{reply}");
    let reply = client.command("COMPRESS DEFLATE").await;
    assert!(
        last_line(&reply).contains("NO [COMPRESSIONACTIVE]"),
        "{reply}"
    );
    let reply = client.command("CAPABILITY").await;
    assert!(!reply.contains("COMPRESS=DEFLATE"), "{reply}");
}

fn client_config(cert_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert.expect("certificate")).expect("trust anchor");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

#[tokio::test]
async fn starttls_then_login() {
    let (cert, key) = self_signed(&[]).expect("certificate");
    let server = start_with(Some(server_config(&cert, &key).expect("tls config"))).await;
    let (mut client, greeting) = Client::connect(server.addr).await;
    assert!(greeting.contains("STARTTLS"), "{greeting}");
    let reply = client.command("STARTTLS").await;
    assert!(ok(&reply), "{reply}");
    let stream = client.into_inner();
    let connector = tokio_rustls::TlsConnector::from(client_config(&cert));
    let name = ServerName::try_from("localhost").expect("server name");
    let tls = tokio::time::timeout(STEP, connector.connect(name, stream))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let mut client = Client::new(Box::new(tls));
    let reply = client.command("CAPABILITY").await;
    assert!(!reply.contains("STARTTLS"), "{reply}");
    let reply = client.command("STARTTLS").await;
    assert!(last_line(&reply).contains(" BAD "), "{reply}");
    let reply = client
        .command(&format!("LOGIN {USER} \"{PASSWORD}\""))
        .await;
    assert!(ok(&reply), "{reply}");
}

#[tokio::test]
async fn starttls_drops_injected_plaintext() {
    let (cert, key) = self_signed(&[]).expect("certificate");
    let server = start_with(Some(server_config(&cert, &key).expect("tls config"))).await;
    let (mut client, _) = Client::connect(server.addr).await;
    // A man in the middle appends a command after STARTTLS in the clear.
    client
        .send(format!("s STARTTLS\r\ninj LOGIN {USER} \"{PASSWORD}\"\r\n").as_bytes())
        .await;
    let reply = client.until_tagged("s").await;
    assert!(ok(&reply), "{reply}");
    let stream = client.into_inner();
    let connector = tokio_rustls::TlsConnector::from(client_config(&cert));
    let name = ServerName::try_from("localhost").expect("server name");
    let tls = tokio::time::timeout(STEP, connector.connect(name, stream))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let mut client = Client::new(Box::new(tls));
    let reply = client.command("SELECT INBOX").await;
    assert!(
        last_line(&reply).contains(" BAD "),
        "not logged in: {reply}"
    );
}

#[tokio::test]
async fn starttls_without_tls_config_is_refused() {
    let server = start().await;
    let (mut client, _) = Client::connect(server.addr).await;
    let reply = client.command("STARTTLS").await;
    assert!(last_line(&reply).contains(" BAD "), "{reply}");
}

#[tokio::test]
async fn shutdown_says_bye() {
    let server = start().await;
    let mut idle = Client::logged_in(server.addr).await;
    idle.select("INBOX").await;
    idle.send(b"i IDLE\r\n").await;
    assert!(idle.line().await.starts_with("+ "));
    let mut waiting = Client::logged_in(server.addr).await;
    let addr = server.addr;
    server.stop().await;
    assert!(idle.until_closed().await.contains("* BYE"));
    assert!(waiting.until_closed().await.contains("* BYE"));
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[tokio::test]
async fn utf8_append_data_item_needs_enable() {
    let server = start().await;
    let mut client = Client::logged_in(server.addr).await;
    let message = "Subject: caf\u{e9}\r\n\r\nbody\r\n";
    let append = format!("APPEND INBOX UTF8 (~{{{}+}}\r\n{message})", message.len());
    // RFC 9755 §3: the UTF8 data item is only valid after ENABLE.
    let reply = client.command(&append).await;
    assert!(last_line(&reply).contains(" BAD "), "{reply}");
    let reply = client.command("STATUS INBOX (MESSAGES)").await;
    assert!(
        reply.starts_with("* STATUS INBOX (MESSAGES 0)"),
        "the refused APPEND stored nothing: {reply}"
    );
    assert!(ok(&client.command("ENABLE UTF8=ACCEPT").await));
    let reply = client.command(&append).await;
    assert!(last_line(&reply).contains("OK [APPENDUID "), "{reply}");
    client.select("INBOX").await;
    let reply = client.command("FETCH 1 BODY.PEEK[]").await;
    assert!(reply.contains(message), "stored as sent: {reply}");
}
