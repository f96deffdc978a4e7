//! A certificate authority made for one test, and the server certificates it signs: what a
//! service serving HTTPS needs in a test, and what a client (or a browser's trust store) is
//! told to trust.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "AnonChat test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa { cert, key }
    }

    /// The CA's certificate, PEM: what a client trusts.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA's certificate, DER.
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A server certificate for `names` (DNS names or IP addresses) with a fresh key: its PEM
    /// chain (leaf then CA) and its PEM key.
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        let key = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (
            format!("{}{}", leaf.pem(), self.cert.pem()),
            key.serialize_pem(),
        )
    }

    /// [`TestCa::issue`] written to `dir/name.pem` and `dir/name.key`, their paths.
    pub fn write(&self, dir: &Path, name: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let (chain, key) = self.issue(names);
        let (c, k) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, chain).unwrap();
        std::fs::write(&k, key).unwrap();
        (c, k)
    }
}
