//! One WebSocket connection: the challenge-response handshake, then a small state machine —
//! idle, queued, matched — driven by the client's frames and by envelopes routed to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anonchat_protocol::rendezvous::{
    ClientMessage, ErrorCode, HELLO_CONTEXT, PROTOCOL_VERSION, PartnerInfo, Profile, Role,
    ServerMessage, Transport, Want, parse_client,
};
use anonchat_protocol::signaling::SignalBudget;
use anonchat_protocol::token::{Gender, TokenError, unix_now};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;

use super::metrics::Metrics;
use super::route::Envelope;
use super::{Shared, random_id};
use crate::matcher;
use crate::secrets::Receipt;
use crate::store::{Admission, JoinOutcome, Rematch, Store, Ticket};

/// How often the server pings an idle socket.
const PING_EVERY: Duration = Duration::from_secs(20);
/// Close codes: policy violation (refused handshake), going away (shutdown).
const CLOSE_POLICY: u16 = 1008;
const CLOSE_GOING_AWAY: u16 = 1001;

/// Who is on the other end, once the handshake succeeded.
struct Identity {
    pseudonym: String,
    gender: Gender,
    /// When the token lapses (Unix seconds): the session ends then.
    expires_at: i64,
}

struct Match {
    id: String,
    partner_session: String,
    partner_instance: String,
    started: Instant,
    budget: SignalBudget,
}

enum Phase {
    Idle,
    Queued,
    Matched(Box<Match>),
}

struct Conn<S: Store> {
    shared: Arc<Shared<S>>,
    socket: WebSocket,
    session: String,
    me: Identity,
    phase: Phase,
    frames: DefaultDirectRateLimiter,
    /// While queued: the ticket, and when to look again at those who queued after it.
    waiting: Option<Waiting>,
}

struct Waiting {
    ticket: Ticket,
    next: Instant,
    every: Duration,
    /// Looks taken so far: each one looks at the next slice of the queue behind this ticket.
    looks: usize,
}

/// A waiting ticket looks again at those behind it after MATCH_RESCAN_AFTER_SECONDS, then
/// twice as long each time, at most every minute: a bounded scan never leaves two compatible
/// people waiting for each other for good, and a long queue does not spend Redis on it.
const LOOK_AGAIN_MAX: Duration = Duration::from_secs(60);

/// `d` to `2d`, at random: people who queued together must not all look again at once (the
/// bench's 5,000 waiting users did, and joins' p99 went from 1.4 to 4 ms for that second).
fn jitter(d: Duration) -> Duration {
    d + d.mul_f64(rand::random::<f64>())
}

/// Runs a connection to its end.
pub async fn run<S: Store>(shared: Arc<Shared<S>>, mut socket: WebSocket) {
    let (me, daily_remaining) = match handshake(&shared, &mut socket).await {
        Ok(ok) => ok,
        Err(refusal) => {
            if let ServerMessage::Error { code, .. } = &refusal {
                Metrics::label(&shared.metrics.errors, code.as_str());
            }
            let _ = socket.send(Message::Text(refusal.to_json().into())).await;
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: CLOSE_POLICY,
                    reason: "refused".into(),
                })))
                .await;
            return;
        }
    };
    let session = random_id(16);
    let (tx, rx) = mpsc::channel(64);
    shared.hub.insert(session.clone(), tx);
    // One live session per device: a newer one replaces this device's older one, wherever it
    // is, so that many sockets of one token cannot hold many places.
    match shared
        .store
        .claim(&me.pseudonym, &session, &shared.instance)
        .await
    {
        Ok(Some(old)) => {
            let end = Envelope::Ended {
                to: old.session,
                code: ErrorCode::Replaced,
                message: "this device connected again elsewhere, so this connection was closed"
                    .into(),
                retry_after: None,
            };
            shared.route(&old.instance, end).await;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not record the device's live session"),
    }
    shared.metrics.connections.inc();
    let fps =
        std::num::NonZeroU32::new(shared.config.frames_per_second.max(1)).expect("at least 1");
    let frames = RateLimiter::direct(
        Quota::per_second(fps)
            .allow_burst(fps.saturating_mul(std::num::NonZeroU32::new(2).expect("2"))),
    );
    let mut conn = Conn {
        shared: shared.clone(),
        socket,
        session,
        me,
        phase: Phase::Idle,
        frames,
        waiting: None,
    };
    let welcome = ServerMessage::Welcome {
        session: conn.session.clone(),
        daily_remaining,
        ice_servers: shared.ice_servers(),
        protocol: PROTOCOL_VERSION,
    };
    if conn.send(welcome).await {
        conn.serve(rx).await;
    }
    conn.finish().await;
    shared.hub.remove(&conn.session);
    let _ = shared
        .store
        .release(&conn.me.pseudonym, &conn.session)
        .await;
    shared.metrics.connections.dec();
}

/// Challenge, hello, token and signature checks, ban check.
async fn handshake<S: Store>(
    shared: &Shared<S>,
    socket: &mut WebSocket,
) -> Result<(Identity, u32), ServerMessage> {
    let nonce = random_id(32);
    let challenge = ServerMessage::Challenge {
        nonce: nonce.clone(),
    };
    socket
        .send(Message::Text(challenge.to_json().into()))
        .await
        .map_err(|_| ServerMessage::error(ErrorCode::Internal, "send failed"))?;
    let timeout = Duration::from_secs(shared.config.hello_timeout_seconds);
    let frame = match tokio::time::timeout(timeout, next_text(socket)).await {
        Err(_) => {
            return Err(ServerMessage::error(
                ErrorCode::Timeout,
                "no hello within the time allowed",
            ));
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(frame)) => frame,
    };
    let (token, signature) = match parse_client(&frame) {
        Ok(ClientMessage::Hello { token, signature }) => (token, signature),
        Ok(_) => {
            return Err(ServerMessage::error(
                ErrorCode::NotAuthenticated,
                "the first message must be hello",
            ));
        }
        Err(e) => return Err(ServerMessage::error(ErrorCode::BadMessage, e.to_string())),
    };
    let claims = shared
        .keys
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .verify(&token)
        .map_err(|e| match e {
            TokenError::Expired => ServerMessage::error(
                ErrorCode::TokenExpired,
                "the verification token has expired; verify again",
            ),
            other => ServerMessage::error(ErrorCode::InvalidToken, other.to_string()),
        })?;
    let bad_signature = || {
        ServerMessage::error(
            ErrorCode::BadSignature,
            "the signature does not match the token's device key",
        )
    };
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature.trim_end_matches('='))
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad_signature)?;
    let device = claims
        .device_key()
        .map_err(|e| ServerMessage::error(ErrorCode::InvalidToken, e.to_string()))?;
    let signed = format!("{HELLO_CONTEXT}{nonce}");
    device
        .verify_strict(
            signed.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .map_err(|_| bad_signature())?;
    let pseudonym = shared.secrets.pseudonym(&claims.sub);
    match shared.store.admit(&pseudonym, unix_now()).await {
        Ok(Admission::Welcome { daily_remaining }) => Ok((
            Identity {
                pseudonym,
                gender: claims.gender,
                expires_at: claims.exp,
            },
            daily_remaining,
        )),
        Ok(Admission::Banned { retry_after }) => Err(ServerMessage::Error {
            code: ErrorCode::Banned,
            message: "this device is banned for now".into(),
            retry_after: Some(retry_after),
            field: None,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "store unavailable during handshake");
            Err(ServerMessage::error(
                ErrorCode::Internal,
                "try again shortly",
            ))
        }
    }
}

/// The next text frame, skipping pings; a binary frame or a close ends the handshake.
async fn next_text(socket: &mut WebSocket) -> Result<String, ServerMessage> {
    loop {
        match socket.recv().await {
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                return Err(ServerMessage::error(
                    ErrorCode::BadMessage,
                    "binary frames are not part of the protocol",
                ));
            }
            _ => {
                return Err(ServerMessage::error(
                    ErrorCode::BadMessage,
                    "the connection closed during the handshake",
                ));
            }
        }
    }
}

impl<S: Store> Conn<S> {
    /// Sends a frame; false if the socket is gone.
    async fn send(&mut self, msg: ServerMessage) -> bool {
        self.socket
            .send(Message::Text(msg.to_json().into()))
            .await
            .is_ok()
    }

    /// Ends the connection: says why in an `error` frame, then closes with `close`; false, as
    /// the serve loop expects of a connection that is over.
    async fn end(
        &mut self,
        code: ErrorCode,
        message: String,
        retry_after: Option<u64>,
        close: u16,
    ) -> bool {
        Metrics::label(&self.shared.metrics.errors, code.as_str());
        let why = ServerMessage::Error {
            code,
            message,
            retry_after,
            field: None,
        };
        self.send(why).await;
        let frame = CloseFrame {
            code: close,
            reason: code.as_str().into(),
        };
        let _ = self.socket.send(Message::Close(Some(frame))).await;
        false
    }

    async fn error(&mut self, code: ErrorCode, message: impl Into<String>) -> bool {
        Metrics::label(&self.shared.metrics.errors, code.as_str());
        self.send(ServerMessage::error(code, message)).await
    }

    async fn serve(&mut self, mut rx: mpsc::Receiver<Box<Envelope>>) {
        let idle = Duration::from_secs(self.shared.config.idle_timeout_seconds.max(1));
        let mut ping = tokio::time::interval(PING_EVERY.min(idle / 2));
        let mut shutdown = self.shared.shutdown.clone();
        let mut last_seen = Instant::now();
        let lapse =
            Duration::from_secs(u64::try_from(self.me.expires_at - unix_now()).unwrap_or(0));
        let lapses = tokio::time::sleep(lapse);
        tokio::pin!(lapses);
        loop {
            let look_again = self.waiting.as_ref().map(|w| w.next);
            let alive = tokio::select! {
                () = async {
                    match look_again {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => self.look_again().await,
                () = &mut lapses => {
                    let why = "your verification has expired; verify again";
                    self.end(ErrorCode::TokenExpired, why.into(), None, CLOSE_POLICY).await
                }
                frame = self.socket.recv() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        last_seen = Instant::now();
                        self.on_text(&text).await
                    }
                    Some(Ok(Message::Binary(_))) => {
                        last_seen = Instant::now();
                        self.error(ErrorCode::BadMessage, "binary frames are not part of the protocol").await
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        last_seen = Instant::now();
                        true
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => false,
                },
                Some(envelope) = rx.recv() => self.on_envelope(*envelope).await,
                _ = ping.tick() => {
                    if last_seen.elapsed() > idle {
                        self.error(ErrorCode::Timeout, "no frame for too long").await;
                        false
                    } else {
                        self.socket.send(Message::Ping(Default::default())).await.is_ok()
                    }
                }
                _ = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                    let why = "the server is restarting; reconnect in a moment";
                    self.end(ErrorCode::ShuttingDown, why.into(), Some(1), CLOSE_GOING_AWAY).await
                }
            };
            if !alive {
                return;
            }
        }
    }

    /// Leaves whatever the connection was in: out of the queue, or out of the match.
    async fn finish(&mut self) {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Queued => {
                let _ = self.shared.store.cancel(&self.session).await;
            }
            Phase::Matched(m) => self.tell_partner_left(&m).await,
            Phase::Idle => {}
        }
    }

    async fn tell_partner_left(&mut self, m: &Match) {
        let envelope = Envelope::PartnerLeft {
            to: m.partner_session.clone(),
            match_id: m.id.clone(),
        };
        self.shared.route(&m.partner_instance, envelope).await;
    }

    async fn on_text(&mut self, text: &str) -> bool {
        if self.frames.check().is_err() {
            return self
                .error(ErrorCode::RateLimited, "too many frames; slow down")
                .await;
        }
        let msg = match parse_client(text) {
            Ok(m) => m,
            Err(e) => return self.error(ErrorCode::BadMessage, e.to_string()).await,
        };
        match msg {
            ClientMessage::Hello { .. } => {
                self.error(ErrorCode::BadMessage, "already authenticated")
                    .await
            }
            ClientMessage::Join {
                profile,
                want,
                interests,
                transports,
            } => self.join(profile, want, interests, transports).await,
            ClientMessage::Signal { match_id, data } => self.signal(match_id, data).await,
            ClientMessage::Leave { match_id } => match &self.phase {
                Phase::Matched(m) if m.id == match_id => {
                    if let Phase::Matched(m) = std::mem::replace(&mut self.phase, Phase::Idle) {
                        self.tell_partner_left(&m).await;
                    }
                    true
                }
                _ => self.error(ErrorCode::NotInMatch, "no such match").await,
            },
            ClientMessage::Cancel {} => match self.phase {
                Phase::Matched(_) => {
                    self.error(
                        ErrorCode::NotInMatch,
                        "you are in a match: leave it instead",
                    )
                    .await
                }
                _ => {
                    if matches!(self.phase, Phase::Queued) {
                        let _ = self.shared.store.cancel(&self.session).await;
                    }
                    // A match racing with the cancel finds the session idle and is bounced.
                    self.phase = Phase::Idle;
                    self.send(ServerMessage::Cancelled {}).await
                }
            },
            ClientMessage::Report { receipt, reason: _ } => self.report(&receipt).await,
            ClientMessage::Block { receipt } => self.block(&receipt).await,
        }
    }

    async fn join(
        &mut self,
        profile: Profile,
        want: Want,
        interests: Vec<String>,
        transports: Vec<Transport>,
    ) -> bool {
        match &self.phase {
            Phase::Queued => {
                return self
                    .error(ErrorCode::AlreadyQueued, "already waiting for a match")
                    .await;
            }
            Phase::Matched(_) => {
                // Joining again from a match is "next": the partner is told.
                if let Phase::Matched(m) = std::mem::replace(&mut self.phase, Phase::Idle) {
                    self.tell_partner_left(&m).await;
                }
            }
            Phase::Idle => {}
        }
        let profile = match crate::profile::validate(&profile) {
            Ok(p) => p,
            Err(e) => {
                Metrics::label(
                    &self.shared.metrics.errors,
                    ErrorCode::InvalidProfile.as_str(),
                );
                let msg = ServerMessage::Error {
                    code: ErrorCode::InvalidProfile,
                    message: e.to_string(),
                    retry_after: None,
                    field: Some(e.field.into()),
                };
                return self.send(msg).await;
            }
        };
        if self.me.gender == Gender::Undisclosed && want != Want::Any {
            let msg = ServerMessage::Error {
                code: ErrorCode::InvalidProfile,
                message: "with an undisclosed gender, you can only look for anyone".into(),
                retry_after: None,
                field: Some("want".into()),
            };
            return self.send(msg).await;
        }
        let mut seen = std::collections::HashSet::new();
        let interests: Vec<String> = interests
            .iter()
            .map(|i| matcher::normalise(i))
            .filter(|i| !i.is_empty() && seen.insert(i.clone()))
            .collect();
        let ticket = Ticket {
            session: self.session.clone(),
            instance: self.shared.instance.clone(),
            pseudonym: self.me.pseudonym.clone(),
            gender: self.me.gender,
            want,
            interests,
            nickname: profile.nickname,
            bio: profile.bio,
            transports,
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        match self.shared.store.join(&ticket, now_ms).await {
            Ok(JoinOutcome::Queued { waiting }) => {
                self.phase = Phase::Queued;
                self.waiting = Some(Waiting {
                    ticket,
                    next: Instant::now() + jitter(self.look_again_after()),
                    every: self.look_again_after(),
                    looks: 0,
                });
                self.send(ServerMessage::Queued { waiting }).await
            }
            Ok(JoinOutcome::Matched {
                partner,
                common_interests,
            }) => self.make_match(ticket, partner, common_interests).await,
            Ok(JoinOutcome::Banned { retry_after }) => {
                let msg = ServerMessage::Error {
                    code: ErrorCode::Banned,
                    message: "this device is banned for now".into(),
                    retry_after: Some(retry_after),
                    field: None,
                };
                self.send(msg).await;
                false
            }
            Ok(JoinOutcome::DailyLimit) => {
                self.error(
                    ErrorCode::DailyLimit,
                    "today's matches are used up; come back tomorrow",
                )
                .await
            }
            Err(e) => {
                tracing::warn!(error = %e, "join failed");
                self.error(
                    ErrorCode::Internal,
                    "the matchmaker is unavailable; try again",
                )
                .await
            }
        }
    }

    fn look_again_after(&self) -> Duration {
        Duration::from_secs(self.shared.config.match_rescan_after_seconds.max(1))
    }

    /// A queued session looks again for a partner among those who joined after it.
    async fn look_again(&mut self) -> bool {
        let Some(mut waiting) = self.waiting.take() else {
            return true;
        };
        if !matches!(self.phase, Phase::Queued) {
            return true;
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let look = waiting.looks;
        waiting.looks += 1;
        match self
            .shared
            .store
            .rematch(&waiting.ticket, look, now_ms)
            .await
        {
            Ok(Rematch::Matched {
                partner,
                common_interests,
            }) => {
                self.phase = Phase::Idle;
                self.make_match(waiting.ticket, partner, common_interests)
                    .await
            }
            // Matched by someone else (the envelope is on its way), or cancelled.
            Ok(Rematch::Gone) => true,
            Ok(Rematch::StillWaiting) | Err(_) => {
                waiting.every = (waiting.every * 2).min(LOOK_AGAIN_MAX);
                waiting.next = Instant::now() + jitter(waiting.every);
                self.waiting = Some(waiting);
                true
            }
        }
    }

    /// This side found `partner` waiting: both get `matched`, each with a receipt naming the
    /// other that only the server can open. The one who waited makes the offer.
    async fn make_match(&mut self, mine: Ticket, partner: Ticket, common: Vec<String>) -> bool {
        let match_id = random_id(16);
        let now = unix_now();
        let seal = |holder: &str, other: &str| {
            self.shared.secrets.seal(&Receipt {
                match_id: match_id.clone(),
                holder: holder.into(),
                partner: other.into(),
                issued: now,
            })
        };
        let (my_receipt, their_receipt) = (
            seal(&mine.pseudonym, &partner.pseudonym),
            seal(&partner.pseudonym, &mine.pseudonym),
        );
        let both_libp2p = mine.transports.contains(&Transport::Libp2p)
            && partner.transports.contains(&Transport::Libp2p);
        let transport = if both_libp2p {
            Transport::Libp2p
        } else {
            Transport::Webrtc
        };
        let info = |t: &Ticket| PartnerInfo {
            nickname: t.nickname.clone(),
            bio: t.bio.clone(),
            gender: t.gender.as_str().into(),
            common_interests: common.clone(),
        };
        let to_partner = Envelope::Matched {
            to: partner.session.clone(),
            match_id: match_id.clone(),
            role: Role::Offerer,
            partner: info(&mine),
            receipt: their_receipt,
            transport,
            partner_session: self.session.clone(),
            partner_instance: self.shared.instance.clone(),
        };
        let to_me = ServerMessage::Matched {
            match_id: match_id.clone(),
            role: Role::Answerer,
            partner: info(&partner),
            receipt: my_receipt,
            transport,
            ice_servers: self.shared.ice_servers(),
        };
        self.phase = Phase::Matched(Box::new(Match {
            id: match_id,
            partner_session: partner.session.clone(),
            partner_instance: partner.instance.clone(),
            started: Instant::now(),
            budget: SignalBudget::default(),
        }));
        self.shared.metrics.matches.inc();
        let sent = self.send(to_me).await;
        self.shared.route(&partner.instance, to_partner).await;
        sent
    }

    async fn on_envelope(&mut self, envelope: Envelope) -> bool {
        match envelope {
            Envelope::Matched {
                match_id,
                role,
                partner,
                receipt,
                transport,
                partner_session,
                partner_instance,
                ..
            } => {
                if !matches!(self.phase, Phase::Queued) {
                    // Cancelled or gone meanwhile: the other side must not wait for us.
                    let back = Envelope::PartnerLeft {
                        to: partner_session,
                        match_id,
                    };
                    self.shared.route(&partner_instance, back).await;
                    return true;
                }
                self.phase = Phase::Matched(Box::new(Match {
                    id: match_id.clone(),
                    partner_session,
                    partner_instance,
                    started: Instant::now(),
                    budget: SignalBudget::default(),
                }));
                self.send(ServerMessage::Matched {
                    match_id,
                    role,
                    partner,
                    receipt,
                    transport,
                    ice_servers: self.shared.ice_servers(),
                })
                .await
            }
            Envelope::Signal { match_id, data, .. } => match &self.phase {
                Phase::Matched(m) if m.id == match_id => {
                    self.send(ServerMessage::Signal { match_id, data }).await
                }
                _ => true,
            },
            Envelope::PartnerLeft { match_id, .. } => match &self.phase {
                Phase::Matched(m) if m.id == match_id => {
                    self.phase = Phase::Idle;
                    self.send(ServerMessage::PartnerLeft { match_id }).await
                }
                _ => true,
            },
            Envelope::Ended {
                code,
                message,
                retry_after,
                ..
            } => self.end(code, message, retry_after, CLOSE_POLICY).await,
        }
    }

    /// Relays a payload to the partner only if it is signaling, within the budget and window.
    async fn signal(&mut self, match_id: String, data: serde_json::Value) -> bool {
        let limits = self.shared.config.signal_limits();
        let Phase::Matched(m) = &mut self.phase else {
            return self.error(ErrorCode::NotInMatch, "not in a match").await;
        };
        if m.id != match_id {
            return self
                .error(ErrorCode::NotInMatch, "not your current match")
                .await;
        }
        match m.budget.admit(&data, m.started.elapsed(), &limits) {
            Ok(signal) => {
                let envelope = Envelope::Signal {
                    to: m.partner_session.clone(),
                    match_id,
                    // Only what was validated travels on, re-encoded.
                    data: serde_json::to_value(signal).expect("signals serialize"),
                };
                let instance = m.partner_instance.clone();
                self.shared.metrics.signals_forwarded.inc();
                self.shared.route(&instance, envelope).await;
                true
            }
            Err(refusal) => {
                Metrics::label(&self.shared.metrics.not_signaling, refusal.label());
                self.error(ErrorCode::NotSignaling, refusal.to_string())
                    .await
            }
        }
    }

    fn open(&self, receipt: &str) -> Result<Receipt, String> {
        let window = self.shared.config.report_window_seconds;
        self.shared
            .secrets
            .open(receipt, &self.me.pseudonym, unix_now(), window)
            .map_err(|e| e.to_string())
    }

    async fn report(&mut self, receipt: &str) -> bool {
        let receipt = match self.open(receipt) {
            Ok(r) => r,
            Err(e) => return self.error(ErrorCode::InvalidReceipt, e).await,
        };
        match self
            .shared
            .store
            .report(&self.me.pseudonym, &receipt.partner)
            .await
        {
            Ok(outcome) => {
                self.shared.metrics.reports.inc();
                if outcome.banned {
                    self.shared.metrics.bans.inc();
                    self.end_banned_session(&receipt.partner).await;
                }
                self.send(ServerMessage::Reported {}).await
            }
            Err(_) => {
                self.error(
                    ErrorCode::Internal,
                    "could not record the report; try again",
                )
                .await
            }
        }
    }

    /// A device just banned loses its open session (queued or matched) at once.
    async fn end_banned_session(&mut self, pseudonym: &str) {
        let Ok(Some(live)) = self.shared.store.live_session(pseudonym).await else {
            return;
        };
        let end = Envelope::Ended {
            to: live.session,
            code: ErrorCode::Banned,
            message: "this device was reported by several people and is banned for now".into(),
            retry_after: Some(self.shared.config.ban_seconds),
        };
        self.shared.route(&live.instance, end).await;
    }

    /// Blocks the receipt's partner for good; if that is the current match, it ends.
    async fn block(&mut self, receipt: &str) -> bool {
        let receipt = match self.open(receipt) {
            Ok(r) => r,
            Err(e) => return self.error(ErrorCode::InvalidReceipt, e).await,
        };
        if self
            .shared
            .store
            .block(&self.me.pseudonym, &receipt.partner)
            .await
            .is_err()
        {
            return self
                .error(ErrorCode::Internal, "could not record the block; try again")
                .await;
        }
        if matches!(&self.phase, Phase::Matched(m) if m.id == receipt.match_id)
            && let Phase::Matched(m) = std::mem::replace(&mut self.phase, Phase::Idle)
        {
            self.tell_partner_left(&m).await;
        }
        self.send(ServerMessage::Blocked {}).await
    }
}
