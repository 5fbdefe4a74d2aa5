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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

use crate::engine::compose::Frame;
use crate::engine::media::MediaError;
use crate::engine::output::{self, Packets, Stream};
use crate::engine::plan::Plan;
use crate::engine::timeline::{Composed, Compositor, SourceLimits, Sources};
use crate::faults::{Fault, Stage};
use crate::muxer::MuxMsg;
use crate::render::{Publish, RenderError};
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
            compose_and_encode(
                args.plan,
                &args.sources,
                args.limits,
                args.forced_key,
                Control {
                    tx: &tx,
                    publish: publish.as_ref(),
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
    fn for_plan(plan: &Plan, sources: &Sources) -> Sound {
        // Formats without sound (GIF, stills) have nothing to keep.
        let key = plan
            .output
            .format
            .has_audio()
            .then(|| sound_cache::key(plan, sources))
            .flatten();
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

pub(crate) fn compose_and_encode(
    plan: Plan,
    sources: &Sources,
    limits: SourceLimits,
    forced_key: Option<i64>,
    control: Control<'_>,
) -> Result<(), RenderError> {
    let mut sound = Sound::for_plan(&plan, sources);
    let fps = plan.rate.as_f64();
    // The injected compositor fault waits for about a second of frames, or
    // the last frame of a shorter movie, so that viewers have bytes by then.
    let fault_frame = (fps.round() as i64).min((plan.duration * fps).ceil() as i64 - 1);
    // The encoders are opened on the thread that uses them, so that an
    // encoder restarted there (at the forced keyframe) reuses the memory of
    // the one before: with two threads, each kept its own in its malloc
    // arena, 26 MiB more per 720p render.
    let encoder_plan = plan.clone();
    let mut compositor = Compositor::new(plan, sources, limits).map_err(media)?;
    if matches!(sound, Sound::Cached { .. }) {
        compositor = compositor.without_mix();
    }
    let send = |tx: &mpsc::Sender<MuxMsg>, msg| {
        tx.blocking_send(msg)
            .map_err(|_| RenderError::Internal("the muxer went away".into()))
    };
    let (frames, queue) = std::sync::mpsc::sync_channel::<ToEncoder>(FRAME_QUEUE);
    let (spares, spare_frames) = std::sync::mpsc::channel::<Frame>();
    let encoder_tx = control.tx.clone();
    let thread = std::thread::Builder::new()
        .name("clipstream-encode".into())
        .spawn(move || -> Result<(), RenderError> {
            let mut encoder = output::encoder(&encoder_plan).map_err(media)?;
            send(&encoder_tx, MuxMsg::Start(encoder.streams()))?;
            while let Ok(msg) = queue.recv() {
                let composed = match msg {
                    ToEncoder::Frame(c) => c,
                    ToEncoder::End => {
                        let mut packets = encoder.finish().map_err(media)?;
                        sound.finish(&mut packets);
                        send(&encoder_tx, MuxMsg::Packets(packets))?;
                        return send(&encoder_tx, MuxMsg::End);
                    }
                };
                let key = forced_key == Some(composed.index);
                let mut packets = encoder
                    .video(composed.frame, composed.index, key, &spares)
                    .map_err(media)?;
                // The sound up to the end of this frame.
                sound.packets(
                    encoder.as_mut(),
                    &composed.audio,
                    composed.index,
                    &mut packets,
                )?;
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
    let mut last = 0.0;
    let composed = loop {
        if control.stop.load(Ordering::Acquire) {
            break Err(RenderError::Internal("the render was stopped".into()));
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
                    break Ok(());
                }
            }
            Ok(None) => {
                encoder.send(ToEncoder::End);
                break Ok(());
            }
            Err(e) => break Err(media(e)),
        }
    };
    let encoded = encoder.join();
    composed.and(encoded)
}
