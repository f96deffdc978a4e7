//! The verifier's client: sends a photo and the device's public key, keeps the token.

use anonchat_protocol::token::Gender;
use base64::Engine;
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
    let public_key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(identity.verifying_key().as_bytes());
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
    let response = reqwest::Client::new()
        .post(&url)
        .multipart(form)
        .send()
        .await
        .map_err(unreachable)?;
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
