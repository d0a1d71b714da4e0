//! Fuzz target `imap_session`: see [`mailnode_fuzz::loopback::imap_session`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::loopback::imap_session(data));
