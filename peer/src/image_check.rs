//! Received images, checked by decoding them within bounds before anyone shows or saves them
//! (the frames that carry them are `anonchat_protocol::chat`).

use anonchat_protocol::chat::{ChatError, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS};

/// Bytes a decoder may allocate for one received image (16-bit RGBA at the pixel limit).
const MAX_DECODE_ALLOC: u64 = MAX_IMAGE_PIXELS * 8;

/// Decodes `bytes` completely (so that a broken or hostile file is refused before anyone shows
/// or saves it) and returns its MIME type. Dimensions and memory are bounded.
pub fn check_image(bytes: &[u8]) -> Result<ImageInfo, ChatError> {
    use image::ImageDecoder;
    if bytes.is_empty() || bytes.len() > MAX_IMAGE_BYTES {
        return Err(ChatError::ImageTooLarge);
    }
    let undecodable = |e: image::ImageError| ChatError::Undecodable(e.to_string());
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ChatError::Undecodable(e.to_string()))?;
    let mime = match reader.format() {
        Some(image::ImageFormat::Jpeg) => "image/jpeg",
        Some(image::ImageFormat::Png) => "image/png",
        Some(image::ImageFormat::WebP) => "image/webp",
        _ => return Err(ChatError::ImageType),
    };
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(undecodable)?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS {
        return Err(ChatError::TooManyPixels {
            width: w,
            height: h,
        });
    }
    image::DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    Ok(ImageInfo {
        mime,
        width: w,
        height: h,
    })
}

/// What checking an image found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_claiming_too_many_pixels_is_refused_from_its_header() {
        // 72 MB of 16-bit pixels in a few kilobytes of PNG.
        let png16 = |w: u32, h: u32| {
            let zeros = image::ImageBuffer::<image::Rgba<u16>, _>::new(w, h);
            let mut out = Vec::new();
            image::DynamicImage::ImageRgba16(zeros)
                .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                .unwrap();
            out
        };
        let bomb = png16(3000, 3000);
        assert!(bomb.len() <= MAX_IMAGE_BYTES, "{}", bomb.len());
        assert_eq!(
            check_image(&bomb),
            Err(ChatError::TooManyPixels {
                width: 3000,
                height: 3000
            })
        );
        // At the limit, 16-bit and all, it still decodes.
        assert_eq!(check_image(&png16(2048, 2048)).unwrap().mime, "image/png");
    }
}
