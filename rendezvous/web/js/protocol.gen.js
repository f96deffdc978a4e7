// Generated from the anonchat-protocol crate (protocol/src/web.rs): do not edit.
// Regenerate: ANONCHAT_REGENERATE=1 cargo test -p anonchat-rendezvous --test page_constants

// The rendezvous (DESIGN.md §5).
export const HELLO_CONTEXT = "anonchat-rendezvous-v1:";
export const RECONNECT_BASE_MS = 250;
export const RECONNECT_MAX_MS = 10000;
export const RECONNECT_DOUBLINGS = 6;
export const NICKNAME_CHARS = Object.freeze([3, 24]);
export const BIO_CHARS = Object.freeze([10, 140]);
export const MAX_EMOJI = 5;
export const EMOJI_RANGES = Object.freeze([Object.freeze([127744, 127994]), Object.freeze([128000, 128511]), Object.freeze([128512, 128591]), Object.freeze([128640, 128767]), Object.freeze([129280, 129535]), Object.freeze([129648, 129791]), Object.freeze([9728, 9983]), Object.freeze([9984, 10175])]);
export const REGIONAL_INDICATORS = Object.freeze([127462, 127487]);
export const MAX_INTERESTS = 10;
/** Refusals of the token itself: forget it and verify again. */
export const VERIFY_AGAIN_ERRORS = Object.freeze(["invalid_token", "token_expired", "bad_signature"]);

// The chat between peers (DESIGN.md §6).
export const CHAT_VERSION = 1;
export const DATA_CHANNEL = "anonchat";
export const SETUP_TIMEOUT_MS = 10000;
export const MAX_TEXT_CHARS = 2000;
export const MAX_IMAGE_BYTES = 1048576;
export const MAX_IMAGE_PIXELS = 4194304;
export const CHUNK_BYTES = 16384;
export const MAX_ID_BYTES = 64;
export const IMAGE_TYPES = Object.freeze(["image/jpeg", "image/png", "image/webp"]);
export const FRAME_TYPES = Object.freeze(["hello", "msg", "ack", "typing", "image", "bye"]);
export const SAFETY_CONTEXT = "anonchat-safety-v1";
/** Matched case-insensitively (`new RegExp(EMAIL_PATTERN, 'i')`). */
export const EMAIL_PATTERN = "[a-z0-9._%+-]+\\s*(@|\\(at\\)|\\[at\\])\\s*[a-z0-9-]+(\\.[a-z0-9-]+)*\\.[a-z]{2,}";
export const PHONE_PATTERN = "\\+?\\(?[0-9][0-9\\s().-]{7,}[0-9]";
export const PHONE_MIN_DIGITS = 9;

// The verifier's head-turn challenge (DESIGN.md §4).
export const MIN_FRAMES = 8;
export const MAX_FRAMES = 20;
export const FRAME_INTERVAL_MS = 250;
export const LOOK_MS = 1000;
export const STEP_MS = 2000;

// What each server's error codes mean to a person.
export const VERIFIER_ERRORS = Object.freeze({
  "no_face": "No face was found. Face the camera in good light and try again.",
  "multiple_faces": "More than one face is in the picture. Make sure you are alone in it.",
  "face_too_small": "Your face is too small in the picture. Come closer to the camera.",
  "spoof_detected": "This looks like a photo of a photo or a screen, not a live selfie. Please use your camera.",
  "low_confidence": "The picture is not clear enough. Try again in better light.",
  "unsupported_image": "This kind of image is not supported. Use a JPEG, PNG or WebP photo.",
  "corrupt_image": "The image could not be read. Try another one.",
  "image_too_large": "The image is too large. Try a smaller photo.",
  "bad_request": "The verification request was not understood. Reload the page and try again.",
  "rate_limited": "Too many tries. Wait a minute and try again.",
  "overloaded": "The verifier is busy. Try again in a moment.",
  "internal": "Something went wrong on the server. Try again in a moment.",
  "challenge_required": "A single photo is not enough here: follow the head-turn steps with your camera.",
  "challenge_unknown": "This head-turn challenge is unknown or was used already. Start again.",
  "challenge_expired": "The head-turn challenge ran out of time. Start again and follow the steps.",
  "challenge_not_followed": "The head turns did not follow the steps. Start again and turn as asked.",
  "not_same_person": "The frames do not all show the same person. Start again, alone in front of the camera.",
  "pair_unknown": "This pairing code is unknown, was used or was cancelled. Run anonchat verify again in your terminal.",
  "pair_expired": "This pairing code has expired. Run anonchat verify again in your terminal.",
  "bad_proof": "The terminal could not prove it holds the key this code was made for.",
});
export const RENDEZVOUS_ERRORS = Object.freeze({
  "bad_message": "The server did not understand a message. Reload the page.",
  "invalid_token": "Your verification is not valid any more. Verify again.",
  "token_expired": "Your verification has expired. Verify again.",
  "bad_signature": "This browser could not prove it holds its key. Verify again.",
  "banned": "You have been reported by several people and cannot chat for a while.",
  "timeout": "The connection timed out. Try again.",
  "not_authenticated": "Not logged in. Reload the page.",
  "invalid_profile": "Please check your profile.",
  "daily_limit": "You have met as many people as allowed today. Come back tomorrow.",
  "already_queued": "You are already waiting for a match.",
  "not_in_match": "That chat is already over.",
  "not_signaling": "A connection message was refused.",
  "invalid_receipt": "That chat can no longer be reported or blocked.",
  "rate_limited": "Too many tries. Wait a minute and try again.",
  "shutting_down": "The server is restarting. Try again in a moment.",
  "replaced": "You connected again from another window or device, so this one was disconnected.",
  "internal": "Something went wrong on the server. Try again in a moment.",
  "unavailable": "The server is not ready yet. Try again in a moment.",
});
