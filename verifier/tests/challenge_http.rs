//! The head-turn challenge over HTTP: real sockets, real models, the shared bursts of real
//! people reordered to follow whichever steps the verifier gives.

mod common;

use anonchat_protocol::verify::{MAX_FRAMES, MIN_FRAMES, Step};
use common::burst::{NO_TURN, REAL, answer, challenge, following, frame, steps};
use common::{code, device, face, start, verify_multipart};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_head_turn_that_follows_the_steps_gets_a_token_once() {
    let server = start(|c| c.verify_mode = anonchat_verifier::service::VerifyMode::Active).await;
    let (_, public) = device();
    let (status, c) = challenge(server.addr, &public).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(
        (c["min_frames"].as_u64(), c["max_frames"].as_u64()),
        (Some(MIN_FRAMES as u64), Some(MAX_FRAMES as u64))
    );
    let now = anonchat_protocol::token::unix_now();
    assert!((now + 55..=now + 61).contains(&c["expires_at"].as_i64().unwrap()));
    let id = c["challenge_id"].as_str().unwrap();
    let frames = following(&steps(&c));
    let (status, body) = answer(server.addr, id, &public, frames.clone(), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["gender"], "M", "from the most frontal frame");
    // Used is gone.
    let (status, body) = answer(server.addr, id, &public, frames, None).await;
    assert_eq!((status, code(&body)), (400, "challenge_unknown"), "{body}");

    // In active mode a single photo is not enough, and the verifier says so up front.
    let (status, body, _) =
        verify_multipart(server.addr, face("m_obama_official.jpg"), &public, None).await;
    assert_eq!((status, code(&body)), (400, "challenge_required"), "{body}");
    assert_eq!(info(server.addr).await, json!({"verify_mode": "active"}));
    server.shutdown().await.unwrap();
}

async fn info(addr: std::net::SocketAddr) -> serde_json::Value {
    let r = reqwest::get(format!("http://{addr}/v1/info"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_is_the_default_mode_and_photo_mode_says_it_is_on() {
    let models = anonchat_testkit::fixtures::models_dir();
    let defaults = anonchat_verifier::service::ServiceConfig::local(models);
    assert_eq!(
        defaults.verify_mode,
        anonchat_verifier::service::VerifyMode::Active
    );
    assert_eq!(defaults.pinned_steps, None);
    let server = start(|_| {}).await;
    assert_eq!(info(server.addr).await, json!({"verify_mode": "photo"}));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_steps_are_the_steps_of_every_challenge() {
    let server = start(|c| c.pinned_steps = Some(vec![Step::Left, Step::Right])).await;
    for _ in 0..6 {
        let (_, public) = device();
        let (status, c) = challenge(server.addr, &public).await;
        assert_eq!(status, 200, "{c}");
        assert_eq!(steps(&c), [Step::Left, Step::Right]);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_that_do_not_follow_the_steps_are_refused() {
    let server = start(|_| {}).await;
    let (_, public) = device();
    let fresh = |public: String| async move {
        let (_, c) = challenge(server.addr, &public).await;
        (c["challenge_id"].as_str().unwrap().to_owned(), steps(&c))
    };

    // The steps played in the other order.
    let (id, s) = fresh(public.clone()).await;
    let reversed: Vec<Step> = s.iter().rev().copied().collect();
    let (status, body) = answer(server.addr, &id, &public, following(&reversed), None).await;
    assert_eq!(
        (status, code(&body)),
        (422, "challenge_not_followed"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("turn your head"),
        "{body}"
    );

    // A real person who does not turn her head.
    let (id, _) = fresh(public.clone()).await;
    let still: Vec<_> = (1..=12).map(|n| frame(NO_TURN, n)).collect();
    let (status, body) = answer(server.addr, &id, &public, still, None).await;
    assert_eq!(
        (status, code(&body)),
        (422, "challenge_not_followed"),
        "{body}"
    );

    // Two people: his first turn, then her face through the second. Her frames are the most
    // frontal, so his turn is measured against her face and looks flat; whichever rule
    // speaks first, the burst is refused (tests/headturn.rs shows `NotSamePerson` itself).
    let (id, s) = fresh(public.clone()).await;
    let mut mixed = following(&s);
    for f in mixed.iter_mut().skip(7) {
        *f = frame(NO_TURN, 1);
    }
    let (status, body) = answer(server.addr, &id, &public, mixed, None).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        [
            "not_same_person",
            "challenge_not_followed",
            "spoof_detected"
        ]
        .contains(&code(&body)),
        "{body}"
    );

    // Bound to its device: another key cannot answer it, and the try uses it up.
    let (id, s) = fresh(public.clone()).await;
    let (_, other) = device();
    let (status, body) = answer(server.addr, &id, &other, following(&s), None).await;
    assert_eq!((status, code(&body)), (400, "challenge_unknown"), "{body}");
    let (status, body) = answer(server.addr, &id, &public, following(&s), None).await;
    assert_eq!((status, code(&body)), (400, "challenge_unknown"), "{body}");

    // Capture times no camera makes: thirteen frames in a tenth of a second.
    let (id, s) = fresh(public.clone()).await;
    let frames = following(&s);
    let fast = Some((0..frames.len() as u64).map(|i| i * 8).collect());
    let (status, body) = answer(server.addr, &id, &public, frames, fast).await;
    assert_eq!(
        (status, code(&body)),
        (422, "challenge_not_followed"),
        "{body}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_has_between_min_and_max_frames() {
    let server = start(|_| {}).await;
    let (_, public) = device();
    for (n, ok) in [
        (MIN_FRAMES - 1, false),
        (MIN_FRAMES, true),
        (MAX_FRAMES, true),
        (MAX_FRAMES + 1, false),
    ] {
        let (_, c) = challenge(server.addr, &public).await;
        let id = c["challenge_id"].as_str().unwrap();
        // The steps' frames, padded with the last frontal frame or cut to n.
        let mut frames = following(&steps(&c));
        frames.resize(n.max(frames.len()), frame(REAL, 12));
        if n < frames.len() {
            // Keep a burst that follows the steps: frontal, right/left held twice each.
            let s = steps(&c);
            let pick = |step: Step| match step {
                Step::Right => [4, 5, 7],
                Step::Left => [9, 10, 7],
            };
            let mut order = vec![1];
            for step in &s {
                order.extend(pick(*step));
            }
            order.resize(n, 12);
            frames = order.into_iter().map(|k| frame(REAL, k)).collect();
        }
        let (status, body) = answer(server.addr, id, &public, frames, None).await;
        if ok {
            assert_eq!(status, 200, "{n} frames: {body}");
        } else {
            assert_eq!(
                (status, code(&body)),
                (400, "bad_request"),
                "{n} frames: {body}"
            );
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_count_against_the_rate_limit_and_need_a_key() {
    let server = start(|c| c.rate_limit_per_minute = 2).await;
    let (_, public) = device();
    assert_eq!(challenge(server.addr, &public).await.0, 200);
    assert_eq!(challenge(server.addr, &public).await.0, 200);
    let (status, body) = challenge(server.addr, &public).await;
    assert_eq!((status, code(&body)), (429, "rate_limited"), "{body}");
    let server = start(|_| {}).await;
    let (status, body) = challenge(server.addr, "not a key").await;
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_form_takes_frames_as_base64_or_data_urls() {
    use base64::Engine;
    let server = start(|_| {}).await;
    let (_, public) = device();
    let (_, c) = challenge(server.addr, &public).await;
    let frames: Vec<String> = following(&steps(&c))
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(f);
            if i % 2 == 0 {
                format!("data:image/jpeg;base64,{b64}")
            } else {
                b64
            }
        })
        .collect();
    let body = json!({
        "challenge_id": c["challenge_id"],
        "public_key": public,
        "frames": frames,
        "gender": "undisclosed",
    });
    let (status, body) = common::verify_json(server.addr, &body).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["gender"], "U");
    // 21 frames are refused before any is decoded.
    let body =
        json!({"challenge_id": "x", "public_key": public, "frames": vec!["AAAA"; MAX_FRAMES + 1]});
    let (status, body) = common::verify_json(server.addr, &body).await;
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_are_held_to_the_configured_liveness_threshold() {
    // Real frontal frames score 0.98-1.00: above 1, none is live enough.
    let server = start(|c| c.liveness_threshold = 1.01).await;
    let (_, public) = device();
    let (_, c) = challenge(server.addr, &public).await;
    let id = c["challenge_id"].as_str().unwrap();
    let (status, body) = answer(server.addr, id, &public, following(&steps(&c)), None).await;
    assert_eq!((status, code(&body)), (422, "spoof_detected"), "{body}");
    server.shutdown().await.unwrap();
}

/// Behind a trusted proxy the per-address limit counts the address the proxy forwards; from
/// anyone else X-Forwarded-For is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_limits_count_the_forwarded_address() {
    let server = start(|c| {
        c.rate_limit_per_minute = 1;
        c.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let (_, public) = device();
    let ask = |forwarded: &'static str| {
        let public = public.clone();
        async move {
            reqwest::Client::new()
                .post(format!("http://{}/v1/challenge", server.addr))
                .header("x-forwarded-for", forwarded)
                .json(&json!({ "public_key": public }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(ask("198.51.100.1").await, 200);
    assert_eq!(
        ask("198.51.100.2").await,
        200,
        "another client behind the same proxy"
    );
    assert_eq!(ask("198.51.100.1").await, 429, "the first client again");
    server.shutdown().await.unwrap();

    // Not trusted: the header is anyone's to write, and the connection's address counts.
    let server = start(|c| c.rate_limit_per_minute = 1).await;
    let (_, public) = device();
    let first = challenge(server.addr, &public).await.0;
    let forged = reqwest::Client::new()
        .post(format!("http://{}/v1/challenge", server.addr))
        .header("x-forwarded-for", "198.51.100.3")
        .json(&json!({ "public_key": public }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!((first, forged), (200, 429));
    server.shutdown().await.unwrap();
}
