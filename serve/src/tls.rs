//! TLS served by the services themselves (rustls), for operators without a TLS-terminating
//! proxy: a browser's camera and WebCrypto need a secure context everywhere but localhost.
//!
//! The certificate and key are read from PEM files at start (an unreadable or mismatched pair
//! stops the service with a clear error), then read again when the files change (checked every
//! [`POLL`]) or the process gets SIGHUP, so that a certificate renewed by an ACME client takes
//! effect without a restart. A reload that fails keeps the pair in use and says why; handshakes
//! in flight finish on the configuration they started with.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How often the files' modification times are looked at.
pub const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS_CERT_FILE and TLS_KEY_FILE go together: set both, or neither")]
    Half,
    #[error("reading {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    #[error("{path} holds no usable private key: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the certificate and key cannot be used together: {0}")]
    Config(String),
}

/// The files, and the configuration last made from them.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<(Arc<ServerConfig>, Stamp)>,
    /// Configurations made so far: 1 at start, one more per successful reload.
    generation: AtomicU64,
}

/// The files' modification times (and lengths) when last read.
type Stamp = [Option<(SystemTime, u64)>; 2];

fn stamp(paths: [&Path; 2]) -> Stamp {
    paths.map(|p| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    })
}

impl Tls {
    /// `None` when neither file is set; an error when only one is, or when they cannot be used.
    pub fn from_files(
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Option<Arc<Tls>>, TlsError> {
        match (cert, key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => {
                let stamped = stamp([cert, key]);
                let config = server_config(cert, key)?;
                Ok(Some(Arc::new(Tls {
                    cert: cert.to_owned(),
                    key: key.to_owned(),
                    current: RwLock::new((Arc::new(config), stamped)),
                    generation: AtomicU64::new(1),
                })))
            }
            _ => Err(TlsError::Half),
        }
    }

    /// An acceptor with the configuration in use now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
    }

    /// Reads the files again; on failure the configuration in use stays.
    pub fn reload(&self, why: &str) -> Result<(), TlsError> {
        let stamped = stamp([&self.cert, &self.key]);
        let result = server_config(&self.cert, &self.key);
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        // Not tried again until the files change again.
        current.1 = stamped;
        match result {
            Ok(config) => {
                current.0 = Arc::new(config);
                self.generation.fetch_add(1, Ordering::Relaxed);
                tracing::info!(cert = %self.cert.display(), why, "TLS certificate reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, why, "TLS certificate not reloaded; the previous one stays in use");
                Err(e)
            }
        }
    }

    /// Whether the files changed since they were last read.
    fn changed(&self) -> bool {
        let now = stamp([&self.cert, &self.key]);
        self.current.read().unwrap_or_else(|e| e.into_inner()).1 != now
    }

    /// How many configurations were made from the files: 1 at start, one more per reload.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Reloads on SIGHUP and when the files change (looked at every `poll`), until the future
    /// is dropped. The SIGHUP handler is in place when this returns.
    pub fn watch(self: Arc<Self>, poll: Duration) -> impl Future<Output = ()> + Send {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        async move {
            let mut tick = tokio::time::interval(poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(h) => {
                            h.recv().await;
                        }
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = std::future::pending::<()>();
                tokio::select! {
                    () = hangup => { let _ = self.reload("SIGHUP"); }
                    _ = tick.tick() => {
                        if self.changed() {
                            let _ = self.reload("the files changed");
                        }
                    }
                }
            }
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// A rustls server configuration for HTTP/1.1 from a PEM certificate chain and key.
fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Read {
            path: cert.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let private = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    // One provider named here: several crates of the workspace enable different ones.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anonchat_testkit::TestCa;

    #[test]
    fn both_files_or_neither_and_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let (c, k) = ca.write(dir.path(), "a", &["a.test"]);
        assert!(Tls::from_files(None, None).unwrap().is_none());
        assert!(Tls::from_files(Some(&c), Some(&k)).unwrap().is_some());
        assert!(matches!(
            Tls::from_files(Some(&c), None),
            Err(TlsError::Half)
        ));
        let missing = dir.path().join("nope.pem");
        let e = Tls::from_files(Some(&missing), Some(&k)).err().unwrap();
        assert!(e.to_string().contains("nope.pem"), "{e}");
        // The key given as the certificate, and the certificate as the key.
        assert!(matches!(
            Tls::from_files(Some(&k), Some(&k)),
            Err(TlsError::NoCertificate(_))
        ));
        assert!(matches!(
            Tls::from_files(Some(&c), Some(&c)),
            Err(TlsError::Key { .. })
        ));
        // A key that is not the certificate's.
        let (_, other_key) = ca.write(dir.path(), "b", &["b.test"]);
        assert!(matches!(
            Tls::from_files(Some(&c), Some(&other_key)),
            Err(TlsError::Config(_))
        ));
    }

    #[test]
    fn a_failed_reload_keeps_the_pair_in_use_and_a_good_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let (c, k) = ca.write(dir.path(), "a", &["a.test"]);
        let tls = Tls::from_files(Some(&c), Some(&k)).unwrap().unwrap();
        let first = tls.current.read().unwrap().0.clone();
        std::fs::write(&k, "not a key").unwrap();
        assert!(tls.changed());
        assert!(tls.reload("test").is_err());
        assert!(Arc::ptr_eq(&first, &tls.current.read().unwrap().0));
        assert_eq!(tls.generation(), 1);
        assert!(
            !tls.changed(),
            "not tried again until the files change again"
        );
        ca.write(dir.path(), "a", &["a.test"]);
        tls.reload("test").unwrap();
        assert!(!Arc::ptr_eq(&first, &tls.current.read().unwrap().0));
        assert_eq!(tls.generation(), 2);
    }
}
