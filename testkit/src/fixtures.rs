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
    let dir = std::env::var_os("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/onnx"));
    assert!(
        dir.join("face_detection_yunet_2023mar.onnx").is_file(),
        "no models in {}: run models/install.sh",
        dir.display()
    );
    dir
}

/// The shared test photos: `ANONCHAT_TESTDATA`, else `../shared/testdata/faces` beside the
/// checkout.
pub fn faces_dir() -> PathBuf {
    let dir = std::env::var_os("ANONCHAT_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/testdata/faces"));
    assert!(
        dir.join("MANIFEST.md").is_file(),
        "test photos not found in {}: set ANONCHAT_TESTDATA",
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
