//! Configuration shared by the IMAP and SMTP servers: credentials and the
//! redacted secret type.

use std::fmt;

/// A secret string (the bridge password). Its `Debug` and `Display` never show
/// the value, so it cannot leak into logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Call only where the value itself is needed.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with a candidate in time that does not depend on where the
    /// first difference is.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let ours = self.0.as_bytes();
        if ours.len() != candidate.len() {
            return false;
        }
        ours.iter()
            .zip(candidate)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The one account the bridge serves: the node owner's address and the bridge
/// password.
#[derive(Debug, Clone)]
pub struct BridgeCredentials {
    /// The login name: the owner's mail address. Compared case-insensitively.
    pub username: String,
    /// The bridge password.
    pub password: Secret,
}

impl BridgeCredentials {
    /// Checks a login attempt.
    pub fn check(&self, username: &str, password: &[u8]) -> bool {
        // Evaluate both so the time taken does not reveal which one failed.
        let user_ok = self.username.eq_ignore_ascii_case(username);
        let pass_ok = self.password.matches(password);
        user_ok & pass_ok
    }
}
