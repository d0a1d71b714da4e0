//! `/mailnode/deliver/2`: several messages to one peer in one request, one
//! answer per message (specified in `docs/protocol.md`).
//!
//! This module owns the batch wire types, their limits, and both ends of
//! the protocol inside the event loop:
//! - sending: deliveries the outbox hands over one at a time are queued per
//!   peer and sent together once the loop has no command waiting (so
//!   nothing waits for a timer), split at [`MAX_ITEMS`] messages or
//!   [`MAX_BATCH_PAYLOAD`] bytes; each caller still gets its own message's
//!   answer. A peer that does not speak `/2` (the stream negotiation fails,
//!   or Identify lists only `/1`) gets the same messages over `/1`.
//! - receiving: every message of a batch passes the same per-message
//!   admission as a `/1` request (relay refusal, stranger limits, the
//!   per-peer rate limit) and goes to the inbound handler as its own
//!   [`InboundDelivery`], so authentication, stamps, deduplication and the
//!   ack-after-commit rule are exactly those of `/1`.
//!
//! It must not decrypt, verify or store anything (`inbound.rs` does).

use std::collections::HashMap;
use std::time::Instant;

use futures::future::join_all;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::ConnectionId;
use libp2p::{PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};

use super::codec::{FramedCodec, Wire, request_limit};
use super::event_loop::{DeliveryReply, EventLoop, MAX_REASON};
use super::swarm::MAX_BATCH_STREAMS;
use super::{DeliveryError, DeliveryRequest, DeliveryResponse};

/// The batch delivery protocol id.
pub(crate) const PROTOCOL_V2: StreamProtocol = StreamProtocol::new("/mailnode/deliver/2");

/// Most messages in one batch.
pub(crate) const MAX_ITEMS: usize = 64;

/// A batch is closed once its payloads reach this many bytes (a single
/// larger message travels alone in its own batch).
pub(crate) const MAX_BATCH_PAYLOAD: usize = 1024 * 1024;

/// CBOR overhead per item (id, stamp, keys) allowed on top of the payloads.
const ITEM_ALLOWANCE: u64 = 512;

/// Largest `/2` response body: one answer per item, each reason clamped to
/// `MAX_REASON` bytes.
pub(crate) const MAX_BATCH_RESPONSE: u64 = (MAX_ITEMS as u64) * (MAX_REASON as u64 + 64) + 1024;

/// One message of a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchItem {
    /// The delivery id; deduplication is by (peer, id), as on `/1`.
    #[serde(with = "serde_bytes")]
    pub id: [u8; 16],
    /// The RFC 3156 PGP/MIME message, signed and encrypted.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// A proof-of-work stamp for this message, when the recipient asked.
    #[serde(default)]
    pub stamp: Option<crate::pow::Stamp>,
}

/// A `/2` request: the sender's card once, then the messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchRequest {
    /// The sender's contact card (binary OpenPGP certificate), for every
    /// message of the batch.
    #[serde(with = "serde_bytes")]
    pub sender_card: Option<Vec<u8>>,
    /// The messages, at most [`MAX_ITEMS`].
    pub items: Vec<BatchItem>,
}

/// The answer to a [`BatchRequest`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum BatchResponse {
    /// One answer per item, in the request's order.
    Results(Vec<DeliveryResponse>),
    /// The batch exceeded the receiver's limits and was not read; the
    /// sender sends its messages one by one over `/1` instead.
    TooLarge {
        /// The largest request frame body the receiver reads.
        max_frame: u64,
        /// The most items the receiver takes in one batch.
        max_items: u32,
    },
}

/// The codec of `/mailnode/deliver/2`.
pub(crate) type BatchCodec = FramedCodec<BatchRequest, BatchResponse>;

/// The `/2` codec for a node accepting messages of up to
/// `max_message_size` bytes.
pub(crate) fn codec(max_message_size: usize) -> BatchCodec {
    let items = (MAX_ITEMS as u64) * ITEM_ALLOWANCE;
    let limit = request_limit(max_message_size.max(MAX_BATCH_PAYLOAD)).saturating_add(items);
    BatchCodec::with_limits(limit, MAX_BATCH_RESPONSE)
}

/// One delivery waiting to go out in a batch.
pub(crate) struct Queued {
    pub(crate) request: DeliveryRequest,
    pub(crate) reply: DeliveryReply,
}

/// A batch on the wire: its peer and its messages (kept for the fallback
/// to `/1`).
pub(crate) struct InFlight {
    peer: PeerId,
    items: Vec<Queued>,
}

/// The sending side's state: what waits per peer, what is in flight, and
/// which peers speak only `/1`.
#[derive(Default)]
pub(crate) struct Batches {
    /// Whether this node speaks `/2` at all (`[network] deliver_v2`).
    pub(crate) enabled: bool,
    queued: HashMap<PeerId, Vec<Queued>>,
    in_flight: HashMap<OutboundRequestId, InFlight>,
    /// Batches on the wire per peer, at most `MAX_BATCH_STREAMS` (the
    /// receiver's stream limit); more waits in `queued` and fills the next
    /// batches.
    streams: HashMap<PeerId, usize>,
    v1_only: std::collections::HashSet<PeerId>,
}

impl Batches {
    /// The state of a node that speaks `/2` when `enabled`.
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            ..Self::default()
        }
    }

    /// Whether anything waits to be sent.
    pub(crate) fn has_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    /// Fails everything queued or in flight (the loop is stopping).
    pub(crate) fn fail_all(self) {
        let queued = self.queued.into_values().flatten();
        let in_flight = self.in_flight.into_values().flat_map(|b| b.items);
        for item in queued.chain(in_flight) {
            let _ = item.reply.send(Err(DeliveryError::Shutdown));
        }
    }
}

/// Splits queued deliveries into batches: at most [`MAX_ITEMS`], payloads up
/// to [`MAX_BATCH_PAYLOAD`] (at least one message), one sender card each.
pub(crate) fn split(queued: Vec<Queued>) -> Vec<Vec<Queued>> {
    let mut batches: Vec<Vec<Queued>> = Vec::new();
    let mut bytes = 0usize;
    for item in queued {
        let fits = batches.last().is_some_and(|batch| {
            batch.len() < MAX_ITEMS
                && bytes.saturating_add(item.request.payload.len()) <= MAX_BATCH_PAYLOAD
                && batch[0].request.sender_card == item.request.sender_card
        });
        if !fits {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes = bytes.saturating_add(item.request.payload.len());
        if let Some(batch) = batches.last_mut() {
            batch.push(item);
        }
    }
    batches
}

/// The wire request of one batch; the payloads are copied once here, the
/// originals stay for a fallback to `/1`.
fn wire_request(items: &[Queued]) -> BatchRequest {
    BatchRequest {
        sender_card: items.first().and_then(|q| q.request.sender_card.clone()),
        items: items
            .iter()
            .map(|q| BatchItem {
                id: q.request.id,
                payload: q.request.payload.clone(),
                stamp: q.request.stamp.clone(),
            })
            .collect(),
    }
}

impl EventLoop {
    /// Queues one outbound delivery: into the peer's next batch when this
    /// node and the peer speak `/2`, else straight out over `/1`.
    pub(crate) fn queue_delivery(
        &mut self,
        peer: PeerId,
        request: DeliveryRequest,
        reply: DeliveryReply,
    ) {
        if !self.batches.enabled || self.batches.v1_only.contains(&peer) {
            self.send_single(peer, request, reply);
            return;
        }
        let queued = self.batches.queued.entry(peer).or_default();
        queued.push(Queued { request, reply });
        if queued.len() >= MAX_ITEMS {
            self.flush_peer(peer);
        }
    }

    /// Sends every queued batch.
    pub(crate) fn flush_batches(&mut self) {
        let peers: Vec<PeerId> = self.batches.queued.keys().copied().collect();
        for peer in peers {
            self.flush_peer(peer);
        }
    }

    fn flush_peer(&mut self, peer: PeerId) {
        let streams = self.batches.streams.get(&peer).copied().unwrap_or(0);
        let room = MAX_BATCH_STREAMS.saturating_sub(streams);
        if room == 0 {
            return;
        }
        let Some(queued) = self.batches.queued.remove(&peer) else {
            return;
        };
        let mut batches = split(queued);
        if batches.len() > room {
            let rest: Vec<Queued> = batches.drain(room..).flatten().collect();
            self.batches.queued.insert(peer, rest);
        }
        for items in batches {
            let request = wire_request(&items);
            tracing::trace!(%peer, messages = items.len(), "sending a batch");
            let Some(deliver2) = self.swarm.behaviour_mut().deliver2.as_mut() else {
                for item in items {
                    self.send_single(peer, item.request, item.reply);
                }
                continue;
            };
            let id = deliver2.send_request(&peer, Wire::Delivery(request));
            self.batches.in_flight.insert(id, InFlight { peer, items });
            *self.batches.streams.entry(peer).or_default() += 1;
        }
    }

    /// Takes a batch that got its answer (or failed) off the wire; the
    /// peer's next queued batch may go.
    fn finished(&mut self, id: OutboundRequestId) -> Option<InFlight> {
        let batch = self.batches.in_flight.remove(&id)?;
        if let Some(streams) = self.batches.streams.get_mut(&batch.peer) {
            *streams = streams.saturating_sub(1);
            if *streams == 0 {
                self.batches.streams.remove(&batch.peer);
            }
        }
        Some(batch)
    }

    /// Identify told us which protocols `peer` speaks.
    pub(crate) fn learn_protocols(&mut self, peer: PeerId, protocols: &[StreamProtocol]) {
        if protocols.contains(&PROTOCOL_V2) {
            self.batches.v1_only.remove(&peer);
        } else if protocols.contains(&super::codec::PROTOCOL) {
            self.batches.v1_only.insert(peer);
        }
    }

    /// Resends a batch's messages one by one over `/1`.
    fn fall_back(&mut self, batch: InFlight) {
        for item in batch.items {
            self.send_single(batch.peer, item.request, item.reply);
        }
    }

    pub(crate) fn on_batch_event(
        &mut self,
        event: request_response::Event<Wire<BatchRequest>, BatchResponse>,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                connection_id,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
            } => self.on_inbound_batch(peer, connection_id, request, channel),
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some(batch) = self.finished(request_id) else {
                    return;
                };
                match response {
                    BatchResponse::Results(results) if results.len() == batch.items.len() => {
                        for (item, result) in batch.items.into_iter().zip(results) {
                            let _ = item.reply.send(Ok(result));
                        }
                    }
                    BatchResponse::Results(results) => {
                        let error = DeliveryError::Protocol(format!(
                            "the recipient answered {} of the {} messages of a batch",
                            results.len(),
                            batch.items.len()
                        ));
                        for item in batch.items {
                            let _ = item.reply.send(Err(error.clone()));
                        }
                    }
                    BatchResponse::TooLarge {
                        max_frame,
                        max_items,
                    } => {
                        tracing::debug!(peer = %batch.peer, max_frame, max_items, "a batch was too large for the recipient; sending its messages one by one");
                        self.fall_back(batch);
                    }
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let Some(batch) = self.finished(request_id) else {
                    return;
                };
                if matches!(error, OutboundFailure::UnsupportedProtocols) {
                    tracing::debug!(%peer, "the peer does not speak {PROTOCOL_V2}; using {}", super::codec::PROTOCOL);
                    self.batches.v1_only.insert(peer);
                    self.fall_back(batch);
                    return;
                }
                let error = self.outbound_failed(peer, error);
                for item in batch.items {
                    let _ = item.reply.send(Err(error.clone()));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "an incoming batch failed: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Admission of one inbound batch: the size caps, then each message as
    /// if it had come alone over `/1`; the answer goes once every message
    /// has its verdict.
    fn on_inbound_batch(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        request: Wire<BatchRequest>,
        channel: ResponseChannel<BatchResponse>,
    ) {
        let batch = match request {
            Wire::Delivery(batch) if batch.items.len() <= MAX_ITEMS => batch,
            refused => {
                match refused {
                    Wire::Delivery(batch) => {
                        tracing::info!(%peer, items = batch.items.len(), "refused a batch with too many messages");
                    }
                    Wire::Oversized { declared } => {
                        tracing::info!(%peer, declared, "refused an oversized batch");
                    }
                }
                let too_large = BatchResponse::TooLarge {
                    max_frame: codec(self.max_message_size).request_limit(),
                    max_items: MAX_ITEMS as u32,
                };
                self.respond_batch(channel, peer, too_large);
                return;
            }
        };
        tracing::debug!(%peer, messages = batch.items.len(), "received a batch");
        let now = Instant::now();
        let BatchRequest { sender_card, items } = batch;
        // Each message must fit the frame a `/1` request of it would need.
        let single_limit = request_limit(self.max_message_size);
        let card_len = sender_card.as_ref().map_or(0, Vec::len);
        let mut verdicts = Vec::with_capacity(items.len());
        for item in items {
            let size =
                u64::try_from(item.payload.len().saturating_add(card_len)).unwrap_or(u64::MAX);
            let verdict = match self.admit(peer, connection, now) {
                Err(response) => Err(response),
                Ok(()) if size > single_limit => {
                    tracing::info!(%peer, size, "refused an oversized message of a batch");
                    Err(self.oversized(size))
                }
                Ok(()) => self.hand_off(
                    peer,
                    DeliveryRequest {
                        id: item.id,
                        sender_card: sender_card.clone(),
                        payload: item.payload,
                        stamp: item.stamp,
                    },
                ),
            };
            verdicts.push(verdict);
        }
        let timeout = self.request_timeout;
        self.batch_replies.push(Box::pin(async move {
            let answers = verdicts.into_iter().map(|verdict| async move {
                match verdict {
                    Ok(pending) => super::event_loop::await_verdict(pending, timeout).await,
                    Err(response) => response,
                }
            });
            let results = join_all(answers).await;
            (channel, peer, BatchResponse::Results(results))
        }));
    }

    pub(crate) fn respond_batch(
        &mut self,
        channel: ResponseChannel<BatchResponse>,
        peer: PeerId,
        response: BatchResponse,
    ) {
        let response = match response {
            BatchResponse::Results(results) => BatchResponse::Results(
                results
                    .into_iter()
                    .map(super::event_loop::clamp_reason)
                    .collect(),
            ),
            other => other,
        };
        let sent = self
            .swarm
            .behaviour_mut()
            .deliver2
            .as_mut()
            .map(|deliver2| deliver2.send_response(channel, response).is_ok());
        if sent != Some(true) {
            tracing::debug!(%peer, "the requester left before the batch's answer was sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;
    use libp2p::request_response::{Codec as _, cbor};
    use tokio::sync::oneshot;

    use super::super::codec::test_support::{assert_oversized_is_drained, round_trip_response};
    use super::*;

    fn item(tag: u8, len: usize) -> BatchItem {
        BatchItem {
            id: [tag; 16],
            payload: vec![tag; len],
            stamp: None,
        }
    }

    fn queued(tag: u8, len: usize, card: &[u8]) -> Queued {
        let (reply, _) = oneshot::channel();
        Queued {
            request: DeliveryRequest {
                id: [tag; 16],
                sender_card: Some(card.to_vec()),
                payload: vec![tag; len],
                stamp: None,
            },
            reply,
        }
    }

    #[tokio::test]
    async fn a_batch_round_trips_with_one_card() {
        let mut codec = codec(1 << 20);
        let batch = BatchRequest {
            sender_card: Some(vec![0x99, 1, 2]),
            items: vec![item(1, 10), item(2, 20)],
        };
        let mut wire = Vec::new();
        codec
            .write_request(&PROTOCOL_V2, &mut wire, Wire::Delivery(batch))
            .await
            .expect("write");
        // The card appears once, not per message.
        assert_eq!(wire.windows(3).filter(|w| *w == [0x99, 1, 2]).count(), 1);
        let Wire::Delivery(read) = codec
            .read_request(&PROTOCOL_V2, &mut Cursor::new(wire))
            .await
            .expect("read")
        else {
            panic!("expected a batch");
        };
        assert_eq!(read.sender_card, Some(vec![0x99, 1, 2]));
        assert_eq!(read.items.len(), 2);
        assert_eq!(read.items[1].id, [2; 16]);
        assert_eq!(read.items[1].payload, vec![2; 20]);
    }

    #[tokio::test]
    async fn per_message_answers_and_too_large_round_trip() {
        let mut codec = codec(1024);
        for response in [
            BatchResponse::Results(vec![
                DeliveryResponse::Accepted,
                DeliveryResponse::Rejected {
                    reason: "no".into(),
                },
                DeliveryResponse::StampRequired { bits: 20 },
                DeliveryResponse::TryLater {
                    reason: "rate limit".into(),
                    retry_after_secs: 1,
                },
            ]),
            BatchResponse::TooLarge {
                max_frame: 7,
                max_items: 64,
            },
        ] {
            let read = round_trip_response(&mut codec, &PROTOCOL_V2, &response).await;
            assert_eq!(read, response);
        }
    }

    #[tokio::test]
    async fn an_oversized_batch_frame_is_drained_not_buffered() {
        let mut codec = codec(1000);
        assert!(codec.request_limit() > MAX_BATCH_PAYLOAD as u64);
        assert_oversized_is_drained(codec.clone(), &PROTOCOL_V2).await;

        // A frame declaring 4 GiB that ends early is still only a marker.
        let mut wire = u32::MAX.to_be_bytes().to_vec();
        wire.extend([0; 100]);
        let read = codec
            .read_request(&PROTOCOL_V2, &mut Cursor::new(wire))
            .await
            .expect("marker");
        assert!(matches!(read, Wire::Oversized { .. }));
    }

    #[tokio::test]
    async fn the_frame_limit_follows_the_larger_of_message_and_batch_size() {
        assert!(codec(0).request_limit() >= MAX_BATCH_PAYLOAD as u64 + FRAMING);
        assert!(codec(4 << 20).request_limit() >= (4 << 20) + FRAMING);
        // A full batch of messages at the batch's byte cap fits the limit.
        let mut codec = codec(0);
        let per = MAX_BATCH_PAYLOAD / MAX_ITEMS;
        let batch = BatchRequest {
            sender_card: Some(vec![1; 4096]),
            items: (0..MAX_ITEMS).map(|i| item(i as u8, per)).collect(),
        };
        let mut wire = Vec::new();
        codec
            .write_request(&PROTOCOL_V2, &mut wire, Wire::Delivery(batch))
            .await
            .expect("write");
        assert!((wire.len() as u64 - 4) <= codec.request_limit());
        let read = codec
            .read_request(&PROTOCOL_V2, &mut Cursor::new(wire))
            .await
            .expect("read");
        assert!(matches!(read, Wire::Delivery(b) if b.items.len() == MAX_ITEMS));
    }

    const FRAMING: u64 = super::super::codec::FRAMING_ALLOWANCE;

    #[test]
    fn split_caps_items_bytes_and_keeps_one_card_per_batch() {
        let many: Vec<Queued> = (0..MAX_ITEMS + 1)
            .map(|i| queued(i as u8, 10, b"a"))
            .collect();
        let sizes: Vec<usize> = split(many).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![MAX_ITEMS, 1]);

        let half = MAX_BATCH_PAYLOAD / 2;
        let big = vec![
            queued(1, half, b"a"),
            queued(2, half, b"a"),
            queued(3, 1, b"a"),
            queued(4, MAX_BATCH_PAYLOAD * 2, b"a"),
        ];
        let sizes: Vec<usize> = split(big).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 1, 1], "bytes cap; a large message alone");

        let cards = vec![queued(1, 1, b"a"), queued(2, 1, b"b"), queued(3, 1, b"b")];
        let sizes: Vec<usize> = split(cards).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 2]);
    }

    #[tokio::test]
    async fn the_fuzz_seeds_are_a_batch_and_its_answers() {
        let mut codec = codec(1 << 20);
        let seed = include_bytes!("../../../fuzz/seeds/delivery_batch_cbor/request");
        let read = libp2p::request_response::Codec::read_request(
            &mut cbor::codec::Codec::<BatchRequest, BatchResponse>::default(),
            &PROTOCOL_V2,
            &mut &seed[..],
        )
        .await
        .expect("the request seed decodes");
        assert_eq!(read.items.len(), 3);
        assert!(read.items[2].stamp.is_some());
        for (seed, items) in [
            (
                &include_bytes!("../../../fuzz/seeds/delivery_batch_cbor/response")[..],
                4,
            ),
            (
                &include_bytes!("../../../fuzz/seeds/delivery_batch_cbor/too_large")[..],
                0,
            ),
        ] {
            let mut framed = u32::try_from(seed.len())
                .expect("small")
                .to_be_bytes()
                .to_vec();
            framed.extend_from_slice(seed);
            let read = codec
                .read_response(&PROTOCOL_V2, &mut Cursor::new(framed))
                .await
                .expect("the answer seed decodes");
            match read {
                BatchResponse::Results(results) => assert_eq!(results.len(), items),
                BatchResponse::TooLarge { max_items, .. } => assert_eq!(max_items, 64),
            }
        }
    }
}
