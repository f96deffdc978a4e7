//! Turning untrusted bytes into RGB pixels. Everything that bounds memory is decided from the
//! file's header, before any pixel is decoded: bytes, pixels, and the bytes the decoder itself
//! will hold (a 300 KB PNG of zeros can unpack to 300 MB of 16-bit pixels). The decoded image is
//! then converted, shrunk to a working size and turned upright in one pass, into one RGB buffer;
//! every pixel buffer is wiped when dropped.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use zeroize::Zeroize;

use crate::error::VerifyError;
use crate::vision::resize::View;

/// Limits on untrusted images.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    pub max_bytes: usize,
    pub max_pixels: u64,
    /// Bytes the decoder may hold for one image: its output in the file's own pixel format,
    /// plus its own working buffers (see [`decode`]).
    pub max_decoded_bytes: u64,
    /// Longer side of the image the models see; larger images are shrunk by an integer factor
    /// while they are converted (faces in a selfie stay hundreds of pixels wide).
    pub working_side: u32,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_bytes: 8 * 1024 * 1024,
            max_pixels: 40_000_000,
            max_decoded_bytes: 48 * 1024 * 1024,
            working_side: 2560,
        }
    }
}

/// Decoded 8-bit RGB pixels, upright. The buffer is zeroized on drop.
pub struct Pixels {
    data: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

impl Pixels {
    pub fn view(&self) -> View<'_> {
        View::new(&self.data, self.width, self.height)
    }
}

impl Drop for Pixels {
    fn drop(&mut self) {
        self.data.zeroize();
    }
}

impl std::fmt::Debug for Pixels {
    // Never print pixels.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pixels({}x{})", self.width, self.height)
    }
}

/// Decodes a JPEG, PNG or WebP image within `limits`.
pub fn decode(bytes: &[u8], limits: ImageLimits) -> Result<Pixels, VerifyError> {
    if bytes.len() > limits.max_bytes {
        return Err(VerifyError::ImageTooLarge(format!(
            "{} bytes, at most {} allowed",
            bytes.len(),
            limits.max_bytes
        )));
    }
    if bytes.is_empty() {
        return Err(VerifyError::UnsupportedImage("the image is empty"));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| VerifyError::UnsupportedImage("unreadable image"))?;
    let format = reader.format();
    match format {
        Some(ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
            return Err(VerifyError::CorruptImage);
        }
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP) => {}
        _ => {
            return Err(VerifyError::UnsupportedImage(
                "only JPEG, PNG and WebP images are accepted",
            ));
        }
    }
    // A second guard inside the decoders, for allocations the estimate below does not see.
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.max_decoded_bytes.saturating_mul(2));
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(map_image_error)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(VerifyError::CorruptImage);
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(VerifyError::ImageTooLarge(format!(
            "{w}x{h} pixels, at most {} allowed",
            limits.max_pixels
        )));
    }
    // What a decoder holds beside its output: a progressive JPEG keeps every coefficient (two
    // bytes per sample) until the last scan; a WebP decoder works in 32-bit ARGB before it
    // converts (measured: a lossless 4000x4000 WebP took 112 MB with an output of 48 MB).
    let working = match format {
        Some(ImageFormat::Jpeg) => jpeg_frame(bytes)
            .filter(|f| f.progressive)
            .map_or(0, |f| pixels * u64::from(f.components) * 2),
        Some(ImageFormat::WebP) => pixels * 4,
        _ => 0,
    };
    let cost = decoder.total_bytes().saturating_add(working);
    if cost > limits.max_decoded_bytes {
        return Err(VerifyError::ImageTooLarge(format!(
            "{w}x{h} pixels of {:?} need {} MB to decode, at most {} MB allowed",
            decoder.color_type(),
            cost.div_ceil(1_000_000),
            limits.max_decoded_bytes / 1_000_000
        )));
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(map_image_error)?;
    Ok(upright_rgb(image, orientation, limits.working_side))
}

/// The image as upright 8-bit RGB no larger than `working_side`, in one pass and one new
/// buffer (none at all when it is already upright RGB of a working size).
fn upright_rgb(image: DynamicImage, orientation: Orientation, working_side: u32) -> Pixels {
    let (w, h) = (image.width(), image.height());
    let factor = w.max(h).div_ceil(working_side.max(1)).max(1);
    if factor == 1
        && orientation == Orientation::NoTransforms
        && let DynamicImage::ImageRgb8(buffer) = image
    {
        return Pixels {
            data: buffer.into_raw(),
            width: w as usize,
            height: h as usize,
        };
    }
    let pixels = match &image {
        DynamicImage::ImageRgb8(b) => shrink(w, h, factor, orientation, |x, y| b.get_pixel(x, y).0),
        DynamicImage::ImageRgba8(b) => shrink(w, h, factor, orientation, |x, y| {
            let [r, g, b, _] = b.get_pixel(x, y).0;
            [r, g, b]
        }),
        DynamicImage::ImageLuma8(b) => shrink(w, h, factor, orientation, |x, y| {
            let [v] = b.get_pixel(x, y).0;
            [v, v, v]
        }),
        // Rare formats (16-bit, float, grey with alpha): the generic, slower accessor.
        other => shrink(w, h, factor, orientation, |x, y| {
            let [r, g, b, _] = image::GenericImageView::get_pixel(other, x, y).0;
            [r, g, b]
        }),
    };
    wipe(image);
    pixels
}

/// Averages `factor`×`factor` blocks of a `w`×`h` image read through `pixel`, and writes each
/// average where `orientation` puts it.
fn shrink(
    w: u32,
    h: u32,
    factor: u32,
    orientation: Orientation,
    pixel: impl Fn(u32, u32) -> [u8; 3],
) -> Pixels {
    let (sw, sh) = (w.div_ceil(factor) as usize, h.div_ceil(factor) as usize);
    let swapped = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (ow, oh) = if swapped { (sh, sw) } else { (sw, sh) };
    let mut data = vec![0u8; ow * oh * 3];
    for by in 0..sh {
        for bx in 0..sw {
            let (x0, y0) = (bx as u32 * factor, by as u32 * factor);
            let (x1, y1) = ((x0 + factor).min(w), (y0 + factor).min(h));
            let mut sum = [0u32; 3];
            for y in y0..y1 {
                for x in x0..x1 {
                    let p = pixel(x, y);
                    for c in 0..3 {
                        sum[c] += u32::from(p[c]);
                    }
                }
            }
            let n = (x1 - x0) * (y1 - y0);
            let (ox, oy) = place(orientation, bx, by, sw, sh);
            let at = (oy * ow + ox) * 3;
            for c in 0..3 {
                data[at + c] = ((sum[c] + n / 2) / n) as u8;
            }
        }
    }
    Pixels {
        data,
        width: ow,
        height: oh,
    }
}

/// Where pixel (`x`, `y`) of a `w`×`h` image lands once `orientation` is applied (EXIF's
/// meaning, as the `image` crate's `apply_orientation` does it).
fn place(orientation: Orientation, x: usize, y: usize, w: usize, h: usize) -> (usize, usize) {
    match orientation {
        Orientation::NoTransforms => (x, y),
        Orientation::Rotate90 => (h - 1 - y, x),
        Orientation::Rotate180 => (w - 1 - x, h - 1 - y),
        Orientation::Rotate270 => (y, w - 1 - x),
        Orientation::FlipHorizontal => (w - 1 - x, y),
        Orientation::FlipVertical => (x, h - 1 - y),
        Orientation::Rotate90FlipH => (y, x),
        Orientation::Rotate270FlipH => (h - 1 - y, w - 1 - x),
    }
}

/// What a JPEG's frame header says about the decoder's work.
struct JpegFrame {
    progressive: bool,
    components: u8,
}

/// Reads the first start-of-frame segment, walking the segments from the start of the file.
fn jpeg_frame(bytes: &[u8]) -> Option<JpegFrame> {
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        // Markers that stand alone, without a length: TEM, RSTn, SOI.
        if marker == 0x01 || (0xD0..=0xD8).contains(&marker) {
            i += 2;
            continue;
        }
        let length = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            return Some(JpegFrame {
                progressive: matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE),
                components: *bytes.get(i + 9)?,
            });
        }
        if marker == 0xDA {
            return None;
        }
        i += 2 + length;
    }
    None
}

/// Whether a JPEG has an end-of-image marker after its last scan. The JPEG decoder is lenient
/// and paints missing rows grey, so a half-uploaded selfie would otherwise still be judged.
/// Entropy-coded data cannot contain `FF D9` (it stuffs `FF 00`), and an EXIF thumbnail's own
/// markers all come before the main image's scans.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    // Backwards from the end, the first of the two markers decides: a complete file answers in
    // its last two bytes.
    let last = bytes
        .windows(2)
        .rev()
        .find(|w| w[0] == 0xFF && (w[1] == 0xD9 || w[1] == 0xDA));
    last.is_some_and(|w| w[1] == 0xD9)
}

/// Zeroizes a decoded image of any pixel type.
fn wipe(image: DynamicImage) {
    match image {
        DynamicImage::ImageLuma8(b) => b.into_raw().zeroize(),
        DynamicImage::ImageLumaA8(b) => b.into_raw().zeroize(),
        DynamicImage::ImageRgb8(b) => b.into_raw().zeroize(),
        DynamicImage::ImageRgba8(b) => b.into_raw().zeroize(),
        DynamicImage::ImageLuma16(b) => b.into_raw().zeroize(),
        DynamicImage::ImageLumaA16(b) => b.into_raw().zeroize(),
        DynamicImage::ImageRgb16(b) => b.into_raw().zeroize(),
        DynamicImage::ImageRgba16(b) => b.into_raw().zeroize(),
        DynamicImage::ImageRgb32F(b) => b.into_raw().zeroize(),
        DynamicImage::ImageRgba32F(b) => b.into_raw().zeroize(),
        // A future pixel type: the global wiping allocator of the binary still clears it on free.
        _ => {}
    }
}

fn map_image_error(e: image::ImageError) -> VerifyError {
    use image::ImageError as E;
    match e {
        E::Limits(_) => {
            VerifyError::ImageTooLarge("the image needs more memory than allowed to decode".into())
        }
        E::Unsupported(_) => {
            VerifyError::UnsupportedImage("this variant of the format is not supported")
        }
        E::Decoding(_) | E::IoError(_) | E::Parameter(_) | E::Encoding(_) => {
            VerifyError::CorruptImage
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 20, 30]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn decodes_a_png() {
        let p = decode(&png(3, 2), ImageLimits::default()).unwrap();
        assert_eq!((p.width, p.height), (3, 2));
        assert_eq!(&p.data[..3], &[10, 20, 30]);
    }

    #[test]
    fn refuses_bad_input_with_typed_errors() {
        let limits = ImageLimits::default();
        assert!(matches!(
            decode(b"", limits),
            Err(VerifyError::UnsupportedImage(_))
        ));
        assert!(matches!(
            decode(b"hello, I am not an image", limits),
            Err(VerifyError::UnsupportedImage(_))
        ));
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        assert!(matches!(
            decode(gif, limits),
            Err(VerifyError::UnsupportedImage(_))
        ));
        let truncated = &png(64, 64)[..60];
        assert!(matches!(
            decode(truncated, limits),
            Err(VerifyError::CorruptImage)
        ));
        let small = ImageLimits {
            max_bytes: 10,
            ..limits
        };
        assert!(matches!(
            decode(&png(3, 2), small),
            Err(VerifyError::ImageTooLarge(_))
        ));
        let few_pixels = ImageLimits {
            max_pixels: 5,
            ..limits
        };
        assert!(matches!(
            decode(&png(3, 2), few_pixels),
            Err(VerifyError::ImageTooLarge(_))
        ));
    }

    #[test]
    fn a_jpeg_cut_short_is_corrupt() {
        let img =
            image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 99]));
        let mut jpeg = Vec::new();
        img.write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        assert!(decode(&jpeg, ImageLimits::default()).is_ok());
        let cut = &jpeg[..jpeg.len() - 40];
        let got = decode(cut, ImageLimits::default());
        assert!(matches!(got, Err(VerifyError::CorruptImage)), "{got:?}");
    }

    #[test]
    fn a_header_claiming_ten_gigapixels_is_refused_before_decoding() {
        let mut bytes = png(1, 1);
        // IHDR width and height live at bytes 16..24; its CRC is not checked before dimensions.
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let got = decode(&bytes, ImageLimits::default());
        assert!(
            matches!(
                got,
                Err(VerifyError::ImageTooLarge(_) | VerifyError::CorruptImage)
            ),
            "{got:?}"
        );
    }

    #[test]
    fn every_orientation_lands_where_the_image_crate_puts_it() {
        let source = image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8, y as u8, 7]));
        for exif in 1..=8u8 {
            let orientation = Orientation::from_exif(exif).unwrap();
            let mut expected = DynamicImage::ImageRgb8(source.clone());
            expected.apply_orientation(orientation);
            let got = upright_rgb(DynamicImage::ImageRgb8(source.clone()), orientation, 2560);
            assert_eq!(
                (got.width as u32, got.height as u32),
                (expected.width(), expected.height()),
                "{orientation:?}"
            );
            assert_eq!(got.data, expected.to_rgb8().into_raw(), "{orientation:?}");
        }
    }

    #[test]
    fn large_images_are_shrunk_by_whole_blocks_while_converted() {
        // 16-bit grey with alpha, 7x4, shrunk by 2 (working side 4): averages of 2x2 blocks,
        // the last column a block of 1x2.
        let source = image::ImageBuffer::<image::LumaA<u16>, _>::from_fn(7, 4, |x, _| {
            image::LumaA([if x % 2 == 0 { 0 } else { 0xFFFF }, 0xFFFF])
        });
        let got = upright_rgb(DynamicImage::ImageLumaA16(source), Orientation::Rotate90, 4);
        assert_eq!((got.width, got.height), (2, 4));
        // Columns 0-5 average to mid-grey; column 6 (x even) is black; rotated, it is the last row.
        assert_eq!(&got.data[..3], &[128, 128, 128]);
        assert_eq!(&got.data[got.data.len() - 3..], &[0, 0, 0]);
    }

    #[test]
    fn sixteen_bit_pixels_count_twice_against_the_decoding_budget() {
        let img =
            image::ImageBuffer::<image::Rgba<u16>, _>::from_pixel(64, 64, image::Rgba([0; 4]));
        let mut png16 = Vec::new();
        DynamicImage::ImageRgba16(img)
            .write_to(&mut Cursor::new(&mut png16), ImageFormat::Png)
            .unwrap();
        let limits = ImageLimits {
            max_decoded_bytes: 64 * 64 * 8 - 1,
            ..ImageLimits::default()
        };
        let got = decode(&png16, limits);
        assert!(matches!(got, Err(VerifyError::ImageTooLarge(_))), "{got:?}");
        let enough = ImageLimits {
            max_decoded_bytes: 64 * 64 * 8,
            ..limits
        };
        assert_eq!(decode(&png16, enough).unwrap().width, 64);
    }

    #[test]
    fn the_jpeg_frame_header_is_found_past_other_segments() {
        let img = image::RgbImage::from_pixel(33, 17, image::Rgb([1, 2, 3]));
        let mut jpeg = Vec::new();
        img.write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        let frame = jpeg_frame(&jpeg).unwrap();
        assert!(!frame.progressive);
        assert_eq!(frame.components, 3);
        // The same header, marked progressive (SOF2).
        let at = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[at + 1] = 0xC2;
        assert!(jpeg_frame(&jpeg).unwrap().progressive);
        assert!(jpeg_frame(&jpeg[..at]).is_none());
    }
}
