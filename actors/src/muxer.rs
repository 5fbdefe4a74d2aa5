//! The muxer actor: hands the packet stream to its format's packager
//! ([`crate::engine::output::Package`]) and publishes what comes out at once: the
//! header, each fragment as soon as it is complete, and any patch of bytes
//! already published.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::engine::output::{Package, Packets, Piece, Streams};
use crate::faults::{Fault, Stage};
use crate::render::{Publish, RenderError};

pub enum MuxMsg {
    Start(Streams),
    Packets(Packets),
    End,
    /// One of the above, answered once handled.
    Deliver(Box<MuxMsg>, RpcReplyPort<()>),
}

pub struct Muxer;

pub struct MuxArgs {
    pub publish: Arc<dyn Publish>,
    pub packager: Box<dyn Package>,
    pub fault: Fault,
}

pub struct MuxState {
    publish: Arc<dyn Publish>,
    packager: Box<dyn Package>,
    fault: Fault,
    /// Whether viewers have the header: the injected fault waits for it.
    init_published: bool,
}

fn failed(e: impl std::fmt::Display) -> ActorProcessingErr {
    Box::new(RenderError::Internal(format!("muxing failed: {e}")))
}

impl MuxState {
    fn publish(&mut self, pieces: Vec<Piece>) {
        for piece in pieces {
            match piece {
                Piece::Init(bytes) => {
                    self.publish.init(bytes);
                    self.init_published = true;
                }
                Piece::Fragment(bytes, seconds) => self.publish.fragment(bytes, seconds),
                Piece::Patch { offset, bytes } => self.publish.patch(offset, bytes),
            }
        }
    }

    fn handle(&mut self, msg: MuxMsg, myself: &ActorRef<MuxMsg>) -> Result<(), ActorProcessingErr> {
        match msg {
            MuxMsg::Start(streams) => {
                let pieces = self.packager.start(&streams).map_err(failed)?;
                self.publish(pieces);
            }
            MuxMsg::Packets(packets) => {
                if self.init_published {
                    self.fault.panic_at(Stage::Muxer);
                }
                let pieces = self.packager.packets(packets).map_err(failed)?;
                self.publish(pieces);
            }
            MuxMsg::End => {
                let pieces = self.packager.finish().map_err(failed)?;
                self.publish(pieces);
                myself.stop(None);
            }
            MuxMsg::Deliver(inner, reply) => {
                self.handle(*inner, myself)?;
                // The sender may have gone; nothing to do about it here.
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

impl Actor for Muxer {
    type Msg = MuxMsg;
    type State = MuxState;
    type Arguments = MuxArgs;

    async fn pre_start(
        &self,
        _: ActorRef<MuxMsg>,
        args: MuxArgs,
    ) -> Result<MuxState, ActorProcessingErr> {
        Ok(MuxState {
            publish: args.publish,
            packager: args.packager,
            fault: args.fault,
            init_published: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<MuxMsg>,
        msg: MuxMsg,
        state: &mut MuxState,
    ) -> Result<(), ActorProcessingErr> {
        state.handle(msg, &myself)
    }
}
