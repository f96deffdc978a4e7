//! Plain bilinear resampling (OpenCV `INTER_LINEAR` geometry, no antialiasing) and an
//! area-averaging shrink, on interleaved RGB bytes.

/// A read-only view of an interleaved RGB image, or of a rectangle inside one.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [u8],
    /// Bytes per row of `data`.
    pub stride: usize,
    pub x0: usize,
    pub y0: usize,
    pub width: usize,
    pub height: usize,
}

impl<'a> View<'a> {
    pub fn new(data: &'a [u8], width: usize, height: usize) -> Self {
        debug_assert_eq!(data.len(), width * height * 3);
        View {
            data,
            stride: width * 3,
            x0: 0,
            y0: 0,
            width,
            height,
        }
    }

    /// The inclusive rectangle of columns `l..=r` and rows `t..=b`.
    pub fn crop(&self, l: usize, t: usize, r: usize, b: usize) -> View<'a> {
        debug_assert!(l <= r && r < self.width && t <= b && b < self.height);
        View {
            x0: self.x0 + l,
            y0: self.y0 + t,
            width: r - l + 1,
            height: b - t + 1,
            ..*self
        }
    }

    #[inline]
    fn row(&self, y: usize) -> &'a [u8] {
        let start = (self.y0 + y) * self.stride + self.x0 * 3;
        &self.data[start..start + self.width * 3]
    }
}

/// One axis of a bilinear resize: for each output index, the two source indices and the weight
/// of the second, `src = clamp((i + 0.5)·in/out − 0.5, 0, in−1)`.
fn taps(input: usize, output: usize) -> Vec<(usize, usize, f32)> {
    let scale = input as f64 / output as f64;
    (0..output)
        .map(|i| {
            let s = ((i as f64 + 0.5) * scale - 0.5).clamp(0.0, (input - 1) as f64);
            let i0 = s.floor() as usize;
            let i1 = (i0 + 1).min(input - 1);
            (i0, i1, (s - i0 as f64) as f32)
        })
        .collect()
}

/// Resizes `src` to `out_w`×`out_h` with plain bilinear interpolation, each value rounded to the
/// nearest integer. Returns interleaved RGB bytes.
///
/// Each source row's horizontal interpolation is computed once and kept while output rows still
/// read it (rows come in order), then rows are blended: the same arithmetic, in the same order,
/// as interpolating every output pixel on its own, so the same bytes, at a third of the work
/// when enlarging.
pub fn bilinear(src: View<'_>, out_w: usize, out_h: usize) -> Vec<u8> {
    assert!(src.width > 0 && src.height > 0 && out_w > 0 && out_h > 0);
    if (out_w, out_h) == (src.width, src.height) {
        // Every tap lands on a pixel centre with weight 1 and 0: the bytes as they are (a
        // 640×480 camera frame in the detector's 640 canvas).
        let mut out = Vec::with_capacity(out_w * out_h * 3);
        for y in 0..out_h {
            out.extend_from_slice(src.row(y));
        }
        return out;
    }
    let xs: Vec<(usize, usize, f32, f32)> = taps(src.width, out_w)
        .into_iter()
        .map(|(x0, x1, fx)| (x0 * 3, x1 * 3, 1.0 - fx, fx))
        .collect();
    let ys = taps(src.height, out_h);
    let horizontal = |y: usize, into: &mut [f32]| {
        let row = src.row(y);
        for (px, &(a, b, wa, wb)) in into.chunks_exact_mut(3).zip(&xs) {
            let (pa, pb) = (&row[a..a + 3], &row[b..b + 3]);
            for c in 0..3 {
                px[c] = wa * pa[c] as f32 + wb * pb[c] as f32;
            }
        }
    };
    // The two source rows the current output row blends, by source index.
    let mut rows: [(usize, Vec<f32>); 2] = [
        (usize::MAX, vec![0.0; out_w * 3]),
        (usize::MAX, vec![0.0; out_w * 3]),
    ];
    let mut out = vec![0u8; out_w * out_h * 3];
    for (dst, &(y0, y1, fy)) in out.chunks_exact_mut(out_w * 3).zip(&ys) {
        for y in [y0, y1] {
            if rows[0].0 != y && rows[1].0 != y {
                // Replace the row no longer needed (the one that is neither y0 nor y1).
                let slot = usize::from(rows[0].0 == y0 || rows[0].0 == y1);
                horizontal(y, &mut rows[slot].1);
                rows[slot].0 = y;
            }
        }
        let top = if rows[0].0 == y0 {
            &rows[0].1
        } else {
            &rows[1].1
        };
        let bottom = if rows[0].0 == y1 {
            &rows[0].1
        } else {
            &rows[1].1
        };
        for ((d, &t), &b) in dst.iter_mut().zip(top).zip(bottom) {
            *d = round_to_u8((1.0 - fy) * t + fy * b);
        }
    }
    for (_, row) in &mut rows {
        zeroize::Zeroize::zeroize(row);
    }
    out
}

/// `v.round() as u8` for the 0..=255 values an interpolation of bytes gives. `f32::round` is a
/// call into libm on baseline x86-64 (no SSE4.1), and a 640×480 resize makes a million of them;
/// this is the same rounding (halves away from zero) with a truncating cast, exact because
/// `v − ⌊v⌋` is exact for a non-negative float.
#[inline]
pub fn round_to_u8(v: f32) -> u8 {
    let whole = v as u8;
    whole.saturating_add(u8::from(v - whole as f32 >= 0.5))
}

/// Fixed-point precision of the shrink's weights (as Pillow's resampler).
const PRECISION_BITS: u32 = 22;

/// One axis of the box shrink: for each output index, the first source index it reads and the
/// fixed-point weights of the source pixels whose centres fall within its footprint.
fn box_taps(input: usize, output: usize) -> Vec<(usize, Vec<i64>)> {
    let scale = input as f64 / output as f64;
    let support = 0.5 * scale.max(1.0);
    let ss = 1.0 / scale.max(1.0);
    (0..output)
        .map(|i| {
            let centre = (i as f64 + 0.5) * scale;
            let first = ((centre - support + 0.5) as i64).max(0) as usize;
            let end = ((centre + support + 0.5) as i64).min(input as i64) as usize;
            let weights: Vec<f64> = (first..end)
                .map(|x| {
                    let t = (x as f64 - centre + 0.5) * ss;
                    if t > -0.5 && t <= 0.5 { 1.0 } else { 0.0 }
                })
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|w| (w / total * (1u64 << PRECISION_BITS) as f64 + 0.5) as i64)
                .collect();
            (first, fixed)
        })
        .collect()
}

#[inline]
fn fixed_to_u8(acc: i64) -> u8 {
    ((acc + (1 << (PRECISION_BITS - 1))) >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Shrinks `src` to `out_w`×`out_h` (each no larger than the source) with a box filter: each
/// output pixel averages the source pixels whose centres fall within its footprint. This is
/// Pillow's `BOX` resampling, which the reference pipeline uses before taking the gender chip
/// (as dlib's pyramid does), down to its fixed-point weights and its rounding to 8 bits
/// between the horizontal and the vertical pass.
pub fn area_shrink(src: View<'_>, out_w: usize, out_h: usize) -> Vec<u8> {
    area_shrink_window(src, out_w, out_h, (0, 0, out_w, out_h))
}

/// The window `(x, y, w, h)` of [`area_shrink`]'s output, computed from the source rows and
/// columns it covers only.
pub fn area_shrink_window(
    src: View<'_>,
    out_w: usize,
    out_h: usize,
    window: (usize, usize, usize, usize),
) -> Vec<u8> {
    assert!(out_w > 0 && out_h > 0 && out_w <= src.width && out_h <= src.height);
    let (wx, wy, ww, wh) = window;
    assert!(ww > 0 && wh > 0 && wx + ww <= out_w && wy + wh <= out_h);
    let xs = &box_taps(src.width, out_w)[wx..wx + ww];
    let ys = &box_taps(src.height, out_h)[wy..wy + wh];
    let first_row = ys[0].0;
    let last_row = ys
        .iter()
        .map(|(f, w)| f + w.len())
        .max()
        .unwrap_or(first_row + 1)
        - 1;
    let rows = last_row - first_row + 1;
    let mut horizontal = vec![0u8; ww * rows * 3];
    for y in 0..rows {
        let row = src.row(first_row + y);
        for (ox, (first, weights)) in xs.iter().enumerate() {
            for c in 0..3 {
                let acc: i64 = weights
                    .iter()
                    .enumerate()
                    .map(|(j, w)| w * row[(first + j) * 3 + c] as i64)
                    .sum();
                horizontal[(y * ww + ox) * 3 + c] = fixed_to_u8(acc);
            }
        }
    }
    let mut out = vec![0u8; ww * wh * 3];
    for (oy, (first, weights)) in ys.iter().enumerate() {
        for i in 0..ww * 3 {
            let acc: i64 = weights
                .iter()
                .enumerate()
                .map(|(j, w)| w * horizontal[(first + j - first_row) * ww * 3 + i] as i64)
                .sum();
            out[oy * ww * 3 + i] = fixed_to_u8(acc);
        }
    }
    zeroize::Zeroize::zeroize(&mut horizontal);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize) -> Vec<u8> {
        (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [(x * 10) as u8, (y * 10) as u8, 7]))
            .collect()
    }

    #[test]
    fn round_to_u8_rounds_as_f32_round_does() {
        // Every representable f32 in a window around each half, and a sweep of the range.
        for whole in 0..=255u32 {
            let half = whole as f32 + 0.5;
            let mut v = half;
            let mut below = half;
            for _ in 0..64 {
                assert_eq!(round_to_u8(v), v.round() as u8, "{v}");
                assert_eq!(round_to_u8(below), below.round() as u8, "{below}");
                v = v.next_up();
                below = below.next_down();
            }
        }
        for i in 0..=2_560_000u32 {
            let v = i as f32 / 10_000.0;
            assert_eq!(round_to_u8(v), v.round().min(255.0) as u8, "{v}");
        }
        assert_eq!(round_to_u8(255.2), 255);
        assert_eq!(round_to_u8(0.0), 0);
    }

    /// The textbook form: every output value interpolated on its own.
    fn bilinear_per_pixel(src: View<'_>, out_w: usize, out_h: usize) -> Vec<u8> {
        let (xs, ys) = (taps(src.width, out_w), taps(src.height, out_h));
        let mut out = vec![0u8; out_w * out_h * 3];
        for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
            let (r0, r1) = (src.row(y0), src.row(y1));
            for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
                for c in 0..3 {
                    let top = (1.0 - fx) * r0[x0 * 3 + c] as f32 + fx * r0[x1 * 3 + c] as f32;
                    let bottom = (1.0 - fx) * r1[x0 * 3 + c] as f32 + fx * r1[x1 * 3 + c] as f32;
                    out[(oy * out_w + ox) * 3 + c] = ((1.0 - fy) * top + fy * bottom).round() as u8;
                }
            }
        }
        out
    }

    #[test]
    fn row_reuse_gives_the_bytes_of_the_per_pixel_form() {
        // Noise, so that every rounding is exercised; enlarging, shrinking, odd sizes, a crop.
        let mut seed = 0x9e37_79b9_u32;
        let img: Vec<u8> = (0..37 * 23 * 3)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        let full = View::new(&img, 37, 23);
        for view in [full, full.crop(3, 2, 30, 20)] {
            for (w, h) in [(64, 40), (59, 37), (20, 11), (1, 1), (80, 3)] {
                assert_eq!(
                    bilinear(view, w, h),
                    bilinear_per_pixel(view, w, h),
                    "{w}×{h}"
                );
            }
            let same = (view.width, view.height);
            assert_eq!(
                bilinear(view, same.0, same.1),
                bilinear_per_pixel(view, same.0, same.1),
                "the same size is a copy"
            );
        }
    }

    #[test]
    fn same_size_is_identity() {
        let img = gradient(7, 5);
        assert_eq!(bilinear(View::new(&img, 7, 5), 7, 5), img);
    }

    #[test]
    fn upscaling_by_two_follows_the_half_pixel_geometry() {
        // 2 px wide → 4 px: sources at x = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
        let img = vec![0, 0, 0, 100, 100, 100];
        let out = bilinear(View::new(&img, 2, 1), 4, 1);
        let reds: Vec<u8> = out.chunks(3).map(|p| p[0]).collect();
        assert_eq!(reds, vec![0, 25, 75, 100]);
    }

    #[test]
    fn shrinking_does_not_antialias() {
        // 4 → 2 samples source points 0.5 and 2.5: the mean of columns (0,1) and (2,3), and a
        // 1-pixel-wide line at column 3 weighs one half, not a quarter as a box filter would give.
        let img: Vec<u8> = [0u8, 0, 0, 200].iter().flat_map(|&v| [v, v, v]).collect();
        let out = bilinear(View::new(&img, 4, 1), 2, 1);
        assert_eq!(out[0], 0);
        assert_eq!(out[3], 100);
        assert_eq!(area_shrink(View::new(&img, 4, 1), 2, 1)[3], 100);
        assert_eq!(area_shrink(View::new(&img, 4, 1), 1, 1)[0], 50);
    }

    #[test]
    fn crop_reads_only_its_rectangle() {
        let img = gradient(6, 6);
        let view = View::new(&img, 6, 6).crop(2, 3, 4, 5);
        let out = bilinear(view, 3, 3);
        assert_eq!(&out[..3], &[20, 30, 7]);
        assert_eq!(&out[out.len() - 3..], &[40, 50, 7]);
    }

    #[test]
    fn a_window_of_the_shrink_equals_the_same_pixels_of_the_whole_shrink() {
        let img = gradient(25, 19);
        let whole = area_shrink(View::new(&img, 25, 19), 9, 7);
        let part = area_shrink_window(View::new(&img, 25, 19), 9, 7, (2, 3, 4, 3));
        for y in 0..3 {
            assert_eq!(
                &part[y * 12..(y + 1) * 12],
                &whole[((y + 3) * 9 + 2) * 3..((y + 3) * 9 + 6) * 3]
            );
        }
    }

    #[test]
    fn area_shrink_by_a_non_integer_factor_keeps_the_mean() {
        let img = gradient(10, 10);
        let out = area_shrink(View::new(&img, 10, 10), 3, 3);
        let mean = |v: &[u8], c: usize| {
            v.chunks(3).map(|p| p[c] as f32).sum::<f32>() / (v.len() / 3) as f32
        };
        assert!((mean(&out, 0) - mean(&img, 0)).abs() < 1.0);
        assert!((mean(&out, 1) - mean(&img, 1)).abs() < 1.0);
    }
}
