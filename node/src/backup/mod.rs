//! `mailnode backup` and `mailnode restore`: one encrypted file that holds
//! a whole node (`docs/backup-format.md`).
//!
//! - `container`: the encrypted, authenticated byte stream (Argon2id,
//!   AES-256-GCM in chunks).
//! - this module: what goes into the stream (an archive of named entries)
//!   and the backup side;
//! - `restore`: reading it back into a new home, all or nothing.
//!
//! Secrets travel only inside the container: the identity's secrets are
//! exported in memory and written straight into the encrypted stream. The
//! message store is copied with `VACUUM INTO` (one read transaction, so a
//! running daemon's concurrent writes are either wholly in the copy or not
//! at all) into a temporary file beside `mail.db`; that file holds exactly
//! what `mail.db` holds, whose message contents are already sealed with the
//! store key, and it is deleted as soon as it is in the backup.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use keys::{Identity, PassphraseSource};
use rand::Rng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::home::Home;

pub mod container;
pub mod restore;

pub use container::Protection;

/// Environment variable with the passphrase (or recovery code) of a backup.
pub const BACKUP_PASSPHRASE_ENV: &str = "MAILNODE_BACKUP_PASSPHRASE";

/// Archive entry names.
const MANIFEST: &str = "manifest.json";
const SECRETS: &str = "secrets";
const STORE: &str = "mail.db";
const MAILBOX_DB: &str = crate::mailbox::service::DATABASE_FILE;

/// Plain files of the home that go into every backup, as they are. None
/// holds a secret in the clear (`bridge-key.enc`, `gateway-password.enc`
/// and `autocrypt.enc` are sealed with the store key, which travels in the
/// secrets). They are read before the store is snapshotted, so the
/// gateway's fetch position (saved only after a commit) is never ahead of
/// the mail in the backup: a restored node fetches again at most what it
/// then recognises as already filed.
const PLAIN_FILES: &[&str] = &[
    "contacts.json",
    "strangers.json",
    "mailboxes.json",
    "config.toml",
    "bridge-cert.pem",
    "bridge-key.enc",
    crate::gateway::config::GATEWAY_FILE,
    crate::gateway::secret::PASSWORD_FILE,
    crate::gateway::peers::PEERS_FILE,
    crate::gateway::fetch::CURSOR_FILE,
];

/// The first entry of every archive.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Archive layout version.
    pub format: u32,
    /// When the backup was made (seconds since the epoch).
    pub created: u64,
    /// The identity's address.
    pub address: String,
    /// Its certificate fingerprint.
    pub fingerprint: String,
    /// Its PeerId.
    pub peer_id: String,
    /// Whether the message store was left out (`--keys-only`).
    pub keys_only: bool,
    /// Whether the archive holds `mail.db` (not with `--keys-only`, nor for
    /// a node that never ran and so has no store yet).
    pub store: bool,
    /// The mailnode version that wrote it.
    pub mailnode: String,
}

const ARCHIVE_FORMAT: u32 = 1;

/// What `mailnode backup` was asked for.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    /// The file to write.
    pub file: PathBuf,
    /// Leave the message store out.
    pub keys_only: bool,
    /// Protect with a generated recovery code instead of a passphrase.
    pub recovery_code: bool,
    /// Replace `file` if it exists.
    pub force: bool,
    /// Where the backup passphrase comes from.
    pub passphrase: PassphraseSource,
}

/// The source of a backup's passphrase or recovery code: the environment
/// variable, `--backup-passphrase-file`, or a prompt.
pub fn passphrase_source(file: Option<PathBuf>) -> PassphraseSource {
    PassphraseSource::named(BACKUP_PASSPHRASE_ENV, "backup passphrase", file)
}

/// One entry before it is written: bytes in memory or a file to stream.
enum Body {
    Memory(Zeroizing<Vec<u8>>),
    File(PathBuf, u64),
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Memory(bytes) => bytes.len() as u64,
            Body::File(_, len) => *len,
        }
    }
}

/// A temporary snapshot of a database, deleted when dropped.
pub(crate) struct Snapshot(PathBuf);

impl Snapshot {
    /// Where the copy is.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Copies the SQLite database at `source` into a new file beside it with
/// `VACUUM INTO`, in one read transaction: a consistent snapshot even while
/// the daemon writes (WAL), never a byte copy of a live file. Also used by
/// `mailnode device link` for the copy a new device starts with.
pub(crate) fn snapshot(source: &Path) -> anyhow::Result<Snapshot> {
    let name = source.file_name().and_then(|n| n.to_str()).unwrap_or("db");
    let target = source.with_file_name(format!(
        ".{name}.backup-{}-{:08x}",
        std::process::id(),
        rand::thread_rng().r#gen::<u32>()
    ));
    // Made empty and owner-only first, so the copy is never readable by
    // others even for a moment (VACUUM INTO accepts an empty file).
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&target)
        .with_context(|| format!("cannot create {}", target.display()))?;
    let snapshot = Snapshot(target);
    let conn = rusqlite::Connection::open_with_flags(
        source,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", source.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let target = snapshot
        .0
        .to_str()
        .with_context(|| format!("the path {} is not UTF-8", snapshot.0.display()))?;
    conn.execute("VACUUM INTO ?1", [target])
        .with_context(|| format!("cannot copy {} consistently", source.display()))?;
    Ok(snapshot)
}

/// Generates a recovery code: 28 characters of Crockford's base32 (140
/// bits), in groups of four.
pub fn new_recovery_code() -> Zeroizing<String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut rng = rand::thread_rng();
    let mut code = Zeroizing::new(String::with_capacity(34));
    for i in 0..28 {
        if i > 0 && i % 4 == 0 {
            code.push('-');
        }
        code.push(char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]));
    }
    code
}

/// The form of a recovery code the key is derived from: upper case,
/// without separators, with the letters people confuse with digits read
/// as those digits (Crockford).
pub fn normalize_recovery_code(code: &str) -> Zeroizing<String> {
    Zeroizing::new(
        code.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                other => other,
            })
            .collect(),
    )
}

/// `mailnode backup`: writes the whole node (or its keys) into one
/// encrypted file. Returns the recovery code if one was generated; the
/// caller prints it.
pub fn backup(
    home: &Home,
    identity: &Identity,
    request: &BackupRequest,
) -> anyhow::Result<Option<Zeroizing<String>>> {
    if request.file.exists() && !request.force {
        bail!(
            "{} already exists; choose another file name, or pass --force to replace it",
            request.file.display()
        );
    }
    let store = !request.keys_only && home.store_file().exists();
    let manifest = Manifest {
        store,
        format: ARCHIVE_FORMAT,
        created: crate::outbox::now_ms().max(0) as u64 / 1000,
        address: identity.address().to_string(),
        fingerprint: identity.fingerprint().to_string(),
        peer_id: identity.peer_id().to_string(),
        keys_only: request.keys_only,
        mailnode: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut entries: Vec<(&str, Body)> = vec![
        (
            MANIFEST,
            Body::Memory(Zeroizing::new(serde_json::to_vec_pretty(&manifest)?)),
        ),
        (SECRETS, Body::Memory(identity.export_secrets()?)),
    ];
    for name in PLAIN_FILES {
        if request.keys_only && *name == crate::gateway::fetch::CURSOR_FILE {
            // Without the mail, the position would skip what it never got.
            continue;
        }
        match fs::read(home.path().join(name)) {
            Ok(bytes) => entries.push((name, Body::Memory(Zeroizing::new(bytes)))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {name} in the home"));
            }
        }
    }
    let mut snapshots = Vec::new();
    if !request.keys_only {
        for name in [STORE, MAILBOX_DB] {
            let path = home.path().join(name);
            if !path.exists() {
                continue;
            }
            let copy = snapshot(&path)?;
            let len = fs::metadata(&copy.0)?.len();
            entries.push((name, Body::File(copy.0.clone(), len)));
            snapshots.push(copy);
        }
    }
    let (secret, code) = if request.recovery_code {
        let code = new_recovery_code();
        (normalize_recovery_code(&code), Some(code))
    } else {
        let passphrase = request.passphrase.obtain(true)?.with_context(|| {
            format!(
                "a passphrase for the backup is needed: set {BACKUP_PASSPHRASE_ENV}, pass \
                     --backup-passphrase-file FILE, run this in a terminal, or use \
                     --recovery-code"
            )
        })?;
        (passphrase, None)
    };
    let protection = if code.is_some() {
        Protection::RecoveryCode
    } else {
        Protection::Passphrase
    };
    write_file(&request.file, protection, &secret, &entries)?;
    drop(snapshots);
    Ok(code)
}

fn entry_len(name: &str, body: &Body) -> u64 {
    2 + name.len() as u64 + 8 + body.len()
}

/// Writes the container into `FILE.partial`, then renames it: a backup file
/// under its own name is always complete.
fn write_file(
    file: &Path,
    protection: Protection,
    secret: &str,
    entries: &[(&str, Body)],
) -> anyhow::Result<()> {
    let partial = PathBuf::from(format!("{}.partial", file.display()));
    let _ = fs::remove_file(&partial);
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let result = (|| -> anyhow::Result<()> {
        let total = entries.iter().map(|(n, b)| entry_len(n, b)).sum();
        let mut writer = container::Writer::new(
            BufWriter::with_capacity(1 << 20, out),
            protection,
            secret,
            total,
        )?;
        for (name, body) in entries {
            let name_len = u16::try_from(name.len()).context("entry name too long")?;
            writer.write_all(&name_len.to_be_bytes())?;
            writer.write_all(name.as_bytes())?;
            writer.write_all(&body.len().to_be_bytes())?;
            match body {
                Body::Memory(bytes) => writer.write_all(bytes)?,
                Body::File(path, len) => {
                    let copied = io::copy(&mut File::open(path)?.take(*len), &mut writer)?;
                    if copied != *len {
                        bail!("{} shrank while it was backed up", path.display());
                    }
                }
            }
        }
        let out = writer.finish()?;
        let out = out.into_inner().map_err(|err| err.into_error())?;
        out.sync_all()?;
        Ok(())
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&partial);
        return Err(err.context(format!("cannot write the backup {}", file.display())));
    }
    fs::rename(&partial, file)
        .with_context(|| format!("cannot rename {} into place", partial.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_long_and_normalize() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 34);
        assert_eq!(code.split('-').count(), 7);
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(*normalize_recovery_code(&typed), code.replace('-', ""));
        assert_eq!(*normalize_recovery_code("o0-Il 1x"), "00111X");
        assert_ne!(new_recovery_code(), new_recovery_code());
    }
}
