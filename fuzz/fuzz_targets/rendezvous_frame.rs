//! Any text as a client frame: parsed strictly or refused, never a panic.
#![no_main]

use anonchat_protocol::rendezvous::parse_client;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_client(text);
    }
});
