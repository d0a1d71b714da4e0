//! Parsing of the protocol transcripts that `tb-sync.sh` (its logging proxy,
//! `imapproxy.py`) writes: one protocol line per transcript line,
//!
//! ```text
//! [   9.378] c1 C: 67 authenticate PLAIN        client line
//! [   9.378] c1 S: +                            server line
//! [  40.072] c5 C| Subject: tb-harness ...      literal content, one line each
//! [  45.130] c0 --- === restart: ... ===        proxy note
//! ```
//!
//! A *unit* is what the proxy framed as one piece: a line, or a line
//! announcing literals together with the literals and the lines that
//! follow them. The proxy writes a unit's lines together, so a `C:`/`S:`
//! line continues the previous unit exactly when the line just before it
//! (same connection, same direction) is literal content or announces a
//! literal.

use std::fmt;

/// Which side sent a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client (Thunderbird).
    Client,
    /// The server.
    Server,
}

/// One part of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A protocol line without its CRLF.
    Line(String),
    /// Literal content as the transcript shows it (lines without line
    /// ends), plus whether it was cut short.
    Literal {
        /// The lines.
        lines: Vec<String>,
        /// The proxy left bytes out (`... (n more literal bytes not shown)`).
        truncated: bool,
    },
}

/// What the proxy framed as one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Connection number (`c3` is 3).
    pub conn: u32,
    /// Seconds since the recording started.
    pub time: f64,
    /// Who sent it.
    pub side: Side,
    /// Lines and literals in order.
    pub parts: Vec<Part>,
}

/// One transcript entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A protocol unit.
    Unit(Unit),
    /// A note of the proxy (`connect from`, `client closed`, `=== restart`).
    Note {
        /// Connection (0 for global notes).
        conn: u32,
        /// Seconds since the start.
        time: f64,
        /// The note.
        text: String,
    },
}

/// A transcript line that does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub what: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transcript line {}: {}", self.line, self.what)
    }
}

/// A parsed transcript.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// IMAP commands (without tag) that prepared the account after the
    /// seed messages and before Thunderbird started: `# setup: ...` lines
    /// that `record.sh` writes.
    pub setup: Vec<String>,
    /// Entries in file (that is, time) order.
    pub entries: Vec<Entry>,
}

/// `{n}`, `{n+}` or `~{n}` at the end of a line: the literal's length and
/// whether it is synchronizing.
pub fn literal_marker(line: &str) -> Option<(usize, bool)> {
    let inner = line.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    let spec = &inner[open + 1..];
    let (digits, plus) = match spec.strip_suffix('+') {
        Some(digits) => (digits, true),
        None => (spec, false),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, !plus))
}

impl Unit {
    /// The first line.
    pub fn first_line(&self) -> &str {
        match self.parts.first() {
            Some(Part::Line(line)) => line,
            _ => "",
        }
    }

    /// The tag of a tagged line (`a1 OK ...` → `a1`); `*` and `+` lines
    /// have none.
    pub fn tag(&self) -> Option<&str> {
        let first = self.first_line();
        let tag = first.split(' ').next()?;
        (!tag.is_empty() && tag != "*" && tag != "+" && first.contains(' ')).then_some(tag)
    }

    /// The result word of a tagged server response (`OK`, `NO`, `BAD`).
    pub fn status(&self) -> Option<&str> {
        self.tag()?;
        let word = self.first_line().split(' ').nth(1)?;
        matches!(word, "OK" | "NO" | "BAD").then_some(word)
    }

    /// Whether this is a command continuation request (`+ ...`).
    pub fn is_continuation(&self) -> bool {
        self.side == Side::Server
            && (self.first_line() == "+" || self.first_line().starts_with("+ "))
    }

    /// The unit as text, literals shown inline, one line each.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Line(line) => {
                    out.push_str(line);
                    out.push('\n');
                }
                Part::Literal { lines, .. } => {
                    for line in lines {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }

    /// The exact bytes of a client unit (lines end in CRLF, literals are
    /// rebuilt from their lines and announced length). Fails when the
    /// transcript cannot give them back exactly (a truncated literal, or
    /// one whose lines did not all end in CRLF).
    pub fn wire_bytes(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut announced = None;
        for part in &self.parts {
            match part {
                Part::Line(line) => {
                    out.extend_from_slice(line.as_bytes());
                    out.extend_from_slice(b"\r\n");
                    announced = literal_marker(line).map(|(length, _)| length);
                }
                Part::Literal { lines, truncated } => {
                    let length = announced.take().ok_or("literal without an announcement")?;
                    if *truncated {
                        return Err(format!("a literal of {length} bytes was truncated"));
                    }
                    let mut bytes = lines.join("\r\n").into_bytes();
                    if bytes.len() + 2 == length {
                        bytes.extend_from_slice(b"\r\n");
                    }
                    if bytes.len() != length {
                        return Err(format!(
                            "a literal of {length} bytes cannot be rebuilt ({} from its lines)",
                            bytes.len()
                        ));
                    }
                    // After the announcing line's CRLF (RFC 3501 §4.3).
                    out.extend_from_slice(&bytes);
                }
            }
        }
        Ok(out)
    }
}

impl Transcript {
    /// Parses transcript text.
    pub fn parse(text: &str) -> Result<Transcript, ParseError> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut setup = Vec::new();
        // (conn, side, kind) of the previous line: ':' line with or
        // without a literal announcement, or '|' literal line.
        let mut previous: Option<(u32, Side, bool)> = None;
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let error = |what| ParseError { line: number, what };
            if let Some(command) = raw.strip_prefix("# setup: ") {
                setup.push(command.trim().to_string());
                continue;
            }
            if raw.starts_with('#') || raw.trim().is_empty() {
                continue;
            }
            let rest = raw.strip_prefix('[').ok_or(error("no timestamp"))?;
            let (time, rest) = rest.split_once("] ").ok_or(error("no timestamp"))?;
            let time: f64 = time.trim().parse().map_err(|_| error("bad timestamp"))?;
            let rest = rest.strip_prefix('c').ok_or(error("no connection"))?;
            let (conn, rest) = rest.split_once(' ').ok_or(error("no connection"))?;
            let conn: u32 = conn.parse().map_err(|_| error("bad connection"))?;
            if let Some(note) = rest.strip_prefix("--- ") {
                entries.push(Entry::Note {
                    conn,
                    time,
                    text: note.to_string(),
                });
                previous = None;
                continue;
            }
            let side = match rest.as_bytes().first() {
                Some(b'C') => Side::Client,
                Some(b'S') => Side::Server,
                _ => return Err(error("neither C nor S")),
            };
            let kind = rest.as_bytes().get(1).copied();
            // "C: text" / "C| text"; an empty line may have lost its space.
            let content = rest.get(3..).unwrap_or("").to_string();
            let continues = previous.is_some_and(|(c, s, open)| c == conn && s == side && open);
            match kind {
                Some(b':') => {
                    let announces = literal_marker(&content).is_some();
                    let part = Part::Line(content);
                    match entries.last_mut() {
                        Some(Entry::Unit(unit)) if continues => unit.parts.push(part),
                        _ => entries.push(Entry::Unit(Unit {
                            conn,
                            time,
                            side,
                            parts: vec![part],
                        })),
                    }
                    previous = Some((conn, side, announces));
                }
                Some(b'|') => {
                    let Some(Entry::Unit(unit)) = entries.last_mut() else {
                        return Err(error("literal content outside a unit"));
                    };
                    if !continues || unit.conn != conn || unit.side != side {
                        return Err(error("literal content outside a unit"));
                    }
                    let shown_cut = content.starts_with("... (")
                        && content.ends_with(" more literal bytes not shown)");
                    match unit.parts.last_mut() {
                        Some(Part::Literal { lines, truncated }) => {
                            if shown_cut {
                                *truncated = true;
                            } else {
                                lines.push(content);
                            }
                        }
                        _ => unit.parts.push(Part::Literal {
                            lines: if shown_cut { Vec::new() } else { vec![content] },
                            truncated: shown_cut,
                        }),
                    }
                    previous = Some((conn, side, true));
                }
                _ => return Err(error("neither ':' nor '|' after the side")),
            }
        }
        Ok(Transcript { setup, entries })
    }

    /// The units, in order.
    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.entries.iter().filter_map(|entry| match entry {
            Entry::Unit(unit) => Some(unit),
            Entry::Note { .. } => None,
        })
    }

    /// Index of the `=== restart` note, if the run had `--restart`.
    pub fn restart_index(&self) -> Option<usize> {
        self.entries.iter().position(
            |entry| matches!(entry, Entry::Note { text, .. } if text.starts_with("=== restart")),
        )
    }

    /// Every tagged command with the server's tagged answer.
    pub fn commands(&self) -> Vec<Exchange<'_>> {
        let mut out: Vec<Exchange<'_>> = Vec::new();
        for (index, entry) in self.entries.iter().enumerate() {
            let Entry::Unit(unit) = entry else { continue };
            match unit.side {
                Side::Client => {
                    if let Some(tag) = unit.tag() {
                        out.push(Exchange {
                            index,
                            command: unit,
                            tag,
                            response: None,
                        });
                    }
                }
                Side::Server => {
                    let (Some(tag), Some(_)) = (unit.tag(), unit.status()) else {
                        continue;
                    };
                    if let Some(exchange) = out.iter_mut().rev().find(|e| {
                        e.command.conn == unit.conn && e.tag == tag && e.response.is_none()
                    }) {
                        exchange.response = Some(unit);
                    }
                }
            }
        }
        out
    }
}

/// A tagged command and its tagged response.
#[derive(Debug, Clone)]
pub struct Exchange<'a> {
    /// Index of the command in [`Transcript::entries`].
    pub index: usize,
    /// The command unit.
    pub command: &'a Unit,
    /// Its tag.
    pub tag: &'a str,
    /// The tagged response, if the recording has one (IDLE cut off by the
    /// end of the run has none).
    pub response: Option<&'a Unit>,
}

impl Exchange<'_> {
    /// The command name, uppercased, with `UID ` kept (`UID FETCH`).
    pub fn name(&self) -> String {
        let mut words = self.command.first_line().split(' ').skip(1);
        let first = words.next().unwrap_or("").to_ascii_uppercase();
        if first == "UID" {
            format!("UID {}", words.next().unwrap_or("").to_ascii_uppercase())
        } else {
            first
        }
    }

    /// The response status, `None` when the recording ended first.
    pub fn status(&self) -> Option<&str> {
        self.response.and_then(Unit::status)
    }

    /// The response code (`ALREADYEXISTS` of `NO [ALREADYEXISTS] ...`).
    pub fn code(&self) -> Option<&str> {
        let line = self.response?.first_line();
        let start = line.find('[')? + 1;
        let end = line[start..].find([']', ' '])? + start;
        Some(&line[start..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# IMAP transcript recorded by imapproxy.py
# setup: UNSUBSCRIBE Trash
[   9.368] c1 --- connect from 127.0.0.1:38020 to 127.0.0.1:21143
[   9.368] c1 S: * OK [CAPABILITY IMAP4rev1] ready
[   9.378] c1 C: 67 authenticate PLAIN
[   9.378] c1 S: + 
[   9.379] c1 C: AHRAZXhh
[   9.379] c1 S: 67 OK Logged in
[   9.965] c1 C: 20 UID fetch 1 (BODY.PEEK[HEADER.FIELDS (Subject)])
[   9.965] c1 S: * 1 FETCH (UID 1 BODY[HEADER.FIELDS (Subject)] {15}
[   9.965] c1 S| Subject: x
[   9.965] c1 S| 
[   9.965] c1 S: )
[   9.965] c1 S: 20 OK UID FETCH completed
[  40.072] c1 C: 46 append \"Sent\" (\\Seen) {7+}
[  40.072] c1 C| a
[  40.072] c1 C| bc
[  40.072] c1 C: 
[  40.076] c1 S: 46 NO [ALREADYEXISTS] whatever
[  45.130] c0 --- === restart: Thunderbird started again ===
";

    #[test]
    fn units_literals_and_exchanges() {
        let transcript = Transcript::parse(SAMPLE).expect("parse");
        let units: Vec<&Unit> = transcript.units().collect();
        assert_eq!(units.len(), 10);
        assert_eq!(units[6].parts.len(), 3, "FETCH line, literal, closing line");
        assert_eq!(
            units[8].wire_bytes().expect("bytes"),
            b"46 append \"Sent\" (\\Seen) {7+}\r\na\r\nbc\r\n\r\n".to_vec()
        );
        let commands = transcript.commands();
        let names: Vec<String> = commands.iter().map(Exchange::name).collect();
        assert_eq!(names, ["AUTHENTICATE", "UID FETCH", "APPEND"]);
        assert_eq!(commands[2].status(), Some("NO"));
        assert_eq!(commands[2].code(), Some("ALREADYEXISTS"));
        assert!(units[2].is_continuation());
        assert_eq!(units[3].tag(), None, "a SASL line has no tag");
        assert_eq!(
            transcript.restart_index(),
            Some(transcript.entries.len() - 1)
        );
    }

    #[test]
    fn literal_markers() {
        assert_eq!(literal_marker("a APPEND x {12}"), Some((12, true)));
        assert_eq!(literal_marker("a APPEND x {12+}"), Some((12, false)));
        assert_eq!(literal_marker("a APPEND x {}"), None);
        assert_eq!(literal_marker("a NOOP"), None);
    }
}
