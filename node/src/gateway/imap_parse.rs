//! Reading the few response data the inbound side needs from the lines the
//! IMAP client collected (literals already cut out by the client, so their
//! bytes can never be read as response text): UIDVALIDITY after SELECT,
//! capabilities, and UID / RFC822.SIZE of a FETCH response.
//!
//! Pure functions over text; no I/O. The fetch loop ([`super::fetch`])
//! uses them through the client.

/// Splits a response line into atoms, skipping quoted strings (RFC 9051
/// §4.3) so that nothing inside one is taken for a data item.
fn atoms(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'(' | b')' | b'[' | b']' | 0 => i += 1,
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            _ => {
                let start = i;
                while i < bytes.len() && !b" ()[]\"\0".contains(&bytes[i]) {
                    i += 1;
                }
                if let Some(atom) = line.get(start..i) {
                    out.push(atom);
                }
            }
        }
    }
    out
}

/// The number after `name` among the atoms of `line`.
fn number_after(line: &str, name: &str) -> Option<u64> {
    let atoms = atoms(line);
    let at = atoms.iter().position(|a| a.eq_ignore_ascii_case(name))?;
    atoms.get(at + 1)?.parse().ok()
}

/// The number of the response code `name` in an untagged `OK [NAME n]`.
fn ok_code<'a>(lines: impl IntoIterator<Item = &'a str>, name: &str) -> Option<u32> {
    lines.into_iter().find_map(|line| {
        let rest = line
            .get(..3)?
            .eq_ignore_ascii_case("OK ")
            .then(|| &line[3..])?;
        u32::try_from(number_after(rest, name)?).ok()
    })
}

/// UIDVALIDITY from the untagged `OK [UIDVALIDITY n]` of a SELECT.
pub fn uidvalidity<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<u32> {
    ok_code(lines, "UIDVALIDITY")
}

/// UIDNEXT from the untagged `OK [UIDNEXT n]` of a SELECT.
pub fn uidnext<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<u32> {
    ok_code(lines, "UIDNEXT")
}

/// Whether a `CAPABILITY ...` line lists `capability`.
pub fn has_capability(line: &str, capability: &str) -> bool {
    let mut atoms = atoms(line).into_iter();
    atoms
        .next()
        .is_some_and(|first| first.eq_ignore_ascii_case("CAPABILITY"))
        && atoms.any(|a| a.eq_ignore_ascii_case(capability))
}

/// UID and RFC822.SIZE of an untagged `n FETCH (...)` line.
pub fn fetch_uid_size(line: &str) -> Option<(u32, Option<u64>)> {
    let atoms = atoms(line);
    if !atoms.get(1)?.eq_ignore_ascii_case("FETCH") {
        return None;
    }
    let uid = u32::try_from(number_after(line, "UID")?).ok()?;
    Some((uid, number_after(line, "RFC822.SIZE")))
}

/// Reads a quoted string (RFC 9051 §4.3) at the start of `text`; returns
/// it unescaped and the rest.
fn quoted_at(text: &str) -> Option<(String, &str)> {
    let mut chars = text.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &text[i + 2..])),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

/// The folder name, delimiter and whether it cannot be selected, of an
/// untagged `LIST (attrs) delim name` line. A name sent as a literal is in
/// `literals` (the line then holds a NUL where it was).
pub fn list_line(line: &str, literals: &[Vec<u8>]) -> Option<(String, Option<char>, bool)> {
    let rest = line
        .strip_prefix("LIST ")
        .or_else(|| line.strip_prefix("list "))?;
    let rest = rest.strip_prefix('(')?;
    let (attrs, rest) = rest.split_once(')')?;
    let noselect = attrs
        .split_ascii_whitespace()
        .any(|a| a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent"));
    let rest = rest.trim_start();
    let (delimiter, rest) = if let Some(rest) = rest.strip_prefix("NIL") {
        (None, rest)
    } else {
        let (delim, rest) = quoted_at(rest)?;
        (delim.chars().next(), rest)
    };
    let rest = rest.trim_start();
    let name = if rest.starts_with('"') {
        quoted_at(rest)?.0
    } else if rest.starts_with('{') {
        String::from_utf8(literals.first()?.clone()).ok()?
    } else {
        rest.trim().to_string()
    };
    (!name.is_empty()).then_some((name, delimiter, noselect))
}

/// The flags of a FETCH line, without `\Recent`.
pub fn fetch_flags(line: &str) -> Vec<String> {
    let upper = line.to_ascii_uppercase();
    let Some(at) = upper.find("FLAGS (") else {
        return Vec::new();
    };
    let rest = &line[at + 7..];
    let inner = rest.split(')').next().unwrap_or_default();
    inner
        .split_ascii_whitespace()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .map(str::to_string)
        .collect()
}

/// The INTERNALDATE of a FETCH line: Unix seconds and the zone offset in
/// minutes.
pub fn fetch_internal_date(line: &str) -> Option<(i64, i32)> {
    let upper = line.to_ascii_uppercase();
    let at = upper.find("INTERNALDATE ")?;
    let (text, _) = quoted_at(&line[at + 13..])?;
    let date = chrono::DateTime::parse_from_str(text.trim(), "%d-%b-%Y %H:%M:%S %z").ok()?;
    Some((date.timestamp(), date.offset().local_minus_utc() / 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines() {
        assert_eq!(
            list_line("LIST (\\HasNoChildren) \"/\" INBOX", &[]),
            Some(("INBOX".into(), Some('/'), false))
        );
        assert_eq!(
            list_line(
                "LIST (\\Noselect \\HasChildren) \".\" \"Old \\\"x\\\"\"",
                &[]
            ),
            Some(("Old \"x\"".into(), Some('.'), true))
        );
        assert_eq!(
            list_line("LIST () NIL {5} \u{0}", &[b"Notes".to_vec()]),
            Some(("Notes".into(), None, false))
        );
        assert_eq!(list_line("FLAGS (\\Seen)", &[]), None);
    }

    #[test]
    fn fetch_flags_and_dates() {
        let line = "3 FETCH (UID 7 FLAGS (\\Seen \\Recent $Work) INTERNALDATE \" 3-Dec-2026 10:00:00 +0100\" BODY[] {12} \u{0})";
        assert_eq!(fetch_flags(line), vec!["\\Seen", "$Work"]);
        let (secs, offset) = fetch_internal_date(line).expect("date");
        assert_eq!(offset, 60);
        assert_eq!(secs, 1_796_288_400);
        assert_eq!(fetch_flags("3 FETCH (UID 7)"), Vec::<String>::new());
    }

    #[test]
    fn uidvalidity_from_select() {
        let lines = [
            "FLAGS (\\Seen)",
            "OK [PERMANENTFLAGS (\\Seen)] Flags permitted.",
            "OK [UIDVALIDITY 1733212345] UIDs valid",
            "3 EXISTS",
        ];
        assert_eq!(uidvalidity(lines), Some(1_733_212_345));
        assert_eq!(uidvalidity(["3 EXISTS"]), None);
    }

    #[test]
    fn capabilities() {
        let line = "CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS";
        assert!(has_capability(line, "idle"));
        assert!(has_capability(line, "MOVE"));
        assert!(!has_capability(line, "CONDSTORE"));
        assert!(!has_capability("OK IDLE", "IDLE"));
    }

    #[test]
    fn fetch_items_ignore_quoted_and_literal_text() {
        assert_eq!(
            fetch_uid_size("4 FETCH (UID 17 RFC822.SIZE 310 BODY[] \u{0})"),
            Some((17, Some(310)))
        );
        // A quoted string saying "UID 99" is not a data item.
        assert_eq!(
            fetch_uid_size("4 FETCH (X \"UID 99\" UID 5)"),
            Some((5, None))
        );
        assert_eq!(fetch_uid_size("4 EXPUNGE"), None);
        assert_eq!(fetch_uid_size("4 FETCH (UID x)"), None);
    }
}
