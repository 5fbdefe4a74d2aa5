//! Media bodies as files: written under `tmp/`, hashed while written,
//! synced, then renamed into place. A body is never visible half-written,
//! and is never changed once in place (a new version gets a new id).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use crate::{ids, Error, Result};

#[derive(Clone)]
pub(crate) struct Blobs {
    root: PathBuf,
    min_free: u64,
}

/// How often a body being written checks the free space: every this many
/// bytes (a statvfs call is cheap, but not free).
const SPACE_CHECK_EVERY: u64 = 1 << 20;

/// Bytes free for unprivileged writers on the filesystem holding `path`.
fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// A body once written: where it is, how long, and its BLAKE3 digest.
#[derive(Debug, Clone)]
pub(crate) struct BlobInfo {
    pub id: String,
    pub size: u64,
    pub hash: String,
}

impl Blobs {
    pub fn open(root: &Path, min_free: u64) -> Result<Blobs> {
        for sub in ["blobs", "tmp", "uploads", "renders"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        Ok(Blobs {
            root: root.to_path_buf(),
            min_free,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, id: &str) -> PathBuf {
        // Two hex characters of fan-out keep directories small.
        self.root.join("blobs").join(&id[..2]).join(id)
    }

    pub fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.root.join("uploads").join(upload_id)
    }

    /// Starts a body of at most `limit` bytes.
    pub async fn writer(&self, limit: u64) -> Result<BlobWriter> {
        let tmp = self.root.join("tmp").join(ids::random_hex128());
        let file = tokio::fs::File::create(&tmp).await?;
        Ok(BlobWriter {
            file: Some(file),
            tmp,
            hasher: blake3::Hasher::new(),
            size: 0,
            limit,
            min_free: self.min_free,
        })
    }

    /// Moves a finished writer into the blob area under a new id.
    pub async fn commit(&self, writer: BlobWriter) -> Result<BlobInfo> {
        let id = ids::random_hex128();
        let dest = self.path(&id);
        let (size, hash) = writer.persist(&dest).await?;
        Ok(BlobInfo { id, size, hash })
    }

    pub async fn remove(&self, id: &str) {
        if let Err(e) = tokio::fs::remove_file(self.path(id)).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(blob = id, error = %e, "could not remove a replaced body; the next start sweeps it");
            }
        }
    }

    pub fn clear_tmp(&self) -> Result<()> {
        let tmp = self.root.join("tmp");
        std::fs::remove_dir_all(&tmp)?;
        std::fs::create_dir_all(&tmp)?;
        Ok(())
    }

    /// Deletes bodies that no asset record names. Returns how many.
    pub fn remove_unreferenced(&self, referenced: &HashSet<String>) -> Result<usize> {
        let mut removed = 0;
        for fan in std::fs::read_dir(self.root.join("blobs"))? {
            for entry in std::fs::read_dir(fan?.path())? {
                let entry = entry?;
                if !referenced.contains(entry.file_name().to_string_lossy().as_ref()) {
                    std::fs::remove_file(entry.path())?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// A body being written. Dropping it without [`Blobs::commit`] (or
/// `persist`) deletes what was written.
pub struct BlobWriter {
    file: Option<tokio::fs::File>,
    tmp: PathBuf,
    hasher: blake3::Hasher,
    size: u64,
    limit: u64,
    min_free: u64,
}

impl BlobWriter {
    /// Appends `data`; fails with [`Error::TooLarge`] past the limit.
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        let size = self.size + data.len() as u64;
        if size > self.limit {
            return Err(Error::TooLarge { limit: self.limit });
        }
        let crosses_check = self.size / SPACE_CHECK_EVERY != size / SPACE_CHECK_EVERY;
        if self.min_free > 0 && (self.size == 0 || crosses_check) {
            let free = free_bytes(&self.tmp)?;
            if free < self.min_free.saturating_add(data.len() as u64) {
                return Err(Error::StorageFull);
            }
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::Corrupt("write after persist".into()))?;
        file.write_all(data).await?;
        self.hasher.update(data);
        self.size = size;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Syncs the file, renames it to `dest` and syncs `dest`'s directory,
    /// so that both the bytes and the name survive a crash.
    pub(crate) async fn persist(mut self, dest: &Path) -> Result<(u64, String)> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| Error::Corrupt("persisted twice".into()))?;
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let dir = dest
            .parent()
            .ok_or_else(|| Error::Corrupt("blob path has no parent".into()))?;
        tokio::fs::create_dir_all(dir).await?;
        tokio::fs::rename(&self.tmp, dest).await?;
        sync_dir(dir).await?;
        let hash = self.hasher.finalize().to_hex().to_string();
        // Renamed: nothing left for Drop to delete.
        self.tmp = PathBuf::new();
        Ok((self.size, hash))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

async fn sync_dir(dir: &Path) -> Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_is_refused_while_less_than_the_reserve_is_free_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        // A reserve larger than what is free: the first write is refused.
        let blobs = Blobs::open(dir.path(), free.saturating_add(1 << 30)).unwrap();
        let mut writer = blobs.writer(1 << 20).await.unwrap();
        assert!(matches!(
            writer.write(b"hello").await,
            Err(Error::StorageFull)
        ));
        drop(writer);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        // No reserve: the same write goes through.
        let blobs = Blobs::open(dir.path(), 0).unwrap();
        let mut writer = blobs.writer(1 << 20).await.unwrap();
        writer.write(b"hello").await.unwrap();
        assert_eq!(blobs.commit(writer).await.unwrap().size, 5);
    }
}
