//! Fuzz target `mime_body_structure`: see [`mailnode_fuzz::mime::mime_body_structure`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::mime::mime_body_structure(data));
