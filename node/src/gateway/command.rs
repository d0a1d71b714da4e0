//! `mailnode gateway add|list|remove|test|import-key|keys`: the
//! command-line side of the gateway settings (read by the daemon when it
//! starts) and of the recipients' keys (read for every message).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use keys::Identity;
use zeroize::Zeroizing;

use super::config::{Endpoint, GatewayConfig, TlsMode};
use super::secret::{self, Password};

/// Gateway subcommands.
#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Use your existing mail account: mail to people without a mailnode
    /// card leaves through its SMTP server, and mail that arrives in its
    /// IMAP INBOX from now on is fetched into your INBOX.
    Add {
        /// The provider's SMTP submission server, e.g. smtp.example.org:465.
        #[arg(long, value_name = "HOST:PORT")]
        smtp: String,
        /// The provider's IMAP server, e.g. imap.example.org:993.
        #[arg(long, value_name = "HOST:PORT")]
        imap: String,
        /// The login name at the provider (often your mail address).
        #[arg(long)]
        user: String,
        /// Read the password from this file (first line) instead of asking.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Implicit TLS (ports 465/993) or STARTTLS (587/143). Either way
        /// nothing is sent in the clear.
        #[arg(long, value_enum, default_value_t = TlsMode::Implicit)]
        tls: TlsMode,
        /// Do not check the servers' certificates. Only for servers on this
        /// machine (localhost, 127.0.0.1, ::1), as in tests.
        #[arg(long)]
        insecure_local: bool,
        /// After a fetched message is safely stored here, move it out of the
        /// provider's INBOX into this folder (it must exist there).
        /// Without it, fetched mail stays in the provider's INBOX.
        #[arg(long, value_name = "FOLDER")]
        move_to: Option<String>,
        /// Seconds between two checks for new mail when the provider's IMAP
        /// server does not offer IDLE (with IDLE new mail comes at once).
        #[arg(long, value_name = "SECS")]
        poll_secs: Option<u64>,
    },
    /// Show the gateway settings (never the password).
    List,
    /// Forget the gateway: its settings and stored password.
    Remove,
    /// Log in to both servers and report what works and what does not.
    Test,
    /// Encrypt gateway mail to ADDRESS with this OpenPGP key (armored or
    /// binary, e.g. from `gpg --export`), until a newer Autocrypt header
    /// from them brings another.
    ImportKey {
        /// The recipient's mail address.
        address: String,
        /// The key file.
        file: PathBuf,
    },
    /// List the keys known for people reached through the gateway.
    Keys,
}

impl GatewayCommand {
    /// Whether the command needs the unlocked identity (the store key that
    /// seals the password).
    pub fn needs_identity(&self) -> bool {
        matches!(
            self,
            GatewayCommand::Add { .. }
                | GatewayCommand::Test
                | GatewayCommand::ImportKey { .. }
                | GatewayCommand::Keys
        )
    }
}

/// Runs a gateway subcommand. `identity` is `Some` when
/// [`GatewayCommand::needs_identity`].
pub fn run(
    home: &Path,
    identity: Option<&Identity>,
    command: &GatewayCommand,
) -> anyhow::Result<()> {
    match command {
        GatewayCommand::Add {
            smtp,
            imap,
            user,
            password_file,
            tls,
            insecure_local,
            move_to,
            poll_secs,
        } => {
            let identity = identity.context("the identity is needed to store the password")?;
            if GatewayConfig::load(home)?.is_some() {
                bail!(
                    "a gateway is already set up (`mailnode gateway list`); run `mailnode gateway \
                     remove` first to replace it"
                );
            }
            let config = GatewayConfig {
                smtp: Endpoint::parse(smtp).context("--smtp")?,
                imap: Endpoint::parse(imap).context("--imap")?,
                user: user.clone(),
                tls: *tls,
                insecure_local: *insecure_local,
                move_to: move_to.clone(),
                added_at: chrono::Utc::now().timestamp(),
                poll_secs: *poll_secs,
            };
            config.check()?;
            let password = read_password(password_file.as_deref(), &config)?;
            secret::store(home, identity.store_key(), &config, &password)?;
            config.save(home)?;
            println!(
                "gateway added: {} at {} / {}",
                config.user, config.smtp, config.imap
            );
            println!(
                "Check it with `mailnode gateway test`; a running node uses it after a restart."
            );
            Ok(())
        }
        GatewayCommand::List => {
            match GatewayConfig::load(home)? {
                None => println!("no gateway: add one with `mailnode gateway add`"),
                Some(config) => {
                    println!("user: {}", config.user);
                    println!("smtp: {}", config.smtp);
                    println!("imap: {}", config.imap);
                    println!("tls: {}", config.tls);
                    if config.insecure_local {
                        println!("certificates: NOT checked (--insecure-local)");
                    } else {
                        println!("certificates: checked against the system roots");
                    }
                    if let Some(folder) = &config.move_to {
                        println!("move-to: {folder}");
                    }
                    println!(
                        "checks for new mail: with IDLE when offered, else every {} s",
                        config.poll_interval().as_secs()
                    );
                }
            }
            Ok(())
        }
        GatewayCommand::Remove => {
            if GatewayConfig::load(home).ok().flatten().is_none()
                && !GatewayConfig::path(home).exists()
            {
                bail!("no gateway is set up");
            }
            for path in [GatewayConfig::path(home), secret::path(home)] {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => {
                        return Err(err)
                            .with_context(|| format!("cannot remove {}", path.display()));
                    }
                }
            }
            println!("gateway removed; a running node stops using it after a restart");
            Ok(())
        }
        GatewayCommand::Test => {
            let identity = identity.context("the identity is needed to read the password")?;
            let config = GatewayConfig::load(home)?
                .context("no gateway is set up: add one with `mailnode gateway add`")?;
            let password = secret::load(home, identity.store_key(), &config)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let results = runtime.block_on(super::probe(&config, &password));
            let mut failed = Vec::new();
            for result in &results {
                match &result.outcome {
                    Ok(()) => println!("{} {}: ok (TLS, login)", result.server, result.endpoint),
                    Err(why) => {
                        println!("{} {}: FAILED: {why}", result.server, result.endpoint);
                        tracing::warn!(server = result.server, "gateway test failed: {why}");
                        failed.push(result.server);
                    }
                }
            }
            if !failed.is_empty() {
                bail!("the gateway does not work: {} failed", failed.join(" and "));
            }
            Ok(())
        }
        GatewayCommand::ImportKey { address, file } => {
            let identity = identity.context("the identity is needed to keep the key")?;
            import_key(home, identity, address, file)
        }
        GatewayCommand::Keys => {
            let identity = identity.context("the identity is needed to read the keys")?;
            list_keys(home, identity)
        }
    }
}

fn import_key(home: &Path, identity: &Identity, address: &str, file: &Path) -> anyhow::Result<()> {
    use sequoia_openpgp::Cert;
    use sequoia_openpgp::parse::Parse;
    if !address.contains('@') || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("{address:?} is not a mail address");
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let cert = Cert::from_bytes(&bytes)
        .with_context(|| format!("{} is not an OpenPGP key", file.display()))?;
    keys::check_encryption_key(&cert)
        .map_err(|err| anyhow::anyhow!("{} cannot be used: {err}", file.display()))?;
    let named = cert.userids().any(|uid| {
        uid.userid()
            .email()
            .ok()
            .flatten()
            .is_some_and(|email| email.eq_ignore_ascii_case(address))
    });
    let peers = super::peers::AutocryptPeers::open(home, identity.store_key())?;
    peers.import(address, &cert)?;
    println!(
        "gateway mail to <{address}> is now encrypted to {}",
        cert.fingerprint()
    );
    if !named {
        println!("note: the key does not name <{address}> in its user IDs; check it is theirs");
    }
    println!("A running node uses it for the next message.");
    Ok(())
}

fn list_keys(home: &Path, identity: &Identity) -> anyhow::Result<()> {
    let peers = super::peers::AutocryptPeers::open(home, identity.store_key())?;
    let list = peers.list()?;
    if list.is_empty() {
        println!("no keys known yet: they come with Autocrypt headers, or `gateway import-key`");
    }
    for (address, state) in list {
        let key = match peers.key_for(&address)? {
            Some(cert) => format!("key {}", cert.fingerprint()),
            None => "no key (mail to them goes unencrypted)".to_string(),
        };
        let since = chrono::DateTime::from_timestamp(state.autocrypt_timestamp, 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        println!("<{address}>: {key} (since {since})");
    }
    Ok(())
}

fn read_password(file: Option<&Path>, config: &GatewayConfig) -> anyhow::Result<Password> {
    read_password_for(
        file,
        &format!("password of {} at {}: ", config.user, config.imap),
    )
}

/// The password from the first line of `file`, or asked with `prompt` on
/// the terminal.
pub fn read_password_for(file: Option<&Path>, prompt: &str) -> anyhow::Result<Password> {
    let text = match file {
        Some(path) => {
            let text =
                Zeroizing::new(std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the password file {}", path.display())
                })?);
            text.lines().next().unwrap_or_default().to_string()
        }
        None => {
            use std::io::IsTerminal;
            if !std::io::stdin().is_terminal() {
                bail!("no terminal to ask for the password: pass --password-file FILE");
            }
            rpassword::prompt_password(prompt).context("cannot read the password")?
        }
    };
    Password::new(text)
}
