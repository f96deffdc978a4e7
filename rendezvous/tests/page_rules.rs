//! The page's pure rules (`web/js/rules.js`) hold to the protocol's shared test vectors: runs
//! `page/rules.test.mjs` with Node's test runner (Node is installed by `.ci/run`).

use std::process::Command;

#[test]
fn the_page_rules_agree_with_the_shared_vectors() {
    let test = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/page/rules.test.mjs");
    let out = Command::new("node")
        .arg("--test")
        .arg(&test)
        .output()
        .expect("node (install Node.js 20 or later)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    // Six tests ran and passed: a runner that found nothing to run must not pass.
    assert!(report.contains("# pass 6"), "{report}");
}
