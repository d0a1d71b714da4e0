//! Issue 8, linked devices keep one mailbox: two devices of Bob (two
//! daemons, two homes, one identity, each its own PeerId on the card)
//! receive Alice's mail each, and what Bob does through IMAP on one (flags,
//! MOVE, EXPUNGE, RENAME, an APPENDed draft, the Sent copy of his mail) appears
//! on the other within seconds. Everything is found through the DHT of a
//! public node on loopback (nobody is given a sibling's address). A
//! device removed from the card receives nothing new. Forged device-sync
//! messages (signed by another key, or from a PeerId not on the card) are
//! refused, in process against `inbound::handle`.

mod common;

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use common::{Node, simple_message, value_of, wait_until};
use imap_bridge::backend::MailStore;
use keys::{AddressBook, Identity, StrangerBook};
use mailnode::contacts::Contacts;
use mailnode::inbound::{self, Inbound};
use mailnode::network::{DeliveryRequest, DeliveryResponse};
use mailnode::pgpmime::{self, OuterHeader};
use mailnode::store::{Store, SyncOp, Version};
use mailnode::strangers::{StrangerPolicy, Strangers};
use mailnode::sync::batch::{BATCH_VERSION, Batch, control_message};

const WAIT: Duration = Duration::from_secs(60);
/// How long a change on one device may take to show on the other.
const SYNC: Duration = Duration::from_secs(20);

/// Links a new device to `bob` (stopped) with `mailnode device link` and
/// `mailnode device join`: it gets the identity, the address book and a
/// copy of the mail store.
fn link_device(bob: &Node, name: &str) -> Node {
    common::devices::link_new_device(bob, name).0
}

/// The running daemon's own PeerId, as it published it in `run.json`.
fn device_id(node: &Node) -> String {
    let text = fs::read_to_string(node.home().join("run.json")).expect("run.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    json["peer_id"].as_str().expect("peer_id").to_string()
}

fn status(node: &Node, key: &str) -> Option<String> {
    value_of(&node.cli_ok(&["status"]), key)
}

/// Starts `node` with the hub as its only bootstrap address and waits
/// for its locator record in the DHT.
fn start_on(node: &mut Node, bootstrap: &str) {
    node.extra_run_args.push("--bootstrap".into());
    node.extra_run_args.push(bootstrap.to_string());
    node.start();
    wait_until(
        WAIT,
        &format!("{} publishes its locator", node.name),
        || common::dht::locator_published(node),
    );
}

/// The flags of the message with `msgid` in `mailbox`; `None` if it is not
/// there.
fn flags_of(node: &Node, mailbox: &str, msgid: &str) -> Option<Vec<String>> {
    let state = node.mailbox_state();
    let found = state.get(mailbox)?.message(msgid)?;
    Some(found.flags.iter().cloned().collect())
}

fn has(node: &Node, mailbox: &str, msgid: &str) -> bool {
    flags_of(node, mailbox, msgid).is_some()
}

fn send(from: &Node, to: &Node, subject: &str) -> String {
    let msgid = format!("<{}@example.org>", subject.replace(' ', "-"));
    from.send_with_lettre(
        &[&to.email],
        &simple_message(
            &from.email,
            &to.email,
            subject,
            &subject.replace(' ', "-"),
            "hi",
        ),
    );
    msgid
}

#[test]
fn two_devices_of_bob_keep_one_mailbox() {
    let mut hub = Node::create("hub");
    hub.extra_run_args.push("--public".into());
    hub.start();
    let bootstrap = format!("{}/p2p/{}", hub.p2p_addr(), hub.peer_id());
    let mut alice = Node::create("alice");
    let mut bob = Node::create("bob");
    bob.add_contact_without_addr(&alice);

    // Bob's first mail arrives before the second device exists; the
    // second device starts from a copy of the store.
    alice.add_contact_without_addr(&bob);
    start_on(&mut alice, &bootstrap);
    start_on(&mut bob, &bootstrap);
    let early = send(&alice, &bob, "before the link");
    wait_until(WAIT, "the first mail at bob", || has(&bob, "INBOX", &early));
    bob.stop();
    let mut phone = link_device(&bob, "phone");
    // Alice learns the card with both devices.
    alice.stop();
    alice.cli_ok(&["contacts", "remove", &bob.email]);
    alice.add_contact_without_addr(&bob);
    alice.extra_run_args.clear();
    start_on(&mut alice, &bootstrap);
    bob.extra_run_args.clear();
    start_on(&mut bob, &bootstrap);
    start_on(&mut phone, &bootstrap);
    assert_ne!(device_id(&bob), device_id(&phone));

    // Alice's mail reaches both devices.
    let first = send(&alice, &bob, "one");
    let second = send(&alice, &bob, "two");
    let third = send(&alice, &bob, "three");
    for id in [&first, &second, &third] {
        wait_until(WAIT, &format!("{id} at both devices"), || {
            has(&bob, "INBOX", id) && has(&phone, "INBOX", id)
        });
    }
    let inbox = bob.mailbox("INBOX");
    let uid = |msgid: &str| inbox.uid_of(msgid).expect("uid").to_string();

    // Flags on the laptop appear on the phone, on the copied message too.
    bob.imap_cmds(&format!(
        "SELECT INBOX\nUID STORE {} +FLAGS (\\Flagged \\Seen)\nUID STORE {} +FLAGS (\\Seen)",
        uid(&first),
        uid(&early)
    ));
    let started = std::time::Instant::now();
    wait_until(SYNC, "the flags on the phone", || {
        flags_of(&phone, "INBOX", &first)
            .is_some_and(|f| f.contains(&"\\Flagged".into()) && f.contains(&"\\Seen".into()))
            && flags_of(&phone, "INBOX", &early).is_some_and(|f| f.contains(&"\\Seen".into()))
    });

    eprintln!(
        "flags on the laptop seen on the phone after {:?}",
        started.elapsed()
    );

    // An IMAP session IDLE on the phone hears of a flag set on the laptop.
    let idle = std::process::Command::new(common::python_bin())
        .arg(common::tests_dir().join("py/idle_sync.py"))
        .args([
            "127.0.0.1",
            &bob.running().imap.to_string(),
            &bob.password(),
            &phone.running().imap.to_string(),
            &phone.password(),
            &bob.email,
            &uid(&early),
        ])
        .output()
        .expect("run idle_sync.py");
    assert!(idle.status.success(), "{}", common::describe(&idle));
    eprint!("{}", String::from_utf8_lossy(&idle.stdout));

    // CREATE and MOVE to the new folder.
    bob.imap_cmds(&format!(
        "CREATE Projects\nSELECT INBOX\nUID MOVE {} Projects",
        uid(&second)
    ));
    wait_until(SYNC, "the move on the phone", || {
        has(&phone, "Projects", &second) && !has(&phone, "INBOX", &second)
    });

    // EXPUNGE.
    bob.imap_cmds(&format!(
        "SELECT INBOX\nUID STORE {} +FLAGS (\\Deleted)\nEXPUNGE",
        uid(&third)
    ));
    wait_until(SYNC, "the expunge on the phone", || {
        !has(&phone, "INBOX", &third)
    });

    // An APPENDed draft travels with its content.
    let draft = simple_message(&bob.email, &alice.email, "draft", "draft-1", "not yet");
    bob.append("Drafts", "(\\Draft)", &draft);
    wait_until(SYNC, "the draft on the phone", || {
        has(&phone, "Drafts", "<draft-1@example.org>")
    });
    let copy = phone
        .fetch_all("Drafts")
        .into_iter()
        .find(|m| String::from_utf8_lossy(m).contains("draft-1"))
        .expect("draft");
    assert_eq!(copy, draft);

    // The other way: the phone flags, the laptop sees it.
    let on_phone = phone.mailbox("Projects");
    phone.imap_cmds(&format!(
        "SELECT Projects\nUID STORE {} +FLAGS ($label1)",
        on_phone.uid_of(&second).expect("uid")
    ));
    wait_until(SYNC, "the phone's flag on the laptop", || {
        flags_of(&bob, "Projects", &second).is_some_and(|f| f.contains(&"$label1".into()))
    });

    // A RENAME of the folder.
    bob.imap_cmds("RENAME Projects Work");
    wait_until(SYNC, "the rename on the phone", || {
        has(&phone, "Work", &second) && !phone.mailbox_state().contains_key("Projects")
    });

    // Mail Bob sends from the laptop: its Sent copy is on the phone.
    let reply = send(&bob, &alice, "reply from the laptop");
    wait_until(SYNC, "the Sent copy on the phone", || {
        has(&phone, "Sent", &reply)
    });
    wait_until(WAIT, "bob's reply at alice", || {
        has(&alice, "INBOX", &reply)
    });

    // The phone is removed from the card: it receives nothing new.
    bob.stop();
    bob.cli_ok(&["device", "remove", &device_id(&phone)]);
    start_on(&mut bob, &bootstrap);
    wait_until(WAIT, "alice learns bob's card", || {
        alice.log().contains("applied a contact's card update")
    });
    let after = send(&alice, &bob, "after the removal");
    wait_until(WAIT, "the mail at the laptop", || {
        has(&bob, "INBOX", &after)
    });
    wait_until(WAIT, "alice's outbox is empty", || {
        status(&alice, "outbox-waiting").as_deref() == Some("0")
    });
    bob.imap_cmds(&format!(
        "SELECT INBOX\nUID STORE {} +FLAGS (\\Answered)",
        uid(&first)
    ));
    wait_until(WAIT, "bob's journal is drained", || {
        status(&bob, "outbox-waiting").as_deref() == Some("0")
    });
    assert!(
        !has(&phone, "INBOX", &after),
        "the removed phone got new mail"
    );
    assert!(
        !flags_of(&phone, "INBOX", &first)
            .expect("first")
            .contains(&"\\Answered".into()),
        "the removed phone got a change"
    );
    phone.stop();
    bob.stop();
    alice.stop();
    hub.stop();
}

/// Bob's node in process, with one sibling device on the card.
struct Receiver {
    _home: tempfile::TempDir,
    bob: Arc<Identity>,
    sibling: libp2p::PeerId,
    /// A device no longer on the card, and the card it still has.
    removed: (libp2p::PeerId, Vec<u8>),
    context: Inbound,
}

impl Receiver {
    fn new() -> Receiver {
        let home = tempfile::tempdir().expect("tempdir");
        let mut bob = Identity::generate("Bob", "bob@example.org").expect("bob");
        let sibling = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        assert!(bob.add_device(sibling).expect("add device"));
        // A device that was linked and removed again, with the card it had.
        let removed = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        assert!(bob.add_device(removed).expect("add device"));
        let old_card = bob.card().to_binary();
        assert!(bob.remove_device(&removed).expect("remove device"));
        let bob = Arc::new(bob);
        let store = Store::open(&home.path().join("mail.db"), bob.store_key()).expect("store");
        let contacts = Contacts::new(AddressBook::open(home.path()).expect("book"));
        let strangers = Strangers::new(
            StrangerPolicy::default(),
            StrangerBook::open(home.path()).expect("list"),
        );
        let context = Inbound::new(Arc::clone(&bob), contacts, store, strangers, 2);
        Receiver {
            _home: home,
            bob,
            sibling,
            removed: (removed, old_card),
            context,
        }
    }

    async fn drafts(&self) -> usize {
        self.context
            .store
            .snapshot("Drafts")
            .await
            .map(|s| s.messages().len())
            .expect("snapshot")
    }
}

/// A batch with one new draft, as `signer` would send it to `bob`.
fn batch_payload(signer: &Identity, bob: &Identity, device: &str) -> Vec<u8> {
    let batch = Batch {
        version: BATCH_VERSION,
        device: device.to_string(),
        card: None,
        ops: vec![SyncOp::New {
            instance: [7; 16],
            mailbox: "Drafts".into(),
            flags: vec!["\\Draft".into()],
            date: 1_800_000_000,
            offset: 0,
            source: None,
            content: Some(b"Subject: draft\r\nMessage-ID: <d@x>\r\n\r\nbody\r\n".to_vec()),
            version: Version {
                at: 1_800_000_000_000,
                device: device.to_string(),
            },
        }],
    };
    let message = control_message(signer.name(), signer.address(), &batch);
    sealed(signer, bob, &message)
}

fn sealed(signer: &Identity, bob: &Identity, message: &[u8]) -> Vec<u8> {
    let armored = signer.seal(message, bob.card()).expect("seal");
    let outer = OuterHeader {
        from: signer.address(),
        to: bob.address(),
        date: "Mon, 07 Dec 2026 07:00:00 +0000",
        message_id: "<outer@mailnode.invalid>",
    };
    pgpmime::wrap(&outer, &armored)
}

fn request(payload: Vec<u8>, card: &Identity) -> DeliveryRequest {
    DeliveryRequest {
        id: rand::random(),
        sender_card: Some(card.card().to_binary()),
        payload,
        stamp: None,
    }
}

#[tokio::test]
async fn a_sibling_batch_is_applied_and_forgeries_are_refused() {
    let r = Receiver::new();
    let sibling = r.sibling.to_string();

    // Signed by another key (same address), from the sibling's PeerId.
    let mallory = Identity::generate("Bob", "bob@example.org").expect("mallory");
    let forged = batch_payload(&mallory, &r.bob, &sibling);
    match inbound::handle(r.sibling, request(forged, &mallory), &r.context).await {
        DeliveryResponse::Rejected { reason } => {
            assert!(reason.contains("signed by our own key"), "{reason}")
        }
        other => panic!("a batch signed by another key was answered {other:?}"),
    }
    assert_eq!(r.drafts().await, 0);

    // Our own key, but from a PeerId no longer on the card (a removed
    // device, with the card it had): not a sibling.
    let (removed, old_card) = r.removed.clone();
    let genuine = batch_payload(&r.bob, &r.bob, &removed.to_string());
    let mut from_removed = request(genuine, &r.bob);
    from_removed.sender_card = Some(old_card);
    match inbound::handle(removed, from_removed, &r.context).await {
        DeliveryResponse::Rejected { reason } => {
            assert!(reason.contains("not (or no longer) a device"), "{reason}")
        }
        other => panic!("a batch from a PeerId not on the card was answered {other:?}"),
    }
    assert_eq!(r.drafts().await, 0);

    // Mail (not a device-sync message) from a sibling is refused.
    let mail = sealed(
        &r.bob,
        &r.bob,
        b"From: bob@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n",
    );
    match inbound::handle(r.sibling, request(mail, &r.bob), &r.context).await {
        DeliveryResponse::Rejected { reason } => assert!(reason.contains("not mail"), "{reason}"),
        other => panic!("mail from a sibling was answered {other:?}"),
    }

    // The sibling's genuine batch is applied, once however often it comes.
    for _ in 0..2 {
        let genuine = batch_payload(&r.bob, &r.bob, &sibling);
        let answer = inbound::handle(r.sibling, request(genuine, &r.bob), &r.context).await;
        assert!(matches!(answer, DeliveryResponse::Accepted), "{answer:?}");
        assert_eq!(r.drafts().await, 1);
    }
}
