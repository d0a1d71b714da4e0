//! Fuzz target `rawmail_parse`: see [`mailnode_fuzz::node::rawmail_parse`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::node::rawmail_parse(data));
