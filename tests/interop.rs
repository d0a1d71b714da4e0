//! Issue 6, "what it must show": an independent libp2p implementation dials
//! a node. js-libp2p (Node.js, from the npm registry, `tests/js/`) dials a
//! real `mailnode run` over TCP (Noise, Yamux) and over QUIC v1, waits for
//! Identify and pings it; these tests assert on what it reports: the
//! protocols the node offers (`/mailnode/deliver/1`, `/ipfs/ping/1.0.0`;
//! on a public node also `/mailnode/kad/1`, the AutoNAT v2 server and
//! `/mailnode/mailbox/1`), its agent and protocol versions, and three
//! answered pings. The node, in turn, must have identified the js-libp2p
//! peer. The design and versions are in `docs/testing-interop.md`.
//!
//! `node` and the npm packages are test dependencies like Python or mbsync:
//! where they are missing these tests fail and say to run
//! `scripts/install-test-deps` (CI runs it), rather than skip.
//!
//! Everything stays on 127.0.0.1 and mDNS is off (the harness passes
//! `--no-mdns`); the dialer listens on nothing.

mod common;

use std::io::Read;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Node, tests_dir, value_of, wait_until};

/// How long the dialer may take in all (it gives up by itself after 30 s;
/// this covers Node.js start-up on a loaded machine on top).
const DIALER_DEADLINE: Duration = Duration::from_secs(60);

/// The oldest Node.js major version the pinned js-libp2p packages run on.
const MIN_NODE_MAJOR: u32 = 20;

/// Pings the dialer sends.
const PINGS: usize = 3;

const INSTALL_HINT: &str = "run scripts/install-test-deps (it installs Node.js and, in tests/js, \
                            the js-libp2p packages of tests/js/package-lock.json)";

/// What `tests/js/dial.mjs` prints: its own PeerId and the remote's
/// Identify answer, the connection's details and the ping times.
#[derive(Debug)]
struct Dialed {
    local_peer_id: String,
    peer_id: String,
    remote_addr: String,
    encryption: String,
    multiplexer: String,
    agent_version: String,
    protocol_version: String,
    protocols: Vec<String>,
    listen_addrs: Vec<String>,
    pings_ms: Vec<f64>,
    connect_ms: f64,
}

impl Dialed {
    fn parse(stdout: &str) -> Dialed {
        let json: serde_json::Value = serde_json::from_str(stdout)
            .unwrap_or_else(|err| panic!("dial.mjs did not print JSON ({err}):\n{stdout}"));
        let text = |key: &str| json[key].as_str().unwrap_or_default().to_string();
        let list = |key: &str| -> Vec<String> {
            json[key]
                .as_array()
                .unwrap_or_else(|| panic!("dial.mjs printed no {key} list:\n{stdout}"))
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        Dialed {
            local_peer_id: text("local_peer_id"),
            peer_id: text("peer_id"),
            remote_addr: text("remote_addr"),
            encryption: text("encryption"),
            multiplexer: text("multiplexer"),
            agent_version: text("agent_version"),
            protocol_version: text("protocol_version"),
            protocols: list("protocols"),
            listen_addrs: list("listen_addrs"),
            pings_ms: json["pings_ms"]
                .as_array()
                .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
                .unwrap_or_default(),
            connect_ms: json["connect_ms"].as_f64().unwrap_or(f64::NAN),
        }
    }

    fn offers(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p == protocol)
    }
}

/// The directory of the js-libp2p dialer.
fn js_dir() -> PathBuf {
    tests_dir().join("js")
}

/// Fails (does not skip) when Node.js or the npm packages are missing.
fn require_js_dialer() {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            // `v20.20.2`: js-libp2p 2.x and its QUIC transport need 20.
            let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let major = version
                .strip_prefix('v')
                .and_then(|v| v.split('.').next())
                .and_then(|m| m.parse::<u32>().ok());
            assert!(
                major.is_some_and(|m| m >= MIN_NODE_MAJOR),
                "Node.js {version} is too old: the js-libp2p dialer needs Node.js \
                 {MIN_NODE_MAJOR} or later (see docs/testing-interop.md)"
            );
        }
        Ok(out) => panic!(
            "`node --version` failed ({}); {INSTALL_HINT}",
            common::describe(&out)
        ),
        Err(err) => panic!("cannot run `node` ({err}); {INSTALL_HINT}"),
    }
    // npm writes this copy of the lock file last, once every package is in.
    let installed = js_dir().join("node_modules/.package-lock.json");
    assert!(
        installed.is_file(),
        "the js-libp2p packages are not installed ({} is missing); {INSTALL_HINT}",
        installed.display()
    );
}

/// How a run of the dialer ended.
struct DialerRun {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `node tests/js/dial.mjs ADDR PINGS` to completion within
/// [`DIALER_DEADLINE`] (killing it past that).
fn run_dialer(addr: &str) -> DialerRun {
    require_js_dialer();
    let mut child = Command::new("node")
        .arg(js_dir().join("dial.mjs"))
        .arg(addr)
        .arg(PINGS.to_string())
        .env("DIAL_TIMEOUT_MS", "30000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start node ({err}); {INSTALL_HINT}"));
    // Drained on their own threads so that a chatty dialer cannot block on
    // a full pipe while we wait for it to exit.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + DIALER_DEADLINE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "dial.mjs {addr} did not finish within {DIALER_DEADLINE:?}; stderr:\n{}",
                    stderr.join().unwrap_or_default()
                );
            }
            Err(err) => panic!("cannot wait for dial.mjs: {err}"),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if stderr.contains("ERR_MODULE_NOT_FOUND") {
        panic!("dial.mjs cannot load js-libp2p; {INSTALL_HINT}\n--- stderr\n{stderr}");
    }
    DialerRun {
        status,
        stdout,
        stderr,
    }
}

/// Dials `node` at `addr` with js-libp2p and parses what it learnt; any
/// failure of the dialer fails the test with its output and the node's log.
fn dial(node: &Node, addr: &str) -> Dialed {
    let DialerRun {
        status,
        stdout,
        stderr,
    } = run_dialer(addr);
    assert!(
        status.success(),
        "js-libp2p could not dial, identify and ping {addr} ({status})\n--- stdout\n{stdout}\n\
         --- stderr\n{stderr}\n--- {}'s log\n{}",
        node.name,
        node.log()
    );
    let dialed = Dialed::parse(&stdout);
    eprintln!(
        "js-libp2p -> {addr}: connected in {} ms over {} + {}, ping RTTs {:?} ms, \
         agent {:?}, protocols {:?}",
        dialed.connect_ms,
        dialed.encryption,
        dialed.multiplexer,
        dialed.pings_ms,
        dialed.agent_version,
        dialed.protocols
    );
    dialed
}

/// The PeerId `mailnode status` prints.
fn peer_id(node: &Node) -> String {
    value_of(&node.cli_ok(&["status"]), "peer-id").expect("status prints the peer-id")
}

/// A free UDP port on 127.0.0.1 for a QUIC listener.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("no free UDP port")
}

/// What every mailnode must show any libp2p peer.
fn assert_mailnode_identify(dialed: &Dialed, node: &Node, expected_peer: &str) {
    assert_eq!(dialed.peer_id, expected_peer, "identified the wrong peer");
    for protocol in ["/mailnode/deliver/1", "/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"] {
        assert!(
            dialed.offers(protocol),
            "{}'s Identify does not list {protocol}: {:?}",
            node.name,
            dialed.protocols
        );
    }
    assert!(
        dialed.agent_version.starts_with("mailnode/"),
        "agent version {:?} does not start with mailnode/",
        dialed.agent_version
    );
    assert_eq!(dialed.protocol_version, "/mailnode/id/1");
    assert!(
        dialed
            .listen_addrs
            .iter()
            .any(|a| a.starts_with("/ip4/127.0.0.1/")),
        "{} announces none of its loopback listen addresses: {:?}",
        node.name,
        dialed.listen_addrs
    );
    assert_eq!(
        dialed.pings_ms.len(),
        PINGS,
        "expected {PINGS} answered pings, got {:?}",
        dialed.pings_ms
    );
    assert!(
        dialed
            .pings_ms
            .iter()
            .all(|rtt| (0.0..5000.0).contains(rtt)),
        "implausible ping RTTs on loopback: {:?}",
        dialed.pings_ms
    );
    // The other direction: rust-libp2p parsed js-libp2p's Identify answer.
    wait_until(
        Duration::from_secs(20),
        &format!("{} to identify the js-libp2p peer", node.name),
        || {
            node.log().lines().any(|line| {
                line.contains("identified a peer")
                    && line.contains(&dialed.local_peer_id)
                    && line.contains("js-libp2p/")
            })
        },
    );
}

#[test]
fn js_libp2p_identifies_and_pings_a_node_over_tcp_with_noise_and_yamux() {
    require_js_dialer();
    let mut node = Node::create("tcpnode");
    node.start();
    let peer = peer_id(&node);
    let dialed = dial(&node, &format!("{}/p2p/{peer}", node.p2p_addr()));
    assert_mailnode_identify(&dialed, &node, &peer);
    assert_eq!(
        dialed.remote_addr,
        format!("{}/p2p/{peer}", node.p2p_addr())
    );
    assert_eq!(dialed.encryption, "/noise");
    assert_eq!(dialed.multiplexer, "/yamux/1.0.0");
    // The PeerId the Noise handshake proved is the node's own: a dialer
    // that expects another PeerId at this address is refused (dial.mjs
    // checks this itself, js-libp2p 2.x does not), so the assertions above
    // cannot have been about some other process on that port.
    let impostor = format!("{}/p2p/{}", node.p2p_addr(), dialed.local_peer_id);
    let refused = run_dialer(&impostor);
    assert!(
        !refused.status.success()
            && refused.stdout.trim().is_empty()
            && refused
                .stderr
                .contains(&format!("is {peer}, not the expected")),
        "js-libp2p did not refuse {peer} posing as {impostor}:\n--- stdout\n{}\n--- stderr\n{}",
        refused.stdout,
        refused.stderr
    );
    // A stranger's dials and hang-ups leave the node running and well.
    let status = node.cli_ok(&["status"]);
    assert!(
        status.contains("daemon: running"),
        "the node stopped after the js-libp2p dial:\n{status}\nlog:\n{}",
        node.log()
    );
}

#[test]
fn js_libp2p_identifies_and_pings_a_node_over_quic() {
    require_js_dialer();
    let mut node = Node::create("quicnode");
    let quic = format!("/ip4/127.0.0.1/udp/{}/quic-v1", free_udp_port());
    node.extra_run_args
        .extend(["--listen".to_string(), quic.clone()]);
    node.start();
    let peer = peer_id(&node);
    let dialed = dial(&node, &format!("{quic}/p2p/{peer}"));
    assert_mailnode_identify(&dialed, &node, &peer);
    assert_eq!(dialed.remote_addr, format!("{quic}/p2p/{peer}"));
    assert!(
        dialed.listen_addrs.contains(&quic),
        "the node does not announce its QUIC address {quic}: {:?}",
        dialed.listen_addrs
    );
}

#[test]
fn js_libp2p_sees_kademlia_and_autonat_on_a_public_node() {
    require_js_dialer();
    let mut node = Node::create("publicnode");
    node.extra_run_args.push("--public".into());
    node.start();
    let peer = peer_id(&node);
    let dialed = dial(&node, &format!("{}/p2p/{peer}", node.p2p_addr()));
    assert_mailnode_identify(&dialed, &node, &peer);
    // A public node is a DHT server on our private Kademlia protocol (an
    // ordinary node is a client until AutoNAT confirms an address, and
    // clients do not offer the protocol), an AutoNAT v2 server and a
    // mailbox peer for offline recipients. (Its
    // relay v2 server offers `/libp2p/circuit/relay/0.2.0/hop` only once
    // the node has a confirmed external address, which a node alone on
    // loopback never gets; the netns tests cover the relay.)
    for protocol in [
        "/mailnode/kad/1",
        "/libp2p/autonat/2/dial-request",
        "/mailnode/mailbox/1",
    ] {
        assert!(
            dialed.offers(protocol),
            "the public node's Identify does not list {protocol}: {:?}",
            dialed.protocols
        );
    }
    assert!(
        !dialed.offers("/ipfs/kad/1.0.0"),
        "the node speaks the public IPFS DHT protocol: {:?}",
        dialed.protocols
    );
}
