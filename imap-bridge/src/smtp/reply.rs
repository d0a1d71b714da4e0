//! SMTP replies: their wire form, and the one table that maps every refusal
//! the submission server can give to a reply code and an enhanced status
//! code (RFC 5321 §4.2, RFC 3463, RFC 2034).
//!
//! Every reply the session sends is built here, so the codes stay
//! consistent and reviewable in one place. This module does no I/O.

use std::fmt::Write as _;

use crate::backend::{RecipientError, SubmitError};

/// Longest reply text we send on one line. RFC 5321 §4.5.3.1.5 limits a
/// reply line to 512 octets including the code and CRLF.
const MAX_TEXT: usize = 400;

/// One SMTP reply, possibly multi-line (RFC 5321 §4.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The enhanced status code (RFC 2034), e.g. `"5.7.8"`, written before
    /// the text of every line. `None` for the greeting and EHLO, which RFC
    /// 2034 §3 excludes.
    pub status: Option<&'static str>,
    /// The text lines; never empty, each free of CR and LF.
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply. Control characters in `text` (which may come from
    /// the backend) are replaced by spaces so that a reply can never break
    /// the line framing, and the text is shortened to fit the line limit.
    pub fn new(code: u16, status: &'static str, text: impl AsRef<str>) -> Self {
        Reply {
            code,
            status: Some(status),
            lines: vec![clean(text.as_ref())],
        }
    }

    /// A reply without an enhanced status code.
    pub fn plain(code: u16, text: impl AsRef<str>) -> Self {
        Reply {
            code,
            status: None,
            lines: vec![clean(text.as_ref())],
        }
    }

    /// A multi-line reply without enhanced status codes (EHLO).
    pub fn multiline(code: u16, lines: Vec<String>) -> Self {
        let mut lines: Vec<String> = lines.iter().map(|line| clean(line)).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        Reply {
            code,
            status: None,
            lines,
        }
    }

    /// Appends the wire form, CRLF-terminated, to `out`: `code-text` for
    /// every line but the last, `code text` for the last.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut text = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (index, line) in self.lines.iter().enumerate() {
            let separator = if index == last { ' ' } else { '-' };
            // Writing into a String cannot fail.
            let _ = write!(text, "{}{}", self.code, separator);
            if let Some(status) = self.status {
                text.push_str(status);
                if !line.is_empty() {
                    text.push(' ');
                }
            }
            text.push_str(line);
            text.push_str("\r\n");
        }
        out.extend_from_slice(text.as_bytes());
    }

    /// The wire form as a string (for tests).
    #[cfg(test)]
    pub fn to_wire(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// Every reason the session refuses or ends something, with the reply it
/// gets. Kept as one enum so that the code for each situation is decided in
/// [`Refusal::reply`] and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The command verb is unknown (`500 5.5.2`).
    UnknownCommand,
    /// The command line is longer than the limit (`500 5.5.6`).
    LineTooLong,
    /// The arguments do not match the command's syntax (`501 5.5.4`); the
    /// text says what was expected.
    Syntax(String),
    /// The sender address is not a valid address (`501 5.1.7`).
    BadSenderSyntax,
    /// The recipient address is not a valid address (`501 5.1.3`).
    BadRecipientSyntax,
    /// A parameter we do not implement (`555 5.5.4`, RFC 5321 §4.1.1.11).
    UnsupportedParameter(String),
    /// A command that exists but is not offered here (`502 5.5.1`).
    NotImplemented(&'static str),
    /// Commands in the wrong order (`503 5.5.1`); the text says what to do.
    BadSequence(&'static str),
    /// MAIL before successful AUTH (`530 5.7.0`, RFC 4954 §6).
    AuthRequired,
    /// Wrong user name or password (`535 5.7.8`, RFC 4954 §6).
    AuthFailed,
    /// Too many failed AUTH attempts; the connection is closed (`421 4.7.0`).
    TooManyAuthFailures,
    /// The client cancelled an AUTH exchange with `*` (`501 5.7.0`,
    /// RFC 4954 §4).
    AuthCancelled,
    /// An AUTH response that is not valid base64 or not a valid SASL message
    /// (`501 5.5.2`).
    AuthMalformed(&'static str),
    /// A SASL mechanism we do not offer (`504 5.5.4`).
    AuthMechanism,
    /// STARTTLS without a TLS configuration (`454 4.7.0`, RFC 3207 §4).
    TlsUnavailable,
    /// The declared or actual size is over the limit (`552 5.3.4`).
    MessageTooLarge(usize),
    /// More recipients than we accept in one transaction (`452 4.5.3`,
    /// RFC 5321 §4.5.3.1.8).
    TooManyRecipients,
    /// DATA when no recipient was accepted (`554 5.5.1`).
    NoValidRecipients,
    /// A RCPT refused by the backend.
    Recipient(RecipientError),
    /// A message refused by the backend after DATA.
    Submit(SubmitError),
    /// The server is stopping (`421 4.3.2`).
    ShuttingDown,
    /// The client was idle too long (`421 4.4.2`, RFC 5321 §4.5.3.2).
    Timeout,
    /// Too many concurrent sessions (`421 4.7.0`).
    TooManySessions,
}

impl Refusal {
    /// The reply for this refusal. This is the single place where refusals
    /// become reply codes.
    pub fn reply(&self) -> Reply {
        match self {
            Refusal::UnknownCommand => Reply::new(500, "5.5.2", "Command not recognized"),
            Refusal::LineTooLong => Reply::new(500, "5.5.6", "Line too long"),
            Refusal::Syntax(expected) => Reply::new(501, "5.5.4", format!("Syntax: {expected}")),
            Refusal::BadSenderSyntax => Reply::new(501, "5.1.7", "Invalid sender address"),
            Refusal::BadRecipientSyntax => Reply::new(501, "5.1.3", "Invalid recipient address"),
            Refusal::UnsupportedParameter(param) => {
                Reply::new(555, "5.5.4", format!("Parameter not supported: {param}"))
            }
            Refusal::NotImplemented(command) => {
                Reply::new(502, "5.5.1", format!("{command} is not implemented"))
            }
            Refusal::BadSequence(hint) => Reply::new(503, "5.5.1", *hint),
            Refusal::AuthRequired => Reply::new(530, "5.7.0", "Authentication required"),
            Refusal::AuthFailed => Reply::new(535, "5.7.8", "Authentication credentials invalid"),
            Refusal::TooManyAuthFailures => Reply::new(
                421,
                "4.7.0",
                "Too many failed authentication attempts, closing connection",
            ),
            Refusal::AuthCancelled => Reply::new(501, "5.7.0", "Authentication cancelled"),
            Refusal::AuthMalformed(what) => Reply::new(501, "5.5.2", *what),
            Refusal::AuthMechanism => Reply::new(
                504,
                "5.5.4",
                "Unrecognized authentication type (use PLAIN or LOGIN)",
            ),
            Refusal::TlsUnavailable => Reply::new(454, "4.7.0", "TLS not available"),
            Refusal::MessageTooLarge(max) => Reply::new(
                552,
                "5.3.4",
                format!("Message exceeds the maximum size of {max} bytes"),
            ),
            Refusal::TooManyRecipients => Reply::new(452, "4.5.3", "Too many recipients"),
            Refusal::NoValidRecipients => Reply::new(554, "5.5.1", "No valid recipients"),
            Refusal::Recipient(RecipientError::Unknown(text)) => Reply::new(550, "5.1.1", text),
            Refusal::Recipient(RecipientError::Invalid(text)) => Reply::new(553, "5.1.3", text),
            Refusal::Recipient(RecipientError::Refused(text)) => Reply::new(550, "5.7.1", text),
            Refusal::Recipient(RecipientError::Temporary(text)) => Reply::new(451, "4.3.0", text),
            Refusal::Submit(SubmitError::Rejected(text)) => Reply::new(554, "5.6.0", text),
            Refusal::Submit(SubmitError::TooLarge(text)) => Reply::new(552, "5.3.4", text),
            Refusal::Submit(SubmitError::Temporary(text)) => Reply::new(451, "4.3.0", text),
            Refusal::ShuttingDown => Reply::new(421, "4.3.2", "Service shutting down"),
            Refusal::Timeout => Reply::new(421, "4.4.2", "Idle too long, closing connection"),
            Refusal::TooManySessions => {
                Reply::new(421, "4.7.0", "Too many connections, try again later")
            }
        }
    }

    /// Maps a parse error of `smtp-proto` to the refusal it means.
    pub fn from_parse(error: &smtp_proto::Error) -> Refusal {
        match error {
            smtp_proto::Error::UnknownCommand | smtp_proto::Error::NeedsMoreData { .. } => {
                Refusal::UnknownCommand
            }
            smtp_proto::Error::InvalidSenderAddress => Refusal::BadSenderSyntax,
            smtp_proto::Error::InvalidRecipientAddress => Refusal::BadRecipientSyntax,
            smtp_proto::Error::SyntaxError { syntax } => Refusal::Syntax((*syntax).to_string()),
            smtp_proto::Error::InvalidParameter { param } => {
                Refusal::Syntax(format!("invalid value for parameter {param}"))
            }
            smtp_proto::Error::UnsupportedParameter { param } => {
                Refusal::UnsupportedParameter(param.clone())
            }
            smtp_proto::Error::ResponseTooLong => Refusal::LineTooLong,
            smtp_proto::Error::InvalidResponse { .. } => Refusal::UnknownCommand,
        }
    }

    /// Whether the session must close after sending this reply.
    pub fn closes_session(&self) -> bool {
        matches!(
            self,
            Refusal::TooManyAuthFailures
                | Refusal::ShuttingDown
                | Refusal::Timeout
                | Refusal::TooManySessions
        )
    }
}

impl From<Refusal> for Reply {
    fn from(refusal: Refusal) -> Reply {
        refusal.reply()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_wire_form() {
        assert_eq!(Reply::new(250, "2.0.0", "OK").to_wire(), "250 2.0.0 OK\r\n");
        assert_eq!(
            Reply::plain(220, "host ready").to_wire(),
            "220 host ready\r\n"
        );
    }

    #[test]
    fn multiline_uses_dashes_except_last() {
        let reply = Reply::multiline(
            250,
            vec!["host".into(), "PIPELINING".into(), "8BITMIME".into()],
        );
        assert_eq!(
            reply.to_wire(),
            "250-host\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        );
    }

    #[test]
    fn backend_text_cannot_inject_lines() {
        let reply = Refusal::Recipient(RecipientError::Unknown(
            "no such contact\r\n250 2.0.0 fake".into(),
        ))
        .reply();
        let wire = reply.to_wire();
        assert_eq!(wire.matches("\r\n").count(), 1);
        assert!(wire.starts_with("550 5.1.1 no such contact"));
    }

    #[test]
    fn long_text_is_truncated_on_a_char_boundary() {
        let text = "é".repeat(400);
        let reply = Reply::new(554, "5.6.0", text);
        assert!(reply.lines[0].len() <= MAX_TEXT);
        assert!(reply.to_wire().ends_with("\r\n"));
    }

    #[test]
    fn backend_errors_map_to_the_documented_codes() {
        let cases = [
            (
                Refusal::Recipient(RecipientError::Unknown("u".into())),
                "550 5.1.1 u",
            ),
            (
                Refusal::Recipient(RecipientError::Invalid("i".into())),
                "553 5.1.3 i",
            ),
            (
                Refusal::Recipient(RecipientError::Refused("k".into())),
                "550 5.7.1 k",
            ),
            (
                Refusal::Recipient(RecipientError::Temporary("t".into())),
                "451 4.3.0 t",
            ),
            (
                Refusal::Submit(SubmitError::Rejected("r".into())),
                "554 5.6.0 r",
            ),
            (
                Refusal::Submit(SubmitError::TooLarge("l".into())),
                "552 5.3.4 l",
            ),
            (
                Refusal::Submit(SubmitError::Temporary("t".into())),
                "451 4.3.0 t",
            ),
        ];
        for (refusal, expected) in cases {
            assert_eq!(refusal.reply().to_wire(), format!("{expected}\r\n"));
        }
    }

    #[test]
    fn parse_errors_map_to_syntax_replies() {
        let unknown = Refusal::from_parse(&smtp_proto::Error::UnknownCommand).reply();
        assert_eq!(unknown.code, 500);
        assert_eq!(unknown.status, Some("5.5.2"));
        let syntax = Refusal::from_parse(&smtp_proto::Error::SyntaxError {
            syntax: "EHLO domain",
        })
        .reply();
        assert_eq!(syntax.to_wire(), "501 5.5.4 Syntax: EHLO domain\r\n");
    }
}
