//! The page's protocol constants (`web/js/protocol.gen.js`) are the protocol crate's: a rule
//! changed in Rust and not regenerated fails here, so the browser cannot drift from the
//! terminal client and the server. `ANONCHAT_REGENERATE=1` writes the file instead.

use std::path::Path;

#[test]
fn the_committed_page_constants_are_what_the_protocol_crate_generates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/js/protocol.gen.js");
    let generated = anonchat_protocol::web::page_constants();
    if std::env::var_os("ANONCHAT_REGENERATE").is_some() {
        std::fs::write(&path, &generated).expect("writing the page constants");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: run ANONCHAT_REGENERATE=1 cargo test -p anonchat-rendezvous --test page_constants",
        path.display()
    );
}
