//! The cards of strangers: senders who are not contacts but whose mail waits
//! in the `Requests` folder.
//!
//! When a node files a stranger's message in Requests it keeps the card the
//! message came with here, in `strangers.json` in the home, so that
//! `mailnode contacts accept ADDRESS` can make that sender a contact later
//! without asking for their card again. Cards are public data, so the file is
//! not encrypted (like `contacts.json`); it says who wrote to this node, which
//! the mail store's Requests folder says anyway.
//!
//! Only the daemon writes this file (one writer: no lost updates); the
//! command line reads it. It holds at most [`MAX_STRANGERS`] cards; when full,
//! the one seen longest ago makes room. Writes are atomic.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::KeyError;
use crate::book::write_atomically;
use crate::card::ContactCard;

const STRANGERS_FILE: &str = "strangers.json";

/// The most cards kept. Limits in the daemon (`[strangers]`) bound how fast
/// new ones arrive; this bounds the file.
pub const MAX_STRANGERS: usize = 10_000;

/// One stranger: their card and when their first message was filed.
#[derive(Debug, Clone)]
pub struct Stranger {
    /// The card their message carried (its PeerId binding was checked).
    pub card: ContactCard,
    /// When their first kept message arrived, seconds since the Unix epoch.
    pub first_seen: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredStranger {
    card: String,
    first_seen: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredStrangers {
    version: u32,
    strangers: Vec<StoredStranger>,
}

/// The stranger list of one home.
#[derive(Debug)]
pub struct StrangerBook {
    path: PathBuf,
    strangers: Vec<Stranger>,
    loaded_stamp: Option<(SystemTime, u64)>,
}

impl StrangerBook {
    /// Opens the list of `home` (empty if there is none yet).
    pub fn open(home: &Path) -> Result<StrangerBook, KeyError> {
        let mut book = StrangerBook {
            path: home.join(STRANGERS_FILE),
            strangers: Vec::new(),
            loaded_stamp: None,
        };
        book.load()?;
        Ok(book)
    }

    fn stamp(&self) -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(&self.path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    fn load(&mut self) -> Result<(), KeyError> {
        let stamp = self.stamp();
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.strangers.clear();
                self.loaded_stamp = None;
                return Ok(());
            }
            Err(err) => return Err(KeyError::io(&self.path, err)),
        };
        let corrupt = |reason: String| KeyError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        let stored: StoredStrangers =
            serde_json::from_slice(&bytes).map_err(|err| corrupt(err.to_string()))?;
        if stored.version != 1 {
            return Err(corrupt(format!("unknown version {}", stored.version)));
        }
        let mut strangers = Vec::with_capacity(stored.strangers.len());
        for entry in stored.strangers {
            let card = ContactCard::from_bytes(entry.card.as_bytes())
                .map_err(|err| corrupt(err.to_string()))?;
            strangers.push(Stranger {
                card,
                first_seen: entry.first_seen,
            });
        }
        self.strangers = strangers;
        self.loaded_stamp = stamp;
        Ok(())
    }

    /// Re-reads the file if it changed on disk since it was loaded. Returns
    /// whether it did.
    pub fn reload_if_changed(&mut self) -> Result<bool, KeyError> {
        if self.stamp() != self.loaded_stamp {
            self.load()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn save(&mut self) -> Result<(), KeyError> {
        let stored = StoredStrangers {
            version: 1,
            strangers: self
                .strangers
                .iter()
                .map(|s| StoredStranger {
                    card: s.card.to_armored(),
                    first_seen: s.first_seen,
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&stored)
            .map_err(|err| KeyError::AddressBook(err.to_string()))?;
        write_atomically(&self.path, &json, false).map_err(|err| KeyError::io(&self.path, err))?;
        self.loaded_stamp = self.stamp();
        Ok(())
    }

    /// Keeps `card` (seen at `now_secs`) unless a card with its fingerprint
    /// is kept already. Returns whether the file changed. When the list is
    /// full, the stranger seen longest ago is dropped.
    pub fn remember(&mut self, card: &ContactCard, now_secs: i64) -> Result<bool, KeyError> {
        if self.by_fingerprint(card.fingerprint()).is_some() {
            return Ok(false);
        }
        while self.strangers.len() >= MAX_STRANGERS {
            let oldest = self
                .strangers
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.first_seen)
                .map(|(index, _)| index);
            match oldest {
                Some(index) => {
                    self.strangers.remove(index);
                }
                None => break,
            }
        }
        self.strangers.push(Stranger {
            card: card.clone(),
            first_seen: now_secs,
        });
        self.save()?;
        Ok(true)
    }

    /// Drops the stranger with this fingerprint (they became a contact).
    /// Returns whether there was one.
    pub fn forget(&mut self, fingerprint: &str) -> Result<bool, KeyError> {
        let before = self.strangers.len();
        self.strangers
            .retain(|s| !s.card.fingerprint().eq_ignore_ascii_case(fingerprint));
        if self.strangers.len() == before {
            return Ok(false);
        }
        self.save()?;
        Ok(true)
    }

    /// Every stranger kept, oldest first.
    pub fn list(&self) -> &[Stranger] {
        &self.strangers
    }

    /// The strangers whose card has this address (case-insensitive). More
    /// than one means several keys claim the address.
    pub fn by_address(&self, address: &str) -> Vec<&Stranger> {
        self.strangers
            .iter()
            .filter(|s| s.card.address().eq_ignore_ascii_case(address))
            .collect()
    }

    /// The stranger with this fingerprint.
    pub fn by_fingerprint(&self, fingerprint: &str) -> Option<&Stranger> {
        self.strangers
            .iter()
            .find(|s| s.card.fingerprint().eq_ignore_ascii_case(fingerprint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    #[test]
    fn remember_find_forget_and_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let carol = Identity::generate("Carol", "carol@example.org").expect("carol");
        let mut daemon = StrangerBook::open(dir.path()).expect("open");
        assert!(daemon.list().is_empty());
        assert!(daemon.remember(carol.card(), 100).expect("remember"));
        assert!(!daemon.remember(carol.card(), 200).expect("again"));

        let mut cli = StrangerBook::open(dir.path()).expect("reopen");
        let found = cli.by_address("CAROL@example.org");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].first_seen, 100);
        assert_eq!(found[0].card.peer_id(), carol.peer_id());

        assert!(daemon.forget(carol.card().fingerprint()).expect("forget"));
        assert!(!daemon.forget(carol.card().fingerprint()).expect("again"));
        assert!(cli.reload_if_changed().expect("reload"));
        assert!(cli.by_fingerprint(carol.card().fingerprint()).is_none());
        assert!(!cli.reload_if_changed().expect("unchanged"));
    }

    #[test]
    fn a_damaged_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(STRANGERS_FILE), b"{\"version\": 7").expect("write");
        let err = StrangerBook::open(dir.path()).expect_err("damaged");
        assert!(err.to_string().contains("strangers.json"), "{err}");
    }
}
