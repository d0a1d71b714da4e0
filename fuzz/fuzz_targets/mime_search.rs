//! Fuzz target `mime_search`: see [`mailnode_fuzz::mime::mime_search`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::mime::mime_search(data));
