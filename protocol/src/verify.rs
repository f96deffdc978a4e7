//! The verifier's answer codes (DESIGN.md §4): why a verification did not produce a token. The
//! verifier's typed errors carry details; this is what crosses the wire and what a client
//! switches on.

use serde::{Deserialize, Serialize};

/// A refusal, as the API names it (`{"error": {"code": …}}`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
    ChallengeRequired,
    ChallengeUnknown,
    ChallengeExpired,
    ChallengeNotFollowed,
    NotSamePerson,
}

impl ErrorCode {
    /// The code as the wire spells it (serde's name, through strum's; a test holds them equal).
    pub fn as_str(self) -> &'static str {
        self.into()
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
            ErrorCode::ChallengeRequired => {
                "A single photo is not enough here: follow the head-turn steps with your camera."
            }
            ErrorCode::ChallengeUnknown => {
                "This head-turn challenge is unknown or was used already. Start again."
            }
            ErrorCode::ChallengeExpired => {
                "The head-turn challenge ran out of time. Start again and follow the steps."
            }
            ErrorCode::ChallengeNotFollowed => {
                "The head turns did not follow the steps. Start again and turn as asked."
            }
            ErrorCode::NotSamePerson => {
                "The frames do not all show the same person. Start again, alone in front of the camera."
            }
        }
    }
}

/// One commanded head turn, in the person's own terms: "left" is their left, which moves the
/// nose toward the right of an unmirrored frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Left,
    Right,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Left => "left",
            Step::Right => "right",
        }
    }
}

/// Frames a head-turn burst may have: at about 5 a second, enough to see two turns held.
pub const MIN_FRAMES: usize = 8;
pub const MAX_FRAMES: usize = 20;
/// How long a challenge may be answered, in seconds.
pub const CHALLENGE_TTL_SECONDS: i64 = 60;

/// `POST /v1/challenge`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// The device's Ed25519 public key, base64url (32 bytes).
    pub public_key: String,
}

/// `POST /v1/challenge`'s answer: turn as `steps` say, in that order, and send the burst with
/// `challenge_id` before `expires_at` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub challenge_id: String,
    pub steps: Vec<Step>,
    pub expires_at: i64,
    pub min_frames: usize,
    pub max_frames: usize,
}

/// What a person can be shown: a whole sentence, not a code.
#[cfg(test)]
pub(crate) fn is_a_sentence(text: &str) -> bool {
    text.len() >= 20 && text.ends_with('.') && !text.contains('_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn every_code_is_named_as_serde_names_it_and_explained_in_a_sentence() {
        for code in ErrorCode::iter() {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            assert!(is_a_sentence(code.explain()), "{code:?}");
        }
    }
}
