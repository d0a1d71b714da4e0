//! Tests of the mailbox service on a real `mailbox.db` in a temporary
//! directory, and of the client against real services in-process.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keys::Identity;
use libp2p::PeerId;
use libp2p::identity::Keypair;

use super::client::{self, MailboxTransport};
use super::inbox;
use super::wire::{self, MailboxRequest, MailboxResponse, Registration};
use super::{MailboxLimits, MailboxService};
use crate::network::{DeliveryRequest, DeliveryResponse};

const START: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

struct Fixture {
    dir: tempfile::TempDir,
    local: PeerId,
    clock: Arc<AtomicU64>,
    service: MailboxService,
}

impl Fixture {
    fn new(limits: MailboxLimits) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let local = PeerId::random();
        let clock = Arc::new(AtomicU64::new(START));
        let service = open(&dir, local, &clock, limits);
        Fixture {
            dir,
            local,
            clock,
            service,
        }
    }

    fn reopen(&mut self) {
        self.service = open(
            &self.dir,
            self.local,
            &self.clock,
            self.service.limits().clone(),
        );
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    async fn register(&self, recipient: &Keypair) {
        let now = self.now();
        let registration =
            Registration::sign(recipient, &[self.local], now, now + 7 * DAY).expect("sign");
        let from = recipient.public().to_peer_id();
        let answer = self
            .service
            .handle(from, MailboxRequest::Register { registration })
            .await;
        assert!(
            matches!(answer, MailboxResponse::Registered { .. }),
            "{answer:?}"
        );
    }

    async fn deposit(
        &self,
        sender: PeerId,
        recipient: &PeerId,
        id: u8,
        sealed: Vec<u8>,
    ) -> MailboxResponse {
        let request = MailboxRequest::Deposit {
            inbox: inbox::current_inbox(recipient, self.now()),
            deposit_id: [id; 16],
            sealed,
        };
        self.service.handle(sender, request).await
    }

    async fn nonce(&self, from: PeerId) -> wire::Nonce {
        match self.service.handle(from, MailboxRequest::Challenge).await {
            MailboxResponse::Nonce { nonce, .. } => nonce,
            other => panic!("no nonce: {other:?}"),
        }
    }

    /// A signed Collect by `recipient`; returns the answer.
    async fn collect(&self, recipient: &Keypair, after: u64) -> MailboxResponse {
        let from = recipient.public().to_peer_id();
        let nonce = self.nonce(from).await;
        let inboxes = inbox::collect_inboxes(&from, self.now());
        let signature = recipient
            .sign(&wire::collect_signing_input(&nonce, &self.local, &inboxes))
            .expect("sign");
        let request = MailboxRequest::Collect {
            inboxes: inboxes
                .iter()
                .map(|i| serde_bytes::ByteBuf::from(i.to_vec()))
                .collect(),
            nonce,
            signature,
            after,
            max: 100,
        };
        self.service.handle(from, request).await
    }

    async fn held(&self, recipient: &Keypair) -> Vec<wire::HeldEnvelope> {
        match self.collect(recipient, 0).await {
            MailboxResponse::Envelopes { envelopes, .. } => envelopes,
            other => panic!("collect failed: {other:?}"),
        }
    }

    async fn ack(&self, recipient: &Keypair, ids: &[wire::EnvelopeId]) -> MailboxResponse {
        let from = recipient.public().to_peer_id();
        let nonce = self.nonce(from).await;
        let signature = recipient
            .sign(&wire::ack_signing_input(&nonce, &self.local, ids))
            .expect("sign");
        let ids = ids
            .iter()
            .map(|i| serde_bytes::ByteBuf::from(i.to_vec()))
            .collect();
        self.service
            .handle(
                from,
                MailboxRequest::Ack {
                    ids,
                    nonce,
                    signature,
                },
            )
            .await
    }
}

fn open(
    dir: &tempfile::TempDir,
    local: PeerId,
    clock: &Arc<AtomicU64>,
    limits: MailboxLimits,
) -> MailboxService {
    let clock = Arc::clone(clock);
    MailboxService::open_with_clock(
        dir.path(),
        local,
        limits,
        Arc::new(move || clock.load(Ordering::SeqCst)),
    )
    .expect("open the mailbox service")
}

fn refused(answer: &MailboxResponse) -> &str {
    match answer {
        MailboxResponse::Refused { reason } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn deposit_collect_ack_deletes_exactly_the_acked() {
    let fx = Fixture::new(MailboxLimits::default());
    let bob = Keypair::generate_ed25519();
    let bob_id = bob.public().to_peer_id();
    let alice = PeerId::random();
    fx.register(&bob).await;
    assert_eq!(
        fx.deposit(alice, &bob_id, 1, vec![1; 100]).await,
        MailboxResponse::Stored
    );
    assert_eq!(
        fx.deposit(alice, &bob_id, 2, vec![2; 100]).await,
        MailboxResponse::Stored
    );
    // A retry of the same deposit is answered Stored without a second copy.
    assert_eq!(
        fx.deposit(alice, &bob_id, 1, vec![1; 100]).await,
        MailboxResponse::Stored
    );
    let held = fx.held(&bob).await;
    assert_eq!(held.len(), 2);
    assert_eq!(held[0].sealed, vec![1; 100]);
    assert_eq!(held[0].id, wire::envelope_id(&alice, &[1; 16]));
    assert!(held[0].seq < held[1].seq);
    // Collecting again without an ack deletes nothing.
    assert_eq!(fx.held(&bob).await.len(), 2);
    assert_eq!(
        fx.ack(&bob, &[held[0].id]).await,
        MailboxResponse::Acked { deleted: 1 }
    );
    let left = fx.held(&bob).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, held[1].id);
    assert_eq!(fx.service.held_for(bob_id).await.expect("count"), 1);
    // Paging: nothing after the last seq.
    let MailboxResponse::Envelopes { envelopes, more } = fx.collect(&bob, held[1].seq).await else {
        panic!("collect")
    };
    assert!(envelopes.is_empty() && !more);
}

#[tokio::test]
async fn nothing_is_deleted_without_an_ack_and_all_survives_a_reopen() {
    let mut fx = Fixture::new(MailboxLimits::default());
    let bob = Keypair::generate_ed25519();
    let bob_id = bob.public().to_peer_id();
    fx.register(&bob).await;
    for id in 0..5 {
        assert_eq!(
            fx.deposit(PeerId::random(), &bob_id, id, vec![id; 50])
                .await,
            MailboxResponse::Stored
        );
    }
    fx.reopen();
    let held = fx.held(&bob).await;
    assert_eq!(held.len(), 5);
    assert_eq!(fx.service.total_bytes().await.expect("total"), 250);
    // An ack by someone else deletes nothing of Bob's.
    let mallory = Keypair::generate_ed25519();
    fx.register(&mallory).await;
    assert_eq!(
        fx.ack(&mallory, &[held[0].id]).await,
        MailboxResponse::Acked { deleted: 0 }
    );
    fx.reopen();
    assert_eq!(fx.held(&bob).await.len(), 5);
}

#[tokio::test]
async fn a_collect_with_a_wrong_signature_is_refused_and_returns_nothing() {
    let fx = Fixture::new(MailboxLimits::default());
    let bob = Keypair::generate_ed25519();
    let bob_id = bob.public().to_peer_id();
    fx.register(&bob).await;
    assert_eq!(
        fx.deposit(PeerId::random(), &bob_id, 1, vec![1; 10]).await,
        MailboxResponse::Stored
    );
    let nonce = fx.nonce(bob_id).await;
    let inboxes = inbox::collect_inboxes(&bob_id, fx.now());
    let as_list = || {
        inboxes
            .iter()
            .map(|i| serde_bytes::ByteBuf::from(i.to_vec()))
            .collect()
    };
    let mallory = Keypair::generate_ed25519();
    let forged = mallory
        .sign(&wire::collect_signing_input(&nonce, &fx.local, &inboxes))
        .expect("sign");
    let request = MailboxRequest::Collect {
        inboxes: as_list(),
        nonce,
        signature: forged,
        after: 0,
        max: 10,
    };
    let reason = refused(&fx.service.handle(bob_id, request).await).to_string();
    assert!(reason.contains("signature does not verify"), "{reason}");
    // Bob's signature for another mailbox does not work here either.
    let elsewhere = bob
        .sign(&wire::collect_signing_input(
            &nonce,
            &PeerId::random(),
            &inboxes,
        ))
        .expect("sign");
    let request = MailboxRequest::Collect {
        inboxes: as_list(),
        nonce,
        signature: elsewhere,
        after: 0,
        max: 10,
    };
    assert!(refused(&fx.service.handle(bob_id, request).await).contains("signature"));
    // A valid signature from the wrong connection: Mallory asks for Bob's.
    let mallory_id = mallory.public().to_peer_id();
    fx.register(&mallory).await;
    let nonce = fx.nonce(mallory_id).await;
    let signature = mallory
        .sign(&wire::collect_signing_input(&nonce, &fx.local, &inboxes))
        .expect("sign");
    let request = MailboxRequest::Collect {
        inboxes: as_list(),
        nonce,
        signature,
        after: 0,
        max: 10,
    };
    assert!(refused(&fx.service.handle(mallory_id, request).await).contains("not the requester's"));
    // A stale nonce.
    let request = MailboxRequest::Collect {
        inboxes: as_list(),
        nonce: [0; 32],
        signature: vec![],
        after: 0,
        max: 10,
    };
    assert!(refused(&fx.service.handle(bob_id, request).await).contains("nonce"));
    assert_eq!(fx.service.held_for(bob_id).await.expect("count"), 1);
}

#[tokio::test]
async fn deposits_over_quota_are_refused_and_nothing_is_stored() {
    let limits = MailboxLimits {
        per_sender_count: 2,
        per_sender_bytes: 10_000,
        per_inbox_bytes: 15_000,
        total_bytes: 20_000,
        max_envelope_bytes: 8_000,
        ..MailboxLimits::default()
    };
    let fx = Fixture::new(limits);
    let bob = Keypair::generate_ed25519();
    let bob_id = bob.public().to_peer_id();
    let carol = Keypair::generate_ed25519();
    let carol_id = carol.public().to_peer_id();
    fx.register(&bob).await;
    fx.register(&carol).await;
    let alice = PeerId::random();
    let too_large = fx.deposit(alice, &bob_id, 9, vec![0; 8_001]).await;
    assert!(refused(&too_large).contains("exceeds this mailbox's limit"));
    assert_eq!(
        fx.deposit(alice, &bob_id, 1, vec![0; 10]).await,
        MailboxResponse::Stored
    );
    assert_eq!(
        fx.deposit(alice, &bob_id, 2, vec![0; 10]).await,
        MailboxResponse::Stored
    );
    assert!(
        refused(&fx.deposit(alice, &bob_id, 3, vec![0; 10]).await).contains("envelopes waiting")
    );
    let dave = PeerId::random();
    assert_eq!(
        fx.deposit(dave, &bob_id, 1, vec![0; 7_000]).await,
        MailboxResponse::Stored
    );
    assert!(
        refused(
            &fx.deposit(PeerId::random(), &bob_id, 2, vec![0; 8_000])
                .await
        )
        .contains("inbox would exceed")
    );
    let erin = PeerId::random();
    assert_eq!(
        fx.deposit(erin, &carol_id, 1, vec![0; 6_000]).await,
        MailboxResponse::Stored
    );
    assert_eq!(
        fx.deposit(dave, &carol_id, 1, vec![0; 6_000]).await,
        MailboxResponse::Stored
    );
    assert!(
        refused(
            &fx.deposit(PeerId::random(), &carol_id, 1, vec![0; 1_000])
                .await
        )
        .contains("mailbox is full")
    );
    assert_eq!(fx.held(&bob).await.len(), 3);
    assert_eq!(fx.held(&carol).await.len(), 2);
    assert_eq!(
        fx.service.total_bytes().await.expect("total"),
        10 + 10 + 7_000 + 12_000
    );
}

#[tokio::test]
async fn deposits_for_unregistered_or_expired_inboxes_are_refused() {
    let fx = Fixture::new(MailboxLimits::default());
    let stranger = PeerId::random();
    let answer = fx.deposit(PeerId::random(), &stranger, 1, vec![1]).await;
    assert!(refused(&answer).contains("no recipient is registered"));
    // An old epoch's inbox id is not accepted.
    let bob = Keypair::generate_ed25519();
    let bob_id = bob.public().to_peer_id();
    fx.register(&bob).await;
    let old = MailboxRequest::Deposit {
        inbox: inbox::current_inbox(&bob_id, fx.now() - 3 * DAY),
        deposit_id: [1; 16],
        sealed: vec![1],
    };
    assert!(refused(&fx.service.handle(PeerId::random(), old).await).contains("no recipient"));
    assert_eq!(fx.service.held_for(bob_id).await.expect("count"), 0);
    // A registration sent by someone other than its recipient is refused.
    let registration =
        Registration::sign(&bob, &[fx.local], fx.now(), fx.now() + DAY).expect("sign");
    let answer = fx
        .service
        .handle(PeerId::random(), MailboxRequest::Register { registration })
        .await;
    assert!(refused(&answer).contains("only from its recipient"));
    // One naming other mailboxes only, or valid too long, is refused.
    let registration =
        Registration::sign(&bob, &[PeerId::random()], fx.now(), fx.now() + DAY).expect("sign");
    let answer = fx
        .service
        .handle(bob_id, MailboxRequest::Register { registration })
        .await;
    assert!(refused(&answer).contains("does not name this mailbox"));
    let registration =
        Registration::sign(&bob, &[fx.local], fx.now(), fx.now() + 90 * DAY).expect("sign");
    let answer = fx
        .service
        .handle(bob_id, MailboxRequest::Register { registration })
        .await;
    assert!(refused(&answer).contains("at most"));
    // After the registration expires, deposits are refused.
    fx.clock.store(fx.now() + 8 * DAY, Ordering::SeqCst);
    fx.service.prune().await.expect("prune");
    let answer = fx.deposit(PeerId::random(), &bob_id, 2, vec![1]).await;
    assert!(refused(&answer).contains("registered"), "{answer:?}");
}

#[tokio::test]
async fn retention_prunes_what_nobody_collected() {
    let fx = Fixture::new(MailboxLimits::default());
    let bob = Keypair::generate_ed25519();
    let bob_id = bob.public().to_peer_id();
    fx.register(&bob).await;
    assert_eq!(
        fx.deposit(PeerId::random(), &bob_id, 1, vec![1; 10]).await,
        MailboxResponse::Stored
    );
    fx.clock.store(fx.now() + 6 * DAY, Ordering::SeqCst);
    fx.register(&bob).await;
    assert_eq!(
        fx.deposit(PeerId::random(), &bob_id, 2, vec![2; 10]).await,
        MailboxResponse::Stored
    );
    fx.clock.store(START + 30 * DAY + 1, Ordering::SeqCst);
    let pruned = fx.service.prune().await.expect("prune");
    assert_eq!(pruned.envelopes, 1);
    assert_eq!(fx.service.total_bytes().await.expect("total"), 10);
    fx.register(&bob).await;
    let held = fx.held(&bob).await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].sealed, vec![2; 10]);
}

#[tokio::test]
async fn a_new_deposit_is_replicated_once_and_the_replica_is_not_forwarded() {
    let a = Fixture::new(MailboxLimits::default());
    let b = Fixture::new(MailboxLimits::default());
    let bob = Keypair::generate_ed25519();
    let bob_id = bob.public().to_peer_id();
    let now = a.now();
    let registration =
        Registration::sign(&bob, &[a.local, b.local], now, now + 7 * DAY).expect("sign");
    let answer = a
        .service
        .handle(bob_id, MailboxRequest::Register { registration })
        .await;
    assert!(matches!(answer, MailboxResponse::Registered { .. }));
    let mut queue_a = a.service.replications().expect("queue");
    assert!(a.service.replications().is_none(), "taken once");
    let mut queue_b = b.service.replications().expect("queue");
    assert_eq!(
        a.deposit(PeerId::random(), &bob_id, 1, vec![7; 30]).await,
        MailboxResponse::Stored
    );
    let replication = queue_a.try_recv().expect("one replication");
    assert_eq!(replication.peer, b.local);
    assert!(queue_a.try_recv().is_err(), "only to the other mailbox");
    // Only one of Bob's mailbox peers may replicate to B.
    let answer = b
        .service
        .handle(PeerId::random(), replication.request.clone())
        .await;
    assert!(refused(&answer).contains("only they may replicate"));
    assert_eq!(
        b.service.handle(a.local, replication.request.clone()).await,
        MailboxResponse::Replicated
    );
    assert_eq!(
        b.service.handle(a.local, replication.request).await,
        MailboxResponse::Replicated
    );
    assert!(queue_b.try_recv().is_err(), "a replica is never forwarded");
    // B learned Bob's registration from the replica and hands the copy out.
    let held = b.held(&bob).await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].sealed, vec![7; 30]);
    assert_eq!(held[0].id, a.held(&bob).await[0].id);
}

/// A transport that calls the services directly, as `from`.
struct InProcess {
    from: PeerId,
    services: HashMap<PeerId, MailboxService>,
}

impl MailboxTransport for InProcess {
    async fn request(
        &self,
        peer: PeerId,
        request: MailboxRequest,
    ) -> Result<MailboxResponse, String> {
        match self.services.get(&peer) {
            Some(service) => Ok(service.handle(self.from, request).await),
            None => Err(format!("{peer} is unreachable")),
        }
    }
}

#[tokio::test]
async fn client_deposit_and_collector_against_real_services() {
    let a = Fixture::new(MailboxLimits::default());
    let b = Fixture::new(MailboxLimits::default());
    let alice = Identity::generate("Alice", "alice@example.org").expect("alice");
    let bob = Arc::new(Identity::generate("Bob", "bob@example.org").expect("bob"));
    // The client uses the real clock; so do these services' registrations.
    let now = super::unix_now();
    a.clock.store(now, Ordering::SeqCst);
    b.clock.store(now, Ordering::SeqCst);
    let services = HashMap::from([(a.local, a.service.clone()), (b.local, b.service.clone())]);
    let bob_net = InProcess {
        from: *bob.peer_id(),
        services: services.clone(),
    };
    let alice_net = InProcess {
        from: *alice.peer_id(),
        services,
    };
    let unreachable = PeerId::random();
    let mailboxes = [unreachable, a.local, b.local];

    // Before Bob registers, nobody stores for him.
    let request = DeliveryRequest {
        id: [1; 16],
        sender_card: None,
        payload: b"first".to_vec(),
        stamp: None,
    };
    let err = client::deposit(
        &alice_net,
        alice.libp2p_keypair(),
        bob.card(),
        *bob.peer_id(),
        &mailboxes,
        &request,
    )
    .await
    .expect_err("not registered");
    assert_eq!(err.attempts.len(), 3);
    assert!(err.to_string().contains("unreachable"), "{err}");

    // Register (an empty collection) then deposit: the first reachable wins.
    let report = client::collect(&bob_net, &bob, &mailboxes, |_, _| async {
        DeliveryResponse::Accepted
    })
    .await;
    assert!(report.filed.is_empty());
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let stored = client::deposit(
        &alice_net,
        alice.libp2p_keypair(),
        bob.card(),
        *bob.peer_id(),
        &mailboxes,
        &request,
    )
    .await
    .expect("deposited");
    assert_eq!(stored, a.local);
    let second = DeliveryRequest {
        id: [2; 16],
        sender_card: Some(vec![9]),
        payload: b"second".to_vec(),
        stamp: None,
    };
    assert_eq!(
        client::deposit(
            &alice_net,
            alice.libp2p_keypair(),
            bob.card(),
            *bob.peer_id(),
            &[b.local],
            &second
        )
        .await,
        Ok(b.local)
    );

    // A filing that is not committed (TryLater) is not acknowledged.
    let report = client::collect(&bob_net, &bob, &mailboxes, |_, _| async {
        DeliveryResponse::TryLater {
            reason: "busy".into(),
            retry_after_secs: 1,
        }
    })
    .await;
    assert_eq!(report.deferred, 2);
    assert_eq!(a.service.held_for(*bob.peer_id()).await.expect("count"), 1);

    // Filed: acknowledged and deleted at both mailboxes.
    let filed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&filed);
    let report = client::collect(&bob_net, &bob, &mailboxes, move |sender, request| {
        let sink = Arc::clone(&sink);
        async move {
            sink.lock().expect("lock").push((sender, request.payload));
            DeliveryResponse::Accepted
        }
    })
    .await;
    let mut got = filed.lock().expect("lock").clone();
    got.sort();
    assert_eq!(
        got,
        vec![
            (*alice.peer_id(), b"first".to_vec()),
            (*alice.peer_id(), b"second".to_vec())
        ]
    );
    assert_eq!(report.filed.len(), 2);
    assert!(report.filed.iter().all(|f| f.sender == *alice.peer_id()));
    assert_eq!(a.service.held_for(*bob.peer_id()).await.expect("count"), 0);
    assert_eq!(b.service.held_for(*bob.peer_id()).await.expect("count"), 0);
}

#[tokio::test]
async fn the_collector_deletes_unreadable_envelopes_and_reports_them() {
    let a = Fixture::new(MailboxLimits::default());
    let bob = Arc::new(Identity::generate("Bob", "bob@example.org").expect("bob"));
    a.clock.store(super::unix_now(), Ordering::SeqCst);
    let net = InProcess {
        from: *bob.peer_id(),
        services: HashMap::from([(a.local, a.service.clone())]),
    };
    let report = client::collect(&net, &bob, &[a.local], |_, _| async {
        DeliveryResponse::Accepted
    })
    .await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        a.deposit(PeerId::random(), bob.peer_id(), 1, b"junk".to_vec())
            .await,
        MailboxResponse::Stored
    );
    let report = client::collect(&net, &bob, &[a.local], |_, _| async {
        DeliveryResponse::Accepted
    })
    .await;
    assert_eq!(report.unreadable, 1);
    assert!(report.filed.is_empty());
    assert_eq!(a.service.held_for(*bob.peer_id()).await.expect("count"), 0);
}
