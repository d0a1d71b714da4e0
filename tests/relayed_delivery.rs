//! Issue 6, "Mail never travels over a public relay circuit": a delivery
//! request that reaches a node over a relay v2 circuit is answered
//! `TryLater` and nothing is filed; the same request over a direct
//! connection is accepted and filed once.
//!
//! A mailnode never sends mail over a circuit itself (its outbox waits for
//! a direct connection), so the sender here is a small libp2p swarm in the
//! test, holding Alice's real identity (unlocked from her home, which never
//! runs a daemon): TCP + Noise + Yamux, the relay v2 client, Ping (the node
//! closes connections whose pings fail) and `/mailnode/deliver/1` with the
//! documented framing (4-byte big-endian length, CBOR). Bob is an ordinary
//! node that holds a reservation on a public node's relay; the test dials
//! him through it. Everything runs on 127.0.0.1, mDNS off.

mod common;

use std::io;
use std::time::Duration;

use common::{Node, PASSPHRASE, simple_message, split_verified, wait_until};
use futures::StreamExt;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ProtocolSupport, cbor};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, noise, ping, relay, tcp, yamux};
use mailnode::network::{DeliveryRequest, DeliveryResponse};
use mailnode::pgpmime::{self, OuterHeader};

const DELIVER: StreamProtocol = StreamProtocol::new("/mailnode/deliver/1");

/// `/mailnode/deliver/1` framing as `docs/protocol.md` specifies it: one
/// frame per message, a 4-byte big-endian length, then CBOR.
#[derive(Clone, Default)]
struct FramedCbor(cbor::codec::Codec<DeliveryRequest, DeliveryResponse>);

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    io.read_exact(&mut body).await?;
    Ok(body)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, body: Vec<u8>) -> io::Result<()> {
    let len = u32::try_from(body.len()).map_err(io::Error::other)?;
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    io.write_all(&frame).await?;
    io.flush().await
}

impl request_response::Codec for FramedCbor {
    type Protocol = StreamProtocol;
    type Request = DeliveryRequest;
    type Response = DeliveryResponse;

    async fn read_request<T>(&mut self, p: &StreamProtocol, io: &mut T) -> io::Result<Self::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io).await?;
        request_response::Codec::read_request(&mut self.0, p, &mut body.as_slice()).await
    }

    async fn read_response<T>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Self::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io).await?;
        request_response::Codec::read_response(&mut self.0, p, &mut body.as_slice()).await
    }

    async fn write_request<T>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
        request: Self::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let mut body = Vec::new();
        request_response::Codec::write_request(&mut self.0, p, &mut body, request).await?;
        write_frame(io, body).await
    }

    async fn write_response<T>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
        response: Self::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let mut body = Vec::new();
        request_response::Codec::write_response(&mut self.0, p, &mut body, response).await?;
        write_frame(io, body).await
    }
}

#[derive(NetworkBehaviour)]
struct Sender {
    relay: relay::client::Behaviour,
    ping: ping::Behaviour,
    deliver: request_response::Behaviour<FramedCbor>,
}

fn sender_swarm(keypair: libp2p::identity::Keypair) -> Swarm<Sender> {
    libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .expect("relay client")
        .with_behaviour(|_, relay| Sender {
            relay,
            ping: ping::Behaviour::default(),
            deliver: request_response::Behaviour::with_codec(
                FramedCbor::default(),
                [(DELIVER, ProtocolSupport::Outbound)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            ),
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build()
}

/// Polls the swarm until `wanted` picks an event, or 60 s pass.
async fn until<T>(
    swarm: &mut Swarm<Sender>,
    what: &str,
    mut wanted: impl FnMut(&SwarmEvent<SenderEvent>) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            let event = swarm.select_next_some().await;
            if let Some(found) = wanted(&event) {
                return found;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out after 60 s waiting for {what}"))
}

/// Sends `request` to `peer` and waits for the answer.
async fn deliver(
    swarm: &mut Swarm<Sender>,
    peer: PeerId,
    request: DeliveryRequest,
) -> DeliveryResponse {
    let id = swarm.behaviour_mut().deliver.send_request(&peer, request);
    until(
        swarm,
        "the answer to the delivery request",
        |event| match event {
            SwarmEvent::Behaviour(SenderEvent::Deliver(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            })) if *request_id == id => Some(response.clone()),
            SwarmEvent::Behaviour(SenderEvent::Deliver(
                request_response::Event::OutboundFailure {
                    request_id, error, ..
                },
            )) if *request_id == id => panic!("the delivery request failed: {error}"),
            _ => None,
        },
    )
    .await
}

/// Bob's relay circuit address from `mailnode status`, ending in his PeerId.
fn circuit_of(bob: &Node, bob_id: &PeerId) -> Option<Multiaddr> {
    let status = bob.cli_ok(&["status"]);
    let circuit = common::value_of(&status, "relay-reservation")?;
    let mut addr: Multiaddr = circuit.parse().expect("a multiaddr");
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    Some(addr.with(Protocol::P2p(*bob_id)))
}

#[test]
fn a_delivery_over_a_relay_circuit_is_answered_try_later_and_not_filed() {
    let mut post = Node::create("post");
    // A relay v2 server offers its hop protocol only once it has a
    // confirmed external address: the operator announces it, as on the
    // internet (tests/nat.rs).
    let external = post.p2p_addr();
    post.extra_run_args
        .extend(["--public".into(), "--external".into(), external]);
    post.start();
    let post_addr = format!("{}/p2p/{}", post.p2p_addr(), post.peer_id());

    // Alice's home holds her identity; the test speaks for her.
    let alice = Node::create("alice");
    let mut bob = Node::create("bob");
    bob.add_contact_without_addr(&alice);
    bob.extra_run_args.push("--bootstrap".into());
    bob.extra_run_args.push(post_addr);
    bob.start();
    let bob_id: PeerId = bob.peer_id().parse().expect("peer id");
    let mut circuit = None;
    wait_until(
        Duration::from_secs(60),
        "bob holds a reservation on the public node's relay",
        || {
            circuit = circuit_of(&bob, &bob_id);
            circuit.is_some()
        },
    );
    let circuit = circuit.expect("circuit");

    // A delivery exactly as Alice's node would build it: her message,
    // signed and encrypted to Bob, in its PGP/MIME wrapper, with her card.
    let identity = keys::Identity::load(
        alice.home(),
        &keys::Unlocker::new(keys::PassphraseSource::fixed(PASSPHRASE)),
    )
    .expect("alice's identity");
    let bob_card = keys::ContactCard::from_bytes(bob.cli_ok(&["contacts", "export"]).as_bytes())
        .expect("bob's card");
    let raw = simple_message(
        &alice.email,
        &bob.email,
        "not over a circuit",
        "relayed-1",
        "circuits only coordinate the hole punch",
    );
    let armored = identity.seal(&raw, &bob_card).expect("seal");
    let outer = OuterHeader {
        from: &alice.email,
        to: &bob.email,
        date: "Tue, 24 Nov 2026 19:00:00 +0000",
        message_id: "<relayed-outer@mailnode.invalid>",
    };
    let request = DeliveryRequest {
        id: [0x6a; 16],
        sender_card: Some(identity.card().to_binary()),
        payload: pgpmime::wrap(&outer, &armored),
        stamp: None,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The swarm spawns its connection tasks on this runtime.
    let _runtime_context = runtime.enter();
    let mut swarm = sender_swarm(identity.libp2p_keypair().clone());

    // 1. Through the relay: the only connection to Bob is the circuit.
    swarm.dial(circuit.clone()).expect("dial the circuit");
    let relayed = runtime.block_on(until(
        &mut swarm,
        "a relayed connection to bob",
        |e| match e {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } if *peer_id == bob_id => {
                assert!(endpoint.is_relayed(), "the first connection is the circuit");
                Some(*connection_id)
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                panic!("cannot dial {circuit}: {error}")
            }
            _ => None,
        },
    ));
    let answer = runtime.block_on(deliver(&mut swarm, bob_id, request.clone()));
    match &answer {
        DeliveryResponse::TryLater {
            reason,
            retry_after_secs,
        } => {
            assert!(reason.contains("relay circuit"), "{reason}");
            assert!(*retry_after_secs > 0);
        }
        other => panic!("a delivery over a relay circuit was answered {other:?}"),
    }
    assert_eq!(bob.count("INBOX"), 0, "nothing is filed from a circuit");
    assert_eq!(bob.count("Requests"), 0, "nothing is filed from a circuit");
    assert_eq!(bob.log_count("refused a delivery over a relay circuit"), 1);

    // 2. The same request over a direct connection is accepted: the refusal
    // was the circuit's, not the request's.
    let direct: Multiaddr = format!("{}/p2p/{bob_id}", bob.p2p_addr())
        .parse()
        .expect("multiaddr");
    swarm.dial(direct).expect("dial bob directly");
    runtime.block_on(until(&mut swarm, "a direct connection to bob", |e| {
        matches!(e, SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. }
            if *peer_id == bob_id && !endpoint.is_relayed())
        .then_some(())
    }));
    // Bob closes circuits once a direct connection exists; close ours too so
    // that the request cannot take the circuit.
    let _ = swarm.close_connection(relayed);
    runtime.block_on(until(&mut swarm, "the circuit to close", |e| {
        matches!(e, SwarmEvent::ConnectionClosed { connection_id, .. } if *connection_id == relayed)
            .then_some(())
    }));
    let answer = runtime.block_on(deliver(&mut swarm, bob_id, request));
    assert_eq!(answer, DeliveryResponse::Accepted);
    wait_until(Duration::from_secs(30), "bob files the message", || {
        bob.count("INBOX") == 1
    });
    let (signer, body) = split_verified(&bob.fetch_all("INBOX")[0]);
    assert!(!signer.is_empty(), "the message is verified");
    assert_eq!(body, raw, "filed byte-identical");
    assert_eq!(bob.count("Requests"), 0);
}
