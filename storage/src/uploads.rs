//! Chunked uploads: a large asset sent as numbered chunks, in any order and
//! retried at will, then assembled into one asset.
//!
//! Each received chunk is kept by the blob store under its upload (written
//! like any body, never visible half-written), and the upload's record
//! lists the chunks received with their sizes. Both survive a restart, so
//! an upload can be finished after one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::{ids, Asset, BlobWriter, Collection, Error, Result, Store, UploadError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Upload {
    pub id: String,
    pub project: String,
    /// The asset name the chunks become.
    pub name: String,
    pub chunk_count: u32,
    pub chunk_size: u64,
    /// Received chunk id → its size in bytes.
    pub chunks: BTreeMap<u32, u64>,
    pub created: u64,
    /// Set while `finished` assembles the chunks.
    #[serde(default)]
    pub assembling: bool,
}

/// Bounds on what `begin_upload` accepts.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub max_chunk_count: u32,
    pub max_chunk_bytes: u64,
    pub max_asset_bytes: u64,
}

impl Upload {
    fn last_chunk(&self) -> u32 {
        self.chunk_count - 1
    }

    /// Checks the size of chunk `chunk_id`: exactly `chunk_size`, except the
    /// last, which may be shorter but not empty.
    fn check_chunk(&self, chunk_id: u32, size: u64) -> Result<(), UploadError> {
        if chunk_id > self.last_chunk() {
            return Err(UploadError::BadChunkId {
                chunk_id,
                last: self.last_chunk(),
            });
        }
        if size == 0 {
            return Err(UploadError::EmptyChunk { chunk_id });
        }
        if chunk_id < self.last_chunk() && size != self.chunk_size {
            return Err(UploadError::WrongChunkSize {
                chunk_id,
                expected: self.chunk_size,
                got: size,
            });
        }
        Ok(())
    }

    /// Every chunk present with a valid size.
    fn check_complete(&self) -> Result<(), UploadError> {
        let missing: Vec<u32> = (0..self.chunk_count)
            .filter(|id| !self.chunks.contains_key(id))
            .collect();
        if !missing.is_empty() {
            return Err(UploadError::MissingChunks {
                missing,
                received: self.chunks.len() as u32,
                count: self.chunk_count,
            });
        }
        for (&id, &size) in &self.chunks {
            self.check_chunk(id, size)?;
        }
        Ok(())
    }
}

impl Store {
    /// Starts a chunked upload of asset `name` into project `uid`.
    pub async fn begin_upload(
        &self,
        uid: &str,
        name: &str,
        chunk_count: u32,
        chunk_size: u64,
        limits: UploadLimits,
    ) -> Result<Upload> {
        if chunk_count == 0 || chunk_count > limits.max_chunk_count {
            return Err(UploadError::BadChunkCount {
                max: limits.max_chunk_count,
            }
            .into());
        }
        if chunk_size == 0 || chunk_size > limits.max_chunk_bytes {
            return Err(UploadError::BadChunkSize {
                max: limits.max_chunk_bytes,
            }
            .into());
        }
        let total = u64::from(chunk_count).saturating_mul(chunk_size);
        // The last chunk may be short, so the smallest possible total is what
        // must fit.
        let smallest = total - chunk_size + 1;
        if smallest > limits.max_asset_bytes {
            return Err(UploadError::TotalTooLarge {
                total: smallest,
                max: limits.max_asset_bytes,
            }
            .into());
        }
        let upload = Upload {
            id: ids::random_hex128(),
            project: uid.to_owned(),
            name: name.to_owned(),
            chunk_count,
            chunk_size,
            chunks: BTreeMap::new(),
            created: ids::unix_now(),
            assembling: false,
        };
        self.put_record(Collection::Uploads, &upload.id, &upload)?;
        self.flush().await?;
        Ok(upload)
    }

    /// The upload `upload_id` of project `uid`, if it exists and has not
    /// expired.
    pub fn upload(&self, uid: &str, upload_id: &str) -> Result<Upload> {
        let not_found = || Error::UploadNotFound(upload_id.to_owned());
        let upload: Upload = self
            .record(Collection::Uploads, upload_id)?
            .ok_or_else(not_found)?;
        if upload.project != uid || self.is_expired(&upload) {
            return Err(not_found());
        }
        Ok(upload)
    }

    /// Starts a chunk's body; at most `chunk_size` bytes are accepted.
    pub async fn new_chunk_body(&self, upload: &Upload) -> Result<BlobWriter> {
        self.blobs.writer(upload.chunk_size).await
    }

    /// Stores chunk `chunk_id`. A chunk sent again replaces the earlier copy.
    pub async fn put_chunk(
        &self,
        uid: &str,
        upload_id: &str,
        chunk_id: u32,
        body: BlobWriter,
    ) -> Result<Upload> {
        let upload = self.upload(uid, upload_id)?;
        if upload.assembling {
            return Err(UploadError::AlreadyFinishing.into());
        }
        let size = body.size();
        upload.check_chunk(chunk_id, size)?;
        self.blobs.put_chunk(upload_id, chunk_id, body).await?;
        let upload = self.update_record(
            Collection::Uploads,
            upload_id,
            || Error::UploadNotFound(upload_id.to_owned()),
            |u: &mut Upload| {
                if u.assembling {
                    return Err(UploadError::AlreadyFinishing);
                }
                u.chunks.insert(chunk_id, size);
                Ok(())
            },
        )?;
        self.flush().await?;
        Ok(upload)
    }

    /// Verifies that every chunk is there with the right size, assembles
    /// them into the asset, and removes the upload. On any failure the
    /// upload stays as it was, so the client can send what is missing and
    /// call this again.
    pub async fn finish_upload(
        &self,
        uid: &str,
        upload_id: &str,
        content_type: &str,
    ) -> Result<(Asset, bool)> {
        let upload = self.upload(uid, upload_id)?;
        upload.check_complete()?;
        self.set_assembling(upload_id, true)?;
        let assembled = self.assemble(&upload, content_type).await;
        match assembled {
            Ok(done) => {
                self.remove_upload(upload_id).await?;
                Ok(done)
            }
            Err(e) => {
                self.set_assembling(upload_id, false)?;
                self.flush().await?;
                Err(e)
            }
        }
    }

    fn set_assembling(&self, upload_id: &str, on: bool) -> Result<Upload> {
        self.update_record(
            Collection::Uploads,
            upload_id,
            || Error::UploadNotFound(upload_id.to_owned()),
            |u: &mut Upload| {
                if on && u.assembling {
                    return Err(UploadError::AlreadyFinishing);
                }
                u.assembling = on;
                Ok(())
            },
        )
    }

    async fn assemble(&self, upload: &Upload, content_type: &str) -> Result<(Asset, bool)> {
        let total = upload.chunks.values().sum();
        let mut body = self.blobs.writer(total).await?;
        let mut buf = vec![0u8; 256 * 1024];
        for chunk_id in 0..upload.chunk_count {
            let mut chunk = self.blobs.open_chunk(&upload.id, chunk_id).await?;
            loop {
                let n = chunk.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                body.write(&buf[..n]).await?;
            }
        }
        if body.size() != total {
            return Err(Error::Corrupt(format!(
                "upload {} assembled to {} bytes, expected {total}",
                upload.id,
                body.size()
            )));
        }
        self.put_asset(&upload.project, &upload.name, content_type, body)
            .await
    }

    async fn remove_upload(&self, upload_id: &str) -> Result<()> {
        self.repo.remove(Collection::Uploads, upload_id)?;
        self.flush().await?;
        self.blobs.remove_chunks(upload_id).await;
        Ok(())
    }

    pub(crate) async fn remove_uploads_of(&self, uid: &str) -> Result<()> {
        let ids: Vec<String> = self
            .repo
            .scan_prefix(Collection::Uploads, "")?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<Upload>(&v).ok())
            .filter(|u| u.project == uid)
            .map(|u| u.id)
            .collect();
        for id in ids {
            self.remove_upload(&id).await?;
        }
        Ok(())
    }

    fn is_expired(&self, upload: &Upload) -> bool {
        upload
            .created
            .saturating_add(self.options.upload_expiry_secs)
            < ids::unix_now()
    }

    /// Removes uploads past their expiry. Safe to run while serving.
    pub async fn expire_uploads(&self) -> Result<usize> {
        let expired: Vec<String> = self
            .records::<Upload>(Collection::Uploads, "")?
            .into_iter()
            .filter(|u| self.is_expired(u))
            .map(|u| u.id)
            .collect();
        for id in &expired {
            self.remove_upload(id).await?;
        }
        Ok(expired.len())
    }

    /// At open: expired uploads go (their chunks with them, in the blob
    /// store's sweep), and an assembly cut off by a crash is undone so that
    /// it can be retried.
    pub(crate) fn sweep_uploads(&self) -> Result<usize> {
        let mut removed = 0;
        for upload in self.records::<Upload>(Collection::Uploads, "")? {
            if self.is_expired(&upload) {
                self.repo.remove(Collection::Uploads, &upload.id)?;
                removed += 1;
            } else if upload.assembling && !self.blobs.shared() {
                // On one node nothing assembles while the store opens. With
                // a shared store another node may be assembling it now:
                // the mark stays until the upload expires.
                self.set_assembling(&upload.id, false)?;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::store;
    use crate::AccountId;

    const LIMITS: UploadLimits = UploadLimits {
        max_chunk_count: 100,
        max_chunk_bytes: 1 << 20,
        max_asset_bytes: 1 << 30,
    };

    async fn chunk(store: &Store, upload: &Upload, data: &[u8]) -> BlobWriter {
        let mut body = store.new_chunk_body(upload).await.unwrap();
        body.write(data).await.unwrap();
        body
    }

    #[tokio::test]
    async fn chunks_in_any_order_assemble_in_order() {
        let (_dir, store) = store();
        let p = store
            .create_project(&AccountId("a".into()), "p")
            .await
            .unwrap();
        let up = store
            .begin_upload(&p.uid, "v.bin", 3, 4, LIMITS)
            .await
            .unwrap();
        for (id, data) in [(2u32, &b"ij"[..]), (0, b"abcd"), (1, b"efgh"), (1, b"efgh")] {
            let body = chunk(&store, &up, data).await;
            store.put_chunk(&p.uid, &up.id, id, body).await.unwrap();
        }
        let (asset, _) = store
            .finish_upload(&p.uid, &up.id, "application/octet-stream")
            .await
            .unwrap();
        assert_eq!(asset.size, 10);
        assert_eq!(asset.hash, blake3::hash(b"abcdefghij").to_hex().to_string());
        assert!(matches!(
            store.upload(&p.uid, &up.id),
            Err(Error::UploadNotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_missing_chunk_is_named_and_the_upload_survives() {
        let (_dir, store) = store();
        let p = store
            .create_project(&AccountId("a".into()), "p")
            .await
            .unwrap();
        let up = store
            .begin_upload(&p.uid, "v.bin", 3, 4, LIMITS)
            .await
            .unwrap();
        let body = chunk(&store, &up, b"abcd").await;
        store.put_chunk(&p.uid, &up.id, 0, body).await.unwrap();
        let err = store
            .finish_upload(&p.uid, &up.id, "x/y")
            .await
            .unwrap_err();
        match err {
            Error::Upload(UploadError::MissingChunks { missing, .. }) => {
                assert_eq!(missing, vec![1, 2])
            }
            other => panic!("unexpected {other}"),
        }
        assert!(!store.upload(&p.uid, &up.id).unwrap().assembling);
    }

    #[tokio::test]
    async fn wrong_sizes_are_refused() {
        let (_dir, store) = store();
        let p = store
            .create_project(&AccountId("a".into()), "p")
            .await
            .unwrap();
        let up = store
            .begin_upload(&p.uid, "v.bin", 2, 4, LIMITS)
            .await
            .unwrap();
        let short = chunk(&store, &up, b"abc").await;
        assert!(matches!(
            store.put_chunk(&p.uid, &up.id, 0, short).await,
            Err(Error::Upload(UploadError::WrongChunkSize {
                chunk_id: 0,
                expected: 4,
                got: 3
            }))
        ));
        let beyond = chunk(&store, &up, b"abcd").await;
        assert!(matches!(
            store.put_chunk(&p.uid, &up.id, 2, beyond).await,
            Err(Error::Upload(UploadError::BadChunkId {
                chunk_id: 2,
                last: 1
            }))
        ));
        let mut long = store.new_chunk_body(&up).await.unwrap();
        assert!(matches!(
            long.write(b"abcde").await,
            Err(Error::TooLarge { limit: 4 })
        ));
    }

    #[tokio::test]
    async fn limits_bound_what_can_begin() {
        let (_dir, store) = store();
        let p = store
            .create_project(&AccountId("a".into()), "p")
            .await
            .unwrap();
        for (count, size) in [(0, 4), (101, 4), (1, 0), (1, (1 << 20) + 1)] {
            assert!(
                store
                    .begin_upload(&p.uid, "v", count, size, LIMITS)
                    .await
                    .is_err(),
                "{count} {size}"
            );
        }
        let tight = UploadLimits {
            max_asset_bytes: 10,
            ..LIMITS
        };
        assert!(store.begin_upload(&p.uid, "v", 3, 5, tight).await.is_err());
        assert!(store.begin_upload(&p.uid, "v", 3, 4, tight).await.is_ok());
    }
}
