//! `anonchat-verifier`: the selfie verification service and its offline tools.

use std::io::Write;
use std::path::{Path, PathBuf};

use anonchat_protocol::token::{Jwks, SigningKey};
use anonchat_verifier::pipeline::{GenderMode, Pipeline, Policy, Report};
use anonchat_verifier::service::{self, ServiceConfig};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::json;

/// Every freed heap block is zeroed, so no image bytes outlive their request (see wipe_alloc).
#[global_allocator]
static ALLOC: anonchat_verifier::wipe_alloc::WipeOnFree = anonchat_verifier::wipe_alloc::WipeOnFree;

#[derive(Parser)]
#[command(
    name = "anonchat-verifier",
    version,
    about = "AnonChat's verifier: checks a live selfie (one face, liveness, gender) \
    and signs a short-lived Ed25519 token bound to the device key. Images are never logged or written."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (POST /v1/verify, /.well-known/jwks.json, /healthz, /readyz, /metrics).
    Serve(Box<ServiceConfig>),
    /// Make a new token signing key (PKCS#8 PEM, file mode 0600).
    Keygen {
        /// Where to write the key.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the JWKS document (public keys) of one or more signing keys.
    Jwks {
        /// Signing key files; the first is the current one.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
    },
    /// Run the pipeline offline on image files and print each stage's result and time.
    Check {
        /// One JSON object per image per line.
        #[arg(long)]
        json: bool,
        /// Folder with the ONNX model files.
        #[arg(long, env = "MODELS_DIR", default_value = "models/onnx")]
        models_dir: PathBuf,
        /// Do not run the gender model (as a user choosing "undisclosed").
        #[arg(long)]
        undisclosed: bool,
        /// P(real face) needed to pass liveness.
        #[arg(long, env = "LIVENESS_THRESHOLD", default_value_t = 0.5)]
        liveness_threshold: f32,
        /// Average the second liveness model with the first.
        #[arg(long, env = "LIVENESS_FUSION")]
        liveness_fusion: bool,
        /// Smallest accepted face, in pixels.
        #[arg(long, env = "MIN_FACE_PX", default_value_t = 32)]
        min_face_px: u32,
        /// Image files (JPEG, PNG, WebP).
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(config) => serve(*config),
        Command::Keygen { out, force } => keygen(&out, force),
        Command::Jwks { keys } => {
            let keys = keys
                .iter()
                .map(|p| read_key(p).map(|k| k.public_jwk()))
                .collect::<anyhow::Result<_>>()?;
            println!("{}", serde_json::to_string_pretty(&Jwks { keys })?);
            Ok(())
        }
        Command::Check {
            json,
            models_dir,
            undisclosed,
            liveness_threshold,
            liveness_fusion,
            min_face_px,
            images,
        } => {
            let policy = Policy {
                liveness_threshold,
                liveness_fusion,
                min_face_px,
                ..Policy::default()
            };
            let mode = if undisclosed {
                GenderMode::Undisclosed
            } else {
                GenderMode::Infer
            };
            check(&models_dir, policy, mode, json, &images)
        }
    }
}

fn serve(config: ServiceConfig) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let running = service::start_until(
            config,
            anonchat_serve::shutdown_signal("finishing requests in flight"),
        )
        .await?;
        running.wait().await?;
        tracing::info!("verifier stopped");
        Ok(())
    })
}

fn keygen(out: &Path, force: bool) -> anyhow::Result<()> {
    if out.exists() && !force {
        bail!("{} exists; pass --force to replace it", out.display());
    }
    let key = SigningKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?;
    #[cfg(unix)]
    std::fs::set_permissions(out, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(key.to_pkcs8_pem().as_bytes())?;
    println!("wrote {} (kid {})", out.display(), key.kid());
    Ok(())
}

fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    let pem = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    SigningKey::from_pkcs8_pem(&pem).with_context(|| path.display().to_string())
}

fn check(
    models_dir: &Path,
    policy: Policy,
    mode: GenderMode,
    as_json: bool,
    images: &[PathBuf],
) -> anyhow::Result<()> {
    let margin = policy.gender_margin;
    let mut pipeline = Pipeline::load(models_dir, policy)
        .with_context(|| format!("loading the models from {}", models_dir.display()))?;
    let mut unreadable = 0;
    for path in images {
        let bytes = match std::fs::read(path) {
            Ok(b) => zeroize::Zeroizing::new(b),
            Err(e) => {
                unreadable += 1;
                eprintln!("{}: {e}", path.display());
                continue;
            }
        };
        let report = pipeline.run(&bytes, mode, true);
        let line = report_json(&path.display().to_string(), &report, margin);
        if as_json {
            println!("{line}");
        } else {
            print_human(&line);
        }
    }
    if unreadable > 0 {
        bail!("{unreadable} file(s) could not be read");
    }
    Ok(())
}

fn report_json(file: &str, r: &Report, margin: f32) -> serde_json::Value {
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
    let round3 = |p: f32| (p as f64 * 1000.0).round() / 1000.0;
    let gender = r.p_male.and_then(|p| {
        if p.max(1.0 - p) < margin {
            None
        } else if p >= 0.5 {
            Some("M")
        } else {
            Some("F")
        }
    });
    json!({
        "file": file,
        "faces": r.faces.len(),
        "face_scores": r.faces.iter().map(|f| round3(f.score)).collect::<Vec<_>>(),
        "box": r.faces.first().map(|f| [f.bbox.x.round(), f.bbox.y.round(), f.bbox.w.round(), f.bbox.h.round()]),
        "liveness": r.liveness.map(round3),
        "p_male": r.p_male.map(round3),
        "gender": gender,
        "verdict": if r.outcome.is_ok() { "verified" } else { "rejected" },
        "error_code": r.outcome.as_ref().err().map(|e| e.code()),
        "ms": {"decode": ms(r.timings.decode), "detect": ms(r.timings.detect), "liveness": ms(r.timings.liveness), "gender": ms(r.timings.gender)},
    })
}

fn print_human(v: &serde_json::Value) {
    let f = |k: &str| match &v[k] {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let verdict = match v["error_code"].as_str() {
        Some(code) => format!("rejected ({code})"),
        None => "verified".to_owned(),
    };
    println!(
        "{}: {verdict}\n  faces {} scores {}  liveness {}  p_male {}  gender {}\n  ms: decode {} detect {} liveness {} gender {}",
        f("file"),
        f("faces"),
        v["face_scores"],
        f("liveness"),
        f("p_male"),
        f("gender"),
        v["ms"]["decode"],
        v["ms"]["detect"],
        v["ms"]["liveness"],
        v["ms"]["gender"]
    );
}
