//! `/metrics` in the Prometheus text format (CONTRACT section 10): renders
//! by state, render seconds, time to first byte, cache hits, misses and
//! bytes served, fetch errors, and the encoded-sound cache's hits and
//! misses. `prometheus-client` keeps the registry and writes the format.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

pub struct Metrics {
    registry: Registry,
    /// Renders in progress by state, refreshed at each scrape.
    pub renders_active: Family<Labels, Gauge>,
    /// Renders that ended, by outcome.
    pub renders_finished: Family<Labels, Counter>,
    /// Renders started, by reason: a viewer, a prerender, a resumed job.
    pub renders_started: Family<Labels, Counter>,
    pub render_seconds: Histogram,
    pub first_byte_seconds: Histogram,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub cache_bytes: Counter,
    pub fetch_errors: Counter,
    /// The render cache's size in bytes and entries, read at each scrape
    /// (the studio's dashboard shows them).
    pub cache_size: Gauge,
    pub cache_entries: Gauge,
    /// Upload attempts, by destination type and outcome (done, retry,
    /// failed).
    pub upload_attempts: Family<Labels, Counter>,
    /// Shotstack callbacks, by outcome (delivered, refused, failed).
    pub callbacks: Family<Labels, Counter>,
    /// HLS segments asked for ahead of their render, by outcome: rendered
    /// alone, or joined (the same segment was being rendered for another
    /// player).
    pub hls_seeks: Family<Labels, Counter>,
    /// Runs of segments of `parallel` renders over a cluster, by side:
    /// `remote` (another node rendered a run of this node's render),
    /// `fallback` (asked of the cluster, not delivered: nobody took it in
    /// time, or its node failed, so it was rendered here; or the render
    /// ended meanwhile), `taken` (this node took a run
    /// of another node's render to render it), `served` (and rendered it).
    pub segment_runs: Family<Labels, Counter>,
    /// Mirrors of the encoded-sound cache's own counts, at each scrape.
    sound_hits: Counter,
    sound_misses: Counter,
    /// One scrape at a time brings the mirrors up to date.
    sound_sync: std::sync::Mutex<()>,
    /// Mirrors of the segment cache's counts: segments and their seconds,
    /// by outcome (rendered, reused).
    segments: Family<Labels, Counter>,
    segment_seconds: Family<Labels, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// Mirror of the segments written to the store (the durable cache).
    segments_stored: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("clipstream");
        let m = Metrics {
            renders_active: Family::default(),
            renders_finished: Family::default(),
            renders_started: Family::default(),
            render_seconds: Histogram::new(exponential_buckets(0.25, 2.0, 12)),
            first_byte_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 12)),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            cache_bytes: Counter::default(),
            fetch_errors: Counter::default(),
            cache_size: Gauge::default(),
            cache_entries: Gauge::default(),
            upload_attempts: Family::default(),
            callbacks: Family::default(),
            hls_seeks: Family::default(),
            segment_runs: Family::default(),
            sound_hits: Counter::default(),
            sound_misses: Counter::default(),
            sound_sync: std::sync::Mutex::new(()),
            segments: Family::default(),
            segment_seconds: Family::default(),
            segments_stored: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "renders",
            "Renders in progress, by state",
            m.renders_active.clone(),
        );
        registry.register(
            "renders_finished",
            "Renders that ended, by outcome",
            m.renders_finished.clone(),
        );
        registry.register(
            "upload_attempts",
            "Upload attempts, by destination type and outcome (done, retry, failed)",
            m.upload_attempts.clone(),
        );
        registry.register(
            "callbacks",
            "Shotstack callbacks, by outcome (delivered, refused, failed)",
            m.callbacks.clone(),
        );
        registry.register(
            "hls_seeks",
            "HLS segments asked for ahead of their render, by outcome (rendered alone, joined one being rendered)",
            m.hls_seeks.clone(),
        );
        registry.register(
            "segment_runs",
            "Runs of segments of parallel renders over the cluster, by side (remote: rendered by another node for this one; fallback: asked, not delivered, so rendered here unless the render ended; taken: taken to render for another node; served: rendered here for another node)",
            m.segment_runs.clone(),
        );
        registry.register(
            "renders_started",
            "Renders started, by reason (viewer, prerender, resumed)",
            m.renders_started.clone(),
        );
        registry.register(
            "render_seconds",
            "Wall time of a render from start to last byte",
            m.render_seconds.clone(),
        );
        registry.register(
            "time_to_first_byte_seconds",
            "From a cold GET to the first byte of its render",
            m.first_byte_seconds.clone(),
        );
        registry.register(
            "cache_hits",
            "GETs answered from the render cache",
            m.cache_hits.clone(),
        );
        registry.register(
            "cache_misses",
            "GETs that started a render",
            m.cache_misses.clone(),
        );
        registry.register(
            "cache_bytes_served",
            "Bytes sent from the render cache",
            m.cache_bytes.clone(),
        );
        registry.register(
            "cache_size_bytes",
            "Bytes of the renders in the render cache",
            m.cache_size.clone(),
        );
        registry.register(
            "cache_entries",
            "Renders in the render cache",
            m.cache_entries.clone(),
        );
        registry.register(
            "fetch_errors",
            "Renders failed because a source could not be fetched",
            m.fetch_errors.clone(),
        );
        registry.register(
            "sound_cache_hits",
            "Renders whose encoded sound an earlier render of the same sound gave",
            m.sound_hits.clone(),
        );
        registry.register(
            "sound_cache_misses",
            "Renders that mixed and encoded their sound",
            m.sound_misses.clone(),
        );
        registry.register(
            "segments",
            "Segments of MP4 renders, by outcome (rendered, reused from the segment cache)",
            m.segments.clone(),
        );
        registry.register(
            "segment_seconds",
            "Seconds of video in segments, by outcome (rendered, reused)",
            m.segment_seconds.clone(),
        );
        registry.register(
            "segments_stored",
            "Segments written to the durable segment cache in the data directory",
            m.segments_stored.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn render(&self) -> String {
        let _one = self.sound_sync.lock().unwrap_or_else(|p| p.into_inner());
        let (hits, misses) = clipstream_actors::sound_cache::shared().counts();
        for (counter, now) in [(&self.sound_hits, hits), (&self.sound_misses, misses)] {
            counter.inc_by(now.saturating_sub(counter.get()));
        }
        let tally = clipstream_actors::segments::shared().counts();
        for (outcome, count, secs) in [
            ("rendered", tally.rendered, tally.rendered_secs),
            ("reused", tally.reused, tally.reused_secs),
        ] {
            let labels = vec![("outcome", outcome)];
            let counter = self.segments.get_or_create(&labels);
            counter.inc_by(count.saturating_sub(counter.get()));
            let seconds = self.segment_seconds.get_or_create(&labels);
            let more = secs - seconds.get();
            if more > 0.0 {
                seconds.inc_by(more);
            }
        }
        let stored = crate::segment_store::stored();
        self.segments_stored
            .inc_by(stored.saturating_sub(self.segments_stored.get()));
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
