//! The verifier's answer codes (DESIGN.md §4): why a verification did not produce a token. The
//! verifier's typed errors carry details; this is what crosses the wire and what a client
//! switches on.

use serde::{Deserialize, Serialize};

/// A refusal, as the API names it (`{"error": {"code": …}}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumIter)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NoFace,
    MultipleFaces,
    FaceTooSmall,
    SpoofDetected,
    LowConfidence,
    UnsupportedImage,
    CorruptImage,
    ImageTooLarge,
    BadRequest,
    RateLimited,
    Overloaded,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NoFace => "no_face",
            ErrorCode::MultipleFaces => "multiple_faces",
            ErrorCode::FaceTooSmall => "face_too_small",
            ErrorCode::SpoofDetected => "spoof_detected",
            ErrorCode::LowConfidence => "low_confidence",
            ErrorCode::UnsupportedImage => "unsupported_image",
            ErrorCode::CorruptImage => "corrupt_image",
            ErrorCode::ImageTooLarge => "image_too_large",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Internal => "internal",
        }
    }

    /// What the code means to a person; the page shows it (through its generated constants).
    pub fn explain(self) -> &'static str {
        match self {
            ErrorCode::NoFace => "No face was found. Face the camera in good light and try again.",
            ErrorCode::MultipleFaces => {
                "More than one face is in the picture. Make sure you are alone in it."
            }
            ErrorCode::FaceTooSmall => {
                "Your face is too small in the picture. Come closer to the camera."
            }
            ErrorCode::SpoofDetected => {
                "This looks like a photo of a photo or a screen, not a live selfie. Please use your camera."
            }
            ErrorCode::LowConfidence => {
                "The picture is not clear enough. Try again in better light."
            }
            ErrorCode::UnsupportedImage => {
                "This kind of image is not supported. Use a JPEG, PNG or WebP photo."
            }
            ErrorCode::CorruptImage => "The image could not be read. Try another one.",
            ErrorCode::ImageTooLarge => "The image is too large. Try a smaller photo.",
            ErrorCode::BadRequest => {
                "The verification request was not understood. Reload the page and try again."
            }
            ErrorCode::RateLimited => "Too many tries. Wait a minute and try again.",
            ErrorCode::Overloaded => "The verifier is busy. Try again in a moment.",
            ErrorCode::Internal => "Something went wrong on the server. Try again in a moment.",
        }
    }
}
