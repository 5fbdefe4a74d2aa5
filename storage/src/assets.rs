//! Assets: a project's media files, with metadata in the repository and
//! bodies in the blob store.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{child_key, child_prefix, ids, BlobWriter, Collection, Error, Result, Store};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Asset {
    pub name: String,
    pub size: u64,
    pub content_type: String,
    /// BLAKE3 of the body, hex: the strong ETag.
    pub hash: String,
    /// Unix seconds of the last write.
    pub modified: u64,
    blob: String,
}

impl Asset {
    pub(crate) fn blob_id(&self) -> &str {
        &self.blob
    }
}

/// An asset's metadata with its body opened for reading. The body cannot
/// change under the reader: a replaced asset gets a new blob.
pub struct AssetBody {
    pub asset: Asset,
    pub file: tokio::fs::File,
}

impl Store {
    /// Starts writing a body of at most `limit` bytes; hand it to
    /// [`Store::put_asset`] when complete.
    pub async fn new_body(&self, limit: u64) -> Result<BlobWriter> {
        self.blobs.writer(limit).await
    }

    /// Stores `body` as asset `name` of project `uid`, replacing any earlier
    /// version. Returns the asset and whether it is new. The caller has
    /// checked that the account owns the project.
    pub async fn put_asset(
        &self,
        uid: &str,
        name: &str,
        content_type: &str,
        body: BlobWriter,
    ) -> Result<(Asset, bool)> {
        let blob = self.blobs.commit(body).await?;
        let asset = Asset {
            name: name.to_owned(),
            size: blob.size,
            content_type: content_type.to_owned(),
            hash: blob.hash,
            modified: ids::unix_now(),
            blob: blob.id,
        };
        let stored = self.insert_asset_record(uid, &asset).await;
        match stored {
            Ok(old) => {
                if let Some(old) = &old {
                    self.blobs.remove(&old.blob).await;
                }
                Ok((asset, old.is_none()))
            }
            Err(e) => {
                self.blobs.remove(&asset.blob).await;
                Err(e)
            }
        }
    }

    async fn insert_asset_record(&self, uid: &str, asset: &Asset) -> Result<Option<Asset>> {
        let old = self
            .insert_child(
                Collection::Assets,
                uid,
                &asset.name,
                serde_json::to_vec(asset)?,
            )
            .await?;
        self.changed(uid).await;
        old.map(|bytes| serde_json::from_slice(&bytes).map_err(Error::from))
            .transpose()
    }

    pub fn assets(&self, uid: &str) -> Result<Vec<Asset>> {
        self.records(Collection::Assets, &child_prefix(uid))
    }

    pub fn asset(&self, uid: &str, name: &str) -> Result<Asset> {
        self.record(Collection::Assets, &child_key(uid, name))?
            .ok_or_else(|| Error::AssetNotFound(name.to_owned()))
    }

    /// A path on this machine holding asset `name`'s body, for a reader
    /// that opens it itself (a render): a store that keeps bodies elsewhere
    /// copies it into its local cache first.
    pub async fn asset_local_path(&self, uid: &str, name: &str) -> Result<PathBuf> {
        let asset = self.asset(uid, name)?;
        self.body_local_path(&asset).await
    }

    /// As [`Store::asset_local_path`], for the very version `asset`
    /// describes (a render checks the version before it reads). Bodies
    /// never change in place; a replaced asset gets a new blob.
    pub async fn body_local_path(&self, asset: &Asset) -> Result<PathBuf> {
        self.blobs.local_path(asset.blob_id()).await
    }

    /// The asset with its body open for reading.
    pub async fn open_asset(&self, uid: &str, name: &str) -> Result<AssetBody> {
        // A concurrent replace may remove the body between reading the record
        // and opening the blob; the record read again then names the new one.
        for _ in 0..3 {
            let asset = self.asset(uid, name)?;
            if let Some(file) = self.blobs.open(&asset.blob).await? {
                return Ok(AssetBody { asset, file });
            }
        }
        Err(Error::AssetNotFound(name.to_owned()))
    }

    pub async fn delete_asset(&self, uid: &str, name: &str) -> Result<()> {
        let old = self
            .repo
            .remove(Collection::Assets, &child_key(uid, name))?
            .ok_or_else(|| Error::AssetNotFound(name.to_owned()))?;
        self.flush().await?;
        self.changed(uid).await;
        let old: Asset = serde_json::from_slice(&old)?;
        self.blobs.remove(&old.blob).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use crate::test_support::store;
    use crate::{AccountId, Error};

    #[tokio::test]
    async fn a_body_round_trips_with_its_hash() {
        let (_dir, store) = store();
        let p = store
            .create_project(&AccountId("a".into()), "p")
            .await
            .unwrap();
        let mut body = store.new_body(1 << 20).await.unwrap();
        body.write(b"hello ").await.unwrap();
        body.write(b"world").await.unwrap();
        let (asset, created) = store
            .put_asset(&p.uid, "x.txt", "text/plain", body)
            .await
            .unwrap();
        assert!(created);
        assert_eq!(asset.size, 11);
        assert_eq!(
            asset.hash,
            blake3::hash(b"hello world").to_hex().to_string()
        );
        let mut opened = store.open_asset(&p.uid, "x.txt").await.unwrap();
        let mut text = String::new();
        opened.file.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "hello world");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_and_leaves_nothing() {
        let (dir, store) = store();
        let mut body = store.new_body(4).await.unwrap();
        assert!(matches!(
            body.write(b"12345").await,
            Err(Error::TooLarge { limit: 4 })
        ));
        drop(body);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[tokio::test]
    async fn replacing_an_asset_removes_the_old_body() {
        let (dir, store) = store();
        let p = store
            .create_project(&AccountId("a".into()), "p")
            .await
            .unwrap();
        for text in [&b"one"[..], b"two"] {
            let mut body = store.new_body(100).await.unwrap();
            body.write(text).await.unwrap();
            store
                .put_asset(&p.uid, "x", "text/plain", body)
                .await
                .unwrap();
        }
        let files: usize = std::fs::read_dir(dir.path().join("blobs"))
            .unwrap()
            .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
            .sum();
        assert_eq!(files, 1);
        assert_eq!(store.asset(&p.uid, "x").unwrap().size, 3);
    }

    #[tokio::test]
    async fn an_asset_of_a_deleted_project_is_not_stored() {
        let (_dir, store) = store();
        let a = AccountId("a".into());
        let p = store.create_project(&a, "p").await.unwrap();
        let body = store.new_body(100).await.unwrap();
        store.delete_project(&a, &p.uid).await.unwrap();
        assert!(matches!(
            store.put_asset(&p.uid, "x", "text/plain", body).await,
            Err(Error::ProjectNotFound(_))
        ));
    }
}
