//! The browser client in Debian's Chromium, driven by playwright-core (`peer/tests/browser/`),
//! against the real verifier (real models, a real face through the fake camera) and a real
//! rendezvous serving the page; browser ↔ `anonchat chat --json`, browser ↔ browser.
//!
//! Each test runs in a network namespace of its own with only loopback (`unshare --net`), so
//! that every WebRTC candidate, the browser's included, is a loopback address.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anonchat_rendezvous::config::Config;
use anonchat_rendezvous::server::{self, Keys};
use anonchat_rendezvous::store::memory::MemoryStore;
use anonchat_verifier::service::{self, ServiceConfig};
use anonchat_verifier::token::KeySet;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

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

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn face(name: &str) -> PathBuf {
    root().join("../shared/testdata/faces").join(name)
}

fn models_dir() -> PathBuf {
    std::env::var_os("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/onnx"))
}

/// Where the screenshots go: look at them, they are what users see.
fn screenshots() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("browser-screens")
}

/// Writes `photo` as a one-frame Y4M video (I420, BT.601), the fake camera's input.
fn camera_file(photo: &Path, out: &Path) {
    use image::ImageDecoder;
    // Upright, as the verifier sees the photo itself (it applies the EXIF orientation).
    let mut decoder = image::ImageReader::open(photo)
        .unwrap()
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    let orientation = decoder.orientation().unwrap();
    let mut img = image::DynamicImage::from_decoder(decoder).unwrap();
    img.apply_orientation(orientation);
    let img = img.to_rgb8();
    let (w, h) = (img.width() & !1, img.height() & !1);
    let mut y = Vec::with_capacity((w * h) as usize);
    let (mut u, mut v) = (Vec::new(), Vec::new());
    let px = |x: u32, y: u32| {
        let p = img.get_pixel(x, y).0;
        (p[0] as f32, p[1] as f32, p[2] as f32)
    };
    for row in 0..h {
        for col in 0..w {
            let (r, g, b) = px(col, row);
            y.push((16.0 + 0.257 * r + 0.504 * g + 0.098 * b).round() as u8);
        }
    }
    for row in (0..h).step_by(2) {
        for col in (0..w).step_by(2) {
            let (mut r, mut g, mut b) = (0.0, 0.0, 0.0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (pr, pg, pb) = px(col + dx, row + dy);
                r += pr / 4.0;
                g += pg / 4.0;
                b += pb / 4.0;
            }
            u.push((128.0 - 0.148 * r - 0.291 * g + 0.439 * b).round() as u8);
            v.push((128.0 + 0.439 * r - 0.368 * g - 0.071 * b).round() as u8);
        }
    }
    let mut file = format!("YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\nFRAME\n").into_bytes();
    file.extend(y);
    file.extend(u);
    file.extend(v);
    std::fs::write(out, file).unwrap();
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
        let store = MemoryStore::new(config.store_config());
        let keys = Keys::Fixed(KeySet::from_jwks(&verifier.jwks).unwrap());
        let rendezvous = server::start(config, store, keys, std::future::pending())
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

/// A scenario script running in node: its JSON lines, in order.
struct Script {
    child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
}

impl Script {
    fn start(name: &str, system: &System, cameras: &[(&str, &Path)]) -> Script {
        let dir = root().join("peer/tests/browser");
        assert!(
            dir.join("node_modules/playwright-core").exists(),
            "run `npm ci` in {} (.ci/run does)",
            dir.display()
        );
        let mut command = tokio::process::Command::new("node");
        command
            .arg(dir.join(name))
            .current_dir(&dir)
            .env("ANONCHAT_URL", &system.page)
            .env("SCREENSHOTS", screenshots())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        for (var, path) in cameras {
            command.env(var, path);
        }
        let mut child = command.spawn().expect("node runs the browser scenarios");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                println!("browser: {line}");
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(value);
                }
            }
        });
        Script {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line with `key`, within 60 s; a failure of the script fails the test.
    async fn expect(&mut self, key: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no {key:?} from the browser within 60 s; saw {:?}",
                        self.seen
                    )
                })
                .unwrap_or_else(|| {
                    panic!(
                        "the browser script ended before {key:?}; saw {:?}",
                        self.seen
                    )
                });
            assert!(
                line.get("failed").is_none(),
                "the browser scenario failed: {}",
                line["failed"]
            );
            assert!(line.get("page_error").is_none(), "the page threw: {line}");
            self.seen.push(line.clone());
            if line.get(key).is_some() {
                return line;
            }
        }
    }

    async fn done(mut self) {
        self.expect("done").await;
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the browser script exits")
            .unwrap();
        assert!(status.success());
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
            &system,
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

async fn reqwest_jwks(url: &str) -> anonchat_verifier::token::Jwks {
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
            &system,
            &[("CAMERA", &camera), ("IMAGE", &to_terminal)],
        );
        let Event::Matched { partner } = terminal.events.expect("matched", |e| matches!(e, Event::Matched { .. })).await else {
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
        let Event::Image { path, .. } = terminal.events.expect("image", |e| matches!(e, Event::Image { .. })).await else {
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
        let mut browsers = Script::start("pair.mjs", &system, &[("CAMERA", &camera)]);
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
