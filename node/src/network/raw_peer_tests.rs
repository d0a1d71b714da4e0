//! `/mailnode/deliver/2` against a peer that breaks its rules: a bare
//! libp2p swarm that speaks the batch protocol with our codec but is not a
//! mailnode event loop, so it can send a batch no node would send and give
//! answers no node would give. What a real node does with them is the
//! subject.

use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, noise, tcp, yamux};
use tokio::sync::mpsc;

use super::super::batch::{BatchCodec, PROTOCOL_V2, codec};
use super::super::codec::{DeliveryCodec, PROTOCOL, Wire};
use super::*;

/// Both delivery protocols, driven by the test.
#[derive(NetworkBehaviour)]
struct Raw {
    deliver: request_response::Behaviour<DeliveryCodec>,
    deliver2: request_response::Behaviour<BatchCodec>,
}

fn raw_peer() -> Swarm<Raw> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|_| Raw {
            deliver: request_response::Behaviour::with_codec(
                DeliveryCodec::new(1 << 20),
                [(PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default(),
            ),
            deliver2: request_response::Behaviour::with_codec(
                codec(1 << 20),
                [(PROTOCOL_V2, ProtocolSupport::Full)],
                request_response::Config::default(),
            ),
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build()
}

/// Drives `swarm` until `pick` returns something, within [`STEP`].
async fn next_matching<T>(
    swarm: &mut Swarm<Raw>,
    mut pick: impl FnMut(&mut Swarm<Raw>, SwarmEvent<RawEvent>) -> Option<T>,
) -> T {
    tokio::time::timeout(STEP, async {
        loop {
            let event = swarm.select_next_some().await;
            if let Some(found) = pick(swarm, event) {
                return found;
            }
        }
    })
    .await
    .expect("the raw peer saw what it waited for in time")
}

fn item(tag: u8) -> BatchItem {
    BatchItem {
        id: [tag; 16],
        payload: vec![tag; 1024],
        stamp: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_item_limit_is_refused_whole_and_nothing_reaches_the_handler() {
    let bob = node(config(TCP, 1 << 20, NO_LIMIT)).await;
    let (bob_peer, bob_addr) = (bob.network.local_peer_id(), bob.addrs[0].clone());
    let mut inbound = bob.inbound;
    let mut raw = raw_peer();
    raw.add_peer_address(bob_peer, bob_addr);
    let batch = BatchRequest {
        sender_card: Some(vec![0x99, 1]),
        items: (0..=64u8).map(item).collect(),
    };
    raw.behaviour_mut()
        .deliver2
        .send_request(&bob_peer, Wire::Delivery(batch));
    let answer = next_matching(&mut raw, |_, event| match event {
        SwarmEvent::Behaviour(RawEvent::Deliver2(request_response::Event::Message {
            message: request_response::Message::Response { response, .. },
            ..
        })) => Some(Ok(response)),
        SwarmEvent::Behaviour(RawEvent::Deliver2(request_response::Event::OutboundFailure {
            error,
            ..
        })) => Some(Err(error.to_string())),
        _ => None,
    })
    .await;
    match answer {
        Ok(BatchResponse::TooLarge { max_items, .. }) => assert_eq!(max_items, 64),
        other => panic!("a 65-message batch must be answered TooLarge, got {other:?}"),
    }
    assert!(
        matches!(inbound.try_recv(), Err(mpsc::error::TryRecvError::Empty)),
        "no message of a refused batch reaches the inbound handler"
    );
    bob.network.shutdown().await;
}

/// A real node delivers one message to the raw peer, which gives the
/// batch `answer`; returns what the node's caller is told and whether the
/// message then came again over `/1`.
async fn deliver_to_raw(answer: BatchResponse) -> (Result<DeliveryResponse, DeliveryError>, bool) {
    let alice = node(config(TCP, 1 << 20, NO_LIMIT)).await;
    let mut raw = raw_peer();
    raw.listen_on(TCP.parse().expect("multiaddr"))
        .expect("listen");
    let raw_addr: Multiaddr = next_matching(&mut raw, |_, event| match event {
        SwarmEvent::NewListenAddr { address, .. } => Some(address),
        _ => None,
    })
    .await;
    let raw_peer_id: PeerId = *raw.local_peer_id();
    let sending = {
        let network = alice.network.clone();
        tokio::spawn(async move {
            network
                .deliver(raw_peer_id, vec![raw_addr], request(7, 2048))
                .await
        })
    };
    let mut answer = Some(answer);
    let mut over_v1 = false;
    let result = tokio::time::timeout(STEP, async {
        let mut sending = sending;
        loop {
            tokio::select! {
                result = &mut sending => return result.expect("the delivery task"),
                event = raw.select_next_some() => match event {
                    SwarmEvent::Behaviour(RawEvent::Deliver2(request_response::Event::Message {
                        message: request_response::Message::Request { request, channel, .. },
                        ..
                    })) => {
                        let Wire::Delivery(batch) = request else {
                            panic!("the node sent an oversized batch");
                        };
                        assert_eq!(batch.items.len(), 1, "one message, one item");
                        let reply = answer.take().expect("one batch only");
                        raw.behaviour_mut()
                            .deliver2
                            .send_response(channel, reply)
                            .expect("the node waits for the answer");
                    }
                    SwarmEvent::Behaviour(RawEvent::Deliver(request_response::Event::Message {
                        message: request_response::Message::Request { request, channel, .. },
                        ..
                    })) => {
                        let Wire::Delivery(single) = request else {
                            panic!("the node sent an oversized message");
                        };
                        assert_eq!(single.id, [7; 16], "the batch's message came again");
                        over_v1 = true;
                        raw.behaviour_mut()
                            .deliver
                            .send_response(channel, DeliveryResponse::Accepted)
                            .expect("the node waits for the answer");
                    }
                    _ => {}
                },
            }
        }
    })
    .await
    .expect("the delivery ends in time");
    alice.network.shutdown().await;
    (result, over_v1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answer_with_the_wrong_count_is_a_protocol_error_for_its_callers() {
    let (result, over_v1) = deliver_to_raw(BatchResponse::Results(vec![
        DeliveryResponse::Accepted,
        DeliveryResponse::Accepted,
    ]))
    .await;
    match result {
        Err(DeliveryError::Protocol(reason)) => {
            assert!(reason.contains("answered 2 of the 1"), "{reason}")
        }
        other => panic!("two answers for one message must be a protocol error, got {other:?}"),
    }
    assert!(!over_v1, "a broken answer is not taken as a refusal of /2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answered_too_large_is_sent_again_over_deliver_1() {
    let (result, over_v1) = deliver_to_raw(BatchResponse::TooLarge {
        max_frame: 1024,
        max_items: 1,
    })
    .await;
    assert_eq!(result.expect("delivered"), DeliveryResponse::Accepted);
    assert!(over_v1, "the message went again, alone, over /1");
}
