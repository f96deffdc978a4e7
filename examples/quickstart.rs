//! The quickstart: the whole system in one process on loopback (see `anonchat::quickstart`).
//!
//! `cargo run --release --example quickstart [FACES_DIR]`, after `models/install.sh`.

use std::path::PathBuf;

use anonchat::quickstart::{self, Transcript};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let faces = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("ANONCHAT_TESTDATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/testdata/faces"));
    let models = std::env::var_os("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models/onnx"));
    let mut print = |line: &str| println!("{line}");
    quickstart::run(&faces, &models, &mut Transcript::new(&mut print)).await
}
