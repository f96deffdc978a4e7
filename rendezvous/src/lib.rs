//! AnonChat's rendezvous: checks verification tokens, matches verified strangers, and relays
//! only WebRTC/libp2p signaling between them (DESIGN.md §5).
//!
//! [`proto`], [`signaling`] and [`matcher`] are always built and light (the terminal client and
//! the tests use them); stores, the server and the CLI need the `service` feature (default).

pub mod matcher;
pub mod proto;
pub mod signaling;

#[cfg(feature = "service")]
pub mod config;
#[cfg(feature = "service")]
pub mod ice;
#[cfg(feature = "service")]
pub mod profile;
#[cfg(feature = "service")]
pub mod secrets;
#[cfg(feature = "service")]
pub mod server;
#[cfg(feature = "service")]
pub mod store;
