//! The mailnode daemon: store, network, outbox and the wiring of the bridge.
//!
//! The `mailnode` binary (`main.rs`) is thin glue over this library: every
//! behaviour lives in these modules.

#![forbid(unsafe_code)]

pub mod announce;
pub mod backup;
pub mod bounce;
pub mod bridge_tls;
pub mod card_update;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod daemon;
pub mod device;
pub mod gateway;
pub mod home;
pub mod import;
pub mod inbound;
pub mod key_commands;
pub mod key_notice;
pub mod mailbox;
pub mod mailbox_node;
pub mod memory;
pub mod network;
pub mod outbox;
pub mod pgpmime;
pub mod pow;
pub mod qr;
pub mod rawmail;
pub mod status;
pub mod store;
pub mod strangers;
pub mod submit;
pub mod sync;
pub mod verified;
