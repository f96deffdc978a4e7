//! The AnonChat peer: the device's own identity, the clients of the verifier and the rendezvous,
//! the peer-to-peer links (WebRTC, libp2p) that carry `anonchat_protocol`'s chat frames, and the chat session
//! that drives it all. The `anonchat` binary is the terminal client.

pub mod exposure;
pub mod identity;
pub mod image_check;
pub mod libp2p_session;
pub mod rendezvous;
pub mod session;
pub mod tls;
pub mod transport;
pub mod verify;
pub mod webrtc_session;
