//! The rendezvous server: a thin axum driver around the protocol, the matcher (through the
//! store) and the signaling validator.

mod http;
mod keys;
mod metrics;
pub mod route;
mod session;
mod web;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anonchat_protocol::rendezvous::IceServer;
use anonchat_protocol::token::KeySet;
use anyhow::Context;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::ice::IcePlan;
use crate::secrets::Secrets;
use crate::store::Store;
use keys::Refresh;
pub use keys::{Keys, MAX_JWKS_BYTES};
pub use metrics::Metrics;
use route::{Envelope, Hub};

/// What every connection of this instance shares.
pub struct Shared<S: Store> {
    pub store: S,
    pub secrets: Secrets,
    /// The verifier's keys; none until a verifier that was not up at start answers.
    pub keys: RwLock<Option<KeySet>>,
    pub config: Config,
    pub ice: IcePlan,
    pub instance: String,
    pub hub: Hub,
    pub metrics: Metrics,
    pub ip_limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    pub shutdown: watch::Receiver<bool>,
    /// Bumped each time the store turns out to have forgotten this instance: every waiting
    /// session joins again.
    pub store_forgot: watch::Sender<u64>,
    /// Whether this instance listens on its channel, and whether its last heartbeat reached
    /// the store: both make it alive to the other instances, and ready.
    pub listening: AtomicBool,
    pub beating: AtomicBool,
}

impl<S: Store> Shared<S> {
    /// Delivers an envelope to its session, here or on another instance. A `matched` that
    /// finds nobody is answered with `partner_left` to whoever made the match.
    pub async fn route(&self, instance: &str, envelope: Envelope) {
        if instance == self.instance {
            if let Err(undelivered) = self.hub.deliver(envelope)
                && let Some((back_to, bounce)) = undelivered.bounce()
            {
                Box::pin(self.route(&back_to, bounce)).await;
            }
        } else {
            self.deliver(instance, envelope).await;
        }
    }

    /// Delivers an envelope to its session, here or on another instance; whether a session
    /// here took it, or a listener of the other instance's channel heard it (none: that
    /// instance is gone, even if its heartbeat has not expired yet).
    pub async fn deliver(&self, instance: &str, envelope: Envelope) -> bool {
        if instance == self.instance {
            return self.hub.deliver(envelope).is_ok();
        }
        let json = serde_json::to_string(&envelope).expect("envelopes serialize");
        match self.store.publish(instance, json).await {
            Ok(heard) => heard > 0,
            Err(e) => {
                tracing::warn!(error = %e, "could not reach another instance");
                false
            }
        }
    }

    pub fn ip_allowed(&self, ip: IpAddr) -> Result<(), u64> {
        match &self.ip_limiter {
            Some(l) => l.check_key(&ip).map_err(|nu| {
                nu.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
                .as_secs()
                .max(1)
            }),
            None => Ok(()),
        }
    }
}

/// A running instance.
pub struct Running {
    pub addr: SocketAddr,
    pub instance: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Tells every client, retires this instance from the store, and waits for the server.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.context("server task")?
    }

    /// Waits until the server stops (after `until` resolved).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task")?
    }
}

fn random_id(bytes: usize) -> String {
    use base64::Engine;
    let mut b = vec![0u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Starts the server on the store its configuration names: the Redis Cluster of
/// `redis_cluster_nodes`, the primary `redis_sentinels` name, or Redis at `redis_url` (trusting
/// `redis_ca_file` for `rediss://`), else the in-memory store. What the binary runs, and the
/// tests that start a server the way an operator does.
pub async fn start_from_config(
    config: Config,
    keys: Keys,
    until: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    if !config.redis_cluster_nodes.is_empty() {
        let nodes = config.redis_cluster_nodes.clone();
        let store = crate::store::redis::RedisStore::connect_cluster(nodes, config.store_config())
            .await
            .context("REDIS_CLUSTER_NODES")?;
        return start(config, store, keys, until).await;
    }
    if let (false, Some(master)) = (
        config.redis_sentinels.is_empty(),
        config.redis_sentinel_master.clone(),
    ) {
        let sentinels = config.redis_sentinels.clone();
        let store = crate::store::redis::RedisStore::connect_sentinel(
            sentinels,
            master,
            config.redis_sentinel_master_password.clone(),
            config.store_config(),
        )
        .await
        .context("REDIS_SENTINELS")?;
        return start(config, store, keys, until).await;
    }
    let Some(url) = config.redis_url.clone() else {
        tracing::info!("no REDIS_URL: using the in-memory store (one process)");
        let store = crate::store::memory::MemoryStore::new(config.store_config());
        return start(config, store, keys, until).await;
    };
    let ca = match &config.redis_ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("reading REDIS_CA_FILE {}", path.display()))?,
        ),
        None => None,
    };
    // The URL may hold a password: never in a message.
    let store = crate::store::redis::RedisStore::connect_with_ca(&url, ca, config.store_config())
        .await
        .context("connecting to REDIS_URL")?;
    start(config, store, keys, until).await
}

/// Starts an instance on `store`; stops gracefully when `until` resolves or on `shutdown`.
pub async fn start<S: Store>(
    config: Config,
    store: S,
    keys: Keys,
    until: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let secret = match &config.server_secret {
        Some(s) if !s.is_empty() => s.as_bytes().to_vec(),
        _ if config.shares_redis() => {
            anyhow::bail!("SERVER_SECRET is required with Redis, so that instances agree")
        }
        _ => {
            tracing::warn!(
                "no SERVER_SECRET: a random one for this process (receipts die with it)"
            );
            random_id(32).into_bytes()
        }
    };
    // A verifier that is not up yet is waited for (refresh_keys retries), unready meanwhile;
    // a file or fixed keys that cannot be read are a mistake in the settings.
    let key_set = match keys.load().await {
        Ok(k) => Some(k.requiring_issuer(&config.verifier_issuer)),
        Err(e) if matches!(keys, Keys::Url(_)) => {
            tracing::warn!(
                error = %format!("{e:#}"),
                "the verifier's keys cannot be fetched yet: retrying; /readyz answers 503 and logins are refused as unavailable until they arrive"
            );
            None
        }
        Err(e) => return Err(e.context("loading the verifier's keys")),
    };
    // The profanity filter builds its tables on first use: not on the first user's time.
    let _ = crate::profile::validate(&anonchat_protocol::rendezvous::Profile {
        nickname: "warm up".into(),
        bio: "warming the filter up".into(),
    });
    let ice = config.ice_plan()?;
    if !ice.crosses_networks() {
        tracing::warn!(
            "no STUN or TURN server configured (TURN_URLS, STUN_URLS, ICE_SERVERS): clients on \
             different networks will not be able to connect to each other"
        );
    }
    let instance = random_id(9);
    // A store that does not answer yet is not fatal: the heartbeat goes on trying, and the
    // instance is unready (`/readyz` 503) and refuses logins as unavailable meanwhile.
    let beating = match store.heartbeat(&instance, 0).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "the store does not answer yet");
            false
        }
    };
    let mut inbox = store
        .subscribe(&instance)
        .await
        .context("subscribing to this instance's channel")?;
    // The channel is usually listened to at once; if not, deliver_inbox hears when it is.
    let listening = beating
        && matches!(
            tokio::time::timeout(Duration::from_secs(1), inbox.recv()).await,
            Ok(Some(crate::store::Inbox::Listening))
        );
    let tls = config.http.tls().context("TLS_CERT_FILE, TLS_KEY_FILE")?;
    let https = tls.is_some();
    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;
    let (stop, shutdown) = watch::channel(false);
    let ip_limiter = NonZeroU32::new(config.rate_limit_per_minute)
        .map(|n| RateLimiter::keyed(Quota::per_minute(n)));
    let shared = Arc::new(Shared {
        store,
        secrets: Secrets::new(&secret),
        keys: RwLock::new(key_set),
        config,
        ice,
        instance: instance.clone(),
        hub: Hub::default(),
        metrics: Metrics::new(),
        ip_limiter,
        shutdown,
        store_forgot: watch::Sender::new(0),
        listening: AtomicBool::new(listening),
        beating: AtomicBool::new(beating),
    });
    let background = [
        tokio::spawn(heartbeat(shared.clone())),
        tokio::spawn(deliver_inbox(shared.clone(), inbox)),
        tokio::spawn(refresh_keys(shared.clone(), keys)),
    ];
    let app = http::router(shared.clone());
    let mut stopped = shared.shutdown.clone();
    let stop_tx = stop.clone();
    let task = tokio::spawn(async move {
        tokio::spawn(async move {
            until.await;
            let _ = stop_tx.send(true);
        });
        // Signaling is many small frames, each waited for: no Nagle delay on them.
        let options = anonchat_serve::Options { nodelay: true };
        let http = shared.config.http.clone();
        let serve = anonchat_serve::serve(listener, app, &http, options, tls, async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
        let result = serve.await;
        for b in background {
            b.abort();
        }
        shared.store.retire(&shared.instance).await.ok();
        tracing::info!("rendezvous stopped");
        result.map_err(Into::into)
    });
    tracing::info!(%addr, %instance, https, "rendezvous listening");
    Ok(Running {
        addr,
        instance,
        stop,
        task,
    })
}

/// Keeps this instance alive in the store, and notices when the store forgot it: then its
/// waiting sessions join again. After a failed beat it beats more often, so that the queue
/// works again soon after the store is back.
async fn heartbeat<S: Store>(shared: Arc<Shared<S>>) {
    let every = shared.store_heartbeat_interval();
    // Soon at first: the beat at start may have failed (a store that is not up yet).
    let mut wait = AFTER_A_FAILED_BEAT.min(every);
    loop {
        tokio::time::sleep(wait).await;
        match shared
            .store
            .heartbeat(&shared.instance, shared.hub.len() as u64)
            .await
        {
            Ok(knew) => {
                shared.beating.store(true, Ordering::Relaxed);
                if !knew {
                    tracing::warn!(
                        "the store had forgotten this instance (restarted without its data, or out of reach for longer than HEARTBEAT_TTL): waiting sessions join again"
                    );
                    shared.forget();
                }
                wait = every;
            }
            Err(e) => {
                shared.beating.store(false, Ordering::Relaxed);
                tracing::warn!(error = %e, "heartbeat failed");
                wait = AFTER_A_FAILED_BEAT.min(every);
            }
        }
    }
}

/// How soon an instance beats again after a beat failed.
const AFTER_A_FAILED_BEAT: Duration = Duration::from_millis(500);

impl<S: Store> Shared<S> {
    /// Whether other instances see this one alive: it listens on its channel and its last
    /// heartbeat reached the store.
    pub fn alive(&self) -> bool {
        self.listening.load(Ordering::Relaxed) && self.beating.load(Ordering::Relaxed)
    }

    /// The store may have lost this instance's waiting tickets: every waiting session joins
    /// again.
    fn forget(&self) {
        self.metrics.store_forgot.inc();
        self.store_forgot.send_modify(|n| *n += 1);
    }

    /// ICE servers for one client now, with freshly minted TURN credentials.
    pub fn ice_servers(&self) -> Vec<IceServer> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        self.ice.servers(now, &random_id(12))
    }

    /// Four beats per heartbeat TTL, so one lost beat does not kill the instance.
    fn store_heartbeat_interval(&self) -> Duration {
        (self.config.heartbeat_ttl / 4).max(Duration::from_millis(250))
    }
}

async fn deliver_inbox<S: Store>(
    shared: Arc<Shared<S>>,
    mut inbox: tokio::sync::mpsc::Receiver<crate::store::Inbox>,
) {
    while let Some(inbound) = inbox.recv().await {
        let payload = match inbound {
            crate::store::Inbox::Payload(p) => p,
            crate::store::Inbox::Listening => {
                shared.listening.store(true, Ordering::Relaxed);
                // Until now the instance counted as dead: joins may have swept its tickets.
                shared.forget();
                continue;
            }
            crate::store::Inbox::Lost => {
                shared.listening.store(false, Ordering::Relaxed);
                continue;
            }
        };
        match Envelope::from_instance(&payload, &shared.config.signal_limits()) {
            Ok(envelope) => shared.route(&shared.instance.clone(), envelope).await,
            Err(e) => {
                Metrics::label(&shared.metrics.not_signaling, metrics::FROM_INSTANCE);
                tracing::warn!(error = %e, "refused an envelope from another instance");
            }
        }
    }
}

async fn refresh_keys<S: Store>(shared: Arc<Shared<S>>, keys: Keys) {
    if !keys.refreshes() {
        return;
    }
    // Until the first keys arrive: again and again, backing off to 10 s.
    let mut wait = Duration::from_millis(250);
    while shared
        .keys
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .is_none()
    {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(10));
        match keys.load().await {
            Ok(k) => {
                tracing::info!("the verifier's keys arrived: ready");
                *shared.keys.write().unwrap_or_else(|p| p.into_inner()) =
                    Some(k.requiring_issuer(&shared.config.verifier_issuer));
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), ?wait, "the verifier's keys cannot be fetched yet")
            }
        }
    }
    let mut refresh = Refresh::default();
    loop {
        tokio::time::sleep(Duration::from_secs(300)).await;
        let fetched = match keys.load().await {
            Ok(k) => k.requiring_issuer(&shared.config.verifier_issuer),
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh the verifier's keys; keeping the old ones");
                continue;
            }
        };
        let mut guard = shared.keys.write().unwrap_or_else(|p| p.into_inner());
        let Some(current) = guard.as_mut() else {
            continue;
        };
        if refresh.accepts(current, &fetched) {
            *current = fetched;
        } else {
            tracing::warn!(
                "the verifier's key set changed completely; keeping the old keys until the next \
                 refresh says the same"
            );
        }
    }
}
