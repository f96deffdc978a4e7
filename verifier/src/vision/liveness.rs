//! MiniFASNet input: upstream Silent-Face's `CropImage` around the detector's box, stretched to
//! 80×80, BGR planes, raw 0..255 (upstream deliberately skips the division by 255).

use super::BoxF;
use super::resize::{View, bilinear};

/// MiniFASNet's input side.
pub const INPUT: usize = 80;

/// The inclusive pixel rectangle `(l, t, r, b)` of the crop `scale` times the face box, shifted
/// to stay inside a `width`×`height` image.
pub fn crop_rect(
    face: BoxF,
    width: usize,
    height: usize,
    scale: f32,
) -> (usize, usize, usize, usize) {
    let (w_img, h_img) = ((width - 1) as f64, (height - 1) as f64);
    let (x, y, w, h) = (
        face.x as f64,
        face.y as f64,
        (face.w as f64).max(1e-3),
        (face.h as f64).max(1e-3),
    );
    let k = (h_img / h).min(w_img / w).min(scale as f64);
    let (cw, ch) = (w * k, h * k);
    let (cx, cy) = (x + w / 2.0, y + h / 2.0);
    let (mut l, mut t, mut r, mut b) = (cx - cw / 2.0, cy - ch / 2.0, cx + cw / 2.0, cy + ch / 2.0);
    if l < 0.0 {
        r -= l;
        l = 0.0;
    }
    if t < 0.0 {
        b -= t;
        t = 0.0;
    }
    if r > w_img {
        l -= r - w_img;
        r = w_img;
    }
    if b > h_img {
        t -= b - h_img;
        b = h_img;
    }
    // Truncate toward zero, then keep a non-empty rectangle inside the image whatever the box.
    let clamp = |v: f64, max: usize| (v.trunc().max(0.0) as usize).min(max);
    let (l, t) = (clamp(l, width - 1), clamp(t, height - 1));
    let (r, b) = (clamp(r, width - 1).max(l), clamp(b, height - 1).max(t));
    (l, t, r, b)
}

/// Fills `tensor` (3×80×80) with the crop around `face`.
pub fn input(image: View<'_>, face: BoxF, scale: f32, tensor: &mut [f32]) {
    let (l, t, r, b) = crop_rect(face, image.width, image.height, scale);
    let mut patch = bilinear(image.crop(l, t, r, b), INPUT, INPUT);
    super::planar(&patch, [2, 1, 0], tensor, |_, v| v as f32);
    zeroize::Zeroize::zeroize(&mut patch);
}

/// P(real face) from MiniFASNet's three logits: softmax, class 1 (0 and 2 are spoof classes).
pub fn p_real(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    exps[1] / exps.iter().sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, y: f32, w: f32, h: f32) -> BoxF {
        BoxF { x, y, w, h }
    }

    #[test]
    fn centred_crop_is_scale_times_the_box() {
        // 100×100 box centred in a 1000×1000 image: 270×270 around (500, 500). In float64,
        // 100 × 2.7 = 270.00000000000006, so the left edge truncates to 364, as upstream's does.
        assert_eq!(
            crop_rect(b(450.0, 450.0, 100.0, 100.0), 1000, 1000, 2.7),
            (364, 364, 635, 635)
        );
    }

    #[test]
    fn crop_is_shifted_inside_the_image() {
        // Near the top-left corner: shifted right and down, same size.
        let (l, t, r, bt) = crop_rect(b(0.0, 10.0, 100.0, 100.0), 1000, 1000, 2.7);
        assert_eq!((l, t), (0, 0));
        assert_eq!((r, bt), (270, 270));
        // Near the bottom-right corner.
        let (l, t, r, bt) = crop_rect(b(900.0, 900.0, 100.0, 100.0), 1000, 1000, 2.7);
        assert_eq!((r, bt), (999, 999));
        assert_eq!((l, t), (728, 728));
    }

    #[test]
    fn scale_shrinks_when_the_image_is_too_small() {
        // 115×115 image, 36×52 box: k = min(114/52, 114/36, 2.7) = 2.19, so the crop is the
        // image's full height.
        let (l, t, r, bt) = crop_rect(b(37.0, 24.0, 36.0, 52.0), 115, 115, 2.7);
        assert_eq!((t, bt), (0, 114));
        assert!(r - l < 80 && r < 115 && bt < 115);
    }

    #[test]
    fn degenerate_boxes_still_give_a_pixel() {
        let (l, t, r, bt) = crop_rect(b(-50.0, 5000.0, 0.0, -3.0), 10, 10, 2.7);
        assert!(l <= r && r < 10 && t <= bt && bt < 10);
    }

    #[test]
    fn p_real_is_the_softmax_of_class_one() {
        assert!((p_real(&[0.0, 0.0, 0.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert!(p_real(&[-10.0, 10.0, -10.0]) > 0.999);
        assert!(p_real(&[1000.0, 0.0, 0.0]) < 1e-6, "no overflow");
    }
}
