//! Fuzz target `mime_envelope`: see [`mailnode_fuzz::mime::mime_envelope`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::mime::mime_envelope(data));
