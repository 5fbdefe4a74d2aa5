//! The compositor actor: runs [`crate::compositor::Compositor`] on a
//! blocking thread (FFmpeg work must not stall the async runtime) and the
//! encoders on a second one, so that composing a frame overlaps encoding
//! the one before; hands each batch of packets to the muxer, waiting for
//! it to be taken so that at most one small batch is ever in flight.
//! Queues between the three are short: a render holds a few frames at most.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

use super::muxer::MuxMsg;
use super::{Publish, RenderError};
use crate::compose::Frame;
use crate::compositor::{Composed, Compositor, SourceLimits, Sources};
use crate::media::MediaError;
use crate::output;
use crate::plan::Plan;

/// Composed frames waiting for the encoder.
const FRAME_QUEUE: usize = 2;

pub struct CompositorActor;

pub struct CompositorArgs {
    pub plan: Plan,
    /// A frame to encode as a keyframe: where the first fragment ends.
    pub forced_key: Option<i64>,
    pub sources: Sources,
    pub limits: SourceLimits,
    pub muxer: ActorRef<MuxMsg>,
    pub publish: Arc<dyn Publish>,
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
        let (tx, mut rx) = mpsc::channel::<MuxMsg>(2);
        let publish = args.publish.clone();
        let worker = tokio::task::spawn_blocking(move || -> Result<(), RenderError> {
            compose_and_encode(
                args.plan,
                &args.sources,
                args.limits,
                args.forced_key,
                &tx,
                publish.as_ref(),
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

fn compose_and_encode(
    plan: Plan,
    sources: &Sources,
    limits: SourceLimits,
    forced_key: Option<i64>,
    tx: &mpsc::Sender<MuxMsg>,
    publish: &dyn Publish,
) -> Result<(), RenderError> {
    let mut encoder = output::encoder(&plan).map_err(media)?;
    let mut compositor = Compositor::new(plan, sources, limits).map_err(media)?;
    let send = |tx: &mpsc::Sender<MuxMsg>, msg| {
        tx.blocking_send(msg)
            .map_err(|_| RenderError::Internal("the muxer went away".into()))
    };
    send(tx, MuxMsg::Start(encoder.streams()))?;
    let (frames, queue) = std::sync::mpsc::sync_channel::<ToEncoder>(FRAME_QUEUE);
    let (spares, spare_frames) = std::sync::mpsc::channel::<Frame>();
    let encoder_tx = tx.clone();
    let encoder = std::thread::Builder::new()
        .name("clipstream-encode".into())
        .spawn(move || -> Result<(), RenderError> {
            while let Ok(msg) = queue.recv() {
                let composed = match msg {
                    ToEncoder::Frame(c) => c,
                    ToEncoder::End => {
                        let packets = encoder.finish().map_err(media)?;
                        send(&encoder_tx, MuxMsg::Packets(packets))?;
                        return send(&encoder_tx, MuxMsg::End);
                    }
                };
                let key = forced_key == Some(composed.index);
                let mut packets = encoder
                    .video(&composed.frame, composed.index, key)
                    .map_err(media)?;
                packets.extend(encoder.audio(&composed.audio).map_err(media)?);
                if !packets.is_empty() {
                    send(&encoder_tx, MuxMsg::Packets(packets))?;
                }
                // The composer may have finished; then the frame just goes.
                let _ = spares.send(composed.frame);
            }
            Err(RenderError::Internal(
                "the render stopped before its end".into(),
            ))
        })
        .map_err(|e| RenderError::Internal(format!("no encoder thread: {e}")))?;
    let mut last = 0.0;
    let composed = loop {
        let spare = spare_frames.try_recv().ok();
        match compositor.next(spare) {
            Ok(Some(c)) => {
                let (done, total) = compositor.progress();
                if done - last >= 0.25 {
                    publish.progress((done / total).min(1.0));
                    last = done;
                }
                if frames.send(ToEncoder::Frame(c)).is_err() {
                    // The encoder failed: its error is the render's.
                    break Ok(());
                }
            }
            Ok(None) => {
                let _ = frames.send(ToEncoder::End);
                break Ok(());
            }
            Err(e) => break Err(media(e)),
        }
    };
    drop(frames);
    let encoded = match encoder.join() {
        Ok(result) => result,
        // A panic in encoding: this render only.
        Err(_) => Err(RenderError::Internal("the encoder panicked".into())),
    };
    composed.and(encoded)
}
