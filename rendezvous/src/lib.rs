//! AnonChat's rendezvous: checks verification tokens, matches verified strangers, and relays
//! only WebRTC/libp2p signaling between them (DESIGN.md §5). The wire protocol and the signaling
//! filter are `anonchat_protocol`; this crate holds the matching rules, the stores and the server.

pub mod config;
pub mod ice;
pub mod matcher;
pub mod profile;
pub mod secrets;
pub mod server;
pub mod store;
