//! The chat's carrier, whichever it is: a WebRTC data channel or a libp2p stream. Both carry
//! the same chat frames (text) and image chunks (binary).

use anonchat_protocol::chat;

use crate::{libp2p_session, webrtc_session};

/// What arrives from the partner.
#[derive(Debug)]
pub enum Inbound {
    Text(String),
    Binary(bytes::Bytes),
    /// The channel or the connection under it is gone (closed by the partner, or the network
    /// went silent for longer than the transport tolerates).
    Closed,
}

pub enum ChatLink {
    WebRtc(webrtc_session::Connected),
    Libp2p(libp2p_session::Connected),
}

impl ChatLink {
    pub fn transport(&self) -> &'static str {
        match self {
            ChatLink::WebRtc(_) => "webrtc",
            ChatLink::Libp2p(_) => "libp2p",
        }
    }

    /// `direct` or `relayed`, with the chosen ICE pair's candidate types (WebRTC only: libp2p
    /// is offered only where the partner can be dialled directly).
    pub fn path(&self) -> (&'static str, Option<String>, Option<String>) {
        match self {
            ChatLink::WebRtc(c) => (
                c.path(),
                Some(c.candidates.0.clone()),
                Some(c.candidates.1.clone()),
            ),
            ChatLink::Libp2p(_) => ("direct", None, None),
        }
    }

    /// The code both partners see: from the two DTLS fingerprints, or from the two per-match
    /// libp2p peer ids (the keys Noise authenticated).
    pub fn safety_code(&self) -> String {
        match self {
            ChatLink::WebRtc(c) => chat::safety_code(&c.fingerprints.0, &c.fingerprints.1),
            ChatLink::Libp2p(c) => chat::safety_code(&c.local.to_string(), &c.remote.to_string()),
        }
    }

    pub async fn send_text(&self, text: String) -> Result<(), String> {
        match self {
            ChatLink::WebRtc(c) => c
                .channel
                .send_text(text)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            ChatLink::Libp2p(c) => c
                .send_text(text)
                .then_some(())
                .ok_or_else(|| "the stream is closed".into()),
        }
    }

    pub async fn send_binary(&self, data: &[u8]) -> Result<(), String> {
        match self {
            ChatLink::WebRtc(c) => c
                .channel
                .send(&bytes::Bytes::copy_from_slice(data))
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            ChatLink::Libp2p(c) => c
                .send_binary(data)
                .then_some(())
                .ok_or_else(|| "the stream is closed".into()),
        }
    }

    pub async fn recv(&mut self) -> Option<Inbound> {
        match self {
            ChatLink::WebRtc(c) => c.inbound.recv().await,
            ChatLink::Libp2p(c) => c.inbound.recv().await,
        }
    }

    pub async fn close(&self) {
        match self {
            ChatLink::WebRtc(c) => c.close().await,
            ChatLink::Libp2p(c) => c.close().await,
        }
    }
}
