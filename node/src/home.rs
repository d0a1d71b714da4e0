//! The node's home directory: where it is, what lives in it, and the small
//! state files the daemon writes there (`run.json`, the lock).
//!
//! Everything a node keeps is under one home (DESIGN.md "Conventions"): the
//! identity and address book (owned by the `keys` crate), `config.toml`,
//! `mail.db` (the store), `bridge-cert.pem`/`bridge-key.enc` (the bridge TLS
//! certificate) and the daemon's `run.json`. This module must not read or
//! write secrets.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A node's home directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Resolves the home: the `--home` flag (clap already merged
    /// `MAILNODE_HOME` into it), else the platform data directory.
    pub fn resolve(flag: Option<PathBuf>) -> anyhow::Result<Home> {
        let root = match flag {
            Some(path) => path,
            None => default_home().ok_or_else(|| {
                anyhow::anyhow!(
                    "cannot find a place for the node's home: set --home DIR or MAILNODE_HOME"
                )
            })?,
        };
        Ok(Home { root })
    }

    /// Creates the directory (mode 0700) if it does not exist.
    pub fn ensure_exists(&self) -> anyhow::Result<()> {
        fs::create_dir_all(&self.root).map_err(|err| {
            anyhow::anyhow!("cannot create the home {}: {err}", self.root.display())
        })?;
        set_private(&self.root)?;
        Ok(())
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// `mail.db`: the encrypted message store.
    pub fn store_file(&self) -> PathBuf {
        self.root.join("mail.db")
    }

    /// `run.json`: written by a running daemon.
    pub fn run_file(&self) -> PathBuf {
        self.root.join("run.json")
    }

    /// `daemon.lock`: held by the running daemon.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("daemon.lock")
    }

    /// `bridge-cert.pem`: the bridge's self-signed TLS certificate (public).
    pub fn bridge_cert_file(&self) -> PathBuf {
        self.root.join("bridge-cert.pem")
    }

    /// `bridge-key.enc`: the certificate's private key, encrypted with the
    /// store key.
    pub fn bridge_key_file(&self) -> PathBuf {
        self.root.join("bridge-key.enc")
    }

    /// Takes the daemon lock, so two daemons never share one home.
    pub fn lock(&self) -> anyhow::Result<File> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock_file())?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another mailnode daemon is already running with the home {}; stop it first",
                self.root.display()
            ),
            Err(fs::TryLockError::Error(err)) => Err(err.into()),
        }
    }
}

fn default_home() -> Option<PathBuf> {
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(data).join("mailnode"));
    }
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty())?;
    Some(PathBuf::from(home).join(".local/share/mailnode"))
}

/// Restricts a path to its owner (0700 for directories, 0600 for files).
pub fn set_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if path.is_dir() { 0o700 } else { 0o600 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|err| anyhow::anyhow!("cannot restrict {}: {err}", path.display()))
}

/// Writes a file atomically (temporary file, fsync, rename), owner-only.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)?;
        set_private(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    Ok(())
}

/// What a running daemon publishes about itself in `run.json`, so that the
/// CLI, scripts and tests can find its ports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunInfo {
    /// Process id of the daemon.
    pub pid: u32,
    /// Our PeerId.
    pub peer_id: String,
    /// The addresses the libp2p swarm listens on.
    pub listen: Vec<String>,
    /// IMAP bridge address (`host:port`).
    pub imap: String,
    /// SMTP bridge address (`host:port`).
    pub smtp: String,
}

impl RunInfo {
    /// Writes `run.json` atomically.
    pub fn write(&self, home: &Home) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        write_atomic(&home.run_file(), &json)
    }

    /// Reads `run.json`, if a daemon wrote one.
    pub fn read(home: &Home) -> anyhow::Result<Option<RunInfo>> {
        match fs::read(home.run_file()) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Removes `run.json` (on clean shutdown).
    pub fn remove(home: &Home) {
        let _ = fs::remove_file(home.run_file());
    }
}
