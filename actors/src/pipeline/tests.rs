//! The supervisor's promises: a transient fetch failure is retried, a
//! permanent one fails the render, and a panic in a child fails only its
//! render.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Map};

use super::*;
use crate::edit::{fill, Limits};
use crate::plan::plan;

#[derive(Default)]
struct Recorder {
    bytes: AtomicUsize,
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
        *self.outcome.lock().unwrap() = Some(Ok(()));
    }
    fn fail(&self, error: RenderError) {
        *self.outcome.lock().unwrap() = Some(Err(error));
    }
}

impl Recorder {
    async fn outcome(&self) -> Result<(), RenderError> {
        for _ in 0..600 {
            if let Some(outcome) = self.outcome.lock().unwrap().clone() {
                return outcome;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the render never settled");
    }
}

/// Fails the first `failures` resolutions transiently, then hands out a
/// picture made on the spot; counts its calls.
struct Flaky {
    failures: usize,
    calls: AtomicUsize,
    picture: std::path::PathBuf,
    permanent: bool,
}

impl Resolve for Flaky {
    fn resolve<'a>(&'a self, src: &'a str) -> Resolved<'a> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.failures {
                let reason = "connection reset".to_owned();
                return Err(if self.permanent {
                    FetchError::Permanent {
                        src: src.to_owned(),
                        reason,
                    }
                } else {
                    FetchError::Transient {
                        src: src.to_owned(),
                        reason,
                    }
                });
            }
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

fn job(resolver: Arc<dyn Resolve>, publish: Arc<dyn Publish>) -> Job {
    let edit = json!({
        "timeline": { "tracks": [ { "clips": [ { "asset": { "type": "image", "src": "p.png" }, "start": 0, "length": 1 } ] } ] },
        "output": { "format": "mp4", "resolution": "preview" }
    });
    Job {
        name: "test".into(),
        plan: plan(&fill(&edit.to_string(), &Map::new(), &Limits::default()).unwrap()).unwrap(),
        resolver,
        publish,
        limits: crate::compositor::SourceLimits {
            max_video: (1920, 1920),
            max_image: (4096, 4096),
        },
        fragments: Fragments {
            first: Duration::from_millis(500),
            rest: Duration::from_secs(1),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_fetch_failure_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = Arc::new(Flaky {
        failures: 2,
        calls: AtomicUsize::new(0),
        picture: picture(dir.path()),
        permanent: false,
    });
    let recorder = Arc::new(Recorder::default());
    start(job(flaky.clone(), recorder.clone())).await.unwrap();
    assert_eq!(recorder.outcome().await, Ok(()));
    assert_eq!(
        flaky.calls.load(Ordering::SeqCst),
        3,
        "two failures, then success"
    );
    assert!(recorder.bytes.load(Ordering::SeqCst) > 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_fetch_failure_fails_the_render_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = Arc::new(Flaky {
        failures: 1,
        calls: AtomicUsize::new(0),
        picture: picture(dir.path()),
        permanent: true,
    });
    let recorder = Arc::new(Recorder::default());
    start(job(flaky.clone(), recorder.clone())).await.unwrap();
    assert!(matches!(
        recorder.outcome().await,
        Err(RenderError::Fetch(_))
    ));
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_only_its_render() {
    let dir = tempfile::tempdir().unwrap();
    let resolver = Arc::new(Flaky {
        failures: 0,
        calls: AtomicUsize::new(0),
        picture: picture(dir.path()),
        permanent: false,
    });
    let broken = Arc::new(Recorder {
        panic_on_init: true,
        ..Recorder::default()
    });
    let healthy = Arc::new(Recorder::default());
    start(job(resolver.clone(), broken.clone())).await.unwrap();
    start(job(resolver, healthy.clone())).await.unwrap();
    assert!(matches!(
        broken.outcome().await,
        Err(RenderError::Internal(_))
    ));
    assert_eq!(
        healthy.outcome().await,
        Ok(()),
        "the other render is untouched"
    );
}
