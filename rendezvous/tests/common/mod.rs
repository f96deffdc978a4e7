//! Test harness: store factories (on a real `redis-server`, from the testkit), test tokens and
//! a protocol-level client.
#![allow(dead_code)]

use anonchat_rendezvous::store::StoreConfig;
use anonchat_rendezvous::store::memory::MemoryStore;
use anonchat_rendezvous::store::redis::RedisStore;

pub use anonchat_testkit::RedisServer;

pub fn memory(config: StoreConfig) -> MemoryStore {
    MemoryStore::new(config)
}

pub async fn redis(server: &RedisServer, config: StoreConfig) -> RedisStore {
    RedisStore::connect(&server.url, config)
        .await
        .expect("connect to the test redis-server")
}

use anonchat_protocol::rendezvous::HELLO_CONTEXT;
use anonchat_protocol::token::{Gender, Jwks, KeySet, SigningKey, unix_now};
use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::server::{self, Keys, Running};
use anonchat_rendezvous::store::Store;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A stand-in for the verifier: it signs real tokens with a real Ed25519 key.
pub struct TestVerifier {
    pub key: SigningKey,
}

impl TestVerifier {
    pub fn new() -> Self {
        TestVerifier {
            key: SigningKey::generate(),
        }
    }

    pub fn keys(&self) -> KeySet {
        KeySet::from_jwks(&Jwks {
            keys: vec![self.key.public_jwk()],
        })
        .unwrap()
    }

    /// A fresh device with a token valid for an hour.
    pub fn device(&self, gender: Gender) -> Device {
        self.device_with_ttl(gender, 3600)
    }

    pub fn device_with_ttl(&self, gender: Gender, ttl: i64) -> Device {
        self.device_from(anonchat_protocol::token::DEFAULT_ISSUER, gender, ttl)
    }

    /// A fresh device with a token signed by this verifier's key under `issuer`.
    pub fn device_from(&self, issuer: &str, gender: Gender, ttl: i64) -> Device {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let (token, claims) = self
            .key
            .issue(
                issuer,
                &key.verifying_key(),
                gender,
                unix_now() - 120,
                ttl + 120,
            )
            .unwrap();
        Device {
            key,
            token,
            peer_id: claims.sub,
        }
    }
}

pub struct Device {
    pub key: ed25519_dalek::SigningKey,
    pub token: String,
    pub peer_id: String,
}

impl Device {
    pub fn sign(&self, nonce: &str) -> String {
        use ed25519_dalek::Signer;
        URL_SAFE_NO_PAD.encode(
            self.key
                .sign(format!("{HELLO_CONTEXT}{nonce}").as_bytes())
                .to_bytes(),
        )
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A protocol-level test client over a real WebSocket.
pub struct Client {
    pub ws: Ws,
    pub session: String,
}

impl Client {
    /// Connects and reads the challenge; returns the socket and the nonce.
    pub async fn connect(addr: std::net::SocketAddr) -> (Ws, String) {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws"))
            .await
            .expect("connect");
        let challenge = recv(&mut ws).await.expect("a challenge");
        assert_eq!(challenge["type"], "challenge", "{challenge}");
        let nonce = challenge["nonce"].as_str().unwrap().to_owned();
        (ws, nonce)
    }

    /// Connects and authenticates; panics unless welcomed.
    pub async fn login(addr: std::net::SocketAddr, device: &Device) -> (Client, Value) {
        let (mut ws, nonce) = Self::connect(addr).await;
        send(
            &mut ws,
            json!({"type": "hello", "token": device.token, "signature": device.sign(&nonce)}),
        )
        .await;
        let welcome = recv(&mut ws).await.expect("a welcome");
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let session = welcome["session"].as_str().unwrap().to_owned();
        (Client { ws, session }, welcome)
    }

    pub async fn send(&mut self, v: Value) {
        send(&mut self.ws, v).await
    }

    /// The next frame (5 s at most).
    pub async fn recv(&mut self) -> Value {
        recv(&mut self.ws)
            .await
            .expect("a frame before the socket closed")
    }

    /// The next frame, which must be of `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], kind, "expected {kind}, got {v}");
        v
    }

    /// The next frame, which must be an error with `code`.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let v = self.expect("error").await;
        assert_eq!(v["code"], code, "{v}");
        v
    }

    pub async fn join(&mut self, nickname: &str, want: &str) {
        self.send(json!({"type": "join", "profile": {"nickname": nickname, "bio": "here to chat a bit"}, "want": want})).await
    }

    /// Nothing arrives within `ms` milliseconds.
    pub async fn quiet(&mut self, ms: u64) {
        if let Ok(Some(v)) =
            tokio::time::timeout(std::time::Duration::from_millis(ms), recv(&mut self.ws)).await
        {
            panic!("unexpected frame {v}");
        }
    }
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

/// The next text frame as JSON, skipping pings; None when the socket closes.
pub async fn recv(ws: &mut Ws) -> Option<Value> {
    let deadline = std::time::Duration::from_secs(5);
    loop {
        match tokio::time::timeout(deadline, ws.next())
            .await
            .expect("a frame within 5 s")
        {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).expect("JSON")),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
        }
    }
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
