//! Fuzz target `delivery_cbor`: see [`mailnode_fuzz::node::delivery_cbor`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::node::delivery_cbor(data));
