//! Fuzz target `smtp_session`: see [`mailnode_fuzz::loopback::smtp_session`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::loopback::smtp_session(data));
