//! A render in progress as its viewers see it: bytes appended to a spool
//! file as the muxer publishes them, a version counter that wakes readers,
//! and the render's state. Memory per render stays bounded however slow a
//! viewer is: bytes wait on disk, not in queues.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use clipstream_actors::pipeline::{Publish, RenderError, State};
use clipstream_storage::{Segment, Store};
use futures_util::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

/// Read size for viewers.
const READ_BUF: usize = 64 * 1024;

pub struct LiveRender {
    pub key: String,
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    store: Store,
    cache_capacity: u64,
}

struct Inner {
    /// Where the bytes are now: the spool file, then the cached file.
    path: PathBuf,
    file: Option<File>,
    len: u64,
    hasher: blake3::Hasher,
    state: State,
    progress: f64,
    error: Option<RenderError>,
    /// The init segment, then each fragment (HLS serves them one by one).
    segments: Vec<Segment>,
    /// Cached: the digest, once the file is complete.
    hash: Option<String>,
    /// Bytes were rewritten after they were appended (see `patch`): the
    /// running hash no longer holds.
    patched: bool,
    version: u64,
}

/// What a viewer needs to know at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub len: u64,
    pub state: State,
    pub progress: f64,
    pub error: Option<RenderError>,
    pub complete: bool,
    pub segments: Vec<Segment>,
}

impl LiveRender {
    pub fn new(key: String, store: Store, cache_capacity: u64) -> std::io::Result<Arc<LiveRender>> {
        let dir = store.render_spool_dir();
        let path = dir.join(format!("{key}.{}.part", std::process::id()));
        let file = File::create(&path)?;
        Ok(Arc::new(LiveRender {
            key,
            inner: Mutex::new(Inner {
                path,
                file: Some(file),
                len: 0,
                hasher: blake3::Hasher::new(),
                state: State::Queued,
                progress: 0.0,
                error: None,
                segments: Vec::new(),
                hash: None,
                patched: false,
                version: 0,
            }),
            changed: watch::channel(0).0,
            store,
            cache_capacity,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; reading
        // it is safe.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails the render for a fault of the server's own (a file that
    /// cannot be written), releasing the lock first.
    fn fail_inside(&self, inner: MutexGuard<'_, Inner>, what: String) {
        drop(inner);
        self.fail(RenderError::Internal(what));
    }

    fn bump(&self, inner: &mut Inner) {
        inner.version += 1;
        self.changed.send_replace(inner.version);
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        Snapshot {
            len: inner.len,
            state: inner.state,
            progress: inner.progress,
            error: inner.error.clone(),
            complete: inner.hash.is_some(),
            segments: inner.segments.clone(),
        }
    }

    /// Waits until `ready` holds for the render's snapshot (or the render
    /// is over) and returns it.
    pub async fn wait_for(&self, mut ready: impl FnMut(&Snapshot) -> bool) -> Snapshot {
        let mut rx = self.changed.subscribe();
        loop {
            let snap = self.snapshot();
            if ready(&snap) || snap.complete || snap.error.is_some() {
                return snap;
            }
            if rx.changed().await.is_err() {
                return self.snapshot();
            }
        }
    }

    fn append(&self, bytes: &[u8], seconds: f64) {
        let mut inner = self.lock();
        if inner.error.is_some() {
            return;
        }
        let Some(file) = inner.file.as_mut() else {
            return;
        };
        if let Err(e) = file.write_all(bytes) {
            self.fail_inside(inner, format!("the spool file could not be written: {e}"));
            return;
        }
        inner.hasher.update(bytes);
        let offset = inner.len;
        inner.len += bytes.len() as u64;
        inner.segments.push(Segment {
            offset,
            len: bytes.len() as u64,
            seconds,
        });
        self.bump(&mut inner);
    }

    /// Opens the bytes for a viewer: the spool file, or the cached file if
    /// the render was moved into the cache meanwhile.
    async fn open(&self) -> std::io::Result<tokio::fs::File> {
        let path = self.lock().path.clone();
        match tokio::fs::File::open(&path).await {
            Ok(f) => Ok(f),
            // Moved into the cache between reading the path and opening.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let moved = self.lock().path.clone();
                tokio::fs::File::open(moved).await
            }
            Err(e) => Err(e),
        }
    }

    /// The bytes from `start` up to `end` (exclusive; `None`: to the end
    /// of the render), as they are produced. If the render fails midway
    /// the stream ends with an error, which cuts the response.
    pub fn stream(
        self: &Arc<Self>,
        start: u64,
        end: Option<u64>,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + 'static {
        struct Reader {
            live: Arc<LiveRender>,
            file: Option<tokio::fs::File>,
            offset: u64,
            end: Option<u64>,
            rx: watch::Receiver<u64>,
        }
        let reader = Reader {
            rx: self.changed.subscribe(),
            live: self.clone(),
            file: None,
            offset: start,
            end,
        };
        futures_util::stream::unfold(Some(reader), |reader| async move {
            let mut r = reader?;
            loop {
                if r.end.is_some_and(|end| r.offset >= end) {
                    return None;
                }
                let snap = r.live.snapshot();
                if let Some(error) = snap.error {
                    let e = std::io::Error::other(error.to_string());
                    return Some((Err(e), None));
                }
                let available = r.end.map_or(snap.len, |end| end.min(snap.len));
                if r.offset < available {
                    if r.file.is_none() {
                        match r.live.open().await {
                            Ok(mut f) => {
                                if let Err(e) = f.seek(std::io::SeekFrom::Start(r.offset)).await {
                                    return Some((Err(e), None));
                                }
                                r.file = Some(f);
                            }
                            Err(e) => return Some((Err(e), None)),
                        }
                    }
                    let file = r.file.as_mut()?;
                    let want = (available - r.offset).min(READ_BUF as u64) as usize;
                    let mut buf = vec![0u8; want];
                    return match file.read_exact(&mut buf).await {
                        Ok(_) => {
                            r.offset += want as u64;
                            Some((Ok(Bytes::from(buf)), Some(r)))
                        }
                        Err(e) => Some((Err(e), None)),
                    };
                }
                if snap.complete {
                    return None;
                }
                if r.rx.changed().await.is_err() {
                    return None;
                }
            }
        })
    }
}

impl Publish for LiveRender {
    fn state(&self, state: State) {
        let mut inner = self.lock();
        inner.state = state;
        self.bump(&mut inner);
    }

    fn progress(&self, done: f64) {
        let mut inner = self.lock();
        inner.progress = done;
        self.bump(&mut inner);
    }

    fn init(&self, bytes: Bytes) {
        self.append(&bytes, 0.0);
    }

    fn fragment(&self, bytes: Bytes, seconds: f64) {
        self.append(&bytes, seconds);
    }

    /// Written into the spool file at once: a viewer that has not read
    /// those bytes yet gets the final ones, one that has keeps a stream
    /// that was valid as it was (a muxer seeks back only to fill in
    /// sizes, durations and indexes). The cache holds the patched file.
    fn patch(&self, offset: u64, bytes: Bytes) {
        use std::os::unix::fs::FileExt;
        let mut inner = self.lock();
        if inner.error.is_some() {
            return;
        }
        if offset + bytes.len() as u64 > inner.len {
            self.fail_inside(inner, "a patch beyond the bytes published".to_owned());
            return;
        }
        let written = match inner.file.as_ref() {
            Some(file) => file.write_all_at(&bytes, offset),
            None => return,
        };
        if let Err(e) = written {
            self.fail_inside(inner, format!("the spool file could not be patched: {e}"));
            return;
        }
        inner.patched = true;
        self.bump(&mut inner);
    }

    fn finish(&self) {
        let mut inner = self.lock();
        if inner.error.is_some() {
            return;
        }
        if inner.patched {
            let mut hasher = blake3::Hasher::new();
            let rehashed =
                File::open(&inner.path).and_then(|f| hasher.update_reader(f).map(|_| ()));
            if let Err(e) = rehashed {
                self.fail_inside(inner, format!("the render could not be hashed: {e}"));
                return;
            }
            inner.hasher = hasher;
        }
        let synced = inner.file.take().map(|f| f.sync_all());
        let dest = self.store.render_path(&self.key);
        let moved = match synced {
            Some(Ok(())) => std::fs::rename(&inner.path, &dest),
            Some(Err(e)) => Err(e),
            None => Err(std::io::Error::other("finished twice")),
        };
        if let Err(e) = moved {
            self.fail_inside(inner, format!("the render could not be cached: {e}"));
            return;
        }
        inner.path = dest;
        let hash = inner.hasher.finalize().to_hex().to_string();
        inner.hash = Some(hash.clone());
        inner.state = State::Done;
        inner.progress = 1.0;
        let (len, key, store, capacity) = (
            inner.len,
            self.key.clone(),
            self.store.clone(),
            self.cache_capacity,
        );
        let segments = inner.segments.clone();
        self.bump(&mut inner);
        drop(inner);
        tokio::spawn(async move {
            if let Err(e) = store
                .record_cached_render(&key, len, hash, segments, capacity)
                .await
            {
                tracing::warn!(key = %key, error = %e, "a finished render could not be recorded in the cache");
            }
        });
    }

    fn fail(&self, error: RenderError) {
        let mut inner = self.lock();
        if inner.error.is_some() || inner.hash.is_some() {
            return;
        }
        inner.file = None;
        // Nothing of a failed render is kept.
        let _ = std::fs::remove_file(&inner.path);
        inner.error = Some(error);
        inner.state = State::Failed;
        self.bump(&mut inner);
    }
}
