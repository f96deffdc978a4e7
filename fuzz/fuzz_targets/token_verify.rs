//! Any string as a token: refused or accepted, never a panic.
#![no_main]

use std::sync::OnceLock;

use anonchat_protocol::token::{Jwks, KeySet, SigningKey};
use libfuzzer_sys::fuzz_target;

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| KeySet::from_jwks(&Jwks { keys: vec![SigningKey::generate().public_jwk()] }).unwrap())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = keys().verify(token);
    }
});
