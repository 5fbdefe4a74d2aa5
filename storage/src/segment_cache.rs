//! The durable cache of encoded segments (issue 18): a render's segment
//! whose content key was encoded before is re-muxed, not rendered. Each
//! segment's packets are one blob (the body is opaque here: the actors
//! crate serialises and checks it), indexed in the repository by key with
//! its size and last use, bounded in total size with least-recently-used
//! eviction. It survives restarts; bodies no record names, and records
//! whose body is gone, are dropped (at open and when read).

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::{ids, Collection, Result, Store};

/// How stale a segment's stored last use may get before a read writes
/// it: eviction is least recently used to within this, and most reads
/// then cost no write.
const LAST_USED_SLACK_SECS: u64 = 60;

/// One cached segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedSegment {
    /// The content key, hex: a plain name.
    pub key: String,
    pub blob: String,
    pub size: u64,
    pub created: u64,
    pub last_used: u64,
}

/// The running total of cached bytes, read from the repository once;
/// puts and evictions hold its lock, so the total and the records agree.
#[derive(Debug, Default)]
pub(crate) struct SegmentIndex(tokio::sync::Mutex<Option<u64>>);

impl Store {
    /// The body of cached segment `key` (hex), if cached; marks it used.
    /// A record whose body is gone is dropped.
    pub async fn cached_segment(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let Some(mut entry) = self.record::<CachedSegment>(Collection::Segments, key)? else {
            return Ok(None);
        };
        let Some(mut file) = self.blobs.open(&entry.blob).await? else {
            self.drop_segment(&entry).await?;
            return Ok(None);
        };
        let mut body = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
        file.read_to_end(&mut body).await?;
        if body.len() as u64 != entry.size {
            self.drop_segment(&entry).await?;
            return Ok(None);
        }
        let now = ids::unix_now();
        if now >= entry.last_used + LAST_USED_SLACK_SECS {
            entry.last_used = now;
            // Only if still cached: an evicted segment stays evicted.
            let written = self.update_record(
                Collection::Segments,
                key,
                || crate::Error::TokenNotFound,
                |e: &mut CachedSegment| {
                    e.last_used = e.last_used.max(now);
                    Ok::<_, crate::Error>(())
                },
            );
            match written {
                Ok(_) | Err(crate::Error::TokenNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(body))
    }

    /// Keeps `body` as segment `key` (hex), then evicts the least recently
    /// used segments beyond `capacity` bytes. A body larger than a
    /// sixteenth of the capacity is not kept (it would empty the cache for
    /// one render's sake). Durable on return.
    pub async fn put_segment(&self, key: &str, body: &[u8], capacity: u64) -> Result<bool> {
        let size = body.len() as u64;
        if size > capacity / 16 {
            return Ok(false);
        }
        let mut writer = self.blobs.writer(size).await?;
        writer.write(body).await?;
        let blob = self.blobs.commit(writer).await?;
        let now = ids::unix_now();
        let entry = CachedSegment {
            key: key.to_owned(),
            blob: blob.id,
            size,
            created: now,
            last_used: now,
        };
        let mut total = self.segments.0.lock().await;
        let mut bytes = match *total {
            Some(bytes) => bytes,
            None => self.segment_cache_size()?.0,
        };
        let old = self
            .repo
            .insert(Collection::Segments, key, serde_json::to_vec(&entry)?)?;
        bytes += size;
        if let Some(old) = old {
            // Two renders encoded the same segment at once: one body stays.
            let old: CachedSegment = serde_json::from_slice(&old)?;
            bytes = bytes.saturating_sub(old.size);
            self.blobs.remove(&old.blob).await;
        }
        if bytes > capacity {
            bytes = self.evict_segments(bytes, capacity).await?;
        }
        *total = Some(bytes);
        drop(total);
        self.flush().await?;
        Ok(true)
    }

    /// Evicts the least recently used segments until `bytes` (the
    /// current total) is within `capacity`; returns the new total.
    async fn evict_segments(&self, mut bytes: u64, capacity: u64) -> Result<u64> {
        let mut entries: Vec<CachedSegment> = self.records(Collection::Segments, "")?;
        entries.sort_by_key(|e| (e.last_used, e.created));
        for e in entries {
            if bytes <= capacity {
                break;
            }
            if self.repo.remove(Collection::Segments, &e.key)?.is_some() {
                self.blobs.remove(&e.blob).await;
                bytes = bytes.saturating_sub(e.size);
            }
        }
        Ok(bytes)
    }

    /// Drops `entry`, unless its key was written again meanwhile (then
    /// the record names another body, which stays).
    async fn drop_segment(&self, entry: &CachedSegment) -> Result<()> {
        let mut total = self.segments.0.lock().await;
        let current = self.record::<CachedSegment>(Collection::Segments, &entry.key)?;
        if current.is_some_and(|c| c.blob == entry.blob)
            && self
                .repo
                .remove(Collection::Segments, &entry.key)?
                .is_some()
        {
            if let Some(bytes) = total.as_mut() {
                *bytes = bytes.saturating_sub(entry.size);
            }
            self.blobs.remove(&entry.blob).await;
        }
        drop(total);
        self.flush().await
    }

    /// The segment cache's total bytes and number of entries.
    pub fn segment_cache_size(&self) -> Result<(u64, u64)> {
        let entries: Vec<CachedSegment> = self.records(Collection::Segments, "")?;
        Ok((entries.iter().map(|e| e.size).sum(), entries.len() as u64))
    }

    /// The bodies the segment cache holds, for the blob sweep to keep.
    pub(crate) fn segment_blobs(&self) -> Result<Vec<String>> {
        let entries: Vec<CachedSegment> = self.records(Collection::Segments, "")?;
        Ok(entries.into_iter().map(|e| e.blob).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{options, store};

    #[tokio::test]
    async fn a_segment_comes_back_until_the_least_recently_used_makes_room() {
        let (_dir, store) = store();
        assert_eq!(store.cached_segment("a").await.unwrap(), None);
        // Room for four segments of 100 bytes, each at most a sixteenth.
        let capacity = 1600;
        for (i, key) in ["a", "b", "c", "d"].iter().enumerate() {
            assert!(store
                .put_segment(key, &[i as u8; 100], capacity)
                .await
                .unwrap());
        }
        assert_eq!(store.segment_cache_size().unwrap(), (400, 4));
        // `a` was used after the others were written; `b` is the oldest.
        let mut a: CachedSegment = store.record(Collection::Segments, "a").unwrap().unwrap();
        a.last_used += 10;
        store.put_record(Collection::Segments, "a", &a).unwrap();
        assert_eq!(store.cached_segment("a").await.unwrap(), Some(vec![0; 100]));
        for key in ["e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p"] {
            store.put_segment(key, &[9; 100], capacity).await.unwrap();
        }
        assert_eq!(store.segment_cache_size().unwrap(), (1600, 16));
        store.put_segment("q", &[7; 100], capacity).await.unwrap();
        assert_eq!(store.segment_cache_size().unwrap(), (1600, 16));
        assert_eq!(
            store.cached_segment("b").await.unwrap(),
            None,
            "the least recently used went"
        );
        assert!(store.cached_segment("a").await.unwrap().is_some());
        assert!(store.cached_segment("q").await.unwrap().is_some());
        assert!(
            !store.put_segment("big", &[1; 101], capacity).await.unwrap(),
            "more than a sixteenth is not kept"
        );
        assert_eq!(store.cached_segment("big").await.unwrap(), None);
    }

    #[tokio::test]
    async fn segments_survive_a_restart_and_their_bodies_the_sweep() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), options()).unwrap();
            store
                .put_segment("k", b"encoded packets", u64::MAX)
                .await
                .unwrap();
            store.put_segment("gone", b"more", u64::MAX).await.unwrap();
            // A body whose record never landed (a crash between the two).
            let mut w = store.blobs.writer(10).await.unwrap();
            w.write(b"orphan").await.unwrap();
            store.blobs.commit(w).await.unwrap();
            let gone: CachedSegment = store.record(Collection::Segments, "gone").unwrap().unwrap();
            store.blobs.remove(&gone.blob).await;
        }
        let store = Store::open(dir.path(), options()).unwrap();
        assert_eq!(
            store.cached_segment("k").await.unwrap().as_deref(),
            Some(&b"encoded packets"[..])
        );
        assert_eq!(
            store.cached_segment("gone").await.unwrap(),
            None,
            "a record without its body is dropped"
        );
        assert_eq!(store.segment_cache_size().unwrap(), (15, 1));
        let blobs = walk(&dir.path().join("blobs"));
        assert_eq!(blobs, 1, "the orphan body was swept, the segment's kept");
    }

    #[tokio::test]
    async fn a_reader_that_lost_an_old_body_leaves_the_new_one() {
        let (_dir, store) = store();
        store.put_segment("k", b"first", u64::MAX).await.unwrap();
        let old: CachedSegment = store.record(Collection::Segments, "k").unwrap().unwrap();
        // Written again (two renders at once): the old body goes.
        store.put_segment("k", b"second", u64::MAX).await.unwrap();
        store.drop_segment(&old).await.unwrap();
        assert_eq!(
            store.cached_segment("k").await.unwrap().as_deref(),
            Some(&b"second"[..])
        );
        assert_eq!(store.segment_cache_size().unwrap(), (6, 1));
    }

    fn walk(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path())
                } else {
                    1
                }
            })
            .sum()
    }
}
