//! Mail clients for a `common::Node` that runs inside a network namespace.
//!
//! A node's bridge listens on 127.0.0.1 of its own namespace, which the
//! test process (in the root namespace) cannot reach; these helpers run the
//! same Python clients as `common` (tests/py/mailtool.py: imaplib, smtplib)
//! inside the node's namespace instead. For a node without a namespace they
//! behave like `common`'s `count`, `fetch_all` and `send_with_lettre`.
//!
//! Used as `#[path = "netns/node.rs"] mod netns_node;` next to `mod common;`.

#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::process::Stdio;

use crate::common::{Node, describe, python_bin, str_refs, tests_dir};

/// Mail clients that run where the node's bridge is.
pub trait InNamespace {
    /// Runs `tests/py/mailtool.py` with `args`; it must succeed. Returns stdout.
    fn mailtool_here(&self, args: &[&str]) -> String;
    /// Number of messages in `mailbox` (IMAP STATUS).
    fn count_here(&self, mailbox: &str) -> usize;
    /// Every message of `mailbox`, raw, in UID order.
    fn fetch_all_here(&self, mailbox: &str) -> Vec<Vec<u8>>;
    /// Submits `raw` (ending in CRLF; transmitted byte for byte) with smtplib.
    fn send_here(&self, to: &[&str], raw: &[u8]);
}

impl InNamespace for Node {
    fn mailtool_here(&self, args: &[&str]) -> String {
        let out = self
            .client_command(python_bin())
            .arg(tests_dir().join("py/mailtool.py"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run python3");
        assert!(
            out.status.success(),
            "mailtool {} for {} failed: {}",
            args.first().unwrap_or(&""),
            self.name,
            describe(&out)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn count_here(&self, mailbox: &str) -> usize {
        let imap = self.imap_args_cached();
        let out = self.mailtool_here(&[&["count"][..], &str_refs(&imap), &[mailbox]].concat());
        out.trim().parse().expect("count prints a number")
    }

    fn fetch_all_here(&self, mailbox: &str) -> Vec<Vec<u8>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir_str = dir.path().to_str().expect("utf-8").to_string();
        let imap = self.imap_args_cached();
        self.mailtool_here(&[&["fetch-all"][..], &str_refs(&imap), &[mailbox, &dir_str]].concat());
        let mut files: Vec<(u32, PathBuf)> = fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .map(|p| {
                let uid = p
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.parse::<u32>().ok())
                    .unwrap_or(0);
                (uid, p)
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, p)| fs::read(p).expect("read message"))
            .collect()
    }

    fn send_here(&self, to: &[&str], raw: &[u8]) {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        fs::write(file.path(), raw).expect("write message");
        let smtp = self.smtp_args();
        let to = to.join(",");
        let path = file.path().to_str().expect("utf-8 path");
        self.mailtool_here(
            &[
                &["smtp-send"][..],
                &str_refs(&smtp),
                &[self.email.as_str(), to.as_str(), path],
            ]
            .concat(),
        );
    }
}
