//! Fuzz target `pgp_open`: see [`mailnode_fuzz::node::pgp_open`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::node::pgp_open(data));
