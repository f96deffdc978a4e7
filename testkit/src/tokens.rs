//! A stand-in for the verifier that signs real tokens with a real Ed25519 key, and devices that
//! hold them. Every test token is minted here, under one rule: issued a minute ago (so a clock
//! a little behind the rendezvous' does not matter) and valid for the given seconds from now.

use anonchat_protocol::rendezvous::HELLO_CONTEXT;
use anonchat_protocol::token::{
    Claims, DEFAULT_ISSUER, Gender, Jwks, KeySet, SigningKey, unix_now,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer;

/// How long ago every test token was issued.
const ISSUED_AGO: i64 = 60;

/// A verifier's signing key, without the verifier.
pub struct TestVerifier {
    pub key: SigningKey,
}

impl Default for TestVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl TestVerifier {
    pub fn new() -> Self {
        TestVerifier {
            key: SigningKey::generate(),
        }
    }

    /// The key set a rendezvous that trusts this verifier holds.
    pub fn keys(&self) -> KeySet {
        KeySet::from_jwks(&self.jwks()).expect("a key set of one fresh key")
    }

    /// This verifier's published keys.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.key.public_jwk()],
        }
    }

    /// A token for `device`, valid for `valid_for` seconds from now (negative: already expired).
    pub fn mint(
        &self,
        device: &ed25519_dalek::VerifyingKey,
        gender: Gender,
        valid_for: i64,
    ) -> (String, Claims) {
        self.mint_as(DEFAULT_ISSUER, device, gender, valid_for)
    }

    /// [`TestVerifier::mint`] under another issuer name.
    pub fn mint_as(
        &self,
        issuer: &str,
        device: &ed25519_dalek::VerifyingKey,
        gender: Gender,
        valid_for: i64,
    ) -> (String, Claims) {
        self.key
            .issue(
                issuer,
                device,
                gender,
                unix_now() - ISSUED_AGO,
                valid_for + ISSUED_AGO,
            )
            .expect("a test token signs")
    }

    /// A fresh device with a token valid for an hour.
    pub fn device(&self, gender: Gender) -> Device {
        self.device_with_ttl(gender, 3600)
    }

    /// A fresh device with a token valid for `valid_for` seconds.
    pub fn device_with_ttl(&self, gender: Gender, valid_for: i64) -> Device {
        self.device_from(DEFAULT_ISSUER, gender, valid_for)
    }

    /// A fresh device with a token signed by this verifier's key under `issuer`.
    pub fn device_from(&self, issuer: &str, gender: Gender, valid_for: i64) -> Device {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let (token, claims) = self.mint_as(issuer, &key.verifying_key(), gender, valid_for);
        Device {
            key,
            token,
            peer_id: claims.sub,
        }
    }
}

/// A device key and the token bound to it.
pub struct Device {
    pub key: ed25519_dalek::SigningKey,
    pub token: String,
    pub peer_id: String,
}

impl Device {
    /// The `hello` signature over the rendezvous' nonce, as a client makes it.
    pub fn sign(&self, nonce: &str) -> String {
        URL_SAFE_NO_PAD.encode(
            self.key
                .sign(format!("{HELLO_CONTEXT}{nonce}").as_bytes())
                .to_bytes(),
        )
    }
}
