//! Segments: an MP4 render is a sequence of fixed-length runs of frames,
//! each encoded by a fresh video encoder (so it starts with an IDR frame
//! and depends on nothing before it) and keyed by what is visible in its
//! time window. A segment whose key was encoded before, by any render of
//! the same account, is not composed or encoded again: its packets come
//! from the [`SegmentCache`] and are re-timed to where the segment sits.
//! The cache is a small in-memory layer over the durable
//! [`SegmentStore`] the server sets at start ([`set_store`]).
//!
//! The key comes from the plan (the resolved Edit), not from knowing
//! which fields held placeholders: two tokens, movies or projects whose
//! windows show the same thing share the segment.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use bytes::Bytes;

use crate::engine::output::{Encoded, FORMAT_VERSION};
use crate::engine::plan::{Layer, Plan, Visual};
use crate::engine::timeline::Sources;
use crate::segment_store::{self, SegmentStore};

/// The version of how a segment is cut and encoded; part of every key,
/// beside the output's [`FORMAT_VERSION`].
pub const SEGMENT_VERSION: u32 = 2;

/// Bytes of encoded segments kept in memory unless [`set_capacity`] says
/// otherwise.
pub const DEFAULT_CAPACITY: usize = 64 * 1024 * 1024;

/// A segment's content key: the store names segments by it.
pub use crate::segment_store::Key;

/// How a render is cut into segments, and whose cache it shares.
#[derive(Debug, Clone, PartialEq)]
pub struct Segmenting {
    /// Target length of a segment in seconds (rounded to whole frames).
    pub secs: f64,
    /// Segments are shared only within a scope: the account.
    pub scope: String,
    /// Segments rendered at once, each by a worker of its own composing
    /// and encoding it (`parallel` of the render request; one per core
    /// when not given); 1 renders them one after another. The bytes are
    /// the same either way.
    pub workers: usize,
    /// Other machines that may render runs of this render's segments
    /// (`parallel` over a cluster); `None` renders everything here.
    pub remote: Option<Remote>,
}

/// Runs of a render's segments rendered by other machines: a server in a
/// cluster asks another node, which renders them with the same settings
/// (so the same bytes) and keeps them in the segment store every node
/// shares, where this render then finds them. This crate knows nothing of
/// clusters: the server implements [`RemoteRuns`] for each render.
#[derive(Clone)]
pub struct Remote {
    pub runs: Arc<dyn RemoteRuns>,
    /// Runs asked of other machines at once, at most.
    pub claimers: usize,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("claimers", &self.claimers)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Remote {
    fn eq(&self, other: &Remote) -> bool {
        Arc::ptr_eq(&self.runs, &other.runs) && self.claimers == other.claimers
    }
}

/// Asks other machines for runs of one render's segments. Called from a
/// render's threads (not async code): the calls may block briefly.
pub trait RemoteRuns: Send + Sync {
    /// Asks another machine to render segments `first..first + count` of
    /// this render and keep them in the shared segment store; `None` when
    /// the request could not be made (the caller renders them itself).
    fn ask(&self, first: usize, count: usize) -> Option<Box<dyn AskedRun>>;
}

/// A run asked of another machine.
pub trait AskedRun: Send {
    /// Where the request stands now.
    fn state(&mut self) -> RunState;

    /// The caller is done with the request: its segments came
    /// (`delivered`), or it renders them itself, and the request is
    /// withdrawn if no machine has taken it. Called once; a request
    /// dropped without it is withdrawn too.
    fn end(&mut self, delivered: bool);
}

/// What became of a run asked of another machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Waiting for a machine to take it.
    Queued,
    /// A live machine renders it.
    Taken,
    /// No machine holds it any more: it finished (its segments are in the
    /// store, unless it failed) or its machine died.
    Gone,
}

/// One segment of a render: output frames `first..first + frames`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub index: usize,
    pub first: i64,
    pub frames: i64,
}

/// Frames of a segment `secs` long at the plan's rate (at least one).
pub fn frames_per_segment(plan: &Plan, secs: f64) -> i64 {
    (secs * plan.rate.as_f64()).round().max(1.0) as i64
}

/// The plan's output frames in segments of `per` frames; the last may be
/// shorter. The plan knows every segment's exact length before anything
/// is rendered.
pub fn split(plan: &Plan, per: i64) -> Vec<Segment> {
    let total = (plan.duration * plan.rate.as_f64()).round().max(1.0) as i64;
    let per = per.max(1);
    (0..total)
        .step_by(per as usize)
        .enumerate()
        .map(|(index, first)| Segment {
            index,
            first,
            frames: per.min(total - first),
        })
        .collect()
}

/// Every source file a layer reads (its picture or video, fonts aside).
fn layer_src(layer: &Layer) -> Option<&str> {
    match &layer.visual {
        Visual::Image { src } | Visual::Video { src, .. } | Visual::Luma { src, .. } => Some(src),
        Visual::Title(_) | Visual::Html(_) => None,
    }
}

/// Identifies source files by content, each once per render.
#[derive(Default)]
pub struct Digests {
    known: HashMap<String, Option<[u8; 32]>>,
}

impl Digests {
    fn of(&mut self, sources: &Sources, src: &str) -> Option<[u8; 32]> {
        if let Some(d) = self.known.get(src) {
            return *d;
        }
        let digest = sources.get(src).and_then(|p| digest(p).ok());
        self.known.insert(src.to_owned(), digest);
        digest
    }
}

fn digest(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    crate::sound_cache::identify(&mut h, path)?;
    Ok(*h.finalize().as_bytes())
}

/// The [`key`] of each of `list`, the files' digests read once.
pub fn keys(
    plan: &Plan,
    sources: &Sources,
    list: &[Segment],
    forced_key: Option<i64>,
    scope: &str,
) -> Vec<Option<Key>> {
    let mut digests = Digests::default();
    list.iter()
        .map(|s| key(plan, sources, &mut digests, *s, forced_key, scope))
        .collect()
}

/// The content key of `segment`'s pictures: everything visible in its
/// window — the layers that overlap it, in drawing order, with their times
/// relative to the window's start, and the digests of the files they read —
/// with the output's settings, the frames' count, the forced keyframe if
/// it falls inside, whether it opens the stream, the render-format
/// versions and the scope. `None` when
/// a file cannot be read (the segment is then rendered and not kept).
pub fn key(
    plan: &Plan,
    sources: &Sources,
    digests: &mut Digests,
    segment: Segment,
    forced_key: Option<i64>,
    scope: &str,
) -> Option<Key> {
    let rate = plan.rate.as_f64();
    let from = plan.start + segment.first as f64 / rate;
    let to = plan.start + (segment.first + segment.frames) as f64 / rate;
    let mut h = blake3::Hasher::new();
    h.update(format!("clipstream segment {FORMAT_VERSION} {SEGMENT_VERSION}\n").as_bytes());
    h.update(format!("{}\n{}\n", scope.len(), scope).as_bytes());
    h.update(
        format!(
            "{:?} {}x{} {:?} {:?} {}\n",
            plan.output, plan.width, plan.height, plan.rate, plan.background, segment.frames
        )
        .as_bytes(),
    );
    let forced = forced_key
        .filter(|k| (segment.first..segment.first + segment.frames).contains(k))
        .map(|k| k - segment.first);
    h.update(format!("forced {forced:?}\n").as_bytes());
    // The stream's first frames are encoded on their own threads
    // (`opening_threads`), so segment 0 never shares a key with another.
    h.update(format!("opening {}\n", segment.first == 0).as_bytes());
    let mut html = false;
    for layer in &plan.layers {
        if layer.start >= to || layer.start + layer.length <= from {
            continue;
        }
        let mut relative = layer.clone();
        relative.start -= from;
        // A file counts by its content (below), not by its name.
        if let Visual::Image { src } | Visual::Video { src, .. } | Visual::Luma { src, .. } =
            &mut relative.visual
        {
            src.clear();
        }
        html |= matches!(layer.visual, Visual::Html(_));
        h.update(format!("{relative:?}\n").as_bytes());
        if let Some(src) = layer_src(layer) {
            h.update(&digests.of(sources, src)?);
        }
    }
    if html {
        for font in &plan.fonts {
            h.update(font.as_bytes());
            h.update(&digests.of(sources, font)?);
        }
    }
    Some(*h.finalize().as_bytes())
}

/// A segment's encoded video: its packets with times counted from the
/// segment's first frame.
pub type Packets = Arc<Vec<Encoded>>;

/// The process's segment cache, shared by every render.
pub fn shared() -> &'static SegmentCache {
    &CACHE
}

static CACHE: LazyLock<SegmentCache> = LazyLock::new(|| SegmentCache::new(DEFAULT_CAPACITY));

/// Bytes the process's cache may keep in memory
/// (`segments.memory_bytes`); 0 keeps nothing in memory.
pub fn set_capacity(bytes: usize) {
    CACHE.capacity.store(bytes, Ordering::Relaxed);
}

/// Where the process's cache keeps segments beyond memory and across
/// restarts; until it is set, segments live in memory only.
pub fn set_store(store: Arc<dyn SegmentStore>) {
    CACHE.set_store(store);
}

/// Encoded segments, least recently used dropped first, with counts of
/// segments (and their seconds) rendered and reused: in memory, over the
/// durable store if one is set.
pub struct SegmentCache {
    capacity: AtomicUsize,
    inner: Mutex<Entries>,
    store: RwLock<Option<Arc<dyn SegmentStore>>>,
    counts: Counts,
}

#[derive(Default)]
struct Entries {
    segments: HashMap<Key, Packets>,
    /// Least recently used first.
    order: VecDeque<Key>,
    bytes: usize,
}

/// Segments by outcome, and their seconds in milliseconds.
#[derive(Default)]
struct Counts {
    rendered: AtomicU64,
    reused: AtomicU64,
    rendered_ms: AtomicU64,
    reused_ms: AtomicU64,
}

/// What [`SegmentCache::counts`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub rendered: u64,
    pub reused: u64,
    pub rendered_secs: f64,
    pub reused_secs: f64,
}

fn size_of(packets: &[Encoded]) -> usize {
    packets.iter().map(|p| p.data.len() + 48).sum()
}

impl SegmentCache {
    pub fn new(capacity: usize) -> SegmentCache {
        SegmentCache {
            capacity: AtomicUsize::new(capacity),
            inner: Mutex::new(Entries::default()),
            store: RwLock::new(None),
            counts: Counts::default(),
        }
    }

    pub fn set_store(&self, store: Arc<dyn SegmentStore>) {
        *self.store.write().unwrap_or_else(|p| p.into_inner()) = Some(store);
    }

    fn store(&self) -> Option<Arc<dyn SegmentStore>> {
        self.store.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Segment `key` from memory, else from the store (then kept in
    /// memory too).
    pub fn get(&self, key: &Key) -> Option<Packets> {
        {
            let mut e = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(packets) = e.segments.get(key).cloned() {
                e.order.retain(|k| k != key);
                e.order.push_back(*key);
                return Some(packets);
            }
        }
        let body = self.store()?.get(key)?;
        match segment_store::decode(Bytes::from(body)) {
            Ok(packets) => {
                let packets = Arc::new(packets);
                self.remember(*key, packets.clone());
                Some(packets)
            }
            Err(e) => {
                // Rendered again, and the new packets replace these.
                tracing::warn!(error = %e, "a stored segment could not be read");
                None
            }
        }
    }

    /// Keeps `packets` under `key`: in the store, and in memory, dropping
    /// the least recently used to make room there.
    pub fn put(&self, key: Key, packets: Vec<Encoded>) {
        if let Some(store) = self.store() {
            store.put(&key, segment_store::encode(&packets));
        }
        self.remember(key, Arc::new(packets));
    }

    /// Keeps `packets` under `key` durably before returning, beyond the
    /// store's usual bound on a segment's size: another machine waits for
    /// it (a run it asked this one to render). `false` when the store did
    /// not keep it (or there is no store).
    pub fn keep(&self, key: Key, packets: Vec<Encoded>) -> bool {
        let kept = self
            .store()
            .is_some_and(|store| store.keep(&key, segment_store::encode(&packets)));
        self.remember(key, Arc::new(packets));
        kept
    }

    /// Keeps `packets` in memory, dropping the least recently used to
    /// make room; a segment larger than a sixteenth of the memory is not
    /// kept there.
    fn remember(&self, key: Key, packets: Packets) {
        let size = size_of(&packets);
        let capacity = self.capacity.load(Ordering::Relaxed);
        if size > capacity / 16 {
            return;
        }
        let mut e = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = e.segments.remove(&key) {
            e.bytes -= size_of(&old);
            e.order.retain(|k| *k != key);
        }
        while e.bytes + size > capacity {
            let Some(oldest) = e.order.pop_front() else {
                break;
            };
            if let Some(old) = e.segments.remove(&oldest) {
                e.bytes -= size_of(&old);
            }
        }
        e.bytes += size;
        e.order.push_back(key);
        e.segments.insert(key, packets);
    }

    /// Counts a segment of `secs` seconds, rendered or reused.
    pub fn count(&self, reused: bool, secs: f64) {
        let c = &self.counts;
        let ms = (secs * 1000.0).round() as u64;
        if reused {
            c.reused.fetch_add(1, Ordering::Relaxed);
            c.reused_ms.fetch_add(ms, Ordering::Relaxed);
        } else {
            c.rendered.fetch_add(1, Ordering::Relaxed);
            c.rendered_ms.fetch_add(ms, Ordering::Relaxed);
        }
    }

    pub fn counts(&self) -> Tally {
        let c = &self.counts;
        Tally {
            rendered: c.rendered.load(Ordering::Relaxed),
            reused: c.reused.load(Ordering::Relaxed),
            rendered_secs: c.rendered_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            reused_secs: c.reused_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn plan(name: &str, logo: &str) -> Plan {
        let edit: crate::engine::edit::Edit = serde_json::from_value(serde_json::json!({
            "timeline": { "tracks": [
                { "clips": [
                    { "asset": { "type": "title", "text": format!("Hello {name}") },
                      "start": 0, "length": 2 },
                    { "asset": { "type": "title", "text": "Bye" },
                      "start": 4, "length": 2, "transition": { "in": "fade" } }
                ]},
                { "clips": [
                    { "asset": { "type": "image", "src": logo }, "start": 2, "length": 2 }
                ]}
            ]},
            "output": { "format": "mp4", "resolution": "preview" }
        }))
        .expect("edit");
        crate::engine::plan::plan(&edit).expect("plan")
    }

    fn keys(plan: &Plan, sources: &Sources, scope: &str) -> Vec<Option<Key>> {
        let mut digests = Digests::default();
        split(plan, frames_per_segment(plan, 1.0))
            .into_iter()
            .map(|s| key(plan, sources, &mut digests, s, None, scope))
            .collect()
    }

    #[test]
    fn a_plan_splits_into_whole_segments_with_a_shorter_last() {
        let mut p = plan("Jane", "a.png");
        p.duration = 2.5;
        let segments = split(&p, frames_per_segment(&p, 1.0));
        let frames: Vec<i64> = segments.iter().map(|s| s.frames).collect();
        assert_eq!(
            frames,
            vec![15, 15, 8],
            "preview is 15 fps: 37.5 frames round to 38"
        );
        assert_eq!(segments[2].first, 30);
    }

    #[test]
    fn keys_change_exactly_where_the_content_changes() {
        let dir = tempfile::tempdir().expect("dir");
        let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
        std::fs::write(&a, b"one picture").expect("write");
        std::fs::write(&b, b"another picture").expect("write");
        let sources = Sources::from([("a.png".to_owned(), a.clone()), ("b.png".to_owned(), b)]);
        let jane = keys(&plan("Jane", "a.png"), &sources, "acct");
        assert!(jane.iter().all(Option::is_some));
        assert_eq!(jane.len(), 6);
        let john = keys(&plan("John", "a.png"), &sources, "acct");
        let same: Vec<bool> = jane.iter().zip(&john).map(|(x, y)| x == y).collect();
        assert_eq!(
            same,
            vec![false, false, true, true, true, true],
            "the name shows 0–2 s"
        );
        // The same bytes under another name are the same content.
        let renamed = keys(&plan("Jane", "b.png"), &sources, "acct");
        assert_ne!(renamed[2], jane[2], "other bytes");
        std::fs::write(&a, b"another picture").expect("write");
        let changed = keys(&plan("Jane", "a.png"), &sources, "acct");
        let same: Vec<bool> = jane.iter().zip(&changed).map(|(x, y)| x == y).collect();
        assert_eq!(
            same,
            vec![true, true, false, false, true, true],
            "a changed asset changes the segments that show it, and only those"
        );
        assert_eq!(changed[2], renamed[2], "keys follow content, not names");
        let other = keys(&plan("Jane", "a.png"), &sources, "other account");
        assert!(
            other.iter().zip(&changed).all(|(x, y)| x != y),
            "no sharing across accounts"
        );
        assert_eq!(
            keys(&plan("Jane", "a.png"), &Sources::new(), "acct")[2],
            None,
            "an unreadable file: no key"
        );
    }

    #[test]
    fn the_least_recently_used_segment_makes_room() {
        let packet = |len: usize| Encoded {
            pts: 0,
            dts: 0,
            duration: 512,
            keyframe: true,
            data: Bytes::from(vec![0u8; len]),
        };
        let cache = SegmentCache::new(16 * (1000 + 48));
        for k in 0..16u8 {
            cache.put([k; 32], vec![packet(1000)]);
        }
        assert!(cache.get(&[0; 32]).is_some(), "0 is now the most recent");
        cache.put([16; 32], vec![packet(1000)]);
        assert!(cache.get(&[1; 32]).is_none(), "1 was the least recent");
        assert!(cache.get(&[0; 32]).is_some());
        cache.put([17; 32], vec![packet(2000)]);
        assert!(cache.get(&[17; 32]).is_none(), "too large to keep");
    }
}
