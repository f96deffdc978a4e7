//! The web page explains every error code a server can send, in words a person understands
//! (issue: "clear messages for every error code of the verifier and the rendezvous"). A code
//! added to either server without a sentence in `messages.js` fails here.

use anonchat_rendezvous::proto::ErrorCode;
use anonchat_verifier::error::VerifyError;
use strum::IntoEnumIterator;

const MESSAGES: &str = include_str!("../../rendezvous/web/js/messages.js");

/// The sentence `messages.js` gives `code`, if any.
fn sentence(code: &str) -> Option<&'static str> {
    let key = format!("\n  {code}: '");
    let start = MESSAGES.find(&key)? + key.len();
    let end = MESSAGES[start..].find("',\n")?;
    Some(&MESSAGES[start..start + end])
}

#[test]
fn every_error_code_of_both_servers_has_a_sentence() {
    let codes: Vec<&str> = ErrorCode::iter()
        .map(ErrorCode::as_str)
        .chain(VerifyError::iter().map(|e| e.code()))
        .collect();
    assert!(codes.len() >= 28, "{codes:?}");
    let missing: Vec<_> = codes.iter().filter(|c| sentence(c).is_none()).collect();
    assert!(
        missing.is_empty(),
        "messages.js explains none of {missing:?}"
    );
    for code in codes {
        let text = sentence(code).unwrap();
        assert!(
            text.len() >= 20 && text.ends_with('.') && !text.contains('_'),
            "{code}: {text:?} is not a sentence for a person"
        );
    }
}
