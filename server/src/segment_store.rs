//! The segment cache's durable layer: the actors' [`SegmentStore`] over
//! the store's blobs and records (`clipstream_storage::segment_cache`).
//!
//! Segments are read and written by render threads, which are not async:
//! the store's async calls run on a small runtime of their own, without
//! needing, or blocking, the server's runtime. A read waits on a channel
//! (not `block_on`, which would panic if it were ever called from async
//! code). A write goes on in the background, so an encoder never waits for
//! the store's fsyncs; at most [`PENDING`] writes are under way, and a
//! render that makes segments faster than the disk takes them waits for
//! room (memory stays bounded). A write cut off by a crash loses only
//! that segment (rendered again next time; the sweep removes its body).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use clipstream_actors::segment_store::SegmentStore;
use clipstream_actors::segments::Key;
use clipstream_storage::Store;

/// Segment writes under way at once.
const PENDING: usize = 8;

/// Segments written to the store since start (`/metrics`).
static STORED: AtomicU64 = AtomicU64::new(0);

pub fn stored() -> u64 {
    STORED.load(Ordering::Relaxed)
}

pub struct StoredSegments {
    store: Store,
    /// Bytes of segments kept (`segments.cache_bytes`).
    capacity: u64,
    runtime: tokio::runtime::Runtime,
    pending: Arc<Semaphore>,
}

impl StoredSegments {
    pub fn new(store: Store, capacity: u64) -> std::io::Result<StoredSegments> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("segment-store")
            .enable_all()
            .build()?;
        Ok(StoredSegments {
            store,
            capacity,
            runtime,
            pending: Arc::new(Semaphore::new(PENDING)),
        })
    }

    /// Runs `work` on the store's runtime and waits for its result;
    /// `None` if the runtime dropped it (shutting down).
    fn wait<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv().ok()
    }
}

fn hex(key: &Key) -> String {
    clipstream_storage::hex(key)
}

impl SegmentStore for StoredSegments {
    fn get(&self, key: &Key) -> Option<Vec<u8>> {
        if self.capacity == 0 {
            return None;
        }
        let store = self.store.clone();
        let key = hex(key);
        match self.wait(async move { store.cached_segment(&key).await })? {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(error = %e, "a cached segment could not be read");
                None
            }
        }
    }

    fn put(&self, key: &Key, body: Vec<u8>) {
        if self.capacity == 0 {
            return;
        }
        let pending = self.pending.clone();
        // Never closed: an error is only a runtime shutting down.
        let Some(Ok(room)) = self.wait(async move { pending.acquire_owned().await }) else {
            return;
        };
        let (store, key, capacity) = (self.store.clone(), hex(key), self.capacity);
        self.runtime.spawn(async move {
            match store.put_segment(&key, &body, capacity).await {
                Ok(true) => {
                    STORED.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => {}
                // The render went on: the segment is rendered again next time.
                Err(e) => tracing::warn!(error = %e, "a segment could not be cached"),
            }
            drop(room);
        });
    }

    fn keep(&self, key: &Key, body: Vec<u8>) -> bool {
        if self.capacity == 0 {
            return false;
        }
        // The bound on one segment (a sixteenth of the cache, see
        // `put_segment`) is lifted: another node waits for this one. The
        // cache then evicts down to the larger bound, and down to its own
        // at the next write.
        let size = body.len() as u64;
        let capacity = self.capacity.max(size.saturating_mul(16));
        let (store, key) = (self.store.clone(), hex(key));
        match self.wait(async move { store.put_segment(&key, &body, capacity).await }) {
            Some(Ok(true)) => {
                STORED.fetch_add(1, Ordering::Relaxed);
                true
            }
            Some(Ok(false)) | None => false,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "a segment could not be kept for another node");
                false
            }
        }
    }
}
