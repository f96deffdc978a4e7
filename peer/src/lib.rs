//! The AnonChat peer: the device's own identity, the clients of the verifier and the rendezvous,
//! and (next) the peer-to-peer chat. The `anonchat` binary is the terminal client.

pub mod chat;
pub mod identity;
pub mod libp2p_session;
pub mod rendezvous;
pub mod session;
pub mod transport;
pub mod verify;
pub mod webrtc_session;
