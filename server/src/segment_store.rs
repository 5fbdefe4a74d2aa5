//! The segment cache's durable layer: the actors' [`SegmentStore`] over
//! the store's blobs and records (`clipstream_storage::segment_cache`).
//!
//! Segments are read and written by render threads, which are not async:
//! the store's async calls run on a small runtime of their own, so that a
//! render waits for its segment's write (a segment is durable once its
//! render has it) without needing, or blocking, the server's runtime. The
//! caller waits on a channel rather than `block_on`, which would panic if
//! it were ever called from async code.

use std::future::Future;

use clipstream_actors::segment_store::SegmentStore;
use clipstream_actors::segments::Key;
use clipstream_storage::Store;

pub struct StoredSegments {
    store: Store,
    /// Bytes of segments kept (`segments.cache_bytes`).
    capacity: u64,
    runtime: tokio::runtime::Runtime,
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
        let (store, key, capacity) = (self.store.clone(), hex(key), self.capacity);
        let put = self.wait(async move { store.put_segment(&key, &body, capacity).await });
        if let Some(Err(e)) = put {
            // The render goes on: the segment is rendered again next time.
            tracing::warn!(error = %e, "a segment could not be cached");
        }
    }
}
