//! An internet on one machine, for the NAT tests (issue 6): Linux network
//! namespaces joined by veth pairs and a bridge, home routers that NAT with
//! nftables, and helpers to run commands inside any of them.
//!
//! Topology (see `docs/testing-nat.md`):
//!
//! ```text
//!   public host(s) 198.51.100.10, .11, ...        (namespace "<prefix>-pubN")
//!          |
//!   [ bridge br0 ]  198.51.100.0/24, the "internet" (namespace "<prefix>-inet")
//!          |
//!   router k: WAN 198.51.100.(100+k), LAN 100.64.k.1/24, NAT  ("<prefix>-rK")
//!          |
//!   [ bridge lan ]
//!          |
//!   host(s) 100.64.k.10, .11, ..., default route via 100.64.k.1 ("<prefix>-hK-I")
//! ```
//!
//! This module owns the namespaces it creates and nothing else: it never
//! touches the root namespace's interfaces, routes or firewall (every link is
//! created directly inside its namespaces), and it uses documentation ranges
//! only (198.51.100.0/24 and 100.64.0.0/10). Every name carries the test
//! process's pid and a counter, so parallel tests and parallel test binaries
//! do not collide. [`Internet`]'s `Drop` kills every process left inside its
//! namespaces and deletes them, also when a test panics.
//!
//! A machine that cannot build namespaces (not root, no `ip`, no `nft`, no
//! netns support) makes [`Internet::new`] return `None` after printing why;
//! the test then returns early (it skips, it does not fail). Setting
//! `MAILNODE_NETNS_REQUIRED=1` turns that skip into a failure, for CI runs
//! that must prove the NAT tests ran.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Every namespace this harness creates starts with this, then the pid.
const NAME_PREFIX: &str = "mnt";

/// The "internet" segment.
pub const INTERNET_PREFIX: [u8; 3] = [198, 51, 100];

/// How long teardown waits for killed processes to leave a namespace.
const TEARDOWN_WAIT: Duration = Duration::from_secs(10);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The kind of NAT a home router does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Port-preserving masquerade: a LAN socket keeps its source port on the
    /// WAN side whenever that port is free, whatever the destination
    /// (endpoint-independent mapping). Filtering is conntrack's:
    /// address-and-port dependent. Hole punching works through it.
    Cone,
    /// `masquerade fully-random`: every new mapping (each destination
    /// address or port) gets a random external port, so the port a peer
    /// observes is useless to anyone else. Hole punching fails through it.
    Symmetric,
}

/// A host namespace: an address and a way to run things there.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace's name (for `ip netns exec`).
    pub ns: String,
    /// Its address (on the internet segment or in its home's LAN).
    pub addr: Ipv4Addr,
}

/// A home: a NAT router and the hosts behind it.
#[derive(Debug, Clone)]
pub struct Home {
    /// The home's number k (its LAN is 100.64.k.0/24).
    pub index: u8,
    /// The router's namespace.
    pub router_ns: String,
    /// The router's current WAN address on 198.51.100.0/24.
    pub wan: Ipv4Addr,
    /// The NAT it does.
    pub nat: NatKind,
    /// The hosts behind the router.
    pub hosts: Vec<Host>,
}

/// The whole topology. Dropping it tears everything down.
#[derive(Debug)]
pub struct Internet {
    /// `mnt<pid>x<counter>`: the start of every namespace name.
    prefix: String,
    /// The namespace holding the internet bridge.
    inet_ns: String,
    /// Every namespace created, in creation order.
    namespaces: Vec<String>,
    /// Bridge ports created so far in the internet namespace.
    ports: u32,
    /// Homes created so far.
    homes: u8,
}

impl Internet {
    /// Builds an empty internet segment (the bridge), or returns `None`
    /// after printing why this machine cannot (the caller skips).
    pub fn new() -> Option<Internet> {
        if let Err(why) = check_support() {
            let msg = format!(
                "SKIPPED: network-namespace tests need root, iproute2 and nftables ({why}); \
                 run them as root after scripts/install-test-deps"
            );
            if std::env::var_os("MAILNODE_NETNS_REQUIRED").is_some_and(|v| v == "1") {
                panic!("{msg} (MAILNODE_NETNS_REQUIRED=1)");
            }
            eprintln!("{msg}");
            return None;
        }
        remove_stale_namespaces();
        let prefix = format!(
            "{NAME_PREFIX}{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut net = Internet {
            inet_ns: format!("{prefix}-inet"),
            prefix,
            namespaces: Vec::new(),
            ports: 0,
            homes: 0,
        };
        let inet = net.inet_ns.clone();
        net.add_namespace(&inet);
        ip(&["-n", &inet, "link", "add", "name", "br0", "type", "bridge"]);
        ip(&["-n", &inet, "link", "set", "br0", "up"]);
        Some(net)
    }

    /// The prefix of every namespace name of this run.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every namespace created so far.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Adds a host directly on the internet segment at 198.51.100.`octet`
    /// (a public host: reachable by everyone, no NAT, no firewall).
    pub fn add_public_host(&mut self, name: &str, octet: u8) -> Host {
        let ns = format!("{}-{name}", self.prefix);
        self.add_namespace(&ns);
        let addr = internet_addr(octet);
        self.plug_into_internet(&ns, "eth0");
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        Host { ns, addr }
    }

    /// Adds home k (the next number): a router with WAN address
    /// 198.51.100.(100+k), LAN 100.64.k.0/24 behind `nat`, and `hosts`
    /// hosts 100.64.k.10, .11, ... whose default route is the router.
    pub fn add_home(&mut self, nat: NatKind, hosts: usize) -> Home {
        assert!(self.homes < 99, "at most 99 homes");
        assert!((1..=100).contains(&hosts), "1 to 100 hosts per home");
        self.homes += 1;
        let k = self.homes;
        let router_ns = format!("{}-r{k}", self.prefix);
        self.add_namespace(&router_ns);
        let wan = internet_addr(100 + k);
        self.plug_into_internet(&router_ns, "wan");
        let r = router_ns.as_str();
        ip(&["-n", r, "addr", "add", &format!("{wan}/24"), "dev", "wan"]);
        ip(&["-n", r, "link", "set", "wan", "up"]);
        // The LAN is a bridge so that a home can hold several hosts (the
        // mDNS scenario needs two on one segment).
        ip(&["-n", r, "link", "add", "name", "lan", "type", "bridge"]);
        ip(&[
            "-n",
            r,
            "addr",
            "add",
            &format!("100.64.{k}.1/24"),
            "dev",
            "lan",
        ]);
        ip(&["-n", r, "link", "set", "lan", "up"]);
        sysctl(r, "net.ipv4.ip_forward", "1");
        // Where br_netfilter is loaded, bridged LAN-to-LAN frames would pass
        // the router's IP forward chain and be dropped there; a home switch
        // does not filter. (No such key without br_netfilter: fine.)
        let _ = quiet(
            "ip",
            &[
                "netns",
                "exec",
                r,
                "sysctl",
                "-qw",
                "net.bridge.bridge-nf-call-iptables=0",
            ],
        );
        // Byte counts per tracked connection: how the NAT tests tell a
        // direct connection from one through the relay.
        sysctl(r, "net.netfilter.nf_conntrack_acct", "1");
        // A router that lost its state (flush, new address) must not pick
        // up a TCP connection in mid-stream, as Linux does by default:
        // such packets are invalid and dropped, like a rebooted router's.
        sysctl(r, "net.netfilter.nf_conntrack_tcp_loose", "0");
        load_router_rules(r, nat);
        let mut home = Home {
            index: k,
            router_ns,
            wan,
            nat,
            hosts: Vec::new(),
        };
        for _ in 0..hosts {
            self.add_home_host(&mut home);
        }
        home
    }

    /// Adds one more host behind `home`'s router.
    pub fn add_home_host(&mut self, home: &mut Home) -> Host {
        let i = home.hosts.len();
        let k = home.index;
        let ns = format!("{}-h{k}-{i}", self.prefix);
        self.add_namespace(&ns);
        let port = format!("h{i}");
        let r = home.router_ns.as_str();
        ip(&[
            "-n", r, "link", "add", "name", &port, "type", "veth", "peer", "name", "eth0", "netns",
            &ns,
        ]);
        ip(&["-n", r, "link", "set", &port, "master", "lan"]);
        ip(&["-n", r, "link", "set", &port, "up"]);
        let octet = u8::try_from(10 + i).expect("at most 100 hosts per home");
        let addr = Ipv4Addr::new(100, 64, k, octet);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&[
            "-n",
            &ns,
            "route",
            "add",
            "default",
            "via",
            &format!("100.64.{k}.1"),
        ]);
        let host = Host { ns, addr };
        home.hosts.push(host.clone());
        host
    }

    /// Creates a namespace with its loopback up, and records it for teardown.
    fn add_namespace(&mut self, ns: &str) {
        // A namespace of ours can only pre-exist if a dead process with our
        // pid left it behind; it is stale.
        let _ = quiet("ip", &["netns", "del", ns]);
        ip(&["netns", "add", ns]);
        self.namespaces.push(ns.to_string());
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }

    /// Connects namespace `ns` to the internet bridge with a veth pair whose
    /// end in `ns` is called `ifname`. The pair is created inside the
    /// internet namespace, so no name ever appears in the root namespace.
    fn plug_into_internet(&mut self, ns: &str, ifname: &str) {
        self.ports += 1;
        let port = format!("p{}", self.ports);
        let inet = self.inet_ns.as_str();
        ip(&[
            "-n", inet, "link", "add", "name", &port, "type", "veth", "peer", "name", ifname,
            "netns", ns,
        ]);
        ip(&["-n", inet, "link", "set", &port, "master", "br0"]);
        ip(&["-n", inet, "link", "set", &port, "up"]);
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        // Kill first: a namespace lives on while a process is inside it.
        for ns in self.namespaces.iter().rev() {
            kill_all_in(ns);
        }
        for ns in self.namespaces.iter().rev() {
            if let Err(err) = quiet("ip", &["netns", "del", ns]) {
                eprintln!("netns teardown: cannot delete {ns}: {err}");
            }
        }
    }
}

impl Home {
    /// The first host behind the router.
    pub fn host(&self) -> &Host {
        &self.hosts[0]
    }

    /// Forgets every NAT mapping and connection the router tracks
    /// (`conntrack -F`), as a router reboot or a mapping timeout would.
    pub fn flush_conntrack(&self) -> Result<(), String> {
        quiet("ip", &["netns", "exec", &self.router_ns, "conntrack", "-F"]).map(|_| ())
    }

    /// Gives the router a new WAN address 198.51.100.`octet` (the ISP
    /// renumbered the line). Masquerade drops the mappings of the old
    /// address when it goes away; the conntrack table is flushed as well.
    pub fn change_wan_address(&mut self, octet: u8) -> Result<(), String> {
        let new = internet_addr(octet);
        let r = self.router_ns.as_str();
        quiet(
            "ip",
            &[
                "-n",
                r,
                "addr",
                "del",
                &format!("{}/24", self.wan),
                "dev",
                "wan",
            ],
        )?;
        quiet(
            "ip",
            &["-n", r, "addr", "add", &format!("{new}/24"), "dev", "wan"],
        )?;
        self.wan = new;
        // Best effort: masquerade already dropped the old mappings; a
        // router without the conntrack tool still renumbered.
        let _ = self.flush_conntrack();
        Ok(())
    }

    /// Delays every packet leaving the router on its WAN link by `delay`
    /// (tc netem). Fails where the kernel has no netem qdisc.
    pub fn set_wan_delay(&self, delay: Duration) -> Result<(), String> {
        let ms = format!("{}ms", delay.as_millis());
        quiet(
            "ip",
            &[
                "netns",
                "exec",
                &self.router_ns,
                "tc",
                "qdisc",
                "replace",
                "dev",
                "wan",
                "root",
                "netem",
                "delay",
                &ms,
            ],
        )
        .map(|_| ())
    }
}

/// One connection a router tracks (`conntrack -L`), as the LAN side opened
/// it (before NAT), with bytes counted in each direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// `tcp` or `udp`.
    pub proto: String,
    /// The opener's address and port (a LAN host, before NAT).
    pub src: SocketAddrV4,
    /// Where it went.
    pub dst: SocketAddrV4,
    /// The external address and port the NAT gave it (the reply's destination).
    pub mapped: SocketAddrV4,
    /// Bytes from `src` to `dst`.
    pub bytes_out: u64,
    /// Bytes from `dst` back to `src`.
    pub bytes_back: u64,
}

impl Flow {
    /// Bytes both ways.
    pub fn bytes(&self) -> u64 {
        self.bytes_out + self.bytes_back
    }
}

impl Home {
    /// The TCP and UDP connections the router tracks now (`conntrack -L`).
    pub fn flows(&self) -> Result<Vec<Flow>, String> {
        let text = quiet("ip", &["netns", "exec", &self.router_ns, "conntrack", "-L"])?;
        Ok(text.lines().filter_map(parse_flow).collect())
    }

    /// Bytes (both ways) of every tracked `proto` connection between a
    /// host of this home and `peer`.
    pub fn bytes_with(&self, peer: Ipv4Addr, proto: &str) -> Result<u64, String> {
        Ok(self
            .flows()?
            .iter()
            .filter(|f| f.proto == proto && *f.dst.ip() == peer)
            .map(Flow::bytes)
            .sum())
    }

    /// Bytes `peer` sent into this home over tracked `proto` connections
    /// (the reply direction of connections the home opened to it).
    pub fn bytes_from(&self, peer: Ipv4Addr, proto: &str) -> Result<u64, String> {
        Ok(self
            .flows()?
            .iter()
            .filter(|f| f.proto == proto && *f.dst.ip() == peer)
            .map(|f| f.bytes_back)
            .sum())
    }
}

/// Parses one line of `conntrack -L` with accounting on:
/// `tcp 6 431999 ESTABLISHED src=A dst=B sport=P dport=Q packets=N bytes=M
/// src=B dst=W sport=Q dport=R packets=N bytes=M [ASSURED] mark=0 use=1`.
/// The first tuple is the original direction, the second the reply.
pub fn parse_flow(line: &str) -> Option<Flow> {
    let mut words = line.split_whitespace();
    let proto = words.next()?.to_string();
    if proto != "tcp" && proto != "udp" {
        return None;
    }
    let mut fields: Vec<(&str, &str)> = Vec::new();
    for word in words {
        if let Some((key, value)) = word.split_once('=') {
            fields.push((key, value));
        }
    }
    // The n-th occurrence of `key` (0: original direction, 1: reply).
    let nth = |key: &str, n: usize| -> Option<&str> {
        fields
            .iter()
            .filter(|(k, _)| *k == key)
            .nth(n)
            .map(|(_, v)| *v)
    };
    let addr = |ip: &str, port: &str| -> Option<SocketAddrV4> {
        Some(SocketAddrV4::new(ip.parse().ok()?, port.parse().ok()?))
    };
    Some(Flow {
        proto,
        src: addr(nth("src", 0)?, nth("sport", 0)?)?,
        dst: addr(nth("dst", 0)?, nth("dport", 0)?)?,
        mapped: addr(nth("dst", 1)?, nth("dport", 1)?)?,
        bytes_out: nth("bytes", 0)?.parse().ok()?,
        bytes_back: nth("bytes", 1)?.parse().ok()?,
    })
}

impl Host {
    /// A command that runs `program` inside this host's namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, program]);
        cmd
    }

    /// Runs `program args` inside the namespace to completion.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("cannot run {program} in {}: {err}", self.ns))
    }

    /// Runs the probe tool (`tests/netns/probe.py`) inside the namespace.
    pub fn probe(&self, args: &[&str]) -> Output {
        self.probe_timeout(args, Duration::from_secs(5))
    }

    /// Like [`Host::probe`], with clients giving up after `timeout`.
    pub fn probe_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        self.command(&python())
            .env("PROBE_TIMEOUT", format!("{}", timeout.as_secs_f64()))
            .arg(probe_script())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("cannot run probe.py in {}: {err}", self.ns))
    }

    /// Starts the probe tool in the background (a server) and waits until
    /// it printed its `ready` line.
    pub fn spawn_probe(&self, args: &[&str]) -> Proc {
        let mut cmd = self.command(&python());
        cmd.arg(probe_script()).args(args);
        let mut proc = Proc::spawn(cmd, &format!("probe.py {} in {}", args.join(" "), self.ns));
        proc.wait_for_line("ready", Duration::from_secs(20));
        proc
    }
}

/// A background process; killed and reaped on drop.
pub struct Proc {
    what: String,
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    /// Spawns `cmd` with its stdout piped (read line by line in a thread).
    pub fn spawn(mut cmd: Command, what: &str) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {what}: {err}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || forward_lines(stdout, tx));
        Proc {
            what: what.to_string(),
            child,
            lines: rx,
        }
    }

    /// Waits for a stdout line starting with `prefix`; returns it.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "{}: no line starting with {prefix:?} within {timeout:?}",
                        self.what
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("{} exited before printing {prefix:?}", self.what)
                }
            }
        }
    }

    /// The pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward_lines(stdout: ChildStdout, tx: mpsc::Sender<String>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { return };
        if tx.send(line).is_err() {
            return;
        }
    }
}

/// 198.51.100.`octet`.
pub fn internet_addr(octet: u8) -> Ipv4Addr {
    let [a, b, c] = INTERNET_PREFIX;
    Ipv4Addr::new(a, b, c, octet)
}

/// Names of every network namespace on the machine (`ip netns list`).
pub fn list_namespaces() -> Vec<String> {
    let out = quiet("ip", &["netns", "list"]).unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// `tests/netns/probe.py`.
pub fn probe_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/netns/probe.py")
}

/// The Python interpreter's real path: a version manager's `python3` shim
/// (pyenv) costs a quarter of a second per start.
pub fn python() -> String {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            quiet("python3", &["-c", "import sys; print(sys.executable)"])
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|p| std::path::Path::new(p).is_file())
                .unwrap_or_else(|| "python3".to_string())
        })
        .clone()
}

/// The router's firewall and NAT. Forwarding from the WAN is allowed only
/// for connections the LAN opened (a home router's default), and the router
/// itself answers nothing on the WAN but pings, so an unsolicited
/// connection from the internet goes nowhere.
fn load_router_rules(router_ns: &str, nat: NatKind) {
    let masquerade = match nat {
        NatKind::Cone => "masquerade",
        NatKind::Symmetric => "masquerade fully-random",
    };
    let rules = format!(
        "table ip home {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\toifname \"wan\" {masquerade}\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy drop;\n\
         \t\tct state invalid drop\n\
         \t\tct state established,related accept\n\
         \t\tiifname \"lan\" oifname \"wan\" accept\n\
         \t}}\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority filter; policy accept;\n\
         \t\tiifname \"wan\" ct state established,related accept\n\
         \t\tiifname \"wan\" icmp type echo-request accept\n\
         \t\tiifname \"wan\" drop\n\
         \t}}\n\
         }}\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("router.nft");
    std::fs::write(&file, rules).expect("write nft rules");
    let file = file.to_str().expect("utf-8 path");
    if let Err(err) = quiet("ip", &["netns", "exec", router_ns, "nft", "-f", file]) {
        panic!("cannot load the router's nftables rules in {router_ns}: {err}");
    }
}

fn sysctl(ns: &str, key: &str, value: &str) {
    if let Err(err) = quiet(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("{key}={value}"),
        ],
    ) {
        panic!("sysctl {key}={value} in {ns}: {err}");
    }
}

/// Can this machine build the topology? Probes everything it needs in a
/// throw-away namespace.
fn check_support() -> Result<(), String> {
    quiet("ip", &["-V"]).map_err(|e| format!("no `ip` command: {e}"))?;
    quiet("nft", &["--version"]).map_err(|e| format!("no `nft` command: {e}"))?;
    let probe = format!(
        "{NAME_PREFIX}{}probe{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    quiet("ip", &["netns", "add", &probe])
        .map_err(|e| format!("cannot create a namespace: {e}"))?;
    let result = quiet(
        "ip",
        &[
            "-n", &probe, "link", "add", "name", "a", "type", "veth", "peer", "name", "b",
        ],
    )
    .map_err(|e| format!("cannot create a veth pair: {e}"))
    .and_then(|_| {
        quiet(
            "ip",
            &[
                "netns", "exec", &probe, "nft", "add", "table", "ip", "probe",
            ],
        )
        .map_err(|e| format!("nftables does not work in a namespace: {e}"))
    });
    let _ = quiet("ip", &["netns", "del", &probe]);
    result.map(|_| ())
}

/// Deletes namespaces of this harness whose creating process is gone (a
/// test run killed with SIGKILL cannot run its `Drop`).
fn remove_stale_namespaces() {
    for ns in list_namespaces() {
        let Some(rest) = ns.strip_prefix(NAME_PREFIX) else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(pid) = digits.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            kill_all_in(&ns);
            let _ = quiet("ip", &["netns", "del", &ns]);
        }
    }
}

/// SIGKILLs every process inside `ns` and waits (bounded) until none is left.
fn kill_all_in(ns: &str) {
    let deadline = Instant::now() + TEARDOWN_WAIT;
    loop {
        let pids: Vec<String> = quiet("ip", &["netns", "pids", ns])
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if pids.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("netns teardown: processes {pids:?} are still in {ns}");
            return;
        }
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .stderr(Stdio::null())
            .status();
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `ip args`; panics with its stderr if it fails.
fn ip(args: &[&str]) {
    if let Err(err) = quiet("ip", args) {
        panic!("`ip {}` failed: {err}", args.join(" "));
    }
}

/// Runs a command to completion; its stdout, or a description of the failure.
fn quiet(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {program}: {err}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
