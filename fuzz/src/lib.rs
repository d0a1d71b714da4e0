//! The bodies of mailnode's fuzz targets, one public function per target.
//!
//! Each `fuzz_targets/<name>.rs` is a one-line `fuzz_target!` that calls the
//! function of the same name here. Keeping the bodies in a library lets the
//! replay test (`tests/replay.rs`) run every seed and every saved crash on
//! the stable toolchain, without libFuzzer, so a crash found once stays a
//! failing test until it is fixed.
//!
//! A target "finds" something by panicking: the code under test panicked,
//! hung (the loopback harnesses give up after [`loopback::SESSION_DEADLINE`]),
//! or broke one of the invariants asserted here (each assertion says which
//! promise of the code under test it checks). Every parser here reads bytes
//! from a stranger: a mail client on localhost, a peer on the network, or a
//! message that a peer sent.
//!
//! This crate must not be a workspace member: it is built only by
//! `cargo fuzz` (see `docs/fuzzing.md`).

#![forbid(unsafe_code)]

pub mod imap;
pub mod loopback;
pub mod mime;
#[cfg(feature = "node")]
pub mod node;
pub mod samples;
pub mod smtp;

/// A fuzz target: its name (as in `fuzz_targets/<name>.rs`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target built with the enabled features, in the order
/// `scripts/fuzz` runs them.
pub fn targets() -> Vec<Target> {
    let bridge: Vec<Target> = vec![
        ("imap_command", imap::imap_command),
        ("imap_session", loopback::imap_session),
        ("imap_search_return", imap::imap_search_return),
        ("smtp_framing", smtp::smtp_framing),
        ("smtp_command", smtp::smtp_command),
        ("smtp_session", loopback::smtp_session),
        ("mime_envelope", mime::mime_envelope),
        ("mime_body_structure", mime::mime_body_structure),
        ("mime_section", mime::mime_section),
        ("mime_search", mime::mime_search),
        ("mime_sort_fields", mime::mime_sort_fields),
    ];
    #[cfg(feature = "node")]
    let bridge = [
        bridge,
        vec![
            ("pgpmime_unwrap", node::pgpmime_unwrap as fn(&[u8])),
            ("rawmail_parse", node::rawmail_parse),
            ("verified_mark", node::verified_mark),
            ("contact_card", node::contact_card),
            ("delivery_cbor", node::delivery_cbor),
            ("delivery_batch_cbor", node::delivery_batch_cbor),
            ("pgp_open", node::pgp_open),
            ("control_card", node::control_card),
            ("device_sync_batch", node::device_sync_batch),
        ],
    ]
    .concat();
    bridge
}
