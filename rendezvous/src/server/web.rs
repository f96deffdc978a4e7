//! The browser client (`rendezvous/web/`), embedded in the binary so that serving it needs no
//! build step and no files beside the binary, and its `/config.json`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::Shared;
use crate::store::Store;

/// Path, content type, content.
const FILES: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
    (
        "/js/main.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/main.js"),
    ),
    (
        "/js/identity.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/identity.js"),
    ),
    (
        "/js/verify.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/verify.js"),
    ),
    (
        "/js/rendezvous.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/rendezvous.js"),
    ),
    (
        "/js/chat.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/chat.js"),
    ),
    // Browsers ask for /favicon.ico whatever the page says (a 404 is logged otherwise).
    (
        "/favicon.ico",
        "image/svg+xml",
        include_str!("../../web/favicon.svg"),
    ),
    (
        "/favicon.svg",
        "image/svg+xml",
        include_str!("../../web/favicon.svg"),
    ),
    (
        "/js/rules.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/rules.js"),
    ),
    (
        "/js/protocol.gen.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/protocol.gen.js"),
    ),
    (
        "/js/phase.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/phase.js"),
    ),
    (
        "/js/screens.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/screens.js"),
    ),
    (
        "/js/messages.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/messages.js"),
    ),
    (
        "/js/guide.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/js/guide.js"),
    ),
];

pub fn routes<S: Store>() -> Router<Arc<Shared<S>>> {
    let mut router = Router::new().route("/config.json", get(config::<S>));
    for &(path, content_type, body) in FILES {
        router = router.route(
            path,
            get(move |State(shared): State<Arc<Shared<S>>>| async move {
                page(&shared, content_type, body)
            }),
        );
    }
    router
}

fn page<S: Store>(shared: &Shared<S>, content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Scripts and styles from here only; network to here (WebSocket) and to the verifier.
    let verifier = shared.config.public_verifier_url().unwrap_or_default();
    let csp = format!(
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; \
         connect-src 'self' ws: wss: {verifier}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// What the page needs to know: where the verifier is.
async fn config<S: Store>(State(shared): State<Arc<Shared<S>>>) -> Response {
    axum::Json(json!({
        "verifier_url": shared.config.public_verifier_url(),
        "protocol": anonchat_protocol::rendezvous::PROTOCOL_VERSION,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    /// A module added to `web/js` but not to `FILES` would be a 404 in the browser.
    #[test]
    fn every_page_module_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/js");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".js") {
                let path = format!("/js/{name}");
                assert!(
                    super::FILES.iter().any(|(p, _, _)| *p == path),
                    "{path} is not served"
                );
            }
        }
    }
}
