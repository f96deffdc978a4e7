//! The page's copy of the protocol: the constants, patterns and sentences the browser needs,
//! written out as a JavaScript module (`rendezvous/web/js/protocol.gen.js`). The page imports that
//! file and has no build step; a test fails when the committed file is not what this writes.

use std::fmt::Write;

use serde::Serialize;
use strum::IntoEnumIterator;

use crate::{chat, rendezvous, verify};

/// The generated module's text.
pub fn page_constants() -> String {
    let mut js = Module::default();
    js.line("// Generated from the anonchat-protocol crate (protocol/src/web.rs): do not edit.");
    js.line("// Regenerate: ANONCHAT_REGENERATE=1 cargo test -p anonchat-rendezvous --test page_constants");
    js.line("");
    js.line("// The rendezvous (DESIGN.md §5).");
    js.constant("HELLO_CONTEXT", &rendezvous::HELLO_CONTEXT);
    js.constant("RECONNECT_BASE_MS", &rendezvous::RECONNECT_BASE_MS);
    js.constant("RECONNECT_MAX_MS", &rendezvous::RECONNECT_MAX_MS);
    js.constant("RECONNECT_DOUBLINGS", &rendezvous::RECONNECT_DOUBLINGS);
    let limits = |r: &std::ops::RangeInclusive<usize>| [*r.start(), *r.end()];
    js.constant(
        "NICKNAME_CHARS",
        &limits(&rendezvous::limits::NICKNAME_CHARS),
    );
    js.constant("BIO_CHARS", &limits(&rendezvous::limits::BIO_CHARS));
    js.constant("MAX_EMOJI", &rendezvous::limits::MAX_EMOJI);
    js.constant("EMOJI_RANGES", &rendezvous::limits::EMOJI_RANGES);
    js.constant(
        "REGIONAL_INDICATORS",
        &rendezvous::limits::REGIONAL_INDICATORS,
    );
    js.constant("MAX_INTERESTS", &rendezvous::limits::INTERESTS);
    js.line("/** Refusals of the token itself: forget it and verify again. */");
    js.constant(
        "VERIFY_AGAIN_ERRORS",
        &rendezvous::ErrorCode::iter()
            .filter(|c| c.needs_verification())
            .map(rendezvous::ErrorCode::as_str)
            .collect::<Vec<_>>(),
    );
    js.line("");
    js.line("// The chat between peers (DESIGN.md §6).");
    js.constant("CHAT_VERSION", &chat::VERSION);
    js.constant("DATA_CHANNEL", &chat::DATA_CHANNEL);
    js.constant(
        "SETUP_TIMEOUT_MS",
        &u64::try_from(chat::SETUP_TIMEOUT.as_millis()).expect("seconds"),
    );
    js.constant("MAX_TEXT_CHARS", &chat::MAX_TEXT_CHARS);
    js.constant("MAX_IMAGE_BYTES", &chat::MAX_IMAGE_BYTES);
    js.constant("MAX_IMAGE_PIXELS", &chat::MAX_IMAGE_PIXELS);
    js.constant("CHUNK_BYTES", &chat::CHUNK_BYTES);
    js.constant("MAX_ID_BYTES", &chat::MAX_ID_BYTES);
    js.constant("IMAGE_TYPES", &chat::IMAGE_TYPES);
    js.constant(
        "FRAME_TYPES",
        &<chat::ChatFrame as strum::VariantNames>::VARIANTS,
    );
    js.constant("SAFETY_CONTEXT", &chat::SAFETY_CONTEXT);
    js.line("/** Matched case-insensitively (`new RegExp(EMAIL_PATTERN, 'i')`). */");
    js.constant("EMAIL_PATTERN", &chat::EMAIL_PATTERN);
    js.constant("PHONE_PATTERN", &chat::PHONE_PATTERN);
    js.constant("PHONE_MIN_DIGITS", &chat::PHONE_MIN_DIGITS);
    js.line("");
    js.line("// The verifier's head-turn challenge (DESIGN.md §4).");
    js.constant("MIN_FRAMES", &verify::MIN_FRAMES);
    js.constant("MAX_FRAMES", &verify::MAX_FRAMES);
    js.constant("FRAME_INTERVAL_MS", &verify::FRAME_INTERVAL_MS);
    js.constant("LOOK_MS", &verify::LOOK_MS);
    js.constant("STEP_MS", &verify::STEP_MS);
    js.line("");
    js.line("// What each server's error codes mean to a person.");
    js.constant(
        "VERIFIER_ERRORS",
        &sentences(verify::ErrorCode::iter().map(|c| (c.as_str(), c.explain()))),
    );
    js.constant(
        "RENDEZVOUS_ERRORS",
        &sentences(rendezvous::ErrorCode::iter().map(|c| (c.as_str(), c.explain()))),
    );
    js.0
}

/// `{code: sentence}`, in the enum's order.
fn sentences<'a>(
    codes: impl Iterator<Item = (&'a str, &'a str)>,
) -> serde_json::Map<String, serde_json::Value> {
    codes
        .map(|(code, text)| (code.into(), text.into()))
        .collect()
}

#[derive(Default)]
struct Module(String);

impl Module {
    fn line(&mut self, text: &str) {
        self.0.push_str(text);
        self.0.push('\n');
    }

    /// `export const NAME = <value>;`, written as JSON (which is JavaScript), arrays and objects
    /// frozen all the way down, so that no script can change the rules it shares.
    fn constant(&mut self, name: &str, value: &impl Serialize) {
        let json = serde_json::to_value(value).expect("constants serialize");
        writeln!(self.0, "export const {name} = {};", literal(&json)).expect("writing to a string");
    }
}

fn literal(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(literal).collect();
            format!("Object.freeze([{}])", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("  {}: {},\n", Value::from(k.as_str()), literal(v)))
                .collect();
            format!("Object.freeze({{\n{}}})", fields.concat())
        }
        scalar => scalar.to_string(),
    }
}
