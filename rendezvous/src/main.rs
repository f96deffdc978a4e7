//! `anonchat-rendezvous`: the matchmaking server.

use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::server::{self, Keys};
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
        let until = anonchat_serve::shutdown_signal("telling clients");
        let running = server::start_from_config(config, keys, until).await?;
        running.wait().await
    })
}
