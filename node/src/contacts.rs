//! The daemon's shared view of the address book.
//!
//! The address book file is owned by the `keys` crate and may be changed by
//! `mailnode contacts import` while the daemon runs; every lookup here first
//! reloads it if the file changed, so a contact added from the command line
//! is usable at once without a restart.

use std::sync::{Arc, Mutex};

use keys::{AddressBook, Contact};
use libp2p::PeerId;

/// A cloneable handle to the address book.
#[derive(Clone)]
pub struct Contacts {
    book: Arc<Mutex<AddressBook>>,
}

impl Contacts {
    /// Wraps an opened address book.
    pub fn new(book: AddressBook) -> Contacts {
        Contacts {
            book: Arc::new(Mutex::new(book)),
        }
    }

    fn with_book<T>(&self, f: impl FnOnce(&AddressBook) -> T) -> T {
        let mut book = match self.book.lock() {
            Ok(book) => book,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(err) = book.reload_if_changed() {
            tracing::warn!("cannot reload the address book, using the loaded copy: {err}");
        }
        f(&book)
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
