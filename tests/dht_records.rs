//! Issue 6, "bad input": locator records offered to a real public node over
//! the DHT. A rogue libp2p peer, built here with rust-libp2p's own
//! Kademlia on `/mailnode/kad/1`, sends a real `mailnode run --public`
//! daemon on loopback forged, expired, misfiled, oversized and rolled-back
//! records. Each is refused with a log line naming why, and a lookup
//! afterwards finds nothing (or the newer record); a good record offered the
//! same way is stored and served, which shows the refusals are the node's
//! checks and not a path that never stores anything.

mod common;

use std::time::{Duration, Instant};

use common::Node;
use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::kad::store::MemoryStore;
use libp2p::kad::{self, GetRecordOk, QueryResult, Quorum, Record, RecordKey};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, noise, tcp, yamux};
use mailnode::network::locator::{self, Locator};

/// Deadline of each step: a put, a lookup, a log line.
const STEP: Duration = Duration::from_secs(30);

/// The rogue's Kademlia query timeout: a query ends, one way or the other,
/// well before a step's deadline.
const QUERY: Duration = Duration::from_secs(10);

/// The log line of a refused record (node/src/network/discovery.rs).
const REFUSED: &str = "refused a DHT record";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A signed locator of `keypair`'s node with sequence number `seq`,
/// expiring `expires` (Unix seconds).
fn signed(keypair: &Keypair, seq: u64, expires: u64) -> Vec<u8> {
    Locator {
        peer: keypair.public().to_peer_id(),
        addrs: vec!["/ip4/203.0.113.7/tcp/4870".parse().expect("multiaddr")],
        mailboxes: Vec::new(),
        seq,
        expires,
    }
    .sign(keypair)
    .expect("sign")
}

/// A Kademlia client that talks to the node under test only.
struct Rogue {
    swarm: Swarm<kad::Behaviour<MemoryStore>>,
    node: PeerId,
}

impl Rogue {
    fn new(node: PeerId, addr: Multiaddr) -> Rogue {
        let mut swarm = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("tcp")
            .with_behaviour(|key| {
                let peer = key.public().to_peer_id();
                let mut config = kad::Config::new(StreamProtocol::new("/mailnode/kad/1"));
                config.set_query_timeout(QUERY);
                kad::Behaviour::with_config(peer, MemoryStore::new(peer), config)
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        swarm.behaviour_mut().set_mode(Some(kad::Mode::Client));
        swarm.behaviour_mut().add_address(&node, addr);
        Rogue { swarm, node }
    }

    /// Offers `value` under `key` to the node and waits until the put
    /// query ends (the node's answer says nothing about whether it stored
    /// the record: its filter decides after answering).
    async fn offer(&mut self, key: RecordKey, value: Vec<u8>) {
        let record = Record {
            key,
            value,
            publisher: None,
            expires: None,
        };
        let id = self.swarm.behaviour_mut().put_record_to(
            record,
            std::iter::once(self.node),
            Quorum::One,
        );
        self.until(|event| match event {
            kad::Event::OutboundQueryProgressed {
                id: done,
                result: QueryResult::PutRecord(_),
                ..
            } if done == id => Some(()),
            _ => None,
        })
        .await;
    }

    /// Looks `key` up; returns the values found.
    async fn lookup(&mut self, key: RecordKey) -> Vec<Vec<u8>> {
        // The rogue's own store would answer first; it must ask the node.
        kad::store::RecordStore::remove(self.swarm.behaviour_mut().store_mut(), &key);
        let id = self.swarm.behaviour_mut().get_record(key);
        let mut found = Vec::new();
        loop {
            let step = self
                .until(|event| match event {
                    kad::Event::OutboundQueryProgressed {
                        id: done,
                        result: QueryResult::GetRecord(result),
                        step,
                        ..
                    } if done == id => Some((result, step.last)),
                    _ => None,
                })
                .await;
            match step {
                (Ok(GetRecordOk::FoundRecord(peer_record)), last) => {
                    found.push(peer_record.record.value);
                    if last {
                        return found;
                    }
                }
                (_, true) | (Err(_), _) => return found,
                (Ok(_), false) => {}
            }
        }
    }

    /// Drives the swarm until `pick` returns something, within [`STEP`].
    async fn until<T>(&mut self, mut pick: impl FnMut(kad::Event) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let event = tokio::time::timeout_at(deadline, self.swarm.select_next_some())
                .await
                .expect("the rogue's Kademlia step did not finish in time");
            if let SwarmEvent::Behaviour(event) = event
                && let Some(found) = pick(event)
            {
                return found;
            }
        }
    }
}

/// Waits until `node`'s log holds `n` lines containing `needle`.
fn wait_for_log(node: &Node, needle: &str, n: usize) {
    let deadline = Instant::now() + STEP;
    while node.log_count(needle) < n {
        assert!(
            Instant::now() < deadline,
            "timed out after {STEP:?} waiting for {n} log lines with {needle:?}; the node's log:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn forged_expired_oversized_and_rolled_back_locator_records_are_refused_by_a_real_node() {
    let mut node = Node::create("dht");
    node.extra_run_args = vec!["--public".into()];
    node.start();
    let node_peer: PeerId = node.peer_id().parse().expect("peer id");
    let addr: Multiaddr = node.p2p_addr().parse().expect("multiaddr");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut rogue = Rogue::new(node_peer, addr);
        let victim = Keypair::generate_ed25519();
        let victim_key = locator::key(&victim.public().to_peer_id());
        let now = unix_now();
        let good = signed(&victim, 2_000, now + 3600);

        // Forged: a signed record whose address was changed afterwards
        // (203.0.113.7 becomes 203.0.113.8; the CBOR stays well formed).
        let mut forged = good.clone();
        let at = forged
            .windows(4)
            .position(|w| w == [203, 0, 113, 7])
            .expect("the address in the encoded record");
        forged[at + 3] = 8;
        // Expired an hour ago, and valid for longer than 48 hours.
        let expired = signed(&victim, 2_001, now - 3600);
        let too_long = signed(&victim, 2_002, now + 49 * 3600);
        // Oversized.
        let oversized = vec![0xa5; locator::MAX_RECORD_BYTES + 1];
        // Misfiled: a good record of someone else under the victim's key.
        let other = Keypair::generate_ed25519();
        let misfiled = signed(&other, 2_003, now + 3600);

        let bad = [
            ("forged", forged),
            ("expired", expired),
            ("valid too long", too_long),
            ("oversized", oversized),
            ("misfiled", misfiled),
        ];
        let before = node.log_count(REFUSED);
        for (n, (what, value)) in bad.into_iter().enumerate() {
            rogue.offer(victim_key.clone(), value).await;
            // One more refusal in the log for each, before the next.
            wait_for_log(&node, REFUSED, before + n + 1);
            println!("{what}: refused");
        }
        let found = rogue.lookup(victim_key.clone()).await;
        assert!(
            found.is_empty(),
            "the node serves a record it should have refused ({} found)",
            found.len()
        );

        // The good record is stored and served, byte for byte.
        rogue.offer(victim_key.clone(), good.clone()).await;
        let deadline = Instant::now() + STEP;
        loop {
            let found = rogue.lookup(victim_key.clone()).await;
            if found.contains(&good) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the node never served the good record (found {})",
                found.len()
            );
        }

        // A rollback to a lower sequence number is refused; the newer stays.
        let older = signed(&victim, 1_000, now + 3600);
        let older_refusals = node.log_count("older than the one stored");
        rogue.offer(victim_key.clone(), older).await;
        wait_for_log(&node, "older than the one stored", older_refusals + 1);
        let found = rogue.lookup(victim_key.clone()).await;
        assert_eq!(found, vec![good], "the rollback replaced the newer record");
    });
    let log = node.log();
    for reason in ["signature", "expired", "48", "bytes", "key"] {
        assert!(
            log.lines()
                .any(|l| l.contains(REFUSED) && l.to_lowercase().contains(reason)),
            "no refusal in the log names {reason:?}:\n{}",
            log.lines()
                .filter(|l| l.contains(REFUSED))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
