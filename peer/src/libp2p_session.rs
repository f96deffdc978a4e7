//! A libp2p session between two terminal clients (DESIGN.md §6): each side makes a key for this
//! match only (never the device key, so partners do not learn device ids), listens on TCP and
//! QUIC, and announces `{kind: "libp2p", peer_id, addrs}` through the rendezvous; the offerer
//! dials, Noise proves the announced peer id, and the chat runs on one stream
//! `/anonchat/chat/1` with length-prefixed frames.
//!
//! The stream's framing is [`anonchat_protocol::stream_codec`]; this module is the I/O around it.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anonchat_protocol::rendezvous::Role;
use anonchat_protocol::signaling::SignalData;
use anonchat_protocol::stream_codec::{StreamCodec, StreamFrame};
use asynchronous_codec::{FramedRead, FramedWrite};
use futures_util::{AsyncReadExt, SinkExt, StreamExt};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent, dial_opts::DialOpts};
use libp2p::{Multiaddr, PeerId, StreamProtocol, identify, identity, noise, ping, tcp, yamux};
use tokio::sync::{mpsc, oneshot};

use crate::exposure::Exposure;
use crate::transport::Inbound;

pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/anonchat/chat/1");
/// How long closing waits for what was sent before (a `bye`) to leave.
const CLOSE_GRACE: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct Options {
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/0` and `/ip4/0.0.0.0/udp/0/quic-v1`.
    pub listen: Vec<Multiaddr>,
    /// How long the libp2p set-up may take before the session falls back to WebRTC.
    pub timeout: Duration,
    /// Which listen addresses may be announced to the partner.
    pub exposure: Exposure,
}

impl Options {
    /// TCP and QUIC on every interface, or on loopback only.
    pub fn new(loopback_only: bool) -> Options {
        let ip = if loopback_only {
            "127.0.0.1"
        } else {
            "0.0.0.0"
        };
        Options {
            listen: vec![
                format!("/ip4/{ip}/tcp/0").parse().expect("valid"),
                format!("/ip4/{ip}/udp/0/quic-v1").parse().expect("valid"),
            ],
            timeout: Duration::from_secs(5),
            exposure: Exposure::Everything,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Libp2pError {
    #[error("libp2p: {0}")]
    Setup(String),
    #[error("the partner's libp2p announcement was invalid: {0}")]
    BadSignal(String),
    #[error("no libp2p connection to the partner within {0:?}")]
    Timeout(Duration),
    #[error("the partner could not be reached over libp2p: {0}")]
    Dial(String),
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    stream: libp2p_stream::Behaviour,
}

/// What the writing task is asked to do, in order.
enum Outgoing {
    Frame(StreamFrame),
    /// Flush and close this side of the stream (the partner reads its end).
    Close,
}

/// An open chat stream to the partner.
pub struct Connected {
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// Turns true when the partner's side of the stream has ended.
    partner_done: tokio::sync::watch::Receiver<bool>,
    pub inbound: mpsc::UnboundedReceiver<Inbound>,
    pub local: PeerId,
    pub remote: PeerId,
    /// `tcp` or `quic`.
    pub via: &'static str,
    pub setup: Duration,
    /// Dropping it stops the swarm.
    _stop: oneshot::Sender<()>,
}

impl Connected {
    pub fn send_text(&self, text: String) -> bool {
        let frame = StreamFrame::Text(text);
        self.outgoing.send(Outgoing::Frame(frame)).is_ok()
    }

    pub fn send_binary(&self, data: &[u8]) -> bool {
        let frame = StreamFrame::Binary(bytes::Bytes::copy_from_slice(data));
        self.outgoing.send(Outgoing::Frame(frame)).is_ok()
    }

    /// Closes this side of the stream and waits (at most 250 ms) for the partner to close its
    /// side, which it does once it has read everything before the end, a `bye` included: only
    /// then is it safe to drop `self`, which stops the swarm and whatever it still buffers.
    pub async fn close(&self) {
        let _ = self.outgoing.send(Outgoing::Close);
        let mut partner_done = self.partner_done.clone();
        let _ = tokio::time::timeout(CLOSE_GRACE, partner_done.wait_for(|done| *done)).await;
    }
}

/// Sets up the session in `role`, announcing this side on `outgoing` and reading the partner's
/// announcement from `incoming`, until the chat stream is open.
pub async fn connect(
    role: Role,
    options: &Options,
    outgoing: mpsc::UnboundedSender<SignalData>,
    mut incoming: mpsc::UnboundedReceiver<SignalData>,
) -> Result<Connected, Libp2pError> {
    let started = Instant::now();
    let setup_error = |e: &dyn std::fmt::Display| Libp2pError::Setup(e.to_string());
    // A key for this match only.
    let key = identity::Keypair::generate_ed25519();
    let local = key.public().to_peer_id();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| setup_error(&e))?
        .with_quic()
        .with_behaviour(|key| Behaviour {
            identify: identify::Behaviour::new(identify::Config::new(
                "/anonchat/1.0.0".into(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
            stream: libp2p_stream::Behaviour::new(),
        })
        .map_err(|e| setup_error(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    for addr in &options.listen {
        swarm.listen_on(addr.clone()).map_err(|e| setup_error(&e))?;
    }
    let mut control = swarm.behaviour().stream.new_control();
    let mut accepted = control.accept(PROTOCOL).map_err(|e| setup_error(&e))?;

    let deadline = tokio::time::sleep(options.timeout);
    tokio::pin!(deadline);
    let mut setup = Setup {
        role,
        own: Some(Own {
            listening: 0,
            addrs: Vec::new(),
        }),
        partner: Partner::Unknown {
            strangers: Vec::new(),
            early: Vec::new(),
        },
        via: None,
        opening: None,
        ready: None,
    };
    let (stream, remote) = loop {
        setup.progress(&mut swarm, options, local, &outgoing)?;
        if let Some(done) = setup.ready.take() {
            break done;
        }
        tokio::select! {
            _ = &mut deadline => return Err(Libp2pError::Timeout(options.timeout)),
            Some(signal) = incoming.recv(), if !setup.partner.is_known() => {
                if let SignalData::Libp2p { peer_id, addrs } = signal {
                    setup.on_announcement(parse_announcement(&peer_id, &addrs)?, &mut swarm);
                }
            }
            event = swarm.select_next_some() => setup.on_swarm(event, &mut swarm, &control, options)?,
            Some((peer, stream)) = accepted.next(), if role == Role::Answerer => {
                setup.on_accepted(peer, stream);
            }
            opened = async { setup.opening.as_mut().expect("guarded").await }, if setup.opening.is_some() => {
                setup.opening = None;
                let stream = match opened {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return Err(Libp2pError::Dial(e)),
                    Err(e) => return Err(Libp2pError::Dial(e.to_string())),
                };
                if let Partner::Known { peer, .. } = &setup.partner {
                    break (stream, *peer);
                }
            }
        }
    };
    let connected_via = setup.via;
    let (stop, mut stopped) = oneshot::channel::<()>();
    // The swarm keeps the connection alive for as long as the chat lasts.
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                event = swarm.select_next_some() => {
                    if let SwarmEvent::ConnectionEstablished { peer_id, .. } = event
                        && peer_id != remote
                    {
                        let _ = swarm.disconnect_peer_id(peer_id);
                    }
                }
            }
        }
    });
    let (inbound_tx, inbound) = mpsc::unbounded_channel();
    let (outgoing_frames, mut frames) = mpsc::unbounded_channel::<Outgoing>();
    let (reader, writer) = stream.split();
    tokio::spawn(async move {
        let mut writer = FramedWrite::new(writer, StreamCodec);
        while let Some(outgoing) = frames.recv().await {
            match outgoing {
                Outgoing::Frame(frame) => {
                    if writer.send(frame).await.is_err() {
                        return;
                    }
                }
                Outgoing::Close => break,
            }
        }
        let _ = writer.close().await;
    });
    let (partner_done_tx, partner_done) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut reader = FramedRead::new(reader, StreamCodec);
        loop {
            let inbound = match reader.next().await {
                Some(Ok(StreamFrame::Text(text))) => Inbound::Text(text),
                Some(Ok(StreamFrame::Binary(bytes))) => Inbound::Binary(bytes),
                Some(Err(e)) => {
                    tracing::debug!("the partner's stream broke: {e}");
                    Inbound::Closed
                }
                None => Inbound::Closed,
            };
            let closed = matches!(inbound, Inbound::Closed);
            if inbound_tx.send(inbound).is_err() || closed {
                break;
            }
        }
        let _ = partner_done_tx.send(true);
    });
    Ok(Connected {
        outgoing: outgoing_frames,
        partner_done,
        inbound,
        local,
        remote,
        via: connected_via.unwrap_or("tcp"),
        setup: started.elapsed(),
        _stop: stop,
    })
}

/// Our side of the set-up, until it is announced: listen addresses arrive as events, and the
/// announcement goes once every listener has one.
struct Own {
    listening: usize,
    addrs: Vec<Multiaddr>,
}

/// What the set-up knows of the partner.
enum Partner {
    /// Its announcement has not come yet. Its dial, and the stream the offerer opens, can
    /// overtake the announcement: who connects or opens a stream meanwhile waits here.
    Unknown {
        strangers: Vec<PeerId>,
        early: Vec<(PeerId, libp2p::Stream)>,
    },
    /// Announced: only this peer is let in; the offerer dials it once.
    Known {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        dialled: bool,
    },
}

impl Partner {
    fn is_known(&self) -> bool {
        matches!(self, Partner::Known { .. })
    }
}

/// The set-up of one match's libp2p connection, driven by [`connect`]'s loop, which waits for
/// events and hands them here.
struct Setup {
    role: Role,
    /// `None` once our addresses are announced.
    own: Option<Own>,
    partner: Partner,
    /// How the first connection came (`tcp` or `quic`).
    via: Option<&'static str>,
    /// The offerer opening the chat stream on the partner's connection.
    opening: Option<tokio::task::JoinHandle<Result<libp2p::Stream, String>>>,
    /// The chat stream and the partner, once there.
    ready: Option<(libp2p::Stream, PeerId)>,
}

impl Setup {
    /// What can be done without waiting: announce our addresses once every listener has one,
    /// and (the offerer) dial the announced partner once.
    fn progress(
        &mut self,
        swarm: &mut libp2p::Swarm<Behaviour>,
        options: &Options,
        local: PeerId,
        outgoing: &mpsc::UnboundedSender<SignalData>,
    ) -> Result<(), Libp2pError> {
        if let Some(own) = self.own.take_if(|o| o.listening >= options.listen.len()) {
            if own.addrs.is_empty() {
                return Err(Libp2pError::Setup(
                    "no address that the partner may learn and could reach".into(),
                ));
            }
            let _ = outgoing.send(SignalData::Libp2p {
                peer_id: local.to_string(),
                addrs: own.addrs.iter().map(ToString::to_string).collect(),
            });
        }
        if let (
            Role::Offerer,
            Partner::Known {
                peer,
                addrs,
                dialled: dialled @ false,
            },
        ) = (self.role, &mut self.partner)
        {
            *dialled = true;
            let opts = DialOpts::peer_id(*peer).addresses(addrs.clone()).build();
            swarm
                .dial(opts)
                .map_err(|e| Libp2pError::Dial(e.to_string()))?;
        }
        Ok(())
    }

    /// The partner announced itself: of those who came first, it is kept and the rest refused.
    fn on_announcement(
        &mut self,
        (peer, addrs): (PeerId, Vec<Multiaddr>),
        swarm: &mut libp2p::Swarm<Behaviour>,
    ) {
        let known = Partner::Known {
            peer,
            addrs,
            dialled: false,
        };
        if let Partner::Unknown { strangers, early } = std::mem::replace(&mut self.partner, known) {
            for stranger in strangers.into_iter().filter(|p| *p != peer) {
                let _ = swarm.disconnect_peer_id(stranger);
            }
            if let Some((_, stream)) = early.into_iter().find(|(p, _)| *p == peer) {
                self.ready = Some((stream, peer));
            }
        }
    }

    fn on_swarm(
        &mut self,
        event: SwarmEvent<BehaviourEvent>,
        swarm: &mut libp2p::Swarm<Behaviour>,
        control: &libp2p_stream::Control,
        options: &Options,
    ) -> Result<(), Libp2pError> {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                if let Some(own) = &mut self.own {
                    own.listening += 1;
                    if may_announce(options.exposure, &address) {
                        own.addrs.push(address);
                    }
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => match &mut self.partner {
                Partner::Known { peer, .. } if *peer == peer_id => {
                    self.via
                        .get_or_insert(transport_of(endpoint.get_remote_address()));
                    if self.role == Role::Offerer && self.opening.is_none() {
                        self.opening = Some(tokio::spawn(open_stream(control.clone(), peer_id)));
                    }
                }
                // Anyone but the announced partner is shown the door.
                Partner::Known { .. } => {
                    let _ = swarm.disconnect_peer_id(peer_id);
                }
                Partner::Unknown { strangers, .. } => {
                    self.via
                        .get_or_insert(transport_of(endpoint.get_remote_address()));
                    strangers.push(peer_id);
                }
            },
            SwarmEvent::OutgoingConnectionError { error, .. } if self.via.is_none() => {
                return Err(Libp2pError::Dial(error.to_string()));
            }
            _ => {}
        }
        Ok(())
    }

    /// A stream the partner opened (the answerer's side).
    fn on_accepted(&mut self, peer: PeerId, stream: libp2p::Stream) {
        match &mut self.partner {
            Partner::Known { peer: p, .. } if *p == peer => self.ready = Some((stream, peer)),
            Partner::Known { .. } => {}
            Partner::Unknown { early, .. } => early.push((peer, stream)),
        }
    }
}

/// Opens the chat stream. Dialling every address at once can establish two connections, and the
/// one a stream was asked of may be the one closed: so a few tries.
async fn open_stream(
    mut control: libp2p_stream::Control,
    peer: PeerId,
) -> Result<libp2p::Stream, String> {
    let mut attempt = 0;
    loop {
        match control.open_stream(peer, PROTOCOL).await {
            Ok(stream) => return Ok(stream),
            Err(e) if attempt >= 3 => return Err(e.to_string()),
            Err(_) => attempt += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn parse_announcement(
    peer_id: &str,
    addrs: &[String],
) -> Result<(PeerId, Vec<Multiaddr>), Libp2pError> {
    let bad = |what: String| Libp2pError::BadSignal(what);
    let peer = PeerId::from_str(peer_id).map_err(|e| bad(format!("peer id: {e}")))?;
    let addrs = addrs
        .iter()
        .map(|a| Multiaddr::from_str(a).map_err(|e| bad(format!("address {a}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if addrs.is_empty() {
        return Err(bad("no addresses".into()));
    }
    Ok((peer, addrs))
}

/// Whether the IP address in `addr` may be told to the partner.
fn may_announce(exposure: Exposure, addr: &Multiaddr) -> bool {
    addr.iter().all(|p| match p {
        libp2p::multiaddr::Protocol::Ip4(ip) => exposure.may_share(ip.into()),
        libp2p::multiaddr::Protocol::Ip6(ip) => exposure.may_share(ip.into()),
        _ => true,
    })
}

fn transport_of(addr: &Multiaddr) -> &'static str {
    if addr
        .iter()
        .any(|p| matches!(p, libp2p::multiaddr::Protocol::QuicV1))
    {
        "quic"
    } else {
        "tcp"
    }
}
