//! Issue 9: SORT, THREAD, ESEARCH and SEARCHRES against a real daemon with
//! Python's imaplib (`mailtool.py sort-seed`), on a seeded mailbox with
//! tricky subjects (Re:/Fwd: prefixes, `[list]` blobs, encoded words,
//! empty and missing subjects), equal and missing dates, and a
//! conversation tree with missing parents, a duplicate Message-ID and
//! subject-only replies.
//!
//! Every answer is checked against what RFC 5256 says it must be; where
//! Dovecot is installed (scripts/install-test-deps installs it) the same
//! seed goes to a throwaway Dovecot too and every answer must be the same.

mod common;
#[path = "../node/benches/support/dovecot.rs"]
#[allow(dead_code)]
mod dovecot;
#[path = "../node/benches/support/measure.rs"]
mod measure;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Node, describe, mailtool_fast};

/// One seed message: (Subject (None: no header), From, To, Cc, Date (None:
/// no header), Message-ID, References, In-Reply-To, INTERNALDATE).
type Seed = (
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

#[rustfmt::skip]
const SEED: &[Seed] = &[
    // 1-5: a conversation, with a missing parent and a subject-only reply.
    (Some("Project plan"), "Zed Zulu <zed@example.org>", "amy@example.org", "", Some("Mon, 2 Nov 2026 09:00:00 +0000"), "<p1@x>", "", "", "02-Nov-2026 09:00:05 +0000"),
    (Some("Re: Project plan"), "Amy Adams <amy@example.org>", "zed@example.org", "bob@example.org", Some("Mon, 2 Nov 2026 10:00:00 +0000"), "<p2@x>", "<p1@x>", "<p1@x>", "02-Nov-2026 10:00:05 +0000"),
    (Some("RE: [team] Re: Project plan"), "bob@example.org", "amy@example.org", "", Some("Mon, 2 Nov 2026 11:00:00 +0100"), "<p3@x>", "<p1@x> <p2@x>", "", "02-Nov-2026 10:00:05 +0000"),
    (Some("Re: Project plan"), "Carl <carl@example.org>", "zed@example.org", "amy@example.org", Some("Mon, 2 Nov 2026 12:00:00 +0000"), "<p4@x>", "<p1@x> <gone@x>", "", "02-Nov-2026 12:00:05 +0000"),
    (Some("Fwd: Project plan"), "Dana <dana@example.org>", "eve@example.org", "", Some("Mon, 2 Nov 2026 13:00:00 +0000"), "<p5@x>", "", "", "02-Nov-2026 13:00:05 +0000"),
    // 6-7: encoded words and an equal date.
    (Some("=?UTF-8?Q?=C3=89t=C3=A9_plans?="), "=?ISO-8859-1?Q?J=F6rg?= <jorg@example.de>", "zed@example.org", "", Some("Tue, 3 Nov 2026 08:00:00 +0000"), "<e1@x>", "", "", "03-Nov-2026 08:00:00 +0000"),
    (Some("ete plans"), "Eve <eve@example.org>", "=?UTF-8?B?w4FsdmFybw==?= <alvaro@example.org>", "", Some("Tue, 3 Nov 2026 08:00:00 +0000"), "<e2@x>", "", "", "03-Nov-2026 08:00:00 +0000"),
    // 8-11: a list, [Fwd: ...] and (fwd), one without Date.
    (Some("[list] Weekly digest"), "List <list@example.org>", "amy@example.org", "", Some("Wed, 4 Nov 2026 08:00:00 +0000"), "<w1@x>", "", "", "04-Nov-2026 08:00:00 +0000"),
    (Some("[list] Re: Weekly digest"), "Amy Adams <amy@example.org>", "list@example.org", "", Some("Thu, 5 Nov 2026 08:00:00 +0000"), "<w2@x>", "<w1@x>", "", "05-Nov-2026 08:00:00 +0000"),
    (Some("[Fwd: Weekly digest]"), "bob@example.org", "carl@example.org", "", Some("Fri, 6 Nov 2026 08:00:00 +0000"), "<w3@x>", "", "", "06-Nov-2026 08:00:00 +0000"),
    (Some("weekly DIGEST (fwd)"), "Carl <carl@example.org>", "dana@example.org", "", None, "<w4@x>", "", "", "05-Nov-2026 09:00:00 +0000"),
    // 12-14: replies to messages that are not there.
    (Some("Re: Orphan question"), "Dana <dana@example.org>", "zed@example.org", "", Some("Sat, 7 Nov 2026 08:00:00 +0000"), "<o1@x>", "<lost1@x>", "", "07-Nov-2026 08:00:00 +0000"),
    (Some("Re: Orphan question"), "Eve <eve@example.org>", "zed@example.org", "", Some("Sun, 8 Nov 2026 08:00:00 +0000"), "<o2@x>", "<lost1@x>", "", "08-Nov-2026 08:00:00 +0000"),
    (Some("Re: Re: Orphan question"), "Amy Adams <amy@example.org>", "zed@example.org", "", Some("Mon, 9 Nov 2026 08:00:00 +0000"), "<o3@x>", "<lost2@x>", "", "09-Nov-2026 08:00:00 +0000"),
    // 15-16: empty and missing subjects on one date.
    (Some(""), "Zed Zulu <zed@example.org>", "amy@example.org", "", Some("Sun, 1 Nov 2026 08:00:00 +0000"), "<n1@x>", "", "", "01-Nov-2026 08:00:00 +0000"),
    (None, "Amy Adams <amy@example.org>", "", "", Some("Sun, 1 Nov 2026 08:00:00 +0000"), "<n2@x>", "", "", "01-Nov-2026 08:00:00 +0000"),
    // 17-20: a quoted display name, In-Reply-To only, an unparseable date,
    // a duplicate Message-ID.
    (Some("Lunch"), "\"Bob, Jr.\" <bob@example.org>", "=?UTF-8?B?w4FsdmFybw==?= <alvaro@example.org>", "carl@example.org", Some("Tue, 10 Nov 2026 12:00:00 -0800"), "<l1@x>", "", "", "10-Nov-2026 20:00:00 +0000"),
    (Some("Re: lunch"), "Carl <carl@example.org>", "bob@example.org", "amy@example.org", Some("sometime next week"), "<l2@x>", "", "<l1@x>", "10-Nov-2026 21:00:00 +0000"),
    (Some("Lunch"), "Zed Zulu <zed@example.org>", "bob@example.org", "", Some("Tue, 10 Nov 2026 12:00:00 -0800"), "<l1@x>", "", "", "10-Nov-2026 22:00:00 +0000"),
    (Some("Re: Lunch"), "Dana <dana@example.org>", "bob@example.org", "", Some("Wed, 11 Nov 2026 08:00:00 +0000"), "<l4@x>", "<l1@x> <l2@x>", "", "11-Nov-2026 08:00:00 +0000"),
];

fn seed_message(i: usize, s: &Seed) -> Vec<u8> {
    let (subject, from, to, cc, date, id, refs, irt, _) = s;
    let mut out = format!("From: {from}\r\n");
    for (name, value) in [
        ("To", to),
        ("Cc", cc),
        ("References", refs),
        ("In-Reply-To", irt),
    ] {
        if !value.is_empty() {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if let Some(subject) = subject {
        out.push_str(&format!("Subject: {subject}\r\n"));
    }
    if let Some(date) = date {
        out.push_str(&format!("Date: {date}\r\n"));
    }
    out.push_str(&format!("Message-ID: {id}\r\nMIME-Version: 1.0\r\n\r\n"));
    // Sizes differ, two of them equal (SIZE ties fall to sequence order).
    let lines = if i == 4 { 7 } else { (i * 7) % 13 };
    for l in 0..=lines {
        out.push_str(&format!("line {l}\r\n"));
    }
    out.into_bytes()
}

const KEYS: [&str; 9] = [
    "ARRIVAL",
    "CC",
    "DATE",
    "FROM",
    "SIZE",
    "SUBJECT",
    "TO",
    "DISPLAYFROM",
    "DISPLAYTO",
];

/// The commands run on the seeded mailbox, as imaplib command words.
fn commands() -> Vec<Vec<String>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    let forward: Vec<String> = KEYS.iter().map(|k| format!("({k})")).collect();
    let reverse: Vec<String> = KEYS.iter().map(|k| format!("(REVERSE {k})")).collect();
    for key in forward.iter().chain(&reverse) {
        out.push(vec!["SORT", key, "UTF-8", "ALL"]);
    }
    out.extend([
        vec!["SORT", "(SUBJECT REVERSE DATE)", "UTF-8", "ALL"],
        vec!["SORT", "(FROM SIZE)", "US-ASCII", "ALL"],
        vec![
            "UID",
            "SORT",
            "(REVERSE ARRIVAL)",
            "UTF-8",
            "SINCE",
            "5-Nov-2026",
        ],
        vec!["SORT", "(DATE)", "UTF-8", "SUBJECT", "plan"],
        vec!["SORT", "(DATE)", "UTF-8", "SUBJECT", "nothing-matches-this"],
        vec!["THREAD", "ORDEREDSUBJECT", "UTF-8", "ALL"],
        vec!["THREAD", "REFERENCES", "UTF-8", "ALL"],
        vec!["UID", "THREAD", "REFERENCES", "UTF-8", "ALL"],
        vec!["THREAD", "REFERENCES", "UTF-8", "FROM", "amy"],
        vec!["SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "ALL"],
        vec!["UID", "SEARCH", "RETURN", "(COUNT)", "SUBJECT", "lunch"],
        vec!["SEARCH", "RETURN", "()", "SUBJECT", "plan"],
        vec![
            "SEARCH",
            "RETURN",
            "(MIN MAX)",
            "SUBJECT",
            "nothing-matches-this",
        ],
        vec!["SEARCH", "RETURN", "(SAVE)", "SUBJECT", "plan"],
        vec!["SEARCH", "$"],
        vec![
            "UID",
            "SEARCH",
            "RETURN",
            "(ALL)",
            "$",
            "SINCE",
            "2-Nov-2026",
        ],
        vec!["SORT", "(REVERSE DATE)", "UTF-8", "$"],
        vec!["FETCH", "$", "(UID)"],
        vec!["SEARCH", "RETURN", "(SAVE MIN)", "FROM", "amy"],
        vec!["UID", "SEARCH", "$"],
    ]);
    out.into_iter()
        .map(|words| words.into_iter().map(str::to_string).collect())
        .collect()
}

/// Writes the seed and the commands to `dir`.
fn write_seed(dir: &Path) {
    for (i, seed) in SEED.iter().enumerate() {
        std::fs::write(dir.join(format!("{i:03}.eml")), seed_message(i, seed)).expect("write");
        std::fs::write(dir.join(format!("{i:03}.date")), seed.8).expect("write");
    }
    let lines: Vec<String> = commands()
        .iter()
        .map(|words| {
            let quoted: Vec<String> = words
                .iter()
                .map(|w| format!("\"{}\"", w.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            format!("[{}]", quoted.join(", "))
        })
        .collect();
    std::fs::write(dir.join("commands"), lines.join("\n") + "\n").expect("write");
}

/// Runs the seed against one server; returns each command's answer line.
fn run(host_port_user_pass: &[String], dir: &Path) -> BTreeMap<String, String> {
    let mut args: Vec<&str> = vec!["sort-seed"];
    args.extend(host_port_user_pass.iter().map(String::as_str));
    args.extend(["Seed", dir.to_str().expect("utf-8")]);
    let out = mailtool_fast(&args);
    assert!(out.status.success(), "sort-seed failed: {}", describe(&out));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut answers = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        // `{"command": "...", ...}`: keyed by position so order is kept.
        answers.insert(format!("{i:02} {}", command_of(line)), line.to_string());
    }
    answers
}

fn command_of(line: &str) -> String {
    let start = line.find("\"command\": \"").map_or(0, |p| p + 12);
    let end = line[start..].find('"').map_or(line.len(), |p| start + p);
    line[start..end].to_string()
}

fn answer<'a>(answers: &'a BTreeMap<String, String>, command: &str) -> &'a str {
    answers
        .iter()
        .find(|(key, _)| key[3..] == *command)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no answer to {command}: {answers:#?}"))
}

/// The number list of a `"SORT": ["..."]` (or THREAD/SEARCH) answer.
fn data<'a>(answers: &'a BTreeMap<String, String>, command: &str, key: &str) -> &'a str {
    let line = answer(answers, command);
    assert!(line.contains("\"status\": \"OK\""), "{command}: {line}");
    let marker = format!("\"{key}\": [\"");
    let start = line
        .find(&marker)
        .map(|p| p + marker.len())
        .unwrap_or_else(|| panic!("{command}: no {key} in {line}"));
    let end = line[start..].find('"').map_or(line.len(), |p| start + p);
    &line[start..end]
}

#[test]
fn sort_thread_esearch_searchres_with_imaplib() {
    let mut node = Node::create("sorter");
    node.start();
    let dir = tempfile::tempdir().expect("tempdir");
    write_seed(dir.path());
    let answers = run(&node.imap_args_cached(), dir.path());
    let theirs = dovecot_answers(dir.path());

    // Every key forwards and reversed (RFC 5256 §3; ties in sequence
    // order). These are also Dovecot 2.3's answers for this seed.
    let sort = |key: &str| data(&answers, &format!("SORT {key} UTF-8 ALL"), "SORT");
    let expected = [
        (
            "ARRIVAL",
            "15 16 1 2 3 4 5 6 7 8 9 11 10 12 13 14 17 18 19 20",
        ),
        ("CC", "1 3 5 6 7 8 9 10 11 12 13 14 15 16 19 20 4 18 2 17"),
        // 2 and 3 are equal in UTC; 11 has no Date and 18 an unparseable
        // one: their INTERNALDATEs count.
        ("DATE", "15 16 1 2 3 4 5 6 7 8 9 11 10 12 13 14 17 19 18 20"),
        ("FROM", "2 9 14 16 3 10 17 4 11 18 5 12 20 7 13 6 8 1 15 19"),
        ("SIZE", "16 1 11 14 3 18 15 7 20 5 9 19 13 8 10 6 17 4 2 12"),
        // "" and no Subject first; "ete plans" before "Été plans"
        // (i;unicode-casemap: E, then E with a combining accent).
        (
            "SUBJECT",
            "15 16 7 6 17 18 19 20 12 13 14 1 2 3 4 5 8 9 10 11",
        ),
        ("TO", "16 7 17 1 3 8 15 18 19 20 10 11 5 9 2 4 6 12 13 14"),
        // "Bob, Jr." sorts as a name, bob@example.org as its address.
        (
            "DISPLAYFROM",
            "2 9 14 16 17 3 10 4 11 18 5 12 20 7 13 6 8 1 15 19",
        ),
        (
            "DISPLAYTO",
            "16 1 3 8 15 7 17 18 19 20 10 11 5 9 2 4 6 12 13 14",
        ),
    ];
    let reversed = [
        (
            "ARRIVAL",
            "20 19 18 17 14 13 12 10 11 9 8 6 7 5 4 2 3 1 15 16",
        ),
        ("CC", "17 2 4 18 1 3 5 6 7 8 9 10 11 12 13 14 15 16 19 20"),
        ("DATE", "20 18 17 19 14 13 12 10 11 9 8 6 7 5 4 2 3 1 15 16"),
        ("FROM", "1 15 19 8 6 7 13 5 12 20 4 11 18 3 10 17 2 9 14 16"),
        ("SIZE", "12 2 4 17 6 10 8 13 9 19 5 7 20 15 18 3 14 11 1 16"),
        (
            "SUBJECT",
            "8 9 10 11 1 2 3 4 5 12 13 14 17 18 19 20 6 7 15 16",
        ),
        ("TO", "2 4 6 12 13 14 9 5 11 10 18 19 20 1 3 8 15 7 17 16"),
        (
            "DISPLAYFROM",
            "1 15 19 8 6 7 13 5 12 20 4 11 18 3 10 17 2 9 14 16",
        ),
        (
            "DISPLAYTO",
            "2 4 6 12 13 14 9 5 11 10 18 19 20 7 17 1 3 8 15 16",
        ),
    ];
    for (key, order) in expected {
        assert_eq!(sort(&format!("({key})")), order, "SORT ({key})");
    }
    for (key, order) in reversed {
        assert_eq!(
            sort(&format!("(REVERSE {key})")),
            order,
            "SORT (REVERSE {key})"
        );
    }
    let references = "(15)(16)(1 (2 3)(4)(5))(6)(7)(8 (9)(11)(10))((12)(13)(14))((17 18 20)(19))";
    let checks = [
        (
            "SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
            "SORT",
            "15 16 7 6 20 18 17 19 14 13 12 5 4 2 3 1 10 11 9 8",
        ),
        (
            "SORT (FROM SIZE) US-ASCII ALL",
            "SORT",
            "16 14 9 2 3 10 17 11 18 4 20 5 12 7 13 6 8 1 15 19",
        ),
        // Search criteria after the sort criteria.
        (
            "UID SORT (REVERSE ARRIVAL) UTF-8 SINCE 5-Nov-2026",
            "SORT",
            "20 19 18 17 14 13 12 10 11 9",
        ),
        ("SORT (DATE) UTF-8 SUBJECT plan", "SORT", "1 2 3 4 5 6 7"),
        ("SORT (DATE) UTF-8 SUBJECT nothing-matches-this", "SORT", ""),
        // THREAD REFERENCES (RFC 5256 §2.3): 3 answers 2; 4's parent
        // <gone> is pruned, so it answers 1; 5 joins by subject (a
        // forward); 12 and 13 share a missing parent (a dummy) that 14
        // joins by subject; 18 has In-Reply-To only; 19 repeats 17's
        // Message-ID and shares its subject without being a reply, so both
        // go under a dummy.
        ("THREAD REFERENCES UTF-8 ALL", "THREAD", references),
        ("UID THREAD REFERENCES UTF-8 ALL", "THREAD", references),
        (
            "THREAD REFERENCES UTF-8 FROM amy",
            "THREAD",
            "(16)(2)(9)(14)",
        ),
        (
            "THREAD ORDEREDSUBJECT UTF-8 ALL",
            "THREAD",
            "(15 16)(1 (2)(3)(4)(5))(6)(7)(8 (9)(11)(10))(12 (13)(14))(17 (19)(18)(20))",
        ),
    ];
    for (command, key, expected) in checks {
        assert_eq!(data(&answers, command, key), expected, "{command}");
    }

    // ESEARCH (RFC 4731) and SEARCHRES (RFC 5182).
    let esearch = |command: &str| data(&answers, command, "ESEARCH").to_string();
    assert_eq!(
        esearch("SEARCH RETURN (MIN MAX COUNT ALL) ALL"),
        "MIN 1 MAX 20 ALL 1:20 COUNT 20"
    );
    assert_eq!(
        esearch("UID SEARCH RETURN (COUNT) SUBJECT lunch"),
        "UID COUNT 4"
    );
    assert_eq!(esearch("SEARCH RETURN () SUBJECT plan"), "ALL 1:7");
    assert_eq!(
        esearch("SEARCH RETURN (MIN MAX) SUBJECT nothing-matches-this"),
        ""
    );
    assert!(!answer(&answers, "SEARCH RETURN (SAVE) SUBJECT plan").contains("ESEARCH"));
    assert_eq!(data(&answers, "SEARCH $", "SEARCH"), "1 2 3 4 5 6 7");
    assert_eq!(
        esearch("UID SEARCH RETURN (ALL) $ SINCE 2-Nov-2026"),
        "UID ALL 1:7"
    );
    assert_eq!(
        data(&answers, "SORT (REVERSE DATE) UTF-8 $", "SORT"),
        "6 7 5 4 2 3 1"
    );
    let fetched = answer(&answers, "FETCH $ (UID)");
    assert!(fetched.contains("\"7 (UID 7)\""), "{fetched}");
    assert_eq!(esearch("SEARCH RETURN (SAVE MIN) FROM amy"), "MIN 2");
    // With MIN alone only the minimum is saved (RFC 5182 §2.4).
    assert_eq!(data(&answers, "UID SEARCH $", "SEARCH"), "2");

    // SUBSCRIBE to a missing mailbox is refused; to an existing one not.
    let out = node.imap_cmds("NO:SUBSCRIBE \"No such folder\"\nSUBSCRIBE Seed");
    assert!(out.contains("[NONEXISTENT]"), "{out}");

    // The same answers as Dovecot for the same seed.
    match theirs {
        Ok(theirs) => {
            let mut differ = Vec::new();
            for (key, ours) in &answers {
                let their = theirs.get(key).map(String::as_str).unwrap_or("(none)");
                if ours != their {
                    differ.push(format!("{key}\n  mailnode: {ours}\n  Dovecot:  {their}"));
                }
            }
            assert!(
                differ.is_empty(),
                "answers differ from Dovecot's:\n{}",
                differ.join("\n")
            );
        }
        Err(reason) => println!("skipping the comparison with Dovecot: {reason}"),
    }
    node.stop();
}

/// The same run against a throwaway Dovecot, or why there is none.
fn dovecot_answers(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let installed = std::process::Command::new("dovecot")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        return Err("dovecot is not installed (scripts/install-test-deps installs it)".into());
    }
    let dovecot = dovecot::Dovecot::start();
    let args = vec![
        "127.0.0.1".to_string(),
        dovecot.port.to_string(),
        dovecot::DOVECOT_USER.to_string(),
        dovecot::DOVECOT_PASS.to_string(),
    ];
    Ok(run(&args, dir))
}
