"""Issue 8, device sync: an IMAP session IDLE on one device sees a change
made through IMAP on the other device.

usage: idle_sync.py HOST PORT1 PASS1 PORT2 PASS2 USER UID1

Selects INBOX on device 2 and IDLEs; sets \\Flagged on UID1 (of device 1's
INBOX, a message without it) through device 1; waits (10 s at most) for
device 2's untagged FETCH with \\Flagged. Prints the elapsed time.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mailtool import begin_idle, fail, imap_login, ok, raw_login, wait_for  # noqa: E402


def main():
    if len(sys.argv) != 8:
        fail(__doc__)
    host, port1, pass1, port2, pass2, user, uid1 = sys.argv[1:]
    idler = raw_login(host, port2, user, pass2)
    idler.command('SELECT "INBOX"')
    begin_idle(idler)

    other = imap_login(host, port1, user, pass1)
    ok(other.select("INBOX"), "SELECT")
    ok(other.uid("STORE", uid1, "+FLAGS", "(\\Flagged)"), "STORE")
    other.logout()
    wait_for(idler, rb"^\* \d+ FETCH .*\\Flagged", "FETCH with the sibling's flag", limit=10.0)
    # Seen: the session may just go (a client closing its laptop lid).
    idler.close()
    print("idle-sync: OK")


if __name__ == "__main__":
    main()
