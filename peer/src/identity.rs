//! The device: an Ed25519 key made on the device and kept at `$ANONCHAT_HOME/identity.key`
//! (default `~/.config/anonchat/`, mode 0600), its peer id, and the verification token it holds.

use std::io::Write;
use std::path::{Path, PathBuf};

use anonchat_protocol::token::{Gender, peer_id};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("no home folder for AnonChat: set ANONCHAT_HOME")]
    NoHome,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not a PKCS#8 Ed25519 key; move it away to make a new identity")]
    BadKey(PathBuf),
    #[error("{0} is not a saved token; verify again")]
    BadToken(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where this device keeps its key and token: `$ANONCHAT_HOME`, else `~/.config/anonchat`.
pub fn home() -> Result<PathBuf, IdentityError> {
    match std::env::var_os("ANONCHAT_HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h)),
        None => dirs::config_dir()
            .map(|d| d.join("anonchat"))
            .ok_or(IdentityError::NoHome),
    }
}

/// Writes a file only its owner can read, replacing it atomically.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// The device's key pair.
pub struct Identity {
    key: ed25519_dalek::SigningKey,
    pub peer_id: String,
    dir: PathBuf,
}

impl Identity {
    /// Loads the key from `dir`, or makes one and saves it (mode 0600) on first use.
    pub fn load_or_create(dir: &Path) -> Result<Identity, IdentityError> {
        let path = dir.join("identity.key");
        let key = match std::fs::read_to_string(&path) {
            Ok(pem) => {
                let pem = Zeroizing::new(pem);
                ed25519_dalek::SigningKey::from_pkcs8_pem(&pem)
                    .map_err(|_| IdentityError::BadKey(path.clone()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
                let pem = key
                    .to_pkcs8_pem(Default::default())
                    .expect("an Ed25519 key encodes");
                write_private(&path, pem.as_bytes())?;
                key
            }
            Err(e) => return Err(IdentityError::Io { path, source: e }),
        };
        Ok(Identity {
            peer_id: peer_id(&key.verifying_key()),
            key,
            dir: dir.to_owned(),
        })
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs with the device key (the rendezvous challenge).
    pub fn sign(&self, message: &[u8]) -> ed25519_dalek::Signature {
        use ed25519_dalek::Signer;
        self.key.sign(message)
    }

    fn token_path(&self) -> PathBuf {
        self.dir.join("token.json")
    }

    /// The saved token, if any (expired or not).
    pub fn token(&self) -> Result<Option<SavedToken>, IdentityError> {
        let path = self.token_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|_| IdentityError::BadToken(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IdentityError::Io { path, source: e }),
        }
    }

    pub fn save_token(&self, token: &SavedToken) -> Result<(), IdentityError> {
        write_private(
            &self.token_path(),
            &serde_json::to_vec_pretty(token).expect("tokens serialize"),
        )
    }
}

/// A verification token as the device keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedToken {
    pub token: String,
    pub gender: Gender,
    /// Unix seconds.
    pub expires_at: i64,
    pub peer_id: String,
}

impl SavedToken {
    pub fn is_valid_at(&self, now: i64) -> bool {
        now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("anonchat-id-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn the_key_is_made_once_kept_private_and_reloaded() {
        let dir = tmp("key");
        let first = Identity::load_or_create(&dir).unwrap();
        assert!(first.peer_id.starts_with("12D3KooW"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("identity.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Identity::load_or_create(&dir).unwrap();
        assert_eq!(again.peer_id, first.peer_id);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_damaged_key_is_reported_not_replaced() {
        let dir = tmp("bad");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("identity.key"), "garbage").unwrap();
        assert!(matches!(
            Identity::load_or_create(&dir),
            Err(IdentityError::BadKey(_))
        ));
        assert_eq!(
            std::fs::read_to_string(dir.join("identity.key")).unwrap(),
            "garbage"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn tokens_round_trip_privately() {
        let dir = tmp("token");
        let id = Identity::load_or_create(&dir).unwrap();
        assert_eq!(id.token().unwrap(), None);
        let t = SavedToken {
            token: "a.b.c".into(),
            gender: Gender::Female,
            expires_at: 100,
            peer_id: id.peer_id.clone(),
        };
        id.save_token(&t).unwrap();
        assert_eq!(id.token().unwrap(), Some(t.clone()));
        assert!(t.is_valid_at(99) && !t.is_valid_at(100));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(dir.join("token.json"))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o600
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
