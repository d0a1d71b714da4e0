//! What a new device receives: the bundle, a stream of named entries
//! (`u16` name length, name, `u64` size, bytes; big-endian), cut into the
//! sealed chunks of `wire`.
//!
//! The linker builds it from the identity's export for a device, the
//! updated card, the plain files of the home and a consistent copy of
//! `mail.db` prepared for the new device ([`prepare_copied_store`]). The
//! joiner unpacks it into its staging directory: secrets stay in memory,
//! files go to disk, unknown entries are refused. Secrets are never
//! written in the clear.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use zeroize::Zeroizing;

/// The identity's export for a device (`Identity::export_for_device`).
pub(crate) const SECRETS: &str = "secrets";
/// The card with the new device on its list.
pub(crate) const CARD: &str = "card.asc";
/// The message store.
pub(crate) const STORE: &str = "mail.db";
/// Plain files of the home that a new device starts with, when present.
pub(crate) const PLAIN_FILES: &[&str] = &[
    "contacts.json",
    "strangers.json",
    "announced.json",
    "mailboxes.json",
];
/// Largest entry held in memory (secrets, card, plain files).
const SMALL_LIMIT: u64 = 64 * 1024 * 1024;

/// The linker's side: the bundle as one byte stream, read chunk by chunk.
pub(crate) struct Outgoing {
    head: Zeroizing<Vec<u8>>,
    offset: usize,
    store: Option<(File, crate::backup::Snapshot)>,
    total: u64,
    sent: u64,
}

impl Outgoing {
    /// The bundle of `entries` (in memory) followed by `store` (a prepared
    /// copy of `mail.db`, deleted when this is dropped).
    pub(crate) fn new(
        entries: &[(&str, &[u8])],
        store: Option<crate::backup::Snapshot>,
    ) -> anyhow::Result<Outgoing> {
        let mut head = Zeroizing::new(Vec::new());
        for (name, bytes) in entries {
            push_header(&mut head, name, bytes.len() as u64)?;
            head.extend_from_slice(bytes);
        }
        let mut total = head.len() as u64;
        let store = match store {
            Some(snapshot) => {
                let path = snapshot.path();
                let file =
                    File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
                let len = file.metadata()?.len();
                push_header(&mut head, STORE, len)?;
                total = head.len() as u64 + len;
                Some((file, snapshot))
            }
            None => None,
        };
        Ok(Outgoing {
            head,
            offset: 0,
            store,
            total,
            sent: 0,
        })
    }

    /// The next chunk and whether it is the last.
    pub(crate) fn next_chunk(&mut self) -> anyhow::Result<(Zeroizing<Vec<u8>>, bool)> {
        let mut chunk = Zeroizing::new(Vec::with_capacity(super::wire::CHUNK));
        let from_head = (self.head.len() - self.offset).min(super::wire::CHUNK);
        chunk.extend_from_slice(&self.head[self.offset..self.offset + from_head]);
        self.offset += from_head;
        if let Some((file, snapshot)) = &mut self.store {
            let want = (super::wire::CHUNK - chunk.len()) as u64;
            Read::by_ref(file).take(want).read_to_end(&mut chunk)?;
            if chunk.is_empty() && self.sent < self.total {
                bail!("{} shrank while it was sent", snapshot.path().display());
            }
        }
        self.sent += chunk.len() as u64;
        Ok((chunk, self.sent >= self.total))
    }
}

fn push_header(out: &mut Vec<u8>, name: &str, len: u64) -> anyhow::Result<()> {
    let name_len = u16::try_from(name.len()).context("entry name too long")?;
    out.extend_from_slice(&name_len.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Where the entry being received goes.
enum Sink {
    Memory(Zeroizing<Vec<u8>>),
    File(File),
}

/// The joiner's side: the stream unpacked as it arrives.
pub(crate) struct Incoming {
    dir: PathBuf,
    header: Vec<u8>,
    current: Option<(String, u64, Sink)>,
    /// The secrets entry.
    pub(crate) secrets: Option<Zeroizing<Vec<u8>>>,
    /// The card entry.
    pub(crate) card: Option<Vec<u8>>,
    /// Whether `mail.db` came.
    pub(crate) store: bool,
    /// The plain files written (names).
    pub(crate) files: Vec<&'static str>,
}

impl Incoming {
    /// Unpacks into `dir` (the staging directory).
    pub(crate) fn new(dir: &Path) -> Incoming {
        Incoming {
            dir: dir.to_path_buf(),
            header: Vec::new(),
            current: None,
            secrets: None,
            card: None,
            store: false,
            files: Vec::new(),
        }
    }

    /// Takes the next bytes of the stream.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> anyhow::Result<()> {
        while !bytes.is_empty() {
            match &mut self.current {
                None => {
                    let need = self.header_needs();
                    let take = need.min(bytes.len());
                    self.header.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.header_needs() == 0 {
                        self.begin_entry()?;
                    }
                }
                Some((_, left, sink)) => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    match sink {
                        Sink::Memory(buf) => buf.extend_from_slice(&bytes[..take]),
                        Sink::File(file) => file.write_all(&bytes[..take])?,
                    }
                    *left -= take as u64;
                    bytes = &bytes[take..];
                    if *left == 0 {
                        self.end_entry()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks that the stream ended between entries, with the secrets and
    /// the card in it.
    pub(crate) fn finish(&mut self) -> anyhow::Result<()> {
        if self.current.is_some() || !self.header.is_empty() {
            bail!("the bundle ended in the middle of an entry");
        }
        if self.secrets.is_none() || self.card.is_none() {
            bail!("the bundle holds no identity");
        }
        Ok(())
    }

    /// Bytes still missing from the current entry header.
    fn header_needs(&self) -> usize {
        if self.header.len() < 2 {
            return 2 - self.header.len();
        }
        let name = usize::from(u16::from_be_bytes([self.header[0], self.header[1]]));
        (2 + name + 8).saturating_sub(self.header.len())
    }

    fn begin_entry(&mut self) -> anyhow::Result<()> {
        let name_len = usize::from(u16::from_be_bytes([self.header[0], self.header[1]]));
        let name = String::from_utf8(self.header[2..2 + name_len].to_vec())
            .context("the bundle has an entry with a bad name")?;
        let mut size = [0u8; 8];
        size.copy_from_slice(&self.header[2 + name_len..]);
        let size = u64::from_be_bytes(size);
        self.header.clear();
        let sink = match name.as_str() {
            STORE => {
                if self.store {
                    bail!("the bundle holds {STORE} twice");
                }
                Sink::File(create_private(&self.dir.join(STORE))?)
            }
            SECRETS | CARD => {
                small(&name, size)?;
                Sink::Memory(Zeroizing::new(Vec::new()))
            }
            other if PLAIN_FILES.contains(&other) => {
                small(other, size)?;
                Sink::Memory(Zeroizing::new(Vec::new()))
            }
            other => bail!("the bundle holds an entry this mailnode does not know: {other}"),
        };
        self.current = Some((name, size, sink));
        if size == 0 {
            self.end_entry()?;
        }
        Ok(())
    }

    fn end_entry(&mut self) -> anyhow::Result<()> {
        let Some((name, _, sink)) = self.current.take() else {
            return Ok(());
        };
        match (name.as_str(), sink) {
            (STORE, Sink::File(file)) => {
                file.sync_all()?;
                self.store = true;
            }
            (SECRETS, Sink::Memory(bytes)) => self.secrets = Some(bytes),
            (CARD, Sink::Memory(bytes)) => self.card = Some(bytes.to_vec()),
            (other, Sink::Memory(bytes)) => {
                let known = PLAIN_FILES
                    .iter()
                    .find(|n| **n == other)
                    .context("unknown entry")?;
                if self.files.contains(known) {
                    bail!("the bundle holds {other} twice");
                }
                let mut file = create_private(&self.dir.join(known))?;
                file.write_all(&bytes)?;
                file.sync_all()?;
                self.files.push(known);
            }
            (other, Sink::File(_)) => bail!("unexpected file entry {other}"),
        }
        Ok(())
    }
}

fn small(name: &str, size: u64) -> anyhow::Result<()> {
    if size > SMALL_LIMIT {
        bail!("the bundle's entry {name} is implausibly large ({size} bytes)");
    }
    Ok(())
}

fn create_private(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Makes a copy of the linker's `mail.db` fit for a new device, in one
/// transaction on the copy (never on the linker's own store):
///
/// - the `outbox` table is emptied: its entries are the linker's to
///   deliver, and the new device would otherwise send them a second time
///   under its own PeerId;
/// - the messages of the `Outbox` mailbox (which mirrors the table) are
///   expunged the way the store expunges, with a `vanished` record at a new
///   MODSEQ and the mailbox's counters updated; a blob that only they used
///   goes too (each shares the Sent copy's blob).
///
/// - the device-sync journal is emptied: its ops are the linker's, still
///   to be sent to the linker's siblings by the linker.
///
/// Every other mailbox keeps its UIDVALIDITY, UIDs, flags and MODSEQs.
pub(crate) fn prepare_copied_store(path: &Path) -> anyhow::Result<()> {
    let mut conn = rusqlite::Connection::open(path)
        .with_context(|| format!("cannot open the copy {}", path.display()))?;
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM outbox", [])?;
    // A store not opened since before device sync (schema 6) has no journal.
    let journal: i64 = tx.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sync_journal'",
        [],
        |row| row.get(0),
    )?;
    if journal > 0 {
        tx.execute("DELETE FROM sync_journal", [])?;
    }
    let outbox: Option<i64> = tx
        .query_row(
            "SELECT id FROM mailboxes WHERE name = ?1",
            [crate::store::OUTBOX_MAILBOX],
            |row| row.get(0),
        )
        .map(Some)
        .or_else(|err| match err {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            other => Err(other),
        })?;
    if let Some(id) = outbox {
        let count: i64 = tx.query_row(
            "SELECT COUNT(*) FROM messages WHERE mailbox_id = ?1",
            [id],
            |row| row.get(0),
        )?;
        if count > 0 {
            let modseq: i64 =
                tx.query_row("SELECT value FROM meta WHERE key = 'modseq'", [], |row| {
                    row.get(0)
                })?;
            let modseq = modseq + 1;
            tx.execute(
                "INSERT OR REPLACE INTO vanished (mailbox_id, uid, modseq) \
                 SELECT mailbox_id, uid, ?2 FROM messages WHERE mailbox_id = ?1",
                rusqlite::params![id, modseq],
            )?;
            tx.execute(
                "DELETE FROM blobs WHERE id IN (SELECT blob_id FROM messages WHERE mailbox_id = ?1) \
                 AND NOT EXISTS (SELECT 1 FROM messages m \
                                 WHERE m.blob_id = blobs.id AND m.mailbox_id != ?1)",
                [id],
            )?;
            tx.execute("DELETE FROM messages WHERE mailbox_id = ?1", [id])?;
            tx.execute(
                "UPDATE mailboxes SET messages = 0, unseen = 0, size = 0, highest_modseq = ?2 \
                 WHERE id = ?1",
                rusqlite::params![id, modseq],
            )?;
            tx.execute("UPDATE meta SET value = ?1 WHERE key = 'modseq'", [modseq])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Reads a plain file of the home, if it is there.
pub(crate) fn read_if_present(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_unpacks_whatever_the_chunking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("source.db");
        let conn = rusqlite::Connection::open(&db).expect("db");
        let big: Vec<u8> = (0..(super::super::wire::CHUNK * 2 + 77))
            .map(|i| (i % 251) as u8)
            .collect();
        conn.execute_batch("CREATE TABLE t (b BLOB)")
            .expect("table");
        conn.execute("INSERT INTO t VALUES (?1)", [&big])
            .expect("row");
        drop(conn);
        let snapshot = crate::backup::snapshot(&db).expect("snapshot");
        let store = snapshot.path().to_path_buf();
        let expected = fs::read(&store).expect("copy");
        let entries: [(&str, &[u8]); 3] = [
            (SECRETS, b"secret bytes"),
            (CARD, b"card"),
            ("contacts.json", b"{}"),
        ];
        let mut out = Outgoing::new(&entries, Some(snapshot)).expect("outgoing");
        let target = dir.path().join("staging");
        fs::create_dir(&target).expect("staging");
        let mut incoming = Incoming::new(&target);
        let mut chunks = 0;
        loop {
            let (chunk, last) = out.next_chunk().expect("chunk");
            // Fed in uneven pieces, as a check that no boundary matters.
            for piece in chunk.chunks(1000) {
                incoming.feed(piece).expect("feed");
            }
            chunks += 1;
            if last {
                break;
            }
        }
        assert!(chunks >= 3, "{chunks}");
        incoming.finish().expect("complete");
        assert_eq!(
            incoming.secrets.as_deref().map(Vec::as_slice),
            Some(&b"secret bytes"[..])
        );
        assert_eq!(incoming.card.as_deref(), Some(&b"card"[..]));
        assert_eq!(incoming.files, vec!["contacts.json"]);
        assert_eq!(fs::read(target.join(STORE)).expect("copy"), expected);
        drop(out);
        assert!(
            !store.exists(),
            "the prepared copy is deleted after sending"
        );
    }

    #[test]
    fn unknown_entries_and_cut_streams_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut incoming = Incoming::new(dir.path());
        let mut bytes = Vec::new();
        push_header(&mut bytes, "secrets.bin", 1).expect("header");
        assert!(incoming.feed(&bytes).is_err());
        let mut incoming = Incoming::new(dir.path());
        let mut bytes = Vec::new();
        push_header(&mut bytes, SECRETS, 10).expect("header");
        bytes.extend_from_slice(b"12345");
        incoming.feed(&bytes).expect("partial");
        assert!(incoming.finish().is_err());
    }

    #[tokio::test]
    async fn a_prepared_copy_has_no_outbox_and_keeps_sent() {
        use crate::store::{OutboxCounts, OutboxItem, Store};
        use imap_bridge::backend::{Content, FlagOp, MailStore};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mail.db");
        let key = [7u8; 32];
        let store = Store::open(&path, &key).expect("store");
        let sent =
            b"From: a@example.org\r\nSubject: s\r\nMessage-ID: <s@x>\r\n\r\nbody\r\n".to_vec();
        let item = OutboxItem {
            delivery_id: [1; 16],
            recipient: "bob@example.org".into(),
            recipient_fpr: "FPR".into(),
            peer_id: "12D3KooPeer".into(),
            payload: vec![1, 2, 3],
        };
        let uid = store
            .submit_outgoing(sent.clone(), vec![item])
            .await
            .expect("submit");
        // An op the linker has yet to send its own siblings.
        store.set_sync_device(Some("linker"));
        store
            .store_flags("Sent", &[uid], FlagOp::Add, &["\\Flagged".into()], None)
            .await
            .expect("flag");
        assert_eq!(store.sync_pending(10).await.expect("pending").len(), 1);
        let outbox_before = store.snapshot("Outbox").await.expect("outbox");
        assert_eq!(outbox_before.messages().len(), 1);
        let sent_before = store.snapshot("Sent").await.expect("sent");
        store.close().await;

        let copy = crate::backup::snapshot(&path).expect("copy");
        prepare_copied_store(copy.path()).expect("prepare");
        let copied = Store::open(copy.path(), &key).expect("reopen");
        assert_eq!(
            copied.outbox_counts().await.expect("counts"),
            OutboxCounts {
                waiting: 0,
                deposited: 0
            }
        );
        let outbox = copied.snapshot("Outbox").await.expect("outbox");
        assert!(outbox.messages().is_empty());
        assert_eq!(outbox.info.uid_validity, outbox_before.info.uid_validity);
        assert!(outbox.info.highest_modseq > outbox_before.info.highest_modseq);
        let sent_after = copied.snapshot("Sent").await.expect("sent");
        assert_eq!(sent_after.info.uid_validity, sent_before.info.uid_validity);
        assert_eq!(sent_after.messages(), sent_before.messages());
        let fetched = copied
            .fetch("Sent", &[uid], Content::Full)
            .await
            .expect("the Sent copy's blob is kept");
        assert_eq!(&fetched[0].1[..], &sent[..]);
        assert!(
            copied.sync_pending(10).await.expect("pending").is_empty(),
            "the linker's journal stays with the linker"
        );
        copied.close().await;
    }
}
