//! Any bytes as an uploaded image: decoded within small limits or refused, never a panic.
#![no_main]

use anonchat_verifier::decode::{ImageLimits, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode(data, ImageLimits { max_bytes: 1 << 20, max_pixels: 1 << 20, ..ImageLimits::default() });
});
