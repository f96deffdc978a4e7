//! Pure image arithmetic for the three models: no ONNX Runtime, no I/O. Each function follows a
//! recipe of `shared/models/MODELS.md` to the letter, because the models learned those exact
//! pixels (an antialiasing resizer, for one, halves MiniFASNet's scores on real faces).
//!
//! Conventions: images are 8-bit RGB, pixel (x, y) has its centre at integer coordinates, boxes
//! are `(x, y, w, h)` in image pixels.

pub mod chip;
pub mod detect;
pub mod embed;
pub mod liveness;
pub mod resize;

/// A rectangle `(x, y, w, h)` in image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxF {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl BoxF {
    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    /// Intersection over union of two rectangles.
    pub fn iou(&self, other: &BoxF) -> f32 {
        let ix = (self.x + self.w).min(other.x + other.w) - self.x.max(other.x);
        let iy = (self.y + self.h).min(other.y + other.h) - self.y.max(other.y);
        if ix <= 0.0 || iy <= 0.0 {
            return 0.0;
        }
        let inter = ix * iy;
        inter / (self.area() + other.area() - inter)
    }
}

/// One detected face: box, score and YuNet's five landmarks (right eye, left eye, nose tip,
/// right and left mouth corners; "right" is the subject's right, on the image's left).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    pub score: f32,
    pub bbox: BoxF,
    pub landmarks: [[f32; 2]; 5],
}

/// Writes interleaved RGB bytes as planar float32 channels in the given order
/// (`[2, 1, 0]` for BGR planes), mapping each value through `f`.
pub fn planar(rgb: &[u8], order: [usize; 3], out: &mut [f32], f: impl Fn(usize, u8) -> f32) {
    let n = rgb.len() / 3;
    debug_assert!(out.len() >= 3 * n);
    for (plane, &channel) in order.iter().enumerate() {
        let dst = &mut out[plane * n..(plane + 1) * n];
        for (d, px) in dst.iter_mut().zip(rgb.chunks_exact(3)) {
            *d = f(channel, px[channel]);
        }
    }
}
