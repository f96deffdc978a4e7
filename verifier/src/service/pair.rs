//! The pairing endpoints (`/v1/pair…`, DESIGN.md §4): a terminal opens a code for its key, the
//! phone's page asks which key the code verifies for, and the terminal collects the token (or
//! cancels) by proving it holds that key. The check itself is `/v1/verify` with the code.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anonchat_protocol::pair::{
    COLLECT_WAIT_SECONDS, PAIR_TTL_SECONDS, PairInfo, PairRequest, Pairing, Proof, check,
    fingerprint, normalize_code, page_url,
};
use anonchat_protocol::token::{public_key_to_base64url, unix_now};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::pairings::PairError;
use super::store::CollectError;
use super::{AppState, public_key, rate_limit, read_json, respond};
use crate::error::VerifyError;

impl From<PairError> for VerifyError {
    fn from(e: PairError) -> Self {
        match e {
            PairError::Unknown => VerifyError::PairUnknown,
            PairError::Expired => VerifyError::PairExpired,
            PairError::Full | PairError::Unavailable => VerifyError::Overloaded,
        }
    }
}

impl From<CollectError> for VerifyError {
    fn from(e: CollectError) -> Self {
        match e {
            CollectError::Pair(e) => e.into(),
            CollectError::BadProof => VerifyError::BadProof,
        }
    }
}

/// A code as the path or a form gives it; anything that cannot be one is unknown.
pub(super) fn code_of(text: &str) -> Result<String, VerifyError> {
    normalize_code(text).ok_or(VerifyError::PairUnknown)
}

/// `POST /v1/pair`: a code for the terminal's key, and the page address to open with it.
pub(super) async fn open(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = open_inner(
        &state,
        state.config.http.client_ip(peer.ip(), &headers),
        &headers,
        body,
    )
    .await;
    respond(&state, "pair", "pair_opened", result)
}

async fn open_inner(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Pairing, VerifyError> {
    rate_limit(state, ip)?;
    let page = state
        .config
        .page_url
        .clone()
        .or_else(|| state.config.client_origins.first().cloned())
        .ok_or_else(|| {
            VerifyError::BadRequest("pairing is off: this verifier has no PAGE_URL".into())
        })?;
    let asked: PairRequest =
        read_json(state, headers, body, "{\"public_key\": \"<base64url>\"}").await?;
    let key = public_key(&asked.public_key)?;
    let code = state.store.open_pairing(key, asked.undisclosed).await?;
    Ok(Pairing {
        url: page_url(&page, &code),
        fingerprint: fingerprint(&key),
        expires_at: unix_now() + PAIR_TTL_SECONDS,
        pair_code: code,
    })
}

/// `GET /v1/pair/{code}`: which key the phone verifies for, while no check has passed for it.
pub(super) async fn info(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        rate_limit(&state, state.config.http.client_ip(peer.ip(), &headers))?;
        let code = code_of(&code)?;
        let waiting = state.store.pairing(&code).await?;
        Ok(PairInfo {
            public_key: public_key_to_base64url(waiting.key.as_bytes()),
            fingerprint: fingerprint(&waiting.key),
            expires_at: unix_now() + waiting.left.as_secs() as i64,
            undisclosed: waiting.undisclosed,
        })
    }
    .await;
    respond(&state, "pair info", "pair_info", result)
}

/// `POST /v1/pair/{code}/token`: waits up to [`COLLECT_WAIT_SECONDS`] for the phone's check;
/// 200 with the token (the code is then gone), 202 `{"pending": true}` to ask again.
pub(super) async fn collect(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match collect_inner(
        &state,
        state.config.http.client_ip(peer.ip(), &headers),
        &code,
        &headers,
        body,
    )
    .await
    {
        Ok(Some(minted)) => respond(
            &state,
            "pair collect",
            "pair_collected",
            Ok(minted.as_ref()),
        ),
        Ok(None) => {
            state.metrics.outcome("pair_pending");
            (StatusCode::ACCEPTED, axum::Json(json!({"pending": true}))).into_response()
        }
        Err(e) => respond(&state, "pair collect", "pair_collected", Err::<(), _>(e)),
    }
}

async fn collect_inner(
    state: &AppState,
    ip: IpAddr,
    code: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Option<super::pairings::Minted>, VerifyError> {
    rate_limit(state, ip)?;
    let code = code_of(code)?;
    let proof: Proof = read_json(state, headers, body, "{\"signature\": \"<base64url>\"}").await?;
    let wait = Duration::from_secs(COLLECT_WAIT_SECONDS);
    Ok(state
        .store
        .collect(&code, |key| check(key, &code, &proof), wait)
        .await?)
}

/// `POST /v1/pair/{code}/cancel`: the terminal gave up; the code can no longer be used.
pub(super) async fn cancel(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        rate_limit(&state, state.config.http.client_ip(peer.ip(), &headers))?;
        let code = code_of(&code)?;
        let proof: Proof =
            read_json(&state, &headers, body, "{\"signature\": \"<base64url>\"}").await?;
        state
            .store
            .cancel(&code, |key| check(key, &code, &proof))
            .await?;
        Ok(json!({"cancelled": true}))
    }
    .await;
    respond(&state, "pair cancel", "pair_cancelled", result)
}
