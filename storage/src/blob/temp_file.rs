//! A body written to a temporary file, the sink of both blob stores: the
//! files store renames it into place, the S3 store uploads it and keeps
//! it as its local copy. Until then, dropping it deletes what was
//! written, so a body cut off leaves nothing behind.

use std::any::Any;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::BlobSink;
use crate::repo::BoxFuture;
use crate::{Error, Result};

/// A body being written to `tmp`.
pub(crate) struct TempFileSink {
    file: Option<tokio::fs::File>,
    tmp: PathBuf,
}

impl TempFileSink {
    pub(crate) fn new(file: tokio::fs::File, tmp: PathBuf) -> TempFileSink {
        TempFileSink {
            file: Some(file),
            tmp,
        }
    }

    /// Ends writing: the complete file (synced to disk when `sync`), still
    /// deleted when dropped.
    pub(crate) async fn close(mut self: Box<Self>, sync: bool) -> Result<TempFile> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| Error::Corrupt("a body was closed twice".into()))?;
        file.flush().await?;
        if sync {
            file.sync_all().await?;
        }
        drop(file);
        Ok(TempFile(std::mem::take(&mut self.tmp)))
    }
}

impl BlobSink for TempFileSink {
    fn write<'a>(&'a mut self, data: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let file = self
                .file
                .as_mut()
                .ok_or_else(|| Error::Corrupt("a write after the body was closed".into()))?;
            file.write_all(data).await?;
            Ok(())
        })
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

impl Drop for TempFileSink {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A complete body in a temporary file; deleted on drop unless persisted.
pub(crate) struct TempFile(PathBuf);

impl TempFile {
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// Renames the file to `dest` (no sync of the directory: the caller
    /// does that when the name must survive a crash).
    pub(crate) async fn persist(mut self, dest: &Path) -> Result<()> {
        tokio::fs::rename(&self.0, dest).await?;
        self.0 = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
