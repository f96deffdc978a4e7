//! HTTP routes: the WebSocket endpoint, stats, health, metrics and the admin API.

use std::net::SocketAddr;
use std::sync::Arc;

use anonchat_protocol::rendezvous::MAX_FRAME_BYTES;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::Shared;
use crate::store::Store;

pub fn router<S: Store>(shared: Arc<Shared<S>>) -> Router {
    Router::new()
        .route("/v1/ws", get(ws::<S>))
        .route("/v1/stats", get(stats::<S>))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz::<S>))
        .route("/metrics", get(metrics::<S>))
        .route("/v1/admin/metrics", get(admin_metrics::<S>))
        .route("/v1/admin/unban", post(admin_unban::<S>))
        .route("/v1/admin/reset", post(admin_reset::<S>))
        .merge(super::web::routes::<S>())
        .with_state(shared)
}

fn too_many(retry_after: u64) -> Response {
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"error": {"code": "rate_limited", "message": "too many requests", "retry_after": retry_after}}))).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, retry_after.into());
    r
}

async fn ws<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let client = shared.config.http.client_ip(peer.ip(), &headers);
    if let Err(retry_after) = shared.ip_allowed(client) {
        return too_many(retry_after);
    }
    let origins = &shared.config.client_origins;
    if !origins.is_empty() {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        // Browsers always send Origin; other clients (the terminal one) send none.
        if origin.is_some_and(|o| !origins.iter().any(|allowed| allowed == o)) {
            return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
        }
    }
    if *shared.shutdown.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    // Small buffers: most sockets sit idle in the queue, and the default 128 KiB read buffer
    // per socket would dominate the server's memory. Frames up to the limit still fit: the
    // buffer grows for the rare large one.
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_FRAME_BYTES * 4)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| super::session::run(shared, socket))
}

async fn stats<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let client = shared.config.http.client_ip(peer.ip(), &headers);
    if let Err(retry_after) = shared.ip_allowed(client) {
        return too_many(retry_after);
    }
    match shared.store.stats().await {
        Ok(s) => axum::Json(s).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "stats");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}

/// Whether this instance should be given clients, or why not: /readyz answers it, and the
/// `rendezvous_ready` gauge reports it to monitoring.
async fn readiness<S: Store>(shared: &Shared<S>) -> Result<(), &'static str> {
    if shared
        .keys
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .is_none()
    {
        return Err("no verifier keys yet");
    }
    if !shared.alive() {
        return Err("not alive in the store yet");
    }
    shared.store.ping().await.map_err(|_| "store unreachable")
}

async fn readyz<S: Store>(State(shared): State<Arc<Shared<S>>>) -> Response {
    match readiness(&shared).await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

async fn metrics<S: Store>(State(shared): State<Arc<Shared<S>>>) -> Response {
    let ready = readiness(&shared).await.is_ok();
    shared.metrics.ready.set(i64::from(ready));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
        .into_response()
}

/// Admin requests need `Authorization: Bearer $ADMIN_TOKEN`, compared in constant time; with no
/// token configured the admin API does not exist.
fn admin<S: Store>(
    shared: &Shared<S>,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, &'static str)> {
    let Some(expected) = shared
        .config
        .admin_token
        .as_deref()
        .filter(|t| !t.is_empty())
    else {
        return Err((StatusCode::NOT_FOUND, "admin API disabled"));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if bool::from(g.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        _ => Err((StatusCode::UNAUTHORIZED, "admin token required")),
    }
}

async fn admin_metrics<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admin(&shared, &headers) {
        return r.into_response();
    }
    let stats = shared.store.stats().await.unwrap_or_default();
    axum::Json(json!({
        "instance": shared.instance,
        "connections_here": shared.hub.len(),
        "online": stats.online,
        "waiting": stats.waiting,
        "matches_here": shared.metrics.matches.get(),
        "signals_forwarded_here": shared.metrics.signals_forwarded.get(),
        "bans_here": shared.metrics.bans.get(),
    }))
    .into_response()
}

#[derive(serde::Deserialize)]
struct Unban {
    peer_id: String,
}

async fn admin_unban<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = admin(&shared, &headers) {
        return r.into_response();
    }
    let Ok(req) = serde_json::from_slice::<Unban>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected {\"peer_id\": \"12D3KooW…\"}",
        )
            .into_response();
    };
    match shared
        .store
        .unban(&shared.secrets.pseudonym(&req.peer_id))
        .await
    {
        Ok(was_banned) => axum::Json(json!({"unbanned": was_banned})).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response(),
    }
}

async fn admin_reset<S: Store>(
    State(shared): State<Arc<Shared<S>>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admin(&shared, &headers) {
        return r.into_response();
    }
    match shared.store.reset().await {
        Ok(()) => axum::Json(json!({"reset": true})).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response(),
    }
}
