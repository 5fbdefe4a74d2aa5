//! A render in progress as its viewers see it: bytes appended to a spool
//! file as the muxer publishes them, a version counter that wakes readers,
//! the render's state (mirrored into its job record), and who is watching.
//! Memory per render stays bounded however slow a viewer is: bytes wait on
//! disk, not in queues.
//!
//! A render ends in one of two ways. Failed: the spool file is removed at
//! once, nothing is kept. Published: every byte is out, and
//! [`LiveRender::commit`] writes the output into the cache in one awaited
//! step (hash → fsync → rename → record); only then is it `complete`, and
//! from then on the cache answers.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use clipstream_actors::{Publish, RenderError, State};
use clipstream_storage::{Job, JobState, Segment, Store};
use futures_util::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

use super::content_key::OutputKey;

/// Read size for viewers.
const READ_BUF: usize = 64 * 1024;

/// A render past this fraction is "well under way": it is finished and
/// cached even when its last viewer leaves (CONTRACT section 5).
const WELL_UNDER_WAY: f64 = 0.5;

pub struct LiveRender {
    pub output: OutputKey,
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    viewers: watch::Sender<usize>,
    /// A background reason keeps the render going without viewers.
    background: AtomicBool,
    store: Store,
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
    /// Every byte is out: `len` is final.
    published: bool,
    /// In the cache: the cache answers from now on.
    complete: bool,
    /// Bytes were rewritten after they were appended (see `patch`): the
    /// running hash no longer holds.
    patched: bool,
    version: u64,
    /// The job's record, kept in step with `state`.
    job: Job,
}

/// What a viewer needs to know at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub len: u64,
    pub state: State,
    pub progress: f64,
    pub error: Option<RenderError>,
    /// Every byte is out: `len` is the total.
    pub published: bool,
    pub complete: bool,
    pub segments: Vec<Segment>,
}

impl Snapshot {
    /// Nothing more will change but the move into the cache.
    fn settled(&self) -> bool {
        self.published || self.error.is_some()
    }
}

/// Someone watching (or about to): while any is alive the render is not
/// abandoned.
pub struct Viewer(Arc<LiveRender>);

impl Drop for Viewer {
    fn drop(&mut self) {
        self.0.viewers.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl LiveRender {
    pub fn new(output: OutputKey, job: Job, store: Store) -> std::io::Result<Arc<LiveRender>> {
        let dir = store.render_spool_dir();
        let path = dir.join(format!("{}.{}.part", output.key, std::process::id()));
        let file = File::create(&path)?;
        let background = job.background;
        Ok(Arc::new(LiveRender {
            output,
            inner: Mutex::new(Inner {
                path,
                file: Some(file),
                len: 0,
                hasher: blake3::Hasher::new(),
                state: State::Queued,
                progress: 0.0,
                error: None,
                segments: Vec::new(),
                published: false,
                complete: false,
                patched: false,
                version: 0,
                job,
            }),
            changed: watch::channel(0).0,
            viewers: watch::channel(0).0,
            background: AtomicBool::new(background),
            store,
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

    /// Writes the job's record as it stands (no flush: a state change is
    /// worth nothing after a crash, which resumes or forgets the job).
    fn note_job(&self, inner: &Inner) {
        if let Err(e) = self.store.note_job(&inner.job) {
            tracing::warn!(key = %self.output.key, error = %e, "a job's state could not be recorded");
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        Snapshot {
            len: inner.len,
            state: inner.state,
            progress: inner.progress,
            error: inner.error.clone(),
            published: inner.published,
            complete: inner.complete,
            segments: inner.segments.clone(),
        }
    }

    /// The job's record as it stands.
    pub fn job(&self) -> Job {
        self.lock().job.clone()
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

    /// Waits until every byte is out or the render failed.
    pub async fn settled(&self) -> Snapshot {
        self.wait_for(Snapshot::settled).await
    }

    /// Counts a viewer until the guard drops.
    pub fn viewer(self: &Arc<Self>) -> Viewer {
        self.viewers.send_modify(|n| *n += 1);
        Viewer(self.clone())
    }

    /// From now on the render runs to its end without viewers.
    pub fn keep_in_background(&self) {
        self.background.store(true, Ordering::Relaxed);
        let mut inner = self.lock();
        inner.job.background = true;
        self.note_job(&inner);
    }

    pub fn is_background(&self) -> bool {
        self.background.load(Ordering::Relaxed)
    }

    /// Resolves once nobody has watched for `grace`, unless a background
    /// reason keeps the render or it is well under way; then never.
    pub async fn abandoned(&self, grace: Duration) {
        let mut rx = self.viewers.subscribe();
        loop {
            if rx.wait_for(|n| *n == 0).await.is_err() {
                return std::future::pending().await;
            }
            // `is_ok` at once: a watch `Ref` held on would block senders.
            let back = tokio::time::timeout(grace, rx.wait_for(|n| *n > 0))
                .await
                .is_ok();
            if back {
                continue;
            }
            if self.is_background() || self.snapshot().progress >= WELL_UNDER_WAY {
                return std::future::pending().await;
            }
            if *rx.borrow() == 0 {
                return;
            }
        }
    }

    fn append(&self, bytes: &[u8], seconds: f64) {
        let mut inner = self.lock();
        if inner.error.is_some() || inner.published {
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

    /// Writes the published render into the cache: the digest of its
    /// bytes, fsync, rename into `renders/`, the cache record, then the
    /// job's. Until it returns, viewers read the spool file; after, the
    /// cache. A failure here fails the render and keeps nothing.
    pub async fn commit(self: &Arc<Self>, capacity: u64, render_secs: f64) {
        let taken = {
            let mut inner = self.lock();
            if !inner.published || inner.error.is_some() || inner.complete {
                return;
            }
            inner.job.state = JobState::Saving;
            self.note_job(&inner);
            (
                inner.file.take(),
                inner.path.clone(),
                inner.patched,
                inner.hasher.clone(),
            )
        };
        let (file, spool, patched, hasher) = taken;
        let dest = self.store.render_path(&self.output.key);
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            let file = file.ok_or_else(|| std::io::Error::other("committed twice"))?;
            let mut hasher = hasher;
            if patched {
                // A muxer rewrote bytes already hashed: hash the file again.
                hasher = blake3::Hasher::new();
                hasher.update_reader(File::open(&spool)?)?;
            }
            file.sync_all()?;
            std::fs::rename(&spool, &dest)?;
            Ok(hasher.finalize().to_hex().to_string())
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        let hash = match written {
            Ok(hash) => hash,
            Err(e) => {
                self.fail(RenderError::Internal(format!(
                    "the render could not be cached: {e}"
                )));
                return;
            }
        };
        let (len, segments) = {
            let mut inner = self.lock();
            inner.path = self.store.render_path(&self.output.key);
            (inner.len, inner.segments.clone())
        };
        let recorded = self
            .store
            .record_cached_render(
                &self.output.key,
                &self.output.project,
                len,
                hash,
                segments,
                capacity,
            )
            .await;
        let mut inner = self.lock();
        if let Err(e) = recorded {
            // The renamed file has no record: the next start sweeps it.
            drop(inner);
            self.fail(RenderError::Internal(format!(
                "the render could not be recorded in the cache: {e}"
            )));
            return;
        }
        inner.complete = true;
        inner.state = State::Done;
        inner.progress = 1.0;
        inner.job.state = JobState::Done;
        inner.job.progress = 1.0;
        inner.job.finished = Some(clipstream_storage::unix_now());
        inner.job.render_secs = Some(render_secs);
        self.note_job(&inner);
        self.bump(&mut inner);
    }

    /// Opens the bytes for a viewer: the spool file, or the cached file if
    /// the render was moved into the cache meanwhile.
    pub async fn open_file(&self) -> std::io::Result<tokio::fs::File> {
        let path = self.lock().path.clone();
        match tokio::fs::File::open(&path).await {
            Ok(f) => Ok(f),
            // Renamed into the cache between reading the path and opening
            // (`commit` updates the path only once the rename is done).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tokio::fs::File::open(self.store.render_path(&self.output.key)).await
            }
            Err(e) => Err(e),
        }
    }

    /// `len` bytes from `offset`, which must be published already.
    pub async fn read(&self, offset: u64, len: u64) -> std::io::Result<Bytes> {
        let mut file = self.open_file().await?;
        file.seek(std::io::SeekFrom::Start(offset)).await?;
        let mut buf = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
        file.read_exact(&mut buf).await?;
        Ok(Bytes::from(buf))
    }

    /// The bytes from `start` up to `end` (exclusive; `None`: to the end
    /// of the render), as they are produced; the reader counts as a
    /// viewer while it lasts. If the render fails midway the stream ends
    /// with an error, which cuts the response.
    pub fn stream(
        self: &Arc<Self>,
        start: u64,
        end: Option<u64>,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + 'static {
        struct Reader {
            live: Arc<LiveRender>,
            _viewer: Viewer,
            file: Option<tokio::fs::File>,
            offset: u64,
            end: Option<u64>,
            rx: watch::Receiver<u64>,
        }
        let reader = Reader {
            rx: self.changed.subscribe(),
            _viewer: self.viewer(),
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
                        match r.live.open_file().await {
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
                if snap.published || snap.complete {
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
        if inner.error.is_some() || inner.published {
            return;
        }
        inner.state = state;
        let job_state = match state {
            State::Queued => JobState::Queued,
            State::Fetching => JobState::Fetching,
            State::Rendering => JobState::Rendering,
            State::Saving | State::Done => JobState::Saving,
            State::Failed => JobState::Failed,
        };
        if inner.job.state != job_state {
            inner.job.state = job_state;
            if job_state == JobState::Fetching && inner.job.started.is_none() {
                inner.job.started = Some(clipstream_storage::unix_now());
            }
            inner.job.progress = inner.progress;
            self.note_job(&inner);
        }
        self.bump(&mut inner);
    }

    fn progress(&self, done: f64) {
        let mut inner = self.lock();
        inner.progress = done;
        inner.job.progress = done;
        self.bump(&mut inner);
    }

    fn segment(&self, reused: bool, seconds: f64) {
        let mut inner = self.lock();
        if reused {
            inner.job.seconds_reused += seconds;
        } else {
            inner.job.seconds_rendered += seconds;
        }
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
        if inner.error.is_some() || inner.published {
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

    /// Every byte is out; [`LiveRender::commit`] does the rest.
    fn finish(&self) {
        let mut inner = self.lock();
        if inner.error.is_some() || inner.published {
            return;
        }
        inner.published = true;
        inner.state = State::Saving;
        inner.progress = 1.0;
        self.bump(&mut inner);
    }

    fn fail(&self, error: RenderError) {
        let mut inner = self.lock();
        if inner.error.is_some() || inner.complete {
            return;
        }
        inner.file = None;
        // Nothing of a failed render is kept.
        let _ = std::fs::remove_file(&inner.path);
        inner.job.state = JobState::Failed;
        inner.job.error = Some(super::render_failure(&error));
        inner.job.finished = Some(clipstream_storage::unix_now());
        inner.error = Some(error);
        inner.state = State::Failed;
        self.note_job(&inner);
        self.bump(&mut inner);
    }
}
