//! Two (or more) in-process nodes on 127.0.0.1 exercising the delivery
//! protocol end to end: real transports, real handshakes, real framing.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::*;

#[path = "raw_peer_tests.rs"]
mod raw_peer;

/// Upper bound for any single step; a test failing this way is a hang.
const STEP: Duration = Duration::from_secs(30);

fn config(listen: &str, max_message_size: usize, rate_limit: RateLimit) -> NetworkConfig {
    NetworkConfig {
        keypair: Keypair::generate_ed25519(),
        listen: vec![listen.parse().expect("multiaddr")],
        max_message_size,
        request_timeout: Duration::from_secs(10),
        idle_connection_timeout: Duration::from_secs(30),
        rate_limit,
        stranger_limits: StrangerLimits {
            per_peer: NO_LIMIT,
            per_ip: NO_LIMIT,
        },
        public: false,
        mdns: false,
        bootstrap: Vec::new(),
        external: Vec::new(),
        mailboxes: Vec::new(),
        mailbox_request_limit: 64 * 1024,
        deliver_v2: true,
    }
}

const NO_LIMIT: RateLimit = RateLimit {
    per_second: 0,
    burst: 0,
};

const TCP: &str = "/ip4/127.0.0.1/tcp/0";

struct Node {
    network: Network,
    inbound: mpsc::Receiver<InboundDelivery>,
    addrs: Vec<Multiaddr>,
}

async fn node(config: NetworkConfig) -> Node {
    let (network, inbound) = start(config).await.expect("the network starts");
    let inbound = inbound.deliveries;
    let addrs = tokio::time::timeout(STEP, network.listen_addrs())
        .await
        .expect("listen addresses in time")
        .expect("listen addresses");
    Node {
        network,
        inbound,
        addrs,
    }
}

fn request(tag: u8, payload_len: usize) -> DeliveryRequest {
    DeliveryRequest {
        id: [tag; 16],
        sender_card: Some(vec![0x99, tag]),
        payload: vec![tag; payload_len],
        stamp: None,
    }
}

/// Answers every inbound delivery with `Accepted`; yields what it saw once
/// the node shuts down.
fn accept_all(mut inbound: mpsc::Receiver<InboundDelivery>) -> JoinHandle<Vec<(PeerId, [u8; 16])>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(delivery) = inbound.recv().await {
            seen.push((delivery.peer, delivery.request.id));
            let _ = delivery.reply.send(DeliveryResponse::Accepted);
        }
        seen
    })
}

impl Node {
    /// Where to deliver to this node: its PeerId and addresses.
    fn target(&self) -> (PeerId, Vec<Multiaddr>) {
        (self.network.local_peer_id(), self.addrs.clone())
    }
}

async fn deliver(
    from: &Network,
    (peer, addrs): (PeerId, Vec<Multiaddr>),
    request: DeliveryRequest,
) -> Result<DeliveryResponse, DeliveryError> {
    tokio::time::timeout(STEP, from.deliver(peer, addrs, request))
        .await
        .expect("an answer in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_round_trip_carries_the_authenticated_peer_id() {
    let alice = node(config(TCP, 1 << 20, NO_LIMIT)).await;
    let mut bob = node(config(TCP, 1 << 20, NO_LIMIT)).await;
    assert!(
        bob.addrs.iter().all(|a| !a.to_string().ends_with("/tcp/0")),
        "port 0 is resolved: {:?}",
        bob.addrs
    );

    let sent = request(1, 4096);
    let sending = deliver(&alice.network, bob.target(), sent.clone());
    let receiving = async {
        let delivery = tokio::time::timeout(STEP, bob.inbound.recv())
            .await
            .expect("a delivery in time")
            .expect("the channel is open");
        assert_eq!(delivery.peer, alice.network.local_peer_id());
        assert_eq!(delivery.request.id, sent.id);
        assert_eq!(delivery.request.sender_card, sent.sender_card);
        assert_eq!(delivery.request.payload, sent.payload);
        delivery
            .reply
            .send(DeliveryResponse::Accepted)
            .expect("the network waits for the answer");
    };
    let (answer, ()) = tokio::join!(sending, receiving);
    assert_eq!(answer.expect("delivered"), DeliveryResponse::Accepted);

    // The inbound handler's own verdicts travel back unchanged.
    let sending = deliver(&alice.network, bob.target(), request(2, 10));
    let receiving = async {
        let delivery = bob.inbound.recv().await.expect("a delivery");
        let _ = delivery.reply.send(DeliveryResponse::Rejected {
            reason: "unknown sender".into(),
        });
    };
    let (answer, ()) = tokio::join!(sending, receiving);
    assert_eq!(
        answer.expect("answered"),
        DeliveryResponse::Rejected {
            reason: "unknown sender".into()
        }
    );

    // A dropped reply becomes TryLater, not a hang or a closed stream.
    let sending = deliver(&alice.network, bob.target(), request(3, 10));
    let receiving = async {
        drop(bob.inbound.recv().await.expect("a delivery"));
    };
    let (answer, ()) = tokio::join!(sending, receiving);
    assert!(
        matches!(answer.expect("answered"), DeliveryResponse::TryLater { .. }),
        "a dropped reply asks for a retry"
    );

    alice.network.shutdown().await;
    bob.network.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_deliveries_are_all_answered() {
    let alice = node(config(TCP, 1 << 20, NO_LIMIT)).await;
    let bob = node(config(TCP, 1 << 20, NO_LIMIT)).await;
    let Node {
        network: bob_network,
        inbound,
        addrs,
    } = bob;
    let acceptor = accept_all(inbound);
    let bob_id = bob_network.local_peer_id();

    let sends = (0..200u8).map(|n| {
        let alice = alice.network.clone();
        let addrs = addrs.clone();
        async move {
            let mut request = request(n, 2048);
            request.id[0] = n;
            tokio::time::timeout(STEP, alice.deliver(bob_id, addrs, request))
                .await
                .expect("an answer in time")
        }
    });
    let answers = futures::future::join_all(sends).await;
    for (n, answer) in answers.into_iter().enumerate() {
        assert_eq!(
            answer.expect("delivered"),
            DeliveryResponse::Accepted,
            "request {n}"
        );
    }
    assert_eq!(
        alice.network.connections().await,
        1,
        "all requests were pipelined over one connection"
    );

    bob_network.shutdown().await;
    let seen = acceptor.await.expect("the acceptor ends");
    assert_eq!(seen.len(), 200);
    assert!(
        seen.iter()
            .all(|(peer, _)| *peer == alice.network.local_peer_id())
    );
    let mut ids: Vec<u8> = seen.iter().map(|(_, id)| id[0]).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200, "every request arrived once");
    alice.network.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_is_rejected_without_reaching_the_inbound_channel() {
    let alice = node(config(TCP, 1 << 20, NO_LIMIT)).await;
    let mut bob = node(config(TCP, 1024, NO_LIMIT)).await;

    let answer = deliver(&alice.network, bob.target(), request(9, 200 * 1024)).await;
    let DeliveryResponse::Rejected { reason } = answer.expect("answered") else {
        panic!("an oversized request must be rejected");
    };
    assert!(reason.starts_with("message of "), "{reason}");
    assert!(
        reason.ends_with(" bytes exceeds this node's limit of 1024 bytes"),
        "{reason}"
    );
    let size: u64 = reason["message of ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("the size is a number");
    assert!(size > 200 * 1024);

    // The next (small) request is the first thing the inbound side sees.
    let sending = deliver(&alice.network, bob.target(), request(10, 100));
    let receiving = async {
        let delivery = bob.inbound.recv().await.expect("a delivery");
        assert_eq!(
            delivery.request.id, [10; 16],
            "the oversized request never arrived"
        );
        let _ = delivery.reply.send(DeliveryResponse::Accepted);
    };
    let (answer, ()) = tokio::join!(sending, receiving);
    assert_eq!(answer.expect("delivered"), DeliveryResponse::Accepted);
    alice.network.shutdown().await;
    bob.network.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_rate_limit_get_try_later() {
    let alice = node(config(TCP, 1 << 20, NO_LIMIT)).await;
    let limit = RateLimit {
        per_second: 1,
        burst: 2,
    };
    let Node {
        network: bob_network,
        inbound,
        addrs,
    } = node(config(TCP, 1 << 20, limit)).await;
    let acceptor = accept_all(inbound);
    let bob_id = bob_network.local_peer_id();

    let started = std::time::Instant::now();
    let sends = (0..6u8).map(|n| {
        let alice = alice.network.clone();
        let addrs = addrs.clone();
        async move {
            tokio::time::timeout(STEP, alice.deliver(bob_id, addrs, request(n, 10)))
                .await
                .expect("an answer in time")
        }
    });
    let answers: Vec<DeliveryResponse> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|answer| answer.expect("answered"))
        .collect();
    let elapsed = started.elapsed().as_secs();
    let accepted = answers
        .iter()
        .filter(|a| **a == DeliveryResponse::Accepted)
        .count();
    let limited = answers
        .iter()
        .filter(|a| {
            **a == DeliveryResponse::TryLater {
                reason: "rate limit".into(),
                retry_after_secs: 1,
            }
        })
        .count();
    assert_eq!(accepted + limited, answers.len(), "{answers:?}");
    // The burst plus at most one refill per elapsed second.
    assert!(
        accepted >= 2 && u64::try_from(accepted).expect("small") <= 2 + elapsed + 1,
        "{answers:?}"
    );
    assert!(limited >= 1, "{answers:?}");

    bob_network.shutdown().await;
    let seen = acceptor.await.expect("the acceptor ends");
    assert_eq!(
        seen.len(),
        accepted,
        "rate-limited requests never reach the inbound side"
    );
    alice.network.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_peer_is_an_error_not_a_hang() {
    let alice = node(config(TCP, 1 << 20, NO_LIMIT)).await;
    let closed_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe");
        probe.local_addr().expect("probe address").port()
    };
    let nobody = Keypair::generate_ed25519().public().to_peer_id();
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{closed_port}")
        .parse()
        .expect("multiaddr");

    let answer = tokio::time::timeout(
        STEP,
        alice.network.deliver(nobody, vec![addr], request(1, 10)),
    )
    .await
    .expect("an answer in time");
    match answer {
        Err(DeliveryError::Unreachable(why)) => {
            assert!(why.contains(&closed_port.to_string()), "{why}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }

    let answer = tokio::time::timeout(
        STEP,
        alice.network.deliver(nobody, Vec::new(), request(2, 10)),
    )
    .await
    .expect("an answer in time");
    assert!(
        matches!(answer, Err(DeliveryError::Unreachable(_))),
        "{answer:?}"
    );
    alice.network.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_works_over_quic() {
    let alice = node(config("/ip4/127.0.0.1/udp/0/quic-v1", 1 << 20, NO_LIMIT)).await;
    let bob = node(config("/ip4/127.0.0.1/udp/0/quic-v1", 1 << 20, NO_LIMIT)).await;
    assert!(
        bob.addrs.iter().all(|a| a.to_string().contains("/quic-v1")),
        "{:?}",
        bob.addrs
    );
    let Node {
        network: bob_network,
        inbound,
        addrs,
    } = bob;
    let acceptor = accept_all(inbound);
    let answer = tokio::time::timeout(
        STEP,
        alice
            .network
            .deliver(bob_network.local_peer_id(), addrs, request(5, 100_000)),
    )
    .await
    .expect("an answer in time");
    assert_eq!(answer.expect("delivered"), DeliveryResponse::Accepted);
    bob_network.shutdown().await;
    let seen = acceptor.await.expect("the acceptor ends");
    assert_eq!(seen, vec![(alice.network.local_peer_id(), [5; 16])]);
    alice.network.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_the_inbound_channel_and_refuses_later_work() {
    let mut alice = node(config(TCP, 1 << 20, NO_LIMIT)).await;
    alice.network.shutdown().await;
    let closed = tokio::time::timeout(STEP, alice.inbound.recv())
        .await
        .expect("the channel closes in time");
    assert!(closed.is_none());
    let answer = alice
        .network
        .deliver(PeerId::random(), Vec::new(), request(1, 1))
        .await;
    assert!(matches!(answer, Err(DeliveryError::Shutdown)), "{answer:?}");
    assert!(matches!(
        alice.network.listen_addrs().await,
        Err(NetworkError::Stopped)
    ));
    // A second shutdown returns at once.
    tokio::time::timeout(STEP, alice.network.shutdown())
        .await
        .expect("a second shutdown returns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_a_clear_start_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let result = start(config(
        &format!("/ip4/127.0.0.1/tcp/{port}"),
        1024,
        NO_LIMIT,
    ))
    .await;
    match result {
        Err(err @ NetworkError::Listen { .. }) => {
            let text = err.to_string();
            assert!(
                text.contains(&port.to_string()) && text.contains("--listen"),
                "{text}"
            );
        }
        Err(other) => panic!("expected a listen error, got {other}"),
        Ok(_) => panic!("listening on a taken port must fail"),
    }
}

/// Answers by the delivery id's first byte: 3 is refused, 4 needs a stamp,
/// the rest are accepted. Yields the ids seen once the node shuts down.
fn answer_by_tag(mut inbound: mpsc::Receiver<InboundDelivery>) -> JoinHandle<Vec<[u8; 16]>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(delivery) = inbound.recv().await {
            seen.push(delivery.request.id);
            let answer = match delivery.request.id[0] {
                3 => DeliveryResponse::Rejected {
                    reason: "refused".into(),
                },
                4 => DeliveryResponse::StampRequired { bits: 20 },
                _ => DeliveryResponse::Accepted,
            };
            let _ = delivery.reply.send(answer);
        }
        seen
    })
}

/// Sends messages 1..=8 at once (they travel as batches where both ends
/// speak `/2`) and checks every message gets its own verdict, card and
/// payload intact.
async fn per_message_verdicts(sender_v2: bool, receiver_v2: bool) {
    let mut alice_config = config(TCP, 1 << 20, NO_LIMIT);
    alice_config.deliver_v2 = sender_v2;
    let mut bob_config = config(TCP, 1 << 20, NO_LIMIT);
    bob_config.deliver_v2 = receiver_v2;
    let alice = node(alice_config).await;
    let bob = node(bob_config).await;
    let Node {
        network: bob_network,
        inbound,
        addrs,
    } = bob;
    let seen = answer_by_tag(inbound);
    let target = (bob_network.local_peer_id(), addrs);
    let answers = futures::future::join_all(
        (1..=8u8).map(|tag| deliver(&alice.network, target.clone(), request(tag, 10 * 1024))),
    )
    .await;
    for (tag, answer) in (1..=8u8).zip(answers) {
        let expected = match tag {
            3 => DeliveryResponse::Rejected {
                reason: "refused".into(),
            },
            4 => DeliveryResponse::StampRequired { bits: 20 },
            _ => DeliveryResponse::Accepted,
        };
        assert_eq!(
            answer.expect("an answer"),
            expected,
            "message {tag} (sender /2 {sender_v2}, receiver /2 {receiver_v2})"
        );
    }
    bob_network.shutdown().await;
    let mut seen = seen.await.expect("the handler ends");
    seen.sort();
    assert_eq!(seen, (1..=8u8).map(|tag| [tag; 16]).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_gets_one_verdict_per_message() {
    per_message_verdicts(true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deliver_2_sender_falls_back_to_a_deliver_1_only_receiver() {
    per_message_verdicts(true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deliver_1_only_sender_reaches_a_deliver_2_receiver() {
    per_message_verdicts(false, true).await;
}
