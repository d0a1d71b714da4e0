//! Wire framing of `/mailnode/mailbox/1`: the same shape as
//! `/mailnode/deliver/1` (a u32 big-endian length, then that many bytes of
//! CBOR; one request and one response per stream).
//!
//! Size caps hold before anything is buffered: a request declaring more
//! than the node's limit is drained in small chunks and becomes
//! [`MailboxWire::Oversized`], which the caller answers with
//! [`oversized_response`]. Responses are capped at [`MAX_RESPONSE`] both
//! when written and when read, and the mailbox service keeps its answers
//! below it (see `MailboxLimits`). CBOR is libp2p's serde CBOR codec run
//! over in-memory buffers, as in `network/codec.rs`.

use std::io;

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::{self, cbor};

use super::wire::{MailboxRequest, MailboxResponse, PROTOCOL};

/// Room for the registration, ids, signatures and CBOR overhead on top of
/// one sealed envelope in a request, and on top of the envelopes of one
/// `Collect` answer.
pub const FRAMING_ALLOWANCE: u64 = 64 * 1024;

/// The largest answer frame body read or written: 64 MiB of envelopes plus
/// the allowance. `MailboxLimits` keeps envelopes and `Collect` answers
/// within 48 MiB, so this is never the binding limit for a good mailbox.
pub const MAX_RESPONSE: u64 = 64 * 1024 * 1024 + FRAMING_ALLOWANCE;

const MAX_FRAME: u64 = u32::MAX as u64;

/// What the codec yields for an inbound request.
#[derive(Debug)]
pub enum MailboxWire {
    /// A well-formed request within the size limit.
    Request(MailboxRequest),
    /// A request whose declared length exceeded the limit; its bytes were
    /// discarded unread. Writing it is an error.
    Oversized {
        /// The frame length the sender declared.
        declared: u64,
    },
}

/// The answer to a request that was too large to read.
pub fn oversized_response(declared: u64, limit: u64) -> MailboxResponse {
    MailboxResponse::Refused {
        reason: format!(
            "a request of {declared} bytes exceeds this mailbox's limit of {limit} bytes"
        ),
    }
}

/// The `request_response::Codec` of the mailbox protocol.
#[derive(Clone)]
pub struct MailboxCodec {
    request_limit: u64,
    cbor: cbor::codec::Codec<MailboxRequest, MailboxResponse>,
}

impl MailboxCodec {
    /// A codec reading requests of up to `request_limit` bytes (use
    /// `MailboxLimits::request_limit`; a node that runs no mailbox service
    /// may pass [`FRAMING_ALLOWANCE`]).
    pub fn new(request_limit: u64) -> MailboxCodec {
        let cbor = cbor::codec::Codec::default()
            .set_request_size_maximum(MAX_FRAME)
            .set_response_size_maximum(MAX_FRAME);
        MailboxCodec {
            request_limit: request_limit.min(MAX_FRAME),
            cbor,
        }
    }

    /// The largest request frame body this codec reads.
    pub fn request_limit(&self) -> u64 {
        self.request_limit
    }
}

impl request_response::Codec for MailboxCodec {
    type Protocol = StreamProtocol;
    type Request = MailboxWire;
    type Response = MailboxResponse;

    async fn read_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<MailboxWire>
    where
        T: AsyncRead + Unpin + Send,
    {
        let declared = read_length(io).await?;
        if declared > self.request_limit {
            let discarded =
                futures::io::copy((&mut *io).take(declared), &mut futures::io::sink()).await?;
            tracing::debug!(
                declared,
                discarded,
                "discarded an oversized mailbox request"
            );
            return Ok(MailboxWire::Oversized { declared });
        }
        let body = read_body(io, declared).await?;
        let request =
            request_response::Codec::read_request(&mut self.cbor, protocol, &mut body.as_slice())
                .await
                .map_err(|err| invalid("request", err))?;
        Ok(MailboxWire::Request(request))
    }

    async fn read_response<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<MailboxResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let declared = read_length(io).await?;
        if declared > MAX_RESPONSE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the mailbox answer declares {declared} bytes, more than the {MAX_RESPONSE}-byte limit"
                ),
            ));
        }
        let body = read_body(io, declared).await?;
        request_response::Codec::read_response(&mut self.cbor, protocol, &mut body.as_slice())
            .await
            .map_err(|err| invalid("answer", err))
    }

    async fn write_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        request: MailboxWire,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let MailboxWire::Request(request) = request else {
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
        protocol: &StreamProtocol,
        io: &mut T,
        response: MailboxResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let mut frame = vec![0; 4];
        request_response::Codec::write_response(&mut self.cbor, protocol, &mut frame, response)
            .await?;
        write_frame(io, frame, MAX_RESPONSE).await
    }
}

async fn read_length<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u64> {
    let mut prefix = [0; 4];
    io.read_exact(&mut prefix).await?;
    Ok(u64::from(u32::from_be_bytes(prefix)))
}

/// Reads exactly `len` bytes, growing the buffer as bytes arrive rather
/// than trusting the declared length for an allocation.
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
                format!("a {body_len}-byte mailbox message exceeds the {limit}-byte frame limit"),
            )
        })?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    io.write_all(&frame).await?;
    io.flush().await
}

fn invalid(what: &str, err: io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the {what} is not valid {PROTOCOL} CBOR: {err}"),
    )
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;

    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(body.len())
            .expect("small")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(body);
        out
    }

    /// CBOR text string shorter than 24 bytes (RFC 8949 §3.1, major type 3).
    fn text(s: &str) -> Vec<u8> {
        let mut out = vec![0x60 | u8::try_from(s.len()).expect("short")];
        out.extend_from_slice(s.as_bytes());
        out
    }

    #[tokio::test]
    async fn decodes_a_hand_written_challenge_and_stored() {
        let mut codec = MailboxCodec::new(1024);
        let read = codec
            .read_request(&PROTOCOL, &mut Cursor::new(frame(&text("Challenge"))))
            .await
            .expect("challenge");
        assert!(matches!(
            read,
            MailboxWire::Request(MailboxRequest::Challenge)
        ));
        let read = codec
            .read_response(&PROTOCOL, &mut Cursor::new(frame(&text("Stored"))))
            .await
            .expect("stored");
        assert_eq!(read, MailboxResponse::Stored);
    }

    #[tokio::test]
    async fn decodes_a_hand_written_deposit_with_byte_strings() {
        // {"Deposit": {"inbox": h'00..1f', "deposit_id": h'07..', "sealed": h'010203'}}
        let mut body = vec![0xa1];
        body.extend(text("Deposit"));
        body.push(0xa3);
        body.extend(text("inbox"));
        body.extend([0x58, 32]); // byte string, 1-byte length 32
        body.extend(0u8..32);
        body.extend(text("deposit_id"));
        body.push(0x50); // byte string, 16 bytes
        body.extend([7u8; 16]);
        body.extend(text("sealed"));
        body.extend([0x43, 1, 2, 3]);
        let read = MailboxCodec::new(1024)
            .read_request(&PROTOCOL, &mut Cursor::new(frame(&body)))
            .await
            .expect("deposit");
        let MailboxWire::Request(MailboxRequest::Deposit {
            inbox,
            deposit_id,
            sealed,
        }) = read
        else {
            panic!("expected a deposit, got {read:?}");
        };
        assert_eq!(inbox.to_vec(), (0u8..32).collect::<Vec<_>>());
        assert_eq!(deposit_id, [7; 16]);
        assert_eq!(sealed, vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn every_request_round_trips() {
        let requests = vec![
            MailboxRequest::Challenge,
            MailboxRequest::Deposit {
                inbox: [1; 32],
                deposit_id: [2; 16],
                sealed: vec![3; 100],
            },
            MailboxRequest::Collect {
                inboxes: vec![serde_bytes::ByteBuf::from(vec![4; 32])],
                nonce: [5; 32],
                signature: vec![6; 64],
                after: 9,
                max: 10,
            },
            MailboxRequest::Ack {
                ids: vec![serde_bytes::ByteBuf::from(vec![7; 32])],
                nonce: [8; 32],
                signature: vec![9; 64],
            },
        ];
        let mut codec = MailboxCodec::new(1 << 20);
        for request in requests {
            let mut wire = Vec::new();
            codec
                .write_request(&PROTOCOL, &mut wire, MailboxWire::Request(request.clone()))
                .await
                .expect("write");
            let read = codec
                .read_request(&PROTOCOL, &mut Cursor::new(wire))
                .await
                .expect("read");
            let MailboxWire::Request(read) = read else {
                panic!("marker")
            };
            assert_eq!(read, request);
        }
    }

    #[tokio::test]
    async fn responses_round_trip() {
        let mut codec = MailboxCodec::new(1024);
        for response in [
            MailboxResponse::Stored,
            MailboxResponse::Nonce {
                nonce: [3; 32],
                valid_secs: 300,
            },
            MailboxResponse::Refused {
                reason: "over quota".into(),
            },
            MailboxResponse::Envelopes {
                envelopes: Vec::new(),
                more: false,
            },
        ] {
            let mut wire = Vec::new();
            codec
                .write_response(&PROTOCOL, &mut wire, response.clone())
                .await
                .expect("write");
            let read = codec
                .read_response(&PROTOCOL, &mut Cursor::new(wire))
                .await
                .expect("read");
            assert_eq!(read, response);
        }
    }

    #[tokio::test]
    async fn oversized_request_is_drained_and_marked() {
        let mut codec = MailboxCodec::new(100);
        let mut wire = 101u32.to_be_bytes().to_vec();
        wire.resize(4 + 101, 0xab);
        let total = wire.len() as u64;
        let mut io = Cursor::new(wire);
        let read = codec
            .read_request(&PROTOCOL, &mut io)
            .await
            .expect("marker");
        assert!(matches!(read, MailboxWire::Oversized { declared: 101 }));
        assert_eq!(io.position(), total);
        let MailboxResponse::Refused { reason } = oversized_response(101, 100) else {
            panic!("refused")
        };
        assert!(reason.contains("101") && reason.contains("100"), "{reason}");
        let err = codec
            .write_request(
                &PROTOCOL,
                &mut Vec::new(),
                MailboxWire::Oversized { declared: 1 },
            )
            .await
            .expect_err("marker cannot be sent");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn oversized_truncated_and_garbage_answers_are_errors() {
        let mut codec = MailboxCodec::new(1024);
        let mut wire = u32::try_from(MAX_RESPONSE + 1)
            .expect("fits")
            .to_be_bytes()
            .to_vec();
        wire.extend([0; 16]);
        let err = codec
            .read_response(&PROTOCOL, &mut Cursor::new(wire))
            .await
            .expect_err("big");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let mut truncated = 50u32.to_be_bytes().to_vec();
        truncated.extend([0xa1; 5]);
        let err = codec
            .read_response(&PROTOCOL, &mut Cursor::new(truncated))
            .await
            .expect_err("short");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = codec
            .read_request(&PROTOCOL, &mut Cursor::new(frame(&[0xff, 0x00])))
            .await
            .expect_err("garbage");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
