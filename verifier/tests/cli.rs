//! The `anonchat-verifier` binary: `check --json` reproduces MANIFEST.md's expected outcomes,
//! and `keygen` / `jwks` make and publish keys.

mod common;

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_anonchat-verifier"))
}

#[test]
fn check_json_reproduces_the_manifest() {
    let mut files: Vec<_> = std::fs::read_dir(common::faces_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x != "md"))
        .collect();
    files.sort();
    let out = bin()
        .arg("check")
        .arg("--json")
        .arg("--models-dir")
        .arg(common::models_dir())
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), files.len());
    let references = common::references();
    for line in &lines {
        let file = std::path::Path::new(line["file"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let r = references
            .iter()
            .find(|r| r.file == file)
            .unwrap_or_else(|| panic!("{file} not in the manifest"));
        assert_eq!(line["faces"], r.faces, "{file}");
        assert_eq!(
            line["face_scores"].as_array().unwrap().len(),
            r.faces,
            "{file}"
        );
        let verdict = match common::expected_verdict(file) {
            Ok(gender) => {
                assert_eq!(line["gender"], gender, "{file}");
                "verified"
            }
            Err(code) => {
                assert_eq!(line["error_code"], code, "{file}");
                "rejected"
            }
        };
        assert_eq!(line["verdict"], verdict, "{file}: {line}");
        for stage in ["decode", "detect", "liveness", "gender"] {
            assert!(line["ms"][stage].is_number(), "{file}: ms.{stage}");
        }
    }
}

#[test]
fn check_reports_unreadable_files_and_fails() {
    let out = bin()
        .args(["check", "--json", "/nonexistent/selfie.jpg"])
        .arg("--models-dir")
        .arg(common::models_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/selfie.jpg"));
}

#[test]
fn missing_models_give_a_clear_error() {
    let out = bin()
        .args(["check", "--models-dir", "/nonexistent", "x.jpg"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("models/install.sh"), "{err}");
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_reads_and_jwks_publishes_it() {
    let dir = std::env::temp_dir().join(format!("anonchat-keygen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("signing.pem");
    let out = bin().arg("keygen").arg("--out").arg(&key).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = bin().arg("keygen").arg("--out").arg(&key).output().unwrap();
    assert!(
        !again.status.success(),
        "an existing key is never overwritten silently"
    );
    let jwks = bin().arg("jwks").arg("--key").arg(&key).output().unwrap();
    let jwks: anonchat_verifier::token::Jwks = serde_json::from_slice(&jwks.stdout).unwrap();
    let pem = std::fs::read_to_string(&key).unwrap();
    let signer = anonchat_verifier::token::SigningKey::from_pkcs8_pem(&pem).unwrap();
    assert_eq!(jwks.keys, vec![signer.public_jwk()]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_outlasts_a_slowloris_attack_with_few_descriptors() {
    use anonchat_serve::testing::{free_port, limit_open_files, outlasts_slowloris, wait_healthy};
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut command = bin();
    command
        .arg("serve")
        .env("VERIFIER_ADDR", addr.to_string())
        .env("MODELS_DIR", common::models_dir())
        .env("VERIFIER_WORKERS", "1")
        .env("HTTP_HEADER_TIMEOUT_SECONDS", "2")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // As the review ran it: `ulimit -n 256`, then 246 half-sent heads.
    limit_open_files(&mut command, 256);
    let mut child = command.spawn().unwrap();
    let result = async {
        wait_healthy(addr, std::time::Duration::from_secs(30)).await?;
        outlasts_slowloris(addr, 246, std::time::Duration::from_secs(2)).await
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
}
