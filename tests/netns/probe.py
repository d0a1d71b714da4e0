#!/usr/bin/env python3
"""Plain-socket probes for the network-namespace harness (tests/netns).

Run inside a namespace with `ip netns exec NS python3 probe.py ...`. Servers
print `ready` once they listen and then answer every client with the address
they saw it come from, `IP:PORT`, so a test can see what a NAT did.

Subcommands:
  tcp-server PORT                    accept forever; send "IP:PORT\\n" of each client, close
  udp-server PORT                    answer every datagram with "IP:PORT" of its sender
  tcp-client HOST PORT [SRCPORT]     connect (PROBE_TIMEOUT seconds, default 5), print the server's line;
                                     exit 1 if the connection fails
  udp-client SRCPORT HOST:PORT...    from ONE socket bound to SRCPORT, send a datagram to
                                     each HOST:PORT and print "HOST:PORT SEEN RTT_MS" per answer;
                                     exit 1 if one does not answer within PROBE_TIMEOUT s
"""

import os
import socket
import sys
import time

# Seconds a client waits; tests that expect nothing to get through lower it.
TIMEOUT = float(os.environ.get("PROBE_TIMEOUT", "5"))


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def ready():
    print("ready", flush=True)


def tcp_server(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", int(port)))
    srv.listen(16)
    ready()
    while True:
        conn, addr = srv.accept()
        try:
            conn.sendall(f"{addr[0]}:{addr[1]}\n".encode())
        finally:
            conn.close()


def udp_server(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("0.0.0.0", int(port)))
    ready()
    while True:
        _, addr = srv.recvfrom(2048)
        srv.sendto(f"{addr[0]}:{addr[1]}".encode(), addr)


def tcp_client(host, port, srcport=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    if srcport is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", int(srcport)))
    try:
        sock.connect((host, int(port)))
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(256)
            if not chunk:
                break
            data += chunk
    except OSError as err:
        fail(f"tcp connect to {host}:{port} failed: {err}")
    print(data.decode().strip())


def udp_client(srcport, *targets):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", int(srcport)))
    sock.settimeout(TIMEOUT)
    for target in targets:
        host, port = target.rsplit(":", 1)
        started = time.monotonic()
        sock.sendto(b"probe", (host, int(port)))
        try:
            data, _ = sock.recvfrom(2048)
        except OSError as err:
            fail(f"no UDP answer from {target}: {err}")
        rtt_ms = (time.monotonic() - started) * 1000.0
        print(f"{target} {data.decode()} {rtt_ms:.1f}")


COMMANDS = {
    "tcp-server": tcp_server,
    "udp-server": udp_server,
    "tcp-client": tcp_client,
    "udp-client": udp_client,
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        fail(__doc__)
    try:
        COMMANDS[sys.argv[1]](*sys.argv[2:])
    except TypeError as err:
        fail(f"{sys.argv[1]}: {err}\n{__doc__}")


if __name__ == "__main__":
    main()
