#!/usr/bin/env python3
"""Issue 7: several IMAP sessions on one mailbox while mail arrives and
sessions expunge. Every session keeps its own model of the mailbox (the UID
of each sequence number), changed only by what the server tells it
(EXISTS, EXPUNGE, FETCH), the way a client must (RFC 3501 §7.4.1). Every
FETCH must agree with that model, no EXPUNGE may come during a FETCH, STORE
or SEARCH by sequence number, and at the end every session's model must be
what a fresh SELECT shows.

    sessions.py expunge-sessions HOST PORT USER PASS WAIT_COUNT

The run goes on (in rounds) until WAIT_COUNT messages besides its own
APPENDs have arrived in INBOX (mail a peer delivers meanwhile; counted by
UIDNEXT, since the sessions expunge some of them), then checks. Prints one line of counts and exits 0,
or prints what went wrong and exits 1.

Standard library only (imaplib, default socket options).
"""

import imaplib
import re
import sys
import time

imaplib.Commands.setdefault("MOVE", ("SELECTED",))

UNTAGGED = re.compile(rb"^\* (\d+) (EXISTS|EXPUNGE|FETCH|RECENT)\b(.*)$")
UID_ITEM = re.compile(rb"\bUID (\d+)\b")


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


class Session:
    """An imaplib session with the client's model of the selected mailbox."""

    def __init__(self, name, host, port, user, password):
        self.name = name
        self.conn = imaplib.IMAP4(host, int(port))
        self.lines = []
        read_line = self.conn._get_line

        def logged():
            line = read_line()
            if line.startswith(b"* "):
                self.lines.append(line)
            return line

        self.conn._get_line = logged
        ok(self.conn.login(user, password), f"{name} LOGIN")
        self.model = []
        self.expunges = 0

    def run(self, what, call, expunges_allowed=True):
        """Runs one imaplib call, then applies its untagged responses to the
        model in the order they came."""
        self.lines.clear()
        result = call()
        ok(result, f"{self.name} {what}")
        for line in self.lines:
            self.apply(line, what, expunges_allowed)
        return result

    def apply(self, line, what, expunges_allowed):
        m = UNTAGGED.match(line.rstrip(b"\r\n"))
        if not m:
            return
        number, kind, rest = int(m.group(1)), m.group(2), m.group(3)
        if kind == b"EXISTS":
            if number < len(self.model):
                fail(f"{self.name} {what}: EXISTS {number} below the {len(self.model)} it knows")
            self.model.extend([None] * (number - len(self.model)))
        elif kind == b"EXPUNGE":
            if not expunges_allowed:
                fail(f"{self.name} {what}: EXPUNGE during a command with sequence numbers")
            if not 1 <= number <= len(self.model):
                fail(f"{self.name} {what}: EXPUNGE {number} of {len(self.model)}")
            del self.model[number - 1]
            self.expunges += 1
        elif kind == b"FETCH":
            if not 1 <= number <= len(self.model):
                fail(f"{self.name} {what}: FETCH for {number} of {len(self.model)}: {line!r}")
            uid = UID_ITEM.search(rest)
            if uid:
                uid = int(uid.group(1))
                known = self.model[number - 1]
                if known is None:
                    self.model[number - 1] = uid
                elif known != uid:
                    fail(
                        f"{self.name} {what}: message {number} is UID {uid}, "
                        f"but the client knows it as UID {known}"
                    )

    def select(self):
        self.model = []
        self.run("SELECT", lambda: self.conn.select("INBOX"))
        self.sync_uids()

    def sync_uids(self):
        """`UID FETCH 1:* (UID)`: expunges may come; learns every UID."""
        self.run("UID FETCH", lambda: self.conn.uid("FETCH", "1:*", "(UID)"))
        # Mail that arrives while the command runs is announced (EXISTS)
        # after its FETCH data: learn those UIDs too.
        for _ in range(50):
            if None not in self.model:
                return
            first = self.model.index(None) + 1
            self.run(
                "FETCH n:*",
                lambda: self.conn.fetch(f"{first}:*", "(UID)"),
                expunges_allowed=False,
            )
        fail(f"{self.name}: UIDs still unknown after FETCH: {self.model}")

    def live_seqs(self, count):
        """Some sequence numbers spread over the model."""
        n = len(self.model)
        if n == 0:
            return []
        return sorted({1 + (i * 7919) % n for i in range(count)})

    def close(self):
        try:
            self.conn.logout()
        except Exception:
            pass


def ok(result, what):
    typ, data = result
    if typ != "OK":
        fail(f"{what}: {typ} {data}")


def uids_of_fresh(host, port, user, password):
    fresh = Session("fresh", host, port, user, password)
    fresh.select()
    model = list(fresh.model)
    fresh.close()
    return model


def uid_next(conn):
    typ, data = conn.status("INBOX", "(UIDNEXT)")
    if typ != "OK":
        fail(f"STATUS: {typ} {data}")
    return int(re.search(rb"UIDNEXT (\d+)", data[0]).group(1))


def message(i):
    return (
        f"From: Dana <dana@example.org>\r\nTo: me@example.org\r\n"
        f"Subject: local append {i}\r\nMessage-ID: <local-{i}@example.org>\r\n\r\n"
        f"appended while the others look {i}\r\n"
    ).encode()


def cmd_expunge_sessions(host, port, user, password, wait_count):
    wait_count = int(wait_count)
    a = Session("A", host, port, user, password)
    b = Session("B", host, port, user, password)
    c = Session("C", host, port, user, password)
    appender = imaplib.IMAP4(host, int(port))
    ok(appender.login(user, password), "appender LOGIN")
    ok(appender.select("INBOX", readonly=True), "appender EXAMINE")
    for s in (a, b, c):
        s.select()
    start_uid_next = uid_next(appender)
    rounds = 0
    appended = 0
    deadline = time.monotonic() + 120
    while True:
        rounds += 1
        # A: STORE by sequence number (no expunge may come), then EXPUNGE.
        if len(a.model) > 12 and None not in a.model:
            seqs = a.live_seqs(2)
            targets = [a.model[s - 1] for s in seqs]
            a.run(
                "STORE",
                lambda: a.conn.store(",".join(map(str, seqs)), "+FLAGS", "(\\Deleted)"),
                expunges_allowed=False,
            )
            a.run("EXPUNGE", lambda: a.conn.expunge())
            left = set(targets) & set(a.model)
            if left:
                fail(f"A: UIDs {sorted(left)} flagged by their numbers were not expunged")
        # Mail arrives from a fourth connection too.
        ok(appender.append("INBOX", None, None, message(appended)), "APPEND")
        appended += 1
        # B: FETCH and SEARCH by sequence number keep B's numbering.
        b.run(
            "FETCH 1:*",
            lambda: b.conn.fetch("1:*", "(UID FLAGS)"),
            expunges_allowed=False,
        )
        b.run("SEARCH", lambda: b.conn.search(None, "ALL"), expunges_allowed=False)
        # C: UID EXPUNGE of one message, then MOVE by sequence number.
        c.sync_uids()
        if len(c.model) > 12:
            uid = c.model[len(c.model) // 3]
            c.run(
                "UID STORE",
                lambda: c.conn.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)"),
            )
            c.run("UID EXPUNGE", lambda: c.conn.uid("EXPUNGE", str(uid)))
            if uid in c.model:
                fail(f"C: UID {uid} still there after its UID EXPUNGE")
        if len(c.model) > 12 and c.model[0] is not None:
            moved = c.model[0]
            c.run("MOVE", lambda: c.conn._simple_command("MOVE", "1", "Trash"))
            if moved in c.model:
                fail(f"C: UID {moved} still there after MOVE")
        # B hears of everything now; A learns UIDs (expunges allowed).
        b.run("NOOP", lambda: b.conn.noop())
        a.sync_uids()
        # Deliveries may be expunged by A and C like any mail: count them
        # by the UIDs INBOX handed out.
        delivered = uid_next(appender) - start_uid_next - appended
        if delivered >= wait_count and rounds >= 5:
            break
        if time.monotonic() > deadline:
            fail(f"only {delivered} of {wait_count} deliveries arrived")
        time.sleep(0.05)
    # Everyone catches up and must agree with a fresh SELECT.
    for s in (a, b, c):
        s.run("NOOP", lambda: s.conn.noop())
        s.sync_uids()
    truth = uids_of_fresh(host, port, user, password)
    for s in (a, b, c):
        if s.model != truth:
            fail(f"{s.name} sees {s.model}, a fresh SELECT {truth}")
    print(
        f"rounds={rounds} messages={len(truth)} appended={appended} "
        f"expunges_seen=A:{a.expunges},B:{b.expunges},C:{c.expunges}"
    )
    for s in (a, b, c):
        s.close()
    appender.logout()


COMMANDS = {"expunge-sessions": cmd_expunge_sessions}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        fail(f"usage: sessions.py {{{','.join(COMMANDS)}}} ...")
    COMMANDS[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
