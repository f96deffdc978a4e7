//! What a head-turn challenge measures on each frame, besides liveness: SFace's aligned 112×112
//! crop and the comparison of two embeddings (MODELS.md §4), and the head's pose from YuNet's
//! five landmarks (MODELS.md, "A yaw proxy from YuNet's landmarks").
//!
//! An embedding is biometric data: the caller wipes it with the images when the request ends.

use super::chip::{Similarity, pixel, warp};
use super::resize::View;

/// The crop's side.
pub const SIZE: usize = 112;
/// Where landmarks 0..4 land in the crop (OpenCV's `FaceRecognizerSF::alignCrop`).
pub const TARGET: [[f64; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];
/// SFace's output length.
pub const DIM: usize = 128;

/// The aligned crop (interleaved RGB bytes) of the face with these landmarks: a least-squares
/// similarity onto [`TARGET`], then a bilinear warp that rounds, black outside the image.
pub fn crop(image: View<'_>, landmarks: &[[f32; 2]; 5]) -> Vec<u8> {
    let sim = Similarity::fit_onto(landmarks, &TARGET);
    warp(&sim, SIZE, f32::round, |x, y| pixel(&image, x, y))
}

/// Fills `tensor` (3×112×112) with the crop: RGB planes, values 0..255 as they are.
pub fn input(crop: &[u8], tensor: &mut [f32]) {
    super::planar(crop, [0, 1, 2], tensor, |_, v| v as f32);
}

/// Cosine similarity of two embeddings (SFace's are not normalised); 0 for a zero vector.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (*x as f64, *y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    (ab / (aa.sqrt() * bb.sqrt())) as f32
}

/// The head's pose as far as a head-turn check needs it, from YuNet's landmarks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// The nose's shift along the eye line, in eye distances: > 0 when the subject turned to
    /// their own left in an unmirrored frame, < 0 to their right. Ignores roll.
    pub yaw: f32,
    /// Eye distance over the distance from the eyes' midpoint to the mouth's: a face that turns,
    /// or a print that tilts, narrows (this falls); only a real turn moves the nose with it.
    pub width: f32,
}

impl Pose {
    pub fn of(landmarks: &[[f32; 2]; 5]) -> Pose {
        let [right_eye, left_eye, nose, mouth_r, mouth_l] =
            landmarks.map(|[x, y]| [x as f64, y as f64]);
        let mid = |a: [f64; 2], b: [f64; 2]| [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
        let (eyes, mouth) = (mid(right_eye, left_eye), mid(mouth_r, mouth_l));
        let (ux, uy) = (left_eye[0] - right_eye[0], left_eye[1] - right_eye[1]);
        let iod = ux.hypot(uy);
        if iod < 1e-6 {
            return Pose {
                yaw: 0.0,
                width: 0.0,
            };
        }
        let along = ((nose[0] - eyes[0]) * ux + (nose[1] - eyes[1]) * uy) / iod;
        let drop = (mouth[0] - eyes[0]).hypot(mouth[1] - eyes[1]);
        Pose {
            yaw: (along / iod) as f32,
            width: if drop < 1e-6 {
                0.0
            } else {
                (iod / drop) as f32
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nose_shift_gives_the_direction_of_the_turn() {
        let frontal = [
            [40.0, 50.0],
            [60.0, 50.0],
            [50.0, 60.0],
            [42.0, 70.0],
            [58.0, 70.0],
        ];
        let p = Pose::of(&frontal);
        assert!(p.yaw.abs() < 1e-6, "{p:?}");
        assert!(
            (p.width - 1.0).abs() < 1e-6,
            "eyes 20 apart, mouth 20 below: {p:?}"
        );
        // The nose moves toward the image's right: the subject turned to their own left.
        let mut left = frontal;
        left[2][0] += 4.0;
        assert!((Pose::of(&left).yaw - 0.2).abs() < 1e-6);
        let mut right = frontal;
        right[2][0] -= 4.0;
        assert!((Pose::of(&right).yaw + 0.2).abs() < 1e-6);
        // Roll does not count: the same face turned 90° in the image plane.
        let rolled = left.map(|[x, y]| [100.0 - y, x]);
        assert!((Pose::of(&rolled).yaw - 0.2).abs() < 1e-5);
        // Degenerate landmarks are no turn, not a NaN.
        assert_eq!(Pose::of(&[[1.0, 1.0]; 5]).yaw, 0.0);
    }

    #[test]
    fn cosine_is_one_for_the_same_direction_and_zero_for_nothing() {
        let a = [1.0, 2.0, 3.0];
        assert!((cosine(&a, &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-6);
        assert!((cosine(&a, &[-1.0, -2.0, -3.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&a, &[0.0; 3]), 0.0);
    }

    #[test]
    fn the_crop_puts_the_landmarks_where_sface_expects_them() {
        // An image with a bright 3×3 spot at each landmark: after the crop the spots sit at the
        // targets.
        let (w, h) = (200usize, 200usize);
        let mut img = vec![0u8; w * h * 3];
        let marks = TARGET.map(|[u, v]| [(u * 1.5 + 20.0) as f32, (v * 1.5 + 10.0) as f32]);
        for m in &marks {
            let (x, y) = (m[0].round() as usize, m[1].round() as usize);
            for yy in y - 1..=y + 1 {
                for xx in x - 1..=x + 1 {
                    let i = (yy * w + xx) * 3;
                    img[i..i + 3].copy_from_slice(&[255, 255, 255]);
                }
            }
        }
        let c = crop(View::new(&img, w, h), &marks);
        assert_eq!(c.len(), SIZE * SIZE * 3);
        for t in TARGET {
            let (u, v) = (t[0].round() as usize, t[1].round() as usize);
            let around = (v - 1..=v + 1)
                .flat_map(|y| (u - 1..=u + 1).map(move |x| (x, y)))
                .map(|(x, y)| c[(y * SIZE + x) * 3])
                .max()
                .unwrap();
            assert!(around > 200, "no bright pixel near {t:?}");
        }
        assert_eq!(c[0], 0, "the crop's corner is far from every landmark");
    }
}
