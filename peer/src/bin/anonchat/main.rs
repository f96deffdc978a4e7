//! `anonchat`: the AnonChat terminal client.

mod json_mode;
mod tui;

use std::path::PathBuf;
use std::sync::Arc;

use anonchat_peer::identity::{self, Identity};
use anonchat_peer::session::{JoinRequest, SETUP_TIMEOUT, SessionConfig};
use anonchat_peer::verify::{self, VerifyError};
use anonchat_peer::{libp2p_session, webrtc_session};
use anonchat_protocol::rendezvous::Want;
use anonchat_protocol::token::unix_now;
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "anonchat",
    version,
    about = "AnonChat: anonymous one-to-one chat with verified strangers. \
    Your device key lives in $ANONCHAT_HOME (default ~/.config/anonchat); your selfie is checked by the verifier \
    and never kept."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show this device's peer id and the state of its verification token.
    Whoami,
    /// Verify that a live person uses this device, and keep the token the verifier signs for
    /// it. Without PHOTO (the way for a verifier in active mode, the default): prints an
    /// address and a QR code to open on a phone, whose camera runs the head-turn check for this
    /// device's key; the token comes back here. With PHOTO: sends that one still, which only a
    /// verifier in photo mode (for development) accepts.
    Verify {
        /// A photo (JPEG, PNG or WebP), for a verifier in photo mode.
        photo: Option<PathBuf>,
        /// Do not let the verifier infer your gender; you will be matched only with people who
        /// want to talk to anyone.
        #[arg(long)]
        undisclosed: bool,
        /// The verifier's address.
        #[arg(
            long,
            env = "ANONCHAT_VERIFIER",
            default_value = "http://127.0.0.1:8000"
        )]
        verifier: String,
        /// Do not draw the QR code (the address is printed either way).
        #[arg(long)]
        no_qr: bool,
    },
    /// Chat with a stranger: wait for a match, then talk peer-to-peer. Needs a token from
    /// `anonchat verify`.
    Chat(ChatArgs),
}

#[derive(clap::Args)]
#[command(
    after_help = "In the terminal UI, type a message and Enter to send it, or a command: \
/next (someone else), /leave, /report [reason], /block, /image PATH, /save (keep the last image \
received), /code (the safety code to compare with your partner's), /send! TEXT (send despite contact details), /quit, /help."
)]
struct ChatArgs {
    /// Machine mode: commands as JSON lines on stdin ({"cmd":"join",...}, {"cmd":"send","text":...},
    /// typing, image, save, next, leave, report, block, quit), events as JSON lines on stdout.
    #[arg(long)]
    json: bool,
    /// The rendezvous: a ws:// or wss:// URL, or host:port.
    #[arg(
        long,
        env = "ANONCHAT_RENDEZVOUS",
        default_value = "ws://127.0.0.1:3002/v1/ws"
    )]
    rendezvous: String,
    /// Connect only through the TURN relays the rendezvous offers, so that the partner never
    /// learns your IP address: only relay candidates leave this device and libp2p is not
    /// offered. Refused before joining the queue when the rendezvous offers no TURN server.
    /// (Without it, when the rendezvous offers STUN or TURN, LAN addresses are never sent.)
    #[arg(long)]
    relay_only: bool,
    /// Use only loopback addresses for the peer-to-peer connection (both peers on this machine).
    #[arg(long)]
    loopback_only: bool,
    /// Offer WebRTC only, not libp2p (which two terminal clients prefer when both offer it).
    #[arg(long)]
    no_libp2p: bool,
    /// Where libp2p listens (repeatable) [default: TCP and QUIC on every interface, or on
    /// loopback with --loopback-only], e.g. /ip4/0.0.0.0/tcp/4001 or /ip4/0.0.0.0/udp/4001/quic-v1.
    #[arg(long = "libp2p-listen", value_name = "MULTIADDR")]
    libp2p_listen: Vec<libp2p::Multiaddr>,
    /// Where /save writes a received image [default: $ANONCHAT_HOME/images].
    #[arg(long)]
    images_dir: Option<PathBuf>,
    /// Save every received image in DIR as it comes (by default images are only shown, and
    /// written on /save). Either way at most 20 images or 16 MiB per chat, files mode 0600.
    #[arg(long, value_name = "DIR")]
    save_images: Option<PathBuf>,
    /// The nickname your partners see (3–24 characters; terminal mode).
    #[arg(long)]
    nickname: Option<String>,
    /// A line about you (10–140 characters; terminal mode).
    #[arg(long)]
    bio: Option<String>,
    /// Who you want to talk to (terminal mode).
    #[arg(long, value_enum, default_value = "any")]
    want: WantArg,
    /// Interests, comma-separated; shared ones are shown and preferred (terminal mode).
    #[arg(long, value_delimiter = ',')]
    interests: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum WantArg {
    Any,
    M,
    F,
}

/// Accepts `ws://…`, `wss://…`, `http(s)://host:port` or a bare `host:port`.
fn rendezvous_url(given: &str) -> String {
    let (scheme, rest) = match given.split_once("://") {
        Some(("http", rest)) | Some(("ws", rest)) => ("ws", rest),
        Some(("https", rest)) | Some(("wss", rest)) => ("wss", rest),
        Some(_) => return given.to_owned(),
        None => ("ws", given),
    };
    if rest.contains('/') {
        format!("{scheme}://{rest}")
    } else {
        format!("{scheme}://{rest}/v1/ws")
    }
}

fn chat(home: &std::path::Path, id: Identity, args: ChatArgs) -> anyhow::Result<()> {
    let token = match id.token()? {
        Some(t) if t.is_valid_at(unix_now()) => t.token,
        Some(_) => {
            anyhow::bail!("your verification token has expired; run `anonchat verify PHOTO` again")
        }
        None => anyhow::bail!("this device is not verified yet; run `anonchat verify PHOTO` first"),
    };
    let config = SessionConfig {
        rendezvous: rendezvous_url(&args.rendezvous),
        identity: Arc::new(id),
        token,
        webrtc: webrtc_session::Options {
            relay_only: args.relay_only,
            loopback_only: args.loopback_only,
            timeout: SETUP_TIMEOUT,
            ..Default::default()
        },
        images_dir: args
            .images_dir
            .clone()
            .unwrap_or_else(|| home.join("images")),
        save_images: args.save_images.clone(),
        libp2p: (!args.no_libp2p).then(|| {
            let mut options = libp2p_session::Options::new(args.loopback_only);
            if !args.libp2p_listen.is_empty() {
                options.listen = args.libp2p_listen.clone();
            }
            options
        }),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = if args.json {
        runtime.block_on(json_mode::run(config))
    } else {
        let join = JoinRequest {
            nickname: args.nickname.unwrap_or_default(),
            bio: args.bio.unwrap_or_default(),
            want: match args.want {
                WantArg::Any => Want::Any,
                WantArg::M => Want::M,
                WantArg::F => Want::F,
            },
            interests: args.interests,
        };
        runtime.block_on(tui::run(config, join))
    };
    // Stdin is read on a blocking thread that only ends with the next line: do not wait for it.
    runtime.shutdown_background();
    result
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let home = identity::home()?;
    let id = Identity::load_or_create(&home)
        .with_context(|| format!("device identity in {}", home.display()))?;
    match cli.command {
        Command::Chat(args) => chat(&home, id, args),
        Command::Whoami => {
            println!("peer id: {}", id.peer_id);
            match id.token()? {
                None => println!("token:   none; run `anonchat verify`"),
                Some(t) if t.is_valid_at(unix_now()) => {
                    println!(
                        "token:   valid for {} more minutes, gender {}",
                        (t.expires_at - unix_now()) / 60,
                        t.gender.as_str()
                    )
                }
                Some(_) => println!("token:   expired; run `anonchat verify` again"),
            }
            Ok(())
        }
        Command::Verify {
            photo,
            undisclosed,
            verifier,
            no_qr,
        } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let verified = match photo {
                Some(photo) => {
                    let bytes = std::fs::read(&photo)
                        .with_context(|| format!("reading {}", photo.display()))?;
                    runtime.block_on(verify::verify(&verifier, &id, bytes, undisclosed))
                }
                None => runtime.block_on(async {
                    let cancel = interrupted()?;
                    anyhow::Ok(pair(&verifier, &id, undisclosed, !no_qr, cancel).await)
                })?,
            };
            match verified {
                Ok(token) => {
                    id.save_token(&token)?;
                    let minutes = (token.expires_at - unix_now()) / 60;
                    println!(
                        "verified: gender {}, token valid for {minutes} minutes",
                        token.gender.as_str()
                    );
                    Ok(())
                }
                Err(VerifyError::Refused { code, .. }) if code == "challenge_required" => {
                    eprintln!(
                        "not verified: this verifier needs a live head turn, not a photo; run `anonchat verify` without a photo to use your phone's camera"
                    );
                    std::process::exit(2)
                }
                Err(VerifyError::Refused { code, message }) => {
                    eprintln!("not verified: {message}");
                    std::process::exit(match code.as_str() {
                        "rate_limited" | "overloaded" => 3,
                        _ => 2,
                    })
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// `anonchat verify` without a photo: a pairing code for this device's key, its address (and
/// QR code) for a phone, then the token once the phone's check passes. Ctrl-C cancels the code.
async fn pair(
    verifier: &str,
    id: &Identity,
    undisclosed: bool,
    qr: bool,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<identity::SavedToken, VerifyError> {
    let pairing = verify::open_pairing(verifier, id, undisclosed).await?;
    let minutes = (pairing.expires_at - unix_now() + 59) / 60;
    println!("Open this address on your phone and follow the steps (within {minutes} minutes):");
    println!("{}", pairing.url);
    if qr {
        match qrcode::QrCode::new(pairing.url.as_bytes()) {
            Ok(code) => println!(
                "{}",
                // Drawn for a dark terminal, as terminal QR tools do: the blocks are the light
                // modules and the quiet zone, in the terminal's light foreground.
                code.render::<qrcode::render::unicode::Dense1x2>()
                    .dark_color(qrcode::render::unicode::Dense1x2::Light)
                    .light_color(qrcode::render::unicode::Dense1x2::Dark)
                    .quiet_zone(true)
                    .build()
            ),
            Err(e) => tracing::warn!("no QR code for this address: {e}"),
        }
    }
    println!(
        "The page shows this device's fingerprint, {}: continue only if it is the same.",
        pairing.fingerprint
    );
    println!("Waiting for the phone… (Ctrl-C cancels)");
    tokio::select! {
        token = verify::collect(verifier, id, &pairing.pair_code) => token,
        _ = cancel => {
            // Nobody may use the code once its terminal has given up.
            if let Err(e) = verify::cancel(verifier, id, &pairing.pair_code).await {
                eprintln!("could not cancel the pairing code: {e}");
            }
            eprintln!("cancelled: the pairing code can no longer be used");
            std::process::exit(130)
        }
    }
}

/// Ctrl-C, caught from now on (`tokio::signal::ctrl_c` only starts catching it when first
/// polled, and a Ctrl-C before that would kill the process without cancelling anything).
fn interrupted() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        let mut signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("catching Ctrl-C")?;
        Ok(async move {
            signal.recv().await;
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
