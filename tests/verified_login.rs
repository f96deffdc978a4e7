//! Across crates, end to end: the real verifier (real models, real photos) issues tokens; the
//! rendezvous fetches the verifier's JWKS over HTTP, lets the verified devices in, and matches
//! them with the genders their selfies established.

use std::path::PathBuf;

use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::proto::HELLO_CONTEXT;
use anonchat_rendezvous::server::{self, Keys};
use anonchat_rendezvous::store::memory::MemoryStore;
use anonchat_verifier::service::{self as verifier, ServiceConfig};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

fn models_dir() -> PathBuf {
    std::env::var_os("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/onnx"))
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("a frame in time");
        match frame.expect("open").expect("a frame") {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(_) => panic!("closed"),
            _ => continue,
        }
    }
}

/// Verifies `photo` for a fresh device, then logs in to the rendezvous with the token.
async fn verified_client(
    verifier: std::net::SocketAddr,
    rendezvous: std::net::SocketAddr,
    photo: &str,
) -> (Ws, Value) {
    let device = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let image = std::fs::read(shared_dir().join("testdata/faces").join(photo)).unwrap();
    let form = reqwest::multipart::Form::new()
        .part("image", reqwest::multipart::Part::bytes(image))
        .text(
            "public_key",
            URL_SAFE_NO_PAD.encode(device.verifying_key().as_bytes()),
        );
    let verified: Value = reqwest::Client::new()
        .post(format!("http://{verifier}/v1/verify"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verified["verified"], true, "{photo}: {verified}");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{rendezvous}/v1/ws"))
        .await
        .unwrap();
    let challenge = next(&mut ws).await;
    let signature =
        device.sign(format!("{HELLO_CONTEXT}{}", challenge["nonce"].as_str().unwrap()).as_bytes());
    let hello = json!({"type": "hello", "token": verified["token"], "signature": URL_SAFE_NO_PAD.encode(signature.to_bytes())});
    ws.send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    let welcome = next(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, verified)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selfie_verified_devices_meet_at_the_rendezvous() {
    let mut vc = ServiceConfig::local(models_dir());
    vc.rate_limit_per_minute = 0;
    let verifier = verifier::start(vc)
        .await
        .expect("the verifier starts (models/install.sh)");
    let mut rc = Config::local();
    rc.verifier_jwks_url = Some(format!("http://{}/.well-known/jwks.json", verifier.addr));
    let keys = Keys::from_config(&rc).unwrap();
    let rendezvous = server::start(
        rc.clone(),
        MemoryStore::new(rc.store_config()),
        keys,
        std::future::pending(),
    )
    .await
    .unwrap();

    let (mut her, v1) =
        verified_client(verifier.addr, rendezvous.addr, "real_f_silentface_T1.jpg").await;
    let (mut him, v2) =
        verified_client(verifier.addr, rendezvous.addr, "m_obama_official.jpg").await;
    assert_eq!(
        (v1["gender"].as_str(), v2["gender"].as_str()),
        (Some("F"), Some("M"))
    );
    let join = |nick: &str, want: &str| json!({"type": "join", "profile": {"nickname": nick, "bio": "verified and here to chat"}, "want": want});
    her.send(Message::Text(join("sofia", "m").to_string().into()))
        .await
        .unwrap();
    assert_eq!(next(&mut her).await["type"], "queued");
    him.send(Message::Text(join("barack", "f").to_string().into()))
        .await
        .unwrap();
    let m = next(&mut him).await;
    assert_eq!(m["type"], "matched", "{m}");
    assert_eq!(
        m["partner"]["gender"], "F",
        "the gender the verifier found in her selfie"
    );
    assert_eq!(next(&mut her).await["partner"]["gender"], "M");

    // A token from another verifier is refused by this rendezvous.
    let stranger = anonchat_verifier::token::SigningKey::generate();
    let device = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let (token, _) = stranger
        .issue(
            "elsewhere",
            &device.verifying_key(),
            anonchat_verifier::token::Gender::Male,
            anonchat_verifier::token::unix_now(),
            60,
        )
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/ws", rendezvous.addr))
        .await
        .unwrap();
    let nonce = next(&mut ws).await["nonce"].as_str().unwrap().to_owned();
    let signature = URL_SAFE_NO_PAD.encode(
        device
            .sign(format!("{HELLO_CONTEXT}{nonce}").as_bytes())
            .to_bytes(),
    );
    ws.send(Message::Text(
        json!({"type": "hello", "token": token, "signature": signature})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["code"], "invalid_token");
}
