//! The quickstart: starts the verifier with the real models on loopback, verifies each sample
//! face over HTTP with a fresh device key, checks every token against the published JWKS, and
//! prints what happened and how long it took.
//!
//! `cargo run --release --example quickstart [FACES_DIR]` (after `models/install.sh`).
//! Until the rendezvous and the peer land, this is the system's main job end to end.

use std::path::PathBuf;
use std::time::Instant;

use anonchat_verifier::service::{self, ServiceConfig};
use anonchat_verifier::token::{Jwks, KeySet, peer_id};
use anyhow::{Context, bail};
use base64::Engine;

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
    verifier.shutdown().await?;
    println!(
        "{} done: {verified} verified, {rejected} rejected; verifier stopped",
        at()
    );
    Ok(())
}
