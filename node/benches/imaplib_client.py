#!/usr/bin/env python3
"""The client side of the `imaplib_vs_dovecot` benchmark (issue 10).

Drives one IMAP server with Python's standard imaplib exactly as users'
scripts do (OfflineIMAP, IMAPClient, migration tools): default socket
options, so Nagle's algorithm stays on, and synchronizing literals (imaplib
knows no LITERAL+). Each run does one operation and prints one JSON line,
{"seconds": [...]}, the time of every timed repetition; the Rust harness
takes the median and puts both servers side by side.

usage: imaplib_client.py OP PORT USER PASSWORD [N] [REPEAT]
  append N          APPEND the N-message corpus one after another
  select REPEAT     SELECT INBOX, each time on a fresh logged-in connection
  fetch-meta REPEAT FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE)
  fetch-bodies REPEAT  100 x UID FETCH <uid> (BODY.PEEK[]), UIDs spread over
                    the mailbox
  search REPEAT     UID SEARCH TEXT zanzibar

Every read-only operation runs once untimed first (both servers get the
same warm-up), then REPEAT timed times.
"""

import imaplib
import json
import socket
import sys
import time

HOST = "127.0.0.1"


def corpus(n):
    """n deterministic messages of about 8 KiB; one in a hundred has the
    word "zanzibar" in its body, every third is multipart."""
    out = []
    for i in range(n):
        word = "zanzibar" if i % 100 == 7 else "ordinary"
        lines = 100 + (i * 7919) % 30
        body = "".join(
            f"Line {l} of message {i}: an {word} text about things, nothing more.\r\n"
            for l in range(lines)
        )
        head = (
            f"From: Sender {i % 50} <sender{i % 50}@example.org>\r\n"
            f"To: tester@example.org\r\nSubject: Message number {i}\r\n"
            f"Date: Tue, 24 Nov 2026 10:{i % 60:02}:00 +0000\r\n"
            f"Message-ID: <m{i}@example.org>\r\n"
        )
        if i % 3 == 0:
            half = body[: len(body) // 2]
            msg = (
                head + "MIME-Version: 1.0\r\n"
                f'Content-Type: multipart/alternative; boundary="b{i}"\r\n\r\n'
                f"--b{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{half}\r\n"
                f"--b{i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{half}</p>\r\n"
                f"--b{i}--\r\n"
            )
        else:
            msg = head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
        out.append(msg.encode())
    return out


def connect(port, user, password):
    conn = imaplib.IMAP4(HOST, port)
    # The point of this client: the socket options a user's script has.
    nodelay = conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert nodelay == 0, "the client must keep Nagle's algorithm on"
    conn.login(user, password)
    return conn


def check(result):
    typ, data = result
    if typ != "OK":
        raise SystemExit(f"server answered {typ}: {data!r}")
    return data


def timed(repeat, action):
    action()  # warm-up, not timed
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def main():
    op, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    arg = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    if op == "append":
        messages = corpus(arg)
        conn = connect(port, user, password)
        start = time.perf_counter()
        for message in messages:
            check(conn.append("INBOX", None, None, message))
        times = [time.perf_counter() - start]
        conn.logout()
    elif op == "select":

        def select():
            conn = connect(port, user, password)
            start = time.perf_counter()
            check(conn.select("INBOX"))
            elapsed = time.perf_counter() - start
            conn.logout()
            return elapsed

        select()
        times = [select() for _ in range(arg)]
    else:
        conn = connect(port, user, password)
        check(conn.select("INBOX"))
        if op == "fetch-meta":
            items = "(UID FLAGS ENVELOPE RFC822.SIZE)"
            times = timed(arg, lambda: check(conn.fetch("1:*", items)))
        elif op == "fetch-bodies":
            uids = check(conn.uid("SEARCH", "ALL"))[0].split()
            picked = [uids[j * len(uids) // 100] for j in range(100)]

            def bodies():
                for uid in picked:
                    check(conn.uid("FETCH", uid, "(BODY.PEEK[])"))

            times = timed(arg, bodies)
        elif op == "search":
            found = check(conn.uid("SEARCH", "TEXT", "zanzibar"))[0].split()
            assert found, "the corpus has messages with the word"
            times = timed(arg, lambda: check(conn.uid("SEARCH", "TEXT", "zanzibar")))
        else:
            raise SystemExit(f"unknown operation {op}")
        conn.logout()
    print(json.dumps({"seconds": times}))


if __name__ == "__main__":
    main()
