//! Unit tests of the session state machine, fed raw command lines.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;

use super::SmtpConfig;
use super::session::{Action, MAX_RECIPIENTS, Response, Session};
use crate::backend::{Envelope, RecipientError, Submission, SubmitError, Submitted};
use crate::config::{BridgeCredentials, Secret};

const USER: &str = "alice@example.org";
const PASSWORD: &str = "correct horse";

/// Messages handed to the backend, with their envelopes.
type Log = Arc<Mutex<Vec<(Envelope, Vec<u8>)>>>;

#[derive(Clone, Default)]
struct Recorder {
    submitted: Log,
    refuse_submit: Option<SubmitError>,
}

impl Recorder {
    fn count(&self) -> usize {
        self.submitted.lock().expect("lock").len()
    }
}

impl Submission for Recorder {
    async fn check_recipient(&self, address: &str) -> Result<(), RecipientError> {
        match address {
            "bob@example.org" | "carol@example.org" => Ok(()),
            "busy@example.org" => Err(RecipientError::Temporary("try later".into())),
            "invalid@example.org" => Err(RecipientError::Invalid("not an address".into())),
            _ if address.starts_with("r") => Ok(()),
            _ => Err(RecipientError::Unknown(format!(
                "{address} is not a contact"
            ))),
        }
    }

    async fn submit(&self, envelope: Envelope, message: Vec<u8>) -> Result<Submitted, SubmitError> {
        if let Some(error) = &self.refuse_submit {
            return Err(error.clone());
        }
        let mut submitted = self.submitted.lock().expect("lock");
        submitted.push((envelope, message));
        Ok(Submitted {
            queue_id: format!("Q{}", submitted.len()),
        })
    }
}

fn config(tls: bool) -> Arc<SmtpConfig> {
    let tls = if tls {
        let (cert, key) = crate::tls::self_signed(&[]).expect("cert");
        Some(crate::tls::server_config(&cert, &key).expect("config"))
    } else {
        None
    };
    Arc::new(SmtpConfig {
        credentials: BridgeCredentials {
            username: USER.to_string(),
            password: Secret::new(PASSWORD),
        },
        hostname: "bridge.test".to_string(),
        max_message_size: 100,
        tls,
    })
}

fn session(recorder: &Recorder) -> Session<Recorder> {
    Session::new(config(false), recorder.clone())
}

async fn send(session: &mut Session<Recorder>, line: &str) -> Response {
    session.on_line(line.as_bytes()).await
}

async fn wire(session: &mut Session<Recorder>, line: &str) -> String {
    send(session, line).await.reply.to_wire()
}

fn plain_token(user: &str, password: &str) -> String {
    STANDARD.encode(format!("\0{user}\0{password}"))
}

async fn logged_in(recorder: &Recorder) -> Session<Recorder> {
    let mut session = session(recorder);
    send(&mut session, "EHLO client\r\n").await;
    let reply = wire(
        &mut session,
        &format!("AUTH PLAIN {}\r\n", plain_token(USER, PASSWORD)),
    )
    .await;
    assert_eq!(reply, "235 2.7.0 Authentication successful\r\n");
    session
}

#[tokio::test]
async fn greeting_and_ehlo_capabilities() {
    let recorder = Recorder::default();
    let mut session = session(&recorder);
    assert_eq!(
        session.greeting().to_wire(),
        "220 bridge.test ESMTP mailnode ready\r\n"
    );
    let ehlo = wire(&mut session, "ehlo client.example\r\n").await;
    assert_eq!(
        ehlo,
        "250-bridge.test Hello client.example\r\n250-PIPELINING\r\n250-SIZE 100\r\n\
         250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 AUTH PLAIN LOGIN\r\n"
    );
}

#[tokio::test]
async fn ehlo_offers_starttls_only_before_tls() {
    let recorder = Recorder::default();
    let mut session = Session::new(config(true), recorder.clone());
    assert!(
        wire(&mut session, "EHLO c\r\n")
            .await
            .ends_with("250 STARTTLS\r\n")
    );
    let response = send(&mut session, "STARTTLS\r\n").await;
    assert_eq!(response.reply.to_wire(), "220 2.0.0 Ready to start TLS\r\n");
    assert_eq!(response.action, Action::StartTls);
    session.tls_started();
    // RFC 3207 §4.2: the client must greet again.
    assert!(
        wire(&mut session, "MAIL FROM:<a@b>\r\n")
            .await
            .starts_with("503 5.5.1")
    );
    let ehlo = wire(&mut session, "EHLO c\r\n").await;
    assert!(!ehlo.contains("STARTTLS"));
    assert!(
        wire(&mut session, "STARTTLS\r\n")
            .await
            .starts_with("503 5.5.1")
    );
}

#[tokio::test]
async fn starttls_without_configuration_is_refused() {
    let recorder = Recorder::default();
    let mut session = session(&recorder);
    let response = send(&mut session, "STARTTLS\r\n").await;
    assert_eq!(response.reply.to_wire(), "454 4.7.0 TLS not available\r\n");
    assert_eq!(response.action, Action::Continue);
}

#[tokio::test]
async fn mail_requires_ehlo_then_auth() {
    let recorder = Recorder::default();
    let mut session = session(&recorder);
    assert!(
        wire(&mut session, "MAIL FROM:<a@b>\r\n")
            .await
            .starts_with("503 5.5.1")
    );
    send(&mut session, "HELO client\r\n").await;
    assert_eq!(
        wire(&mut session, "MAIL FROM:<a@b>\r\n").await,
        "530 5.7.0 Authentication required\r\n"
    );
}

#[tokio::test]
async fn auth_login_exchange() {
    let recorder = Recorder::default();
    let mut session = session(&recorder);
    send(&mut session, "EHLO c\r\n").await;
    assert_eq!(
        wire(&mut session, "AUTH LOGIN\r\n").await,
        "334 VXNlcm5hbWU6\r\n"
    );
    assert_eq!(
        wire(&mut session, &format!("{}\r\n", STANDARD.encode(USER))).await,
        "334 UGFzc3dvcmQ6\r\n"
    );
    assert_eq!(
        wire(&mut session, &format!("{}\r\n", STANDARD.encode(PASSWORD))).await,
        "235 2.7.0 Authentication successful\r\n"
    );
    assert!(
        wire(&mut session, "AUTH LOGIN\r\n")
            .await
            .starts_with("503 5.5.1")
    );
}

#[tokio::test]
async fn auth_plain_continuation_and_cancel() {
    let recorder = Recorder::default();
    let mut session = session(&recorder);
    send(&mut session, "EHLO c\r\n").await;
    assert_eq!(wire(&mut session, "AUTH PLAIN\r\n").await, "334 \r\n");
    assert_eq!(
        wire(&mut session, "*\r\n").await,
        "501 5.7.0 Authentication cancelled\r\n"
    );
    // The session is back in command mode.
    assert_eq!(wire(&mut session, "NOOP\r\n").await, "250 2.0.0 OK\r\n");
    assert_eq!(wire(&mut session, "AUTH PLAIN\r\n").await, "334 \r\n");
    assert_eq!(
        wire(
            &mut session,
            &format!("{}\r\n", plain_token(USER, PASSWORD))
        )
        .await,
        "235 2.7.0 Authentication successful\r\n"
    );
}

#[tokio::test]
async fn user_name_is_case_insensitive() {
    let recorder = Recorder::default();
    let mut session = session(&recorder);
    send(&mut session, "EHLO c\r\n").await;
    let line = format!(
        "AUTH PLAIN {}\r\n",
        plain_token("Alice@Example.ORG", PASSWORD)
    );
    assert!(wire(&mut session, &line).await.starts_with("235 "));
}

#[tokio::test]
async fn wrong_password_three_times_closes() {
    let recorder = Recorder::default();
    let mut session = session(&recorder);
    send(&mut session, "EHLO c\r\n").await;
    let bad = format!("AUTH PLAIN {}\r\n", plain_token(USER, "wrong"));
    for _ in 1..super::MAX_AUTH_FAILURES {
        let response = send(&mut session, &bad).await;
        assert_eq!(
            response.reply.to_wire(),
            "535 5.7.8 Authentication credentials invalid\r\n"
        );
        assert_eq!(response.action, Action::Continue);
    }
    let response = send(&mut session, &bad).await;
    assert_eq!(response.reply.code, 421);
    assert_eq!(response.action, Action::Close);
}

#[tokio::test]
async fn unknown_mechanism_and_garbage() {
    let recorder = Recorder::default();
    let mut session = session(&recorder);
    send(&mut session, "EHLO c\r\n").await;
    assert!(
        wire(&mut session, "AUTH CRAM-MD5\r\n")
            .await
            .starts_with("504 5.5.4")
    );
    assert!(
        wire(&mut session, "AUTH PLAIN %%%\r\n")
            .await
            .starts_with("501 5.5.2")
    );
    assert_eq!(
        wire(&mut session, "FOOBAR baz\r\n").await,
        "500 5.5.2 Command not recognized\r\n"
    );
    assert!(wire(&mut session, "\r\n").await.starts_with("500 5.5.2"));
    assert!(
        wire(&mut session, "EHLO\r\n")
            .await
            .starts_with("501 5.5.4")
    );
    assert!(
        wire(&mut session, "\u{0}\u{ff}\r\n")
            .await
            .starts_with("500 ")
    );
}

#[tokio::test]
async fn full_transaction_is_submitted() {
    let recorder = Recorder::default();
    let mut session = logged_in(&recorder).await;
    assert_eq!(
        wire(
            &mut session,
            "MAIL FROM:<alice@example.org> SIZE=50 BODY=8BITMIME\r\n"
        )
        .await,
        "250 2.1.0 OK\r\n"
    );
    assert_eq!(
        wire(&mut session, "RCPT TO:<bob@example.org>\r\n").await,
        "250 2.1.5 OK\r\n"
    );
    assert_eq!(
        wire(&mut session, "rcpt to:<nobody@example.org>\r\n").await,
        "550 5.1.1 nobody@example.org is not a contact\r\n"
    );
    assert_eq!(
        wire(&mut session, "RCPT TO:<carol@example.org>\r\n").await,
        "250 2.1.5 OK\r\n"
    );
    assert_eq!(
        wire(&mut session, "DATA\r\n").await,
        "354 Start mail input; end with <CRLF>.<CRLF>\r\n"
    );
    assert!(session.in_data());
    let mut input = BytesMut::from(&b"Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n"[..]);
    let response = session.on_data(&mut input).await.expect("complete");
    assert_eq!(response.reply.to_wire(), "250 2.0.0 OK queued as Q1\r\n");
    assert_eq!(&input[..], b"QUIT\r\n");
    let submitted = recorder.submitted.lock().expect("lock").clone();
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].0.from, "alice@example.org");
    assert_eq!(
        submitted[0].0.recipients,
        vec![
            "bob@example.org".to_string(),
            "carol@example.org".to_string()
        ]
    );
    assert_eq!(submitted[0].1, b"Subject: hi\r\n\r\n.dot\r\n");
    // The transaction is over: a new one needs MAIL again.
    assert!(
        wire(&mut session, "RCPT TO:<bob@example.org>\r\n")
            .await
            .starts_with("503 5.5.1")
    );
}

#[tokio::test]
async fn recipient_errors_map_to_codes() {
    let recorder = Recorder::default();
    let mut session = logged_in(&recorder).await;
    send(&mut session, "MAIL FROM:<>\r\n").await;
    assert_eq!(
        wire(&mut session, "RCPT TO:<busy@example.org>\r\n").await,
        "451 4.3.0 try later\r\n"
    );
    assert_eq!(
        wire(&mut session, "RCPT TO:<invalid@example.org>\r\n").await,
        "553 5.1.3 not an address\r\n"
    );
    assert!(
        wire(&mut session, "RCPT TO:bob\r\n")
            .await
            .starts_with("501 ")
    );
}

#[tokio::test]
async fn data_without_recipients_and_sequence_errors() {
    let recorder = Recorder::default();
    let mut session = logged_in(&recorder).await;
    assert!(
        wire(&mut session, "DATA\r\n")
            .await
            .starts_with("503 5.5.1")
    );
    assert!(
        wire(&mut session, "RCPT TO:<bob@example.org>\r\n")
            .await
            .starts_with("503 5.5.1")
    );
    send(&mut session, "MAIL FROM:<alice@example.org>\r\n").await;
    assert!(
        wire(&mut session, "MAIL FROM:<alice@example.org>\r\n")
            .await
            .starts_with("503 5.5.1")
    );
    assert_eq!(
        wire(&mut session, "DATA\r\n").await,
        "554 5.5.1 No valid recipients\r\n"
    );
    assert!(!session.in_data());
    assert_eq!(wire(&mut session, "RSET\r\n").await, "250 2.0.0 OK\r\n");
    assert!(
        wire(&mut session, "MAIL FROM:<alice@example.org>\r\n")
            .await
            .starts_with("250 ")
    );
}

#[tokio::test]
async fn declared_size_over_the_limit_is_refused() {
    let recorder = Recorder::default();
    let mut session = logged_in(&recorder).await;
    assert_eq!(
        wire(&mut session, "MAIL FROM:<alice@example.org> SIZE=101\r\n").await,
        "552 5.3.4 Message exceeds the maximum size of 100 bytes\r\n"
    );
}

#[tokio::test]
async fn unsupported_mail_parameters_are_refused() {
    let recorder = Recorder::default();
    let mut session = logged_in(&recorder).await;
    assert!(
        wire(&mut session, "MAIL FROM:<a@b> BODY=BINARYMIME\r\n")
            .await
            .starts_with("555 5.5.4")
    );
    assert!(
        wire(&mut session, "MAIL FROM:<a@b> RET=FULL\r\n")
            .await
            .starts_with("555 5.5.4")
    );
    assert!(
        wire(&mut session, "MAIL FROM:<a@b> SMTPUTF8\r\n")
            .await
            .starts_with("250 ")
    );
}

#[tokio::test]
async fn oversized_data_is_not_submitted() {
    let recorder = Recorder::default();
    let mut session = logged_in(&recorder).await;
    send(&mut session, "MAIL FROM:<alice@example.org>\r\n").await;
    send(&mut session, "RCPT TO:<bob@example.org>\r\n").await;
    send(&mut session, "DATA\r\n").await;
    let mut input = BytesMut::new();
    for _ in 0..20 {
        input.extend_from_slice(b"0123456789\r\n");
    }
    input.extend_from_slice(b".\r\n");
    let response = session.on_data(&mut input).await.expect("complete");
    assert_eq!(
        response.reply.to_wire(),
        "552 5.3.4 Message exceeds the maximum size of 100 bytes\r\n"
    );
    assert_eq!(recorder.count(), 0);
}

#[tokio::test]
async fn submit_errors_map_to_codes() {
    let cases = [
        (
            SubmitError::Rejected("broken MIME".into()),
            "554 5.6.0 broken MIME\r\n",
        ),
        (
            SubmitError::TooLarge("too big".into()),
            "552 5.3.4 too big\r\n",
        ),
        (
            SubmitError::Temporary("disk full".into()),
            "451 4.3.0 disk full\r\n",
        ),
    ];
    for (error, expected) in cases {
        let recorder = Recorder {
            refuse_submit: Some(error),
            ..Recorder::default()
        };
        let mut session = logged_in(&recorder).await;
        send(&mut session, "MAIL FROM:<alice@example.org>\r\n").await;
        send(&mut session, "RCPT TO:<bob@example.org>\r\n").await;
        send(&mut session, "DATA\r\n").await;
        let mut input = BytesMut::from(&b"x\r\n.\r\n"[..]);
        let response = session.on_data(&mut input).await.expect("complete");
        assert_eq!(response.reply.to_wire(), expected);
    }
}

#[tokio::test]
async fn recipient_limit_and_duplicates() {
    let recorder = Recorder::default();
    let mut session = logged_in(&recorder).await;
    send(&mut session, "MAIL FROM:<alice@example.org>\r\n").await;
    for index in 0..MAX_RECIPIENTS {
        let line = format!("RCPT TO:<r{index}@example.org>\r\n");
        assert!(
            wire(&mut session, &line).await.starts_with("250 "),
            "{line}"
        );
    }
    // A repeat is accepted without counting twice.
    assert!(
        wire(&mut session, "RCPT TO:<R0@example.org>\r\n")
            .await
            .starts_with("250 ")
    );
    assert_eq!(
        wire(&mut session, "RCPT TO:<bob@example.org>\r\n").await,
        "452 4.5.3 Too many recipients\r\n"
    );
}

#[tokio::test]
async fn misc_commands() {
    let recorder = Recorder::default();
    let mut session = session(&recorder);
    assert!(
        wire(&mut session, "VRFY bob\r\n")
            .await
            .starts_with("252 2.5.0")
    );
    assert!(
        wire(&mut session, "EXPN list\r\n")
            .await
            .starts_with("502 5.5.1")
    );
    assert!(
        wire(&mut session, "NoOp\r\n")
            .await
            .starts_with("250 2.0.0")
    );
    let quit = send(&mut session, "QUIT\r\n").await;
    assert!(quit.reply.to_wire().starts_with("221 2.0.0"));
    assert_eq!(quit.action, Action::Close);
}

#[tokio::test]
async fn overlong_line_in_auth_ends_the_exchange() {
    let recorder = Recorder::default();
    let mut session = session(&recorder);
    send(&mut session, "EHLO c\r\n").await;
    send(&mut session, "AUTH PLAIN\r\n").await;
    assert!(
        session
            .on_line_too_long()
            .reply
            .to_wire()
            .starts_with("501 ")
    );
    assert_eq!(wire(&mut session, "NOOP\r\n").await, "250 2.0.0 OK\r\n");
    assert!(
        session
            .on_line_too_long()
            .reply
            .to_wire()
            .starts_with("500 5.5.6")
    );
}
