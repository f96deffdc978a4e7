//! HTTPS served by the accept loop itself, on real loopback sockets, with certificates from a
//! test CA: a client that trusts the CA gets answers; plain HTTP and a stalled handshake get
//! nothing and hold nothing; a renewed certificate is served without a restart, when the files
//! change and on SIGHUP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anonchat_serve::testing::closed_after;
use anonchat_serve::{HttpLimits, Options, Tls, serve};
use anonchat_testkit::TestCa;
use axum::Router;
use axum::routing::get;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A client that trusts `ca` only.
fn client(ca: &TestCa) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// `GET /` over TLS: the status line and body, and the leaf certificate the server showed.
async fn fetch(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> Result<(String, Vec<u8>), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    Ok((String::from_utf8_lossy(&response).into_owned(), leaf))
}

/// The server's certificate files, written by `ca` for localhost.
fn renew(ca: &TestCa, dir: &Path) -> Vec<u8> {
    let (chain, _) = ca.write(dir, "server", &["localhost", "127.0.0.1"]);
    let pem = std::fs::read(chain).unwrap();
    let first = rustls::pki_types::pem::PemObject::pem_slice_iter(&pem)
        .next()
        .unwrap();
    let der: CertificateDer<'static> = first.unwrap();
    der.to_vec()
}

#[tokio::test]
async fn https_with_a_test_ca_bounded_handshakes_and_renewal_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let first = renew(&ca, dir.path());
    let limits = HttpLimits {
        max_connections: Some(2),
        header_timeout: Duration::from_secs(1),
        tls_cert_file: Some(dir.path().join("server.pem")),
        tls_key_file: Some(dir.path().join("server.key")),
        ..HttpLimits::default()
    };
    let tls = limits.tls().unwrap().expect("both files set");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/", get(|| async { "over tls" }));
    let server = tokio::spawn({
        let tls = tls.clone();
        async move {
            serve(
                listener,
                app,
                &limits,
                Options::default(),
                Some(tls),
                std::future::pending(),
            )
            .await
        }
    });
    let trusting = client(&ca);

    let (answer, leaf) = fetch(&trusting, addr).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("over tls"));
    assert_eq!(leaf, first);

    // A client that does not trust the CA stops at the handshake.
    let stranger = client(&TestCa::new());
    let refused = fetch(&stranger, addr).await.unwrap_err();
    assert!(
        refused.contains("UnknownIssuer") || refused.contains("invalid peer certificate"),
        "{refused}"
    );

    // Plain HTTP to the TLS port: no answer, and the connection is closed.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), plain.read_to_end(&mut got)).await;
    assert!(
        !String::from_utf8_lossy(&got).contains("200"),
        "plain HTTP got an answer"
    );

    // Two stalled handshakes take both slots; each is dropped at the header deadline, then
    // the server answers again.
    let mut stalled = [
        TcpStream::connect(addr).await.unwrap(),
        TcpStream::connect(addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(fetch(&trusting, addr).await.is_err(), "no slot is free");
    for tcp in &mut stalled {
        let closed = closed_after(tcp, Duration::from_secs(3)).await;
        assert!(
            closed.is_some_and(|d| d <= Duration::from_millis(1500)),
            "a stalled handshake held its slot: {closed:?}"
        );
    }
    assert!(fetch(&trusting, addr).await.is_ok());

    // Renewed on disk: served within the poll, without a restart.
    let second = renew(&ca, dir.path());
    assert_ne!(first, second);
    let start = Instant::now();
    loop {
        let (_, leaf) = fetch(&trusting, addr).await.unwrap();
        if leaf == second {
            break;
        }
        assert!(
            start.elapsed() < anonchat_serve::tls::POLL * 3,
            "the renewed certificate is not served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // At least one reload (the other test's SIGHUP reaches this process's watcher too).
    assert!(tls.generation() >= 2);
    server.abort();
}

#[tokio::test]
async fn sighup_reloads_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    renew(&ca, dir.path());
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    let tls = Tls::from_files(Some(&cert), Some(&key)).unwrap().unwrap();
    // The files are looked at once an hour here: only the signal can explain a reload.
    let watching = tokio::spawn(tls.clone().watch(Duration::from_secs(3600)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    renew(&ca, dir.path());
    assert_eq!(tls.generation(), 1);
    // SAFETY: raising a signal this process handles (tokio's handler is installed above).
    unsafe { libc::raise(libc::SIGHUP) };
    let start = Instant::now();
    while tls.generation() == 1 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "SIGHUP did not reload"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watching.abort();
}
