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

Issue-3 client tests (bridge_clients, uid_stability, qresync, sent_dedupe):
  state HOST PORT USER PASS                   print every mailbox as JSON: uidvalidity, uidnext,
                                              highestmodseq and each message's uid, Message-ID, flags
  append HOST PORT USER PASS MAILBOX FLAGS FILE
                                              APPEND FILE with FLAGS ("" for none, else "(\\Seen ...)");
                                              print the APPENDUID uid (0 if none)
  append-dir HOST PORT USER PASS MAILBOX FLAGS DIR
                                              APPEND every file of DIR (name order) in one session;
                                              print one APPENDUID uid per line
  imap-cmds HOST PORT USER PASS SCRIPT        run raw commands (one per line of SCRIPT) after LOGIN;
                                              each must end OK ("NO:CMD" expects NO, "BAD:CMD" BAD);
                                              print every response line
  imap-suite HOST PORT USER PASS              every RFC 3501 command group through imaplib
  idle-push HOST PORT USER PASS               IDLE on INBOX sees another session's APPEND, STORE
                                              and EXPUNGE within 1 s each
  qresync-record HOST PORT USER PASS MAILBOX  ENABLE QRESYNC + SELECT; print "UIDVALIDITY HIGHESTMODSEQ"
  qresync-check HOST PORT USER PASS MAILBOX UIDVALIDITY MODSEQ CHANGED VANISHED
                                              reconnect with SELECT (QRESYNC ...): the FETCHes must be
                                              exactly the CHANGED uids and VANISHED (EARLIER) exactly
                                              VANISHED (comma-separated uid lists, "-" for none)

Issue-9 (tests/sort_thread.rs):
  sort-seed HOST PORT USER PASS MAILBOX DIR   imaplib: CREATE MAILBOX, APPEND every DIR/*.eml (name
                                              order) with the INTERNALDATE in the matching .date file,
                                              SELECT it, then run each line of DIR/commands (a JSON
                                              list of command words); print one JSON object per
                                              command: status and untagged SORT, THREAD, SEARCH,
                                              ESEARCH and FETCH data (ESEARCH without its TAG)

Issue-7 (tests/imap_extensions.rs):
  status-size HOST PORT USER PASS MAILBOX     imaplib: CAPABILITY, STATUS (SIZE MESSAGES), LIST ...
                                              RETURN (STATUS (SIZE)) and the sum of RFC822.SIZE;
                                              print JSON {"capability", "size", "list_size",
                                              "messages", "sum"}
  binary HOST PORT USER PASS MAILBOX HEXFILE  APPEND the message in HEXFILE (hex) with a literal8
                                              (~{n+}, raw socket), then imaplib: UID FETCH
                                              BINARY.PEEK[1..4] and BINARY.SIZE, BINARY[9], and
                                              BINARY[1] without PEEK; print JSON (parts as hex,
                                              sizes, the NO answer, flags before/after)
  utf8-accept HOST PORT USER PASS            UTF8=ACCEPT (RFC 9755): CREATE "Entw&APw-rfe" without it;
                                              with it (imaplib ENABLE): LIST/STATUS names, APPEND
                                              through imaplib and (raw socket) UTF8 (~{n}), SEARCH
                                              with raw UTF-8 strings, the stored bytes; print JSON
  recent HOST PORT USER PASS MAILBOX          \Recent (RFC 3501 §2.3.2) across five imaplib sessions:
                                              STATUS, EXAMINE, a first and a second SELECT (RECENT,
                                              FLAGS, SEARCH RECENT/NEW/OLD), then an APPEND and NOOP
                                              in both SELECT sessions; print JSON of what each saw

Issue-8 (tests/backup.rs):
  uid-sizes HOST PORT USER PASS MAILBOX       imaplib: STATUS (MESSAGES UIDNEXT UIDVALIDITY) and
                                              UID FETCH 1:* (UID RFC822.SIZE); print JSON
                                              {"uidvalidity", "uidnext", "messages": [[uid, size]...]}
"""

import imaplib
import os
import re
import smtplib
import socket
import sys
import time


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


# ---------------------------------------------------------------------------
# Issue 3: real-client tests (bridge_clients, uid_stability, qresync,
# sent_dedupe). A raw client is used where imaplib hides what must be
# checked (untagged responses of QRESYNC, IDLE timing, LITERAL+ APPEND).


class RawImap:
    """A minimal IMAP client on a plain socket that keeps every untagged
    response. Literals in responses are inlined into their line."""

    LITERAL = re.compile(rb"\{(\d+)\+?\}$")

    def __init__(self, host, port, timeout=30):
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.counter = 0
        self.greeting = self.read_response()
        if not self.greeting.startswith(b"* OK"):
            fail(f"bad greeting {self.greeting!r}")

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data before the deadline")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data before the deadline") from None
        if not chunk:
            fail(f"the server closed the connection; unread: {self.buf!r}")
        self.buf += chunk

    def _line(self, deadline):
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_response(self, timeout=None):
        """One response line with its literals inlined (without CRLF).
        Raises TimeoutError if nothing complete arrives in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        line = self._line(deadline)
        while True:
            m = self.LITERAL.search(line)
            if not m:
                return line
            size = int(m.group(1))
            while len(self.buf) < size:
                self._fill(deadline)
            literal, self.buf = self.buf[:size], self.buf[size:]
            line = line + b"\r\n" + literal + self._line(deadline)

    def send(self, data):
        self.sock.sendall(data)

    def command(self, text, expect="OK", literal=None, literal8=None):
        """Sends `text` (with a LITERAL+ literal, or a non-synchronizing
        literal8 of RFC 3516, appended if given) and returns (untagged
        lines, tagged line); the status must be `expect`."""
        self.counter += 1
        tag = f"c{self.counter}"
        data = f"{tag} {text}".encode()
        if literal is not None:
            data += b" {%d+}\r\n" % len(literal) + literal
        if literal8 is not None:
            data += b" ~{%d+}\r\n" % len(literal8) + literal8
        self.send(data + b"\r\n")
        untagged = []
        while True:
            line = self.read_response()
            if line.startswith(tag.encode() + b" "):
                status = line.split(b" ", 2)[1].decode().upper()
                if status != expect:
                    fail(f"{text!r}: expected {expect}, got {line!r}; untagged: {untagged!r}")
                return untagged, line
            untagged.append(line)

    def login(self, user, password):
        self.command(f"LOGIN {quote(user)} {quote(password)}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raw_login(host, port, user, password):
    conn = RawImap(host, port)
    conn.login(user, password)
    return conn


def begin_idle(conn):
    """Sends IDLE on a raw connection and checks the continuation; returns the tag."""
    conn.counter += 1
    tag = f"c{conn.counter}"
    conn.send(f"{tag} IDLE\r\n".encode())
    line = conn.read_response()
    check(line.startswith(b"+"), f"IDLE continuation: {line!r}")
    return tag


def code_value(lines, code):
    """The number in `[CODE n]` in any of `lines`, or None."""
    pattern = re.compile(rb"\[" + code.encode() + rb" (\d+)")
    for line in lines:
        m = pattern.search(line)
        if m:
            return int(m.group(1))
    return None


def parse_uid_set(text):
    """'1:3,7' -> {1, 2, 3, 7}."""
    out = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if ":" in part:
            a, b = part.split(":", 1)
            a, b = int(a), int(b)
            out.update(range(min(a, b), max(a, b) + 1))
        else:
            out.add(int(part))
    return out


def unquote(name):
    if name.startswith(b'"') and name.endswith(b'"') and len(name) >= 2:
        return re.sub(rb"\\(.)", rb"\1", name[1:-1])
    m = re.match(rb"\{\d+\+?\}\r\n", name)
    if m:
        return name[m.end():]
    return name


LIST_LINE = re.compile(rb'^\* LIST \(([^)]*)\) (?:NIL|"(?:[^"\\]|\\.)*") (.*)$', re.S)


def list_mailboxes(conn):
    """[(name, flags)] from LIST "" "*"."""
    untagged, _ = conn.command('LIST "" "*"')
    out = []
    for line in untagged:
        m = LIST_LINE.match(line)
        if m:
            out.append((unquote(m.group(2)).decode(), m.group(1).decode().split()))
    return out


def parse_fetch(line):
    """(seq, uid, flags, modseq, msgid) of an untagged FETCH line."""
    m = re.match(rb"^\* (\d+) FETCH ", line)
    if not m:
        return None
    seq = int(m.group(1))
    uid = re.search(rb"\bUID (\d+)", line)
    flags = re.search(rb"\bFLAGS \(([^)]*)\)", line)
    modseq = re.search(rb"\bMODSEQ \((\d+)\)", line)
    msgid = re.search(rb"(?i)Message-ID:\s*(<[^>\r\n]*>)", line)
    return (
        seq,
        int(uid.group(1)) if uid else None,
        sorted(flags.group(1).decode().split()) if flags else None,
        int(modseq.group(1)) if modseq else None,
        msgid.group(1).decode() if msgid else None,
    )


def cmd_state(host, port, user, password):
    import json

    conn = raw_login(host, port, user, password)
    state = {}
    for name, flags in list_mailboxes(conn):
        if any(f.lower() in ("\\noselect", "\\nonexistent") for f in flags):
            continue
        untagged, _ = conn.command(f"EXAMINE {quote(name)}")
        exists = 0
        for line in untagged:
            m = re.match(rb"^\* (\d+) EXISTS", line)
            if m:
                exists = int(m.group(1))
        box = {
            "uidvalidity": code_value(untagged, "UIDVALIDITY"),
            "uidnext": code_value(untagged, "UIDNEXT"),
            "highestmodseq": code_value(untagged, "HIGHESTMODSEQ"),
            "exists": exists,
            "messages": [],
        }
        if exists:
            lines, _ = conn.command(
                "UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            )
            for line in lines:
                parsed = parse_fetch(line)
                if parsed:
                    _, uid, flags, _, msgid = parsed
                    box["messages"].append(
                        {"uid": uid, "msgid": msgid, "flags": flags or []}
                    )
            box["messages"].sort(key=lambda m: m["uid"] or 0)
        state[name] = box
    conn.command("LOGOUT")
    conn.close()
    print(json.dumps(state, indent=1, sort_keys=True))


def cmd_append(host, port, user, password, mailbox, flags, path):
    with open(path, "rb") as f:
        data = f.read()
    conn = raw_login(host, port, user, password)
    flags_part = f" {flags}" if flags else ""
    _, tagged = conn.command(f"APPEND {quote(mailbox)}{flags_part}", literal=data)
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", tagged)
    print(int(m.group(2)) if m else 0)
    conn.command("LOGOUT")
    conn.close()


def cmd_append_dir(host, port, user, password, mailbox, flags, directory):
    conn = raw_login(host, port, user, password)
    flags_part = f" {flags}" if flags else ""
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        _, tagged = conn.command(f"APPEND {quote(mailbox)}{flags_part}", literal=data)
        m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", tagged)
        print(int(m.group(2)) if m else 0)
    conn.command("LOGOUT")
    conn.close()


def cmd_imap_cmds(host, port, user, password, script):
    conn = raw_login(host, port, user, password)
    for text in script.split("\n"):
        text = text.strip()
        if not text:
            continue
        expect = "OK"
        for status in ("NO", "BAD"):
            if text.startswith(status + ":"):
                expect, text = status, text[len(status) + 1 :]
        untagged, tagged = conn.command(text, expect=expect)
        print(f">> {text}")
        for line in untagged:
            print(line.decode("utf-8", "replace"))
        print(tagged.decode("utf-8", "replace"))
    conn.close()


def check(condition, what):
    if not condition:
        fail(f"FAILED: {what}")


def ok(result, what):
    typ, data = result
    check(typ == "OK", f"{what}: {typ} {data!r}")
    return data


def search_uids(conn, *criteria):
    data = ok(conn.uid("SEARCH", None, *criteria), f"UID SEARCH {criteria}")
    return sorted(int(x) for x in (data[0] or b"").split())


def fetch_items(data):
    """imaplib FETCH data -> [(metadata, [literals])], one per message. A
    message's response starts with 'N ('; the pieces imaplib splits off
    after a literal start with ' ' or ')'."""
    out = []
    for item in data:
        if item is None:
            continue
        head = item[0] if isinstance(item, tuple) else item
        if re.match(rb"^\d+ \(", head) or not out:
            out.append((head, []))
        else:
            out[-1] = (out[-1][0] + head, out[-1][1])
        if isinstance(item, tuple):
            out[-1][1].append(item[1])
    return out


def flags_in(meta):
    m = re.search(rb"FLAGS \(([^)]*)\)", meta)
    return set(m.group(1).decode().split()) if m else None


def list_names(conn, *args):
    conn.response("LIST")  # drop LIST data left by an earlier extended LIST
    if args:
        data = ok(conn.list(*args), f"LIST {args}")
    else:
        data = ok(conn.list(), "LIST")
    out = {}
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            item = item[0] + item[1]
        m = re.match(rb'^\(([^)]*)\) (?:NIL|"(?:[^"\\]|\\.)*") (.*)$', item, re.S)
        if m:
            out[unquote(m.group(2)).decode()] = set(m.group(1).decode().split())
    return out


SUITE_MULTIPART = (
    b"From: Suite Sender <sender@example.org>\r\n"
    b"To: Alice <alice@example.org>\r\n"
    b"Subject: Suite multipart beta\r\n"
    b"Date: Mon, 02 Feb 2026 10:00:00 +0000\r\n"
    b"Message-ID: <suite-multi@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n'
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"plain part NEEDLEPLAIN\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>html part</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\n"
    b'Content-Type: application/octet-stream; name="a.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="a.bin"\r\n'
    b"\r\n"
    b"AAECAwQ=\r\n"
    b"--outer--\r\n"
)


def suite_plain(subject, msgid, date, body):
    return (
        f"From: Suite Sender <sender@example.org>\r\n"
        f"To: Alice <alice@example.org>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: <{msgid}@example.org>\r\n"
        f"\r\n"
        f"{body}\r\n"
    ).encode()


def utc(y, mo, d):
    import datetime

    return datetime.datetime(y, mo, d, 12, 0, 0, tzinfo=datetime.timezone.utc)


def suite_auth(host, port, user, password):
    print("auth: LOGIN with a wrong password")
    bad = imaplib.IMAP4(host, int(port))
    try:
        bad.login(user, password + "x")
        fail("LOGIN with a wrong password succeeded")
    except imaplib.IMAP4.error as err:
        check("AUTHENTICATIONFAILED" in str(err), f"no [AUTHENTICATIONFAILED] in {err}")
    bad.logout()

    print("auth: AUTHENTICATE PLAIN, CAPABILITY, NOOP, ID, NAMESPACE, ENABLE, LOGOUT")
    conn = imaplib.IMAP4(host, int(port))
    check("AUTH=PLAIN" in conn.capabilities, f"greeting capabilities {conn.capabilities}")
    ok(conn.authenticate("PLAIN", lambda _: f"\0{user}\0{password}".encode()), "AUTHENTICATE")
    check(conn.state == "AUTH", f"state after AUTHENTICATE is {conn.state}")
    data = ok(conn.capability(), "CAPABILITY")
    caps = set(data[0].decode().upper().split())
    for cap in ("IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "UNSELECT", "NAMESPACE", "ID",
                "ENABLE", "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS", "LITERAL+",
                "CHILDREN", "CONDSTORE", "QRESYNC"):
        check(cap in caps, f"{cap} missing from CAPABILITY {sorted(caps)}")
    ok(conn.noop(), "NOOP")
    ok(conn.xatom("ID", '("name" "mailtool" "version" "1")'), "ID")
    typ, data = conn.response("ID")
    check(data and data[0] is not None, f"no untagged ID response: {data!r}")
    data = ok(conn.namespace(), "NAMESPACE")
    check(b'"/"' in data[0], f"NAMESPACE without the / delimiter: {data!r}")
    ok(conn.enable("CONDSTORE"), "ENABLE")
    typ, data = conn.response("ENABLED")
    check(data and data[0] and b"CONDSTORE" in data[0].upper(), f"ENABLED response: {data!r}")
    typ, _ = conn.logout()
    check(typ == "BYE", f"LOGOUT gave {typ}")


def suite_mailboxes(conn):
    print("mailbox: CREATE, LIST, LSUB, SUBSCRIBE, UNSUBSCRIBE, STATUS, RENAME, DELETE")
    ok(conn.create(quote("Suite")), "CREATE Suite")
    ok(conn.create(quote("Suite/Child")), "CREATE Suite/Child")
    typ, data = conn.create(quote("Trash"))
    check(typ == "NO" and b"ALREADYEXISTS" in (data[0] or b""),
          f"CREATE of an existing Trash: {typ} {data!r}")
    boxes = list_names(conn, '""', '"*"')
    for name in ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive", "Suite", "Suite/Child"):
        check(name in boxes, f"{name} missing from LIST: {boxes}")
    check("\\HasChildren" in boxes["Suite"], f"Suite flags {boxes['Suite']}")
    check("\\HasNoChildren" in boxes["Suite/Child"], f"Suite/Child flags {boxes['Suite/Child']}")
    for name, use in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"),
                      ("Junk", "\\Junk"), ("Archive", "\\Archive")):
        check(use in boxes[name], f"{name} lacks {use}: {boxes[name]}")
    children = list_names(conn, '""', '"Suite/%"')
    check(set(children) == {"Suite/Child"}, f'LIST "" "Suite/%" gave {children}')
    # LIST-EXTENDED, as Thunderbird sends it.
    typ, dat = conn._simple_command("LIST", "(SUBSCRIBED)", '""', '"*"', "RETURN", "(SPECIAL-USE)")
    check(typ == "OK", f"LIST (SUBSCRIBED) ... RETURN (SPECIAL-USE): {typ} {dat!r}")
    _, listed = conn._untagged_response(typ, dat, "LIST")
    text = b"\n".join(x for x in listed if isinstance(x, bytes))
    check(b"\\Sent" in text and b"INBOX" in text, f"LIST-EXTENDED reply {listed!r}")

    ok(conn.subscribe(quote("Suite")), "SUBSCRIBE")
    lsub = list_names_lsub(conn)
    check("Suite" in lsub, f"Suite not in LSUB {lsub}")
    ok(conn.unsubscribe(quote("Suite")), "UNSUBSCRIBE")
    lsub = list_names_lsub(conn)
    check("Suite" not in lsub, f"Suite still in LSUB {lsub}")

    data = ok(conn.status(quote("Suite"), "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT)"), "STATUS")
    check(re.search(rb"MESSAGES 0\b", data[0]), f"STATUS of an empty Suite: {data!r}")
    check(re.search(rb"UIDVALIDITY \d+", data[0]), f"STATUS without UIDVALIDITY: {data!r}")

    ok(conn.rename(quote("Suite"), quote("Suite2")), "RENAME")
    boxes = list_names(conn, '""', '"*"')
    check("Suite" not in boxes and "Suite2" in boxes and "Suite2/Child" in boxes,
          f"after RENAME Suite Suite2 (children move too, RFC 3501 6.3.5): {sorted(boxes)}")
    ok(conn.delete(quote("Suite2/Child")), "DELETE")
    boxes = list_names(conn, '""', '"*"')
    check("Suite2/Child" not in boxes, f"Suite2/Child still listed: {sorted(boxes)}")
    typ, data = conn.select(quote("NoSuchBox"))
    check(typ == "NO", f"SELECT of a missing mailbox: {typ} {data!r}")


def list_names_lsub(conn):
    data = ok(conn.lsub('""', '"*"'), "LSUB")
    out = set()
    for item in data:
        if isinstance(item, bytes):
            m = re.match(rb'^\(([^)]*)\) (?:NIL|"(?:[^"\\]|\\.)*") (.*)$', item)
            if m:
                out.add(unquote(m.group(2)).decode())
    return out


def appenduid(data, what):
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0] or b"")
    check(m, f"{what}: no APPENDUID in {data!r}")
    return int(m.group(1)), int(m.group(2))


def suite_messages(conn):
    import datetime

    print("message: APPEND with flags and dates")
    m1 = suite_plain("Suite alpha", "suite-1", "Sat, 10 Jan 2026 10:00:00 +0000", "first body")
    m3 = suite_plain("Suite gamma", "suite-3", "Tue, 03 Mar 2026 10:00:00 +0000",
                     "large body\r\n" + ("0123456789abcdef" * 300))
    v1, u1 = appenduid(ok(conn.append(quote("Suite2"), "(\\Seen)", utc(2026, 1, 10), m1),
                          "APPEND m1"), "APPEND m1")
    v2, u2 = appenduid(ok(conn.append(quote("Suite2"), None, utc(2026, 2, 2), SUITE_MULTIPART),
                          "APPEND m2"), "APPEND m2")
    v3, u3 = appenduid(ok(conn.append(quote("Suite2"), "(\\Draft)", utc(2026, 3, 3), m3),
                          "APPEND m3"), "APPEND m3")
    check(v1 == v2 == v3, "one UIDVALIDITY for one mailbox")
    check(u1 < u2 < u3, f"APPEND UIDs grow: {u1} {u2} {u3}")
    data = ok(conn.status(quote("Suite2"), "(UIDVALIDITY MESSAGES UIDNEXT)"), "STATUS")
    check(re.search(rb"UIDVALIDITY %d\b" % v1, data[0]), f"STATUS {data!r} vs APPENDUID {v1}")
    uidnext = re.search(rb"UIDNEXT (\d+)", data[0])
    check(uidnext and int(uidnext.group(1)) > u3, f"UIDNEXT above the last APPENDUID: {data!r}")

    print("message: SELECT, FETCH items and sections")
    data = ok(conn.select(quote("Suite2")), "SELECT")
    check(data[0] == b"3", f"SELECT EXISTS {data!r}")
    _, perm = conn.response("PERMANENTFLAGS")
    check(perm and b"\\*" in perm[0], f"PERMANENTFLAGS allow keywords: {perm!r}")
    _, hms = conn.response("HIGHESTMODSEQ")
    check(hms and hms[0], "HIGHESTMODSEQ in a plain SELECT (Thunderbird looks for it)")

    data = ok(conn.fetch("1:3", "(UID FLAGS INTERNALDATE RFC822.SIZE)"), "FETCH 1:3")
    items = fetch_items(data)
    check(len(items) == 3, f"FETCH 1:3 gave {items!r}")
    want = {u1: (m1, utc(2026, 1, 10), {"\\Seen"}), u2: (SUITE_MULTIPART, utc(2026, 2, 2), set()),
            u3: (m3, utc(2026, 3, 3), {"\\Draft"})}
    for meta, _ in items:
        uid = int(re.search(rb"UID (\d+)", meta).group(1))
        raw, date, flags = want[uid]
        size = int(re.search(rb"RFC822\.SIZE (\d+)", meta).group(1))
        check(size == len(raw), f"RFC822.SIZE {size} != {len(raw)} for UID {uid}")
        text = re.search(rb'INTERNALDATE "([^"]+)"', meta).group(1).decode().strip()
        got = datetime.datetime.strptime(text, "%d-%b-%Y %H:%M:%S %z")
        check(got == date, f"INTERNALDATE {text} != {date} for UID {uid}")
        check(flags_in(meta) - {"\\Recent"} == flags, f"flags of {uid}: {meta!r}")

    sections = [
        ("BODY.PEEK[HEADER.FIELDS (Subject)]", b"Subject: Suite multipart beta\r\n\r\n"),
        ("BODY.PEEK[1.1]", b"plain part NEEDLEPLAIN"),
        ("BODY.PEEK[1.2]", b"<p>html part</p>"),
        ("BODY.PEEK[1.1.MIME]", b"Content-Type: text/plain; charset=utf-8\r\n\r\n"),
        ("BODY.PEEK[2]", b"AAECAwQ="),
        ("BODY.PEEK[TEXT]<0.7>", b"--outer"),
        ("BODY.PEEK[]<6.5>", b"Suite"),
        ("BODY.PEEK[]", SUITE_MULTIPART),
    ]
    for item, expected in sections:
        data = ok(conn.uid("FETCH", str(u2), f"({item})"), f"FETCH {item}")
        lits = [lit for _, l in fetch_items(data) for lit in l]
        check(lits == [expected], f"{item}: expected {expected!r}, got {data!r}")
    data = ok(conn.uid("FETCH", str(u2),
                       "(BODY.PEEK[HEADER.FIELDS.NOT (Subject Date Message-ID To MIME-Version "
                       "Content-Type)])"), "HEADER.FIELDS.NOT")
    lits = [lit for _, l in fetch_items(data) for lit in l]
    check(lits == [b"From: Suite Sender <sender@example.org>\r\n\r\n"], f"HEADER.FIELDS.NOT {data!r}")
    data = ok(conn.uid("FETCH", str(u2), "(ENVELOPE BODYSTRUCTURE)"), "ENVELOPE BODYSTRUCTURE")
    meta = b"".join(m for m, _ in fetch_items(data)).upper()
    for needle in (b'"SUITE MULTIPART BETA"', b'"<SUITE-MULTI@EXAMPLE.ORG>"', b'"ALTERNATIVE"',
                   b'"MIXED"', b'"TEXT" "PLAIN"', b'"APPLICATION" "OCTET-STREAM"'):
        check(needle in meta, f"{needle!r} not in ENVELOPE/BODYSTRUCTURE {data!r}")
    # BODY[...] without PEEK sets \Seen (RFC 3501 6.4.5).
    ok(conn.uid("FETCH", str(u2), "(BODY[1.1])"), "FETCH BODY[1.1]")
    data = ok(conn.uid("FETCH", str(u2), "(FLAGS)"), "FETCH FLAGS")
    check("\\Seen" in flags_in(fetch_items(data)[0][0]), f"BODY[] did not set \\Seen: {data!r}")
    ok(conn.uid("STORE", str(u2), "-FLAGS.SILENT", "(\\Seen)"), "STORE -FLAGS.SILENT")

    print("message: STORE +FLAGS -FLAGS FLAGS .SILENT with keywords")
    data = ok(conn.uid("STORE", str(u1), "+FLAGS", "($Forwarded $label1)"), "STORE +FLAGS")
    check(flags_in(fetch_items(data)[0][0]) >= {"\\Seen", "$Forwarded", "$label1"}, f"{data!r}")
    data = ok(conn.uid("STORE", str(u1), "-FLAGS", "($label1)"), "STORE -FLAGS")
    check(flags_in(fetch_items(data)[0][0]) - {"\\Recent"} == {"\\Seen", "$Forwarded"}, f"{data!r}")
    data = ok(conn.uid("STORE", str(u3), "FLAGS", "(\\Flagged $Junk)"), "STORE FLAGS")
    check(flags_in(fetch_items(data)[0][0]) - {"\\Recent"} == {"\\Flagged", "$Junk"}, f"{data!r}")
    data = ok(conn.uid("STORE", str(u2), "+FLAGS.SILENT", "(\\Answered $NotJunk)"), "STORE .SILENT")
    check(all(item is None for item in data), f".SILENT still answered FETCH: {data!r}")
    data = ok(conn.uid("FETCH", str(u2), "(FLAGS)"), "FETCH FLAGS")
    check(flags_in(fetch_items(data)[0][0]) - {"\\Recent"} == {"\\Answered", "$NotJunk"}, f"{data!r}")

    print("message: SEARCH keys")
    searches = [
        (("ALL",), [u1, u2, u3]),
        (("SEEN",), [u1]),
        (("UNSEEN",), [u2, u3]),
        (("FLAGGED",), [u3]),
        (("ANSWERED",), [u2]),
        (("KEYWORD", "$Forwarded"), [u1]),
        (("UNKEYWORD", "$Junk"), [u1, u2]),
        (("SUBJECT", '"alpha"'), [u1]),
        (("FROM", '"sender@example.org"'), [u1, u2, u3]),
        (("TO", '"alice"'), [u1, u2, u3]),
        (("HEADER", "Message-ID", '"<suite-multi@example.org>"'), [u2]),
        (("BODY", '"NEEDLEPLAIN"'), [u2]),
        (("BODY", '"first body"'), [u1]),
        (("TEXT", '"gamma"'), [u3]),
        (("TEXT", '"no such text anywhere"'), []),
        (("LARGER", "4000"), [u3]),
        (("SMALLER", "4000"), [u1, u2]),
        (("SINCE", "1-Feb-2026"), [u2, u3]),
        (("BEFORE", "1-Feb-2026"), [u1]),
        (("ON", "2-Feb-2026"), [u2]),
        (("SENTSINCE", "1-Mar-2026"), [u3]),
        (("SENTBEFORE", "1-Feb-2026"), [u1]),
        (("SENTON", "2-Feb-2026"), [u2]),
        (("OR", "SUBJECT", '"alpha"', "SUBJECT", '"gamma"'), [u1, u3]),
        (("NOT", "SUBJECT", '"alpha"'), [u2, u3]),
        (("UID", f"{u2}:*"), [u2, u3]),
        (("2:3",), [u2, u3]),
        (("1", "SEEN"), [u1]),
    ]
    for criteria, expected in searches:
        got = search_uids(conn, *criteria)
        check(got == expected, f"UID SEARCH {' '.join(criteria)}: expected {expected}, got {got}")
    data = ok(conn.search(None, "NOT", "SEEN"), "SEARCH")
    check(data[0].split() == [b"2", b"3"], f"SEARCH NOT SEEN gives sequence numbers: {data!r}")

    print("message: COPY, MOVE (UIDPLUS COPYUID)")
    conn.response("COPYUID")
    ok(conn.uid("COPY", str(u1), "INBOX"), "UID COPY")
    _, copyuid = conn.response("COPYUID")
    check(copyuid and copyuid[0] and re.match(rb"\d+ %d \d+" % u1, copyuid[0]), f"COPYUID {copyuid!r}")
    data = ok(conn.status("Archive", "(MESSAGES)"), "STATUS Archive")
    archived = int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))
    ok(conn.uid("MOVE", str(u3), "Archive"), "UID MOVE")
    _, copyuid = conn.response("COPYUID")
    check(copyuid and copyuid[0] and re.match(rb"\d+ %d \d+" % u3, copyuid[0]), f"MOVE COPYUID {copyuid!r}")
    _, expunged = conn.response("EXPUNGE")
    check(expunged == [b"3"], f"MOVE must expunge sequence 3: {expunged!r}")
    data = ok(conn.status("Archive", "(MESSAGES)"), "STATUS Archive")
    check(re.search(rb"MESSAGES %d\b" % (archived + 1), data[0]), f"Archive after MOVE: {data!r}")
    check(search_uids(conn, "ALL") == [u1, u2], "Suite2 after MOVE")

    print("message: EXPUNGE, UID EXPUNGE, CHECK, CLOSE, UNSELECT, EXAMINE")
    _, u4 = appenduid(ok(conn.append(quote("Suite2"), "(\\Deleted)", None,
                                     suite_plain("Suite four", "suite-4", "Wed, 04 Mar 2026 10:00:00 +0000", "4")),
                         "APPEND m4"), "APPEND m4")
    _, u5 = appenduid(ok(conn.append(quote("Suite2"), "(\\Deleted)", None,
                                     suite_plain("Suite five", "suite-5", "Thu, 05 Mar 2026 10:00:00 +0000", "5")),
                         "APPEND m5"), "APPEND m5")
    ok(conn.noop(), "NOOP")
    check(search_uids(conn, "ALL") == [u1, u2, u4, u5], "Suite2 after two APPENDs")
    conn.response("EXPUNGE")
    ok(conn.uid("EXPUNGE", str(u4)), "UID EXPUNGE")
    _, expunged = conn.response("EXPUNGE")
    check(expunged == [b"3"], f"UID EXPUNGE {u4} must expunge sequence 3: {expunged!r}")
    check(search_uids(conn, "ALL") == [u1, u2, u5], "UID EXPUNGE removes only the named UID (RFC 4315)")
    ok(conn.uid("STORE", str(u1), "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
    ok(conn.uid("STORE", str(u5), "-FLAGS.SILENT", "(\\Deleted)"), "STORE -\\Deleted")
    data = ok(conn.expunge(), "EXPUNGE")
    check(data == [b"1"], f"EXPUNGE reports sequence 1: {data!r}")
    check(search_uids(conn, "ALL") == [u2, u5], "after EXPUNGE")
    ok(conn.check(), "CHECK")
    ok(conn.uid("STORE", str(u5), "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
    ok(conn.unselect(), "UNSELECT")
    data = ok(conn.status(quote("Suite2"), "(MESSAGES)"), "STATUS")
    check(re.search(rb"MESSAGES 2\b", data[0]), f"UNSELECT must not expunge: {data!r}")
    ok(conn.select(quote("Suite2"), readonly=True), "EXAMINE")
    typ, data = conn.uid("STORE", str(u2), "+FLAGS", "(\\Flagged)")
    check(typ == "NO", f"STORE in an EXAMINEd mailbox: {typ} {data!r}")
    ok(conn.close(), "CLOSE after EXAMINE")
    data = ok(conn.status(quote("Suite2"), "(MESSAGES)"), "STATUS")
    check(re.search(rb"MESSAGES 2\b", data[0]), f"CLOSE of a read-only mailbox must not expunge: {data!r}")
    ok(conn.select(quote("Suite2")), "SELECT")
    ok(conn.close(), "CLOSE")
    data = ok(conn.status(quote("Suite2"), "(MESSAGES)"), "STATUS")
    check(re.search(rb"MESSAGES 1\b", data[0]), f"CLOSE expunges \\Deleted: {data!r}")

    print("mailbox: LIST-STATUS, then DELETE of a mailbox with messages")
    typ, dat = conn._simple_command("LIST", '""', '"Suite2"', "RETURN", "(STATUS (MESSAGES UIDNEXT))")
    check(typ == "OK", f"LIST ... RETURN (STATUS ...): {typ} {dat!r}")
    _, status = conn._untagged_response(typ, dat, "STATUS")
    check(status and status[0] and re.search(rb"MESSAGES 1\b", status[0]), f"LIST-STATUS: {status!r}")
    ok(conn.delete(quote("Suite2")), "DELETE Suite2")
    check("Suite2" not in list_names(conn, '""', '"*"'), "Suite2 deleted")


def cmd_imap_suite(host, port, user, password):
    suite_auth(host, port, user, password)
    conn = imap_login(host, port, user, password)
    suite_mailboxes(conn)
    suite_messages(conn)
    typ, _ = conn.logout()
    check(typ == "BYE", f"LOGOUT gave {typ}")
    print("imap-suite: all command groups OK")


def wait_for(conn, pattern, what, limit=1.0):
    """Reads responses until one matches `pattern`; fails after `limit` s."""
    start = time.monotonic()
    seen = []
    while True:
        remaining = limit - (time.monotonic() - start)
        try:
            line = conn.read_response(timeout=max(remaining, 0.001))
        except TimeoutError:
            fail(f"IDLE: no {what} within {limit} s; saw {seen!r}")
        seen.append(line)
        if re.search(pattern, line):
            elapsed = time.monotonic() - start
            print(f"IDLE: {what} after {elapsed * 1000:.0f} ms: {line.decode(errors='replace')}")
            return line


def cmd_idle_push(host, port, user, password):
    idler = raw_login(host, port, user, password)
    untagged, _ = idler.command('SELECT "INBOX"')
    exists = 0
    for line in untagged:
        m = re.match(rb"^\* (\d+) EXISTS", line)
        if m:
            exists = int(m.group(1))
    idle_tag = begin_idle(idler)

    other = imap_login(host, port, user, password)
    msg = suite_plain("Idle push", "idle-push", "Fri, 06 Mar 2026 10:00:00 +0000", "pushed")
    _, uid = appenduid(ok(other.append("INBOX", None, None, msg), "APPEND"), "APPEND")
    wait_for(idler, rb"^\* %d EXISTS" % (exists + 1), "EXISTS for the new message")

    ok(other.select("INBOX"), "SELECT")
    ok(other.uid("STORE", str(uid), "+FLAGS", "(\\Flagged)"), "STORE")
    wait_for(idler, rb"^\* %d FETCH .*\\Flagged" % (exists + 1), "FETCH with the new flag")

    ok(other.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)"), "STORE")
    ok(other.expunge(), "EXPUNGE")
    wait_for(idler, rb"^\* %d EXPUNGE" % (exists + 1), "EXPUNGE")
    other.logout()

    idler.send(b"DONE\r\n")
    while True:
        line = idler.read_response()
        if line.startswith(idle_tag.encode() + b" "):
            check(line.split()[1] == b"OK", f"IDLE completion {line!r}")
            break
    idler.command("LOGOUT")
    idler.close()
    print("idle-push: OK")


def cmd_qresync_record(host, port, user, password, mailbox):
    conn = raw_login(host, port, user, password)
    untagged, _ = conn.command("ENABLE QRESYNC")
    check(any(re.match(rb"^\* ENABLED .*QRESYNC", l, re.I) for l in untagged),
          f"ENABLE QRESYNC: {untagged!r}")
    untagged, _ = conn.command(f"SELECT {quote(mailbox)}")
    uidvalidity = code_value(untagged, "UIDVALIDITY")
    modseq = code_value(untagged, "HIGHESTMODSEQ")
    check(uidvalidity and modseq, f"SELECT lacks UIDVALIDITY/HIGHESTMODSEQ: {untagged!r}")
    # A client that just disconnects (no LOGOUT), as Thunderbird often does.
    conn.close()
    print(uidvalidity, modseq)


def cmd_qresync_check(host, port, user, password, mailbox, uidvalidity, modseq, changed, vanished):
    modseq = int(modseq)
    want_changed = set() if changed == "-" else parse_uid_set(changed)
    want_vanished = set() if vanished == "-" else parse_uid_set(vanished)
    conn = raw_login(host, port, user, password)
    conn.command("ENABLE QRESYNC")
    untagged, _ = conn.command(f"SELECT {quote(mailbox)} (QRESYNC ({uidvalidity} {modseq}))")
    got_changed, got_vanished, highest = check_resync_lines(untagged, modseq, "SELECT (QRESYNC)")
    check(got_changed == want_changed,
          f"SELECT (QRESYNC): FETCHes for {sorted(got_changed)}, expected exactly {sorted(want_changed)}")
    check(got_vanished == want_vanished,
          f"SELECT (QRESYNC): VANISHED (EARLIER) {sorted(got_vanished)}, expected {sorted(want_vanished)}")
    check(highest is not None and highest >= modseq, f"HIGHESTMODSEQ {highest} after {modseq}")
    print(f"SELECT (QRESYNC): {len(got_changed)} FETCH, VANISHED {sorted(got_vanished)}, "
          f"{len(untagged)} untagged lines")

    # The same answer from a CONDSTORE/QRESYNC FETCH (RFC 7162 3.1.4.1, 3.2.6).
    untagged, _ = conn.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    got_changed, got_vanished, _ = check_resync_lines(untagged, modseq, "UID FETCH (CHANGEDSINCE)")
    check(got_changed == want_changed,
          f"UID FETCH CHANGEDSINCE: {sorted(got_changed)}, expected {sorted(want_changed)}")
    check(got_vanished == want_vanished,
          f"UID FETCH VANISHED: {sorted(got_vanished)}, expected {sorted(want_vanished)}")
    # SEARCH MODSEQ: messages whose mod-sequence is at least the value.
    untagged, _ = conn.command(f"UID SEARCH MODSEQ {modseq + 1}")
    found = set()
    for line in untagged:
        m = re.match(rb"^\* SEARCH((?: \d+)*)", line)
        if m:
            found.update(int(x) for x in m.group(1).split())
    check(found == want_changed, f"UID SEARCH MODSEQ {modseq + 1}: {sorted(found)}")
    conn.command("LOGOUT")
    conn.close()
    print("qresync-check: OK")


def check_resync_lines(untagged, modseq, what):
    changed, vanished, highest = set(), set(), None
    for line in untagged:
        if re.match(rb"^\* \d+ EXPUNGE", line):
            fail(f"{what}: EXPUNGE after ENABLE QRESYNC (RFC 7162 3.2.10): {line!r}")
        m = re.match(rb"^\* VANISHED \(EARLIER\) ([0-9:,]+)", line)
        if m:
            vanished |= parse_uid_set(m.group(1).decode())
            continue
        check(not line.startswith(b"* VANISHED"), f"{what}: VANISHED without (EARLIER): {line!r}")
        parsed = parse_fetch(line)
        if parsed:
            _, uid, flags, mod, _ = parsed
            check(uid is not None and flags is not None and mod is not None,
                  f"{what}: FETCH without UID, FLAGS and MODSEQ: {line!r}")
            check(mod > modseq, f"{what}: MODSEQ {mod} not above {modseq}: {line!r}")
            changed.add(uid)
        value = code_value([line], "HIGHESTMODSEQ")
        if value is not None:
            highest = value
    return changed, vanished, highest


def cmd_sort_seed(host, port, user, password, mailbox, directory):
    import json

    conn = imap_login(host, port, user, password)
    ok(conn.create(quote(mailbox)), f"CREATE {mailbox}")
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".eml"):
            continue
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        with open(os.path.join(directory, name[:-4] + ".date")) as f:
            date = '"' + f.read().strip() + '"'
        ok(conn.append(quote(mailbox), None, date, data), f"APPEND {name}")
    ok(conn.select(quote(mailbox)), f"SELECT {mailbox}")
    with open(os.path.join(directory, "commands")) as f:
        commands = [json.loads(line) for line in f if line.strip()]
    for words in commands:
        for key in ("SORT", "THREAD", "SEARCH", "ESEARCH", "FETCH"):
            conn.untagged_responses.pop(key, None)
        try:
            typ, _ = conn._simple_command(*words)
        except conn.error as e:
            typ = "BAD" if "BAD" in str(e) else "ERROR"
        result = {"command": " ".join(words), "status": typ}
        for key in ("SORT", "THREAD", "SEARCH", "ESEARCH", "FETCH"):
            values = conn.untagged_responses.pop(key, None)
            if values is not None:
                texts = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]
                if key == "ESEARCH":
                    texts = [re.sub(r'^\(TAG "[^"]*"\) ?', "", t) for t in texts]
                result[key] = texts
        print(json.dumps(result))
    conn.logout()


def cmd_uid_sizes(host, port, user, password, mailbox):
    import json

    conn = imap_login(host, port, user, password)
    typ, data = conn.status(quote(mailbox), "(MESSAGES UIDNEXT UIDVALIDITY)")
    if typ != "OK":
        fail(f"STATUS failed: {typ} {data}")
    status = {
        key.lower(): int(re.search(key.encode() + rb" (\d+)", data[0]).group(1))
        for key in ("MESSAGES", "UIDNEXT", "UIDVALIDITY")
    }
    typ, data = conn.select(quote(mailbox), readonly=True)
    if typ != "OK":
        fail(f"SELECT {mailbox} failed: {typ} {data}")
    messages = []
    if status["messages"]:
        typ, data = conn.uid("FETCH", "1:*", "(UID RFC822.SIZE)")
        if typ != "OK":
            fail(f"UID FETCH failed: {typ} {data}")
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            uid = re.search(rb"UID (\d+)", line)
            size = re.search(rb"RFC822\.SIZE (\d+)", line)
            if uid and size:
                messages.append([int(uid.group(1)), int(size.group(1))])
    messages.sort()
    status["messages"] = messages
    conn.logout()
    print(json.dumps(status))


def cmd_status_size(host, port, user, password, mailbox):
    import json

    conn = imap_login(host, port, user, password)
    out = {"capability": "STATUS=SIZE" in conn.capabilities}
    typ, data = conn.status(quote(mailbox), "(SIZE MESSAGES)")
    if typ != "OK":
        fail(f"STATUS failed: {typ} {data}")
    out["size"] = int(re.search(rb"SIZE (\d+)", data[0]).group(1))
    out["messages"] = int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))
    typ, data = conn._simple_command("LIST", '""', quote(mailbox), "RETURN", "(STATUS (SIZE))")
    if typ != "OK":
        fail(f"LIST RETURN STATUS failed: {typ} {data}")
    typ, data = conn._untagged_response(typ, data, "STATUS")
    out["list_size"] = int(re.search(rb"SIZE (\d+)", data[0]).group(1))
    typ, data = conn.select(quote(mailbox), readonly=True)
    if typ != "OK":
        fail(f"SELECT {mailbox} failed: {typ} {data}")
    total = 0
    if out["messages"]:
        typ, data = conn.fetch("1:*", "(RFC822.SIZE)")
        if typ != "OK":
            fail(f"FETCH failed: {typ} {data}")
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            total += int(re.search(rb"RFC822\.SIZE (\d+)", line).group(1))
    out["sum"] = total
    conn.logout()
    print(json.dumps(out))


def cmd_binary(host, port, user, password, mailbox, hexfile):
    import json

    message = bytes.fromhex(open(hexfile).read().strip())
    raw = raw_login(host, port, user, password)
    _, tagged = raw.command(f"APPEND {quote(mailbox)}", literal8=message)
    uid = int(re.search(rb"APPENDUID \d+ (\d+)", tagged).group(1))
    raw.command("LOGOUT", expect="OK")
    conn = imap_login(host, port, user, password)
    out = {"capability": "BINARY" in conn.capabilities}
    typ, data = conn.select(quote(mailbox))
    if typ != "OK":
        fail(f"SELECT {mailbox} failed: {typ} {data}")

    def fetch(items):
        typ, data = conn.uid("FETCH", str(uid), items)
        return typ, data

    def flags():
        typ, data = fetch("(FLAGS)")
        return re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).decode()

    out["flags_before"] = flags()
    parts = {}
    for n in (1, 2, 3):
        typ, data = fetch(f"(BINARY.PEEK[{n}] BINARY.SIZE[{n}])")
        if typ != "OK":
            fail(f"FETCH BINARY[{n}] failed: {typ} {data}")
        head, body = data[0]
        size = int(re.search(rb"BINARY\.SIZE\[%d\] (\d+)" % n, head + data[1]).group(1))
        parts[str(n)] = {"hex": body.hex(), "size": size, "literal8": b"~{" in head}
    out["parts"] = parts
    out["flags_after_peek"] = flags()
    typ, data = fetch("(BINARY.PEEK[4])")
    out["unknown_cte"] = [typ, (data[0] or b"").decode(errors="replace")]
    typ, data = fetch("(BINARY.PEEK[9] BINARY.SIZE[9])")
    out["missing"] = [typ, repr(data)]
    typ, data = fetch("(BINARY[1])")
    out["flags_after_binary"] = flags()
    conn.logout()
    print(json.dumps(out))


def cmd_utf8_accept(host, port, user, password):
    import json

    first = "From: Jürgen <j@example.org>\r\nSubject: Grüße\r\n\r\nEin café au lait.\r\n"
    second = "From: Zoë <z@example.org>\r\nSubject: naïve\r\n\r\nUne idée naïve.\r\n"
    plain = imap_login(host, port, user, password)
    out = {"capability": "UTF8=ACCEPT" in plain.capabilities}
    ok(plain.create("Entw&APw-rfe"), "CREATE")
    out["list_before"] = [line.decode() for line in ok(plain.list(), "LIST")]

    conn = imap_login(host, port, user, password)
    typ, data = conn.enable("UTF8=ACCEPT")
    out["enable"] = [typ, [d.decode() for d in conn.untagged_responses.get("ENABLED", [])]]
    out["list_after"] = [line.decode("utf-8") for line in ok(conn.list(), "LIST")]
    typ, data = conn.status('"Entwürfe"', "(MESSAGES)")
    out["status"] = [typ, data[0].decode("utf-8")]
    typ, data = conn.append('"Entwürfe"', None, None, first.encode())
    out["append_imaplib"] = typ

    raw = raw_login(host, port, user, password)
    raw.command("ENABLE UTF8=ACCEPT")
    body = second.encode()
    raw.send(b'r1 APPEND "Entw\xc3\xbcrfe" UTF8 (~{%d+}\r\n' % len(body) + body + b")\r\n")
    while True:
        line = raw.read_response()
        if line.startswith(b"r1 "):
            out["append_utf8_data"] = line.decode()
            break
    raw.command("LOGOUT")

    ok(conn.select('"Entwürfe"'), "SELECT")
    out["search_body"] = ok(conn.uid("SEARCH", "TEXT", '"café"'), "SEARCH")[0].decode()
    out["search_subject"] = ok(conn.uid("SEARCH", "SUBJECT", '"naïve"'), "SEARCH")[0].decode()
    stored = []
    for item in ok(conn.uid("FETCH", "1:*", "(BODY.PEEK[])"), "FETCH"):
        if isinstance(item, tuple):
            stored.append(item[1].decode("utf-8"))
    out["stored"] = stored
    out["expected"] = [first, second]
    conn.logout()
    out["list_plain_again"] = [line.decode() for line in ok(plain.list(), "LIST")]
    plain.logout()
    print(json.dumps(out))


def drain(conn, code):
    """The untagged `code` responses imaplib collected, as ints, cleared."""
    _, data = conn.response(code)
    return [int(d) for d in data if d is not None]


def recent_flags(conn):
    """UIDs whose FETCH FLAGS hold \\Recent."""
    found = []
    for item in ok(conn.uid("FETCH", "1:*", "(FLAGS)"), "FETCH FLAGS"):
        line = item[0] if isinstance(item, tuple) else item
        if line and b"\\Recent" in line:
            found.append(int(re.search(rb"UID (\d+)", line).group(1)))
    return sorted(found)


def status_recent(conn, mailbox):
    """STATUS (RECENT) of `mailbox` as an int."""
    data = ok(conn.status(quote(mailbox), "(RECENT)"), "STATUS RECENT")
    return int(re.search(rb"RECENT (\d+)", data[0]).group(1))


def opened(host, port, user, password, mailbox, readonly=False):
    """A new session with `mailbox` selected (or examined): the connection,
    the RECENT responses of SELECT, and the UIDs FETCH FLAGS shows as
    \\Recent."""
    conn = imap_login(host, port, user, password)
    ok(conn.select(quote(mailbox), readonly=readonly), "EXAMINE" if readonly else "SELECT")
    return conn, drain(conn, "RECENT"), recent_flags(conn)


def cmd_recent(host, port, user, password, mailbox):
    import json

    out = {}
    other = imap_login(host, port, user, password)
    out["status_before"] = status_recent(other, mailbox)

    examine, out["examine"], out["examine_flags"] = opened(
        host, port, user, password, mailbox, readonly=True
    )
    out["examine_search"] = search_uids(examine, "RECENT")
    out["status_after_examine"] = status_recent(other, mailbox)

    first, out["first"], out["first_flags"] = opened(host, port, user, password, mailbox)
    out["first_new"] = search_uids(first, "NEW")
    ok(first.uid("STORE", "1", "+FLAGS", "(\\Seen)"), "STORE")
    out["first_new_after_seen"] = search_uids(first, "NEW")
    out["first_old"] = search_uids(first, "OLD")
    out["first_status"] = status_recent(first, mailbox)

    second, out["second"], out["second_flags"] = opened(host, port, user, password, mailbox)
    out["second_search"] = search_uids(second, "RECENT")
    out["second_old"] = search_uids(second, "OLD")
    out["status_after_selects"] = status_recent(other, mailbox)

    message = b"From: Carol <carol@example.org>\r\nSubject: late\r\n\r\nArrived later.\r\n"
    ok(other.append(quote(mailbox), None, None, message), "APPEND")
    for conn in (first, second):
        drain(conn, "EXISTS")
        drain(conn, "RECENT")
    # The second session is told first, so the new message is its alone.
    ok(second.noop(), "NOOP")
    out["second_noop"] = {"exists": drain(second, "EXISTS"), "recent": drain(second, "RECENT")}
    ok(first.noop(), "NOOP")
    out["first_noop"] = {"exists": drain(first, "EXISTS"), "recent": drain(first, "RECENT")}
    out["second_flags_after"] = recent_flags(second)
    out["first_flags_after"] = recent_flags(first)
    out["status_end"] = status_recent(other, mailbox)
    for conn in (examine, first, second, other):
        conn.logout()
    print(json.dumps(out))


COMMANDS = {
    "count": (cmd_count, 5),
    "fetch-all": (cmd_fetch_all, 6),
    "subjects": (cmd_subjects, 5),
    "login-fails": (cmd_login_fails, 4),
    "smtp-send": (cmd_smtp_send, 7),
    "smtp-expect": (cmd_smtp_expect, 8),
    "smtp-auth-fails": (cmd_smtp_auth_fails, 4),
    "raw": (cmd_raw, 3),
    "state": (cmd_state, 4),
    "append": (cmd_append, 7),
    "append-dir": (cmd_append_dir, 7),
    "imap-cmds": (cmd_imap_cmds, 5),
    "imap-suite": (cmd_imap_suite, 4),
    "idle-push": (cmd_idle_push, 4),
    "qresync-record": (cmd_qresync_record, 5),
    "qresync-check": (cmd_qresync_check, 9),
    "sort-seed": (cmd_sort_seed, 6),
    "uid-sizes": (cmd_uid_sizes, 5),
    "status-size": (cmd_status_size, 5),
    "binary": (cmd_binary, 6),
    "utf8-accept": (cmd_utf8_accept, 4),
    "recent": (cmd_recent, 5),
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
