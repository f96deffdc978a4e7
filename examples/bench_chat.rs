//! Peer-to-peer chat on loopback, through a real rendezvous (in-memory store) and the same chat
//! sessions `anonchat chat` runs:
//! - set-up: `matched` → data channel open, over PAIRS fresh pairs (p50/p95/max);
//! - round trip: a message out and its delivery receipt back, MESSAGES times one after another
//!   (p50/p99).
//!
//! `cargo run --release --example bench_chat [PAIRS] [MESSAGES] [webrtc|libp2p|libp2p-tcp|libp2p-quic]`
//! (defaults 100, 2000, webrtc). With `libp2p`, both peers offer it (as two terminal clients do)
//! and set-up is `matched` → listen, announce, dial (TCP and QUIC raced), Noise or TLS, Yamux,
//! chat stream open; `libp2p-tcp` and `libp2p-quic` listen on that transport only.

#[path = "support/stats.rs"]
mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anonchat_peer::identity::Identity;
use anonchat_peer::session::{self, Command, Event, JoinRequest, SessionConfig};
use anonchat_peer::{libp2p_session, webrtc_session};
use anonchat_protocol::rendezvous::Want;
use anonchat_protocol::token::{Gender, Jwks, KeySet, SigningKey, unix_now};
use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::server::{self, Keys};
use anyhow::{Context, bail};
use stats::percentile_ms;
use tokio::sync::mpsc;

struct Peer {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Peer {
    fn start(
        url: &str,
        verifier: &SigningKey,
        home: &std::path::Path,
        libp2p: Option<&libp2p_session::Options>,
    ) -> anyhow::Result<Peer> {
        let identity = Identity::load_or_create(home)?;
        let (token, _) = verifier.issue(
            anonchat_protocol::token::DEFAULT_ISSUER,
            &identity.verifying_key(),
            Gender::Undisclosed,
            unix_now(),
            3600,
        )?;
        let config = SessionConfig {
            rendezvous: url.to_owned(),
            identity: Arc::new(identity),
            token,
            webrtc: webrtc_session::Options {
                loopback_only: true,
                ..Default::default()
            },
            images_dir: home.join("images"),
            save_images: None,
            libp2p: libp2p.cloned(),
        };
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        tokio::spawn(session::run(config, command_rx, event_tx));
        commands.send(Command::Join(JoinRequest {
            nickname: "bencher".into(),
            bio: "measuring the chat".into(),
            want: Want::Any,
            interests: vec![],
        }))?;
        Ok(Peer { commands, events })
    }

    /// The next event `pick` accepts, within 10 s; errors are fatal.
    async fn wait<T>(&mut self, pick: impl Fn(Event) -> Option<T>) -> anyhow::Result<T> {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), self.events.recv())
                .await
                .context("timed out")?
                .context("session ended")?;
            if let Event::Error { code, message } = &event {
                bail!("{code}: {message}");
            }
            if let Some(found) = pick(event) {
                return Ok(found);
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let pairs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let messages: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let transport = args.next().unwrap_or_else(|| "webrtc".into());
    // Which listeners (none: WebRTC only), and the transport `connected` must then report.
    let (listen, expected) = match transport.as_str() {
        "webrtc" => (None, "webrtc"),
        "libp2p" => (Some(""), "libp2p"),
        "libp2p-tcp" => (Some("/tcp/"), "libp2p"),
        "libp2p-quic" => (Some("/quic-v1"), "libp2p"),
        other => bail!("transport {other:?}: webrtc, libp2p, libp2p-tcp or libp2p-quic"),
    };
    let libp2p = listen.map(|only| {
        let mut options = libp2p_session::Options::new(true);
        options.listen.retain(|a| a.to_string().contains(only));
        options
    });
    let libp2p = libp2p.as_ref();

    let verifier = SigningKey::generate();
    let keys = KeySet::from_jwks(&Jwks {
        keys: vec![verifier.public_jwk()],
    })?;
    let config = Config {
        rate_limit_per_minute: 0,
        server_secret: Some("bench".into()),
        ..Config::local()
    };
    let rendezvous =
        server::start_from_config(config, Keys::Fixed(keys), std::future::pending()).await?;
    let url = format!("ws://{}/v1/ws", rendezvous.addr);
    let homes = std::env::temp_dir().join(format!("anonchat-bench-chat-{}", std::process::id()));

    let mut setups = Vec::with_capacity(pairs);
    let mut last = None;
    for n in 0..pairs {
        let mut a = Peer::start(&url, &verifier, &homes.join(format!("{n}a")), libp2p)?;
        a.wait(|e| matches!(e, Event::Queued { .. }).then_some(()))
            .await?;
        let mut b = Peer::start(&url, &verifier, &homes.join(format!("{n}b")), libp2p)?;
        let connected = |e| match e {
            Event::Connected {
                setup_ms,
                transport: used,
                fallback,
                ..
            } => Some((setup_ms, format!("{used} ({fallback:?})"))),
            _ => None,
        };
        let ((ms_a, used), (ms_b, _)) = (a.wait(connected).await?, b.wait(connected).await?);
        if !used.starts_with(&format!("{expected} ")) {
            bail!("pair {n} connected over {used}, not {transport}");
        }
        // The pair can talk once both ends are open.
        setups.push(Duration::from_secs_f64(ms_a.max(ms_b) / 1000.0));
        if let Some((x, y)) = last.replace((a, b)) {
            let (x, y): (Peer, Peer) = (x, y);
            let _ = x.commands.send(Command::Quit);
            let _ = y.commands.send(Command::Quit);
        }
    }
    let slow = setups.iter().filter(|d| d.as_millis() >= 50).count();
    println!("set-up over {transport}, {slow} of {pairs} pairs took 50 ms or more");
    println!(
        "set-up over {transport}, matched -> chat open at both ends, {pairs} pairs: p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        percentile_ms(&mut setups, 0.5),
        percentile_ms(&mut setups, 0.95),
        percentile_ms(&mut setups, 1.0)
    );

    let (mut a, _b) = last.context("no pair")?;
    let mut trips = Vec::with_capacity(messages);
    for i in 0..messages {
        let id = format!("b{i}");
        let started = Instant::now();
        a.commands.send(Command::Send {
            text: format!("message number {i} of the benchmark"),
            force: false,
            id: Some(id.clone()),
        })?;
        a.wait(|e| matches!(e, Event::Ack { id: ref acked } if *acked == id).then_some(()))
            .await?;
        trips.push(started.elapsed());
    }
    println!(
        "round trip over {transport}, message -> delivery receipt through both sessions, {messages} messages: p50 {:.3} ms, p99 {:.3} ms",
        percentile_ms(&mut trips, 0.5),
        percentile_ms(&mut trips, 0.99)
    );
    rendezvous.shutdown().await?;
    let _ = std::fs::remove_dir_all(&homes);
    Ok(())
}
