//! The verification token of DESIGN.md §3: a compact JWS signed with the verifier's Ed25519 key
//! (`alg: EdDSA`, header `kid`), bound to the device key through `cnf.jwk`.
//!
//! The verifier signs it, the rendezvous checks it, the peer carries it. JWS encoding and
//! checking are done by `jsonwebtoken`; this module pins the algorithm, the audience, the claims
//! and the key format.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The `iss` a verifier signs with, and a rendezvous expects, unless configured otherwise.
pub const DEFAULT_ISSUER: &str = "anonchat-verifier";

/// The only audience a token is issued for and accepted with.
pub const AUDIENCE: &str = "anonchat";
/// Clock skew tolerated on `exp`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;

/// What a token says of the holder's gender. `U` is "undisclosed": not inferred at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Gender {
    #[serde(rename = "M")]
    Male,
    #[serde(rename = "F")]
    Female,
    #[serde(rename = "U")]
    Undisclosed,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "M",
            Gender::Female => "F",
            Gender::Undisclosed => "U",
        }
    }
}

/// An Ed25519 public key as a JSON Web Key (RFC 8037: `kty: OKP`, `crv: Ed25519`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// The 32-byte public key, base64url without padding.
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl Jwk {
    /// The bare JWK of a device key, as carried in `cnf.jwk`.
    pub fn from_public_key(key: &ed25519_dalek::VerifyingKey) -> Self {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
            kid: None,
            alg: None,
            use_: None,
        }
    }

    /// The Ed25519 key this JWK names, refusing any other key type.
    pub fn public_key(&self) -> Result<ed25519_dalek::VerifyingKey, TokenError> {
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return Err(TokenError::InvalidClaims("key is not an OKP/Ed25519 JWK"));
        }
        public_key_from_base64url(&self.x)
            .map_err(|_| TokenError::InvalidClaims("key is not a valid Ed25519 public key"))
    }
}

/// A JWKS document (`/.well-known/jwks.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The `cnf` (confirmation) claim: the key the holder must prove possession of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jwk: Jwk,
}

/// The claims of a verification token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The device's peer id (libp2p `PeerId` of `cnf.jwk`).
    pub sub: String,
    pub cnf: Confirmation,
    pub gender: Gender,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

impl Claims {
    /// The device key the token is bound to.
    pub fn device_key(&self) -> Result<ed25519_dalek::VerifyingKey, TokenError> {
        self.cnf.jwk.public_key()
    }
}

/// Why a token was refused. Messages never include the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWS")]
    Malformed,
    #[error("the token's algorithm is not EdDSA")]
    UnsupportedAlgorithm,
    #[error("the token names no key, or a key this server does not know")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not meant for this audience")]
    WrongAudience,
    #[error("the token was not issued by the verifier this server trusts")]
    WrongIssuer,
    #[error("the token's claims are invalid: {0}")]
    InvalidClaims(&'static str),
    #[error("the signing key could not be read: {0}")]
    BadKey(&'static str),
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => TokenError::BadSignature,
            K::ExpiredSignature => TokenError::Expired,
            K::InvalidAudience => TokenError::WrongAudience,
            K::InvalidIssuer => TokenError::WrongIssuer,
            K::InvalidAlgorithm | K::InvalidAlgorithmName => TokenError::UnsupportedAlgorithm,
            K::MissingRequiredClaim(_) => TokenError::InvalidClaims("a required claim is missing"),
            K::InvalidEddsaKey | K::InvalidKeyFormat => TokenError::UnknownKey,
            K::Json(_) => TokenError::Malformed,
            _ => TokenError::Malformed,
        }
    }
}

/// The verifier's signing key, with the `kid` it publishes (the RFC 7638 thumbprint).
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    encoding: EncodingKey,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_dalek(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    fn from_dalek(key: ed25519_dalek::SigningKey) -> Self {
        // The PKCS#8 form only lives long enough to build the encoding key.
        let der = key
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes as PKCS#8");
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        let kid = thumbprint(&Jwk::from_public_key(&key.verifying_key()));
        SigningKey { key, encoding, kid }
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`), as `keygen` writes it.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, TokenError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map_err(|_| TokenError::BadKey("not a PKCS#8 PEM Ed25519 private key"))?;
        Ok(Self::from_dalek(key))
    }

    /// The PKCS#8 PEM form, wiped from memory when dropped.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        let pem = self
            .key
            .to_pkcs8_pem(Default::default())
            .expect("an Ed25519 key always encodes as PKCS#8");
        Zeroizing::new(pem.to_string())
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key as it appears in the JWKS: with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> Jwk {
        Jwk {
            kid: Some(self.kid.clone()),
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
            ..Jwk::from_public_key(&self.verifying_key())
        }
    }

    /// Signs arbitrary claims as a compact JWS with this key's `kid`.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// Issues a token for `device`, valid for `ttl_seconds` from `now` (Unix seconds).
    pub fn issue(
        &self,
        issuer: &str,
        device: &ed25519_dalek::VerifyingKey,
        gender: Gender,
        now: i64,
        ttl_seconds: i64,
    ) -> Result<(String, Claims), TokenError> {
        let mut jti = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut jti);
        let claims = Claims {
            iss: issuer.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: peer_id(device),
            cnf: Confirmation {
                jwk: Jwk::from_public_key(device),
            },
            gender,
            iat: now,
            exp: now + ttl_seconds,
            jti: URL_SAFE_NO_PAD.encode(jti),
        };
        Ok((self.sign(&claims)?, claims))
    }
}

/// The verifier public keys a token may be signed with, by `kid` (several, for key rotation).
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, DecodingKey>,
    /// The `iss` every token must carry, when one is required.
    issuer: Option<String>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.keys.keys()).finish()
    }
}

impl KeySet {
    /// Every Ed25519 key of the document that has a `kid`; other keys are ignored.
    pub fn from_jwks(jwks: &Jwks) -> Result<Self, TokenError> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let Some(kid) = &jwk.kid else { continue };
            if jwk.public_key().is_err() {
                continue;
            }
            let key =
                DecodingKey::from_ed_components(&jwk.x).map_err(|_| TokenError::UnknownKey)?;
            keys.insert(kid.clone(), key);
        }
        if keys.is_empty() {
            return Err(TokenError::BadKey(
                "the JWKS holds no Ed25519 key with a kid",
            ));
        }
        Ok(KeySet { keys, issuer: None })
    }

    /// The same keys, accepting only tokens whose `iss` is `issuer`.
    pub fn requiring_issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_owned());
        self
    }

    /// The key ids, in no particular order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks signature, algorithm, audience and expiry (with [`LEEWAY_SECONDS`]), and that
    /// `sub` is the peer id of `cnf.jwk`. Returns the claims of a token that passes.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::Json(_) => {
                // An unknown `alg` (such as `none`) fails to parse as a header.
                if header_alg(token).is_some_and(|a| a != "EdDSA") {
                    TokenError::UnsupportedAlgorithm
                } else {
                    TokenError::Malformed
                }
            }
            _ => TokenError::from(e),
        })?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud", "sub", "iat"]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            validation.set_required_spec_claims(&["exp", "aud", "sub", "iat", "iss"]);
        }
        validation.leeway = LEEWAY_SECONDS;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)?.claims;
        let device = claims.device_key()?;
        if claims.sub != peer_id(&device) {
            return Err(TokenError::InvalidClaims(
                "sub is not the peer id of cnf.jwk",
            ));
        }
        Ok(claims)
    }
}

/// The `alg` of a token's header, read leniently (only to name the reason for a refusal).
fn header_alg(token: &str) -> Option<String> {
    let head = token.split('.').next()?;
    let json = URL_SAFE_NO_PAD.decode(head).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&json).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}

/// The libp2p `PeerId` (base58btc, `12D3KooW…`) of an Ed25519 public key.
pub fn peer_id(key: &ed25519_dalek::VerifyingKey) -> String {
    let key = libp2p_identity::ed25519::PublicKey::try_from_bytes(key.as_bytes())
        .expect("a valid Ed25519 key is a valid libp2p key");
    libp2p_identity::PublicKey::from(key)
        .to_peer_id()
        .to_base58()
}

/// A 32-byte Ed25519 public key as clients send it: base64url without padding.
pub fn public_key_to_base64url(key: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// Decodes a base64url (no padding) 32-byte Ed25519 public key, as clients send it.
pub fn public_key_from_base64url(s: &str) -> Result<ed25519_dalek::VerifyingKey, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| TokenError::BadKey("public key is not base64url"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| TokenError::BadKey("public key is not 32 bytes"))?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| TokenError::BadKey("public key is not a valid Ed25519 point"))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The RFC 7638 thumbprint of an Ed25519 JWK: base64url(SHA-256 of `{"crv","kty","x"}` in
/// canonical form). It is the key's stable `kid`.
pub fn thumbprint(jwk: &Jwk) -> String {
    use sha2::Digest;
    let canonical = format!(
        r#"{{"crv":"{}","kty":"{}","x":"{}"}}"#,
        jwk.crv, jwk.kty, jwk.x
    );
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests;
