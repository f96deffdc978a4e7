//! Shared by the peer's tests: a real rendezvous (in-memory store) trusting a test verifier key,
//! and devices with fresh identities.
#![allow(dead_code)]

use anonchat_peer::identity::Identity;
use anonchat_peer::rendezvous::RendezvousClient;
use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::proto::{ClientMessage, Profile, Transport, Want};
use anonchat_rendezvous::server::{self, Keys, Running};
use anonchat_rendezvous::store::memory::MemoryStore;
use anonchat_verifier::token::{Gender, Jwks, KeySet, SigningKey, unix_now};

/// A fresh device identity in its own temporary home.
pub fn identity(name: &str) -> Identity {
    let dir =
        std::env::temp_dir().join(format!("anonchat-peer-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Identity::load_or_create(&dir).unwrap()
}

pub struct Rendezvous {
    pub url: String,
    verifier: SigningKey,
    _running: Running,
}

impl Rendezvous {
    pub async fn start() -> Rendezvous {
        let verifier = SigningKey::generate();
        let keys = KeySet::from_jwks(&Jwks {
            keys: vec![verifier.public_jwk()],
        })
        .unwrap();
        let config = Config {
            rate_limit_per_minute: 0,
            ..Config::local()
        };
        let store = MemoryStore::new(config.store_config());
        let running = server::start(config, store, Keys::Fixed(keys), std::future::pending())
            .await
            .unwrap();
        Rendezvous {
            url: format!("ws://{}/v1/ws", running.addr),
            verifier,
            _running: running,
        }
    }

    /// A token for `id`, issued a minute ago and valid for `ttl` seconds from then.
    pub fn token(&self, id: &Identity, gender: Gender, ttl: i64) -> String {
        self.verifier
            .issue("test", &id.verifying_key(), gender, unix_now() - 60, ttl)
            .unwrap()
            .0
    }

    pub async fn login(&self, id: &Identity, gender: Gender) -> RendezvousClient {
        RendezvousClient::connect(&self.url, id, &self.token(id, gender, 3600))
            .await
            .unwrap()
    }
}

pub fn join(nickname: &str, transports: &[Transport]) -> ClientMessage {
    ClientMessage::Join {
        profile: Profile {
            nickname: nickname.into(),
            bio: "just here to talk".into(),
        },
        want: Want::Any,
        interests: vec![],
        transports: transports.to_vec(),
    }
}
