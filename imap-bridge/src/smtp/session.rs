//! The SMTP submission session state machine (RFC 5321 §4.1, RFC 6409,
//! RFC 4954 AUTH, RFC 3207 STARTTLS).
//!
//! The session owns what a connection has negotiated (greeting, TLS, AUTH)
//! and the mail transaction in progress. It takes one input unit at a time
//! (a command line, an AUTH response line, or DATA bytes) and answers with
//! exactly one reply plus what the connection driver must do next. It does
//! no socket I/O; it reaches the node only through [`Submission`].

use std::sync::Arc;

use bytes::BytesMut;
use smtp_proto::Request;

use super::SmtpConfig;
use super::auth::{self, Mechanism, Next, Pending};
use super::framing::{DataOutcome, DataReader};
use super::reply::{Refusal, Reply};
use crate::backend::{Envelope, RecipientError, Submission};

/// Most recipients accepted in one transaction (RFC 5321 §4.5.3.1.8 asks
/// for at least 100).
pub const MAX_RECIPIENTS: usize = 100;

/// Failed AUTH attempts after which the connection is closed.
pub const MAX_AUTH_FAILURES: u32 = 3;

/// What the connection driver does after sending a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep reading.
    Continue,
    /// Flush, throw away any input already buffered, and start the TLS
    /// handshake (RFC 3207 §4.2).
    StartTls,
    /// Flush and close the connection.
    Close,
}

/// The answer to one input unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The reply to send.
    pub reply: Reply,
    /// What to do after sending it.
    pub action: Action,
}

impl Response {
    fn reply(reply: Reply) -> Self {
        Response {
            reply,
            action: Action::Continue,
        }
    }

    fn refuse(refusal: Refusal) -> Self {
        let action = if refusal.closes_session() {
            Action::Close
        } else {
            Action::Continue
        };
        Response {
            reply: refusal.reply(),
            action,
        }
    }

    fn ok(text: &str) -> Self {
        Response::reply(Reply::new(250, "2.0.0", text))
    }
}

/// A mail transaction: from MAIL to the end of DATA (RFC 5321 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Transaction {
    from: String,
    recipients: Vec<String>,
}

/// What the next input line means.
#[derive(Debug)]
enum Phase {
    /// A command.
    Command,
    /// A SASL response in an unfinished AUTH exchange.
    Auth(Pending),
    /// Message content after `354`.
    Data(DataReader),
}

/// One SMTP session.
#[derive(Debug)]
pub struct Session<S> {
    config: Arc<SmtpConfig>,
    submission: S,
    tls_active: bool,
    /// EHLO or HELO was accepted (since the start or the TLS upgrade).
    greeted: bool,
    authenticated: bool,
    auth_failures: u32,
    transaction: Option<Transaction>,
    phase: Phase,
}

impl<S: Submission> Session<S> {
    /// A new session on a plain connection.
    pub fn new(config: Arc<SmtpConfig>, submission: S) -> Self {
        Session {
            config,
            submission,
            tls_active: false,
            greeted: false,
            authenticated: false,
            auth_failures: 0,
            transaction: None,
            phase: Phase::Command,
        }
    }

    /// The `220` greeting sent when the connection opens.
    pub fn greeting(&self) -> Reply {
        Reply::plain(
            220,
            format!("{} ESMTP mailnode ready", self.config.hostname),
        )
    }

    /// Whether the next input is message content (feed it to
    /// [`Session::on_data`]) rather than lines (feed them to
    /// [`Session::on_line`]).
    pub fn in_data(&self) -> bool {
        matches!(self.phase, Phase::Data(_))
    }

    /// Forgets everything learnt from the client after the TLS handshake,
    /// as RFC 3207 §4.2 requires: the client must EHLO (and AUTH) again.
    pub fn tls_started(&mut self) {
        self.tls_active = true;
        self.greeted = false;
        self.authenticated = false;
        self.transaction = None;
        self.phase = Phase::Command;
    }

    /// Answers a line that was too long to be read.
    pub fn on_line_too_long(&mut self) -> Response {
        if matches!(self.phase, Phase::Auth(_)) {
            // An over-long SASL response ends the exchange.
            self.phase = Phase::Command;
            return Response::refuse(Refusal::AuthMalformed("Authentication response too long"));
        }
        Response::refuse(Refusal::LineTooLong)
    }

    /// Answers one complete line (with its line ending).
    pub async fn on_line(&mut self, line: &[u8]) -> Response {
        match std::mem::replace(&mut self.phase, Phase::Command) {
            Phase::Auth(pending) => {
                let next = auth::respond(pending, line);
                self.auth_step(next)
            }
            Phase::Data(reader) => {
                // The driver feeds DATA through `on_data`; keep the state if
                // it is called here by mistake.
                self.phase = Phase::Data(reader);
                Response::refuse(Refusal::BadSequence("Message content expected"))
            }
            Phase::Command => match Request::parse(&mut line.iter()) {
                Ok(request) => self.on_request(request).await,
                Err(error) => Response::refuse(Refusal::from_parse(&error)),
            },
        }
    }

    /// Consumes DATA content from `input`. Returns the reply once the end
    /// marker was read (the message is then submitted), `None` while more
    /// input is needed.
    pub async fn on_data(&mut self, input: &mut BytesMut) -> Option<Response> {
        let Phase::Data(reader) = &mut self.phase else {
            return None;
        };
        let outcome = reader.feed(input)?;
        self.phase = Phase::Command;
        let Some(transaction) = self.transaction.take() else {
            // DATA is only entered with a transaction; answer anyway so the
            // client is never left waiting.
            return Some(Response::refuse(Refusal::BadSequence(
                "Need MAIL command first",
            )));
        };
        Some(match outcome {
            DataOutcome::TooLarge { seen } => {
                tracing::info!(size = seen, "refused a message over the size limit");
                Response::refuse(Refusal::MessageTooLarge(self.config.max_message_size))
            }
            DataOutcome::Complete(message) => {
                let envelope = Envelope {
                    from: transaction.from,
                    recipients: transaction.recipients,
                };
                let size = message.len();
                let recipients = envelope.recipients.len();
                match self.submission.submit(envelope, message).await {
                    Ok(submitted) => {
                        tracing::info!(
                            queue_id = %submitted.queue_id,
                            size,
                            recipients,
                            "message submitted"
                        );
                        Response::ok(&format!("OK queued as {}", submitted.queue_id))
                    }
                    Err(error) => {
                        tracing::info!(%error, "submission refused");
                        Response::refuse(Refusal::Submit(error))
                    }
                }
            }
        })
    }

    async fn on_request(&mut self, request: Request<std::borrow::Cow<'_, str>>) -> Response {
        tracing::debug!(command = request.name(), "smtp command");
        match request {
            Request::Ehlo { host } => self.ehlo(&host),
            Request::Helo { host } => {
                self.greeted = true;
                self.transaction = None;
                Response::reply(Reply::plain(
                    250,
                    format!("{} Hello {}", self.config.hostname, host),
                ))
            }
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, &initial_response),
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(&to.address).await,
            Request::Data => self.data(),
            Request::Rset => {
                self.transaction = None;
                Response::ok("OK")
            }
            Request::Noop { .. } => Response::ok("OK"),
            Request::Quit => Response {
                reply: Reply::new(
                    221,
                    "2.0.0",
                    format!("{} closing connection", self.config.hostname),
                ),
                action: Action::Close,
            },
            // RFC 5321 §3.5.3: 252 when we neither verify nor refuse.
            Request::Vrfy { .. } => Response::reply(Reply::new(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Request::Help { .. } => Response::reply(Reply::new(
                214,
                "2.0.0",
                "Commands: EHLO HELO AUTH MAIL RCPT DATA RSET NOOP VRFY STARTTLS QUIT",
            )),
            Request::StartTls => self.starttls(),
            Request::Lhlo { .. }
            | Request::Bdat { .. }
            | Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => Response::refuse(Refusal::NotImplemented(request.name())),
        }
    }

    fn ehlo(&mut self, host: &str) -> Response {
        // RFC 5321 §4.1.4: EHLO resets the transaction state.
        self.greeted = true;
        self.transaction = None;
        let mut lines = vec![
            format!("{} Hello {}", self.config.hostname, host),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.config.max_message_size),
            "8BITMIME".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "SMTPUTF8".to_string(),
            "AUTH PLAIN LOGIN".to_string(),
        ];
        if self.config.tls.is_some() && !self.tls_active {
            lines.push("STARTTLS".to_string());
        }
        Response::reply(Reply::multiline(250, lines))
    }

    fn auth(&mut self, mechanism: u64, initial: &str) -> Response {
        if !self.greeted {
            return Response::refuse(Refusal::BadSequence("Send EHLO first"));
        }
        if self.authenticated {
            return Response::refuse(Refusal::BadSequence("Already authenticated"));
        }
        // RFC 4954 §4: AUTH is not permitted during a mail transaction.
        if self.transaction.is_some() {
            return Response::refuse(Refusal::BadSequence(
                "AUTH is not allowed during a mail transaction",
            ));
        }
        let Some(mechanism) = Mechanism::from_proto(mechanism) else {
            return Response::refuse(Refusal::AuthMechanism);
        };
        let next = auth::start(mechanism, initial);
        self.auth_step(next)
    }

    fn auth_step(&mut self, next: Next) -> Response {
        match next {
            Next::Challenge(pending, reply) => {
                self.phase = Phase::Auth(pending);
                Response::reply(reply)
            }
            Next::Attempt { user, password } => {
                if self.config.credentials.check(&user, password.expose()) {
                    self.authenticated = true;
                    tracing::info!("smtp client authenticated");
                    Response::reply(Reply::new(235, "2.7.0", "Authentication successful"))
                } else {
                    tracing::warn!("smtp authentication failed");
                    self.auth_failed()
                }
            }
            Next::Fail(Refusal::AuthFailed) => self.auth_failed(),
            Next::Fail(refusal) => Response::refuse(refusal),
        }
    }

    fn auth_failed(&mut self) -> Response {
        self.auth_failures += 1;
        if self.auth_failures >= MAX_AUTH_FAILURES {
            Response::refuse(Refusal::TooManyAuthFailures)
        } else {
            Response::refuse(Refusal::AuthFailed)
        }
    }

    fn mail(&mut self, from: smtp_proto::MailFrom<std::borrow::Cow<'_, str>>) -> Response {
        if !self.greeted {
            return Response::refuse(Refusal::BadSequence("Send EHLO first"));
        }
        if !self.authenticated {
            return Response::refuse(Refusal::AuthRequired);
        }
        if self.transaction.is_some() {
            return Response::refuse(Refusal::BadSequence("Sender already specified"));
        }
        if let Some(refusal) = unsupported_mail_parameter(&from) {
            return Response::refuse(refusal);
        }
        // RFC 1870 §6.1: refuse a declared size over the limit at once.
        if from.size > self.config.max_message_size {
            return Response::refuse(Refusal::MessageTooLarge(self.config.max_message_size));
        }
        tracing::debug!(from = %from.address, "smtp sender");
        self.transaction = Some(Transaction {
            from: from.address.into_owned(),
            recipients: Vec::new(),
        });
        Response::reply(Reply::new(250, "2.1.0", "OK"))
    }

    async fn rcpt(&mut self, address: &str) -> Response {
        let Some(transaction) = &self.transaction else {
            return Response::refuse(Refusal::BadSequence("Need MAIL command first"));
        };
        if address.is_empty() {
            return Response::refuse(Refusal::Recipient(RecipientError::Invalid(
                "An empty recipient address is not allowed".to_string(),
            )));
        }
        // A repeated recipient is accepted once (RFC 5321 §3.3 allows
        // either), so the node sees each address only once.
        if transaction
            .recipients
            .iter()
            .any(|known| known.eq_ignore_ascii_case(address))
        {
            return Response::reply(Reply::new(250, "2.1.5", "OK"));
        }
        if transaction.recipients.len() >= MAX_RECIPIENTS {
            return Response::refuse(Refusal::TooManyRecipients);
        }
        match self.submission.check_recipient(address).await {
            Ok(()) => {
                tracing::debug!(to = %address, "smtp recipient accepted");
                if let Some(transaction) = &mut self.transaction {
                    transaction.recipients.push(address.to_string());
                }
                Response::reply(Reply::new(250, "2.1.5", "OK"))
            }
            Err(error) => {
                tracing::debug!(to = %address, %error, "smtp recipient refused");
                Response::refuse(Refusal::Recipient(error))
            }
        }
    }

    fn data(&mut self) -> Response {
        let Some(transaction) = &self.transaction else {
            return Response::refuse(Refusal::BadSequence("Need MAIL command first"));
        };
        if transaction.recipients.is_empty() {
            // RFC 5321 §3.3: DATA without a valid recipient fails with 554
            // (or 503); the transaction stays open for more RCPT.
            return Response::refuse(Refusal::NoValidRecipients);
        }
        self.phase = Phase::Data(DataReader::new(self.config.max_message_size));
        Response::reply(Reply::plain(
            354,
            "Start mail input; end with <CRLF>.<CRLF>",
        ))
    }

    fn starttls(&mut self) -> Response {
        if self.tls_active {
            return Response::refuse(Refusal::BadSequence("TLS already active"));
        }
        if self.config.tls.is_none() {
            return Response::refuse(Refusal::TlsUnavailable);
        }
        Response {
            reply: Reply::new(220, "2.0.0", "Ready to start TLS"),
            action: Action::StartTls,
        }
    }
}

/// MAIL parameters we parse but do not offer in EHLO (RFC 5321 §4.1.1.11:
/// refuse with 555). SIZE, BODY=7BIT/8BITMIME and SMTPUTF8 are offered.
fn unsupported_mail_parameter(
    from: &smtp_proto::MailFrom<std::borrow::Cow<'_, str>>,
) -> Option<Refusal> {
    let offered =
        smtp_proto::MAIL_BODY_7BIT | smtp_proto::MAIL_BODY_8BITMIME | smtp_proto::MAIL_SMTPUTF8;
    let named = [
        (smtp_proto::MAIL_BODY_BINARYMIME, "BODY=BINARYMIME"),
        (smtp_proto::MAIL_RET_FULL | smtp_proto::MAIL_RET_HDRS, "RET"),
        (smtp_proto::MAIL_REQUIRETLS, "REQUIRETLS"),
        (smtp_proto::MAIL_CONPERM, "CONPERM"),
        (
            smtp_proto::MAIL_BY_NOTIFY | smtp_proto::MAIL_BY_RETURN | smtp_proto::MAIL_BY_TRACE,
            "BY",
        ),
    ];
    for (bits, name) in named {
        if from.flags & bits != 0 {
            return Some(Refusal::UnsupportedParameter(name.to_string()));
        }
    }
    if from.flags & !offered != 0 {
        return Some(Refusal::UnsupportedParameter("unknown".to_string()));
    }
    let others = [
        (from.env_id.is_some(), "ENVID"),
        (from.trans_id.is_some(), "TRANSID"),
        (from.solicit.is_some(), "SOLICIT"),
        (from.mtrk.is_some(), "MTRK"),
        (
            from.hold_for != 0 || from.hold_until != 0,
            "HOLDFOR/HOLDUNTIL",
        ),
        (from.mt_priority != 0, "MT-PRIORITY"),
    ];
    others
        .iter()
        .find(|(present, _)| *present)
        .map(|(_, name)| Refusal::UnsupportedParameter((*name).to_string()))
}
