#!/usr/bin/env python3
"""Real mail clients for mailnode's end-to-end tests.

The Rust tests drive mailnode's bridge through this script so that what talks
to the bridge is Python's standard imaplib and smtplib, as a user's scripts
would. Every subcommand exits 0 only if what it checks holds; on failure it
prints what it saw and exits 1.

Subcommands (HOST PORT USER PASS are the bridge's IMAP or SMTP settings):
  count HOST PORT USER PASS MAILBOX           print the message count (STATUS)
  fetch-all HOST PORT USER PASS MAILBOX DIR   write every message's BODY[] to DIR/<uid>.eml
  subjects HOST PORT USER PASS MAILBOX        print each message's Subject, one per line
  login-fails HOST PORT USER PASS             LOGIN must fail with NO [AUTHENTICATIONFAILED]
  smtp-send HOST PORT USER PASS FROM TO FILE  submit FILE with smtplib (AUTH LOGIN)
  smtp-expect HOST PORT USER PASS FROM TO CODE FILE
                                              the submission must fail with reply CODE
  smtp-auth-fails HOST PORT USER PASS         AUTH must fail with 535
  raw HOST PORT SCRIPT                        send raw lines: '>> line' sends a line,
                                              '<< regex' the next server line must match,
                                              '<<~ regex' skip server lines until one matches
"""

import imaplib
import os
import re
import smtplib
import socket
import sys


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def imap_login(host, port, user, password):
    conn = imaplib.IMAP4(host, int(port))
    typ, data = conn.login(user, password)
    if typ != "OK":
        fail(f"LOGIN failed: {typ} {data}")
    return conn


def quote(mailbox):
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cmd_count(host, port, user, password, mailbox):
    conn = imap_login(host, port, user, password)
    typ, data = conn.status(quote(mailbox), "(MESSAGES)")
    if typ != "OK":
        fail(f"STATUS failed: {typ} {data}")
    m = re.search(rb"MESSAGES (\d+)", data[0])
    if not m:
        fail(f"no MESSAGES in {data!r}")
    print(int(m.group(1)))
    conn.logout()


def fetch_uids(conn, mailbox):
    typ, data = conn.select(quote(mailbox), readonly=True)
    if typ != "OK":
        fail(f"SELECT {mailbox} failed: {typ} {data}")
    typ, data = conn.uid("SEARCH", None, "ALL")
    if typ != "OK":
        fail(f"UID SEARCH failed: {typ} {data}")
    return [int(u) for u in data[0].split()]


def cmd_fetch_all(host, port, user, password, mailbox, outdir):
    conn = imap_login(host, port, user, password)
    for uid in fetch_uids(conn, mailbox):
        typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[] RFC822.SIZE)")
        if typ != "OK":
            fail(f"UID FETCH {uid} failed: {typ} {data}")
        literal = None
        size = None
        for item in data:
            if isinstance(item, tuple):
                literal = item[1]
                m = re.search(rb"RFC822\.SIZE (\d+)", item[0])
                if m:
                    size = int(m.group(1))
        if literal is None:
            fail(f"no body for UID {uid}: {data!r}")
        if size is not None and size != len(literal):
            fail(f"RFC822.SIZE {size} != body length {len(literal)} for UID {uid}")
        with open(os.path.join(outdir, f"{uid}.eml"), "wb") as f:
            f.write(literal)
    conn.logout()


def cmd_subjects(host, port, user, password, mailbox):
    conn = imap_login(host, port, user, password)
    uids = fetch_uids(conn, mailbox)
    if uids:
        typ, data = conn.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        if typ != "OK":
            fail(f"UID FETCH failed: {typ} {data}")
        for item in data:
            if isinstance(item, tuple):
                text = item[1].decode("utf-8", "replace").strip()
                print(text.split(":", 1)[1].strip() if ":" in text else "")
    conn.logout()


def cmd_login_fails(host, port, user, password):
    conn = imaplib.IMAP4(host, int(port))
    try:
        conn.login(user, password)
    except imaplib.IMAP4.error as err:
        if "AUTHENTICATIONFAILED" not in str(err):
            fail(f"LOGIN failed without [AUTHENTICATIONFAILED]: {err}")
        print(err)
        return
    fail("LOGIN with a wrong password succeeded")


def smtp_login(host, port, user, password):
    smtp = smtplib.SMTP(host, int(port), timeout=60)
    smtp.ehlo("client.test")
    smtp.login(user, password)
    return smtp


def cmd_smtp_send(host, port, user, password, sender, to, path):
    with open(path, "rb") as f:
        data = f.read()
    smtp = smtp_login(host, port, user, password)
    refused = smtp.sendmail(sender, to.split(","), data)
    if refused:
        fail(f"recipients refused: {refused}")
    smtp.quit()


def cmd_smtp_expect(host, port, user, password, sender, to, code, path):
    with open(path, "rb") as f:
        data = f.read()
    smtp = smtp_login(host, port, user, password)
    try:
        smtp.sendmail(sender, to.split(","), data)
    except smtplib.SMTPRecipientsRefused as err:
        got = {addr: (c, m.decode()) for addr, (c, m) in err.recipients.items()}
        if all(str(c) == code for c, _ in got.values()):
            print(got)
            return
        fail(f"expected {code}, recipients refused with {got}")
    except smtplib.SMTPResponseException as err:
        if str(err.smtp_code) == code:
            print(err.smtp_code, err.smtp_error.decode())
            return
        fail(f"expected {code}, got {err.smtp_code} {err.smtp_error!r}")
    fail(f"expected {code}, but the message was accepted")


def cmd_smtp_auth_fails(host, port, user, password):
    smtp = smtplib.SMTP(host, int(port), timeout=60)
    smtp.ehlo("client.test")
    try:
        smtp.login(user, password)
    except smtplib.SMTPAuthenticationError as err:
        if err.smtp_code != 535:
            fail(f"expected 535, got {err.smtp_code}")
        print(err.smtp_code, err.smtp_error.decode())
        return
    fail("AUTH with a wrong password succeeded")


def cmd_raw(host, port, script):
    """Sends lines and checks replies: '>> text' sends, '<< regex' expects."""
    sock = socket.create_connection((host, int(port)), timeout=30)
    reader = sock.makefile("rb")
    with open(script) as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    for line in lines:
        if line.startswith(">> "):
            sock.sendall(line[3:].encode() + b"\r\n")
        elif line.startswith(">>RAW "):
            sock.sendall(line[6:].encode().decode("unicode_escape").encode("latin-1"))
        elif line.startswith("<<~ "):
            # Skip lines until one matches (e.g. past untagged responses).
            while True:
                raw = reader.readline()
                if not raw:
                    fail(f"connection closed while waiting for /{line[4:]}/")
                got = raw.decode("utf-8", "replace").rstrip("\r\n")
                if re.search(line[4:], got):
                    print("ok:", got)
                    break
        elif line.startswith("<< "):
            got = reader.readline().decode("utf-8", "replace").rstrip("\r\n")
            if not re.search(line[3:], got):
                fail(f"expected /{line[3:]}/, got {got!r}")
            print("ok:", got)
        else:
            fail(f"bad script line {line!r}")
    sock.close()


COMMANDS = {
    "count": (cmd_count, 5),
    "fetch-all": (cmd_fetch_all, 6),
    "subjects": (cmd_subjects, 5),
    "login-fails": (cmd_login_fails, 4),
    "smtp-send": (cmd_smtp_send, 7),
    "smtp-expect": (cmd_smtp_expect, 8),
    "smtp-auth-fails": (cmd_smtp_auth_fails, 4),
    "raw": (cmd_raw, 3),
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        fail(__doc__)
    func, nargs = COMMANDS[sys.argv[1]]
    args = sys.argv[2:]
    if len(args) != nargs:
        fail(f"{sys.argv[1]} takes {nargs} arguments, got {len(args)}\n{__doc__}")
    func(*args)


if __name__ == "__main__":
    main()
