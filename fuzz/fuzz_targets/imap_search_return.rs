//! Fuzz target `imap_search_return`: see [`mailnode_fuzz::imap::imap_search_return`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailnode_fuzz::imap::imap_search_return(data));
