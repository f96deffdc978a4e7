//! The quickstart: starts the verifier with the real models and a rendezvous (in-memory store) on
//! loopback; verifies each sample face over HTTP with a fresh device key and checks every token
//! against the published JWKS; then two verified strangers log in to the rendezvous with their
//! tokens and device keys, are matched, pass one signaling message through it, and one leaves.
//! It prints what happened and when.
//!
//! `cargo run --release --example quickstart [FACES_DIR]` (after `models/install.sh`).
//! Until the peer lands, the chat itself is not part of it.

use std::path::PathBuf;
use std::time::Instant;

use anonchat_rendezvous::proto::{
    ClientMessage, HELLO_CONTEXT, Profile, ServerMessage, Want, parse_server,
};
use anonchat_verifier::service::{self, ServiceConfig};
use anonchat_verifier::token::{Jwks, KeySet, peer_id};
use anyhow::{Context, bail};
use base64::Engine;
use ed25519_dalek::Signer;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, msg: &ClientMessage) -> anyhow::Result<()> {
    Ok(ws
        .send(Message::Text(serde_json::to_string(msg)?.into()))
        .await?)
}

async fn next(ws: &mut Ws) -> anyhow::Result<ServerMessage> {
    loop {
        if let Message::Text(t) = ws
            .next()
            .await
            .context("the rendezvous closed the socket")??
        {
            return Ok(parse_server(&t)?);
        }
    }
}

/// Logs a verified device in: answer the challenge with the token and a signature of the nonce.
async fn log_in(url: &str, device: &ed25519_dalek::SigningKey, token: &str) -> anyhow::Result<Ws> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?; // no Nagle
    let ServerMessage::Challenge { nonce } = next(&mut ws).await? else {
        bail!("no challenge")
    };
    let signature = device.sign(format!("{HELLO_CONTEXT}{nonce}").as_bytes());
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.to_bytes());
    send(
        &mut ws,
        &ClientMessage::Hello {
            token: token.to_owned(),
            signature,
        },
    )
    .await?;
    match next(&mut ws).await? {
        ServerMessage::Welcome { .. } => Ok(ws),
        other => bail!("not welcomed: {other:?}"),
    }
}

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

    let mut config = ServiceConfig::local(models);
    config.rate_limit_per_minute = 0;
    let verifier = service::start(config)
        .await
        .context("starting the verifier (did models/install.sh run?)")?;
    let base = format!("http://{}", verifier.addr);
    println!("{} verifier up at {base}, models loaded", at());
    let client = reqwest::Client::new();
    let jwks: Jwks = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
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
    let (mut verified, mut rejected) = (0, 0);
    let mut strangers = Vec::new(); // (name, device, token) of verified photos
    for file in &files {
        let device = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let public = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(device.verifying_key().as_bytes());
        let form = reqwest::multipart::Form::new()
            .part(
                "image",
                reqwest::multipart::Part::bytes(std::fs::read(file)?).file_name("selfie"),
            )
            .text("public_key", public);
        let t = Instant::now();
        let reply: serde_json::Value = client
            .post(format!("{base}/v1/verify"))
            .multipart(form)
            .send()
            .await?
            .json()
            .await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        if reply["verified"] == true {
            let claims = keys.verify(reply["token"].as_str().unwrap_or(""))?;
            if claims.sub != peer_id(&device.verifying_key()) {
                bail!("{name}: the token names another device");
            }
            verified += 1;
            strangers.push((
                name.to_string(),
                device.clone(),
                reply["token"].as_str().unwrap_or("").to_owned(),
            ));
            println!(
                "{} {name:<34} verified   gender {}  token for {}… ({ms:.0} ms)",
                at(),
                claims.gender.as_str(),
                &claims.sub[..16]
            );
        } else {
            rejected += 1;
            println!(
                "{} {name:<34} rejected   {} ({ms:.0} ms)",
                at(),
                reply["error"]["code"].as_str().unwrap_or("?")
            );
        }
    }
    println!("{} {verified} verified, {rejected} rejected", at());

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
    let mut a = log_in(&url, &first.1, &first.2).await?;
    let mut b = log_in(&url, &second.1, &second.2).await?;
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
        transports: vec![anonchat_rendezvous::proto::Transport::Webrtc],
    };
    send(
        &mut a,
        &join("stranger-one", "Night owl, jazz and long walks"),
    )
    .await?;
    if let ServerMessage::Queued { waiting } = next(&mut a).await? {
        println!(
            "{} stranger-one waits in the queue ({waiting} waiting)",
            at()
        );
    }
    send(
        &mut b,
        &join("stranger-two", "Here for a friendly chat about hiking"),
    )
    .await?;
    let (
        ServerMessage::Matched {
            match_id, partner, ..
        },
        ServerMessage::Matched { partner: other, .. },
    ) = (next(&mut b).await?, next(&mut a).await?)
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
    send(
        &mut a,
        &ClientMessage::Signal {
            match_id: match_id.clone(),
            data,
        },
    )
    .await?;
    if let ServerMessage::Signal { data, .. } = next(&mut b).await? {
        let bytes = data["sdp"].as_str().unwrap_or("").len();
        println!(
            "{} a WebRTC offer ({bytes} bytes of SDP, checked to be a data channel) went through the rendezvous",
            at()
        );
    }
    let chat = serde_json::json!("hello! (a chat message tried through the server)");
    send(
        &mut a,
        &ClientMessage::Signal {
            match_id: match_id.clone(),
            data: chat,
        },
    )
    .await?;
    if let ServerMessage::Error { code, .. } = next(&mut a).await? {
        println!(
            "{} a chat message sent as a signal was refused: {}",
            at(),
            code.as_str()
        );
    }
    send(&mut b, &ClientMessage::Leave { match_id }).await?;
    if let ServerMessage::PartnerLeft { .. } = next(&mut a).await? {
        println!("{} stranger-two left; stranger-one was told", at());
    }
    rendezvous.shutdown().await?;
    verifier.shutdown().await?;
    println!("{} done; rendezvous and verifier stopped", at());
    Ok(())
}
