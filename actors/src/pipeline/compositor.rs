//! The compositor actor: runs [`crate::compositor::Compositor`] on a
//! blocking thread (FFmpeg work must not stall the async runtime) and hands
//! each batch of packets to the muxer, waiting for it to be taken so that
//! at most one small batch is ever in flight.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

use super::muxer::MuxMsg;
use super::{Publish, RenderError};
use crate::compositor::{Compositor, SourceLimits, Sources};
use crate::plan::Plan;

pub struct CompositorActor;

pub struct CompositorArgs {
    pub plan: Plan,
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
            let mut compositor = Compositor::new(args.plan, &args.sources, args.limits)
                .map_err(|e| RenderError::Media(e.to_string()))?;
            let send = |msg| {
                tx.blocking_send(msg)
                    .map_err(|_| RenderError::Internal("the muxer went away".into()))
            };
            send(MuxMsg::Start(compositor.info()))?;
            let mut last = 0.0;
            while let Some(packets) = compositor
                .step()
                .map_err(|e| RenderError::Media(e.to_string()))?
            {
                let (done, total) = compositor.progress();
                if done - last >= 0.25 {
                    publish.progress((done / total).min(1.0));
                    last = done;
                }
                if !packets.is_empty() {
                    send(MuxMsg::Packets(packets))?;
                }
            }
            send(MuxMsg::End)
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
