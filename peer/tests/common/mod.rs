//! Shared by the peer's tests: a real rendezvous (memory or Redis store) trusting a test verifier
//! key, running on its own runtime so that a test can kill it, and devices with fresh identities.
#![allow(dead_code)]

pub mod browser;
pub mod lab;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anonchat_peer::identity::{Identity, SavedToken};
use anonchat_peer::rendezvous::RendezvousClient;
use anonchat_peer::session::{self, Command, Event, JoinRequest, SessionConfig};
use anonchat_peer::webrtc_session;
use anonchat_peer::webrtc_session::{Connected, Options, SessionError};
use anonchat_protocol::rendezvous::{ClientMessage, Profile, Transport, Want};
use anonchat_protocol::rendezvous::{Role, ServerMessage};
use anonchat_protocol::signaling::SignalData;
use anonchat_protocol::token::Gender;
use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::server::{self, Keys};
pub use anonchat_testkit::{RedisServer, TestVerifier};
use tokio::sync::mpsc;

/// A fresh device identity in its own temporary home.
pub fn identity(name: &str) -> Identity {
    Identity::load_or_create(&home(name)).unwrap()
}

/// An empty temporary directory for device `name`.
pub fn home(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("anonchat-peer-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A rendezvous on a thread and runtime of its own: [`Rendezvous::kill`] drops every socket at
/// once, the way a killed process does, without the graceful goodbyes of a shutdown.
pub struct Rendezvous {
    pub url: String,
    pub addr: SocketAddr,
    redis_url: Option<String>,
    verifier: Arc<TestVerifier>,
    kill: Option<std::sync::mpsc::Sender<()>>,
}

impl Rendezvous {
    pub async fn start() -> Rendezvous {
        Self::launch(
            None,
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(TestVerifier::new()),
        )
        .await
    }

    pub async fn start_on_redis(redis: &RedisServer) -> Rendezvous {
        Self::launch(
            Some(redis.url.clone()),
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(TestVerifier::new()),
        )
        .await
    }

    async fn launch(
        redis_url: Option<String>,
        addr: SocketAddr,
        verifier: Arc<TestVerifier>,
    ) -> Rendezvous {
        let keys = verifier.keys();
        let config = Config {
            addr,
            rate_limit_per_minute: 0,
            redis_url: redis_url.clone(),
            server_secret: Some("peer-tests-secret".into()),
            ..Config::local()
        };
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let (kill, killed) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let running = runtime.block_on(async {
                server::start_from_config(config, Keys::Fixed(keys), std::future::pending())
                    .await
                    .unwrap()
            });
            let _ = ready_tx.send(running.addr);
            let _ = killed.recv();
            drop(running);
            runtime.shutdown_background();
        });
        let addr = ready.await.unwrap();
        Rendezvous {
            url: format!("ws://{addr}/v1/ws"),
            addr,
            redis_url,
            verifier,
            kill: Some(kill),
        }
    }

    /// Drops the server and every connection to it, abruptly.
    pub fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
            // Give the runtime a moment to drop its sockets.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A new server on the same address and keys (a restart: the memory store starts empty).
    pub async fn restart(&mut self) {
        self.kill();
        let fresh = Self::launch(self.redis_url.clone(), self.addr, self.verifier.clone()).await;
        *self = fresh;
    }

    /// A token for `id`, valid for `valid_for` seconds from now (negative: already expired).
    pub fn token(&self, id: &Identity, gender: Gender, valid_for: i64) -> String {
        self.verifier.mint(&id.verifying_key(), gender, valid_for).0
    }

    /// Stores a fresh token in `id`'s home, as `anonchat verify` does.
    pub fn verify(&self, id: &Identity, gender: Gender) {
        save_token(&self.verifier, id, gender);
    }

    pub async fn login(&self, id: &Identity, gender: Gender) -> RendezvousClient {
        RendezvousClient::connect(&self.url, id, &self.token(id, gender, 3600))
            .await
            .unwrap()
    }
}

impl Drop for Rendezvous {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

/// Stores a token from `verifier`, valid for an hour, in `id`'s home, as `anonchat verify` does.
pub fn save_token(verifier: &TestVerifier, id: &Identity, gender: Gender) {
    let (token, claims) = verifier.mint(&id.verifying_key(), gender, 3600);
    id.save_token(&SavedToken {
        token,
        gender,
        expires_at: claims.exp,
        peer_id: id.peer_id.clone(),
    })
    .unwrap();
}

pub fn join(nickname: &str, transports: &[Transport]) -> ClientMessage {
    ClientMessage::Join {
        profile: Profile {
            nickname: nickname.into(),
            bio: "just here to talk".into(),
        },
        want: Want::Any,
        interests: vec![],
        transports: transports.to_vec(),
    }
}

pub fn join_request(nickname: &str) -> JoinRequest {
    JoinRequest {
        nickname: nickname.into(),
        bio: "just here to talk".into(),
        want: Want::Any,
        interests: vec![],
    }
}

/// The events of one session, in order, with what came before kept for failure messages.
pub struct Events {
    pub name: String,
    rx: mpsc::UnboundedReceiver<Event>,
    pub seen: Vec<Event>,
}

/// A chat session driven in-process, as the terminal client drives it.
pub struct Peer {
    pub name: String,
    pub home: PathBuf,
    commands: mpsc::UnboundedSender<Command>,
    events: Events,
}

impl std::ops::Deref for Peer {
    type Target = Events;
    fn deref(&self) -> &Events {
        &self.events
    }
}

impl std::ops::DerefMut for Peer {
    fn deref_mut(&mut self) -> &mut Events {
        &mut self.events
    }
}

impl Peer {
    pub fn start(rdv: &Rendezvous, name: &str, gender: Gender) -> Peer {
        Self::start_with(rdv, name, gender, |_| {})
    }

    pub fn start_with(
        rdv: &Rendezvous,
        name: &str,
        gender: Gender,
        adjust: impl FnOnce(&mut SessionConfig),
    ) -> Peer {
        let home = home(name);
        let identity = Identity::load_or_create(&home).unwrap();
        let token = rdv.token(&identity, gender, 3600);
        let mut config = SessionConfig {
            rendezvous: rdv.url.clone(),
            identity: Arc::new(identity),
            token,
            webrtc: webrtc_session::Options {
                loopback_only: true,
                ..Default::default()
            },
            images_dir: home.join("images"),
            save_images: None,
            libp2p: None,
        };
        adjust(&mut config);
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        tokio::spawn(session::run(config, command_rx, event_tx));
        Peer {
            name: name.into(),
            home,
            commands,
            events: Events::new(name, events),
        }
    }

    pub fn send(&self, command: Command) {
        self.commands.send(command).unwrap();
    }

    pub fn join(&self) {
        self.send(Command::Join(join_request(&self.name)));
    }

    pub fn say(&self, text: &str) {
        self.send(Command::Send {
            text: text.into(),
            force: false,
            id: None,
        });
    }
}

impl Events {
    pub fn new(name: &str, rx: mpsc::UnboundedReceiver<Event>) -> Events {
        Events {
            name: name.into(),
            rx,
            seen: Vec::new(),
        }
    }

    /// The next event that `matches`, within 10 s; the ones before it are kept in `seen`.
    pub async fn expect(&mut self, what: &str, matches: impl Fn(&Event) -> bool) -> Event {
        self.expect_within(Duration::from_secs(10), what, matches)
            .await
    }

    /// The next event that `matches`, within `limit`.
    pub async fn expect_within(
        &mut self,
        limit: Duration,
        what: &str,
        matches: impl Fn(&Event) -> bool,
    ) -> Event {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(event)) => {
                    self.seen.push(event.clone());
                    if matches(&event) {
                        return event;
                    }
                }
                Ok(None) => panic!(
                    "{}: session ended waiting for {what}; saw {:?}",
                    self.name, self.seen
                ),
                Err(_) => panic!(
                    "{}: no {what} within {limit:?}; saw {:?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Asserts that nothing that `matches` happens for `period`.
    pub async fn expect_none(
        &mut self,
        period: Duration,
        what: &str,
        matches: impl Fn(&Event) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + period;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            assert!(
                !matches(&event),
                "{}: unexpected {what}: {event:?}",
                self.name
            );
            self.seen.push(event);
        }
    }

    /// Waits for `connected` and returns the safety code.
    pub async fn connected(&mut self) -> String {
        match self
            .expect("connected", |e| matches!(e, Event::Connected { .. }))
            .await
        {
            Event::Connected { safety_code, .. } => safety_code,
            _ => unreachable!(),
        }
    }
}

/// Two peers, matched and connected; returns them with their safety codes checked equal.
pub async fn chatting_pair(rdv: &Rendezvous, a: &str, b: &str) -> (Peer, Peer) {
    chatting_pair_with(rdv, a, b, |_| {}).await
}

/// As [`chatting_pair`], with `b`'s configuration adjusted first.
pub async fn chatting_pair_with(
    rdv: &Rendezvous,
    a: &str,
    b: &str,
    adjust_b: impl FnOnce(&mut SessionConfig),
) -> (Peer, Peer) {
    let mut pa = Peer::start(rdv, a, Gender::Female);
    let mut pb = Peer::start_with(rdv, b, Gender::Male, adjust_b);
    pa.join();
    pa.expect("queued", |e| matches!(e, Event::Queued { .. }))
        .await;
    pb.join();
    let (ca, cb) = tokio::join!(pa.connected(), pb.connected());
    assert_eq!(ca, cb, "both sides show the same safety code");
    (pa, pb)
}

/// Runs `connect` while relaying its signaling through the rendezvous client.
pub async fn connect_through(
    client: &mut RendezvousClient,
    match_id: String,
    role: Role,
) -> Result<Connected, SessionError> {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let options = Options {
        loopback_only: true,
        ..Options::default()
    };
    let session =
        tokio::spawn(async move { webrtc_session::connect(role, &options, out_tx, in_rx).await });
    tokio::pin!(session);
    loop {
        tokio::select! {
            done = &mut session => return done.unwrap(),
            Some(signal) = out_rx.recv() => {
                let data = serde_json::to_value(&signal).unwrap();
                client.send(&ClientMessage::Signal { match_id: match_id.clone(), data }).await.unwrap();
            }
            msg = client.recv() => {
                if let Ok(ServerMessage::Signal { data, .. }) = msg {
                    let _ = in_tx.send(serde_json::from_value::<SignalData>(data).unwrap());
                }
            }
        }
    }
}

/// One WebSocket message that crossed the [`RecordingProxy`].
#[derive(Debug, Clone)]
pub enum Recorded {
    Text(String),
    Binary(Vec<u8>),
}

/// A WebSocket proxy in front of the rendezvous that records every message, both ways, after
/// the WebSocket layer (so masking does not hide anything from the assertions).
pub struct RecordingProxy {
    pub url: String,
    pub recorded: Arc<std::sync::Mutex<Vec<Recorded>>>,
}

impl RecordingProxy {
    pub async fn start(upstream: &str) -> RecordingProxy {
        Self::tampering(upstream, |text| text.to_owned()).await
    }

    /// A proxy that also rewrites what clients send (a rendezvous in the middle, tampering).
    pub async fn tampering(
        upstream: &str,
        rewrite: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> RecordingProxy {
        Self::listen("127.0.0.1:0", upstream, rewrite).await
    }

    /// A proxy on `bind` (host:port), rewriting what clients send with `rewrite`.
    pub async fn listen(
        bind: &str,
        upstream: &str,
        rewrite: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> RecordingProxy {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let rewrite = Arc::new(rewrite);

        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let recorded = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (upstream, log) = (upstream.to_owned(), recorded.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (upstream, log, rewrite) = (upstream.clone(), log.clone(), rewrite.clone());
                tokio::spawn(async move {
                    // No Nagle, like the real ends: the proxy should not slow signaling down.
                    let _ = tcp.set_nodelay(true);
                    let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    let Ok((server, _)) =
                        tokio_tungstenite::connect_async_with_config(&upstream, None, true).await
                    else {
                        return;
                    };
                    let (mut client_tx, mut client_rx) = client.split();
                    let (mut server_tx, mut server_rx) = server.split();
                    let record = |m: &Message| {
                        let entry = match m {
                            Message::Text(t) => Recorded::Text(t.to_string()),
                            Message::Binary(b) => Recorded::Binary(b.to_vec()),
                            _ => return,
                        };
                        log.lock().unwrap().push(entry);
                    };
                    // Either side closing closes both, as a transparent proxy does.
                    loop {
                        tokio::select! {
                            m = client_rx.next() => {
                                let Some(Ok(mut m)) = m else { return };
                                if let Message::Text(t) = &m {
                                    m = Message::Text(rewrite(t.as_str()).into());
                                }
                                record(&m);
                                if server_tx.send(m).await.is_err() { return; }
                            }
                            m = server_rx.next() => {
                                let Some(Ok(m)) = m else { return };
                                record(&m);
                                if client_tx.send(m).await.is_err() { return; }
                            }
                        }
                    }
                });
            }
        });
        RecordingProxy {
            url: format!("ws://{addr}/v1/ws"),
            recorded,
        }
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }
}

/// A running `anonchat chat --json --loopback-only`, reading its events.
pub struct Cli {
    pub child: tokio::process::Child,
    pub stdin: Option<tokio::process::ChildStdin>,
    pub events: Events,
}

impl Cli {
    pub fn start(name: &str, home: &std::path::Path, rendezvous: &str) -> Cli {
        Self::start_with(name, home, rendezvous, &[])
    }

    pub fn start_with(name: &str, home: &std::path::Path, rendezvous: &str, extra: &[&str]) -> Cli {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_anonchat"));
        command.args(["chat", "--loopback-only"]).args(extra);
        Self::spawn(name, home, rendezvous, command)
    }

    /// `command` (`anonchat chat` and any options) with `--json --rendezvous URL` added.
    pub fn spawn(
        name: &str,
        home: &std::path::Path,
        rendezvous: &str,
        mut command: tokio::process::Command,
    ) -> Cli {
        let mut child = command
            .args(["--json", "--rendezvous", rendezvous])
            .env("ANONCHAT_HOME", home)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let who = name.to_owned();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                println!("{who}: {line}");
                let event: Event = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("{who}: stdout line is not an event ({e}): {line}"));
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        Cli {
            stdin: child.stdin.take(),
            child,
            events: Events::new(name, rx),
        }
    }

    pub async fn send(&mut self, command: serde_json::Value) {
        self.send_line(&command.to_string()).await;
    }

    pub async fn send_line(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt;
        let stdin = self.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    pub async fn join(&mut self, nickname: &str) {
        self.send(serde_json::json!({"cmd": "join", "nickname": nickname, "bio": "here for a good talk", "want": "any"}))
            .await;
    }

    /// Waits for the process to exit, within 5 s.
    pub async fn exit_code(&mut self) -> Option<i32> {
        tokio::time::timeout(std::time::Duration::from_secs(5), self.child.wait())
            .await
            .expect("the process exits")
            .unwrap()
            .code()
    }
}

/// A PNG of noise (which does not compress) just under 1 MiB.
pub fn noise_png() -> Vec<u8> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut side = 600u32;
    loop {
        let img = image::RgbImage::from_fn(side, side, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            image::Rgb([seed as u8, (seed >> 8) as u8, (seed >> 16) as u8])
        });
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        if png.len() <= 1024 * 1024 {
            assert!(png.len() > 1000 * 1024, "close to the limit: {}", png.len());
            return png;
        }
        side -= 2;
    }
}
