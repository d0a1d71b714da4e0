//! Whole bridge sessions over loopback TCP, for the parts of the bridge that
//! are not public: the IMAP fragmentizer, session state machine, command
//! modules and LIST-EXTENDED parser, and the SMTP session with its MAIL and
//! RCPT parameter checks and SASL exchanges.
//!
//! Each input is one client connection: a fresh server (IMAP over a
//! [`MemoryStore`] holding the [`crate::samples`], or SMTP over
//! [`FuzzSubmission`]) is started on `127.0.0.1:0`, the input is written and
//! the write side closed, and everything the server says is read until it
//! closes. A session that has not ended [`SESSION_DEADLINE`] after the
//! client closed is a hang and fails the target, as does any panic in a
//! server task (libFuzzer's panic hook aborts the process).
//!
//! The first input byte picks a prelude so that the fuzzer starts from
//! states it would rarely reach by guessing the password: see
//! [`imap_session`] and [`smtp_session`].

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use imap_bridge::backend::{Envelope, RecipientError, Submission, SubmitError, Submitted};
use imap_bridge::imap::ImapConfig;
use imap_bridge::memory::MemoryStore;
use imap_bridge::smtp::SmtpConfig;
use imap_bridge::{BridgeCredentials, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// How long a session may go on after the client closed its side.
pub const SESSION_DEADLINE: Duration = Duration::from_secs(30);

/// The account the servers accept.
pub const USERNAME: &str = "fuzz@example.org";
/// Its password.
pub const PASSWORD: &str = "fuzz-password";
/// `AUTH PLAIN` initial response for [`USERNAME`] / [`PASSWORD`].
const PLAIN_RESPONSE: &str = "AGZ1enpAZXhhbXBsZS5vcmcAZnV6ei1wYXNzd29yZA==";

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the loopback harness")
    })
}

fn credentials() -> BridgeCredentials {
    BridgeCredentials {
        username: USERNAME.to_string(),
        password: Secret::new(PASSWORD),
    }
}

/// Writes `input`, closes the write side, and reads until the server
/// closes; both directions at once, so a server writing a large answer
/// never blocks against a client that is still writing.
async fn converse(addr: SocketAddr, input: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect(addr)
        .await
        .expect("connecting to the loopback server");
    let (mut reader, mut writer) = stream.into_split();
    let write = async move {
        // The server may close first (LOGOUT, QUIT, too many errors): a
        // failed write is part of the conversation, not an error.
        let _ = writer.write_all(input).await;
        let _ = writer.shutdown().await;
    };
    let read = async move {
        let mut output = Vec::new();
        let _ = reader.read_to_end(&mut output).await;
        output
    };
    let ((), output) = tokio::join!(write, read);
    output
}

/// Runs one conversation against a server started by `start`, then shuts
/// the server down. Panics if either does not finish in time.
fn run_session<F, Fut>(input: &[u8], start: F) -> Vec<u8>
where
    F: FnOnce(TcpListener, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let addr = listener.local_addr().expect("the loopback address");
        let (shutdown, watch) = watch::channel(false);
        let server = tokio::spawn(start(listener, watch));
        let output = tokio::time::timeout(SESSION_DEADLINE, converse(addr, input))
            .await
            .unwrap_or_else(|_| {
                panic!("the session did not end within {SESSION_DEADLINE:?} of the client closing")
            });
        let _ = shutdown.send(true);
        match tokio::time::timeout(SESSION_DEADLINE, server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => panic!("the server failed: {error}"),
            Ok(Err(join)) => panic!("the server task failed: {join}"),
            Err(_) => panic!("the server did not stop after shutdown"),
        }
        output
    })
}

/// Checks what every server reply stream must satisfy when no TLS or
/// compression layer changed the bytes: it is whole CRLF lines.
fn assert_crlf_lines(input: &[u8], output: &[u8], protocol: &str) {
    let upper = input.to_ascii_uppercase();
    let layered = [&b"COMPRESS"[..], b"STARTTLS"]
        .iter()
        .any(|word| upper.windows(word.len()).any(|w| w == *word));
    if layered || output.is_empty() {
        return;
    }
    assert!(
        output.ends_with(b"\r\n"),
        "{protocol} output does not end with CRLF: {:?}",
        String::from_utf8_lossy(&output[output.len().saturating_sub(200)..])
    );
}

/// Target `imap_session`. The first byte picks the prelude (modulo 4):
/// 0 none, 1 LOGIN, 2 LOGIN and SELECT INBOX, 3 LOGIN, ENABLE QRESYNC and
/// SELECT INBOX with CONDSTORE. The rest is what the client sends.
pub fn imap_session(data: &[u8]) {
    let _ = imap_transcript(data);
}

/// What the IMAP server answered to the conversation [`imap_session`] has
/// with it (empty for empty input).
pub fn imap_transcript(data: &[u8]) -> Vec<u8> {
    let Some((&mode, client)) = data.split_first() else {
        return Vec::new();
    };
    let mut input = Vec::with_capacity(client.len() + 128);
    let login = format!("P0 LOGIN {USERNAME} {PASSWORD}\r\n");
    match mode % 4 {
        0 => {}
        1 => input.extend_from_slice(login.as_bytes()),
        2 => {
            input.extend_from_slice(login.as_bytes());
            input.extend_from_slice(b"P1 SELECT INBOX\r\n");
        }
        _ => {
            input.extend_from_slice(login.as_bytes());
            input.extend_from_slice(b"P1 ENABLE QRESYNC\r\nP2 SELECT INBOX (CONDSTORE)\r\n");
        }
    }
    input.extend_from_slice(client);
    let store = MemoryStore::new();
    for sample in crate::samples::ALL {
        store
            .deliver("INBOX", sample)
            .expect("filing a sample in the memory store");
    }
    store
        .deliver("Sent", crate::samples::PLAIN)
        .expect("filing a sample in Sent");
    let config = Arc::new(ImapConfig {
        credentials: credentials(),
        max_literal: 1 << 20,
        tls: None,
    });
    let output = run_session(&input, move |listener, watch| {
        imap_bridge::imap::serve(listener, config, store, watch)
    });
    assert!(
        output.starts_with(b"* OK") || output.starts_with(b"* PREAUTH"),
        "no IMAP greeting: {:?}",
        String::from_utf8_lossy(&output[..output.len().min(200)])
    );
    assert_crlf_lines(&input, &output, "IMAP");
    output
}

/// The submission path of the SMTP harness: accepts recipients at
/// example.org, refuses others, and rejects or defers some messages so
/// that every reply path of the session is reachable.
#[derive(Debug, Clone, Default)]
pub struct FuzzSubmission;

impl Submission for FuzzSubmission {
    async fn check_recipient(&self, address: &str) -> Result<(), RecipientError> {
        if address.contains("temp") {
            Err(RecipientError::Temporary("try later".into()))
        } else if !address.contains('@') {
            Err(RecipientError::Invalid("not an address".into()))
        } else if address.ends_with("@example.org") {
            Ok(())
        } else {
            Err(RecipientError::Unknown("not a contact".into()))
        }
    }

    async fn submit(&self, envelope: Envelope, message: Vec<u8>) -> Result<Submitted, SubmitError> {
        assert!(
            !envelope.recipients.is_empty(),
            "a submission without recipients"
        );
        if message.windows(6).any(|w| w == b"REJECT") {
            Err(SubmitError::Rejected("rejected".into()))
        } else if message.windows(5).any(|w| w == b"LATER") {
            Err(SubmitError::Temporary("later".into()))
        } else {
            Ok(Submitted {
                queue_id: format!("q{}", message.len()),
            })
        }
    }
}

/// Target `smtp_session`. The first byte picks the prelude (modulo 2):
/// 0 none, 1 `EHLO` and `AUTH PLAIN`. The rest is what the client sends.
pub fn smtp_session(data: &[u8]) {
    let _ = smtp_transcript(data);
}

/// What the SMTP server answered to the conversation [`smtp_session`] has
/// with it (empty for empty input).
pub fn smtp_transcript(data: &[u8]) -> Vec<u8> {
    let Some((&mode, client)) = data.split_first() else {
        return Vec::new();
    };
    let mut input = Vec::with_capacity(client.len() + 96);
    if mode % 2 == 1 {
        input.extend_from_slice(format!("EHLO fuzz\r\nAUTH PLAIN {PLAIN_RESPONSE}\r\n").as_bytes());
    }
    input.extend_from_slice(client);
    let config = Arc::new(SmtpConfig {
        credentials: credentials(),
        hostname: "localhost".to_string(),
        max_message_size: 64 * 1024,
        tls: None,
    });
    let output = run_session(&input, move |listener, watch| {
        imap_bridge::smtp::serve(listener, config, FuzzSubmission, watch)
    });
    assert!(
        output.starts_with(b"220 "),
        "no SMTP greeting: {:?}",
        String::from_utf8_lossy(&output[..output.len().min(200)])
    );
    assert_crlf_lines(&input, &output, "SMTP");
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(output: &[u8]) -> String {
        String::from_utf8_lossy(output).into_owned()
    }

    #[test]
    fn imap_prelude_logs_in_and_selects_so_commands_reach_the_store() {
        let output = imap_transcript(
            b"\x02a FETCH 2 (BODYSTRUCTURE)\r\nb UID SEARCH TEXT digest\r\nc LOGOUT\r\n",
        );
        let output = text(&output);
        assert!(output.contains("P0 OK"), "{output}");
        assert!(output.contains("P1 OK"), "{output}");
        assert!(output.contains("* 2 FETCH (BODYSTRUCTURE ("), "{output}");
        assert!(output.contains("* SEARCH 2"), "{output}");
        assert!(output.contains("c OK"), "{output}");
    }

    #[test]
    fn imap_session_ends_when_the_client_closes_mid_literal_and_in_idle() {
        let output = text(&imap_transcript(b"\x01a APPEND INBOX {100}\r\nabc"));
        assert!(output.contains("+ "), "{output}");
        let output = text(&imap_transcript(b"\x02a IDLE\r\n"));
        assert!(
            output.contains("+ idling") || output.contains("+ "),
            "{output}"
        );
    }

    #[test]
    fn imap_without_prelude_is_not_authenticated() {
        let output = text(&imap_transcript(b"\x00a SELECT INBOX\r\n"));
        assert!(
            output.contains("a BAD") || output.contains("a NO"),
            "{output}"
        );
    }

    #[test]
    fn smtp_prelude_authenticates_so_a_message_is_submitted() {
        let output = smtp_transcript(
            b"\x01MAIL FROM:<fuzz@example.org>\r\nRCPT TO:<bob@example.org>\r\n\
RCPT TO:<eve@elsewhere.test>\r\nDATA\r\nSubject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n",
        );
        let output = text(&output);
        assert!(output.contains("235 "), "{output}");
        assert!(output.contains("550 "), "{output}");
        assert!(output.contains("354 "), "{output}");
        assert!(output.contains("221 "), "{output}");
        assert!(output.matches("250 ").count() >= 3, "{output}");
    }

    #[test]
    fn smtp_session_ends_when_the_client_closes_inside_data() {
        let output = text(&smtp_transcript(
            b"\x01MAIL FROM:<fuzz@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\npartial",
        ));
        assert!(output.contains("354 "), "{output}");
    }
}
