//! The tree's promises: [`start`] returns before anything is fetched; a
//! transient fetch failure is retried for that source alone, a permanent
//! one fails the render at once; sources are fetched concurrently within
//! the bound; a cancelled render stops between two frames; a failure or a
//! panic anywhere fails only its render; and every render publishes
//! exactly one of `finish` and `fail`, checked once nothing holds the
//! publisher any more (so that nothing can publish later).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Map};

use crate::engine::edit::{fill, Limits};
use crate::engine::output::Fragments;
use crate::engine::plan::plan;
use crate::faults::Fault;
use crate::render::{FetchError, Job, Publish, RenderError, Resolve, Resolved, Retry, State};
use crate::supervisor::{start, Render};

#[derive(Default)]
struct Recorder {
    bytes: AtomicUsize,
    finishes: AtomicUsize,
    fails: AtomicUsize,
    /// The first outcome published.
    outcome: Mutex<Option<Result<(), RenderError>>>,
    panic_on_init: bool,
}

impl Publish for Recorder {
    fn state(&self, _: State) {}
    fn progress(&self, _: f64) {}
    fn init(&self, bytes: Bytes) {
        assert!(!self.panic_on_init, "a bug in the publisher");
        self.bytes.fetch_add(bytes.len(), Ordering::SeqCst);
    }
    fn fragment(&self, bytes: Bytes, _: f64) {
        self.bytes.fetch_add(bytes.len(), Ordering::SeqCst);
    }
    fn patch(&self, _: u64, _: Bytes) {}
    fn finish(&self) {
        self.finishes.fetch_add(1, Ordering::SeqCst);
        self.outcome.lock().unwrap().get_or_insert(Ok(()));
    }
    fn fail(&self, error: RenderError) {
        self.fails.fetch_add(1, Ordering::SeqCst);
        self.outcome.lock().unwrap().get_or_insert(Err(error));
    }
}

/// Polls `done` every 20 ms until it holds, for at most `limit`.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

impl Recorder {
    async fn outcome(&self) -> Result<(), RenderError> {
        let mut outcome = None;
        let settled = eventually(Duration::from_secs(60), || {
            outcome = self.outcome.lock().unwrap().clone();
            outcome.is_some()
        })
        .await;
        assert!(settled, "the render never settled");
        outcome.unwrap_or(Ok(()))
    }
}

/// Drops the handle, waits (bounded) until nothing of the render holds the
/// publisher any more, threads included, and then checks that exactly
/// one of `finish` and `fail` was published.
async fn settled_once(render: Render, recorder: Arc<Recorder>) {
    drop(render);
    let released = eventually(Duration::from_secs(10), || {
        Arc::strong_count(&recorder) == 1
    })
    .await;
    assert!(released, "the render's actors or threads are still running");
    let (finishes, fails) = (
        recorder.finishes.load(Ordering::SeqCst),
        recorder.fails.load(Ordering::SeqCst),
    );
    assert_eq!(
        finishes + fails,
        1,
        "finish {finishes} times, fail {fails} times"
    );
}

/// Resolves every source to one picture made on the spot. Sources named
/// in `transient` or `permanent` fail that many times first (`usize::MAX`:
/// always); every call waits `delay`, and waits for a permit of `gate`
/// when there is one. Counts calls per source and the most calls in flight.
#[derive(Default)]
struct Scripted {
    picture: std::path::PathBuf,
    transient: HashMap<String, usize>,
    permanent: HashMap<String, usize>,
    delay: Duration,
    gate: Option<tokio::sync::Semaphore>,
    calls: Mutex<HashMap<String, usize>>,
    resolved: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

impl Scripted {
    fn new(picture: std::path::PathBuf) -> Scripted {
        Scripted {
            picture,
            ..Scripted::default()
        }
    }

    fn calls(&self, src: &str) -> usize {
        self.calls.lock().unwrap().get(src).copied().unwrap_or(0)
    }
}

impl Resolve for Scripted {
    fn resolve<'a>(&'a self, src: &'a str) -> Resolved<'a> {
        Box::pin(async move {
            let n = {
                let mut calls = self.calls.lock().unwrap();
                let n = calls.entry(src.to_owned()).or_default();
                *n += 1;
                *n
            };
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                let _ = gate.acquire().await.map(|p| p.forget());
            }
            tokio::time::sleep(self.delay).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let reason = "connection reset".to_owned();
            let src = src.to_owned();
            if self.transient.get(&src).is_some_and(|&f| n <= f) {
                return Err(FetchError::Transient { src, reason });
            }
            if self.permanent.get(&src).is_some_and(|&f| n <= f) {
                return Err(FetchError::Permanent { src, reason });
            }
            self.resolved.fetch_add(1, Ordering::SeqCst);
            Ok(self.picture.clone())
        })
    }
}

fn picture(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("p.png");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=64x64",
            "-frames:v",
            "1",
        ])
        .arg(&path)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    path
}

/// A movie of `seconds` showing every one of `srcs` (images), one track
/// each.
fn job_of(
    srcs: &[&str],
    seconds: u32,
    resolver: Arc<dyn Resolve>,
    publish: Arc<dyn Publish>,
) -> Job {
    let tracks: Vec<_> = srcs
        .iter()
        .map(|src| {
            json!({ "clips": [ { "asset": { "type": "image", "src": src },
                "start": 0, "length": seconds, "scale": 0.2 } ] })
        })
        .collect();
    let edit = json!({
        "timeline": { "tracks": tracks },
        "output": { "format": "mp4", "resolution": "preview" }
    });
    job_for(&edit, resolver, publish)
}

/// A job for `edit` with the settings every test render shares.
pub(super) fn job_for(
    edit: &serde_json::Value,
    resolver: Arc<dyn Resolve>,
    publish: Arc<dyn Publish>,
) -> Job {
    Job {
        name: "test".into(),
        plan: plan(&fill(&edit.to_string(), &Map::new(), &Limits::default()).unwrap()).unwrap(),
        resolver,
        publish,
        limits: crate::engine::timeline::SourceLimits {
            max_video: (1920, 1920),
            max_image: (4096, 4096),
        },
        fragments: Fragments {
            first: Duration::from_millis(400),
            rest: Duration::from_secs(1),
        },
        fetch_concurrency: 4,
        fetch_retry: Retry {
            attempts: 3,
            backoff: Duration::from_millis(10),
        },
        // As the server renders: in segments; each job in a scope of its
        // own, so that no test's render is another's cached segments.
        segments: Some(crate::segments::Segmenting {
            secs: 2.0,
            scope: format!("test {}", SCOPES.fetch_add(1, Ordering::Relaxed)),
            workers: 1,
            remote: None,
        }),
    }
}

static SCOPES: AtomicUsize = AtomicUsize::new(0);

fn job(resolver: Arc<dyn Resolve>, publish: Arc<dyn Publish>) -> Job {
    job_of(&["p.png"], 1, resolver, publish)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_for_that_source_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut scripted = Scripted::new(picture(dir.path()));
    scripted.transient.insert("flaky.png".into(), 2);
    let scripted = Arc::new(scripted);
    let recorder = Arc::new(Recorder::default());
    let job = job_of(
        &["flaky.png", "steady.png"],
        1,
        scripted.clone(),
        recorder.clone(),
    );
    let render = start(job).await;
    assert_eq!(recorder.outcome().await, Ok(()));
    assert_eq!(scripted.calls("flaky.png"), 3, "two failures, then success");
    assert_eq!(scripted.calls("steady.png"), 1, "the other source once");
    assert!(recorder.bytes.load(Ordering::SeqCst) > 1000);
    settled_once(render, recorder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_failing_past_the_last_attempt_fails_the_render_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut scripted = Scripted::new(picture(dir.path()));
    scripted.transient.insert("p.png".into(), usize::MAX);
    let scripted = Arc::new(scripted);
    let recorder = Arc::new(Recorder::default());
    let render = start(job(scripted.clone(), recorder.clone())).await;
    match recorder.outcome().await {
        Err(RenderError::Fetch(message)) => assert!(
            message.contains("p.png") && message.contains("gave up after 3 attempts"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(scripted.calls("p.png"), 3);
    settled_once(render, recorder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_fetch_failure_fails_the_render_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut scripted = Scripted::new(picture(dir.path()));
    scripted.permanent.insert("p.png".into(), 1);
    let scripted = Arc::new(scripted);
    let recorder = Arc::new(Recorder::default());
    let render = start(job(scripted.clone(), recorder.clone())).await;
    assert!(matches!(
        recorder.outcome().await,
        Err(RenderError::Fetch(_))
    ));
    assert_eq!(scripted.calls("p.png"), 1);
    assert_eq!(recorder.bytes.load(Ordering::SeqCst), 0);
    settled_once(render, recorder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_fetched_concurrently_but_never_more_than_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut scripted = Scripted::new(picture(dir.path()));
    scripted.delay = Duration::from_millis(150);
    let scripted = Arc::new(scripted);
    let recorder = Arc::new(Recorder::default());
    let srcs = [
        "a.png", "b.png", "c.png", "d.png", "e.png", "f.png", "g.png",
    ];
    let mut job = job_of(&srcs, 1, scripted.clone(), recorder.clone());
    job.fetch_concurrency = 3;
    let render = start(job).await;
    assert_eq!(recorder.outcome().await, Ok(()));
    assert_eq!(scripted.resolved.load(Ordering::SeqCst), srcs.len());
    assert_eq!(
        scripted.most_in_flight.load(Ordering::SeqCst),
        3,
        "three at once, never more"
    );
    settled_once(render, recorder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_returns_before_any_source_is_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let mut scripted = Scripted::new(picture(dir.path()));
    scripted.gate = Some(tokio::sync::Semaphore::new(0));
    let scripted = Arc::new(scripted);
    let recorder = Arc::new(Recorder::default());
    let render = tokio::time::timeout(
        Duration::from_secs(5),
        start(job(scripted.clone(), recorder.clone())),
    )
    .await
    .expect("start returns while the source is held");
    assert_eq!(scripted.resolved.load(Ordering::SeqCst), 0);
    assert!(!render.is_settled());
    if let Some(gate) = &scripted.gate {
        gate.add_permits(1);
    }
    assert_eq!(recorder.outcome().await, Ok(()));
    assert_eq!(scripted.resolved.load(Ordering::SeqCst), 1);
    settled_once(render, recorder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_render_publishes_the_reason_once_and_stops_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let scripted = Arc::new(Scripted::new(picture(dir.path())));
    let recorder = Arc::new(Recorder::default());
    // Far longer than the test: only the cancellation can end it.
    let render = start(job_of(&["p.png"], 600, scripted, recorder.clone())).await;
    let streaming = eventually(Duration::from_secs(30), || {
        recorder.bytes.load(Ordering::SeqCst) > 0
    })
    .await;
    assert!(streaming, "the render never published a byte");
    let why = RenderError::Media("the render took longer than the limit".into());
    let cancelled = Instant::now();
    render.cancel(why.clone());
    assert_eq!(recorder.outcome().await, Err(why.clone()));
    render.cancel(RenderError::Internal("a second cancel".into()));
    drop(render);
    let stopped = eventually(Duration::from_secs(2), || Arc::strong_count(&recorder) == 1).await;
    assert!(
        stopped,
        "the tree and its threads were still running {:?} after the cancel",
        cancelled.elapsed()
    );
    assert_eq!(recorder.fails.load(Ordering::SeqCst), 1);
    assert_eq!(recorder.finishes.load(Ordering::SeqCst), 0);
    assert_eq!(recorder.outcome().await, Err(why));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compositing_loop_stops_between_two_frames_when_told() {
    use crate::compositor::{compose_and_encode, Control};
    use std::sync::atomic::AtomicBool;
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let job = job_of(
        &["p.png"],
        600,
        Arc::new(Scripted::default()),
        recorder.clone(),
    );
    let sources = HashMap::from([("p.png".to_owned(), picture(dir.path()))]);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    // Takes everything the muxer would, and raises the flag mid-render.
    let raised = Arc::new(Mutex::new(None));
    let drain = tokio::spawn({
        let (stop, raised) = (stop.clone(), raised.clone());
        async move {
            let mut batches = 0;
            while rx.recv().await.is_some() {
                batches += 1;
                if batches == 5 {
                    *raised.lock().unwrap() = Some(Instant::now());
                    stop.store(true, Ordering::Release);
                }
            }
        }
    });
    let worker = tokio::task::spawn_blocking({
        let (stop, publish) = (stop.clone(), recorder.clone());
        move || {
            let publish: Arc<dyn Publish> = publish;
            compose_and_encode(
                job.plan,
                &sources,
                job.limits,
                None,
                crate::compositor::Run::Whole,
                Control {
                    tx: &tx,
                    publish: publish.as_ref(),
                    publish_arc: &publish,
                    stop: &stop,
                    fault: Fault::default(),
                },
            )
        }
    });
    let ended = tokio::time::timeout(Duration::from_secs(20), worker).await;
    // Should it have run on, closing its queue ends it anyway.
    drain.abort();
    let result = ended.expect("the loop ended").expect("no panic");
    let raised = raised.lock().unwrap().expect("the flag was raised");
    assert!(
        raised.elapsed() < Duration::from_secs(2),
        "{:?} after the flag",
        raised.elapsed()
    );
    assert!(
        matches!(&result, Err(RenderError::Internal(m)) if m.contains("stopped")),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_stopped_before_the_render_settled_fails_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut scripted = Scripted::new(picture(dir.path()));
    // The fetch never ends: the render is stopped in the middle of it.
    scripted.gate = Some(tokio::sync::Semaphore::new(0));
    let scripted = Arc::new(scripted);
    let recorder = Arc::new(Recorder::default());
    let render = start(job(scripted, recorder.clone())).await;
    render.stop_supervisor();
    assert!(matches!(
        recorder.outcome().await,
        Err(RenderError::Internal(m)) if m.contains("stopped before it settled")
    ));
    settled_once(render, recorder).await;
}

#[cfg(debug_assertions)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_fault_at_each_stage_fails_only_its_render_once() {
    use crate::faults::Stage;
    use crate::supervisor::start_with;
    let dir = tempfile::tempdir().unwrap();
    let scripted = Arc::new(Scripted::new(picture(dir.path())));
    for stage in [
        Stage::Fetcher,
        Stage::Compositor,
        Stage::Muxer,
        Stage::Supervisor,
    ] {
        let broken = Arc::new(Recorder::default());
        let healthy = Arc::new(Recorder::default());
        let faulty = start_with(
            job(scripted.clone(), broken.clone()),
            Fault::at_stage(stage),
        )
        .await;
        let beside = start(job(scripted.clone(), healthy.clone())).await;
        assert!(
            matches!(broken.outcome().await, Err(RenderError::Internal(_))),
            "{stage:?}"
        );
        assert_eq!(healthy.outcome().await, Ok(()), "{stage:?}: the other one");
        if stage == Stage::Muxer {
            assert!(
                broken.bytes.load(Ordering::SeqCst) > 0,
                "viewers had the init segment"
            );
        }
        settled_once(faulty, broken).await;
        settled_once(beside, healthy).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_only_its_render() {
    let dir = tempfile::tempdir().unwrap();
    let resolver = Arc::new(Scripted::new(picture(dir.path())));
    let broken = Arc::new(Recorder {
        panic_on_init: true,
        ..Recorder::default()
    });
    let healthy = Arc::new(Recorder::default());
    let faulty = start(job(resolver.clone(), broken.clone())).await;
    let beside = start(job(resolver, healthy.clone())).await;
    assert!(matches!(
        broken.outcome().await,
        Err(RenderError::Internal(_))
    ));
    assert_eq!(
        healthy.outcome().await,
        Ok(()),
        "the other render is untouched"
    );
    settled_once(faulty, broken).await;
    settled_once(beside, healthy).await;
}

/// Keeps every byte a render publishes, as the finished file holds them.
#[derive(Default)]
struct Collector {
    bytes: Mutex<Vec<u8>>,
    inner: Recorder,
}

impl Publish for Collector {
    fn state(&self, _: State) {}
    fn progress(&self, _: f64) {}
    fn init(&self, bytes: Bytes) {
        self.bytes.lock().unwrap().extend_from_slice(&bytes);
    }
    fn fragment(&self, bytes: Bytes, _: f64) {
        self.bytes.lock().unwrap().extend_from_slice(&bytes);
    }
    fn patch(&self, offset: u64, bytes: Bytes) {
        let mut all = self.bytes.lock().unwrap();
        let at = offset as usize;
        all[at..at + bytes.len()].copy_from_slice(&bytes);
    }
    fn finish(&self) {
        self.inner.finish();
    }
    fn fail(&self, error: RenderError) {
        self.inner.fail(error);
    }
}

/// Other machines that never render a run: none takes it (`refuse`:
/// none can even be asked). Counts the runs asked and how they ended.
#[derive(Default)]
struct Unhelpful {
    refuse: bool,
    asked: AtomicUsize,
    delivered: Arc<AtomicUsize>,
    given_up: Arc<AtomicUsize>,
}

struct NeverTaken {
    delivered: Arc<AtomicUsize>,
    given_up: Arc<AtomicUsize>,
}

impl crate::segments::RemoteRuns for Unhelpful {
    fn ask(&self, _: usize, _: usize) -> Option<Box<dyn crate::segments::AskedRun>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        (!self.refuse).then(|| {
            Box::new(NeverTaken {
                delivered: self.delivered.clone(),
                given_up: self.given_up.clone(),
            }) as Box<dyn crate::segments::AskedRun>
        })
    }
}

impl crate::segments::AskedRun for NeverTaken {
    fn state(&mut self) -> crate::segments::RunState {
        crate::segments::RunState::Queued
    }
    fn end(&mut self, delivered: bool) {
        let count = if delivered {
            &self.delivered
        } else {
            &self.given_up
        };
        count.fetch_add(1, Ordering::SeqCst);
    }
}

/// The bytes of `edit` rendered with one worker and `remote`.
async fn rendered_with(
    edit: &serde_json::Value,
    remote: Option<Arc<Unhelpful>>,
) -> Result<Vec<u8>, RenderError> {
    let dir = tempfile::tempdir().unwrap();
    let resolver = Arc::new(Scripted::new(picture(dir.path())));
    let collector = Arc::new(Collector::default());
    let mut job = job_for(edit, resolver, collector.clone());
    if let Some(segmenting) = job.segments.as_mut() {
        segmenting.remote = remote.map(|runs| crate::segments::Remote { runs, claimers: 2 });
    }
    let render = start(job).await;
    let outcome = collector.inner.outcome().await;
    drop(render);
    outcome.map(|()| collector.bytes.lock().unwrap().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_no_other_machine_delivers_are_rendered_here_with_the_same_bytes() {
    let edit = json!({
        "timeline": { "background": "#203040", "tracks": [
            { "clips": [ { "asset": { "type": "title", "text": "Nobody helps" },
                           "start": 0, "length": 9 } ] } ] },
        "output": { "format": "mp4", "resolution": "preview" }
    });
    let alone = rendered_with(&edit, None).await.expect("rendered alone");
    for refuse in [false, true] {
        let remote = Arc::new(Unhelpful {
            refuse,
            ..Unhelpful::default()
        });
        let started = Instant::now();
        let bytes = rendered_with(&edit, Some(remote.clone()))
            .await
            .expect("rendered with unhelpful machines");
        assert!(bytes == alone, "the same bytes (refuse: {refuse})");
        let asked = remote.asked.load(Ordering::SeqCst);
        assert!(asked >= 1, "runs were asked of the others");
        let (delivered, given_up) = (
            remote.delivered.load(Ordering::SeqCst),
            remote.given_up.load(Ordering::SeqCst),
        );
        if refuse {
            assert_eq!((delivered, given_up), (0, 0), "nothing was asked");
        } else {
            assert_eq!(
                (delivered, given_up),
                (0, asked),
                "every run asked was given up"
            );
            assert!(
                started.elapsed() >= Duration::from_secs(2),
                "a run nobody took was waited for a while first"
            );
        }
    }
}
