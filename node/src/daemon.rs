//! `mailnode run`: starts every service of a node, publishes where it
//! listens, and shuts everything down cleanly on SIGINT or SIGTERM.
//!
//! Services (each a handle plus a task): the store (its own threads), the
//! network (libp2p event loop), the inbound handler, the outbox, and the two
//! bridge servers. This module only wires them; each owns its own rules.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use imap_bridge::imap::ImapConfig;
use imap_bridge::smtp::SmtpConfig;
use imap_bridge::{BridgeCredentials, Secret};
use keys::{AddressBook, Identity, StrangerBook};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, watch};

use crate::config::Settings;
use crate::contacts::Contacts;
use crate::home::{Home, RunInfo};
use crate::mailbox::{MailboxPeers, MailboxService};
use crate::network::{self, NetworkConfig, RateLimit, StrangerLimits};
use crate::outbox::{self, OutboxSettings};
use crate::store::{Store, StoreOptions};
use crate::submit::Outgoing;

/// Runs the node until a termination signal.
pub async fn run(home: Home, settings: Settings, identity: Identity) -> anyhow::Result<()> {
    let _lock = home.lock()?;
    RunInfo::remove(&home);
    let identity = Arc::new(with_card_from_siblings(&home, identity));
    let contacts =
        Contacts::new(AddressBook::open(home.path()).context("cannot open the address book")?);
    let store_options = StoreOptions {
        vanished_keep: settings.vanished_keep,
    };
    let store = Store::open_with(&home.store_file(), identity.store_key(), &store_options)
        .with_context(|| format!("cannot open the mail store {}", home.store_file().display()))?;

    // A card changed by `keys rotate` or `revoke` goes to every contact
    // through the outbox (issue 8).
    let announced = crate::announce::announce(home.path(), &identity, &contacts, &store)
        .await
        .context("cannot queue our changed card for our contacts")?;
    if announced > 0 {
        tracing::info!(contacts = announced, "announcing our changed card");
    }

    let mailbox_peers = MailboxPeers::open(home.path()).context("cannot read the mailbox peers")?;
    let mailbox_limits = settings.mailbox.clone();
    let (network, inbound) = network::start(NetworkConfig {
        keypair: identity.libp2p_keypair().clone(),
        listen: settings.listen.clone(),
        max_message_size: settings.max_message_size,
        request_timeout: Duration::from_secs(60),
        idle_connection_timeout: Duration::from_secs(120),
        rate_limit: RateLimit {
            per_second: settings.rate_limit_per_second,
            burst: settings.rate_limit_per_second.saturating_mul(4),
        },
        stranger_limits: StrangerLimits::default(),
        public: settings.public,
        mdns: settings.mdns,
        bootstrap: settings.bootstrap.clone(),
        external: settings.external.clone(),
        mailboxes: mailbox_peers.peer_ids(),
        mailbox_request_limit: mailbox_limits.request_limit(),
        deliver_v2: settings.deliver_v2,
    })
    .await
    .context("cannot start the peer-to-peer network")?;

    let (tls, tls_fingerprint) = crate::bridge_tls::load_or_create(&home, identity.store_key())?;
    let credentials = BridgeCredentials {
        username: identity.address().to_string(),
        password: Secret::new(identity.bridge_password()),
    };
    let imap_listener = bind(settings.imap, "IMAP", "--imap").await?;
    let smtp_listener = bind(settings.smtp, "SMTP", "--smtp").await?;
    let imap_addr = imap_listener.local_addr()?;
    let smtp_addr = smtp_listener.local_addr()?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let outbox_wakeup = Arc::new(Notify::new());
    let mut tasks = tokio::task::JoinSet::new();

    let strangers = crate::strangers::Strangers::new(
        settings.strangers,
        StrangerBook::open(home.path()).context("cannot open the stranger list")?,
    );
    let mut inbound_context = crate::inbound::Inbound::new(
        Arc::clone(&identity),
        contacts.clone(),
        store.clone(),
        strangers.clone(),
        std::thread::available_parallelism().map_or(2, |n| n.get()) * 2,
    );
    // Device sync (issue 8): the other devices of this identity, as the
    // card says; a card a sibling sends is kept in card.asc.
    let devices = crate::sync::Devices::new(&identity).with_card_file(home.path().join("card.asc"));
    inbound_context.devices = devices.clone();
    tasks.spawn(crate::inbound::run(
        inbound.deliveries,
        inbound_context.clone(),
    ));
    let service = if settings.public {
        let service = MailboxService::open(home.path(), *identity.peer_id(), mailbox_limits)
            .context("cannot open the mailbox service (mailbox.db)")?;
        Some(Arc::new(service))
    } else {
        None
    };
    crate::mailbox_node::spawn(
        &mut tasks,
        crate::mailbox_node::Parts {
            network: network.clone(),
            identity: Arc::clone(&identity),
            inbound: inbound_context,
            service: service.clone(),
            peers: mailbox_peers.peer_ids(),
            shutdown: shutdown_rx.clone(),
            store: store.clone(),
        },
        inbound.mailbox,
    );
    tasks.spawn(crate::strangers::run_promotions(
        contacts.clone(),
        strangers,
        store.clone(),
        shutdown_rx.clone(),
    ));
    let gateway = crate::gateway::load(home.path(), &identity)?;
    let gateway_sender = gateway.as_ref().map(|g| g.sender.clone());
    if let Some(gateway) = &gateway {
        tasks.spawn(crate::gateway::fetch::run(
            crate::gateway::fetch::Fetcher {
                home: home.path().to_path_buf(),
                config: gateway.config.clone(),
                password: gateway.password.clone(),
                store: store.clone(),
                peers: gateway.peers.clone(),
                identity: Arc::clone(&identity),
                max_message_size: settings.max_message_size,
            },
            shutdown_rx.clone(),
        ));
    }
    tasks.spawn(outbox::run(
        store.clone(),
        network.clone(),
        contacts.clone(),
        Arc::clone(&outbox_wakeup),
        OutboxSettings {
            max_retry_interval: settings.max_retry_interval,
            give_up_after: settings.give_up_after,
            own_card: identity.card().to_binary(),
            own_address: identity.address().to_string(),
            own_peer_id: identity.peer_id().to_string(),
            keypair: identity.libp2p_keypair().clone(),
            gateway: gateway_sender.clone(),
        },
        network.connected(),
        shutdown_rx.clone(),
    ));
    tasks.spawn(crate::sync::run(
        crate::sync::Service {
            identity: Arc::clone(&identity),
            devices: devices.clone(),
            store: store.clone(),
            outbox_wakeup: Arc::clone(&outbox_wakeup),
            network: network.clone(),
            max_message_size: settings.max_message_size,
        },
        shutdown_rx.clone(),
    ));
    let imap_config = Arc::new(ImapConfig {
        credentials: credentials.clone(),
        max_literal: u32::try_from(settings.max_message_size).unwrap_or(u32::MAX),
        tls: Some(Arc::clone(&tls)),
    });
    let imap_store = store.clone();
    let imap_shutdown = shutdown_rx.clone();
    tasks.spawn(async move {
        if let Err(err) =
            imap_bridge::imap::serve(imap_listener, imap_config, imap_store, imap_shutdown).await
        {
            tracing::error!("the IMAP bridge stopped: {err}");
        }
    });
    let smtp_config = Arc::new(SmtpConfig {
        credentials,
        hostname: "localhost".to_string(),
        max_message_size: settings.max_message_size,
        tls: Some(tls),
    });
    let outgoing = Outgoing::new(
        Arc::clone(&identity),
        contacts.clone(),
        store.clone(),
        Arc::clone(&outbox_wakeup),
        settings.max_message_size,
    );
    let outgoing = match &gateway {
        Some(gateway) => outgoing.with_gateway(gateway.peers.clone()),
        None => outgoing,
    };
    let smtp_shutdown = shutdown_rx.clone();
    tasks.spawn(async move {
        if let Err(err) =
            imap_bridge::smtp::serve(smtp_listener, smtp_config, outgoing, smtp_shutdown).await
        {
            tracing::error!("the SMTP bridge stopped: {err}");
        }
    });

    let listen = network
        .listen_addrs()
        .await
        .context("the network stopped during start-up")?;
    RunInfo {
        pid: std::process::id(),
        peer_id: identity.peer_id().to_string(),
        listen: listen.iter().map(ToString::to_string).collect(),
        imap: imap_addr.to_string(),
        smtp: smtp_addr.to_string(),
    }
    .write(&home)?;
    // Greet every contact: a peer that holds mail for us sees the
    // connection and sends it now rather than at its next retry. Contacts
    // without address hints are looked up in the DHT.
    for contact in contacts.all() {
        for device in contact.card.devices() {
            network.dial(*device, contact.addrs.clone());
        }
    }
    tasks.spawn(crate::memory::run(shutdown_rx.clone()));
    tasks.spawn(crate::status::run(
        home.clone(),
        network.clone(),
        contacts.clone(),
        devices,
        store.clone(),
        service,
        shutdown_rx.clone(),
    ));
    tracing::info!(
        peer_id = %identity.peer_id(),
        imap = %imap_addr,
        smtp = %smtp_addr,
        tls_fingerprint = %tls_fingerprint,
        "mailnode is running"
    );

    wait_for_signal().await?;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    network.shutdown().await;
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("some services did not stop within 10 s; exiting anyway");
    }
    store.close().await;
    RunInfo::remove(&home);
    tracing::info!("stopped");
    Ok(())
}

/// Merges `card.asc` into the identity: a sibling device's newer card
/// (a device added or removed) that the device sync kept there while the
/// node ran (issue 8, `sync::Devices`).
fn with_card_from_siblings(home: &Home, mut identity: Identity) -> Identity {
    match Identity::public_info(home.path()) {
        Ok(info) => match identity.merge_own_card(&info.card) {
            Ok(true) => tracing::info!("took the updated card a sibling device sent"),
            Ok(false) => {}
            Err(err) => tracing::warn!("the card in card.asc was not taken: {err}"),
        },
        Err(err) => tracing::warn!("cannot read our card from card.asc: {err}"),
    }
    identity
}

async fn bind(addr: std::net::SocketAddr, what: &str, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!(
            "cannot listen for {what} on {addr}; is another program (another bridge?) using \
             that port? Choose another with {flag} HOST:PORT"
        )
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
