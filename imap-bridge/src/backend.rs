//! The storage and submission contracts between the bridge and the node.
//!
//! The bridge speaks IMAP and SMTP; it never touches SQLite, keys or the
//! network. Everything it needs from the node goes through the two traits in
//! this module: [`MailStore`] (mailboxes and messages, for IMAP) and
//! [`Submission`] (recipient checks and message hand-off, for SMTP).
//!
//! The node implements both over its encrypted SQLite store; `memory` in this
//! crate implements them in memory for unit tests.
//!
//! Conventions every implementation must keep:
//! - Mailbox names are full hierarchy names with `/` as the delimiter.
//!   `INBOX` is case-insensitive (RFC 3501 §5.1); every other name is
//!   case-sensitive.
//! - UIDVALIDITY of a mailbox never changes while the mailbox exists; a
//!   re-created mailbox gets a new, larger UIDVALIDITY. UIDs only grow.
//! - Every change to a message (arrival, flag change, expunge) gets a new
//!   per-mailbox MODSEQ, strictly larger than every earlier one (RFC 7162).
//!   Expunged UIDs are remembered with the MODSEQ of their expunge so that
//!   [`MailStore::changes_since`] can report them (QRESYNC VANISHED).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::index::MessageIndex;
use crate::mime::SortFields;

/// A message UID (RFC 3501 §2.3.1.1). Never zero.
pub type Uid = u32;

/// A modification sequence number (RFC 7162). Never zero.
pub type ModSeq = u64;

/// SPECIAL-USE attributes (RFC 6154) of the mailboxes the node creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    /// `\Sent`
    Sent,
    /// `\Drafts`
    Drafts,
    /// `\Trash`
    Trash,
    /// `\Junk`
    Junk,
    /// `\Archive`
    Archive,
}

impl SpecialUse {
    /// The attribute as written on the wire, e.g. `\Sent`.
    pub fn as_attribute(self) -> &'static str {
        match self {
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Archive => "\\Archive",
        }
    }
}

/// The mailboxes every store starts with (all subscribed), with their
/// SPECIAL-USE attributes (RFC 6154). `Requests` holds mail from senders who
/// are not contacts.
pub const DEFAULT_MAILBOXES: [(&str, Option<SpecialUse>); 7] = [
    ("INBOX", None),
    ("Sent", Some(SpecialUse::Sent)),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
    ("Requests", None),
];

/// Summary of one mailbox, as LIST and STATUS need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Full name, `/`-delimited, e.g. `Archive/2026`.
    pub name: String,
    /// SPECIAL-USE attribute, if any.
    pub special_use: Option<SpecialUse>,
    /// Whether the user subscribed to it (LSUB, LIST (SUBSCRIBED)).
    pub subscribed: bool,
    /// UIDVALIDITY; never changes while the mailbox exists.
    pub uid_validity: u32,
    /// The UID the next message will get.
    pub uid_next: Uid,
    /// Highest MODSEQ of any change in this mailbox (at least 1).
    pub highest_modseq: ModSeq,
    /// Number of messages.
    pub messages: u32,
    /// Number of messages without `\Seen`.
    pub unseen: u32,
    /// Total size in octets of all messages (STATUS SIZE).
    pub size: u64,
}

/// A message flag: one of the system flags or a keyword (`$Forwarded`,
/// `$Junk`, `$label1`, ...). Stored and compared as the wire text; system
/// flags are case-insensitive on the wire and normalised to the spelling of
/// RFC 3501 (`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`) by
/// [`normalize_flag`].
pub type Flag = String;

/// Normalises the spelling of a system flag (`\SEEN` -> `\Seen`); keywords are
/// returned unchanged.
pub fn normalize_flag(flag: &str) -> Flag {
    const SYSTEM: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];
    for system in SYSTEM {
        if flag.eq_ignore_ascii_case(system) {
            return system.to_string();
        }
    }
    flag.to_string()
}

/// The clear metadata of one message: what IMAP can answer without
/// decrypting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// The message's UID in its mailbox.
    pub uid: Uid,
    /// MODSEQ of the last change to this message.
    pub modseq: ModSeq,
    /// Flags, normalised, sorted, without duplicates.
    pub flags: Vec<Flag>,
    /// RFC822.SIZE: size in octets of the message as served.
    pub size: u32,
    /// INTERNALDATE as seconds since the Unix epoch.
    pub internal_date: i64,
    /// INTERNALDATE's zone, as minutes east of UTC.
    pub internal_date_offset_minutes: i32,
}

/// A mailbox as SELECT sees it: the summary plus the message index, whose
/// order is UID order (the sequence number of a message is its position in
/// the index plus one).
#[derive(Debug, Clone)]
pub struct MailboxSnapshot {
    /// Summary at the moment of the snapshot. Its `uid_next`,
    /// `highest_modseq`, `messages` and `unseen` are those of `index`.
    pub info: MailboxInfo,
    /// Every message, ascending by UID: the version of the mailbox's index
    /// the store shares with every session (an `Arc` clone, not a copy).
    pub index: Arc<MessageIndex>,
}

impl MailboxSnapshot {
    /// Every message's metadata, ascending UID (a copy; for tests and
    /// small mailboxes).
    pub fn messages(&self) -> Vec<MessageMeta> {
        self.index.iter().collect()
    }
}

/// What changed in a mailbox since a MODSEQ.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Highest MODSEQ of the mailbox now.
    pub highest_modseq: ModSeq,
    /// UIDNEXT now.
    pub uid_next: Uid,
    /// Messages that arrived or changed after the given MODSEQ (ascending UID).
    pub changed: Vec<MessageMeta>,
    /// UIDs expunged after the given MODSEQ (ascending).
    pub vanished: Vec<Uid>,
    /// The mailbox's index in the state these changes lead to (at
    /// `highest_modseq`).
    pub index: Arc<MessageIndex>,
}

/// A session's share of `\Recent` in one mailbox (RFC 3501 §2.3.2): a
/// message is recent in the first session told of it, and in read-only
/// sessions until such a session exists. Stores keep one watermark per
/// mailbox, the first UID no session has claimed; see
/// [`MailStore::recent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recent {
    /// The messages from this UID up to the `below` asked for are recent
    /// for the caller (none when it equals `below`).
    pub first: Uid,
    /// Messages no session has claimed, after this call (STATUS RECENT).
    pub unclaimed: u32,
}

/// Which bytes of a message to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// The header only, up to and including the blank line that ends it.
    Header,
    /// The whole message (RFC822 / BODY[]).
    Full,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

/// Result of a STORE.
#[derive(Debug, Clone, Default)]
pub struct StoreResult {
    /// Messages whose flags were considered (changed or not), with their
    /// metadata after the store, ascending UID.
    pub updated: Vec<MessageMeta>,
    /// UIDs that failed an UNCHANGEDSINCE test (RFC 7162 §3.1.3), ascending.
    pub modified: Vec<Uid>,
}

/// Result of APPEND, COPY or MOVE: the destination's UIDVALIDITY and the new
/// UIDs (RFC 4315 APPENDUID / COPYUID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResult {
    /// UIDVALIDITY of the destination mailbox.
    pub uid_validity: u32,
    /// Pairs of (source UID, destination UID), ascending source UID. For
    /// APPEND the source UID is 0.
    pub mapping: Vec<(Uid, Uid)>,
}

/// A change notification: the named mailbox changed; sessions that show it
/// call [`MailStore::changes_since`] to learn what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxChanged {
    /// The mailbox's full name.
    pub mailbox: String,
    /// Its highest MODSEQ after the change.
    pub highest_modseq: ModSeq,
}

/// Why a storage operation failed. The bridge maps each kind to one IMAP
/// response code in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The mailbox does not exist (`NO [NONEXISTENT]`).
    #[error("no such mailbox: {0}")]
    NoSuchMailbox(String),
    /// The mailbox already exists (`NO [ALREADYEXISTS]`).
    #[error("mailbox already exists: {0}")]
    AlreadyExists(String),
    /// The operation is not allowed, e.g. deleting INBOX (`NO [CANNOT]`).
    #[error("{0}")]
    Cannot(String),
    /// The message could not be stored because it is malformed or too large
    /// (`NO [LIMIT]` / `NO`).
    #[error("{0}")]
    Rejected(String),
    /// A temporary failure; the client may retry (`NO [UNAVAILABLE]`).
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A bug or a storage failure (`NO [SERVERBUG]`); logged by the node.
    #[error("internal error: {0}")]
    Internal(String),
}

pub use crate::sort_map::SortFieldMap;

/// Result type of the storage contract.
pub type StoreResultT<T> = Result<T, StoreError>;

/// The node's mail storage, as the IMAP side of the bridge sees it. One user
/// per node: there is no user argument.
///
/// Implementations are cheap handles (clone = new reference to the same
/// store). Every method is atomic: it either happens entirely or not at all.
pub trait MailStore: Clone + Send + Sync + 'static {
    /// Every mailbox, in no particular order.
    fn list_mailboxes(&self) -> impl Future<Output = StoreResultT<Vec<MailboxInfo>>> + Send;

    /// Creates a mailbox. Parents in the hierarchy are created as needed
    /// (RFC 3501 §6.3.3). `AlreadyExists` if it exists.
    fn create_mailbox(&self, name: &str) -> impl Future<Output = StoreResultT<()>> + Send;

    /// Deletes a mailbox and its messages. INBOX cannot be deleted.
    fn delete_mailbox(&self, name: &str) -> impl Future<Output = StoreResultT<()>> + Send;

    /// Renames a mailbox and its children (RFC 3501 §6.3.5). UIDVALIDITY and
    /// UIDs move with it. Renaming INBOX moves its messages to the new
    /// mailbox and leaves INBOX empty.
    fn rename_mailbox(&self, from: &str, to: &str)
    -> impl Future<Output = StoreResultT<()>> + Send;

    /// Sets the subscription state of a name (which need not exist).
    fn set_subscribed(
        &self,
        name: &str,
        subscribed: bool,
    ) -> impl Future<Output = StoreResultT<()>> + Send;

    /// Names the user subscribed to (they may not exist any more).
    fn subscriptions(&self) -> impl Future<Output = StoreResultT<Vec<String>>> + Send;

    /// Summary and message index of one mailbox. Must not read every
    /// message: SELECT calls it (issue 7); implementations keep the index
    /// current as the mailbox changes.
    fn snapshot(&self, mailbox: &str)
    -> impl Future<Output = StoreResultT<MailboxSnapshot>> + Send;

    /// What changed after `since` (arrivals, flag changes, expunges), and
    /// the index of the state it leads to.
    fn changes_since(
        &self,
        mailbox: &str,
        since: ModSeq,
    ) -> impl Future<Output = StoreResultT<Changes>> + Send;

    /// `\Recent` for a session showing `mailbox` up to (not including)
    /// UID `below`: the unclaimed UIDs below it are recent for the caller.
    /// With `claim` (a read-write session) they become the caller's alone:
    /// no later call sees them as unclaimed. Without it (EXAMINE, STATUS)
    /// nothing changes. The watermark only moves forward; a store may
    /// persist it lazily, since losing a claim in a crash only shows
    /// messages as recent once more.
    fn recent(
        &self,
        mailbox: &str,
        below: Uid,
        claim: bool,
    ) -> impl Future<Output = StoreResultT<Recent>> + Send;

    /// Decrypted content of the given messages. UIDs that do not exist are
    /// left out of the answer. Order follows `uids`.
    fn fetch(
        &self,
        mailbox: &str,
        uids: &[Uid],
        content: Content,
    ) -> impl Future<Output = StoreResultT<Vec<(Uid, Arc<[u8]>)>>> + Send;

    /// What SORT and THREAD compare of the given messages (RFC 5256), by
    /// UID. UIDs that do not exist are absent; the map may hold more
    /// messages than asked (a store can hand out what it keeps of the whole
    /// mailbox without copying it). Stores should keep these next to each
    /// message rather than parse headers on every call; this default reads
    /// the headers.
    fn sort_fields(
        &self,
        mailbox: &str,
        uids: &[Uid],
    ) -> impl Future<Output = StoreResultT<Arc<SortFieldMap>>> + Send {
        async move {
            let headers = self.fetch(mailbox, uids, Content::Header).await?;
            let mut map = SortFieldMap::with_capacity(headers.len());
            for (uid, header) in headers {
                map.insert(uid, SortFields::from_message(&header));
            }
            Ok(Arc::new(map))
        }
    }

    /// Changes flags of the given messages. With `unchanged_since`, messages
    /// whose MODSEQ is larger are left alone and reported in `modified`.
    fn store_flags(
        &self,
        mailbox: &str,
        uids: &[Uid],
        op: FlagOp,
        flags: &[Flag],
        unchanged_since: Option<ModSeq>,
    ) -> impl Future<Output = StoreResultT<StoreResult>> + Send;

    /// Removes messages flagged `\Deleted`; with `only`, just those among the
    /// given UIDs (UID EXPUNGE). Returns the expunged UIDs, ascending.
    fn expunge(
        &self,
        mailbox: &str,
        only: Option<&[Uid]>,
    ) -> impl Future<Output = StoreResultT<Vec<Uid>>> + Send;

    /// Appends a message. `internal_date` is (seconds since epoch, zone
    /// offset in minutes); `None` means now.
    fn append(
        &self,
        mailbox: &str,
        flags: &[Flag],
        internal_date: Option<(i64, i32)>,
        message: Vec<u8>,
    ) -> impl Future<Output = StoreResultT<CopyResult>> + Send;

    /// Copies messages to another mailbox, keeping flags and INTERNALDATE.
    fn copy(
        &self,
        from: &str,
        uids: &[Uid],
        to: &str,
    ) -> impl Future<Output = StoreResultT<CopyResult>> + Send;

    /// Moves messages (RFC 6851): copy and expunge from the source in one
    /// transaction.
    fn move_messages(
        &self,
        from: &str,
        uids: &[Uid],
        to: &str,
    ) -> impl Future<Output = StoreResultT<CopyResult>> + Send;

    /// A receiver of change notifications for every mailbox.
    fn watch(&self) -> broadcast::Receiver<MailboxChanged>;
}

/// The SMTP envelope of a submission (RFC 5321 §2.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// MAIL FROM address (may be empty for the null reverse-path).
    pub from: String,
    /// RCPT TO addresses, in the order accepted.
    pub recipients: Vec<String>,
}

/// Why a recipient was refused at RCPT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    /// Not in the address book: `550 5.1.1`, with how to add the contact.
    #[error("{0}")]
    Unknown(String),
    /// Syntactically not an address: `553 5.1.3`.
    #[error("{0}")]
    Invalid(String),
    /// Known, but mail to them is refused (their key is revoked):
    /// `550 5.7.1`, with why.
    #[error("{0}")]
    Refused(String),
    /// Temporary trouble: `451 4.3.0`.
    #[error("{0}")]
    Temporary(String),
}

/// Why a submission was refused after DATA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The message cannot be sent as it is (`554 5.6.0`), e.g. broken MIME
    /// or a From the user does not own.
    #[error("{0}")]
    Rejected(String),
    /// Too large (`552 5.3.4`).
    #[error("{0}")]
    TooLarge(String),
    /// Temporary trouble; nothing was queued (`451 4.3.0`).
    #[error("{0}")]
    Temporary(String),
}

/// Per-recipient outcome of an accepted submission (for LMTP-style detail in
/// logs; SMTP itself answers once after DATA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// Identifier of the queued message, for the `250` text and logs.
    pub queue_id: String,
}

/// The node's outgoing mail path, as the SMTP side of the bridge sees it.
pub trait Submission: Clone + Send + Sync + 'static {
    /// Checks one RCPT TO address before accepting it.
    fn check_recipient(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<(), RecipientError>> + Send;

    /// Hands over a complete message. Returns only after the message is
    /// durably queued for every recipient and filed in Sent.
    fn submit(
        &self,
        envelope: Envelope,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<Submitted, SubmitError>> + Send;
}
