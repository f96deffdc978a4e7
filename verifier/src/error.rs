//! Why a verification did not produce a token: one stable machine-readable code per reason
//! (DESIGN.md §4), each with the message a person sees.

/// A refusal, as the API names it. Messages never contain any part of the image.
/// (`EnumIter` lets clients' tests check that they explain every code.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::EnumIter)]
pub enum VerifyError {
    #[error("no face was found; face the camera in good light, without sunglasses")]
    NoFace,
    #[error("more than one face is in the picture; only you should be in it")]
    MultipleFaces,
    #[error("the face is too small ({got} px, {min} px needed); come closer to the camera")]
    FaceTooSmall { got: u32, min: u32 },
    #[error("this does not look like a live photo of a person; take a new selfie with your camera")]
    SpoofDetected,
    #[error("the photo is not clear enough to decide; take another one facing the camera")]
    LowConfidence,
    #[error("unsupported image: {0}")]
    UnsupportedImage(&'static str),
    #[error("the image could not be decoded: it is corrupt or truncated")]
    CorruptImage,
    #[error("the image is too large: {0}")]
    ImageTooLarge(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("too many requests; try again in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the verifier is busy; try again in a moment")]
    Overloaded,
    #[error("internal error")]
    Internal,
}

impl VerifyError {
    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::NoFace => "no_face",
            VerifyError::MultipleFaces => "multiple_faces",
            VerifyError::FaceTooSmall { .. } => "face_too_small",
            VerifyError::SpoofDetected => "spoof_detected",
            VerifyError::LowConfidence => "low_confidence",
            VerifyError::UnsupportedImage(_) => "unsupported_image",
            VerifyError::CorruptImage => "corrupt_image",
            VerifyError::ImageTooLarge(_) => "image_too_large",
            VerifyError::BadRequest(_) => "bad_request",
            VerifyError::RateLimited { .. } => "rate_limited",
            VerifyError::Overloaded => "overloaded",
            VerifyError::Internal => "internal",
        }
    }

    /// The HTTP status the service answers with.
    pub fn status(&self) -> u16 {
        match self {
            VerifyError::ImageTooLarge(_) => 413,
            VerifyError::UnsupportedImage(_) => 415,
            VerifyError::BadRequest(_) => 400,
            VerifyError::RateLimited { .. } => 429,
            VerifyError::Overloaded => 503,
            VerifyError::Internal => 500,
            _ => 422,
        }
    }
}
