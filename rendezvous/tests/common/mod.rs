//! Test harness: store factories (on a real `redis-server`, from the testkit), test tokens and
//! a protocol-level client.
#![allow(dead_code)]

use anonchat_rendezvous::store::StoreConfig;
use anonchat_rendezvous::store::memory::MemoryStore;
use anonchat_rendezvous::store::redis::RedisStore;

pub use anonchat_testkit::{RedisCluster, RedisServer};

pub fn memory(config: StoreConfig) -> MemoryStore {
    MemoryStore::new(config)
}

pub async fn redis(server: &RedisServer, config: StoreConfig) -> RedisStore {
    RedisStore::connect(&server.url, config)
        .await
        .expect("connect to the test redis-server")
}

pub async fn cluster(cluster: &RedisCluster, config: StoreConfig) -> RedisStore {
    RedisStore::connect_cluster(cluster.nodes(), config)
        .await
        .expect("connect to the test Redis Cluster")
}

use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::server::{self, Keys, Running};
use anonchat_rendezvous::store::Store;
use anonchat_testkit::ws;
use serde_json::Value;

#[allow(unused_imports)]
pub use anonchat_testkit::ws::{Client, Ws};
#[allow(unused_imports)]
pub use anonchat_testkit::{Device, TestVerifier};

pub async fn send(ws: &mut Ws, v: Value) {
    ws::send(ws, &v).await.expect("send")
}

/// The next text frame as JSON (5 s at most), skipping pings; None when the socket closes.
pub async fn recv(ws: &mut Ws) -> Option<Value> {
    ws::next(ws, ws::WAIT).await.expect("a frame within 5 s")
}

/// Test settings: the limits off unless a test sets them.
pub fn config() -> Config {
    let mut c = Config::local();
    c.rate_limit_per_minute = 0;
    c.frames_per_second = 1000;
    c.server_secret = Some("test secret".into());
    c
}

pub async fn start<S: Store>(
    store: S,
    verifier: &TestVerifier,
    tune: impl FnOnce(&mut Config),
) -> Running {
    let mut c = config();
    tune(&mut c);
    server::start(
        c,
        store,
        Keys::Fixed(verifier.keys()),
        std::future::pending(),
    )
    .await
    .expect("the rendezvous starts")
}

pub const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sctp-port:5000\r\n";
pub const CANDIDATE: &str = "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0";

/// `a` waits, `b` joins, they are matched, and an offer and an answer cross between them.
pub async fn meet_and_signal(a: &mut Client, b: &mut Client) {
    use serde_json::json;
    a.join("alice", "any").await;
    a.expect("queued").await;
    b.join("bobby", "any").await;
    let mb = b.expect("matched").await;
    let ma = a.expect("matched").await;
    assert_eq!(ma["match_id"], mb["match_id"]);
    let id = ma["match_id"].as_str().unwrap();
    a.send(json!({"type": "signal", "match_id": id, "data": {"kind": "offer", "sdp": OFFER}}))
        .await;
    assert_eq!(b.expect("signal").await["data"]["kind"], "offer");
    b.send(json!({"type": "signal", "match_id": id, "data": {"kind": "answer", "sdp": OFFER}}))
        .await;
    assert_eq!(a.expect("signal").await["data"]["kind"], "answer");
}

/// `GET http://ADDR PATH` as text.
pub async fn get_text(addr: std::net::SocketAddr, path: &str) -> String {
    reqwest::get(format!("http://{addr}{path}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `GET http://ADDR PATH` as JSON.
pub async fn get_json(addr: std::net::SocketAddr, path: &str) -> Value {
    serde_json::from_str(&get_text(addr, path).await).unwrap()
}

/// Writes `v`'s published keys to `DIR/jwks.json`, for a binary's `VERIFIER_JWKS_FILE`.
pub fn jwks_file(dir: &std::path::Path, v: &TestVerifier) -> std::path::PathBuf {
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, serde_json::to_vec(&v.jwks()).unwrap()).unwrap();
    jwks
}

/// A loopback TCP port free a moment ago (for a server that must be told its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
