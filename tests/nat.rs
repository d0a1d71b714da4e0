//! Issue 6, "an internet on one machine": real `mailnode` daemons in network
//! namespaces (tests/netns) deliver mail across home NATs.
//!
//! A public node (`run --public`: relay v2, AutoNAT v2 and Kademlia server,
//! mailbox service) sits on the internet segment at 198.51.100.10; Alice and
//! Bob sit in two homes behind NAT routers and know it only as their
//! `--bootstrap` address. Contacts are imported without `--addr`: each finds
//! the other by PeerId alone, through the DHT.
//!
//! What proves a path is the routers' connection tracking, not the nodes'
//! own logs: a mail carries a 256 KiB random attachment, and the byte counts
//! of the connections Alice's router tracks show whether it went straight to
//! Bob's WAN address (direct, after the hole punch) or to the public node
//! (relay or mailbox). The relay's circuit limit is far below 256 KiB, so a
//! relayed mail could not hide in the small relay flow.
//!
//! Every scenario has a deadline, tears its namespaces down on drop (also on
//! panic), and skips where namespaces cannot be created (see tests/netns).

mod common;
#[path = "netns/mod.rs"]
mod netns;
#[path = "netns/node.rs"]
mod netns_node;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{Node, split_verified};
use netns::{Home, Host, Internet, NatKind};
use netns_node::InNamespace;
use rand::RngCore;

/// The libp2p port every node listens on (TCP and UDP).
const P2P_PORT: u16 = 4870;

/// The public node's address on the internet segment.
const PUBLIC_OCTET: u8 = 10;

/// How long a mail may take end to end (bootstrap, DHT lookup, relay
/// reservation, hole punch or deposit, retries).
const DELIVERY: Duration = Duration::from_secs(180);

/// The attachment every test mail carries: larger than any relay circuit
/// may carry (relay v2 limits circuits to 128 KiB by default; mailnode's
/// public mode documents smaller ones).
const ATTACHMENT: usize = 256 * 1024;

/// Which transports the nodes listen on and bootstrap over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Tcp,
    Quic,
    Both,
}

impl Transport {
    fn listen(self) -> Vec<String> {
        let tcp = format!("/ip4/0.0.0.0/tcp/{P2P_PORT}");
        let quic = format!("/ip4/0.0.0.0/udp/{P2P_PORT}/quic-v1");
        match self {
            Transport::Tcp => vec![tcp],
            Transport::Quic => vec![quic],
            Transport::Both => vec![tcp, quic],
        }
    }

    fn dial(self, ip: Ipv4Addr, peer: &str) -> String {
        match self {
            Transport::Tcp | Transport::Both => format!("/ip4/{ip}/tcp/{P2P_PORT}/p2p/{peer}"),
            Transport::Quic => format!("/ip4/{ip}/udp/{P2P_PORT}/quic-v1/p2p/{peer}"),
        }
    }

    /// The conntrack protocol its connections show up as.
    fn proto(self) -> &'static str {
        match self {
            Transport::Tcp | Transport::Both => "tcp",
            Transport::Quic => "udp",
        }
    }
}

/// The scenario's world. Fields drop in order: the daemons first, then the
/// namespaces.
struct World {
    alice: Node,
    bob: Node,
    public: Node,
    /// `/ip4/198.51.100.10/.../p2p/<public PeerId>`.
    bootstrap: String,
    transport: Transport,
    alice_home: Home,
    bob_home: Home,
    public_host: Host,
    net: Internet,
}

impl Drop for World {
    fn drop(&mut self) {
        for node in [&self.alice, &self.bob, &self.public] {
            keep_log(node);
        }
        if std::thread::panicking() {
            for node in [&self.alice, &self.bob, &self.public] {
                print_log_tail(node);
            }
            for home in [&self.alice_home, &self.bob_home] {
                println!("--- flows in {}: {:#?}", home.router_ns, home.flows());
            }
        }
    }
}

/// With `MAILNODE_KEEP_LOGS` set to a directory, copies the node's whole
/// daemon log there (its home is deleted with it), pass or fail.
fn keep_log(node: &Node) {
    let Some(dir) = std::env::var_os("MAILNODE_KEEP_LOGS") else {
        return;
    };
    let path = std::path::Path::new(&dir).join(format!("{}.log", node.name));
    match std::fs::write(&path, node.log()) {
        Ok(()) => println!("--- {}'s whole log: {}", node.name, path.display()),
        Err(err) => println!("--- cannot keep {}'s log: {err}", node.name),
    }
}

/// The end of a node's daemon log, so that a failed scenario shows what
/// the daemons did.
fn print_log_tail(node: &Node) {
    let log = node.log();
    // The test's own IMAP polling is noise here.
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| !l.contains("DEBUG") || l.contains("mailnode"))
        .filter(|l| !l.contains("IMAP client logged in"))
        .collect();
    let start = lines.len().saturating_sub(LOG_TAIL);
    println!("--- {}'s log (last {LOG_TAIL} lines):", node.name);
    for line in &lines[start..] {
        println!("{line}");
    }
}

/// A node's INFO-and-above log lines that mention one of `needles`.
fn print_log_lines(node: &Node, needles: &[&str]) {
    println!("--- {}'s log, lines about {needles:?}:", node.name);
    for line in node.log().lines() {
        if needles.iter().any(|n| line.contains(n)) && line.contains("mailnode") {
            println!("{line}");
        }
    }
}

/// How many log lines a failed scenario prints per node.
const LOG_TAIL: usize = 80;

/// Test nodes retry often: the backoff cap bounds how long a test waits for
/// the next attempt after a failed one. Strangers pay a small proof of work
/// (12 bits): the default costs seconds in release, minutes in a debug
/// build on a loaded machine; the stamp rules are the same.
fn write_test_config(node: &Node) {
    std::fs::write(
        node.home().join("config.toml"),
        "[delivery]\nmax_retry_interval_secs = 5\n\n[strangers]\npow_bits = 12\n",
    )
    .expect("write config.toml");
}

/// Creates a node for namespace `ns`, listening on `transport`.
fn node_in(name: &str, ns: &str, transport: Transport) -> Node {
    let mut node = Node::create(name);
    node.set_netns(ns);
    let listen = transport.listen();
    node.set_listen(&common::str_refs(&listen));
    write_test_config(&node);
    node
}

/// A node of a home: NAT'd, bootstrapping from the public node.
fn home_node(name: &str, host: &Host, transport: Transport, bootstrap: &str) -> Node {
    let mut node = node_in(name, &host.ns, transport);
    node.extra_run_args = vec!["--bootstrap".into(), bootstrap.into()];
    node
}

/// Builds the internet, the public node (started) and Alice's and Bob's
/// homes and nodes (created, contacts of each other without address hints,
/// not started; Bob with the public node as mailbox peer if `mailbox`).
fn world(
    alice_nat: NatKind,
    bob_nat: NatKind,
    transport: Transport,
    mailbox: bool,
) -> Option<World> {
    let mut net = Internet::new()?;
    let public_host = net.add_public_host("pub", PUBLIC_OCTET);
    let alice_home = net.add_home(alice_nat, 1);
    let bob_home = net.add_home(bob_nat, 1);
    let mut public = node_in("public", &public_host.ns, Transport::Both);
    // A public node's operator announces its address (`--external`): the
    // relay server offers its hop protocol only once it has a confirmed
    // external address.
    public.extra_run_args = vec!["--public".into(), "--no-mdns".into()];
    for external in [
        format!("/ip4/{}/tcp/{P2P_PORT}", public_host.addr),
        format!("/ip4/{}/udp/{P2P_PORT}/quic-v1", public_host.addr),
    ] {
        public
            .extra_run_args
            .extend(["--external".into(), external]);
    }
    public.start();
    let bootstrap = transport.dial(public_host.addr, &public.peer_id());
    let alice = home_node("alice", alice_home.host(), transport, &bootstrap);
    let bob = home_node("bob", bob_home.host(), transport, &bootstrap);
    alice.add_contact_without_addr(&bob);
    bob.add_contact_without_addr(&alice);
    if mailbox {
        bob.cli_ok(&["mailbox", "add", &bootstrap]);
    }
    Some(World {
        alice,
        bob,
        public,
        bootstrap,
        transport,
        alice_home,
        bob_home,
        public_host,
        net,
    })
}

/// A mail from `from` to `to` with a fresh random attachment; returns it.
fn mail(from: &Node, to: &Node, subject: &str) -> Vec<u8> {
    let mut attachment = vec![0u8; ATTACHMENT];
    rand::thread_rng().fill_bytes(&mut attachment);
    common::message_with_attachment(
        &from.email,
        &to.email,
        subject,
        &format!("{subject}: a test mail across the NATs."),
        &attachment,
    )
}

/// Polls `condition` every half second until it holds or `timeout`
/// passes. Slower than `common::wait_until`: each check here starts a
/// client inside a namespace, and the machine running the suite is small.
fn poll_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until `node`'s `mailbox` holds `n` messages; returns them.
fn wait_for_mail(node: &Node, mailbox: &str, n: usize, what: &str) -> Vec<Vec<u8>> {
    poll_until(DELIVERY, what, || node.count_here(mailbox) >= n);
    node.fetch_all_here(mailbox)
}

/// Whether `mailnode status` says the node's locator record is in the DHT.
fn locator_published(node: &Node) -> bool {
    let out = node.cli(&["status"]);
    common::value_of(&String::from_utf8_lossy(&out.stdout), "locator-published")
        .is_some_and(|v| v != "never")
}

/// `sent` arrived byte-identical (after the verified-signer field) among
/// `got`.
fn assert_arrived(got: &[Vec<u8>], sent: &[u8], what: &str) {
    let found = got
        .iter()
        .map(|m| split_verified(m).1)
        .any(|rest| rest == sent);
    assert!(
        found,
        "{what}: no byte-identical copy among {} messages",
        got.len()
    );
}

/// The routers' view of Alice's traffic: bytes to Bob's WAN address and to
/// the public node over `proto`.
fn alice_bytes(world: &World, proto: &str) -> (u64, u64) {
    let home = &world.alice_home;
    let to_bob = home
        .bytes_with(world.bob_home.wan, proto)
        .expect("conntrack -L in Alice's router (install conntrack)");
    let to_public = home
        .bytes_with(world.public_host.addr, proto)
        .expect("conntrack -L in Alice's router");
    (to_bob, to_public)
}

/// Bytes the public node sent into Bob's home over `proto`: whatever a
/// relay circuit carried to Bob is in there. (Alice's uploads to the public
/// node are no measure of the relay: an AutoNAT v2 server asks a client
/// for up to 100 kB of "dial data" per test of an address whose IP is not
/// the one it sees, and behind a NAT that is every test.)
fn bob_bytes_from_public(world: &World, proto: &str) -> u64 {
    world
        .bob_home
        .bytes_from(world.public_host.addr, proto)
        .expect("conntrack -L in Bob's router")
}

/// At most this many bytes may reach Bob from the public node while a mail
/// is on its way to him without a mailbox peer: DHT answers, identify and
/// the hole punch's coordination are a few kB; a relay circuit may carry
/// 64 KiB (node/src/network/swarm.rs), and a mail is larger.
const RELAY_NOISE: u64 = 48 * 1024;

fn print_status(node: &Node) {
    let out = node.cli(&["status"]);
    println!(
        "--- {} status:\n{}",
        node.name,
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Cone NAT on both sides: the hole punch succeeds and the mail goes over
/// the direct connection, whose flow in Alice's router carries the whole
/// attachment, while her flows to the public node carry less than it.
fn direct_after_hole_punch(transport: Transport) {
    let Some(mut w) = world(NatKind::Cone, NatKind::Cone, transport, false) else {
        return;
    };
    w.bob.start();
    w.alice.start();
    for node in [&w.alice, &w.bob] {
        poll_until(DELIVERY, &format!("{}'s locator record", node.name), || {
            locator_published(node)
        });
    }
    // What Alice exchanged with the public node before the mail (DHT,
    // identify, AutoNAT, her relay reservation): not part of the mail.
    let (_, before) = alice_bytes(&w, transport.proto());
    let bob_before = bob_bytes_from_public(&w, "tcp") + bob_bytes_from_public(&w, "udp");
    let sent = mail(&w.alice, &w.bob, "direct through cone NATs");
    w.alice.send_here(&[&w.bob.email], &sent);
    let got = wait_for_mail(&w.bob, "INBOX", 1, "the mail in Bob's INBOX");
    assert_arrived(&got, &sent, "Bob's INBOX");
    print_status(&w.alice);
    print_status(&w.bob);
    let (to_bob, after) = alice_bytes(&w, transport.proto());
    let to_public = after.saturating_sub(before);
    let bob_after = bob_bytes_from_public(&w, "tcp") + bob_bytes_from_public(&w, "udp");
    let relayed_to_bob = bob_after.saturating_sub(bob_before);
    println!(
        "Alice's router, {}: {to_bob} bytes with Bob's WAN address; with the public node \
         {before} before the mail and {to_public} more while it went; the public node sent \
         {relayed_to_bob} bytes into Bob's home meanwhile",
        transport.proto()
    );
    print_log_lines(
        &w.alice,
        &["hole punch", "relayed connection", "delivered", "deliver"],
    );
    // The nodes' own account agrees (wording of node/src/network/reach.rs).
    assert!(
        [&w.alice, &w.bob]
            .iter()
            .any(|n| n.log().contains("hole punch succeeded: direct connection")),
        "neither node logged a successful hole punch"
    );
    assert!(
        to_bob >= ATTACHMENT as u64,
        "the direct {} connection to Bob carried only {to_bob} bytes; flows: {:#?}",
        transport.proto(),
        w.alice_home.flows()
    );
    assert!(
        to_public < ATTACHMENT as u64,
        "{to_public} bytes went to the public node: the mail was relayed or deposited"
    );
    assert!(
        relayed_to_bob < RELAY_NOISE,
        "{relayed_to_bob} bytes came to Bob from the public node: the mail crossed the relay"
    );
}

#[test]
fn cone_nat_mail_goes_direct_after_hole_punch_over_tcp() {
    direct_after_hole_punch(Transport::Tcp);
}

#[test]
fn cone_nat_mail_goes_direct_after_hole_punch_over_quic() {
    direct_after_hole_punch(Transport::Quic);
}

/// Symmetric NAT on both sides, and Bob has no mailbox peer: the hole
/// punch fails, and the mail waits in Alice's outbox. It never travels over
/// the relay circuit, which only carried the punch's coordination.
#[test]
fn symmetric_nat_the_hole_punch_fails_and_no_mail_crosses_the_relay() {
    let Some(mut w) = world(
        NatKind::Symmetric,
        NatKind::Symmetric,
        Transport::Tcp,
        false,
    ) else {
        return;
    };
    w.bob.start();
    w.alice.start();
    for node in [&w.alice, &w.bob] {
        poll_until(DELIVERY, &format!("{}'s locator record", node.name), || {
            locator_published(node)
        });
    }
    let before = bob_bytes_from_public(&w, "tcp") + bob_bytes_from_public(&w, "udp");
    let sent = mail(&w.alice, &w.bob, "no way through");
    w.alice.send_here(&[&w.bob.email], &sent);
    // Two attempts that found only a relayed connection (wording of
    // node/src/outbox.rs): the relay had its chance to carry the mail twice.
    poll_until(
        DELIVERY,
        "two attempts of Alice's node that end without a direct connection",
        || w.alice.log_count("hole punching could not pass") >= 2,
    );
    print_status(&w.alice);
    let (to_bob, _) = alice_bytes(&w, "tcp");
    let after = bob_bytes_from_public(&w, "tcp") + bob_bytes_from_public(&w, "udp");
    let via_public = after.saturating_sub(before);
    println!(
        "symmetric NATs: {to_bob} bytes between Alice and Bob's WAN address; the public node sent \
         {via_public} bytes into Bob's home while the mail waited"
    );
    assert_eq!(w.bob.count_here("INBOX"), 0, "the mail got through?");
    assert!(
        to_bob < ATTACHMENT as u64,
        "{to_bob} bytes went straight to Bob"
    );
    assert!(
        via_public < RELAY_NOISE,
        "{via_public} bytes came to Bob from the public node: the mail crossed the relay"
    );
    assert_eq!(
        w.bob.log_count("an incoming delivery failed"),
        0,
        "a delivery reached Bob over the relayed connection"
    );
    let status = String::from_utf8_lossy(&w.alice.cli(&["status"]).stdout).into_owned();
    assert_eq!(
        common::value_of(&status, "outbox-waiting").as_deref(),
        Some("1"),
        "the mail waits in Alice's outbox"
    );
}

/// How many envelopes the public node's mailbox service holds: rows of
/// every table of its `mailbox.db` whose name mentions envelopes.
fn envelopes_held(public: &Node) -> usize {
    let db = public.home().join("mailbox.db");
    if !db.exists() {
        // The service creates its database with its first deposit.
        return 0;
    }
    let script = "import sqlite3, sys\n\
                  c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
                  names = [r[0] for r in c.execute(\"SELECT name FROM sqlite_master WHERE type='table'\")]\n\
                  print(sum(c.execute('SELECT COUNT(*) FROM \"%s\"' % n).fetchone()[0] \
                  for n in names if 'envelope' in n.lower()))\n";
    let out = std::process::Command::new(common::python_bin())
        .args(["-c", script])
        .arg(&db)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "cannot read {}: {}",
        db.display(),
        common::describe(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count")
}

#[test]
fn symmetric_nat_mail_is_deposited_at_bobs_mailbox_peer() {
    let Some(mut w) = world(
        NatKind::Symmetric,
        NatKind::Symmetric,
        Transport::Both,
        true,
    ) else {
        return;
    };
    w.bob.start();
    w.alice.start();
    let sent = mail(&w.alice, &w.bob, "through two symmetric NATs");
    w.alice.send_here(&[&w.bob.email], &sent);
    let got = wait_for_mail(&w.bob, "INBOX", 1, "the deposited mail in Bob's INBOX");
    assert_arrived(&got, &sent, "Bob's INBOX");
    print_status(&w.alice);
    for proto in ["tcp", "udp"] {
        let (to_bob, to_public) = alice_bytes(&w, proto);
        println!(
            "Alice's router, {proto}: {to_bob} bytes with Bob, {to_public} with the public node"
        );
        assert!(
            to_bob < ATTACHMENT as u64,
            "{to_bob} bytes over {proto} straight to Bob through symmetric NATs?"
        );
    }
    let (_, tcp_public) = alice_bytes(&w, "tcp");
    let (_, udp_public) = alice_bytes(&w, "udp");
    assert!(
        tcp_public + udp_public >= ATTACHMENT as u64,
        "the deposit did not go to the public node ({tcp_public} + {udp_public} bytes)"
    );
    poll_until(
        Duration::from_secs(60),
        "the mailbox to delete the collected envelope",
        || envelopes_held(&w.public) == 0,
    );
}

#[test]
fn bob_offline_collects_from_his_mailbox_peer_when_he_starts() {
    let Some(mut w) = world(NatKind::Cone, NatKind::Cone, Transport::Both, true) else {
        return;
    };
    // Bob runs once, so that his locator record (naming his mailbox peer)
    // is in the DHT, then goes offline.
    w.bob.start();
    poll_until(
        DELIVERY,
        "Bob to register at his mailbox peer and publish his locator",
        || locator_published(&w.bob) && w.bob.log().contains("mailbox collection round finished"),
    );
    w.bob.stop();
    w.alice.start();
    let sent = mail(&w.alice, &w.bob, "while Bob was away");
    w.alice.send_here(&[&w.bob.email], &sent);
    poll_until(DELIVERY, "the mail deposited at Bob's mailbox peer", || {
        envelopes_held(&w.public) >= 1
    });
    print_status(&w.alice);
    w.bob.start();
    let got = wait_for_mail(&w.bob, "INBOX", 1, "Bob to collect his mail");
    assert_arrived(&got, &sent, "Bob's INBOX");
    poll_until(
        Duration::from_secs(60),
        "the mailbox to hold nothing for Bob after his ack",
        || envelopes_held(&w.public) == 0,
    );
    // Collected once, filed once: a restart collects nothing again.
    w.bob.stop();
    w.bob.start();
    assert_eq!(w.bob.count_here("INBOX"), 1);
}

/// The router loses its state mid-run (a reboot: `conntrack -F`), then the
/// ISP renumbers the line: every connection Alice had dies without a FIN.
/// Her node notices (pings and request timeouts close dead connections),
/// takes a new relay reservation, republishes its locator, and punches a
/// new hole; Bob's node finds her at the new address through the DHT.
#[test]
fn alices_home_forgets_its_mappings_and_changes_address_mid_run() {
    let Some(mut w) = world(NatKind::Cone, NatKind::Cone, Transport::Both, false) else {
        return;
    };
    w.bob.start();
    w.alice.start();
    let stage = Instant::now();
    let first = mail(&w.alice, &w.bob, "before");
    w.alice.send_here(&[&w.bob.email], &first);
    let got = wait_for_mail(&w.bob, "INBOX", 1, "the first mail");
    assert_arrived(&got, &first, "first");
    println!("first mail: {:?}", stage.elapsed());

    // The router forgets every mapping (a reboot, a timeout): the nodes'
    // connections through it are dead without a FIN.
    w.alice_home.flush_conntrack().expect("conntrack -F");
    let stage = Instant::now();
    let second = mail(&w.alice, &w.bob, "after the conntrack flush");
    w.alice.send_here(&[&w.bob.email], &second);
    let got = wait_for_mail(&w.bob, "INBOX", 2, "the mail after the flush");
    assert_arrived(&got, &second, "second");
    println!("mail after the conntrack flush: {:?}", stage.elapsed());

    // The ISP renumbers Alice's line.
    w.alice_home.change_wan_address(150).expect("renumber");
    let stage = Instant::now();
    let third = mail(&w.alice, &w.bob, "from the new address");
    w.alice.send_here(&[&w.bob.email], &third);
    let got = wait_for_mail(&w.bob, "INBOX", 3, "the mail from the new address");
    assert_arrived(&got, &third, "third");
    println!("mail from the new address: {:?}", stage.elapsed());
    // And Bob still finds Alice at her new address.
    let stage = Instant::now();
    let reply = mail(&w.bob, &w.alice, "to the new address");
    w.bob.send_here(&[&w.alice.email], &reply);
    let got = wait_for_mail(&w.alice, "INBOX", 1, "Bob's reply at Alice's new address");
    assert_arrived(&got, &reply, "reply");
    println!("Bob's reply to the new address: {:?}", stage.elapsed());
    print_status(&w.alice);
}

#[test]
fn a_stranger_flooding_bob_lands_in_requests_and_contacts_keep_flowing() {
    const FLOOD: usize = 20;
    let Some(mut w) = world(NatKind::Cone, NatKind::Cone, Transport::Both, false) else {
        return;
    };
    let mallory_home = w.net.add_home(NatKind::Cone, 1);
    let mut mallory = home_node(
        "mallory",
        mallory_home.host(),
        w.transport,
        &w.bootstrap.clone(),
    );
    let mallory = LoggedNode(&mut mallory);
    // Mallory knows Bob's card; Bob has never heard of Mallory.
    mallory.0.add_contact_without_addr(&w.bob);
    // The flood queues up while Bob is away. Mallory then stops, and starts
    // again once Bob is up: a starting node tries every queued entry at
    // once, so the flood hits Bob in one burst, as a flood does, however
    // this machine spread the earlier retries.
    w.alice.start();
    mallory.0.start();
    for i in 0..FLOOD {
        let flood = common::simple_message(
            &mallory.0.email,
            &w.bob.email,
            &format!("buy now {i}"),
            &format!("flood-{i}"),
            "spam",
        );
        mallory.0.send_here(&[&w.bob.email], &flood);
    }
    mallory.0.stop();
    let mut sent = Vec::new();
    for i in 0..3 {
        let m = mail(&w.alice, &w.bob, &format!("from a contact {i}"));
        w.alice.send_here(&[&w.bob.email], &m);
        sent.push(m);
    }
    w.bob.start();
    let got = wait_for_mail(&w.bob, "INBOX", 3, "Alice's three mails");
    for m in &sent {
        assert_arrived(&got, m, "Alice's mail");
    }
    mallory.0.start();
    // Bob's node throttles the stranger (wording of
    // node/src/network/event_loop.rs), and never the contact.
    const THROTTLED: &str = "rate limit for senders who are not contacts";
    poll_until(DELIVERY, "Bob's node rate-limiting the flood", || {
        w.bob.log_count(THROTTLED) >= 1
    });
    // While the stranger is being throttled, a contact's mail still goes.
    let during = mail(&w.alice, &w.bob, "from a contact during the flood");
    w.alice.send_here(&[&w.bob.email], &during);
    let got = wait_for_mail(&w.bob, "INBOX", 4, "Alice's mail during the flood");
    assert_arrived(&got, &during, "Alice's mail during the flood");
    assert_eq!(got.len(), 4, "only Alice's mail is in INBOX");
    poll_until(DELIVERY, "Mallory's first message in Requests", || {
        w.bob.count_here("Requests") >= 1
    });
    let requests = w.bob.fetch_all_here("Requests");
    for r in &requests {
        let text = String::from_utf8_lossy(r);
        assert!(
            text.contains(&format!("From: {}", mallory.0.email)),
            "only Mallory's mail in Requests"
        );
    }
    println!(
        "stranger flood: {} of {FLOOD} messages reached Requests",
        requests.len()
    );
    assert!(requests.len() <= FLOOD);
    println!(
        "Bob's node asked the stranger to retry later {} times",
        w.bob.log_count(THROTTLED)
    );
    let alice = w.alice.peer_id();
    let throttled_alice = w
        .bob
        .log()
        .lines()
        .filter(|l| l.contains(THROTTLED) && l.contains(&alice))
        .count();
    assert_eq!(throttled_alice, 0, "Bob's node throttled a contact");
}

/// A node outside the [`World`] whose log is kept and shown like theirs.
struct LoggedNode<'a>(&'a mut Node);

impl Drop for LoggedNode<'_> {
    fn drop(&mut self) {
        keep_log(self.0);
        if std::thread::panicking() {
            print_log_tail(self.0);
        }
        self.0.kill();
    }
}

/// Imports `other`'s card into `node`'s address book with address hints.
fn import_contact_with_hints(node: &Node, other: &Node, hints: &[String]) {
    let card = other.cli_ok(&["contacts", "export"]);
    let path = node.home().join(format!("{}-hinted.asc", other.name));
    std::fs::write(&path, card).expect("write card");
    let mut args = vec!["contacts", "import", path.to_str().expect("utf-8 path")];
    for hint in hints {
        args.extend(["--addr", hint.as_str()]);
    }
    node.cli_ok(&args);
}

/// What works without issue 6's features, and checks this file's plumbing
/// (daemons in namespaces, their bridges' clients, conntrack byte counts):
/// a NAT'd node reaches a node on the internet through an address hint, and
/// the answer comes back over the connection the NAT'd node opened.
#[test]
fn a_home_node_reaches_a_node_on_the_internet_and_hears_back() {
    let Some(mut net) = Internet::new() else {
        return;
    };
    let server = net.add_public_host("bobhost", 11);
    let home = net.add_home(NatKind::Symmetric, 1);
    let mut bob = node_in("bob", &server.ns, Transport::Tcp);
    let mut alice = node_in("alice", &home.host().ns, Transport::Tcp);
    import_contact_with_hints(
        &alice,
        &bob,
        &[format!("/ip4/{}/tcp/{P2P_PORT}", server.addr)],
    );
    // Bob's only hint for Alice is her LAN address, which he cannot reach.
    import_contact_with_hints(
        &bob,
        &alice,
        &[format!("/ip4/{}/tcp/{P2P_PORT}", home.host().addr)],
    );
    bob.start();
    alice.start();
    let sent = mail(&alice, &bob, "out of the home");
    alice.send_here(&[&bob.email], &sent);
    let got = wait_for_mail(&bob, "INBOX", 1, "Alice's mail at Bob's");
    assert_arrived(&got, &sent, "Bob's INBOX");
    let to_bob = home.bytes_with(server.addr, "tcp").expect("conntrack -L");
    println!("Alice's router: {to_bob} bytes of TCP with Bob");
    assert!(to_bob >= ATTACHMENT as u64, "{to_bob} bytes");
    let flows = home.flows().expect("conntrack -L");
    assert!(
        flows
            .iter()
            .filter(|f| *f.dst.ip() == server.addr)
            .all(|f| *f.mapped.ip() == home.wan),
        "Bob saw Alice only as her router's WAN address: {flows:#?}"
    );
    let reply = mail(&bob, &alice, "back into the home");
    bob.send_here(&[&alice.email], &reply);
    let got = wait_for_mail(&alice, "INBOX", 1, "Bob's reply at Alice's");
    assert_arrived(&got, &reply, "Alice's INBOX");
}

/// Issue 6, "mDNS": two nodes on one LAN segment (two hosts behind one
/// router), with no address hints and no bootstrap node, find each other
/// and deliver, both ways.
#[test]
fn mdns_two_nodes_on_one_lan_find_each_other() {
    let Some(mut net) = Internet::new() else {
        return;
    };
    let home = net.add_home(NatKind::Cone, 2);
    let mut alice = node_in("alice", &home.hosts[0].ns, Transport::Both);
    let mut bob = node_in("bob", &home.hosts[1].ns, Transport::Both);
    alice.add_contact_without_addr(&bob);
    bob.add_contact_without_addr(&alice);
    bob.start();
    alice.start();
    let sent = mail(&alice, &bob, "across the living room");
    alice.send_here(&[&bob.email], &sent);
    let got = wait_for_mail(&bob, "INBOX", 1, "Alice's mail, found by mDNS");
    assert_arrived(&got, &sent, "Bob's INBOX");
    let reply = mail(&bob, &alice, "and back");
    bob.send_here(&[&alice.email], &reply);
    let got = wait_for_mail(&alice, "INBOX", 1, "Bob's reply, found by mDNS");
    assert_arrived(&got, &reply, "Alice's INBOX");
    assert!(
        alice
            .log()
            .contains("found a peer on the local network (mDNS)"),
        "Alice's node did not log an mDNS discovery"
    );
    // Nothing left the LAN: the router tracked no connection to the WAN.
    let flows = home.flows().expect("conntrack -L");
    assert!(
        flows
            .iter()
            .all(|f| f.dst.ip().octets()[..3] != netns::INTERNET_PREFIX),
        "traffic left the home: {flows:#?}"
    );
}
