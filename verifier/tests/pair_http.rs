//! Pairing a phone with a terminal over HTTP (real sockets, real models): the code carries one
//! token from the phone's check to the terminal that proves it holds the key, and to nobody
//! else. The phone sends a still here (photo mode); pairing does not depend on the evidence,
//! and the browser test runs it with a head-turn burst in active mode.

mod common;

use std::net::SocketAddr;

use anonchat_protocol::pair::{fingerprint, prove};
use base64::Engine;
use common::{code, device, face, post, start, verify_json};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

const PAGE: &str = "http://chat.test";

async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn proof(key: &SigningKey, code: &str) -> Value {
    serde_json::to_value(prove(code, |m| key.sign(m))).unwrap()
}

/// What the phone sends: a still photo for `public`, through the pairing `code`.
fn phone_check(public: &str, pair_code: &str) -> Value {
    let image = base64::engine::general_purpose::STANDARD.encode(face("m_obama_official.jpg"));
    json!({"image": image, "public_key": public, "pair_code": pair_code})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_check_carries_one_token_to_the_terminal_that_proves_its_key() {
    let server = start(|c| c.client_origins = vec![PAGE.into()]).await;
    let addr = server.addr;
    let (terminal, public) = device();
    let (status, pairing) = post(addr, "/v1/pair", json!({"public_key": public})).await;
    assert_eq!(status, 200, "{pairing}");
    let pair_code = pairing["pair_code"].as_str().unwrap().to_owned();
    assert_eq!(pairing["url"], format!("{PAGE}/#pair={pair_code}"));
    assert_eq!(
        pairing["fingerprint"],
        fingerprint(&terminal.verifying_key())
    );
    let now = anonchat_protocol::token::unix_now();
    assert!((now + 295..=now + 301).contains(&pairing["expires_at"].as_i64().unwrap()));

    // The phone learns whose key it verifies for.
    let (status, info) = get(addr, &format!("/v1/pair/{pair_code}")).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["public_key"], public.as_str());
    assert_eq!(info["fingerprint"], pairing["fingerprint"]);
    assert_eq!(info["undisclosed"], false);

    // The terminal waits; someone without its key cannot collect.
    let (stranger, _) = device();
    let (status, body) = post(
        addr,
        &format!("/v1/pair/{pair_code}/token"),
        proof(&stranger, &pair_code),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "bad_proof"), "{body}");
    let waiting = tokio::spawn({
        let (terminal, pair_code) = (terminal.clone(), pair_code.clone());
        async move {
            post(
                addr,
                &format!("/v1/pair/{pair_code}/token"),
                proof(&terminal, &pair_code),
            )
            .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "the terminal waits for the phone");

    let (status, answer) = verify_json(addr, &phone_check(&public, &pair_code)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["verified"].as_bool(), answer["paired"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(answer["gender"], "M");
    assert!(
        answer.get("token").is_none(),
        "the phone never gets the token: {answer}"
    );

    let (status, collected) = waiting.await.unwrap();
    assert_eq!(status, 200, "{collected}");
    let keys = anonchat_protocol::token::KeySet::from_jwks(&server.jwks).unwrap();
    let claims = keys.verify(collected["token"].as_str().unwrap()).unwrap();
    assert_eq!(
        claims.sub,
        anonchat_protocol::token::peer_id(&terminal.verifying_key())
    );
    assert_eq!(collected["peer_id"], claims.sub.as_str());

    // Used is gone, for the phone and for the terminal.
    let (status, body) = get(addr, &format!("/v1/pair/{pair_code}")).await;
    assert_eq!((status, code(&body)), (404, "pair_unknown"), "{body}");
    let (status, body) = verify_json(addr, &phone_check(&public, &pair_code)).await;
    assert_eq!((status, code(&body)), (404, "pair_unknown"), "{body}");
    let (status, body) = post(
        addr,
        &format!("/v1/pair/{pair_code}/token"),
        proof(&terminal, &pair_code),
    )
    .await;
    assert_eq!((status, code(&body)), (404, "pair_unknown"), "{body}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_bound_to_its_key_keeps_the_gender_undisclosed_if_asked_and_can_be_cancelled() {
    let server = start(|c| c.page_url = Some(format!("{PAGE}/app/"))).await;
    let addr = server.addr;
    let (terminal, public) = device();
    let (_, pairing) = post(
        addr,
        "/v1/pair",
        json!({"public_key": public, "undisclosed": true}),
    )
    .await;
    let pair_code = pairing["pair_code"].as_str().unwrap().to_owned();
    assert_eq!(
        pairing["url"],
        format!("{PAGE}/app/#pair={pair_code}"),
        "PAGE_URL wins"
    );
    let (_, info) = get(addr, &format!("/v1/pair/{pair_code}")).await;
    assert_eq!(info["undisclosed"], true);

    // A check for another key cannot land on this code.
    let (_, other) = device();
    let (status, body) = verify_json(addr, &phone_check(&other, &pair_code)).await;
    assert_eq!((status, code(&body)), (404, "pair_unknown"), "{body}");

    // The terminal asked for no gender: the phone's check does not infer one.
    let lowercase = pair_code.to_lowercase();
    let (status, answer) = verify_json(addr, &phone_check(&public, &lowercase)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["gender"], "U", "{answer}");
    let (status, collected) = post(
        addr,
        &format!("/v1/pair/{pair_code}/token"),
        proof(&terminal, &pair_code),
    )
    .await;
    assert_eq!(status, 200, "{collected}");
    assert_eq!(collected["gender"], "U");

    // Cancelled: only by the key holder, and then nobody can use the code.
    let (_, pairing) = post(addr, "/v1/pair", json!({"public_key": public})).await;
    let pair_code = pairing["pair_code"].as_str().unwrap().to_owned();
    let (stranger, _) = device();
    let (status, body) = post(
        addr,
        &format!("/v1/pair/{pair_code}/cancel"),
        proof(&stranger, &pair_code),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "bad_proof"), "{body}");
    let (status, body) = post(
        addr,
        &format!("/v1/pair/{pair_code}/cancel"),
        proof(&terminal, &pair_code),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(addr, &format!("/v1/pair/{pair_code}")).await;
    assert_eq!((status, code(&body)), (404, "pair_unknown"), "{body}");
    let (status, body) = verify_json(addr, &phone_check(&public, &pair_code)).await;
    assert_eq!((status, code(&body)), (404, "pair_unknown"), "{body}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_refuses_what_cannot_be_a_pairing() {
    let server = start(|_| {}).await;
    let addr = server.addr;
    let (_, public) = device();
    // No page to send a phone to.
    let (status, body) = post(addr, "/v1/pair", json!({"public_key": public})).await;
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PAGE_URL"),
        "{body}"
    );
    for path in ["/v1/pair/ABC", "/v1/pair/UUUUUUUUUU", "/v1/pair/0000000000"] {
        let (status, body) = get(addr, path).await;
        assert_eq!(
            (status, code(&body)),
            (404, "pair_unknown"),
            "{path}: {body}"
        );
    }
    let (status, body) = post(
        addr,
        "/v1/pair/0000000000/token",
        json!({"signature": "AAAA"}),
    )
    .await;
    assert_eq!((status, code(&body)), (404, "pair_unknown"), "{body}");
    let (status, body) = post(addr, "/v1/pair/0000000000/token", json!({"sig": 1})).await;
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    server.shutdown().await.unwrap();
}
