//! Secret protection against a real Secret Service (gnome-keyring under
//! `dbus-run-session`) and on a headless machine with no session bus.
//!
//! The keyring crate chooses its store once per process from the process
//! environment, so each case runs this test binary again as a child process
//! in the environment it needs (`MAILNODE_KEYRING_CASE` says which case the
//! child is), and the parent asserts on the child's outcome.

use std::path::Path;
use std::process::Command;

use keys::{Identity, KeyError, PassphraseSource, Protection, ProtectionUsed, Unlocker};

const CASE_ENV: &str = "MAILNODE_KEYRING_CASE";

/// Runs `test_name` of this binary again in a child, with `case` set.
fn run_child(test_name: &str, case: &str, under_dbus: bool) {
    let exe = std::env::current_exe().expect("test binary path");
    let home = tempfile::tempdir().expect("tempdir");
    let mut command = if under_dbus {
        // A private session bus with a fresh, unlocked gnome-keyring.
        let script = r#"printf 'keyring-test' | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1 && exec "$@""#;
        let mut c = Command::new("dbus-run-session");
        c.args(["--", "sh", "-c", script, "sh"]);
        c.arg(&exe);
        c
    } else {
        let mut c = Command::new(&exe);
        c.env_remove("DBUS_SESSION_BUS_ADDRESS");
        c
    };
    let output = command
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CASE_ENV, case)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", home.path())
        .env_remove("MAILNODE_PASSPHRASE")
        .output()
        .expect("dbus-run-session and gnome-keyring are installed (scripts/install-test-deps)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child case {case} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn in_child(case: &str) -> bool {
    std::env::var(CASE_ENV).as_deref() == Ok(case)
}

fn save_and_load(home: &Path, protection: Protection) -> ProtectionUsed {
    let alice = Identity::generate("Alice", "alice@example.org").expect("generate");
    let used = alice.save(home, &protection).expect("save");
    let unlocker = Unlocker::new(PassphraseSource::fixed("not used by the keyring"));
    let loaded = Identity::load(home, &unlocker).expect("load");
    assert_eq!(loaded.fingerprint(), alice.fingerprint());
    assert_eq!(loaded.bridge_password(), alice.bridge_password());
    assert_eq!(loaded.store_key(), alice.store_key());
    used
}

#[test]
fn keyring_holds_the_unlock_key_under_a_real_secret_service() {
    if !in_child("keyring") {
        run_child(
            "keyring_holds_the_unlock_key_under_a_real_secret_service",
            "keyring",
            true,
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        save_and_load(&dir.path().join("a").tap_create(), Protection::Keyring),
        ProtectionUsed::Keyring
    );
    // Auto prefers the keyring when it is reachable.
    let auto = Protection::Auto(PassphraseSource::fixed("a fallback passphrase"));
    assert_eq!(
        save_and_load(&dir.path().join("b").tap_create(), auto),
        ProtectionUsed::Keyring
    );
}

#[test]
fn two_devices_of_one_identity_keep_two_keyring_entries() {
    if !in_child("devices") {
        run_child(
            "two_devices_of_one_identity_keep_two_keyring_entries",
            "devices",
            true,
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut phone = Identity::generate("Bob", "bob@example.org").expect("generate");
    let keypair = keys::Keypair::generate_ed25519();
    phone
        .add_device(keypair.public().to_peer_id())
        .expect("add the laptop");
    let laptop =
        Identity::join_device(&phone.export_for_device().expect("bundle"), keypair).expect("join");
    let (phone_home, laptop_home) = (
        dir.path().join("phone").tap_create(),
        dir.path().join("laptop").tap_create(),
    );
    phone
        .save(&phone_home, &Protection::Keyring)
        .expect("save phone");
    // The laptop's entry must not replace the phone's: same fingerprint.
    laptop
        .save(&laptop_home, &Protection::Keyring)
        .expect("save laptop");
    let unlocker = Unlocker::new(PassphraseSource::fixed("not used by the keyring"));
    for (home, identity) in [(&phone_home, &phone), (&laptop_home, &laptop)] {
        let loaded = Identity::load(home, &unlocker).expect("load");
        assert_eq!(loaded.peer_id(), identity.peer_id());
        assert_eq!(loaded.bridge_password(), identity.bridge_password());
    }
}

#[test]
fn without_a_session_bus_auto_falls_back_to_the_passphrase() {
    if !in_child("headless") {
        run_child(
            "without_a_session_bus_auto_falls_back_to_the_passphrase",
            "headless",
            false,
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let auto = Protection::Auto(PassphraseSource::fixed("a fallback passphrase"));
    let alice = Identity::generate("Alice", "alice@example.org").expect("generate");
    let home = dir.path().join("auto").tap_create();
    assert_eq!(
        alice.save(&home, &auto).expect("save"),
        ProtectionUsed::Passphrase
    );
    let unlocker = Unlocker::new(PassphraseSource::fixed("a fallback passphrase"));
    let loaded = Identity::load(&home, &unlocker).expect("load");
    assert_eq!(loaded.fingerprint(), alice.fingerprint());

    // Asking for the keyring where there is none is a clear error, and
    // nothing is written.
    let home = dir.path().join("keyring").tap_create();
    let err = alice
        .save(&home, &Protection::Keyring)
        .expect_err("no keyring here");
    assert!(matches!(err, KeyError::Keyring(_)), "{err}");
    assert!(err.to_string().contains("keyring"), "{err}");
    assert!(!Identity::exists(&home));
}

/// Small helper: create a directory and return its path.
trait TapCreate {
    fn tap_create(self) -> std::path::PathBuf;
}

impl TapCreate for std::path::PathBuf {
    fn tap_create(self) -> std::path::PathBuf {
        std::fs::create_dir_all(&self).expect("mkdir");
        self
    }
}
