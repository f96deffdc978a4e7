//! Pairing a phone with a terminal (DESIGN.md §4): a terminal has no camera, so it asks the
//! verifier for a short-lived code bound to its public key and shows the code's page address;
//! the browser opened there shows the key's fingerprint, runs the head-turn challenge for that
//! key, and the verifier keeps the token for the terminal, which collects it by proving it holds
//! the key. The browser never gets the token.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a pairing code may be used: time to pick up a phone and follow the steps.
pub const PAIR_TTL_SECONDS: i64 = 300;
/// How long one collect request waits for the token before it answers "pending".
pub const COLLECT_WAIT_SECONDS: u64 = 25;
/// Characters of a code: 10 of 32 symbols, 50 bits.
pub const CODE_CHARS: usize = 10;
/// What the terminal signs to collect its token or cancel its code: this, then the code.
pub const PAIR_CONTEXT: &str = "anonchat-pair-v1:";
/// Crockford's base32 symbols: no I, L, O or U to misread.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `POST /v1/pair`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairRequest {
    /// The terminal's Ed25519 public key, base64url (32 bytes).
    pub public_key: String,
    /// The terminal's user does not want their gender inferred: the phone's check will not.
    #[serde(default)]
    pub undisclosed: bool,
}

/// `POST /v1/pair`'s answer: open `url` on a phone before `expires_at` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    pub pair_code: String,
    pub url: String,
    pub fingerprint: String,
    pub expires_at: i64,
}

/// `GET /v1/pair/{code}`: what the phone's page shows and which key it verifies for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairInfo {
    pub public_key: String,
    pub fingerprint: String,
    pub expires_at: i64,
    pub undisclosed: bool,
}

/// `POST /v1/pair/{code}/token` and `/cancel`: the terminal's proof that it holds the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    /// Ed25519 signature of [`PAIR_CONTEXT`] followed by the code, base64url.
    pub signature: String,
}

/// A random code.
pub fn new_code(rng: &mut impl rand::Rng) -> String {
    (0..CODE_CHARS)
        .map(|_| ALPHABET[rng.gen_range(0..32)] as char)
        .collect()
}

/// The code as typed or pasted: case and separators forgiven, misreadable letters read as the
/// digits they look like. `None` when it cannot be a code.
pub fn normalize_code(text: &str) -> Option<String> {
    let code: String = text
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    (code.len() == CODE_CHARS && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// The short form of a public key that both screens show: 60 bits of its SHA-256 in base32,
/// as three groups of four.
pub fn fingerprint(public_key: &VerifyingKey) -> String {
    let digest = Sha256::digest(public_key.as_bytes());
    let bits = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let chars: Vec<char> = (0..12)
        .map(|i| ALPHABET[((bits >> (59 - 5 * i)) & 31) as usize] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The page address for `code`: the code goes in the fragment, which browsers never send.
pub fn page_url(page: &str, code: &str) -> String {
    format!("{}/#pair={code}", page.trim_end_matches('/'))
}

fn message(code: &str) -> Vec<u8> {
    [PAIR_CONTEXT.as_bytes(), code.as_bytes()].concat()
}

/// The terminal's proof for `code`, signed by `sign` (the device key's signature).
pub fn prove(code: &str, sign: impl FnOnce(&[u8]) -> Signature) -> Proof {
    use base64::Engine;
    Proof {
        signature: base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sign(&message(code)).to_bytes()),
    }
}

/// Whether `proof` shows that the holder of `key` asks for `code`.
pub fn check(key: &VerifyingKey, code: &str, proof: &Proof) -> bool {
    use base64::Engine;
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(proof.signature.trim())
    else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(&bytes) else {
        return false;
    };
    key.verify(&message(code), &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_random_and_read_back_however_they_are_typed() {
        let mut rng = rand::thread_rng();
        let a = new_code(&mut rng);
        assert_ne!(a, new_code(&mut rng));
        assert_eq!(normalize_code(&a).as_deref(), Some(a.as_str()));
        assert_eq!(
            normalize_code(&a.to_lowercase()).as_deref(),
            Some(a.as_str())
        );
        assert_eq!(
            normalize_code("abcd-efgh-jk").as_deref(),
            Some("ABCDEFGHJK")
        );
        assert_eq!(normalize_code("o1i2l3abcd").as_deref(), Some("011213ABCD"));
        assert_eq!(normalize_code("ABCDEFGHJ"), None, "too short");
        assert_eq!(normalize_code("ABCDEFGHJKM"), None, "too long");
        assert_eq!(normalize_code("ABCDEFGHJ!"), None);
        assert_eq!(normalize_code("ABCDEFGHJU"), None, "no U in the alphabet");
    }

    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn the_fingerprint_is_short_stable_and_tells_keys_apart() {
        let a = SigningKey::from_bytes(&[7; 32]).verifying_key();
        let b = SigningKey::from_bytes(&[8; 32]).verifying_key();
        let f = fingerprint(&a);
        assert_eq!(f.len(), 14);
        assert_eq!(f.matches('-').count(), 2);
        assert_eq!(f, fingerprint(&a));
        assert_ne!(f, fingerprint(&b));
    }

    #[test]
    fn only_the_key_holder_proves_a_code() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let proof = prove("ABCDEFGHJK", |m| key.sign(m));
        assert!(check(&key.verifying_key(), "ABCDEFGHJK", &proof));
        assert!(
            !check(&key.verifying_key(), "ABCDEFGHJM", &proof),
            "another code"
        );
        assert!(
            !check(&other.verifying_key(), "ABCDEFGHJK", &proof),
            "another key"
        );
        let garbage = Proof {
            signature: "not base64!".into(),
        };
        assert!(!check(&key.verifying_key(), "ABCDEFGHJK", &garbage));
    }

    #[test]
    fn the_page_address_keeps_the_code_in_the_fragment() {
        assert_eq!(
            page_url("https://chat.example/", "ABCDEFGHJK"),
            "https://chat.example/#pair=ABCDEFGHJK"
        );
    }
}
