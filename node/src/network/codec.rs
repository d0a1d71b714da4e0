//! Wire framing of `/mailnode/deliver/1` and `/mailnode/deliver/2`
//! (specified in `docs/protocol.md`).
//!
//! Every message on a stream is one frame: a 4-byte big-endian length, then
//! that many bytes of CBOR (RFC 8949). On `/1` a frame holds a
//! [`DeliveryRequest`] or a [`DeliveryResponse`]; on `/2` a
//! [`BatchRequest`](super::batch::BatchRequest) or a
//! [`BatchResponse`](super::batch::BatchResponse). One request and one
//! response per stream.
//!
//! Size caps are enforced here, before anything is buffered: a request whose
//! declared length exceeds the node's limit is read and discarded in small
//! chunks (so the sender can finish writing and read our answer) and becomes
//! [`Wire::Oversized`], which the event loop refuses. Responses are capped
//! too. CBOR itself is done by libp2p's serde CBOR codec, run over in-memory
//! buffers, so no second CBOR crate is needed.

use std::io;

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::{self, cbor};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DeliveryRequest, DeliveryResponse};

/// The delivery protocol id: one message per request.
pub(crate) const PROTOCOL: StreamProtocol = StreamProtocol::new("/mailnode/deliver/1");

/// Room for the sender's card, the request id and the CBOR and framing
/// overhead on top of the message payload itself.
pub(crate) const FRAMING_ALLOWANCE: u64 = 64 * 1024;

/// The largest response frame body accepted or sent on `/1`.
pub(crate) const MAX_RESPONSE: u64 = 64 * 1024;

/// The largest frame body the 4-byte length prefix can declare.
const MAX_FRAME: u64 = u32::MAX as u64;

/// What the codec yields for an inbound request.
#[derive(Debug)]
pub(crate) enum Wire<R> {
    /// A well-formed request within the size limit.
    Delivery(R),
    /// A request whose declared length exceeded the limit; its bytes were
    /// discarded unread. Never sent: writing it is an error.
    Oversized {
        /// The frame length the sender declared.
        declared: u64,
    },
}

/// An inbound `/mailnode/deliver/1` request.
pub(crate) type WireRequest = Wire<DeliveryRequest>;

/// A length-prefixed CBOR `request_response::Codec` with a request cap and
/// a response cap.
#[derive(Clone)]
pub(crate) struct FramedCodec<Req, Resp> {
    /// Largest accepted request frame body, in bytes.
    request_limit: u64,
    /// Largest accepted (and sent) response frame body, in bytes.
    response_limit: u64,
    cbor: cbor::codec::Codec<Req, Resp>,
}

/// The codec of `/mailnode/deliver/1`.
pub(crate) type DeliveryCodec = FramedCodec<DeliveryRequest, DeliveryResponse>;

/// The request frame limit for payloads of up to `max_payload` bytes.
pub(crate) fn request_limit(max_payload: usize) -> u64 {
    u64::try_from(max_payload)
        .unwrap_or(MAX_FRAME)
        .saturating_add(FRAMING_ALLOWANCE)
        .min(MAX_FRAME)
}

impl DeliveryCodec {
    /// A codec accepting payloads of up to `max_message_size` bytes.
    pub(crate) fn new(max_message_size: usize) -> Self {
        Self::with_limits(request_limit(max_message_size), MAX_RESPONSE)
    }
}

impl<Req, Resp> FramedCodec<Req, Resp> {
    /// A codec reading request bodies of up to `request_limit` bytes and
    /// response bodies of up to `response_limit`.
    pub(crate) fn with_limits(request_limit: u64, response_limit: u64) -> Self {
        // The inner codec only ever reads from in-memory buffers whose size
        // this codec has already checked, so its own caps are lifted.
        let cbor = cbor::codec::Codec::default()
            .set_request_size_maximum(MAX_FRAME)
            .set_response_size_maximum(MAX_FRAME);
        Self {
            request_limit: request_limit.min(MAX_FRAME),
            response_limit: response_limit.min(MAX_FRAME),
            cbor,
        }
    }

    /// The largest request frame body this codec reads.
    pub(crate) fn request_limit(&self) -> u64 {
        self.request_limit
    }
}

impl<Req, Resp> request_response::Codec for FramedCodec<Req, Resp>
where
    Req: Send + Clone + Serialize + DeserializeOwned,
    Resp: Send + Clone + Serialize + DeserializeOwned,
{
    type Protocol = StreamProtocol;
    type Request = Wire<Req>;
    type Response = Resp;

    async fn read_request<T>(
        &mut self,
        protocol: &Self::Protocol,
        io: &mut T,
    ) -> io::Result<Wire<Req>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let declared = read_length(io).await?;
        if declared > self.request_limit {
            // Discard without buffering; `copy` uses a small fixed buffer.
            let discarded =
                futures::io::copy((&mut *io).take(declared), &mut futures::io::sink()).await?;
            tracing::debug!(
                declared,
                discarded,
                %protocol,
                "discarded an oversized delivery request"
            );
            return Ok(Wire::Oversized { declared });
        }
        let body = read_body(io, declared).await?;
        let request =
            request_response::Codec::read_request(&mut self.cbor, protocol, &mut body.as_slice())
                .await
                .map_err(|err| invalid(protocol, "request", err))?;
        Ok(Wire::Delivery(request))
    }

    async fn read_response<T>(&mut self, protocol: &Self::Protocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        let declared = read_length(io).await?;
        if declared > self.response_limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the answer declares {declared} bytes, more than the {}-byte limit",
                    self.response_limit
                ),
            ));
        }
        let body = read_body(io, declared).await?;
        request_response::Codec::read_response(&mut self.cbor, protocol, &mut body.as_slice())
            .await
            .map_err(|err| invalid(protocol, "answer", err))
    }

    async fn write_request<T>(
        &mut self,
        protocol: &Self::Protocol,
        io: &mut T,
        request: Wire<Req>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let Wire::Delivery(request) = request else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an oversized-request marker cannot be sent",
            ));
        };
        let mut frame = vec![0; 4];
        request_response::Codec::write_request(&mut self.cbor, protocol, &mut frame, request)
            .await?;
        write_frame(io, frame, MAX_FRAME).await
    }

    async fn write_response<T>(
        &mut self,
        protocol: &Self::Protocol,
        io: &mut T,
        response: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let mut frame = vec![0; 4];
        request_response::Codec::write_response(&mut self.cbor, protocol, &mut frame, response)
            .await?;
        write_frame(io, frame, self.response_limit).await
    }
}

/// Reads a frame's 4-byte big-endian length prefix.
async fn read_length<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u64> {
    let mut prefix = [0; 4];
    io.read_exact(&mut prefix).await?;
    Ok(u64::from(u32::from_be_bytes(prefix)))
}

/// Reads exactly `len` bytes. The buffer grows as bytes arrive rather than
/// being allocated from the (untrusted) declared length up front.
async fn read_body<T: AsyncRead + Unpin>(io: &mut T, len: u64) -> io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(usize::try_from(len.min(64 * 1024)).unwrap_or(0));
    (&mut *io).take(len).read_to_end(&mut body).await?;
    if u64::try_from(body.len()).ok() != Some(len) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the frame ended after {} of {len} bytes", body.len()),
        ));
    }
    Ok(body)
}

/// Fills in the length prefix of `frame` (4 placeholder bytes, then the
/// body) and writes it in one go.
async fn write_frame<T: AsyncWrite + Unpin>(
    io: &mut T,
    mut frame: Vec<u8>,
    limit: u64,
) -> io::Result<()> {
    let body_len = frame.len().saturating_sub(4);
    let len = u32::try_from(body_len)
        .ok()
        .filter(|len| u64::from(*len) <= limit)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a {body_len}-byte message exceeds the {limit}-byte frame limit"),
            )
        })?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    io.write_all(&frame).await?;
    io.flush().await
}

fn invalid(protocol: &StreamProtocol, what: &str, err: io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the {what} is not valid {protocol} CBOR: {err}"),
    )
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;

    use super::test_support::{assert_oversized_is_drained, round_trip_response};
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(body.len())
            .expect("small")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(body);
        out
    }

    /// CBOR of a text string shorter than 24 bytes (RFC 8949 §3.1, major type 3).
    fn text(s: &str) -> Vec<u8> {
        let mut out = vec![0x60 | u8::try_from(s.len()).expect("short")];
        out.extend_from_slice(s.as_bytes());
        out
    }

    fn sample_request() -> DeliveryRequest {
        DeliveryRequest {
            id: [7; 16],
            sender_card: Some(vec![0x99, 1, 2]),
            payload: b"-----BEGIN PGP MESSAGE-----".to_vec(),
            stamp: None,
        }
    }

    #[tokio::test]
    async fn decodes_a_hand_written_request() {
        // {"id": h'00..0f', "sender_card": null, "payload": h'010203'}
        let mut body = vec![0xa3];
        body.extend(text("id"));
        body.push(0x50); // byte string, 16 bytes
        body.extend(0u8..16);
        body.extend(text("sender_card"));
        body.push(0xf6); // null
        body.extend(text("payload"));
        body.extend([0x43, 1, 2, 3]);
        let mut io = Cursor::new(frame(&body));
        let request = DeliveryCodec::new(1024)
            .read_request(&PROTOCOL, &mut io)
            .await
            .expect("valid request");
        let WireRequest::Delivery(request) = request else {
            panic!("expected a delivery, got {request:?}");
        };
        assert_eq!(request.id.to_vec(), (0u8..16).collect::<Vec<_>>());
        assert_eq!(request.sender_card, None);
        assert_eq!(request.payload, vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn request_round_trips_with_byte_strings() {
        let mut codec = DeliveryCodec::new(1024);
        let mut wire = Vec::new();
        codec
            .write_request(
                &PROTOCOL,
                &mut wire,
                WireRequest::Delivery(sample_request()),
            )
            .await
            .expect("write");
        let declared = u32::from_be_bytes(wire[..4].try_into().expect("prefix"));
        assert_eq!(declared as usize, wire.len() - 4);
        // The id is a 16-byte CBOR byte string, not an array of integers.
        assert!(wire.windows(17).any(|w| w[0] == 0x50 && w[1..] == [7; 16]));
        let read = codec
            .read_request(&PROTOCOL, &mut Cursor::new(wire))
            .await
            .expect("read");
        let WireRequest::Delivery(read) = read else {
            panic!("expected a delivery, got {read:?}");
        };
        assert_eq!(read.id, [7; 16]);
        assert_eq!(read.sender_card, Some(vec![0x99, 1, 2]));
        assert_eq!(read.payload, sample_request().payload);
    }

    #[tokio::test]
    async fn decodes_hand_written_responses() {
        let mut codec = DeliveryCodec::new(1024);
        let accepted = frame(&text("Accepted"));
        let read = codec
            .read_response(&PROTOCOL, &mut Cursor::new(accepted.clone()))
            .await
            .expect("accepted");
        assert_eq!(read, DeliveryResponse::Accepted);

        // {"Rejected": {"reason": "no"}}
        let mut body = vec![0xa1];
        body.extend(text("Rejected"));
        body.push(0xa1);
        body.extend(text("reason"));
        body.extend(text("no"));
        let read = codec
            .read_response(&PROTOCOL, &mut Cursor::new(frame(&body)))
            .await
            .expect("rejected");
        assert_eq!(
            read,
            DeliveryResponse::Rejected {
                reason: "no".into()
            }
        );

        let mut written = Vec::new();
        codec
            .write_response(&PROTOCOL, &mut written, DeliveryResponse::Accepted)
            .await
            .expect("write");
        assert_eq!(written, accepted);
    }

    #[tokio::test]
    async fn stamps_and_stamp_required_round_trip() {
        let mut codec = DeliveryCodec::new(1024);
        let mut request = sample_request();
        request.stamp = Some(crate::pow::Stamp {
            recipient: vec![0, 36, 8, 1],
            window: 499_000,
            nonce: 42,
            bits: 22,
        });
        let mut wire = Vec::new();
        codec
            .write_request(&PROTOCOL, &mut wire, WireRequest::Delivery(request.clone()))
            .await
            .expect("write");
        let WireRequest::Delivery(read) = codec
            .read_request(&PROTOCOL, &mut Cursor::new(wire))
            .await
            .expect("read")
        else {
            panic!("expected a delivery");
        };
        assert_eq!(read.stamp, request.stamp);

        // {"StampRequired": {"bits": 22}}
        let mut body = vec![0xa1];
        body.extend(text("StampRequired"));
        body.push(0xa1);
        body.extend(text("bits"));
        body.push(0x16);
        let read = codec
            .read_response(&PROTOCOL, &mut Cursor::new(frame(&body)))
            .await
            .expect("stamp required");
        assert_eq!(read, DeliveryResponse::StampRequired { bits: 22 });
        let mut written = Vec::new();
        codec
            .write_response(&PROTOCOL, &mut written, read)
            .await
            .expect("write");
        assert_eq!(written, frame(&body));
    }

    #[tokio::test]
    async fn try_later_round_trips() {
        let response = DeliveryResponse::TryLater {
            reason: "rate limit".into(),
            retry_after_secs: 1,
        };
        let read = round_trip_response(&mut DeliveryCodec::new(1024), &PROTOCOL, &response).await;
        assert_eq!(read, response);
    }

    #[tokio::test]
    async fn oversized_request_is_drained_not_buffered() {
        assert_oversized_is_drained(DeliveryCodec::new(1000), &PROTOCOL).await;
    }

    #[tokio::test]
    async fn oversized_request_that_ends_early_still_yields_the_marker() {
        let mut codec = DeliveryCodec::new(10);
        let mut wire = u32::MAX.to_be_bytes().to_vec();
        wire.extend([0; 100]);
        let read = codec
            .read_request(&PROTOCOL, &mut Cursor::new(wire))
            .await
            .expect("marker");
        assert!(
            matches!(read, WireRequest::Oversized { declared } if declared == u64::from(u32::MAX))
        );
    }

    #[tokio::test]
    async fn request_at_the_limit_is_read() {
        let mut codec = DeliveryCodec::new(0);
        let mut request = sample_request();
        request.sender_card = None;
        request.payload = vec![1; usize::try_from(FRAMING_ALLOWANCE).expect("fits") - 64];
        let mut wire = Vec::new();
        codec
            .write_request(&PROTOCOL, &mut wire, WireRequest::Delivery(request))
            .await
            .expect("write");
        assert!((wire.len() as u64 - 4) <= codec.request_limit());
        let read = codec
            .read_request(&PROTOCOL, &mut Cursor::new(wire))
            .await
            .expect("read");
        assert!(matches!(read, WireRequest::Delivery(_)));
    }

    #[tokio::test]
    async fn truncated_and_garbage_requests_are_errors() {
        let mut codec = DeliveryCodec::new(1024);
        let mut truncated = 100u32.to_be_bytes().to_vec();
        truncated.extend([0xa3; 10]);
        let err = codec
            .read_request(&PROTOCOL, &mut Cursor::new(truncated))
            .await
            .expect_err("truncated");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        let err = codec
            .read_request(&PROTOCOL, &mut Cursor::new(frame(&[0xff, 0x00, 0x13])))
            .await
            .expect_err("garbage");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let err = codec
            .read_request(&PROTOCOL, &mut Cursor::new(vec![0, 0]))
            .await
            .expect_err("short prefix");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn oversized_response_is_refused_both_ways() {
        let mut codec = DeliveryCodec::new(1024);
        let mut wire = u32::try_from(MAX_RESPONSE + 1)
            .expect("fits")
            .to_be_bytes()
            .to_vec();
        wire.extend([0; 16]);
        let err = codec
            .read_response(&PROTOCOL, &mut Cursor::new(wire))
            .await
            .expect_err("too large");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let huge = DeliveryResponse::Rejected {
            reason: "x".repeat(usize::try_from(MAX_RESPONSE).expect("fits")),
        };
        let err = codec
            .write_response(&PROTOCOL, &mut Vec::new(), huge)
            .await
            .expect_err("too large to send");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn the_oversized_marker_cannot_be_sent() {
        let err = DeliveryCodec::new(1024)
            .write_request(
                &PROTOCOL,
                &mut Vec::new(),
                WireRequest::Oversized { declared: 1 },
            )
            .await
            .expect_err("marker");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}

/// Checks shared by the tests of both delivery codecs.
#[cfg(test)]
pub(crate) mod test_support {
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;

    use super::*;

    /// Writes `response` and reads it back.
    pub(crate) async fn round_trip_response<Req, Resp>(
        codec: &mut FramedCodec<Req, Resp>,
        protocol: &StreamProtocol,
        response: &Resp,
    ) -> Resp
    where
        Req: Send + Clone + Serialize + DeserializeOwned,
        Resp: Send + Clone + Serialize + DeserializeOwned,
    {
        let mut wire = Vec::new();
        codec
            .write_response(protocol, &mut wire, response.clone())
            .await
            .expect("write");
        codec
            .read_response(protocol, &mut Cursor::new(wire))
            .await
            .expect("read")
    }

    /// A request frame one byte over the codec's limit is read to its end
    /// and becomes the oversized marker, its body never buffered.
    pub(crate) async fn assert_oversized_is_drained<Req, Resp>(
        mut codec: FramedCodec<Req, Resp>,
        protocol: &StreamProtocol,
    ) where
        Req: Send + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
        Resp: Send + Clone + Serialize + DeserializeOwned,
    {
        let declared = codec.request_limit() + 1;
        let mut wire = u32::try_from(declared)
            .expect("fits")
            .to_be_bytes()
            .to_vec();
        wire.resize(4 + usize::try_from(declared).expect("fits"), 0xab);
        let total = wire.len() as u64;
        let mut io = Cursor::new(wire);
        let read = codec.read_request(protocol, &mut io).await.expect("marker");
        assert!(
            matches!(read, Wire::Oversized { declared: d } if d == declared),
            "{read:?}"
        );
        assert_eq!(
            io.position(),
            total,
            "every byte of the request was consumed"
        );
    }
}
