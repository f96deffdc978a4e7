//! Shared by the verifier's integration tests: where the real models and photos are.
#![allow(dead_code, unused_imports)]

pub mod burst;

pub use anonchat_testkit::fixtures::{face, faces_dir, models_dir};

/// One row of MANIFEST.md's "Reference outputs" table.
#[derive(Debug, Clone)]
pub struct Reference {
    pub file: String,
    pub size: (usize, usize),
    pub faces: usize,
    pub top: Option<f32>,
    pub bbox: Option<[f32; 4]>,
    pub live_v2: Option<f32>,
    pub live_v1se: Option<f32>,
    pub p_male: Option<f32>,
    pub gender: Option<String>,
}

/// Parses the reference table out of the manifest, so the expectations are the manifest's own.
pub fn references() -> Vec<Reference> {
    let text = std::fs::read_to_string(faces_dir().join("MANIFEST.md")).unwrap();
    let section = text
        .split("## Reference outputs")
        .nth(1)
        .expect("a Reference outputs section");
    let num = |s: &str| s.trim().parse::<f32>().ok();
    let rows: Vec<Reference> = section
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("| image") && !l.starts_with("|---"))
        .map(|l| {
            let c: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let (w, h) = c[1].split_once('x').unwrap();
            let bbox = (c[4] != "-").then(|| {
                let v: Vec<f32> = c[4].split(',').map(|x| x.trim().parse().unwrap()).collect();
                [v[0], v[1], v[2], v[3]]
            });
            Reference {
                file: c[0].to_owned(),
                size: (w.parse().unwrap(), h.parse().unwrap()),
                faces: c[2].parse().unwrap(),
                top: num(c[3]),
                bbox,
                live_v2: num(c[5]),
                live_v1se: num(c[6]),
                p_male: num(c[7]),
                gender: (c[8] != "-").then(|| c[8].to_owned()),
            }
        })
        .collect();
    assert!(
        rows.len() >= 11,
        "the manifest's table has {} rows",
        rows.len()
    );
    rows
}

/// The ground truth verdict for each sample (MANIFEST.md "Expected outcomes", under the default
/// policy): `Ok(gender)` or the error code.
pub fn expected_verdict(file: &str) -> Result<&'static str, &'static str> {
    match file {
        "noface_chelsea_cat.png" => Err("no_face"),
        "multi_pexels_group.jpg" => Err("multiple_faces"),
        "spoof_print_f_silentface_F1.jpg" => Err("spoof_detected"),
        // A digitised print photograph: liveness 0.37, rightly below the 0.5 threshold.
        "f_collins_astronaut.png" => Err("spoof_detected"),
        f if f.starts_with("m_") => Ok("M"),
        f if f.starts_with("f_") || f.starts_with("real_f_") => Ok("F"),
        other => panic!("no expected verdict for {other}"),
    }
}

use anonchat_verifier::service::{self, Running, ServiceConfig};

/// Starts the real service on a free loopback port with the real models, in photo mode (most
/// tests here are about one still image; the challenge's tests set active mode).
pub async fn start(tune: impl FnOnce(&mut ServiceConfig)) -> Running {
    let mut config = ServiceConfig::local(models_dir());
    config.verify_mode = service::VerifyMode::Photo;
    config.rate_limit_per_minute = 0;
    config.verifications_per_ip_per_day = 0;
    config.workers = Some(2);
    tune(&mut config);
    service::start(config).await.expect("the verifier starts")
}

/// A fresh device key and its base64url public key.
pub fn device() -> (ed25519_dalek::SigningKey, String) {
    use base64::Engine;
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let public =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    (key, public)
}

/// `POST /v1/verify` as multipart; returns status, JSON body and headers.
pub async fn verify_multipart(
    addr: std::net::SocketAddr,
    image: Vec<u8>,
    public_key: &str,
    gender: Option<&str>,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let mut form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(image).file_name("selfie.jpg"),
        )
        .text("public_key", public_key.to_owned());
    if let Some(g) = gender {
        form = form.text("gender", g.to_owned());
    }
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/v1/verify"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, resp.json().await.unwrap(), headers)
}

/// `POST /v1/verify` with a raw body and content type.
/// `POST path` with a JSON body; returns status and JSON answer.
pub async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// `POST /v1/verify` with a JSON body.
pub async fn verify_json(
    addr: std::net::SocketAddr,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    verify_raw(addr, "application/json", body.to_string().into_bytes()).await
}

pub async fn verify_raw(
    addr: std::net::SocketAddr,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/v1/verify"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

pub fn code(body: &serde_json::Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}
