//! The `anonchat` binary against the real verifier (real models, real photos).

use std::process::Command;

use anonchat_testkit::fixtures::{face_path as face, models_dir};
use anonchat_verifier::service::{self, ServiceConfig};

fn anonchat(home: &std::path::Path, verifier: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_anonchat"))
        .args(args)
        .env("ANONCHAT_HOME", home)
        .env("ANONCHAT_VERIFIER", verifier)
        .output()
        .unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_keeps_a_token_and_whoami_shows_it() {
    let mut config = ServiceConfig::local(models_dir());
    config.rate_limit_per_minute = 0;
    // `anonchat verify PHOTO` is for a verifier in photo mode.
    config.verify_mode = service::VerifyMode::Photo;
    let server = service::start(config).await.unwrap();
    let url = format!("http://{}", server.addr);
    let home = std::env::temp_dir().join(format!("anonchat-peer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);

    let before = anonchat(&home, &url, &["whoami"]);
    assert!(text(&before).contains("token:   none"), "{}", text(&before));
    let peer = text(&before)
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("peer id: ")
        .to_owned();
    assert!(peer.starts_with("12D3KooW"));

    // A refusal shows the verifier's own message and leaves no token.
    let spoof = face("spoof_print_f_silentface_F1.jpg");
    let out = tokio::task::spawn_blocking({
        let (home, url) = (home.clone(), url.clone());
        move || anonchat(&home, &url, &["verify", spoof.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("does not look like a live photo"),
        "{}",
        text(&out)
    );
    assert!(!home.join("token.json").exists());

    let real = face("m_luciano_codait.png");
    let out = tokio::task::spawn_blocking({
        let (home, url) = (home.clone(), url.clone());
        move || anonchat(&home, &url, &["verify", real.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("gender M"), "{}", text(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(home.join("token.json"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let after = anonchat(&home, &url, &["whoami"]);
    assert!(
        text(&after).contains(&format!("peer id: {peer}")),
        "same device: {}",
        text(&after)
    );
    assert!(
        text(&after).contains("valid for") && text(&after).contains("gender M"),
        "{}",
        text(&after)
    );

    // The token verifies against the verifier's keys and is bound to this device.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join("token.json")).unwrap()).unwrap();
    let keys = anonchat_protocol::token::KeySet::from_jwks(&server.jwks).unwrap();
    assert_eq!(
        keys.verify(saved["token"].as_str().unwrap()).unwrap().sub,
        peer
    );

    // Undisclosed: no gender inferred.
    let real = face("real_f_silentface_T1.jpg");
    let out = tokio::task::spawn_blocking({
        let (home, url) = (home.clone(), url.clone());
        move || {
            anonchat(
                &home,
                &url,
                &["verify", "--undisclosed", real.to_str().unwrap()],
            )
        }
    })
    .await
    .unwrap();
    assert!(text(&out).contains("gender U"), "{}", text(&out));

    // A verifier that is not there: a clear error, not a hang.
    let out = anonchat(
        &home,
        "http://127.0.0.1:9",
        &["verify", face("m_luciano_codait.png").to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("could not be reached"),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(home).unwrap();
}

/// `anonchat verify` without a photo, against a verifier in active mode: a photo is refused
/// with the way forward, and the pairing it opens instead is cancelled by Ctrl-C, so nobody can
/// use its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_pairs_a_phone_in_active_mode_and_ctrl_c_cancels_the_code() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut config = ServiceConfig::local(models_dir());
    config.rate_limit_per_minute = 0;
    config.page_url = Some("http://page.test".into());
    let server = service::start(config).await.unwrap();
    let url = format!("http://{}", server.addr);
    let home = std::env::temp_dir().join(format!("anonchat-peer-pair-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);

    let photo = face("m_luciano_codait.png");
    let out = tokio::task::spawn_blocking({
        let (home, url) = (home.clone(), url.clone());
        move || anonchat(&home, &url, &["verify", photo.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("run `anonchat verify` without a photo"),
        "{}",
        text(&out)
    );

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_anonchat"))
        .args(["verify", "--no-qr"])
        .env("ANONCHAT_HOME", &home)
        .env("ANONCHAT_VERIFIER", &url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let address = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the address is printed");
            printed.push(line.clone());
            if line.starts_with("Waiting for the phone") {
                break;
            }
        }
        printed
            .iter()
            .find(|l| l.starts_with("http://page.test/#pair="))
            .cloned()
            .unwrap_or_else(|| panic!("no pairing address in {printed:?}"))
    })
    .await
    .unwrap();
    assert!(
        !printed.iter().any(|l| l.contains('█')),
        "--no-qr draws none: {printed:?}"
    );
    let pair_code = address
        .trim_start_matches("http://page.test/#pair=")
        .to_owned();
    let open = reqwest::get(format!("{url}/v1/pair/{pair_code}"))
        .await
        .unwrap();
    assert_eq!(
        open.status(),
        200,
        "the code is open while the terminal waits"
    );

    // Ctrl-C: the code is cancelled before the terminal exits.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGINT) };
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("Ctrl-C ends the wait")
        .unwrap();
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("cancelled"), "{stderr}");
    let gone = reqwest::get(format!("{url}/v1/pair/{pair_code}"))
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    assert!(!home.join("token.json").exists());
    std::fs::remove_dir_all(home).unwrap();
}
