//! YuNet (2023mar): letterboxing into its input canvas, and decoding its twelve output tensors
//! (anchor-free, one prior per cell) into faces, with greedy NMS.
//!
//! Two canvases. The reference (MODELS.md §1), for single photos: the image letterboxed into
//! 640×640. A burst's frames: the same scale (the longer side at 640), on the smallest canvas
//! whose sides are multiples of 32, so a 640×480 camera frame costs three quarters of a
//! reference look and is not resampled at all.

use super::resize::{View, bilinear};
use super::{BoxF, Face};

/// The reference canvas's side (the model file's declared input), and every canvas's longer
/// side for the image.
pub const INPUT: usize = 640;
/// Feature-map strides, in the order of the model's outputs.
pub const STRIDES: [usize; 3] = [8, 16, 32];
/// A burst canvas's sides are multiples of the coarsest stride.
const ALIGN: usize = 32;

/// How the image was scaled into the top-left corner of a canvas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub new_w: usize,
    pub new_h: usize,
    pub scale_x: f32,
    pub scale_y: f32,
    pub canvas_w: usize,
    pub canvas_h: usize,
}

impl Letterbox {
    /// The reference: the longer side at 640, on a 640×640 canvas. Sizes are rounded half to
    /// even, as the reference pipeline's Python `round` does.
    pub fn for_size(width: usize, height: usize) -> Self {
        let s = INPUT as f64 / width.max(height) as f64;
        let new_w = ((width as f64 * s).round_ties_even() as usize).clamp(1, INPUT);
        let new_h = ((height as f64 * s).round_ties_even() as usize).clamp(1, INPUT);
        Letterbox {
            new_w,
            new_h,
            scale_x: new_w as f32 / width as f32,
            scale_y: new_h as f32 / height as f32,
            canvas_w: INPUT,
            canvas_h: INPUT,
        }
    }

    /// A burst's frame: the reference's scale, the canvas cut to the image's aligned size.
    pub fn for_frame(width: usize, height: usize) -> Self {
        let lb = Self::for_size(width, height);
        Letterbox {
            canvas_w: lb.new_w.div_ceil(ALIGN) * ALIGN,
            canvas_h: lb.new_h.div_ceil(ALIGN) * ALIGN,
            ..lb
        }
    }

    /// Floats the canvas takes: three planes.
    pub fn floats(&self) -> usize {
        3 * self.canvas_w * self.canvas_h
    }
}

/// Fills `tensor` (the canvas's three planes, BGR, raw 0..255) with the image resized into the
/// top-left corner of a black canvas.
pub fn letterbox(image: View<'_>, lb: &Letterbox, tensor: &mut [f32]) {
    assert_eq!(tensor.len(), lb.floats());
    let mut resized = bilinear(image, lb.new_w, lb.new_h);
    let (w, plane) = (lb.canvas_w, lb.canvas_w * lb.canvas_h);
    for (p, &c) in [2usize, 1, 0].iter().enumerate() {
        let dst = &mut tensor[p * plane..(p + 1) * plane];
        for (y, row) in dst.chunks_exact_mut(w).enumerate() {
            if y < lb.new_h {
                let src = &resized[y * lb.new_w * 3..(y + 1) * lb.new_w * 3];
                planar_row(src, c, &mut row[..lb.new_w]);
                row[lb.new_w..].fill(0.0);
            } else {
                row.fill(0.0);
            }
        }
    }
    zeroize::Zeroize::zeroize(&mut resized);
}

fn planar_row(row: &[u8], channel: usize, dst: &mut [f32]) {
    for (d, px) in dst.iter_mut().zip(row.chunks_exact(3)) {
        *d = px[channel] as f32;
    }
}

/// The detector's outputs for one stride: `cls`, `obj` (one value per cell, sigmoid applied),
/// `bbox` (4 per cell) and `kps` (10 per cell).
pub struct StrideOutput<'a> {
    pub cls: &'a [f32],
    pub obj: &'a [f32],
    pub bbox: &'a [f32],
    pub kps: &'a [f32],
}

/// Decodes the cells scoring at least `threshold`, in the coordinates of a canvas of `canvas`
/// (width, height).
pub fn decode(
    outputs: &[StrideOutput<'_>; 3],
    canvas: (usize, usize),
    threshold: f32,
) -> Vec<Face> {
    let mut faces = Vec::new();
    for (out, &stride) in outputs.iter().zip(STRIDES.iter()) {
        let cols = canvas.0 / stride;
        let cells = cols * (canvas.1 / stride);
        if out.cls.len() < cells
            || out.obj.len() < cells
            || out.bbox.len() < 4 * cells
            || out.kps.len() < 10 * cells
        {
            continue;
        }
        let s = stride as f32;
        for i in 0..cells {
            let score = (out.cls[i].clamp(0.0, 1.0) * out.obj[i].clamp(0.0, 1.0)).sqrt();
            if score.is_nan() || score < threshold {
                continue;
            }
            let (r, c) = ((i / cols) as f32, (i % cols) as f32);
            let b = &out.bbox[4 * i..4 * i + 4];
            let (cx, cy) = ((c + b[0]) * s, (r + b[1]) * s);
            let (w, h) = (b[2].exp() * s, b[3].exp() * s);
            let k = &out.kps[10 * i..10 * i + 10];
            let landmarks = std::array::from_fn(|j| [(k[2 * j] + c) * s, (k[2 * j + 1] + r) * s]);
            faces.push(Face {
                score,
                bbox: BoxF {
                    x: cx - w / 2.0,
                    y: cy - h / 2.0,
                    w,
                    h,
                },
                landmarks,
            });
        }
    }
    faces
}

/// Greedy non-maximum suppression: highest score first; a box is dropped when its IoU with an
/// already kept box exceeds `iou`.
pub fn nms(mut faces: Vec<Face>, iou: f32, top_k: usize) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    faces.truncate(top_k);
    let mut kept: Vec<Face> = Vec::new();
    for face in faces {
        if kept.iter().all(|k| k.bbox.iou(&face.bbox) <= iou) {
            kept.push(face);
        }
    }
    kept
}

/// Maps a face from letterboxed coordinates back to the original image.
pub fn unletterbox(face: Face, lb: &Letterbox) -> Face {
    let (sx, sy) = (lb.scale_x, lb.scale_y);
    Face {
        score: face.score,
        bbox: BoxF {
            x: face.bbox.x / sx,
            y: face.bbox.y / sy,
            w: face.bbox.w / sx,
            h: face.bbox.h / sy,
        },
        landmarks: face.landmarks.map(|[x, y]| [x / sx, y / sy]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(score: f32, x: f32, y: f32, w: f32, h: f32) -> Face {
        Face {
            score,
            bbox: BoxF { x, y, w, h },
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn letterbox_keeps_aspect_and_fills_the_top_left() {
        let lb = Letterbox::for_size(1280, 853);
        assert_eq!(
            (lb.new_w, lb.new_h),
            (640, 426),
            "426.5 rounds half to even"
        );
        let lb = Letterbox::for_size(115, 115);
        assert_eq!((lb.new_w, lb.new_h), (640, 640));
        let img = vec![255u8; 20 * 10 * 3];
        let mut tensor = vec![1.0; 3 * INPUT * INPUT];
        let lb = Letterbox::for_size(20, 10);
        letterbox(View::new(&img, 20, 10), &lb, &mut tensor);
        assert_eq!((lb.new_w, lb.new_h), (640, 320));
        assert_eq!(tensor[319 * INPUT], 255.0);
        assert_eq!(tensor[320 * INPUT], 0.0, "below the image is black");
    }

    #[test]
    fn a_frames_canvas_is_the_references_scale_cut_to_aligned_sides() {
        let lb = Letterbox::for_frame(400, 300);
        assert_eq!(
            (lb.new_w, lb.new_h, lb.canvas_w, lb.canvas_h),
            (640, 480, 640, 480)
        );
        let lb = Letterbox::for_frame(1280, 720);
        assert_eq!(
            (lb.new_w, lb.new_h, lb.canvas_w, lb.canvas_h),
            (640, 360, 640, 384)
        );
        assert_eq!(Letterbox::for_frame(480, 640).canvas_w, 480);
        // The image at the top left, black to the right and below, nothing left of what the
        // buffer held before.
        let img = vec![255u8; 30 * 17 * 3];
        let lb = Letterbox::for_frame(30, 17);
        assert_eq!(
            (lb.new_w, lb.new_h, lb.canvas_w, lb.canvas_h),
            (640, 363, 640, 384)
        );
        let mut tensor = vec![7.0; lb.floats()];
        letterbox(View::new(&img, 30, 17), &lb, &mut tensor);
        let plane = 640 * 384;
        for p in 0..3 {
            assert_eq!(tensor[p * plane + 362 * 640 + 639], 255.0);
            assert_eq!(tensor[p * plane + 363 * 640], 0.0);
        }
        assert!(tensor.iter().all(|&v| v == 0.0 || v == 255.0));
    }

    #[test]
    fn decode_places_a_cell_by_row_and_column() {
        let cells = [6400usize, 1600, 400];
        let mut data: Vec<[Vec<f32>; 4]> = cells
            .iter()
            .map(|&n| {
                [
                    vec![0.0; n],
                    vec![0.0; n],
                    vec![0.0; 4 * n],
                    vec![0.0; 10 * n],
                ]
            })
            .collect();
        // Stride 16, row 3, column 5, score sqrt(0.81 * 1.0) = 0.9.
        let i = 3 * 40 + 5;
        data[1][0][i] = 0.81;
        data[1][1][i] = 1.0;
        data[1][2][4 * i..4 * i + 4].copy_from_slice(&[0.5, 0.5, 0.0, 1f32.ln()]);
        data[1][3][10 * i] = 0.25;
        let outs: [StrideOutput; 3] = std::array::from_fn(|k| StrideOutput {
            cls: &data[k][0],
            obj: &data[k][1],
            bbox: &data[k][2],
            kps: &data[k][3],
        });
        let faces = decode(&outs, (INPUT, INPUT), 0.9);
        assert_eq!(faces.len(), 1);
        let f = faces[0];
        assert!((f.score - 0.9).abs() < 1e-6);
        assert_eq!(
            (f.bbox.x, f.bbox.y, f.bbox.w, f.bbox.h),
            (5.5 * 16.0 - 8.0, 3.5 * 16.0 - 8.0, 16.0, 16.0)
        );
        assert_eq!(f.landmarks[0], [5.25 * 16.0, 3.0 * 16.0]);
        assert!(decode(&outs, (INPUT, INPUT), 0.91).is_empty());
    }

    #[test]
    fn nms_drops_overlaps_above_the_threshold_only() {
        let kept = nms(
            vec![
                face(0.8, 0.0, 0.0, 10.0, 10.0),
                face(0.95, 1.0, 0.0, 10.0, 10.0),
                face(0.9, 50.0, 50.0, 10.0, 10.0),
            ],
            0.3,
            5000,
        );
        let scores: Vec<f32> = kept.iter().map(|f| f.score).collect();
        assert_eq!(scores, vec![0.95, 0.9]);
        // IoU of two 10×10 boxes shifted by 5: 50 / 150 = 0.33 > 0.3; shifted by 6: 40/160 = 0.25.
        assert_eq!(
            nms(
                vec![
                    face(0.9, 0.0, 0.0, 10.0, 10.0),
                    face(0.8, 5.0, 0.0, 10.0, 10.0)
                ],
                0.3,
                10
            )
            .len(),
            1
        );
        assert_eq!(
            nms(
                vec![
                    face(0.9, 0.0, 0.0, 10.0, 10.0),
                    face(0.8, 6.0, 0.0, 10.0, 10.0)
                ],
                0.3,
                10
            )
            .len(),
            2
        );
    }

    #[test]
    fn unletterbox_divides_by_the_scale() {
        let lb = Letterbox::for_size(1280, 640);
        let f = unletterbox(face(0.9, 10.0, 20.0, 30.0, 40.0), &lb);
        assert_eq!(
            (f.bbox.x, f.bbox.y, f.bbox.w, f.bbox.h),
            (20.0, 40.0, 60.0, 80.0)
        );
    }
}
