//! The Autocrypt peer states (Autocrypt Level 1 §2.3) of the people the
//! user writes to through the gateway: one [`PeerState`] per address,
//! learned from the headers of fetched mail or from a key the user
//! imported (`mailnode gateway key import`).
//!
//! Who the user corresponds with is private, so the records are sealed
//! under the store key in `autocrypt.enc` ([`super::sealed`]). The daemon
//! and the CLI share the file: a reader reloads it when its modification
//! time changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sequoia_openpgp::Cert;
use sequoia_openpgp::parse::Parse;
use zeroize::Zeroizing;

use super::autocrypt::{AutocryptHeader, PeerState};
use crate::home::write_atomic;

/// File name inside the home.
pub const PEERS_FILE: &str = "autocrypt.enc";
const LABEL: &[u8] = b"mailnode autocrypt peers\0";
const AAD: &[u8] = b"mailnode autocrypt peers v1";

struct Book {
    path: PathBuf,
    store_key: Zeroizing<[u8; 32]>,
    peers: BTreeMap<String, PeerState>,
    modified: Option<SystemTime>,
}

/// The peer states; cheap to clone, shared by the fetch loop and the
/// submission path.
#[derive(Clone)]
pub struct AutocryptPeers {
    book: Arc<Mutex<Book>>,
}

impl std::fmt::Debug for AutocryptPeers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutocryptPeers").finish_non_exhaustive()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Book {
    fn load(&mut self) -> anyhow::Result<()> {
        let file = match std::fs::read(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.peers.clear();
                self.modified = None;
                return Ok(());
            }
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        let plain = super::sealed::open(LABEL, &self.store_key, AAD, &file).with_context(|| {
            format!(
                "{} does not decrypt with this node's key (damaged?); move it away to start \
                 the Autocrypt records afresh",
                self.path.display()
            )
        })?;
        self.peers = serde_json::from_slice(&plain)
            .with_context(|| format!("{} is damaged", self.path.display()))?;
        self.modified = modified(&self.path);
        Ok(())
    }

    fn reload_if_changed(&mut self) -> anyhow::Result<()> {
        if modified(&self.path) != self.modified {
            self.load()?;
        }
        Ok(())
    }

    fn save(&mut self) -> anyhow::Result<()> {
        let json = Zeroizing::new(serde_json::to_vec(&self.peers).context("cannot encode")?);
        let file = super::sealed::seal(LABEL, &self.store_key, AAD, &json);
        write_atomic(&self.path, &file)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.modified = modified(&self.path);
        Ok(())
    }
}

impl AutocryptPeers {
    /// Opens the records in `home` (none yet is fine).
    pub fn open(home: &Path, store_key: &[u8; 32]) -> anyhow::Result<AutocryptPeers> {
        let mut book = Book {
            path: home.join(PEERS_FILE),
            store_key: Zeroizing::new(*store_key),
            peers: BTreeMap::new(),
            modified: None,
        };
        book.load()?;
        Ok(AutocryptPeers {
            book: Arc::new(Mutex::new(book)),
        })
    }

    fn with<T>(&self, op: impl FnOnce(&mut Book) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut book = self
            .book
            .lock()
            .map_err(|_| anyhow::anyhow!("the Autocrypt records are poisoned"))?;
        book.reload_if_changed()?;
        op(&mut book)
    }

    /// Applies one received message from `addr` dated `date` (Unix
    /// seconds), with its valid header if it had one; saves when the state
    /// changed. Returns whether it did.
    pub fn record(
        &self,
        addr: &str,
        date: i64,
        header: Option<&AutocryptHeader>,
    ) -> anyhow::Result<bool> {
        let addr = addr.trim().to_ascii_lowercase();
        let now = chrono::Utc::now().timestamp();
        self.with(|book| {
            let changed = book
                .peers
                .entry(addr)
                .or_default()
                .update(date, now, header);
            if changed {
                book.save()?;
            }
            Ok(changed)
        })
    }

    /// Stores `cert` as the key of `addr`, as if a message with its header
    /// arrived now (a newer header later replaces it, Autocrypt §2.3).
    pub fn import(&self, addr: &str, cert: &Cert) -> anyhow::Result<()> {
        use sequoia_openpgp::serialize::Serialize;
        let mut bytes = Vec::new();
        cert.serialize(&mut bytes)
            .context("cannot encode the imported key")?;
        let addr = addr.trim().to_ascii_lowercase();
        let now = chrono::Utc::now().timestamp();
        self.with(|book| {
            // An import wins over what was seen before, whatever its date;
            // a newer header later replaces it.
            let state = book.peers.entry(addr).or_default();
            state.last_seen = state.last_seen.max(now);
            state.autocrypt_timestamp = state.last_seen;
            state.keydata = Some(B64.encode(&bytes));
            state.prefer_mutual = false;
            book.save()
        })
    }

    /// The key known for `addr`, if any and if it parses.
    pub fn key_for(&self, addr: &str) -> anyhow::Result<Option<Cert>> {
        let addr = addr.trim().to_ascii_lowercase();
        self.with(|book| {
            let Some(keydata) = book.peers.get(&addr).and_then(|s| s.keydata.as_ref()) else {
                return Ok(None);
            };
            let Ok(bytes) = B64.decode(keydata) else {
                return Ok(None);
            };
            Ok(Cert::from_bytes(&bytes).ok())
        })
    }

    /// Every address with its state, for `gateway key list`.
    pub fn list(&self) -> anyhow::Result<Vec<(String, PeerState)>> {
        self.with(|book| {
            Ok(book
                .peers
                .iter()
                .map(|(addr, state)| (addr.clone(), state.clone()))
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_sealed_and_shared_through_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = [9u8; 32];
        let a = AutocryptPeers::open(dir.path(), &key).expect("open");
        let header = AutocryptHeader {
            addr: "carol@example.net".into(),
            prefer_mutual: true,
            keydata: "bm90IGEga2V5".into(),
        };
        assert!(
            a.record("Carol@Example.net", 100, Some(&header))
                .expect("record")
        );
        assert!(!a.record("carol@example.net", 50, None).expect("older"));
        let raw = std::fs::read(dir.path().join(PEERS_FILE)).expect("file");
        assert!(
            !raw.windows(5).any(|w| w == b"carol"),
            "address in the clear"
        );

        let b = AutocryptPeers::open(dir.path(), &key).expect("reopen");
        let list = b.list().expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].1.keydata.as_deref(), Some("bm90IGEga2V5"));
        // Not a certificate: no key to encrypt to.
        assert!(b.key_for("carol@example.net").expect("key").is_none());
        assert!(AutocryptPeers::open(dir.path(), &[1u8; 32]).is_err());
    }
}
