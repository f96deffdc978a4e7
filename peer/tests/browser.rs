//! The browser client in Debian's Chromium, driven by playwright-core (`peer/tests/browser/`),
//! against the real verifier (real models, real faces through the fake camera: a head-turn
//! burst in active mode, a still in photo mode) and a real rendezvous serving the page;
//! browser ↔ `anonchat chat --json`, browser ↔ browser.
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
use anonchat_testkit::netns::isolated;
use anonchat_verifier::service::{self, ServiceConfig};
use common::browser::{Script, camera_file, face, models_dir};

/// The verifier and a rendezvous serving the page, each allowing the other's origin.
struct System {
    /// The page, as the browser opens it.
    page: String,
    /// The services as a terminal client reaches them, and what else it needs in its
    /// environment.
    verifier: String,
    rendezvous: String,
    terminal_env: Vec<(&'static str, PathBuf)>,
    /// What else the browser's scenario needs in its environment.
    browser_env: Vec<(&'static str, PathBuf)>,
    _verifier: service::Running,
    _rendezvous: server::Running,
}

impl System {
    /// The verifier in photo mode: the chat tests verify with one still, which is quicker.
    async fn start() -> System {
        Self::start_with(|c| c.verify_mode = service::VerifyMode::Photo).await
    }

    /// Both services over HTTPS, with certificates from a CA made for the test, at a name that
    /// is not localhost (`anonchat.test`, mapped to loopback in the browser), where only TLS
    /// makes the page a secure context. The browser trusts the CA through an NSS database (as
    /// a desktop does), the terminal through `SSL_CERT_FILE`; it reaches the services by
    /// address, which the certificate names too. The verifier in photo mode.
    async fn start_tls(dir: &Path) -> System {
        let ca = anonchat_testkit::TestCa::new();
        let (cert, key) = ca.write(dir, "server", &[TLS_HOST, "127.0.0.1"]);
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let home = dir.join("browser-home");
        trust_in_nss(&home.join(".pki/nssdb"), &ca_file);
        let tls = |http: &mut anonchat_serve::HttpLimits| {
            http.tls_cert_file = Some(cert.clone());
            http.tls_key_file = Some(key.clone());
        };
        let mut system = Self::start_on(
            TLS_HOST,
            "https",
            |c| {
                c.verify_mode = service::VerifyMode::Photo;
                tls(&mut c.http);
            },
            |c| tls(&mut c.http),
        )
        .await;
        system.terminal_env.push(("SSL_CERT_FILE", ca_file));
        system.browser_env.push(("HOME", home));
        system
            .browser_env
            .push(("DEVICE", PathBuf::from("https-partner")));
        system.browser_env.push((
            "HOST_RULES",
            PathBuf::from(format!("MAP {TLS_HOST} 127.0.0.1")),
        ));
        system
    }

    async fn start_with(tune: impl FnOnce(&mut ServiceConfig)) -> System {
        Self::start_on("127.0.0.1", "http", tune, |_| {}).await
    }

    /// The services on loopback, named `host` in the page's URLs, spoken to with `scheme`.
    async fn start_on(
        host: &str,
        scheme: &str,
        tune: impl FnOnce(&mut ServiceConfig),
        tune_rendezvous: impl FnOnce(&mut Config),
    ) -> System {
        // The verifier's decisions (why a burst was refused) in the test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("anonchat_verifier=info")
            .with_test_writer()
            .try_init();
        // Alone in this network namespace: a port picked here stays free.
        let rendezvous_addr: SocketAddr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let port = rendezvous_addr.port();
        let page = format!("{scheme}://{host}:{port}");
        let mut config = ServiceConfig::local(models_dir());
        config.rate_limit_per_minute = 0;
        config.client_origins = vec![page.clone()];
        tune(&mut config);
        let verifier = service::start(config).await.unwrap();
        let verifier_port = verifier.addr.port();
        let mut config = Config {
            addr: rendezvous_addr,
            rate_limit_per_minute: 0,
            verifier_url: Some(format!("{scheme}://{host}:{verifier_port}")),
            ..Config::local()
        };
        tune_rendezvous(&mut config);
        let keys = Keys::Fixed(KeySet::from_jwks(&verifier.jwks).unwrap());
        let rendezvous = server::start_from_config(config, keys, std::future::pending())
            .await
            .unwrap();
        System {
            page,
            verifier: format!("{scheme}://127.0.0.1:{verifier_port}"),
            rendezvous: format!("{scheme}://127.0.0.1:{port}"),
            terminal_env: Vec::new(),
            browser_env: Vec::new(),
            _verifier: verifier,
            _rendezvous: rendezvous,
        }
    }
}

/// The name the HTTPS test serves the page at.
const TLS_HOST: &str = "anonchat.test";

/// A new NSS database at `db` (Chromium's trust store on Linux, `$HOME/.pki/nssdb`) that trusts
/// the CA in `ca` to identify web sites.
fn trust_in_nss(db: &Path, ca: &Path) {
    std::fs::create_dir_all(db).unwrap();
    let db = format!("sql:{}", db.display());
    let certutil = |args: &[&str]| {
        let out = std::process::Command::new("certutil")
            .args(args)
            .output()
            .expect("certutil (Debian's libnss3-tools) makes the browser's trust store; .ci/run installs it");
        assert!(out.status.success(), "certutil {args:?}: {out:?}");
    };
    certutil(&["-N", "-d", &db, "--empty-password"]);
    certutil(&[
        "-A",
        "-d",
        &db,
        "-t",
        "C,,",
        "-n",
        "AnonChat test CA",
        "-i",
        &ca.display().to_string(),
    ]);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A still of a real woman, for the photo mode's selfie.
fn still_camera(dir: &Path) -> PathBuf {
    let real = dir.join("real.y4m");
    camera_file(&face("real_f_silentface_T1.jpg"), &real);
    real
}

#[test]
fn the_browser_verifies_a_guided_head_turn_through_the_camera() {
    use anonchat_protocol::verify::Step;
    if !isolated("the_browser_verifies_a_guided_head_turn_through_the_camera") {
        return;
    }
    runtime().block_on(async {
        // Active mode, the default; the camera file is made before the browser starts, so the
        // steps are pinned (only code can do that) and the file follows them.
        let steps = [Step::Right, Step::Left];
        let system = System::start_with(|c| c.pinned_steps = Some(steps.to_vec())).await;
        let dir = common::home("browser-verify");
        let (real, wrong, still) = (
            dir.join("turns.y4m"),
            dir.join("wrong-order.y4m"),
            dir.join("still.y4m"),
        );
        common::browser::head_turn_camera(&steps, &real);
        common::browser::head_turn_camera(&[Step::Left, Step::Right], &wrong);
        camera_file(&face("real_f_silentface_T1.jpg"), &still);
        let mut script = Script::start(
            "verify.mjs",
            &system.page,
            &[
                ("CAMERA", &real),
                ("WRONG_CAMERA", &wrong),
                ("STILL_CAMERA", &still),
            ],
        );
        let screen = &script.expect("camera_screen").await["camera_screen"];
        assert_eq!(screen["mode"], "active", "{screen}");
        assert_eq!(
            screen["photo_choice_shown"], false,
            "no photo upload in active mode: {screen}"
        );
        let guide = &script.expect("guide").await["guide"];
        assert_eq!(
            guide,
            &serde_json::json!([
                {"guide": "look", "arrow": "", "text": "Look at the camera"},
                {"guide": "right", "arrow": "→", "text": "Turn your head to your right"},
                {"guide": "left", "arrow": "←", "text": "Turn your head to your left"},
            ]),
            "the steps in the challenge's order, arrows as the mirrored preview shows them"
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
        assert_eq!(token["gender"], "M", "the man of the burst");
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
        for (name, hint) in [
            // The turns came left then right: the right turn is there, no left turn after it.
            ("wrong_order", "Next time, turn your head to your left."),
            // Whatever the still misses first (this one is not frontal enough), it says what to do.
            ("still", "Next time, "),
        ] {
            let seen = &script.expect(name).await[name];
            assert_eq!(seen["refused"], "challenge_not_followed", "{name}: {seen}");
            assert!(
                seen["message"].as_str().unwrap().contains(hint),
                "{name}: the page says which turn to make: {seen}"
            );
            assert_eq!(seen["screen"], "camera", "{seen}");
            assert_eq!(seen["button"], "Try again", "{seen}");
            assert_eq!(seen["camera_live"], false, "{seen}");
        }
        script.done().await;
    });
}

/// `anonchat verify` (no photo) against a verifier in active mode: the terminal prints a
/// pairing address, a phone's page opened there runs the head-turn check, the token arrives in
/// the terminal. The page shows the terminal's fingerprint and keeps nothing; the code is
/// single-use.
#[test]
fn a_phone_verifies_for_the_terminal_through_a_pairing_code() {
    use anonchat_protocol::verify::Step;
    use tokio::io::{AsyncBufReadExt, BufReader};
    if !isolated("a_phone_verifies_for_the_terminal_through_a_pairing_code") {
        return;
    }
    runtime().block_on(async {
        let steps = [Step::Left, Step::Right];
        let system = System::start_with(|c| c.pinned_steps = Some(steps.to_vec())).await;
        let dir = common::home("browser-pairing");
        let camera = dir.join("turns.y4m");
        common::browser::head_turn_camera(&steps, &camera);
        let home = dir.join("terminal");
        let mut terminal = tokio::process::Command::new(env!("CARGO_BIN_EXE_anonchat"))
            .arg("verify")
            .env("ANONCHAT_HOME", &home)
            .env("ANONCHAT_VERIFIER", &system.verifier)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(terminal.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        let (url, fingerprint) = tokio::time::timeout(Duration::from_secs(20), async {
            let mut url = None;
            loop {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("the terminal prints");
                println!("terminal: {line}");
                printed.push(line.clone());
                if line.starts_with("http") {
                    url = Some(line.trim().to_owned());
                } else if let Some(rest) =
                    line.strip_prefix("The page shows this device's fingerprint, ")
                {
                    return (url.expect("the address comes first"), rest[..14].to_owned());
                }
            }
        })
        .await
        .expect("the terminal shows a pairing address");
        assert!(url.starts_with(&format!("{}/#pair=", system.page)), "{url}");
        assert!(
            printed.iter().any(|l| l.contains('█') || l.contains('▀')),
            "a QR code is drawn: {printed:?}"
        );
        let mut node = tokio::process::Command::new("node");
        node.env("PAIR_URL", &url);
        let mut phone = Script::spawn("pairing.mjs", &system.page, &[("CAMERA", &camera)], node);
        let shown = phone.expect("fingerprint").await;
        assert_eq!(
            shown["fingerprint"],
            fingerprint.as_str(),
            "both screens show one key"
        );
        let paired = &phone.expect("paired").await["paired"];
        assert_eq!(
            paired["guide"],
            serde_json::json!(["look", "left", "right"]),
            "{paired}"
        );
        assert_eq!(
            paired["local"],
            serde_json::json!([]),
            "the phone keeps no token: {paired}"
        );
        assert_eq!(paired["camera_live"], false);
        let status = tokio::time::timeout(Duration::from_secs(30), terminal.wait())
            .await
            .expect("the terminal gets its token")
            .unwrap();
        let mut rest = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        assert!(status.success(), "{rest:?}");
        assert!(
            rest.iter().any(|l| l.starts_with("verified: gender M")),
            "{rest:?}"
        );
        let used = &phone.expect("used").await["used"];
        assert_eq!(used["code"], "pair_unknown", "{used}");
        assert!(
            used["status"]
                .as_str()
                .unwrap()
                .contains("Run anonchat verify again"),
            "{used}"
        );
        assert_eq!(used["can_continue"], false, "{used}");
        phone.done().await;

        // The token is the terminal's own: bound to its key, and it logs in with it.
        let whoami = std::process::Command::new(env!("CARGO_BIN_EXE_anonchat"))
            .arg("whoami")
            .env("ANONCHAT_HOME", &home)
            .output()
            .unwrap();
        let whoami = String::from_utf8_lossy(&whoami.stdout).to_string();
        assert!(whoami.contains("token:   valid for"), "{whoami}");
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
        .envs(system.terminal_env.iter().cloned())
        .output()
        .await
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");
    let mut chat = tokio::process::Command::new(env!("CARGO_BIN_EXE_anonchat"));
    chat.args(["chat", "--loopback-only"])
        .envs(system.terminal_env.iter().cloned());
    common::Cli::spawn(
        "terminal",
        home,
        &format!("{}/v1/ws", system.rendezvous),
        chat,
    )
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
    if !isolated("the_browser_chats_with_the_terminal_client") {
        return;
    }
    runtime().block_on(async {
        let dir = common::home("browser-terminal");
        chat_between_browser_and_terminal(&System::start().await, &dir).await;
    });
}

/// The same over HTTPS: the page, its verifier and its WebSocket from a name that is not
/// localhost, a secure context only because of TLS; the terminal client over https:// and
/// wss://.
#[test]
fn the_page_over_https_with_a_test_ca_verifies_and_chats_with_the_terminal() {
    if !isolated("the_page_over_https_with_a_test_ca_verifies_and_chats_with_the_terminal") {
        return;
    }
    runtime().block_on(async {
        let dir = common::home("browser-https");
        let system = System::start_tls(&dir).await;
        assert!(system.page.starts_with("https://anonchat.test:"));
        chat_between_browser_and_terminal(&system, &dir).await;
    });
}

/// Browser ↔ `anonchat chat --json` through `system`: the page, opened where the system says,
/// is a secure context, verifies with the camera, chats both ways (text, typing, images) with
/// the same safety code on both sides, and sees the terminal leave.
async fn chat_between_browser_and_terminal(system: &System, dir: &Path) {
    use anonchat_peer::session::Event;
    use serde_json::json;
    let camera = still_camera(dir);
    let to_terminal = dir.join("from-browser.png");
    let sent_by_browser = png(&to_terminal, 300);
    let to_browser = dir.join("from-terminal.png");
    png(&to_browser, 240);

    let mut terminal = terminal(system, &dir.join("terminal"), &face("m_obama_official.jpg")).await;
    terminal
        .send(json!({"cmd": "join", "nickname": "terminal", "bio": "typing in a terminal", "interests": ["jazz"]}))
        .await;
    terminal
        .events
        .expect("queued", |e| matches!(e, Event::Queued { .. }))
        .await;

    let mut env: Vec<(&str, &Path)> = vec![("CAMERA", &camera), ("IMAGE", &to_terminal)];
    env.extend(system.browser_env.iter().map(|(k, v)| (*k, v.as_path())));
    let mut browser = Script::start("terminal.mjs", &system.page, &env);
    let opened = browser.expect("secure").await;
    assert_eq!(opened["origin"], system.page.as_str());
    assert_eq!(opened["secure"], true, "the page is a secure context");
    // The browser starts, verifies with the camera and joins first: as long as the script's
    // own steps may take (under load, more than 10 s).
    let Event::Matched { partner } = terminal
        .events
        .expect_within(Duration::from_secs(60), "matched", |e| {
            matches!(e, Event::Matched { .. })
        })
        .await
    else {
        unreachable!()
    };
    assert_eq!(
        (partner.nickname.as_str(), partner.gender.as_str()),
        ("webcam", "F")
    );
    assert_eq!(partner.common_interests, ["jazz"]);
    let code = terminal.events.connected().await;
    let shown = browser.expect("safety_code").await;
    assert_eq!(
        shown["safety_code"],
        code.as_str(),
        "both sides show the same code"
    );
    assert_eq!(shown["partner"], "terminal");

    terminal
        .send(json!({"cmd": "send", "text": "hello from the terminal"}))
        .await;
    terminal
        .events
        .expect("ack", |e| matches!(e, Event::Ack { .. }))
        .await;
    terminal
        .events
        .expect("typing", |e| *e == Event::Typing { on: true })
        .await;
    terminal
        .events
        .expect(
            "message",
            |e| matches!(e, Event::Message { text, .. } if text == "hi terminal"),
        )
        .await;
    browser.expect("delivered").await;

    terminal.send(json!({"cmd": "typing", "on": true})).await;
    browser.expect("saw_typing").await;
    terminal
        .send(json!({"cmd": "image", "path": to_browser}))
        .await;
    let width = browser.expect("image_width").await;
    assert_eq!(width["image_width"], 240);
    terminal
        .events
        .expect("image", |e| matches!(e, Event::Image { path: None, .. }))
        .await;
    terminal.send(json!({"cmd": "save"})).await;
    let Event::Saved { path, .. } = terminal
        .events
        .expect("saved", |e| matches!(e, Event::Saved { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(
        std::fs::read(path).unwrap(),
        sent_by_browser,
        "the image arrives intact"
    );
    browser.expect("image_delivered").await;

    terminal.send(json!({"cmd": "leave"})).await;
    let ended = browser.expect("ended").await;
    assert_eq!(ended["ended"], "Your partner left.");
    browser.done().await;
    terminal.send(json!({"cmd": "quit"})).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), terminal.child.wait()).await;
}

#[test]
fn browsers_chat_with_each_other_and_every_way_a_chat_ends_works() {
    if !isolated("browsers_chat_with_each_other_and_every_way_a_chat_ends_works") {
        return;
    }
    runtime().block_on(async {
        let system = System::start().await;
        let dir = common::home("browser-pair");
        let camera = still_camera(&dir);
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
