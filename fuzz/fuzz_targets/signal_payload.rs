//! Any JSON as a `signal` payload: the signaling check admits it or refuses it, and whatever it
//! admits re-encodes and passes the check again.
#![no_main]

use anonchat_protocol::signaling::{SignalLimits, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let limits = SignalLimits::default();
    if let Ok(signal) = validate(&value, &limits) {
        let again = serde_json::to_value(&signal).unwrap();
        assert_eq!(validate(&again, &limits).as_ref(), Ok(&signal));
    }
});
