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

/// A login as a client makes it: one refused as unavailable (an instance just started and not
/// alive in the store yet, or a store too slow to answer in time under a test's load) is tried
/// again a moment later, for up to five seconds.
pub async fn login(addr: std::net::SocketAddr, device: &Device) -> Client {
    let mut tries = 0;
    loop {
        match ws::login(addr, None, device).await {
            Ok((ws, welcome)) => {
                let session = welcome["session"].as_str().unwrap_or_default().to_owned();
                return Client { ws, session };
            }
            Err(ws::WsError::Unexpected { got, .. })
                if got["code"] == "unavailable" && tries < 20 =>
            {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => panic!("login: {e}"),
        }
    }
}

/// Background load for the fault tests: `n` users (undisclosed, wanting anyone, so they meet
/// only each other) on the instances at `at`, each looping join → matched → a short chat →
/// leave until stopped; refused joins (`unavailable`) wait `retry_after` and join again, as the
/// clients do. What they saw is checked when they stop: every match has exactly two sides, and
/// nobody is matched while already in a match.
pub struct Churn {
    stop: tokio::sync::watch::Sender<bool>,
    users: Vec<tokio::task::JoinHandle<ChurnLog>>,
    started: std::time::Instant,
    /// When the latest match came, in µs since the churn started (0: none yet).
    latest: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Default, Debug)]
pub struct ChurnLog {
    /// Each match: its id and when it came (since the churn started).
    pub matches: Vec<(String, std::time::Duration)>,
    /// Joins refused as unavailable.
    pub refused: usize,
    /// `matched` while already in a match.
    pub matched_twice: usize,
    /// Matches whose partner was said to have left while this user was still in them.
    pub partner_left: Vec<String>,
    /// Matches that came while this user was stopping.
    pub while_stopping: Vec<String>,
    /// Frames nobody expects (any other error).
    pub unexpected: Vec<Value>,
}

impl Churn {
    pub async fn start(at: &[std::net::SocketAddr], verifier: &TestVerifier, n: usize) -> Churn {
        use anonchat_protocol::token::Gender;
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let started = std::time::Instant::now();
        let latest = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut users = Vec::with_capacity(n);
        for i in 0..n {
            let device = verifier.device(Gender::Undisclosed);
            let client = login(at[i % at.len()], &device).await;
            let seen = Seen {
                started,
                latest: latest.clone(),
            };
            users.push(tokio::spawn(churn(client, stopping.clone(), seen)));
        }
        Churn {
            stop,
            users,
            started,
            latest,
        }
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// When the latest match came (since the churn started), if any came yet.
    pub fn latest_match(&self) -> Option<std::time::Duration> {
        match self.latest.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            us => Some(std::time::Duration::from_micros(us)),
        }
    }

    /// Waits (at most `within`) until the churn matches after `after` (since it started), and
    /// says when that was seen: a test waits for the churn to recover from a fault instead of
    /// guessing how long it takes (its users try again only after the `retry_after` they were
    /// told).
    pub async fn matching_after(
        &self,
        after: std::time::Duration,
        within: std::time::Duration,
    ) -> std::time::Duration {
        let t0 = std::time::Instant::now();
        while self.latest_match().is_none_or(|t| t <= after) {
            assert!(
                t0.elapsed() < within,
                "the churn matching again within {within:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.elapsed()
    }

    /// Stops every user (each cancels its place or leaves its chat, then disconnects) and
    /// returns what they saw, checked: nobody matched while in a match, and every match with
    /// both its sides, but for a match with one side that its maker undid (the other side is
    /// told `partner_left`), that came while the users were stopping, or that was being handed
    /// over when the store failed (made within `fault`, times since the churn started: the
    /// maker never heard that the partner took it, and the partner is not told otherwise; its
    /// client's connection attempt times out and it joins again). Says how many had one side.
    pub async fn stop(self, fault: std::ops::Range<std::time::Duration>) -> Vec<ChurnLog> {
        let _ = self.stop.send(true);
        let mut logs = Vec::new();
        for u in self.users {
            logs.push(u.await.expect("a churning user"));
        }
        let mut sides: std::collections::HashMap<&str, Vec<std::time::Duration>> =
            Default::default();
        let mut closing = std::collections::HashSet::new();
        for log in &logs {
            assert!(log.unexpected.is_empty(), "{:?}", log.unexpected);
            assert_eq!(log.matched_twice, 0, "a user was matched while in a match");
            for (id, at) in &log.matches {
                sides.entry(id.as_str()).or_default().push(*at);
            }
            closing.extend(log.while_stopping.iter().map(String::as_str));
        }
        let mut one_sided = 0;
        for (id, at) in &sides {
            if at.len() == 2 {
                continue;
            }
            let undone = logs.iter().any(|l| l.partner_left.iter().any(|m| m == id));
            let in_fault = at.iter().all(|t| fault.contains(t));
            assert!(
                at.len() == 1 && (undone || in_fault || closing.contains(id)),
                "match {id} had {} sides, at {at:?} into the churn (undone: {undone}; the fault: {fault:?})",
                at.len()
            );
            one_sided += 1;
        }
        println!("churn: {} matches, {one_sided} with one side", sides.len());
        logs
    }
}

/// When every match side in `logs` came (since the churn started).
pub fn match_times(logs: &[ChurnLog]) -> Vec<std::time::Duration> {
    logs.iter()
        .flat_map(|l| l.matches.iter().map(|m| m.1))
        .collect()
}

/// How long a churning user's chat lasts (and how long it waits before it looks again): with
/// 200 users, a few hundred matches a second, which a Redis that syncs every write to disk
/// (the persistent test's) still serves within its deadlines on this machine.
const HOLD: std::time::Duration = std::time::Duration::from_millis(250);

/// One churning user: it holds a chat for [`HOLD`], or waits that long for a match. Stopped, it
/// cancels its place (or leaves its chat) and reads on for half a second, so that a match made
/// just then still has both its sides counted.
/// The churn's clock, and where each user records its latest match for the test to see.
struct Seen {
    started: std::time::Instant,
    latest: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Seen {
    /// A match came now: when, since the churn started.
    fn match_now(&self) -> std::time::Duration {
        let at = self.started.elapsed();
        let us = u64::try_from(at.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latest
            .fetch_max(us, std::sync::atomic::Ordering::Relaxed);
        at
    }
}

async fn churn(
    mut c: Client,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    seen: Seen,
) -> ChurnLog {
    use serde_json::json;
    use std::time::{Duration, Instant};
    const NICKNAME: &str = "churner";
    let mut log = ChurnLog::default();
    let mut current: Option<String> = None;
    let mut draining: Option<Instant> = None;
    c.join(NICKNAME, "any").await;
    loop {
        let frame = match draining {
            Some(since) if since.elapsed() > Duration::from_millis(500) => break,
            Some(_) => ws::next(&mut c.ws, Duration::from_millis(60)).await,
            None => tokio::select! {
                f = ws::next(&mut c.ws, HOLD) => f,
                _ = stopping.changed() => {
                    draining = Some(Instant::now());
                    match current.take() {
                        Some(id) => c.send(json!({"type": "leave", "match_id": id})).await,
                        None => c.send(json!({"type": "cancel"})).await,
                    }
                    continue;
                }
            },
        };
        match frame {
            Ok(Some(f)) => match f["type"].as_str() {
                Some("queued") | Some("cancelled") => {}
                Some("matched") => {
                    let id = f["match_id"].as_str().unwrap_or_default().to_owned();
                    if current.is_some() {
                        log.matched_twice += 1;
                    }
                    log.matches.push((id.clone(), seen.match_now()));
                    if draining.is_some() {
                        log.while_stopping.push(id.clone());
                        c.send(json!({"type": "leave", "match_id": id})).await;
                    } else {
                        current = Some(id);
                    }
                }
                Some("partner_left") => {
                    if current.as_deref() == f["match_id"].as_str() {
                        log.partner_left.extend(current.take());
                        c.join(NICKNAME, "any").await;
                    }
                }
                // Both sides left at once: the second leave finds no match. Harmless.
                Some("error") if f["code"] == "not_in_match" => {}
                Some("error") if f["code"] == "unavailable" && draining.is_none() => {
                    log.refused += 1;
                    let wait = f["retry_after"].as_u64().unwrap_or(1);
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    c.join(NICKNAME, "any").await;
                }
                Some("error") if draining.is_some() => {}
                _ => log.unexpected.push(f),
            },
            // Closed by the server: not expected in a churn.
            Ok(None) => {
                log.unexpected.push(json!("the socket closed"));
                return log;
            }
            // Nothing for a moment: a chat has lasted long enough; leave it and join again.
            Err(ws::WsError::Timeout(_)) => {
                if draining.is_none()
                    && let Some(id) = current.take()
                {
                    c.send(json!({"type": "leave", "match_id": id})).await;
                    c.join(NICKNAME, "any").await;
                }
            }
            Err(e) => log.unexpected.push(json!(e.to_string())),
        }
    }
    log
}

/// The rendezvous binary as its own process, killed when dropped.
pub struct Process {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
}

impl Process {
    /// Starts `anonchat-rendezvous serve` on a free port with `redis` and `v`'s keys, and waits
    /// until it listens (its log says where).
    pub fn start(redis: &RedisServer, v: &TestVerifier, dir: &std::path::Path) -> Process {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_anonchat-rendezvous"))
            .arg("serve")
            .env("RENDEZVOUS_ADDR", "127.0.0.1:0")
            .env("REDIS_URL", &redis.url)
            .env("SERVER_SECRET", "test secret")
            .env("VERIFIER_JWKS_FILE", jwks_file(dir, v))
            .env("RATE_LIMIT_PER_MINUTE", "0")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        // Reads the log to its end, so that the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("rendezvous listening")
                    && let Some(addr) = line.split("addr=").nth(1)
                {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the rendezvous binary listens")
            .parse()
            .unwrap();
        Process { child, addr }
    }

    /// SIGKILL: no goodbye to its clients, nothing retired in Redis.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
