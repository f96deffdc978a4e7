//! Terminals waiting for a phone to verify for them, in memory: each code is bound to one
//! terminal key until the phone's head-turn check leaves a token there and the terminal takes
//! it, the code expires, or the terminal cancels it. Nothing about the person is kept, and the
//! phone never sees the token. Time is a parameter, so expiry is a plain test.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anonchat_protocol::pair::new_code;
use ed25519_dalek::VerifyingKey;
use tokio::sync::watch;

/// Why a code cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    #[error("unknown, used or cancelled pairing code")]
    Unknown,
    #[error("the pairing code expired")]
    Expired,
    #[error("too many pairings are open")]
    Full,
    #[error("pairings cannot be kept right now")]
    Unavailable,
}

/// The answer the terminal collects: what `/v1/verify` would have told it.
pub type Minted = Arc<serde_json::Value>;

struct Open {
    key: VerifyingKey,
    undisclosed: bool,
    expires: Instant,
    /// Empty until the phone's check passes; the terminal's collect waits on it.
    token: watch::Sender<Option<Minted>>,
}

/// A pairing that waits for the phone's check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub key: VerifyingKey,
    pub undisclosed: bool,
    pub left: Duration,
}

/// Open pairings, at most `capacity` of them.
pub struct Pairings {
    open: HashMap<String, Open>,
    ttl: Duration,
    capacity: usize,
}

impl Pairings {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Pairings {
            open: HashMap::new(),
            ttl,
            capacity,
        }
    }

    /// A new code for `key`; `undisclosed`: the check must not infer a gender.
    pub fn issue(
        &mut self,
        key: VerifyingKey,
        undisclosed: bool,
        now: Instant,
        rng: &mut impl rand::Rng,
    ) -> Result<String, PairError> {
        if self.open.len() >= self.capacity {
            self.open.retain(|_, p| p.expires > now);
            if self.open.len() >= self.capacity {
                return Err(PairError::Full);
            }
        }
        let code = loop {
            let code = new_code(rng);
            if !self.open.contains_key(&code) {
                break code;
            }
        };
        let (token, _) = watch::channel(None);
        self.open.insert(
            code.clone(),
            Open {
                key,
                undisclosed,
                expires: now + self.ttl,
                token,
            },
        );
        Ok(code)
    }

    /// The open pairing `code`: its key and time left. An expired one is forgotten.
    fn get(&mut self, code: &str, now: Instant) -> Result<&Open, PairError> {
        let expires = self.open.get(code).ok_or(PairError::Unknown)?.expires;
        if now >= expires {
            self.open.remove(code);
            return Err(PairError::Expired);
        }
        Ok(&self.open[code])
    }

    /// The key `code` verifies for, whether its gender is undisclosed, and the time it has
    /// left, while no check has passed for it.
    pub fn key(&mut self, code: &str, now: Instant) -> Result<Waiting, PairError> {
        let p = self.get(code, now)?;
        if p.token.borrow().is_some() {
            return Err(PairError::Unknown);
        }
        Ok(Waiting {
            key: p.key,
            undisclosed: p.undisclosed,
            left: p.expires - now,
        })
    }

    /// Leaves the phone's token for the terminal of `code`, which must be bound to `key`; once.
    pub fn deposit(
        &mut self,
        code: &str,
        key: &VerifyingKey,
        minted: Minted,
        now: Instant,
    ) -> Result<(), PairError> {
        let p = self.get(code, now)?;
        if p.key != *key || p.token.borrow().is_some() {
            return Err(PairError::Unknown);
        }
        p.token.send_replace(Some(minted));
        Ok(())
    }

    /// What the terminal of `code` waits on (the caller has checked its proof against the key),
    /// the key, and the time the code has left.
    pub fn watch(
        &mut self,
        code: &str,
        now: Instant,
    ) -> Result<(VerifyingKey, watch::Receiver<Option<Minted>>, Duration), PairError> {
        let p = self.get(code, now)?;
        Ok((p.key, p.token.subscribe(), p.expires - now))
    }

    /// Forgets `code`: its token was collected, or the terminal gave up.
    pub fn remove(&mut self, code: &str) {
        self.open.remove(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(300);

    fn key(n: u8) -> VerifyingKey {
        ed25519_dalek::SigningKey::from_bytes(&[n; 32]).verifying_key()
    }

    #[test]
    fn a_code_carries_one_token_from_its_key_to_its_terminal() {
        let mut p = Pairings::new(TTL, 10);
        let t0 = Instant::now();
        let code = p.issue(key(1), true, t0, &mut rand::thread_rng()).unwrap();
        let waiting = p.key(&code, t0).unwrap();
        assert_eq!((waiting.key, waiting.undisclosed), (key(1), true));
        let (_, mut rx, left) = p.watch(&code, t0).unwrap();
        assert_eq!(left, TTL);
        assert!(rx.borrow_and_update().is_none());
        let minted: Minted = Arc::new(serde_json::json!({"token": "t"}));
        assert_eq!(
            p.deposit(&code, &key(2), minted.clone(), t0),
            Err(PairError::Unknown),
            "bound to another key"
        );
        p.deposit(&code, &key(1), minted.clone(), t0).unwrap();
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow().as_ref(), Some(&minted));
        assert_eq!(
            p.deposit(&code, &key(1), minted, t0),
            Err(PairError::Unknown),
            "a second check cannot replace the first"
        );
        assert_eq!(p.key(&code, t0).err(), Some(PairError::Unknown), "used");
        p.remove(&code);
        assert_eq!(p.watch(&code, t0).err(), Some(PairError::Unknown));
    }

    #[test]
    fn codes_expire_and_a_full_store_makes_room_from_expired_codes_only() {
        let mut p = Pairings::new(TTL, 2);
        let mut rng = rand::thread_rng();
        let t0 = Instant::now();
        let a = p.issue(key(1), false, t0, &mut rng).unwrap();
        p.issue(key(1), false, t0, &mut rng).unwrap();
        assert_eq!(p.issue(key(1), false, t0, &mut rng), Err(PairError::Full));
        assert_eq!(p.key(&a, t0 + TTL).err(), Some(PairError::Expired));
        assert_eq!(
            p.key(&a, t0 + TTL).err(),
            Some(PairError::Unknown),
            "then forgotten"
        );
        assert!(p.issue(key(1), false, t0 + TTL, &mut rng).is_ok());
    }
}
