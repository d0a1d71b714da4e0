//! Fuzz target `smtp_framing`: see [`mailnode_fuzz::smtp::smtp_framing`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::smtp::smtp_framing(data));
