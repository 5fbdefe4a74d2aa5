//! What a render is given and what it tells its caller: the [`Job`] that
//! [`crate::start`] takes (with how its sources are had, [`Resolve`], and
//! tried again, [`Retry`]), and the [`Publish`] that receives its bytes,
//! its [`State`] and, if it fails, its [`RenderError`].

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::engine::output::Fragments;
use crate::engine::plan::Plan;
use crate::engine::timeline::SourceLimits;

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

/// Why a source could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Worth another try (a timeout, a reset connection, a 5xx).
    #[error("{src}: {reason} (transient)")]
    Transient { src: String, reason: String },
    /// Not going to work (missing asset, 404, refused address).
    #[error("{src}: {reason}")]
    Permanent { src: String, reason: String },
}

pub type Resolved<'a> = Pin<Box<dyn Future<Output = Result<PathBuf, FetchError>> + Send + 'a>>;

/// How a `src` becomes a local file: project assets by name, URLs by
/// download. Provided by whoever starts the render.
pub trait Resolve: Send + Sync + 'static {
    fn resolve<'a>(&'a self, src: &'a str) -> Resolved<'a>;
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
    /// A segment of `seconds` was rendered, or reused from the segment
    /// cache.
    fn segment(&self, reused: bool, seconds: f64) {
        let _ = (reused, seconds);
    }
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
    /// An MP4 is rendered in segments, each reused from the segment cache
    /// when it was rendered before; `None` renders it in one piece.
    pub segments: Option<crate::segments::Segmenting>,
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
