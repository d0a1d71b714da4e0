//! The gateway password, kept with the node's other secrets: encrypted
//! (AES-256-GCM) under a key derived from the store key, which itself lives
//! only in the OS keyring or under the user's passphrase (`keys` crate).
//! The file `gateway-password.enc` is useless without unlocking the node.
//!
//! The associated data binds the password to the account (user and both
//! servers), so a file copied from another gateway set-up does not decrypt.

use std::path::{Path, PathBuf};

use anyhow::Context;
use zeroize::Zeroizing;

use super::config::GatewayConfig;
use crate::home::write_atomic;

/// File name of the sealed password inside the home.
pub const PASSWORD_FILE: &str = "gateway-password.enc";

/// The key-derivation label of the password file.
const LABEL: &[u8] = b"mailnode gateway password encryption\0";

/// A password whose `Debug` never shows it.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password, refusing what no login command can carry.
    pub fn new(text: String) -> anyhow::Result<Password> {
        let text = Zeroizing::new(text);
        if text.is_empty() {
            anyhow::bail!("the gateway password is empty");
        }
        if text.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
            anyhow::bail!("the gateway password holds a line break or NUL, which IMAP cannot send");
        }
        Ok(Password(text))
    }

    /// The password itself, for the login commands only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

fn aad(config: &GatewayConfig) -> Vec<u8> {
    format!(
        "mailnode gateway password v1\0{}\0{}\0{}",
        config.user, config.smtp, config.imap
    )
    .into_bytes()
}

/// The sealed password file in `home`.
pub fn path(home: &Path) -> PathBuf {
    home.join(PASSWORD_FILE)
}

/// Seals `password` for `config` and writes it into `home`.
pub fn store(
    home: &Path,
    store_key: &[u8; 32],
    config: &GatewayConfig,
    password: &Password,
) -> anyhow::Result<()> {
    let file = super::sealed::seal(LABEL, store_key, &aad(config), password.expose().as_bytes());
    let path = path(home);
    write_atomic(&path, &file).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads and decrypts the password for `config`.
pub fn load(home: &Path, store_key: &[u8; 32], config: &GatewayConfig) -> anyhow::Result<Password> {
    let path = path(home);
    let file = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read the gateway password {}; `mailnode gateway remove` then `gateway add` \
             stores it again",
            path.display()
        )
    })?;
    let plain: Zeroizing<Vec<u8>> = super::sealed::open(LABEL, store_key, &aad(config), &file)
        .with_context(|| {
            format!(
                "{} does not decrypt with this node's key for this gateway account (damaged, or \
                 from another set-up); run `mailnode gateway remove` and `gateway add` again",
                path.display()
            )
        })?;
    let text = String::from_utf8(plain.to_vec()).context("the gateway password is damaged")?;
    Password::new(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::config::{Endpoint, TlsMode};

    fn config(user: &str) -> GatewayConfig {
        GatewayConfig {
            smtp: Endpoint::parse("127.0.0.1:465").expect("endpoint"),
            imap: Endpoint::parse("127.0.0.1:993").expect("endpoint"),
            user: user.into(),
            tls: TlsMode::Implicit,
            insecure_local: true,
            move_to: None,
            added_at: 0,
            poll_secs: None,
        }
    }

    #[test]
    fn sealed_round_trip_and_binding() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = [7u8; 32];
        let password = Password::new("s3cret pass".into()).expect("password");
        store(dir.path(), &key, &config("alice"), &password).expect("store");
        let raw = std::fs::read(path(dir.path())).expect("read");
        assert!(
            !raw.windows(6).any(|w| w == b"s3cret"),
            "password in the clear"
        );
        assert_eq!(
            load(dir.path(), &key, &config("alice"))
                .expect("load")
                .expose(),
            "s3cret pass"
        );
        assert!(load(dir.path(), &[8u8; 32], &config("alice")).is_err());
        assert!(load(dir.path(), &key, &config("mallory")).is_err());
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
    }

    #[test]
    fn unsendable_passwords_are_refused() {
        assert!(Password::new(String::new()).is_err());
        assert!(Password::new("a\r\nb".into()).is_err());
    }
}
