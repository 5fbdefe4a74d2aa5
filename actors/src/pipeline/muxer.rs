//! The muxer actor: cuts the packet stream into fragments of about the
//! configured length, each starting on a video keyframe, and publishes the
//! init segment and each fragment as soon as it is complete.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::{Fragments, Publish, RenderError};
use crate::compositor::{Stream, StreamInfo};
use crate::encode::Encoded;
use crate::mux::{Fmp4Writer, Sample, TrackConfig};

const VIDEO: usize = 0;
const AUDIO: usize = 1;

pub enum MuxMsg {
    Start(StreamInfo),
    Packets(Vec<(Stream, Encoded)>),
    End,
    /// One of the above, answered once handled.
    Deliver(Box<MuxMsg>, RpcReplyPort<()>),
}

pub struct Muxer;

pub struct MuxArgs {
    pub publish: Arc<dyn Publish>,
    pub fragments: Fragments,
}

pub struct MuxState {
    publish: Arc<dyn Publish>,
    fragments: Fragments,
    /// Fragments published so far.
    published: usize,
    writer: Option<Fmp4Writer>,
    info: Option<StreamInfo>,
    pending: Vec<Sample>,
    /// Video decode time where the pending fragment starts, in ticks.
    fragment_start: Option<i64>,
    /// First audio timestamp: AAC's priming makes it negative.
    audio_origin: Option<i64>,
}

fn failed(e: impl std::fmt::Display) -> ActorProcessingErr {
    Box::new(RenderError::Internal(format!("muxing failed: {e}")))
}

impl MuxState {
    fn start(&mut self, info: StreamInfo) -> Result<(), ActorProcessingErr> {
        let writer = Fmp4Writer::new(vec![
            TrackConfig::Video {
                width: info.width,
                height: info.height,
                timescale: info.video_timescale,
                extradata: info.video_extradata.clone(),
            },
            TrackConfig::Audio {
                sample_rate: info.sample_rate,
                channels: info.channels,
                timescale: info.sample_rate,
                extradata: info.audio_extradata.clone(),
            },
        ])
        .map_err(failed)?;
        self.publish.init(writer.init_segment().map_err(failed)?);
        self.writer = Some(writer);
        self.info = Some(info);
        Ok(())
    }

    fn packets(&mut self, packets: Vec<(Stream, Encoded)>) -> Result<(), ActorProcessingErr> {
        let Some(info) = self.info.clone() else {
            return Err(failed("packets before the stream description"));
        };
        let target = if self.published == 0 {
            self.fragments.first
        } else {
            self.fragments.rest
        };
        let fragment_ticks = (target.as_secs_f64() * f64::from(info.video_timescale)) as i64;
        for (stream, p) in packets {
            match stream {
                Stream::Video => {
                    let start = *self.fragment_start.get_or_insert(p.dts);
                    if p.keyframe
                        && p.dts - start >= fragment_ticks
                        && self.pending.iter().any(|s| s.track == VIDEO)
                    {
                        self.flush()?;
                        self.fragment_start = Some(p.dts);
                    }
                    let duration = if p.duration > 0 {
                        p.duration
                    } else {
                        info.frame_ticks
                    };
                    self.pending.push(Sample {
                        track: VIDEO,
                        dts: p.dts.max(0) as u64,
                        cts_offset: (p.pts - p.dts) as i32,
                        duration: duration as u32,
                        keyframe: p.keyframe,
                        data: p.data,
                    });
                }
                Stream::Audio => {
                    let origin = *self.audio_origin.get_or_insert(p.dts);
                    self.pending.push(Sample {
                        track: AUDIO,
                        dts: (p.dts - origin).max(0) as u64,
                        cts_offset: 0,
                        duration: if p.duration > 0 {
                            p.duration as u32
                        } else {
                            1024
                        },
                        keyframe: true,
                        data: p.data,
                    });
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ActorProcessingErr> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(failed("no writer"));
        };
        let timescale = self.info.as_ref().map_or(1, |i| i.video_timescale);
        let seconds = self
            .pending
            .iter()
            .filter(|s| s.track == VIDEO)
            .map(|s| f64::from(s.duration))
            .sum::<f64>()
            / f64::from(timescale);
        // Samples go in track order: all video, then all audio.
        self.pending.sort_by_key(|s| s.track);
        let bytes = writer.fragment(&self.pending).map_err(failed)?;
        self.pending.clear();
        self.publish.fragment(bytes, seconds);
        self.published += 1;
        Ok(())
    }

    fn handle(&mut self, msg: MuxMsg, myself: &ActorRef<MuxMsg>) -> Result<(), ActorProcessingErr> {
        match msg {
            MuxMsg::Start(info) => self.start(info),
            MuxMsg::Packets(packets) => self.packets(packets),
            MuxMsg::End => {
                self.flush()?;
                myself.stop(None);
                Ok(())
            }
            MuxMsg::Deliver(inner, reply) => {
                self.handle(*inner, myself)?;
                // The sender may have gone; nothing to do about it here.
                let _ = reply.send(());
                Ok(())
            }
        }
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
            fragments: args.fragments,
            published: 0,
            writer: None,
            info: None,
            pending: Vec::new(),
            fragment_start: None,
            audio_origin: None,
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
