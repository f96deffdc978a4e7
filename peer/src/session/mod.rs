//! A chat session: everything between "join" and "quit" for one device. It logs in to the
//! rendezvous, waits in the queue (reconnecting and joining again if the socket drops while
//! waiting), sets up the peer-to-peer channel when matched, and runs the chat over it.
//!
//! The session is driven by [`Command`]s and reports [`Event`]s; `anonchat chat --json`, the
//! terminal UI and the quickstart are thin shells around [`run`].

mod conversation;
mod gallery;
mod interface;
mod link;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anonchat_protocol::chat::{self, ChatFrame};
use anonchat_protocol::rendezvous::{
    ClientMessage, ErrorCode, IceServer, Profile, Role, ServerMessage, Transport,
};
use anonchat_protocol::signaling::SignalData;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use anonchat_protocol::chat::SETUP_TIMEOUT;
pub use interface::{ClientCode, Command, Event, EventCode, JoinRequest, parse_command};

use crate::exposure::{self, Exposure};
use crate::identity::Identity;
use crate::image_check;
use crate::libp2p_session::{self, Libp2pError};
use crate::rendezvous::ClientError;
use crate::transport::{ChatLink, Inbound};
use crate::webrtc_session::{self, SessionError};
use conversation::{Conversation, Received};
use gallery::{Gallery, GalleryError};
pub use gallery::{MAX_IMAGE_BYTES_PER_CHAT, MAX_IMAGES_PER_CHAT};
use link::Link;

pub struct SessionConfig {
    /// `ws://host:port/v1/ws`.
    pub rendezvous: String,
    pub identity: Arc<Identity>,
    /// The verification token for `identity`.
    pub token: String,
    /// ICE servers are taken from the rendezvous; the rest from here.
    pub webrtc: webrtc_session::Options,
    /// Offer libp2p too (terminal clients); `None`: WebRTC only.
    pub libp2p: Option<libp2p_session::Options>,
    /// Where `save` writes a received image.
    pub images_dir: PathBuf,
    /// Save every received image here as it comes; `None`: only on `save`.
    pub save_images: Option<PathBuf>,
}

/// Runs the session until `quit` or until `commands` closes.
pub async fn run(
    config: SessionConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Event>,
) {
    let gallery = Gallery::new(config.save_images.clone());
    let mut session = Session {
        config,
        events,
        link: None,
        join: None,
        phase: Phase::Idle,
        last_receipt: None,
        retry: None,
        attempt: 0,
        sent: 0,
        gallery,
    };
    loop {
        let wake = tokio::select! {
            command = commands.recv() => Wake::Command(command.unwrap_or(Command::Quit)),
            msg = recv_link(&mut session.link) => Wake::Server(msg),
            wake = phase_wake(&mut session.phase) => wake,
            () = retry_due(session.retry) => Wake::Retry,
        };
        if !session.on(wake).await {
            return;
        }
    }
}

enum Wake {
    Command(Command),
    Server(Option<Result<ServerMessage, ClientError>>),
    Signal(SignalData),
    SetUp(Result<ChatLink, SetupError>),
    Chat(Inbound),
    Retry,
}

enum Phase {
    Idle,
    Waiting,
    Connecting(Box<Pending>),
    Chatting(Box<Chat>),
}

/// Matched; the peer-to-peer channel is being set up.
struct Pending {
    match_id: String,
    matched_at: Instant,
    to_partner: mpsc::UnboundedReceiver<SignalData>,
    from_partner: mpsc::UnboundedSender<SignalData>,
    setup: JoinHandle<Result<ChatLink, SetupError>>,
    role: Role,
    /// The ICE servers for this match (fresh TURN credentials).
    ice_servers: Vec<IceServer>,
    /// Setting up libp2p (else WebRTC).
    libp2p: bool,
    /// Why libp2p was given up for WebRTC, if it was.
    fallback: Option<String>,
}

/// Why a set-up failed.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error(transparent)]
    WebRtc(#[from] SessionError),
    #[error(transparent)]
    Libp2p(#[from] Libp2pError),
}

struct Chat {
    match_id: String,
    conversation: Conversation,
}

struct Session {
    config: SessionConfig,
    events: mpsc::UnboundedSender<Event>,
    link: Option<Link>,
    /// The last join, for `next` and for joining again after a reconnect.
    join: Option<JoinRequest>,
    phase: Phase,
    /// The sealed receipt of the current or last match, for `report` and `block`.
    last_receipt: Option<String>,
    /// When to try connecting to the rendezvous again.
    retry: Option<Instant>,
    attempt: u32,
    sent: u64,
    /// This chat's received images.
    gallery: Gallery,
}

async fn recv_link(link: &mut Option<Link>) -> Option<Result<ServerMessage, ClientError>> {
    match link {
        Some(link) => link.recv().await,
        None => std::future::pending().await,
    }
}

/// What the current phase is waiting for: the set-up's signaling and result, or the chat.
async fn phase_wake(phase: &mut Phase) -> Wake {
    match phase {
        Phase::Connecting(p) => tokio::select! {
            Some(signal) = p.to_partner.recv() => Wake::Signal(signal),
            done = &mut p.setup => Wake::SetUp(done.unwrap_or(Err(SetupError::WebRtc(SessionError::Failed)))),
        },
        Phase::Chatting(c) => Wake::Chat(c.conversation.recv().await.unwrap_or(Inbound::Closed)),
        Phase::Idle | Phase::Waiting => std::future::pending().await,
    }
}

async fn retry_due(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Session {
    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn error(&self, code: impl Into<EventCode>, message: impl Into<String>) {
        self.emit(Event::error(code, message));
    }

    /// Handles one wake-up; false when the session is over.
    async fn on(&mut self, wake: Wake) -> bool {
        match wake {
            Wake::Command(command) => return self.on_command(command).await,
            Wake::Server(Some(Ok(msg))) => self.on_server(msg).await,
            Wake::Server(Some(Err(ClientError::Server {
                code,
                message,
                retry_after,
                ..
            }))) => {
                // Leaving a match the server already ended is not worth a word.
                let in_match = matches!(self.phase, Phase::Connecting(_) | Phase::Chatting(_));
                if code != ErrorCode::NotInMatch || in_match {
                    self.error(code, message);
                }
                // The matchmaker could not take the join: join again when it says to.
                if code == ErrorCode::Unavailable && matches!(self.phase, Phase::Waiting) {
                    let wait = Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 60));
                    self.retry = Some(Instant::now() + wait);
                }
                if matches!(
                    code,
                    ErrorCode::DailyLimit
                        | ErrorCode::Banned
                        | ErrorCode::InvalidProfile
                        | ErrorCode::Replaced
                        | ErrorCode::TokenExpired
                ) && matches!(self.phase, Phase::Waiting)
                {
                    self.phase = Phase::Idle;
                }
            }
            Wake::Server(Some(Err(e))) => {
                tracing::info!("rendezvous connection lost: {e}");
                self.link_lost();
            }
            Wake::Server(None) => self.link_lost(),
            Wake::Signal(signal) => {
                if let (Phase::Connecting(p), Some(link)) = (&self.phase, &self.link) {
                    let data = serde_json::to_value(&signal).expect("signals serialize");
                    link.send(ClientMessage::Signal {
                        match_id: p.match_id.clone(),
                        data,
                    });
                }
            }
            Wake::SetUp(result) => self.on_setup(result).await,
            Wake::Chat(inbound) => self.on_chat(inbound).await,
            Wake::Retry => {
                self.retry = None;
                match &self.link {
                    // Still connected: it was a join the matchmaker could not take.
                    Some(_) if matches!(self.phase, Phase::Waiting) => self.send_join(),
                    Some(_) => {}
                    None => self.connect().await,
                }
            }
        }
        true
    }

    async fn on_command(&mut self, command: Command) -> bool {
        match command {
            Command::Join(join) => {
                self.end_match().await;
                self.join = Some(join);
                self.start_waiting().await;
            }
            Command::Next => {
                self.end_match().await;
                if self.join.is_some() {
                    self.start_waiting().await;
                } else {
                    self.error(
                        ClientCode::NotJoined,
                        "join first: there is no profile to join with",
                    );
                }
            }
            Command::Leave => {
                self.end_match().await;
                self.emit(Event::Left);
            }
            Command::Send { text, force, id } => self.send_text(text, force, id).await,
            Command::Typing { on } => {
                if let Phase::Chatting(chat) = &self.phase {
                    let _ = chat.conversation.send(&ChatFrame::Typing { on }).await;
                }
            }
            Command::Image { path } => self.send_image(path).await,
            Command::Save { id } => self.save(id),
            Command::Report { reason } => {
                self.with_receipt(|receipt| ClientMessage::Report { receipt, reason });
            }
            Command::Block => {
                if self.with_receipt(|receipt| ClientMessage::Block { receipt }) {
                    self.end_match().await;
                }
            }
            Command::Quit => {
                self.end_match().await;
                self.link = None;
                return false;
            }
        }
        true
    }

    /// Sends a report or block for the current or last match; false when it could not.
    fn with_receipt(&self, message: impl FnOnce(String) -> ClientMessage) -> bool {
        let Some(receipt) = self.last_receipt.clone() else {
            self.error(
                ClientCode::NoMatch,
                "there is no partner to report or block yet",
            );
            return false;
        };
        match &self.link {
            Some(link) if link.send(message(receipt)) => true,
            _ => {
                self.error(
                    ClientCode::RendezvousUnavailable,
                    "the rendezvous is not reachable right now; try again in a moment",
                );
                false
            }
        }
    }

    /// Ends the current match (saying `bye` to the partner and `leave` to the rendezvous), or
    /// leaves the queue.
    async fn end_match(&mut self) {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Idle => {}
            Phase::Waiting => {
                if let Some(link) = &self.link {
                    link.send(ClientMessage::Cancel {});
                }
            }
            Phase::Connecting(p) => {
                p.setup.abort();
                self.send_leave(p.match_id);
            }
            Phase::Chatting(chat) => {
                chat.conversation.end().await;
                self.send_leave(chat.match_id);
            }
        }
    }

    fn send_leave(&self, match_id: String) {
        if let Some(link) = &self.link {
            link.send(ClientMessage::Leave { match_id });
        }
    }

    async fn start_waiting(&mut self) {
        self.phase = Phase::Waiting;
        if self.link.is_none() {
            // Connecting joins once logged in.
            self.retry = None;
            self.attempt = 0;
            self.connect().await;
        } else {
            self.send_join();
        }
    }

    /// What this user's settings let a partner learn, with the servers the rendezvous offers.
    fn exposure(&self, servers: &[IceServer]) -> Exposure {
        if self.config.webrtc.loopback_only {
            Exposure::Everything
        } else {
            Exposure::new(self.config.webrtc.relay_only, servers)
        }
    }

    fn send_join(&mut self) {
        let (Some(link), Some(join)) = (&self.link, &self.join) else {
            return;
        };
        let servers = &link.welcome.ice_servers;
        // Refused here, before a partner's match is used up on a connection that cannot be.
        if self.config.webrtc.relay_only && !exposure::has_turn(servers) {
            self.error(
                ClientCode::NoRelay,
                "relay-only mode hides your address behind a TURN relay, and this rendezvous \
                 offers none; chat without --relay-only, or use a rendezvous that offers TURN",
            );
            self.phase = Phase::Idle;
            return;
        }
        let libp2p = self.config.libp2p.is_some() && self.exposure(servers).offers_libp2p();
        link.send(ClientMessage::Join {
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

    /// Logs in to the rendezvous, and joins if waiting; on failure schedules another try.
    async fn connect(&mut self) {
        let config = &self.config;
        match Link::connect(&config.rendezvous, &config.identity, &config.token).await {
            Ok(link) => {
                self.attempt = 0;
                self.emit(Event::Ready {
                    daily_remaining: link.welcome.daily_remaining,
                });
                self.link = Some(link);
                if matches!(self.phase, Phase::Waiting) {
                    self.send_join();
                }
            }
            Err(e) if link::worth_retrying(&e) => {
                let wait = link::backoff(self.attempt);
                self.attempt += 1;
                self.retry = Some(Instant::now() + wait);
                self.error(ClientCode::RendezvousUnavailable, e.to_string());
                self.emit(Event::Reconnecting {
                    attempt: self.attempt,
                    in_ms: wait.as_millis() as u64,
                });
            }
            Err(e) => {
                let code = match &e {
                    ClientError::Server { code, .. } => EventCode::from(*code),
                    _ => ClientCode::RendezvousRefused.into(),
                };
                self.error(code, e.to_string());
                if matches!(self.phase, Phase::Waiting) {
                    self.phase = Phase::Idle;
                }
            }
        }
    }

    /// The rendezvous socket dropped. Waiting users are put back in the queue by reconnecting;
    /// a set-up in progress needs signaling, so it is given up and the user queued again; a
    /// chat in progress does not need the rendezvous at all.
    fn link_lost(&mut self) {
        self.link = None;
        let rejoin = match &self.phase {
            Phase::Waiting => true,
            Phase::Connecting(p) => {
                p.setup.abort();
                self.error(
                    ClientCode::RendezvousLost,
                    "the rendezvous went away while connecting to the partner; waiting again",
                );
                self.phase = Phase::Waiting;
                true
            }
            Phase::Idle | Phase::Chatting(_) => false,
        };
        if rejoin && self.retry.is_none() {
            let wait = link::backoff(self.attempt);
            self.attempt += 1;
            self.retry = Some(Instant::now() + wait);
            self.emit(Event::Reconnecting {
                attempt: self.attempt,
                in_ms: wait.as_millis() as u64,
            });
        }
    }

    async fn on_server(&mut self, msg: ServerMessage) {
        match msg {
            ServerMessage::Queued { waiting } => self.emit(Event::Queued { waiting }),
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
                    self.send_leave(match_id);
                    return;
                }
                self.last_receipt = Some(receipt);
                self.emit(Event::Matched { partner });
                let libp2p = transport == Transport::Libp2p && self.config.libp2p.is_some();
                // Credentials minted for this match; the welcome's for an older server.
                let ice_servers = match (ice_servers.is_empty(), &self.link) {
                    (true, Some(link)) => link.welcome.ice_servers.clone(),
                    _ => ice_servers,
                };
                let pending = self.start_setup(match_id, role, ice_servers, libp2p, Instant::now());
                self.phase = Phase::Connecting(Box::new(pending));
            }
            ServerMessage::Signal { match_id, data } => {
                if let Phase::Connecting(p) = &self.phase
                    && p.match_id == match_id
                {
                    match serde_json::from_value::<SignalData>(data) {
                        // The partner gave libp2p up: follow it to WebRTC at once.
                        Ok(signal) if p.libp2p && !matches!(signal, SignalData::Libp2p { .. }) => {
                            self.fall_back("the partner switched to WebRTC".into());
                            if let Phase::Connecting(p) = &self.phase {
                                let _ = p.from_partner.send(signal);
                            }
                        }
                        Ok(signal) => {
                            let _ = p.from_partner.send(signal);
                        }
                        Err(e) => tracing::warn!("ignoring a malformed signal: {e}"),
                    }
                }
            }
            ServerMessage::PartnerLeft { match_id } => {
                let current = match &self.phase {
                    Phase::Connecting(p) => p.match_id == match_id,
                    Phase::Chatting(c) => c.match_id == match_id,
                    _ => false,
                };
                if current {
                    self.partner_gone().await;
                }
            }
            ServerMessage::Reported {} => self.emit(Event::Reported),
            ServerMessage::Blocked {} => self.emit(Event::Blocked),
            ServerMessage::Cancelled {} => {}
            other => tracing::debug!("unexpected from the rendezvous: {other:?}"),
        }
    }

    fn start_setup(
        &self,
        match_id: String,
        role: Role,
        ice_servers: Vec<IceServer>,
        libp2p: bool,
        matched_at: Instant,
    ) -> Pending {
        let (out_tx, to_partner) = mpsc::unbounded_channel();
        let (from_partner, in_rx) = mpsc::unbounded_channel();
        let setup = match (&self.config.libp2p, libp2p) {
            (Some(options), true) => {
                let mut options = options.clone();
                options.exposure = self.exposure(&ice_servers);
                tokio::spawn(async move {
                    let connected = libp2p_session::connect(role, &options, out_tx, in_rx).await?;
                    Ok(ChatLink::Libp2p(connected))
                })
            }
            _ => {
                let mut options = self.config.webrtc.clone();
                options.ice_servers = ice_servers.clone();
                tokio::spawn(async move {
                    let connected = webrtc_session::connect(role, &options, out_tx, in_rx).await?;
                    Ok(ChatLink::WebRtc(connected))
                })
            }
        };
        Pending {
            match_id,
            matched_at,
            to_partner,
            from_partner,
            setup,
            role,
            ice_servers,
            libp2p,
            fallback: None,
        }
    }

    /// Gives the libp2p set-up up and sets up WebRTC for the same match instead.
    fn fall_back(&mut self, why: String) {
        let Phase::Connecting(p) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        p.setup.abort();
        tracing::info!("falling back to WebRTC: {why}");
        let mut pending = self.start_setup(p.match_id, p.role, p.ice_servers, false, p.matched_at);
        pending.fallback = Some(why);
        self.phase = Phase::Connecting(Box::new(pending));
    }

    async fn on_setup(&mut self, result: Result<ChatLink, SetupError>) {
        if let (Phase::Connecting(p), Err(e)) = (&self.phase, &result)
            && p.libp2p
        {
            let why = e.to_string();
            return self.fall_back(why);
        }
        let Phase::Connecting(p) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        match result {
            Ok(link) => {
                let safety_code = link.safety_code();
                let transport = link.transport().to_owned();
                let (path, local_candidate, remote_candidate) = link.path();
                let conversation = Conversation::new(link);
                let _ = conversation
                    .send(&ChatFrame::Hello { v: chat::VERSION })
                    .await;
                self.emit(Event::Connected {
                    transport,
                    setup_ms: p.matched_at.elapsed().as_secs_f64() * 1000.0,
                    safety_code,
                    fallback: p.fallback,
                    path: path.to_owned(),
                    local_candidate,
                    remote_candidate,
                });
                self.gallery.clear();
                self.phase = Phase::Chatting(Box::new(Chat {
                    match_id: p.match_id,
                    conversation,
                }));
            }
            Err(e) => {
                let code = match e {
                    SetupError::WebRtc(SessionError::NoRelay) => ClientCode::NoRelay,
                    SetupError::WebRtc(SessionError::Timeout(_)) => ClientCode::ConnectTimeout,
                    SetupError::WebRtc(SessionError::UdpBlocked(_)) => ClientCode::UdpBlocked,
                    SetupError::WebRtc(SessionError::RelayRefused) => ClientCode::RelayRefused,
                    _ => ClientCode::ConnectFailed,
                };
                self.error(code, e.to_string());
                self.send_leave(p.match_id);
            }
        }
    }

    async fn on_chat(&mut self, inbound: Inbound) {
        let Phase::Chatting(chat) = &mut self.phase else {
            return;
        };
        match chat.conversation.on_inbound(inbound) {
            Received::Hello | Received::Nothing => {}
            Received::Message { id, text, flagged } => {
                let _ = chat
                    .conversation
                    .send(&ChatFrame::Ack { id: id.clone() })
                    .await;
                self.emit(Event::Message { id, text, flagged });
            }
            Received::Ack { id } => self.emit(Event::Ack { id }),
            Received::Typing { on } => self.emit(Event::Typing { on }),
            Received::Image { id, info, data } => {
                let _ = chat
                    .conversation
                    .send(&ChatFrame::Ack { id: id.clone() })
                    .await;
                let bytes = data.len();
                match self.gallery.receive(id.clone(), info.mime, data) {
                    Ok(path) => self.emit(Event::Image {
                        id,
                        mime: info.mime.to_owned(),
                        bytes,
                        width: info.width,
                        height: info.height,
                        path,
                    }),
                    Err(e @ GalleryError::QuotaReached) => {
                        self.error(ClientCode::ImageQuota, e.to_string())
                    }
                    Err(e) => self.error(ClientCode::ImageNotSaved, e.to_string()),
                }
            }
            Received::Refused(e) => self.error(
                ClientCode::BadFrame,
                format!("refused a frame from the partner: {e}"),
            ),
            Received::Gone => self.partner_gone().await,
        }
    }

    /// The partner left (said `bye`, closed the channel, or the rendezvous said so).
    async fn partner_gone(&mut self) {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Connecting(p) => {
                p.setup.abort();
                self.send_leave(p.match_id);
            }
            Phase::Chatting(chat) => {
                chat.conversation.link.close().await;
                self.send_leave(chat.match_id);
            }
            other => {
                self.phase = other;
                return;
            }
        }
        self.emit(Event::PartnerLeft);
    }

    async fn send_text(&mut self, text: String, force: bool, id: Option<String>) {
        let Phase::Chatting(chat) = &self.phase else {
            self.error(ClientCode::NotInChat, "there is nobody to send to yet");
            return;
        };
        if text.trim().is_empty() {
            self.error(ClientCode::Empty, "nothing to send");
            return;
        }
        if text.chars().count() > chat::MAX_TEXT_CHARS {
            self.error(
                ClientCode::TooLong,
                chat::ChatError::TextTooLong.to_string(),
            );
            return;
        }
        if !force && chat::contains_contact_details(&text) {
            self.error(
                ClientCode::ContactDetails,
                "this looks like an e-mail address or a phone number, which strangers can misuse; \
                 send it anyway with /send! (or \"force\":true)",
            );
            return;
        }
        self.sent += 1;
        let id = id.unwrap_or_else(|| format!("m{}", self.sent));
        let frame = ChatFrame::Msg {
            id: id.clone(),
            text,
        };
        match chat.conversation.send(&frame).await {
            Ok(()) => self.emit(Event::Sent { id }),
            Err(e) => self.error(ClientCode::SendFailed, e.to_string()),
        }
    }

    async fn send_image(&mut self, path: PathBuf) {
        if !matches!(self.phase, Phase::Chatting(_)) {
            self.error(ClientCode::NotInChat, "there is nobody to send to yet");
            return;
        }
        let checked = tokio::task::spawn_blocking(move || read_image(&path))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        let (mime, data) = match checked {
            Ok(image) => image,
            Err(message) => return self.error(ClientCode::BadImage, message),
        };
        self.sent += 1;
        let id = format!("i{}", self.sent);
        let Phase::Chatting(chat) = &self.phase else {
            return;
        };
        match chat.conversation.send_image(&id, mime, &data).await {
            Ok(()) => self.emit(Event::Sent { id }),
            Err(e) => self.error(ClientCode::SendFailed, e.to_string()),
        }
    }

    fn save(&mut self, id: Option<String>) {
        let dir = self.config.images_dir.clone();
        match self.gallery.save(id.as_deref(), &dir) {
            Ok((id, path)) => self.emit(Event::Saved { id, path }),
            Err(e @ (GalleryError::NothingToSave | GalleryError::Unknown(_))) => {
                self.error(ClientCode::NoSuchImage, e.to_string())
            }
            Err(e) => self.error(ClientCode::ImageNotSaved, e.to_string()),
        }
    }
}

/// Reads and checks an image to send: at most 1 MiB, JPEG, PNG or WebP, and decodable.
fn read_image(path: &std::path::Path) -> Result<(&'static str, Vec<u8>), String> {
    let name = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{name}: {e}"))?
        .len();
    if size > chat::MAX_IMAGE_BYTES as u64 {
        return Err(format!(
            "{name} is {size} bytes; images are at most {} bytes",
            chat::MAX_IMAGE_BYTES
        ));
    }
    let data = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    let info = image_check::check_image(&data).map_err(|e| format!("{name}: {e}"))?;
    Ok((info.mime, data))
}
