//! `mailnode restore`: a backup file back into a home, all or nothing.
//!
//! Everything is unpacked into a new directory beside the target
//! (`.NAME.restore-XXXXXXXX`, mode 0700) and checked there: every chunk
//! authenticated, the secrets a complete identity, the message store
//! intact and opened by the restored store key. Only then does the
//! directory take the target's name (one `rename`). Any failure removes the
//! directory, so the target is either the complete restored node or as it
//! was.
//!
//! The secrets are never written as they came out of the backup: the
//! identity is saved afresh under a new data key, protected as the user
//! chose (`--secret-store`, passphrase by default, because the keyring of
//! the machine the backup came from is not here). The store key is part of
//! the secrets, so the restored `mail.db` opens as before.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use keys::{Identity, PassphraseSource, Protection as SecretProtection, ProtectionUsed};
use rand::Rng;
use zeroize::Zeroizing;

use super::container::{self, ContainerError, Protection};
use super::{MAILBOX_DB, MANIFEST, Manifest, PLAIN_FILES, SECRETS, STORE, normalize_recovery_code};
use crate::home::Home;

/// What `mailnode restore` was asked for.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The backup file.
    pub file: PathBuf,
    /// Replace an existing home (it is moved aside, not deleted).
    pub force: bool,
    /// Where the backup's passphrase or recovery code comes from.
    pub backup_secret: PassphraseSource,
    /// How the restored node's secrets are protected.
    pub protection: SecretProtection,
}

/// What a restore brought back.
#[derive(Debug)]
pub struct Restored {
    /// The manifest of the backup.
    pub manifest: Manifest,
    /// Where the restored secrets are kept.
    pub secrets: ProtectionUsed,
    /// Where the home that was in the way went (`--force`).
    pub moved_aside: Option<PathBuf>,
}

/// A directory removed (with everything in it) unless kept.
struct Staging {
    path: PathBuf,
    keep: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Describes what is in an existing home, for the refusal.
fn describe_home(path: &Path) -> anyhow::Result<Option<String>> {
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) if err.kind() == io::ErrorKind::NotADirectory => {
            return Ok(Some(format!("{} is a file, not a home", path.display())));
        }
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    names.sort();
    let mut what = Vec::new();
    if let Ok(info) = Identity::public_info(path) {
        what.push(format!(
            "the identity of {} <{}> (fingerprint {})",
            info.card.name(),
            info.card.address(),
            info.card.fingerprint()
        ));
    }
    if let Ok(meta) = fs::metadata(path.join(STORE)) {
        what.push(format!("a mail store of {} KiB", meta.len() / 1024));
    }
    what.push(format!("the files {}", names.join(", ")));
    Ok(Some(format!(
        "{} already exists and holds {}",
        path.display(),
        what.join("; ")
    )))
}

/// `mailnode restore`.
pub fn restore(home: &Home, request: &RestoreRequest) -> anyhow::Result<Restored> {
    let target = home.path();
    let in_the_way = describe_home(target)?;
    // Held until the old home is moved aside: no daemon may start in it
    // meanwhile.
    let mut _lock = None;
    if let Some(description) = &in_the_way {
        if !request.force {
            bail!(
                "{description}. Nothing was restored. Restore into another --home, or pass \
                 --force to move that directory aside (to {}) and restore in its place",
                aside_name(target).display()
            );
        }
        if target.is_dir() {
            // Holding the daemon lock proves no daemon uses the home.
            _lock = Some(home.lock().context("cannot replace a home in use")?);
        }
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let input = File::open(&request.file)
        .with_context(|| format!("cannot open {}", request.file.display()))?;
    let file_len = input.metadata()?.len();
    let reader = container::open(
        io::BufReader::with_capacity(1 << 20, input),
        file_len,
        |kind| obtain_secret(&request.backup_secret, kind),
    )
    .map_err(|err| explain(err, &request.file))?;

    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "home".into());
    let staging = Staging {
        path: parent.join(format!(
            ".{name}.restore-{:08x}",
            rand::thread_rng().r#gen::<u32>()
        )),
        keep: false,
    };
    fs::create_dir(&staging.path)
        .with_context(|| format!("cannot create {}", staging.path.display()))?;
    crate::home::set_private(&staging.path)?;

    let (manifest, secrets) =
        unpack(reader, &staging.path).map_err(|err| explain_any(err, &request.file))?;
    let identity = Identity::import_secrets(&secrets)
        .context("the backup's secrets do not form a usable identity")?;
    drop(secrets);
    if identity.fingerprint() != manifest.fingerprint {
        bail!("the backup is inconsistent: its secrets belong to another identity than it names");
    }
    let store = staging.path.join(STORE);
    match (manifest.store, store.exists()) {
        (true, true) => crate::store::Store::verify_file(&store, identity.store_key())
            .map_err(|err| anyhow::anyhow!("the restored mail store is not usable: {err}"))?,
        (false, false) => {}
        (true, false) => {
            bail!("the backup should hold the message store but does not; nothing was restored")
        }
        (false, true) => bail!("the backup holds a message store its manifest does not announce"),
    }
    let used = identity
        .save(&staging.path, &request.protection)
        .context("cannot protect the restored secrets")?;

    let moved_aside = if in_the_way.is_some() {
        let aside = aside_name(target);
        fs::rename(target, &aside).with_context(|| {
            format!(
                "cannot move {} aside to {}",
                target.display(),
                aside.display()
            )
        })?;
        Some(aside)
    } else {
        // An empty directory is no home; it gives way.
        if target.is_dir() {
            fs::remove_dir(target)
                .with_context(|| format!("cannot replace the empty {}", target.display()))?;
        }
        None
    };
    fs::rename(&staging.path, target).with_context(|| {
        format!(
            "cannot rename {} to {}",
            staging.path.display(),
            target.display()
        )
    })?;
    let mut staging = staging;
    staging.keep = true;
    if let Ok(dir) = File::open(&parent) {
        let _ = dir.sync_all();
    }
    Ok(Restored {
        manifest,
        secrets: used,
        moved_aside,
    })
}

fn aside_name(target: &Path) -> PathBuf {
    let stamp = crate::outbox::now_ms().max(0) / 1000;
    PathBuf::from(format!("{}.before-restore-{stamp}", target.display()))
}

fn obtain_secret(
    source: &PassphraseSource,
    kind: Protection,
) -> Result<Zeroizing<String>, ContainerError> {
    let what = match kind {
        Protection::Passphrase => "passphrase",
        Protection::RecoveryCode => "recovery code",
    };
    let secret = source
        .obtain(false)
        .map_err(|err| ContainerError::Kdf(err.to_string()))?
        .ok_or_else(|| {
            ContainerError::Kdf(format!(
                "this backup is protected by a {what}; give it in {}, with \
                 --backup-passphrase-file FILE, or run this in a terminal to be asked",
                super::BACKUP_PASSPHRASE_ENV
            ))
        })?;
    Ok(match kind {
        Protection::Passphrase => secret,
        Protection::RecoveryCode => normalize_recovery_code(&secret),
    })
}

fn explain(err: ContainerError, file: &Path) -> anyhow::Error {
    anyhow::anyhow!("cannot restore {}: {err}", file.display())
}

fn explain_any(err: anyhow::Error, file: &Path) -> anyhow::Error {
    match err.downcast::<io::Error>() {
        Ok(io) => explain(container::unwrap_io(io), file),
        Err(other) => other.context(format!("cannot restore {}", file.display())),
    }
}

/// Reads every entry: the manifest and secrets stay in memory, the files go
/// into `dir`. Unknown entries are refused (a newer layout).
fn unpack(
    mut reader: container::Reader<impl Read>,
    dir: &Path,
) -> anyhow::Result<(Manifest, Zeroizing<Vec<u8>>)> {
    let mut manifest: Option<Manifest> = None;
    let mut secrets: Option<Zeroizing<Vec<u8>>> = None;
    loop {
        let mut len_bytes = [0u8; 2];
        match reader.read(&mut len_bytes[..1])? {
            0 => break,
            _ => reader.read_exact(&mut len_bytes[1..])?,
        }
        let mut name = vec![0u8; usize::from(u16::from_be_bytes(len_bytes))];
        reader.read_exact(&mut name)?;
        let name = String::from_utf8(name).context("the backup has an entry with a bad name")?;
        let mut size = [0u8; 8];
        reader.read_exact(&mut size)?;
        let size = u64::from_be_bytes(size);
        let small = |size: u64| -> anyhow::Result<usize> {
            if size > 64 * 1024 * 1024 {
                bail!("the backup's entry {name} is implausibly large ({size} bytes)");
            }
            Ok(size as usize)
        };
        if manifest.is_none() && name != MANIFEST {
            bail!("the backup does not start with its manifest");
        }
        match name.as_str() {
            MANIFEST => {
                let mut bytes = vec![0u8; small(size)?];
                reader.read_exact(&mut bytes)?;
                let parsed: Manifest = serde_json::from_slice(&bytes)
                    .context("the backup's manifest is unreadable")?;
                if parsed.format != super::ARCHIVE_FORMAT {
                    bail!(
                        "the backup's contents have layout {}; this mailnode reads {}. Use a \
                         newer mailnode",
                        parsed.format,
                        super::ARCHIVE_FORMAT
                    );
                }
                manifest = Some(parsed);
            }
            SECRETS => {
                let mut bytes = Zeroizing::new(vec![0u8; small(size)?]);
                reader.read_exact(&mut bytes)?;
                secrets = Some(bytes);
            }
            STORE | MAILBOX_DB => copy_out(&mut reader, &dir.join(&name), size)?,
            other if PLAIN_FILES.contains(&other) => {
                copy_out(&mut reader, &dir.join(other), small(size)? as u64)?
            }
            other => bail!("the backup holds an entry this mailnode does not know: {other}"),
        }
    }
    if !reader.at_end() {
        bail!("the backup ended before its last part");
    }
    let manifest = manifest.context("the backup has no manifest")?;
    let secrets = secrets.context("the backup holds no secrets")?;
    Ok((manifest, secrets))
}

fn copy_out(reader: &mut impl Read, path: &Path, size: u64) -> anyhow::Result<()> {
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let copied = io::copy(&mut reader.take(size), &mut out)?;
    if copied != size {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    out.flush()?;
    out.sync_all()?;
    Ok(())
}
