//! Clipstream's durable state: records in a metadata repository, media
//! bodies in a blob store.
//!
//! [`Store`] is the facade every caller uses; behind it sit two traits, so
//! that another backend is one more implementation and no route or actor
//! changes (pict-rs's repo/store split):
//! - [`Repo`] (`repo/`): named collections of small JSON records with
//!   get/insert/remove/scan, compare-and-swap and all-or-nothing batches;
//!   [`SledRepo`] today.
//! - [`BlobStore`] (`blob/`): immutable bodies and upload chunks, written
//!   through a bounded, hashing [`BlobWriter`]; [`FilesStore`] today.
//!
//! Every method that changes state flushes the repository before it
//! returns: a caller that answers 2xx after it has a durable write.
//!
//! Layout of the data directory with the default backends:
//! - `db/`       sled
//! - `blobs/`    asset bodies, named by random id
//! - `uploads/`  received chunks of unfinished chunked uploads
//! - `renders/`  finished renders (the render cache, see `render_cache`)
//!
//! Encoded segments (`segment_cache`) are blobs, indexed by content key.
//! - `tmp/`      files being written; emptied at every open
//!
//! With the S3 blob store (`blob/s3.rs`), bodies and finished renders live
//! in the bucket every node shares, and `cache/` holds this node's copies
//! of blobs (`renders/` stays this node's render cache, filled from the
//! bucket on a miss).

pub mod blob;
pub mod cluster;
mod error;
mod generations;
mod ids;
pub mod names;
mod records;
pub mod repo;

pub mod assets;
pub mod callbacks;
pub mod hosted;
pub mod jobs;
pub mod keys;
pub mod movies;
pub mod pixop_users;
pub mod pixop_videos;
pub mod projects;
pub mod render_cache;
pub mod renders;
pub mod segment_cache;
pub mod shotstack_renders;
pub mod sources;
pub mod upload_tasks;
pub mod uploads;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use assets::{Asset, AssetBody};
pub use blob::{BlobInfo, BlobStore, BlobWriter, FilesStore, S3Options, S3Store, Space};
pub use callbacks::PendingCallback;
pub use error::{Error, Result, UploadError};
pub use generations::Generation;
pub use hosted::{HostedFile, HostedStatus};
pub use ids::{hex, unix_now, unix_now_ms};
pub use jobs::{Job, JobError, JobState};
pub use keys::{AccountId, KeyInfo, NewKey};
pub use movies::Movie;
pub use pixop_users::{Ban, EmailTaken, NewPixopUser, PixopTeam, PixopUser};
pub use pixop_videos::{PixopMedia, PixopVideo};
pub use projects::{Project, Publication};
pub use render_cache::{CachedRender, OpenRender, Segment};
pub use renders::{MovieChoice, RenderPage, RenderRequest};
pub use repo::{BatchOutcome, Collection, PgRepo, Repo, SledRepo, Step};
pub use segment_cache::CachedSegment;
pub use shotstack_renders::{RenderOutcome, ShotstackRender, TemplateName};
pub use sources::{Claim, GrantState, Rendition, Source, SourceStatus, Swept, UploadGrant};
pub use upload_tasks::{UploadState, UploadTask};
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
/// repository and one blob store.
#[derive(Clone)]
pub struct Store {
    repo: Arc<dyn Repo>,
    blobs: Arc<dyn BlobStore>,
    /// The data directory: the render cache's files live here whatever
    /// the backends.
    root: PathBuf,
    open_renders: Arc<render_cache::OpenRenders>,
    /// Downloads of cached renders from a shared store, one per render.
    render_fetches: Arc<render_cache::Fetches>,
    segments: Arc<segment_cache::SegmentIndex>,
    generations: Arc<generations::Generations>,
    /// The other nodes sharing the repository, if any (see `cluster`).
    cluster: Arc<dyn cluster::Coordinator>,
    /// The key of the token MAC (see `renders`).
    token_key: [u8; 32],
    options: StoreOptions,
}

impl Store {
    /// Opens (creating if needed) the store in `dir` with the default
    /// backends, sled and files, then removes what a crash may have left
    /// behind (see [`Store::sweep`]).
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Store> {
        std::fs::create_dir_all(dir)?;
        let repo = SledRepo::open(dir, options.cache_capacity_bytes)?;
        let blobs = FilesStore::open(dir, options.min_free_bytes)?;
        Store::with_backends(dir, Arc::new(repo), Arc::new(blobs), options)
    }

    /// The store over any repository and blob store; `dir` keeps the
    /// render cache (`renders/`, and `tmp/` for renders in progress).
    pub fn with_backends(
        dir: &Path,
        repo: Arc<dyn Repo>,
        blobs: Arc<dyn BlobStore>,
        options: StoreOptions,
    ) -> Result<Store> {
        for sub in ["renders", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let store = Store {
            token_key: token_key(repo.as_ref())?,
            repo,
            blobs,
            root: dir.to_path_buf(),
            open_renders: Arc::default(),
            render_fetches: Arc::default(),
            segments: Arc::default(),
            generations: Arc::default(),
            cluster: Arc::new(cluster::Local::new(Vec::new())),
            options,
        };
        let indexed = store.index_tokens_by_time()?;
        if indexed > 0 {
            tracing::info!(tokens = indexed, "indexed the tokens by time");
        }
        store.sweep()?;
        Ok(store)
    }

    /// The store as a node of the cluster `coordinator` speaks for: it
    /// follows the other nodes' changes from now on.
    pub fn with_coordinator(mut self, coordinator: Arc<dyn cluster::Coordinator>) -> Store {
        let generations = self.generations.clone();
        coordinator.listen(Arc::new(move |uid: Option<&str>| match uid {
            Some(uid) => generations.bump(uid),
            None => generations.bump_all(),
        }));
        self.cluster = coordinator;
        self
    }

    /// The cluster this store's node belongs to.
    pub fn cluster(&self) -> &Arc<dyn cluster::Coordinator> {
        &self.cluster
    }

    /// Project `uid`'s content changed: memos of it are stale, here and
    /// on every other node.
    async fn changed(&self, uid: &str) {
        self.generations.bump(uid);
        if self.cluster.shared() {
            self.cluster.announce(uid).await;
        }
    }

    /// Makes every change so far durable.
    pub async fn flush(&self) -> Result<()> {
        self.repo.flush().await
    }

    /// The blocking twin of [`Store::flush`], for the CLI and shutdown.
    pub fn flush_blocking(&self) -> Result<()> {
        self.repo.flush_blocking()
    }

    pub fn data_dir(&self) -> &Path {
        &self.root
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
    /// be in use on this node; a blob store other nodes share keeps what
    /// they may be writing (see [`BlobStore::sweep`]).
    pub fn sweep(&self) -> Result<()> {
        clear_dir(&self.root.join("tmp"))?;
        let removed = self.remove_orphan_records()?
            + self.sweep_uploads()?
            + self.sweep_renders()?
            + self.sweep_jobs()?
            + self.sweep_upload_tasks()?;
        let assets: Vec<Asset> = self.records(Collection::Assets, "")?;
        let mut referenced: std::collections::HashSet<String> =
            assets.iter().map(|a| a.blob_id().to_owned()).collect();
        // Pixop videos' media are bodies of no asset.
        referenced.extend(self.pixop_blobs()?);
        referenced.extend(self.segment_blobs()?);
        let uploads = self
            .record_keys(Collection::Uploads, "")?
            .into_iter()
            .collect();
        let renders = self
            .record_keys(Collection::RenderCache, "")?
            .into_iter()
            .collect();
        let bodies = self.blobs.sweep(&referenced, &uploads, &renders)?;
        if removed + bodies > 0 {
            tracing::info!(
                records = removed,
                bodies,
                "swept what an interrupted run left behind"
            );
        }
        self.flush_blocking()
    }

    fn remove_orphan_records(&self) -> Result<usize> {
        let mut removed = self.remove_orphan_children()?;
        for (token, record) in self.repo.scan_prefix(Collection::Tokens, "")? {
            let request: RenderRequest = serde_json::from_slice(&record)?;
            if !self.repo.contains(Collection::Projects, &request.project)? {
                self.repo.remove(Collection::Tokens, &token)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn remove_orphan_children(&self) -> Result<usize> {
        let mut removed = 0;
        for collection in [
            Collection::Assets,
            Collection::Movies,
            Collection::ProjectTokens,
            Collection::ProjectTokensByTime,
            Collection::ShotstackTemplates,
        ] {
            for key in self.record_keys(collection, "")? {
                let uid = key.split('/').next().unwrap_or_default();
                if !self.repo.contains(Collection::Projects, uid)? {
                    self.repo.remove(collection, &key)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

impl Store {
    /// Inserts `record` as child `name` of project `uid` in one batch with
    /// the check that the project still exists (it may be deleted while a
    /// body streams in), then flushes. Returns the record it replaced.
    async fn insert_child(
        &self,
        collection: Collection,
        uid: &str,
        name: &str,
        record: Vec<u8>,
    ) -> Result<Option<Vec<u8>>> {
        let steps = [
            Step::require_present(Collection::Projects, uid),
            Step::insert(collection, child_key(uid, name), record),
        ];
        match self.repo.batch(&steps)? {
            BatchOutcome::Applied(mut olds) => {
                self.flush().await?;
                Ok(olds.pop().flatten())
            }
            BatchOutcome::Unmet(_) => Err(Error::ProjectNotFound(uid.to_owned())),
        }
    }
}

/// Empties `dir`, keeping it.
fn clear_dir(dir: &Path) -> Result<()> {
    std::fs::remove_dir_all(dir)?;
    std::fs::create_dir_all(dir)?;
    Ok(())
}

/// The token MAC key of this installation, made at first open.
fn token_key(repo: &dyn Repo) -> Result<[u8; 32]> {
    const KEY: &str = "token_key";
    let fresh = ids::random_bytes::<32>();
    // Set only if absent; when an earlier open made the key, that key
    // stays, so tokens survive restarts.
    repo.compare_and_swap(Collection::Meta, KEY, None, Some(fresh.to_vec()))?;
    let stored = repo
        .get(Collection::Meta, KEY)?
        .ok_or_else(|| Error::Corrupt("the token key is missing".into()))?;
    stored
        .as_slice()
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
