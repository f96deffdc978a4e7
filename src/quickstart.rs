//! The quickstart, the whole system in one process on loopback: the verifier with the real models
//! and a rendezvous (in-memory store); every sample face verified with a fresh device identity
//! through the peer's own verifier client, each token checked against the published JWKS; then
//! two verified strangers run chat sessions (what `anonchat chat` runs), are matched, open a
//! WebRTC data channel peer to peer and chat over it — messages with delivery receipts, typing,
//! a held-back e-mail address, an image — and one leaves. It prints what happened and when.
//!
//! `cargo run --release --example quickstart [FACES_DIR]` (after `models/install.sh`) runs it;
//! a test runs it too, so that the README's main command stays true.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anonchat_peer::identity::{Identity, SavedToken};
use anonchat_peer::session::{self, Command, Event, JoinRequest, SessionConfig};
use anonchat_peer::verify::{self, VerifyError};
use anonchat_peer::webrtc_session;
use anonchat_protocol::rendezvous::Want;
use anonchat_protocol::token::{Jwks, KeySet};
use anonchat_verifier::service::{self, ServiceConfig};
use anyhow::{Context, bail};
use tokio::sync::mpsc;

/// Where the quickstart tells what happens, each line stamped with the time since the start.
pub struct Transcript<'a> {
    started: Instant,
    out: &'a mut (dyn FnMut(&str) + Send),
}

impl<'a> Transcript<'a> {
    pub fn new(out: &'a mut (dyn FnMut(&str) + Send)) -> Self {
        Transcript {
            started: Instant::now(),
            out,
        }
    }

    fn line(&mut self, text: impl std::fmt::Display) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        (self.out)(&format!("{ms:>7.1} ms {text}"));
    }
}

/// Runs the whole system once with the photos in `faces` and the models in `models`.
pub async fn run(faces: &Path, models: &Path, t: &mut Transcript<'_>) -> anyhow::Result<()> {
    // Every device of the quickstart gets its own home, thrown away at the end.
    let homes = std::env::temp_dir().join(format!("anonchat-quickstart-{}", std::process::id()));

    let mut config = ServiceConfig::local(models.to_owned());
    // Every device of the demonstration verifies from this one machine.
    config.rate_limit_per_minute = 0;
    config.verifications_per_ip_per_day = 0;
    // The demonstration's devices verify with sample photos, not a live camera: photo mode,
    // which a real deployment never runs (the transcript says so).
    config.verify_mode = service::VerifyMode::Photo;
    let verifier = service::start(config)
        .await
        .context("starting the verifier (did models/install.sh run?)")?;
    let base = format!("http://{}", verifier.addr);
    t.line(format!(
        "verifier up at {base}, models loaded, in photo mode for the sample photos (a deployment runs VERIFY_MODE=active: a live head turn)"
    ));
    let jwks: Jwks = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await?
        .json()
        .await?;
    let keys = KeySet::from_jwks(&jwks)?;
    t.line(format!("fetched the JWKS: {} key(s)", keys.len()));

    let mut files: Vec<PathBuf> = std::fs::read_dir(faces)
        .with_context(|| {
            format!(
                "reading {} (pass a folder of photos as the argument)",
                faces.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| ["jpg", "jpeg", "png", "webp"].contains(&x.to_str().unwrap_or("")))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no photos in {}", faces.display());
    }
    let mut rejected = 0;
    let mut strangers: Vec<(String, Identity, SavedToken)> = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let identity = Identity::load_or_create(&homes.join(n.to_string()))?;
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let asked = Instant::now();
        match verify::verify(&base, &identity, std::fs::read(file)?, false).await {
            Ok(token) => {
                let claims = keys.verify(&token.token)?;
                if claims.sub != identity.peer_id {
                    bail!("{name}: the token names another device");
                }
                let ms = asked.elapsed().as_secs_f64() * 1000.0;
                t.line(format!(
                    "{name:<34} verified   gender {}  token for {}… ({ms:.0} ms)",
                    claims.gender.as_str(),
                    &claims.sub[..16]
                ));
                strangers.push((name, identity, token));
            }
            Err(VerifyError::Refused { code, .. }) => {
                rejected += 1;
                t.line(format!(
                    "{name:<34} rejected   {code} ({:.0} ms)",
                    asked.elapsed().as_secs_f64() * 1000.0
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    t.line(format!("{} verified, {rejected} rejected", strangers.len()));

    // The rendezvous trusts this verifier's keys, fetched from its JWKS endpoint.
    let mut config = anonchat_rendezvous::config::Config::local();
    config.verifier_jwks_url = Some(format!("{base}/.well-known/jwks.json"));
    let keys = anonchat_rendezvous::server::Keys::from_config(&config)?;
    let store = anonchat_rendezvous::store::memory::MemoryStore::new(config.store_config());
    let rendezvous =
        anonchat_rendezvous::server::start(config, store, keys, std::future::pending()).await?;
    let url = format!("ws://{}/v1/ws", rendezvous.addr);
    t.line(format!("rendezvous up at {url} (in-memory store)"));

    if strangers.len() < 2 {
        bail!("two verified photos are needed");
    }
    // Two strangers of different genders where the photos allow, to show it.
    let first = strangers.remove(0);
    let other = strangers
        .iter()
        .position(|s| s.2.gender != first.2.gender)
        .unwrap_or(0);
    let second = strangers.remove(other);
    let mut one = Stranger::start("stranger-one", first, &url, &homes);
    let mut two = Stranger::start("stranger-two", second, &url, &homes);

    one.send(join("stranger-one", "Night owl, jazz and long walks"));
    let Event::Queued { waiting } = one.next("queued").await? else {
        bail!("not queued")
    };
    t.line(format!(
        "stranger-one waits in the queue ({waiting} waiting)"
    ));
    two.send(join(
        "stranger-two",
        "Here for a friendly chat about hiking",
    ));
    let (
        Event::Matched {
            partner: seen_by_two,
        },
        Event::Matched {
            partner: seen_by_one,
        },
    ) = (two.next("matched").await?, one.next("matched").await?)
    else {
        bail!("not matched")
    };
    t.line(format!("matched: stranger-one sees {} (gender {}), stranger-two sees {} (gender {}); shared interests {:?}", 
        seen_by_one.nickname,
        seen_by_one.gender,
        seen_by_two.nickname,
        seen_by_two.gender,
        seen_by_one.common_interests
    ));
    let (
        Event::Connected {
            setup_ms,
            safety_code,
            ..
        },
        Event::Connected {
            safety_code: code_two,
            ..
        },
    ) = (one.next("connected").await?, two.next("connected").await?)
    else {
        bail!("no peer-to-peer connection")
    };
    if safety_code != code_two {
        bail!("the two safety codes differ: {safety_code} / {code_two}");
    }
    t.line(format!("WebRTC data channel open, peer to peer ({setup_ms:.1} ms after the match); both see safety code {safety_code}"));

    two.send(Command::Typing { on: true });
    if let Event::Typing { on: true } = one.next("typing").await? {
        t.line("stranger-one sees: stranger-two is typing…");
    }
    say(&mut two, &mut one, "Hi! Any good trails near you?", t).await?;
    say(&mut one, &mut two, "A few. Do you like jazz too?", t).await?;
    one.send(Command::Send {
        text: "write me at one@example.com".into(),
        force: false,
        id: None,
    });
    if let Event::Error { message, .. } = one.next("refusal").await? {
        t.line(format!(
            "stranger-one's e-mail address was held back: {message}"
        ));
    }

    let picture = homes.join("sunset.png");
    std::fs::write(&picture, sunset_png())?;
    one.send(Command::Image { path: picture });
    let Event::Sent { id } = one.next("sent").await? else {
        bail!("the image was not sent")
    };
    let Event::Image {
        bytes,
        width,
        height,
        ..
    } = two.next("image").await?
    else {
        bail!("no image arrived")
    };
    t.line(format!(
        "stranger-two received an image ({width}x{height}, {bytes} bytes, decoded and checked, kept in memory)"
    ));
    two.send(Command::Save { id: None });
    let Event::Saved { path, .. } = two.next("saved").await? else {
        bail!("the image was not saved")
    };
    t.line(format!(
        "stranger-two saved it on request to {}",
        path.display()
    ));
    if one.next("ack").await? == (Event::Ack { id }) {
        t.line("stranger-one sees it delivered");
    }

    one.send(Command::Leave);
    one.next("left").await?;
    if let Event::PartnerLeft = two.next("partner left").await? {
        t.line("stranger-one left; stranger-two was told");
    }
    one.send(Command::Quit);
    two.send(Command::Quit);
    rendezvous.shutdown().await?;
    verifier.shutdown().await?;
    let _ = std::fs::remove_dir_all(&homes);
    t.line("done; rendezvous and verifier stopped");
    Ok(())
}

fn join(nickname: &str, bio: &str) -> Command {
    Command::Join(JoinRequest {
        nickname: nickname.into(),
        bio: bio.into(),
        want: Want::Any,
        interests: vec!["jazz".into(), "hiking".into()],
    })
}

/// One verified device running a chat session, as `anonchat chat` does.
struct Stranger {
    name: &'static str,
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Stranger {
    fn start(
        name: &'static str,
        (_, identity, token): (String, Identity, SavedToken),
        url: &str,
        homes: &std::path::Path,
    ) -> Stranger {
        let config = SessionConfig {
            rendezvous: url.to_owned(),
            identity: Arc::new(identity),
            token: token.token,
            webrtc: webrtc_session::Options {
                loopback_only: true,
                ..Default::default()
            },
            images_dir: homes.join(name).join("images"),
            save_images: None,
            libp2p: None,
        };
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        tokio::spawn(session::run(config, command_rx, event_tx));
        Stranger {
            name,
            commands,
            events,
        }
    }

    fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// The next event that matters here (login and send confirmations are skipped).
    async fn next(&mut self, what: &str) -> anyhow::Result<Event> {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(20), self.events.recv())
                .await
                .with_context(|| format!("{}: no {what} within 20 s", self.name))?
                .with_context(|| format!("{}: the session ended", self.name))?;
            let skipped = matches!(event, Event::Ready { .. })
                || (what != "sent" && matches!(event, Event::Sent { .. }));
            if !skipped {
                return Ok(event);
            }
        }
    }
}

/// `from` says `text`; `to` reads it and `from` gets the delivery receipt.
async fn say(
    from: &mut Stranger,
    to: &mut Stranger,
    text: &str,
    t: &mut Transcript<'_>,
) -> anyhow::Result<()> {
    from.send(Command::Send {
        text: text.into(),
        force: false,
        id: None,
    });
    if let Event::Message { text, .. } = to.next("message").await? {
        t.line(format!("{} → {}: {text:?}", from.name, to.name));
    }
    if let Event::Ack { .. } = from.next("ack").await? {
        t.line(format!("{} sees it delivered", from.name));
    }
    Ok(())
}

/// A small picture to send: a sunset gradient, as a PNG.
fn sunset_png() -> Vec<u8> {
    let image = image::RgbImage::from_fn(320, 200, |x, y| {
        let t = y as f32 / 200.0;
        image::Rgb([
            (255.0 * (1.0 - 0.3 * t)) as u8,
            (120.0 + 80.0 * t) as u8 ^ (x as u8 & 8),
            (60.0 + 150.0 * t) as u8,
        ])
    });
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("a PNG encodes in memory");
    png
}
