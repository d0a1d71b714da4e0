//! The inbound side of the gateway: mail that arrives in the provider's
//! INBOX is fetched and filed in the local INBOX, encrypted at rest like
//! all mail.
//!
//! One task keeps one IMAP connection: after each pass over new mail it
//! waits in IDLE (RFC 2177) where the server offers it, else sleeps the
//! poll interval. A failure (server down, login refused, TLS) is logged and
//! retried with backoff, 5 s doubling to 5 minutes.
//!
//! Nothing is fetched twice and nothing is missed:
//! - The position at the provider, (UIDVALIDITY, last UID filed), is saved
//!   in `gateway-cursor.json` only after the local commit of that message.
//! - Each message is filed through the store's idempotent filing, under a
//!   delivery id that is a hash of its bytes (kept as a keyed tag, like
//!   every delivery id). A message committed just before a crash, fetched
//!   again because its position was not saved yet, is recognised and not
//!   filed twice; so are the messages fetched again after the provider
//!   changed its UIDVALIDITY.
//! - On the first pass (no saved position) and after a UIDVALIDITY change,
//!   the messages that arrived from the day before the gateway was added
//!   are taken (`UID SEARCH SINCE`); older mail is for `mailnode import`.
//!
//! Gateway mail is not authenticated by a peer: [`received::mark_received`]
//! removes any mailnode-internal field a sender put in it and marks it.
//! PGP/MIME mail encrypted to the user's key is decrypted before it is
//! filed (the store encrypts it again, under the store key); its mark says
//! whether a signature checked against the key already recorded for the
//! sender. Nothing from the gateway is ever marked as a verified contact's.
//! The Autocrypt header of each filed message updates the sender's record
//! ([`AutocryptPeers`]). A message larger than the node's message limit
//! stays at the provider, and a notice says so in INBOX.
//!
//! With `--move-to FOLDER` each message is moved there after its commit
//! (UID MOVE, or COPY + STORE + EXPUNGE).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::autocrypt;
use super::config::GatewayConfig;
use super::imap_client::{IdleEnd, ImapClient};
use super::peers::AutocryptPeers;
use super::received::{self, Cursor, FetchPlan};
use super::secret::Password;
use crate::home::write_atomic;
use crate::store::{Incoming, Store};
use crate::strangers::INBOX;

/// File name of the saved position inside the home.
pub const CURSOR_FILE: &str = "gateway-cursor.json";
/// The pseudo-peer under which fetched mail is deduplicated.
const FETCH_PEER: &str = "gateway-fetch";
/// The provider folder fetched from.
const PROVIDER_INBOX: &str = "INBOX";
const MIN_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Longest stay in one IDLE (RFC 2177 asks for less than 29 minutes; a
/// shorter one also notices a silently dropped connection sooner).
const IDLE_MAX: Duration = Duration::from_secs(10 * 60);

/// Everything the fetch loop needs.
pub struct Fetcher {
    /// The node's home (for the cursor file).
    pub home: PathBuf,
    /// The account.
    pub config: GatewayConfig,
    /// Its password.
    pub password: Password,
    /// The local store.
    pub store: Store,
    /// Autocrypt records of senders.
    pub peers: AutocryptPeers,
    /// The user's identity: decrypts PGP/MIME mail to them; their own
    /// mail is not recorded as a peer's.
    pub identity: std::sync::Arc<keys::Identity>,
    /// Largest message fetched; bigger ones stay at the provider.
    pub max_message_size: usize,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("imap", &self.config.imap)
            .finish_non_exhaustive()
    }
}

/// The saved position, bound to the account it belongs to.
#[derive(Debug, Serialize, Deserialize)]
struct CursorFile {
    account: String,
    uidvalidity: u32,
    last_uid: u32,
}

/// Runs until `shutdown` turns true.
pub async fn run(fetcher: Fetcher, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let outcome = tokio::select! {
            outcome = fetcher.session(&mut backoff) => outcome,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        if let Err(err) = outcome {
            tracing::warn!(
                imap = %fetcher.config.imap,
                "fetching from the gateway failed: {err:#}; trying again in {} s",
                backoff.as_secs()
            );
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

impl Fetcher {
    fn account(&self) -> String {
        format!("{}@{}", self.config.user, self.config.imap)
    }

    /// One connection: log in, then fetch and wait, until something fails.
    async fn session(&self, backoff: &mut Duration) -> anyhow::Result<()> {
        let mut client = ImapClient::connect(&self.config).await?;
        client
            .login(&self.config.user, &self.password)
            .await
            .context("login")?;
        let [has_idle, has_move] = client.capabilities(["IDLE", "MOVE"]).await?;
        tracing::info!(imap = %self.config.imap, idle = has_idle, "fetching from the gateway");
        loop {
            let filed = self.pass(&mut client, has_move).await?;
            *backoff = MIN_BACKOFF;
            if filed > 0 {
                tracing::info!(filed, "fetched mail from the gateway");
            }
            if has_idle {
                if client.idle(IDLE_MAX).await? == IdleEnd::NewMail {
                    tracing::debug!("the gateway's server announced new mail");
                }
            } else {
                tokio::time::sleep(self.config.poll_interval()).await;
            }
        }
    }

    /// Fetches and files what is new; returns how many were filed.
    async fn pass(&self, client: &mut ImapClient, has_move: bool) -> anyhow::Result<usize> {
        let selected = client.select(PROVIDER_INBOX).await?;
        let stored = self.load_cursor()?;
        let plan = received::plan(stored, selected.uidvalidity);
        let (wanted, mut cursor, skipped_below) = match plan {
            FetchPlan::From(from) => (
                client.uids_from(from).await?,
                stored.expect("From comes from a stored cursor"),
                0,
            ),
            FetchPlan::RefetchAll => {
                let since = self.since();
                let uids = client.uids_since(since).await?;
                // Everything below UIDNEXT that is not in the search is
                // older than the gateway and is not taken.
                let below = match selected.uidnext {
                    Some(next) => next.saturating_sub(1),
                    None => client.highest_uid().await?.unwrap_or(0),
                };
                let wanted = match uids.first() {
                    Some(&first) => client
                        .uids_from(first)
                        .await?
                        .into_iter()
                        .filter(|(uid, _)| uids.binary_search(uid).is_ok() || *uid > below)
                        .collect(),
                    None => Vec::new(),
                };
                tracing::info!(
                    uidvalidity = selected.uidvalidity,
                    messages = wanted.len(),
                    "the gateway's INBOX is new to this node: taking the mail from {since} on"
                );
                let start = Cursor {
                    uidvalidity: selected.uidvalidity,
                    last_uid: 0,
                };
                (wanted, start, below)
            }
        };
        let mut filed = 0;
        for (uid, size) in wanted {
            if self.take(client, cursor.uidvalidity, uid, size).await? {
                filed += 1;
            }
            if let Some(folder) = &self.config.move_to {
                client.move_message(uid, folder, has_move).await?;
            }
            cursor.last_uid = cursor.last_uid.max(uid);
            self.save_cursor(cursor)?;
        }
        if plan == FetchPlan::RefetchAll {
            // Every message below UIDNEXT was taken or is older than the
            // gateway: none of them is wanted again.
            cursor.last_uid = cursor.last_uid.max(skipped_below);
            self.save_cursor(cursor)?;
        }
        Ok(filed)
    }

    /// Fetches message `uid` and files it (or a notice, when it is too
    /// big). Returns whether something new was filed.
    async fn take(
        &self,
        client: &mut ImapClient,
        uidvalidity: u32,
        uid: u32,
        size: Option<u64>,
    ) -> anyhow::Result<bool> {
        let limit = self.max_message_size as u64;
        if let Some(size) = size.filter(|&size| size > limit) {
            return self.too_big(uidvalidity, uid, size).await;
        }
        let Some(raw) = client.fetch_message(uid).await? else {
            // Expunged at the provider between the listing and now.
            return Ok(false);
        };
        if raw.len() as u64 > limit {
            return self.too_big(uidvalidity, uid, raw.len() as u64).await;
        }
        let id = content_id(&raw);
        let marked = self.open(&raw).await;
        match self
            .store
            .file_incoming(FETCH_PEER, id, INBOX, marked)
            .await?
        {
            Incoming::Duplicate => Ok(false),
            Incoming::Filed { .. } => {
                if let Err(err) = self.learn_autocrypt(&raw) {
                    tracing::warn!("cannot keep the sender's Autocrypt record: {err:#}");
                }
                Ok(true)
            }
        }
    }

    /// The message as it is filed: marked, and decrypted when it is
    /// PGP/MIME encrypted to our key. A signature is called good only when
    /// it checks against the key already recorded for the sender (from an
    /// earlier Autocrypt header or an import), never against the key the
    /// same message brings; even then it is not a verified contact's.
    async fn open(&self, raw: &[u8]) -> Vec<u8> {
        let Ok(armored) = crate::pgpmime::unwrap(raw) else {
            return received::mark_received(raw);
        };
        let from = sender(raw);
        let signer = from
            .as_deref()
            .and_then(|from| self.peers.key_for(from).ok().flatten());
        let identity = std::sync::Arc::clone(&self.identity);
        let limit = self.max_message_size;
        let opened = tokio::task::spawn_blocking(move || {
            identity.decrypt_from(&armored, limit, signer.as_ref())
        })
        .await;
        match opened {
            Ok(Ok((inner, good))) => {
                let merged = received::merge_decrypted(raw, &inner);
                // A signature vouches for the sender whose key it is; an
                // inner From naming someone else gets no credit from it.
                let good = good.filter(|_| sender(&merged) == from);
                let detail = match good {
                    Some(fingerprint) => {
                        format!("; decrypted; signature=good (Autocrypt key {fingerprint})")
                    }
                    None => "; decrypted; signature=none".to_string(),
                };
                received::mark_received_as(&merged, &detail)
            }
            Ok(Err(err)) => {
                tracing::info!("a fetched PGP/MIME message is filed as it came: {err}");
                received::mark_received_as(raw, "; encrypted, not to this node's key")
            }
            Err(err) => {
                tracing::warn!("the decryption task failed: {err}");
                received::mark_received(raw)
            }
        }
    }

    async fn too_big(&self, uidvalidity: u32, uid: u32, size: u64) -> anyhow::Result<bool> {
        tracing::warn!(
            uid,
            size,
            limit = self.max_message_size,
            "a message at the gateway is larger than the limit; it stays there"
        );
        let mut hash = Sha256::new();
        hash.update(b"too big\0");
        hash.update(self.account().as_bytes());
        hash.update(uidvalidity.to_be_bytes());
        hash.update(uid.to_be_bytes());
        let id: [u8; 16] = hash.finalize()[..16].try_into().expect("16 bytes");
        let notice = too_big_notice(
            self.identity.address(),
            &self.config.user,
            size,
            self.max_message_size,
        );
        let filed = self
            .store
            .file_incoming(FETCH_PEER, id, INBOX, notice)
            .await?;
        Ok(matches!(filed, Incoming::Filed { .. }))
    }

    /// Updates the sender's Autocrypt record from a filed message.
    fn learn_autocrypt(&self, raw: &[u8]) -> anyhow::Result<()> {
        use mailparse::MailHeaderMap;
        let (headers, _) = mailparse::parse_headers(raw).context("unreadable header")?;
        let Some(from) = sender_in(&headers) else {
            return Ok(());
        };
        if from.eq_ignore_ascii_case(self.identity.address()) {
            return Ok(());
        }
        let now = chrono::Utc::now().timestamp();
        let date = headers
            .get_first_value("Date")
            .and_then(|value| mailparse::dateparse(&value).ok())
            .unwrap_or(now);
        let values = headers.get_all_values("Autocrypt");
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let header = autocrypt::pick_header(&values, &from).ok();
        self.peers.record(&from, date, header.as_ref())?;
        Ok(())
    }

    /// The first day taken when the provider's INBOX is new to this node.
    fn since(&self) -> chrono::NaiveDate {
        let added = if self.config.added_at > 0 {
            self.config.added_at
        } else {
            chrono::Utc::now().timestamp()
        };
        // The day before, so that no time zone between the provider's
        // dates and ours loses a message.
        chrono::DateTime::from_timestamp(added, 0)
            .unwrap_or_default()
            .date_naive()
            .pred_opt()
            .unwrap_or_default()
    }

    fn cursor_path(&self) -> PathBuf {
        cursor_path(&self.home)
    }

    fn load_cursor(&self) -> anyhow::Result<Option<Cursor>> {
        let path = self.cursor_path();
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        let file: CursorFile = match serde_json::from_slice(&text) {
            Ok(file) => file,
            Err(err) => {
                // Nothing is lost by starting over: filing is idempotent.
                tracing::warn!("{} is damaged ({err}); starting over", path.display());
                return Ok(None);
            }
        };
        Ok((file.account == self.account()).then_some(Cursor {
            uidvalidity: file.uidvalidity,
            last_uid: file.last_uid,
        }))
    }

    fn save_cursor(&self, cursor: Cursor) -> anyhow::Result<()> {
        let file = CursorFile {
            account: self.account(),
            uidvalidity: cursor.uidvalidity,
            last_uid: cursor.last_uid,
        };
        let json = serde_json::to_vec(&file).context("cannot encode the gateway position")?;
        let path = self.cursor_path();
        write_atomic(&path, &json).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The saved fetch position in `home`.
pub fn cursor_path(home: &Path) -> PathBuf {
    home.join(CURSOR_FILE)
}

/// The delivery id of fetched mail: a hash of its bytes as the provider
/// sent them.
fn content_id(raw: &[u8]) -> [u8; 16] {
    let mut hash = Sha256::new();
    hash.update(b"mailnode gateway fetch\0");
    hash.update(raw);
    hash.finalize()[..16].try_into().expect("16 bytes")
}

/// The one address of the From field of `raw`, lower-cased.
fn sender(raw: &[u8]) -> Option<String> {
    sender_in(&mailparse::parse_headers(raw).ok()?.0)
}

/// The one address of the From field among `headers`, lower-cased.
fn sender_in(headers: &[mailparse::MailHeader<'_>]) -> Option<String> {
    use mailparse::MailHeaderMap;
    single_address(&headers.get_first_value("From")?)
}

/// The one address of a From field, lower-cased.
fn single_address(value: &str) -> Option<String> {
    let list = mailparse::addrparse(value).ok()?;
    let mut singles = list.iter().flat_map(|addr| match addr {
        mailparse::MailAddr::Single(info) => vec![info.addr.clone()],
        mailparse::MailAddr::Group(group) => group.addrs.iter().map(|i| i.addr.clone()).collect(),
    });
    let first = singles.next()?;
    singles.next().is_none().then(|| first.to_ascii_lowercase())
}

/// The INBOX notice for a message left at the provider.
fn too_big_notice(own_address: &str, account: &str, size: u64, limit: usize) -> Vec<u8> {
    let now = chrono::Utc::now().to_rfc2822();
    let account = crate::bounce::one_line(account);
    let from = crate::key_notice::FROM;
    format!(
        "From: {from}\r\n\
         To: <{own_address}>\r\n\
         Subject: A message at {account} is too big to fetch\r\n\
         Date: {now}\r\n\
         Auto-Submitted: auto-generated\r\n\
         X-Mailnode-Notice: gateway-too-big\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         This notice was written by your own mailnode; it did not come from anyone.\r\n\
         \r\n\
         A message of {size} bytes arrived in the INBOX of {account}. It is larger\r\n\
         than this node's limit of {limit} bytes, so it was not fetched; it is\r\n\
         still there. Read it with the provider's webmail, or raise\r\n\
         [network] max_message_size in config.toml and restart the node.\r\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ids_differ_by_content() {
        assert_eq!(content_id(b"a"), content_id(b"a"));
        assert_ne!(content_id(b"a"), content_id(b"b"));
    }

    #[test]
    fn from_must_be_one_address() {
        assert_eq!(
            single_address("Carol <Carol@Example.net>").as_deref(),
            Some("carol@example.net")
        );
        assert_eq!(single_address("a@b, c@d"), None);
        assert_eq!(single_address(""), None);
    }
}
