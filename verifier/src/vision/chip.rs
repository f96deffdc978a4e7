//! The dlib gender network's 32×32 face chip, rebuilt from YuNet's five landmarks: a
//! least-squares similarity onto fixed chip points, a box-filter shrink first when the face is
//! large (as dlib's pyramid does), then a bilinear warp that truncates like dlib.

use super::resize::{View, area_shrink_window};

/// The chip's side.
pub const SIZE: usize = 32;
/// Where landmarks 0..4 land in the chip (MODELS.md §3).
pub const TARGET: [[f64; 2]; 5] = [
    [9.5909, 9.3943],
    [21.9520, 9.3943],
    [15.7714, 16.5257],
    [10.4640, 21.7600],
    [21.0789, 21.7600],
];
/// Per-channel means (R, G, B) subtracted before dividing by 256.
pub const MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];

/// `u = a·x − b·y + tx`, `v = b·x + a·y + ty`: image point → chip point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    /// Least-squares fit of `points` onto [`TARGET`].
    pub fn fit(points: &[[f32; 2]; 5]) -> Self {
        Self::fit_onto(points, &TARGET)
    }

    /// Least-squares fit of `points` onto `target` (another crop's landmark positions).
    pub fn fit_onto(points: &[[f32; 2]; 5], target: &[[f64; 2]; 5]) -> Self {
        let n = points.len() as f64;
        let (mx, my) = (
            points.iter().map(|p| p[0] as f64).sum::<f64>() / n,
            points.iter().map(|p| p[1] as f64).sum::<f64>() / n,
        );
        let (mu, mv) = (
            target.iter().map(|p| p[0]).sum::<f64>() / n,
            target.iter().map(|p| p[1]).sum::<f64>() / n,
        );
        let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
        for (p, q) in points.iter().zip(target.iter()) {
            let (x, y) = (p[0] as f64 - mx, p[1] as f64 - my);
            let (u, v) = (q[0] - mu, q[1] - mv);
            num_a += x * u + y * v;
            num_b += x * v - y * u;
            den += x * x + y * y;
        }
        let den = den.max(1e-12);
        let (a, b) = (num_a / den, num_b / den);
        Similarity {
            a,
            b,
            tx: mu - a * mx + b * my,
            ty: mv - b * mx - a * my,
        }
    }

    /// Chip pixels per image pixel.
    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    /// The image point a chip point comes from.
    pub fn inverse(&self, u: f64, v: f64) -> (f64, f64) {
        let d = self.a * self.a + self.b * self.b;
        let (du, dv) = (u - self.tx, v - self.ty);
        (
            (self.a * du + self.b * dv) / d,
            (-self.b * du + self.a * dv) / d,
        )
    }
}

/// The 32×32 RGB chip (interleaved bytes) of the face with these landmarks.
pub fn chip(image: View<'_>, landmarks: &[[f32; 2]; 5]) -> Vec<u8> {
    let sim = Similarity::fit(landmarks);
    let s = sim.scale();
    if s.is_nan() || s >= 0.5 {
        return warp(&sim, SIZE, f32::trunc, |x, y| pixel(&image, x, y));
    }
    // Shrink by k = 2s with a box filter first. Only the window of the shrunk image that the chip
    // reads is computed: each shrunk pixel depends only on its own source area, so this equals
    // shrinking the whole image.
    let k = 2.0 * s;
    let new_w = ((image.width as f64 * k).round_ties_even() as usize).max(1);
    let new_h = ((image.height as f64 * k).round_ties_even() as usize).max(1);
    let (fx, fy) = (
        new_w as f32 / image.width as f32,
        new_h as f32 / image.height as f32,
    );
    let scaled = landmarks.map(|[x, y]| [x * fx, y * fy]);
    let sim = Similarity::fit(&scaled);
    let corners = [
        (0.0, 0.0),
        (SIZE as f64, 0.0),
        (0.0, SIZE as f64),
        (SIZE as f64, SIZE as f64),
    ]
    .map(|(u, v)| sim.inverse(u, v));
    let lo = |i: usize| {
        corners
            .iter()
            .map(|c| if i == 0 { c.0 } else { c.1 })
            .fold(f64::INFINITY, f64::min)
    };
    let hi = |i: usize| {
        corners
            .iter()
            .map(|c| if i == 0 { c.0 } else { c.1 })
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let clampi = |v: f64, max: usize| (v.max(0.0) as usize).min(max);
    let (x0, y0) = (
        clampi(lo(0).floor() - 2.0, new_w - 1),
        clampi(lo(1).floor() - 2.0, new_h - 1),
    );
    let (x1, y1) = (
        clampi(hi(0).ceil() + 2.0, new_w - 1),
        clampi(hi(1).ceil() + 2.0, new_h - 1),
    );
    let (ww, wh) = (x1 - x0 + 1, y1 - y0 + 1);
    let mut window = area_shrink_window(image, new_w, new_h, (x0, y0, ww, wh));
    let view = View::new(&window, ww, wh);
    let out = warp(&sim, SIZE, f32::trunc, |x, y| {
        if x < 0 || y < 0 || x as usize >= new_w || y as usize >= new_h {
            return [0.0; 3];
        }
        // Inside the shrunk image the window covers every point the chip reads.
        pixel(&view, x - x0 as i64, y - y0 as i64)
    });
    zeroize::Zeroize::zeroize(&mut window);
    out
}

/// A pixel as floats, black outside the view.
pub(super) fn pixel(view: &View<'_>, x: i64, y: i64) -> [f32; 3] {
    if x < 0 || y < 0 || x as usize >= view.width || y as usize >= view.height {
        return [0.0; 3];
    }
    let i = (view.y0 + y as usize) * view.stride + (view.x0 + x as usize) * 3;
    [
        view.data[i] as f32,
        view.data[i + 1] as f32,
        view.data[i + 2] as f32,
    ]
}

/// A `size`×`size` crop: samples each crop pixel's image point bilinearly from its four
/// neighbours, and makes it a byte with `to_int` (dlib truncates, OpenCV rounds).
pub(super) fn warp(
    sim: &Similarity,
    size: usize,
    to_int: fn(f32) -> f32,
    get: impl Fn(i64, i64) -> [f32; 3],
) -> Vec<u8> {
    let mut out = vec![0u8; size * size * 3];
    for v in 0..size {
        for u in 0..size {
            let (x, y) = sim.inverse(u as f64, v as f64);
            let (xf, yf) = (x.floor(), y.floor());
            let (ax, ay) = ((x - xf) as f32, (y - yf) as f32);
            let (xi, yi) = (xf as i64, yf as i64);
            let (p00, p10, p01, p11) = (
                get(xi, yi),
                get(xi + 1, yi),
                get(xi, yi + 1),
                get(xi + 1, yi + 1),
            );
            for c in 0..3 {
                let top = (1.0 - ax) * p00[c] + ax * p10[c];
                let bottom = (1.0 - ax) * p01[c] + ax * p11[c];
                out[(v * size + u) * 3 + c] =
                    to_int(((1.0 - ay) * top + ay * bottom).clamp(0.0, 255.0)) as u8;
            }
        }
    }
    out
}

/// Fills `tensor` (3×32×32) with the chip: RGB planes, `(value − mean) / 256`.
pub fn input(chip: &[u8], tensor: &mut [f32]) {
    super::planar(chip, [0, 1, 2], tensor, |c, v| {
        (v as f32 - MEAN_RGB[c]) / 256.0
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_the_targets_themselves_is_the_identity() {
        let pts = TARGET.map(|[x, y]| [x as f32, y as f32]);
        let s = Similarity::fit(&pts);
        assert!(
            (s.a - 1.0).abs() < 1e-5 && s.b.abs() < 1e-5 && s.tx.abs() < 1e-4 && s.ty.abs() < 1e-4,
            "{s:?}"
        );
    }

    #[test]
    fn fit_recovers_a_known_similarity() {
        // Image points = targets scaled by 4, rotated 90°, shifted: the fit maps them back.
        let pts = TARGET.map(|[u, v]| [(100.0 - 4.0 * v) as f32, (50.0 + 4.0 * u) as f32]);
        let s = Similarity::fit(&pts);
        assert!((s.scale() - 0.25).abs() < 1e-6);
        for (p, t) in pts.iter().zip(TARGET.iter()) {
            let u = s.a * p[0] as f64 - s.b * p[1] as f64 + s.tx;
            let v = s.b * p[0] as f64 + s.a * p[1] as f64 + s.ty;
            assert!((u - t[0]).abs() < 1e-3 && (v - t[1]).abs() < 1e-3);
        }
        let (x, y) = s.inverse(t0(0), t0(1));
        assert!((x - pts[0][0] as f64).abs() < 1e-3 && (y - pts[0][1] as f64).abs() < 1e-3);
    }

    fn t0(i: usize) -> f64 {
        TARGET[0][i]
    }

    #[test]
    fn chip_outside_the_image_is_black_and_inside_is_the_image() {
        // A uniform grey image whose landmarks sit at the top-left corner: the chip is grey where
        // it overlaps the image and black beyond, and values are truncated, never rounded up.
        let img = vec![100u8; 40 * 40 * 3];
        let pts = TARGET.map(|[x, y]| [(x - 16.0) as f32, (y - 16.0) as f32]);
        let c = chip(View::new(&img, 40, 40), &pts);
        assert_eq!(c[0], 0, "top-left of the chip is outside the image");
        assert_eq!(c[(31 * SIZE + 31) * 3], 100, "bottom-right is inside");
    }

    #[test]
    fn large_faces_are_shrunk_first_and_match_a_full_shrink() {
        // A checkerboard face 10× the chip: with the pyramid step the chip is a flat average.
        let (w, h) = (400usize, 400usize);
        let img: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [if (x + y) % 2 == 0 { 200 } else { 0 }; 3]))
            .collect();
        let pts = TARGET.map(|[x, y]| [(x * 10.0 + 40.0) as f32, (y * 10.0 + 40.0) as f32]);
        let c = chip(View::new(&img, w, h), &pts);
        let centre = c[(16 * SIZE + 16) * 3] as i32;
        assert!(
            (centre - 100).abs() <= 6,
            "box-filtered checkerboard averages to about 100, got {centre}"
        );
        // Without the box filter the warp would sample single squares: 0 or 200 and their blends.
    }

    #[test]
    fn input_normalises_rgb_planes() {
        let chip = vec![255u8; SIZE * SIZE * 3];
        let mut t = vec![0.0; 3 * SIZE * SIZE];
        input(&chip, &mut t);
        assert!((t[0] - (255.0 - 122.782) / 256.0).abs() < 1e-6);
        assert!((t[2 * SIZE * SIZE] - (255.0 - 104.298) / 256.0).abs() < 1e-6);
    }
}
