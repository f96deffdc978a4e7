//! Promise 2 of DESIGN.md: no selfie is kept. With every log at TRACE (ours, axum's, hyper's),
//! a verification — successful and failed, multipart and JSON, one photo or a head-turn
//! burst — leaves no trace of the image in the logs, in any encoding, and writes no file.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{burst, device, face, start, verify_multipart, verify_raw};
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every way a slice of the image could show up in a log line.
fn encodings(bytes: &[u8]) -> Vec<(String, String)> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let debug = format!("{:?}", bytes);
    let escaped: String = bytes
        .iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    let mut out = vec![
        ("hex".to_owned(), hex),
        (
            "debug list".to_owned(),
            debug[1..debug.len() - 1].to_owned(),
        ),
        ("escaped".to_owned(), escaped),
        (
            "lossy utf-8".to_owned(),
            String::from_utf8_lossy(bytes).into_owned(),
        ),
    ];
    // base64 of a slice depends on its alignment in the whole: try the three offsets.
    for shift in 0..3 {
        let b64 = STANDARD.encode(&bytes[shift..]);
        out.push((format!("base64+{shift}"), b64[4..b64.len() - 4].to_owned()));
        let url = URL_SAFE_NO_PAD.encode(&bytes[shift..]);
        out.push((
            format!("base64url+{shift}"),
            url[4..url.len() - 4].to_owned(),
        ));
    }
    out
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p))
            } else {
                out.push(p)
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_image_bytes_in_trace_logs_and_no_files_written() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let tmp = std::env::temp_dir();
    let before = files_under(&tmp);

    let server = start(|_| {}).await;
    let (_, public) = device();
    let verified = face("m_obama_official.jpg");
    let rejected = face("spoof_print_f_silentface_F1.jpg");
    let (status, _, _) = verify_multipart(server.addr, verified.clone(), &public, None).await;
    assert_eq!(status, 200);
    let (status, _, _) = verify_multipart(server.addr, rejected.clone(), &public, None).await;
    assert_eq!(status, 422);
    let body = json!({"image": STANDARD.encode(&verified), "public_key": public});
    let (status, _) = verify_raw(
        server.addr,
        "application/json",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = verify_raw(
        server.addr,
        "application/json",
        b"{\"image\": \"broken\"".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    // A head-turn burst: its frames go the same way.
    let (status, c) = burst::challenge(server.addr, &public).await;
    assert_eq!(status, 200, "{c}");
    let frames = burst::following(&burst::steps(&c));
    let id = c["challenge_id"].as_str().unwrap();
    let (status, body) = burst::answer(server.addr, id, &public, frames, None).await;
    assert_eq!(status, 200, "{body}");
    server.shutdown().await.unwrap();

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("verify"),
        "the capture works: it holds the service's own log lines"
    );
    assert!(
        logs.lines().count() > 4,
        "TRACE level captured something: {logs}"
    );
    let (frontal, turned) = (burst::frame(burst::REAL, 12), burst::frame(burst::REAL, 9));
    for image in [&verified, &rejected, &frontal, &turned] {
        // Several 48-byte windows from inside the compressed data.
        for start in [image.len() / 4, image.len() / 2, image.len() * 3 / 4] {
            for (how, needle) in encodings(&image[start..start + 48]) {
                assert!(
                    !logs.contains(&needle),
                    "image bytes ({how}) found in the logs"
                );
            }
        }
    }
    let new_files: Vec<_> = files_under(&tmp)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    for file in new_files {
        let Ok(content) = std::fs::read(&file) else {
            continue;
        };
        let window = &verified[verified.len() / 2..verified.len() / 2 + 48];
        assert!(
            !content.windows(48).any(|w| w == window),
            "image bytes written to {}",
            file.display()
        );
    }
}
