//! The chat protocol between two peers (DESIGN.md §6), transport-independent and pure: JSON text
//! frames, images as binary chunks of at most 16 KiB, and the checks each side applies — size
//! limits, e-mail addresses and phone numbers, and the safety code both sides display.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::Digest;

pub const VERSION: u32 = 1;
/// The WebRTC data channel's label.
pub const DATA_CHANNEL: &str = "anonchat";
/// How long setting a connection up may take, on either client: behind NATs a relayed path is
/// found within a second or two, and a user who cannot be reached should hear so while still at
/// the screen.
pub const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// What both sides hash with their fingerprints into the safety code.
pub const SAFETY_CONTEXT: &str = "anonchat-safety-v1";
pub const MAX_TEXT_CHARS: usize = 2000;
pub const MAX_IMAGE_BYTES: usize = 1024 * 1024;
/// Largest image either side decodes, in pixels (2048 x 2048), read from its header first:
/// a megabyte of PNG can claim hundreds of megabytes of pixels. The page's `MAX_IMAGE_PIXELS`.
pub const MAX_IMAGE_PIXELS: u64 = 2048 * 2048;
pub const CHUNK_BYTES: usize = 16 * 1024;
pub const MAX_ID_BYTES: usize = 64;
pub const IMAGE_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];

/// A text frame on the data channel (or the libp2p stream).
/// (`VariantNames` gives every frame's `type`, for the page.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[strum(serialize_all = "snake_case")]
pub enum ChatFrame {
    Hello {
        v: u32,
    },
    Msg {
        id: String,
        text: String,
    },
    Ack {
        id: String,
    },
    Typing {
        on: bool,
    },
    /// Announces `chunks` binary frames that follow, `size` bytes in all.
    Image {
        id: String,
        mime: String,
        size: usize,
        chunks: usize,
    },
    Bye {},
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("not a chat frame: {0}")]
    Malformed(String),
    #[error("messages are at most {MAX_TEXT_CHARS} characters")]
    TextTooLong,
    #[error("images are at most {MAX_IMAGE_BYTES} bytes")]
    ImageTooLarge,
    #[error("only JPEG, PNG and WebP images can be sent")]
    ImageType,
    #[error("the image is {width}x{height} pixels; at most {MAX_IMAGE_PIXELS} pixels are allowed")]
    TooManyPixels { width: u32, height: u32 },
    #[error("the image's chunks do not add up")]
    BadChunks,
    #[error("an id is too long")]
    IdTooLong,
    #[error("the image could not be decoded: {0}")]
    Undecodable(String),
}

impl ChatFrame {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("chat frames serialize")
    }
}

/// Parses a text frame from the partner, with every limit checked.
pub fn parse(text: &str) -> Result<ChatFrame, ChatError> {
    if text.len() > 4 * MAX_TEXT_CHARS + 1024 {
        return Err(ChatError::TextTooLong);
    }
    let frame: ChatFrame = serde_json::from_str(text)
        .map_err(|e| ChatError::Malformed(e.to_string().chars().take(120).collect()))?;
    match &frame {
        ChatFrame::Msg { id, text } => {
            check_id(id)?;
            if text.chars().count() > MAX_TEXT_CHARS {
                return Err(ChatError::TextTooLong);
            }
        }
        ChatFrame::Ack { id } => check_id(id)?,
        ChatFrame::Image {
            id,
            mime,
            size,
            chunks,
        } => {
            check_id(id)?;
            if !IMAGE_TYPES.contains(&mime.as_str()) {
                return Err(ChatError::ImageType);
            }
            if *size == 0 || *size > MAX_IMAGE_BYTES {
                return Err(ChatError::ImageTooLarge);
            }
            if *chunks != size.div_ceil(CHUNK_BYTES) {
                return Err(ChatError::BadChunks);
            }
        }
        ChatFrame::Hello { .. } | ChatFrame::Typing { .. } | ChatFrame::Bye {} => {}
    }
    Ok(frame)
}

fn check_id(id: &str) -> Result<(), ChatError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        Err(ChatError::IdTooLong)
    } else {
        Ok(())
    }
}

/// The frames that send `image`: the announcement, then its chunks.
pub fn image_frames<'a>(
    id: &str,
    mime: &str,
    image: &'a [u8],
) -> Result<(ChatFrame, impl Iterator<Item = &'a [u8]>), ChatError> {
    if image.is_empty() || image.len() > MAX_IMAGE_BYTES {
        return Err(ChatError::ImageTooLarge);
    }
    if !IMAGE_TYPES.contains(&mime) {
        return Err(ChatError::ImageType);
    }
    let header = ChatFrame::Image {
        id: id.into(),
        mime: mime.into(),
        size: image.len(),
        chunks: image.len().div_ceil(CHUNK_BYTES),
    };
    Ok((header, image.chunks(CHUNK_BYTES)))
}

/// Collects an announced image's chunks.
pub struct ImageAssembler {
    pub id: String,
    pub mime: String,
    size: usize,
    chunks_left: usize,
    data: Vec<u8>,
}

impl ImageAssembler {
    /// For a parsed `image` frame.
    pub fn new(frame: &ChatFrame) -> Option<Self> {
        match frame {
            ChatFrame::Image {
                id,
                mime,
                size,
                chunks,
            } => Some(ImageAssembler {
                id: id.clone(),
                mime: mime.clone(),
                size: *size,
                chunks_left: *chunks,
                data: Vec::with_capacity(*size),
            }),
            _ => None,
        }
    }

    /// Adds a chunk; returns the whole image after the last one.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Option<Vec<u8>>, ChatError> {
        if self.chunks_left == 0
            || chunk.is_empty()
            || chunk.len() > CHUNK_BYTES
            || self.data.len() + chunk.len() > self.size
        {
            return Err(ChatError::BadChunks);
        }
        self.data.extend_from_slice(chunk);
        self.chunks_left -= 1;
        match (self.chunks_left, self.data.len() == self.size) {
            (0, true) => Ok(Some(std::mem::take(&mut self.data))),
            (0, false) => Err(ChatError::BadChunks),
            _ => Ok(None),
        }
    }
}

/// An e-mail address, also written with "(at)" or "[at]", matched case-insensitively. The page
/// runs the same pattern (a JavaScript `RegExp` with the `i` flag), so it keeps to the syntax
/// both engines read alike.
pub const EMAIL_PATTERN: &str =
    r"[a-z0-9._%+-]+\s*(@|\(at\)|\[at\])\s*[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}";
/// A run that may be a phone number: digits with the usual separators. It counts when it holds
/// at least [`PHONE_MIN_DIGITS`] digits (dates, at 8, do not).
pub const PHONE_PATTERN: &str = r"\+?\(?[0-9][0-9\s().-]{7,}[0-9]";
pub const PHONE_MIN_DIGITS: usize = 9;

/// Whether a message carries an e-mail address or a phone number: the sender refuses it unless
/// the user insists, the receiver flags it.
pub fn contains_contact_details(text: &str) -> bool {
    static EMAIL: OnceLock<regex::Regex> = OnceLock::new();
    static PHONE: OnceLock<regex::Regex> = OnceLock::new();
    let email = EMAIL.get_or_init(|| {
        regex::RegexBuilder::new(EMAIL_PATTERN)
            .case_insensitive(true)
            .build()
            .expect("valid")
    });
    let phone = PHONE.get_or_init(|| regex::Regex::new(PHONE_PATTERN).expect("valid"));
    email.is_match(text)
        || phone
            .find_iter(text)
            .any(|m| m.as_str().chars().filter(char::is_ascii_digit).count() >= PHONE_MIN_DIGITS)
}

/// The first `a=fingerprint:` of a session description, upper-cased (`SHA-256 AB:CD:…`), or
/// empty: what each side feeds [`safety_code`].
pub fn sdp_fingerprint(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=fingerprint:"))
        .map(str::to_ascii_uppercase)
        .unwrap_or_default()
}

/// The short code both partners see, from both sides' DTLS fingerprints (or Noise keys): if
/// someone in the middle swapped them, the two codes differ.
pub fn safety_code(mine: &str, theirs: &str) -> String {
    let (a, b) = if mine <= theirs {
        (mine, theirs)
    } else {
        (theirs, mine)
    };
    let digest = sha2::Sha256::digest(format!("{SAFETY_CONTEXT}\n{a}\n{b}").as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 1_000_000_000_000;
    let digits = format!("{n:012}");
    format!("{} {} {}", &digits[..4], &digits[4..8], &digits[8..])
}

/// `text` made inert for a terminal: control characters (C0, DEL and C1, with which every escape
/// sequence starts) and the bidirectional controls (which reorder what follows them on the line)
/// become U+FFFD, so that what a partner sends is shown, never obeyed. Line breaks and tabs
/// become spaces: one message is one entry.
pub fn inert(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '\u{fffd}',
            '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' => '\u{fffd}',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_the_documented_shape() {
        let mut types = Vec::new();
        for (frame, json) in [
            (ChatFrame::Hello { v: 1 }, r#"{"type":"hello","v":1}"#),
            (
                ChatFrame::Msg {
                    id: "m1".into(),
                    text: "hi".into(),
                },
                r#"{"type":"msg","id":"m1","text":"hi"}"#,
            ),
            (
                ChatFrame::Ack { id: "m1".into() },
                r#"{"type":"ack","id":"m1"}"#,
            ),
            (
                ChatFrame::Typing { on: true },
                r#"{"type":"typing","on":true}"#,
            ),
            (
                ChatFrame::Image {
                    id: "i1".into(),
                    mime: "image/png".into(),
                    size: 1,
                    chunks: 1,
                },
                r#"{"type":"image","id":"i1","mime":"image/png","size":1,"chunks":1}"#,
            ),
            (ChatFrame::Bye {}, r#"{"type":"bye"}"#),
        ] {
            assert_eq!(frame.to_json(), json);
            assert_eq!(parse(json).unwrap(), frame);
            types.push(serde_json::to_value(&frame).unwrap()["type"].clone());
        }
        // The page's list of frame types is what serde writes, every one of them.
        assert_eq!(types, <ChatFrame as strum::VariantNames>::VARIANTS);
    }

    #[test]
    fn limits_and_garbage() {
        let long = ChatFrame::Msg {
            id: "m".into(),
            text: "é".repeat(2001),
        }
        .to_json();
        assert_eq!(parse(&long), Err(ChatError::TextTooLong));
        assert!(
            parse(
                &ChatFrame::Msg {
                    id: "m".into(),
                    text: "é".repeat(2000)
                }
                .to_json()
            )
            .is_ok()
        );
        for bad in [
            "",
            "hi",
            "{}",
            r#"{"type":"msg","id":"m"}"#,
            r#"{"type":"bye","x":1}"#,
            r#"{"type":"shout"}"#,
        ] {
            assert!(matches!(parse(bad), Err(ChatError::Malformed(_))), "{bad}");
        }
        let img = |size: usize, chunks: usize, mime: &str| {
            parse(
                &ChatFrame::Image {
                    id: "i".into(),
                    mime: mime.into(),
                    size,
                    chunks,
                }
                .to_json(),
            )
        };
        assert!(img(20_000, 2, "image/png").is_ok());
        assert_eq!(
            img(MAX_IMAGE_BYTES + 1, 65, "image/png"),
            Err(ChatError::ImageTooLarge)
        );
        assert_eq!(img(20_000, 3, "image/png"), Err(ChatError::BadChunks));
        assert_eq!(img(20_000, 2, "image/svg+xml"), Err(ChatError::ImageType));
        assert_eq!(
            parse(&ChatFrame::Ack { id: "x".repeat(65) }.to_json()),
            Err(ChatError::IdTooLong)
        );
    }

    #[test]
    fn a_one_mebibyte_image_goes_in_64_chunks_and_comes_back_whole() {
        let image: Vec<u8> = (0..MAX_IMAGE_BYTES).map(|i| (i * 31 % 251) as u8).collect();
        let (header, chunks) = image_frames("img1", "image/jpeg", &image).unwrap();
        let header = parse(&header.to_json()).unwrap();
        let mut asm = ImageAssembler::new(&header).unwrap();
        let chunks: Vec<&[u8]> = chunks.collect();
        assert_eq!(chunks.len(), 64);
        let mut whole = None;
        for c in chunks {
            whole = asm.push(c).unwrap();
        }
        assert_eq!(whole.unwrap(), image);
        assert!(asm.push(b"one too many").is_err());
        assert_eq!(
            image_frames("x", "image/jpeg", &vec![0; MAX_IMAGE_BYTES + 1]).err(),
            Some(ChatError::ImageTooLarge)
        );
    }

    #[test]
    fn short_or_extra_chunks_are_refused() {
        let header = ChatFrame::Image {
            id: "i".into(),
            mime: "image/png".into(),
            size: 20_000,
            chunks: 2,
        };
        let mut asm = ImageAssembler::new(&header).unwrap();
        assert_eq!(asm.push(&[0; 100]).unwrap(), None);
        assert_eq!(
            asm.push(&[0; 100]),
            Err(ChatError::BadChunks),
            "two chunks but 200 bytes of 20,000"
        );
        let mut asm = ImageAssembler::new(&header).unwrap();
        assert_eq!(asm.push(&[0; CHUNK_BYTES + 1]), Err(ChatError::BadChunks));
    }

    #[test]
    fn contact_details_are_spotted() {
        for text in [
            "mail me at jane.doe@example.com",
            "jane (at) example.org",
            "call +1 (415) 555-0132",
            "my number is 06 12 34 56 78",
            "0612345678",
        ] {
            assert!(contains_contact_details(text), "{text}");
        }
        for text in [
            "hello there",
            "I was born in 1990",
            "meet at 10:30 on 2024-05-01?",
            "@everyone hi",
            "room 1234",
        ] {
            assert!(!contains_contact_details(text), "{text}");
        }
    }

    #[test]
    fn both_sides_compute_the_same_safety_code_and_a_swap_changes_it() {
        let (a, b) = ("sha-256 AA:BB:CC", "sha-256 11:22:33");
        let code = safety_code(a, b);
        assert_eq!(code, safety_code(b, a));
        assert_eq!(code.len(), 14);
        assert_ne!(
            code,
            safety_code(a, "sha-256 11:22:34"),
            "a man in the middle shows"
        );
    }

    #[test]
    fn inert_text_cannot_drive_a_terminal() {
        let hostile = "\u{1b}]0;pwned\u{7}\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[1;1Hcode 1111\u{9b}2J\u{202e}evil\nline";
        let shown = inert(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert!(!shown.contains('\u{202e}'));
        assert_eq!(
            shown,
            "\u{fffd}]0;pwned\u{fffd}\u{fffd}]52;c;ZXZpbA==\u{fffd}\u{fffd}[1;1Hcode 1111\u{fffd}2J\u{fffd}evil line"
        );
        assert_eq!(inert("héllo 👋, ça va?"), "héllo 👋, ça va?");
    }
}
