//! Clipstream's durable state, kept in sled with media bodies as files.
//!
//! Records (accounts, keys, projects, asset metadata, dynamic movies, upload
//! state) live in sled trees as JSON. Media bodies are files under
//! `blobs/`, written to `tmp/` first and renamed into place once complete and
//! synced, so a reader never sees half a file. Every method that changes
//! state flushes sled before it returns: a caller that answers 2xx after it
//! has a durable write.
//!
//! Layout of the data directory:
//! - `db/`       sled
//! - `blobs/`    asset bodies, named by random id
//! - `uploads/`  received chunks of unfinished chunked uploads
//! - `tmp/`      files being written; emptied at every open

mod blobs;
mod error;
mod generations;
mod ids;
mod json_tree;
pub mod names;

pub mod assets;
pub mod jobs;
pub mod keys;
pub mod movies;
pub mod projects;
pub mod render_cache;
pub mod renders;
pub mod uploads;

use std::path::Path;
use std::sync::Arc;

pub use assets::{Asset, AssetBody};
pub use blobs::BlobWriter;
pub use error::{Error, Result, UploadError};
pub use generations::Generation;
pub use ids::unix_now;
pub use jobs::{Job, JobError, JobState};
pub use keys::{AccountId, KeyInfo, NewKey};
pub use movies::Movie;
pub use projects::{Project, Publication};
pub use render_cache::{CachedRender, OpenRender, Segment};
pub use renders::{MovieChoice, RenderRequest};
pub use uploads::{Upload, UploadLimits};

/// Settings the store needs from configuration.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled page cache, in bytes.
    pub cache_capacity_bytes: u64,
    /// Chunked uploads older than this many seconds are discarded.
    pub upload_expiry_secs: u64,
    /// Bodies (assets, chunks) are refused with [`Error::StorageFull`]
    /// while the data directory's filesystem has less than this free, so
    /// that sled's own small writes always find room.
    pub min_free_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_capacity_bytes: 64 << 20,
            upload_expiry_secs: 24 * 3600,
            min_free_bytes: 0,
        }
    }
}

/// The handle to everything stored. Cheap to clone: all clones share one
/// database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    keys: sled::Tree,
    accounts: sled::Tree,
    projects: sled::Tree,
    project_names: sled::Tree,
    assets: sled::Tree,
    movies: sled::Tree,
    uploads: sled::Tree,
    tokens: sled::Tree,
    project_tokens: sled::Tree,
    render_cache: sled::Tree,
    jobs: sled::Tree,
    open_renders: Arc<render_cache::OpenRenders>,
    generations: Arc<generations::Generations>,
    /// The key of the token MAC (see `renders`).
    token_key: [u8; 32],
    blobs: blobs::Blobs,
    options: StoreOptions,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, then removes what a
    /// crash may have left behind (see [`Store::sweep`]).
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Store> {
        std::fs::create_dir_all(dir)?;
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(options.cache_capacity_bytes)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    Error::Locked(dir.display().to_string())
                }
                sled::Error::Io(io) if io.to_string().contains("lock") => {
                    Error::Locked(dir.display().to_string())
                }
                other => other.into(),
            })?;
        let store = Store {
            keys: db.open_tree("keys")?,
            accounts: db.open_tree("accounts")?,
            projects: db.open_tree("projects")?,
            project_names: db.open_tree("project_names")?,
            assets: db.open_tree("assets")?,
            movies: db.open_tree("movies")?,
            uploads: db.open_tree("uploads")?,
            tokens: db.open_tree("tokens")?,
            project_tokens: db.open_tree("project_tokens")?,
            render_cache: db.open_tree("render_cache")?,
            jobs: db.open_tree("jobs")?,
            open_renders: Arc::default(),
            generations: Arc::default(),
            token_key: token_key(&db)?,
            blobs: blobs::Blobs::open(dir, options.min_free_bytes)?,
            db,
            options,
        };
        store.sweep()?;
        Ok(store)
    }

    /// Makes every change so far durable.
    pub async fn flush(&self) -> Result<()> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// The blocking twin of [`Store::flush`], for the CLI and shutdown.
    pub fn flush_blocking(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    pub fn data_dir(&self) -> &Path {
        self.blobs.root()
    }

    /// The counter that moves whenever an asset or movie of project `uid`
    /// is written or deleted (see [`generations`]).
    pub fn generation(&self, uid: &str) -> Generation {
        self.generations.of(uid)
    }

    /// Removes what an interrupted write leaves behind: files in `tmp/`,
    /// records of deleted projects, bodies no record points at, expired or
    /// orphaned uploads, cached renders without their file (or files
    /// without their record), and the "assembling" mark of an upload whose
    /// assembly was cut off (so that `finished` can be called again).
    ///
    /// Runs at open, before any request is served, so nothing it removes can
    /// be in use.
    pub fn sweep(&self) -> Result<()> {
        self.blobs.clear_tmp()?;
        let removed = self.remove_orphan_records()?
            + self.sweep_uploads()?
            + self.sweep_renders()?
            + self.sweep_jobs()?;
        let mut referenced = std::collections::HashSet::new();
        for asset in self.assets.iter().values() {
            let asset: Asset = serde_json::from_slice(&asset?)?;
            referenced.insert(asset.blob_id().to_owned());
        }
        let unreferenced = self.blobs.remove_unreferenced(&referenced)?;
        if removed + unreferenced > 0 {
            tracing::info!(
                records = removed,
                blobs = unreferenced,
                "swept what an interrupted run left behind"
            );
        }
        self.flush_blocking()
    }

    fn remove_orphan_records(&self) -> Result<usize> {
        let mut removed = self.remove_orphan_children()?;
        for entry in self.tokens.iter() {
            let (token, record) = entry?;
            let request: RenderRequest = serde_json::from_slice(&record)?;
            if !self.projects.contains_key(&request.project)? {
                self.tokens.remove(token)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn remove_orphan_children(&self) -> Result<usize> {
        let mut removed = 0;
        for tree in [&self.assets, &self.movies, &self.project_tokens] {
            for key in tree.iter().keys() {
                let key = key?;
                let uid = key.split(|b| *b == b'/').next().unwrap_or_default();
                if !self.projects.contains_key(uid)? {
                    tree.remove(&key)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

impl Store {
    /// Inserts `record` as child `name` of project `uid` in one transaction
    /// with the check that the project still exists (it may be deleted while
    /// a body streams in), then flushes. Returns the record it replaced.
    async fn insert_child(
        &self,
        tree: &sled::Tree,
        uid: &str,
        name: &str,
        record: Vec<u8>,
    ) -> Result<Option<sled::IVec>> {
        use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
        let key = child_key(uid, name);
        let old = (&self.projects, tree)
            .transaction(|(projects, children)| {
                if projects.get(uid.as_bytes())?.is_none() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                Ok(children.insert(key.as_bytes(), record.clone())?)
            })
            .map_err(|e| match e {
                TransactionError::Abort(()) => Error::ProjectNotFound(uid.to_owned()),
                TransactionError::Storage(e) => e.into(),
            })?;
        self.flush().await?;
        Ok(old)
    }
}

/// The token MAC key of this installation, made at first open.
fn token_key(db: &sled::Db) -> Result<[u8; 32]> {
    let fresh = ids::random_bytes::<32>();
    // Set only if absent; when an earlier open made the key (the inner
    // error), that key stays, so tokens survive restarts.
    let _ = db.compare_and_swap("token_key", None as Option<&[u8]>, Some(&fresh[..]))?;
    let stored = db
        .get("token_key")?
        .ok_or_else(|| Error::Corrupt("the token key is missing".into()))?;
    stored
        .as_ref()
        .try_into()
        .map_err(|_| Error::Corrupt("the token key has the wrong length".into()))
}

/// `project uid` + `/` + `name`: the key of a record that belongs to a project.
fn child_key(uid: &str, name: &str) -> String {
    format!("{uid}/{name}")
}

fn child_prefix(uid: &str) -> String {
    format!("{uid}/")
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn options() -> StoreOptions {
        StoreOptions::default()
    }

    pub fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), options()).unwrap();
        (dir, store)
    }
}
