//! Fuzz target `device_sync_batch`: see [`mailnode_fuzz::node::device_sync_batch`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::node::device_sync_batch(data));
