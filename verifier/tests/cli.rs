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
    let jwks: anonchat_protocol::token::Jwks = serde_json::from_slice(&jwks.stdout).unwrap();
    let pem = std::fs::read_to_string(&key).unwrap();
    let signer = anonchat_protocol::token::SigningKey::from_pkcs8_pem(&pem).unwrap();
    assert_eq!(jwks.keys, vec![signer.public_jwk()]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// `anonchat-verifier serve` on a free loopback port, with one worker and `settings`.
fn serve(
    settings: &[(&str, &str)],
    open_files: Option<u64>,
) -> (std::process::Child, std::net::SocketAddr) {
    use anonchat_serve::testing::{free_port, limit_open_files};
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut command = bin();
    command
        .arg("serve")
        .env("VERIFIER_ADDR", addr.to_string())
        .env("MODELS_DIR", common::models_dir())
        .env("VERIFIER_WORKERS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in settings {
        command.env(k, v);
    }
    if let Some(n) = open_files {
        limit_open_files(&mut command, n);
    }
    (command.spawn().unwrap(), addr)
}

/// The peak resident memory of a process since it was last reset, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Resets a process's peak resident memory to what it holds now.
fn reset_peak_rss(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_outlasts_a_slowloris_attack_with_few_descriptors() {
    use anonchat_serve::testing::{outlasts_slowloris, wait_healthy};
    // As the review ran it: `ulimit -n 256`, then 246 half-sent heads.
    let (mut child, addr) = serve(&[("HTTP_HEADER_TIMEOUT_SECONDS", "2")], Some(256));
    let result = async {
        wait_healthy(addr, std::time::Duration::from_secs(30)).await?;
        outlasts_slowloris(addr, 246, std::time::Duration::from_secs(2)).await
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_uploads_together_hold_no_more_than_the_body_budget() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const MB: u64 = 1_000_000;
    // Still photos are the easiest body to hold back (photo mode).
    let (mut child, addr) = serve(
        &[("RATE_LIMIT_PER_MINUTE", "0"), ("VERIFY_MODE", "photo")],
        None,
    );
    anonchat_serve::testing::wait_healthy(addr, Duration::from_secs(30))
        .await
        .unwrap();
    let (_, public) = common::device();
    let selfie = common::face("m_obama_official.jpg");
    let (status, _, _) = common::verify_multipart(addr, selfie.clone(), &public, None).await;
    assert_eq!(status, 200);
    reset_peak_rss(child.id());
    let before = peak_rss(child.id());

    // As the review ran it: 20 uploads of 11 MB, each sending 8 MB and then nothing.
    let head = "POST /v1/verify HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 11000000\r\n\r\n\
                --XX\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n";
    let stalled: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(async move {
                let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                let mut sent = tcp.write_all(head.as_bytes()).await.is_ok();
                let chunk = vec![0x55u8; 64 * 1024];
                for _ in 0..128 {
                    let write = tokio::time::timeout(Duration::from_secs(2), tcp.write_all(&chunk));
                    if !matches!(write.await, Ok(Ok(()))) {
                        sent = false;
                        break;
                    }
                }
                // What the server said, if it answered before the stall ends.
                let mut answer = vec![0u8; 512];
                let n = tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut answer))
                    .await
                    .map_or(0, |r| r.unwrap_or(0));
                (
                    tcp,
                    sent,
                    String::from_utf8_lossy(&answer[..n]).into_owned(),
                )
            })
        })
        .collect();
    let mut held = Vec::new();
    for task in stalled {
        held.push(task.await.unwrap());
    }
    let grew = peak_rss(child.id()).saturating_sub(before);
    let refused = held
        .iter()
        .filter(|(_, _, answer)| answer.starts_with("HTTP/1.1 503"))
        .count();
    let all_in = held.iter().filter(|(_, sent, _)| *sent).count();

    // The stalls end (the clients go away): the budget is whole again for honest users.
    drop(held);
    let mut status = 0;
    for _ in 0..50 {
        (status, _, _) = common::verify_multipart(addr, selfie.clone(), &public, None).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    eprintln!(
        "20 stalled uploads: {all_in} sent 8 MB, {refused} got 503, peak RSS grew {} MB",
        grew / MB
    );
    // 64 MiB of bodies at most (MAX_PENDING_BODY_BYTES), plus the server's own buffers.
    assert!(grew < 90 * MB, "peak RSS grew {} MB", grew / MB);
    assert!(refused >= 12, "only {refused} of 20 were refused");
    assert_eq!(status, 200, "an honest upload after the attack");
}
