//! The AnonChat peer: the device's own identity, the clients of the verifier and the rendezvous,
//! the peer-to-peer links (WebRTC, libp2p), the chat protocol over them, and the chat session
//! that drives it all. The `anonchat` binary is the terminal client.

pub mod chat;
pub mod exposure;
pub mod identity;
pub mod libp2p_session;
pub mod rendezvous;
pub mod session;
pub mod stream_codec;
pub mod transport;
pub mod verify;
pub mod webrtc_session;
