//! Memory and time of a mailbox peer holding 10,000 deposited envelopes of
//! 10 KiB (issue 6, "memory of a public node holding 10,000 deposited
//! envelopes"). A real `MailboxService` on a real `mailbox.db` in a
//! temporary directory; every deposit is its own durable commit
//! (synchronous=FULL), as in production.
//!
//! Run: `cargo bench -p mailnode --bench mailbox` (release). Prints VmRSS
//! (from /proc/self/status) before and after, the deposit time, a full
//! collection's time and the database size.

use std::time::Instant;

use libp2p::PeerId;
use libp2p::identity::Keypair;
use mailnode::mailbox::wire::{self, Registration};
use mailnode::mailbox::{MailboxLimits, MailboxRequest, MailboxResponse, MailboxService, inbox};

const ENVELOPES: usize = 10_000;
const SIZE: usize = 10 * 1024;
const SENDERS: usize = 100;
const PARALLEL: usize = 64;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = PeerId::random();
    let limits = MailboxLimits {
        per_sender_count: 1_000,
        per_sender_bytes: 64 * 1024 * 1024,
        per_inbox_bytes: 256 * 1024 * 1024,
        ..MailboxLimits::default()
    };
    let rss_start = rss_kib();
    let service = MailboxService::open(dir.path(), local, limits).expect("open");
    let bob = Keypair::generate_ed25519();
    let bob_id = bob.public().to_peer_id();
    let registration = Registration::sign(&bob, &[local], now(), now() + 86_400).expect("sign");
    let answer = service
        .handle(bob_id, MailboxRequest::Register { registration })
        .await;
    assert!(
        matches!(answer, MailboxResponse::Registered { .. }),
        "{answer:?}"
    );
    let senders: Vec<PeerId> = (0..SENDERS).map(|_| PeerId::random()).collect();
    let inbox = inbox::current_inbox(&bob_id, now());
    let rss_open = rss_kib();

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..ENVELOPES {
        if tasks.len() >= PARALLEL {
            let stored = tasks.join_next().await.expect("task").expect("join");
            assert_eq!(stored, MailboxResponse::Stored);
        }
        let service = service.clone();
        let sender = senders[n % SENDERS];
        let mut deposit_id = [0u8; 16];
        deposit_id[..8].copy_from_slice(&(n as u64).to_be_bytes());
        let sealed = vec![(n % 251) as u8; SIZE];
        tasks.spawn(async move {
            service
                .handle(
                    sender,
                    MailboxRequest::Deposit {
                        inbox,
                        deposit_id,
                        sealed,
                    },
                )
                .await
        });
    }
    while let Some(stored) = tasks.join_next().await {
        assert_eq!(stored.expect("join"), MailboxResponse::Stored);
    }
    let deposit_time = started.elapsed();
    let rss_held = rss_kib();
    assert_eq!(
        service.held_for(bob_id).await.expect("count"),
        ENVELOPES as u64
    );

    // One full collection (pages of up to 64), without acknowledging.
    let started = Instant::now();
    let nonce = match service.handle(bob_id, MailboxRequest::Challenge).await {
        MailboxResponse::Nonce { nonce, .. } => nonce,
        other => panic!("{other:?}"),
    };
    let inboxes = inbox::collect_inboxes(&bob_id, now());
    let signature = bob
        .sign(&wire::collect_signing_input(&nonce, &local, &inboxes))
        .expect("sign");
    let (mut after, mut seen) = (0, 0usize);
    loop {
        let request = MailboxRequest::Collect {
            inboxes: inboxes
                .iter()
                .map(|i| serde_bytes::ByteBuf::from(i.to_vec()))
                .collect(),
            nonce,
            signature: signature.clone(),
            after,
            max: 64,
        };
        let MailboxResponse::Envelopes { envelopes, more } = service.handle(bob_id, request).await
        else {
            panic!("collect refused")
        };
        seen += envelopes.len();
        after = envelopes.last().map_or(after, |e| e.seq);
        if !more {
            break;
        }
    }
    assert_eq!(seen, ENVELOPES);
    let collect_time = started.elapsed();
    let rss_after_collect = rss_kib();
    let db_bytes: u64 = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();

    println!(
        "mailbox bench: {ENVELOPES} envelopes of {SIZE} bytes from {SENDERS} senders, {PARALLEL} deposits in flight"
    );
    println!(
        "deposit: {:.2} s total, {:.0} deposits/s, {:.2} ms each on average (one durable commit each)",
        deposit_time.as_secs_f64(),
        ENVELOPES as f64 / deposit_time.as_secs_f64(),
        deposit_time.as_secs_f64() * 1000.0 / ENVELOPES as f64
    );
    println!(
        "collect (all, pages of 64, no ack): {:.2} s",
        collect_time.as_secs_f64()
    );
    println!(
        "VmRSS: start {} KiB, service open {} KiB, holding {ENVELOPES} {} KiB, after collect {} KiB",
        rss_start, rss_open, rss_held, rss_after_collect
    );
    println!(
        "mailbox.db (+wal, shm) on disk: {:.1} MiB",
        db_bytes as f64 / (1024.0 * 1024.0)
    );
}
