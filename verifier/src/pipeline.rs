//! The verification pipeline: decode → detect → liveness → gender → decision, with the time
//! each stage took. The decision rules live here; the models and the pixel math live elsewhere.

use std::path::Path;
use std::time::{Duration, Instant};

use anonchat_protocol::token::Gender;

use crate::challenge::{Frame, Rules, Step, is_frontal, judge};
use crate::decode::{ImageLimits, Pixels, decode};
use crate::error::VerifyError;
use crate::models::{Manifest, ModelError, Models, Optional};
use crate::vision::Face;
use crate::vision::embed::{Pose, cosine};

/// The decision rules, with the defaults of DESIGN.md §4 and MODELS.md.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Detector score a face needs to count (YuNet's own default).
    pub face_score: f32,
    /// Smallest accepted face, in pixels of the box's shorter side.
    pub min_face_px: u32,
    /// P(real) needed to pass liveness.
    pub liveness_threshold: f32,
    /// Run the second liveness model too (its score is reported).
    pub second_liveness: bool,
    /// Average the second liveness model's P(real) with the first's (implies running it).
    pub liveness_fusion: bool,
    /// The larger of P(male), P(female) needed to answer; below it the verifier abstains.
    pub gender_margin: f32,
    pub limits: ImageLimits,
    /// Load SFace and take head-turn bursts ([`Pipeline::run_burst`]).
    pub challenges: bool,
    pub challenge: Rules,
}

impl Default for Policy {
    fn default() -> Self {
        let m = Manifest::get();
        Policy {
            face_score: m.detector.score_threshold.unwrap_or(0.9),
            min_face_px: 32,
            liveness_threshold: m.liveness.threshold.unwrap_or(0.5),
            second_liveness: false,
            liveness_fusion: false,
            gender_margin: m.gender.margin.unwrap_or(0.9),
            limits: ImageLimits::default(),
            challenges: false,
            challenge: Rules::default(),
        }
    }
}

/// Whether the gender model runs at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenderMode {
    Infer,
    /// The user chose not to disclose: liveness still runs, gender is never inferred.
    Undisclosed,
}

/// Time spent in each stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub decode: Duration,
    pub detect: Duration,
    pub liveness: Duration,
    pub gender: Duration,
    /// SFace, for bursts.
    pub embed: Duration,
}

/// What the pipeline saw and decided.
#[derive(Debug, Clone)]
pub struct Report {
    /// Faces scoring at least [`Policy::face_score`], best first.
    pub faces: Vec<Face>,
    /// The liveness score the decision used (fused when fusion is on).
    pub liveness: Option<f32>,
    pub liveness_primary: Option<f32>,
    pub liveness_second: Option<f32>,
    pub p_male: Option<f32>,
    /// The gender for the token when verified.
    pub outcome: Result<Gender, VerifyError>,
    pub timings: Timings,
}

impl Report {
    /// Nothing seen yet; an outcome that says so if nothing replaces it.
    fn empty() -> Report {
        Report {
            faces: Vec::new(),
            liveness: None,
            liveness_primary: None,
            liveness_second: None,
            p_male: None,
            outcome: Err(VerifyError::Internal),
            timings: Timings::default(),
        }
    }
}

/// One worker's pipeline: its own models and the policy.
pub struct Pipeline {
    models: Models,
    policy: Policy,
}

impl Pipeline {
    pub fn load(models_dir: &Path, policy: Policy) -> Result<Self, ModelError> {
        Ok(Pipeline {
            models: Models::load(
                models_dir,
                Optional {
                    second_liveness: policy.second_liveness || policy.liveness_fusion,
                    embedder: policy.challenges,
                },
            )?,
            policy,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Runs the pipeline on untrusted image bytes. With `thorough`, every model still runs on
    /// the best face after a rule has failed (for `check`); otherwise the first failure stops it.
    pub fn run(&mut self, bytes: &[u8], mode: GenderMode, thorough: bool) -> Report {
        let mut report = Report::empty();
        report.outcome = self.stages(bytes, mode, thorough, &mut report);
        report
    }

    /// Runs a head-turn challenge's burst (frames in capture order, `at_ms` their capture
    /// times if known) against its `steps`: each frame must show exactly one face large enough,
    /// then [`judge`] decides, and gender comes from the most frontal frame. Decoded frames and
    /// embeddings are wiped when this returns.
    pub fn run_burst(
        &mut self,
        frames: &[zeroize::Zeroizing<Vec<u8>>],
        at_ms: Option<&[u64]>,
        steps: &[Step],
        mode: GenderMode,
    ) -> Report {
        let mut report = Report::empty();
        report.outcome = self.burst_stages(frames, at_ms, steps, mode, &mut report);
        report
    }

    fn burst_stages(
        &mut self,
        frames: &[zeroize::Zeroizing<Vec<u8>>],
        at_ms: Option<&[u64]>,
        steps: &[Step],
        mode: GenderMode,
        r: &mut Report,
    ) -> Result<Gender, VerifyError> {
        let p = &self.policy;
        if at_ms.is_some_and(|t| t.len() != frames.len()) {
            return Err(VerifyError::BadRequest(
                "one capture time per frame, or none".into(),
            ));
        }
        // One liveness threshold for photos and bursts: the configured one.
        let rules = Rules {
            live: p.liveness_threshold,
            ..p.challenge
        };
        let mut seen: Vec<(Pixels, Face)> = Vec::with_capacity(frames.len());
        let mut judged = Vec::with_capacity(frames.len());
        for (i, bytes) in frames.iter().enumerate() {
            let t = Instant::now();
            let pixels = decode(bytes, p.limits);
            r.timings.decode += t.elapsed();
            let pixels = pixels?;
            let t = Instant::now();
            let faces = self
                .models
                .detect_frame(pixels.view(), p.face_score)
                .map_err(internal)?;
            r.timings.detect += t.elapsed();
            let face = match faces.as_slice() {
                [] => return Err(VerifyError::NoFace),
                [face] => *face,
                _ => return Err(VerifyError::MultipleFaces),
            };
            large_enough(p, &face)?;
            let mut frame = Frame {
                pose: Pose::of(&face.landmarks),
                face: face.bbox,
                live: None,
                at_ms: at_ms.map(|t| t[i]),
            };
            if is_frontal(&frame, &rules) {
                let t = Instant::now();
                let live = self.models.liveness(pixels.view(), &face);
                r.timings.liveness += t.elapsed();
                frame.live = Some(live.map_err(internal)?);
            }
            judged.push(frame);
            seen.push((pixels, face));
        }
        // Embeddings only as the decision asks for them, each once.
        let mut embeddings: Vec<Option<zeroize::Zeroizing<Vec<f32>>>> = vec![None; seen.len()];
        let mut failed = None;
        let models = &mut self.models;
        let t = Instant::now();
        let decision = judge(
            steps,
            &judged,
            |i, j| {
                for k in [i, j] {
                    if embeddings[k].is_none() {
                        match models.embedding(seen[k].0.view(), &seen[k].1) {
                            Ok(e) => embeddings[k] = Some(e),
                            Err(e) => {
                                failed.get_or_insert(e);
                                return 1.0;
                            }
                        }
                    }
                }
                match (&embeddings[i], &embeddings[j]) {
                    (Some(a), Some(b)) => cosine(a, b),
                    _ => 1.0,
                }
            },
            &rules,
        );
        r.timings.embed = t.elapsed();
        drop(embeddings);
        if let Some(e) = failed {
            return Err(internal(e));
        }
        let passed = decision.inspect_err(|refusal| {
            // Which rule and where (frame numbers, yaw, cosine): never a pixel or an embedding.
            let poses: Vec<(f32, Option<f32>)> =
                judged.iter().map(|f| (f.pose.yaw, f.live)).collect();
            tracing::info!(?refusal, ?poses, "burst refused");
        })?;
        let (pixels, face) = &seen[passed.frontal];
        r.faces = vec![*face];
        r.liveness = judged[passed.frontal].live;
        r.liveness_primary = r.liveness;
        match mode {
            GenderMode::Undisclosed => Ok(Gender::Undisclosed),
            GenderMode::Infer => {
                let t = Instant::now();
                let p_male = self.models.p_male(pixels.view(), face).map_err(internal)?;
                r.timings.gender = t.elapsed();
                r.p_male = Some(p_male);
                match gender_of(p, p_male) {
                    (gender, true) => Ok(gender),
                    (_, false) => Err(VerifyError::LowConfidence),
                }
            }
        }
    }

    fn stages(
        &mut self,
        bytes: &[u8],
        mode: GenderMode,
        thorough: bool,
        r: &mut Report,
    ) -> Result<Gender, VerifyError> {
        let p = &self.policy;
        let t = Instant::now();
        let pixels = decode(bytes, p.limits);
        r.timings.decode = t.elapsed();
        let pixels = pixels?;
        let image = pixels.view();

        let t = Instant::now();
        r.faces = self.models.detect(image, p.face_score).map_err(internal)?;
        r.timings.detect = t.elapsed();
        let Some(face) = r.faces.first().copied() else {
            return Err(VerifyError::NoFace);
        };
        // The first rule that fails decides; with `thorough` the later stages still run.
        let mut first_failure: Option<VerifyError> = None;
        let mut fail = |e: VerifyError| -> Result<(), VerifyError> {
            if thorough {
                first_failure.get_or_insert(e);
                Ok(())
            } else {
                Err(e)
            }
        };
        if r.faces.len() > 1 {
            fail(VerifyError::MultipleFaces)?;
        }
        if let Err(e) = large_enough(p, &face) {
            fail(e)?;
        }

        let t = Instant::now();
        let primary = self.models.liveness(image, &face).map_err(internal)?;
        let second = self
            .models
            .liveness_second(image, &face)
            .map_err(internal)?;
        r.timings.liveness = t.elapsed();
        r.liveness_primary = Some(primary);
        r.liveness_second = second;
        let live = match (p.liveness_fusion, second) {
            (true, Some(s)) => (primary + s) / 2.0,
            _ => primary,
        };
        r.liveness = Some(live);
        if live < p.liveness_threshold {
            fail(VerifyError::SpoofDetected)?;
        }

        let gender = match mode {
            GenderMode::Undisclosed => Gender::Undisclosed,
            GenderMode::Infer => {
                let t = Instant::now();
                let p_male = self.models.p_male(image, &face).map_err(internal)?;
                r.timings.gender = t.elapsed();
                r.p_male = Some(p_male);
                let (gender, confident) = gender_of(p, p_male);
                if !confident {
                    fail(VerifyError::LowConfidence)?;
                }
                gender
            }
        };
        match first_failure {
            Some(e) => Err(e),
            None => Ok(gender),
        }
    }
}

/// The policy's size rule: the shorter side of the face's box, in pixels.
fn large_enough(p: &Policy, face: &Face) -> Result<(), VerifyError> {
    let side = face.bbox.w.min(face.bbox.h).max(0.0).round() as u32;
    if side < p.min_face_px {
        return Err(VerifyError::FaceTooSmall {
            got: side,
            min: p.min_face_px,
        });
    }
    Ok(())
}

/// The gender P(male) says, and whether it is sure enough ([`Policy::gender_margin`]) to answer.
fn gender_of(p: &Policy, p_male: f32) -> (Gender, bool) {
    let gender = if p_male >= 0.5 {
        Gender::Male
    } else {
        Gender::Female
    };
    (gender, p_male.max(1.0 - p_male) >= p.gender_margin)
}

fn internal(e: ModelError) -> VerifyError {
    tracing::error!(error = %e, "inference failed");
    VerifyError::Internal
}
