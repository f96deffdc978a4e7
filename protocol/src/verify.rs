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
        }
    }
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
