//! The daemon's shared view of the address book.
//!
//! The address book file is owned by the `keys` crate and may be changed by
//! `mailnode contacts import` while the daemon runs; every lookup here first
//! reloads it if the file changed, so a contact added from the command line
//! is usable at once without a restart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use keys::{AddressBook, CardUpdate, Contact, ContactCard, KeyError, Outcome};
use libp2p::PeerId;

/// A cloneable handle to the address book.
#[derive(Clone)]
pub struct Contacts {
    book: Arc<Mutex<AddressBook>>,
    /// Counts reloads of the file, so a watcher can tell it changed.
    generation: Arc<AtomicU64>,
}

impl Contacts {
    /// Wraps an opened address book.
    pub fn new(book: AddressBook) -> Contacts {
        Contacts {
            book: Arc::new(Mutex::new(book)),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    fn with_book<T>(&self, f: impl FnOnce(&AddressBook) -> T) -> T {
        let mut book = self.locked();
        match book.reload_if_changed() {
            Ok(true) => {
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
            Ok(false) => {}
            Err(err) => {
                tracing::warn!("cannot reload the address book, using the loaded copy: {err}")
            }
        }
        f(&book)
    }

    /// Adds a card (no address hints). The daemon does this only when the
    /// user promoted a stranger by moving their message out of Requests;
    /// `AddressBook::add` re-reads the file first, so a concurrent
    /// `mailnode contacts import` is not lost.
    pub fn add(&self, card: ContactCard) -> Result<Outcome, KeyError> {
        self.locked().add(card, Vec::new(), false)
    }

    /// Stores an accepted card update of a contact (`card_update`),
    /// keeping their hints and verified mark. Returns whether the contact
    /// was still there.
    pub fn apply_update(&self, update: &CardUpdate) -> Result<bool, KeyError> {
        self.locked().apply_update(update)
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, AddressBook> {
        match self.book.lock() {
            Ok(book) => book,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A number that changes whenever the address book file was re-read
    /// (checks the file first). The promotion of strangers watches it.
    pub fn generation(&self) -> u64 {
        self.with_book(|_| ());
        self.generation.load(Ordering::Acquire)
    }

    /// Every contact.
    pub fn all(&self) -> Vec<Contact> {
        self.with_book(|book| book.list().to_vec())
    }

    /// The contact with this address (case-insensitive).
    pub fn by_address(&self, address: &str) -> Option<Contact> {
        self.with_book(|book| book.by_address(address).cloned())
    }

    /// The contact whose card binds this PeerId.
    pub fn by_peer_id(&self, peer: &PeerId) -> Option<Contact> {
        self.with_book(|book| book.by_peer_id(peer).cloned())
    }

    /// The contact with this certificate fingerprint.
    pub fn by_fingerprint(&self, fingerprint: &str) -> Option<Contact> {
        self.with_book(|book| book.by_fingerprint(fingerprint).cloned())
    }
}
