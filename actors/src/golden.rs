//! The golden render: a small fixed Edit, rendered by the whole pipeline,
//! must give the bytes recorded in `golden/fmp4.txt` (their BLAKE3 and
//! the outline of their boxes) for the `FORMAT_VERSION` recorded there.
//!
//! Outputs are cached under a key that holds [`FORMAT_VERSION`] but not
//! the renderer's code: a change that makes the same Edit render to other
//! bytes must bump the version, or caches keep serving the old renderer's
//! output as the new one's. This test is what notices. When it fails:
//! bump `engine::output::FORMAT_VERSION` if the change was meant, then write the
//! new record with `CLIPSTREAM_BLESS=1 cargo test -p clipstream-actors
//! golden` and read the outline's diff.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use crate::engine::output::FORMAT_VERSION;
use crate::render::{FetchError, Publish, RenderError, Resolve, Resolved, State};
use crate::supervisor::start;

const RECORD: &str = "src/golden/fmp4.txt";

/// The file as a viewer of the cache gets it: patches applied.
#[derive(Default)]
struct File {
    bytes: Mutex<Vec<u8>>,
    outcome: tokio::sync::Notify,
    failed: Mutex<Option<RenderError>>,
}

impl Publish for File {
    fn state(&self, _: State) {}
    fn progress(&self, _: f64) {}
    fn init(&self, bytes: Bytes) {
        self.bytes.lock().unwrap().extend_from_slice(&bytes);
    }
    fn fragment(&self, bytes: Bytes, _: f64) {
        self.bytes.lock().unwrap().extend_from_slice(&bytes);
    }
    fn patch(&self, offset: u64, bytes: Bytes) {
        let at = offset as usize;
        self.bytes.lock().unwrap()[at..at + bytes.len()].copy_from_slice(&bytes);
    }
    fn finish(&self) {
        self.outcome.notify_one();
    }
    fn fail(&self, error: RenderError) {
        *self.failed.lock().unwrap() = Some(error);
        self.outcome.notify_one();
    }
}

struct NoSources;

impl Resolve for NoSources {
    fn resolve<'a>(&'a self, src: &'a str) -> Resolved<'a> {
        Box::pin(async move {
            Err(FetchError::Permanent {
                src: src.to_owned(),
                reason: "the golden Edit reads no source".into(),
            })
        })
    }
}

/// A background, a title and a translucent box that moves: text shaping,
/// blending, motion, x264, AAC (silence) and the fMP4 muxer in one second.
fn edit() -> serde_json::Value {
    json!({
        "timeline": {
            "background": "#102030",
            "tracks": [
                { "clips": [ { "asset": { "type": "title", "text": "Golden", "style": "chunk",
                                          "background": "#e00000" },
                               "start": 0, "length": 1, "transition": { "in": "slideLeftFast" } } ] },
                { "clips": [ { "asset": { "type": "html", "html": "<p>frame</p>",
                                          "css": "p { color: #ffffff; background-color: #80008000 }",
                                          "width": 200, "height": 60 },
                               "start": 0, "length": 1, "opacity": 0.5, "position": "bottom" } ] }
            ]
        },
        "output": { "format": "mp4", "resolution": "preview" }
    })
}

async fn render() -> Vec<u8> {
    let file = Arc::new(File::default());
    let job = super::tests::job_for(&edit(), Arc::new(NoSources), file.clone());
    let _render = start(job).await;
    tokio::time::timeout(Duration::from_secs(60), file.outcome.notified())
        .await
        .expect("the golden render settles");
    if let Some(e) = file.failed.lock().unwrap().take() {
        panic!("the golden render failed: {e}");
    }
    let bytes = file.bytes.lock().unwrap().clone();
    bytes
}

fn record_of(bytes: &[u8]) -> String {
    format!(
        "format_version: {FORMAT_VERSION}\nblake3: {}\n{}",
        blake3::hash(bytes).to_hex(),
        crate::engine::mux::tree::outline(bytes)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_edit_renders_to_its_golden_bytes() {
    let bytes = render().await;
    let again = render().await;
    // The second render takes its sound from the sound cache: an
    // output's bytes must not depend on what that cache held.
    if bytes != again {
        let at = bytes.iter().zip(&again).position(|(a, b)| a != b);
        panic!(
            "the same Edit rendered twice gave other bytes ({} and {}, first difference at {at:?})",
            bytes.len(),
            again.len()
        );
    }
    let record = record_of(&bytes);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(RECORD);
    if std::env::var_os("CLIPSTREAM_BLESS").is_some() {
        std::fs::write(&path, &record).unwrap();
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    let recorded_version = golden.lines().next().unwrap_or_default();
    if record != golden {
        if recorded_version == format!("format_version: {FORMAT_VERSION}") {
            panic!(
                "the golden Edit renders to other bytes than {RECORD} records for \
                 FORMAT_VERSION {FORMAT_VERSION}: bump output::FORMAT_VERSION (cached \
                 outputs of the old renderer must not be served as the new one's), then \
                 CLIPSTREAM_BLESS=1 cargo test -p clipstream-actors golden.\n--- recorded\n\
                 {golden}\n--- now\n{record}"
            );
        }
        panic!(
            "FORMAT_VERSION is {FORMAT_VERSION}, {RECORD} was written for another: \
             CLIPSTREAM_BLESS=1 cargo test -p clipstream-actors golden\n--- now\n{record}"
        );
    }
}
