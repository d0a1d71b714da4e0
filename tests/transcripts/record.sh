#!/bin/sh
# Records a real Thunderbird session against a fresh mailnode for
# tests/replay.rs:
#
#   tests/transcripts/record.sh NAME [tb-sync options...]
#   tests/transcripts/record.sh thunderbird-153-default --restart
#   tests/transcripts/record.sh thunderbird-153-condstore --restart --condstore
#
# Creates a node (user tester@example.org) in a temporary home, starts it on
# free loopback ports, APPENDs seed/*.eml to INBOX (UIDs 1..6), runs
# tb-sync.sh (TB_SYNC, default ../shared/tools/thunderbird/tb-sync.sh), and
# writes NAME.txt here with the bridge password and the AUTHENTICATE PLAIN
# response replaced by placeholders. The full tb-sync output stays in
# $OUT (default /tmp/mailnode-record-NAME).
#
# MAILNODE_BIN selects the binary (default target/debug/mailnode). SETUP
# holds IMAP commands (separated by ';', e.g. "UNSUBSCRIBE Trash") run after
# seeding; they are written into the transcript as `# setup:` lines, which
# tests/replay.rs runs too.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
name=$1
shift
bin=${MAILNODE_BIN:-$repo/target/debug/mailnode}
tb_sync=${TB_SYNC:-$repo/../shared/tools/thunderbird/tb-sync.sh}
out=${OUT:-/tmp/mailnode-record-$name}
user=tester@example.org
home=$(mktemp -d /tmp/mailnode-record-home.XXXXXX)
export MAILNODE_PASSPHRASE="recording passphrase"
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$home"
}
trap cleanup EXIT INT TERM

"$bin" --home "$home" keygen --name Tester --email "$user" --secret-store passphrase >/dev/null
"$bin" --home "$home" run --listen /ip4/127.0.0.1/tcp/0 --imap 127.0.0.1:0 --smtp 127.0.0.1:0 \
    >"$home/daemon.log" 2>&1 &
pid=$!
port=
for _ in $(seq 300); do
    if [ -s "$home/run.json" ]; then
        port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["imap"].rsplit(":",1)[1])' "$home/run.json")
        break
    fi
    sleep 0.1
done
[ -n "$port" ] || { echo "the node did not start; see $home/daemon.log" >&2; exit 1; }
password=$("$bin" --home "$home" bridge | sed -n 's/^password: //p')

setup=${SETUP:-}
python3 - "$port" "$user" "$password" "$here/seed" "$setup" <<'EOF'
import imaplib, os, sys
port, user, password, seed, setup = sys.argv[1:6]
imap = imaplib.IMAP4("127.0.0.1", int(port))
imap.login(user, password)
for name in sorted(n for n in os.listdir(seed) if n.endswith(".eml")):
    with open(os.path.join(seed, name), "rb") as f:
        typ, data = imap.append("INBOX", None, None, f.read())
    assert typ == "OK", data
for number, command in enumerate(c.strip() for c in setup.split(";") if c.strip()):
    tag = b"setup%d" % number
    imap.send(tag + b" " + command.encode() + b"\r\n")
    while True:
        line = imap.readline()
        if line.startswith(tag + b" "):
            assert line.split()[1] == b"OK", line
            break
imap.logout()
EOF

rm -rf "$out"
status=0
"$tb_sync" 127.0.0.1 "$port" "$user" "$password" "$out" "$@" || status=$?
auth=$(python3 -c 'import base64,sys; print(base64.b64encode(b"\0"+sys.argv[1].encode()+b"\0"+sys.argv[2].encode()).decode())' "$user" "$password")
python3 - "$out/transcript.txt" "$here/$name.txt" "$password" "$auth" "$setup" <<'EOF'
import sys
source, target, password, auth, setup = sys.argv[1:6]
text = open(source, encoding="utf-8").read()
text = text.replace(auth, "<AUTH-PLAIN-RESPONSE>").replace(password, "<BRIDGE-PASSWORD>")
head, _, rest = text.partition("\n")
lines = [head] + ["# setup: " + c.strip() for c in setup.split(";") if c.strip()]
open(target, "w", encoding="utf-8").write("\n".join(lines) + "\n" + rest)
EOF
echo "tb-sync exit status $status; transcript in $here/$name.txt, full output in $out"
exit "$status"
