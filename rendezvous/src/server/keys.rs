//! The verifier's public keys: where they come from, how they are fetched (https, bounded in
//! size and time), and when a refreshed set may replace the one in use. A server that trusts
//! whatever a refresh brings could be made to accept an attacker's tokens, or none at all.

use std::collections::BTreeSet;
use std::time::Duration;

use anonchat_protocol::token::{Jwks, KeySet};
use anyhow::Context;

use crate::config::Config;

/// Largest JWKS document accepted; a real one holds a few keys of ~200 bytes each.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// How long a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the verifier's public keys come from.
pub enum Keys {
    Fixed(KeySet),
    File(std::path::PathBuf),
    Url(String),
}

impl Keys {
    /// The source the settings name. A URL must be https, unless it names a loopback host or
    /// VERIFIER_JWKS_ALLOW_HTTP is set: keys fetched in the clear could be swapped on the way.
    pub fn from_config(config: &Config) -> anyhow::Result<Keys> {
        match (&config.verifier_jwks_file, &config.verifier_jwks_url) {
            (Some(f), _) => Ok(Keys::File(f.clone())),
            (None, Some(u)) => {
                check_url(u, config.verifier_jwks_allow_http)?;
                Ok(Keys::Url(u.clone()))
            }
            (None, None) => anyhow::bail!(
                "set VERIFIER_JWKS_FILE or VERIFIER_JWKS_URL: tokens cannot be checked without the verifier's keys"
            ),
        }
    }

    pub(super) async fn load(&self) -> anyhow::Result<KeySet> {
        let jwks: Jwks = match self {
            Keys::Fixed(k) => return Ok(k.clone()),
            Keys::File(path) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                anyhow::ensure!(
                    bytes.len() <= MAX_JWKS_BYTES,
                    "{} is over {MAX_JWKS_BYTES} bytes",
                    path.display()
                );
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a JWKS document", path.display()))?
            }
            Keys::Url(url) => {
                let bytes = fetch(url)
                    .await
                    .with_context(|| format!("fetching {url}"))?;
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{url} is not a JWKS document"))?
            }
        };
        Ok(KeySet::from_jwks(&jwks)?)
    }

    pub(super) fn refreshes(&self) -> bool {
        !matches!(self, Keys::Fixed(_))
    }
}

fn check_url(url: &str, allow_http: bool) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("VERIFIER_JWKS_URL {url:?}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_http || is_loopback(&parsed) => Ok(()),
        "http" => anyhow::bail!(
            "VERIFIER_JWKS_URL must be https (keys fetched in the clear could be replaced on the \
             way); plain http is allowed for a loopback address, or with VERIFIER_JWKS_ALLOW_HTTP=true"
        ),
        other => anyhow::bail!("VERIFIER_JWKS_URL: unsupported scheme {other:?}"),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The document at `url`, refused as soon as it passes [`MAX_JWKS_BYTES`].
async fn fetch(url: &str) -> anyhow::Result<Vec<u8>> {
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut response = client.get(url).send().await?.error_for_status()?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        anyhow::ensure!(
            body.len() + chunk.len() <= MAX_JWKS_BYTES,
            "the document is over {MAX_JWKS_BYTES} bytes"
        );
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether a refreshed key set replaces the one in use. One that keeps at least one key of
/// the current set is a normal rotation and is taken at once. One with no key in common (a
/// swapped document, or a verifier restarted with a new key without a rotation) is taken only
/// when the next refresh brings the very same set, so a single bad answer changes nothing.
#[derive(Default)]
pub struct Refresh {
    unconfirmed: Option<BTreeSet<String>>,
}

impl Refresh {
    pub fn accepts(&mut self, current: &KeySet, fetched: &KeySet) -> bool {
        let now: BTreeSet<&str> = current.kids().collect();
        let new: BTreeSet<String> = fetched.kids().map(str::to_owned).collect();
        if new.iter().any(|k| now.contains(k.as_str())) {
            self.unconfirmed = None;
            return true;
        }
        if self.unconfirmed.as_ref() == Some(&new) {
            self.unconfirmed = None;
            return true;
        }
        self.unconfirmed = Some(new);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anonchat_protocol::token::SigningKey;

    fn set(keys: &[&SigningKey]) -> KeySet {
        KeySet::from_jwks(&Jwks {
            keys: keys.iter().map(|k| k.public_jwk()).collect(),
        })
        .unwrap()
    }

    #[test]
    fn a_rotation_is_taken_and_a_swap_only_when_confirmed() {
        let (a, b, evil) = (
            SigningKey::generate(),
            SigningKey::generate(),
            SigningKey::generate(),
        );
        let mut refresh = Refresh::default();
        // Rotation: add b, then drop a.
        assert!(refresh.accepts(&set(&[&a]), &set(&[&b, &a])));
        assert!(refresh.accepts(&set(&[&b, &a]), &set(&[&b])));
        // A set with nothing in common, once: kept out.
        assert!(!refresh.accepts(&set(&[&b]), &set(&[&evil])));
        // A normal answer in between forgets it.
        assert!(refresh.accepts(&set(&[&b]), &set(&[&b])));
        assert!(!refresh.accepts(&set(&[&b]), &set(&[&evil])));
        // The same new set twice in a row is a real change of key.
        assert!(refresh.accepts(&set(&[&b]), &set(&[&evil])));
    }

    #[test]
    fn plain_http_only_for_loopback_or_when_allowed() {
        assert!(check_url("https://verifier.example/.well-known/jwks.json", false).is_ok());
        assert!(check_url("http://127.0.0.1:8000/.well-known/jwks.json", false).is_ok());
        assert!(check_url("http://[::1]:8000/.well-known/jwks.json", false).is_ok());
        assert!(check_url("http://localhost:8000/.well-known/jwks.json", false).is_ok());
        let refused = check_url("http://verifier.example/.well-known/jwks.json", false);
        assert!(refused.unwrap_err().to_string().contains("must be https"));
        assert!(check_url("http://verifier.example/.well-known/jwks.json", true).is_ok());
        assert!(check_url("ftp://verifier.example/jwks.json", true).is_err());
        assert!(check_url("not a url", true).is_err());
    }
}
