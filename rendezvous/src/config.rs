//! Every setting of `anonchat-rendezvous serve`, each with its environment variable (DESIGN.md §7).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anonchat_protocol::signaling::SignalLimits;

use crate::ice::{IceConfigError, IcePlan};
use crate::store::{LAST_PARTNER_TTL, StoreConfig};

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "RENDEZVOUS_ADDR", default_value = "127.0.0.1:3002")]
    pub addr: SocketAddr,
    /// Redis URL; unset: the in-memory store (one process). `rediss://` for TLS; a password
    /// goes in the URL (`rediss://:PASSWORD@host:6379`).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// CA certificate (PEM) that signed the Redis server's certificate, for `rediss://`;
    /// unset: the system's roots.
    #[arg(long, env = "REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
    /// Redis Sentinels (`host:port`, or `redis://:PASSWORD@host:port` when they ask for a
    /// password; comma-separated) to ask which server is the primary, instead of REDIS_URL;
    /// the rendezvous follows a failover. Needs REDIS_SENTINEL_MASTER.
    #[arg(
        long,
        env = "REDIS_SENTINELS",
        value_delimiter = ',',
        conflicts_with = "redis_url",
        requires = "redis_sentinel_master",
        hide_env_values = true
    )]
    pub redis_sentinels: Vec<String>,
    /// The name the sentinels monitor the primary under (`sentinel monitor NAME …`).
    #[arg(long, env = "REDIS_SENTINEL_MASTER")]
    pub redis_sentinel_master: Option<String>,
    /// The password of the Redis servers the sentinels name (their `requirepass`).
    #[arg(long, env = "REDIS_SENTINEL_MASTER_PASSWORD", hide_env_values = true)]
    pub redis_sentinel_master_password: Option<String>,
    /// A Redis Cluster's nodes (`redis://host:port`, comma-separated; any of them will do, the
    /// rest are found), instead of REDIS_URL. Every key the rendezvous writes shares one hash
    /// tag: they live on one node (and its replicas), which scripts need; the cluster spreads
    /// other applications' keys, not these.
    #[arg(
        long,
        env = "REDIS_CLUSTER_NODES",
        value_delimiter = ',',
        conflicts_with_all = ["redis_url", "redis_sentinels"],
        hide_env_values = true
    )]
    pub redis_cluster_nodes: Vec<String>,
    /// The verifier's JWKS document, fetched at start and every 5 minutes.
    #[arg(long, env = "VERIFIER_JWKS_URL")]
    pub verifier_jwks_url: Option<String>,
    /// The verifier's address as browsers reach it, for the web page's `/config.json`; unset:
    /// the origin of VERIFIER_JWKS_URL.
    #[arg(long, env = "VERIFIER_URL")]
    pub verifier_url: Option<String>,
    /// Fetch VERIFIER_JWKS_URL over plain http even though it is not a loopback address
    /// (inside a private network the operator trusts).
    #[arg(long, env = "VERIFIER_JWKS_ALLOW_HTTP")]
    pub verifier_jwks_allow_http: bool,
    /// The `iss` every token must carry: the verifier's VERIFIER_ISSUER.
    #[arg(long, env = "VERIFIER_ISSUER", default_value = anonchat_protocol::token::DEFAULT_ISSUER)]
    pub verifier_issuer: String,
    /// The verifier's JWKS document, as a file (instead of the URL).
    #[arg(long, env = "VERIFIER_JWKS_FILE")]
    pub verifier_jwks_file: Option<PathBuf>,
    /// Secret for pseudonyms and receipts; required with Redis, so that instances agree.
    /// Unset without Redis: a random one for this process, with a warning.
    #[arg(long, env = "SERVER_SECRET", hide_env_values = true)]
    pub server_secret: Option<String>,
    /// How long after a match its receipt can be used to report or block, in seconds.
    #[arg(long = "report-window-seconds", env = "REPORT_WINDOW_SECONDS", default_value = "86400", value_name = "SECONDS", value_parser = anonchat_serve::seconds)]
    pub report_window: Duration,
    /// Matches per device per day.
    #[arg(long, env = "DAILY_MATCH_LIMIT", default_value_t = 100)]
    pub daily_match_limit: u32,
    /// Unique reporters that ban a device.
    #[arg(long, env = "REPORT_THRESHOLD", default_value_t = 5)]
    pub report_threshold: u32,
    /// How long reports are remembered, in seconds.
    #[arg(long = "report-ttl-seconds", env = "REPORT_TTL_SECONDS", default_value = "604800", value_name = "SECONDS", value_parser = anonchat_serve::seconds)]
    pub report_ttl: Duration,
    /// How long a ban lasts, in seconds.
    #[arg(long = "ban-seconds", env = "BAN_SECONDS", default_value = "86400", value_name = "SECONDS", value_parser = anonchat_serve::seconds)]
    pub ban: Duration,
    /// How long daily match counts are kept, in seconds.
    #[arg(long = "match-count-ttl-seconds", env = "MATCH_COUNT_TTL_SECONDS", default_value = "172800", value_name = "SECONDS", value_parser = anonchat_serve::seconds)]
    pub match_count_ttl: Duration,
    /// How long a block lasts, in seconds.
    #[arg(long = "block-ttl-seconds", env = "BLOCK_TTL_SECONDS", default_value = "2592000", value_name = "SECONDS", value_parser = anonchat_serve::seconds)]
    pub block_ttl: Duration,
    /// Bearer token for the admin endpoints; unset: they are disabled.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Origins allowed to open a WebSocket from a browser, comma-separated; unset: any.
    #[arg(long, env = "CLIENT_ORIGINS", value_delimiter = ',')]
    pub client_origins: Vec<String>,
    /// Static ICE servers handed to clients: a JSON array of RTCIceServer objects, or
    /// comma-separated `stun:`/`turn:` URLs (given as they are, with no minted credentials).
    #[arg(long, env = "ICE_SERVERS")]
    pub ice_servers: Option<String>,
    /// TURN servers, comma-separated `turn:`/`turns:` URLs (e.g.
    /// `turn:turn.example.org:3478,turns:turn.example.org:443?transport=tcp`). Each client gets
    /// fresh short-lived credentials for coturn's use-auth-secret mode with every match.
    #[arg(long, env = "TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,
    /// coturn's static-auth-secret, comma-separated: the first signs, the others may still be
    /// configured in coturn while a secret is rotated.
    #[arg(
        long,
        env = "TURN_SECRET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub turn_secret: Vec<String>,
    /// How long a minted TURN credential is valid, in seconds (60..86400).
    #[arg(long = "turn-ttl-seconds", env = "TURN_TTL_SECONDS", default_value = "600", value_name = "SECONDS", value_parser = anonchat_serve::seconds)]
    pub turn_ttl: Duration,
    /// STUN servers, comma-separated `stun:` URLs; unset: the hosts of the UDP TURN_URLS.
    #[arg(long, env = "STUN_URLS", value_delimiter = ',')]
    pub stun_urls: Vec<String>,
    /// New sockets and HTTP requests per minute per client IP; 0 turns the limit off.
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE", default_value_t = 30)]
    pub rate_limit_per_minute: u32,
    /// Frames per second a socket may send (bursts of twice as many).
    #[arg(long, env = "FRAMES_PER_SECOND", default_value_t = 20)]
    pub frames_per_second: u32,
    /// Seconds after a match during which signaling is relayed.
    #[arg(long = "signal-window-seconds", env = "SIGNAL_WINDOW_SECONDS", default_value = "60", value_name = "SECONDS", value_parser = anonchat_serve::seconds)]
    pub signal_window: Duration,
    /// Seconds a client has to answer the challenge.
    #[arg(long = "hello-timeout-seconds", env = "HELLO_TIMEOUT_SECONDS", default_value = "10", value_name = "SECONDS", value_parser = anonchat_serve::seconds)]
    pub hello_timeout: Duration,
    /// Seconds without any frame (pongs included) before a socket is closed.
    #[arg(long = "idle-timeout-seconds", env = "IDLE_TIMEOUT_SECONDS", default_value = "90", value_name = "SECONDS", value_parser = anonchat_serve::seconds)]
    pub idle_timeout: Duration,
    /// Waiting users a join looks at, at most.
    #[arg(long, env = "MATCH_SCAN", default_value_t = 512)]
    pub match_scan: usize,
    /// Waiting users a waiting one looks at each time it looks again (a new slice behind it
    /// each time), unless every join already sees it (within the first MATCH_SCAN).
    #[arg(long, env = "MATCH_RESCAN", default_value_t = 16)]
    pub match_rescan: usize,
    /// Seconds after joining before a waiting user first looks again; then twice as long each
    /// time, a minute at most.
    #[arg(long = "match-rescan-after-seconds", env = "MATCH_RESCAN_AFTER_SECONDS", default_value = "5", value_name = "SECONDS", value_parser = anonchat_serve::seconds)]
    pub match_rescan_after: Duration,
    /// Seconds after which an instance that stopped beating counts as dead.
    #[arg(long = "heartbeat-ttl-seconds", env = "HEARTBEAT_TTL_SECONDS", default_value = "10", value_name = "SECONDS", value_parser = anonchat_serve::seconds)]
    pub heartbeat_ttl: Duration,
    #[command(flatten)]
    pub http: anonchat_serve::HttpLimits,
}

impl Config {
    /// The defaults (never the environment's settings), on a free loopback port, with the
    /// in-memory store.
    pub fn local() -> Self {
        let mut c: Config = anonchat_serve::defaults();
        c.addr = "127.0.0.1:0".parse().expect("a valid address");
        c
    }

    /// Whether several instances share a Redis (by URL, through Sentinel, or a cluster).
    pub fn shares_redis(&self) -> bool {
        self.redis_url.is_some()
            || !self.redis_sentinels.is_empty()
            || !self.redis_cluster_nodes.is_empty()
    }

    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            daily_match_limit: self.daily_match_limit,
            report_threshold: self.report_threshold,
            report_ttl: self.report_ttl,
            ban: self.ban,
            match_count_ttl: self.match_count_ttl,
            block_ttl: self.block_ttl,
            scan: self.match_scan,
            rescan: self.match_rescan.max(1),
            heartbeat_ttl: self.heartbeat_ttl,
            last_partner_ttl: LAST_PARTNER_TTL,
        }
    }

    pub fn signal_limits(&self) -> SignalLimits {
        SignalLimits {
            window: self.signal_window,
            ..SignalLimits::default()
        }
    }

    /// The verifier's address for browsers: VERIFIER_URL, else the origin of VERIFIER_JWKS_URL.
    pub fn public_verifier_url(&self) -> Option<String> {
        if let Some(url) = self.verifier_url.as_deref().filter(|u| !u.is_empty()) {
            return Some(url.trim_end_matches('/').to_owned());
        }
        let jwks = self.verifier_jwks_url.as_deref()?;
        let (scheme, rest) = jwks.split_once("://")?;
        let host = rest.split('/').next()?;
        Some(format!("{scheme}://{host}"))
    }

    /// The ICE servers clients get, checked once at start.
    pub fn ice_plan(&self) -> Result<IcePlan, IceConfigError> {
        IcePlan::new(
            self.ice_servers.as_deref(),
            &self.stun_urls,
            &self.turn_urls,
            &self.turn_secret,
            self.turn_ttl.as_secs(),
        )
    }
}
