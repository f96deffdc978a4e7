//! Turning untrusted bytes into RGB pixels: format, byte and pixel limits checked before any
//! pixel is decoded, EXIF orientation applied, and every pixel buffer wiped when dropped.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use zeroize::Zeroize;

use crate::error::VerifyError;
use crate::vision::resize::View;

/// Limits on untrusted images.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    pub max_bytes: usize,
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_bytes: 8 * 1024 * 1024,
            max_pixels: 40_000_000,
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
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| VerifyError::UnsupportedImage("unreadable image"))?;
    match reader.format() {
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
    let mut decoder = reader.into_decoder().map_err(map_image_error)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(VerifyError::CorruptImage);
    }
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(VerifyError::ImageTooLarge(format!(
            "{w}x{h} pixels, at most {} allowed",
            limits.max_pixels
        )));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(map_image_error)?;
    image.apply_orientation(orientation);
    let (width, height) = (image.width() as usize, image.height() as usize);
    let data = match image {
        DynamicImage::ImageRgb8(buffer) => buffer.into_raw(),
        other => {
            let rgb = other.to_rgb8().into_raw();
            wipe(other);
            rgb
        }
    };
    Ok(Pixels {
        data,
        width,
        height,
    })
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
}
