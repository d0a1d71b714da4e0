//! The command line: argument definitions and the commands that do not run
//! the daemon (keygen, contacts, bridge, status).
//!
//! Raw flags are resolved into checked settings before anything runs; every
//! error says what went wrong and what to do.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use keys::{AddressBook, ContactCard, Identity, PassphraseSource, Protection, Unlocker};
use libp2p::Multiaddr;

use crate::config::{ConfigFile, Overrides, Settings};
use crate::home::{Home, RunInfo};

/// mailnode: end-to-end encrypted, decentralized mail. Your messages and keys
/// stay on your machine; mail goes straight to the recipient's node.
#[derive(Debug, Parser)]
#[command(name = "mailnode", version, about)]
pub struct Cli {
    /// The node's home directory (identity, address book, mail store).
    #[arg(long, global = true, env = "MAILNODE_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Read the passphrase that protects the node's secrets from this file
    /// (first line). Used when no OS keyring is available; the environment
    /// variable MAILNODE_PASSPHRASE works too.
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this node's identity: OpenPGP key, revocation certificate,
    /// libp2p identity and bridge password.
    Keygen {
        /// Your name, as contacts will see it.
        #[arg(long)]
        name: String,
        /// Your mail address.
        #[arg(long)]
        email: String,
        /// Where the secret that unlocks the keys is kept.
        #[arg(long, value_enum, default_value_t = SecretStore::Auto)]
        secret_store: SecretStore,
    },
    /// Run the node in the foreground until SIGINT or SIGTERM.
    Run {
        /// A libp2p address to listen on (repeatable). Default: TCP and QUIC
        /// port 4870 on all interfaces.
        #[arg(long, value_name = "MULTIADDR")]
        listen: Vec<String>,
        /// IMAP bridge address. Default 127.0.0.1:1143.
        #[arg(long, value_name = "HOST:PORT")]
        imap: Option<String>,
        /// SMTP bridge address. Default 127.0.0.1:1025.
        #[arg(long, value_name = "HOST:PORT")]
        smtp: Option<String>,
        /// Run as a public node: relay, AutoNAT server, DHT server and
        /// mailbox for others, within the documented limits.
        #[arg(long)]
        public: bool,
        /// A DHT bootstrap node, /ip4/ADDR/tcp/PORT/p2p/PEERID (repeatable;
        /// adds to network.bootstrap in config.toml). There is no default.
        #[arg(long, value_name = "MULTIADDR")]
        bootstrap: Vec<String>,
        /// Do not look for peers on the local network (mDNS).
        #[arg(long)]
        no_mdns: bool,
        /// An address this node is reachable at from outside, announced as
        /// is (e.g. a router's port forward; repeatable).
        #[arg(long, value_name = "MULTIADDR")]
        external: Vec<String>,
    },
    /// Print what to type into a mail client (one `name: value` per line).
    Bridge,
    /// Manage the address book.
    Contacts {
        /// What to do with it.
        #[command(subcommand)]
        command: ContactsCommand,
    },
    /// Choose the public nodes that hold your mail while you are offline
    /// (kept in mailboxes.json in the home; the daemon reads it at start).
    Mailbox {
        /// What to do.
        #[command(subcommand)]
        command: MailboxCommand,
    },
    /// Copy an old mail account into this node (the node must not be
    /// running).
    Import {
        /// From where.
        #[command(subcommand)]
        command: crate::import::ImportCommand,
    },
    /// Reach people who are not on mailnode through your existing mail
    /// account (kept in gateway.json; the password is stored encrypted).
    Gateway {
        /// What to do.
        #[command(subcommand)]
        command: crate::gateway::command::GatewayCommand,
    },
    /// Print the revocation certificate (publish it if your key is lost or
    /// stolen).
    Revocation,
    /// Change your own keys (the node must be stopped).
    Keys {
        /// What to do.
        #[command(subcommand)]
        command: crate::key_commands::KeysCommand,
    },
    /// Revoke your key for good and tell every contact (at the node's next
    /// start; the node must be stopped).
    Revoke(crate::key_commands::RevokeArgs),
    /// Use your identity on several devices: link a new one with a
    /// one-time pairing code, list or remove them.
    Device {
        /// What to do.
        #[command(subcommand)]
        command: crate::device::DeviceCommand,
    },
    /// Show whether the daemon runs, and where.
    Status,
    /// Write the whole node (identity, secrets, contacts, bridge
    /// certificate, configuration and, unless --keys-only, every message)
    /// into one encrypted file. Works while the node runs.
    Backup {
        /// The backup file to write.
        file: PathBuf,
        /// Leave the messages out (identity, secrets, contacts and
        /// settings only).
        #[arg(long)]
        keys_only: bool,
        /// Protect the file with a recovery code that mailnode generates
        /// and prints once, instead of a passphrase.
        #[arg(long)]
        recovery_code: bool,
        /// Read the backup's passphrase from this file (first line); the
        /// environment variable MAILNODE_BACKUP_PASSPHRASE works too.
        #[arg(long, value_name = "FILE")]
        backup_passphrase_file: Option<PathBuf>,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Bring a node back from a backup file into a new home (--home).
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Restore even though the home exists: it is moved aside to
        /// HOME.before-restore-TIME, not deleted.
        #[arg(long)]
        force: bool,
        /// Where the restored node keeps the secret that unlocks its keys.
        /// Default: a passphrase (MAILNODE_PASSPHRASE, --passphrase-file or
        /// a prompt), since the old machine's keyring is not here.
        #[arg(long, value_enum, default_value_t = SecretStore::Passphrase)]
        secret_store: SecretStore,
        /// Read the backup's passphrase or recovery code from this file
        /// (first line); MAILNODE_BACKUP_PASSPHRASE works too.
        #[arg(long, value_name = "FILE")]
        backup_passphrase_file: Option<PathBuf>,
    },
}

/// Mailbox-peer subcommands.
#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// Add a mailbox peer: its PeerId, or a multiaddr ending in /p2p/PEERID
    /// (e.g. /ip4/198.51.100.7/tcp/4870/p2p/12D3KooW...).
    Add {
        /// The public node.
        peer: String,
    },
    /// List the mailbox peers, in the order deposits try them.
    List,
    /// Remove a mailbox peer (PeerId or multiaddr).
    Remove {
        /// The public node.
        peer: String,
    },
}

/// Address-book subcommands.
#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// Print our contact card (an armored OpenPGP key) to give to others.
    Export,
    /// Add someone's contact card (`-` reads standard input).
    Import {
        /// The card file, or `-`.
        file: String,
        /// Where that peer listens (repeatable), e.g. /ip4/192.0.2.1/tcp/4870.
        #[arg(long = "addr", value_name = "MULTIADDR")]
        addrs: Vec<String>,
        /// Replace an existing contact that has the same address but
        /// another key.
        #[arg(long)]
        replace: bool,
    },
    /// Make someone whose mail waits in Requests a contact: their card
    /// (kept when their first message arrived) goes into the address book,
    /// and their messages move from Requests to INBOX.
    Accept {
        /// Their mail address.
        address: String,
        /// Which key, when several keys wrote from that address.
        #[arg(long, value_name = "FINGERPRINT")]
        fingerprint: Option<String>,
        /// Where that peer listens (repeatable), e.g. /ip4/192.0.2.1/tcp/4870.
        #[arg(long = "addr", value_name = "MULTIADDR")]
        addrs: Vec<String>,
    },
    /// List contacts: name, address, fingerprint, PeerId, and whether you
    /// verified them.
    List,
    /// Compare the safety number with a contact (read it aloud, or scan
    /// the QR code), then mark them verified: a verified contact's key is
    /// never replaced.
    Verify {
        /// The contact's mail address.
        address: String,
        /// Also write the QR code as a PNG image to this file.
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
        /// Mark the contact verified without asking (you compared the
        /// number already).
        #[arg(long)]
        yes: bool,
    },
    /// Remove the contact with this address.
    Remove {
        /// The contact's mail address.
        address: String,
    },
}

/// `--secret-store` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecretStore {
    /// The OS keyring if one is reachable, else a passphrase.
    Auto,
    /// The OS keyring (Secret Service); fail if none is reachable.
    Keyring,
    /// A passphrase (MAILNODE_PASSPHRASE, --passphrase-file or a prompt).
    Passphrase,
}

impl Cli {
    fn passphrase_source(&self) -> PassphraseSource {
        PassphraseSource::from_env_file_or_prompt(self.passphrase_file.clone())
    }

    fn unlocker(&self) -> Unlocker {
        Unlocker::new(self.passphrase_source())
    }

    fn protection(&self, store: SecretStore) -> Protection {
        match store {
            SecretStore::Auto => Protection::Auto(self.passphrase_source()),
            SecretStore::Keyring => Protection::Keyring,
            SecretStore::Passphrase => Protection::Passphrase(self.passphrase_source()),
        }
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let home = Home::resolve(cli.home.clone())?;
    match &cli.command {
        Command::Keygen {
            name,
            email,
            secret_store,
        } => keygen(&cli, &home, name, email, *secret_store),
        Command::Run {
            listen,
            imap,
            smtp,
            public,
            bootstrap,
            no_mdns,
            external,
        } => {
            let file = ConfigFile::load(&home.config_file())?;
            let settings = Settings::resolve(
                file,
                Overrides {
                    listen: listen.clone(),
                    imap: imap.clone(),
                    smtp: smtp.clone(),
                    public: *public,
                    no_mdns: *no_mdns,
                    bootstrap: bootstrap.clone(),
                    external: external.clone(),
                },
            )?;
            let identity = load_identity(&cli, &home)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(crate::daemon::run(home, settings, identity))
        }
        Command::Bridge => bridge(&cli, &home),
        Command::Contacts { command } => contacts(&home, command),
        Command::Mailbox { command } => mailbox(&home, command),
        Command::Import { command } => import(&cli, &home, command),
        Command::Gateway { command } => {
            require_identity(&home)?;
            let identity = if command.needs_identity() {
                Some(load_identity(&cli, &home)?)
            } else {
                None
            };
            crate::gateway::command::run(home.path(), identity.as_ref(), command)
        }
        Command::Revocation => {
            let identity = load_identity(&cli, &home)?;
            print!("{}", identity.revocation_armored());
            Ok(())
        }
        Command::Keys {
            command: crate::key_commands::KeysCommand::Rotate { new_peer_id },
        } => crate::key_commands::rotate(&home, &cli.unlocker(), *new_peer_id),
        Command::Revoke(args) => crate::key_commands::revoke(&home, &cli.unlocker(), args),
        Command::Device { command } => {
            use crate::device::DeviceCommand;
            match command {
                DeviceCommand::Link(args) => crate::device::link(&home, &cli.unlocker(), args),
                DeviceCommand::Join { code, secret_store } => {
                    crate::device::join(&home, code, &cli.protection(*secret_store))
                }
                DeviceCommand::List => crate::device::list(&home),
                DeviceCommand::Remove { peer } => {
                    crate::device::remove(&home, &cli.unlocker(), peer)
                }
            }
        }
        Command::Status => status(&home),
        Command::Backup {
            file,
            keys_only,
            recovery_code,
            backup_passphrase_file,
            force,
        } => {
            let identity = load_identity(&cli, &home)?;
            let request = crate::backup::BackupRequest {
                file: file.clone(),
                keys_only: *keys_only,
                recovery_code: *recovery_code,
                force: *force,
                passphrase: crate::backup::passphrase_source(backup_passphrase_file.clone()),
            };
            let code = crate::backup::backup(&home, &identity, &request)?;
            println!(
                "backup written: {} ({})",
                file.display(),
                if *keys_only {
                    "identity, secrets, contacts and settings; no messages"
                } else {
                    "identity, secrets, contacts, settings and every message"
                }
            );
            if let Some(code) = code {
                println!("recovery-code: {}", code.as_str());
                println!(
                    "Write this code down now and keep it apart from the file: it is shown only \
                     once, and without it the backup cannot be opened."
                );
            }
            Ok(())
        }
        Command::Restore {
            file,
            force,
            secret_store,
            backup_passphrase_file,
        } => {
            let request = crate::backup::restore::RestoreRequest {
                file: file.clone(),
                force: *force,
                backup_secret: crate::backup::passphrase_source(backup_passphrase_file.clone()),
                protection: cli.protection(*secret_store),
            };
            let restored = crate::backup::restore::restore(&home, &request)?;
            let manifest = &restored.manifest;
            if let Some(aside) = &restored.moved_aside {
                println!("previous-home: {}", aside.display());
                println!("(the home that was in the way was moved there, not deleted)");
            }
            println!("restored the node of <{}>", manifest.address);
            println!("fingerprint: {}", manifest.fingerprint);
            println!("peer-id: {}", manifest.peer_id);
            println!(
                "messages: {}",
                match (manifest.keys_only, manifest.store) {
                    (true, _) => "none (keys-only backup)",
                    (false, false) => "none (the node had no message store yet)",
                    (false, true) => "restored, with their UIDs and flags",
                }
            );
            println!("secrets: {}", restored.secrets);
            println!("home: {}", home.path().display());
            println!("Next: `mailnode run` starts it; mail clients keep their settings.");
            Ok(())
        }
    }
}

fn mailbox(home: &Home, command: &MailboxCommand) -> anyhow::Result<()> {
    use crate::mailbox::{MailboxPeers, peers::Added};
    require_identity(home)?;
    let mut peers = MailboxPeers::open(home.path())?;
    match command {
        MailboxCommand::Add { peer } => {
            let outcome = peers.add(peer)?;
            let (peer_id, _) = crate::mailbox::peers::parse_peer(peer)?;
            match outcome {
                Added::New => println!("added mailbox peer {peer_id}"),
                Added::Known => println!("{peer_id} is already a mailbox peer (addresses updated)"),
            }
            println!("Restart the daemon (`mailnode run`) for it to register there.");
        }
        MailboxCommand::List => {
            if peers.list().is_empty() {
                println!("no mailbox peers: add a public node with `mailnode mailbox add PEER`");
            }
            for peer in peers.list() {
                let addrs = peer
                    .addrs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>();
                println!("{}\t{}", peer.peer_id, addrs.join(" "));
            }
        }
        MailboxCommand::Remove { peer } => {
            if !peers.remove(peer)? {
                bail!("{peer} is not a mailbox peer; `mailnode mailbox list` shows them");
            }
            println!("removed mailbox peer {peer}");
        }
    }
    Ok(())
}

fn require_identity(home: &Home) -> anyhow::Result<()> {
    if !Identity::exists(home.path()) {
        bail!(
            "no identity in {}: create one with `mailnode keygen --name NAME --email ADDRESS`",
            home.path().display()
        );
    }
    Ok(())
}

fn import(cli: &Cli, home: &Home, command: &crate::import::ImportCommand) -> anyhow::Result<()> {
    let crate::import::ImportCommand::Imap {
        imap,
        user,
        password_file,
        tls,
        insecure_local,
        folder,
    } = command;
    let endpoint = crate::gateway::Endpoint::parse(imap).context("--imap")?;
    if *insecure_local {
        crate::gateway::config::insecure_local_allowed("--imap", &endpoint)?;
    }
    let identity = load_identity(cli, home)?;
    let _lock = home
        .lock()
        .context("the node is running: stop it, then import (the import writes the store)")?;
    let settings = Settings::resolve(ConfigFile::load(&home.config_file())?, Overrides::default())?;
    let password = crate::gateway::command::read_password_for(
        password_file.as_deref(),
        &format!("password of {user} at {endpoint}: "),
    )?;
    let source = crate::import::ImapSource {
        endpoint,
        tls: *tls,
        insecure_local: *insecure_local,
        user: user.clone(),
        password,
        folders: folder.clone(),
    };
    let store = crate::store::Store::open(&home.store_file(), identity.store_key())
        .with_context(|| format!("cannot open the mail store {}", home.store_file().display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let summary = runtime.block_on(async {
        let result =
            crate::import::import_imap(home.path(), &store, &source, settings.max_message_size)
                .await;
        store.close().await;
        result
    })?;
    println!(
        "imported {} messages ({:.1} MiB); {} were already here; {} marked deleted were left out",
        summary.filed,
        summary.bytes as f64 / 1_048_576.0,
        summary.already,
        summary.deleted
    );
    for (folder, uid, size) in &summary.too_big {
        println!(
            "left out: {folder} UID {uid}, {size} bytes, larger than the limit of {} bytes",
            settings.max_message_size
        );
    }
    Ok(())
}

fn load_identity(cli: &Cli, home: &Home) -> anyhow::Result<Identity> {
    require_identity(home)?;
    Identity::load(home.path(), &cli.unlocker())
        .with_context(|| format!("cannot unlock the identity in {}", home.path().display()))
}

fn keygen(
    cli: &Cli,
    home: &Home,
    name: &str,
    email: &str,
    secret_store: SecretStore,
) -> anyhow::Result<()> {
    if Identity::exists(home.path()) {
        bail!(
            "{} already holds an identity; mailnode never overwrites one. Use another --home, \
             or move that directory away first if you really mean to start over",
            home.path().display()
        );
    }
    home.ensure_exists()?;
    let protection = cli.protection(secret_store);
    let identity = Identity::generate(name, email)?;
    let used = identity.save(home.path(), &protection)?;
    println!(
        "created the identity of {} <{}>",
        identity.name(),
        identity.address()
    );
    println!("fingerprint: {}", identity.fingerprint());
    println!("peer-id: {}", identity.peer_id());
    println!("secrets: {used}");
    println!("home: {}", home.path().display());
    println!();
    println!(
        "Next: `mailnode run` starts the node; `mailnode bridge` prints the mail client settings;"
    );
    println!("`mailnode contacts export` prints your contact card to give to others.");
    Ok(())
}

fn bridge(cli: &Cli, home: &Home) -> anyhow::Result<()> {
    let identity = load_identity(cli, home)?;
    let (imap, smtp) = match RunInfo::read(home)? {
        Some(run) => (run.imap, run.smtp),
        None => {
            let settings =
                Settings::resolve(ConfigFile::load(&home.config_file())?, Overrides::default())?;
            (settings.imap.to_string(), settings.smtp.to_string())
        }
    };
    let (imap_host, imap_port) = split_host_port(&imap);
    let (smtp_host, smtp_port) = split_host_port(&smtp);
    println!("imap-host: {imap_host}");
    println!("imap-port: {imap_port}");
    println!("imap-security: none (STARTTLS optional)");
    println!("smtp-host: {smtp_host}");
    println!("smtp-port: {smtp_port}");
    println!("smtp-security: none (STARTTLS optional)");
    println!("username: {}", identity.address());
    println!("password: {}", identity.bridge_password());
    if let Some(fingerprint) = crate::bridge_tls::fingerprint(home)? {
        println!("tls-fingerprint-sha256: {fingerprint}");
    }
    Ok(())
}

fn split_host_port(addr: &str) -> (String, String) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (host.trim_matches(['[', ']']).to_string(), port.to_string()),
        None => (addr.to_string(), String::new()),
    }
}

fn contacts(home: &Home, command: &ContactsCommand) -> anyhow::Result<()> {
    require_identity(home)?;
    match command {
        ContactsCommand::Export => {
            let info = Identity::public_info(home.path())?;
            print!("{}", info.card.to_armored());
            Ok(())
        }
        ContactsCommand::Import {
            file,
            addrs,
            replace,
        } => {
            let bytes = if file == "-" {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .context("cannot read the card from standard input")?;
                buf
            } else {
                std::fs::read(file).with_context(|| format!("cannot read {file}"))?
            };
            // A revoked card is read too: for a known contact it is their
            // revocation certificate (the address book applies it); a new
            // contact with a revoked key is refused there.
            let card = ContactCard::from_bytes_even_revoked(&bytes)
                .with_context(|| format!("{file} is not a usable mailnode contact card"))?;
            let own = Identity::public_info(home.path())?;
            if card.fingerprint() == own.card.fingerprint() {
                bail!("that is your own card; import the cards of the people you write to");
            }
            let addrs = addrs
                .iter()
                .map(|a| {
                    a.parse::<Multiaddr>().with_context(|| {
                        format!(
                            "--addr {a:?} is not a multiaddr (example: /ip4/192.0.2.1/tcp/4870)"
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut book = AddressBook::open(home.path())?;
            let outcome = book.add(card.clone(), addrs, *replace)?;
            println!("{outcome}: {} <{}>", card.name(), card.address());
            println!("fingerprint: {}", card.fingerprint());
            println!("peer-id: {}", card.peer_id());
            if let Some(revocation) = card.revocation() {
                println!(
                    "{revocation}: mail to and from <{}> is refused from now on",
                    card.address()
                );
            }
            println!("Check the fingerprint with them over another channel before you trust it.");
            Ok(())
        }
        ContactsCommand::Accept {
            address,
            fingerprint,
            addrs,
        } => accept(home, address, fingerprint.as_deref(), addrs),
        ContactsCommand::List => {
            let book = AddressBook::open(home.path())?;
            if book.list().is_empty() {
                println!("no contacts yet: add one with `mailnode contacts import CARD.asc`");
            }
            for contact in book.list() {
                let card = &contact.card;
                let revoked = card
                    .revocation()
                    .map(|r| format!("\t{r}"))
                    .unwrap_or_default();
                // Further devices of the contact (issue 8), when there are.
                let devices = match card.devices() {
                    [_] => String::new(),
                    all => format!(
                        "\tdevices {}",
                        all.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                };
                println!(
                    "{} <{}>\tfingerprint {}\tpeer-id {}{devices}\tencryption-key {}{}{revoked}",
                    card.name(),
                    card.address(),
                    card.fingerprint(),
                    card.peer_id(),
                    card.encryption_keys().join(","),
                    if contact.verified { "\tverified" } else { "" }
                );
            }
            Ok(())
        }
        ContactsCommand::Verify { address, png, yes } => {
            verify(home, address, png.as_deref(), *yes)
        }
        ContactsCommand::Remove { address } => {
            let mut book = AddressBook::open(home.path())?;
            if book.remove(address)? {
                println!("removed <{address}>");
                Ok(())
            } else {
                bail!(
                    "no contact with the address <{address}>; `mailnode contacts list` shows them"
                )
            }
        }
    }
}

/// `contacts accept`: adds a stranger's kept card to the address book. The
/// daemon moves their messages from Requests to INBOX when it sees the new
/// contact (at once if it runs, else when it next starts); see
/// `strangers::run_promotions`.
fn accept(
    home: &Home,
    address: &str,
    fingerprint: Option<&str>,
    addrs: &[String],
) -> anyhow::Result<()> {
    let strangers = keys::StrangerBook::open(home.path())?;
    let mut candidates = strangers.by_address(address);
    if let Some(fingerprint) = fingerprint {
        candidates.retain(|s| s.card.fingerprint().eq_ignore_ascii_case(fingerprint));
    }
    let stranger = match candidates.as_slice() {
        [one] => *one,
        [] => bail!(
            "no message from <{address}>{} waits in Requests, so there is no card to accept; \
             if you have their card, add it with `mailnode contacts import CARD`",
            fingerprint.map_or(String::new(), |f| format!(" with key {f}"))
        ),
        several => {
            let keys: Vec<&str> = several.iter().map(|s| s.card.fingerprint()).collect();
            bail!(
                "{} different keys wrote from <{address}>: {}. Check with them which is theirs, \
                 then run `mailnode contacts accept {address} --fingerprint FINGERPRINT`",
                several.len(),
                keys.join(", ")
            )
        }
    };
    let addrs = parse_addrs(addrs)?;
    let card = stranger.card.clone();
    let mut book = AddressBook::open(home.path())?;
    book.add(card.clone(), addrs, false)?;
    println!("accepted: {} <{}>", card.name(), card.address());
    println!("fingerprint: {}", card.fingerprint());
    println!("peer-id: {}", card.peer_id());
    match RunInfo::read(home)? {
        Some(run) if process_alive(run.pid) => {
            println!("The running node moves their messages from Requests to INBOX now.")
        }
        _ => println!(
            "Their messages move from Requests to INBOX when the node next starts (`mailnode run`)."
        ),
    }
    println!("Check the fingerprint with them over another channel before you trust it.");
    Ok(())
}

/// Asks `question` on the terminal and returns whether the answer is yes;
/// without a terminal, fails with `no_terminal` (which names the flag that
/// answers in advance).
pub(crate) fn confirm(question: &str, no_terminal: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        bail!("{no_terminal}");
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// `contacts verify`: shows the safety number and QR code, asks, marks.
fn verify(
    home: &Home,
    address: &str,
    png: Option<&std::path::Path>,
    yes: bool,
) -> anyhow::Result<()> {
    let mut book = AddressBook::open(home.path())?;
    let Some(contact) = book.by_address(address).cloned() else {
        bail!("no contact with the address <{address}>; `mailnode contacts list` shows them");
    };
    let own = Identity::public_info(home.path())?;
    let card = &contact.card;
    let number = keys::SafetyNumber::new(own.card.fingerprint(), card.fingerprint())?;
    println!("Safety number with {} <{}>:", card.name(), card.address());
    println!();
    for line in number.for_reading().lines() {
        println!("    {line}");
    }
    println!();
    println!("their fingerprint: {}", card.fingerprint());
    println!("your fingerprint:  {}", own.card.fingerprint());
    println!("safety-number: {}", number.groups().join(" "));
    println!();
    print!("{}", crate::qr::terminal(&number.qr_text())?);
    if let Some(path) = png {
        crate::qr::write_png(&number.qr_text(), path)?;
        println!("QR code written to {}", path.display());
    }
    println!();
    println!(
        "{} sees the same number on their side (`mailnode contacts verify {}`). Compare it \
         with them in person or on a call you trust, or scan each other's QR code.",
        card.name(),
        own.card.address()
    );
    if contact.verified {
        println!("<{}> is already verified.", card.address());
        return Ok(());
    }
    if !yes
        && !confirm(
            "Does the number match theirs exactly?",
            "not marked verified: run this in a terminal to confirm, or pass --yes once you \
             have compared the number",
        )?
    {
        println!("not marked verified.");
        return Ok(());
    }
    if !book.set_verified(card.fingerprint())? {
        bail!("<{address}> was removed from the address book meanwhile; nothing was marked");
    }
    println!("verified: {} <{}>", card.name(), card.address());
    println!(
        "A card with another key for this contact will now be refused, and you will find a \
         notice in INBOX."
    );
    Ok(())
}

fn parse_addrs(addrs: &[String]) -> anyhow::Result<Vec<Multiaddr>> {
    addrs
        .iter()
        .map(|a| {
            a.parse::<Multiaddr>().with_context(|| {
                format!("--addr {a:?} is not a multiaddr (example: /ip4/192.0.2.1/tcp/4870)")
            })
        })
        .collect()
}

fn status(home: &Home) -> anyhow::Result<()> {
    require_identity(home)?;
    let info = Identity::public_info(home.path())?;
    println!("identity: {} <{}>", info.card.name(), info.card.address());
    println!("fingerprint: {}", info.card.fingerprint());
    println!("peer-id: {}", info.peer_id);
    if info.card.devices().len() > 1 {
        println!("devices: {}", info.card.devices().len());
    }
    println!("encryption-key: {}", info.card.encryption_keys().join(", "));
    if let Some(revocation) = info.card.revocation() {
        println!("key: {revocation}");
    }
    match RunInfo::read(home)? {
        Some(run) if process_alive(run.pid) => {
            println!("daemon: running (pid {})", run.pid);
            println!("imap: {}", run.imap);
            println!("smtp: {}", run.smtp);
            for addr in run.listen {
                println!("listen: {addr}");
            }
            if let Some(status) = crate::status::StatusFile::read(home)? {
                print_network_status(&status);
            }
        }
        _ => println!("daemon: not running"),
    }
    Ok(())
}

/// Prints the daemon's network snapshot, one `name: value` per line.
fn print_network_status(status: &crate::status::StatusFile) {
    let net = &status.network;
    let text = |key: &str| net[key].as_str().unwrap_or("unknown").to_string();
    let list = |key: &str| -> Vec<String> {
        net[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    println!(
        "mode: {}",
        if net["public"].as_bool() == Some(true) {
            "public node"
        } else {
            "private node"
        }
    );
    println!("nat: {}", text("nat"));
    for addr in list("external") {
        println!("external: {addr}");
    }
    for addr in list("relay_reservations") {
        println!("relay-reservation: {addr}");
    }
    println!(
        "dht-peers: {} ({} mode)",
        net["dht_peers"].as_u64().unwrap_or(0),
        if net["dht_server"].as_bool() == Some(true) {
            "server"
        } else {
            "client"
        }
    );
    println!(
        "connected-peers: {}",
        net["connected_peers"].as_u64().unwrap_or(0)
    );
    match net["locator_published"].as_u64() {
        Some(at) => println!(
            "locator-published: {} s ago (seq {})",
            status.written.saturating_sub(at),
            net["locator_seq"].as_u64().unwrap_or(0)
        ),
        None => println!("locator-published: never"),
    }
    for peer in list("mailboxes") {
        println!("mailbox-peer: {peer}");
    }
    println!("outbox-waiting: {}", status.outbox_waiting);
    println!("outbox-deposited: {}", status.outbox_deposited);
    if let Some(held) = status.mailbox_held_bytes {
        println!("mailbox-held-bytes: {held}");
    }
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
