//! Fuzz target `mime_section`: see [`mailnode_fuzz::mime::mime_section`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::mime::mime_section(data));
