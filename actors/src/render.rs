//! One render as a supervised actor tree (CONTRACT section 1):
//!
//! ```text
//! supervisor ── fetcher     resolves and downloads every source once
//!            ├─ compositor  decodes, composes, mixes, encodes (a blocking thread)
//!            └─ muxer       packages the format (crate::output): fragmented MP4
//!                           (init segment, then ~1 s fragments), WebM, MP3,
//!                           GIF, or a still image
//! ```
//!
//! Bytes leave through a [`Publish`] the caller provides (the server's
//! live-render buffer, or a file for the CLI). [`start`] returns at once a
//! [`Render`], which can cancel it; the render ends in exactly one
//! `finish` or `fail`, whatever happens: a child's failure or panic
//! reaches the supervisor and fails the render, a panic anywhere in a
//! render fails only that render. The fetcher retries a source whose
//! failure is transient; nothing else retries.

mod compositor;
mod faults;
mod fetcher;
mod muxer;
pub mod sound_cache;
mod supervisor;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use fetcher::{sources_of, FetchError, Resolve, Resolved};
pub use supervisor::{start, Render};

#[cfg(test)]
mod golden;
#[cfg(test)]
mod tests;

use crate::compositor::SourceLimits;
use crate::plan::Plan;

/// Where a render stands, for `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Fetching,
    Rendering,
    /// Every byte is out; the output is being written to the cache.
    Saving,
    Done,
    Failed,
}

/// Why a render failed, in the terms of its HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A source could not be fetched (502).
    #[error("{0}")]
    Fetch(String),
    /// A source could not be decoded or breaks a limit (422).
    #[error("{0}")]
    Media(String),
    /// The render itself broke: a bug, reported as such (500).
    #[error("the render failed: {0}")]
    Internal(String),
}

/// Receives what a render produces, in order.
pub trait Publish: Send + Sync + 'static {
    fn state(&self, state: State);
    /// Fraction done, 0–1.
    fn progress(&self, done: f64);
    /// The init segment (`ftyp` + `moov`); first, once.
    fn init(&self, bytes: Bytes);
    /// The bytes that follow: for MP4 a `moof` + `mdat` fragment of
    /// `seconds` of media.
    fn fragment(&self, bytes: Bytes, seconds: f64);
    /// New bytes for `offset..offset + bytes.len()`, which was already
    /// published: a muxer seeking back at the end (WebM cues and
    /// duration, MP3's Xing frame). The finished file holds them.
    fn patch(&self, offset: u64, bytes: Bytes);
    /// Everything was published.
    fn finish(&self);
    fn fail(&self, error: RenderError);
}

/// Everything a render needs.
pub struct Job {
    /// Names the render in logs (the token and extension).
    pub name: String,
    pub plan: Plan,
    pub resolver: Arc<dyn Resolve>,
    pub publish: Arc<dyn Publish>,
    pub limits: SourceLimits,
    pub fragments: Fragments,
    /// Sources resolved at once, at most (0 counts as 1).
    pub fetch_concurrency: usize,
    /// How a source that fails transiently is tried again.
    pub fetch_retry: Retry,
}

/// Tries of a source whose failure is transient: `attempts` in all (0
/// counts as 1), waiting `backoff`, then twice that, and so on, in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Duration,
}

impl Retry {
    /// The wait after failed attempt `attempt` (from 1).
    pub fn wait_after(&self, attempt: u32) -> Duration {
        self.backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
    }
}

/// How the stream is cut into fragments, each starting on a keyframe. A
/// short first fragment (a keyframe is forced where it ends) puts the
/// first picture in a viewer's player sooner than a whole GOP would.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fragments {
    pub first: Duration,
    pub rest: Duration,
}

impl Fragments {
    /// The frame where the first fragment ends and a keyframe is forced,
    /// if the first fragment is shorter than the others.
    pub fn forced_key(&self, fps: f64) -> Option<i64> {
        (self.first < self.rest).then(|| (self.first.as_secs_f64() * fps).round().max(1.0) as i64)
    }
}
