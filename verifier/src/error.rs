//! Why a verification did not produce a token: one stable machine-readable code per reason
//! (DESIGN.md §4, `anonchat_protocol::verify::ErrorCode`), each with the message a person sees.

use anonchat_protocol::verify::ErrorCode;

/// A refusal, with its details. Messages never contain any part of the image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    #[error(
        "a single photo is not accepted: ask for a challenge (POST /v1/challenge) and send its burst of frames"
    )]
    ChallengeRequired,
    #[error("unknown or used challenge, or one given to another device; ask for a new one")]
    ChallengeUnknown,
    #[error("the challenge expired; ask for a new one and answer within a minute")]
    ChallengeExpired,
    /// The message is the hint alone ("turn your head further to your left"): clients show it
    /// after their own sentence for the code.
    #[error("{0}")]
    ChallengeNotFollowed(String),
    #[error("the frames do not all show the same person")]
    NotSamePerson,
    #[error("unknown, used or cancelled pairing code; run anonchat verify again")]
    PairUnknown,
    #[error("the pairing code expired; run anonchat verify again")]
    PairExpired,
    #[error("the signature does not prove the key this code was made for")]
    BadProof,
}

impl From<crate::challenge::Refusal> for VerifyError {
    fn from(r: crate::challenge::Refusal) -> Self {
        use crate::challenge::Refusal;
        match r {
            Refusal::Empty => VerifyError::BadRequest("no frames".into()),
            Refusal::NotSamePerson { .. } | Refusal::Jumped { .. } => VerifyError::NotSamePerson,
            // A picture that tilts, or a frontal face the liveness model calls a spoof.
            Refusal::Flat { .. } | Refusal::NotLive { .. } => VerifyError::SpoofDetected,
            Refusal::NotFrontalFirst | Refusal::StepMissed { .. } | Refusal::Timing => {
                VerifyError::ChallengeNotFollowed(r.to_string())
            }
        }
    }
}

impl VerifyError {
    /// The stable code clients switch on.
    pub fn kind(&self) -> ErrorCode {
        match self {
            VerifyError::NoFace => ErrorCode::NoFace,
            VerifyError::MultipleFaces => ErrorCode::MultipleFaces,
            VerifyError::FaceTooSmall { .. } => ErrorCode::FaceTooSmall,
            VerifyError::SpoofDetected => ErrorCode::SpoofDetected,
            VerifyError::LowConfidence => ErrorCode::LowConfidence,
            VerifyError::UnsupportedImage(_) => ErrorCode::UnsupportedImage,
            VerifyError::CorruptImage => ErrorCode::CorruptImage,
            VerifyError::ImageTooLarge(_) => ErrorCode::ImageTooLarge,
            VerifyError::BadRequest(_) => ErrorCode::BadRequest,
            VerifyError::RateLimited { .. } => ErrorCode::RateLimited,
            VerifyError::Overloaded => ErrorCode::Overloaded,
            VerifyError::Internal => ErrorCode::Internal,
            VerifyError::ChallengeRequired => ErrorCode::ChallengeRequired,
            VerifyError::ChallengeUnknown => ErrorCode::ChallengeUnknown,
            VerifyError::ChallengeExpired => ErrorCode::ChallengeExpired,
            VerifyError::ChallengeNotFollowed(_) => ErrorCode::ChallengeNotFollowed,
            VerifyError::NotSamePerson => ErrorCode::NotSamePerson,
            VerifyError::PairUnknown => ErrorCode::PairUnknown,
            VerifyError::PairExpired => ErrorCode::PairExpired,
            VerifyError::BadProof => ErrorCode::BadProof,
        }
    }

    /// [`Self::kind`] as the API spells it.
    pub fn code(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The HTTP status the service answers with.
    pub fn status(&self) -> u16 {
        match self {
            VerifyError::ImageTooLarge(_) => 413,
            VerifyError::UnsupportedImage(_) => 415,
            VerifyError::BadRequest(_)
            | VerifyError::ChallengeRequired
            | VerifyError::ChallengeUnknown
            | VerifyError::ChallengeExpired => 400,
            VerifyError::BadProof => 403,
            VerifyError::PairUnknown => 404,
            VerifyError::PairExpired => 410,
            VerifyError::RateLimited { .. } => 429,
            VerifyError::Overloaded => 503,
            VerifyError::Internal => 500,
            _ => 422,
        }
    }
}
