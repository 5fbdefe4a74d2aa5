//! The cache of finished renders: one file per token and extension under
//! `renders/`, indexed in sled with its size, digest and last use, bounded
//! in total size with least-recently-used eviction.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{ids, json_tree, Result, Store};

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
    /// `<token>.<ext>`.
    pub key: String,
    pub size: u64,
    /// BLAKE3 of the bytes, hex: the strong ETag.
    pub hash: String,
    pub created: u64,
    pub last_used: u64,
    #[serde(default)]
    pub segments: Vec<Segment>,
}

impl Store {
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
        let Some(mut entry) = json_tree::get::<CachedRender>(&self.render_cache, key)? else {
            return Ok(None);
        };
        let path = self.render_path(key);
        if !path.exists() {
            self.render_cache.remove(key)?;
            return Ok(None);
        }
        let now = ids::unix_now();
        if entry.last_used != now {
            entry.last_used = now;
            json_tree::put(&self.render_cache, key, &entry)?;
        }
        Ok(Some((entry, path)))
    }

    /// Records the render already at [`Store::render_path`] as cached, then
    /// evicts the least recently used renders beyond `capacity` bytes.
    pub async fn record_cached_render(
        &self,
        key: &str,
        size: u64,
        hash: String,
        segments: Vec<Segment>,
        capacity: u64,
    ) -> Result<()> {
        let now = ids::unix_now();
        let entry = CachedRender {
            key: key.to_owned(),
            size,
            hash,
            created: now,
            last_used: now,
            segments,
        };
        json_tree::put(&self.render_cache, key, &entry)?;
        self.flush().await?;
        self.evict_renders(capacity).await
    }

    /// At open: forgets entries whose file is gone and removes files no
    /// entry names (a crash between the rename and the record).
    pub(crate) fn sweep_renders(&self) -> Result<usize> {
        let mut removed = 0;
        for entry in json_tree::scan::<CachedRender>(&self.render_cache, "")? {
            if !self.render_path(&entry.key).exists() {
                self.render_cache.remove(&entry.key)?;
                removed += 1;
            }
        }
        for file in std::fs::read_dir(self.data_dir().join("renders"))? {
            let file = file?;
            if !self
                .render_cache
                .contains_key(file.file_name().to_string_lossy().as_bytes())?
            {
                std::fs::remove_file(file.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn evict_renders(&self, capacity: u64) -> Result<()> {
        let mut entries: Vec<CachedRender> = json_tree::scan(&self.render_cache, "")?;
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        if total <= capacity {
            return Ok(());
        }
        entries.sort_by_key(|e| e.last_used);
        for e in entries {
            if total <= capacity {
                break;
            }
            self.render_cache.remove(&e.key)?;
            let _ = tokio::fs::remove_file(self.render_path(&e.key)).await;
            total -= e.size;
            tracing::info!(key = %e.key, size = e.size, "evicted a cached render");
        }
        self.flush().await
    }

    /// Drops the cached renders of `token` (its project was deleted, or a
    /// movie it uses changed).
    pub async fn forget_renders(&self, token: &str) -> Result<()> {
        // Every key of a token starts with it: `<token>.<ext>`,
        // `<token>-poster.jpg`, `<token>-thumb.jpg`; tokens have one length,
        // so no other token's keys share the prefix.
        for key in self.render_cache.scan_prefix(token).keys() {
            let key = key?;
            self.render_cache.remove(&key)?;
            let _ = tokio::fs::remove_file(self.render_path(&String::from_utf8_lossy(&key))).await;
        }
        Ok(())
    }
}
