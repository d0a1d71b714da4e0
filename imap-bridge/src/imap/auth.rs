//! Commands that authenticate or change the connection: LOGIN, AUTHENTICATE
//! PLAIN (RFC 4616, with SASL-IR RFC 4959), STARTTLS, ENABLE (RFC 5161) and
//! COMPRESS (RFC 4978).
//!
//! Credentials are checked only through
//! [`BridgeCredentials::check`](crate::config::BridgeCredentials::check);
//! passwords are never logged or echoed.

use imap_codec::AuthenticateDataCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::secret::Secret;

use super::mailbox::Names;
use super::response::Completion;
use super::session::{Next, Session, State};
use crate::backend::MailStore;

/// Splits a SASL PLAIN message `[authzid] NUL authcid NUL passwd`
/// (RFC 4616 §2). Returns (authcid, password) when the authorization
/// identity is empty or the same user.
fn parse_plain(message: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut parts = message.split(|b| *b == 0);
    let authzid = parts.next()?;
    let authcid = parts.next()?;
    let password = parts.next()?;
    if parts.next().is_some() || authcid.is_empty() {
        return None;
    }
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(authcid) {
        return None;
    }
    Some((authcid, password))
}

impl<S: MailStore> Session<S> {
    /// LOGIN (RFC 3501 §6.2.3).
    pub(super) fn login(&mut self, username: &[u8], password: &[u8]) -> Completion {
        let Ok(username) = std::str::from_utf8(username) else {
            return self.auth_failed();
        };
        if self.config.credentials.check(username, password) {
            self.state = State::Authenticated;
            tracing::info!("IMAP client logged in");
            let caps = self.capabilities();
            Completion::ok_code(format!("CAPABILITY {caps}"), "Logged in")
        } else {
            self.auth_failed()
        }
    }

    fn auth_failed(&self) -> Completion {
        tracing::info!("IMAP login failed");
        Completion::no_code(
            "AUTHENTICATIONFAILED",
            "Invalid user name or bridge password (see `mailnode bridge-info`)",
        )
    }

    fn check_plain(&mut self, message: &[u8]) -> Completion {
        match parse_plain(message) {
            Some((user, password)) => self.login(user, password),
            None => self.auth_failed(),
        }
    }

    /// AUTHENTICATE (RFC 3501 §6.2.2). Only PLAIN is offered.
    pub(super) fn authenticate(
        &mut self,
        tag: &str,
        mechanism: &AuthMechanism<'_>,
        initial_response: Option<Secret<std::borrow::Cow<'_, [u8]>>>,
    ) -> (Option<Completion>, Next) {
        if *mechanism != AuthMechanism::Plain {
            return (
                Some(Completion::no(
                    "Unsupported authentication mechanism, use PLAIN",
                )),
                Next::Command,
            );
        }
        match initial_response {
            // SASL-IR (RFC 4959): the response came with the command.
            Some(response) => {
                let completion = self.check_plain(response.declassify());
                self.after_auth_attempt(tag, completion)
            }
            None => {
                // An empty challenge; the client answers on its own line.
                self.out.continuation("");
                (
                    None,
                    Next::Authenticate {
                        tag: tag.to_string(),
                    },
                )
            }
        }
    }

    /// The client's line after our `+` in AUTHENTICATE.
    pub fn authenticate_continue(&mut self, tag: &str, line: &[u8]) -> Next {
        let (completion, next) = match AuthenticateDataCodec::default().decode(line) {
            Ok((&[], AuthenticateData::Continue(data))) => {
                let completion = self.check_plain(data.declassify());
                self.after_auth_attempt(tag, completion)
            }
            Ok((&[], AuthenticateData::Cancel)) => (
                Some(Completion::bad("AUTHENTICATE cancelled")),
                Next::Command,
            ),
            _ => (
                Some(Completion::bad("Invalid base64 in AUTHENTICATE response")),
                Next::Command,
            ),
        };
        if let Some(completion) = completion {
            self.out.tagged(tag, &completion);
        }
        next
    }

    /// STARTTLS (RFC 3501 §6.2.1).
    pub(super) fn starttls(&mut self) -> (Option<Completion>, Next) {
        if self.config.tls.is_none() {
            return (
                Some(Completion::bad("STARTTLS is not available")),
                Next::Command,
            );
        }
        if self.tls {
            return (
                Some(Completion::bad("TLS is already active")),
                Next::Command,
            );
        }
        (
            Some(Completion::ok("Begin TLS negotiation now")),
            Next::StartTls,
        )
    }

    /// COMPRESS DEFLATE (RFC 4978 §3).
    pub(super) fn compress(&mut self) -> (Option<Completion>, Next) {
        if self.compressed {
            return (
                Some(Completion::no_code(
                    "COMPRESSIONACTIVE",
                    "DEFLATE is already active",
                )),
                Next::Command,
            );
        }
        (Some(Completion::ok("DEFLATE active")), Next::Compress)
    }

    /// ENABLE (RFC 5161): CONDSTORE and QRESYNC (RFC 7162 §3.2.3, which
    /// implies CONDSTORE).
    pub(super) fn enable(&mut self, capabilities: &[CapabilityEnable<'_>]) -> Completion {
        let mut enabled = Vec::new();
        for capability in capabilities {
            let name = capability.to_string().to_ascii_uppercase();
            match name.as_str() {
                "CONDSTORE" => {
                    self.condstore = true;
                    enabled.push("CONDSTORE");
                }
                "QRESYNC" => {
                    self.condstore = true;
                    self.qresync = true;
                    enabled.push("QRESYNC");
                }
                // RFC 9755 §3: from now on mailbox names are UTF-8 both
                // ways (quoted strings with UTF-8 are accepted anyway).
                "UTF8=ACCEPT" => {
                    self.names = Names::Utf8;
                    enabled.push("UTF8=ACCEPT");
                }
                _ => {}
            }
        }
        enabled.dedup();
        let mut line = String::from("ENABLED");
        for name in enabled {
            line.push(' ');
            line.push_str(name);
        }
        self.out.untagged(&line);
        Completion::ok("ENABLE completed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_message_forms() {
        assert_eq!(
            parse_plain(b"\0me@example.org\0pw"),
            Some((&b"me@example.org"[..], &b"pw"[..]))
        );
        assert_eq!(
            parse_plain(b"me@example.org\0me@example.org\0pw"),
            Some((&b"me@example.org"[..], &b"pw"[..]))
        );
        assert_eq!(parse_plain(b"other\0me\0pw"), None, "no proxy logins");
        assert_eq!(parse_plain(b"me\0pw"), None);
        assert_eq!(parse_plain(b"\0\0pw"), None);
        assert_eq!(parse_plain(b"\0me\0pw\0x"), None);
    }
}
