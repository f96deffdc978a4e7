//! The real models (installed by `models/install.sh`) and the shared test data (`../shared`
//! beside the checkout, never committed), each overridable by an environment variable.

use std::path::PathBuf;

/// The workspace's root directory.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ is inside the workspace")
        .to_path_buf()
}

/// The installed ONNX models: `MODELS_DIR`, else `models/onnx`.
pub fn models_dir() -> PathBuf {
    located(
        "MODELS_DIR",
        root().join("models/onnx"),
        "face_detection_yunet_2023mar.onnx",
        "the models",
        "run models/install.sh",
    )
}

/// The shared test photos: `ANONCHAT_TESTDATA`, else `../shared/testdata/faces` beside the
/// checkout.
pub fn faces_dir() -> PathBuf {
    located(
        "ANONCHAT_TESTDATA",
        root().join("../shared/testdata/faces"),
        "MANIFEST.md",
        "the test photos",
        "set ANONCHAT_TESTDATA",
    )
}

/// The shared head-turn bursts: `ANONCHAT_HEADTURN`, else `../shared/testdata/headturn` beside
/// the checkout.
pub fn headturn_dir() -> PathBuf {
    located(
        "ANONCHAT_HEADTURN",
        root().join("../shared/testdata/headturn"),
        "MANIFEST.md",
        "the head-turn bursts",
        "set ANONCHAT_HEADTURN",
    )
}

/// `$variable`, else `default`; a directory without `marker` in it is a set-up error that
/// says where `what` was looked for and how to `fix` it.
fn located(variable: &str, default: PathBuf, marker: &str, what: &str, fix: &str) -> PathBuf {
    let dir = std::env::var_os(variable).map_or(default, PathBuf::from);
    assert!(
        dir.join(marker).is_file(),
        "{what} are not in {}: {fix}",
        dir.display()
    );
    dir
}

/// Where test photo `name` is.
pub fn face_path(name: &str) -> PathBuf {
    faces_dir().join(name)
}

/// Test photo `name`'s bytes.
pub fn face(name: &str) -> Vec<u8> {
    std::fs::read(face_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}
