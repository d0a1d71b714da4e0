//! Fuzz target `imap_command`: see [`mailnode_fuzz::imap::imap_command`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::imap::imap_command(data));
