//! Fuzz target `verified_mark`: see [`mailnode_fuzz::node::verified_mark`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::node::verified_mark(data));
