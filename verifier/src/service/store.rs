//! Where open challenges and pairings wait for their answer: this process's memory, or Redis
//! (`VERIFIER_REDIS_URL`) when several verifiers answer behind one address, since a challenge
//! issued by one may be answered at another and a phone may reach another than its terminal.
//! Either way only a device key, the steps or the token, and an expiry are kept, nothing about
//! the person; in Redis every key has a TTL.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anonchat_protocol::token::public_key_to_base64url as b64;
use anonchat_protocol::verify::Step;
use anonchat_serve::redis::LazyRedis;
use ed25519_dalek::VerifyingKey;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::challenges::{ChallengeError, Challenges};
use super::pairings::{Minted, PairError, Pairings, Waiting};

/// How much longer than its life an entry stays in Redis, so that an answer just too late is
/// told "expired" rather than "unknown".
const GRACE: Duration = Duration::from_secs(60);
/// How often a terminal's collect looks for its token in Redis.
const POLL: Duration = Duration::from_millis(200);

pub enum Store {
    Memory {
        challenges: Mutex<Challenges>,
        pairings: Mutex<Pairings>,
    },
    Redis(RedisOpen),
}

/// The Redis side: one connection (reconnecting by itself) and the two lives.
pub struct RedisOpen {
    conn: LazyRedis,
    challenge_ttl: Duration,
    pair_ttl: Duration,
    /// The scripts, hashed once ([`OPEN_PAIR`], [`DEPOSIT`]).
    open_pair: redis::Script,
    deposit: redis::Script,
}

fn challenge_key(id: &str) -> String {
    format!("anonchat:verifier:challenge:{id}")
}

fn pair_key(code: &str) -> String {
    format!("anonchat:verifier:pair:{code}")
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A challenge as Redis keeps it.
#[derive(Serialize, Deserialize)]
struct StoredChallenge {
    key: String,
    steps: Vec<Step>,
    expires_ms: u64,
}

/// A pairing as Redis keeps it: a hash with these fields (and `token` once the phone passed).
const OPEN_PAIR: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'key', ARGV[1], 'undisclosed', ARGV[2], 'expires_ms', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"#;

/// The phone's token, left once, for the key the code was made for, before it expires.
const DEPOSIT: &str = r#"
if redis.call('HGET', KEYS[1], 'key') ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[1], 'token') == 1 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'expires_ms')) <= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], 'token', ARGV[2])
return 1
"#;

/// A pairing read back from Redis.
struct StoredPair {
    key: VerifyingKey,
    undisclosed: bool,
    expires_ms: u64,
    token: Option<Minted>,
}

impl StoredPair {
    fn parse(fields: std::collections::HashMap<String, String>) -> Result<Self, PairError> {
        let key = fields
            .get("key")
            .and_then(|k| anonchat_protocol::token::public_key_from_base64url(k).ok())
            .ok_or(PairError::Unknown)?;
        Ok(StoredPair {
            key,
            undisclosed: fields.get("undisclosed").is_some_and(|u| u == "1"),
            expires_ms: fields
                .get("expires_ms")
                .and_then(|e| e.parse().ok())
                .ok_or(PairError::Unknown)?,
            token: fields
                .get("token")
                .and_then(|t| serde_json::from_str(t).ok())
                .map(Arc::new),
        })
    }
}

fn down<E: std::fmt::Display>(e: E) -> PairError {
    tracing::warn!("Redis: {e}");
    PairError::Unavailable
}

fn challenge_down<E: std::fmt::Display>(e: E) -> ChallengeError {
    tracing::warn!("Redis: {e}");
    ChallengeError::Unavailable
}

impl Store {
    /// In this process's memory, with room for `capacity` of each.
    pub fn memory(challenge_ttl: Duration, pair_ttl: Duration, capacity: usize) -> Store {
        Store::Memory {
            challenges: Mutex::new(Challenges::new(challenge_ttl, capacity)),
            pairings: Mutex::new(Pairings::new(pair_ttl, capacity)),
        }
    }

    /// In the Redis at `url`, shared by every verifier that uses it.
    pub async fn redis(
        url: &str,
        challenge_ttl: Duration,
        pair_ttl: Duration,
    ) -> anyhow::Result<Store> {
        use anyhow::Context;
        let client = anonchat_serve::redis::connection_info(url)
            .and_then(redis::Client::open)
            .context("VERIFIER_REDIS_URL")?;
        // A Redis that is not up yet is waited for a moment, then in the background: until it
        // answers, challenges and pairings are refused as unavailable.
        let target = anonchat_serve::redis::Target::Client(client);
        let conn = LazyRedis::connect(target, "VERIFIER_REDIS_URL", Duration::from_secs(1)).await;
        Ok(Store::Redis(RedisOpen {
            conn,
            challenge_ttl,
            pair_ttl,
            open_pair: redis::Script::new(OPEN_PAIR),
            deposit: redis::Script::new(DEPOSIT),
        }))
    }

    /// Whether the store answers (readiness): memory always, Redis when a PING does.
    pub async fn ready(&self) -> bool {
        match self {
            Store::Memory { .. } => true,
            Store::Redis(r) => match r.conn.get() {
                Ok(mut c) => redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok(),
                Err(_) => false,
            },
        }
    }

    /// A new challenge with `steps` for `key`: its id.
    pub async fn issue_challenge(
        &self,
        key: [u8; 32],
        steps: Vec<Step>,
    ) -> Result<String, ChallengeError> {
        match self {
            Store::Memory { challenges, .. } => challenges
                .lock()
                .map_err(|_| ChallengeError::Unavailable)?
                .issue(key, steps, Instant::now(), &mut rand::thread_rng()),
            Store::Redis(r) => {
                let id = super::challenges::new_id(&mut rand::thread_rng());
                let stored = StoredChallenge {
                    key: b64(&key),
                    steps,
                    expires_ms: unix_ms() + r.challenge_ttl.as_millis() as u64,
                };
                let value = serde_json::to_string(&stored).map_err(challenge_down)?;
                let set: bool = redis::cmd("SET")
                    .arg(challenge_key(&id))
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg((r.challenge_ttl + GRACE).as_millis() as u64)
                    .query_async(&mut r.conn.get().map_err(challenge_down)?)
                    .await
                    .map_err(challenge_down)?;
                if set {
                    Ok(id)
                } else {
                    Err(ChallengeError::Unavailable)
                }
            }
        }
    }

    /// Takes challenge `id` for an answer from `key`: its steps; gone whatever this returns.
    pub async fn take_challenge(
        &self,
        id: &str,
        key: &[u8; 32],
    ) -> Result<Vec<Step>, ChallengeError> {
        match self {
            Store::Memory { challenges, .. } => challenges
                .lock()
                .map_err(|_| ChallengeError::Unavailable)?
                .take(id, key, Instant::now()),
            Store::Redis(r) => {
                if id.is_empty() || id.len() > 64 {
                    return Err(ChallengeError::Unknown);
                }
                let value: Option<String> = redis::cmd("GETDEL")
                    .arg(challenge_key(id))
                    .query_async(&mut r.conn.get().map_err(challenge_down)?)
                    .await
                    .map_err(challenge_down)?;
                let stored: StoredChallenge = value
                    .and_then(|v| serde_json::from_str(&v).ok())
                    .ok_or(ChallengeError::Unknown)?;
                if stored.key != b64(key) {
                    return Err(ChallengeError::Unknown);
                }
                if unix_ms() >= stored.expires_ms {
                    return Err(ChallengeError::Expired);
                }
                Ok(stored.steps)
            }
        }
    }

    /// A new pairing code for `key`.
    pub async fn open_pairing(
        &self,
        key: VerifyingKey,
        undisclosed: bool,
    ) -> Result<String, PairError> {
        match self {
            Store::Memory { pairings, .. } => pairings
                .lock()
                .map_err(|_| PairError::Unavailable)?
                .issue(key, undisclosed, Instant::now(), &mut rand::thread_rng()),
            Store::Redis(r) => {
                for _ in 0..4 {
                    let code = anonchat_protocol::pair::new_code(&mut rand::thread_rng());
                    let opened: i64 = r
                        .open_pair
                        .key(pair_key(&code))
                        .arg(b64(key.as_bytes()))
                        .arg(if undisclosed { "1" } else { "0" })
                        .arg(unix_ms() + r.pair_ttl.as_millis() as u64)
                        .arg((r.pair_ttl + GRACE).as_millis() as u64)
                        .invoke_async(&mut r.conn.get().map_err(down)?)
                        .await
                        .map_err(down)?;
                    if opened == 1 {
                        return Ok(code);
                    }
                }
                Err(PairError::Full)
            }
        }
    }

    /// Deletes pairing `code`: whether this call deleted it (whoever deletes it takes it).
    async fn delete_pair(r: &RedisOpen, code: &str) -> Result<bool, PairError> {
        let mut c = r.conn.get().map_err(down)?;
        let deleted: i64 = c.del(pair_key(code)).await.map_err(down)?;
        Ok(deleted == 1)
    }

    async fn read_pair(r: &RedisOpen, code: &str) -> Result<StoredPair, PairError> {
        let fields: std::collections::HashMap<String, String> = r
            .conn
            .get()
            .map_err(down)?
            .hgetall(pair_key(code))
            .await
            .map_err(down)?;
        if fields.is_empty() {
            return Err(PairError::Unknown);
        }
        let pair = StoredPair::parse(fields)?;
        if unix_ms() >= pair.expires_ms {
            let _ = Self::delete_pair(r, code).await;
            return Err(PairError::Expired);
        }
        Ok(pair)
    }

    /// The pairing `code` while it waits for the phone's check.
    pub async fn pairing(&self, code: &str) -> Result<Waiting, PairError> {
        match self {
            Store::Memory { pairings, .. } => pairings
                .lock()
                .map_err(|_| PairError::Unavailable)?
                .key(code, Instant::now()),
            Store::Redis(r) => {
                let pair = Self::read_pair(r, code).await?;
                if pair.token.is_some() {
                    return Err(PairError::Unknown);
                }
                Ok(Waiting {
                    key: pair.key,
                    undisclosed: pair.undisclosed,
                    left: Duration::from_millis(pair.expires_ms.saturating_sub(unix_ms())),
                })
            }
        }
    }

    /// Leaves the phone's token for the terminal of `code`, bound to `key`; once.
    pub async fn deposit(
        &self,
        code: &str,
        key: &VerifyingKey,
        minted: Minted,
    ) -> Result<(), PairError> {
        match self {
            Store::Memory { pairings, .. } => pairings
                .lock()
                .map_err(|_| PairError::Unavailable)?
                .deposit(code, key, minted, Instant::now()),
            Store::Redis(r) => {
                let token = serde_json::to_string(minted.as_ref()).map_err(down)?;
                let done: i64 = r
                    .deposit
                    .key(pair_key(code))
                    .arg(b64(key.as_bytes()))
                    .arg(token)
                    .arg(unix_ms())
                    .invoke_async(&mut r.conn.get().map_err(down)?)
                    .await
                    .map_err(down)?;
                match done {
                    1 => Ok(()),
                    -1 => Err(PairError::Expired),
                    _ => Err(PairError::Unknown),
                }
            }
        }
    }

    /// The token the phone's check left for `code`, waiting up to `wait` for it (`None`: not
    /// yet), for a terminal whose proof `proves` the code's key; the code is gone once taken.
    pub async fn collect(
        &self,
        code: &str,
        proves: impl Fn(&VerifyingKey) -> bool,
        wait: Duration,
    ) -> Result<Option<Minted>, CollectError> {
        match self {
            Store::Memory { pairings, .. } => {
                let (key, mut token, left) = pairings
                    .lock()
                    .map_err(|_| PairError::Unavailable)?
                    .watch(code, Instant::now())?;
                if !proves(&key) {
                    return Err(CollectError::BadProof);
                }
                let wait = wait.min(left);
                match tokio::time::timeout(wait, token.wait_for(Option::is_some)).await {
                    Ok(Ok(minted)) => {
                        let minted = minted.clone();
                        pairings
                            .lock()
                            .map_err(|_| PairError::Unavailable)?
                            .remove(code);
                        Ok(minted)
                    }
                    // Cancelled, or collected by another request.
                    Ok(Err(_)) => Err(PairError::Unknown.into()),
                    Err(_) if wait == left => Err(PairError::Expired.into()),
                    Err(_) => Ok(None),
                }
            }
            Store::Redis(r) => {
                let until = Instant::now() + wait;
                let mut pair = Self::read_pair(r, code).await?;
                if !proves(&pair.key) {
                    return Err(CollectError::BadProof);
                }
                loop {
                    if let Some(token) = pair.token {
                        return if Self::delete_pair(r, code).await? {
                            Ok(Some(token))
                        } else {
                            Err(PairError::Unknown.into())
                        };
                    }
                    if Instant::now() + POLL > until {
                        return Ok(None);
                    }
                    tokio::time::sleep(POLL).await;
                    pair = Self::read_pair(r, code).await?;
                }
            }
        }
    }

    /// Forgets `code` for a terminal whose proof `proves` its key.
    pub async fn cancel(
        &self,
        code: &str,
        proves: impl Fn(&VerifyingKey) -> bool,
    ) -> Result<(), CollectError> {
        match self {
            Store::Memory { pairings, .. } => {
                let mut pairings = pairings.lock().map_err(|_| PairError::Unavailable)?;
                let (key, _, _) = pairings.watch(code, Instant::now())?;
                if !proves(&key) {
                    return Err(CollectError::BadProof);
                }
                pairings.remove(code);
                Ok(())
            }
            Store::Redis(r) => {
                let pair = Self::read_pair(r, code).await?;
                if !proves(&pair.key) {
                    return Err(CollectError::BadProof);
                }
                Self::delete_pair(r, code).await?;
                Ok(())
            }
        }
    }
}

/// Why a terminal gets no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Pair(#[from] PairError),
    #[error("the proof is not the code's key's")]
    BadProof,
}
