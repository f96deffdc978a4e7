//! A WebRTC data-channel session between two peers (DESIGN.md §6): the offerer opens a reliable,
//! ordered channel `anonchat`; offer, answer and trickled ICE candidates travel through the
//! rendezvous as `signal` payloads. Chat never does: it goes over the channel, DTLS-encrypted.
//!
//! This module only sets the connection up. The caller pumps [`SignalData`] between the two
//! channels given to [`connect`] and its rendezvous client, so signaling and everything else the
//! rendezvous says can share one socket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anonchat_protocol::rendezvous::{IceServer, Role};
use anonchat_protocol::signaling::SignalData;
use tokio::sync::mpsc;
use webrtc::api::APIBuilder;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::data_channel::RTCDataChannel;
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice_transport::ice_candidate::{RTCIceCandidate, RTCIceCandidateInit};
use webrtc::ice_transport::ice_candidate_type::RTCIceCandidateType;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::policy::ice_transport_policy::RTCIceTransportPolicy;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;

use anonchat_protocol::chat::{self, DATA_CHANNEL, SETUP_TIMEOUT};

use crate::exposure::{self, Exposure};
use crate::transport::Inbound;

/// How long STUN and TURN servers may take to answer before the network counts as one that
/// blocks UDP (webrtc-ice gives a STUN server as long).
pub const SERVER_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a TURN server may take to hand out a relay address (two round trips, normally
/// well under a second) before relay-only mode gives up.
pub const RELAY_GATHER_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a direct pair may take to beat a relayed one before ICE settles for the relay.
pub const RELAY_HEAD_START: Duration = Duration::from_millis(600);

#[derive(Debug, Clone)]
pub struct Options {
    /// From the rendezvous' `welcome`.
    pub ice_servers: Vec<IceServer>,
    /// Only relayed candidates: the partner never sees this peer's address.
    pub relay_only: bool,
    /// Only loopback candidates (tests and the one-machine quickstart).
    pub loopback_only: bool,
    /// How long setting up may take.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ice_servers: Vec::new(),
            relay_only: false,
            loopback_only: false,
            timeout: SETUP_TIMEOUT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("relay-only mode needs a TURN server, and the rendezvous offers none")]
    NoRelay,
    #[error("the peer-to-peer connection was not ready within {0:?}")]
    Timeout(Duration),
    /// Servers were on offer but none answered: UDP is blocked on this network (this client
    /// speaks TURN over UDP only; a browser can use TURN over TCP or TLS).
    #[error(
        "no STUN or TURN server answered within {0:?}: this network seems to block UDP, which \
         the terminal client needs (it cannot use TURN over TCP or TLS; the web page can)"
    )]
    UdpBlocked(Duration),
    /// Relay-only, and the TURN server gave no relay address: it refused the credentials (a
    /// wrong secret or a lapsed username), or it cannot be reached over UDP.
    #[error(
        "the TURN relay gave this device no relay address (it refused the credentials, or it \
         cannot be reached over UDP), so relay-only mode cannot connect"
    )]
    RelayRefused,
    #[error("no path to the partner: every connectivity check failed")]
    Failed,
    #[error("the partner's signaling was invalid: {0}")]
    BadSignal(String),
    #[error("WebRTC: {0}")]
    WebRtc(#[from] webrtc::Error),
}

/// An open session.
pub struct Connected {
    pub pc: Arc<RTCPeerConnection>,
    pub channel: Arc<RTCDataChannel>,
    /// Everything the partner sends, from the first frame on: the handlers are in place before
    /// the channel opens, so nothing sent on `open` is lost.
    pub inbound: mpsc::UnboundedReceiver<Inbound>,
    /// From the start of [`connect`] to the channel's `open`.
    pub setup: Duration,
    /// The DTLS certificate fingerprints (this side's, the partner's) from the two session
    /// descriptions; DTLS refuses a partner whose certificate does not match its own.
    pub fingerprints: (String, String),
    /// The candidate types of the pair ICE chose (`host`, `srflx`, `prflx`, `relay`): this
    /// side's and the partner's.
    pub candidates: (String, String),
}

impl Connected {
    /// `relayed` when either end of the chosen pair is a TURN relay.
    pub fn path(&self) -> &'static str {
        if self.candidates.0 == "relay" || self.candidates.1 == "relay" {
            "relayed"
        } else {
            "direct"
        }
    }
}

impl Connected {
    /// Closes the connection; the partner's channel reports [`Inbound::Closed`]. What was sent
    /// before (a `bye`) gets up to 250 ms to leave first: closing drops whatever is still queued.
    pub async fn close(&self) {
        let deadline = Instant::now() + Duration::from_millis(250);
        while self.channel.buffered_amount().await > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = self.channel.close().await;
        let _ = self.pc.close().await;
    }
}

/// Sets up the connection in `role`, sending this side's signaling on `outgoing` and reading the
/// partner's from `incoming`, until the `anonchat` channel is open.
pub async fn connect(
    role: Role,
    options: &Options,
    outgoing: mpsc::UnboundedSender<SignalData>,
    mut incoming: mpsc::UnboundedReceiver<SignalData>,
) -> Result<Connected, SessionError> {
    let started = Instant::now();
    if options.relay_only && !exposure::has_turn(&options.ice_servers) {
        return Err(SessionError::NoRelay);
    }
    let exposure = if options.loopback_only {
        Exposure::Everything
    } else {
        Exposure::new(options.relay_only, &options.ice_servers)
    };
    let pc = Arc::new(
        api(options)
            .new_peer_connection(configuration(options))
            .await?,
    );

    let out = outgoing.clone();
    // Whether a STUN or TURN server answered (a reflexive or relay candidate was gathered),
    // and whether a relay did; `gathered` fires when gathering is over.
    let (answered_tx, answered) = tokio::sync::watch::channel(false);
    let (relayed_tx, relayed) = tokio::sync::watch::channel(false);
    let (gathered_tx, mut gathered) = mpsc::unbounded_channel::<()>();
    pc.on_ice_candidate(Box::new(move |c: Option<RTCIceCandidate>| {
        let out = out.clone();
        match c.as_ref().map(|c| c.typ) {
            Some(RTCIceCandidateType::Srflx) => {
                let _ = answered_tx.send(true);
            }
            Some(RTCIceCandidateType::Relay) => {
                let _ = answered_tx.send(true);
                let _ = relayed_tx.send(true);
            }
            Some(_) => {}
            None => {
                let _ = gathered_tx.send(());
            }
        }
        Box::pin(async move {
            let Some(init) = c.and_then(|c| c.to_json().ok()) else {
                return;
            };
            // Only what the user's settings let the partner learn (see `exposure`).
            let shared = exposure.candidate(&init.candidate);
            tracing::debug!(gathered = %init.candidate, sent = ?shared, "local candidate");
            if let Some(candidate) = shared {
                let _ = out.send(SignalData::Candidate {
                    candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_m_line_index: init.sdp_mline_index,
                });
            }
        })
    }));
    let (failed_tx, mut failed) = mpsc::unbounded_channel();
    let (inbound_tx, inbound) = mpsc::unbounded_channel();
    let gone = inbound_tx.clone();
    pc.on_peer_connection_state_change(Box::new(move |state| {
        match state {
            RTCPeerConnectionState::Failed => {
                let _ = failed_tx.send(());
                let _ = gone.send(Inbound::Closed);
            }
            // Disconnected may heal (a network blip); Failed follows if it does not.
            RTCPeerConnectionState::Closed => {
                let _ = gone.send(Inbound::Closed);
            }
            _ => {}
        }
        Box::pin(async {})
    }));

    let (open_tx, mut opened) = mpsc::unbounded_channel::<Arc<RTCDataChannel>>();
    let on_open = move |dc: Arc<RTCDataChannel>| {
        let open_tx = open_tx.clone();
        let ready = dc.clone();
        let messages = inbound_tx.clone();
        dc.on_message(Box::new(move |m| {
            let _ = messages.send(if m.is_string {
                Inbound::Text(String::from_utf8_lossy(&m.data).into_owned())
            } else {
                Inbound::Binary(m.data)
            });
            Box::pin(async {})
        }));
        let closed = inbound_tx.clone();
        dc.on_close(Box::new(move || {
            let _ = closed.send(Inbound::Closed);
            Box::pin(async {})
        }));
        dc.on_open(Box::new(move || {
            let _ = open_tx.send(ready);
            Box::pin(async {})
        }));
    };
    match role {
        Role::Offerer => {
            let init = RTCDataChannelInit {
                ordered: Some(true),
                ..Default::default()
            };
            on_open(pc.create_data_channel(DATA_CHANNEL, Some(init)).await?);
            let offer = pc.create_offer(None).await?;
            pc.set_local_description(offer.clone()).await?;
            let _ = outgoing.send(SignalData::Offer { sdp: offer.sdp });
        }
        Role::Answerer => {
            pc.on_data_channel(Box::new(move |dc| {
                if dc.label() == DATA_CHANNEL {
                    on_open(dc);
                }
                Box::pin(async {})
            }));
        }
    }

    let deadline = tokio::time::sleep(options.timeout);
    tokio::pin!(deadline);
    let mut early_candidates: Vec<RTCIceCandidateInit> = Vec::new();
    let mut relay_checked = false;
    let mut answer_checked = false;
    let crosses = exposure::crosses_networks(&options.ice_servers);
    loop {
        tokio::select! {
            Some(channel) = opened.recv() => {
                let setup = started.elapsed();
                let fingerprints = (
                    fingerprint(pc.local_description().await),
                    fingerprint(pc.remote_description().await),
                );
                let candidates = selected_pair(&pc).await;
                return Ok(Connected { pc, channel, inbound, setup, fingerprints, candidates });
            }
            // In relay-only mode a relay address is all there can be: when gathering ends, or
            // RELAY_GATHER_TIMEOUT passes, without one, there is no use waiting for the deadline.
            // (webrtc-rs does not always say that gathering ended after a refused allocation.)
            _ = async {
                tokio::select! {
                    _ = gathered.recv() => {}
                    _ = tokio::time::sleep(RELAY_GATHER_TIMEOUT) => {}
                }
            }, if options.relay_only && !relay_checked => {
                relay_checked = true;
                if !*relayed.borrow() {
                    let _ = pc.close().await;
                    return Err(SessionError::RelayRefused);
                }
            }
            // Servers on offer and not one answer: UDP is blocked, and nothing can connect.
            _ = tokio::time::sleep(SERVER_ANSWER_TIMEOUT), if crosses && !answer_checked => {
                answer_checked = true;
                if !*answered.borrow() {
                    let _ = pc.close().await;
                    return Err(SessionError::UdpBlocked(SERVER_ANSWER_TIMEOUT));
                }
            }
            Some(()) = failed.recv() => {
                let _ = pc.close().await;
                return Err(unreachable_why(crosses, started.elapsed(), &answered, SessionError::Failed));
            }
            _ = &mut deadline => {
                let _ = pc.close().await;
                return Err(unreachable_why(crosses, options.timeout, &answered, SessionError::Timeout(options.timeout)));
            }
            Some(signal) = incoming.recv() => match signal {
                SignalData::Offer { sdp } if role == Role::Answerer => {
                    let offer = RTCSessionDescription::offer(sdp).map_err(|e| SessionError::BadSignal(e.to_string()))?;
                    pc.set_remote_description(offer).await?;
                    let answer = pc.create_answer(None).await?;
                    pc.set_local_description(answer.clone()).await?;
                    let _ = outgoing.send(SignalData::Answer { sdp: answer.sdp });
                    for c in early_candidates.drain(..) {
                        pc.add_ice_candidate(c).await?;
                    }
                }
                SignalData::Answer { sdp } if role == Role::Offerer => {
                    let answer = RTCSessionDescription::answer(sdp).map_err(|e| SessionError::BadSignal(e.to_string()))?;
                    pc.set_remote_description(answer).await?;
                    for c in early_candidates.drain(..) {
                        pc.add_ice_candidate(c).await?;
                    }
                }
                SignalData::Candidate { candidate, sdp_mid, sdp_m_line_index } if !candidate.is_empty() => {
                    let init = RTCIceCandidateInit { candidate, sdp_mid, sdp_mline_index: sdp_m_line_index, username_fragment: None };
                    // Candidates can overtake the description they belong to.
                    if pc.remote_description().await.is_some() {
                        pc.add_ice_candidate(init).await?;
                    } else {
                        early_candidates.push(init);
                    }
                }
                _ => {} // out of turn, or for another transport: ignored
            },
        }
    }
}

/// The types of the candidate pair ICE selected, this side's first.
async fn selected_pair(pc: &RTCPeerConnection) -> (String, String) {
    match pc
        .sctp()
        .transport()
        .ice_transport()
        .get_selected_candidate_pair()
        .await
    {
        Some(pair) => (pair.local.typ.to_string(), pair.remote.typ.to_string()),
        None => ("unknown".into(), "unknown".into()),
    }
}

/// Why no path was found: servers were on offer and none answered (UDP blocked), or `other`.
fn unreachable_why(
    crosses: bool,
    waited: Duration,
    answered: &tokio::sync::watch::Receiver<bool>,
    other: SessionError,
) -> SessionError {
    if crosses && !*answered.borrow() {
        SessionError::UdpBlocked(waited)
    } else {
        other
    }
}

/// The DTLS fingerprint of a session description, for the safety code.
fn fingerprint(description: Option<RTCSessionDescription>) -> String {
    description.map_or_else(String::new, |d| chat::sdp_fingerprint(&d.sdp))
}

fn api(options: &Options) -> webrtc::api::API {
    crate::tls::crypto_provider();
    let mut settings = SettingEngine::default();
    // No multicast DNS: hostnames would be resolved on the local network.
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    // A partner that vanished without a word is given up after 5 s of silence plus 10 s
    // (instead of 25 s): the rendezvous usually says so sooner, but it may be down.
    settings.set_ice_timeouts(
        Some(Duration::from_secs(5)),
        Some(Duration::from_secs(10)),
        Some(Duration::from_secs(2)),
    );
    // When the partner's connectivity checks overtake its candidates (signaling through a
    // distant rendezvous is slower than a direct packet), the pair found is "peer reflexive",
    // which ICE by default nominates only after 1 s, hoping for better. Measured here: set-up
    // took 1.1 s instead of 5 ms behind a proxy adding 40 ms to signaling. A chat channel takes
    // the first path that works.
    settings.set_prflx_acceptance_min_wait(Some(Duration::ZERO));
    // Across NATs the partner's address is server-reflexive: by default ICE waits 500 ms for
    // it and 2 s for a relay, hoping for a better pair. A direct pair through two cone NATs
    // is valid once each side's check has opened its own NAT for the other's, which takes up
    // to two of ICE's 200 ms check ticks: so a relay is taken only after RELAY_HEAD_START
    // (at once in relay-only mode, where nothing else can come). Measured in the lab: a
    // 300 ms head start let the relay win between two cone NATs.
    settings.set_srflx_acceptance_min_wait(Some(Duration::ZERO));
    settings.set_relay_acceptance_min_wait(Some(if options.relay_only {
        Duration::ZERO
    } else {
        RELAY_HEAD_START
    }));
    if options.loopback_only {
        settings.set_include_loopback_candidate(true);
        settings.set_interface_filter(Box::new(|name| name == "lo"));
        settings.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    }
    APIBuilder::new().with_setting_engine(settings).build()
}

fn configuration(options: &Options) -> RTCConfiguration {
    RTCConfiguration {
        ice_servers: options
            .ice_servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect(),
        ice_transport_policy: if options.relay_only {
            RTCIceTransportPolicy::Relay
        } else {
            RTCIceTransportPolicy::All
        },
        ..Default::default()
    }
}
