//! The README's main command keeps working: the quickstart example runs the whole system and
//! chats peer to peer.

use anonchat::quickstart::{self, Transcript};
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_runs_the_whole_system() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let models = std::env::var_os("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("models/onnx"));
    let mut lines = Vec::new();
    let mut keep = |line: &str| lines.push(line.to_owned());
    let result = quickstart::run(
        &root.join("../shared/testdata/faces"),
        &models,
        &mut Transcript::new(&mut keep),
    )
    .await;
    let transcript = lines.join("\n");
    assert!(result.is_ok(), "{result:?}\n{transcript}");
    for step in [
        "7 verified, 4 rejected",
        "WebRTC data channel open, peer to peer",
        "stranger-two → stranger-one: \"Hi! Any good trails near you?\"",
        "sees it delivered",
        "is typing",
        "e-mail address was held back",
        "received an image",
        "stranger-one left; stranger-two was told",
        "done",
    ] {
        assert!(
            transcript.contains(step),
            "missing {step:?} in:\n{transcript}"
        );
    }
}
