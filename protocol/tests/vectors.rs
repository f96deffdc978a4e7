//! The shared test vectors (`protocol/vectors/*.json`) hold for the Rust rules. The page's pure
//! module is held to the same files by `rendezvous/tests/page_rules.rs`, so the two cannot drift.

use anonchat_protocol::{chat, rendezvous, signaling};
use serde_json::Value;

fn vectors(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cases(v: &Value) -> &Vec<Value> {
    v["cases"].as_array().expect("cases")
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn chat_frames() {
    let v = vectors("chat_frames.json");
    for frame in v["valid"].as_array().unwrap() {
        let text = frame.as_str().unwrap();
        let parsed = chat::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        // Accepted means understood: what is read writes back the same frame.
        let again: Value = serde_json::from_str(&parsed.to_json()).unwrap();
        assert_eq!(
            again,
            serde_json::from_str::<Value>(text).unwrap(),
            "{text}"
        );
    }
    let invalid = v["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 20);
    for case in invalid {
        let text = str_of(case, "frame");
        assert!(
            chat::parse(text).is_err(),
            "{} was accepted: {text}",
            str_of(case, "why")
        );
    }
}

#[test]
fn contact_details() {
    let v = vectors("contact.json");
    for case in cases(&v) {
        let text = str_of(case, "text");
        assert_eq!(
            chat::contains_contact_details(text),
            case["contact"].as_bool().unwrap(),
            "{text:?}"
        );
    }
}

#[test]
fn safety_codes() {
    let v = vectors("safety_code.json");
    for case in cases(&v) {
        let (mine, theirs) = (str_of(case, "mine"), str_of(case, "theirs"));
        assert_eq!(
            chat::safety_code(mine, theirs),
            str_of(case, "code"),
            "{case}"
        );
    }
}

#[test]
fn emoji() {
    let v = vectors("emoji.json");
    for case in cases(&v) {
        let text = str_of(case, "text");
        assert_eq!(
            rendezvous::count_emoji(text) as u64,
            case["count"].as_u64().unwrap(),
            "{text:?}"
        );
    }
}

#[test]
fn reconnect_delays() {
    let v = vectors("reconnect.json");
    for case in cases(&v) {
        let attempt = u32::try_from(case["attempt"].as_u64().unwrap()).unwrap();
        assert_eq!(
            rendezvous::reconnect_delay_ms(attempt, case["jitter"].as_u64().unwrap()),
            case["delay_ms"].as_u64().unwrap(),
            "{case}"
        );
    }
}

#[test]
fn signaling_payloads_and_fingerprints() {
    let v = vectors("signaling.json");
    let limits = signaling::SignalLimits::default();
    for payload in v["payloads"]["valid"].as_array().unwrap() {
        signaling::validate(payload, &limits).unwrap_or_else(|e| panic!("{payload}: {e}"));
    }
    let invalid = v["payloads"]["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 8);
    for case in invalid {
        match signaling::validate(&case["payload"], &limits) {
            Ok(_) => panic!("{} was relayed", str_of(case, "why")),
            Err(e) => assert_eq!(
                e.label(),
                str_of(case, "label"),
                "{}: {e}",
                str_of(case, "why")
            ),
        }
    }
    for case in v["fingerprints"].as_array().unwrap() {
        assert_eq!(
            chat::sdp_fingerprint(str_of(case, "sdp")),
            str_of(case, "fingerprint"),
            "{case}"
        );
    }
}
