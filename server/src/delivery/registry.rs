//! Every render job, by its output's content key: the first GET of a
//! token (or a prerender, or a restart that finds a background job
//! unfinished) starts one, later GETs of any token that resolves to the
//! same output join it. Jobs wait for a worker in the [`Queue`]; each runs
//! its actor tree under a time limit, is cancelled when its viewers have
//! gone and nothing else keeps it, and ends with its output committed to
//! the cache or its failure recorded.

use futures_util::FutureExt as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clipstream_actors::engine::plan::Deliverable;
use clipstream_actors::segments::Remote;
use clipstream_actors::{Publish, RenderError, Resolve, State};
use clipstream_storage::cluster::{Claim, Coordinator, Held, NewWork, Work};
use clipstream_storage::{
    Error as StoreError, Generation, Job, JobError, JobState, OpenRender, RenderRequest, Store,
};

use super::content_key::{self, output_name, parse_output, OutputKey, Prepared};
use super::fetch::UrlFetcher;
use super::live::{LiveRender, Viewer};
use super::queue::{Queue, Ticket};
use super::remote_runs::{ClusterRuns, RunOf, RunPayload, MOST_CLAIMERS, SEGMENT_RUN_WORK};
use super::resolver::ProjectSources;
use super::DeliveryError;
use crate::config::Config;
use crate::memory::IdleTrim;
use crate::metrics::Metrics;

/// The kind of a render's row in the cluster's work (see `cluster`).
pub const RENDER_WORK: &str = "render";

/// Tokens whose output keys are remembered; past this the memo starts
/// over (it is only a shortcut).
const MEMO_TOKENS: usize = 100_000;

/// Why a job runs: counted in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A viewer asked for an output not cached.
    Viewer,
    /// A render request asked for it ahead of viewers.
    Prerender,
    /// A background job the last process did not finish.
    Resumed,
}

impl Reason {
    fn label(self) -> &'static str {
        match self {
            Reason::Viewer => "viewer",
            Reason::Prerender => "prerender",
            Reason::Resumed => "resumed",
        }
    }
}

/// A token's output key as derived at one generation of its project.
struct Memo {
    what: Deliverable,
    generation: Generation,
    seen: u64,
    output: Arc<OutputKey>,
}

pub struct Renders {
    store: Store,
    pub metrics: Arc<Metrics>,
    urls: Arc<UrlFetcher>,
    config: Arc<Config>,
    live: Mutex<HashMap<String, Arc<LiveRender>>>,
    /// The newest claim this node made in the cluster on each render in
    /// `live` (locked after `live`, changed with it): its end finishes
    /// that claim, so an older claim's end never drops a newer one.
    claims: Mutex<HashMap<String, i64>>,
    memo: Mutex<HashMap<String, Vec<Memo>>>,
    queue: Arc<Queue>,
    /// The nodes sharing the repository: one render per output in the
    /// whole cluster (see `cluster`).
    cluster: Arc<dyn Coordinator>,
    idle: Arc<IdleTrim>,
    /// `Cache-Control` of token URLs: short, so that a changed movie shows.
    pub cache_control: &'static str,
    /// Sends viewers of a render another node owns to that node.
    pub forwarder: super::proxy::Forwarder,
    /// Segments rendered out of order for HLS players seeking ahead, at
    /// once at most: as many as render workers, so that a client asking
    /// for many far segments cannot take every core.
    seeks: Arc<tokio::sync::Semaphore>,
    /// Those segments being rendered, by output key and number: players
    /// asking for the same far segment at once share one render of it.
    alone: Mutex<HashMap<(String, usize), Arc<AloneSegment>>>,
}

/// A segment rendered out of order, once for everyone who asks meanwhile.
type AloneSegment = tokio::sync::OnceCell<Result<bytes::Bytes, RenderError>>;

/// A player's hold on an [`AloneSegment`]: the entry leaves the map once
/// the segment is out (later players find it in the segment cache) or when
/// the last player waiting for it has gone (however its request ended).
struct AloneEntry<'a> {
    map: &'a Mutex<HashMap<(String, usize), Arc<AloneSegment>>>,
    key: (String, usize),
    cell: Arc<AloneSegment>,
}

impl Drop for AloneEntry<'_> {
    fn drop(&mut self) {
        let mut map = lock(self.map);
        // Players take their hold under this lock: the map's and this one
        // are the only holds left when the count is two.
        let last = Arc::strong_count(&self.cell) <= 2;
        if map
            .get(&self.key)
            .is_some_and(|c| Arc::ptr_eq(c, &self.cell))
            && (self.cell.initialized() || last)
        {
            map.remove(&self.key);
        }
    }
}

/// A GET's answer: bytes in the cache, or a render to follow.
pub enum Lookup {
    Cached(Arc<OpenRender>),
    Live(Arc<LiveRender>, Viewer),
}

/// Where an output stands, for `/status`.
pub struct Status {
    pub state: JobState,
    pub progress: f64,
    pub error: Option<JobError>,
    /// Seconds of video rendered and reused from the segment cache.
    pub seconds: (f64, f64),
    /// The output's size once cached.
    pub size: Option<u64>,
    /// Its job's times (Unix seconds) and render seconds, when a job made
    /// or makes it: the studio shows them beside the preview.
    pub timings: Option<Timings>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Timings {
    pub created: u64,
    pub started: Option<u64>,
    pub finished: Option<u64>,
    pub render_secs: Option<f64>,
}

impl Timings {
    fn of(job: &clipstream_storage::Job) -> Timings {
        Timings {
            created: job.created,
            started: job.started,
            finished: job.finished,
            render_secs: job.render_secs,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain maps: consistent whatever panicked while holding them.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Renders {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
    ) -> Result<Renders, reqwest::Error> {
        let urls = Arc::new(UrlFetcher::new(&config.fetch)?);
        let idle = IdleTrim::new(Duration::from_secs(config.render.memory_idle_secs));
        // Made once per process, so a `'static` header value costs nothing.
        let cache_control: &'static str = Box::leak(
            format!(
                "public, max-age={}, must-revalidate",
                config.render.max_age_secs
            )
            .into_boxed_str(),
        );
        let seeks = Arc::new(tokio::sync::Semaphore::new(config.render_workers().max(1)));
        Ok(Renders {
            metrics,
            urls,
            queue: Queue::new(config.render_workers(), config.render.max_queued),
            cluster: store.cluster().clone(),
            store,
            config,
            live: Mutex::new(HashMap::new()),
            claims: Mutex::new(HashMap::new()),
            memo: Mutex::new(HashMap::new()),
            idle,
            cache_control,
            forwarder: super::proxy::Forwarder::new()?,
            seeks,
            alone: Mutex::new(HashMap::new()),
        })
    }

    /// The routing keys a render request may name: those of the nodes
    /// of the cluster (this node's alone when it has none).
    pub async fn routing_keys(&self) -> Result<Vec<String>, DeliveryError> {
        Ok(self.cluster.routing_keys().await?)
    }

    /// Render `key` as cached: in a cluster its record says so (its file
    /// may be in the bucket only, fetched when someone reads it); alone,
    /// its file must be here too.
    fn cached(&self, key: &str) -> Result<Option<clipstream_storage::CachedRender>, StoreError> {
        if self.cluster.shared() {
            self.store.cached_render_record(key)
        } else {
            Ok(self.store.cached_render(key)?.map(|(entry, _)| entry))
        }
    }

    /// How long a node of the cluster holds work without renewing it.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.config.cluster.lease_secs.max(1))
    }

    /// Downloads `src` for a look at it (the Shotstack API's probe),
    /// through the same private-address guard and limits as every render's
    /// sources, into a directory of the render spool that goes when the
    /// returned `TempDir` is dropped. One attempt: the caller is waiting.
    pub async fn download(
        &self,
        src: &str,
    ) -> Result<(tempfile::TempDir, std::path::PathBuf), clipstream_actors::FetchError> {
        let dir = tempfile::Builder::new()
            .prefix("probe-")
            .tempdir_in(self.store.render_spool_dir())
            .map_err(|e| clipstream_actors::FetchError::Transient {
                src: src.to_owned(),
                reason: format!("no directory for downloads: {e}"),
            })?;
        let path = self.urls.fetch(src, dir.path()).await?;
        Ok((dir, path))
    }

    /// Sets the gauges of renders in progress by state.
    pub fn count_states(&self) {
        let mut counts = [0i64; 4];
        for live in lock(&self.live).values() {
            match live.snapshot().state {
                State::Queued => counts[0] += 1,
                State::Fetching => counts[1] += 1,
                State::Rendering => counts[2] += 1,
                State::Saving => counts[3] += 1,
                State::Done | State::Failed => {}
            }
        }
        for (state, n) in ["queued", "fetching", "rendering", "saving"]
            .into_iter()
            .zip(counts)
        {
            self.metrics
                .renders_active
                .get_or_create(&vec![("state", state)])
                .set(n);
        }
    }

    /// The output key of `what` of `token` as its project stands now:
    /// remembered until the project's generation moves, so that a warm
    /// GET reads neither the movie nor the assets. Derived afresh, it
    /// comes with what a render needs.
    fn resolve(
        &self,
        token: &str,
        what: Deliverable,
    ) -> Result<(Arc<OutputKey>, Option<Prepared>), DeliveryError> {
        if let Some(memos) = lock(&self.memo).get(token) {
            if let Some(m) = memos.iter().find(|m| m.what == what) {
                if m.generation.load(std::sync::atomic::Ordering::Acquire) == m.seen {
                    return Ok((m.output.clone(), None));
                }
            }
        }
        let request = self.store.render_request(token)?;
        // Read before deriving: a write in between moves it past `seen`.
        let generation = self.store.generation(&request.project);
        let seen = generation.load(std::sync::atomic::Ordering::Acquire);
        let prepared = content_key::prepare(&self.store, &self.config, &request, what)?;
        let output = Arc::new(prepared.output.clone());
        let mut memo = lock(&self.memo);
        if memo.len() >= MEMO_TOKENS {
            memo.clear();
        }
        let memos = memo.entry(token.to_owned()).or_default();
        memos.retain(|m| m.what != what);
        memos.push(Memo {
            what,
            generation,
            seen,
            output: output.clone(),
        });
        Ok((output, Some(prepared)))
    }

    /// The cached output of `what` of `token`, the render making it, or a
    /// new render of it for a viewer. `Busy` when the queue is full.
    pub async fn lookup(
        self: &Arc<Self>,
        token: &str,
        what: Deliverable,
    ) -> Result<(Arc<OutputKey>, Lookup), DeliveryError> {
        let (output, prepared) = self.resolve(token, what)?;
        if self.cluster.shared() {
            // Rendered by another node: its file comes from the bucket
            // without holding up this thread.
            self.store.fetch_cached_render(&output.key).await?;
        }
        if let Some(open) = self.store.open_cached_render(&output.key)? {
            self.metrics.cache_hits.inc();
            return Ok((output, Lookup::Cached(open)));
        }
        if let Some(live) = self.joined(&output.key) {
            let viewer = live.viewer();
            return Ok((output, Lookup::Live(live, viewer)));
        }
        let prepared = match prepared {
            Some(p) => p,
            None => self.prepare(token, what)?,
        };
        // A node alone renders it itself; in a cluster, the node that
        // claims it (a job someone queued stays a job: it runs to its end
        // whether this viewer stays or not).
        let (claim, reason) = if self.cluster.shared() {
            match self.claim_for_viewer(token, what, &output).await? {
                Some((epoch, true)) => (Some(epoch), Reason::Prerender),
                Some((epoch, false)) => (Some(epoch), Reason::Viewer),
                // Another node finished it meanwhile.
                None => {
                    self.store.fetch_cached_render(&output.key).await?;
                    return match self.store.open_cached_render(&output.key)? {
                        Some(open) => {
                            self.metrics.cache_hits.inc();
                            Ok((output, Lookup::Cached(open)))
                        }
                        None => Err(DeliveryError::Busy {
                            retry_after_secs: 1,
                        }),
                    };
                }
            }
        } else {
            (None, Reason::Viewer)
        };
        let live = self.start(token, what, prepared, reason, claim).await;
        if let (Err(_), Some(epoch)) = (&live, claim) {
            self.let_go(&output.key, epoch).await;
        }
        let live = live?;
        let viewer = live.viewer();
        Ok((output, Lookup::Live(live, viewer)))
    }

    /// Makes this node the one that renders `output` for a viewer (its
    /// claim's epoch, and whether the render was queued as a job), or
    /// says which node does ([`DeliveryError::Elsewhere`]); `None` when
    /// the render reached the cache meanwhile (its node finished it
    /// between this node's look at the cache and its claim). A token whose
    /// `routingkey` this node does not serve is queued for the nodes that
    /// do, and its viewers are sent to the one that takes it.
    async fn claim_for_viewer(
        &self,
        token: &str,
        what: Deliverable,
        output: &OutputKey,
    ) -> Result<Option<(i64, bool)>, DeliveryError> {
        let payload = work_payload(token, what);
        let routing_key = self.store.render_request(token)?.routingkey;
        let claim = match routing_key.as_deref() {
            Some(rk) if !self.config.cluster.routing_keys.iter().any(|k| k == rk) => {
                self.cluster
                    .enqueue(NewWork {
                        kind: RENDER_WORK,
                        key: &output.key,
                        payload: &payload,
                        routing_key: Some(rk),
                        priority: 1,
                        others_only: false,
                    })
                    .await?;
                match self.taker_of(&output.key).await? {
                    Some(claim) => claim,
                    None => return Ok(None),
                }
            }
            _ => {
                self.cluster
                    .claim(RENDER_WORK, &output.key, &payload, false)
                    .await?
            }
        };
        match claim {
            // The render's last node let go after the cache had it.
            Claim::Mine { epoch, .. } if self.cached(&output.key)?.is_some() => {
                self.let_go(&output.key, epoch).await;
                Ok(None)
            }
            Claim::Mine { epoch, background } => Ok(Some((epoch, background))),
            Claim::Held { node, url } => Err(DeliveryError::Elsewhere { node, url }),
        }
    }

    /// The node that takes queued render `key`, once one has (within a
    /// lease's time; else the caller is told to come back); `None` once
    /// the render is in the cache (a short one may be over before it is
    /// seen running).
    async fn taker_of(&self, key: &str) -> Result<Option<Claim>, DeliveryError> {
        let lease = Duration::from_secs(self.config.cluster.lease_secs.max(1));
        let deadline = Instant::now() + lease;
        loop {
            if let Some(claim) = self.cluster.holder(RENDER_WORK, key).await? {
                return Ok(Some(claim));
            }
            if self.cached(key)?.is_some() {
                return Ok(None);
            }
            if Instant::now() >= deadline {
                return Err(DeliveryError::Busy {
                    retry_after_secs: self.config.render.busy_retry_secs,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends this node's claim `epoch` on render `key` in the cluster; a
    /// failure only delays others (the lease runs out).
    async fn let_go(&self, key: &str, epoch: i64) {
        if let Err(e) = self.cluster.finish(RENDER_WORK, key, epoch).await {
            tracing::warn!(key = %key, error = %e, "a render's claim could not be given up");
        }
    }

    /// A place in the background line of the render queue for work that
    /// is not a render (a Pixop processing job, `key` its video id): it
    /// shares the renders' workers and their bound. `None` when the line
    /// is full.
    pub fn background_worker(&self, key: &str) -> Option<super::queue::Ticket> {
        self.queue.enter(key, false, false).ok()
    }

    /// The render of `key` in progress, if any; a viewer joining a
    /// background render that still waits for a worker moves it up.
    fn joined(&self, key: &str) -> Option<Arc<LiveRender>> {
        let live = lock(&self.live).get(key).cloned()?;
        self.queue.promote(key);
        Some(live)
    }

    /// The segments of `token`'s MP4 as its plan cuts them, known before
    /// anything is rendered (HLS lists them at once), and its frame rate.
    pub fn mp4_segments(
        &self,
        token: &str,
    ) -> Result<(Vec<clipstream_actors::segments::Segment>, f64), DeliveryError> {
        use clipstream_actors::engine::edit::Format;
        use clipstream_actors::segments;
        let prepared = self.prepare(token, Deliverable::Movie(Format::Mp4))?;
        let plan = &prepared.plan;
        let per = segments::frames_per_segment(plan, self.config.segment_secs());
        Ok((segments::split(plan, per), plan.rate.as_f64()))
    }

    /// Whether `what` of `token` is neither cached nor being rendered.
    pub fn is_cold(&self, token: &str, what: Deliverable) -> Result<bool, DeliveryError> {
        let (output, _) = self.resolve(token, what)?;
        Ok(self.cached(&output.key)?.is_none() && !lock(&self.live).contains_key(&output.key))
    }

    /// Renders segment `n` of `token`'s MP4 on its own, now, whatever the
    /// token's render is doing: the bytes its HLS segment has in the whole
    /// file (see [`clipstream_actors::segment_alone`]). Its sources are
    /// resolved as a render's, tried once each.
    pub async fn mp4_segment_alone(
        &self,
        token: &str,
        n: usize,
    ) -> Result<Result<bytes::Bytes, RenderError>, DeliveryError> {
        use clipstream_actors::engine::edit::Format;
        let prepared = self.prepare(token, Deliverable::Movie(Format::Mp4))?;
        let key = (prepared.output.key.clone(), n);
        let cell = lock(&self.alone).entry(key.clone()).or_default().clone();
        let _entry = AloneEntry {
            map: &self.alone,
            key,
            cell: cell.clone(),
        };
        // A waiter whose request is dropped leaves the render to the next
        // one (OnceCell runs the next caller's initialiser).
        let mut rendered = false;
        let result = cell
            .get_or_init(|| {
                rendered = true;
                self.render_alone(prepared, n)
            })
            .await
            .clone();
        let outcome = if rendered { "rendered" } else { "joined" };
        self.metrics
            .hls_seeks
            .get_or_create(&vec![("outcome", outcome)])
            .inc();
        Ok(result)
    }

    /// [`Renders::mp4_segment_alone`]'s render, done once per segment.
    async fn render_alone(
        &self,
        prepared: Prepared,
        n: usize,
    ) -> Result<bytes::Bytes, RenderError> {
        // Waits its turn; a closed semaphore (never closed here) would
        // mean no limit is left to keep. The permit (and the downloads)
        // go with the blocking render, which runs on if every player
        // leaves.
        let slot = self.seeks.clone().acquire_owned().await.ok();
        let (plan, resolver, sources, segmenting) = self.sources_of(prepared).await?;
        let (limits, fragments) = (self.config.source_limits(), self.config.fragments());
        let rendered = tokio::task::spawn_blocking(move || {
            let _held = (slot, resolver);
            clipstream_actors::segment_alone(&plan, &sources, limits, fragments, &segmenting, n)
        })
        .await;
        rendered.unwrap_or_else(|e| {
            Err(RenderError::Internal(format!(
                "the segment's render panicked: {e}"
            )))
        })
    }

    /// What rendering some segments of `prepared` on their own needs: its
    /// plan, its sources resolved as a render's (tried once each, in a
    /// directory that goes with the returned resolver) and its cut.
    async fn sources_of(
        &self,
        prepared: Prepared,
    ) -> Result<
        (
            clipstream_actors::engine::plan::Plan,
            ProjectSources,
            clipstream_actors::engine::timeline::Sources,
            clipstream_actors::segments::Segmenting,
        ),
        RenderError,
    > {
        let downloads = tempfile::Builder::new()
            .prefix("fetch-")
            .tempdir_in(self.store.render_spool_dir())
            .map_err(|e| RenderError::Internal(format!("no directory for downloads: {e}")))?;
        let scope = match self.store.project_any(&prepared.output.project) {
            Ok(project) => format!("account {}", project.account),
            Err(_) => format!("project {}", prepared.output.project),
        };
        let resolver = ProjectSources {
            store: self.store.clone(),
            project: prepared.output.project.clone(),
            assets: prepared.assets,
            urls: self.urls.clone(),
            downloads,
        };
        let mut sources = clipstream_actors::engine::timeline::Sources::new();
        for src in clipstream_actors::sources_of(&prepared.plan) {
            match resolver.resolve(&src).await {
                Ok(path) => {
                    sources.insert(src, path);
                }
                Err(e) => return Err(RenderError::Fetch(e.to_string())),
            }
        }
        let Some(segmenting) = self.config.segmenting(&scope, 1) else {
            return Err(RenderError::Internal(
                "MP4s are not cut into segments".into(),
            ));
        };
        Ok((prepared.plan, resolver, sources, segmenting))
    }

    /// The other nodes' part in a render asking for `parallel` segments at
    /// once: `parallel − 1` remote claimers, in a cluster whose nodes share
    /// the segment store (S3 blobs, a segment cache). `None` otherwise.
    fn remote_runs(&self, live: &LiveRender, parallel: u32) -> Option<Remote> {
        use crate::config::BlobsKind;
        let claimers = (parallel as usize).saturating_sub(1).min(MOST_CLAIMERS);
        if claimers == 0
            || !self.cluster.shared()
            || self.config.storage.blobs != BlobsKind::S3
            || self.config.segments.cache_bytes == 0
        {
            return None;
        }
        let job = live.job();
        // Only the nodes that may render the token render its runs.
        let routing_key = match self.store.render_request(&job.token) {
            Ok(request) => request.routingkey,
            Err(_) => return None,
        };
        let runs = ClusterRuns::new(
            self.cluster.clone(),
            tokio::runtime::Handle::current(),
            self.metrics.clone(),
            RunOf {
                token: job.token,
                output: job.output,
                output_key: live.output.key.clone(),
                routing_key,
            },
        );
        Some(Remote {
            runs: Arc::new(runs),
            claimers,
        })
    }

    fn prepare(&self, token: &str, what: Deliverable) -> Result<Prepared, DeliveryError> {
        let request: RenderRequest = self.store.render_request(token)?;
        content_key::prepare(&self.store, &self.config, &request, what)
    }

    /// Renders `what` of `token` without a viewer (a prerender or an
    /// upload): nothing to do when it is cached, a render in progress is
    /// kept running to its end, else a background job is queued.
    pub async fn prerender(
        self: &Arc<Self>,
        token: &str,
        what: Deliverable,
    ) -> Result<(), DeliveryError> {
        let (output, _) = self.resolve(token, what)?;
        if self.cached(&output.key)?.is_some() {
            return Ok(());
        }
        if let Some(live) = lock(&self.live).get(&output.key).cloned() {
            live.keep_in_background();
            return Ok(());
        }
        let prepared = self.prepare(token, what)?;
        if self.cluster.shared() {
            return self.queue_in_cluster(token, what, &prepared).await;
        }
        self.start(token, what, prepared, Reason::Prerender, None)
            .await
            .map(|_| ())
    }

    /// Queues a background render for whichever node of the cluster has
    /// a worker free (and serves the token's routing key), its job
    /// recorded as queued first so that `/status` answers at once.
    async fn queue_in_cluster(
        &self,
        token: &str,
        what: Deliverable,
        prepared: &Prepared,
    ) -> Result<(), DeliveryError> {
        let key = &prepared.output.key;
        let routing_key = self.store.render_request(token)?.routingkey;
        if self.store.job(key)?.is_none_or(|j| j.state.is_final()) {
            let job = Job::new(
                key,
                &prepared.output.project,
                token,
                output_name(what),
                true,
            );
            self.store.put_job(&job, true).await?;
        }
        self.cluster
            .enqueue(NewWork {
                kind: RENDER_WORK,
                key,
                payload: &work_payload(token, what),
                routing_key: routing_key.as_deref(),
                priority: 0,
                others_only: false,
            })
            .await?;
        Ok(())
    }

    /// Starts renders the cluster queued, as many as this node has
    /// workers free, whenever work is announced (and every few seconds,
    /// in case an announcement was missed or a node died).
    pub async fn take_queued(self: Arc<Self>) {
        let queued = self.cluster.work_queued();
        loop {
            let free = self.queue.free();
            if free > 0 {
                // Runs of other nodes' renders first (their priority):
                // a render waits for them.
                match self
                    .cluster
                    .take(&[SEGMENT_RUN_WORK, RENDER_WORK], free)
                    .await
                {
                    Ok(works) => {
                        for work in works {
                            if work.kind == SEGMENT_RUN_WORK {
                                self.start_run(work);
                            } else {
                                self.start_taken(work).await;
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "queued renders could not be taken"),
                }
            }
            let _ = tokio::time::timeout(TAKE_EVERY, queued.notified()).await;
        }
    }

    /// Renders a run of another node's render (see `remote_runs`) on a
    /// worker of this node, in the background: its segments go to the
    /// shared segment store, then the row goes, which tells the asking
    /// node (which renders the run itself if they are not there).
    fn start_run(self: &Arc<Self>, work: Work) {
        self.metrics
            .segment_runs
            .get_or_create(&vec![("side", "taken")])
            .inc();
        // Forced: taken only with a worker free, it never waits in line.
        let ticket = self.queue.enter(&work.key, false, true);
        let this = self.clone();
        tokio::spawn(async move {
            let served = match ticket {
                Ok(ticket) => match ticket.wait().await {
                    Some(slot) => {
                        // A panic here must still let the row go (below):
                        // else this node would renew it for good, and every
                        // later ask would wait out its whole patience.
                        let served = std::panic::AssertUnwindSafe(this.serve_run(&work))
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|_| {
                                Err(RenderError::Internal("a served run panicked".into()))
                            });
                        drop(slot);
                        this.cluster.work_queued().notify_one();
                        served
                    }
                    None => Err(RenderError::Internal("the render queue went away".into())),
                },
                Err(_) => Err(RenderError::Internal("the render queue is full".into())),
            };
            match served {
                Ok(rendered) => {
                    tracing::info!(key = %work.key, rendered, "a run of segments was rendered for another node");
                    this.metrics
                        .segment_runs
                        .get_or_create(&vec![("side", "served")])
                        .inc();
                }
                Err(e) => {
                    tracing::warn!(key = %work.key, error = %e, "a run of segments could not be rendered for another node");
                }
            }
            if let Err(e) = this
                .cluster
                .finish(SEGMENT_RUN_WORK, &work.key, work.epoch)
                .await
            {
                tracing::warn!(key = %work.key, error = %e, "a run of segments could not be let go");
            }
        });
    }

    /// [`Renders::start_run`]'s render: the token planned again, its
    /// sources resolved, and the run's segments rendered as the asking
    /// render's workers would and kept in the store; how many were
    /// rendered (the others were cached).
    async fn serve_run(&self, work: &Work) -> Result<usize, RenderError> {
        let run: RunPayload = serde_json::from_slice(&work.payload)
            .map_err(|e| RenderError::Internal(format!("an unreadable run of segments: {e}")))?;
        let what = parse_output(&run.output).ok_or_else(|| {
            RenderError::Internal(format!("a run of segments of output {:?}", run.output))
        })?;
        let prepared = self
            .prepare(&run.token, what)
            .map_err(|e| RenderError::Internal(e.to_string()))?;
        // The movie or an asset changed since it was asked: other
        // segments now, which the asking render does not want.
        if RunPayload::key(&prepared.output.key, run.first) != work.key {
            return Err(RenderError::Internal(
                "the render changed since the run was asked".into(),
            ));
        }
        let _busy = self.idle.busy();
        let (plan, resolver, sources, segmenting) = self.sources_of(prepared).await?;
        let (limits, fragments) = (self.config.source_limits(), self.config.fragments());
        let rendered = tokio::task::spawn_blocking(move || {
            let _held = resolver;
            clipstream_actors::render_segments(
                &plan,
                &sources,
                limits,
                fragments,
                &segmenting,
                run.first,
                run.count,
            )
        })
        .await;
        rendered.unwrap_or_else(|e| {
            Err(RenderError::Internal(format!(
                "the run's render panicked: {e}"
            )))
        })
    }

    /// Starts a render this node took from the cluster's queue.
    async fn start_taken(self: &Arc<Self>, work: Work) {
        let Some((token, what)) = parse_work_payload(&work.payload) else {
            tracing::warn!(key = %work.key, "a queued render is unreadable; dropped");
            self.let_go(&work.key, work.epoch).await;
            return;
        };
        let started = match self.prepare(&token, what) {
            // The movie or an asset changed since it was queued: the
            // render is now of another output, queued in its turn.
            Ok(prepared) if prepared.output.key != work.key => {
                self.let_go(&work.key, work.epoch).await;
                self.queue_in_cluster(&token, what, &prepared).await
            }
            Ok(prepared) => self
                .start(&token, what, prepared, Reason::Prerender, Some(work.epoch))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        match started {
            Ok(()) => {}
            // Room ran out here meanwhile, or the repository failed for a
            // moment: back to the queue, for this node or another.
            Err(
                e @ (DeliveryError::Busy { .. }
                | DeliveryError::Store(StoreError::Db(_) | StoreError::Io(_))),
            ) => {
                tracing::info!(key = %work.key, error = %e, "a queued render goes back to the queue");
                if let Err(e) = self
                    .cluster
                    .requeue(RENDER_WORK, &work.key, work.epoch)
                    .await
                {
                    tracing::warn!(key = %work.key, error = %e, "a render could not go back to the queue");
                }
            }
            // Its token, movie or project is gone, or the movie cannot
            // render: a GET of the token says why.
            Err(e) => {
                tracing::warn!(key = %work.key, error = %e, "a queued render cannot run");
                self.let_go(&work.key, work.epoch).await;
            }
        }
    }

    /// Renews this node's leases every `cluster.heartbeat_secs`, and stops
    /// the renders whose lease another node took over (it renders them
    /// now), that were cancelled, or whose lease could not be renewed in
    /// time (another node may have taken them over by then). A render
    /// someone queued as a job meanwhile is kept to its end.
    pub async fn keep_leases(self: Arc<Self>) {
        let every = Duration::from_secs(self.config.cluster.heartbeat_secs.max(1));
        let lease = self.lease();
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(every).await;
            // Taken before the heartbeat: every render in it was claimed
            // before the heartbeat's query ran, so a render missing from
            // its answer was lost, not claimed too late to be seen.
            let running: Vec<(String, Arc<LiveRender>)> = lock(&self.live)
                .iter()
                .map(|(k, l)| (k.clone(), l.clone()))
                .collect();
            // Past the lease, the claims may be another node's already.
            let left = lease.saturating_sub(renewed.elapsed()).max(every);
            let beat = tokio::time::timeout(left, self.cluster.heartbeat()).await;
            let lost: Vec<_> = match beat {
                Ok(Ok(held)) => {
                    renewed = Instant::now();
                    let held_render = |key: &str| -> Option<&Held> {
                        held.iter().find(|h| h.kind == RENDER_WORK && h.key == key)
                    };
                    let mut lost = Vec::new();
                    for (key, live) in running {
                        match held_render(&key) {
                            Some(h) => {
                                if h.background {
                                    live.keep_in_background();
                                }
                                // Every node answers its status.
                                if let Err(e) = self.store.note_job_progress(&live.job()) {
                                    tracing::debug!(key = %key, error = %e, "a render's progress was not recorded");
                                }
                            }
                            None => lost.push((key, live)),
                        }
                    }
                    lost
                }
                Ok(Err(e)) if renewed.elapsed() < lease => {
                    tracing::warn!(error = %e, "the cluster's leases could not be renewed");
                    Vec::new()
                }
                Err(_) if renewed.elapsed() < lease => Vec::new(),
                _ => {
                    tracing::error!("the cluster's leases ran out: this node's renders stop");
                    running
                }
            };
            for (key, live) in lost {
                tracing::warn!(key = %key, "this render is no longer this node's (taken over or deleted)");
                live.fail(RenderError::Internal(
                    "the render's lease was lost to another node".into(),
                ));
            }
        }
    }

    /// The content digest `what` of `token` has as the project stands now.
    pub fn output_digest(&self, token: &str, what: Deliverable) -> Result<String, DeliveryError> {
        Ok(self.resolve(token, what)?.0.digest.clone())
    }

    /// `what` of `token` once it is in the cache, with its content digest:
    /// rendered in the background if it is not (a render in progress, a
    /// viewer's included, is joined and kept to its end), then waited for.
    /// The inner error is the render's failure.
    pub async fn finished(
        self: &Arc<Self>,
        token: &str,
        what: Deliverable,
    ) -> Result<(String, Result<Arc<OpenRender>, JobError>), DeliveryError> {
        let (output, _) = self.resolve(token, what)?;
        let digest = output.digest.clone();
        if self.cluster.shared() {
            self.store.fetch_cached_render(&output.key).await?;
        }
        if let Some(open) = self.store.open_cached_render(&output.key)? {
            return Ok((digest, Ok(open)));
        }
        self.prerender(token, what).await?;
        // The render ends within render.max_render_secs of its start (the
        // registry stops it there); its last byte is out a moment before
        // it is committed (hashed, fsynced, renamed, recorded), and only
        // then does it leave the registry.
        loop {
            let running = lock(&self.live).get(&output.key).cloned();
            let Some(live) = running else { break };
            if live.settled().await.error.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.cluster.shared() {
            self.finished_elsewhere(token, what, &output.key).await?;
            self.store.fetch_cached_render(&output.key).await?;
        }
        if let Some(open) = self.store.open_cached_render(&output.key)? {
            return Ok((digest, Ok(open)));
        }
        let failure = self.store.job(&output.key)?.and_then(|job| job.error);
        Ok((
            digest,
            Err(failure.unwrap_or_else(|| JobError {
                code: "render_failed".to_owned(),
                message: "the render ended without an output".to_owned(),
            })),
        ))
    }

    /// Waits for render `key`, queued in the cluster or rendered by
    /// another node, to be in the cache or to fail (its job says so);
    /// queued again if it vanished without either (its node stopped it).
    async fn finished_elsewhere(
        self: &Arc<Self>,
        token: &str,
        what: Deliverable,
        key: &str,
    ) -> Result<(), DeliveryError> {
        let limit = Duration::from_secs(
            self.config.render.max_render_secs + 4 * self.config.cluster.lease_secs,
        );
        let deadline = Instant::now() + limit;
        let mut asked = Instant::now();
        while Instant::now() < deadline {
            if self.cached(key)?.is_some() {
                return Ok(());
            }
            let running = lock(&self.live).get(key).cloned();
            if let Some(live) = running {
                live.settled().await;
                // Settled, then committed (into the shared store) a
                // moment later.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            if self
                .store
                .job(key)?
                .is_some_and(|j| j.state == JobState::Failed)
            {
                return Ok(());
            }
            if asked.elapsed() >= FINISHED_REASK {
                self.prerender(token, what).await?;
                asked = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// Queues a job for `prepared` (or joins one that another caller
    /// started meanwhile) and returns its render.
    async fn start(
        self: &Arc<Self>,
        token: &str,
        what: Deliverable,
        prepared: Prepared,
        reason: Reason,
        claim: Option<i64>,
    ) -> Result<Arc<LiveRender>, DeliveryError> {
        let key = prepared.output.key.clone();
        let background = reason != Reason::Viewer;
        let job = Job::new(
            &key,
            &prepared.output.project,
            token,
            output_name(what),
            background,
        );
        let (live, ticket) = {
            let mut map = lock(&self.live);
            if let Some(live) = map.get(&key) {
                if background {
                    live.keep_in_background();
                }
                if let Some(epoch) = claim {
                    let mut claims = lock(&self.claims);
                    let newest = claims.entry(key.clone()).or_insert(epoch);
                    *newest = (*newest).max(epoch);
                }
                return Ok(live.clone());
            }
            let ticket = self
                .queue
                .enter(&key, !background, reason == Reason::Resumed)
                .map_err(|_| DeliveryError::Busy {
                    retry_after_secs: self.config.render.busy_retry_secs,
                })?;
            let live = LiveRender::new(prepared.output.clone(), job.clone(), self.store.clone())
                .map_err(StoreError::from)?;
            map.insert(key.clone(), live.clone());
            if let Some(epoch) = claim {
                lock(&self.claims).insert(key.clone(), epoch);
            }
            (live, ticket)
        };
        // A background job is promised to run: its record is durable
        // before the caller hears so.
        if let Err(e) = self.store.put_job(&job, background).await {
            live.fail(RenderError::Internal(format!(
                "the job could not be recorded: {e}"
            )));
            {
                let mut map = lock(&self.live);
                map.remove(&key);
                lock(&self.claims).remove(&key);
            }
            if let Some(epoch) = claim {
                self.let_go(&key, epoch).await;
            }
            return Err(e.into());
        }
        if reason == Reason::Viewer {
            self.metrics.cache_misses.inc();
        }
        self.metrics
            .renders_started
            .get_or_create(&vec![("reason", reason.label())])
            .inc();
        tokio::spawn(self.clone().run(live.clone(), prepared, ticket));
        Ok(live)
    }

    async fn run(self: Arc<Self>, live: Arc<LiveRender>, prepared: Prepared, ticket: Ticket) {
        let key = live.output.key.clone();
        let span = tracing::info_span!("render", key = %key);
        let abandoned = live.abandoned(Duration::from_secs(self.config.render.abandon_grace_secs));
        tokio::pin!(abandoned);
        let outcome = tokio::select! {
            slot = ticket.wait() => match slot {
                Some(slot) => {
                    let _slot = slot;
                    self.render(&live, prepared, abandoned.as_mut(), &span).await
                }
                None => Outcome::Failed,
            },
            () = abandoned.as_mut() => {
                live.fail(RenderError::Internal("no viewer was left".into()));
                Outcome::Cancelled
            }
        };
        self.metrics
            .renders_finished
            .get_or_create(&vec![("outcome", outcome.label())])
            .inc();
        if outcome == Outcome::Cancelled {
            // Nobody asked for it after all: as if never asked.
            if let Err(e) = self.store.remove_job(&key).await {
                tracing::warn!(key = %key, error = %e, "a cancelled job's record could not be removed");
            }
        }
        // Only now, with the output in the cache or the failure recorded,
        // may a GET start the render again.
        let claim = {
            let mut map = lock(&self.live);
            map.remove(&key);
            lock(&self.claims).remove(&key)
        };
        // A worker is free: queued work need not wait for the next look.
        self.cluster.work_queued().notify_one();
        if let Some(epoch) = claim {
            self.let_go(&key, epoch).await;
        }
    }

    /// Runs one job's actor tree on a worker, to its end.
    async fn render(
        &self,
        live: &Arc<LiveRender>,
        prepared: Prepared,
        mut abandoned: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
        span: &tracing::Span,
    ) -> Outcome {
        let _busy = self.idle.busy();
        let started = Instant::now();
        let key = live.output.key.clone();
        let downloads = match tempfile::Builder::new()
            .prefix("fetch-")
            .tempdir_in(self.store.render_spool_dir())
        {
            Ok(dir) => dir,
            Err(e) => {
                live.fail(RenderError::Internal(format!(
                    "no directory for downloads: {e}"
                )));
                return Outcome::Failed;
            }
        };
        // Segments are shared within the project's account; a project that
        // cannot be read (deleted meanwhile) shares with nobody.
        let scope = match self.store.project_any(&live.output.project) {
            Ok(project) => format!("account {}", project.account),
            Err(_) => format!("project {}", live.output.project),
        };
        let job = clipstream_actors::Job {
            name: key.clone(),
            plan: prepared.plan,
            resolver: Arc::new(ProjectSources {
                store: self.store.clone(),
                project: live.output.project.clone(),
                assets: prepared.assets,
                urls: self.urls.clone(),
                downloads,
            }),
            publish: live.clone(),
            limits: self.config.source_limits(),
            fragments: self.config.fragments(),
            fetch_concurrency: self.config.fetch_concurrency(),
            fetch_retry: self.config.fetch_retry(),
            // A render that shares the machine with others (this one
            // holds a slot too) gets its share of the cores when the
            // request did not ask: each worker holds a compositor and an
            // encoder, so several renders with a worker per core each
            // would hold that memory many times over for no more speed.
            segments: self
                .config
                .segmenting_among(&scope, prepared.parallel, self.queue.running().max(1))
                .map(|mut s| {
                    s.remote = self.remote_runs(live, prepared.parallel);
                    s
                }),
        };
        let limit = Duration::from_secs(self.config.render.max_render_secs);
        let _enter = span.enter();
        tracing::info!("render started");
        drop(_enter);
        // Returns at once: the limit covers fetching too.
        let render = clipstream_actors::start(job).await;
        let mut cancelled = false;
        tokio::select! {
            _ = live.settled() => {}
            () = tokio::time::sleep(limit) => render.cancel(over_limit(limit)),
            () = abandoned.as_mut() => {
                render.cancel(RenderError::Internal("no viewer was left".into()));
                cancelled = true;
            }
        }
        let snap = live.settled().await;
        if snap.error.is_some() {
            // Failed from outside (its owner deleted it) or inside: make
            // sure nothing of the tree runs on.
            render.cancel(RenderError::Internal("the render failed".into()));
        }
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.render_seconds.observe(seconds);
        if snap.published && snap.error.is_none() {
            live.commit(self.config.render.cache_capacity_bytes, seconds)
                .await;
        }
        let snap = live.snapshot();
        if let Some(RenderError::Fetch(_)) = &snap.error {
            self.metrics.fetch_errors.inc();
        }
        let _enter = span.enter();
        tracing::info!(state = ?snap.state, bytes = snap.len, "render settled");
        match (cancelled, snap.complete) {
            (true, _) => Outcome::Cancelled,
            (false, true) => Outcome::Done,
            (false, false) => Outcome::Failed,
        }
    }

    /// Where `what` of `token` stands.
    pub fn status(&self, token: &str, what: Deliverable) -> Result<Status, DeliveryError> {
        let (output, _) = self.resolve(token, what)?;
        // The cache first: it answers as soon as the output is recorded,
        // a moment before its render lets go.
        if let Some(cached) = self.cached(&output.key)? {
            let job = self.store.job(&output.key)?;
            return Ok(Status {
                state: JobState::Done,
                progress: 1.0,
                error: None,
                seconds: job
                    .as_ref()
                    .map_or((0.0, 0.0), |j| (j.seconds_rendered, j.seconds_reused)),
                size: Some(cached.size),
                timings: job.as_ref().map(Timings::of),
            });
        }
        if let Some(live) = lock(&self.live).get(&output.key).cloned() {
            let job = live.job();
            return Ok(Status {
                state: job.state,
                progress: live.snapshot().progress,
                timings: Some(Timings::of(&job)),
                error: job.error,
                seconds: (job.seconds_rendered, job.seconds_reused),
                size: None,
            });
        }
        Ok(match self.store.job(&output.key)? {
            Some(job) => Status {
                state: job.state,
                progress: job.progress,
                timings: Some(Timings::of(&job)),
                error: job.error,
                seconds: (job.seconds_rendered, job.seconds_reused),
                size: None,
            },
            // Never asked for: it renders on the first GET.
            None => Status {
                state: JobState::Queued,
                progress: 0.0,
                error: None,
                seconds: (0.0, 0.0),
                size: None,
                timings: None,
            },
        })
    }

    /// Drops every cached output of `token` (the next GET renders it
    /// again) and stops its renders in progress; returns how many were
    /// cached or running.
    pub async fn forget(&self, token: &str) -> Result<usize, DeliveryError> {
        let mut dropped = 0;
        for what in content_key::every_output() {
            let output = match self.resolve(token, what) {
                Ok((output, _)) => output,
                // The token has no such output (no movie for it, no
                // poster, …): nothing to drop.
                Err(DeliveryError::Store(StoreError::TokenNotFound)) => {
                    return Err(StoreError::TokenNotFound.into())
                }
                Err(_) => continue,
            };
            if let Some(live) = lock(&self.live).get(&output.key).cloned() {
                live.fail(RenderError::Internal(
                    "the render was deleted by its owner".into(),
                ));
                dropped += 1;
            }
            // Rendered by another node: it stops at its next heartbeat.
            if self.cluster.shared() {
                self.cluster.cancel(RENDER_WORK, &output.key).await?;
            }
            if self.store.forget_render(&output.key).await? {
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// At start: runs again the background jobs the last process left
    /// unfinished, and forgets the others (their viewers are gone).
    pub async fn resume(self: &Arc<Self>) -> Result<usize, StoreError> {
        if self.cluster.shared() {
            return self.resume_in_cluster().await;
        }
        let mut resumed = 0;
        for job in self.store.unfinished_jobs()? {
            let what = match (job.background, parse_output(&job.output)) {
                (true, Some(what)) => what,
                _ => {
                    self.store.remove_job(&job.key).await?;
                    continue;
                }
            };
            let started = match self.prepare(&job.token, what) {
                Ok(prepared) => {
                    if prepared.output.key != job.key {
                        // The movie or an asset changed since: the job is
                        // now of another output.
                        self.store.remove_job(&job.key).await?;
                    }
                    self.start(&job.token, what, prepared, Reason::Resumed, None)
                        .await
                }
                Err(e) => Err(e),
            };
            match started {
                Ok(_) => resumed += 1,
                // Its token, movie or project is gone, or the queue is
                // full: the job goes; a GET of the token answers why.
                Err(e) => {
                    tracing::warn!(key = %job.key, error = %e, "an interrupted job cannot run again");
                    self.store.remove_job(&job.key).await?;
                }
            }
        }
        Ok(resumed)
    }
}

impl Renders {
    /// In a cluster, the unfinished jobs of every node are in the shared
    /// repository, most of them running elsewhere: background ones are
    /// queued (a no-op for those queued or running, so only those whose
    /// node died run again, on whichever node takes them); viewers' are
    /// left to their nodes.
    async fn resume_in_cluster(self: &Arc<Self>) -> Result<usize, StoreError> {
        let mut queued = 0;
        for job in self.store.unfinished_jobs()? {
            if !job.background {
                continue;
            }
            let Some(what) = parse_output(&job.output) else {
                continue;
            };
            let routing_key = match self.store.render_request(&job.token) {
                Ok(request) => request.routingkey,
                // Its token is gone: nothing to render.
                Err(_) => continue,
            };
            let fresh = self
                .cluster
                .enqueue(NewWork {
                    kind: RENDER_WORK,
                    key: &job.key,
                    payload: &work_payload(&job.token, what),
                    routing_key: routing_key.as_deref(),
                    priority: 0,
                    others_only: false,
                })
                .await?;
            queued += usize::from(fresh);
        }
        Ok(queued)
    }
}

/// How often queued renders are looked for when none is announced.
const TAKE_EVERY: Duration = Duration::from_secs(2);

/// How often a caller waiting for a render elsewhere makes sure it is
/// still queued or running.
const FINISHED_REASK: Duration = Duration::from_secs(5);

/// What a node taking a queued render needs: the token and the output.
fn work_payload(token: &str, what: Deliverable) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "token": token, "output": output_name(what) }))
        .unwrap_or_default()
}

fn parse_work_payload(payload: &[u8]) -> Option<(String, Deliverable)> {
    #[derive(serde::Deserialize)]
    struct Payload {
        token: String,
        output: String,
    }
    let p: Payload = serde_json::from_slice(payload).ok()?;
    let what = parse_output(&p.output)?;
    Some((p.token, what))
}

fn over_limit(limit: Duration) -> RenderError {
    RenderError::Media(format!(
        "the render took longer than the limit of {} s (render.max_render_secs)",
        limit.as_secs()
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Failed,
    Cancelled,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }
}
