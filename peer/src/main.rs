//! `anonchat`: the AnonChat terminal client.

use std::path::PathBuf;

use anonchat_peer::identity::{self, Identity};
use anonchat_peer::verify::{self, VerifyError};
use anonchat_verifier::token::unix_now;
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
    /// Verify a selfie with the verifier and keep the token it signs for this device.
    Verify {
        /// The photo (JPEG, PNG or WebP).
        photo: PathBuf,
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
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let home = identity::home()?;
    let id = Identity::load_or_create(&home)
        .with_context(|| format!("device identity in {}", home.display()))?;
    match cli.command {
        Command::Whoami => {
            println!("peer id: {}", id.peer_id);
            match id.token()? {
                None => println!("token:   none; run `anonchat verify PHOTO`"),
                Some(t) if t.is_valid_at(unix_now()) => {
                    println!(
                        "token:   valid for {} more minutes, gender {}",
                        (t.expires_at - unix_now()) / 60,
                        t.gender.as_str()
                    )
                }
                Some(_) => println!("token:   expired; run `anonchat verify PHOTO` again"),
            }
            Ok(())
        }
        Command::Verify {
            photo,
            undisclosed,
            verifier,
        } => {
            let bytes =
                std::fs::read(&photo).with_context(|| format!("reading {}", photo.display()))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            match runtime.block_on(verify::verify(&verifier, &id, bytes, undisclosed)) {
                Ok(token) => {
                    id.save_token(&token)?;
                    let minutes = (token.expires_at - unix_now()) / 60;
                    println!(
                        "verified: gender {}, token valid for {minutes} minutes",
                        token.gender.as_str()
                    );
                    Ok(())
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
