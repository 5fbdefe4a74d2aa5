//! Every render in progress, by token and extension: the first GET starts
//! one, later GETs join it. A bounded number run at once (`render.workers`);
//! a bounded number wait for a worker (`render.max_queued`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clipstream_actors::edit::{self, Format};
use clipstream_actors::output::Deliverable;
use clipstream_actors::pipeline::{self, Job, Publish, RenderError, State};
use clipstream_actors::plan;
use clipstream_storage::{Error as StoreError, OpenRender, Store};
use tokio::sync::Semaphore;

use super::fetch::UrlFetcher;
use super::live::LiveRender;
use super::resolver::ProjectSources;
use crate::config::Config;
use crate::http::error::ApiError;
use crate::memory::IdleTrim;
use crate::metrics::Metrics;

/// Remembered failures, for `/status` after the live render is gone.
const FAILURES_KEPT: usize = 1024;

pub struct Renders {
    store: Store,
    pub metrics: Arc<Metrics>,
    urls: Arc<UrlFetcher>,
    config: Arc<Config>,
    live: Mutex<HashMap<String, Arc<LiveRender>>>,
    failures: Mutex<HashMap<String, RenderError>>,
    workers: Arc<Semaphore>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
    idle: Arc<IdleTrim>,
}

/// The cache key of `what` of `token`: its file name under `/render/`.
pub fn key(token: &str, what: Deliverable) -> String {
    match what {
        Deliverable::Movie(format) => format!("{token}.{}", format.extension()),
        Deliverable::Poster => format!("{token}-poster.jpg"),
        Deliverable::Thumbnail => format!("{token}-thumb.jpg"),
    }
}

/// The extension whose movie a deliverable is made of: a poster or a
/// thumbnail belongs to the video, the movie chosen for `.mp4`.
fn movie_extension(what: Deliverable) -> &'static str {
    match what {
        Deliverable::Movie(format) => format.extension(),
        Deliverable::Poster | Deliverable::Thumbnail => Format::Mp4.extension(),
    }
}

/// A GET's answer: bytes in the cache, or a render to follow.
pub enum Lookup {
    Cached(Arc<OpenRender>),
    Live(Arc<LiveRender>),
}

impl Renders {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
    ) -> Result<Renders, reqwest::Error> {
        let urls = Arc::new(UrlFetcher::new(&config.fetch)?);
        let idle = IdleTrim::new(Duration::from_secs(config.render.memory_idle_secs));
        Ok(Renders {
            metrics,
            urls,
            workers: Arc::new(Semaphore::new(config.render_workers())),
            store,
            config,
            live: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            queued: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            idle,
        })
    }

    fn live_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveRender>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn failure(&self, key: &str) -> Option<RenderError> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Sets the gauges of renders in progress by state.
    pub fn count_states(&self) {
        let mut counts = [0i64; 3];
        for live in self.live_map().values() {
            match live.snapshot().state {
                State::Queued => counts[0] += 1,
                State::Fetching => counts[1] += 1,
                State::Rendering => counts[2] += 1,
                State::Done | State::Failed => {}
            }
        }
        for (state, n) in ["queued", "fetching", "rendering"].into_iter().zip(counts) {
            self.metrics
                .renders_active
                .get_or_create(&vec![("state", state)])
                .set(n);
        }
    }

    pub fn live(&self, key: &str) -> Option<Arc<LiveRender>> {
        self.live_map().get(key).cloned()
    }

    /// The cached render of `what` of `token`, the live one, or a new one.
    pub fn lookup(self: &Arc<Self>, token: &str, what: Deliverable) -> Result<Lookup, ApiError> {
        let key = key(token, what);
        if let Some(open) = self.store.open_cached_render(&key)? {
            self.metrics.cache_hits.inc();
            return Ok(Lookup::Cached(open));
        }
        let mut map = self.live_map();
        if let Some(live) = map.get(&key) {
            return Ok(Lookup::Live(live.clone()));
        }
        let (plan, project) = self.plan_for(token, what)?;
        if self.queued.load(std::sync::atomic::Ordering::Relaxed) >= self.config.render.max_queued {
            return Err(ApiError::Busy);
        }
        let live = LiveRender::new(
            key.clone(),
            self.store.clone(),
            self.config.render.cache_capacity_bytes,
        )
        .map_err(StoreError::from)?;
        map.insert(key.clone(), live.clone());
        drop(map);
        self.metrics.cache_misses.inc();
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        tokio::spawn(self.clone().run(key, plan, project, live.clone()));
        Ok(Lookup::Live(live))
    }

    /// The plan of `what` of the movie that `token` names for it, and its
    /// project. The extension picks the movie and decides the format,
    /// whatever the movie's `output.format` says.
    fn plan_for(&self, token: &str, what: Deliverable) -> Result<(plan::Plan, String), ApiError> {
        let request = self.store.render_request(token)?;
        let ext = movie_extension(what);
        let name = request
            .movie
            .for_extension(ext)
            .ok_or_else(|| ApiError::NoMovieFor(ext.to_owned()))?;
        let movie = self.store.movie(&request.project, name)?;
        let limits = self.config.edit_limits();
        let edit = edit::fill(&movie.body, &request.params, &limits)?;
        let plan = plan::plan_as(&edit, what, &limits).map_err(ApiError::Plan)?;
        Ok((plan, request.project))
    }

    async fn run(
        self: Arc<Self>,
        key: String,
        plan: plan::Plan,
        project: String,
        live: Arc<LiveRender>,
    ) {
        use std::sync::atomic::Ordering;
        self.queued.fetch_add(1, Ordering::Relaxed);
        let permit = self.workers.clone().acquire_owned().await;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        let Ok(_permit) = permit else { return };
        let _busy = self.idle.busy();
        let started = std::time::Instant::now();
        let downloads = match tempfile::Builder::new()
            .prefix("fetch-")
            .tempdir_in(self.store.render_spool_dir())
        {
            Ok(dir) => dir,
            Err(e) => {
                live.fail(RenderError::Internal(format!(
                    "no directory for downloads: {e}"
                )));
                return;
            }
        };
        let job = Job {
            name: key.clone(),
            plan,
            resolver: Arc::new(ProjectSources {
                store: self.store.clone(),
                project,
                urls: self.urls.clone(),
                downloads,
            }),
            publish: live.clone(),
            limits: self.config.source_limits(),
            fragments: self.config.fragments(),
            fetch_concurrency: self.config.fetch_concurrency(),
            fetch_retry: self.config.fetch_retry(),
        };
        let span = tracing::info_span!("render", key = %key);
        let _enter = span.enter();
        tracing::info!("render started");
        let render = pipeline::start(job).await;
        drop(_enter);
        // The worker is held until the render settles, or until the render
        // has had its time: a source that decodes slowly on purpose must
        // not hold a worker for ever.
        let limit = Duration::from_secs(self.config.render.max_render_secs);
        let snap = match tokio::time::timeout(limit, live.wait_for(|_| false)).await {
            Ok(snap) => snap,
            Err(_) => {
                render.cancel(RenderError::Media(format!(
                    "the render took longer than the limit of {} s (render.max_render_secs)",
                    limit.as_secs()
                )));
                live.wait_for(|_| false).await
            }
        };
        self.metrics
            .render_seconds
            .observe(started.elapsed().as_secs_f64());
        let outcome = if snap.error.is_some() {
            "failed"
        } else {
            "done"
        };
        self.metrics
            .renders_finished
            .get_or_create(&vec![("outcome", outcome)])
            .inc();
        if let Some(RenderError::Fetch(_)) = &snap.error {
            self.metrics.fetch_errors.inc();
        }
        if let Some(error) = &snap.error {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if failures.len() >= FAILURES_KEPT {
                failures.clear();
            }
            failures.insert(key.clone(), error.clone());
        } else {
            // Leave the map only once the cache answers for the key, so
            // that no GET in between starts the render again.
            for _ in 0..100 {
                if matches!(self.store.cached_render(&key), Ok(Some(_))) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.live_map().remove(&key);
        tracing::info!(state = ?snap.state, bytes = snap.len, "render settled");
    }
}
