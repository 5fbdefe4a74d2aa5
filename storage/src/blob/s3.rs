//! The S3 blob store (issue 21): bodies as objects in an S3-compatible
//! bucket that every node of a cluster shares, read through a cache on
//! this node's disk.
//!
//! Objects, under the configured prefix:
//! - `blobs/<id>`            asset bodies and cached segments
//! - `uploads/<upload>/<n>`  chunk n of an unfinished upload
//! - `renders/<name>`        finished renders (see `render_cache`)
//!
//! On this node, under `<data_dir>/cache/`:
//! - `tmp/`    bodies being written and objects being fetched; emptied
//!   at open (they are this node's alone)
//! - `blobs/`  copies of blobs, least recently used first out past
//!   `local_cache_bytes`; a copy appears only by rename of a complete
//!   file, so a crash never leaves a partial one
//!
//! The trait's futures run on a small runtime of the store's own (as
//! `PgRepo` does): the HTTP client's connections belong to one runtime
//! whatever runtime the caller is on, and the synchronous methods (the
//! sweep at open, a render fetched by the synchronous render cache) can
//! wait on a channel without `block_in_place`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};
use tokio::io::AsyncWriteExt;

use super::temp_file::TempFileSink;
use super::{BlobInfo, BlobStore, BlobWriter, ChunkReader, Space};
use crate::repo::BoxFuture;
use crate::{ids, Error, Result};

/// Bodies up to this size go up in one PUT; larger ones in parts of this
/// size (S3 wants parts of 5 MiB at least; 10 000 parts of 16 MiB allow
/// 160 GB, more than any asset limit).
const PART_BYTES: usize = 16 << 20;

/// Parts in flight at once in a multipart upload.
const PARTS_IN_FLIGHT: usize = 2;

/// What a sweep may delete on the shared bucket must be at least this old:
/// an unreferenced object may be one another node is committing right now
/// (it puts the object, then writes the record).
const SHARED_GRACE_SECS: i64 = 3600;

/// The longest one request may take: a render of a few GB must come down
/// in one GET, a stuck endpoint must not hold a caller for good.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the bucket is and how to reach it.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// `http(s)://host[:port]`; objects are addressed by path.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Prepended to every object name (`inst1/` or `inst1`).
    pub prefix: String,
    /// Bytes of blob copies this node keeps in `<data_dir>/cache/blobs`.
    pub cache_bytes: u64,
    /// Bodies are refused while the local disk has less than this free.
    pub min_free: u64,
}

#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// `Some` until drop, which shuts it down without waiting (dropping a
    /// runtime inside another one's worker would panic).
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    bucket: Arc<dyn ObjectStore>,
    /// Empty, or ending in `/`.
    prefix: String,
    cache: PathBuf,
    lru: Mutex<Lru>,
    cache_bytes: u64,
    min_free: u64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The blob copies on this node's disk, with their sizes and last use.
#[derive(Default)]
struct Lru {
    entries: HashMap<String, (u64, u64)>,
    total: u64,
    clock: u64,
}

impl Lru {
    fn touch(&mut self, id: &str) -> bool {
        self.clock += 1;
        let clock = self.clock;
        match self.entries.get_mut(id) {
            Some(entry) => {
                entry.1 = clock;
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, id: &str, size: u64) {
        self.clock += 1;
        if let Some((old, _)) = self.entries.insert(id.to_owned(), (size, self.clock)) {
            self.total -= old;
        }
        self.total += size;
    }

    fn remove(&mut self, id: &str) -> bool {
        match self.entries.remove(id) {
            Some((size, _)) => {
                self.total -= size;
                true
            }
            None => false,
        }
    }

    /// The least recently used ids to drop so that at most `capacity`
    /// bytes stay, never `keep` (the copy just made: a caller is about to
    /// read it).
    fn overflow(&mut self, capacity: u64, keep: &str) -> Vec<String> {
        let mut order: Vec<(u64, String, u64)> = self
            .entries
            .iter()
            .filter(|(id, _)| id.as_str() != keep)
            .map(|(id, (size, used))| (*used, id.clone(), *size))
            .collect();
        order.sort();
        let mut out = Vec::new();
        for (_, id, _) in order {
            if self.total <= capacity {
                break;
            }
            self.remove(&id);
            out.push(id);
        }
        out
    }
}

fn object_error(what: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{what}: not in the bucket"),
        )),
        e => Error::Io(std::io::Error::other(format!("{what}: {e}"))),
    }
}

/// Ids are made by the store (hex); a name of a render or chunk is a
/// plain file name. Anything else names no object of this store.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(Error::Corrupt(format!("{name:?} is not an object name")));
    }
    Ok(())
}

impl S3Store {
    /// The store on the bucket of `options`, caching under
    /// `data_dir/cache`. Checks nothing on the network: the first request
    /// (the sweep at open) tells whether the bucket answers.
    pub fn open(data_dir: &Path, options: &S3Options) -> Result<S3Store> {
        let endpoint = options.endpoint.trim_end_matches('/');
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::Config(format!(
                "storage.s3_endpoint must be an http:// or https:// URL, not {:?}",
                options.endpoint
            )));
        }
        if options.bucket.is_empty() {
            return Err(Error::Config(
                "storage.blobs is \"s3\" but storage.s3_bucket is empty".into(),
            ));
        }
        // The client's TLS needs a process-wide provider; whoever installs
        // it first wins, and every part of Clipstream picks ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let bucket = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_bucket_name(&options.bucket)
            .with_region(&options.region)
            .with_access_key_id(&options.access_key_id)
            .with_secret_access_key(&options.secret_access_key)
            // S3-compatible servers (SeaweedFS, MinIO) name buckets in
            // the path, not the host.
            .with_virtual_hosted_style_request(false)
            // (The client options carry `allow_http` too: set there, or
            // they would reset it.)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_timeout(REQUEST_TIMEOUT)
                    .with_connect_timeout(CONNECT_TIMEOUT),
            )
            .with_retry(RetryConfig {
                max_retries: 3,
                ..RetryConfig::default()
            })
            .build()
            .map_err(|e| Error::Config(format!("storage.s3_*: {e}")))?;
        let prefix = options.prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let cache = data_dir.join("cache");
        for sub in ["tmp", "blobs"] {
            std::fs::create_dir_all(cache.join(sub))?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("clipstream-s3")
            .enable_all()
            .build()?;
        let store = S3Store {
            inner: Arc::new(Inner {
                handle: runtime.handle().clone(),
                runtime: Some(runtime),
                bucket: Arc::new(bucket),
                prefix,
                cache,
                lru: Mutex::default(),
                cache_bytes: options.cache_bytes,
                min_free: options.min_free,
            }),
        };
        store.load_cache()?;
        Ok(store)
    }

    fn lru(&self) -> MutexGuard<'_, Lru> {
        // The map stays consistent whatever panicked while holding it.
        self.inner.lru.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Indexes the copies a previous run left, oldest first, and empties
    /// `tmp/`.
    fn load_cache(&self) -> Result<()> {
        let tmp = self.inner.cache.join("tmp");
        std::fs::remove_dir_all(&tmp)?;
        std::fs::create_dir_all(&tmp)?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(self.inner.cache.join("blobs"))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            let used = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            found.push((
                used,
                entry.file_name().to_string_lossy().into_owned(),
                meta.len(),
            ));
        }
        found.sort();
        let mut lru = self.lru();
        for (_, id, size) in found {
            lru.insert(&id, size);
        }
        Ok(())
    }

    fn object(&self, space: Space, name: &str) -> Result<ObjectPath> {
        let dir = match space {
            Space::Blobs => "blobs/",
            Space::Chunks => "uploads/",
            Space::Renders => "renders/",
        };
        match space {
            // `<upload>/<n>`
            Space::Chunks => {
                let (upload, chunk) = name
                    .split_once('/')
                    .ok_or_else(|| Error::Corrupt(format!("{name:?} is not a chunk name")))?;
                check_name(upload)?;
                check_name(chunk)?;
            }
            _ => check_name(name)?,
        }
        ObjectPath::parse(format!("{}{dir}{name}", self.inner.prefix))
            .map_err(|e| Error::Corrupt(format!("object name {name:?}: {e}")))
    }

    fn cached_path(&self, id: &str) -> PathBuf {
        self.inner.cache.join("blobs").join(id)
    }

    fn spool_path(&self) -> PathBuf {
        self.inner.cache.join("tmp").join(ids::random_hex128())
    }

    /// Runs `fut` on the store's runtime; the returned future may be
    /// awaited on any runtime.
    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T>> + Send + 'static {
        let task = self.inner.handle.spawn(fut);
        async move {
            task.await
                .map_err(|e| Error::Io(std::io::Error::other(format!("blob store task: {e}"))))?
        }
    }

    /// Runs `fut` on the store's runtime and waits for it on this thread
    /// (which must not be one of that runtime's).
    fn run_blocking<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.inner.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| {
            Error::Io(std::io::Error::other(
                "the blob store's runtime stopped during a request",
            ))
        })?
    }

    /// Uploads the file at `path` as `object`: one PUT, or parts past
    /// [`PART_BYTES`]; a failed multipart upload is aborted.
    async fn upload_file(
        bucket: Arc<dyn ObjectStore>,
        object: ObjectPath,
        path: PathBuf,
    ) -> Result<()> {
        let what = format!("uploading {object}");
        let len = tokio::fs::metadata(&path).await?.len();
        if len <= PART_BYTES as u64 {
            let body = tokio::fs::read(&path).await?;
            bucket
                .put(&object, PutPayload::from(body))
                .await
                .map_err(|e| object_error(&what, e))?;
            return Ok(());
        }
        let upload = bucket
            .put_multipart(&object)
            .await
            .map_err(|e| object_error(&what, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let sent: Result<()> = async {
            use tokio::io::AsyncReadExt;
            let mut file = tokio::fs::File::open(&path).await?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| object_error(&what, e))?;
                writer.write(&buf[..n]);
            }
            Ok(())
        }
        .await;
        match sent {
            Ok(()) => {
                writer.finish().await.map_err(|e| object_error(&what, e))?;
                Ok(())
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(object = %object, error = %abort, "could not abort a failed multipart upload");
                }
                Err(e)
            }
        }
    }

    /// Downloads `object` into `dest`: into a file under `tmp/` first,
    /// then renamed, so `dest` is complete or absent. `Ok(false)` if the
    /// bucket has no such object.
    async fn download(
        bucket: Arc<dyn ObjectStore>,
        object: ObjectPath,
        tmp: PathBuf,
        dest: PathBuf,
    ) -> Result<Option<u64>> {
        let what = format!("fetching {object}");
        let got = match bucket.get(&object).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(object_error(&what, e)),
        };
        let written: Result<u64> = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            let mut stream = got.into_stream();
            let mut size = 0u64;
            while let Some(bytes) = stream.next().await {
                let bytes = bytes.map_err(|e| object_error(&what, e))?;
                size += bytes.len() as u64;
                file.write_all(&bytes).await?;
            }
            file.flush().await?;
            drop(file);
            if let Some(dir) = dest.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            tokio::fs::rename(&tmp, &dest).await?;
            Ok(size)
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written.map(Some)
    }

    /// A path to a local copy of blob `id`, fetched if this node has none;
    /// `None` if the bucket has no such blob.
    async fn cached(&self, id: &str) -> Result<Option<PathBuf>> {
        let object = self.object(Space::Blobs, id)?;
        let path = self.cached_path(id);
        if self.lru().touch(id) && tokio::fs::try_exists(&path).await? {
            return Ok(Some(path));
        }
        let fetched = self
            .run(Self::download(
                self.inner.bucket.clone(),
                object,
                self.spool_path(),
                path.clone(),
            ))
            .await?;
        let Some(size) = fetched else {
            self.lru().remove(id);
            return Ok(None);
        };
        self.keep(id, size).await;
        Ok(Some(path))
    }

    /// Indexes the copy of `id` just put in place and drops the least
    /// recently used ones past the cache's bound. A copy dropped while a
    /// reader has it open stays readable to that reader; a path handed out
    /// by `local_path` and opened only later may be gone by then if the
    /// cache is far too small for the bodies in use (the bound is meant
    /// to hold many of them).
    async fn keep(&self, id: &str, size: u64) {
        let gone = {
            let mut lru = self.lru();
            lru.insert(id, size);
            lru.overflow(self.inner.cache_bytes, id)
        };
        for old in gone {
            let _ = tokio::fs::remove_file(self.cached_path(&old)).await;
        }
    }

    fn take_spool(body: BlobWriter) -> Result<(Box<TempFileSink>, u64, String)> {
        body.finish().take_sink::<TempFileSink>()
    }

    /// Every object under `dir` (`blobs/`, `uploads/`, `renders/`): its
    /// name below `dir` and age in seconds.
    async fn list(&self, dir: &str) -> Result<Vec<(String, u64, i64)>> {
        let bucket = self.inner.bucket.clone();
        let root = format!("{}{dir}", self.inner.prefix);
        self.run(async move {
            let prefix = ObjectPath::parse(&root)
                .map_err(|e| Error::Corrupt(format!("prefix {root:?}: {e}")))?;
            let now = ids::unix_now() as i64;
            let mut out = Vec::new();
            let mut stream = bucket.list(Some(&prefix));
            while let Some(meta) = stream.next().await {
                let meta = meta.map_err(|e| object_error(&format!("listing {root}"), e))?;
                let name = meta.location.as_ref();
                let name = name
                    .strip_prefix(root.trim_end_matches('/'))
                    .unwrap_or(name);
                let name = name.trim_start_matches('/').to_owned();
                out.push((name, meta.size, now - meta.last_modified.timestamp()));
            }
            Ok(out)
        })
        .await
    }

    async fn delete(&self, object: ObjectPath) -> Result<()> {
        let bucket = self.inner.bucket.clone();
        self.run(async move {
            match bucket.delete(&object).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(object_error(&format!("deleting {object}"), e)),
            }
        })
        .await
    }

    async fn sweep_async(
        &self,
        blobs: HashSet<String>,
        uploads: HashSet<String>,
        renders: HashSet<String>,
    ) -> Result<usize> {
        let mut removed = 0;
        for (name, _, age) in self.list("blobs/").await? {
            if !blobs.contains(&name) && age >= SHARED_GRACE_SECS {
                self.delete(self.object(Space::Blobs, &name)?).await?;
                removed += 1;
            }
        }
        for (name, _, age) in self.list("uploads/").await? {
            let upload = name.split('/').next().unwrap_or_default();
            if !uploads.contains(upload) && age >= SHARED_GRACE_SECS {
                self.delete(self.object(Space::Chunks, &name)?).await?;
                removed += 1;
            }
        }
        for (name, _, age) in self.list("renders/").await? {
            if !renders.contains(&name) && age >= SHARED_GRACE_SECS {
                self.delete(self.object(Space::Renders, &name)?).await?;
                removed += 1;
            }
        }
        // This node's copies of blobs no record names: its own to drop.
        let stale: Vec<String> = self
            .lru()
            .entries
            .keys()
            .filter(|id| !blobs.contains(*id))
            .cloned()
            .collect();
        for id in stale {
            self.lru().remove(&id);
            let _ = tokio::fs::remove_file(self.cached_path(&id)).await;
        }
        Ok(removed)
    }
}

impl BlobStore for S3Store {
    fn writer(&self, limit: u64) -> BoxFuture<'_, Result<BlobWriter>> {
        Box::pin(async move {
            let tmp = self.spool_path();
            let file = tokio::fs::File::create(&tmp).await?;
            let sink = TempFileSink::new(file, tmp);
            let store = self.clone();
            let free = Box::new(move || store.free_bytes());
            Ok(BlobWriter::new(
                Box::new(sink),
                limit,
                self.inner.min_free,
                free,
            ))
        })
    }

    fn commit(&self, body: BlobWriter) -> BoxFuture<'_, Result<BlobInfo>> {
        Box::pin(async move {
            let (sink, size, hash) = Self::take_spool(body)?;
            let id = ids::random_hex128();
            let spooled = sink.close(false).await?;
            let object = self.object(Space::Blobs, &id)?;
            self.run(Self::upload_file(
                self.inner.bucket.clone(),
                object,
                spooled.path().to_path_buf(),
            ))
            .await?;
            // The body stays on this node: whoever committed it usually
            // reads it next (probing, decoding).
            spooled.persist(&self.cached_path(&id)).await?;
            self.keep(&id, size).await;
            Ok(BlobInfo { id, size, hash })
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.lru().remove(id) {
                let _ = tokio::fs::remove_file(self.cached_path(id)).await;
            }
            let deleted = match self.object(Space::Blobs, id) {
                Ok(object) => self.delete(object).await,
                Err(e) => Err(e),
            };
            if let Err(e) = deleted {
                tracing::warn!(blob = id, error = %e, "could not remove a replaced body; a later sweep removes it");
            }
        })
    }

    fn open<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<tokio::fs::File>>> {
        Box::pin(async move {
            let Some(path) = self.cached(id).await? else {
                return Ok(None);
            };
            match tokio::fs::File::open(&path).await {
                Ok(file) => Ok(Some(file)),
                // Dropped from the cache between the fetch and the open:
                // fetch again, once.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.lru().remove(id);
                    match self.cached(id).await? {
                        Some(path) => Ok(Some(tokio::fs::File::open(path).await?)),
                        None => Ok(None),
                    }
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn local_path<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<PathBuf>> {
        Box::pin(async move {
            self.cached(id).await?.ok_or_else(|| {
                Error::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("blob {id} is not in the bucket"),
                ))
            })
        })
    }

    fn put_chunk<'a>(
        &'a self,
        upload_id: &'a str,
        chunk_id: u32,
        body: BlobWriter,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let (sink, _, _) = Self::take_spool(body)?;
            let spooled = sink.close(false).await?;
            let object = self.object(Space::Chunks, &format!("{upload_id}/{chunk_id}"))?;
            self.run(Self::upload_file(
                self.inner.bucket.clone(),
                object,
                spooled.path().to_path_buf(),
            ))
            .await
        })
    }

    fn open_chunk<'a>(
        &'a self,
        upload_id: &'a str,
        chunk_id: u32,
    ) -> BoxFuture<'a, Result<ChunkReader>> {
        Box::pin(async move {
            let object = self.object(Space::Chunks, &format!("{upload_id}/{chunk_id}"))?;
            let dest = self.spool_path();
            let fetched = self
                .run(Self::download(
                    self.inner.bucket.clone(),
                    object,
                    self.spool_path(),
                    dest.clone(),
                ))
                .await?;
            if fetched.is_none() {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("chunk {chunk_id} of upload {upload_id} is not in the bucket"),
                )));
            }
            let file = tokio::fs::File::open(&dest).await?;
            // Read through the open handle; the name goes now, so nothing
            // is left behind whenever the reader is dropped.
            let _ = tokio::fs::remove_file(&dest).await;
            Ok(Box::new(file) as ChunkReader)
        })
    }

    fn remove_chunks<'a>(&'a self, upload_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let removed: Result<()> = async {
                check_name(upload_id)?;
                for (name, _, _) in self.list(&format!("uploads/{upload_id}/")).await? {
                    let object = self.object(Space::Chunks, &format!("{upload_id}/{name}"))?;
                    self.delete(object).await?;
                }
                Ok(())
            }
            .await;
            if let Err(e) = removed {
                tracing::warn!(upload = upload_id, error = %e, "could not remove an upload's chunks; a later sweep removes them");
            }
        })
    }

    fn free_bytes(&self) -> Result<Option<u64>> {
        Ok(Some(super::files::free_bytes(
            &self.inner.cache.join("tmp"),
        )?))
    }

    fn sweep(
        &self,
        blobs: &HashSet<String>,
        uploads: &HashSet<String>,
        renders: &HashSet<String>,
    ) -> Result<usize> {
        let tmp = self.inner.cache.join("tmp");
        std::fs::remove_dir_all(&tmp)?;
        std::fs::create_dir_all(&tmp)?;
        let store = self.clone();
        let (blobs, uploads, renders) = (blobs.clone(), uploads.clone(), renders.clone());
        self.run_blocking(async move { store.sweep_async(blobs, uploads, renders).await })
    }

    fn shared(&self) -> bool {
        true
    }

    fn put_render<'a>(&'a self, name: &'a str, path: &'a Path) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let object = self.object(Space::Renders, name)?;
            self.run(Self::upload_file(
                self.inner.bucket.clone(),
                object,
                path.to_path_buf(),
            ))
            .await
        })
    }

    fn fetch_render<'a>(&'a self, name: &'a str, dest: &'a Path) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let object = self.object(Space::Renders, name)?;
            let fetched = self
                .run(Self::download(
                    self.inner.bucket.clone(),
                    object,
                    self.spool_path(),
                    dest.to_path_buf(),
                ))
                .await?;
            Ok(fetched.is_some())
        })
    }

    fn remove_render<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let deleted = match self.object(Space::Renders, name) {
                Ok(object) => self.delete(object).await,
                Err(e) => Err(e),
            };
            if let Err(e) = deleted {
                tracing::warn!(render = name, error = %e, "could not remove a render from the bucket; a later sweep removes it");
            }
        })
    }

    fn import<'a>(
        &'a self,
        space: Space,
        name: &'a str,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let object = self.object(space, name)?;
            let size = tokio::fs::metadata(path).await?.len();
            let bucket = self.inner.bucket.clone();
            let head = object.clone();
            let there = self
                .run(async move {
                    match bucket.head(&head).await {
                        Ok(meta) => Ok(Some(meta.size)),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(object_error(&format!("checking {head}"), e)),
                    }
                })
                .await?;
            if there == Some(size) {
                return Ok(false);
            }
            self.run(Self::upload_file(
                self.inner.bucket.clone(),
                object,
                path.to_path_buf(),
            ))
            .await?;
            Ok(true)
        })
    }

    fn stored_size<'a>(
        &'a self,
        space: Space,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<u64>>> {
        Box::pin(async move {
            let object = self.object(space, name)?;
            let bucket = self.inner.bucket.clone();
            self.run(async move {
                match bucket.head(&object).await {
                    Ok(meta) => Ok(Some(meta.size)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(object_error(&format!("checking {object}"), e)),
                }
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_drops_the_least_recently_used_but_never_the_copy_just_made() {
        let mut lru = Lru::default();
        lru.insert("a", 40);
        lru.insert("b", 40);
        lru.touch("a");
        lru.insert("c", 40);
        assert_eq!(lru.overflow(80, "c"), vec!["b".to_owned()]);
        assert_eq!(lru.total, 80);
        lru.insert("d", 200);
        let mut gone = lru.overflow(80, "d");
        gone.sort();
        assert_eq!(gone, vec!["a".to_owned(), "c".to_owned()]);
        assert_eq!(
            lru.total, 200,
            "the copy just made stays, whatever its size"
        );
    }

    #[test]
    fn names_that_could_leave_the_prefix_are_refused() {
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("0123abcd").unwrap();
        check_name("f00d.mp4").unwrap();
    }
}
