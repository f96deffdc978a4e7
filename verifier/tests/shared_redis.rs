//! Two verifiers behind one address share a real `redis-server` (`VERIFIER_REDIS_URL`): a
//! challenge issued by one is answered at the other, once; a terminal's pairing opened at one is
//! checked by a phone at the other and collected back at the first. Redis holds only keys with a
//! TTL, none with an image in it.

mod common;

use anonchat_protocol::pair::prove;
use anonchat_testkit::RedisServer;
use base64::Engine;
use common::burst::{answer, challenge, following, steps};
use common::{code, device, face, post, start, verify_json};
use ed25519_dalek::Signer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_and_pairings_are_answered_at_any_verifier_sharing_redis() {
    let redis = RedisServer::start();
    let shared = |c: &mut anonchat_verifier::service::ServiceConfig| {
        c.redis_url = Some(redis.url.clone());
        c.page_url = Some("http://chat.test".into());
        c.workers = Some(1);
    };
    let (a, b) = (start(shared).await, start(shared).await);

    // A challenge from A, answered at B; then it is gone for both.
    let (_, public) = device();
    let (status, c) = challenge(a.addr, &public).await;
    assert_eq!(status, 200, "{c}");
    let id = c["challenge_id"].as_str().unwrap();
    let frames = following(&steps(&c));
    let (_, other) = device();
    let (status, body) = answer(b.addr, id, &other, frames.clone(), None).await;
    assert_eq!(
        (status, code(&body)),
        (400, "challenge_unknown"),
        "another key: {body}"
    );
    let (_, c) = challenge(a.addr, &public).await;
    let id = c["challenge_id"].as_str().unwrap();
    let frames = following(&steps(&c));
    let (status, body) = answer(b.addr, id, &public, frames.clone(), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = answer(a.addr, id, &public, frames, None).await;
    assert_eq!(
        (status, code(&body)),
        (400, "challenge_unknown"),
        "used: {body}"
    );

    // A pairing opened at A, checked at B, collected at A.
    let (terminal, public) = device();
    let (status, pairing) = post(a.addr, "/v1/pair", json!({"public_key": public})).await;
    assert_eq!(status, 200, "{pairing}");
    let pair_code = pairing["pair_code"].as_str().unwrap().to_owned();
    let r = reqwest::get(format!("http://{}/v1/pair/{pair_code}", b.addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let proof = serde_json::to_value(prove(&pair_code, |m| terminal.sign(m))).unwrap();
    let collecting = tokio::spawn({
        let (path, proof) = (format!("/v1/pair/{pair_code}/token"), proof.clone());
        let addr = a.addr;
        async move { post(addr, &path, proof).await }
    });
    let image = base64::engine::general_purpose::STANDARD.encode(face("m_obama_official.jpg"));
    let phone = json!({"image": image, "public_key": public, "pair_code": pair_code});
    let (status, body) = verify_json(b.addr, &phone).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("token").is_none());

    // While the token waits, Redis holds small keys, each with a TTL.
    for (key, ttl) in redis.keys_with_ttl() {
        assert!(key.starts_with("anonchat:verifier:"), "{key}");
        assert!(ttl > 0 && ttl <= 360_000, "{key} has TTL {ttl} ms");
    }
    let (status, collected) = collecting.await.unwrap();
    assert_eq!(status, 200, "{collected}");
    // B signed it (each test verifier has a key of its own; a deployment shares one).
    let keys = anonchat_protocol::token::KeySet::from_jwks(&b.jwks).unwrap();
    let claims = keys.verify(collected["token"].as_str().unwrap()).unwrap();
    assert_eq!(
        claims.sub,
        anonchat_protocol::token::peer_id(&terminal.verifying_key())
    );
    let (status, body) = post(b.addr, &format!("/v1/pair/{pair_code}/token"), proof).await;
    assert_eq!(
        (status, code(&body)),
        (404, "pair_unknown"),
        "collected once: {body}"
    );
    assert!(
        redis.keys_with_ttl().is_empty(),
        "{:?}",
        redis.keys_with_ttl()
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// A verifier whose Redis is not up yet starts anyway, unready, refusing challenges with a 503
/// (`overloaded`: try again in a moment); once Redis is up it is ready and challenges work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifier_started_before_its_redis_waits_for_it() {
    let mut redis = RedisServer::start();
    redis.kill();
    let url = redis.url.clone();
    let v = start(move |c| {
        c.redis_url = Some(url);
        c.workers = Some(1);
    })
    .await;
    let readyz = || async {
        reqwest::get(format!("http://{}/readyz", v.addr))
            .await
            .unwrap()
            .status()
    };
    assert_eq!(readyz().await, 503);
    let (_, public) = device();
    let (status, body) = challenge(v.addr, &public).await;
    assert_eq!((status, code(&body)), (503, "overloaded"), "{body}");

    redis.restart();
    let t0 = std::time::Instant::now();
    while readyz().await != 200 {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(15),
            "never ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, body) = challenge(v.addr, &public).await;
    assert_eq!(status, 200, "{body}");
}
