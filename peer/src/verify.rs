//! The verifier's client: sends a photo and the device's public key (photo mode), or pairs a
//! phone that runs the head-turn check for this device's key and collects the token it leaves
//! (DESIGN.md §4). The caller keeps the token.

use anonchat_protocol::token::Gender;
use serde::Deserialize;

use crate::identity::{Identity, SavedToken};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The verifier's own refusal, with its code and message for the user.
    #[error("{message} ({code})")]
    Refused { code: String, message: String },
    #[error("the verifier at {url} could not be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the verifier answered something unexpected: {0}")]
    Protocol(String),
}

#[derive(Deserialize)]
struct Reply {
    verified: bool,
    token: Option<String>,
    gender: Option<Gender>,
    expires_at: Option<i64>,
    peer_id: Option<String>,
    error: Option<ReplyError>,
}

#[derive(Deserialize)]
struct ReplyError {
    code: String,
    message: String,
}

/// Verifies `photo` (the image bytes) for this device at the verifier `base_url`, and returns
/// the token (not yet saved).
pub async fn verify(
    base_url: &str,
    identity: &Identity,
    photo: Vec<u8>,
    undisclosed: bool,
) -> Result<SavedToken, VerifyError> {
    let url = format!("{}/v1/verify", base_url.trim_end_matches('/'));
    let public_key = public_key(identity);
    let mut form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(photo).file_name("selfie"),
        )
        .text("public_key", public_key);
    if undisclosed {
        form = form.text("gender", "undisclosed");
    }
    let unreachable = |e: reqwest::Error| VerifyError::Unreachable {
        url: url.clone(),
        reason: e.to_string(),
    };
    let response = http()
        .post(&url)
        .multipart(form)
        .send()
        .await
        .map_err(unreachable)?;
    token_of(identity, response).await
}

/// The verifier's answer, as a token for this device or its refusal.
async fn token_of(
    identity: &Identity,
    response: reqwest::Response,
) -> Result<SavedToken, VerifyError> {
    let status = response.status();
    let reply: Reply = response
        .json()
        .await
        .map_err(|e| VerifyError::Protocol(format!("HTTP {status}, not a verifier reply ({e})")))?;
    if !reply.verified {
        let e = reply
            .error
            .ok_or_else(|| VerifyError::Protocol("a refusal without an error".into()))?;
        return Err(VerifyError::Refused {
            code: e.code,
            message: e.message,
        });
    }
    let (Some(token), Some(gender), Some(expires_at), Some(peer_id)) =
        (reply.token, reply.gender, reply.expires_at, reply.peer_id)
    else {
        return Err(VerifyError::Protocol("a success without a token".into()));
    };
    if peer_id != identity.peer_id {
        return Err(VerifyError::Protocol(
            "the token names another device".into(),
        ));
    }
    Ok(SavedToken {
        token,
        gender,
        expires_at,
        peer_id,
    })
}

fn base(url: &str) -> &str {
    url.trim_end_matches('/')
}

fn public_key(identity: &Identity) -> String {
    anonchat_protocol::token::public_key_to_base64url(identity.verifying_key().as_bytes())
}

/// Posts `body` as JSON; the response, or why there is none.
async fn post_json(
    client: &reqwest::Client,
    url: String,
    body: &impl serde::Serialize,
) -> Result<reqwest::Response, VerifyError> {
    client
        .post(&url)
        .json(body)
        .send()
        .await
        .map_err(|e| VerifyError::Unreachable {
            url,
            reason: e.to_string(),
        })
}

/// A refusal's code and message, from a verifier's error body.
async fn refusal(response: reqwest::Response) -> VerifyError {
    let status = response.status();
    match response.json::<Reply>().await {
        Ok(Reply { error: Some(e), .. }) => VerifyError::Refused {
            code: e.code,
            message: e.message,
        },
        _ => VerifyError::Protocol(format!("HTTP {status}, not a verifier reply")),
    }
}

/// A pairing code opened for this device: show `url` (and the fingerprint to compare).
pub type Pairing = anonchat_protocol::pair::Pairing;

/// Asks the verifier at `base_url` for a pairing code bound to this device's key. The
/// fingerprint it answers must be this key's: anything else is refused.
pub async fn open_pairing(
    base_url: &str,
    identity: &Identity,
    undisclosed: bool,
) -> Result<Pairing, VerifyError> {
    let client = http();
    let url = format!("{}/v1/pair", base(base_url));
    let body = anonchat_protocol::pair::PairRequest {
        public_key: public_key(identity),
        undisclosed,
    };
    let response = post_json(&client, url, &body).await?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let pairing: Pairing = response
        .json()
        .await
        .map_err(|e| VerifyError::Protocol(format!("not a pairing ({e})")))?;
    if pairing.fingerprint != anonchat_protocol::pair::fingerprint(&identity.verifying_key()) {
        return Err(VerifyError::Protocol(
            "the pairing is for another key".into(),
        ));
    }
    if anonchat_protocol::pair::normalize_code(&pairing.pair_code).as_deref()
        != Some(pairing.pair_code.as_str())
    {
        return Err(VerifyError::Protocol("not a pairing code".into()));
    }
    Ok(pairing)
}

/// Waits for the phone's check of `code` and returns the token the verifier kept for this
/// device, asking again after each wait the verifier cuts short.
pub async fn collect(
    base_url: &str,
    identity: &Identity,
    code: &str,
) -> Result<SavedToken, VerifyError> {
    let wait = std::time::Duration::from_secs(anonchat_protocol::pair::COLLECT_WAIT_SECONDS);
    crate::tls::crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(wait + std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| VerifyError::Protocol(e.to_string()))?;
    let url = format!("{}/v1/pair/{code}/token", base(base_url));
    let proof = anonchat_protocol::pair::prove(code, |m| identity.sign(m));
    loop {
        let response = post_json(&client, url.clone(), &proof).await?;
        if response.status() != reqwest::StatusCode::ACCEPTED {
            return token_of(identity, response).await;
        }
    }
}

/// Tells the verifier that this device gave up on `code`, so nobody can use it any more.
pub async fn cancel(base_url: &str, identity: &Identity, code: &str) -> Result<(), VerifyError> {
    let url = format!("{}/v1/pair/{code}/cancel", base(base_url));
    let proof = anonchat_protocol::pair::prove(code, |m| identity.sign(m));
    let response = post_json(&http(), url, &proof).await?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(refusal(response).await)
    }
}

/// A client for the verifier (https:// as the system, or `SSL_CERT_FILE`, trusts).
fn http() -> reqwest::Client {
    crate::tls::crypto_provider();
    reqwest::Client::new()
}
