//! Images the partner sent in this chat. They are kept in memory and written to disk only when
//! the user asks (`/save`, or `--save-images DIR` for every one), within a per-chat count and
//! byte quota, as files only this user can read. A partner cannot fill a disk, or leave a file
//! on it that the user never chose to keep.

use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Images one chat may bring in, kept or saved.
pub const MAX_IMAGES_PER_CHAT: usize = 20;
/// Bytes of images one chat may bring in.
pub const MAX_IMAGE_BYTES_PER_CHAT: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error(
        "this chat has already sent {MAX_IMAGES_PER_CHAT} images or {} MiB; further images are dropped",
        MAX_IMAGE_BYTES_PER_CHAT / (1024 * 1024)
    )]
    QuotaReached,
    #[error("no image was received in this chat")]
    NothingToSave,
    #[error("no image {0:?} was received in this chat")]
    Unknown(String),
    #[error("could not save the image in {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
}

struct Kept {
    id: String,
    mime: &'static str,
    data: Zeroizing<Vec<u8>>,
    saved: Option<PathBuf>,
}

/// The current chat's received images.
pub struct Gallery {
    kept: Vec<Kept>,
    bytes: usize,
    /// Save every image here as it arrives.
    auto_save: Option<PathBuf>,
    /// Files written by this process, for unique names.
    written: u64,
}

impl Gallery {
    pub fn new(auto_save: Option<PathBuf>) -> Self {
        Gallery {
            kept: Vec::new(),
            bytes: 0,
            auto_save,
            written: 0,
        }
    }

    /// A new chat: the last one's images are forgotten (and wiped).
    pub fn clear(&mut self) {
        self.kept.clear();
        self.bytes = 0;
    }

    /// Takes a received (already checked) image; returns where it was saved, with
    /// `--save-images`.
    pub fn receive(
        &mut self,
        id: String,
        mime: &'static str,
        data: Vec<u8>,
    ) -> Result<Option<PathBuf>, GalleryError> {
        let data = Zeroizing::new(data);
        if self.kept.len() >= MAX_IMAGES_PER_CHAT
            || self.bytes + data.len() > MAX_IMAGE_BYTES_PER_CHAT
        {
            return Err(GalleryError::QuotaReached);
        }
        self.bytes += data.len();
        self.kept.push(Kept {
            id,
            mime,
            data,
            saved: None,
        });
        match self.auto_save.clone() {
            Some(dir) => self.save_at(self.kept.len() - 1, &dir).map(Some),
            None => Ok(None),
        }
    }

    /// Saves image `id` (the last one received when `None`) in `dir`; saving it again gives
    /// the same file.
    pub fn save(
        &mut self,
        id: Option<&str>,
        dir: &Path,
    ) -> Result<(String, PathBuf), GalleryError> {
        let index = match id {
            Some(id) => self
                .kept
                .iter()
                .position(|k| k.id == id)
                .ok_or_else(|| GalleryError::Unknown(id.to_owned()))?,
            None => self
                .kept
                .len()
                .checked_sub(1)
                .ok_or(GalleryError::NothingToSave)?,
        };
        let path = self.save_at(index, dir)?;
        Ok((self.kept[index].id.clone(), path))
    }

    fn save_at(&mut self, index: usize, dir: &Path) -> Result<PathBuf, GalleryError> {
        if let Some(path) = &self.kept[index].saved {
            return Ok(path.clone());
        }
        self.written += 1;
        let kept = &self.kept[index];
        let extension = kept
            .mime
            .trim_start_matches("image/")
            .replace("jpeg", "jpg");
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        // The name is ours: nothing the partner sent ends up in a path.
        let path = dir.join(format!("{millis}-{}.{extension}", self.written));
        write_private(dir, &path, &kept.data).map_err(|source| GalleryError::Io {
            dir: dir.to_owned(),
            source,
        })?;
        self.kept[index].saved = Some(path.clone());
        Ok(path)
    }
}

/// Writes a new file readable by this user only (0600), in a folder made for this user only
/// (0700) if it did not exist.
fn write_private(dir: &Path, path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gallery-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn nothing_is_written_until_asked_and_then_only_for_this_user() {
        let dir = scratch("asked");
        let mut g = Gallery::new(None);
        assert!(
            g.receive("a".into(), "image/png", vec![1; 10])
                .unwrap()
                .is_none()
        );
        assert!(
            g.receive("b".into(), "image/jpeg", vec![2; 10])
                .unwrap()
                .is_none()
        );
        assert!(!dir.exists(), "nothing written unasked");
        let (id, path) = g.save(None, &dir).unwrap();
        assert_eq!(id, "b");
        assert_eq!(path.extension().unwrap(), "jpg");
        assert_eq!(std::fs::read(&path).unwrap(), vec![2; 10]);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        // The same image twice is one file; another one by its id is another file.
        assert_eq!(g.save(Some("b"), &dir).unwrap().1, path);
        let (_, first) = g.save(Some("a"), &dir).unwrap();
        assert_ne!(first, path);
        assert!(matches!(
            g.save(Some("zz"), &dir),
            Err(GalleryError::Unknown(_))
        ));
        g.clear();
        assert!(matches!(
            g.save(None, &dir),
            Err(GalleryError::NothingToSave)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_chat_cannot_bring_in_more_than_its_quota() {
        let dir = scratch("quota");
        let mut g = Gallery::new(Some(dir.clone()));
        for i in 0..MAX_IMAGES_PER_CHAT {
            assert!(
                g.receive(format!("{i}"), "image/png", vec![0; 8])
                    .unwrap()
                    .is_some()
            );
        }
        assert!(matches!(
            g.receive("one more".into(), "image/png", vec![0; 8]),
            Err(GalleryError::QuotaReached)
        ));
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            MAX_IMAGES_PER_CHAT
        );
        // Bytes count too, and a new chat starts afresh.
        g.clear();
        let big = MAX_IMAGE_BYTES_PER_CHAT / 2 + 1;
        g.receive("x".into(), "image/png", vec![0; big]).unwrap();
        assert!(matches!(
            g.receive("y".into(), "image/png", vec![0; big]),
            Err(GalleryError::QuotaReached)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
