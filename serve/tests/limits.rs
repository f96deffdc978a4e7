//! The accept loop under attack, on real loopback sockets.

use std::net::SocketAddr;
use std::time::Duration;

use anonchat_serve::testing::{HALF_A_HEADER, closed_after, get, slowloris};
use anonchat_serve::{HttpLimits, Options, serve};
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::routing::get as route_get;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(max_connections: usize, header_timeout_seconds: u64) -> Server {
        let app = Router::new()
            .route("/healthz", route_get(|| async { "ok" }))
            .route(
                "/ws",
                route_get(|ws: WebSocketUpgrade| async move {
                    ws.on_upgrade(|mut socket| async move {
                        while let Some(Ok(_)) = socket.next().await {}
                    })
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = HttpLimits {
            max_connections: Some(max_connections),
            header_timeout: Duration::from_secs(header_timeout_seconds),
            ..HttpLimits::default()
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            serve(listener, app, &limits, Options::default(), None, async {
                let _ = stopped.await;
            })
            .await
        });
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

const SOON: Duration = Duration::from_millis(500);

#[tokio::test]
async fn half_sent_headers_cannot_hold_the_server() {
    let server = Server::start(16, 1).await;
    let mut held = slowloris(server.addr, 40).await;
    assert_eq!(held.len(), 40, "every connect succeeds at the TCP level");
    // Past the cap, connections are closed at once rather than left to pile up.
    let mut refused = 0;
    for tcp in held.iter_mut().skip(16) {
        if closed_after(tcp, SOON).await.is_some() {
            refused += 1;
        }
    }
    assert_eq!(
        refused, 24,
        "connections past MAX_CONNECTIONS are closed at once"
    );
    // The first 16 are held, but only until the header deadline.
    for tcp in held.iter_mut().take(16) {
        let after = closed_after(tcp, Duration::from_secs(3))
            .await
            .expect("a half-sent head is dropped at the header deadline");
        assert!(
            after <= Duration::from_millis(2500),
            "closed after {after:?}"
        );
    }
    assert_eq!(
        get(server.addr, "/healthz", Duration::from_secs(2)).await,
        Ok("HTTP/1.1 200 OK".to_owned())
    );
    server.stop().await;
}

#[tokio::test]
async fn a_connection_is_held_until_the_deadline_not_cut_early() {
    let server = Server::start(16, 2).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(HALF_A_HEADER).await.unwrap();
    assert_eq!(
        closed_after(&mut tcp, Duration::from_millis(1500)).await,
        None
    );
    // Finishing the head in time gets an answer.
    tcp.write_all(b"1\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    server.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_when_it_idles_past_the_deadline() {
    let server = Server::start(16, 1).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let after = closed_after(&mut tcp, Duration::from_secs(3))
        .await
        .expect("an idle kept-alive connection is closed");
    assert!(
        after >= Duration::from_millis(800),
        "closed after {after:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_request_head_is_refused_with_431() {
    let server = Server::start(16, 5).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    // The server may close before the whole head is written.
    let _ = tcp.write_all(big.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response).await;
    assert!(
        response.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&response)
    );
    server.stop().await;
}

#[tokio::test]
async fn websockets_keep_their_slot_until_they_close() {
    let server = Server::start(2, 5).await;
    let url = format!("ws://{}/ws", server.addr);
    let (first, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (_second, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    // Both slots are taken by upgraded sockets: a third connection is closed at once.
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_after(&mut third, SOON).await.is_some());
    drop(first);
    // The slot comes back once the socket is gone.
    let mut answer = Err(String::new());
    for _ in 0..20 {
        answer = get(server.addr, "/healthz", SOON).await;
        if answer.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer, Ok("HTTP/1.1 200 OK".to_owned()));
    server.stop().await;
}

#[test]
fn the_cap_never_exceeds_what_the_descriptors_allow() {
    let limits = HttpLimits {
        max_connections: Some(usize::MAX),
        ..HttpLimits::default()
    };
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into `limit`.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    // 64 descriptors stay free for everything that is not a client.
    assert_eq!(
        limits.connections() as u64,
        limit.rlim_cur.saturating_sub(64).max(1)
    );
    let small = HttpLimits {
        max_connections: Some(3),
        ..HttpLimits::default()
    };
    assert_eq!(small.connections(), 3, "a smaller setting is kept");
}
