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
    PairUnknown,
    PairExpired,
    BadProof,
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
            ErrorCode::PairUnknown => {
                "This pairing code is unknown, was used or was cancelled. Run anonchat verify again in your terminal."
            }
            ErrorCode::PairExpired => {
                "This pairing code has expired. Run anonchat verify again in your terminal."
            }
            ErrorCode::BadProof => {
                "The terminal could not prove it holds the key this code was made for."
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

/// How a client paces a burst (the page does): one frame every `FRAME_INTERVAL_MS`, first
/// `LOOK_MS` looking at the camera, then `STEP_MS` for each step. Two steps make 20 frames in
/// 5 s: time for a person to read a prompt, turn, and hold.
pub const FRAME_INTERVAL_MS: u64 = 250;
pub const LOOK_MS: u64 = 1_000;
pub const STEP_MS: u64 = 2_000;
// A step lasts long enough for the hold (two frames) after a second to react.
const _: () = assert!(STEP_MS >= 1_000 + 2 * FRAME_INTERVAL_MS);

/// How a verifier makes tokens (`VERIFY_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// A head-turn challenge answered with a burst of camera frames.
    Active,
    /// A single still photo: for development only, since anyone's photo will do.
    Photo,
}

impl std::str::FromStr for VerifyMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "active" => Ok(VerifyMode::Active),
            "photo" => Ok(VerifyMode::Photo),
            other => Err(format!("{other:?}: expected active or photo")),
        }
    }
}

/// `GET /v1/info`: what a client needs to know before it verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierInfo {
    pub verify_mode: VerifyMode,
}

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
    fn the_paced_burst_of_two_steps_fits_the_frame_limits() {
        let frames = ((LOOK_MS + 2 * STEP_MS) / FRAME_INTERVAL_MS) as usize;
        assert!((MIN_FRAMES..=MAX_FRAMES).contains(&frames), "{frames}");
    }

    #[test]
    fn modes_parse_as_the_setting_names_them() {
        assert_eq!("Active".parse::<VerifyMode>(), Ok(VerifyMode::Active));
        assert_eq!(" photo".parse::<VerifyMode>(), Ok(VerifyMode::Photo));
        assert!("passive".parse::<VerifyMode>().is_err());
        assert_eq!(serde_json::to_value(VerifyMode::Photo).unwrap(), "photo");
    }

    #[test]
    fn every_code_is_named_as_serde_names_it_and_explained_in_a_sentence() {
        for code in ErrorCode::iter() {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            assert!(is_a_sentence(code.explain()), "{code:?}");
        }
    }
}
