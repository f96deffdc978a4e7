//! One WebSocket connection: the challenge-response handshake, then the session's state
//! machine ([`machine`], no I/O) driven here: this file reads the socket, the session's channel
//! and the timers, feeds the machine, and carries out what it answers.

mod machine;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anonchat_protocol::rendezvous::{
    ClientMessage, ErrorCode, HELLO_CONTEXT, IceServer, PROTOCOL_VERSION, ServerMessage,
    parse_client,
};
use anonchat_protocol::token::{TokenError, unix_now};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;

use super::metrics::Metrics;
use super::route::Envelope;
use super::{Shared, random_id};
use crate::secrets::Receipt;
use crate::store::{Admission, Store};
use machine::{CLOSE_POLICY, Count, Identity, Input, Machine, Op, Output, Settings};

/// How often the server pings an idle socket.
const PING_EVERY: Duration = Duration::from_secs(20);

/// The machine's world: this server's ids, clock, secrets and ICE servers.
struct Live<'a, S: Store>(&'a Shared<S>);

impl<S: Store> machine::Env for Live<'_, S> {
    fn new_id(&mut self) -> String {
        random_id(16)
    }
    fn jitter(&mut self, d: Duration) -> Duration {
        d + d.mul_f64(rand::random::<f64>())
    }
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
    fn seal(&self, receipt: &Receipt) -> String {
        self.0.secrets.seal(receipt)
    }
    fn open(&self, receipt: &str, holder: &str) -> Result<Receipt, String> {
        let window = i64::try_from(self.0.config.report_window.as_secs()).unwrap_or(i64::MAX);
        self.0
            .secrets
            .open(receipt, holder, unix_now(), window)
            .map_err(|e| e.to_string())
    }
    fn ice_servers(&self) -> Vec<IceServer> {
        self.0.ice_servers()
    }
}

/// Runs a connection to its end.
pub async fn run<S: Store>(shared: Arc<Shared<S>>, mut socket: WebSocket) {
    let (me, expires_at, daily_remaining) = match handshake(&shared, &mut socket).await {
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
    let settings = Settings {
        signal_limits: shared.config.signal_limits(),
        look_again_after: shared.config.match_rescan_after,
        ban: shared.config.ban,
    };
    let pseudonym = me.pseudonym.clone();
    let mut conn = Conn {
        shared: shared.clone(),
        socket,
        machine: Machine::new(session.clone(), shared.instance.clone(), me, settings),
        frames,
        open: true,
    };
    let welcome = ServerMessage::Welcome {
        session: session.clone(),
        daily_remaining,
        ice_servers: shared.ice_servers(),
        protocol: PROTOCOL_VERSION,
    };
    if conn.send(welcome).await {
        conn.serve(rx, expires_at).await;
    }
    conn.feed(Input::Closed).await;
    shared.hub.remove(&session);
    let _ = shared.store.release(&pseudonym, &session).await;
    shared.metrics.connections.dec();
}

/// Challenge, hello, token and signature checks, ban check.
async fn handshake<S: Store>(
    shared: &Shared<S>,
    socket: &mut WebSocket,
) -> Result<(Identity, i64, u32), ServerMessage> {
    let nonce = random_id(32);
    let challenge = ServerMessage::Challenge {
        nonce: nonce.clone(),
    };
    socket
        .send(Message::Text(challenge.to_json().into()))
        .await
        .map_err(|_| ServerMessage::error(ErrorCode::Internal, "send failed"))?;
    let timeout = shared.config.hello_timeout;
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
        .as_ref()
        .ok_or_else(|| {
            ServerMessage::error(
                ErrorCode::Unavailable,
                "the verifier's keys have not arrived yet; connect again in a moment",
            )
        })?
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
            },
            claims.exp,
            daily_remaining,
        )),
        Ok(Admission::Banned { retry_after }) => Err(ServerMessage::Error {
            code: ErrorCode::Banned,
            message: "this device is banned for now".into(),
            retry_after: Some(retry_after),
            field: None,
        }),
        Err(e) => {
            tracing::debug!(error = %e, "store unavailable during handshake");
            Err(machine::store_unavailable("connect"))
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

struct Conn<S: Store> {
    shared: Arc<Shared<S>>,
    socket: WebSocket,
    machine: Machine,
    frames: DefaultDirectRateLimiter,
    /// Whether the socket still takes frames.
    open: bool,
}

impl<S: Store> Conn<S> {
    /// Sends a frame; false if the socket is gone. Every error frame is counted here, so the
    /// `errors` metric misses none.
    async fn send(&mut self, msg: ServerMessage) -> bool {
        if !self.open {
            return false;
        }
        if let ServerMessage::Error { code, .. } = &msg {
            Metrics::label(&self.shared.metrics.errors, code.as_str());
        }
        self.open = self
            .socket
            .send(Message::Text(msg.to_json().into()))
            .await
            .is_ok();
        self.open
    }

    /// Hands `input` to the machine and carries out what it answers, in order; a store
    /// operation's answer goes back to the machine at once, and what that brings comes next.
    /// Routes and store operations are carried out even once the socket is gone (a partner must
    /// still hear of the match or the departure). False once the connection is over.
    async fn feed(&mut self, input: Input) -> bool {
        let mut todo: VecDeque<Output> = self.handle(input).into();
        while let Some(output) = todo.pop_front() {
            match output {
                Output::Send(msg) => {
                    self.send(msg).await;
                }
                Output::Route { instance, envelope } => {
                    self.shared.route(&instance, envelope).await;
                }
                Output::Store(op) => {
                    let (session, pseudonym) = (self.machine.session(), self.machine.pseudonym());
                    if let Some(answer) = perform(&self.shared, session, pseudonym, op).await {
                        for o in self.handle(answer).into_iter().rev() {
                            todo.push_front(o);
                        }
                    }
                }
                Output::Count(c) => self.count(c),
                Output::Close { code, reason } => {
                    if self.open {
                        let frame = CloseFrame {
                            code,
                            reason: reason.into(),
                        };
                        let _ = self.socket.send(Message::Close(Some(frame))).await;
                    }
                    self.open = false;
                }
            }
        }
        self.open
    }

    fn handle(&mut self, input: Input) -> Vec<Output> {
        self.machine
            .handle(input, Instant::now(), &mut Live(&self.shared))
    }

    fn count(&self, c: Count) {
        let m = &self.shared.metrics;
        let counter = match c {
            Count::Match => &m.matches,
            Count::SignalForwarded => &m.signals_forwarded,
            Count::Report => &m.reports,
            Count::Ban => &m.bans,
            Count::Unreachable => &m.unreachable,
            Count::NotSignaling(label) => return Metrics::label(&m.not_signaling, label),
        };
        counter.inc();
    }

    async fn serve(&mut self, mut rx: mpsc::Receiver<Box<Envelope>>, expires_at: i64) {
        let idle = self.shared.config.idle_timeout;
        let mut ping = tokio::time::interval(PING_EVERY.min(idle / 2));
        let mut shutdown = self.shared.shutdown.clone();
        let mut forgot = self.shared.store_forgot.subscribe();
        let mut last_seen = Instant::now();
        let lapse = Duration::from_secs(u64::try_from(expires_at - unix_now()).unwrap_or(0));
        let lapses = tokio::time::sleep(lapse);
        tokio::pin!(lapses);
        loop {
            let timeout = self.machine.next_timeout();
            let input = tokio::select! {
                () = async {
                    match timeout {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => Input::Timeout,
                () = &mut lapses => Input::Lapsed,
                frame = self.socket.recv() => {
                    last_seen = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(_) | Message::Binary(_))) if self.frames.check().is_err() => Input::TooFast,
                        Some(Ok(Message::Text(text))) => Input::Text(text.to_string()),
                        Some(Ok(Message::Binary(_))) => Input::Binary,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    }
                }
                Some(envelope) = rx.recv() => Input::Envelope(*envelope),
                _ = ping.tick() => {
                    if last_seen.elapsed() > idle {
                        Input::Idle
                    } else if self.socket.send(Message::Ping(Default::default())).await.is_ok() {
                        continue;
                    } else {
                        return;
                    }
                }
                _ = async { let _ = shutdown.wait_for(|s| *s).await; } => Input::ShuttingDown,
                Ok(()) = forgot.changed() => Input::StoreForgot,
            };
            if !self.feed(input).await {
                return;
            }
        }
    }
}

/// Carries out a store operation for `session` of `pseudonym`; the answer, for the machine.
async fn perform<S: Store>(
    shared: &Shared<S>,
    session: &str,
    pseudonym: &str,
    op: Op,
) -> Option<Input> {
    let store = &shared.store;
    match op {
        Op::Join { ticket, now_ms } => {
            let outcome = store.join(&ticket, now_ms).await;
            Some(Input::Joined { ticket, outcome })
        }
        Op::Rejoin { ticket, now_ms } => Some(Input::Rejoined(store.rejoin(&ticket, now_ms).await)),
        Op::Rematch {
            ticket,
            look,
            now_ms,
        } => Some(Input::Rematched(store.rematch(&ticket, look, now_ms).await)),
        Op::Cancel => {
            let _ = store.cancel(session).await;
            None
        }
        Op::Undo {
            partner,
            partner_session,
            now_ms,
        } => {
            let _ = store
                .undo(pseudonym, &partner, &partner_session, now_ms)
                .await;
            None
        }
        Op::Report { target } => {
            let outcome = store.report(pseudonym, &target).await;
            Some(Input::Reported { target, outcome })
        }
        Op::Block { target, match_id } => {
            let outcome = store.block(pseudonym, &target).await;
            Some(Input::Blocked { match_id, outcome })
        }
        Op::LiveSessionOf { pseudonym } => Some(Input::LiveSession(
            store.live_session(&pseudonym).await.ok().flatten(),
        )),
        Op::Hand { instance, envelope } => Some(Input::Handed {
            heard: shared.deliver(&instance, envelope).await,
        }),
    }
}
