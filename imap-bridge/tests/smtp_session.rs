//! End-to-end tests of the SMTP submission server over real TCP, driven
//! with raw protocol lines.

mod smtp_support;

use smtp_support::{Client, KNOWN, MAX_SIZE, PASSWORD, STEP, USER, b64, plain_token, start};

#[tokio::test]
async fn happy_path_with_auth_plain() {
    let server = start(None).await;
    let (mut client, greeting) = Client::connect(server.addr).await;
    assert_eq!(greeting, "220 bridge.test ESMTP mailnode ready\r\n");

    let ehlo = client.command("EHLO client.test").await;
    for capability in [
        "PIPELINING",
        &format!("SIZE {MAX_SIZE}"),
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "AUTH PLAIN LOGIN",
    ] {
        assert!(
            ehlo.contains(capability),
            "{capability} missing from {ehlo}"
        );
    }
    assert!(!ehlo.contains("STARTTLS"), "no TLS configured: {ehlo}");

    let auth = client
        .command(&format!("AUTH PLAIN {}", plain_token(USER, PASSWORD)))
        .await;
    assert_eq!(auth, "235 2.7.0 Authentication successful\r\n");
    assert_eq!(
        client.command(&format!("MAIL FROM:<{USER}>")).await,
        "250 2.1.0 OK\r\n"
    );
    assert_eq!(
        client.command(&format!("RCPT TO:<{KNOWN}>")).await,
        "250 2.1.5 OK\r\n"
    );
    assert!(client.command("DATA").await.starts_with("354 "));
    client
        .send(b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHello Bob.\r\n.\r\n")
        .await;
    assert_eq!(client.reply().await, "250 2.0.0 OK queued as test-1\r\n");
    assert!(client.command("QUIT").await.starts_with("221 2.0.0"));
    assert_eq!(client.read_to_close().await, "");

    let messages = server.recorder.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].0.from, USER);
    assert_eq!(messages[0].0.recipients, vec![KNOWN.to_string()]);
    assert_eq!(
        messages[0].1,
        b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHello Bob.\r\n"
    );
}

#[tokio::test]
async fn happy_path_with_auth_login() {
    let server = start(None).await;
    let (mut client, _) = Client::connect(server.addr).await;
    client.command("EHLO client.test").await;
    assert_eq!(client.command("AUTH LOGIN").await, "334 VXNlcm5hbWU6\r\n");
    assert_eq!(client.command(&b64(USER)).await, "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(
        client.command(&b64(PASSWORD)).await,
        "235 2.7.0 Authentication successful\r\n"
    );
    client.command("MAIL FROM:<alice@example.org>").await;
    client.command("RCPT TO:<bob@example.org>").await;
    client.command("DATA").await;
    client.send(b"Subject: login\r\n\r\nbody\r\n.\r\n").await;
    assert!(client.reply().await.starts_with("250 2.0.0 OK queued as "));
    assert_eq!(server.recorder.messages().len(), 1);
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let server = start(None).await;
    let (mut client, _) = Client::connect(server.addr).await;
    client.login().await;
    // RFC 2920: the whole envelope and DATA in one write.
    client
        .send(
            b"MAIL FROM:<alice@example.org> BODY=8BITMIME\r\n\
              RCPT TO:<bob@example.org>\r\n\
              RCPT TO:<stranger@example.org>\r\n\
              DATA\r\n",
        )
        .await;
    assert_eq!(client.reply().await, "250 2.1.0 OK\r\n");
    assert_eq!(client.reply().await, "250 2.1.5 OK\r\n");
    assert!(
        client
            .reply()
            .await
            .starts_with("550 5.1.1 stranger@example.org")
    );
    assert!(client.reply().await.starts_with("354 "));
    // The message and the next transaction's commands in one write too.
    client
        .send(b"Subject: p\r\n\r\none\r\n.\r\nRSET\r\nNOOP\r\n")
        .await;
    assert_eq!(client.reply().await, "250 2.0.0 OK queued as test-1\r\n");
    assert_eq!(client.reply().await, "250 2.0.0 OK\r\n");
    assert_eq!(client.reply().await, "250 2.0.0 OK\r\n");
    let messages = server.recorder.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].0.recipients, vec![KNOWN.to_string()]);
}

#[tokio::test]
async fn data_is_dot_unstuffed_and_bare_lf_normalised() {
    let server = start(None).await;
    let (mut client, _) = Client::connect(server.addr).await;
    client.login().await;
    client.command("MAIL FROM:<alice@example.org>").await;
    client.command("RCPT TO:<bob@example.org>").await;
    client.command("DATA").await;
    // Sent in pieces so the end marker is split across reads.
    client
        .send(b"Subject: dots\r\n\r\n..starts with a dot\r\n")
        .await;
    client.send(b"...\nbare lf line\n.").await;
    client.send(b"\r\n").await;
    assert!(client.reply().await.starts_with("250 2.0.0"));
    let messages = server.recorder.messages();
    assert_eq!(
        messages[0].1,
        b"Subject: dots\r\n\r\n.starts with a dot\r\n..\r\nbare lf line\r\n"
    );
}

#[tokio::test]
async fn unknown_recipient_is_refused_with_550() {
    let server = start(None).await;
    let (mut client, _) = Client::connect(server.addr).await;
    client.login().await;
    client.command("MAIL FROM:<alice@example.org>").await;
    let reply = client.command("RCPT TO:<mallory@example.org>").await;
    assert_eq!(
        reply,
        "550 5.1.1 mallory@example.org is not in your address book; import their contact card first\r\n"
    );
    assert_eq!(
        client.command("DATA").await,
        "554 5.5.1 No valid recipients\r\n"
    );
    assert!(server.recorder.messages().is_empty());
}

#[tokio::test]
async fn wrong_password_gets_535_and_nothing_is_submitted() {
    let server = start(None).await;
    let (mut client, _) = Client::connect(server.addr).await;
    client.command("EHLO client.test").await;
    let reply = client
        .command(&format!("AUTH PLAIN {}", plain_token(USER, "guess")))
        .await;
    assert_eq!(reply, "535 5.7.8 Authentication credentials invalid\r\n");
    assert_eq!(
        client.command("MAIL FROM:<alice@example.org>").await,
        "530 5.7.0 Authentication required\r\n"
    );
    assert!(
        client
            .command("RCPT TO:<bob@example.org>")
            .await
            .starts_with("503 ")
    );
    assert!(client.command("DATA").await.starts_with("503 "));
    // Two more failures end the session.
    client
        .command(&format!("AUTH PLAIN {}", plain_token(USER, "guess2")))
        .await;
    let last = client
        .command(&format!("AUTH PLAIN {}", plain_token(USER, "guess3")))
        .await;
    assert!(last.starts_with("421 4.7.0"), "{last}");
    assert_eq!(client.read_to_close().await, "");
    assert!(server.recorder.messages().is_empty());
}

#[tokio::test]
async fn oversized_message_gets_552_and_nothing_is_submitted() {
    let server = start(None).await;
    let (mut client, _) = Client::connect(server.addr).await;
    client.login().await;
    let declared = client
        .command(&format!(
            "MAIL FROM:<alice@example.org> SIZE={}",
            MAX_SIZE + 1
        ))
        .await;
    assert!(declared.starts_with("552 5.3.4"), "{declared}");

    client.command("MAIL FROM:<alice@example.org>").await;
    client.command("RCPT TO:<bob@example.org>").await;
    client.command("DATA").await;
    let line = [b'x'; 78];
    for _ in 0..(MAX_SIZE / 80 + 10) {
        client.send(&line).await;
        client.send(b"\r\n").await;
    }
    client.send(b".\r\n").await;
    assert_eq!(
        client.reply().await,
        format!("552 5.3.4 Message exceeds the maximum size of {MAX_SIZE} bytes\r\n")
    );
    // The session goes on.
    assert_eq!(client.command("NOOP").await, "250 2.0.0 OK\r\n");
    assert!(server.recorder.messages().is_empty());
}

#[tokio::test]
async fn garbage_and_overlong_lines_get_500_and_the_session_continues() {
    let server = start(None).await;
    let (mut client, _) = Client::connect(server.addr).await;
    assert_eq!(
        client.command("XYZZY plugh").await,
        "500 5.5.2 Command not recognized\r\n"
    );
    client.send(&[0xff, 0xfe, 0x00, b'\r', b'\n']).await;
    assert!(client.reply().await.starts_with("500 5.5.2"));
    let long = "NOOP ".to_string() + &"a".repeat(5000);
    assert_eq!(client.command(&long).await, "500 5.5.6 Line too long\r\n");
    assert!(client.command("MAIL FROM:alice").await.starts_with("50"));
    assert!(client.command("EHLO").await.starts_with("501 5.5.4"));
    assert_eq!(client.command("noop").await, "250 2.0.0 OK\r\n");
}

#[tokio::test]
async fn data_before_rcpt_is_refused() {
    let server = start(None).await;
    let (mut client, _) = Client::connect(server.addr).await;
    client.login().await;
    assert_eq!(
        client.command("DATA").await,
        "503 5.5.1 Need MAIL command first\r\n"
    );
    client.command("MAIL FROM:<alice@example.org>").await;
    assert_eq!(
        client.command("DATA").await,
        "554 5.5.1 No valid recipients\r\n"
    );
    // Not in DATA mode: this is read as a command.
    assert_eq!(client.command("NOOP").await, "250 2.0.0 OK\r\n");
}

#[tokio::test]
async fn shutdown_closes_sessions_with_421() {
    let server = start(None).await;
    let (mut client, _) = Client::connect(server.addr).await;
    client.login().await;
    server.shutdown.send(true).expect("server still running");
    assert_eq!(
        client.read_to_close().await,
        "421 4.3.2 Service shutting down\r\n"
    );
    tokio::time::timeout(STEP, server.task)
        .await
        .expect("serve returns")
        .expect("task")
        .expect("serve ok");
}
