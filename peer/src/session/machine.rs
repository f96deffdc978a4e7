//! The chat session's rules as a state machine without I/O, in the manner of the rendezvous'
//! `server/session/machine.rs`: [`Machine::handle`] takes one [`Input`] (a command, a frame
//! from the rendezvous, the result of something the driver did, the timer) with the time and a
//! random number, and answers [`Output`]s (events for the user, frames for the rendezvous,
//! things for the driver to do). The driver in `mod.rs` owns the sockets, the set-up task, the
//! open chat and the received images, and feeds every result back as an input; so every race
//! between them (a match after a cancel, a partner leaving during the set-up, the rendezvous
//! lost while waiting) is a plain unit test here.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anonchat_protocol::chat::{self, ChatFrame};
use anonchat_protocol::rendezvous::{
    ClientMessage, ErrorCode, IceServer, Profile, Role, ServerMessage, Transport,
    reconnect_delay_ms,
};
use anonchat_protocol::signaling::SignalData;

use super::conversation::Received;
use super::gallery::GalleryError;
use super::interface::{ClientCode, Command, Event, EventCode, JoinRequest};
use super::link;
use crate::exposure::{self, Exposure};
use crate::image_check::ImageInfo;
use crate::libp2p_session::Libp2pError;
use crate::rendezvous::ClientError;
use crate::webrtc_session::SessionError;

/// What the session's settings decide (from the command line).
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// Only through a TURN relay (the partner never learns this side's address).
    pub relay_only: bool,
    /// Tests and the quickstart on one machine: loopback addresses only.
    pub loopback_only: bool,
    /// libp2p can be offered (terminal clients).
    pub libp2p: bool,
}

/// When an input happens, and a fresh random number for any jitter it needs.
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub now: Instant,
    pub random: u64,
}

impl At {
    pub fn now() -> At {
        At {
            now: Instant::now(),
            random: rand::random(),
        }
    }
}

/// Why a set-up failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    WebRtc(#[from] SessionError),
    #[error(transparent)]
    Libp2p(#[from] Libp2pError),
}

/// What an opened peer-to-peer link says about itself (the link stays with the driver).
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub transport: String,
    pub safety_code: String,
    pub path: String,
    pub local_candidate: Option<String>,
    pub remote_candidate: Option<String>,
}

#[derive(Debug)]
pub enum Input {
    Command(Command),
    /// Logged in to the rendezvous (after [`Output::Connect`]).
    LinkUp {
        daily_remaining: u32,
        ice_servers: Vec<IceServer>,
    },
    /// Logging in failed (after [`Output::Connect`]).
    LinkFailed(ClientError),
    /// The rendezvous connection dropped.
    LinkLost,
    Server(ServerMessage),
    /// An error frame from the rendezvous: an answer, not the end of the connection.
    ServerError {
        code: ErrorCode,
        message: String,
        retry_after: Option<u64>,
    },
    /// The set-up has a signal for the partner.
    SetupSignal(SignalData),
    /// The set-up ended: the link is open (and held by the driver), or it failed.
    SetupDone(Result<Opened, SetupError>),
    /// What the partner did in the chat.
    Chat(Received),
    /// A message or image went out (after [`Output::SendMessage`] or [`Output::SendImage`]).
    Sent {
        id: String,
        result: Result<(), String>,
    },
    /// An image to send, read and checked (after [`Output::ReadImage`]).
    ImageRead(Result<(&'static str, Vec<u8>), String>),
    /// A received image kept by the gallery, and where it was saved (after
    /// [`Output::KeepImage`]).
    ImageKept {
        id: String,
        info: ImageInfo,
        bytes: usize,
        result: Result<Option<PathBuf>, GalleryError>,
    },
    /// After [`Output::Save`].
    Saved(Result<(String, PathBuf), GalleryError>),
    /// [`Machine::poll_timeout`] has come.
    Timer,
}

#[derive(Debug, PartialEq)]
pub enum Output {
    Emit(Event),
    /// A frame for the rendezvous.
    Server(ClientMessage),
    /// Log in to the rendezvous, then [`Input::LinkUp`] or [`Input::LinkFailed`].
    Connect,
    /// Close the rendezvous connection.
    DropLink,
    /// Set up the peer-to-peer link for the current match: libp2p with this exposure, else
    /// WebRTC through `ice_servers`. Any set-up before it is aborted first.
    StartSetup {
        role: Role,
        ice_servers: Vec<IceServer>,
        libp2p: Option<Exposure>,
    },
    AbortSetup,
    /// A signal from the partner, for the set-up.
    ToSetup(SignalData),
    /// The opened link becomes the chat: say hello on it and forget the last chat's images.
    OpenChat,
    /// A chat frame whose sending nobody waits for (an ack, typing).
    Chat(ChatFrame),
    /// Then [`Input::Sent`].
    SendMessage {
        id: String,
        frame: ChatFrame,
    },
    /// Read and check the image at this path, then [`Input::ImageRead`].
    ReadImage(PathBuf),
    /// Then [`Input::Sent`].
    SendImage {
        id: String,
        mime: &'static str,
        data: Vec<u8>,
    },
    /// Give a received image to the gallery, then [`Input::ImageKept`].
    KeepImage {
        id: String,
        info: ImageInfo,
        data: Vec<u8>,
    },
    /// Save a received image (the last one when `None`), then [`Input::Saved`].
    Save(Option<String>),
    /// Say `bye` on the chat and close it.
    EndChat,
    /// Close the chat (the partner already left).
    CloseChat,
    /// The session is over.
    Quit,
}

#[derive(Debug)]
enum Phase {
    Idle,
    Waiting,
    Connecting(Box<Pending>),
    Chatting { match_id: String },
}

/// Matched; the peer-to-peer link is being set up.
#[derive(Debug)]
struct Pending {
    match_id: String,
    matched_at: Instant,
    role: Role,
    /// The ICE servers for this match (fresh TURN credentials).
    ice_servers: Vec<IceServer>,
    /// Setting up libp2p (else WebRTC).
    libp2p: bool,
    /// Why libp2p was given up for WebRTC, if it was.
    fallback: Option<String>,
}

pub struct Machine {
    settings: Settings,
    phase: Phase,
    /// The welcome's ICE servers while logged in to the rendezvous.
    linked: Option<Vec<IceServer>>,
    /// The last join, for `next` and for joining again after a reconnect.
    join: Option<JoinRequest>,
    /// The sealed receipt of the current or last match, for `report` and `block`.
    last_receipt: Option<String>,
    /// When to try the rendezvous again (connect, or join after `unavailable`).
    retry: Option<Instant>,
    attempt: u32,
    sent: u64,
}

/// The outputs of one input, built in order.
#[derive(Default)]
struct Out(Vec<Output>);

impl Out {
    fn emit(&mut self, event: Event) {
        self.0.push(Output::Emit(event));
    }
    fn error(&mut self, code: impl Into<EventCode>, message: impl Into<String>) {
        self.emit(Event::error(code, message));
    }
    fn server(&mut self, msg: ClientMessage) {
        self.0.push(Output::Server(msg));
    }
    fn push(&mut self, output: Output) {
        self.0.push(output);
    }
}

impl Machine {
    pub fn new(settings: Settings) -> Machine {
        Machine {
            settings,
            phase: Phase::Idle,
            linked: None,
            join: None,
            last_receipt: None,
            retry: None,
            attempt: 0,
            sent: 0,
        }
    }

    /// When the machine next wants [`Input::Timer`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.retry
    }

    pub fn handle(&mut self, input: Input, at: At) -> Vec<Output> {
        let mut out = Out::default();
        match input {
            Input::Command(command) => self.on_command(command, &mut out),
            Input::LinkUp {
                daily_remaining,
                ice_servers,
            } => {
                self.attempt = 0;
                out.emit(Event::Ready { daily_remaining });
                self.linked = Some(ice_servers);
                if matches!(self.phase, Phase::Waiting) {
                    self.send_join(&mut out);
                }
            }
            Input::LinkFailed(e) if link::worth_retrying(&e) => {
                out.error(ClientCode::RendezvousUnavailable, e.to_string());
                self.schedule_reconnect(at, &mut out);
            }
            Input::LinkFailed(e) => {
                let code = match &e {
                    ClientError::Server { code, .. } => EventCode::from(*code),
                    _ => ClientCode::RendezvousRefused.into(),
                };
                out.error(code, e.to_string());
                if matches!(self.phase, Phase::Waiting) {
                    self.phase = Phase::Idle;
                }
            }
            Input::LinkLost => self.link_lost(at, &mut out),
            Input::Server(msg) => self.on_server(msg, at, &mut out),
            Input::ServerError {
                code,
                message,
                retry_after,
            } => self.on_server_error(code, message, retry_after, at, &mut out),
            Input::SetupSignal(signal) => {
                if let (Phase::Connecting(p), Some(_)) = (&self.phase, &self.linked) {
                    let data = serde_json::to_value(&signal).expect("signals serialize");
                    out.server(ClientMessage::Signal {
                        match_id: p.match_id.clone(),
                        data,
                    });
                }
            }
            Input::SetupDone(result) => self.on_setup(result, at, &mut out),
            Input::Chat(received) => self.on_chat(received, &mut out),
            Input::Sent { id, result } => match result {
                Ok(()) => out.emit(Event::Sent { id }),
                Err(e) => out.error(ClientCode::SendFailed, e),
            },
            Input::ImageRead(Err(message)) => out.error(ClientCode::BadImage, message),
            Input::ImageRead(Ok((mime, data))) => {
                if matches!(self.phase, Phase::Chatting { .. }) {
                    let id = self.next_id("i");
                    out.push(Output::SendImage { id, mime, data });
                }
            }
            Input::ImageKept {
                id,
                info,
                bytes,
                result,
            } => match result {
                Ok(path) => out.emit(Event::Image {
                    id,
                    mime: info.mime.to_owned(),
                    bytes,
                    width: info.width,
                    height: info.height,
                    path,
                }),
                Err(e @ GalleryError::QuotaReached) => {
                    out.error(ClientCode::ImageQuota, e.to_string())
                }
                Err(e) => out.error(ClientCode::ImageNotSaved, e.to_string()),
            },
            Input::Saved(result) => match result {
                Ok((id, path)) => out.emit(Event::Saved { id, path }),
                Err(e @ (GalleryError::NothingToSave | GalleryError::Unknown(_))) => {
                    out.error(ClientCode::NoSuchImage, e.to_string())
                }
                Err(e) => out.error(ClientCode::ImageNotSaved, e.to_string()),
            },
            Input::Timer => self.on_timer(at, &mut out),
        }
        out.0
    }

    fn on_command(&mut self, command: Command, out: &mut Out) {
        match command {
            Command::Join(join) => {
                self.end_match(out);
                self.join = Some(join);
                self.start_waiting(out);
            }
            Command::Next => {
                self.end_match(out);
                if self.join.is_some() {
                    self.start_waiting(out);
                } else {
                    out.error(
                        ClientCode::NotJoined,
                        "join first: there is no profile to join with",
                    );
                }
            }
            Command::Leave => {
                self.end_match(out);
                out.emit(Event::Left);
            }
            Command::Send { text, force, id } => self.send_text(text, force, id, out),
            Command::Typing { on } => {
                if let Phase::Chatting { .. } = self.phase {
                    out.push(Output::Chat(ChatFrame::Typing { on }));
                }
            }
            Command::Image { path } => {
                if matches!(self.phase, Phase::Chatting { .. }) {
                    out.push(Output::ReadImage(path));
                } else {
                    out.error(ClientCode::NotInChat, "there is nobody to send to yet");
                }
            }
            Command::Save { id } => out.push(Output::Save(id)),
            Command::Report { reason } => {
                self.with_receipt(|receipt| ClientMessage::Report { receipt, reason }, out);
            }
            Command::Block => {
                if self.with_receipt(|receipt| ClientMessage::Block { receipt }, out) {
                    self.end_match(out);
                }
            }
            Command::Quit => {
                self.end_match(out);
                self.linked = None;
                out.push(Output::DropLink);
                out.push(Output::Quit);
            }
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.sent += 1;
        format!("{prefix}{}", self.sent)
    }

    /// Sends a report or block for the current or last match; false when it could not.
    fn with_receipt(&self, message: impl FnOnce(String) -> ClientMessage, out: &mut Out) -> bool {
        let Some(receipt) = self.last_receipt.clone() else {
            out.error(
                ClientCode::NoMatch,
                "there is no partner to report or block yet",
            );
            return false;
        };
        if self.linked.is_none() {
            out.error(
                ClientCode::RendezvousUnavailable,
                "the rendezvous is not reachable right now; try again in a moment",
            );
            return false;
        }
        out.server(message(receipt));
        true
    }

    /// Ends the current match (saying `bye` to the partner and `leave` to the rendezvous), or
    /// leaves the queue.
    fn end_match(&mut self, out: &mut Out) {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Idle => {}
            Phase::Waiting => self.to_rendezvous(ClientMessage::Cancel {}, out),
            Phase::Connecting(p) => {
                out.push(Output::AbortSetup);
                self.send_leave(p.match_id, out);
            }
            Phase::Chatting { match_id } => {
                out.push(Output::EndChat);
                self.send_leave(match_id, out);
            }
        }
    }

    /// A frame for the rendezvous, if connected (nothing to say otherwise: a new login starts
    /// with nothing open).
    fn to_rendezvous(&self, msg: ClientMessage, out: &mut Out) {
        if self.linked.is_some() {
            out.server(msg);
        }
    }

    fn send_leave(&self, match_id: String, out: &mut Out) {
        self.to_rendezvous(ClientMessage::Leave { match_id }, out);
    }

    fn start_waiting(&mut self, out: &mut Out) {
        self.phase = Phase::Waiting;
        if self.linked.is_none() {
            // Connecting joins once logged in.
            self.retry = None;
            self.attempt = 0;
            out.push(Output::Connect);
        } else {
            self.send_join(out);
        }
    }

    /// What this user's settings let a partner learn, with the servers the rendezvous offers.
    fn exposure(&self, servers: &[IceServer]) -> Exposure {
        if self.settings.loopback_only {
            Exposure::Everything
        } else {
            Exposure::new(self.settings.relay_only, servers)
        }
    }

    fn send_join(&mut self, out: &mut Out) {
        let (Some(servers), Some(join)) = (&self.linked, &self.join) else {
            return;
        };
        // Refused here, before a partner's match is used up on a connection that cannot be.
        if self.settings.relay_only && !exposure::has_turn(servers) {
            out.error(
                ClientCode::NoRelay,
                "relay-only mode hides your address behind a TURN relay, and this rendezvous \
                 offers none; chat without --relay-only, or use a rendezvous that offers TURN",
            );
            self.phase = Phase::Idle;
            return;
        }
        let libp2p = self.settings.libp2p && self.exposure(servers).offers_libp2p();
        out.server(ClientMessage::Join {
            profile: Profile {
                nickname: join.nickname.clone(),
                bio: join.bio.clone(),
            },
            want: join.want,
            interests: join.interests.clone(),
            transports: if libp2p {
                vec![Transport::Webrtc, Transport::Libp2p]
            } else {
                vec![Transport::Webrtc]
            },
        });
    }

    /// Connects again after the protocol's backoff, with fresh jitter.
    fn schedule_reconnect(&mut self, at: At, out: &mut Out) {
        let wait = Duration::from_millis(reconnect_delay_ms(self.attempt, at.random));
        self.attempt += 1;
        self.retry = Some(at.now + wait);
        out.emit(Event::Reconnecting {
            attempt: self.attempt,
            in_ms: wait.as_millis() as u64,
        });
    }

    /// The rendezvous socket dropped. Waiting users are put back in the queue by reconnecting;
    /// a set-up in progress needs signaling, so it is given up and the user queued again; a
    /// chat in progress does not need the rendezvous at all.
    fn link_lost(&mut self, at: At, out: &mut Out) {
        self.linked = None;
        let rejoin = match &self.phase {
            Phase::Waiting => true,
            Phase::Connecting(_) => {
                out.push(Output::AbortSetup);
                out.error(
                    ClientCode::RendezvousLost,
                    "the rendezvous went away while connecting to the partner; waiting again",
                );
                self.phase = Phase::Waiting;
                true
            }
            Phase::Idle | Phase::Chatting { .. } => false,
        };
        if rejoin && self.retry.is_none() {
            self.schedule_reconnect(at, out);
        }
    }

    fn on_timer(&mut self, at: At, out: &mut Out) {
        if self.retry.is_none_or(|due| at.now < due) {
            return;
        }
        self.retry = None;
        match &self.linked {
            // Still connected: it was a join the matchmaker could not take.
            Some(_) if matches!(self.phase, Phase::Waiting) => self.send_join(out),
            Some(_) => {}
            None => out.push(Output::Connect),
        }
    }

    fn on_server_error(
        &mut self,
        code: ErrorCode,
        message: String,
        retry_after: Option<u64>,
        at: At,
        out: &mut Out,
    ) {
        // Leaving a match the server already ended is not worth a word.
        let in_match = matches!(self.phase, Phase::Connecting(_) | Phase::Chatting { .. });
        if code != ErrorCode::NotInMatch || in_match {
            out.error(code, message);
        }
        let waiting = matches!(self.phase, Phase::Waiting);
        // The matchmaker could not take the join: join again when it says to.
        if code == ErrorCode::Unavailable && waiting {
            let wait = Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 60));
            self.retry = Some(at.now + wait);
        }
        if ends_waiting(code) && waiting {
            self.phase = Phase::Idle;
        }
    }

    fn on_server(&mut self, msg: ServerMessage, at: At, out: &mut Out) {
        match msg {
            ServerMessage::Queued { waiting } => out.emit(Event::Queued { waiting }),
            ServerMessage::Matched {
                match_id,
                role,
                partner,
                receipt,
                transport,
                ice_servers,
            } => {
                if !matches!(self.phase, Phase::Waiting) {
                    // The user left in the meantime: tell the partner at once.
                    return self.send_leave(match_id, out);
                }
                self.last_receipt = Some(receipt);
                out.emit(Event::Matched { partner });
                let libp2p = transport == Transport::Libp2p && self.settings.libp2p;
                // Credentials minted for this match; the welcome's for an older server.
                let ice_servers = match (ice_servers.is_empty(), &self.linked) {
                    (true, Some(welcome)) => welcome.clone(),
                    _ => ice_servers,
                };
                let pending = Pending {
                    match_id,
                    matched_at: at.now,
                    role,
                    ice_servers,
                    libp2p,
                    fallback: None,
                };
                out.push(self.setup_of(&pending));
                self.phase = Phase::Connecting(Box::new(pending));
            }
            ServerMessage::Signal { match_id, data } => {
                let Phase::Connecting(p) = &self.phase else {
                    return;
                };
                if p.match_id != match_id {
                    return;
                }
                match serde_json::from_value::<SignalData>(data) {
                    // The partner gave libp2p up: follow it to WebRTC at once.
                    Ok(signal) if p.libp2p && !matches!(signal, SignalData::Libp2p { .. }) => {
                        self.fall_back("the partner switched to WebRTC".into(), out);
                        out.push(Output::ToSetup(signal));
                    }
                    Ok(signal) => out.push(Output::ToSetup(signal)),
                    Err(e) => tracing::warn!("ignoring a malformed signal: {e}"),
                }
            }
            ServerMessage::PartnerLeft { match_id } => {
                let current = match &self.phase {
                    Phase::Connecting(p) => p.match_id == match_id,
                    Phase::Chatting { match_id: m } => *m == match_id,
                    _ => false,
                };
                if current {
                    self.partner_gone(out);
                }
            }
            ServerMessage::Reported {} => out.emit(Event::Reported),
            ServerMessage::Blocked {} => out.emit(Event::Blocked),
            ServerMessage::Cancelled {} => {}
            other => tracing::debug!("unexpected from the rendezvous: {other:?}"),
        }
    }

    fn setup_of(&self, p: &Pending) -> Output {
        Output::StartSetup {
            role: p.role,
            ice_servers: p.ice_servers.clone(),
            libp2p: p.libp2p.then(|| self.exposure(&p.ice_servers)),
        }
    }

    /// Gives the libp2p set-up up and sets up WebRTC for the same match instead.
    fn fall_back(&mut self, why: String, out: &mut Out) {
        let Phase::Connecting(p) = &mut self.phase else {
            return;
        };
        tracing::info!("falling back to WebRTC: {why}");
        p.libp2p = false;
        p.fallback = Some(why);
        out.push(Output::AbortSetup);
        out.push(Output::StartSetup {
            role: p.role,
            ice_servers: p.ice_servers.clone(),
            libp2p: None,
        });
    }

    fn on_setup(&mut self, result: Result<Opened, SetupError>, at: At, out: &mut Out) {
        if let (Phase::Connecting(p), Err(e)) = (&self.phase, &result)
            && p.libp2p
        {
            return self.fall_back(e.to_string(), out);
        }
        let Phase::Connecting(p) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        match result {
            Ok(opened) => {
                out.push(Output::OpenChat);
                out.emit(Event::Connected {
                    transport: opened.transport,
                    setup_ms: at.now.saturating_duration_since(p.matched_at).as_secs_f64() * 1000.0,
                    safety_code: opened.safety_code,
                    fallback: p.fallback,
                    path: opened.path,
                    local_candidate: opened.local_candidate,
                    remote_candidate: opened.remote_candidate,
                });
                self.phase = Phase::Chatting {
                    match_id: p.match_id,
                };
            }
            Err(e) => {
                let code = match e {
                    SetupError::WebRtc(SessionError::NoRelay) => ClientCode::NoRelay,
                    SetupError::WebRtc(SessionError::Timeout(_)) => ClientCode::ConnectTimeout,
                    SetupError::WebRtc(SessionError::UdpBlocked(_)) => ClientCode::UdpBlocked,
                    SetupError::WebRtc(SessionError::RelayRefused) => ClientCode::RelayRefused,
                    _ => ClientCode::ConnectFailed,
                };
                out.error(code, e.to_string());
                self.send_leave(p.match_id, out);
            }
        }
    }

    fn on_chat(&mut self, received: Received, out: &mut Out) {
        if !matches!(self.phase, Phase::Chatting { .. }) {
            return;
        }
        match received {
            Received::Hello | Received::Nothing => {}
            Received::Message { id, text, flagged } => {
                out.push(Output::Chat(ChatFrame::Ack { id: id.clone() }));
                out.emit(Event::Message { id, text, flagged });
            }
            Received::Ack { id } => out.emit(Event::Ack { id }),
            Received::Typing { on } => out.emit(Event::Typing { on }),
            Received::Image { id, info, data } => {
                out.push(Output::Chat(ChatFrame::Ack { id: id.clone() }));
                out.push(Output::KeepImage { id, info, data });
            }
            Received::Refused(e) => out.error(
                ClientCode::BadFrame,
                format!("refused a frame from the partner: {e}"),
            ),
            Received::Gone => self.partner_gone(out),
        }
    }

    /// The partner left (said `bye`, closed the channel, or the rendezvous said so).
    fn partner_gone(&mut self, out: &mut Out) {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Connecting(p) => {
                out.push(Output::AbortSetup);
                self.send_leave(p.match_id, out);
            }
            Phase::Chatting { match_id } => {
                out.push(Output::CloseChat);
                self.send_leave(match_id, out);
            }
            other => {
                self.phase = other;
                return;
            }
        }
        out.emit(Event::PartnerLeft);
    }

    fn send_text(&mut self, text: String, force: bool, id: Option<String>, out: &mut Out) {
        if !matches!(self.phase, Phase::Chatting { .. }) {
            return out.error(ClientCode::NotInChat, "there is nobody to send to yet");
        }
        if text.trim().is_empty() {
            return out.error(ClientCode::Empty, "nothing to send");
        }
        if text.chars().count() > chat::MAX_TEXT_CHARS {
            return out.error(
                ClientCode::TooLong,
                chat::ChatError::TextTooLong.to_string(),
            );
        }
        if !force && chat::contains_contact_details(&text) {
            return out.error(
                ClientCode::ContactDetails,
                "this looks like an e-mail address or a phone number, which strangers can misuse; \
                 send it anyway with /send! (or \"force\":true)",
            );
        }
        let numbered = self.next_id("m");
        let id = id.unwrap_or(numbered);
        let frame = ChatFrame::Msg {
            id: id.clone(),
            text,
        };
        out.push(Output::SendMessage { id, frame });
    }
}

/// The refusals of a join that joining again would not change: the user decides what next.
fn ends_waiting(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::DailyLimit
            | ErrorCode::Banned
            | ErrorCode::InvalidProfile
            | ErrorCode::Replaced
            | ErrorCode::TokenExpired
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use anonchat_protocol::rendezvous::{PartnerInfo, Want};

    /// A machine and its clock: inputs at whole milliseconds after the start, jitter 0.
    struct Rig {
        m: Machine,
        t0: Instant,
    }

    impl Rig {
        fn new(settings: Settings) -> Rig {
            Rig {
                m: Machine::new(settings),
                t0: Instant::now(),
            }
        }

        fn at(&mut self, ms: u64, input: Input) -> Vec<Output> {
            let now = self.t0 + Duration::from_millis(ms);
            self.m.handle(input, At { now, random: 0 })
        }

        fn command(&mut self, command: Command) -> Vec<Output> {
            self.at(0, Input::Command(command))
        }

        /// Joined and logged in: the join frame went out.
        fn waiting(settings: Settings) -> Rig {
            let mut rig = Rig::new(settings);
            assert_eq!(rig.command(Command::Join(join())), vec![Output::Connect]);
            assert_ready_and_joined(&rig.at(0, link_up(vec![])));
            rig
        }

        /// Matched as `m1` at 100 ms, over WebRTC (or libp2p).
        fn connecting(settings: Settings, transport: Transport) -> Rig {
            let mut rig = Rig::waiting(settings);
            let out = rig.at(100, Input::Server(matched("m1", transport)));
            assert!(
                matches!(
                    out[..],
                    [
                        Output::Emit(Event::Matched { .. }),
                        Output::StartSetup { .. }
                    ]
                ),
                "{out:?}"
            );
            rig
        }

        fn chatting() -> Rig {
            let mut rig = Rig::connecting(Settings::default(), Transport::Webrtc);
            let out = rig.at(350, Input::SetupDone(Ok(opened())));
            assert_eq!(out[0], Output::OpenChat);
            rig
        }
    }

    /// A terminal client that offers libp2p (on loopback, where it is always offered).
    const LIBP2P: Settings = Settings {
        libp2p: true,
        loopback_only: true,
        relay_only: false,
    };

    /// The libp2p set-up given up for WebRTC, for the same match.
    fn webrtc_instead() -> Vec<Output> {
        vec![
            Output::AbortSetup,
            Output::StartSetup {
                role: Role::Offerer,
                ice_servers: vec![],
                libp2p: None,
            },
        ]
    }

    /// Logged in, and the join (again) went out.
    fn assert_ready_and_joined(out: &[Output]) {
        assert!(
            matches!(
                out,
                [
                    Output::Emit(Event::Ready { .. }),
                    Output::Server(ClientMessage::Join { .. })
                ]
            ),
            "{out:?}"
        );
    }

    fn join() -> JoinRequest {
        JoinRequest {
            nickname: "ana".into(),
            bio: String::new(),
            want: Want::Any,
            interests: vec![],
        }
    }

    fn link_up(ice_servers: Vec<IceServer>) -> Input {
        Input::LinkUp {
            daily_remaining: 10,
            ice_servers,
        }
    }

    fn matched(match_id: &str, transport: Transport) -> ServerMessage {
        ServerMessage::Matched {
            match_id: match_id.into(),
            role: Role::Offerer,
            partner: PartnerInfo {
                nickname: "bo".into(),
                bio: String::new(),
                gender: "U".into(),
                common_interests: vec![],
            },
            receipt: "sealed".into(),
            transport,
            ice_servers: vec![],
        }
    }

    fn opened() -> Opened {
        Opened {
            transport: "webrtc".into(),
            safety_code: "12345".into(),
            path: "direct".into(),
            local_candidate: Some("host".into()),
            remote_candidate: Some("host".into()),
        }
    }

    fn leave(match_id: &str) -> Output {
        Output::Server(ClientMessage::Leave {
            match_id: match_id.into(),
        })
    }

    fn error_code(out: &[Output]) -> Option<String> {
        out.iter().find_map(|o| match o {
            Output::Emit(Event::Error { code, .. }) => Some(code.to_string()),
            _ => None,
        })
    }

    fn unreachable() -> ClientError {
        ClientError::Unreachable {
            url: "ws://x".into(),
            reason: "refused".into(),
        }
    }

    #[test]
    fn a_match_that_arrives_after_a_cancel_is_left_at_once() {
        let mut rig = Rig::waiting(Settings::default());
        assert_eq!(
            rig.command(Command::Leave),
            vec![
                Output::Server(ClientMessage::Cancel {}),
                Output::Emit(Event::Left)
            ]
        );
        // The server matched before it read the cancel: the partner is told, the user is not.
        assert_eq!(
            rig.at(10, Input::Server(matched("m1", Transport::Webrtc))),
            vec![leave("m1")]
        );
    }

    #[test]
    fn the_partner_leaving_during_the_set_up_aborts_it() {
        let mut rig = Rig::connecting(Settings::default(), Transport::Webrtc);
        // Another match's news changes nothing.
        let stale = ServerMessage::PartnerLeft {
            match_id: "m0".into(),
        };
        assert_eq!(rig.at(150, Input::Server(stale)), vec![]);
        let gone = ServerMessage::PartnerLeft {
            match_id: "m1".into(),
        };
        assert_eq!(
            rig.at(200, Input::Server(gone)),
            vec![
                Output::AbortSetup,
                leave("m1"),
                Output::Emit(Event::PartnerLeft)
            ]
        );
        // A set-up that finished anyway is not made a chat.
        assert_eq!(rig.at(210, Input::SetupDone(Ok(opened()))), vec![]);
    }

    #[test]
    fn the_set_up_opens_the_chat_and_times_it_from_the_match() {
        let mut rig = Rig::connecting(Settings::default(), Transport::Webrtc);
        let out = rig.at(350, Input::SetupDone(Ok(opened())));
        assert_eq!(out[0], Output::OpenChat);
        let Output::Emit(Event::Connected {
            setup_ms, fallback, ..
        }) = &out[1]
        else {
            panic!("{out:?}")
        };
        assert_eq!((*setup_ms, fallback.as_deref()), (250.0, None));
    }

    #[test]
    fn a_failed_libp2p_set_up_falls_back_to_webrtc_for_the_same_match() {
        let mut rig = Rig::connecting(LIBP2P, Transport::Libp2p);
        let failed = Err(SetupError::Libp2p(Libp2pError::Dial("refused".into())));
        assert_eq!(rig.at(200, Input::SetupDone(failed)), webrtc_instead());
        let out = rig.at(400, Input::SetupDone(Ok(opened())));
        let Output::Emit(Event::Connected { fallback, .. }) = &out[1] else {
            panic!("{out:?}")
        };
        assert!(
            fallback.as_deref().unwrap().contains("refused"),
            "{fallback:?}"
        );
        // A WebRTC set-up that fails ends the match.
        let mut rig = Rig::connecting(Settings::default(), Transport::Webrtc);
        let failed = Err(SetupError::WebRtc(SessionError::Failed));
        let out = rig.at(200, Input::SetupDone(failed));
        assert_eq!(error_code(&out).as_deref(), Some("connect_failed"));
        assert_eq!(out.last(), Some(&leave("m1")));
    }

    #[test]
    fn a_partner_on_webrtc_turns_a_libp2p_set_up_into_webrtc_before_its_signal() {
        let mut rig = Rig::connecting(LIBP2P, Transport::Libp2p);
        let offer = SignalData::Offer { sdp: "v=0".into() };
        let signal = ServerMessage::Signal {
            match_id: "m1".into(),
            data: serde_json::to_value(&offer).unwrap(),
        };
        let out = rig.at(150, Input::Server(signal));
        assert_eq!(
            out,
            webrtc_instead()
                .into_iter()
                .chain([Output::ToSetup(offer)])
                .collect::<Vec<_>>()
        );
        // Signals of another match are not this set-up's.
        let other = ServerMessage::Signal {
            match_id: "m9".into(),
            data: serde_json::json!({"type": "offer", "sdp": "v=0"}),
        };
        assert_eq!(rig.at(160, Input::Server(other)), vec![]);
        // This side's signals go to the rendezvous under the match's id.
        let out = rig.at(
            170,
            Input::SetupSignal(SignalData::Answer { sdp: "v=0".into() }),
        );
        assert!(
            matches!(&out[..], [Output::Server(ClientMessage::Signal { match_id, .. })] if match_id == "m1")
        );
    }

    #[test]
    fn a_lost_rendezvous_is_connected_again_after_the_backoff_and_the_join_repeated() {
        let mut rig = Rig::waiting(Settings::default());
        let out = rig.at(1_000, Input::LinkLost);
        let [Output::Emit(Event::Reconnecting { attempt: 1, in_ms })] = out[..] else {
            panic!("{out:?}")
        };
        let due = 1_000 + in_ms;
        assert_eq!(
            rig.m.poll_timeout(),
            Some(rig.t0 + Duration::from_millis(due))
        );
        assert_eq!(rig.at(due - 1, Input::Timer), vec![], "not yet");
        assert_eq!(rig.at(due, Input::Timer), vec![Output::Connect]);
        // Still down: the next wait is longer.
        let out = rig.at(due + 5, Input::LinkFailed(unreachable()));
        assert_eq!(error_code(&out).as_deref(), Some("rendezvous_unavailable"));
        let Output::Emit(Event::Reconnecting {
            attempt: 2,
            in_ms: second,
        }) = out[1]
        else {
            panic!("{out:?}")
        };
        assert!(second > in_ms);
        let out = rig.at(due + 5 + second, Input::Timer);
        assert_eq!(out, vec![Output::Connect]);
        assert_ready_and_joined(&rig.at(due + 10 + second, link_up(vec![])));
    }

    #[test]
    fn a_rendezvous_lost_during_the_set_up_gives_it_up_and_waits_again() {
        let mut rig = Rig::connecting(Settings::default(), Transport::Webrtc);
        let out = rig.at(200, Input::LinkLost);
        assert_eq!(out[0], Output::AbortSetup);
        assert_eq!(error_code(&out).as_deref(), Some("rendezvous_lost"));
        assert!(matches!(
            out[2],
            Output::Emit(Event::Reconnecting { attempt: 1, .. })
        ));
        // A chat, by contrast, goes on without the rendezvous.
        let mut rig = Rig::chatting();
        assert_eq!(rig.at(400, Input::LinkLost), vec![]);
        assert_eq!(rig.m.poll_timeout(), None);
    }

    #[test]
    fn an_unavailable_matchmaker_is_asked_again_when_it_says() {
        let mut rig = Rig::waiting(Settings::default());
        let out = rig.at(
            0,
            Input::ServerError {
                code: ErrorCode::Unavailable,
                message: "try again".into(),
                retry_after: Some(2),
            },
        );
        assert_eq!(error_code(&out).as_deref(), Some("unavailable"));
        assert_eq!(rig.at(1_999, Input::Timer), vec![]);
        assert!(matches!(
            rig.at(2_000, Input::Timer)[..],
            [Output::Server(ClientMessage::Join { .. })]
        ));
        // A final refusal ends the waiting: nothing is tried again.
        let mut rig = Rig::waiting(Settings::default());
        let banned = Input::ServerError {
            code: ErrorCode::Banned,
            message: "banned".into(),
            retry_after: Some(600),
        };
        rig.at(0, banned);
        assert_eq!(rig.m.poll_timeout(), None);
        assert_eq!(
            rig.at(5, Input::Server(matched("m1", Transport::Webrtc))),
            vec![leave("m1")]
        );
    }

    #[test]
    fn a_refused_login_that_would_be_refused_again_is_not_retried() {
        let mut rig = Rig::new(Settings::default());
        rig.command(Command::Join(join()));
        let expired = ClientError::Server {
            code: ErrorCode::TokenExpired,
            message: "expired".into(),
            retry_after: None,
        };
        let out = rig.at(0, Input::LinkFailed(expired));
        assert_eq!(error_code(&out).as_deref(), Some("token_expired"));
        assert_eq!(out.len(), 1);
        assert_eq!(rig.m.poll_timeout(), None);
    }

    #[test]
    fn relay_only_without_a_relay_refuses_to_join() {
        let settings = Settings {
            relay_only: true,
            ..Settings::default()
        };
        let mut rig = Rig::new(settings);
        rig.command(Command::Join(join()));
        let out = rig.at(0, link_up(vec![]));
        assert_eq!(error_code(&out).as_deref(), Some("no_relay"));
        assert!(!out.iter().any(|o| matches!(o, Output::Server(_))));
        let turn = IceServer {
            urls: vec!["turn:127.0.0.1:3478".into()],
            username: Some("u".into()),
            credential: Some("c".into()),
        };
        let mut rig = Rig::new(settings);
        rig.command(Command::Join(join()));
        let out = rig.at(0, link_up(vec![turn]));
        assert!(
            matches!(out[1], Output::Server(ClientMessage::Join { ref transports, .. }) if transports == &[Transport::Webrtc])
        );
    }

    #[test]
    fn what_is_sent_is_checked_first_and_numbered() {
        let mut rig = Rig::waiting(Settings::default());
        let send = |text: &str, force| Command::Send {
            text: text.into(),
            force,
            id: None,
        };
        assert_eq!(
            error_code(&rig.command(send("hi", false))).as_deref(),
            Some("not_in_chat")
        );
        let mut rig = Rig::chatting();
        assert_eq!(
            error_code(&rig.command(send("  ", false))).as_deref(),
            Some("empty")
        );
        let long = "x".repeat(chat::MAX_TEXT_CHARS + 1);
        assert_eq!(
            error_code(&rig.command(send(&long, false))).as_deref(),
            Some("too_long")
        );
        let contact = "write me at ana@example.org";
        assert_eq!(
            error_code(&rig.command(send(contact, false))).as_deref(),
            Some("contact_details")
        );
        let out = rig.command(send(contact, true));
        assert!(
            matches!(&out[..], [Output::SendMessage { id, .. }] if id == "m1"),
            "{out:?}"
        );
        let out = rig.at(
            0,
            Input::Sent {
                id: "m1".into(),
                result: Err("closed".into()),
            },
        );
        assert_eq!(error_code(&out).as_deref(), Some("send_failed"));
        // Images are read by the driver, then numbered in the same series.
        assert_eq!(
            rig.command(Command::Image {
                path: "a.png".into()
            }),
            vec![Output::ReadImage("a.png".into())]
        );
        let out = rig.at(0, Input::ImageRead(Ok(("image/png", vec![1, 2]))));
        assert!(
            matches!(&out[..], [Output::SendImage { id, .. }] if id == "i2"),
            "{out:?}"
        );
    }

    #[test]
    fn a_received_message_is_acknowledged_and_a_bye_ends_the_chat() {
        let mut rig = Rig::chatting();
        let msg = Received::Message {
            id: "x".into(),
            text: "hello".into(),
            flagged: false,
        };
        let out = rig.at(400, Input::Chat(msg));
        assert_eq!(out[0], Output::Chat(ChatFrame::Ack { id: "x".into() }));
        assert!(matches!(&out[1], Output::Emit(Event::Message { text, .. }) if text == "hello"));
        assert_eq!(
            rig.at(500, Input::Chat(Received::Gone)),
            vec![
                Output::CloseChat,
                leave("m1"),
                Output::Emit(Event::PartnerLeft)
            ]
        );
        // Frames after the end are nobody's.
        assert_eq!(
            rig.at(510, Input::Chat(Received::Typing { on: true })),
            vec![]
        );
    }

    #[test]
    fn report_needs_a_partner_and_the_rendezvous_and_quit_ends_everything() {
        let mut rig = Rig::waiting(Settings::default());
        let report = || Command::Report {
            reason: "spam".into(),
        };
        assert_eq!(
            error_code(&rig.command(report())).as_deref(),
            Some("no_match")
        );
        let mut rig = Rig::chatting();
        assert!(matches!(
            rig.command(report())[..],
            [Output::Server(ClientMessage::Report { .. })]
        ));
        rig.at(400, Input::LinkLost);
        assert_eq!(
            error_code(&rig.command(report())).as_deref(),
            Some("rendezvous_unavailable")
        );
        // Blocking with no rendezvous does not end the chat either.
        assert_eq!(
            error_code(&rig.command(Command::Block)).as_deref(),
            Some("rendezvous_unavailable")
        );
        assert_eq!(
            rig.command(Command::Quit),
            vec![Output::EndChat, Output::DropLink, Output::Quit]
        );
    }
}
