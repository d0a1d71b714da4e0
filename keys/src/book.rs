//! The peer address book: whom this node delivers to and accepts mail from.
//!
//! Kept in `contacts.json` in the home: each contact's armored card plus the
//! multiaddr hints for where their node listens. Cards are public data, so
//! the file is not encrypted. Writes are atomic (temporary file, fsync,
//! rename), and a running daemon picks up changes made by `mailnode contacts`
//! through [`AddressBook::reload_if_changed`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::KeyError;
use crate::card::ContactCard;
use crate::update::CardUpdate;

const BOOK_FILE: &str = "contacts.json";

/// One contact: their card and where their node may be reached.
#[derive(Debug, Clone)]
pub struct Contact {
    /// The contact's card.
    pub card: ContactCard,
    /// Addresses where their node listens (hints; may be empty).
    pub addrs: Vec<Multiaddr>,
    /// The user compared the safety number with them (`mailnode contacts
    /// verify`). A verified contact's key is never replaced by another.
    pub verified: bool,
}

/// What [`AddressBook::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new contact.
    Added,
    /// The same key was known; its card and address hints were updated.
    Updated,
    /// Another key for the same address was replaced (`--replace`).
    Replaced,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Added => "added",
            Outcome::Updated => "updated",
            Outcome::Replaced => "replaced",
        })
    }
}

#[derive(Serialize, Deserialize)]
struct StoredContact {
    card: String,
    addrs: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    verified: bool,
}

#[derive(Serialize, Deserialize)]
struct StoredBook {
    version: u32,
    contacts: Vec<StoredContact>,
}

/// The address book of one home.
#[derive(Debug)]
pub struct AddressBook {
    path: PathBuf,
    contacts: Vec<Contact>,
    loaded_stamp: Option<(SystemTime, u64)>,
}

impl AddressBook {
    /// Opens the address book of `home` (empty if there is none yet).
    pub fn open(home: &Path) -> Result<AddressBook, KeyError> {
        let path = home.join(BOOK_FILE);
        let mut book = AddressBook {
            path,
            contacts: Vec::new(),
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
                self.contacts.clear();
                self.loaded_stamp = None;
                return Ok(());
            }
            Err(err) => return Err(KeyError::io(&self.path, err)),
        };
        let corrupt = |reason: String| KeyError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        let stored: StoredBook =
            serde_json::from_slice(&bytes).map_err(|err| corrupt(err.to_string()))?;
        let mut contacts = Vec::with_capacity(stored.contacts.len());
        for entry in stored.contacts {
            // A contact's revoked card is kept: it is how the node knows
            // to refuse mail to and from that key, and why.
            let card = ContactCard::from_bytes_even_revoked(entry.card.as_bytes())
                .map_err(|err| corrupt(err.to_string()))?;
            let addrs = entry
                .addrs
                .iter()
                .filter_map(|a| a.parse::<Multiaddr>().ok())
                .collect();
            contacts.push(Contact {
                card,
                addrs,
                verified: entry.verified,
            });
        }
        self.contacts = contacts;
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
        let stored = StoredBook {
            version: 1,
            contacts: self
                .contacts
                .iter()
                .map(|c| StoredContact {
                    card: c.card.to_armored(),
                    addrs: c.addrs.iter().map(ToString::to_string).collect(),
                    verified: c.verified,
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&stored)
            .map_err(|err| KeyError::AddressBook(err.to_string()))?;
        write_atomically(&self.path, &json, false).map_err(|err| KeyError::io(&self.path, err))?;
        self.loaded_stamp = self.stamp();
        Ok(())
    }

    /// Adds a card. The same key again updates the card and merges the
    /// address hints. A different key for an address we already have is
    /// refused unless `replace` (that is how impersonation would start).
    pub fn add(
        &mut self,
        card: ContactCard,
        addrs: Vec<Multiaddr>,
        replace: bool,
    ) -> Result<Outcome, KeyError> {
        self.reload_if_changed()?;
        if let Some(existing) = self
            .contacts
            .iter_mut()
            .find(|c| c.card.fingerprint() == card.fingerprint())
        {
            // The same key again: taken as an update (a rotated card, a
            // revocation certificate), under the same rules as one by mail.
            existing.card = existing.card.check_update(&card)?.card;
            for addr in addrs {
                if !existing.addrs.contains(&addr) {
                    existing.addrs.push(addr);
                }
            }
            self.save()?;
            return Ok(Outcome::Updated);
        }
        if let Some(revocation) = card.revocation() {
            return Err(KeyError::AddressBook(format!(
                "the card of <{}> ({}) is {revocation}; mailnode does not add a revoked key",
                card.address(),
                card.fingerprint()
            )));
        }
        let clash = self.contacts.iter().position(|c| {
            c.card.address() == card.address()
                || c.card.devices().iter().any(|peer| card.has_device(peer))
        });
        let outcome = match clash {
            Some(index) if self.contacts[index].verified => {
                return Err(verified_key_changed(&self.contacts[index].card, &card));
            }
            Some(index) if replace => {
                self.contacts.remove(index);
                Outcome::Replaced
            }
            Some(index) => {
                let known = &self.contacts[index].card;
                return Err(KeyError::AddressBook(format!(
                    "<{}> is already a contact with another key ({}); this card has key {}. If \
                     they really changed keys, check the new fingerprint with them and import \
                     again with --replace",
                    known.address(),
                    known.fingerprint(),
                    card.fingerprint()
                )));
            }
            None => Outcome::Added,
        };
        self.contacts.push(Contact {
            card,
            addrs,
            verified: false,
        });
        self.save()?;
        Ok(outcome)
    }

    /// Stores an accepted card update ([`ContactCard::check_update`]) for the
    /// contact with the same fingerprint, keeping its address hints and its
    /// verified mark (the primary key, which verification is about, is the
    /// same). Returns whether there was such a contact.
    pub fn apply_update(&mut self, update: &CardUpdate) -> Result<bool, KeyError> {
        self.reload_if_changed()?;
        let Some(contact) = self
            .contacts
            .iter_mut()
            .find(|c| c.card.fingerprint() == update.card.fingerprint())
        else {
            return Ok(false);
        };
        contact.card = update.card.clone();
        self.save()?;
        Ok(true)
    }

    /// Marks the contact with this fingerprint verified. Returns whether
    /// there was one.
    pub fn set_verified(&mut self, fingerprint: &str) -> Result<bool, KeyError> {
        self.reload_if_changed()?;
        let Some(contact) = self
            .contacts
            .iter_mut()
            .find(|c| c.card.fingerprint().eq_ignore_ascii_case(fingerprint))
        else {
            return Ok(false);
        };
        contact.verified = true;
        self.save()?;
        Ok(true)
    }

    /// Removes the contact with this address. Returns whether there was one.
    pub fn remove(&mut self, address: &str) -> Result<bool, KeyError> {
        self.reload_if_changed()?;
        let before = self.contacts.len();
        self.contacts
            .retain(|c| !c.card.address().eq_ignore_ascii_case(address));
        if self.contacts.len() == before {
            return Ok(false);
        }
        self.save()?;
        Ok(true)
    }

    /// Every contact.
    pub fn list(&self) -> &[Contact] {
        &self.contacts
    }

    /// The contact with this address (case-insensitive).
    pub fn by_address(&self, address: &str) -> Option<&Contact> {
        self.contacts
            .iter()
            .find(|c| c.card.address().eq_ignore_ascii_case(address))
    }

    /// The contact one of whose devices has this PeerId.
    pub fn by_peer_id(&self, peer: &PeerId) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.card.has_device(peer))
    }

    /// The contact with this fingerprint.
    pub fn by_fingerprint(&self, fingerprint: &str) -> Option<&Contact> {
        self.contacts
            .iter()
            .find(|c| c.card.fingerprint().eq_ignore_ascii_case(fingerprint))
    }
}

/// The refusal of a new key for a verified contact.
fn verified_key_changed(known: &ContactCard, card: &ContactCard) -> KeyError {
    KeyError::AddressBook(format!(
        "<{}> is a verified contact with key {}; this card has another key, {}. mailnode never \
         replaces a verified key. If they really have a new key, check its fingerprint with \
         them, remove the old contact (`mailnode contacts remove {}`) and import the new card",
        known.address(),
        known.fingerprint(),
        card.fingerprint(),
        known.address()
    ))
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it,
/// fsync, rename, fsync of the directory. A crash leaves the old or the new
/// file, never a torn one.
/// `private` files are readable by the owner only.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    #[test]
    fn add_update_replace_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bob = Identity::generate("Bob", "bob@example.org").expect("bob");
        let mut book = AddressBook::open(dir.path()).expect("open");
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4870".parse().expect("addr");
        assert_eq!(
            book.add(bob.card().clone(), vec![addr.clone()], false)
                .expect("add"),
            Outcome::Added
        );
        assert_eq!(
            book.add(bob.card().clone(), vec![addr.clone()], false)
                .expect("again"),
            Outcome::Updated
        );
        let reopened = AddressBook::open(dir.path()).expect("reopen");
        let found = reopened.by_address("BOB@example.org").expect("found");
        assert_eq!(found.addrs, vec![addr]);
        assert!(reopened.by_peer_id(bob.peer_id()).is_some());

        let impostor = Identity::generate("Bob", "bob@example.org").expect("impostor");
        let err = book
            .add(impostor.card().clone(), vec![], false)
            .expect_err("clash");
        assert!(err.to_string().contains("--replace"), "{err}");
        assert_eq!(
            book.add(impostor.card().clone(), vec![], true)
                .expect("replace"),
            Outcome::Replaced
        );
        assert_eq!(book.list().len(), 1);
        assert!(book.remove("bob@example.org").expect("remove"));
        assert!(!book.remove("bob@example.org").expect("remove again"));
    }

    #[test]
    fn a_verified_key_is_never_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bob = Identity::generate("Bob", "bob@example.org").expect("bob");
        let mut book = AddressBook::open(dir.path()).expect("open");
        book.add(bob.card().clone(), vec![], false).expect("add");
        assert!(book.set_verified(bob.fingerprint()).expect("verify"));
        assert!(!book.set_verified("0000").expect("unknown"));
        // The same key again keeps the mark.
        book.add(bob.card().clone(), vec![], false).expect("update");
        let reopened = AddressBook::open(dir.path()).expect("reopen");
        assert!(
            reopened
                .by_address("bob@example.org")
                .expect("bob")
                .verified
        );
        let impostor = Identity::generate("Bob", "bob@example.org").expect("impostor");
        let err = book
            .add(impostor.card().clone(), vec![], true)
            .expect_err("verified");
        assert!(err.to_string().contains("verified contact"), "{err}");
        assert_eq!(
            book.by_address("bob@example.org")
                .expect("bob")
                .card
                .fingerprint(),
            bob.fingerprint()
        );
    }

    #[test]
    fn a_second_handle_sees_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut daemon_view = AddressBook::open(dir.path()).expect("open");
        let mut cli_view = AddressBook::open(dir.path()).expect("open");
        let carol = Identity::generate("Carol", "carol@example.org").expect("carol");
        cli_view
            .add(carol.card().clone(), vec![], false)
            .expect("add");
        daemon_view.reload_if_changed().expect("reload");
        assert!(daemon_view.by_address("carol@example.org").is_some());
    }
}
