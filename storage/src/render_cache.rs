//! The cache of finished renders: one file per output under `renders/`,
//! named by its content key (the server derives it from everything that
//! decides the output's bytes), indexed in the repository with its
//! project, size, digest and last use, bounded in total size with
//! least-recently-used eviction. The files are this machine's, whatever
//! the blob store: they are the local cache of renders. A blob store that
//! other nodes share keeps each render too (put at commit, before the
//! record), so a node whose `renders/` lacks a recorded render fetches it
//! from there rather than forgetting it.
//!
//! Renders being watched are also kept open: the record and the file
//! mapped into memory, so that a warm GET reads neither the repository nor
//! the file system and its body is slices of the mapping (no read into a buffer, no
//! trip through the blocking pool).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{ids, Collection, Result, Store};

/// Renders kept open at once; beyond this the least recently used is
/// closed (a mapping costs address space and a kernel map entry, no RAM
/// beyond the page cache).
const MAX_OPEN: usize = 1024;

/// How stale the last use stored in the repository may get before a GET
/// writes it: eviction reads the fresher value kept in memory, so the
/// stored one only matters after a restart.
const LAST_USED_SLACK_SECS: u64 = 60;

/// Where one piece of a fragmented MP4 render lies: the init segment
/// first, then each fragment with its duration (for HLS playlists).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub offset: u64,
    pub len: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedRender {
    /// The content key and the output's suffix, `<key>.<ext>`: a plain
    /// file name.
    pub key: String,
    /// The project whose content it shows; empty in records written
    /// before outputs were keyed by content (swept at open).
    #[serde(default)]
    pub project: String,
    pub size: u64,
    /// BLAKE3 of the bytes, hex: the strong ETag.
    pub hash: String,
    pub created: u64,
    pub last_used: u64,
    #[serde(default)]
    pub segments: Vec<Segment>,
}

/// A cached render ready to serve.
#[derive(Debug)]
pub struct OpenRender {
    pub entry: CachedRender,
    /// The whole file, mapped read-only; bodies are slices of it.
    pub bytes: Bytes,
    /// Unix seconds of the last GET.
    last_used: AtomicU64,
    /// The last use as the repository has it.
    stored_last_used: AtomicU64,
}

/// The downloads of cached renders under way on this node, by key.
#[derive(Debug, Default)]
pub(crate) struct Fetches(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl Fetches {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        // A plain map: consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn gate(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.lock().entry(key.to_owned()).or_default().clone()
    }

    /// The download of `key` is over: later callers find its file (or
    /// start again after a failure).
    fn done(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// The open renders, by key.
#[derive(Debug, Default)]
pub(crate) struct OpenRenders(Mutex<HashMap<String, Arc<OpenRender>>>);

impl OpenRenders {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<OpenRender>>> {
        // The map stays consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, key: &str) -> Option<Arc<OpenRender>> {
        self.lock().get(key).cloned()
    }

    fn insert(&self, key: &str, open: Arc<OpenRender>) {
        let mut map = self.lock();
        if map.len() >= MAX_OPEN && !map.contains_key(key) {
            let oldest = map
                .iter()
                .min_by_key(|(_, o)| o.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(key.to_owned(), open);
    }

    fn remove(&self, key: &str) {
        self.lock().remove(key);
    }

    fn last_used(&self, key: &str) -> Option<u64> {
        Some(self.lock().get(key)?.last_used.load(Ordering::Relaxed))
    }
}

/// Maps `path`, which must hold `len` bytes; `None` if it is gone.
fn map_file(path: &std::path::Path, len: u64) -> Result<Option<Bytes>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if file.metadata()?.len() != len {
        return Ok(None);
    }
    // SAFETY: a cached render's file is written in full under `tmp/` and
    // renamed into `renders/`; nothing writes to or truncates it after that
    // (eviction unlinks it, which leaves existing mappings intact, and a
    // new render of the same key is renamed over it as a new inode).
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Some(Bytes::from_owner(map)))
}

impl Store {
    /// The cached render `key`, open and ready to serve, if cached; marks
    /// it used. Warm keys are answered from memory.
    pub fn open_cached_render(&self, key: &str) -> Result<Option<Arc<OpenRender>>> {
        if let Some(open) = self.open_renders.get(key) {
            self.touch(&open)?;
            return Ok(Some(open));
        }
        let Some((entry, path)) = self.cached_render(key)? else {
            return Ok(None);
        };
        let Some(bytes) = map_file(&path, entry.size)? else {
            // Gone or not what the record says: a new render replaces it.
            self.repo.remove(Collection::RenderCache, key)?;
            return Ok(None);
        };
        let open = Arc::new(OpenRender {
            last_used: AtomicU64::new(entry.last_used),
            stored_last_used: AtomicU64::new(entry.last_used),
            entry,
            bytes,
        });
        self.open_renders.insert(key, open.clone());
        // Evicted or forgotten meanwhile? Those remove the record before
        // the open entry, so checking after inserting cannot miss one.
        if !self.repo.contains(Collection::RenderCache, key)? {
            self.open_renders.remove(key);
            return Ok(None);
        }
        Ok(Some(open))
    }

    fn touch(&self, open: &OpenRender) -> Result<()> {
        let now = ids::unix_now();
        open.last_used.fetch_max(now, Ordering::Relaxed);
        let stored = open.stored_last_used.load(Ordering::Relaxed);
        if now >= stored + LAST_USED_SLACK_SECS
            && open
                .stored_last_used
                .compare_exchange(stored, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // Only if still cached, atomically: a forgotten render stays
            // forgotten.
            let written = self.update_record(
                Collection::RenderCache,
                &open.entry.key,
                || crate::Error::TokenNotFound,
                |entry: &mut CachedRender| {
                    entry.last_used = entry.last_used.max(now);
                    Ok::<_, crate::Error>(())
                },
            );
            match written {
                Ok(_) | Err(crate::Error::TokenNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Where renders in progress spool their bytes.
    pub fn render_spool_dir(&self) -> PathBuf {
        self.data_dir().join("tmp")
    }

    /// The file of cached render `key` (whether or not it is cached yet):
    /// a finished render is renamed here before it is recorded.
    pub fn render_path(&self, key: &str) -> PathBuf {
        self.data_dir().join("renders").join(key)
    }

    /// The cached render `key` and its file, if cached; marks it used.
    pub fn cached_render(&self, key: &str) -> Result<Option<(CachedRender, PathBuf)>> {
        let Some(mut entry) = self.record::<CachedRender>(Collection::RenderCache, key)? else {
            return Ok(None);
        };
        let path = self.render_path(key);
        // Made on another node, or evicted from this one's disk: the
        // blob store may have it (the files store never does).
        if !path.exists() && !self.fetch_render_blocking(key, &path)? {
            self.repo.remove(Collection::RenderCache, key)?;
            return Ok(None);
        }
        let now = ids::unix_now();
        if entry.last_used != now {
            entry.last_used = now;
            self.put_record(Collection::RenderCache, key, &entry)?;
        }
        Ok(Some((entry, path)))
    }

    /// The record of cached render `key`, without looking for its file
    /// (which, on a shared blob store, may be in the bucket only).
    pub fn cached_render_record(&self, key: &str) -> Result<Option<CachedRender>> {
        self.record::<CachedRender>(Collection::RenderCache, key)
    }

    /// Brings cached render `key` to this node's `renders/` from a shared
    /// blob store when it is recorded but not here; `true` if its file is
    /// here now. The async twin of what [`Store::open_cached_render`] and
    /// [`Store::cached_render`] do on a miss: a route calls it first so
    /// that the download does not hold up its thread.
    pub async fn fetch_cached_render(&self, key: &str) -> Result<bool> {
        let path = self.render_path(key);
        if tokio::fs::try_exists(&path).await? {
            return Ok(true);
        }
        if !self.repo.contains(Collection::RenderCache, key)? {
            return Ok(false);
        }
        // One download per render on this node: viewers arriving together
        // wait for it and find the file, rather than each fetching it.
        let gate = self.render_fetches.gate(key);
        let _turn = gate.lock().await;
        if tokio::fs::try_exists(&path).await? {
            return Ok(true);
        }
        let fetched = self.blobs.fetch_render(key, &path).await;
        self.render_fetches.done(key);
        fetched
    }

    /// [`BlobStore::fetch_render`] for the synchronous lookups: the
    /// store's future runs to completion on a thread of its own (the
    /// caller may be on any runtime, or none).
    fn fetch_render_blocking(&self, key: &str, dest: &std::path::Path) -> Result<bool> {
        if !self.blobs.shared() {
            // Nowhere else to fetch from.
            return Ok(false);
        }
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?
                        .block_on(self.blobs.fetch_render(key, dest))
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(crate::Error::Io(std::io::Error::other(
                        "fetching a render panicked",
                    )))
                })
        })
    }

    /// Records the render already at [`Store::render_path`] as cached
    /// (after handing it to the blob store, so that a record on a shared
    /// repository always names a render every node can fetch), then
    /// evicts the least recently used renders beyond `capacity` bytes.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_cached_render(
        &self,
        key: &str,
        project: &str,
        size: u64,
        hash: String,
        segments: Vec<Segment>,
        capacity: u64,
    ) -> Result<()> {
        let now = ids::unix_now();
        let entry = CachedRender {
            key: key.to_owned(),
            project: project.to_owned(),
            size,
            hash,
            created: now,
            last_used: now,
            segments,
        };
        self.blobs.put_render(key, &self.render_path(key)).await?;
        self.put_record(Collection::RenderCache, key, &entry)?;
        self.flush().await?;
        self.evict_renders(capacity).await
    }

    /// At open: forgets entries whose file is gone or that were keyed by
    /// token (before outputs were keyed by content: nothing would ever ask
    /// for them again), and removes files no entry names (a crash between
    /// the rename and the record). With a shared blob store, an entry
    /// whose file this node lacks is another node's render, or one to
    /// fetch: it stays.
    pub(crate) fn sweep_renders(&self) -> Result<usize> {
        let mut removed = 0;
        let shared = self.blobs.shared();
        for entry in self.records::<CachedRender>(Collection::RenderCache, "")? {
            if entry.project.is_empty() || (!shared && !self.render_path(&entry.key).exists()) {
                self.repo.remove(Collection::RenderCache, &entry.key)?;
                removed += 1;
            }
        }
        for file in std::fs::read_dir(self.data_dir().join("renders"))? {
            let file = file?;
            if !self.repo.contains(
                Collection::RenderCache,
                file.file_name().to_string_lossy().as_ref(),
            )? {
                std::fs::remove_file(file.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The render cache's total bytes and number of entries.
    pub fn render_cache_size(&self) -> Result<(u64, u64)> {
        let entries: Vec<CachedRender> = self.records(Collection::RenderCache, "")?;
        Ok((entries.iter().map(|e| e.size).sum(), entries.len() as u64))
    }

    async fn evict_renders(&self, capacity: u64) -> Result<()> {
        let mut entries: Vec<CachedRender> = self.records(Collection::RenderCache, "")?;
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        if total <= capacity {
            return Ok(());
        }
        // Open renders know their last use better than the repository does.
        entries.sort_by_key(|e| self.open_renders.last_used(&e.key).unwrap_or(e.last_used));
        for e in entries {
            if total <= capacity {
                break;
            }
            self.repo.remove(Collection::RenderCache, &e.key)?;
            self.repo.remove(Collection::Jobs, &e.key)?;
            self.open_renders.remove(&e.key);
            let _ = tokio::fs::remove_file(self.render_path(&e.key)).await;
            self.blobs.remove_render(&e.key).await;
            total -= e.size;
            tracing::info!(key = %e.key, size = e.size, "evicted a cached render");
        }
        self.flush().await
    }

    /// Drops the cached render `key`, if cached. A response under way
    /// keeps its bytes (the file is unlinked, its mapping stays).
    pub async fn forget_render(&self, key: &str) -> Result<bool> {
        let known = self.repo.remove(Collection::RenderCache, key)?.is_some();
        self.repo.remove(Collection::Jobs, key)?;
        self.open_renders.remove(key);
        match tokio::fs::remove_file(self.render_path(key)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.blobs.remove_render(key).await;
        self.flush().await?;
        Ok(known)
    }

    /// Drops every cached render of project `uid` (it was deleted).
    pub(crate) async fn forget_project_renders(&self, uid: &str) -> Result<()> {
        // Deleting a project is rare: a scan of the index is fine.
        for entry in self.records::<CachedRender>(Collection::RenderCache, "")? {
            if entry.project == uid {
                self.forget_render(&entry.key).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::store;

    async fn cache(store: &Store, key: &str, body: &[u8], capacity: u64) {
        std::fs::write(store.render_path(key), body).unwrap();
        let hash = blake3::hash(body).to_hex().to_string();
        store
            .record_cached_render(key, "p", body.len() as u64, hash, Vec::new(), capacity)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_open_render_serves_its_file_from_memory_until_forgotten() {
        let (_dir, store) = store();
        assert!(store.open_cached_render("t.mp4").unwrap().is_none());
        cache(&store, "t.mp4", b"the render's bytes", u64::MAX).await;
        let open = store.open_cached_render("t.mp4").unwrap().unwrap();
        assert_eq!(&open.bytes[..], b"the render's bytes");
        let again = store.open_cached_render("t.mp4").unwrap().unwrap();
        assert!(
            Arc::ptr_eq(&open, &again),
            "the second GET is answered from memory"
        );
        assert!(store.forget_render("t.mp4").await.unwrap());
        assert!(store.open_cached_render("t.mp4").unwrap().is_none());
        assert!(!store.render_path("t.mp4").exists());
        assert_eq!(
            &open.bytes[..],
            b"the render's bytes",
            "a response under way keeps its bytes"
        );
    }

    #[tokio::test]
    async fn eviction_closes_open_renders_and_follows_their_last_use() {
        let (_dir, store) = store();
        cache(&store, "a.mp4", &[1; 100], u64::MAX).await;
        cache(&store, "b.mp4", &[2; 100], u64::MAX).await;
        let a = store.open_cached_render("a.mp4").unwrap().unwrap();
        // `a` was watched later than the repository knows; `b` is the one to go.
        a.last_used.store(ids::unix_now() + 1000, Ordering::Relaxed);
        store.open_cached_render("b.mp4").unwrap().unwrap();
        cache(&store, "c.mp4", &[3; 100], 250).await;
        assert!(store.open_cached_render("b.mp4").unwrap().is_none());
        assert!(store.open_cached_render("a.mp4").unwrap().is_some());
        assert!(store.open_cached_render("c.mp4").unwrap().is_some());
    }

    #[tokio::test]
    async fn the_last_use_reaches_the_repository_at_most_once_a_minute_and_never_revives_a_record()
    {
        let (_dir, store) = store();
        cache(&store, "t.mp4", b"bytes", u64::MAX).await;
        let open = store.open_cached_render("t.mp4").unwrap().unwrap();
        let in_repo = |store: &Store| {
            store
                .record::<CachedRender>(Collection::RenderCache, "t.mp4")
                .unwrap()
                .map(|e| e.last_used)
        };
        let mut record = store
            .record::<CachedRender>(Collection::RenderCache, "t.mp4")
            .unwrap()
            .unwrap();
        record.last_used = 1;
        store
            .put_record(Collection::RenderCache, "t.mp4", &record)
            .unwrap();
        store.open_cached_render("t.mp4").unwrap();
        assert_eq!(
            in_repo(&store),
            Some(1),
            "a GET within the minute stays in memory"
        );
        open.stored_last_used.store(0, Ordering::Relaxed);
        store.open_cached_render("t.mp4").unwrap();
        assert!(
            in_repo(&store) > Some(1),
            "a last use a minute stale is written"
        );
        open.stored_last_used.store(0, Ordering::Relaxed);
        store.repo.remove(Collection::RenderCache, "t.mp4").unwrap();
        store.touch(&open).unwrap();
        assert_eq!(in_repo(&store), None, "a forgotten render stays forgotten");
    }

    #[tokio::test]
    async fn with_the_files_store_a_render_missing_from_disk_cannot_be_fetched_and_is_forgotten() {
        let (_dir, store) = store();
        assert!(
            !store.fetch_cached_render("t.mp4").await.unwrap(),
            "no record"
        );
        cache(&store, "t.mp4", b"bytes", u64::MAX).await;
        assert!(store.fetch_cached_render("t.mp4").await.unwrap(), "here");
        std::fs::remove_file(store.render_path("t.mp4")).unwrap();
        assert!(!store.fetch_cached_render("t.mp4").await.unwrap());
        assert!(store.open_cached_render("t.mp4").unwrap().is_none());
        assert!(
            store
                .record::<CachedRender>(Collection::RenderCache, "t.mp4")
                .unwrap()
                .is_none(),
            "renders/ was the only copy: the record goes"
        );
    }

    #[tokio::test]
    async fn a_file_that_is_not_what_its_record_says_is_not_served() {
        let (_dir, store) = store();
        cache(&store, "t.mp4", b"twelve bytes", u64::MAX).await;
        std::fs::write(store.render_path("t.mp4"), b"short").unwrap();
        assert!(store.open_cached_render("t.mp4").unwrap().is_none());
        assert!(
            store.cached_render("t.mp4").unwrap().is_none(),
            "the record is dropped"
        );
    }
}
