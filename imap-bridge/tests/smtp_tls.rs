//! STARTTLS (RFC 3207) on the SMTP submission server, with a rustls client
//! that trusts exactly the bridge's self-signed certificate, and the
//! certificate helpers of `imap_bridge::tls`.

mod smtp_support;

use std::sync::Arc;

use imap_bridge::tls::{fingerprint_sha256, self_signed, server_config};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};
use smtp_support::{Client, KNOWN, STEP, start};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A client configuration whose only trust anchor is `cert_pem`.
fn client_config(cert_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert.expect("certificate")).expect("trust anchor");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

async fn upgrade(client: Client<TcpStream>, cert_pem: &str) -> TlsStream<TcpStream> {
    let connector = tokio_rustls::TlsConnector::from(client_config(cert_pem));
    let name = ServerName::try_from("localhost").expect("server name");
    tokio::time::timeout(STEP, connector.connect(name, client.into_inner()))
        .await
        .expect("handshake in time")
        .expect("handshake")
}

#[tokio::test]
async fn starttls_then_auth_and_send() {
    let (cert, key) = self_signed(&[]).expect("certificate");
    let server = start(Some(server_config(&cert, &key).expect("tls config"))).await;
    let (mut client, _) = Client::connect(server.addr).await;
    let ehlo = client.command("EHLO client.test").await;
    assert!(
        ehlo.contains("250 STARTTLS") || ehlo.contains("250-STARTTLS"),
        "{ehlo}"
    );
    assert_eq!(
        client.command("STARTTLS").await,
        "220 2.0.0 Ready to start TLS\r\n"
    );

    let tls = upgrade(client, &cert).await;
    // The certificate presented is the one whose fingerprint users see.
    let presented = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first().cloned())
        .expect("server certificate");
    let digest = Sha256::digest(presented.as_ref());
    let expected: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(
        fingerprint_sha256(&cert).expect("fingerprint"),
        expected.join(":")
    );

    let mut client = Client::new(tls);
    // RFC 3207 §4.2: state is reset, so EHLO again; STARTTLS is no longer
    // offered.
    assert!(
        client
            .command("MAIL FROM:<a@b.c>")
            .await
            .starts_with("503 5.5.1")
    );
    let ehlo = client.command("EHLO client.test").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    assert!(client.command("STARTTLS").await.starts_with("503 5.5.1"));
    client.login().await;
    client.command("MAIL FROM:<alice@example.org>").await;
    assert_eq!(
        client.command(&format!("RCPT TO:<{KNOWN}>")).await,
        "250 2.1.5 OK\r\n"
    );
    client.command("DATA").await;
    client
        .send(b"Subject: over TLS\r\n\r\nsecret\r\n.\r\n")
        .await;
    assert!(client.reply().await.starts_with("250 2.0.0 OK queued as"));
    assert!(client.command("QUIT").await.starts_with("221 "));
    assert_eq!(server.recorder.messages().len(), 1);
}

/// CVE-2011-0411: a command pipelined after STARTTLS in the same packet
/// must not be executed, neither before nor after the handshake.
#[tokio::test]
async fn command_injected_after_starttls_is_discarded() {
    let (cert, key) = self_signed(&[]).expect("certificate");
    let server = start(Some(server_config(&cert, &key).expect("tls config"))).await;
    let (mut client, _) = Client::connect(server.addr).await;
    client.command("EHLO client.test").await;
    client.send(b"STARTTLS\r\nNOOP\r\n").await;
    assert_eq!(client.reply().await, "220 2.0.0 Ready to start TLS\r\n");
    let mut client = Client::new(upgrade(client, &cert).await);
    // If NOOP had been kept, its "250 2.0.0 OK" would come first.
    let ehlo = client.command("EHLO client.test").await;
    assert!(ehlo.starts_with("250-bridge.test"), "{ehlo}");
}

#[tokio::test]
async fn starttls_without_tls_configuration_is_refused() {
    let server = start(None).await;
    let (mut client, _) = Client::connect(server.addr).await;
    client.command("EHLO client.test").await;
    assert_eq!(
        client.command("STARTTLS").await,
        "454 4.7.0 TLS not available\r\n"
    );
    assert_eq!(client.command("NOOP").await, "250 2.0.0 OK\r\n");
}

#[test]
fn fingerprint_format() {
    let (cert, _) = self_signed(&["mail.test".to_string()]).expect("certificate");
    let fingerprint = fingerprint_sha256(&cert).expect("fingerprint");
    let pairs: Vec<&str> = fingerprint.split(':').collect();
    assert_eq!(pairs.len(), 32);
    for pair in pairs {
        assert_eq!(pair.len(), 2);
        assert!(
            pair.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
    }
}

#[tokio::test]
async fn certificate_is_valid_for_localhost_and_loopback_ip() {
    let (cert, key) = self_signed(&[]).expect("certificate");
    let server = start(Some(server_config(&cert, &key).expect("tls config"))).await;
    for name in ["localhost", "127.0.0.1"] {
        let (mut client, _) = Client::connect(server.addr).await;
        client.command("EHLO client.test").await;
        client.command("STARTTLS").await;
        let connector = tokio_rustls::TlsConnector::from(client_config(&cert));
        let server_name = ServerName::try_from(name).expect("server name");
        let tls = tokio::time::timeout(STEP, connector.connect(server_name, client.into_inner()))
            .await
            .expect("handshake in time");
        assert!(tls.is_ok(), "{name}: {:?}", tls.err());
    }
}
