//! The node's parsers of what peers send: the CBOR body of a delivery
//! request, the sender's contact card, the RFC 3156 PGP/MIME wrapper, the
//! OpenPGP message inside it, and the raw header editing applied to the
//! decrypted message before it is filed.
//!
//! The two identities used by `pgp_open` and `verified_mark` are fixed
//! ([`fixtures`]), so that a crash input found in one run reproduces in the
//! next.

use std::path::PathBuf;
use std::sync::OnceLock;

use imap_bridge::mime::{self, SectionKind};
use keys::{ContactCard, Identity, PassphraseSource, Unlocker};
use libp2p::StreamProtocol;
use libp2p::request_response::{Codec as _, cbor};
use mailnode::card_update;
use mailnode::network::{BatchRequest, BatchResponse, DeliveryRequest, DeliveryResponse};
use mailnode::pgpmime::{self, OuterHeader};
use mailnode::rawmail::RawMessage;
use mailnode::verified;

/// Passphrase of the fixture identities under `fuzz/fixtures/`.
pub const FIXTURE_PASSPHRASE: &str = "fuzz-fixture-passphrase";

/// The directory holding the fixture homes `alice` and `bob`.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The fixture identities: (alice, bob). Alice sends to Bob.
pub fn fixtures() -> &'static (Identity, Identity) {
    static PAIR: OnceLock<(Identity, Identity)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let unlocker = Unlocker::new(PassphraseSource::fixed(FIXTURE_PASSPHRASE));
        let load = |name: &str| {
            Identity::load(&fixture_dir().join(name), &unlocker)
                .unwrap_or_else(|err| panic!("loading fixture identity {name}: {err}"))
        };
        (load("alice"), load("bob"))
    })
}

/// Target `delivery_cbor`: the CBOR body of a `/mailnode/deliver/1` frame,
/// decoded by the same libp2p codec the node's `DeliveryCodec` runs over the
/// length-checked frame body (the framing itself is crate-private).
pub fn delivery_cbor(data: &[u8]) {
    let protocol = StreamProtocol::new("/mailnode/deliver/1");
    let mut codec = cbor::codec::Codec::<DeliveryRequest, DeliveryResponse>::default();
    let request = futures::executor::block_on(codec.read_request(&protocol, &mut &data[..]));
    if let Ok(request) = request {
        // What the inbound path does next with the decoded fields.
        if let Some(card) = &request.sender_card {
            let _ = ContactCard::from_bytes(card);
        }
        let _ = pgpmime::unwrap(&request.payload);
        // A decoded request encodes and decodes to itself.
        let mut encoded = Vec::new();
        futures::executor::block_on(codec.write_request(&protocol, &mut encoded, request.clone()))
            .expect("encoding a decoded request");
        let again = futures::executor::block_on(codec.read_request(&protocol, &mut &encoded[..]))
            .expect("decoding a re-encoded request");
        assert_eq!(again.id, request.id);
        assert_eq!(again.sender_card, request.sender_card);
        assert_eq!(again.payload, request.payload);
    }
    let _ = futures::executor::block_on(codec.read_response(&protocol, &mut &data[..]));
}

/// Target `delivery_batch_cbor`: the CBOR body of a `/mailnode/deliver/2`
/// frame (a batch of messages and its per-message answers), decoded by the
/// codec the node's `BatchCodec` runs over the length-checked frame body.
pub fn delivery_batch_cbor(data: &[u8]) {
    let protocol = StreamProtocol::new("/mailnode/deliver/2");
    let mut codec = cbor::codec::Codec::<BatchRequest, BatchResponse>::default();
    let request = futures::executor::block_on(codec.read_request(&protocol, &mut &data[..]));
    if let Ok(request) = request {
        if let Some(card) = &request.sender_card {
            let _ = ContactCard::from_bytes(card);
        }
        for item in &request.items {
            let _ = pgpmime::unwrap(&item.payload);
        }
        // A decoded batch encodes and decodes to itself.
        let mut encoded = Vec::new();
        futures::executor::block_on(codec.write_request(&protocol, &mut encoded, request.clone()))
            .expect("encoding a decoded batch");
        let again = futures::executor::block_on(codec.read_request(&protocol, &mut &encoded[..]))
            .expect("decoding a re-encoded batch");
        assert_eq!(again.sender_card, request.sender_card);
        assert_eq!(again.items.len(), request.items.len());
        for (a, b) in again.items.iter().zip(&request.items) {
            assert_eq!((a.id, &a.payload, &a.stamp), (b.id, &b.payload, &b.stamp));
        }
    }
    if let Ok(response) =
        futures::executor::block_on(codec.read_response(&protocol, &mut &data[..]))
    {
        let mut encoded = Vec::new();
        futures::executor::block_on(codec.write_response(
            &protocol,
            &mut encoded,
            response.clone(),
        ))
        .expect("encoding a decoded answer");
        let again = futures::executor::block_on(codec.read_response(&protocol, &mut &encoded[..]))
            .expect("decoding a re-encoded answer");
        assert_eq!(again, response);
    }
}

/// Target `contact_card`: a card as `mailnode contacts import` and the
/// inbound path read it. An accepted card must survive its own export.
pub fn contact_card(data: &[u8]) {
    let Ok(card) = ContactCard::from_bytes(data) else {
        return;
    };
    for (form, bytes) in [
        ("binary", card.to_binary()),
        ("armored", card.to_armored().into_bytes()),
    ] {
        let again = ContactCard::from_bytes(&bytes)
            .unwrap_or_else(|err| panic!("an accepted card's {form} export is refused: {err}"));
        assert_eq!(again.fingerprint(), card.fingerprint(), "{form} export");
        assert_eq!(again.address(), card.address(), "{form} export");
        assert_eq!(again.peer_id(), card.peer_id(), "{form} export");
    }
}

/// Target `control_card`: a decrypted message from a contact, which may be
/// a control message announcing their changed card (issue 8,
/// `mailnode::card_update`). Whatever it holds, recognising it must not
/// panic; a card it hands on is the message's body, unchanged; and the
/// held card (Alice's) takes it as an update only if it is made by the
/// same primary key for the same address.
pub fn control_card(data: &[u8]) {
    let (alice, _) = fixtures();
    let Some(Ok(body)) = card_update::control_card(data) else {
        return;
    };
    assert!(data.ends_with(&body), "the card handed on is the body");
    let Ok(offered) = ContactCard::from_bytes_even_revoked(&body) else {
        return;
    };
    if let Ok(update) = alice.card().check_update(&offered) {
        assert_eq!(offered.fingerprint(), alice.card().fingerprint());
        assert_eq!(update.card.fingerprint(), alice.card().fingerprint());
        assert_eq!(update.card.address(), alice.card().address());
    }
}

/// Target `device_sync_batch` (issue 8): a decrypted message from a
/// sibling device, which must be a device-sync control message. A batch
/// that reads encodes back to the same batch.
pub fn device_sync_batch(data: &[u8]) {
    let Ok(batch) = mailnode::sync::batch::open_control(data) else {
        return;
    };
    let again = mailnode::sync::batch::Batch::decode(&batch.encode()).expect("re-encoded batch");
    assert_eq!(again, batch);
}

/// Target `pgpmime_unwrap`: the RFC 3156 wrapper of a delivery payload.
pub fn pgpmime_unwrap(data: &[u8]) {
    let _ = pgpmime::unwrap(data);
    // Wrapping any armor and unwrapping gives the armor back (what the
    // sender's node wraps, the receiver's must find).
    if data.starts_with(b"-----BEGIN PGP MESSAGE-----")
        && data.ends_with(b"\n")
        && data.is_ascii()
        && !data.contains(&b'\r')
    {
        let outer = OuterHeader {
            from: "alice@example.org",
            to: "bob@example.org",
            date: "Tue, 24 Nov 2026 19:00:00 +0000",
            message_id: "<fuzz@example.org>",
        };
        let wrapped = pgpmime::wrap(&outer, data);
        let unwrapped = pgpmime::unwrap(&wrapped).expect("unwrapping what wrap made");
        assert_eq!(
            String::from_utf8_lossy(&unwrapped)
                .replace("\r\n", "\n")
                .trim_end(),
            String::from_utf8_lossy(data).trim_end(),
            "wrap -> unwrap changed the armor"
        );
    }
}

/// Target `rawmail_parse`: the header splitter the node uses to edit a
/// received message byte-exactly.
pub fn rawmail_parse(data: &[u8]) {
    let Ok(raw) = RawMessage::parse(data) else {
        return;
    };
    // Fields, separator and body are the message, in order, byte for byte.
    let mut joined = Vec::with_capacity(data.len());
    for field in &raw.fields {
        assert!(!field.raw.is_empty(), "an empty field");
        joined.extend_from_slice(field.raw);
    }
    joined.extend_from_slice(raw.separator);
    joined.extend_from_slice(raw.body);
    assert!(
        joined == data,
        "fields + separator + body is not the message"
    );
    // Rebuilding with every field kept changes nothing (when the message
    // has its blank line; without one, rebuild adds it).
    if !raw.separator.is_empty() {
        assert!(
            raw.rebuild(&[], |_| true) == data,
            "rebuild changed the message"
        );
    }
}

/// Target `verified_mark`: the field that tells the reader who signed a
/// message. Whatever the (signed, so sender-chosen) message holds, the
/// bridge must show the reader exactly one X-Mailnode-Verified-Signer
/// field, the node's own.
pub fn verified_mark(data: &[u8]) {
    let (alice, _) = fixtures();
    let Ok(marked) = verified::mark(data, alice.card()) else {
        return;
    };
    let names = vec![verified::FIELD.to_string()];
    let shown = mime::section(&marked, &[], &SectionKind::HeaderFields(names))
        .expect("HEADER.FIELDS of a whole message");
    let ours = format!("{}: {} (", verified::FIELD, alice.fingerprint());
    let text = String::from_utf8_lossy(&shown);
    // Field starts: continuation lines (leading white space) belong to the
    // field above them.
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty() && !l.starts_with([' ', '\t']))
        .collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with(&ours),
        "the reader sees these signer fields instead of only ours: {lines:?}"
    );
}

/// Target `pgp_open`: the OpenPGP message a peer sends, opened by Bob as
/// coming from Alice. Anything accepted is decrypted and signed by Alice.
pub fn pgp_open(data: &[u8]) {
    let (alice, bob) = fixtures();
    if let Ok(opened) = bob.open(data, alice.card()) {
        assert_eq!(
            opened.signer_fingerprint,
            alice.fingerprint(),
            "opened with a signature that is not the expected signer's"
        );
    }
}
