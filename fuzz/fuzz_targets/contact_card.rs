//! Fuzz target `contact_card`: see [`mailnode_fuzz::node::contact_card`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::node::contact_card(data));
