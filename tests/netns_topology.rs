//! Checks of the network-namespace harness itself (`tests/netns/`), with
//! plain sockets (tests/netns/probe.py) and no mailnode: homes reach the
//! internet, the NATs behave as their kind says, nothing from outside gets
//! in, and teardown leaves nothing behind.
//!
//! Each test builds its own small internet and skips (prints why, passes)
//! where namespaces cannot be created (not root, no iproute2/nftables).

#[path = "netns/mod.rs"]
mod netns;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Output;
use std::time::Duration;

use netns::{Host, Internet, NatKind};

/// The probe servers' port on the public hosts.
const PORT: &str = "3478";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn must(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

fn parse_seen(text: &str) -> SocketAddrV4 {
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("the probe server printed {text:?}, not IP:PORT"))
}

/// What a TCP server at `to` saw when `from` connected (optionally from a
/// fixed source port).
fn tcp_seen(from: &Host, to: Ipv4Addr, srcport: Option<u16>) -> SocketAddrV4 {
    let to = to.to_string();
    let src = srcport.map(|p| p.to_string());
    let mut args = vec!["tcp-client", to.as_str(), PORT];
    if let Some(src) = &src {
        args.push(src);
    }
    parse_seen(&must(
        from.probe(&args),
        &format!("TCP from {} to {to}", from.ns),
    ))
}

/// What each UDP server saw of one socket of `from` bound to `srcport`.
fn udp_seen(from: &Host, srcport: u16, targets: &[String]) -> Vec<SocketAddrV4> {
    let src = srcport.to_string();
    let mut args = vec!["udp-client", src.as_str()];
    args.extend(targets.iter().map(String::as_str));
    let text = must(from.probe(&args), &format!("UDP from {}", from.ns));
    let seen: Vec<SocketAddrV4> = text
        .lines()
        .map(|l| parse_seen(l.split_whitespace().nth(1).unwrap_or_default()))
        .collect();
    assert_eq!(seen.len(), targets.len(), "one answer per target: {text}");
    seen
}

#[test]
fn every_home_reaches_the_public_host_from_its_wan_address() {
    let Some(mut net) = Internet::new() else {
        return;
    };
    let public = net.add_public_host("pub", 10);
    let cone = net.add_home(NatKind::Cone, 1);
    let symmetric = net.add_home(NatKind::Symmetric, 1);
    let _tcp = public.spawn_probe(&["tcp-server", PORT]);
    let _udp = public.spawn_probe(&["udp-server", PORT]);
    for home in [&cone, &symmetric] {
        let seen = tcp_seen(home.host(), public.addr, None);
        assert_eq!(*seen.ip(), home.wan, "TCP source of {:?}", home.nat);
        let seen = udp_seen(home.host(), 40000, &[format!("{}:{PORT}", public.addr)]);
        assert_eq!(*seen[0].ip(), home.wan, "UDP source of {:?}", home.nat);
    }
    // The LAN addresses are what the hosts have; the internet never sees them.
    assert_eq!(cone.host().addr, Ipv4Addr::new(100, 64, 1, 10));
    assert_eq!(symmetric.host().addr, Ipv4Addr::new(100, 64, 2, 10));
}

#[test]
fn cone_nat_keeps_the_source_port_for_every_destination() {
    let Some(mut net) = Internet::new() else {
        return;
    };
    let first = net.add_public_host("pub1", 10);
    let second = net.add_public_host("pub2", 11);
    let home = net.add_home(NatKind::Cone, 1);
    let _servers: Vec<_> = [&first, &second]
        .iter()
        .flat_map(|h| {
            [
                h.spawn_probe(&["tcp-server", PORT]),
                h.spawn_probe(&["udp-server", PORT]),
                h.spawn_probe(&["udp-server", "3479"]),
            ]
        })
        .collect();
    let targets = [
        format!("{}:{PORT}", first.addr),
        format!("{}:{PORT}", second.addr),
        format!("{}:3479", first.addr),
    ];
    let seen = udp_seen(home.host(), 40000, &targets);
    for s in &seen {
        assert_eq!(
            *s,
            SocketAddrV4::new(home.wan, 40000),
            "UDP mapping {seen:?}"
        );
    }
    let seen = tcp_seen(home.host(), first.addr, Some(40001));
    assert_eq!(seen, SocketAddrV4::new(home.wan, 40001), "TCP mapping");
    let seen = tcp_seen(home.host(), second.addr, Some(40002));
    assert_eq!(seen, SocketAddrV4::new(home.wan, 40002), "TCP mapping");
    // The router's connection tracking shows the same mappings, with bytes.
    let flows = home.flows().expect("conntrack -L (install conntrack)");
    let tcp = flows
        .iter()
        .find(|f| f.proto == "tcp" && f.src.port() == 40001)
        .unwrap_or_else(|| panic!("no tracked TCP flow from port 40001: {flows:#?}"));
    assert_eq!(tcp.src, SocketAddrV4::new(home.host().addr, 40001));
    assert_eq!(tcp.dst, format!("{}:{PORT}", first.addr).parse().unwrap());
    assert_eq!(tcp.mapped, SocketAddrV4::new(home.wan, 40001));
    assert!(tcp.bytes_out > 0 && tcp.bytes_back > 0, "{tcp:?}");
    let udp = home.bytes_with(second.addr, "udp").expect("conntrack");
    assert!(udp > 0, "no UDP bytes with {}", second.addr);
}

#[test]
fn symmetric_nat_gives_each_destination_its_own_port() {
    let Some(mut net) = Internet::new() else {
        return;
    };
    let first = net.add_public_host("pub1", 10);
    let second = net.add_public_host("pub2", 11);
    let home = net.add_home(NatKind::Symmetric, 1);
    let _servers = [
        first.spawn_probe(&["udp-server", PORT]),
        first.spawn_probe(&["udp-server", "3479"]),
        second.spawn_probe(&["udp-server", PORT]),
    ];
    // Two destination hosts, and two ports of one host: a different
    // external port every time, none of them the socket's own.
    let targets = [
        format!("{}:{PORT}", first.addr),
        format!("{}:{PORT}", second.addr),
        format!("{}:3479", first.addr),
    ];
    let seen = udp_seen(home.host(), 40000, &targets);
    println!("symmetric NAT, one socket 100.64.1.10:40000 -> {targets:?}: seen as {seen:?}");
    for s in &seen {
        assert_eq!(*s.ip(), home.wan);
    }
    let ports: std::collections::BTreeSet<u16> = seen.iter().map(|s| s.port()).collect();
    assert_eq!(
        ports.len(),
        seen.len(),
        "distinct ports per destination: {seen:?}"
    );
    assert!(
        seen.iter().filter(|s| s.port() == 40000).count() <= 1,
        "fully-random should not keep the source port: {seen:?}"
    );
}

#[test]
fn unsolicited_connections_from_the_internet_do_not_get_in() {
    let Some(mut net) = Internet::new() else {
        return;
    };
    let attacker = net.add_public_host("pub", 10);
    let home = net.add_home(NatKind::Cone, 2);
    let _tcp = home.host().spawn_probe(&["tcp-server", PORT]);
    let _udp = home.host().spawn_probe(&["udp-server", PORT]);
    let wan = home.wan.to_string();
    // Nothing answers, so every client waits its whole timeout.
    let short = Duration::from_secs(2);
    let out = attacker.probe_timeout(&["tcp-client", &wan, PORT], short);
    assert!(
        !out.status.success(),
        "TCP to the WAN address got in: {}",
        stdout(&out)
    );
    let out = attacker.probe_timeout(&["udp-client", "40000", &format!("{wan}:{PORT}")], short);
    assert!(
        !out.status.success(),
        "UDP to the WAN address got in: {}",
        stdout(&out)
    );
    // Even an ISP that routes the home's LAN to the router gets nothing
    // through: the router forwards only what the LAN opened.
    let lan = home.host().addr.to_string();
    must(
        attacker.run("ip", &["route", "add", "100.64.1.0/24", "via", &wan]),
        "route to the LAN",
    );
    let out = attacker.probe_timeout(&["tcp-client", &lan, PORT], short);
    assert!(
        !out.status.success(),
        "TCP to the LAN got in: {}",
        stdout(&out)
    );
    let out = attacker.probe_timeout(&["udp-client", "40000", &format!("{lan}:{PORT}")], short);
    assert!(
        !out.status.success(),
        "UDP to the LAN got in: {}",
        stdout(&out)
    );
    // The servers were there all along: a neighbour on the LAN reaches them.
    let neighbour = &home.hosts[1];
    let seen = tcp_seen(neighbour, home.host().addr, None);
    assert_eq!(*seen.ip(), neighbour.addr);
    let seen = udp_seen(neighbour, 40000, &[format!("{lan}:{PORT}")]);
    assert_eq!(seen[0], SocketAddrV4::new(neighbour.addr, 40000));
}

#[test]
fn teardown_leaves_no_namespace_and_no_process_behind() {
    let Some(mut net) = Internet::new() else {
        return;
    };
    let public = net.add_public_host("pub", 10);
    let mut home = net.add_home(NatKind::Symmetric, 2);
    net.add_home_host(&mut home);
    net.add_home(NatKind::Cone, 1);
    let names = net.namespaces().to_vec();
    assert_eq!(names.len(), 1 + 1 + (1 + 3) + (1 + 1), "{names:?}");
    let listed = netns::list_namespaces();
    for name in &names {
        assert!(listed.contains(name), "{name} not in `ip netns list`");
    }
    // A server left running (not owned by a guard) is killed by teardown.
    let mut cmd = public.command(&netns::python());
    cmd.arg(netns::probe_script()).args(["tcp-server", PORT]);
    let mut server = netns::Proc::spawn(cmd, "stray server");
    server.wait_for_line("ready", Duration::from_secs(20));
    let pid = server.pid();
    std::mem::forget(server);
    drop(net);
    let listed = netns::list_namespaces();
    for name in &names {
        assert!(
            !listed.contains(name),
            "{name} is still there after teardown"
        );
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A killed child that nobody reaped is a zombie ("Z"); that is gone.
    let state = status.rsplit(')').next().unwrap_or_default().trim_start();
    assert!(
        status.is_empty() || state.starts_with('Z'),
        "the server {pid} survived teardown: {status}"
    );
}

#[test]
fn teardown_also_runs_when_a_test_panics() {
    if Internet::new().is_none() {
        return;
    }
    let names = std::sync::Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(|| {
        let mut net = Internet::new().expect("supported");
        net.add_public_host("pub", 10);
        net.add_home(NatKind::Cone, 1);
        names
            .lock()
            .expect("lock")
            .extend(net.namespaces().iter().cloned());
        panic!("a failing test");
    });
    assert!(result.is_err());
    let names = names.into_inner().expect("lock");
    assert_eq!(names.len(), 4);
    let listed = netns::list_namespaces();
    for name in &names {
        assert!(!listed.contains(name), "{name} survived a panic");
    }
}

#[test]
fn conntrack_flush_and_wan_renumbering_take_effect() {
    let Some(mut net) = Internet::new() else {
        return;
    };
    let public = net.add_public_host("pub", 10);
    let mut home = net.add_home(NatKind::Cone, 1);
    let _tcp = public.spawn_probe(&["tcp-server", PORT]);
    let _udp = public.spawn_probe(&["udp-server", PORT]);
    let target = [format!("{}:{PORT}", public.addr)];
    assert_eq!(*udp_seen(home.host(), 40000, &target)[0].ip(), home.wan);
    home.flush_conntrack()
        .expect("conntrack -F (install the conntrack package)");
    assert_eq!(*udp_seen(home.host(), 40000, &target)[0].ip(), home.wan);
    let old = home.wan;
    home.change_wan_address(150).expect("renumber");
    assert_ne!(home.wan, old);
    assert_eq!(home.wan, Ipv4Addr::new(198, 51, 100, 150));
    assert_eq!(*udp_seen(home.host(), 40000, &target)[0].ip(), home.wan);
    assert_eq!(*tcp_seen(home.host(), public.addr, None).ip(), home.wan);
}

#[test]
fn wan_delay_slows_the_round_trip_where_netem_exists() {
    let Some(mut net) = Internet::new() else {
        return;
    };
    let public = net.add_public_host("pub", 10);
    let home = net.add_home(NatKind::Cone, 1);
    let _udp = public.spawn_probe(&["udp-server", PORT]);
    if let Err(err) = home.set_wan_delay(Duration::from_millis(200)) {
        println!("SKIPPED: this kernel has no netem qdisc ({err})");
        return;
    }
    let target = format!("{}:{PORT}", public.addr);
    let text = must(home.host().probe(&["udp-client", "40000", &target]), "UDP");
    let rtt: f64 = text
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no round-trip time in {text:?}"));
    println!("UDP round trip over a WAN link delayed by 200 ms: {rtt} ms");
    // The round trip crosses the delayed (outbound) side of the link once.
    assert!(rtt >= 200.0, "{rtt} ms");
}

#[test]
fn parses_conntrack_lines() {
    let tcp = "tcp      6 431999 ESTABLISHED src=100.64.1.10 dst=198.51.100.102 sport=4870 \
               dport=4870 packets=12 bytes=3456 src=198.51.100.102 dst=198.51.100.101 \
               sport=4870 dport=4870 packets=10 bytes=789 [ASSURED] mark=0 use=1";
    let flow = netns::parse_flow(tcp).expect("tcp line");
    assert_eq!(flow.proto, "tcp");
    assert_eq!(flow.src, "100.64.1.10:4870".parse().unwrap());
    assert_eq!(flow.dst, "198.51.100.102:4870".parse().unwrap());
    assert_eq!(flow.mapped, "198.51.100.101:4870".parse().unwrap());
    assert_eq!((flow.bytes_out, flow.bytes_back), (3456, 789));
    let udp = "udp      17 28 src=100.64.1.10 dst=198.51.100.10 sport=40000 dport=3478 \
               packets=1 bytes=33 src=198.51.100.10 dst=198.51.100.101 sport=3478 \
               dport=61234 packets=1 bytes=47 mark=0 use=1";
    let flow = netns::parse_flow(udp).expect("udp line");
    assert_eq!(flow.mapped.port(), 61234);
    assert_eq!(flow.bytes(), 80);
    assert!(
        netns::parse_flow("icmp 1 29 src=100.64.1.10 dst=198.51.100.10 type=8 code=0").is_none()
    );
    assert!(netns::parse_flow("conntrack v1.4.7 (conntrack-tools): 2 flow entries").is_none());
}
