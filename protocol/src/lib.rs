//! AnonChat's wire protocol, one home for every rule that two programs must agree on: the
//! verification token (DESIGN.md §3), the rendezvous messages and their error codes (§5), the
//! signaling filter (§1, promise 1), and the chat frames between peers with their stream framing
//! (§6). Pure: no sockets, no clock (callers pass the time), no async runtime — the verifier, the
//! rendezvous, the terminal client, the fuzz targets and the page's generated constants all
//! build on it.

pub mod chat;
pub mod pair;
pub mod rendezvous;
pub mod signaling;
pub mod stream_codec;
pub mod token;
pub mod verify;
pub mod web;
