//! A configuration's defaults come from its clap attributes and never from the environment:
//! this test exports a setting, and the defaults must not see it while a real parse does. (Its
//! own test binary: it changes the process's environment, which no other test may share.)

use anonchat_serve::{HttpLimits, defaults};
use clap::{Args, FromArgMatches};

#[test]
fn defaults_ignore_the_environment_that_a_real_parse_reads() {
    // SAFETY: the only test in this binary, so no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("MAX_HEADER_BYTES", "1") };
    let parsed = HttpLimits::from_arg_matches(
        &HttpLimits::augment_args(clap::Command::new("serve")).get_matches_from(["serve"]),
    )
    .unwrap();
    assert_eq!(
        parsed.max_header_bytes, 1,
        "a real parse reads the variable"
    );
    let limits: HttpLimits = defaults();
    assert_eq!(limits.max_header_bytes, 16 * 1024);
    assert_eq!(limits.header_timeout, std::time::Duration::from_secs(10));
    assert_eq!(limits.max_connections, None);
    assert_eq!(HttpLimits::default().max_header_bytes, 16 * 1024);
}
