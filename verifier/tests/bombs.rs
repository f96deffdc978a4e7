//! Decompression bombs against `anonchat-verifier check`: small files that unpack to hundreds
//! of megabytes. Each is made here, checked by the real binary, and its peak RSS compared with
//! that of an ordinary selfie: no input of at most MAX_IMAGE_BYTES may cost 100 MB more.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one run of `check` printed, and its peak resident memory in bytes.
struct Checked {
    line: serde_json::Value,
    peak_rss: u64,
}

// The child is reaped by wait4 below, which also reports its peak memory.
#[allow(clippy::zombie_processes)]
fn check(file: &Path) -> Checked {
    let mut child = Command::new(env!("CARGO_BIN_EXE_anonchat-verifier"))
        .args(["check", "--json", "--models-dir"])
        .arg(common::models_dir())
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 fills it for the child we spawned (std never
    // waits for it, so it is reaped exactly once, here).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "check {} failed: {status}",
        file.display()
    );
    Checked {
        line: serde_json::from_str(out.trim()).unwrap(),
        peak_rss: usage.ru_maxrss as u64 * 1024,
    }
}

/// An EXIF block saying "rotate 90° clockwise to show" (orientation 6), as PNG's eXIf holds it.
fn exif_rotate_90() -> Vec<u8> {
    let mut exif = b"MM\0*\0\0\0\x08".to_vec();
    exif.extend_from_slice(&1u16.to_be_bytes());
    exif.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
    exif.extend_from_slice(&0u32.to_be_bytes());
    exif
}

/// A 16-bit RGBA PNG of zeros, written a row at a time so the test never holds its pixels.
fn png16_of_zeros(path: &Path, side: u32, exif: bool) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, side, side);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Sixteen);
    encoder.set_compression(png::Compression::Fastest);
    let mut writer = encoder.write_header().unwrap();
    if exif {
        writer
            .write_chunk(png::chunk::ChunkType(*b"eXIf"), &exif_rotate_90())
            .unwrap();
    }
    let mut stream = writer.stream_writer().unwrap();
    let row = vec![0u8; side as usize * 8];
    for _ in 0..side {
        stream.write_all(&row).unwrap();
    }
    stream.finish().unwrap();
}

/// An RGB image with gradients and a little noise (so that it neither compresses to nothing
/// nor beyond MAX_IMAGE_BYTES), `side` pixels square.
fn texture(side: u32, grain: bool) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let mut out = Vec::with_capacity(side as usize * side as usize * 3);
    for y in 0..side {
        for x in 0..side {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let grain = if grain { (state >> 29) as u8 } else { 0 };
            out.extend_from_slice(&[(x / 16) as u8 ^ grain, (y / 16) as u8, ((x + y) / 32) as u8]);
        }
    }
    out
}

fn jpeg(path: &Path, side: u32, progressive: bool) {
    let mut encoder = jpeg_encoder::Encoder::new_file(path, 40).unwrap();
    encoder.set_progressive(progressive);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_4_4);
    let side16 = u16::try_from(side).unwrap();
    encoder
        .encode(
            &texture(side, true),
            side16,
            side16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
}

fn webp_lossless(path: &Path, side: u32) {
    let file = std::fs::File::create(path).unwrap();
    image::codecs::webp::WebPEncoder::new_lossless(file)
        .encode(
            &texture(side, false),
            side,
            side,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("verifier-bombs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const MAX_IMAGE_BYTES: u64 = 8 * 1024 * 1024;
const MB: u64 = 1_000_000;

#[test]
fn no_image_costs_more_than_100_mb_to_check() {
    let dir = scratch();
    let cases: Vec<(&str, PathBuf, Option<&str>)> = {
        let p = |name: &str| dir.join(name);
        png16_of_zeros(&p("zeros16.png"), 6000, false);
        png16_of_zeros(&p("zeros16-rotated.png"), 6000, true);
        // The largest of each kind the limits still decode (MAX_DECODED_IMAGE_BYTES, 48 MiB).
        png16_of_zeros(&p("zeros16-largest-rotated.png"), 2500, true);
        jpeg(&p("largest.jpg"), 4000, false);
        jpeg(&p("largest-progressive.jpg"), 2300, true);
        webp_lossless(&p("largest-lossless.webp"), 2680);
        vec![
            (
                "16-bit PNG of zeros",
                p("zeros16.png"),
                Some("image_too_large"),
            ),
            (
                "the same, rotated by EXIF",
                p("zeros16-rotated.png"),
                Some("image_too_large"),
            ),
            (
                "largest 16-bit PNG, rotated",
                p("zeros16-largest-rotated.png"),
                None,
            ),
            ("largest baseline JPEG", p("largest.jpg"), None),
            (
                "largest progressive JPEG",
                p("largest-progressive.jpg"),
                None,
            ),
            ("largest lossless WebP", p("largest-lossless.webp"), None),
        ]
    };
    // A child starts sharing this process's memory, and its peak counts that: give back what
    // making the files took, and measure the selfie from the same state.
    // SAFETY: malloc_trim only returns free heap pages to the system.
    unsafe { libc::malloc_trim(0) };
    let selfie = common::faces_dir().join("m_obama_official.jpg");
    let baseline = check(&selfie);
    assert_eq!(baseline.line["verdict"], "verified");
    let mut report = Vec::new();
    for (what, file, refusal) in &cases {
        let size = std::fs::metadata(file).unwrap().len();
        assert!(size <= MAX_IMAGE_BYTES, "{what}: {size} bytes");
        let got = check(file);
        let code = got.line["error_code"].as_str();
        match refusal {
            Some(expected) => assert_eq!(code, Some(*expected), "{what}: {}", got.line),
            // Decoded: whatever the models then say, it was not refused for its size.
            None => assert!(
                !matches!(code, Some("image_too_large" | "corrupt_image" | "internal")),
                "{what}: {}",
                got.line
            ),
        }
        let extra = got.peak_rss.saturating_sub(baseline.peak_rss);
        report.push(format!(
            "{what} ({} KB): peak {} MB, {} MB over a selfie",
            size / 1000,
            got.peak_rss / MB,
            extra / MB
        ));
        assert!(extra < 100 * MB, "{}", report.join("\n"));
    }
    eprintln!(
        "selfie: peak {} MB\n{}",
        baseline.peak_rss / MB,
        report.join("\n")
    );
    if std::env::var_os("KEEP_BOMBS").is_none() {
        std::fs::remove_dir_all(&dir).ok();
    }
}
