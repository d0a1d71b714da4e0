//! Issue 3, "what it must show" 2: real mail clients against a running
//! node's bridge.
//!
//! - Python's imaplib exercises every RFC 3501 command group and the
//!   extensions a desktop client relies on, and an IDLE session sees
//!   another session's changes within a second (`mailtool.py imap-suite`,
//!   `idle-push`).
//! - mbsync (isync) syncs two ways over STARTTLS: flag changes, moves and
//!   deletions made on either side converge, and a further sync transfers
//!   nothing.
//! - curl lists mailboxes and fetches a message over IMAP and submits one
//!   over SMTP, both with STARTTLS required, trusting the certificate the
//!   node keeps in its home; with `-k` the certificate it presents has the
//!   fingerprint `mailnode bridge` shows, and it is the same after a restart.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use common::{Node, NodeState, describe, simple_message, write_file};
use sha2::{Digest, Sha256};

#[test]
fn imaplib_exercises_every_command_group() {
    let mut alice = Node::create("alice");
    alice.start();
    let report = alice.imap_tool("imap-suite", &[]);
    assert!(
        report.contains("imap-suite: all command groups OK"),
        "{report}"
    );
    let report = alice.imap_tool("idle-push", &[]);
    assert!(report.contains("idle-push: OK"), "{report}");
}

// ---------------------------------------------------------------------------
// mbsync

/// The flags mbsync maps between IMAP and Maildir (isync's `drv_maildir.c`
/// letters D F R S T). Keywords are not compared: Maildir has no place for
/// them in mbsync's format.
const SYSTEM_FLAGS: [(char, &str); 5] = [
    ('D', "\\Draft"),
    ('F', "\\Flagged"),
    ('R', "\\Answered"),
    ('S', "\\Seen"),
    ('T', "\\Deleted"),
];

/// Message-ID → system flags of every message in a mailbox.
type Contents = BTreeMap<String, BTreeSet<String>>;

/// One mbsync set-up: a Maildir tree and a config file in a temp dir.
struct Mbsync {
    dir: tempfile::TempDir,
}

impl Mbsync {
    fn new(node: &Node) -> Mbsync {
        let dir = tempfile::tempdir().expect("tempdir");
        let maildir = dir.path().join("mail");
        fs::create_dir_all(&maildir).expect("maildir");
        let config = format!(
            "IMAPAccount node\n\
             Host 127.0.0.1\n\
             Port {port}\n\
             User {user}\n\
             Pass \"{pass}\"\n\
             SSLType STARTTLS\n\
             CertificateFile {cert}\n\
             \n\
             IMAPStore remote\n\
             Account node\n\
             \n\
             MaildirStore local\n\
             Path {maildir}/\n\
             Inbox {maildir}/INBOX\n\
             SubFolders Verbatim\n\
             \n\
             Channel node\n\
             Far :remote:\n\
             Near :local:\n\
             Patterns *\n\
             Create Both\n\
             Remove Both\n\
             Expunge Both\n\
             SyncState *\n",
            port = node.running().imap,
            user = node.email,
            pass = node.cached_password(),
            cert = node.bridge_cert_path().display(),
            maildir = maildir.display(),
        );
        fs::write(dir.path().join("mbsyncrc"), config).expect("mbsyncrc");
        Mbsync { dir }
    }

    fn maildir(&self, mailbox: &str) -> PathBuf {
        self.dir.path().join("mail").join(mailbox)
    }

    /// Runs `mbsync -Dn` (protocol transcript on stdout); it must succeed.
    fn sync(&self) -> String {
        let out = Command::new("mbsync")
            .arg("-Dn")
            .arg("-c")
            .arg(self.dir.path().join("mbsyncrc"))
            .arg("-a")
            .env("HOME", self.dir.path())
            .output()
            .expect("cannot run mbsync (apt-get install isync)");
        assert!(out.status.success(), "mbsync failed: {}", describe(&out));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Every message file of a Maildir folder (new/ and cur/).
    fn files(&self, mailbox: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .filter_map(|sub| fs::read_dir(self.maildir(mailbox).join(sub)).ok())
            .flat_map(|entries| entries.flatten().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
    }

    /// The message file with this Message-ID.
    fn file_of(&self, mailbox: &str, msgid: &str) -> PathBuf {
        self.files(mailbox)
            .into_iter()
            .find(|p| message_id(p).as_deref() == Some(msgid))
            .unwrap_or_else(|| panic!("no {msgid} in the Maildir {mailbox}"))
    }

    /// What the near side holds.
    fn contents(&self, mailbox: &str) -> Contents {
        self.files(mailbox)
            .iter()
            .map(|p| {
                let msgid =
                    message_id(p).unwrap_or_else(|| panic!("{} has no Message-ID", p.display()));
                (msgid, maildir_flags(p))
            })
            .collect()
    }
}

/// The IMAP commands in an `mbsync -Dn` transcript (`>>> ` lines; pipelined
/// ones carry a `(n in progress) ` prefix).
fn mbsync_commands(transcript: &str) -> Vec<&str> {
    transcript
        .lines()
        .filter_map(|l| l.split_once(">>> ").map(|(_, command)| command))
        .collect()
}

fn message_id(path: &Path) -> Option<String> {
    let bytes = fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let header = text.split("\r\n\r\n").next().unwrap_or_default();
    header.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("message-id")
            .then(|| value.trim().to_string())
    })
}

/// Flags from a Maildir file name's `:2,FLAGS` info part.
fn maildir_flags(path: &Path) -> BTreeSet<String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let letters = name.rsplit_once(":2,").map_or("", |(_, f)| f);
    SYSTEM_FLAGS
        .iter()
        .filter(|(c, _)| letters.contains(*c))
        .map(|(_, f)| f.to_string())
        .collect()
}

/// Renames a Maildir file to carry exactly `letters` as flags, in cur/.
fn set_maildir_flags(path: &Path, letters: &str) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("file name");
    let base = name.split_once(":2,").map_or(name, |(b, _)| b);
    let folder = path
        .parent()
        .and_then(Path::parent)
        .expect("maildir folder");
    fs::rename(path, folder.join("cur").join(format!("{base}:2,{letters}"))).expect("rename");
}

/// What the far side holds, with the same flag subset.
fn server_contents(state: &NodeState, mailbox: &str) -> Contents {
    let system: BTreeSet<&str> = SYSTEM_FLAGS.iter().map(|(_, f)| *f).collect();
    state
        .get(mailbox)
        .unwrap_or_else(|| panic!("no mailbox {mailbox} on the server"))
        .messages
        .iter()
        .map(|m| {
            let flags = m
                .flags
                .iter()
                .filter(|f| system.contains(f.as_str()))
                .cloned()
                .collect();
            (m.msgid.clone(), flags)
        })
        .collect()
}

fn expect(list: &[(&str, &[&str])]) -> Contents {
    list.iter()
        .map(|(id, flags)| {
            (
                format!("<{id}@example.org>"),
                flags.iter().map(|f| f.to_string()).collect(),
            )
        })
        .collect()
}

fn assert_converged(sync: &Mbsync, node: &Node, wanted: &[(&str, Contents)]) -> NodeState {
    let state = node.mailbox_state();
    for (mailbox, want) in wanted {
        assert_eq!(
            &server_contents(&state, mailbox),
            want,
            "server side of {mailbox}"
        );
        assert_eq!(&sync.contents(mailbox), want, "Maildir side of {mailbox}");
    }
    state
}

#[test]
fn mbsync_two_way_sync_converges_and_then_transfers_nothing() {
    let mut alice = Node::create("alice");
    alice.start();
    alice.imap_cmds("CREATE \"Work\"");
    for i in 1..=6 {
        let raw = simple_message(
            "Carol <carol@example.org>",
            &alice.email,
            &format!("mbsync {i}"),
            &format!("mb-{i}"),
            &format!("body {i}"),
        );
        alice.append("INBOX", "", &raw);
    }
    let raw = simple_message("Carol <carol@example.org>", &alice.email, "w", "w-1", "w");
    alice.append("Work", "(\\Seen)", &raw);

    let mbsync = Mbsync::new(&alice);
    mbsync.sync();
    let inbox_all: Vec<(&str, &[&str])> = ["mb-1", "mb-2", "mb-3", "mb-4", "mb-5", "mb-6"]
        .iter()
        .map(|id| (*id, &[][..]))
        .collect();
    let state = assert_converged(
        &mbsync,
        &alice,
        &[
            ("INBOX", expect(&inbox_all)),
            ("Work", expect(&[("w-1", &["\\Seen"])])),
        ],
    );

    // Changes on the server: a flag, a move, a deletion.
    let inbox = &state["INBOX"];
    let uid = |id: &str| {
        inbox
            .uid_of(&format!("<{id}@example.org>"))
            .unwrap_or_else(|| panic!("{id} in INBOX"))
    };
    alice.imap_cmds(&format!(
        "SELECT INBOX\n\
         UID STORE {} +FLAGS (\\Flagged)\n\
         UID MOVE {} \"Work\"\n\
         UID STORE {} +FLAGS (\\Deleted)\n\
         UID EXPUNGE {}",
        uid("mb-1"),
        uid("mb-2"),
        uid("mb-3"),
        uid("mb-3"),
    ));
    // Changes in the Maildir: a flag in each folder, a deletion, and a move
    // (a file moved to another folder loses mbsync's `,U=` UID, as isync's
    // documentation asks of mail programs).
    set_maildir_flags(&mbsync.file_of("INBOX", "<mb-4@example.org>"), "S");
    set_maildir_flags(&mbsync.file_of("Work", "<w-1@example.org>"), "FS");
    fs::remove_file(mbsync.file_of("INBOX", "<mb-5@example.org>")).expect("delete");
    let moving = mbsync.file_of("INBOX", "<mb-6@example.org>");
    let name = moving
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    let base = name.split(',').next().unwrap_or(&name).to_string();
    fs::rename(&moving, mbsync.maildir("Work").join("new").join(base)).expect("move");

    let transcript = mbsync.sync();
    for command in ["APPEND", "STORE"] {
        assert!(
            mbsync_commands(&transcript)
                .iter()
                .any(|c| c.to_ascii_uppercase().contains(command)),
            "the second sync pushes the Maildir's changes ({command}):\n{transcript}"
        );
    }
    let wanted = [
        (
            "INBOX",
            expect(&[("mb-1", &["\\Flagged"]), ("mb-4", &["\\Seen"])]),
        ),
        (
            "Work",
            expect(&[
                ("w-1", &["\\Flagged", "\\Seen"]),
                ("mb-2", &[]),
                ("mb-6", &[]),
            ]),
        ),
    ];
    let converged = assert_converged(&mbsync, &alice, &wanted);

    // A third sync has nothing to do: no message or flag goes either way.
    let files_before: Vec<Vec<PathBuf>> =
        ["INBOX", "Work"].iter().map(|m| mbsync.files(m)).collect();
    let transcript = mbsync.sync();
    let commands = mbsync_commands(&transcript);
    assert!(
        commands.iter().any(|c| c.contains("SELECT")),
        "the transcript shows mbsync's commands:\n{transcript}"
    );
    let transfers: Vec<&&str> = commands
        .iter()
        .filter(|c| {
            let upper = c.to_ascii_uppercase();
            [
                "APPEND",
                "STORE",
                "EXPUNGE",
                "MOVE",
                "COPY",
                "BODY.PEEK[]",
                "RFC822",
            ]
            .iter()
            .any(|word| upper.contains(word))
        })
        .collect();
    assert!(
        transfers.is_empty(),
        "an up-to-date sync transferred something: {transfers:?}\n{transcript}"
    );
    let files_after: Vec<Vec<PathBuf>> =
        ["INBOX", "Work"].iter().map(|m| mbsync.files(m)).collect();
    assert_eq!(files_before, files_after, "the Maildir did not change");
    let after = assert_converged(&mbsync, &alice, &wanted);
    for mailbox in ["INBOX", "Work"] {
        assert_eq!(
            after[mailbox], converged[mailbox],
            "the server's {mailbox} did not change"
        );
    }
}

// ---------------------------------------------------------------------------
// curl

/// Runs curl against the node with the bridge credentials.
fn curl(node: &Node, args: &[&str]) -> Output {
    let user = format!("{}:{}", node.email, node.cached_password());
    Command::new("curl")
        .args(["--silent", "--show-error", "--ssl-reqd", "--max-time", "30"])
        .arg("--user")
        .arg(user)
        .args(args)
        .output()
        .expect("cannot run curl")
}

fn curl_ok(node: &Node, args: &[&str]) -> Vec<u8> {
    let out = curl(node, args);
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        describe(&out)
    );
    out.stdout
}

/// SHA-256 of the first PEM certificate in curl's `%{certs}` output, in
/// the colon-separated upper-case hex `mailnode bridge` prints.
fn presented_fingerprint(certs: &str) -> String {
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = certs
        .find(begin)
        .unwrap_or_else(|| panic!("no certificate in curl's output:\n{certs}"))
        + begin.len();
    let end = certs[start..]
        .find("-----END CERTIFICATE-----")
        .expect("end of the certificate")
        + start;
    let b64: String = certs[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64 certificate");
    Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// curl checks: list and fetch over IMAP, submit over SMTP, STARTTLS
/// required and verified against `cacert`.
fn curl_session(alice: &Node, cacert: &Path, uid: u32, message: &[u8], tag: &str) {
    let cacert = cacert.to_str().expect("utf-8 path");
    let imap = format!("imap://127.0.0.1:{}", alice.running().imap);
    let listing = curl_ok(alice, &["--cacert", cacert, &format!("{imap}/")]);
    let listing = String::from_utf8_lossy(&listing);
    for mailbox in ["INBOX", "\"Sent\"", "\"Trash\""] {
        assert!(
            listing.contains(mailbox),
            "curl's LIST lacks {mailbox}:\n{listing}"
        );
    }
    let fetched = curl_ok(
        alice,
        &["--cacert", cacert, &format!("{imap}/INBOX;UID={uid}")],
    );
    assert_eq!(
        fetched,
        message,
        "curl fetched the message byte for byte:\n{}",
        String::from_utf8_lossy(&fetched)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let id = format!("curl-smtp-{tag}");
    let raw = simple_message(&alice.email, &alice.email, "Sent by curl", &id, "Hi.");
    let path = write_file(dir.path(), "curl.eml", &raw);
    curl_ok(
        alice,
        &[
            "--cacert",
            cacert,
            &format!("smtp://127.0.0.1:{}", alice.running().smtp),
            "--mail-from",
            &alice.email,
            "--mail-rcpt",
            &alice.email,
            "--upload-file",
            path.to_str().expect("utf-8 path"),
        ],
    );
    let sent = alice.mailbox("Sent");
    assert!(
        sent.uid_of(&format!("<{id}@example.org>")).is_some(),
        "the message curl submitted is filed in Sent: {sent:?}"
    );

    // Without trusting the file: the presented certificate must be the one
    // whose fingerprint `mailnode bridge` shows, on both ports.
    let fingerprint = alice.tls_fingerprint();
    for url in [
        format!("{imap}/"),
        format!("smtp://127.0.0.1:{}", alice.running().smtp),
    ] {
        // On an SMTP URL without recipients curl authenticates and sends
        // HELP; on an IMAP URL it lists the mailboxes.
        let out = curl(
            alice,
            &[
                "-k",
                "--write-out",
                "%{certs}",
                "--output",
                "/dev/null",
                &url,
            ],
        );
        assert!(out.status.success(), "curl -k {url}: {}", describe(&out));
        let certs = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            presented_fingerprint(&certs),
            fingerprint,
            "{url}: the certificate presented over STARTTLS is the node's ({})",
            describe(&out)
        );
    }
}

#[test]
fn curl_imap_and_smtp_with_starttls_and_a_certificate_that_stays() {
    let mut alice = Node::create("alice");
    alice.start();
    let message = simple_message(
        "Carol <carol@example.org>",
        &alice.email,
        "For curl",
        "curl-1",
        "Fetched over IMAP with STARTTLS.",
    );
    let uid = alice.append("INBOX", "", &message);

    // The client keeps the certificate it accepted once.
    let client = tempfile::tempdir().expect("tempdir");
    let accepted = client.path().join("accepted.pem");
    fs::copy(alice.bridge_cert_path(), &accepted).expect("copy the certificate");
    let fingerprint = alice.tls_fingerprint();

    curl_session(&alice, &accepted, uid, &message, "first");

    alice.stop();
    alice.start();
    assert_eq!(
        alice.tls_fingerprint(),
        fingerprint,
        "the fingerprint is the same after a restart"
    );
    assert_eq!(
        fs::read(alice.bridge_cert_path()).expect("certificate"),
        fs::read(&accepted).expect("accepted certificate"),
        "the certificate file is the same after a restart"
    );
    curl_session(&alice, &accepted, uid, &message, "again");
}
