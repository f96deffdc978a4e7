//! The page's pure modules hold to the protocol: `page/rules.test.mjs` checks `web/js/rules.js`
//! against the shared test vectors, `page/phase.test.mjs` drives the page's reducer
//! (`web/js/phase.js`) through its races, `page/guide.test.mjs` checks the head-turn script
//! (`web/js/guide.js`). All run with Node's test runner (Node is installed by
//! `.ci/run`).

use std::process::Command;

/// Runs one Node test file and demands that `tests` tests ran and passed: a runner that found
/// nothing to run must not pass.
fn node_test(file: &str, tests: usize) {
    let test = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/page")
        .join(file);
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
    assert!(report.contains(&format!("# pass {tests}\n")), "{report}");
}

#[test]
fn the_page_rules_agree_with_the_shared_vectors() {
    node_test("rules.test.mjs", 6);
}

#[test]
fn the_page_reducer_handles_its_races() {
    node_test("phase.test.mjs", 17);
}

#[test]
fn the_page_guides_the_head_turn_as_the_protocol_paces_it() {
    node_test("guide.test.mjs", 4);
}
