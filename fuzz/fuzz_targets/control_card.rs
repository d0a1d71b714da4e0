//! Fuzz target `control_card`: see [`mailnode_fuzz::node::control_card`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::node::control_card(data));
