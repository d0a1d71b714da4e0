//! The SASL exchanges of SMTP AUTH (RFC 4954): PLAIN (RFC 4616) and LOGIN
//! (draft-murchison-sasl-login), as pure functions from client lines to the
//! next step.
//!
//! This module decodes what the client sends and says what to answer; it
//! does not check credentials (the session does, against
//! [`BridgeCredentials`](crate::config::BridgeCredentials)) and never logs
//! or displays a password.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::framing::trim_line_ending;
use super::reply::{Refusal, Reply};

/// `Username:` in base64, the LOGIN mechanism's first challenge.
const LOGIN_USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
/// `Password:` in base64, the LOGIN mechanism's second challenge.
const LOGIN_PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

/// A password received from the client. Its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Vec<u8>);

impl Password {
    /// The password bytes, for the credential check only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Where an unfinished AUTH exchange stands: the client's next line is a
/// SASL response, not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// `AUTH PLAIN` without initial response: waiting for the response to
    /// the empty `334 ` challenge.
    PlainResponse,
    /// `AUTH LOGIN`: waiting for the user name.
    LoginUser,
    /// `AUTH LOGIN`: waiting for the password of this user.
    LoginPassword {
        /// The user name already received.
        user: String,
    },
}

/// What to do after a step of the exchange.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send the challenge and wait for the client's next line in `Pending`.
    Challenge(Pending, Reply),
    /// The exchange is complete: check these credentials.
    Attempt {
        /// The authentication identity (user name).
        user: String,
        /// The password.
        password: Password,
    },
    /// The exchange failed or was cancelled.
    Fail(Refusal),
}

/// The two mechanisms offered in EHLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// The widely used non-standard LOGIN mechanism.
    Login,
}

impl Mechanism {
    /// Maps smtp-proto's mechanism bit to one we offer.
    pub fn from_proto(mechanism: u64) -> Option<Mechanism> {
        match mechanism {
            smtp_proto::AUTH_PLAIN => Some(Mechanism::Plain),
            smtp_proto::AUTH_LOGIN => Some(Mechanism::Login),
            _ => None,
        }
    }
}

/// Starts an exchange from the `AUTH` command. `initial` is the optional
/// initial response (RFC 4954 §4): empty when absent, `=` for an empty one.
pub fn start(mechanism: Mechanism, initial: &str) -> Next {
    match (mechanism, initial.is_empty()) {
        (Mechanism::Plain, true) => Next::Challenge(Pending::PlainResponse, Reply::plain(334, "")),
        (Mechanism::Plain, false) => plain(initial.as_bytes()),
        (Mechanism::Login, true) => Next::Challenge(
            Pending::LoginUser,
            Reply::plain(334, LOGIN_USERNAME_CHALLENGE),
        ),
        (Mechanism::Login, false) => login_user(initial.as_bytes()),
    }
}

/// Continues an exchange with the client's next line (its line ending
/// included or not).
pub fn respond(pending: Pending, line: &[u8]) -> Next {
    let line = trim_line_ending(line);
    // RFC 4954 §4: a lone "*" cancels the exchange.
    if line == b"*" {
        return Next::Fail(Refusal::AuthCancelled);
    }
    match pending {
        Pending::PlainResponse => plain(line),
        Pending::LoginUser => login_user(line),
        Pending::LoginPassword { user } => match decode(line) {
            Ok(password) => Next::Attempt {
                user,
                password: Password(password),
            },
            Err(refusal) => Next::Fail(refusal),
        },
    }
}

/// Decodes a base64 SASL response; `=` stands for an empty response.
fn decode(text: &[u8]) -> Result<Vec<u8>, Refusal> {
    if text == b"=" {
        return Ok(Vec::new());
    }
    STANDARD
        .decode(text)
        .map_err(|_| Refusal::AuthMalformed("Cannot decode the response (invalid base64)"))
}

/// RFC 4616 §2: `[authzid] NUL authcid NUL passwd`.
fn plain(text: &[u8]) -> Next {
    let message = match decode(text) {
        Ok(message) => message,
        Err(refusal) => return Next::Fail(refusal),
    };
    let mut parts = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Next::Fail(Refusal::AuthMalformed(
            "Malformed PLAIN response (expected authzid NUL authcid NUL password)",
        ));
    };
    let (Ok(authzid), Ok(user)) = (std::str::from_utf8(authzid), std::str::from_utf8(authcid))
    else {
        return Next::Fail(Refusal::AuthFailed);
    };
    // One account per bridge: acting for another identity is never allowed
    // (RFC 4616 §2: the server decides whether authcid may act as authzid).
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(user) {
        return Next::Fail(Refusal::AuthFailed);
    }
    Next::Attempt {
        user: user.to_string(),
        password: Password(password.to_vec()),
    }
}

fn login_user(text: &[u8]) -> Next {
    match decode(text) {
        Ok(user) => match String::from_utf8(user) {
            Ok(user) => Next::Challenge(
                Pending::LoginPassword { user },
                Reply::plain(334, LOGIN_PASSWORD_CHALLENGE),
            ),
            Err(_) => Next::Fail(Refusal::AuthFailed),
        },
        Err(refusal) => Next::Fail(refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &[u8]) -> String {
        STANDARD.encode(text)
    }

    fn attempt(user: &str, password: &[u8]) -> Next {
        Next::Attempt {
            user: user.to_string(),
            password: Password(password.to_vec()),
        }
    }

    #[test]
    fn plain_with_initial_response() {
        let initial = b64(b"\0alice@example.org\0secret");
        assert_eq!(
            start(Mechanism::Plain, &initial),
            attempt("alice@example.org", b"secret")
        );
    }

    #[test]
    fn plain_with_matching_authzid() {
        let initial = b64(b"alice@example.org\0alice@example.org\0pw");
        assert_eq!(
            start(Mechanism::Plain, &initial),
            attempt("alice@example.org", b"pw")
        );
        let other = b64(b"bob@example.org\0alice@example.org\0pw");
        assert_eq!(
            start(Mechanism::Plain, &other),
            Next::Fail(Refusal::AuthFailed)
        );
    }

    #[test]
    fn plain_with_continuation() {
        let Next::Challenge(pending, reply) = start(Mechanism::Plain, "") else {
            panic!("expected a challenge");
        };
        assert_eq!(reply.to_wire(), "334 \r\n");
        let line = format!("{}\r\n", b64(b"\0alice\0pw"));
        assert_eq!(respond(pending, line.as_bytes()), attempt("alice", b"pw"));
    }

    #[test]
    fn plain_malformed_and_cancelled() {
        assert_eq!(
            start(Mechanism::Plain, &b64(b"no nuls here")),
            Next::Fail(Refusal::AuthMalformed(
                "Malformed PLAIN response (expected authzid NUL authcid NUL password)"
            ))
        );
        assert!(matches!(
            start(Mechanism::Plain, "!!!not base64"),
            Next::Fail(Refusal::AuthMalformed(_))
        ));
        assert_eq!(
            respond(Pending::PlainResponse, b"*\r\n"),
            Next::Fail(Refusal::AuthCancelled)
        );
    }

    #[test]
    fn login_exchange() {
        let Next::Challenge(pending, reply) = start(Mechanism::Login, "") else {
            panic!("expected the user name challenge");
        };
        assert_eq!(reply.to_wire(), "334 VXNlcm5hbWU6\r\n");
        let Next::Challenge(pending, reply) =
            respond(pending, format!("{}\r\n", b64(b"alice")).as_bytes())
        else {
            panic!("expected the password challenge");
        };
        assert_eq!(reply.to_wire(), "334 UGFzc3dvcmQ6\r\n");
        assert_eq!(
            respond(pending, format!("{}\n", b64(b"pw")).as_bytes()),
            attempt("alice", b"pw")
        );
    }

    #[test]
    fn login_with_initial_user_and_empty_password() {
        let Next::Challenge(pending, _) = start(Mechanism::Login, &b64(b"alice")) else {
            panic!("expected the password challenge");
        };
        assert_eq!(respond(pending, b"=\r\n"), attempt("alice", b""));
    }

    #[test]
    fn password_debug_is_redacted() {
        let rendered = format!("{:?}", attempt("alice", b"hunter2"));
        assert!(!rendered.contains("hunter2"));
    }
}
