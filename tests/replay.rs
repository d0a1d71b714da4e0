//! Replays real Thunderbird sessions, recorded by `tb-sync.sh` and kept in
//! `tests/transcripts/`, against a fresh node seeded with the same messages,
//! and checks that every tagged response has the recorded status (OK, NO,
//! BAD) and that the stable part of the data matches: message counts, the
//! UIDs fetched, mailbox names, APPENDUID/COPYUID. UIDVALIDITY, dates and
//! MODSEQ values may differ between runs and are not compared.
//!
//! The replay is sequential and faithful to the recording's order across
//! connections: a client unit is sent when the transcript reaches it, and
//! a recorded tagged response or continuation request is waited for when
//! the transcript reaches it. Untagged data is read along the way.

mod common;
#[path = "transcripts/mod.rs"]
mod transcripts;

use std::collections::{BTreeSet, HashMap, HashSet};

use base64::Engine;
use common::Node;
use transcripts::transcript::{Entry, Exchange, Part, Side, Transcript, Unit, literal_marker};
use transcripts::wire::{Client, Reply, number_after};
use transcripts::{AUTH_PLAIN_PLACEHOLDER, PASSWORD_PLACEHOLDER, RECORDED_USER};

/// One replayed connection.
struct Conn {
    client: Client,
    /// Replies read since the last tagged response.
    received: Vec<Reply>,
}

/// Drives one transcript against a node.
struct Replay<'t> {
    transcript: &'t Transcript,
    port: u16,
    password: String,
    /// Tagged commands by the entry index of their response.
    by_response: HashMap<usize, Exchange<'t>>,
    /// Server continuation units the client's synchronizing literals
    /// consumed inline.
    inline_continuations: HashSet<usize>,
    conns: HashMap<u32, Conn>,
    /// Recorded MODSEQ values and ours for the same state (from FETCH
    /// responses of the same UID and from HIGHESTMODSEQ), to translate the
    /// values Thunderbird sends back (CHANGEDSINCE, UNCHANGEDSINCE).
    modseqs: HashMap<u64, u64>,
    /// What did not match.
    mismatches: Vec<String>,
    /// Tagged responses compared.
    compared: usize,
}

impl<'t> Replay<'t> {
    fn new(transcript: &'t Transcript, port: u16, password: String) -> Replay<'t> {
        let mut by_response = HashMap::new();
        for exchange in transcript.commands() {
            if let Some(response) = exchange.response {
                let index = transcript
                    .entries
                    .iter()
                    .position(|e| matches!(e, Entry::Unit(u) if std::ptr::eq(u, response)))
                    .expect("the response is an entry");
                by_response.insert(index, exchange);
            }
        }
        Replay {
            transcript,
            port,
            password,
            by_response,
            inline_continuations: inline_continuations(transcript),
            conns: HashMap::new(),
            modseqs: HashMap::new(),
            mismatches: Vec::new(),
            compared: 0,
        }
    }

    fn conn(&mut self, id: u32) -> &mut Conn {
        self.conns
            .get_mut(&id)
            .unwrap_or_else(|| panic!("c{id} is used before it was opened"))
    }

    fn run(&mut self) {
        let transcript = self.transcript;
        let mut greeted = HashSet::new();
        for (index, entry) in transcript.entries.iter().enumerate() {
            match entry {
                Entry::Note { conn, text, .. } if text.starts_with("connect from") => {
                    let (client, greeting) = Client::connect(self.port).expect("connect");
                    assert!(
                        greeting.head().starts_with("* OK"),
                        "c{conn} greeting: {greeting:?}"
                    );
                    self.conns.insert(
                        *conn,
                        Conn {
                            client,
                            received: Vec::new(),
                        },
                    );
                }
                Entry::Note { conn, text, .. } if text == "client closed" => {
                    // Thunderbird never says LOGOUT: just drop the socket.
                    self.conns.remove(conn);
                }
                Entry::Note { .. } => {}
                Entry::Unit(unit) if unit.side == Side::Client => self.send(unit),
                Entry::Unit(unit) => {
                    if greeted.insert(unit.conn) {
                        continue; // the greeting, read on connect
                    }
                    if unit.is_continuation() && !self.inline_continuations.contains(&index) {
                        let conn = self.conn(unit.conn);
                        let replies = conn.client.until_continuation().unwrap_or_else(|e| {
                            panic!("c{} waiting for `{}`: {e}", unit.conn, unit.first_line())
                        });
                        conn.received.extend(replies);
                    } else if let Some(exchange) = self.by_response.get(&index).cloned() {
                        self.complete(index, &exchange);
                    }
                }
            }
        }
    }

    /// Sends a client unit, with the placeholders filled in.
    fn send(&mut self, unit: &Unit) {
        let mut bytes = unit
            .wire_bytes()
            .unwrap_or_else(|e| panic!("c{} `{}`: {e}", unit.conn, unit.first_line()));
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("\0{RECORDED_USER}\0{}", self.password));
        bytes = replace(&bytes, AUTH_PLAIN_PLACEHOLDER.as_bytes(), auth.as_bytes());
        bytes = replace(
            &bytes,
            PASSWORD_PLACEHOLDER.as_bytes(),
            self.password.as_bytes(),
        );
        bytes = self.translate_modseqs(&bytes);
        let conn = self.conn(unit.conn);
        // Synchronizing literals wait for the server's `+` (RFC 3501 §7.5).
        let mut rest = &bytes[..];
        for part in &unit.parts {
            let Part::Line(line) = part else { continue };
            if let Some((length, true)) = literal_marker(line) {
                let head = rest
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .map(|at| at + 2)
                    .expect("a line end");
                conn.client.send(&rest[..head]).expect("send");
                let replies = conn.client.until_continuation().expect("continuation");
                conn.received.extend(replies);
                conn.client
                    .send(&rest[head..head + length])
                    .expect("send literal");
                rest = &rest[head + length..];
            }
        }
        conn.client.send(rest).expect("send");
    }

    /// Rewrites `CHANGEDSINCE n` and `UNCHANGEDSINCE n` in a command line
    /// to the value our server gave for the recorded `n`.
    fn translate_modseqs(&self, bytes: &[u8]) -> Vec<u8> {
        let Some(end) = bytes.windows(2).position(|w| w == b"\r\n") else {
            return bytes.to_vec();
        };
        let Ok(line) = std::str::from_utf8(&bytes[..end]) else {
            return bytes.to_vec();
        };
        let mut words: Vec<String> = line.split(' ').map(str::to_string).collect();
        for index in 1..words.len() {
            let name = words[index - 1]
                .trim_start_matches('(')
                .to_ascii_uppercase();
            if name != "CHANGEDSINCE" && name != "UNCHANGEDSINCE" {
                continue;
            }
            let word = &words[index];
            let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
            let Some(ours) = digits.parse().ok().and_then(|n: u64| self.modseqs.get(&n)) else {
                continue;
            };
            words[index] = format!("{ours}{}", &word[digits.len()..]);
        }
        let mut out = words.join(" ").into_bytes();
        out.extend_from_slice(&bytes[end..]);
        out
    }

    /// Learns which of our MODSEQ values stand for recorded ones.
    fn learn_modseqs(&mut self, recorded: &[Reply], ours: &[Reply]) {
        let by_uid = |replies: &[Reply]| -> HashMap<u64, u64> {
            replies
                .iter()
                .map(Reply::joined)
                .filter(|text| text.starts_with("* ") && text.contains(" FETCH ("))
                .filter_map(|text| Some((number_after(&text, "UID")?, modseq_of(&text)?)))
                .collect()
        };
        let ours_by_uid = by_uid(ours);
        for (uid, recorded_modseq) in by_uid(recorded) {
            if let Some(our_modseq) = ours_by_uid.get(&uid) {
                self.modseqs.insert(recorded_modseq, *our_modseq);
            }
        }
        let highest = |replies: &[Reply]| {
            replies
                .iter()
                .find_map(|r| number_after(r.head(), "[HIGHESTMODSEQ"))
        };
        if let (Some(recorded), Some(ours)) = (highest(recorded), highest(ours)) {
            self.modseqs.insert(recorded, ours);
        }
    }

    /// Reads our tagged response to a recorded one and compares.
    fn complete(&mut self, response_index: usize, exchange: &Exchange<'_>) {
        let id = exchange.command.conn;
        let name = exchange.name();
        let conn = self.conn(id);
        let replies = conn.client.until_tagged(exchange.tag).unwrap_or_else(|e| {
            panic!(
                "c{id} waiting for the response to `{}`: {e}",
                exchange.command.first_line()
            )
        });
        let mut ours = std::mem::take(&mut conn.received);
        ours.extend(replies);
        let Some(tagged) = ours.pop() else {
            return;
        };
        if name == "COMPRESS" && tagged.status() == Some("OK") {
            conn.client.start_compression().expect("start DEFLATE");
        }
        self.compared += 1;
        let what = format!("c{id} `{}`", short(exchange.command.first_line()));
        let recorded_status = exchange.status().unwrap_or("?");
        let our_status = tagged.status().unwrap_or("?");
        if recorded_status != our_status {
            self.mismatches.push(format!(
                "{what}: recorded {recorded_status}, got `{}`",
                tagged.head()
            ));
            return;
        }
        let recorded = self.recorded_untagged(exchange, response_index);
        self.learn_modseqs(&recorded, &ours);
        let recorded_tagged = exchange.response.map(Unit::first_line).unwrap_or("");
        for (item, expected, got) in
            stable_data(&name, &recorded, recorded_tagged, &ours, tagged.head())
        {
            if expected != got {
                self.mismatches
                    .push(format!("{what}: {item} recorded {expected:?}, got {got:?}"));
            }
        }
    }

    /// The untagged server units of the command's connection between the
    /// command and its tagged response, as reply-like text.
    fn recorded_untagged(&self, exchange: &Exchange<'_>, response_index: usize) -> Vec<Reply> {
        self.transcript.entries[exchange.index + 1..response_index]
            .iter()
            .filter_map(|entry| match entry {
                Entry::Unit(unit)
                    if unit.side == Side::Server && unit.conn == exchange.command.conn =>
                {
                    Some(Reply {
                        lines: unit
                            .parts
                            .iter()
                            .filter_map(|p| match p {
                                Part::Line(line) => Some(line.clone()),
                                Part::Literal { .. } => None,
                            })
                            .collect(),
                        literals: Vec::new(),
                    })
                }
                _ => None,
            })
            .collect()
    }
}

/// The continuation requests that answer a synchronizing literal: the
/// proxy records the client's unit only once it is complete, so such a `+`
/// appears before the unit it belongs to.
fn inline_continuations(transcript: &Transcript) -> HashSet<usize> {
    let mut out = HashSet::new();
    // Per connection: continuation indexes since the last client unit.
    let mut pending: HashMap<u32, Vec<usize>> = HashMap::new();
    for (index, entry) in transcript.entries.iter().enumerate() {
        let Entry::Unit(unit) = entry else { continue };
        if unit.is_continuation() {
            pending.entry(unit.conn).or_default().push(index);
        } else if unit.side == Side::Client {
            let waiting = pending.remove(&unit.conn).unwrap_or_default();
            let sync_literals = unit
                .parts
                .iter()
                .filter(|p| matches!(p, Part::Line(l) if literal_marker(l).is_some_and(|(_, sync)| sync)))
                .count();
            out.extend(waiting.iter().rev().take(sync_literals));
        }
    }
    out
}

/// The parts of a command's answer that must be the same in every run:
/// (what, recorded, replayed).
fn stable_data(
    name: &str,
    recorded: &[Reply],
    recorded_tagged: &str,
    ours: &[Reply],
    our_tagged: &str,
) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    match name {
        "SELECT" | "EXAMINE" => {
            out.push(("EXISTS", exists(recorded), exists(ours)));
        }
        "FETCH" | "UID FETCH" => {
            out.push((
                "UIDs with content",
                fetched_uids(recorded, true),
                fetched_uids(ours, true),
            ));
            out.push((
                "UIDs",
                fetched_uids(recorded, false),
                fetched_uids(ours, false),
            ));
        }
        "LIST" | "LSUB" => {
            out.push(("mailboxes", mailboxes(recorded), mailboxes(ours)));
        }
        "STATUS" => {
            out.push(("STATUS", status_numbers(recorded), status_numbers(ours)));
        }
        "APPEND" => {
            out.push((
                "APPENDUID uid",
                appended_uid(recorded_tagged),
                appended_uid(our_tagged),
            ));
        }
        "MOVE" | "UID MOVE" | "COPY" | "UID COPY" => {
            let all = |replies: &[Reply], tagged: &str| {
                let mut text: Vec<String> = replies.iter().map(Reply::joined).collect();
                text.push(tagged.to_string());
                copy_uids(&text.join(" "))
            };
            out.push((
                "COPYUID sets",
                all(recorded, recorded_tagged),
                all(ours, our_tagged),
            ));
        }
        _ => {}
    }
    out
}

/// The value of `MODSEQ (n)` in a FETCH response.
fn modseq_of(text: &str) -> Option<u64> {
    let rest = text.split_once("MODSEQ (")?.1;
    rest.split(')').next()?.parse().ok()
}

fn exists(replies: &[Reply]) -> String {
    replies
        .iter()
        .rev()
        .find_map(|r| {
            let head = r.head().strip_prefix("* ")?;
            head.strip_suffix(" EXISTS").map(str::to_string)
        })
        .unwrap_or_default()
}

/// UIDs of the FETCH responses (only those carrying message content when
/// `content`), sorted.
fn fetched_uids(replies: &[Reply], content: bool) -> String {
    let uids: BTreeSet<u64> = replies
        .iter()
        .map(Reply::joined)
        .filter(|text| text.starts_with("* ") && text.contains(" FETCH ("))
        .filter(|text| {
            !content
                || text.contains("BODY[")
                || text.contains("RFC822 ")
                || text.contains("RFC822.HEADER")
                || text.contains("RFC822.TEXT")
        })
        .filter_map(|text| number_after(&text, "UID"))
        .collect();
    format!("{uids:?}")
}

fn mailboxes(replies: &[Reply]) -> String {
    let names: BTreeSet<String> = replies
        .iter()
        .filter(|r| r.head().starts_with("* LIST ") || r.head().starts_with("* LSUB "))
        .filter_map(|r| {
            let head = r.head();
            // The name follows the delimiter: `* LIST (...) "/" name`.
            let after = head.split_once(") \"/\" ").map(|(_, name)| name)?;
            Some(after.trim_matches('"').to_string())
        })
        // The recordings predate the Outbox folder mailnode keeps (issue
        // 6); its presence is checked by tests/outbox_folder.rs.
        .filter(|name| name != "Outbox")
        .collect();
    format!("{names:?}")
}

fn status_numbers(replies: &[Reply]) -> String {
    replies
        .iter()
        .filter(|r| r.head().starts_with("* STATUS "))
        .map(|r| {
            let head = r.head();
            ["MESSAGES", "UNSEEN", "UIDNEXT", "RECENT"]
                .iter()
                .filter_map(|item| number_after(head, item).map(|n| format!("{item} {n}")))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn appended_uid(tagged: &str) -> String {
    tagged
        .split_once("[APPENDUID ")
        .and_then(|(_, rest)| rest.split(']').next())
        .and_then(|code| code.split(' ').nth(1))
        .unwrap_or_default()
        .to_string()
}

fn copy_uids(text: &str) -> String {
    text.split_once("[COPYUID ")
        .and_then(|(_, rest)| rest.split(']').next())
        .map(|code| code.split(' ').skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn short(line: &str) -> String {
    if line.len() > 90 {
        let mut end = 90;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &line[..end])
    } else {
        line.to_string()
    }
}

/// Starts a node for the recorded user, APPENDs the seed messages, replays
/// the transcript `name` and checks it.
fn replay(name: &str) {
    let path = transcripts::dir().join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let transcript = Transcript::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        !text.contains("AHRlc3Rlc") && text.contains(AUTH_PLAIN_PLACEHOLDER),
        "{name}: the AUTHENTICATE PLAIN response must be a placeholder"
    );

    let mut node = Node::create_with_email("replay", RECORDED_USER);
    node.start();
    let port = node.running().imap;
    let password = node.password();
    let mut seeder = Client::logged_in(port, RECORDED_USER, &password).expect("log in to seed");
    for (index, message) in transcripts::seed_messages().iter().enumerate() {
        let replies = seeder.append("INBOX", "", message).expect("APPEND");
        let tagged = replies.last().map(Reply::head).unwrap_or_default();
        assert_eq!(
            appended_uid(tagged),
            (index + 1).to_string(),
            "seed message {index}: {tagged}"
        );
    }
    for command in &transcript.setup {
        let replies = seeder.command(command).expect("setup command");
        assert_eq!(
            replies.last().and_then(Reply::status),
            Some("OK"),
            "setup `{command}`: {replies:?}"
        );
    }
    drop(seeder);

    let mut replay = Replay::new(&transcript, port, password);
    replay.run();
    let recorded = transcript
        .commands()
        .iter()
        .filter(|e| e.response.is_some())
        .count();
    assert_eq!(
        replay.compared, recorded,
        "{name}: every recorded tagged response was replayed"
    );
    assert!(
        replay.mismatches.is_empty(),
        "{name}: {} of {} responses differ from the recording:\n{}",
        replay.mismatches.len(),
        replay.compared,
        replay.mismatches.join("\n")
    );
    node.stop();
}

/// Thunderbird 153 with its default settings (no CONDSTORE), two starts.
#[test]
fn thunderbird_153_default_settings() {
    replay("thunderbird-153-default");
}

/// Thunderbird 153 when the user unsubscribed Trash: it does not see
/// Trash in `LIST (SUBSCRIBED)`, sends `create "Trash"`, gets the
/// `NO [ALREADYEXISTS]` of RFC 5530 and moves the message there anyway.
#[test]
fn thunderbird_153_trash_unsubscribed() {
    replay("thunderbird-153-trash-unsubscribed");
}

/// Thunderbird 153 with `use_condstore`: `CHANGEDSINCE 0` on the first
/// start, `SELECT ... (CONDSTORE)`, and a second start that asks only for
/// changes since the MODSEQ it last saw.
#[test]
fn thunderbird_153_condstore() {
    replay("thunderbird-153-condstore");
}
