//! The compositor actor: runs [`crate::engine::timeline::Compositor`] on a
//! blocking thread (FFmpeg work must not stall the async runtime) and the
//! encoders on a second one, so that composing a frame overlaps encoding
//! the one before; hands each batch of packets to the muxer, waiting for
//! it to be taken so that at most one small batch is ever in flight.
//! Queues between the three are short: a render holds a few frames at most.
//!
//! No actor can interrupt a blocking thread, so the compositing loop looks
//! at the render's stop flag between two frames: raised when the render
//! settles (a cancellation, a failure elsewhere) or when this actor ends,
//! however it ends. Both threads are joined before the loop's thread ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

use crate::engine::compose::Frame;
use crate::engine::media::MediaError;
use crate::engine::output::chunked_audio::{first_packet_at, ChunkedAudio, SoundChunks};
use crate::engine::output::{self, Packets, Stream};
use crate::engine::plan::Plan;
use crate::engine::timeline::{Composed, Compositor, SourceLimits, Sources};
use crate::faults::{Fault, Stage};
use crate::muxer::MuxMsg;
use crate::render::{Publish, RenderError};
use crate::segments::{self, Segment, Segmenting};
use crate::sound_cache::{self, Key, Released, Sound as CachedSound};

/// Composed frames waiting for the encoder.
const FRAME_QUEUE: usize = 2;
/// Packet batches waiting for the muxer.
const MUX_QUEUE: usize = 2;

pub struct CompositorActor;

pub struct CompositorArgs {
    pub plan: Plan,
    /// A frame to encode as a keyframe: where the first fragment ends.
    pub forced_key: Option<i64>,
    /// Rendered in segments (MP4 only), reusing cached ones.
    pub segments: Option<Segmenting>,
    pub sources: Sources,
    pub limits: SourceLimits,
    pub muxer: ActorRef<MuxMsg>,
    pub publish: Arc<dyn Publish>,
    /// The render's stop flag: the compositing loop ends when it is up.
    pub stop: Arc<AtomicBool>,
    pub fault: Fault,
}

/// Raises the stop flag when dropped: when this actor's work ends, or
/// when the actor is killed in the middle of it (its future is dropped).
struct RaiseOnDrop(Arc<AtomicBool>);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Actor for CompositorActor {
    type Msg = ();
    type State = Option<CompositorArgs>;
    type Arguments = CompositorArgs;

    async fn pre_start(
        &self,
        _: ActorRef<()>,
        args: CompositorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(Some(args))
    }

    async fn post_start(
        &self,
        myself: ActorRef<()>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some(args) = state.take() else {
            return Ok(());
        };
        let _stop_worker = RaiseOnDrop(args.stop.clone());
        let (tx, mut rx) = mpsc::channel::<MuxMsg>(MUX_QUEUE);
        let publish = args.publish.clone();
        let stop = args.stop.clone();
        let worker = tokio::task::spawn_blocking(move || -> Result<(), RenderError> {
            let run = match &args.segments {
                Some(segmenting) => Run::Segments(segmenting),
                None => Run::Whole,
            };
            compose_and_encode(
                args.plan,
                &args.sources,
                args.limits,
                args.forced_key,
                run,
                Control {
                    tx: &tx,
                    publish: publish.as_ref(),
                    publish_arc: &publish,
                    stop: &stop,
                    fault: args.fault,
                },
            )
        });
        while let Some(msg) = rx.recv().await {
            // Waiting for each batch to be muxed keeps memory bounded.
            args.muxer
                .call(|reply| MuxMsg::Deliver(Box::new(msg), reply), None)
                .await
                .map_err(|e| RenderError::Internal(e.to_string()))?;
        }
        match worker.await {
            Ok(Ok(())) => {
                myself.stop(None);
                Ok(())
            }
            Ok(Err(e)) => Err(Box::new(e)),
            // A panic in FFmpeg glue or compositing: this render only.
            Err(join) => Err(Box::new(RenderError::Internal(format!(
                "the compositor panicked: {join}"
            )))),
        }
    }
}

fn media(e: MediaError) -> RenderError {
    RenderError::Media(e.to_string())
}

enum ToEncoder {
    Frame(Composed),
    /// The frames that follow are segment `.0`'s, kept under `.1`.
    Begin(Segment, Option<segments::Key>),
    /// A segment's video encoded already: from the cache, or by a worker
    /// of this render (`true`); the sound of its frames follows as
    /// [`ToEncoder::Audio`].
    Reused(Segment, segments::Packets, bool),
    /// The sound of frame `index`, whose picture is not encoded here.
    Audio {
        index: i64,
        samples: Vec<f32>,
    },
    /// Run once the packets of everything sent before are on their way to
    /// the muxer (in its queue).
    Then(Box<dyn FnOnce() + Send>),
    /// Every frame was composed: flush and end the stream. A queue that
    /// closes without it means the render failed, and nothing is ended.
    End,
}

/// Where a render's sound packets come from.
enum Sound {
    /// Mixed and encoded here; kept in the cache (under `key`) once every
    /// packet is out.
    Encoded {
        key: Option<Key>,
        packets: Vec<Released>,
    },
    /// Encoded by an earlier render of the same sound, each packet handed
    /// out after the frame it was first handed out after; `next` is the
    /// first not handed out yet.
    Cached { packets: CachedSound, next: usize },
}

impl Sound {
    /// The sound of `plan` encoded in `chunks`: cut otherwise, it is other
    /// packets, kept under another key.
    fn for_plan(plan: &Plan, sources: &Sources, chunks: &SoundChunks) -> Sound {
        // Formats without sound (GIF, stills) have nothing to keep.
        let key = plan
            .output
            .format
            .has_audio()
            .then(|| sound_cache::key(plan, sources))
            .flatten()
            .map(|k| {
                let mut h = blake3::Hasher::new();
                h.update(&k);
                for s in chunks.starts() {
                    h.update(&s.to_le_bytes());
                }
                *h.finalize().as_bytes()
            });
        match key.and_then(|k| sound_cache::shared().get(&k)) {
            Some(packets) => Sound::Cached { packets, next: 0 },
            None => Sound::Encoded {
                key,
                packets: Vec::new(),
            },
        }
    }

    /// Adds to `out` the sound packets ready after frame `index`: `mix`
    /// (the frame's sound) encoded, or those of the cached sound.
    fn packets(
        &mut self,
        encoder: &mut dyn output::Encode,
        mix: &[f32],
        index: i64,
        out: &mut Packets,
    ) -> Result<(), RenderError> {
        match self {
            Sound::Encoded { key, packets } => {
                let encoded = encoder.audio(mix).map_err(media)?;
                if key.is_some() {
                    packets.extend(encoded.iter().map(|(_, p)| Released {
                        after_frame: index,
                        packet: p.clone(),
                    }));
                }
                out.extend(encoded);
            }
            Sound::Cached { packets, next } => {
                let ready = packets[*next..]
                    .iter()
                    .take_while(|r| r.after_frame <= index);
                let before = out.len();
                out.extend(ready.map(|r| (Stream::Audio, r.packet.clone())));
                *next += out.len() - before;
            }
        }
        Ok(())
    }

    /// At the end of the stream, with the encoders' last packets in `out`:
    /// the rest of a cached sound goes out (the audio encoder, fed
    /// nothing, flushed nothing), or the encoded sound is kept.
    fn finish(self, out: &mut Packets) {
        match self {
            Sound::Encoded { key, mut packets } => {
                if let Some(key) = key {
                    // The encoders' flush: after the last frame, after
                    // the pictures' flush (`Encode::finish`'s order).
                    packets.extend(out.iter().filter(|(s, _)| *s == Stream::Audio).map(
                        |(_, p)| Released {
                            after_frame: i64::MAX,
                            packet: p.clone(),
                        },
                    ));
                    sound_cache::shared().put(key, packets);
                }
            }
            Sound::Cached { packets, next } => {
                out.retain(|(s, _)| *s != Stream::Audio);
                out.extend(
                    packets[next..]
                        .iter()
                        .map(|r| (Stream::Audio, r.packet.clone())),
                );
            }
        }
    }
}

/// What the compositing thread reports to and answers to.
pub(crate) struct Control<'a> {
    pub tx: &'a mpsc::Sender<MuxMsg>,
    pub publish: &'a dyn Publish,
    /// The same publisher, for the encoding thread.
    pub publish_arc: &'a Arc<dyn Publish>,
    pub stop: &'a AtomicBool,
    pub fault: Fault,
}

/// The encoding thread, joined however the compositing loop ends: on an
/// early return or an unwind its queue closes first, so that it ends too.
struct EncoderThread {
    frames: Option<std::sync::mpsc::SyncSender<ToEncoder>>,
    thread: Option<std::thread::JoinHandle<Result<(), RenderError>>>,
}

impl EncoderThread {
    /// Hands a frame (or the end) to the encoder; false if it is gone.
    fn send(&self, msg: ToEncoder) -> bool {
        self.frames.as_ref().is_some_and(|f| f.send(msg).is_ok())
    }

    fn join(mut self) -> Result<(), RenderError> {
        self.frames = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            // A panic in encoding: this render only.
            Some(Err(_)) => Err(RenderError::Internal("the encoder panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for EncoderThread {
    fn drop(&mut self) {
        self.frames = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How a render's pictures are made.
pub(crate) enum Run<'a> {
    /// Composed and encoded in one piece.
    Whole,
    /// In segments, each from a fresh encoder, cached ones reused.
    Segments(&'a Segmenting),
}

/// The segment of the encoder thread whose frames it is encoding.
struct Open {
    segment: Segment,
    key: Option<segments::Key>,
    /// Its video packets so far, to keep in the cache.
    video: Vec<output::Encoded>,
}

/// What the encoder thread keeps of segments and reports of them.
struct SegmentLog<'a> {
    open: Option<Open>,
    frame_ticks: i64,
    fps: f64,
    publish: &'a dyn Publish,
}

impl SegmentLog<'_> {
    /// Notes the video packets of `packets` as the open segment's.
    fn note(&mut self, packets: &Packets) {
        if let Some(open) = self.open.as_mut() {
            open.video.extend(
                packets
                    .iter()
                    .filter(|(s, _)| *s == Stream::Video)
                    .map(|(_, p)| p.clone()),
            );
        }
    }

    /// Closes the open segment, whose last packets are `last`: keeps it
    /// in the cache with times counted from its first frame.
    fn close(&mut self, last: &Packets) {
        self.note(last);
        let Some(open) = self.open.take() else {
            return;
        };
        let secs = open.segment.frames as f64 / self.fps;
        if let Some(key) = open.key {
            let origin = open.segment.first * self.frame_ticks;
            let relative = open
                .video
                .into_iter()
                .map(|mut p| {
                    p.pts -= origin;
                    p.dts -= origin;
                    p
                })
                .collect();
            segments::shared().put(key, relative);
        }
        segments::shared().count(false, secs);
        self.publish.segment(false, secs);
    }

    /// An encoded segment's packets (cached, or `rendered` by a worker),
    /// re-timed to where it sits here.
    fn reused(&self, segment: Segment, packets: &[output::Encoded], rendered: bool) -> Packets {
        let origin = segment.first * self.frame_ticks;
        let secs = segment.frames as f64 / self.fps;
        segments::shared().count(!rendered, secs);
        self.publish.segment(!rendered, secs);
        packets
            .iter()
            .map(|p| {
                let mut p = p.clone();
                p.pts += origin;
                p.dts += origin;
                (Stream::Video, p)
            })
            .collect()
    }
}

pub(crate) fn compose_and_encode(
    plan: Plan,
    sources: &Sources,
    limits: SourceLimits,
    forced_key: Option<i64>,
    run: Run<'_>,
    control: Control<'_>,
) -> Result<(), RenderError> {
    let chunks = output::sound_chunks(
        &plan,
        forced_key,
        match run {
            Run::Whole => None,
            Run::Segments(s) => Some(segments::frames_per_segment(&plan, s.secs)),
        },
    );
    let mut sound = Sound::for_plan(&plan, sources, &chunks);
    let fps = plan.rate.as_f64();
    // The injected compositor fault waits for about a second of frames, or
    // the last frame of a shorter movie, so that viewers have bytes by then.
    let fault_frame = (fps.round() as i64).min((plan.duration * fps).ceil() as i64 - 1);
    let sound_cached = matches!(sound, Sound::Cached { .. });
    // Sources are opened before the encoder starts (and publishes the
    // header), so that one that cannot be decoded is an error before the
    // response starts.
    let work = match run {
        Run::Whole => {
            let mut compositor = Compositor::new(plan.clone(), sources, limits).map_err(media)?;
            if sound_cached {
                compositor = compositor.without_mix();
            }
            Work::Whole(compositor)
        }
        Run::Segments(segmenting) => Work::Segments(SegmentWork::prepare(
            &plan,
            sources,
            limits,
            forced_key,
            segmenting,
            sound_cached,
        )?),
    };
    // The encoders are opened on the thread that uses them, so that an
    // encoder restarted there (at the forced keyframe) reuses the memory of
    // the one before: with two threads, each kept its own in its malloc
    // arena, 26 MiB more per 720p render.
    let encoder_plan = plan.clone();
    let send = |tx: &mpsc::Sender<MuxMsg>, msg| {
        tx.blocking_send(msg)
            .map_err(|_| RenderError::Internal("the muxer went away".into()))
    };
    let (frames, queue) = std::sync::mpsc::sync_channel::<ToEncoder>(FRAME_QUEUE);
    let (spares, spare_frames) = std::sync::mpsc::channel::<Frame>();
    let encoder_tx = control.tx.clone();
    // The thread reports segments through the render's publisher, which
    // outlives it (both are joined before this returns).
    let publish: Arc<dyn Publish> = control.publish_arc.clone();
    let thread = std::thread::Builder::new()
        .name("clipstream-encode".into())
        .spawn(move || -> Result<(), RenderError> {
            let mut encoder = output::encoder(&encoder_plan).map_err(media)?;
            encoder.sound_in_chunks(chunks).map_err(media)?;
            let streams = encoder.streams();
            let mut log = SegmentLog {
                open: None,
                frame_ticks: streams.video.as_ref().map_or(1, |v| v.frame_ticks),
                fps: encoder_plan.rate.as_f64(),
                publish: publish.as_ref(),
            };
            send(&encoder_tx, MuxMsg::Start(streams))?;
            while let Ok(msg) = queue.recv() {
                let packets = match msg {
                    ToEncoder::Frame(composed) => {
                        let key = forced_key == Some(composed.index);
                        let mut packets = encoder
                            .video(composed.frame, composed.index, key, &spares)
                            .map_err(media)?;
                        log.note(&packets);
                        // The sound up to the end of this frame.
                        sound.packets(
                            encoder.as_mut(),
                            &composed.audio,
                            composed.index,
                            &mut packets,
                        )?;
                        packets
                    }
                    ToEncoder::Audio { index, samples } => {
                        let mut packets = Vec::new();
                        sound.packets(encoder.as_mut(), &samples, index, &mut packets)?;
                        packets
                    }
                    ToEncoder::Begin(segment, key) => {
                        let mut packets = Vec::new();
                        if log.open.is_some() {
                            packets = encoder.cut().map_err(media)?;
                            log.close(&packets);
                        }
                        log.open = Some(Open {
                            segment,
                            key,
                            video: Vec::new(),
                        });
                        packets
                    }
                    ToEncoder::Reused(segment, cached, by_worker) => {
                        let mut packets = Vec::new();
                        if log.open.is_some() {
                            packets = encoder.cut().map_err(media)?;
                            log.close(&packets);
                        }
                        packets.extend(log.reused(segment, &cached, by_worker));
                        packets
                    }
                    ToEncoder::Then(then) => {
                        then();
                        Vec::new()
                    }
                    ToEncoder::End => {
                        let mut packets = encoder.finish().map_err(media)?;
                        log.close(&packets);
                        sound.finish(&mut packets);
                        send(&encoder_tx, MuxMsg::Packets(packets))?;
                        return send(&encoder_tx, MuxMsg::End);
                    }
                };
                if !packets.is_empty() {
                    send(&encoder_tx, MuxMsg::Packets(packets))?;
                }
            }
            Err(RenderError::Internal(
                "the render stopped before its end".into(),
            ))
        })
        .map_err(|e| RenderError::Internal(format!("no encoder thread: {e}")))?;
    let encoder = EncoderThread {
        frames: Some(frames),
        thread: Some(thread),
    };
    let composed = match work {
        Work::Whole(compositor) => {
            compose_whole(compositor, fault_frame, &encoder, &spare_frames, &control)
        }
        Work::Segments(work) => work.run(
            &plan,
            sources,
            limits,
            fault_frame,
            &encoder,
            &spare_frames,
            &control,
        ),
    };
    let encoded = encoder.join();
    composed.and(encoded)
}

/// Composes every frame of the plan in one piece.
fn compose_whole(
    mut compositor: Compositor,
    fault_frame: i64,
    encoder: &EncoderThread,
    spare_frames: &std::sync::mpsc::Receiver<Frame>,
    control: &Control<'_>,
) -> Result<(), RenderError> {
    let mut last = 0.0;
    loop {
        if control.stop.load(Ordering::Acquire) {
            return Err(RenderError::Internal("the render was stopped".into()));
        }
        let spare = spare_frames.try_recv().ok();
        match compositor.next(spare) {
            Ok(Some(c)) => {
                if c.index >= fault_frame {
                    control.fault.panic_at(Stage::Compositor);
                }
                let (done, total) = compositor.progress();
                if done - last >= 0.25 {
                    control.publish.progress((done / total).min(1.0));
                    last = done;
                }
                if !encoder.send(ToEncoder::Frame(c)) {
                    // The encoder failed: its error is the render's.
                    return Ok(());
                }
            }
            Ok(None) => {
                encoder.send(ToEncoder::End);
                return Ok(());
            }
            Err(e) => return Err(media(e)),
        }
    }
}

/// What the compositing thread composes, opened before any byte leaves.
enum Work {
    Whole(Compositor),
    Segments(SegmentWork),
}

/// Runs of segments to render opened before the render starts, at most:
/// enough for a template's personalised windows; later runs open when
/// they are reached.
const OPENED_RUNS: usize = 4;

/// A render in segments: which are cached, and compositors for the runs
/// of those that are not.
struct SegmentWork {
    list: Vec<Segment>,
    keys: Vec<Option<segments::Key>>,
    /// Taken from the cache at the start and held: a segment the cache
    /// drops meanwhile is still reused by this render.
    found: Vec<Option<segments::Packets>>,
    /// The sound is mixed over the whole timeline by a compositor of its
    /// own, whatever segments are reused, so it is the same mix (and the
    /// same packets) either way. `None` when the encoded sound is cached.
    mixer: Option<Compositor>,
    /// Each run of segments to render: its first and past-the-end
    /// segment, and its compositor if opened already.
    runs: Vec<(usize, usize, Option<Compositor>)>,
    forced_key: Option<i64>,
    /// Segments rendered at once by workers; 1: by this thread, in order.
    workers: usize,
    /// Other machines rendering runs too (besides the workers).
    remote: Option<segments::Remote>,
}

impl SegmentWork {
    fn prepare(
        plan: &Plan,
        sources: &Sources,
        limits: SourceLimits,
        forced_key: Option<i64>,
        segmenting: &Segmenting,
        sound_cached: bool,
    ) -> Result<SegmentWork, RenderError> {
        let list = segments::split(plan, segments::frames_per_segment(plan, segmenting.secs));
        let keys = segments::keys(plan, sources, &list, forced_key, &segmenting.scope);
        let found: Vec<Option<segments::Packets>> = keys
            .iter()
            .map(|k| k.and_then(|k| segments::shared().get(&k)))
            .collect();
        let mixer = if sound_cached {
            None
        } else {
            Some(Compositor::sound_only(plan, sources).map_err(media)?)
        };
        let mut runs = Vec::new();
        let mut i = 0;
        while i < list.len() {
            if found[i].is_some() {
                i += 1;
                continue;
            }
            let end = (i..list.len())
                .find(|&j| found[j].is_some())
                .unwrap_or(list.len());
            // With workers, each opens its own.
            let compositor = if segmenting.workers > 1 || segmenting.remote.is_some() {
                None
            } else if runs.len() < OPENED_RUNS {
                Some(open_run(plan, sources, limits, &list[i..end])?)
            } else {
                None
            };
            runs.push((i, end, compositor));
            i = end;
        }
        // A window opens only the layers it shows, so the sources of runs
        // not opened yet are checked here, before any byte: a window of
        // each (each layer's first picture; a clip already playing there
        // from a seek), closed again.
        for (from, to, _) in runs.iter().filter(|(_, _, c)| c.is_none()) {
            open_run(plan, sources, limits, &list[*from..*to])?;
        }
        Ok(SegmentWork {
            list,
            keys,
            found,
            mixer,
            runs,
            forced_key,
            workers: segmenting.workers.max(1),
            remote: segmenting.remote.clone().filter(|r| r.claimers > 0),
        })
    }

    /// The sound of frame `index` (nothing when the encoded sound is
    /// cached).
    fn mix(&mut self, index: i64) -> Result<Vec<f32>, RenderError> {
        let Some(mixer) = self.mixer.as_mut() else {
            return Ok(Vec::new());
        };
        match mixer.next(None).map_err(media)? {
            Some(c) if c.index == index => Ok(c.audio),
            _ => Err(RenderError::Internal(format!(
                "the sound of frame {index} was not mixed in order"
            ))),
        }
    }

    /// Composes the plan segment by segment: a cached segment is not
    /// composed (only its sound is mixed), each run of the others is
    /// composed from a seek to its start.
    #[allow(clippy::too_many_arguments)]
    fn run(
        mut self,
        plan: &Plan,
        sources: &Sources,
        limits: SourceLimits,
        fault_frame: i64,
        encoder: &EncoderThread,
        spare_frames: &std::sync::mpsc::Receiver<Frame>,
        control: &Control<'_>,
    ) -> Result<(), RenderError> {
        let fps = plan.rate.as_f64();
        let total = plan.duration.max(f64::EPSILON);
        let progress = |frame: i64| {
            control
                .publish
                .progress((frame as f64 / fps / total).min(1.0))
        };
        if (self.workers > 1 || self.remote.is_some()) && self.found.iter().any(Option::is_none) {
            return self.run_parallel(
                plan,
                sources,
                limits,
                fault_frame,
                encoder,
                spare_frames,
                control,
            );
        }
        let mut runs = std::mem::take(&mut self.runs).into_iter().peekable();
        let mut i = 0;
        while i < self.list.len() {
            if let Some(cached) = self.found[i].clone() {
                let segment = self.list[i];
                if !self.hand_over(segment, cached, false, encoder, control)? {
                    return Ok(());
                }
                progress(segment.first + segment.frames);
                i += 1;
                continue;
            }
            let Some((from, end, opened)) = runs.next().filter(|(from, _, _)| *from == i) else {
                return Err(RenderError::Internal(format!(
                    "segment {i} is neither cached nor in a run"
                )));
            };
            let mut compositor = opened;
            for j in from..end {
                let segment = self.list[j];
                // Rendered meanwhile, out of order (an HLS player seeking
                // ahead): reused like any cached segment, and the pictures
                // after it composed from a seek past it.
                if let Some(cached) = self.keys[j].and_then(|k| segments::shared().get(&k)) {
                    compositor = None;
                    if !self.hand_over(segment, cached, false, encoder, control)? {
                        return Ok(());
                    }
                    progress(segment.first + segment.frames);
                    continue;
                }
                let compositor = match compositor.as_mut() {
                    Some(c) => c,
                    None => compositor.insert(open_run(plan, sources, limits, &self.list[j..end])?),
                };
                let key = self.keys[j];
                let sent = self.compose_segment(
                    compositor,
                    segment,
                    key,
                    encoder,
                    spare_frames,
                    control,
                    fault_frame,
                    None,
                )?;
                if !sent {
                    // The encoder failed: its error is the render's.
                    return Ok(());
                }
                progress(segment.first + segment.frames);
            }
            i = end;
        }
        encoder.send(ToEncoder::End);
        Ok(())
    }
}

/// Seconds of consecutive segments a worker claims at once, composed by
/// one compositor: each claim opens its sources from a seek, which decodes
/// from the keyframe before it (seconds of a source's pictures thrown
/// away), so a claim per 2 s segment cost a third more CPU.
const CLAIM_SECS: f64 = 10.0;

/// Encoded segments held ahead of the one being streamed, at most, however
/// many workers (about a minute of video at 2 s segments).
const MAX_AHEAD: usize = 32;

/// The segments workers render, and what they rendered.
struct Pool {
    /// Segments to render, in order.
    todo: Vec<usize>,
    state: Mutex<PoolState>,
    changed: Condvar,
    /// The render ended: read at every frame a worker composes, so that a
    /// failed render does not wait for the workers' claims to finish.
    quit: AtomicBool,
}

#[derive(Default)]
struct PoolState {
    /// The next of `todo` to hand out.
    next: usize,
    /// The segment the render waits for; workers stay close to it.
    needed: usize,
    /// Each segment's packets, and whether a worker rendered them
    /// (false: found in the cache when its turn came).
    done: HashMap<usize, Result<(segments::Packets, bool), RenderError>>,
    /// The render ended (done, failed or stopped): workers stop.
    over: bool,
    /// Workers wait while this thread composes the render's short first
    /// fragment (the lead is segment 0): it reaches the viewer sooner
    /// without them on the cores.
    held: bool,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next consecutive segments for a worker (at most `most`), when
    /// fewer than `ahead` segments to render lie between the one waited
    /// for and the claim's first (so at most `ahead + most - 1` encoded
    /// segments are held); `None` when there is nothing left or the
    /// render ended.
    fn claim(&self, most: usize, ahead: usize, stop: &AtomicBool) -> Option<Vec<usize>> {
        let mut state = self.lock();
        loop {
            if state.over || stop.load(Ordering::Acquire) || state.next >= self.todo.len() {
                return None;
            }
            let needed = state.needed;
            if state.held {
                state = self
                    .changed
                    .wait_timeout(state, std::time::Duration::from_millis(100))
                    .map(|(s, _)| s)
                    .unwrap_or_else(|p| p.into_inner().0);
                continue;
            }
            let waited = self.todo.partition_point(|&s| s < needed);
            if state.next < waited + ahead {
                let first = self.todo[state.next];
                let run: Vec<usize> = self.todo[state.next..]
                    .iter()
                    .copied()
                    .enumerate()
                    .take_while(|&(n, s)| s == first + n)
                    .map(|(_, s)| s)
                    .take(most.max(1))
                    .collect();
                state.next += run.len();
                return Some(run);
            }
            // Woken when the render moves on; the timeout only rechecks
            // the stop flag, which nothing signals here.
            state = self
                .changed
                .wait_timeout(state, std::time::Duration::from_millis(100))
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    fn put(&self, segment: usize, result: Result<(segments::Packets, bool), RenderError>) {
        self.lock().done.insert(segment, result);
        self.changed.notify_all();
    }

    /// Waits for segment `i` (or the stop flag).
    fn take(&self, i: usize, stop: &AtomicBool) -> Result<(segments::Packets, bool), RenderError> {
        let mut state = self.lock();
        state.needed = i;
        self.changed.notify_all();
        loop {
            if let Some(result) = state.done.remove(&i) {
                return result;
            }
            if stop.load(Ordering::Acquire) {
                return Err(RenderError::Internal("the render was stopped".into()));
            }
            state = self
                .changed
                .wait_timeout(state, std::time::Duration::from_millis(100))
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Lets the workers start.
    fn release(&self) {
        let mut state = self.lock();
        if state.held {
            state.held = false;
            self.changed.notify_all();
        }
    }

    fn end(&self) {
        self.quit.store(true, Ordering::Release);
        let mut state = self.lock();
        state.over = true;
        state.held = false;
        drop(state);
        self.changed.notify_all();
    }
}

/// Ends the pool however the render's loop ends, so that its workers
/// stop and the scope joining them returns.
struct EndPool<'a>(&'a Pool);

impl Drop for EndPool<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

impl SegmentWork {
    /// Hands a segment encoded already (cached, or by a worker: `by_worker`)
    /// to the encoder thread, with the sound of its frames. `false`: the
    /// encoder thread has failed (its error is the render's).
    fn hand_over(
        &mut self,
        segment: Segment,
        packets: segments::Packets,
        by_worker: bool,
        encoder: &EncoderThread,
        control: &Control<'_>,
    ) -> Result<bool, RenderError> {
        if !encoder.send(ToEncoder::Reused(segment, packets, by_worker)) {
            return Ok(false);
        }
        for index in segment.first..segment.first + segment.frames {
            if control.stop.load(Ordering::Acquire) {
                return Err(RenderError::Internal("the render was stopped".into()));
            }
            let samples = self.mix(index)?;
            if !encoder.send(ToEncoder::Audio { index, samples }) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Composes `segment` here and hands its pictures to the encoder
    /// thread, which encodes it as [`SegmentWork::run`] does (and keeps it
    /// under `key`); `opened` goes to the encoder thread after the frame
    /// that flushes the render's short first fragment, or is called here
    /// at once if `segment` has none. `false`: the encoder thread has
    /// failed (its error is the render's).
    #[allow(clippy::too_many_arguments)]
    fn compose_lead(
        &mut self,
        plan: &Plan,
        sources: &Sources,
        limits: SourceLimits,
        segment: Segment,
        key: Option<segments::Key>,
        encoder: &EncoderThread,
        spare_frames: &std::sync::mpsc::Receiver<Frame>,
        control: &Control<'_>,
        fault_frame: i64,
        opened: Box<dyn FnOnce() + Send>,
    ) -> Result<bool, RenderError> {
        let mut compositor = open_run(plan, sources, limits, &[segment])?;
        // The encoder flushes the first fragment when the frame of the
        // forced keyframe reaches it.
        let then = match self
            .forced_key
            .filter(|&k| segment.first == 0 && k < segment.frames)
        {
            Some(k) => Some((segment.first + k, opened)),
            None => {
                opened();
                None
            }
        };
        self.compose_segment(
            &mut compositor,
            segment,
            key,
            encoder,
            spare_frames,
            control,
            fault_frame,
            then,
        )
    }

    /// Composes `segment`'s frames with `compositor` (at its first frame)
    /// and hands them with their sound to the encoder thread, which
    /// encodes them with a fresh encoder and keeps them under `key`;
    /// `then.1` is sent to the encoder thread after frame `then.0`.
    /// `false`: the encoder thread has failed.
    #[allow(clippy::too_many_arguments)]
    fn compose_segment(
        &mut self,
        compositor: &mut Compositor,
        segment: Segment,
        key: Option<segments::Key>,
        encoder: &EncoderThread,
        spare_frames: &std::sync::mpsc::Receiver<Frame>,
        control: &Control<'_>,
        fault_frame: i64,
        mut then: Option<(i64, Box<dyn FnOnce() + Send>)>,
    ) -> Result<bool, RenderError> {
        if !encoder.send(ToEncoder::Begin(segment, key)) {
            return Ok(false);
        }
        for index in segment.first..segment.first + segment.frames {
            if control.stop.load(Ordering::Acquire) {
                return Err(RenderError::Internal("the render was stopped".into()));
            }
            let spare = spare_frames.try_recv().ok();
            let Some(mut c) = compositor.next(spare).map_err(media)? else {
                return Err(RenderError::Internal(format!(
                    "frame {index} of segment {} was not composed",
                    segment.index
                )));
            };
            if c.index >= fault_frame {
                control.fault.panic_at(Stage::Compositor);
            }
            c.audio = self.mix(c.index)?;
            if !encoder.send(ToEncoder::Frame(c)) {
                return Ok(false);
            }
            if then.as_ref().is_some_and(|(at, _)| *at == index) {
                if let Some((_, f)) = then.take() {
                    if !encoder.send(ToEncoder::Then(f)) {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    /// [`SegmentWork::run`] with workers: each claims about [`CLAIM_SECS`]
    /// of consecutive segments, composed by one compositor from a seek to
    /// the first and each encoded by a fresh encoder, and this thread
    /// hands them to the encoder thread in order, with
    /// the sound, exactly as cached ones. The first segment to render (the
    /// lead) is composed here and encoded by the encoder thread as in
    /// [`SegmentWork::run`], so its first fragment streams while it is
    /// encoded rather than when a worker has finished the whole segment.
    #[allow(clippy::too_many_arguments)]
    fn run_parallel(
        mut self,
        plan: &Plan,
        sources: &Sources,
        limits: SourceLimits,
        fault_frame: i64,
        encoder: &EncoderThread,
        spare_frames: &std::sync::mpsc::Receiver<Frame>,
        control: &Control<'_>,
    ) -> Result<(), RenderError> {
        let fps = plan.rate.as_f64();
        let total = plan.duration.max(f64::EPSILON);
        let lead = self.found.iter().position(Option::is_none);
        // Only a render's short first fragment holds the workers back.
        let first_fragment = lead == Some(0)
            && self
                .forced_key
                .is_some_and(|k| k < self.list.first().map_or(0, |s| s.frames));
        let pool = Arc::new(Pool {
            todo: (0..self.list.len())
                .filter(|&i| self.found[i].is_none() && Some(i) != lead)
                .collect(),
            state: Mutex::new(PoolState {
                held: first_fragment,
                ..PoolState::default()
            }),
            changed: Condvar::new(),
            quit: AtomicBool::new(false),
        });
        let mut release = {
            let pool = Arc::clone(&pool);
            Some(Box::new(move || pool.release()) as Box<dyn FnOnce() + Send>)
        };
        // Claims of about CLAIM_SECS, but small enough that every worker
        // has some of a short render.
        let per = self.list.first().map_or(1, |s| s.frames.max(1));
        let remote = self.remote.clone();
        let claimers = self.workers + remote.as_ref().map_or(0, |r| r.claimers);
        let most = ((CLAIM_SECS * fps / per as f64).round() as usize)
            .clamp(1, pool.todo.len().div_ceil(claimers).max(1));
        // Encoded segments held ahead of the one streamed, at most: a claim
        // per worker, and never more than MAX_AHEAD (a slow viewer then
        // holds the workers rather than memory).
        let ahead = (claimers * most).min(MAX_AHEAD.max(most));
        let (list, keys, forced_key) = (&self.list.clone(), &self.keys.clone(), self.forced_key);
        let stopped = || control.stop.load(Ordering::Acquire) || pool.quit.load(Ordering::Acquire);
        // Renders a claimed run here, handing each segment to the pool as
        // it is done; the render stops at the first segment it lacks.
        let render_here = |run: &[usize]| {
            let Some(&first) = run.first() else {
                return;
            };
            let mut done = first;
            let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                render_run(
                    plan,
                    sources,
                    limits,
                    &list[first..first + run.len()],
                    &keys[first..first + run.len()],
                    forced_key,
                    &stopped,
                    false,
                    &mut |n, packets, by_worker| {
                        done = first + n + 1;
                        pool.put(first + n, Ok((packets, by_worker)));
                    },
                )
            }))
            .unwrap_or_else(|_| {
                Err(RenderError::Internal(format!(
                    "the worker of segment {done} panicked"
                )))
            });
            if let Err(e) = rendered {
                pool.put(done, Err(e));
            }
        };
        std::thread::scope(|scope| -> Result<(), RenderError> {
            let pool = &*pool;
            let _end = EndPool(pool);
            let (render_here, stopped) = (&render_here, &stopped);
            for n in 0..self.workers.min(pool.todo.len()) {
                std::thread::Builder::new()
                    .name(format!("clipstream-segment-{n}"))
                    .spawn_scoped(scope, move || {
                        while let Some(run) = pool.claim(most, ahead, control.stop) {
                            render_here(&run);
                        }
                    })
                    .map_err(|e| RenderError::Internal(format!("no segment worker: {e}")))?;
            }
            // Remote claimers claim runs as the workers do, but ask another
            // machine to render each; a run no machine delivers is
            // rendered here after all, so a machine's failure costs time,
            // never the render.
            if let Some(remote) = remote.as_ref() {
                let room = pool.todo.len().saturating_sub(self.workers);
                for n in 0..remote.claimers.min(room) {
                    let runs = remote.runs.as_ref();
                    std::thread::Builder::new()
                        .name(format!("clipstream-remote-{n}"))
                        .spawn_scoped(scope, move || {
                            while let Some(run) = pool.claim(most, ahead, control.stop) {
                                if !render_remotely(runs, pool, list, keys, &run, fps, stopped) {
                                    render_here(&run);
                                }
                            }
                        })
                        .map_err(|e| RenderError::Internal(format!("no remote claimer: {e}")))?;
                }
            }
            for (i, &segment) in list.iter().enumerate() {
                // The lead, unless an HLS seek rendered it meanwhile (then
                // it is reused like any cached segment).
                let meanwhile = if Some(i) == lead {
                    keys[i].and_then(|k| segments::shared().get(&k))
                } else {
                    None
                };
                if Some(i) == lead {
                    if meanwhile.is_none() {
                        let go_on = self.compose_lead(
                            plan,
                            sources,
                            limits,
                            segment,
                            keys[i],
                            encoder,
                            spare_frames,
                            control,
                            fault_frame,
                            release.take().unwrap_or_else(|| Box::new(|| ())),
                        )?;
                        if !go_on {
                            return Ok(());
                        }
                        pool.release();
                        control.publish.progress(
                            ((segment.first + segment.frames) as f64 / fps / total).min(1.0),
                        );
                        continue;
                    }
                    pool.release();
                }
                let (packets, by_worker) = match self.found[i].clone().or(meanwhile) {
                    Some(cached) => (cached, false),
                    None => pool.take(i, control.stop)?,
                };
                if !self.hand_over(segment, packets, by_worker, encoder, control)? {
                    return Ok(());
                }
                control
                    .publish
                    .progress(((segment.first + segment.frames) as f64 / fps / total).min(1.0));
            }
            encoder.send(ToEncoder::End);
            Ok(())
        })
    }
}

/// How often a run asked of another machine is looked at.
const REMOTE_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// A run no machine has taken within this is rendered here: the others
/// are busy (or there are none).
const REMOTE_UNTAKEN: std::time::Duration = std::time::Duration::from_secs(2);

/// A run asked of another machine is waited for this many times its
/// length in video seconds, and at least [`REMOTE_LEAST_SECS`]: far
/// longer than a machine that works takes, so only one that is stuck (its
/// lease renewed, its render not moving) costs the wait.
const REMOTE_PATIENCE: f64 = 10.0;
const REMOTE_LEAST_SECS: f64 = 30.0;

/// Has another machine render segments `run` and hands them to the pool
/// as rendered here; `false` when none delivered them (the render was
/// stopped, nobody took the run in time, its machine failed or died, or
/// a segment cannot be shared: its key is unknown), and the caller renders
/// them here.
fn render_remotely(
    remote: &dyn segments::RemoteRuns,
    pool: &Pool,
    list: &[Segment],
    keys: &[Option<segments::Key>],
    run: &[usize],
    fps: f64,
    stopped: &dyn Fn() -> bool,
) -> bool {
    let (Some(&first), Some(&last)) = (run.first(), run.last()) else {
        return false;
    };
    let Some(wanted) = keys
        .get(first..=last)
        .and_then(|k| k.iter().copied().collect::<Option<Vec<segments::Key>>>())
    else {
        return false;
    };
    if stopped() {
        return false;
    }
    let Some(mut asked) = remote.ask(first, run.len()) else {
        return false;
    };
    let frames: i64 = list[first..=last].iter().map(|s| s.frames).sum();
    let limit = std::time::Duration::from_secs_f64(
        (frames as f64 / fps.max(1.0) * REMOTE_PATIENCE).max(REMOTE_LEAST_SECS),
    );
    let asked_at = std::time::Instant::now();
    let mut taken = false;
    let delivered = loop {
        if stopped() {
            break None;
        }
        // The state before the segments: a run that ended before this
        // look stored its segments before it ended, so they are seen
        // below.
        let state = asked.state();
        if let Some(packets) = stored_run(&wanted) {
            break Some(packets);
        }
        match state {
            segments::RunState::Gone => break None,
            segments::RunState::Taken => taken = true,
            segments::RunState::Queued if !taken && asked_at.elapsed() >= REMOTE_UNTAKEN => {
                break None
            }
            segments::RunState::Queued => {}
        }
        if asked_at.elapsed() >= limit {
            break None;
        }
        std::thread::sleep(REMOTE_POLL);
    };
    asked.end(delivered.is_some());
    let Some(packets) = delivered else {
        return false;
    };
    for (n, packets) in packets.into_iter().enumerate() {
        pool.put(first + n, Ok((packets, true)));
    }
    true
}

/// Every segment of `keys` from the segment cache (over the store the
/// machines share), once the last is there: a run's segments are kept in
/// order.
fn stored_run(keys: &[segments::Key]) -> Option<Vec<segments::Packets>> {
    let cache = segments::shared();
    cache.get(keys.last()?)?;
    keys.iter().map(|k| cache.get(k)).collect()
}

/// Composes the consecutive segments of `run` with one compositor and
/// encodes each with a fresh encoder (as [`render_one`]), handing each to
/// `done` with its index in `run` (and whether it was rendered: one
/// rendered meanwhile, out of order, is taken from the cache). `durable`:
/// each is in the store before it is handed on, whatever its size
/// (another machine waits for it); an error if the store does not keep it.
#[allow(clippy::too_many_arguments)]
fn render_run(
    plan: &Plan,
    sources: &Sources,
    limits: SourceLimits,
    run: &[Segment],
    keys: &[Option<segments::Key>],
    forced_key: Option<i64>,
    stopped: &dyn Fn() -> bool,
    durable: bool,
    done: &mut dyn FnMut(usize, segments::Packets, bool),
) -> Result<(), RenderError> {
    let not_kept = |segment: &Segment| {
        RenderError::Internal(format!(
            "segment {} could not be kept in the segment store",
            segment.index
        ))
    };
    let mut compositor: Option<Compositor> = None;
    for (n, &segment) in run.iter().enumerate() {
        let key = keys.get(n).copied().flatten();
        if let Some(cached) = key.and_then(|k| segments::shared().get(&k)) {
            // Found in memory, it may not be in the store (too large for
            // it, or its write still under way).
            if durable {
                let kept = key.is_some_and(|k| segments::shared().keep(k, cached.to_vec()));
                if !kept {
                    return Err(not_kept(&segment));
                }
            }
            // The pictures after it are composed from a seek past it.
            compositor = None;
            done(n, cached, false);
            continue;
        }
        let compositor = match compositor.as_mut() {
            Some(c) => c,
            None => compositor.insert(open_run(plan, sources, limits, &run[n..])?),
        };
        let packets = encode_segment(compositor, plan, segment, forced_key, stopped)?;
        match key {
            Some(k) if durable && segments::shared().keep(k, packets.clone()) => {}
            Some(k) if !durable => segments::shared().put(k, packets.clone()),
            None if !durable => {}
            _ => return Err(not_kept(&segment)),
        }
        done(n, Arc::new(packets), true);
    }
    Ok(())
}

/// Renders segments `first..first + count` of an MP4 plan for another
/// machine's render of it (see [`segments::RemoteRuns`]): composed and
/// encoded exactly as that render's own workers would (the same cut, the
/// same forced keyframe, the same encoder settings: the same bytes), each
/// kept in the segment store before this returns. Returns how many were
/// rendered (the others were in the cache already).
pub fn render_segments(
    plan: &Plan,
    sources: &Sources,
    limits: SourceLimits,
    fragments: output::Fragments,
    segmenting: &Segmenting,
    first: usize,
    count: usize,
) -> Result<usize, RenderError> {
    let per = segments::frames_per_segment(plan, segmenting.secs);
    let list = segments::split(plan, per);
    let run = first
        .checked_add(count)
        .filter(|end| count > 0 && *end <= list.len())
        .map(|end| &list[first..end])
        .ok_or_else(|| {
            RenderError::Internal(format!(
                "the render has no segments {first}..{}",
                first.saturating_add(count)
            ))
        })?;
    // As the render's own (see the supervisor): a short first fragment
    // longer than a segment is not cut.
    let forced_key = fragments
        .forced_key(plan.rate.as_f64())
        .filter(|k| *k < per);
    let keys = segments::keys(plan, sources, run, forced_key, &segmenting.scope);
    let fps = plan.rate.as_f64();
    let mut rendered = 0;
    render_run(
        plan,
        sources,
        limits,
        run,
        &keys,
        forced_key,
        &|| false,
        true,
        &mut |n, _, by_worker| {
            if by_worker {
                rendered += 1;
                let secs = run.get(n).map_or(0.0, |s| s.frames as f64 / fps);
                segments::shared().count(false, secs);
            }
        },
    )?;
    Ok(rendered)
}

/// Composes and encodes one segment on its own, as the render's encoder
/// thread would (a fresh encoder, a restart at the forced keyframe, the
/// flush at the end): its video packets, timed from its first frame.
fn render_one(
    plan: &Plan,
    sources: &Sources,
    limits: SourceLimits,
    segment: Segment,
    forced_key: Option<i64>,
    stopped: &dyn Fn() -> bool,
) -> Result<Vec<output::Encoded>, RenderError> {
    let mut compositor = open_run(plan, sources, limits, &[segment])?;
    encode_segment(&mut compositor, plan, segment, forced_key, stopped)
}

/// Encodes `segment` with a fresh encoder, its pictures composed by
/// `compositor` (at the segment's first frame): its video packets, timed
/// from its first frame.
fn encode_segment(
    compositor: &mut Compositor,
    plan: &Plan,
    segment: Segment,
    forced_key: Option<i64>,
    stopped: &dyn Fn() -> bool,
) -> Result<Vec<output::Encoded>, RenderError> {
    let mut encoder = output::encoder(plan).map_err(media)?;
    let ticks = encoder.streams().video.map_or(1, |v| v.frame_ticks);
    let (spares, spare_frames) = std::sync::mpsc::channel::<Frame>();
    let mut video = Vec::new();
    let mut keep = |packets: Packets| {
        video.extend(
            packets
                .into_iter()
                .filter(|(s, _)| *s == Stream::Video)
                .map(|(_, p)| p),
        );
    };
    for index in segment.first..segment.first + segment.frames {
        if stopped() {
            return Err(RenderError::Internal("the render was stopped".into()));
        }
        let Some(c) = compositor
            .next(spare_frames.try_recv().ok())
            .map_err(media)?
        else {
            return Err(RenderError::Internal(format!(
                "frame {index} of segment {} was not composed",
                segment.index
            )));
        };
        let key = forced_key == Some(c.index);
        keep(
            encoder
                .video(c.frame, c.index, key, &spares)
                .map_err(media)?,
        );
    }
    keep(encoder.finish().map_err(media)?);
    let origin = segment.first * ticks;
    for p in &mut video {
        p.pts -= origin;
        p.dts -= origin;
    }
    Ok(video)
}

/// A compositor of the pictures of `run` (consecutive segments).
fn open_run(
    plan: &Plan,
    sources: &Sources,
    limits: SourceLimits,
    run: &[Segment],
) -> Result<Compositor, RenderError> {
    let first = run.first().map_or(0, |s| s.first);
    let count = run.iter().map(|s| s.frames).sum();
    Ok(
        Compositor::window(plan.clone(), sources, limits, first, Some(count))
            .map_err(media)?
            .without_mix(),
    )
}

/// Renders segment `n` of an MP4 plan on its own, out of order (a player
/// seeking into an HLS stream before the render got there): its bytes
/// are exactly the whole file's for that segment, since a fragment there
/// depends only on the segment's video (rendered here, or taken from the
/// segment cache, and kept there for the render that follows) and on the
/// sound's packets in its window (the sound cache's, or the sound chunks
/// of its fragments, each encoded by a fresh encoder from the timeline's
/// mix, which is made from the start: see
/// [`crate::engine::output::chunked_audio`]).
pub fn segment_alone(
    plan: &Plan,
    sources: &Sources,
    limits: SourceLimits,
    fragments: output::Fragments,
    segmenting: &Segmenting,
    n: usize,
) -> Result<bytes::Bytes, RenderError> {
    let internal = |e: &dyn std::fmt::Display| RenderError::Internal(e.to_string());
    let per = segments::frames_per_segment(plan, segmenting.secs);
    let list = segments::split(plan, per);
    let segment = *list
        .get(n)
        .ok_or_else(|| RenderError::Internal(format!("the render has no segment {n}")))?;
    let last = n + 1 == list.len();
    let fps = plan.rate.as_f64();
    let forced_key = fragments.forced_key(fps).filter(|k| *k < per);
    let secs = segment.frames as f64 / fps;
    let key = segments::key(
        plan,
        sources,
        &mut segments::Digests::default(),
        segment,
        forced_key,
        &segmenting.scope,
    );
    let encoder = output::encoder(plan).map_err(media)?;
    let streams = encoder.streams();
    let ticks = streams.video.as_ref().map_or(1, |v| v.frame_ticks);
    // The sound's chunks in this segment's fragments: only those are
    // encoded (the mix before them is still made, in order).
    let chunks = output::sound_chunks(plan, forced_key, Some(per));
    let scale = streams
        .video
        .as_ref()
        .map_or(1, |v| i64::from(v.time_base.denominator()));
    let packet_at = |frame: i64| {
        first_packet_at(
            frame * ticks,
            scale,
            i64::from(crate::engine::media::SAMPLE_RATE),
            output::mp4::AAC_FRAME,
        )
    };
    let wanted = chunks.within(
        packet_at(segment.first),
        (!last).then(|| packet_at(segment.first + segment.frames)),
    );
    // The pictures (one encoder thread) and the sound up to them are
    // independent: made on two threads, the player waits for the longer.
    let (video, audio) = std::thread::scope(|scope| {
        let sound = std::thread::Builder::new()
            .name("clipstream-sound".into())
            .spawn_scoped(scope, || sound_until(plan, sources, chunks, wanted))
            .map_err(|e| RenderError::Internal(format!("no sound thread: {e}")));
        let video = match key.and_then(|k| segments::shared().get(&k)) {
            Some(cached) => {
                segments::shared().count(true, secs);
                Ok(cached.as_ref().clone())
            }
            None => render_one(plan, sources, limits, segment, forced_key, &|| false).inspect(
                |packets| {
                    if let Some(k) = key {
                        segments::shared().put(k, packets.clone());
                    }
                    segments::shared().count(false, secs);
                },
            ),
        };
        let audio = sound.and_then(|thread| {
            thread
                .join()
                .unwrap_or_else(|_| Err(RenderError::Internal("the sound thread panicked".into())))
        });
        (video, audio)
    });
    let (video, (audio, origin)) = (video?, audio?);
    let video = video
        .into_iter()
        .map(|mut p| {
            p.pts += segment.first * ticks;
            p.dts += segment.first * ticks;
            p
        })
        .collect();
    let mut packager = output::mp4::Fmp4Packager::new(fragments).with_segments(Some(per));
    use output::Package;
    packager.start(&streams).map_err(|e| internal(&e))?;
    let pieces = packager
        .segment_alone(
            n,
            segment.first,
            segment.frames,
            last,
            video,
            &audio,
            origin,
        )
        .map_err(|e| internal(&e))?;
    let mut out = Vec::new();
    for piece in pieces {
        if let output::Piece::Fragment(bytes, _) = piece {
            out.extend_from_slice(&bytes);
        }
    }
    Ok(out.into())
}

/// The sound's packets of chunks `wanted` (the sound's first packet's
/// timestamp beside them): from the sound cache (every packet), or the
/// whole timeline's mix made from its start up to the last of them, and
/// only those chunks encoded.
fn sound_until(
    plan: &Plan,
    sources: &Sources,
    chunks: SoundChunks,
    wanted: std::ops::Range<usize>,
) -> Result<(Vec<output::Encoded>, i64), RenderError> {
    if let Sound::Cached { packets, .. } = Sound::for_plan(plan, sources, &chunks) {
        let origin = packets.first().map_or(0, |r| r.packet.dts);
        return Ok((packets.iter().map(|r| r.packet.clone()).collect(), origin));
    }
    let mut encoder = ChunkedAudio::new(output::mp4::audio_settings(plan), chunks, Some(wanted))
        .map_err(media)?;
    let origin = encoder.origin();
    let mut mixer = Compositor::sound_only(plan, sources).map_err(media)?;
    let mut out: Vec<output::Encoded> = Vec::new();
    while let Some(c) = mixer.next(None).map_err(media)? {
        out.extend(encoder.push(&c.audio).map_err(media)?);
        if encoder.done() {
            return Ok((out, origin));
        }
    }
    out.extend(encoder.finish().map_err(media)?);
    Ok((out, origin))
}
