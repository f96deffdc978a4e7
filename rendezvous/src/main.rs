//! `anonchat-rendezvous`: the matchmaking server.

use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::server::{self, Keys};
use anonchat_rendezvous::store::memory::MemoryStore;
use anonchat_rendezvous::store::redis::RedisStore;
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "anonchat-rendezvous",
    version,
    about = "AnonChat's rendezvous: checks verification tokens, matches \
    verified strangers (Redis, or memory for one process) and relays only WebRTC/libp2p signaling between them."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (WebSocket /v1/ws, /v1/stats, /healthz, /readyz, /metrics, /v1/admin/*).
    Serve(Config),
}

fn main() -> anyhow::Result<()> {
    let Command::Serve(config) = Cli::parse().command;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    tokio::runtime::Runtime::new()?.block_on(async {
        let keys = Keys::from_config(&config)?;
        let running = match config.redis_url.clone() {
            Some(url) => {
                let ca = match &config.redis_ca_file {
                    Some(path) => Some(
                        std::fs::read(path)
                            .with_context(|| format!("reading REDIS_CA_FILE {}", path.display()))?,
                    ),
                    None => None,
                };
                // The URL may hold a password: never in a message.
                let store = RedisStore::connect_with_ca(&url, ca, config.store_config())
                    .await
                    .context("connecting to REDIS_URL")?;
                server::start(
                    config,
                    store,
                    keys,
                    anonchat_serve::shutdown_signal("telling clients"),
                )
                .await?
            }
            None => {
                tracing::info!("no REDIS_URL: using the in-memory store (one process)");
                let store = MemoryStore::new(config.store_config());
                server::start(
                    config,
                    store,
                    keys,
                    anonchat_serve::shutdown_signal("telling clients"),
                )
                .await?
            }
        };
        running.wait().await
    })
}
