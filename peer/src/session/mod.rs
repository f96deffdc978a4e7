//! A chat session: everything between "join" and "quit" for one device. It logs in to the
//! rendezvous, waits in the queue (reconnecting and joining again if the socket drops while
//! waiting), sets up the peer-to-peer channel when matched, and runs the chat over it.
//!
//! The session is driven by [`Command`]s and reports [`Event`]s; `anonchat chat --json`, the
//! terminal UI and the quickstart are thin shells around [`run`]. Its rules are
//! [`machine::Machine`], which does no I/O; [`run`] is the driver that owns the sockets.

mod conversation;
mod gallery;
mod interface;
mod link;
mod machine;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anonchat_protocol::chat::{self, ChatFrame};
use anonchat_protocol::rendezvous::{IceServer, Role, ServerMessage};
use anonchat_protocol::signaling::SignalData;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use anonchat_protocol::chat::SETUP_TIMEOUT;
pub use interface::{ClientCode, Command, Event, EventCode, JoinRequest, parse_command};

use crate::exposure::Exposure;
use crate::identity::Identity;
use crate::image_check;
use crate::libp2p_session;
use crate::rendezvous::ClientError;
use crate::transport::{ChatLink, Inbound};
use crate::webrtc_session::{self, SessionError};
use conversation::{Conversation, Received};
use gallery::Gallery;
pub use gallery::{MAX_IMAGE_BYTES_PER_CHAT, MAX_IMAGES_PER_CHAT};
use link::Link;
use machine::{At, Input, Machine, Opened, Output, Settings, SetupError};

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
    let settings = Settings {
        relay_only: config.webrtc.relay_only,
        loopback_only: config.webrtc.loopback_only,
        libp2p: config.libp2p.is_some(),
    };
    let mut driver = Driver {
        machine: Machine::new(settings),
        gallery: Gallery::new(config.save_images.clone()),
        config,
        events,
        link: None,
        setup: None,
        opened: None,
        chat: None,
    };
    loop {
        let input = tokio::select! {
            command = commands.recv() => Input::Command(command.unwrap_or(Command::Quit)),
            msg = recv_link(&mut driver.link) => driver.link_input(msg),
            wake = setup_wake(&mut driver.setup) => driver.setup_input(wake),
            inbound = recv_chat(&mut driver.chat) => Input::Chat(inbound),
            () = timer(driver.machine.poll_timeout()) => Input::Timer,
        };
        if !driver.feed(input).await {
            return;
        }
    }
}

/// The session's I/O: what [`Machine`] asks for is done here, and every result goes back to it
/// as an input.
struct Driver {
    machine: Machine,
    config: SessionConfig,
    events: mpsc::UnboundedSender<Event>,
    /// The rendezvous connection.
    link: Option<Link>,
    /// The peer-to-peer set-up in progress.
    setup: Option<Setup>,
    /// A link the set-up opened, until the machine makes it the chat.
    opened: Option<ChatLink>,
    chat: Option<Conversation>,
    /// This chat's received images.
    gallery: Gallery,
}

/// A set-up task and its signaling channels.
struct Setup {
    to_partner: mpsc::UnboundedReceiver<SignalData>,
    from_partner: mpsc::UnboundedSender<SignalData>,
    task: JoinHandle<Result<ChatLink, SetupError>>,
}

enum SetupWake {
    Signal(SignalData),
    Done(Result<ChatLink, SetupError>),
}

/// What the driver did, for the loop: nothing more, a result for the machine, or the end.
enum Step {
    Done,
    Then(Input),
    Quit,
}

async fn recv_link(link: &mut Option<Link>) -> Option<Result<ServerMessage, ClientError>> {
    match link {
        Some(link) => link.recv().await,
        None => std::future::pending().await,
    }
}

async fn setup_wake(setup: &mut Option<Setup>) -> SetupWake {
    match setup {
        Some(s) => tokio::select! {
            Some(signal) = s.to_partner.recv() => SetupWake::Signal(signal),
            done = &mut s.task => SetupWake::Done(done.unwrap_or(Err(SetupError::WebRtc(SessionError::Failed)))),
        },
        None => std::future::pending().await,
    }
}

/// What the partner did: the chat's frames, decoded and checked.
async fn recv_chat(chat: &mut Option<Conversation>) -> Received {
    match chat {
        Some(c) => {
            let inbound = c.recv().await.unwrap_or(Inbound::Closed);
            c.on_inbound(inbound)
        }
        None => std::future::pending().await,
    }
}

async fn timer(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    fn link_input(&mut self, msg: Option<Result<ServerMessage, ClientError>>) -> Input {
        match msg {
            Some(Ok(msg)) => Input::Server(msg),
            Some(Err(ClientError::Server {
                code,
                message,
                retry_after,
            })) => Input::ServerError {
                code,
                message,
                retry_after,
            },
            lost => {
                if let Some(Err(e)) = lost {
                    tracing::info!("rendezvous connection lost: {e}");
                }
                self.link = None;
                Input::LinkLost
            }
        }
    }

    fn setup_input(&mut self, wake: SetupWake) -> Input {
        match wake {
            SetupWake::Signal(signal) => Input::SetupSignal(signal),
            SetupWake::Done(result) => {
                self.setup = None;
                Input::SetupDone(result.map(|link| {
                    let (path, local_candidate, remote_candidate) = link.path();
                    let opened = Opened {
                        transport: link.transport().to_owned(),
                        safety_code: link.safety_code(),
                        path: path.to_owned(),
                        local_candidate,
                        remote_candidate,
                    };
                    self.opened = Some(link);
                    opened
                }))
            }
        }
    }

    /// Gives `input` to the machine and does what it says, results included; false when the
    /// session is over.
    async fn feed(&mut self, input: Input) -> bool {
        let mut inputs = std::collections::VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            for output in self.machine.handle(input, At::now()) {
                match self.perform(output).await {
                    Step::Done => {}
                    Step::Then(result) => inputs.push_back(result),
                    Step::Quit => return false,
                }
            }
        }
        // An opened link the machine did not take (the match ended meanwhile) is closed.
        self.opened = None;
        true
    }

    async fn perform(&mut self, output: Output) -> Step {
        match output {
            Output::Emit(event) => {
                let _ = self.events.send(event);
            }
            Output::Server(msg) => {
                if let Some(link) = &self.link {
                    link.send(msg);
                }
            }
            Output::Connect => {
                let config = &self.config;
                return Step::Then(
                    match Link::connect(&config.rendezvous, &config.identity, &config.token).await {
                        Ok(link) => {
                            let up = Input::LinkUp {
                                daily_remaining: link.welcome.daily_remaining,
                                ice_servers: link.welcome.ice_servers.clone(),
                            };
                            self.link = Some(link);
                            up
                        }
                        Err(e) => Input::LinkFailed(e),
                    },
                );
            }
            Output::DropLink => self.link = None,
            Output::StartSetup {
                role,
                ice_servers,
                libp2p,
            } => self.start_setup(role, ice_servers, libp2p),
            Output::AbortSetup => {
                if let Some(setup) = self.setup.take() {
                    setup.task.abort();
                }
            }
            Output::ToSetup(signal) => {
                if let Some(setup) = &self.setup {
                    let _ = setup.from_partner.send(signal);
                }
            }
            Output::OpenChat => {
                if let Some(link) = self.opened.take() {
                    let chat = Conversation::new(link);
                    let _ = chat.send(&ChatFrame::Hello { v: chat::VERSION }).await;
                    self.gallery.clear();
                    self.chat = Some(chat);
                }
            }
            Output::Chat(frame) => {
                if let Some(chat) = &self.chat {
                    let _ = chat.send(&frame).await;
                }
            }
            Output::SendMessage { id, frame } => {
                let result = match &self.chat {
                    Some(chat) => chat.send(&frame).await,
                    None => Err(NO_CHAT.into()),
                };
                return Step::Then(Input::Sent { id, result });
            }
            Output::ReadImage(path) => {
                let read = tokio::task::spawn_blocking(move || read_image(&path))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                return Step::Then(Input::ImageRead(read));
            }
            Output::SendImage { id, mime, data } => {
                let result = match &self.chat {
                    Some(chat) => chat
                        .send_image(&id, mime, &data)
                        .await
                        .map_err(|e| e.to_string()),
                    None => Err(NO_CHAT.into()),
                };
                return Step::Then(Input::Sent { id, result });
            }
            Output::KeepImage { id, info, data } => {
                let bytes = data.len();
                let result = self.gallery.receive(id.clone(), info.mime, data);
                return Step::Then(Input::ImageKept {
                    id,
                    info,
                    bytes,
                    result,
                });
            }
            Output::Save(id) => {
                let saved = self.gallery.save(id.as_deref(), &self.config.images_dir);
                return Step::Then(Input::Saved(saved));
            }
            Output::EndChat => {
                if let Some(chat) = self.chat.take() {
                    chat.end().await;
                }
            }
            Output::CloseChat => {
                if let Some(chat) = self.chat.take() {
                    chat.link.close().await;
                }
            }
            Output::Quit => return Step::Quit,
        }
        Step::Done
    }

    /// Starts the set-up (any earlier one aborted): libp2p with `libp2p`'s exposure, else WebRTC.
    fn start_setup(&mut self, role: Role, ice_servers: Vec<IceServer>, libp2p: Option<Exposure>) {
        if let Some(earlier) = self.setup.take() {
            earlier.task.abort();
        }
        let (out_tx, to_partner) = mpsc::unbounded_channel();
        let (from_partner, in_rx) = mpsc::unbounded_channel();
        let task = match (&self.config.libp2p, libp2p) {
            (Some(options), Some(exposure)) => {
                let mut options = options.clone();
                options.exposure = exposure;
                tokio::spawn(async move {
                    let connected = libp2p_session::connect(role, &options, out_tx, in_rx).await?;
                    Ok(ChatLink::Libp2p(connected))
                })
            }
            _ => {
                let mut options = self.config.webrtc.clone();
                options.ice_servers = ice_servers;
                tokio::spawn(async move {
                    let connected = webrtc_session::connect(role, &options, out_tx, in_rx).await?;
                    Ok(ChatLink::WebRtc(connected))
                })
            }
        };
        self.setup = Some(Setup {
            to_partner,
            from_partner,
            task,
        });
    }
}

/// What sending says when the chat closed under it.
const NO_CHAT: &str = "the chat is closed";

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
