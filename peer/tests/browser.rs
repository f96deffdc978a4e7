//! The browser client in Debian's Chromium, driven by playwright-core (`peer/tests/browser/`),
//! against the real verifier (real models, a real face through the fake camera) and a real
//! rendezvous serving the page; browser ↔ `anonchat chat --json`, browser ↔ browser.
//!
//! Each test runs in a network namespace of its own with only loopback (`unshare --net`), so
//! that every WebRTC candidate, the browser's included, is a loopback address.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anonchat_protocol::token::KeySet;
use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::server::{self, Keys};
use anonchat_verifier::service::{self, ServiceConfig};
use common::browser::{Script, camera_file, face, models_dir};

/// Runs test `name` again inside a private network namespace; returns whether this process is
/// the one inside (which then runs the test body).
fn isolated(name: &str) -> bool {
    if std::env::var_os("ANONCHAT_ISOLATED").is_some() {
        return true;
    }
    let status = std::process::Command::new("unshare")
        .args(["--net", "--", "sh", "-c", "ip link set lo up && exec \"$@\"", "sh"])
        .arg(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("ANONCHAT_ISOLATED", "1")
        .status()
        .expect("`unshare` (util-linux) and `ip` (iproute2) isolate the browser tests; .ci/run installs them");
    assert!(
        status.success(),
        "{name} failed in its network namespace (output above)"
    );
    false
}

/// The verifier and a rendezvous serving the page, each allowing the other's origin.
struct System {
    page: String,
    verifier: String,
    _verifier: service::Running,
    _rendezvous: server::Running,
}

impl System {
    async fn start() -> System {
        // Alone in this network namespace: a port picked here stays free.
        let rendezvous_addr: SocketAddr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let page = format!("http://{rendezvous_addr}");
        let mut config = ServiceConfig::local(models_dir());
        config.rate_limit_per_minute = 0;
        config.client_origins = vec![page.clone()];
        let verifier = service::start(config).await.unwrap();
        let verifier_url = format!("http://{}", verifier.addr);
        let config = Config {
            addr: rendezvous_addr,
            rate_limit_per_minute: 0,
            verifier_url: Some(verifier_url.clone()),
            ..Config::local()
        };
        let keys = Keys::Fixed(KeySet::from_jwks(&verifier.jwks).unwrap());
        let rendezvous = server::start_from_config(config, keys, std::future::pending())
            .await
            .unwrap();
        System {
            page,
            verifier: verifier_url,
            _verifier: verifier,
            _rendezvous: rendezvous,
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn cameras(dir: &Path) -> (PathBuf, PathBuf) {
    let (real, spoof) = (dir.join("real.y4m"), dir.join("spoof.y4m"));
    camera_file(&face("real_f_silentface_T1.jpg"), &real);
    camera_file(&face("spoof_print_f_silentface_F1.jpg"), &spoof);
    (real, spoof)
}

#[test]
fn the_browser_verifies_through_the_camera() {
    if !isolated("the_browser_verifies_through_the_camera") {
        return;
    }
    runtime().block_on(async {
        let system = System::start().await;
        let dir = common::home("browser-verify");
        let (real, spoof) = cameras(&dir);
        let mut script = Script::start(
            "verify.mjs",
            &system.page,
            &[("CAMERA", &real), ("SPOOF_CAMERA", &spoof)],
        );
        let token = script.expect("token").await;
        let keys = KeySet::from_jwks(
            &reqwest_jwks(&format!("{}/.well-known/jwks.json", system.verifier)).await,
        )
        .unwrap();
        let claims = keys.verify(token["token"].as_str().unwrap()).unwrap();
        assert_eq!(
            claims.sub,
            token["peer_id"].as_str().unwrap(),
            "bound to the browser's key"
        );
        assert_eq!(token["peer_id"], token["token_peer_id"]);
        assert_eq!(token["gender"], "F");
        let storage = &script.expect("storage").await["storage"];
        assert_eq!(
            storage["local"],
            serde_json::json!(["anonchat.token"]),
            "{storage}"
        );
        assert_eq!(storage["session"], serde_json::json!([]), "{storage}");
        assert!(
            storage["local_bytes"].as_u64().unwrap() < 2048,
            "no image kept: {storage}"
        );
        assert_eq!(
            storage["databases"],
            serde_json::json!(["anonchat"]),
            "{storage}"
        );
        assert_eq!(
            storage["camera_live"], false,
            "the camera is released after the selfie"
        );
        let reload = script.expect("peer_after_reload").await;
        assert_eq!(
            reload["peer_after_reload"], token["peer_id"],
            "the key lives on in IndexedDB"
        );
        script.expect("lapsed_token_screen").await;
        let token_refused = &script.expect("refused_token").await["refused_token"];
        assert!(
            token_refused["status"]
                .as_str()
                .unwrap()
                .contains("Verify again"),
            "{token_refused}"
        );
        assert_eq!(
            token_refused["stored"],
            serde_json::Value::Null,
            "a refused token is forgotten"
        );
        let checks = &script.expect("image_checks").await["image_checks"];
        assert_eq!(checks["bomb"], "too_many_pixels", "{checks}");
        assert!(
            checks["bomb_bytes"].as_u64().unwrap() <= 1024 * 1024,
            "{checks}"
        );
        assert_eq!(checks["small"], "image/png", "{checks}");
        let refused = script.expect("refused").await;
        assert_eq!(refused["refused"], "spoof_detected");
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("photo of a photo")
        );
        assert_eq!(refused["screen"], "camera");
        script.done().await;
    });
}

async fn reqwest_jwks(url: &str) -> anonchat_protocol::token::Jwks {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// `anonchat verify PHOTO` against the real verifier, then `anonchat chat --json`.
async fn terminal(system: &System, home: &Path, photo: &Path) -> common::Cli {
    let verified = tokio::process::Command::new(env!("CARGO_BIN_EXE_anonchat"))
        .arg("verify")
        .arg(photo)
        .env("ANONCHAT_HOME", home)
        .env("ANONCHAT_VERIFIER", &system.verifier)
        .output()
        .await
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");
    common::Cli::start("terminal", home, &format!("{}/v1/ws", system.page))
}

/// A small real PNG: a gradient.
fn png(path: &Path, width: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, 120, |x, y| {
        image::Rgb([(x % 256) as u8, (y * 2) as u8, 200])
    });
    img.save(path).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn the_browser_chats_with_the_terminal_client() {
    use anonchat_peer::session::Event;
    use serde_json::json;
    if !isolated("the_browser_chats_with_the_terminal_client") {
        return;
    }
    runtime().block_on(async {
        let system = System::start().await;
        let dir = common::home("browser-terminal");
        let (camera, _) = cameras(&dir);
        let to_terminal = dir.join("from-browser.png");
        let sent_by_browser = png(&to_terminal, 300);
        let to_browser = dir.join("from-terminal.png");
        png(&to_browser, 240);

        let mut terminal = terminal(&system, &dir.join("terminal"), &face("m_obama_official.jpg")).await;
        terminal
            .send(json!({"cmd": "join", "nickname": "terminal", "bio": "typing in a terminal", "interests": ["jazz"]}))
            .await;
        terminal.events.expect("queued", |e| matches!(e, Event::Queued { .. })).await;

        let mut browser = Script::start(
            "terminal.mjs",
            &system.page,
            &[("CAMERA", &camera), ("IMAGE", &to_terminal)],
        );
        // The browser starts, verifies with the camera and joins first: as long as the script's
        // own steps may take (under load, more than 10 s).
        let Event::Matched { partner } = terminal.events.expect_within(Duration::from_secs(60), "matched", |e| matches!(e, Event::Matched { .. })).await else {
            unreachable!()
        };
        assert_eq!((partner.nickname.as_str(), partner.gender.as_str()), ("webcam", "F"));
        assert_eq!(partner.common_interests, ["jazz"]);
        let code = terminal.events.connected().await;
        let shown = browser.expect("safety_code").await;
        assert_eq!(shown["safety_code"], code.as_str(), "both sides show the same code");
        assert_eq!(shown["partner"], "terminal");

        terminal.send(json!({"cmd": "send", "text": "hello from the terminal"})).await;
        terminal.events.expect("ack", |e| matches!(e, Event::Ack { .. })).await;
        terminal.events.expect("typing", |e| *e == Event::Typing { on: true }).await;
        terminal
            .events
            .expect("message", |e| matches!(e, Event::Message { text, .. } if text == "hi terminal"))
            .await;
        browser.expect("delivered").await;

        terminal.send(json!({"cmd": "typing", "on": true})).await;
        browser.expect("saw_typing").await;
        terminal.send(json!({"cmd": "image", "path": to_browser})).await;
        let width = browser.expect("image_width").await;
        assert_eq!(width["image_width"], 240);
        terminal.events.expect("image", |e| matches!(e, Event::Image { path: None, .. })).await;
        terminal.send(json!({"cmd": "save"})).await;
        let Event::Saved { path, .. } = terminal.events.expect("saved", |e| matches!(e, Event::Saved { .. })).await else {
            unreachable!()
        };
        assert_eq!(std::fs::read(path).unwrap(), sent_by_browser, "the image arrives intact");
        browser.expect("image_delivered").await;

        terminal.send(json!({"cmd": "leave"})).await;
        let ended = browser.expect("ended").await;
        assert_eq!(ended["ended"], "Your partner left.");
        browser.done().await;
        terminal.send(json!({"cmd": "quit"})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), terminal.child.wait()).await;
    });
}

#[test]
fn browsers_chat_with_each_other_and_every_way_a_chat_ends_works() {
    if !isolated("browsers_chat_with_each_other_and_every_way_a_chat_ends_works") {
        return;
    }
    runtime().block_on(async {
        let system = System::start().await;
        let dir = common::home("browser-pair");
        let (camera, _) = cameras(&dir);
        let mut browsers = Script::start("pair.mjs", &system.page, &[("CAMERA", &camera)]);
        let code = browsers.expect("browser_to_browser").await;
        assert_eq!(
            code["browser_to_browser"].as_str().unwrap().len(),
            14,
            "{code}"
        );
        for step in ["reported_and_blocked", "left", "next"] {
            browsers.expect(step).await;
        }
        let refused = browsers.expect("field_error").await;
        assert!(
            refused["field_error"].as_str().unwrap().contains("bio"),
            "the server's refusal names the field: {refused}"
        );
        browsers.expect("reload").await;
        browsers.done().await;
    });
}
