//! Mailbox peers: public nodes that hold sealed mail for recipients who are
//! offline (issue 6, "Mailbox peers"; the protocol is specified in
//! `docs/protocol.md`, "The mailbox protocol").
//!
//! - `wire` / `codec`: the messages of `/mailnode/mailbox/1` and their
//!   framing (u32 length + CBOR, size caps before buffering);
//! - `inbox`: rotating inbox ids;
//! - `envelope`: sealing a `DeliveryRequest` for a recipient, and opening it;
//! - `service` (+ `db`, `limits`): the public node's side, on its own SQLite
//!   file `mailbox.db`;
//! - `client`: the sender's deposit, the recipient's collector and the
//!   sending of replications, against the [`MailboxTransport`] trait;
//! - `peers`: the user's chosen mailbox peers (`mailboxes.json`).
//!
//! This module owns none of the swarm: the network event loop routes
//! `/mailnode/mailbox/1` requests to [`MailboxService::handle`] and
//! implements [`MailboxTransport`] for outgoing ones. It must not file mail:
//! collected envelopes go to a callback that files them like a direct
//! delivery.

pub mod client;
pub mod codec;
mod db;
pub mod envelope;
mod error;
pub mod inbox;
mod limits;
pub mod peers;
pub mod service;
pub mod wire;

#[cfg(test)]
mod tests;

pub use client::{
    CollectReport, DepositError, Filed, MailboxTransport, collect, deposit, replicate,
};
pub use codec::{MailboxCodec, MailboxWire, oversized_response};
pub use db::Pruned;
pub use error::MailboxError;
pub use limits::{MAX_ENVELOPE_LIMIT, MailboxLimits};
pub use peers::{MailboxPeer, MailboxPeers};
pub use service::{MailboxService, Replication};
pub use wire::{MailboxRequest, MailboxResponse, PROTOCOL};

pub(crate) use crate::network::unix_now;
