//! The quickstart: starts the verifier with the real models and a rendezvous (in-memory store) on
//! loopback; verifies each sample face with a fresh device identity, through the peer's own
//! verifier client, and checks every token against the published JWKS; then two verified
//! strangers log in to the rendezvous with the peer's rendezvous client, are matched, pass one
//! signaling message through it, and one leaves. It prints what happened and when.
//!
//! `cargo run --release --example quickstart [FACES_DIR]` (after `models/install.sh`).
//! Until the chat command lands, the chat itself is not part of it.

use std::path::PathBuf;
use std::time::Instant;

use anonchat_peer::identity::{Identity, SavedToken};
use anonchat_peer::rendezvous::{ClientError, RendezvousClient};
use anonchat_peer::verify::{self, VerifyError};
use anonchat_rendezvous::proto::{ClientMessage, Profile, ServerMessage, Transport, Want};
use anonchat_verifier::service::{self, ServiceConfig};
use anonchat_verifier::token::{Jwks, KeySet};
use anyhow::{Context, bail};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let at = || format!("{:>7.1} ms", started.elapsed().as_secs_f64() * 1000.0);
    let faces = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("ANONCHAT_TESTDATA")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("../shared/testdata/faces"))
        });
    let models = std::env::var_os("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models/onnx"));
    // Every device of the quickstart gets its own home, thrown away at the end.
    let homes = std::env::temp_dir().join(format!("anonchat-quickstart-{}", std::process::id()));

    let mut config = ServiceConfig::local(models);
    config.rate_limit_per_minute = 0;
    let verifier = service::start(config)
        .await
        .context("starting the verifier (did models/install.sh run?)")?;
    let base = format!("http://{}", verifier.addr);
    println!("{} verifier up at {base}, models loaded", at());
    let jwks: Jwks = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await?
        .json()
        .await?;
    let keys = KeySet::from_jwks(&jwks)?;
    println!("{} fetched the JWKS: {} key(s)", at(), keys.len());

    let mut files: Vec<PathBuf> = std::fs::read_dir(&faces)
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
        let t = Instant::now();
        match verify::verify(&base, &identity, std::fs::read(file)?, false).await {
            Ok(token) => {
                let claims = keys.verify(&token.token)?;
                if claims.sub != identity.peer_id {
                    bail!("{name}: the token names another device");
                }
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                println!(
                    "{} {name:<34} verified   gender {}  token for {}… ({ms:.0} ms)",
                    at(),
                    claims.gender.as_str(),
                    &claims.sub[..16]
                );
                strangers.push((name, identity, token));
            }
            Err(VerifyError::Refused { code, .. }) => {
                rejected += 1;
                println!(
                    "{} {name:<34} rejected   {code} ({:.0} ms)",
                    at(),
                    t.elapsed().as_secs_f64() * 1000.0
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    println!("{} {} verified, {rejected} rejected", at(), strangers.len());

    // The rendezvous trusts this verifier's keys, fetched from its JWKS endpoint.
    let mut config = anonchat_rendezvous::config::Config::local();
    config.verifier_jwks_url = Some(format!("{base}/.well-known/jwks.json"));
    let keys = anonchat_rendezvous::server::Keys::from_config(&config)?;
    let store = anonchat_rendezvous::store::memory::MemoryStore::new(config.store_config());
    let rendezvous =
        anonchat_rendezvous::server::start(config, store, keys, std::future::pending()).await?;
    let url = format!("ws://{}/v1/ws", rendezvous.addr);
    println!("{} rendezvous up at {url} (in-memory store)", at());
    let (Some(first), Some(second)) = (strangers.first(), strangers.last()) else {
        bail!("two verified photos are needed")
    };
    let mut a = RendezvousClient::connect(&url, &first.1, &first.2.token).await?;
    let mut b = RendezvousClient::connect(&url, &second.1, &second.2.token).await?;
    println!(
        "{} {} and {} logged in with their tokens and device keys",
        at(),
        first.0,
        second.0
    );
    let join = |nickname: &str, bio: &str| ClientMessage::Join {
        profile: Profile {
            nickname: nickname.into(),
            bio: bio.into(),
        },
        want: Want::Any,
        interests: vec!["jazz".into(), "hiking".into()],
        transports: vec![Transport::Webrtc],
    };
    a.send(&join("stranger-one", "Night owl, jazz and long walks"))
        .await?;
    if let ServerMessage::Queued { waiting } = a.recv().await? {
        println!(
            "{} stranger-one waits in the queue ({waiting} waiting)",
            at()
        );
    }
    b.send(&join(
        "stranger-two",
        "Here for a friendly chat about hiking",
    ))
    .await?;
    let (
        ServerMessage::Matched {
            match_id, partner, ..
        },
        ServerMessage::Matched { partner: other, .. },
    ) = (b.recv().await?, a.recv().await?)
    else {
        bail!("not matched")
    };
    println!(
        "{} matched: stranger-two sees {} (gender {}), stranger-one sees {} (gender {}); shared interests {:?}",
        at(),
        partner.nickname,
        partner.gender,
        other.nickname,
        other.gender,
        partner.common_interests
    );
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n";
    let data = serde_json::json!({"kind": "offer", "sdp": offer});
    a.send(&ClientMessage::Signal {
        match_id: match_id.clone(),
        data,
    })
    .await?;
    if let ServerMessage::Signal { data, .. } = b.recv().await? {
        let bytes = data["sdp"].as_str().unwrap_or("").len();
        println!(
            "{} a WebRTC offer ({bytes} bytes of SDP, checked to be a data channel) went through the rendezvous",
            at()
        );
    }
    let chat = serde_json::json!("hello! (a chat message tried through the server)");
    a.send(&ClientMessage::Signal {
        match_id: match_id.clone(),
        data: chat,
    })
    .await?;
    if let Err(ClientError::Server { code, .. }) = a.recv().await {
        println!(
            "{} a chat message sent as a signal was refused: {}",
            at(),
            code.as_str()
        );
    }
    b.send(&ClientMessage::Leave { match_id }).await?;
    if let ServerMessage::PartnerLeft { .. } = a.recv().await? {
        println!("{} stranger-two left; stranger-one was told", at());
    }
    rendezvous.shutdown().await?;
    verifier.shutdown().await?;
    let _ = std::fs::remove_dir_all(&homes);
    println!("{} done; rendezvous and verifier stopped", at());
    Ok(())
}
