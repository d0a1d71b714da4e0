//! Fuzz target `smtp_command`: see [`mailnode_fuzz::smtp::smtp_command`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::smtp::smtp_command(data));
