//! The TLS the client speaks to the servers (https:// to the verifier, wss:// to the
//! rendezvous), with the system's trusted roots; `SSL_CERT_FILE` names others (a private CA).

/// Names the process's rustls crypto provider, once. Several TLS users end up in this process
/// (reqwest's, the WebSocket's, DTLS's) with more than one provider compiled in, so rustls
/// cannot pick one by itself. A provider installed earlier wins.
pub fn crypto_provider() {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
