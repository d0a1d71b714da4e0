//! A throwaway Dovecot for the benchmarks that compare the bridge with it
//! (`imap_vs_dovecot`, `imaplib_vs_dovecot`): Debian's `dovecot-imapd` with
//! its own configuration on a loopback port, mdbox storage (Dovecot's own
//! high-performance format; Maildir rescans its directory on every APPEND),
//! a static password, and the resident memory of its processes.
//!
//! The gateway tests (`tests/gateway.rs`, issue 11) start it as "the
//! provider's mailbox" with [`Dovecot::start_with`]: an implicit-TLS IMAP
//! listener with a self-signed certificate for `localhost`.
//!
//! Included by each benchmark with `#[path]`; it expects the benchmark to
//! declare the e2e harness as `mod common` and `support/measure.rs` as
//! `mod measure` at its root.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common;
use crate::measure::rss;

/// The mail user every Dovecot session logs in as.
pub const DOVECOT_USER: &str = "tester";
/// Its password (a static passdb accepts it for any user name).
pub const DOVECOT_PASS: &str = "secret";

/// A throwaway Dovecot on a loopback port.
pub struct Dovecot {
    dir: tempfile::TempDir,
    /// The IMAP port on 127.0.0.1.
    pub port: u16,
    /// The implicit-TLS IMAP port on 127.0.0.1, when started with TLS.
    // Read by the gateway tests only, not by the benchmarks.
    #[allow(dead_code)]
    pub tls_port: Option<u16>,
}

/// What [`Dovecot::start_with`] sets up besides plain IMAP.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options {
    /// An implicit-TLS IMAP listener (self-signed certificate for
    /// `localhost`, made with `openssl req`).
    pub tls: bool,
}

impl Dovecot {
    /// Starts Dovecot and waits until it accepts connections.
    pub fn start() -> Dovecot {
        Dovecot::start_with(Options::default())
    }

    /// Starts Dovecot with `options` and waits until it accepts connections.
    pub fn start_with(options: Options) -> Dovecot {
        let dir = tempfile::Builder::new()
            .prefix("dovecot-bench-")
            .tempdir()
            .expect("tempdir");
        let port = common::free_port();
        let root = dir.path();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        // Dovecot refuses to run mail processes as root: the mail user is
        // `nobody`; login and internal processes use Debian's own users.
        chmod(root, 0o755);
        let status = Command::new("chown")
            .args(["nobody:nogroup", root.join("mail").to_str().expect("utf-8")])
            .status()
            .expect("chown");
        assert!(status.success());
        let d = root.display();
        let (ssl, tls_port) = if options.tls {
            let tls_port = common::free_port();
            let status = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args([
                    "-subj",
                    "/CN=localhost",
                    "-addext",
                    "subjectAltName=DNS:localhost",
                ])
                .arg("-keyout")
                .arg(root.join("key.pem"))
                .arg("-out")
                .arg(root.join("cert.pem"))
                .stderr(std::process::Stdio::null())
                .status()
                .expect("openssl is installed");
            assert!(status.success(), "openssl req failed");
            (
                format!("ssl = yes\nssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem\n"),
                Some(tls_port),
            )
        } else {
            ("ssl = no\n".to_string(), None)
        };
        let imaps_port = tls_port.unwrap_or(0);
        let config = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {d}/run\nstate_dir = {d}/state\n\
             log_path = {d}/dovecot.log\n{ssl}disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\nmail_location = mdbox:{d}/mail/%u\n\
             default_login_user = dovenull\ndefault_internal_user = dovecot\n\
             first_valid_uid = 1\n\
             passdb {{\n  driver = static\n  args = password={DOVECOT_PASS}\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={d}/mail/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  \
             inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps_port}\n    ssl = yes\n  }}\n}}\n\
             service stats {{\n  unix_listener stats-reader {{\n    mode = 0666\n  }}\n  \
             unix_listener stats-writer {{\n    mode = 0666\n  }}\n}}\n\
             protocol imap {{\n  mail_max_userip_connections = 100\n}}\n"
        );
        let conf = root.join("dovecot.conf");
        std::fs::write(&conf, config).expect("write config");
        let status = Command::new("dovecot")
            .arg("-c")
            .arg(&conf)
            .status()
            .expect("dovecot is installed (apt-get install dovecot-imapd)");
        assert!(
            status.success(),
            "dovecot failed to start; see {d}/dovecot.log"
        );
        common::wait_until(Duration::from_secs(20), "Dovecot to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        if let Some(tls_port) = tls_port {
            common::wait_until(Duration::from_secs(20), "Dovecot to listen for TLS", || {
                TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
            });
        }
        Dovecot {
            dir,
            port,
            tls_port,
        }
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    /// Sum of the RSS of every process started from this configuration.
    pub fn rss(&self) -> u64 {
        let base = self.dir.path().to_string_lossy().to_string();
        let mut total = 0;
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return 0;
        };
        let master = std::fs::read_to_string(self.dir.path().join("run/master.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmdline);
            let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit(')')
                        .next()
                        .and_then(|r| r.split_whitespace().nth(1))
                        .and_then(|p| p.parse::<u32>().ok())
                });
            if Some(pid) == master || (master.is_some() && ppid == master) || cmd.contains(&base) {
                total += rss(pid);
            }
        }
        total
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("dovecot")
            .arg("-c")
            .arg(self.conf())
            .arg("stop")
            .status();
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
