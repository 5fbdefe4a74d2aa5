//! The files blob store: bodies as files under the data directory,
//! written under `tmp/`, synced, then renamed into place, so a body is
//! never visible half-written, and never changed once in place.
//!
//! - `blobs/<2 hex>/<id>`  asset bodies (two characters of fan-out keep
//!   directories small)
//! - `uploads/<id>/<n>`    chunk n of unfinished upload id
//! - `tmp/`                bodies being written

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::temp_file::TempFileSink;
use super::{BlobInfo, BlobStore, BlobWriter, ChunkReader, Space};
use crate::repo::BoxFuture;
use crate::{ids, Error, Result};

#[derive(Debug, Clone)]
pub struct FilesStore {
    root: PathBuf,
    min_free: u64,
}

/// Bytes free for unprivileged writers on the filesystem holding `path`.
pub(crate) fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

impl FilesStore {
    /// The store under data directory `root`; bodies are refused while
    /// its filesystem has less than `min_free` bytes free.
    pub fn open(root: &Path, min_free: u64) -> Result<FilesStore> {
        for sub in ["blobs", "tmp", "uploads"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        Ok(FilesStore {
            root: root.to_path_buf(),
            min_free,
        })
    }

    fn blob_path(&self, id: &str) -> Result<PathBuf> {
        // Ids are made here (32 hex characters); one that is not cannot
        // name a file of this store.
        if id.len() < 2 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Corrupt(format!("{id:?} is not a blob id")));
        }
        Ok(self.root.join("blobs").join(&id[..2]).join(id))
    }

    fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.root.join("uploads").join(upload_id)
    }

    /// Where body `name` of `space` lives (renders: the render cache's
    /// own directory).
    pub fn path_of(&self, space: Space, name: &str) -> Result<PathBuf> {
        let plain = |n: &str| {
            !n.is_empty()
                && !n.starts_with('.')
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        match space {
            Space::Blobs => self.blob_path(name),
            Space::Chunks => match name.split_once('/') {
                Some((upload, chunk)) if plain(upload) && plain(chunk) => {
                    Ok(self.upload_dir(upload).join(chunk))
                }
                _ => Err(Error::Corrupt(format!("{name:?} is not a chunk name"))),
            },
            Space::Renders if plain(name) => Ok(self.root.join("renders").join(name)),
            Space::Renders => Err(Error::Corrupt(format!("{name:?} is not a render name"))),
        }
    }

    /// Every body of `space` in this store: its name (as
    /// [`FilesStore::path_of`] takes it), path and size. For migration.
    pub fn list(&self, space: Space) -> Result<Vec<(String, PathBuf, u64)>> {
        let mut out = Vec::new();
        let files = |dir: &Path| -> Result<Vec<(String, PathBuf, u64)>> {
            let mut found = Vec::new();
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
                Err(e) => return Err(e.into()),
            };
            for entry in entries {
                let entry = entry?;
                let meta = entry.metadata()?;
                found.push((
                    entry.file_name().to_string_lossy().into_owned(),
                    entry.path(),
                    meta.len(),
                ));
            }
            Ok(found)
        };
        match space {
            Space::Blobs => {
                for (_, fan, _) in files(&self.root.join("blobs"))? {
                    out.extend(files(&fan)?);
                }
            }
            Space::Chunks => {
                for (upload, dir, _) in files(&self.root.join("uploads"))? {
                    for (chunk, path, size) in files(&dir)? {
                        out.push((format!("{upload}/{chunk}"), path, size));
                    }
                }
            }
            Space::Renders => out = files(&self.root.join("renders"))?,
        }
        out.sort();
        Ok(out)
    }

    fn take_file_sink(body: BlobWriter) -> Result<(Box<TempFileSink>, u64, String)> {
        body.finish().take_sink::<TempFileSink>()
    }
}

impl BlobStore for FilesStore {
    fn writer(&self, limit: u64) -> BoxFuture<'_, Result<BlobWriter>> {
        Box::pin(async move {
            let tmp = self.root.join("tmp").join(ids::random_hex128());
            let file = tokio::fs::File::create(&tmp).await?;
            let sink = TempFileSink::new(file, tmp);
            let store = self.clone();
            let free = Box::new(move || store.free_bytes());
            Ok(BlobWriter::new(Box::new(sink), limit, self.min_free, free))
        })
    }

    fn commit(&self, body: BlobWriter) -> BoxFuture<'_, Result<BlobInfo>> {
        Box::pin(async move {
            let (sink, size, hash) = Self::take_file_sink(body)?;
            let id = ids::random_hex128();
            persist(sink, &self.blob_path(&id)?).await?;
            Ok(BlobInfo { id, size, hash })
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let removed = match self.blob_path(id) {
                Ok(path) => tokio::fs::remove_file(path).await.map_err(Error::from),
                Err(e) => Err(e),
            };
            match removed {
                Ok(()) => {}
                Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(blob = id, error = %e, "could not remove a replaced body; the next start sweeps it")
                }
            }
        })
    }

    fn open<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<tokio::fs::File>>> {
        Box::pin(async move {
            match tokio::fs::File::open(self.blob_path(id)?).await {
                Ok(file) => Ok(Some(file)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn local_path<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<PathBuf>> {
        Box::pin(async move { self.blob_path(id) })
    }

    fn put_chunk<'a>(
        &'a self,
        upload_id: &'a str,
        chunk_id: u32,
        body: BlobWriter,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let (sink, _, _) = Self::take_file_sink(body)?;
            let dest = self.upload_dir(upload_id).join(chunk_id.to_string());
            persist(sink, &dest).await
        })
    }

    fn open_chunk<'a>(
        &'a self,
        upload_id: &'a str,
        chunk_id: u32,
    ) -> BoxFuture<'a, Result<ChunkReader>> {
        Box::pin(async move {
            let path = self.upload_dir(upload_id).join(chunk_id.to_string());
            let file = tokio::fs::File::open(path).await?;
            Ok(Box::new(file) as ChunkReader)
        })
    }

    fn remove_chunks<'a>(&'a self, upload_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = tokio::fs::remove_dir_all(self.upload_dir(upload_id)).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(upload = upload_id, error = %e, "could not remove an upload's chunks; the next start sweeps them");
                }
            }
        })
    }

    fn free_bytes(&self) -> Result<Option<u64>> {
        Ok(Some(free_bytes(&self.root.join("tmp"))?))
    }

    fn sweep(
        &self,
        blobs: &HashSet<String>,
        uploads: &HashSet<String>,
        // The render cache sweeps `renders/` itself.
        _renders: &HashSet<String>,
    ) -> Result<usize> {
        let tmp = self.root.join("tmp");
        std::fs::remove_dir_all(&tmp)?;
        std::fs::create_dir_all(&tmp)?;
        let mut removed = 0;
        for fan in std::fs::read_dir(self.root.join("blobs"))? {
            for entry in std::fs::read_dir(fan?.path())? {
                let entry = entry?;
                if !blobs.contains(entry.file_name().to_string_lossy().as_ref()) {
                    std::fs::remove_file(entry.path())?;
                    removed += 1;
                }
            }
        }
        for entry in std::fs::read_dir(self.root.join("uploads"))? {
            let entry = entry?;
            if !uploads.contains(entry.file_name().to_string_lossy().as_ref()) {
                std::fs::remove_dir_all(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn put_render<'a>(&'a self, _name: &'a str, _path: &'a Path) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn fetch_render<'a>(&'a self, _name: &'a str, _dest: &'a Path) -> BoxFuture<'a, Result<bool>> {
        // `renders/` is the only copy: a render missing there is gone.
        Box::pin(async { Ok(false) })
    }

    fn remove_render<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, ()> {
        // The render cache deletes its file itself.
        Box::pin(async {})
    }

    fn import<'a>(
        &'a self,
        space: Space,
        name: &'a str,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let dest = self.path_of(space, name)?;
            let size = tokio::fs::metadata(path).await?.len();
            if let Ok(there) = tokio::fs::metadata(&dest).await {
                if there.len() == size {
                    return Ok(false);
                }
            }
            let tmp = self.root.join("tmp").join(ids::random_hex128());
            tokio::fs::copy(path, &tmp).await?;
            let sink = Box::new(TempFileSink::new(tokio::fs::File::open(&tmp).await?, tmp));
            persist(sink, &dest).await?;
            Ok(true)
        })
    }

    fn stored_size<'a>(
        &'a self,
        space: Space,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>>> {
        Box::pin(async move {
            match tokio::fs::metadata(self.path_of(space, name)?).await {
                Ok(meta) => Ok(Some(meta.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }
}

/// Syncs a finished body, renames it to `dest` and syncs `dest`'s
/// directory, so that both the bytes and the name survive a crash.
async fn persist(sink: Box<TempFileSink>, dest: &Path) -> Result<()> {
    let body = sink.close(true).await?;
    let dir = dest
        .parent()
        .ok_or_else(|| Error::Corrupt("blob path has no parent".into()))?;
    tokio::fs::create_dir_all(dir).await?;
    body.persist(dest).await?;
    sync_dir(dir).await
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
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn a_body_is_refused_while_less_than_the_reserve_is_free_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        // A reserve larger than what is free: the first write is refused.
        let blobs = FilesStore::open(dir.path(), free.saturating_add(1 << 30)).unwrap();
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
        let blobs = FilesStore::open(dir.path(), 0).unwrap();
        let mut writer = blobs.writer(1 << 20).await.unwrap();
        writer.write(b"hello").await.unwrap();
        assert_eq!(blobs.commit(writer).await.unwrap().size, 5);
    }

    #[tokio::test]
    async fn through_the_trait_a_blob_is_committed_read_back_and_swept_once_unreferenced() {
        let dir = tempfile::tempdir().unwrap();
        let store: Box<dyn BlobStore> = Box::new(FilesStore::open(dir.path(), 0).unwrap());
        let mut writer = store.writer(100).await.unwrap();
        writer.write(b"a body").await.unwrap();
        let blob = store.commit(writer).await.unwrap();
        assert_eq!(blob.hash, blake3::hash(b"a body").to_hex().to_string());
        let mut text = String::new();
        let mut file = store.open(&blob.id).await.unwrap().unwrap();
        file.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "a body");
        assert_eq!(
            std::fs::read(store.local_path(&blob.id).await.unwrap()).unwrap(),
            b"a body"
        );
        let kept = HashSet::from([blob.id.clone()]);
        assert_eq!(
            store
                .sweep(&kept, &HashSet::new(), &HashSet::new())
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .sweep(&HashSet::new(), &HashSet::new(), &HashSet::new())
                .unwrap(),
            1
        );
        assert!(store.open(&blob.id).await.unwrap().is_none());
        assert!(
            store.open("../../etc/passwd").await.is_err(),
            "an id that is no blob id names no file"
        );
    }
}
