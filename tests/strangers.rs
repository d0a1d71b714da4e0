//! Issue 6, "Strangers": mail from someone who is not a contact needs a
//! proof-of-work stamp, lands in Requests (never INBOX), and moves to INBOX
//! when the recipient accepts the sender; bad stamps and floods are refused
//! with a clear reason and nothing stored.
//!
//! The first test runs two real daemons; the second drives the receiver's
//! inbound handler (`mailnode::inbound::handle`) with crafted requests over a
//! real store in a temporary directory, since a wrong stamp cannot be made
//! to leave a real sender.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Node, simple_message, wait_until};
use imap_bridge::backend::{Content, MailStore};
use keys::{AddressBook, Identity, StrangerBook};
use mailnode::contacts::Contacts;
use mailnode::inbound::{self, Inbound};
use mailnode::network::{DeliveryRequest, DeliveryResponse};
use mailnode::pgpmime::{self, OuterHeader};
use mailnode::pow::{self, WINDOW_SECS};
use mailnode::store::Store;
use mailnode::strangers::{StrangerPolicy, Strangers};

/// Small enough for debug builds (about a thousand hashes).
const TEST_BITS: u8 = 10;

const STAMP_REQUIRED: &str = "stamp required: the sender is not a contact";
const STAMP_VERIFIED: &str = "proof-of-work stamp verified";

#[test]
fn a_strangers_mail_needs_a_stamp_lands_in_requests_and_moves_on_accept() {
    let mut bob = Node::create("bob");
    let mut carol = Node::create("carol");
    // Carol has Bob's card; Bob has never heard of Carol.
    carol.add_contact(&bob);
    std::fs::write(
        bob.home().join("config.toml"),
        format!("[strangers]\npow_bits = {TEST_BITS}\n"),
    )
    .expect("write Bob's config");
    bob.start();
    carol.start();

    let first = simple_message(&carol.email, &bob.email, "Hello", "first", "Hi Bob!");
    carol.send_with_lettre(&[&bob.email], &first);
    wait_until(
        Duration::from_secs(60),
        "Carol's message in Bob's Requests",
        || bob.count("Requests") == 1,
    );
    assert_eq!(
        bob.count("INBOX"),
        0,
        "a stranger's mail never lands in INBOX"
    );
    let log = bob.log();
    assert_eq!(
        log.matches(STAMP_REQUIRED).count(),
        1,
        "Bob asked for a stamp:\n{log}"
    );
    assert_eq!(
        log.matches(STAMP_VERIFIED).count(),
        1,
        "and verified it:\n{log}"
    );
    assert!(
        carol.log().contains("minted a proof-of-work stamp"),
        "Carol's node paid:\n{}",
        carol.log()
    );
    let requests = bob.fetch_all("Requests");
    assert!(
        String::from_utf8_lossy(&requests[0]).contains("Hi Bob!"),
        "the message itself is in Requests"
    );
    // Bob's node kept Carol's card for the promotion.
    let kept = StrangerBook::open(bob.home()).expect("stranger list");
    assert_eq!(kept.by_address(&carol.email).len(), 1);

    // Bob accepts Carol while his node runs: the daemon moves her mail.
    let out = bob.cli_ok(&["contacts", "accept", &carol.email]);
    assert!(out.contains("accepted: Carol"), "{out}");
    wait_until(
        Duration::from_secs(30),
        "Carol's message moved from Requests to INBOX",
        || bob.count("INBOX") == 1 && bob.count("Requests") == 0,
    );
    let inbox = bob.fetch_all("INBOX");
    assert!(String::from_utf8_lossy(&inbox[0]).contains("Hi Bob!"));
    let listed = bob.cli_ok(&["contacts", "list"]);
    assert!(listed.contains(&carol.email), "{listed}");
    // Accepting again is a clear error: she is no longer waiting.
    let again = bob.cli(&["contacts", "accept", &carol.email]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("waits in Requests"),
        "{}",
        common::describe(&again)
    );

    // Her next message goes straight to INBOX, without a stamp.
    let second = simple_message(&carol.email, &bob.email, "Again", "second", "Me again");
    carol.send_with_lettre(&[&bob.email], &second);
    wait_until(
        Duration::from_secs(60),
        "Carol's second message in Bob's INBOX",
        || bob.count("INBOX") == 2,
    );
    assert_eq!(bob.count("Requests"), 0);
    assert_eq!(
        bob.log_count(STAMP_REQUIRED),
        1,
        "no stamp asked of a contact"
    );
    assert_eq!(bob.log_count(STAMP_VERIFIED), 1);
}

#[test]
fn moving_a_strangers_message_to_inbox_accepts_the_sender() {
    let mut bob = Node::create("bob");
    let mut dave = Node::create("dave");
    dave.add_contact(&bob);
    std::fs::write(
        bob.home().join("config.toml"),
        format!("[strangers]\npow_bits = {TEST_BITS}\n"),
    )
    .expect("write Bob's config");
    bob.start();
    dave.start();
    for (n, id) in ["one", "two"].iter().enumerate() {
        let body = format!("Message {n} from Dave");
        let message = simple_message(&dave.email, &bob.email, "Hello", id, &body);
        dave.send_with_lettre(&[&bob.email], &message);
    }
    wait_until(
        Duration::from_secs(60),
        "Dave's two messages in Bob's Requests",
        || bob.count("Requests") == 2,
    );
    // Bob's mail client moves one of them to INBOX (RFC 6851 MOVE).
    let out = bob.imap_cmds("SELECT Requests\nMOVE 1 INBOX");
    assert!(!out.contains("NO ") && !out.contains("BAD "), "{out}");
    // That accepts Dave: he is a contact, and his other message follows.
    wait_until(
        Duration::from_secs(30),
        "both of Dave's messages in INBOX",
        || bob.count("INBOX") == 2 && bob.count("Requests") == 0,
    );
    let listed = bob.cli_ok(&["contacts", "list"]);
    assert!(listed.contains(&dave.email), "{listed}");
    assert!(
        bob.log().contains("the sender is now a contact"),
        "{}",
        bob.log()
    );
}

#[test]
fn accepting_nobody_or_an_ambiguous_address_is_a_clear_error() {
    let bob = Node::create("bob");
    let out = bob.cli(&["contacts", "accept", "nobody@example.org"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no message from <nobody@example.org> waits in Requests"),
        "{stderr}"
    );
    // Two keys claiming one address: Bob must say which.
    let mut kept = StrangerBook::open(bob.home()).expect("stranger list");
    for _ in 0..2 {
        let claimant = Identity::generate("Dave", "dave@example.org").expect("identity");
        kept.remember(claimant.card(), 1).expect("remember");
    }
    let out = bob.cli(&["contacts", "accept", "dave@example.org"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 different keys"), "{stderr}");
    assert!(stderr.contains("--fingerprint"), "{stderr}");
}

/// Bob's side of a delivery, in process: his identity, address book,
/// stranger list and a real store in a temporary home.
struct Receiver {
    _home: tempfile::TempDir,
    bob: Arc<Identity>,
    context: Inbound,
}

impl Receiver {
    fn new(policy: StrangerPolicy) -> Receiver {
        let home = tempfile::tempdir().expect("tempdir");
        let bob = Arc::new(Identity::generate("Bob", "bob@example.org").expect("bob"));
        let store = Store::open(&home.path().join("mail.db"), bob.store_key()).expect("store");
        let contacts = Contacts::new(AddressBook::open(home.path()).expect("book"));
        let strangers = Strangers::new(policy, StrangerBook::open(home.path()).expect("list"));
        let context = Inbound {
            devices: mailnode::sync::Devices::new(&bob),
            identity: Arc::clone(&bob),
            contacts,
            store,
            strangers,
            decrypt_permits: Arc::new(tokio::sync::Semaphore::new(2)),
        };
        Receiver {
            _home: home,
            bob,
            context,
        }
    }

    async fn count(&self, mailbox: &str) -> usize {
        self.context
            .store
            .snapshot(mailbox)
            .await
            .map(|s| s.index.len() as usize)
            .unwrap_or(0)
    }

    async fn deliver(&self, from: &Identity, request: DeliveryRequest) -> DeliveryResponse {
        inbound::handle(*from.peer_id(), request, &self.context).await
    }
}

/// A real, signed and encrypted message from `from` to `to`, as a request
/// without a stamp.
fn request(from: &Identity, to: &Identity, tag: u8) -> DeliveryRequest {
    let plain = simple_message(
        from.address(),
        to.address(),
        "Hello",
        &format!("m{tag}"),
        "Hi there",
    );
    let sealed = from.seal(&plain, to.card()).expect("seal");
    let outer = OuterHeader {
        from: from.address(),
        to: to.address(),
        date: "Wed, 02 Dec 2026 15:00:00 +0000",
        message_id: "<outer@mailnode.invalid>",
    };
    DeliveryRequest {
        id: [tag; 16],
        sender_card: Some(from.card().to_binary()),
        payload: pgpmime::wrap(&outer, &sealed),
        stamp: None,
    }
}

fn now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).expect("after 1970")
}

fn stamped(
    mut request: DeliveryRequest,
    recipient: &Identity,
    bits: u8,
    at: u64,
) -> DeliveryRequest {
    let stamp =
        pow::mint(recipient.peer_id(), &request.id, &request.payload, bits, at).expect("mint");
    request.stamp = Some(stamp);
    request
}

fn reason(response: DeliveryResponse) -> String {
    match response {
        DeliveryResponse::Rejected { reason } => reason,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_stamps_and_floods_are_refused_and_nothing_is_stored() {
    let receiver = Receiver::new(StrangerPolicy {
        pow_bits: TEST_BITS,
        per_peer_per_hour: 2,
        total_per_hour: 100,
    });
    let bob = Arc::clone(&receiver.bob);
    let carol = Identity::generate("Carol", "carol@example.org").expect("carol");
    let dave = Identity::generate("Dave", "dave@example.org").expect("dave");

    // No stamp: asked for one, nothing stored.
    let answer = receiver.deliver(&carol, request(&carol, &bob, 1)).await;
    assert_eq!(answer, DeliveryResponse::StampRequired { bits: TEST_BITS });

    // A stamp minted for another recipient.
    let wrong = stamped(request(&carol, &bob, 2), &dave, TEST_BITS, now());
    let text = reason(receiver.deliver(&carol, wrong).await);
    assert!(text.contains("not for this recipient"), "{text}");
    assert!(text.contains(&dave.peer_id().to_string()), "{text}");

    // A stamp from two windows ago, and one from far in the future.
    let old = stamped(
        request(&carol, &bob, 3),
        &bob,
        TEST_BITS,
        now() - 2 * WINDOW_SECS,
    );
    let text = reason(receiver.deliver(&carol, old).await);
    assert!(text.contains("too old"), "{text}");
    let future = stamped(
        request(&carol, &bob, 4),
        &bob,
        TEST_BITS,
        now() + 3 * WINDOW_SECS,
    );
    let text = reason(receiver.deliver(&carol, future).await);
    assert!(text.contains("future time window"), "{text}");

    // Too little work, and a stamp moved to another message.
    let weak = stamped(request(&carol, &bob, 5), &bob, TEST_BITS - 6, now());
    let text = reason(receiver.deliver(&carol, weak).await);
    assert!(text.contains("not enough work"), "{text}");
    let donor = stamped(request(&carol, &bob, 6), &bob, TEST_BITS + 4, now());
    let mut moved = request(&carol, &bob, 7);
    moved.stamp = donor.stamp;
    let text = reason(receiver.deliver(&carol, moved).await);
    assert!(text.contains("not enough work"), "{text}");

    assert_eq!(receiver.count("Requests").await, 0, "nothing stored");
    assert_eq!(receiver.count("INBOX").await, 0, "nothing stored");

    // A good stamp: filed in Requests, and the card kept.
    let good = stamped(request(&carol, &bob, 8), &bob, TEST_BITS, now());
    assert_eq!(
        receiver.deliver(&carol, good.clone()).await,
        DeliveryResponse::Accepted
    );
    assert_eq!(receiver.count("Requests").await, 1);
    // The same delivery again is a duplicate and does not count.
    assert_eq!(
        receiver.deliver(&carol, good).await,
        DeliveryResponse::Accepted
    );
    assert_eq!(receiver.count("Requests").await, 1);

    // Carol floods: after two per hour she is told to come back later,
    // before she is asked to mint anything.
    let second = stamped(request(&carol, &bob, 9), &bob, TEST_BITS, now());
    assert_eq!(
        receiver.deliver(&carol, second).await,
        DeliveryResponse::Accepted
    );
    let third = stamped(request(&carol, &bob, 10), &bob, TEST_BITS, now());
    let DeliveryResponse::TryLater {
        reason,
        retry_after_secs,
    } = receiver.deliver(&carol, third).await
    else {
        panic!("a flood is told to wait");
    };
    assert!(reason.contains("at most 2 messages per hour"), "{reason}");
    assert!(retry_after_secs >= 60);
    let unstamped = receiver.deliver(&carol, request(&carol, &bob, 11)).await;
    assert!(
        matches!(unstamped, DeliveryResponse::TryLater { .. }),
        "{unstamped:?}"
    );
    assert_eq!(receiver.count("Requests").await, 2);

    // Contacts are not counted and never pay: Dave, a contact, gets through.
    let mut book = AddressBook::open(receiver._home.path()).expect("book");
    book.add(dave.card().clone(), vec![], false)
        .expect("add Dave");
    assert_eq!(
        receiver.deliver(&dave, request(&dave, &bob, 12)).await,
        DeliveryResponse::Accepted
    );
    assert_eq!(receiver.count("INBOX").await, 1);

    // Accepting Carol (her card is in the address book now) moves her two
    // messages to INBOX.
    book.add(carol.card().clone(), vec![], false)
        .expect("add Carol");
    let moved = mailnode::strangers::promote_contacts(
        &receiver.context.contacts,
        &receiver.context.strangers,
        &receiver.context.store,
    )
    .await;
    assert_eq!(moved, 2);
    assert_eq!(receiver.count("Requests").await, 0);
    assert_eq!(receiver.count("INBOX").await, 3);
    let inbox = receiver
        .context
        .store
        .snapshot("INBOX")
        .await
        .expect("INBOX");
    let uids: Vec<_> = inbox.index.uids_from(0).collect();
    let headers = receiver
        .context
        .store
        .fetch("INBOX", &uids, Content::Header)
        .await
        .expect("fetch");
    let from_carol = headers
        .iter()
        .filter(|(_, h)| String::from_utf8_lossy(h).contains(carol.card().fingerprint()))
        .count();
    assert_eq!(from_carol, 2);
    receiver.context.store.close().await;
}
