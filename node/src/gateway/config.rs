//! The gateway's settings: which account, on which servers, with which
//! transport security. Kept in `gateway.json` in the home; the password is
//! not in it (see [`super::secret`]).
//!
//! This module checks the settings (host:port syntax, the loopback-only rule
//! of `--insecure-local`) and reads and writes the file. It does no I/O on
//! the network.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::home::write_atomic;

/// File name of the gateway settings inside the home.
pub const GATEWAY_FILE: &str = "gateway.json";

/// How the connection to the provider is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// TLS from the first byte (IMAP 993, SMTP submission 465).
    Implicit,
    /// A plain connection upgraded with STARTTLS before anything else is
    /// said (IMAP 143, SMTP submission 587). Refusing the upgrade is an
    /// error: nothing is ever sent in the clear.
    Starttls,
}

impl std::fmt::Display for TlsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsMode::Implicit => "implicit",
            TlsMode::Starttls => "starttls",
        })
    }
}

/// A server's host and port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Endpoint {
    /// A DNS name or an IP address (without brackets).
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `HOST:PORT` (`[v6]:PORT` for IPv6 literals).
    pub fn parse(text: &str) -> anyhow::Result<Endpoint> {
        let bad = || {
            anyhow::anyhow!(
                "{text:?} is not HOST:PORT (examples: imap.example.org:993, [::1]:1993)"
            )
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let host = if let Some(inner) = host.strip_prefix('[') {
            inner.strip_suffix(']').ok_or_else(bad)?
        } else if host.contains(':') {
            // An IPv6 literal must be bracketed, or its last group reads as
            // the port.
            return Err(bad());
        } else {
            host
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        {
            return Err(bad());
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(bad());
        }
        Ok(Endpoint {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether the host is this machine: `localhost`, 127.0.0.0/8 or ::1.
    /// Names other than `localhost` are not resolved: a name that resolves
    /// to loopback today may not tomorrow.
    pub fn is_loopback(&self) -> bool {
        if self.host == "localhost" {
            return true;
        }
        self.host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl TryFrom<String> for Endpoint {
    type Error = anyhow::Error;
    fn try_from(text: String) -> anyhow::Result<Endpoint> {
        Endpoint::parse(&text)
    }
}

impl From<Endpoint> for String {
    fn from(endpoint: Endpoint) -> String {
        endpoint.to_string()
    }
}

/// Refuses `--insecure-local` for an `endpoint` (given as option `what`)
/// that is not on this machine.
pub fn insecure_local_allowed(what: &str, endpoint: &Endpoint) -> anyhow::Result<()> {
    if !endpoint.is_loopback() {
        bail!(
            "--insecure-local turns off certificate checks and is only for servers on this \
             machine, but {what} {endpoint} is not a loopback address (localhost, 127.0.0.1, \
             ::1). Leave it out: the server's certificate is checked against the system roots"
        );
    }
    Ok(())
}

/// The gateway account, as `gateway.json` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The provider's SMTP submission server.
    pub smtp: Endpoint,
    /// The provider's IMAP server.
    pub imap: Endpoint,
    /// The login name at the provider (often the mail address).
    pub user: String,
    /// Transport security for both servers.
    pub tls: TlsMode,
    /// Accept any certificate. Only allowed when both hosts are loopback.
    #[serde(default)]
    pub insecure_local: bool,
    /// Move fetched mail into this provider folder after the local commit.
    #[serde(default)]
    pub move_to: Option<String>,
    /// When the gateway was added (Unix seconds): the first fetch takes the
    /// provider's mail from that day on (older mail is for `mailnode
    /// import`). 0 in files written before it existed: from the first
    /// start on.
    #[serde(default)]
    pub added_at: i64,
    /// Seconds between two checks of a server without IDLE (default
    /// [`DEFAULT_POLL_SECS`]).
    #[serde(default)]
    pub poll_secs: Option<u64>,
}

/// How often a server without IDLE is asked for new mail.
pub const DEFAULT_POLL_SECS: u64 = 120;

impl GatewayConfig {
    /// Checks the rules a hand-edited file could break.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.user.is_empty() || self.user.chars().any(char::is_control) {
            bail!("the gateway user name is empty or holds control characters");
        }
        if self.insecure_local {
            insecure_local_allowed("--smtp", &self.smtp)?;
            insecure_local_allowed("--imap", &self.imap)?;
        }
        if let Some(folder) = &self.move_to
            && (folder.is_empty() || folder.chars().any(char::is_control))
        {
            bail!("--move-to needs a folder name without control characters");
        }
        Ok(())
    }

    /// The interval between two checks of a server without IDLE.
    pub fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.poll_secs.unwrap_or(DEFAULT_POLL_SECS).max(1))
    }

    /// The settings file in `home`.
    pub fn path(home: &Path) -> PathBuf {
        home.join(GATEWAY_FILE)
    }

    /// Reads the gateway settings; `None` when no gateway is configured.
    pub fn load(home: &Path) -> anyhow::Result<Option<GatewayConfig>> {
        let path = GatewayConfig::path(home);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        let config: GatewayConfig = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; `mailnode gateway remove` then `gateway add` sets it up again",
                path.display()
            )
        })?;
        config
            .check()
            .with_context(|| format!("{} is not usable", path.display()))?;
        Ok(Some(config))
    }

    /// Writes the settings (atomically, owner-only).
    pub fn save(&self, home: &Path) -> anyhow::Result<()> {
        self.check()?;
        let json = serde_json::to_vec_pretty(self).context("cannot encode the gateway settings")?;
        let path = GatewayConfig::path(home);
        write_atomic(&path, &json).with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str, insecure: bool) -> GatewayConfig {
        GatewayConfig {
            smtp: Endpoint::parse(&format!("{host}:465")).expect("endpoint"),
            imap: Endpoint::parse("127.0.0.1:993").expect("endpoint"),
            user: "alice@example.org".into(),
            tls: TlsMode::Implicit,
            insecure_local: insecure,
            move_to: None,
            added_at: 0,
            poll_secs: None,
        }
    }

    #[test]
    fn endpoints_parse_and_print() {
        let e = Endpoint::parse("IMAP.Example.org:993").expect("name");
        assert_eq!((e.host.as_str(), e.port), ("imap.example.org", 993));
        assert_eq!(e.to_string(), "imap.example.org:993");
        let v6 = Endpoint::parse("[::1]:1993").expect("v6");
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "[::1]:1993");
        assert!(v6.is_loopback());
        for bad in [
            "",
            "host",
            "host:",
            ":993",
            "host:0",
            "host:99999",
            "::1:993",
            "a b:1",
            "[::1:5",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn loopback_is_literal() {
        for yes in ["localhost", "127.0.0.1", "127.5.6.7"] {
            assert!(
                Endpoint::parse(&format!("{yes}:1"))
                    .expect("ok")
                    .is_loopback()
            );
        }
        for no in ["192.0.2.1", "example.org", "localhost.example.org"] {
            assert!(
                !Endpoint::parse(&format!("{no}:1"))
                    .expect("ok")
                    .is_loopback()
            );
        }
    }

    #[test]
    fn insecure_local_only_for_loopback() {
        assert!(config("127.0.0.1", true).check().is_ok());
        assert!(config("smtp.example.org", false).check().is_ok());
        let err = config("smtp.example.org", true)
            .check()
            .expect_err("refused");
        assert!(err.to_string().contains("not a loopback address"), "{err}");
    }

    #[test]
    fn file_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(GatewayConfig::load(dir.path()).expect("load").is_none());
        let mut c = config("localhost", true);
        c.move_to = Some("Archive".into());
        c.save(dir.path()).expect("save");
        assert_eq!(GatewayConfig::load(dir.path()).expect("load"), Some(c));
        std::fs::write(GatewayConfig::path(dir.path()), b"{\"smtp\": 1}").expect("write");
        assert!(GatewayConfig::load(dir.path()).is_err());
    }
}
