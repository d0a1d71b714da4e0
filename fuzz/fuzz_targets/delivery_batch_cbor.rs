//! Fuzz target `delivery_batch_cbor`: see [`mailnode_fuzz::node::delivery_batch_cbor`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::node::delivery_batch_cbor(data));
