//! Fuzz target `pgpmime_unwrap`: see [`mailnode_fuzz::node::pgpmime_unwrap`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::node::pgpmime_unwrap(data));
