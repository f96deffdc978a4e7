//! The README's main command keeps working: the quickstart example runs the whole system and
//! chats peer to peer.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_quickstart_runs_the_whole_system() {
    let faces = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/faces");
    // Built through cargo so that it is never stale, with the workspace's features (as `cargo
    // test --workspace` builds it), so that nothing is rebuilt.
    let built = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--workspace", "--examples"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(built.success());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let out = Command::new(target.join("debug/examples/quickstart"))
        .arg(&faces)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{transcript}{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
