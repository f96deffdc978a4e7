//! Any body, as multipart or JSON, into `POST /v1/verify`'s parser (one image or a head-turn
//! burst): parsed or refused.
#![no_main]

use anonchat_verifier::service::request::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let content_type = match kind % 3 {
        0 => "application/json",
        1 => "multipart/form-data; boundary=B",
        _ => "multipart/form-data",
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let body = zeroize::Zeroizing::new(body.to_vec());
    // A small image limit and a smaller frame limit: both paths (one image, a burst) run.
    let _ = runtime.block_on(parse(Some(content_type), body, 1 << 16, 1 << 14));
});
