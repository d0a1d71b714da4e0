//! Fuzz target `mime_sort_fields`: see [`mailnode_fuzz::mime::mime_sort_fields`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::mime::mime_sort_fields(data));
