use super::*;

fn device() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng)
}

fn keyset(keys: &[&SigningKey]) -> KeySet {
    KeySet::from_jwks(&Jwks {
        keys: keys.iter().map(|k| k.public_jwk()).collect(),
    })
    .unwrap()
}

fn issue(key: &SigningKey, gender: Gender, now: i64, ttl: i64) -> (String, Claims) {
    key.issue("test-verifier", &device().verifying_key(), gender, now, ttl)
        .unwrap()
}

/// Re-signs `claims` with `key`'s encoder but with a free header, to forge edge cases.
fn sign_with_header(key: &SigningKey, header: &Header, claims: &impl Serialize) -> String {
    jsonwebtoken::encode(header, claims, &key.encoding).unwrap()
}

fn b64json(v: serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
}

#[test]
fn issued_token_verifies_and_carries_the_claims() {
    let key = SigningKey::generate();
    let dev = device();
    let now = unix_now();
    let (token, issued) = key
        .issue("v1", &dev.verifying_key(), Gender::Female, now, 3600)
        .unwrap();
    let claims = keyset(&[&key]).verify(&token).unwrap();
    assert_eq!(claims, issued);
    assert_eq!(claims.aud, AUDIENCE);
    assert_eq!(claims.gender, Gender::Female);
    assert_eq!(claims.exp - claims.iat, 3600);
    assert_eq!(claims.device_key().unwrap(), dev.verifying_key());
    assert!(claims.sub.starts_with("12D3KooW"), "{}", claims.sub);
    // The header names the key and the algorithm, as any JWT library expects.
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(key.kid()));
}

#[test]
fn two_tokens_for_one_device_have_distinct_ids() {
    let key = SigningKey::generate();
    let dev = device().verifying_key();
    let (_, a) = key.issue("v", &dev, Gender::Male, unix_now(), 60).unwrap();
    let (_, b) = key.issue("v", &dev, Gender::Male, unix_now(), 60).unwrap();
    assert_ne!(a.jti, b.jti);
    assert_eq!(a.sub, b.sub);
}

#[test]
fn forged_claims_are_refused() {
    let key = SigningKey::generate();
    let (token, mut claims) = issue(&key, Gender::Female, unix_now(), 3600);
    claims.gender = Gender::Male;
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64json(serde_json::to_value(&claims).unwrap()),
        parts[2]
    );
    assert_eq!(
        keyset(&[&key]).verify(&forged),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn expired_token_is_refused_but_small_skew_is_tolerated() {
    let key = SigningKey::generate();
    let now = unix_now();
    let (old, _) = issue(&key, Gender::Male, now - 7200, 3600);
    assert_eq!(keyset(&[&key]).verify(&old), Err(TokenError::Expired));
    let (just, _) = issue(&key, Gender::Male, now - 3610, 3600);
    assert!(
        keyset(&[&key]).verify(&just).is_ok(),
        "10 s past exp is inside the leeway"
    );
}

#[test]
fn wrong_audience_is_refused() {
    let key = SigningKey::generate();
    let (_, mut claims) = issue(&key, Gender::Male, unix_now(), 3600);
    claims.aud = "someone-else".into();
    let token = key.sign(&claims).unwrap();
    assert_eq!(
        keyset(&[&key]).verify(&token),
        Err(TokenError::WrongAudience)
    );
}

#[test]
fn alg_none_is_refused() {
    let key = SigningKey::generate();
    let (_, claims) = issue(&key, Gender::Male, unix_now(), 3600);
    let head = b64json(serde_json::json!({"alg": "none", "typ": "JWT", "kid": key.kid()}));
    let body = b64json(serde_json::to_value(&claims).unwrap());
    for token in [format!("{head}.{body}."), format!("{head}.{body}")] {
        let got = keyset(&[&key]).verify(&token);
        assert!(
            matches!(
                got,
                Err(TokenError::UnsupportedAlgorithm | TokenError::Malformed)
            ),
            "{token}: {got:?}"
        );
    }
    assert_eq!(
        keyset(&[&key]).verify(&format!("{head}.{body}.")),
        Err(TokenError::UnsupportedAlgorithm)
    );
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    // The classic key-confusion forgery: HMAC keyed with the verifier's public key bytes.
    let key = SigningKey::generate();
    let (_, claims) = issue(&key, Gender::Male, unix_now(), 3600);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid().to_owned());
    let secret = EncodingKey::from_secret(key.verifying_key().as_bytes());
    let token = jsonwebtoken::encode(&header, &claims, &secret).unwrap();
    assert_eq!(
        keyset(&[&key]).verify(&token),
        Err(TokenError::UnsupportedAlgorithm)
    );
}

#[test]
fn token_from_another_key_is_refused() {
    let trusted = SigningKey::generate();
    let other = SigningKey::generate();
    let (token, claims) = issue(&other, Gender::Male, unix_now(), 3600);
    assert_eq!(
        keyset(&[&trusted]).verify(&token),
        Err(TokenError::UnknownKey)
    );
    // Signed by the other key but claiming the trusted key's kid.
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(trusted.kid().to_owned());
    let token = sign_with_header(&other, &header, &claims);
    assert_eq!(
        keyset(&[&trusted]).verify(&token),
        Err(TokenError::BadSignature)
    );
    // No kid at all.
    let token = sign_with_header(&trusted, &Header::new(Algorithm::EdDSA), &claims);
    assert_eq!(
        keyset(&[&trusted]).verify(&token),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn subject_must_be_the_peer_id_of_the_bound_key() {
    let key = SigningKey::generate();
    let (_, mut claims) = issue(&key, Gender::Male, unix_now(), 3600);
    claims.sub = peer_id(&device().verifying_key());
    let token = key.sign(&claims).unwrap();
    assert!(matches!(
        keyset(&[&key]).verify(&token),
        Err(TokenError::InvalidClaims(_))
    ));
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    let set = keyset(&[&SigningKey::generate()]);
    for junk in [
        "",
        ".",
        "..",
        "a.b.c",
        "a.b",
        "😀.😀.😀",
        &"x".repeat(10_000),
        "eyJhbGciOiJFZERTQSJ9.e30.AAAA",
    ] {
        assert!(set.verify(junk).is_err(), "{junk:?} accepted");
    }
}

#[test]
fn keyset_holds_several_keys_for_rotation() {
    let old = SigningKey::generate();
    let new = SigningKey::generate();
    let set = keyset(&[&old, &new]);
    assert_eq!(set.len(), 2);
    for key in [&old, &new] {
        let (token, _) = issue(key, Gender::Undisclosed, unix_now(), 60);
        assert_eq!(set.verify(&token).unwrap().gender, Gender::Undisclosed);
    }
    assert!(KeySet::from_jwks(&Jwks::default()).is_err());
}

#[test]
fn pem_round_trip_keeps_the_key_and_its_kid() {
    let key = SigningKey::generate();
    let pem = key.to_pkcs8_pem();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let back = SigningKey::from_pkcs8_pem(&pem).unwrap();
    assert_eq!(back.kid(), key.kid());
    assert_eq!(back.verifying_key(), key.verifying_key());
    assert!(SigningKey::from_pkcs8_pem("not a key").is_err());
}

#[test]
fn thumbprint_matches_rfc_8037_example() {
    // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
    let jwk = Jwk {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
        kid: None,
        alg: None,
        use_: None,
    };
    assert_eq!(
        thumbprint(&jwk),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
}

#[test]
fn peer_id_is_the_identity_multihash_of_the_protobuf_key() {
    // Independent recipe: protobuf {Type: Ed25519 (1), Data: key} → identity multihash → base58btc.
    let key = device().verifying_key();
    let mut bytes = vec![0x00, 36, 0x08, 0x01, 0x12, 0x20];
    bytes.extend_from_slice(key.as_bytes());
    assert_eq!(peer_id(&key), base58(&bytes));
}

fn base58(input: &[u8]) -> String {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut digits: Vec<u8> = Vec::new(); // little-endian base-58 digits
    for &byte in input {
        let mut carry = byte as u32;
        for d in digits.iter_mut() {
            carry += (*d as u32) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = input.iter().take_while(|b| **b == 0).count();
    std::iter::repeat_n('1', zeros)
        .chain(digits.iter().rev().map(|d| ALPHABET[*d as usize] as char))
        .collect()
}

#[test]
fn public_key_parsing_refuses_bad_input() {
    let key = device().verifying_key();
    let ok = URL_SAFE_NO_PAD.encode(key.as_bytes());
    assert_eq!(public_key_from_base64url(&ok).unwrap(), key);
    for bad in [
        "",
        "!!!",
        &URL_SAFE_NO_PAD.encode([1u8; 31]),
        &URL_SAFE_NO_PAD.encode([1u8; 33]),
    ] {
        assert!(public_key_from_base64url(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_public_key_reads_back_as_it_is_written() {
    let key = device().verifying_key();
    let text = public_key_to_base64url(key.as_bytes());
    assert_eq!(text.len(), 43, "unpadded");
    assert_eq!(public_key_from_base64url(&text).unwrap(), key);
}
