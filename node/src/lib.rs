//! The mailnode daemon: store, network, outbox and the wiring of the bridge.
//!
//! The `mailnode` binary (`main.rs`) is thin glue over this library.

pub mod network;
pub mod store;
