//! The HTTP service end to end: real sockets, real models, real photos.

mod common;

use std::time::Duration;

use anonchat_protocol::token::{Jwks, KeySet, peer_id};
use base64::Engine;
use common::{code, device, face, start, verify_json, verify_multipart, verify_raw};
use serde_json::json;

async fn jwks(addr: std::net::SocketAddr) -> Jwks {
    reqwest::get(format!("http://{addr}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_selfie_gets_a_token_bound_to_the_device() {
    let server = start(|_| {}).await;
    let (key, public) = device();
    let (status, body, _) =
        verify_multipart(server.addr, face("m_obama_official.jpg"), &public, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verified"], true);
    assert_eq!(body["gender"], "M");
    assert_eq!(body["peer_id"], peer_id(&key.verifying_key()));
    let claims = KeySet::from_jwks(&jwks(server.addr).await)
        .unwrap()
        .verify(body["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.device_key().unwrap(), key.verifying_key());
    assert_eq!(claims.exp, body["expires_at"].as_i64().unwrap());
    assert!((claims.exp - claims.iat - 86_400).abs() <= 1);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_data_url_and_undisclosed_gender() {
    let server = start(|_| {}).await;
    let (_, public) = device();
    let image = base64::engine::general_purpose::STANDARD.encode(face("real_f_silentface_T1.jpg"));
    let body = json!({"image": format!("data:image/jpeg;base64,{image}"), "public_key": public, "gender": "undisclosed"});
    let (status, body) = verify_json(server.addr, &body).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["gender"], "U");
    // Plain base64 without the data: prefix works too, and infers gender.
    let body = json!({"image": image, "public_key": public});
    let (status, body) = verify_json(server.addr, &body).await;
    assert_eq!(
        (status, body["gender"].as_str()),
        (200, Some("F")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_photos_get_their_codes() {
    let server = start(|_| {}).await;
    let (_, public) = device();
    for (file, want) in [
        ("spoof_print_f_silentface_F1.jpg", "spoof_detected"),
        ("noface_chelsea_cat.png", "no_face"),
        ("multi_pexels_group.jpg", "multiple_faces"),
    ] {
        let (status, body, _) = verify_multipart(server.addr, face(file), &public, None).await;
        assert_eq!((status, code(&body)), (422, want), "{file}: {body}");
        assert_eq!(body["verified"], false);
        assert!(body.get("token").is_none());
    }
}

/// A well-formed PNG (valid chunk CRCs) whose header claims an enormous image, with a few
/// bytes of compressed data: a decompression bomb's shape.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    };
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    );
    chunk(b"IEND", &[]);
    png
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_typed_errors_and_never_hangs() {
    let server = start(|c| c.max_image_bytes = 1024 * 1024).await;
    let addr = server.addr;
    let (_, public) = device();
    let jpeg = face("m_interfaces_014.jpg");
    let cases: Vec<(&str, (u16, serde_json::Value, _))> = vec![
        (
            "truncated JPEG",
            verify_multipart(addr, jpeg[..jpeg.len() / 2].to_vec(), &public, None).await,
        ),
        (
            "a non-image",
            verify_multipart(
                addr,
                b"just some text, not a picture".to_vec(),
                &public,
                None,
            )
            .await,
        ),
        (
            "empty image",
            verify_multipart(addr, Vec::new(), &public, None).await,
        ),
        (
            "100000x100000 PNG header",
            verify_multipart(addr, png_claiming(100_000, 100_000), &public, None).await,
        ),
        (
            "over the byte limit",
            verify_multipart(addr, vec![0xff; 2 * 1024 * 1024], &public, None).await,
        ),
        (
            "bad public key",
            verify_multipart(addr, jpeg.clone(), "not-a-key", None).await,
        ),
        (
            "bad gender",
            verify_multipart(addr, jpeg.clone(), &public, Some("robot")).await,
        ),
    ];
    let expected = [
        (422, "corrupt_image"),
        (415, "unsupported_image"),
        (415, "unsupported_image"),
        (413, "image_too_large"),
        (413, "image_too_large"),
        (400, "bad_request"),
        (400, "bad_request"),
    ];
    for ((name, (status, body, _)), want) in cases.into_iter().zip(expected) {
        assert_eq!((status, code(&body)), want, "{name}: {body}");
    }

    // Missing and misnamed multipart fields.
    let form = reqwest::multipart::Form::new().text("public_key", public.clone());
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/v1/verify"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "bad_request");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("image"),
        "{body}"
    );
    let form = reqwest::multipart::Form::new()
        .part("photo", reqwest::multipart::Part::bytes(jpeg.clone()))
        .text("public_key", public.clone());
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/v1/verify"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("photo"),
        "{body}"
    );

    // Raw bodies: empty, wrong content type, invalid JSON, unknown JSON field, broken multipart.
    for (ct, body, want) in [
        ("application/json", Vec::new(), "bad_request"),
        ("text/plain", b"hello".to_vec(), "bad_request"),
        ("application/json", b"{not json".to_vec(), "bad_request"),
        (
            "application/json",
            json!({"image": "AAAA", "public_key": public, "extra": 1})
                .to_string()
                .into_bytes(),
            "bad_request",
        ),
        (
            "application/json",
            json!({"image": "%%%%", "public_key": public})
                .to_string()
                .into_bytes(),
            "bad_request",
        ),
        (
            "multipart/form-data; boundary=xyz",
            b"--xyz\r\nContent-Disposition: form-da".to_vec(),
            "bad_request",
        ),
        (
            "multipart/form-data",
            b"no boundary".to_vec(),
            "bad_request",
        ),
    ] {
        let (status, got) = verify_raw(addr, ct, body).await;
        assert_eq!((status, code(&got)), (400, want), "{ct}: {got}");
    }

    // A client that announces a body and never sends it is cut off, not waited for forever;
    // meanwhile the service keeps answering others.
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    stalled
        .write_all(b"POST /v1/verify HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{")
        .await
        .unwrap();
    let (status, body, _) =
        verify_multipart(addr, face("m_luciano_codait.png"), &public, None).await;
    assert_eq!(status, 200, "{body}");
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_parallel_requests_are_all_answered_correctly() {
    let server = start(|c| c.queue = Some(32)).await;
    let files = [
        "m_obama_official.jpg",
        "f_pexels_neutral.jpg",
        "m_luciano_codait.png",
        "real_f_silentface_T1.jpg",
    ];
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (addr, file) = (server.addr, files[i % files.len()]);
            tokio::spawn(async move {
                let (key, public) = device();
                let (status, body, _) = verify_multipart(addr, face(file), &public, None).await;
                (file, key, status, body)
            })
        })
        .collect();
    for t in tasks {
        let (file, key, status, body) = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, 200, "{file}: {body}");
        let want = if file.starts_with("m_") { "M" } else { "F" };
        assert_eq!(body["gender"], want, "{file}");
        assert_eq!(
            body["peer_id"],
            peer_id(&key.verifying_key()),
            "each answer goes to its own request"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_answers_503_at_once() {
    let server = start(|c| {
        c.workers = Some(1);
        c.queue = Some(0);
    })
    .await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let addr = server.addr;
            tokio::spawn(async move {
                let (_, public) = device();
                verify_multipart(addr, face("f_pexels_neutral.jpg"), &public, None).await
            })
        })
        .collect();
    let (mut ok, mut overloaded) = (0, 0);
    for t in tasks {
        let (status, body, headers) = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .unwrap()
            .unwrap();
        match status {
            200 => ok += 1,
            503 => {
                assert_eq!(code(&body), "overloaded");
                assert!(headers.contains_key("retry-after"));
                overloaded += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        ok >= 1 && overloaded >= 1,
        "{ok} verified, {overloaded} overloaded"
    );
    assert_eq!(ok + overloaded, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_rate_limit_answers_429_with_retry_after() {
    let server = start(|c| c.rate_limit_per_minute = 2).await;
    let (_, public) = device();
    for _ in 0..2 {
        let (status, _, _) =
            verify_multipart(server.addr, face("m_luciano_codait.png"), &public, None).await;
        assert_eq!(status, 200);
    }
    let (status, body, headers) =
        verify_multipart(server.addr, face("m_luciano_codait.png"), &public, None).await;
    assert_eq!((status, code(&body)), (429, "rate_limited"));
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_endpoints() {
    let server = start(|c| c.client_origins = vec!["http://app.example".into()]).await;
    let addr = server.addr;
    let get = |path: &'static str| async move {
        reqwest::get(format!("http://{addr}{path}")).await.unwrap()
    };
    assert_eq!(get("/healthz").await.status().as_u16(), 200);
    assert_eq!(get("/readyz").await.status().as_u16(), 200);
    let spec: serde_json::Value = get("/openapi.json").await.json().await.unwrap();
    assert!(spec["paths"]["/v1/verify"]["post"].is_object());
    assert!(spec["paths"]["/v1/challenge"]["post"].is_object());
    for path in ["/v1/info", "/v1/pair/{code}"] {
        assert!(spec["paths"][path]["get"].is_object(), "{path}");
    }
    for path in [
        "/v1/pair",
        "/v1/pair/{code}/token",
        "/v1/pair/{code}/cancel",
    ] {
        assert!(spec["paths"][path]["post"].is_object(), "{path}");
    }
    // The documented refusals are the protocol's, all of them.
    let documented = &spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
        ["enum"];
    let codes: Vec<&str> =
        <anonchat_protocol::verify::ErrorCode as strum::IntoEnumIterator>::iter()
            .map(|c| c.as_str())
            .collect();
    assert_eq!(documented, &serde_json::json!(codes));
    let keys = jwks(addr).await;
    assert_eq!(keys.keys.len(), 1);
    assert_eq!(keys.keys[0].alg.as_deref(), Some("EdDSA"));

    let (_, public) = device();
    verify_multipart(addr, face("m_luciano_codait.png"), &public, None).await;
    verify_multipart(addr, face("noface_chelsea_cat.png"), &public, None).await;
    let metrics = get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"verifier_requests_total{outcome="verified"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"verifier_requests_total{outcome="no_face"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"verifier_stage_seconds_count{stage="detect"} 2"#),
        "{metrics}"
    );

    // CORS: the configured origin may call, another may not.
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, format!("http://{addr}/v1/verify"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = preflight("http://app.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let denied = preflight("http://evil.example").await.unwrap();
    assert!(!denied.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_stay_in_the_jwks() {
    let dir = std::env::temp_dir().join(format!("anonchat-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (old, new) = (
        anonchat_protocol::token::SigningKey::generate(),
        anonchat_protocol::token::SigningKey::generate(),
    );
    std::fs::write(dir.join("old.pem"), old.to_pkcs8_pem().as_bytes()).unwrap();
    std::fs::write(dir.join("new.pem"), new.to_pkcs8_pem().as_bytes()).unwrap();
    let server = start(|c| {
        c.signing_key_file = Some(dir.join("new.pem"));
        c.previous_key_files = vec![dir.join("old.pem")];
    })
    .await;
    let kids: Vec<String> = jwks(server.addr)
        .await
        .keys
        .into_iter()
        .filter_map(|k| k.kid)
        .collect();
    assert_eq!(kids, vec![new.kid().to_owned(), old.kid().to_owned()]);
    let (_, public) = device();
    let (_, body, _) =
        verify_multipart(server.addr, face("m_luciano_codait.png"), &public, None).await;
    let header = body["token"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_owned();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        header["kid"],
        new.kid(),
        "new tokens are signed with the current key"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// An independent JWT implementation (Python PyJWT with `cryptography`) accepts the token
/// against the published JWKS, and refuses it for another audience.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_verifies_with_pyjwt_against_the_jwks() {
    let server = start(|_| {}).await;
    let (key, public) = device();
    let (status, body, _) =
        verify_multipart(server.addr, face("f_interfaces_001.jpg"), &public, None).await;
    assert_eq!(status, 200, "{body}");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyjwt_check.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(format!("http://{}/.well-known/jwks.json", server.addr))
        .arg(body["token"].as_str().unwrap())
        .output()
        .await
        .expect("python3 runs (.ci/run installs PyJWT and cryptography)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "PyJWT refused the token: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["claims"]["sub"], peer_id(&key.verifying_key()));
    assert_eq!(report["claims"]["gender"], "F");
    assert_eq!(report["claims"]["aud"], "anonchat");
    assert_eq!(report["wrong_audience_refused"], true);
    assert_eq!(report["tampered_refused"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_gets_only_so_many_tokens_a_day() {
    let server = start(|c| c.verifications_per_ip_per_day = 2).await;
    // A refusal is not a token: it does not count.
    let (_, public) = device();
    let (status, _, _) =
        verify_multipart(server.addr, face("noface_chelsea_cat.png"), &public, None).await;
    assert_eq!(status, 422);
    for _ in 0..2 {
        let (_, public) = device();
        let (status, body, _) =
            verify_multipart(server.addr, face("m_obama_official.jpg"), &public, None).await;
        assert_eq!(status, 200, "{body}");
    }
    // A third device from the same address waits for tomorrow.
    let (_, public) = device();
    let (status, body, headers) =
        verify_multipart(server.addr, face("m_obama_official.jpg"), &public, None).await;
    assert_eq!((status, code(&body)), (429, "rate_limited"), "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "Retry-After {retry}");
    server.shutdown().await.unwrap();
}
