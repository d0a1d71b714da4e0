//! `mailnode import imap`: copies the folders of an existing IMAP account
//! (the old provider) into the local store, encrypted at rest like all
//! mail, with each message's flags and INTERNALDATE, so the user's mail
//! program shows the old mail as it was.
//!
//! - Folders keep their names (hierarchy delimiter turned into `/`); the
//!   provider's INBOX goes to INBOX. `Outbox`, which is the node's own
//!   queue, becomes `Outbox (imported)`. Messages flagged `\Deleted` are
//!   left out; so are messages above the node's message limit (listed at
//!   the end).
//! - Progress (messages, bytes, rate, time left) goes to stderr at most
//!   twice a second.
//! - Resumable without duplicates: after each batch is committed the
//!   position per folder (UIDVALIDITY, last UID) is saved in
//!   `import-state.json`, so a new run starts after it; and every message
//!   is filed through the store's idempotent filing under a hash of its
//!   bytes and folder, so what an interrupted run committed after its last
//!   saved position is recognised, not filed twice.
//! - Fetching uses `BODY.PEEK[]`: the old account is left unchanged.
//!
//! The node must not be running (the import takes the home's lock).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::gateway::config::{Endpoint, TlsMode};
use crate::gateway::imap_client::{Folder, ImapClient};
use crate::gateway::secret::Password;
use crate::home::write_atomic;
use crate::store::{Incoming, Store};

/// File name of the import positions inside the home.
pub const STATE_FILE: &str = "import-state.json";
/// Messages fetched in one command.
const BATCH_MESSAGES: usize = 50;
/// Bytes fetched in one command (a larger message is fetched alone).
const BATCH_BYTES: u64 = 8 * 1024 * 1024;
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Import subcommands.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Copy every folder (or the ones named) of an IMAP account into this
    /// node. Run it again after an interruption: it continues where it
    /// stopped, without duplicates. The node must not be running.
    Imap {
        /// The IMAP server, e.g. imap.example.org:993.
        #[arg(long, value_name = "HOST:PORT")]
        imap: String,
        /// The login name.
        #[arg(long)]
        user: String,
        /// Read the password from this file (first line) instead of asking.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Implicit TLS (port 993) or STARTTLS (143).
        #[arg(long, value_enum, default_value_t = TlsMode::Implicit)]
        tls: TlsMode,
        /// Do not check the server's certificate (loopback servers only).
        #[arg(long)]
        insecure_local: bool,
        /// Import only this folder (repeatable; the name as the server
        /// lists it).
        #[arg(long, value_name = "NAME")]
        folder: Vec<String>,
    },
}

/// What to import from where.
#[derive(Debug)]
pub struct ImapSource {
    /// The server.
    pub endpoint: Endpoint,
    /// Its transport security.
    pub tls: TlsMode,
    /// Certificates not checked (loopback only).
    pub insecure_local: bool,
    /// The login.
    pub user: String,
    /// Its password.
    pub password: Password,
    /// Only these folders (wire names); empty for all.
    pub folders: Vec<String>,
}

/// The saved position of one folder.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
struct Position {
    uidvalidity: u32,
    last_uid: u32,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Messages filed now.
    pub filed: u64,
    /// Messages recognised as imported before.
    pub already: u64,
    /// Messages flagged \Deleted, left out.
    pub deleted: u64,
    /// Messages above the size limit, left out: (folder, UID, size).
    pub too_big: Vec<(String, u32, u64)>,
    /// Bytes fetched.
    pub bytes: u64,
}

/// One folder's work, planned before anything is fetched so that totals
/// (and so the time left) are known.
struct Plan {
    folder: Folder,
    local: String,
    uidvalidity: u32,
    messages: Vec<(u32, u64)>,
}

/// The local name of a provider folder.
fn local_name(folder: &Folder) -> String {
    let decoded =
        imap_bridge::imap::utf7::decode(&folder.wire).unwrap_or_else(|| folder.wire.clone());
    if decoded.eq_ignore_ascii_case("INBOX") {
        return "INBOX".to_string();
    }
    let parts: Vec<String> = match folder.delimiter {
        Some('/') | None => decoded.split('/').map(str::to_string).collect(),
        Some(delim) => decoded
            .split(delim)
            .map(|part| part.replace('/', "-"))
            .collect(),
    };
    let name = parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    if name.eq_ignore_ascii_case("Outbox") {
        "Outbox (imported)".to_string()
    } else {
        name
    }
}

fn state_path(home: &Path) -> PathBuf {
    home.join(STATE_FILE)
}

fn load_state(home: &Path) -> anyhow::Result<BTreeMap<String, Position>> {
    match std::fs::read(state_path(home)) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is damaged; delete it to start over (nothing is imported twice)",
                STATE_FILE
            )
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(err) => Err(err).context("cannot read the import state"),
    }
}

fn save_state(home: &Path, state: &BTreeMap<String, Position>) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(state).context("cannot encode the import state")?;
    write_atomic(&state_path(home), &json).context("cannot write the import state")
}

/// The key of a folder in the state file and in the dedupe tags.
fn folder_key(source: &ImapSource, wire: &str) -> String {
    format!("{}@{}/{}", source.user, source.endpoint, wire)
}

fn content_id(raw: &[u8]) -> [u8; 16] {
    let mut hash = Sha256::new();
    hash.update(b"mailnode import\0");
    hash.update(raw);
    hash.finalize()[..16].try_into().expect("16 bytes")
}

/// Progress, written to stderr.
struct Progress {
    total_messages: u64,
    total_bytes: u64,
    done_messages: u64,
    done_bytes: u64,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    fn report(&mut self, folder: &str, force: bool) {
        let now = Instant::now();
        if !force && self.last.is_some_and(|last| now - last < PROGRESS_EVERY) {
            return;
        }
        self.last = Some(now);
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.done_messages as f64 / elapsed;
        let byte_rate = self.done_bytes as f64 / elapsed;
        let left_bytes = self.total_bytes.saturating_sub(self.done_bytes) as f64;
        let left = if byte_rate > 0.0 {
            format!("about {} s left", (left_bytes / byte_rate).ceil() as u64)
        } else {
            "time left unknown".to_string()
        };
        eprintln!(
            "import: {folder}: {}/{} messages, {:.1}/{:.1} MiB, {rate:.0} messages/s, {left}",
            self.done_messages,
            self.total_messages,
            self.done_bytes as f64 / 1_048_576.0,
            self.total_bytes as f64 / 1_048_576.0,
        );
    }
}

/// Runs the import into `store`.
pub async fn import_imap(
    home: &Path,
    store: &Store,
    source: &ImapSource,
    max_message_size: usize,
) -> anyhow::Result<Summary> {
    let mut client =
        ImapClient::connect_to(&source.endpoint, source.tls, source.insecure_local).await?;
    client
        .login(&source.user, &source.password)
        .await
        .context("login")?;
    let mut folders: Vec<Folder> = client.folders().await?;
    folders.retain(|f| !f.noselect);
    if !source.folders.is_empty() {
        for wanted in &source.folders {
            if !folders.iter().any(|f| &f.wire == wanted) {
                bail!(
                    "the server has no folder {wanted:?} (see the names it lists without --folder)"
                );
            }
        }
        folders.retain(|f| source.folders.contains(&f.wire));
    }
    let mut state = load_state(home)?;
    let mut plans = Vec::new();
    for folder in folders {
        let selected = client.select(&folder.wire).await?;
        let key = folder_key(source, &folder.wire);
        let from = match state.get(&key) {
            Some(pos) if pos.uidvalidity == selected.uidvalidity => pos.last_uid.saturating_add(1),
            _ => 1,
        };
        let messages = client
            .uids_from(from)
            .await?
            .into_iter()
            .map(|(uid, size)| (uid, size.unwrap_or(0)))
            .collect();
        plans.push(Plan {
            local: local_name(&folder),
            folder,
            uidvalidity: selected.uidvalidity,
            messages,
        });
    }
    let mut progress = Progress {
        total_messages: plans.iter().map(|p| p.messages.len() as u64).sum(),
        total_bytes: plans.iter().flat_map(|p| &p.messages).map(|(_, s)| s).sum(),
        done_messages: 0,
        done_bytes: 0,
        started: Instant::now(),
        last: None,
    };
    let mut summary = Summary::default();
    for plan in &plans {
        let key = folder_key(source, &plan.folder.wire);
        client.select(&plan.folder.wire).await?;
        let mut rest = plan.messages.as_slice();
        while !rest.is_empty() {
            let mut take = 0;
            let mut bytes = 0;
            while take < rest.len()
                && take < BATCH_MESSAGES
                && (take == 0 || bytes + rest[take].1 <= BATCH_BYTES)
            {
                bytes += rest[take].1;
                take += 1;
            }
            let (batch, tail) = rest.split_at(take);
            rest = tail;
            let mut wanted = Vec::new();
            for &(uid, size) in batch {
                if size > max_message_size as u64 {
                    summary.too_big.push((plan.local.clone(), uid, size));
                } else {
                    wanted.push(uid);
                }
            }
            let fetched = client.fetch_batch(&wanted).await?;
            let mut filing = Vec::new();
            for message in fetched {
                summary.bytes += message.body.len() as u64;
                if message
                    .flags
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case("\\Deleted"))
                {
                    summary.deleted += 1;
                    continue;
                }
                let date = message.internal_date.unwrap_or_else(|| {
                    let now = chrono::Local::now();
                    (now.timestamp(), now.offset().local_minus_utc() / 60)
                });
                filing.push(store.file_imported(
                    &key,
                    content_id(&message.body),
                    &plan.local,
                    message.flags,
                    date,
                    message.body,
                ));
            }
            // All of a batch go to the writer together: one group commit.
            for outcome in futures::future::join_all(filing).await {
                match outcome.context("the message store failed")? {
                    Incoming::Filed { .. } => summary.filed += 1,
                    Incoming::Duplicate => summary.already += 1,
                }
            }
            let last = batch.last().map(|(uid, _)| *uid).unwrap_or(0);
            state.insert(
                key.clone(),
                Position {
                    uidvalidity: plan.uidvalidity,
                    last_uid: last,
                },
            );
            save_state(home, &state)?;
            progress.done_messages += batch.len() as u64;
            progress.done_bytes += batch.iter().map(|(_, s)| s).sum::<u64>();
            progress.report(&plan.local, false);
        }
        progress.report(&plan.local, true);
    }
    client.logout().await;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(wire: &str, delimiter: Option<char>) -> Folder {
        Folder {
            wire: wire.into(),
            delimiter,
            noselect: false,
        }
    }

    #[test]
    fn local_names() {
        assert_eq!(local_name(&folder("inbox", Some('/'))), "INBOX");
        assert_eq!(
            local_name(&folder("Archive.2019", Some('.'))),
            "Archive/2019"
        );
        assert_eq!(local_name(&folder("a/b.c", Some('.'))), "a-b/c");
        assert_eq!(local_name(&folder("Entw&APw-rfe", Some('/'))), "Entwürfe");
        assert_eq!(
            local_name(&folder("Outbox", Some('/'))),
            "Outbox (imported)"
        );
    }

    #[test]
    fn content_ids_depend_on_bytes() {
        assert_ne!(content_id(b"a"), content_id(b"b"));
    }
}
