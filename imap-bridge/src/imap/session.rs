//! The IMAP session state machine (RFC 3501 §3): which commands are valid
//! in which state, the one `match` that dispatches them to the command
//! groups, and the synchronisation of the selected mailbox before and after
//! each command.
//!
//! A session does no I/O. It gets complete messages from the driver, writes
//! responses into its [`Output`], and tells the driver through [`Next`] when
//! the connection itself must change (SASL exchange, IDLE, STARTTLS,
//! COMPRESS, close).

use std::sync::Arc;

use imap_codec::CommandCodec;
use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::imap_types::command::{Command, CommandBody};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::TryRecvError;

use super::ImapConfig;
use super::esearch::{self, SearchReturn};
use super::fragment::is_tag;
use super::mailbox::Names;
use super::response::{Completion, Output, Sink};
use super::selected::{Report, Selected};
use super::{list, message};
use crate::backend::{MailStore, MailboxChanged, StoreError};

/// The connection state (RFC 3501 §3).
#[derive(Debug)]
pub enum State {
    /// Before LOGIN/AUTHENTICATE.
    NotAuthenticated,
    /// Logged in, no mailbox selected.
    Authenticated,
    /// A mailbox is selected.
    Selected(Box<Selected>),
    /// The session is over; the driver closes the connection.
    Logout,
}

/// What the driver must do after sending the pending output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Read the next command.
    Command,
    /// Read a SASL response line for AUTHENTICATE PLAIN.
    Authenticate {
        /// Tag of the AUTHENTICATE command.
        tag: String,
    },
    /// Wait for DONE while pushing mailbox changes (RFC 2177).
    Idle {
        /// Tag of the IDLE command.
        tag: String,
    },
    /// Start the TLS handshake (the OK is already written).
    StartTls,
    /// Start DEFLATE (the OK is already written).
    Compress,
    /// Close the connection.
    Close,
}

/// Failed logins tolerated on one connection before it is closed.
const MAX_AUTH_FAILURES: u32 = 5;

/// One client's session.
#[derive(Debug)]
pub struct Session<S: MailStore> {
    pub(super) config: Arc<ImapConfig>,
    pub(super) store: S,
    pub(super) state: State,
    pub(super) out: Output,
    /// TLS is active (no STARTTLS any more).
    pub(super) tls: bool,
    /// COMPRESS is active.
    pub(super) compressed: bool,
    /// CONDSTORE enabled (RFC 7162 §3.1).
    pub(super) condstore: bool,
    /// QRESYNC enabled (RFC 7162 §3.2.3).
    pub(super) qresync: bool,
    /// How mailbox names travel: UTF-8 once UTF8=ACCEPT is enabled.
    pub(super) names: Names,
    /// The RETURN options of the SEARCH being run (ESEARCH, RFC 4731),
    /// taken out of the command before decoding ([`esearch::rewrite`]).
    pub(super) search_return: Option<SearchReturn>,
    watch: broadcast::Receiver<MailboxChanged>,
    /// The selected mailbox may have changed since the last sync.
    dirty: bool,
    pub(super) auth_failures: u32,
}

/// Commands during which EXPUNGE must not be sent (RFC 3501 §7.4.1): they
/// use message sequence numbers the client relies on.
fn allows_expunge(body: &CommandBody<'_>) -> bool {
    !matches!(
        body,
        CommandBody::Fetch { uid: false, .. }
            | CommandBody::Store { uid: false, .. }
            | CommandBody::Search { uid: false, .. }
            | CommandBody::Sort { uid: false, .. }
            | CommandBody::Thread { uid: false, .. }
            | CommandBody::Copy { uid: false, .. }
            | CommandBody::Move { uid: false, .. }
    )
}

/// The tag of an undecodable message, for `tag BAD` (else `*`).
fn rough_tag(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|b| *b == b' ' || *b == b'\r' || *b == b'\n')
        .unwrap_or(bytes.len());
    let tag = &bytes[..end];
    if is_tag(tag) {
        String::from_utf8_lossy(tag).into_owned()
    } else {
        "*".to_string()
    }
}

/// The command name (second word) of an undecodable message, uppercased.
fn rough_command(bytes: &[u8]) -> String {
    let mut words = bytes.split(|b| *b == b' ' || *b == b'\r' || *b == b'\n');
    words.next();
    words
        .next()
        .map(|w| String::from_utf8_lossy(w).to_ascii_uppercase())
        .unwrap_or_default()
}

impl<S: MailStore> Session<S> {
    /// A fresh session; the greeting is already in the output.
    pub fn new(config: Arc<ImapConfig>, store: S) -> Self {
        let watch = store.watch();
        let mut session = Session {
            config,
            store,
            state: State::NotAuthenticated,
            out: Output::default(),
            tls: false,
            compressed: false,
            condstore: false,
            qresync: false,
            names: Names::Utf7,
            search_return: None,
            watch,
            dirty: false,
            auth_failures: 0,
        };
        let caps = session.capabilities();
        session
            .out
            .untagged(&format!("OK [CAPABILITY {caps}] mailnode ready"));
        session
    }

    /// The output waiting to be sent.
    pub fn take_output(&mut self) -> Vec<u8> {
        self.out.take()
    }

    /// Whether a user is logged in.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated | State::Selected(_))
    }

    /// The capability list for the current state (RFC 3501 §7.2.1).
    pub fn capabilities(&self) -> String {
        let mut caps = vec!["IMAP4rev1", "LITERAL+", "SASL-IR", "AUTH=PLAIN"];
        if self.config.tls.is_some() && !self.tls && !self.is_authenticated() {
            caps.push("STARTTLS");
        }
        caps.extend([
            "ID",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "CHILDREN",
            "SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "CONDSTORE",
            "QRESYNC",
            "SORT",
            "SORT=DISPLAY",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "ESEARCH",
            "SEARCHRES",
            "STATUS=SIZE",
            "BINARY",
            "UTF8=ACCEPT",
        ]);
        if !self.compressed {
            caps.push("COMPRESS=DEFLATE");
        }
        caps.join(" ")
    }

    /// Report settings for untagged updates now.
    pub(super) fn report(&self, expunges: bool) -> Report {
        Report {
            expunges,
            qresync: self.qresync,
            condstore: self.condstore,
        }
    }

    /// The selected mailbox, if any.
    pub(super) fn selected(&self) -> Option<&Selected> {
        match &self.state {
            State::Selected(selected) => Some(selected),
            _ => None,
        }
    }

    /// The selected mailbox, mutable.
    pub(super) fn selected_mut(&mut self) -> Option<&mut Selected> {
        match &mut self.state {
            State::Selected(selected) => Some(selected),
            _ => None,
        }
    }

    /// Marks the selected mailbox as possibly changed (after our own
    /// changes, so the next sync picks up what we did not report).
    pub(super) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Tells the client what changed in the selected mailbox since the last
    /// sync. `force` asks the store even without a notification (NOOP,
    /// CHECK, IDLE).
    pub async fn sync(&mut self, expunges: bool, force: bool) {
        let mut dirty = force || self.dirty;
        loop {
            match self.watch.try_recv() {
                Ok(change) => {
                    if self.selected().is_some_and(|s| s.name == change.mailbox) {
                        dirty = true;
                    }
                }
                Err(TryRecvError::Lagged(_)) => dirty = true,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        let report = self.report(expunges);
        let Some(selected) = self.selected() else {
            self.dirty = false;
            return;
        };
        if !dirty {
            return;
        }
        let (name, since) = (selected.name.clone(), selected.highest_modseq);
        let (known_next, read_only) = (selected.uid_next, selected.read_only);
        match self.store.changes_since(&name, since).await {
            Ok(changes) => {
                // New mail is recent for the first session told of it.
                let recent = if changes.uid_next > known_next {
                    self.store
                        .recent(&name, changes.uid_next, !read_only)
                        .await
                        .inspect_err(|error| {
                            tracing::warn!(%error, mailbox = %name, "cannot claim recent mail");
                        })
                        .ok()
                } else {
                    None
                };
                if let State::Selected(selected) = &mut self.state {
                    if let Some(recent) = recent {
                        selected.add_recent(recent.first, changes.uid_next);
                    }
                    selected.apply(changes, report, &mut self.out);
                }
                self.dirty = false;
            }
            Err(StoreError::NoSuchMailbox(_)) => {
                // Deleted or renamed by another session: this view cannot
                // continue (RFC 3501 leaves the choice to the server).
                self.out
                    .untagged("BYE The selected mailbox was deleted or renamed; please reconnect");
                self.state = State::Logout;
            }
            Err(error) => {
                tracing::warn!(%error, mailbox = %name, "cannot read mailbox changes");
                self.dirty = true;
            }
        }
    }

    /// Waits until the store reports a change (for IDLE). Cancel-safe.
    pub async fn wait_for_change(&mut self) {
        match self.watch.recv().await {
            Ok(change) => {
                if self.selected().is_some_and(|s| s.name == change.mailbox) {
                    self.dirty = true;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => self.dirty = true,
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }

    /// Handles one complete message from the client.
    pub async fn handle(&mut self, bytes: &[u8], sink: &mut impl Sink) -> Next {
        self.search_return = None;
        // UTF8=ACCEPT's APPEND data item (see `message::utf8_append_data`).
        let unwrapped = match self.names {
            Names::Utf8 => message::utf8_append_data(bytes),
            Names::Utf7 => None,
        };
        let bytes = unwrapped.as_deref().unwrap_or(bytes);
        let rewritten;
        let command = match CommandCodec::default().decode(bytes) {
            Ok((&[], command)) => command,
            Ok(_) | Err(CommandDecodeError::Failed | CommandDecodeError::Incomplete) => {
                // ESEARCH and SEARCHRES (see `esearch`).
                let attempt = if self.is_authenticated() {
                    esearch::rewrite(bytes, &self.dollar())
                } else {
                    Ok(None)
                };
                rewritten = match attempt {
                    Ok(Some(rewritten)) => rewritten,
                    Ok(None) => return self.undecodable(bytes).await,
                    Err(reason) => {
                        self.out.tagged(&rough_tag(bytes), &Completion::bad(reason));
                        return Next::Command;
                    }
                };
                match CommandCodec::default().decode(&rewritten.bytes) {
                    Ok((&[], command)) => {
                        if rewritten.empty_set {
                            // RFC 5182 §2.1: `$` names no message.
                            let tag = command.tag.as_ref().to_string();
                            let name = command.body.name();
                            self.out.tagged(
                                &tag,
                                &Completion::ok(format!("{name} completed (no messages)")),
                            );
                            return Next::Command;
                        }
                        self.search_return = rewritten.returns.clone();
                        command
                    }
                    _ => return self.undecodable(bytes).await,
                }
            }
            Err(CommandDecodeError::LiteralFound { tag, .. }) => {
                self.out
                    .tagged(tag.as_ref(), &Completion::bad("unexpected literal"));
                return Next::Command;
            }
        };
        self.dispatch(command, sink).await
    }

    /// A message imap-codec could not decode: our own LIST-EXTENDED parser
    /// gets a chance, otherwise `BAD` (never a dropped session).
    async fn undecodable(&mut self, bytes: &[u8]) -> Next {
        let tag = rough_tag(bytes);
        if tag != "*"
            && rough_command(bytes) == "LIST"
            && self.is_authenticated()
            && let Ok(request) = list::parse_list_command(bytes, self.names)
        {
            self.sync(true, false).await;
            let completion = self.list(request).await;
            self.sync(true, false).await;
            self.out.tagged(&tag, &completion);
            return Next::Command;
        }
        tracing::debug!(tag = %tag, "undecodable IMAP command");
        let completion = Completion::bad("Invalid command syntax");
        self.out.tagged(&tag, &completion);
        Next::Command
    }

    async fn dispatch(&mut self, command: Command<'_>, sink: &mut impl Sink) -> Next {
        let tag = command.tag.as_ref().to_string();
        let expunges = allows_expunge(&command.body);
        let force = matches!(
            command.body,
            CommandBody::Noop | CommandBody::Check | CommandBody::Idle
        );
        if self.is_authenticated() {
            self.sync(expunges, force).await;
            if matches!(self.state, State::Logout) {
                return Next::Close;
            }
        }
        let (completion, next) = self.run(&tag, command.body, sink).await;
        if let Some(completion) = completion {
            if self.is_authenticated() && matches!(next, Next::Command) {
                // Changes our command caused elsewhere in the view (APPEND
                // to the selected mailbox) come before the tagged reply.
                self.sync(expunges, false).await;
            }
            self.out.tagged(&tag, &completion);
        }
        if matches!(self.state, State::Logout) {
            return Next::Close;
        }
        next
    }

    /// Runs one command. Returns the tagged completion (None when the
    /// command continues in the driver) and what the driver does next.
    async fn run(
        &mut self,
        tag: &str,
        body: CommandBody<'_>,
        sink: &mut impl Sink,
    ) -> (Option<Completion>, Next) {
        let authenticated = self.is_authenticated();
        let selected = self.selected().is_some();
        let done = |c: Completion| (Some(c), Next::Command);
        match body {
            // Any state (RFC 3501 §6.1).
            CommandBody::Capability => {
                let caps = self.capabilities();
                self.out.untagged(&format!("CAPABILITY {caps}"));
                done(Completion::ok("CAPABILITY completed"))
            }
            CommandBody::Noop => done(Completion::ok("NOOP completed")),
            CommandBody::Logout => {
                self.out.untagged("BYE mailnode logging out");
                self.state = State::Logout;
                (Some(Completion::ok("LOGOUT completed")), Next::Close)
            }
            CommandBody::Id { .. } => {
                let version = env!("CARGO_PKG_VERSION");
                self.out.untagged(&format!(
                    "ID (\"name\" \"mailnode\" \"version\" \"{version}\")"
                ));
                done(Completion::ok("ID completed"))
            }

            // Not authenticated (RFC 3501 §6.2).
            CommandBody::StartTLS if !authenticated => self.starttls(),
            CommandBody::Login { username, password } if !authenticated => {
                let completion = self.login(username.as_ref(), password.declassify().as_ref());
                self.after_auth_attempt(tag, completion)
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } if !authenticated => self.authenticate(tag, &mechanism, initial_response),
            CommandBody::StartTLS
            | CommandBody::Login { .. }
            | CommandBody::Authenticate { .. } => done(Completion::bad("Already authenticated")),
            _ if !authenticated => done(Completion::bad("Please log in first")),

            // Authenticated (RFC 3501 §6.3).
            CommandBody::Select {
                mailbox,
                parameters,
            } => done(self.select(&mailbox, parameters, false).await),
            CommandBody::Examine {
                mailbox,
                parameters,
            } => done(self.select(&mailbox, parameters, true).await),
            CommandBody::Create { mailbox } => done(self.create(&mailbox).await),
            CommandBody::Delete { mailbox } => done(self.delete(&mailbox).await),
            CommandBody::Rename { from, to } => done(self.rename(&from, &to).await),
            CommandBody::Subscribe { mailbox } => done(self.subscribe(&mailbox, true).await),
            CommandBody::Unsubscribe { mailbox } => done(self.subscribe(&mailbox, false).await),
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                let request =
                    list::ListRequest::plain(&reference, &mailbox_wildcard, false, self.names);
                done(self.list(request).await)
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                let request =
                    list::ListRequest::plain(&reference, &mailbox_wildcard, true, self.names);
                done(self.list(request).await)
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => done(self.status(&mailbox, &item_names).await),
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => done(self.append(&mailbox, &flags, date.as_ref(), message).await),
            CommandBody::Namespace => {
                self.out.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
                done(Completion::ok("NAMESPACE completed"))
            }
            CommandBody::Enable { capabilities } => done(self.enable(capabilities.as_ref())),
            CommandBody::Compress { .. } => self.compress(),
            CommandBody::Idle => {
                self.out.continuation("idling");
                (
                    None,
                    Next::Idle {
                        tag: tag.to_string(),
                    },
                )
            }
            _ if !selected => done(Completion::bad("No mailbox selected")),

            // Selected (RFC 3501 §6.4).
            CommandBody::Check => done(Completion::ok("CHECK completed")),
            CommandBody::Close => done(self.close(true).await),
            CommandBody::Unselect => done(self.close(false).await),
            CommandBody::Expunge => done(self.expunge(None).await),
            CommandBody::ExpungeUid { sequence_set } => {
                done(self.expunge(Some(&sequence_set)).await)
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => done(
                self.search(tag, charset.as_ref(), criteria.as_ref(), uid)
                    .await,
            ),
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => done(
                self.sort(
                    sort_criteria.as_ref(),
                    &charset,
                    search_criteria.as_ref(),
                    uid,
                )
                .await,
            ),
            CommandBody::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => done(
                self.thread(&algorithm, &charset, search_criteria.as_ref(), uid)
                    .await,
            ),
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => done(
                self.fetch(&sequence_set, macro_or_item_names, uid, &modifiers, sink)
                    .await,
            ),
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => done(
                self.store_command(&sequence_set, kind, response, &flags, uid, &modifiers)
                    .await,
            ),
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => done(self.copy_or_move(&sequence_set, &mailbox, uid, false).await),
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => done(self.copy_or_move(&sequence_set, &mailbox, uid, true).await),
            other => done(Completion::bad(format!(
                "{} is not supported",
                other.name()
            ))),
        }
    }

    /// Counts failures; too many close the connection.
    pub(super) fn after_auth_attempt(
        &mut self,
        tag: &str,
        completion: Completion,
    ) -> (Option<Completion>, Next) {
        if self.is_authenticated() {
            return (Some(completion), Next::Command);
        }
        self.auth_failures += 1;
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.out.tagged(tag, &completion);
            self.out.untagged("BYE Too many failed login attempts");
            self.state = State::Logout;
            return (None, Next::Close);
        }
        (Some(completion), Next::Command)
    }

    /// Ends IDLE after the client's line: `DONE` or anything else (`BAD`).
    pub async fn idle_done(&mut self, tag: &str, line: &[u8]) -> Next {
        use imap_codec::IdleDoneCodec;
        let completion = match IdleDoneCodec::default().decode(line) {
            Ok((&[], _)) => Completion::ok("IDLE terminated"),
            _ => Completion::bad("Expected DONE"),
        };
        self.sync(true, false).await;
        self.out.tagged(tag, &completion);
        if matches!(self.state, State::Logout) {
            Next::Close
        } else {
            Next::Command
        }
    }

    /// Pushes changes during IDLE (RFC 2177: EXPUNGE is allowed).
    pub async fn idle_update(&mut self) -> Next {
        self.sync(true, false).await;
        if matches!(self.state, State::Logout) {
            Next::Close
        } else {
            Next::Command
        }
    }

    /// The greeting-time BYE for shutdown.
    pub fn shutdown(&mut self) {
        self.out.untagged("BYE mailnode is shutting down");
        self.state = State::Logout;
    }
}

#[cfg(test)]
mod tests {
    use imap_codec::imap_types::command::FetchModifier;

    use super::*;
    use crate::config::{BridgeCredentials, Secret};
    use crate::memory::MemoryStore;

    fn session() -> Session<MemoryStore> {
        let config = Arc::new(ImapConfig {
            credentials: BridgeCredentials {
                username: "me@example.org".into(),
                password: Secret::new("pw"),
            },
            max_literal: 1 << 20,
            tls: None,
        });
        Session::new(config, MemoryStore::new())
    }

    async fn say(session: &mut Session<MemoryStore>, line: &[u8]) -> (Next, String) {
        let mut sink = Vec::new();
        let next = session.handle(line, &mut sink).await;
        sink.extend(session.take_output());
        (next, String::from_utf8_lossy(&sink).into_owned())
    }

    #[tokio::test]
    async fn state_machine_without_sockets() {
        let mut s = session();
        assert!(String::from_utf8_lossy(&s.take_output()).starts_with("* OK [CAPABILITY "));
        let (_, out) = say(&mut s, b"a SELECT INBOX\r\n").await;
        assert_eq!(out, "a BAD Please log in first\r\n");
        let (_, out) = say(&mut s, b"b LOGIN me@example.org pw\r\n").await;
        assert!(out.starts_with("b OK [CAPABILITY IMAP4rev1"), "{out}");
        let (_, out) = say(&mut s, b"c FETCH 1 FLAGS\r\n").await;
        assert_eq!(out, "c BAD No mailbox selected\r\n");
        let (_, out) = say(&mut s, b"d SELECT INBOX\r\n").await;
        assert!(
            out.ends_with("d OK [READ-WRITE] SELECT completed\r\n"),
            "{out}"
        );
        let (next, out) = say(&mut s, b"e IDLE\r\n").await;
        assert_eq!(next, Next::Idle { tag: "e".into() });
        assert_eq!(out, "+ idling\r\n");
        assert_eq!(s.idle_done("e", b"DONE\r\n").await, Next::Command);
        assert_eq!(s.take_output(), b"e OK IDLE terminated\r\n");
        let (next, out) = say(&mut s, b"f LOGOUT\r\n").await;
        assert_eq!(next, Next::Close);
        assert_eq!(
            out,
            "* BYE mailnode logging out\r\nf OK LOGOUT completed\r\n"
        );
    }

    #[tokio::test]
    async fn big_fetch_is_streamed_through_the_sink() {
        let mut s = session();
        let body = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(300_000));
        for _ in 0..8 {
            s.store.deliver("INBOX", body.as_bytes()).expect("deliver");
        }
        say(&mut s, b"a LOGIN me@example.org pw\r\n").await;
        say(&mut s, b"b SELECT INBOX\r\n").await;
        let mut sink = Vec::new();
        s.handle(b"c FETCH 1:* BODY.PEEK[]\r\n", &mut sink).await;
        assert!(sink.len() >= 1024 * 1024, "streamed before the end");
        let rest = s.take_output();
        assert!(rest.len() < sink.len(), "only the tail is left");
        assert!(String::from_utf8_lossy(&rest).ends_with("c OK FETCH completed\r\n"));
    }

    /// Thunderbird 153's first CONDSTORE sync of a folder. The codec decodes
    /// `CHANGEDSINCE 0` itself (vendor/patches), as 0, not as a repaired 1.
    #[test]
    fn changedsince_zero_decodes_as_zero() {
        for (line, expected) in [
            (
                &b"27 UID fetch 1:* (FLAGS) (CHANGEDSINCE 0)\r\n"[..],
                vec![FetchModifier::ChangedSince(0)],
            ),
            (
                b"a FETCH 1:* FLAGS (vanished changedsince 0)\r\n",
                vec![FetchModifier::Vanished, FetchModifier::ChangedSince(0)],
            ),
        ] {
            let decoded = CommandCodec::default().decode(line).map(|(_, c)| c.body);
            let Ok(CommandBody::Fetch { modifiers, .. }) = decoded else {
                panic!("{line:?} decoded to {decoded:?}");
            };
            assert_eq!(modifiers, expected, "{line:?}");
        }
    }

    #[tokio::test]
    async fn changedsince_zero_returns_every_message_with_its_modseq() {
        let mut s = session();
        for subject in ["one", "two"] {
            let message = format!("Subject: {subject}\r\n\r\nbody\r\n");
            s.store
                .deliver("INBOX", message.as_bytes())
                .expect("deliver");
        }
        say(&mut s, b"a LOGIN me@example.org pw\r\n").await;
        say(&mut s, b"b SELECT INBOX\r\n").await;
        let (_, out) = say(&mut s, b"27 UID fetch 1:* (FLAGS) (CHANGEDSINCE 0)\r\n").await;
        assert!(
            // Delivered before this first SELECT: recent here.
            out.contains("* 1 FETCH (UID 1 FLAGS (\\Recent) MODSEQ (")
                && out.contains("* 2 FETCH (UID 2 FLAGS (\\Recent) MODSEQ (")
                && out.ends_with("27 OK UID FETCH completed\r\n"),
            "{out}"
        );
    }

    #[test]
    fn rough_tag_and_command() {
        assert_eq!(rough_tag(b"a1 FOO bar\r\n"), "a1");
        assert_eq!(rough_tag(b"\r\n"), "*");
        assert_eq!(rough_tag(b"+x NOOP\r\n"), "*");
        assert_eq!(rough_command(b"a1 list (subscribed) \"\" *\r\n"), "LIST");
    }

    #[test]
    fn expunge_rules_follow_rfc3501_7_4_1() {
        let fetch: Command<'_> = CommandCodec::default()
            .decode(b"a FETCH 1 FLAGS\r\n")
            .map(|(_, c)| c)
            .expect("decode");
        assert!(!allows_expunge(&fetch.body));
        let uid_fetch: Command<'_> = CommandCodec::default()
            .decode(b"a UID FETCH 1 FLAGS\r\n")
            .map(|(_, c)| c)
            .expect("decode");
        assert!(allows_expunge(&uid_fetch.body));
    }
}
