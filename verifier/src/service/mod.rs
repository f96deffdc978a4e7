//! The verifier's HTTP service (DESIGN.md §4): `POST /v1/verify` and the operational endpoints,
//! a thin axum driver around [`Pipeline`](crate::pipeline::Pipeline) and the token signer.

mod challenges;
mod daily;
mod metrics;
mod pair;
mod pairings;
mod pool;
pub mod request;
mod store;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anonchat_protocol::pair::PAIR_TTL_SECONDS;
use anonchat_protocol::token::{Jwks, SigningKey, unix_now};
pub use anonchat_protocol::verify::VerifyMode;
use anonchat_protocol::verify::{
    CHALLENGE_TTL_SECONDS, Challenge, ChallengeRequest, MAX_FRAMES, MIN_FRAMES, Step, VerifierInfo,
};
use anonchat_serve::{HttpLimits, Options};
use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::decode::ImageLimits;
use crate::error::VerifyError;
use crate::pipeline::{Pipeline, Policy};

pub use metrics::Metrics;
pub use pool::{Pool, Work};

use challenges::ChallengeError;

/// Challenges open at once, across all clients (each costs about 100 bytes).
const MAX_OPEN_CHALLENGES: usize = 100_000;

/// Everything `serve` can be told; each flag has an environment variable (DESIGN.md §7).
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceConfig {
    /// Address to listen on.
    #[arg(long, env = "VERIFIER_ADDR", default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// Folder with the ONNX model files (installed by models/install.sh).
    #[arg(long, env = "MODELS_DIR", default_value = "models/onnx")]
    pub models_dir: PathBuf,
    /// PKCS#8 PEM Ed25519 key to sign tokens with (from `keygen`). Unset: a random key for this
    /// process, with a warning (tokens then stop verifying when it restarts).
    #[arg(long, env = "VERIFIER_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,
    /// Earlier signing keys, comma-separated: their public halves stay in the JWKS so tokens
    /// they signed keep verifying during a key rotation.
    #[arg(long, env = "VERIFIER_PREVIOUS_KEY_FILES", value_delimiter = ',')]
    pub previous_key_files: Vec<PathBuf>,
    /// Lifetime of a token, in seconds.
    #[arg(long, env = "VERIFICATION_TOKEN_TTL_SECONDS", default_value_t = 86_400)]
    pub token_ttl_seconds: i64,
    /// The tokens' `iss` claim.
    #[arg(long, env = "VERIFIER_ISSUER", default_value = anonchat_protocol::token::DEFAULT_ISSUER)]
    pub issuer: String,
    /// P(real face) needed to pass liveness.
    #[arg(long, env = "LIVENESS_THRESHOLD", default_value_t = 0.5)]
    pub liveness_threshold: f32,
    /// Average the second liveness model (MiniFASNetV1SE) with the first.
    #[arg(long, env = "LIVENESS_FUSION")]
    pub liveness_fusion: bool,
    /// Smallest accepted face, in pixels (the shorter side of its box).
    #[arg(long, env = "MIN_FACE_PX", default_value_t = 32)]
    pub min_face_px: u32,
    /// Largest accepted image, in bytes.
    #[arg(long, env = "MAX_IMAGE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_image_bytes: usize,
    /// Largest accepted image, in pixels (checked from the header, before decoding).
    #[arg(long, env = "MAX_IMAGE_PIXELS", default_value_t = 40_000_000)]
    pub max_image_pixels: u64,
    /// Bytes one image may take to decode (its pixels in the file's own format, plus a
    /// progressive JPEG's coefficients), checked from the header before decoding.
    #[arg(long, env = "MAX_DECODED_IMAGE_BYTES", default_value_t = 48 * 1024 * 1024)]
    pub max_decoded_image_bytes: u64,
    /// Bytes of request bodies all unfinished requests may hold together (uploads in progress
    /// and those waiting for a worker); past it, requests get 503 `overloaded`.
    #[arg(long, env = "MAX_PENDING_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_pending_body_bytes: usize,
    /// Verifications per minute per client IP address; 0 turns the limit off.
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE", default_value_t = 30)]
    pub rate_limit_per_minute: u32,
    /// `active`: only a head-turn challenge's burst makes a token (POST /v1/challenge first).
    /// `photo`: one still image does too (for development only: anyone can upload anyone's
    /// photo). Bursts are accepted in both modes.
    #[arg(long, env = "VERIFY_MODE", default_value = "active", value_parser = parse_mode)]
    pub verify_mode: VerifyMode,
    /// The steps every challenge gives, instead of a random order: for tests that must know
    /// them before a camera file is made. Only code sets it (no flag, no variable), so no
    /// configuration of a released binary can make challenges predictable.
    #[arg(skip)]
    pub pinned_steps: Option<Vec<Step>>,
    /// Largest accepted frame of a burst, in bytes.
    #[arg(long, env = "MAX_FRAME_BYTES", default_value_t = 1024 * 1024)]
    pub max_frame_bytes: usize,
    /// Tokens per client address per UTC day (an IPv6 /64 is one address); past it, 429 with
    /// Retry-After until midnight. 0 turns the limit off.
    #[arg(long, env = "VERIFICATIONS_PER_IP_PER_DAY", default_value_t = 20)]
    pub verifications_per_ip_per_day: u32,
    /// Redis shared by several verifiers behind one address, for the challenges and pairings
    /// they hand out (each is answered wherever it lands). Unset: this process's memory.
    #[arg(long, env = "VERIFIER_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Origins allowed to call the API from a browser (CORS), comma-separated.
    #[arg(long, env = "CLIENT_ORIGINS", value_delimiter = ',')]
    pub client_origins: Vec<String>,
    /// The web page's address (the rendezvous serves it), where a phone verifies for a
    /// terminal (`anonchat verify` prints it with a pairing code). Default: the first of
    /// CLIENT_ORIGINS; with neither, pairing is off.
    #[arg(long, env = "PAGE_URL")]
    pub page_url: Option<String>,
    /// Inference workers (default: one per core).
    #[arg(long, env = "VERIFIER_WORKERS")]
    pub workers: Option<usize>,
    /// Requests that may wait for a worker before new ones get 503 `overloaded`
    /// (default: 4 per worker).
    #[arg(long, env = "VERIFIER_QUEUE")]
    pub queue: Option<usize>,
    #[command(flatten)]
    pub http: HttpLimits,
}

fn parse_mode(s: &str) -> Result<VerifyMode, String> {
    s.parse()
}

impl ServiceConfig {
    /// The defaults (never the environment's settings), with models from `models_dir`,
    /// listening on a free loopback port.
    pub fn local(models_dir: PathBuf) -> Self {
        let mut c: ServiceConfig = anonchat_serve::defaults();
        c.addr = "127.0.0.1:0".parse().expect("a valid address");
        c.models_dir = models_dir;
        c
    }

    fn policy(&self) -> Policy {
        Policy {
            min_face_px: self.min_face_px,
            liveness_threshold: self.liveness_threshold,
            liveness_fusion: self.liveness_fusion,
            limits: ImageLimits {
                max_bytes: self.max_image_bytes,
                max_pixels: self.max_image_pixels,
                max_decoded_bytes: self.max_decoded_image_bytes,
                ..ImageLimits::default()
            },
            challenges: true,
            ..Policy::default()
        }
    }
}

struct AppState {
    pool: Pool,
    signer: SigningKey,
    jwks: Jwks,
    config: ServiceConfig,
    metrics: Metrics,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    bodies: request::BodyBudget,
    /// Open challenges and pairings.
    store: store::Store,
    daily: std::sync::Mutex<daily::Daily>,
}

/// A running service.
pub struct Running {
    pub addr: SocketAddr,
    pub jwks: Jwks,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, and waits.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.task.await.context("server task")??;
        Ok(())
    }

    /// Waits until the server stops by itself (after `until` resolves).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task")??;
        Ok(())
    }
}

/// Reads the signing key (or makes one), loads the models and starts serving. Resolves once the
/// socket is bound and every worker's models are loaded.
pub async fn start(config: ServiceConfig) -> anyhow::Result<Running> {
    start_until(config, std::future::pending()).await
}

/// As [`start`], and stops gracefully when `until` resolves (for example on a signal).
pub async fn start_until(
    config: ServiceConfig,
    until: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let signer = match &config.signing_key_file {
        Some(path) => read_key(path)?,
        None => {
            tracing::warn!(
                "no VERIFIER_SIGNING_KEY_FILE: signing with a random key for this process only"
            );
            SigningKey::generate()
        }
    };
    let mut jwks = Jwks {
        keys: vec![signer.public_jwk()],
    };
    for path in &config.previous_key_files {
        jwks.keys.push(read_key(path)?.public_jwk());
    }
    let workers = config
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let queue = config.queue.unwrap_or(4 * workers);
    let (dir, policy) = (config.models_dir.clone(), config.policy());
    let pool = tokio::task::spawn_blocking(move || {
        Pool::start(workers, queue, || Pipeline::load(&dir, policy.clone()))
    })
    .await
    .context("loading the models")?
    .with_context(|| format!("loading the models from {}", config.models_dir.display()))?;
    let limiter = NonZeroU32::new(config.rate_limit_per_minute)
        .map(|n| RateLimiter::keyed(Quota::per_minute(n)));
    let tls = config.http.tls().context("TLS_CERT_FILE, TLS_KEY_FILE")?;
    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;
    let bodies = request::BodyBudget::new(config.max_pending_body_bytes);
    let config_daily = config.verifications_per_ip_per_day;
    let (challenge_ttl, pair_ttl) = (
        Duration::from_secs(CHALLENGE_TTL_SECONDS as u64),
        Duration::from_secs(PAIR_TTL_SECONDS as u64),
    );
    let store = match &config.redis_url {
        Some(url) => store::Store::redis(url, challenge_ttl, pair_ttl).await?,
        None => store::Store::memory(challenge_ttl, pair_ttl, MAX_OPEN_CHALLENGES),
    };
    let state = Arc::new(AppState {
        pool,
        signer,
        jwks: jwks.clone(),
        config,
        metrics: Metrics::new(),
        limiter,
        bodies,
        store,
        daily: std::sync::Mutex::new(daily::Daily::new(config_daily)),
    });
    tokio::spawn(forget_idle_clients(Arc::downgrade(&state)));
    let http = state.config.http.clone();
    let state_mode = state.config.verify_mode;
    let state_https = tls.is_some();
    let app = router(state);
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async move {
            tokio::select! {
                _ = stop => {}
                _ = until => {}
            }
        };
        anonchat_serve::serve(listener, app, &http, Options::default(), tls, stop).await
    });
    if state_mode == VerifyMode::Photo {
        tracing::warn!(
            "VERIFY_MODE=photo: a single uploaded photo makes a token, so anyone's photo will do; use active outside development"
        );
    }
    tracing::info!(%addr, workers, queue, https = state_https, "verifier listening");
    Ok(Running {
        addr,
        jwks,
        shutdown,
        task,
    })
}

fn read_key(path: &PathBuf) -> anyhow::Result<SigningKey> {
    let pem = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading the signing key {}", path.display()))?,
    );
    SigningKey::from_pkcs8_pem(&pem).with_context(|| format!("signing key {}", path.display()))
}

/// Drops rate-limit state of clients not seen for a while, so the map stays small.
async fn forget_idle_clients(state: std::sync::Weak<AppState>) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let Some(state) = state.upgrade() else { return };
        if let Some(l) = &state.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

fn router(state: Arc<AppState>) -> Router {
    let cors = cors(&state.config.client_origins);
    let app = Router::new()
        .route("/v1/verify", post(verify))
        .route("/v1/challenge", post(challenge))
        .route("/v1/info", get(info))
        .route("/v1/pair", post(pair::open))
        .route("/v1/pair/{code}", get(pair::info))
        .route("/v1/pair/{code}/token", post(pair::collect))
        .route("/v1/pair/{code}/cancel", post(pair::cancel))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .with_state(state);
    match cors {
        Some(cors) => app.layer(cors),
        None => app,
    }
}

fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter(|o| !o.is_empty())
        .filter_map(|o| o.parse().ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE])
            .max_age(Duration::from_secs(600)),
    )
}

async fn verify(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = verify_inner(
        &state,
        state.config.http.client_ip(peer.ip(), &headers),
        &headers,
        body,
    )
    .await;
    respond(&state, "verify", "verified", result)
}

/// The answer to request `name`, counted in the metrics and logged by its outcome (`ok` when
/// it succeeded, else the error's code).
fn respond(
    state: &AppState,
    name: &'static str,
    ok: &'static str,
    result: Result<impl serde::Serialize, VerifyError>,
) -> Response {
    let outcome = match &result {
        Ok(_) => ok,
        Err(e) => e.code(),
    };
    state.metrics.outcome(outcome);
    tracing::info!(outcome, "{name}");
    match result {
        Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
        Err(e) => error_response(&e),
    }
}

/// A small JSON body (at most 1 KiB) of type `T`; `shape` says what to send instead.
async fn read_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    shape: &str,
) -> Result<T, VerifyError> {
    let body = request::read_body(body, content_length(headers), 1024, &state.bodies).await?;
    serde_json::from_slice(&body.bytes).map_err(|e| {
        VerifyError::BadRequest(format!(
            "send {shape}: {}",
            e.to_string().chars().take(200).collect::<String>()
        ))
    })
}

/// A device key as the API spells it (base64url, 32 bytes).
fn public_key(text: &str) -> Result<ed25519_dalek::VerifyingKey, VerifyError> {
    anonchat_protocol::token::public_key_from_base64url(text.trim())
        .map_err(|e| VerifyError::BadRequest(format!("public_key: {e}")))
}

/// The body's declared length, if any.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Counts a request against its IP address' rate limit (an IPv6 /64 is one address).
fn rate_limit(state: &AppState, ip: IpAddr) -> Result<(), VerifyError> {
    if let Some(limiter) = &state.limiter
        && let Err(not_until) = limiter.check_key(&daily::client_key(ip))
    {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        return Err(VerifyError::RateLimited {
            retry_after: wait.as_secs().max(1),
        });
    }
    Ok(())
}

/// What a client needs before it verifies: whether a still photo will do.
async fn info(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(VerifierInfo {
        verify_mode: state.config.verify_mode,
    })
    .into_response()
}

/// `POST /v1/challenge`: random head-turn steps for one device key, to answer within a minute.
async fn challenge(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = challenge_inner(
        &state,
        state.config.http.client_ip(peer.ip(), &headers),
        &headers,
        body,
    )
    .await;
    respond(&state, "challenge", "challenge", result)
}

async fn challenge_inner(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Challenge, VerifyError> {
    rate_limit(state, ip)?;
    let asked: ChallengeRequest =
        read_json(state, headers, body, "{\"public_key\": \"<base64url>\"}").await?;
    let key = public_key(&asked.public_key)?;
    let steps = challenges::steps(
        state.config.pinned_steps.as_deref(),
        &mut rand::thread_rng(),
    );
    let challenge_id = state
        .store
        .issue_challenge(key.to_bytes(), steps.clone())
        .await
        .map_err(|_| VerifyError::Overloaded)?;
    Ok(Challenge {
        challenge_id,
        steps,
        expires_at: unix_now() + CHALLENGE_TTL_SECONDS,
        min_frames: MIN_FRAMES,
        max_frames: MAX_FRAMES,
    })
}

async fn verify_inner(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<serde_json::Value, VerifyError> {
    rate_limit(state, ip)?;
    let mut todays = TodaysToken::take(state, ip)?;
    let max_image = state.config.max_image_bytes;
    let max_frame = state.config.max_frame_bytes;
    let content_length = content_length(headers);
    // Room for base64's 4/3 (or a burst's frames) and the other fields.
    let limit = (max_image / 3 * 4).max(MAX_FRAMES * max_frame) + 64 * 1024;
    let body = request::read_body(body, content_length, limit, &state.bodies).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // The body's share of the budget is held until the answer: queued images count too.
    let request::Body {
        bytes,
        share: _share,
    } = body;
    let req = request::parse(content_type, bytes, max_image, max_frame).await?;
    // A phone verifying for a terminal: the code must be open and bound to the key checked.
    let pairing = match &req.pair_code {
        Some(code) => {
            let code = pair::code_of(code)?;
            let waiting = state.store.pairing(&code).await?;
            if waiting.key != req.public_key {
                return Err(VerifyError::PairUnknown);
            }
            Some((code, waiting.undisclosed))
        }
        None => None,
    };
    let mode = match pairing {
        Some((_, true)) => crate::pipeline::GenderMode::Undisclosed,
        _ => req.mode,
    };
    let work = match req.evidence {
        request::Evidence::Photo(_) if state.config.verify_mode == VerifyMode::Active => {
            return Err(VerifyError::ChallengeRequired);
        }
        request::Evidence::Photo(image) => Work::Photo(image),
        request::Evidence::Burst {
            challenge_id,
            frames,
            frame_ms,
        } => {
            let steps = state
                .store
                .take_challenge(&challenge_id, &req.public_key.to_bytes())
                .await
                .map_err(|e| match e {
                    ChallengeError::Expired => VerifyError::ChallengeExpired,
                    ChallengeError::Unknown | ChallengeError::Full => VerifyError::ChallengeUnknown,
                    ChallengeError::Unavailable => VerifyError::Overloaded,
                })?;
            Work::Burst {
                frames,
                frame_ms,
                steps,
            }
        }
    };
    let reply = state.pool.try_submit(work, mode)?;
    let report = reply.await.map_err(|_| VerifyError::Internal)?;
    state.metrics.timings(&report.timings);
    let gender = report.outcome?;
    let now = unix_now();
    let (token, claims) = state
        .signer
        .issue(
            &state.config.issuer,
            &req.public_key,
            gender,
            now,
            state.config.token_ttl_seconds,
        )
        .map_err(|_| VerifyError::Internal)?;
    let answer = json!({
        "verified": true,
        "token": token,
        "gender": gender.as_str(),
        "expires_at": claims.exp,
        "peer_id": claims.sub,
    });
    let Some((code, _)) = pairing else {
        todays.used = true;
        return Ok(answer);
    };
    // The token is the terminal's: the phone learns only that the check passed.
    state
        .store
        .deposit(&code, &req.public_key, Arc::new(answer))
        .await?;
    todays.used = true;
    Ok(json!({
        "verified": true,
        "paired": true,
        "gender": gender.as_str(),
        "expires_at": claims.exp,
        "peer_id": claims.sub,
    }))
}

/// One of the address' tokens for today, taken before the work starts and given back when the
/// request ends without a token (refused, failed, or dropped by a client that went away).
struct TodaysToken<'a> {
    daily: &'a std::sync::Mutex<daily::Daily>,
    ip: IpAddr,
    at: i64,
    used: bool,
}

impl<'a> TodaysToken<'a> {
    fn take(state: &'a AppState, ip: IpAddr) -> Result<Self, VerifyError> {
        let at = unix_now();
        state
            .daily
            .lock()
            .map_err(|_| VerifyError::Internal)?
            .take(ip, at)
            .map_err(|retry_after| VerifyError::RateLimited { retry_after })?;
        Ok(TodaysToken {
            daily: &state.daily,
            ip,
            at,
            used: false,
        })
    }
}

impl Drop for TodaysToken<'_> {
    fn drop(&mut self) {
        if !self.used
            && let Ok(mut daily) = self.daily.lock()
        {
            daily.give_back(self.ip, self.at);
        }
    }
}

/// The JSON error body, with Retry-After where waiting helps.
pub fn error_response(e: &VerifyError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"verified": false, "error": {"code": e.code(), "message": e.to_string()}});
    let mut response = (status, axum::Json(body)).into_response();
    let retry = match e {
        VerifyError::RateLimited { retry_after } => Some(*retry_after),
        VerifyError::Overloaded => Some(1),
        _ => None,
    };
    if let Some(secs) = retry {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(&state.jwks),
    )
        .into_response()
}

/// Whether the verifier can take requests, or why not: /readyz answers it, and the
/// `verifier_ready` gauge reports it to monitoring.
async fn readiness(state: &AppState) -> Result<(), &'static str> {
    if state.pool.alive() == 0 {
        Err("no inference worker is running")
    } else if !state.store.ready().await {
        Err("VERIFIER_REDIS_URL does not answer")
    } else {
        Ok(())
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match readiness(&state).await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let ready = readiness(&state).await.is_ok();
    state.metrics.scraped(ready, state.pool.alive());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}
