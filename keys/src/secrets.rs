//! Where the unlock secret of a node lives.
//!
//! Every secret of an identity is encrypted under one random 256-bit data
//! key. That data key is kept either in the OS keyring (the Secret Service on
//! Linux, through the `keyring` crate) or wrapped by a key derived from the
//! user's passphrase with Argon2id. Nothing here ever writes the data key or
//! a passphrase to disk in the clear.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::KeyError;

/// Environment variable that carries the passphrase on headless machines.
pub const PASSPHRASE_ENV: &str = "MAILNODE_PASSPHRASE";

/// The keyring service name under which data keys are kept.
const KEYRING_SERVICE: &str = "mailnode";

/// How long a keyring call may take before it counts as unreachable (a
/// Secret Service that waits for an unlock prompt nobody can answer).
const KEYRING_TIMEOUT: Duration = Duration::from_secs(15);

/// Shortest passphrase accepted for a new identity.
const MIN_PASSPHRASE_LEN: usize = 8;

/// Argon2id cost: 64 MiB, 3 passes, 1 lane (RFC 9106's second recommended
/// option, sized for a desktop that unlocks once per start).
const ARGON2_M_KIB: u32 = 64 * 1024;
const ARGON2_T: u32 = 3;
const ARGON2_P: u32 = 1;

/// Where a passphrase comes from, in order: the `MAILNODE_PASSPHRASE`
/// environment variable, a file, or a prompt on the terminal.
#[derive(Debug, Clone)]
pub struct PassphraseSource {
    env: &'static str,
    what: &'static str,
    file: Option<PathBuf>,
    fixed: Option<Zeroizing<String>>,
}

impl PassphraseSource {
    /// The usual chain: environment, then `file` if given, then a prompt if
    /// standard input is a terminal.
    pub fn from_env_file_or_prompt(file: Option<PathBuf>) -> PassphraseSource {
        PassphraseSource::named(PASSPHRASE_ENV, "mailnode passphrase", file)
    }

    /// The same chain with another environment variable and prompt (a
    /// backup's passphrase is not the node's); `what` names the secret at
    /// the prompt ("backup passphrase").
    pub fn named(env: &'static str, what: &'static str, file: Option<PathBuf>) -> PassphraseSource {
        PassphraseSource {
            env,
            what,
            file,
            fixed: None,
        }
    }

    /// A source that always gives this passphrase (for programs that obtain
    /// it themselves, and for tests).
    pub fn fixed(passphrase: &str) -> PassphraseSource {
        PassphraseSource {
            env: PASSPHRASE_ENV,
            what: "mailnode passphrase",
            file: None,
            fixed: Some(Zeroizing::new(passphrase.to_string())),
        }
    }

    /// Obtains the passphrase, or `None` if no source has one. `new` asks
    /// twice at a prompt and enforces the minimum length.
    pub fn obtain(&self, new: bool) -> Result<Option<Zeroizing<String>>, KeyError> {
        let found = if let Some(fixed) = &self.fixed {
            Some(fixed.clone())
        } else if let Ok(value) = std::env::var(self.env) {
            Some(Zeroizing::new(value))
        } else if let Some(path) = &self.file {
            let text = Zeroizing::new(
                std::fs::read_to_string(path).map_err(|err| KeyError::io(path, err))?,
            );
            let line = text.lines().next().unwrap_or_default();
            Some(Zeroizing::new(line.to_string()))
        } else if std::io::stdin().is_terminal() {
            Some(prompt(self.what, new)?)
        } else {
            None
        };
        if let Some(passphrase) = &found {
            if passphrase.is_empty() {
                return Err(KeyError::WeakPassphrase(format!(
                    "the passphrase is empty; set {}, use the passphrase file option, or type \
                     one at the prompt",
                    self.env
                )));
            }
            if new && passphrase.chars().count() < MIN_PASSPHRASE_LEN {
                return Err(KeyError::WeakPassphrase(format!(
                    "the passphrase is shorter than {MIN_PASSPHRASE_LEN} characters; choose a \
                     longer one"
                )));
            }
        }
        Ok(found)
    }
}

fn prompt(what: &str, new: bool) -> Result<Zeroizing<String>, KeyError> {
    let ask = |text: &str| {
        rpassword::prompt_password(text)
            .map(Zeroizing::new)
            .map_err(|err| KeyError::NoSecretStore(format!("cannot read a passphrase: {err}")))
    };
    if !new {
        return ask(&format!("{what}: "));
    }
    let first = ask(&format!("choose a {what}: "))?;
    let second = ask(&format!("repeat the {what}: "))?;
    if *first != *second {
        return Err(KeyError::WeakPassphrase(
            "the two passphrases differ; nothing was created".into(),
        ));
    }
    Ok(first)
}

/// How keygen should protect the secrets.
#[derive(Debug, Clone)]
pub enum Protection {
    /// The OS keyring if one is reachable, else the passphrase.
    Auto(PassphraseSource),
    /// The OS keyring only.
    Keyring,
    /// The passphrase only.
    Passphrase(PassphraseSource),
}

/// Which protection keygen ended up using.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectionUsed {
    /// The data key is in the OS keyring.
    Keyring,
    /// The data key is wrapped by the passphrase.
    Passphrase,
}

impl std::fmt::Display for ProtectionUsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtectionUsed::Keyring => {
                f.write_str("unlock key kept in the OS keyring (Secret Service)")
            }
            ProtectionUsed::Passphrase => {
                f.write_str("encrypted with your passphrase (Argon2id, AES-256-GCM)")
            }
        }
    }
}

/// Unlocks an existing identity: reads the keyring, or obtains the
/// passphrase from its source.
#[derive(Debug, Clone)]
pub struct Unlocker {
    source: PassphraseSource,
}

impl Unlocker {
    /// An unlocker that asks `source` when a passphrase is needed.
    pub fn new(source: PassphraseSource) -> Unlocker {
        Unlocker { source }
    }
}

/// How the data key is kept, as recorded in `identity.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum KeyGuard {
    /// In the OS keyring under (service, user).
    Keyring { service: String, user: String },
    /// Wrapped with AES-256-GCM under Argon2id(passphrase, salt).
    Passphrase {
        salt: String,
        m_kib: u32,
        t: u32,
        p: u32,
        nonce: String,
        wrapped: String,
    },
}

/// Puts `data_key` under the chosen protection. A keyring entry is named
/// after `device` (the identity's fingerprint and this device's PeerId),
/// so that two devices of one identity in one keyring keep two entries.
pub(crate) fn protect(
    data_key: &[u8; 32],
    protection: &Protection,
    fingerprint: &str,
    device: &str,
) -> Result<(KeyGuard, ProtectionUsed), KeyError> {
    match protection {
        Protection::Keyring => Ok((keyring_store(data_key, device)?, ProtectionUsed::Keyring)),
        Protection::Passphrase(source) => {
            let passphrase = source.obtain(true)?.ok_or_else(no_passphrase)?;
            Ok((
                wrap(data_key, &passphrase, fingerprint)?,
                ProtectionUsed::Passphrase,
            ))
        }
        Protection::Auto(source) => match keyring_store(data_key, device) {
            Ok(guard) => Ok((guard, ProtectionUsed::Keyring)),
            Err(keyring_err) => {
                tracing::info!("no usable OS keyring ({keyring_err}); using a passphrase");
                match source.obtain(true)? {
                    Some(passphrase) => Ok((
                        wrap(data_key, &passphrase, fingerprint)?,
                        ProtectionUsed::Passphrase,
                    )),
                    None => Err(KeyError::NoSecretStore(format!(
                        "no place to keep the secrets safely: {keyring_err}, and no passphrase \
                         was given. Start a desktop keyring (Secret Service), or set \
                         {PASSPHRASE_ENV}, or pass --passphrase-file FILE, or run this in a \
                         terminal to be asked for one"
                    ))),
                }
            }
        },
    }
}

/// Recovers the data key.
pub(crate) fn unlock(
    guard: &KeyGuard,
    unlocker: &Unlocker,
    fingerprint: &str,
    file: &Path,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    match guard {
        KeyGuard::Keyring { service, user } => keyring_load(service, user),
        KeyGuard::Passphrase {
            salt,
            m_kib,
            t,
            p,
            nonce,
            wrapped,
        } => {
            let passphrase = unlocker.source.obtain(false)?.ok_or_else(no_passphrase)?;
            let corrupt = |reason: &str| KeyError::Corrupt {
                path: file.to_path_buf(),
                reason: reason.to_string(),
            };
            let salt = B64.decode(salt).map_err(|_| corrupt("bad salt"))?;
            let nonce = B64.decode(nonce).map_err(|_| corrupt("bad nonce"))?;
            let wrapped = B64
                .decode(wrapped)
                .map_err(|_| corrupt("bad wrapped key"))?;
            if nonce.len() != 12 {
                return Err(corrupt("bad nonce length"));
            }
            let kek = derive(&passphrase, &salt, *m_kib, *t, *p)?;
            let cipher =
                Aes256Gcm::new_from_slice(kek.as_slice()).map_err(|_| corrupt("bad key length"))?;
            let plain = Zeroizing::new(
                cipher
                    .decrypt(
                        Nonce::from_slice(&nonce),
                        Payload {
                            msg: &wrapped,
                            aad: &wrap_aad(fingerprint),
                        },
                    )
                    .map_err(|_| KeyError::WrongPassphrase(file.to_path_buf()))?,
            );
            let mut key = Zeroizing::new([0u8; 32]);
            if plain.len() != 32 {
                return Err(corrupt("bad data key length"));
            }
            key.copy_from_slice(&plain);
            Ok(key)
        }
    }
}

fn no_passphrase() -> KeyError {
    KeyError::NoSecretStore(format!(
        "a passphrase is needed and none was given: set {PASSPHRASE_ENV}, pass --passphrase-file \
         FILE, or run this in a terminal to be asked for one"
    ))
}

fn wrap_aad(fingerprint: &str) -> Vec<u8> {
    let mut aad = b"mailnode data key v1 ".to_vec();
    aad.extend_from_slice(fingerprint.as_bytes());
    aad
}

/// The Argon2id cost mailnode uses for new passphrase-derived keys:
/// (memory in KiB, passes, lanes).
pub const ARGON2_PARAMS: (u32, u32, u32) = (ARGON2_M_KIB, ARGON2_T, ARGON2_P);

/// Derives a 256-bit key from a passphrase with Argon2id (version 0x13).
pub fn derive(
    passphrase: &str,
    salt: &[u8],
    m_kib: u32,
    t: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let params = argon2::Params::new(m_kib, t, p, Some(32))
        .map_err(|err| KeyError::NoSecretStore(format!("bad Argon2 parameters: {err}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, out.as_mut_slice())
        .map_err(|err| KeyError::NoSecretStore(format!("cannot derive a key: {err}")))?;
    Ok(out)
}

fn wrap(data_key: &[u8; 32], passphrase: &str, fingerprint: &str) -> Result<KeyGuard, KeyError> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut salt);
    rand::thread_rng().fill_bytes(&mut nonce);
    let kek = derive(passphrase, &salt, ARGON2_M_KIB, ARGON2_T, ARGON2_P)?;
    let cipher = Aes256Gcm::new_from_slice(kek.as_slice())
        .map_err(|err| KeyError::NoSecretStore(err.to_string()))?;
    let wrapped = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: data_key,
                aad: &wrap_aad(fingerprint),
            },
        )
        .map_err(|err| KeyError::NoSecretStore(format!("cannot wrap the key: {err}")))?;
    Ok(KeyGuard::Passphrase {
        salt: B64.encode(salt),
        m_kib: ARGON2_M_KIB,
        t: ARGON2_T,
        p: ARGON2_P,
        nonce: B64.encode(nonce),
        wrapped: B64.encode(wrapped),
    })
}

/// Runs a keyring call on its own thread with a deadline, so a Secret
/// Service that never answers cannot hang mailnode.
fn with_deadline<T: Send + 'static>(
    what: &str,
    call: impl FnOnce() -> Result<T, keyring::Error> + Send + 'static,
) -> Result<T, KeyError> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(call());
    });
    match rx.recv_timeout(KEYRING_TIMEOUT) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(keyring::Error::NoDefaultStore)) => Err(KeyError::Keyring(
            "no OS keyring is reachable (no Secret Service on the session bus)".into(),
        )),
        Ok(Err(keyring::Error::NoEntry)) => Err(KeyError::Keyring(format!(
            "the keyring has no mailnode key ({what}); was the keyring reset?"
        ))),
        Ok(Err(err)) => Err(KeyError::Keyring(format!("{what}: {err}"))),
        Err(_) => Err(KeyError::Keyring(format!(
            "{what}: the keyring did not answer within {} s (is it locked?)",
            KEYRING_TIMEOUT.as_secs()
        ))),
    }
}

fn keyring_store(data_key: &[u8; 32], user: &str) -> Result<KeyGuard, KeyError> {
    let user = user.to_string();
    let key = Zeroizing::new(data_key.to_vec());
    let check = Zeroizing::new(data_key.to_vec());
    let stored_user = user.clone();
    let read_back = with_deadline("storing the key", move || {
        let entry = keyring::Entry::new(KEYRING_SERVICE, &stored_user)?;
        entry.set_secret(&key)?;
        entry.get_secret().map(Zeroizing::new)
    })?;
    if *read_back != *check {
        return Err(KeyError::Keyring(
            "the keyring returned a different key than was stored".into(),
        ));
    }
    Ok(KeyGuard::Keyring {
        service: KEYRING_SERVICE.to_string(),
        user,
    })
}

fn keyring_load(service: &str, user: &str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let (service, user) = (service.to_string(), user.to_string());
    let secret = with_deadline("reading the key", move || {
        let entry = keyring::Entry::new(&service, &user)?;
        entry.get_secret().map(Zeroizing::new)
    })?;
    if secret.len() != 32 {
        return Err(KeyError::Keyring(
            "the keyring holds a mailnode entry of the wrong length".into(),
        ));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&secret);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_and_unwrap_with_the_right_passphrase_only() {
        let key = [7u8; 32];
        let guard = wrap(&key, "correct horse battery staple", "FPR").expect("wrap");
        let file = Path::new("identity.json");
        let good = Unlocker::new(PassphraseSource::fixed("correct horse battery staple"));
        let out = unlock(&guard, &good, "FPR", file).expect("unlock");
        assert_eq!(*out, key);
        let bad = Unlocker::new(PassphraseSource::fixed("wrong horse"));
        let err = unlock(&guard, &bad, "FPR", file).expect_err("wrong passphrase");
        assert!(matches!(err, KeyError::WrongPassphrase(_)), "{err}");
        let err = unlock(&guard, &good, "OTHER", file).expect_err("bound to fingerprint");
        assert!(matches!(err, KeyError::WrongPassphrase(_)), "{err}");
    }
}
