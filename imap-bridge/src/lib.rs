//! mailnode's localhost mail bridge: an IMAP server and an SMTP submission
//! server that let ordinary mail clients use a mailnode.
//!
//! This crate is protocol only. It owns sockets, parsing, session state and
//! the mapping of errors to protocol replies; it reaches storage and the
//! outgoing mail path only through the traits in [`backend`], which the node
//! implements. It must not depend on the node, on SQLite or on OpenPGP.

pub mod backend;
pub mod config;
pub mod imap;
pub mod index;
pub mod memory;
pub mod mime;
pub mod smtp;
pub mod sort_map;
mod tcp;
pub mod tls;

pub use config::{BridgeCredentials, Secret};
