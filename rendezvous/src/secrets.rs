//! What the server derives from `SERVER_SECRET`: pseudonyms for device ids, and sealed match
//! receipts that only a server holding the secret can open (DESIGN.md §1, promises 3 and 4).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn derive(secret: &[u8], label: &str) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Keys derived from the server secret. Instances sharing a store must share the secret, so
/// that they compute the same pseudonyms and open each other's receipts.
#[derive(Clone)]
pub struct Secrets {
    pseudonym_key: [u8; 32],
    receipt: XChaCha20Poly1305,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// What a receipt proves: that `holder` was matched with `partner` in `match_id` at `issued`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    #[serde(rename = "m")]
    pub match_id: String,
    #[serde(rename = "h")]
    pub holder: String,
    #[serde(rename = "p")]
    pub partner: String,
    #[serde(rename = "t")]
    pub issued: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt is not one this server issued")]
    Forged,
    #[error("the receipt belongs to someone else")]
    NotYours,
    #[error("the receipt has expired")]
    Expired,
}

impl Secrets {
    pub fn new(secret: &[u8]) -> Self {
        let receipt_key = derive(secret, "anonchat receipt key v1");
        Secrets {
            pseudonym_key: derive(secret, "anonchat pseudonym key v1"),
            receipt: XChaCha20Poly1305::new(&receipt_key.into()),
        }
    }

    /// `HMAC-SHA256(key, peer id)`, base64url: what the store knows a device by.
    pub fn pseudonym(&self, peer_id: &str) -> String {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.pseudonym_key).expect("32-byte key");
        mac.update(peer_id.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Seals a receipt: base64url(nonce ‖ XChaCha20-Poly1305 ciphertext).
    pub fn seal(&self, receipt: &Receipt) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut rand::rngs::OsRng);
        let plain = serde_json::to_vec(receipt).expect("receipts serialize");
        let sealed = self
            .receipt
            .encrypt(&nonce, plain.as_slice())
            .expect("encryption does not fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Opens a receipt presented by `holder`, refusing forged, foreign and expired ones.
    pub fn open(
        &self,
        sealed: &str,
        holder: &str,
        now: i64,
        window_seconds: i64,
    ) -> Result<Receipt, ReceiptError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| ReceiptError::Forged)?;
        if bytes.len() < 24 + 16 {
            return Err(ReceiptError::Forged);
        }
        let (nonce, body) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| ReceiptError::Forged)?;
        let plain = self
            .receipt
            .decrypt(&XNonce::from(nonce), body)
            .map_err(|_| ReceiptError::Forged)?;
        let receipt: Receipt = serde_json::from_slice(&plain).map_err(|_| ReceiptError::Forged)?;
        if receipt.holder != holder {
            return Err(ReceiptError::NotYours);
        }
        if now - receipt.issued > window_seconds || receipt.issued > now + 60 {
            return Err(ReceiptError::Expired);
        }
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        Receipt {
            match_id: "m1".into(),
            holder: "alice".into(),
            partner: "bob".into(),
            issued: 1000,
        }
    }

    #[test]
    fn pseudonyms_are_stable_per_secret_and_hide_the_id() {
        let (a, b) = (Secrets::new(b"one"), Secrets::new(b"two"));
        let id = "12D3KooWBnnQLdVDbf3psY7AzXwYKTxKKYtpUdVaY9FAUKG2BCec";
        assert_eq!(a.pseudonym(id), a.pseudonym(id));
        assert_ne!(a.pseudonym(id), b.pseudonym(id));
        assert!(!a.pseudonym(id).contains("KooW"));
    }

    #[test]
    fn receipts_open_only_for_their_holder_within_the_window() {
        let s = Secrets::new(b"secret");
        let sealed = s.seal(&receipt());
        assert_eq!(s.open(&sealed, "alice", 1500, 86_400), Ok(receipt()));
        assert_eq!(
            s.open(&sealed, "bob", 1500, 86_400),
            Err(ReceiptError::NotYours)
        );
        assert_eq!(
            s.open(&sealed, "alice", 1000 + 86_401, 86_400),
            Err(ReceiptError::Expired)
        );
        assert_ne!(s.seal(&receipt()), sealed, "a fresh nonce each time");
    }

    #[test]
    fn forged_and_foreign_receipts_are_refused() {
        let s = Secrets::new(b"secret");
        let other = Secrets::new(b"other server");
        assert_eq!(
            s.open(&other.seal(&receipt()), "alice", 1500, 86_400),
            Err(ReceiptError::Forged)
        );
        let mut tampered = URL_SAFE_NO_PAD.decode(s.seal(&receipt())).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            s.open(&URL_SAFE_NO_PAD.encode(tampered), "alice", 1500, 86_400),
            Err(ReceiptError::Forged)
        );
        for junk in ["", "!!!", "AAAA", &URL_SAFE_NO_PAD.encode([0u8; 60])] {
            assert_eq!(
                s.open(junk, "alice", 1500, 86_400),
                Err(ReceiptError::Forged)
            );
        }
    }
}
